//! Appends per second on one node, for each fsync policy, with 1 and with 64
//! concurrent writers (each on its own connection), through the real client,
//! protocol and on-disk log. Run with `cargo bench --bench append`; set
//! `REPLOG_BENCH_SECS` to change the duration of each case (default 3).
//! Results are printed as a Markdown table; `docs/benchmarks.md` keeps the
//! figures measured on the project's machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use replog::client::{AppendOptions, Client};
use replog::config::{Cluster, FsyncPolicy, NodeConfig};
use tokio_util::sync::CancellationToken;

async fn case(policy: FsyncPolicy, writers: usize, secs: u64) -> (f64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut cfg = NodeConfig::new("1", Cluster::parse(&format!("1={addr}"), None).unwrap());
    cfg.data_dir = Some(dir.path().to_path_buf());
    cfg.fsync = policy;
    let shutdown = CancellationToken::new();
    let node = tokio::spawn(replog::node::run::<replog::net::Tcp>(
        cfg,
        listener,
        shutdown.clone(),
        |_| {},
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let message = "x".repeat(100);
    for _ in 0..writers {
        let (addr, stop, message) = (addr.clone(), stop.clone(), message.clone());
        tasks.push(tokio::spawn(async move {
            let client = loop {
                if let Ok(c) = Client::connect(&addr).await {
                    break c;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            let mut hist = hdrhistogram::Histogram::<u64>::new(3).unwrap();
            let opts = AppendOptions::default();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                client.append(&message, &opts).await.unwrap();
                hist.record(t.elapsed().as_micros() as u64).unwrap();
            }
            hist
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        all.add(t.await.unwrap()).unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    shutdown.cancel();
    node.await.unwrap().unwrap();
    (
        all.len() as f64 / elapsed,
        all.value_at_quantile(0.5),
        all.value_at_quantile(0.99),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let secs: u64 = std::env::var("REPLOG_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("| fsync | writers | appends/s | p50 latency | p99 latency |");
    println!("|---|---:|---:|---:|---:|");
    for policy in [FsyncPolicy::Always, FsyncPolicy::Batch, FsyncPolicy::Never] {
        for writers in [1, 64] {
            let (rate, p50, p99) = rt.block_on(case(policy, writers, secs));
            println!(
                "| {policy:?} | {writers} | {rate:.0} | {:.2} ms | {:.2} ms |",
                p50 as f64 / 1000.0,
                p99 as f64 / 1000.0
            );
        }
    }
}
