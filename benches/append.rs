//! Appends per second through the real client, protocol and on-disk log,
//! over loopback TCP. Run with `cargo bench --bench append`; set
//! `REPLOG_BENCH_SECS` to change the duration of each case (default 3).
//!
//! Two tables are printed in Markdown:
//! 1. one node, for each fsync policy, with 1 and with 64 concurrent writers
//!    (each on its own connection);
//! 2. three nodes in one process (so they share the machine's two cores
//!    and disk), `--fsync always`, 64 writers, for `w` = 1, 2 and 3.
//!
//! `docs/benchmarks.md` keeps the figures measured on the project's machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use replog::client::{AppendOptions, Client};
use replog::node::config::{Cluster, FsyncPolicy, NodeConfig};
use replog::wire::WriteConcern;
use tokio_util::sync::CancellationToken;

struct Case {
    nodes: usize,
    policy: FsyncPolicy,
    writers: usize,
    w: u32,
    secs: u64,
}

/// Runs one case; returns (appends/s, p50 µs, p99 µs).
async fn run(case: Case) -> (f64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut listeners = Vec::new();
    for _ in 0..case.nodes {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let list: Vec<String> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{}={}", i + 1, l.local_addr().unwrap()))
        .collect();
    let cluster = Cluster::parse(&list.join(","), None).unwrap();
    let master = cluster.master_addr().to_string();
    let shutdown = CancellationToken::new();
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let mut cfg = NodeConfig::new(&(i + 1).to_string(), cluster.clone());
        cfg.data_dir = Some(dir.path().join(format!("n{i}")));
        cfg.fsync = case.policy;
        nodes.push(tokio::spawn(replog::node::run::<replog::net::Tcp>(
            cfg,
            listener,
            shutdown.clone(),
            |_| {},
        )));
    }
    // Wait until every secondary is connected.
    loop {
        if let Ok(c) = Client::connect(&master).await {
            if let Ok(h) = c.health().await {
                if h.reachable as usize == case.nodes {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let message = "x".repeat(100);
    for _ in 0..case.writers {
        let (master, stop, message) = (master.clone(), stop.clone(), message.clone());
        tasks.push(tokio::spawn(async move {
            let client = Client::connect(&master).await.unwrap();
            let mut hist = hdrhistogram::Histogram::<u64>::new(3).unwrap();
            let opts = AppendOptions {
                w: WriteConcern::Nodes(case.w),
                ..AppendOptions::default()
            };
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                client.append(&message, &opts).await.unwrap();
                hist.record(t.elapsed().as_micros() as u64).unwrap();
            }
            hist
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(case.secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        all.add(t.await.unwrap()).unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    shutdown.cancel();
    for n in nodes {
        n.await.unwrap().unwrap();
    }
    (
        all.len() as f64 / elapsed,
        all.value_at_quantile(0.5),
        all.value_at_quantile(0.99),
    )
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn main() {
    let secs: u64 = std::env::var("REPLOG_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    // Every node and every writer in one process: on workers, each node's
    // loop on a thread of its own, as under `replogd --threads N`. The
    // default, one thread per daemon, is measured with `replog bench`
    // against real processes (docs/benchmarks.md).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("One node:\n");
    println!("| fsync | writers | appends/s | p50 latency | p99 latency |");
    println!("|---|---:|---:|---:|---:|");
    for policy in [FsyncPolicy::Always, FsyncPolicy::Batch, FsyncPolicy::Never] {
        for writers in [1, 64] {
            let case = Case {
                nodes: 1,
                policy,
                writers,
                w: 1,
                secs,
            };
            let (rate, p50, p99) = rt.block_on(run(case));
            println!(
                "| {policy:?} | {writers} | {rate:.0} | {} | {} |",
                ms(p50),
                ms(p99)
            );
        }
    }
    println!("\nThree nodes in one process, fsync always, 64 writers:\n");
    println!("| w | appends/s | p50 latency | p99 latency |");
    println!("|---:|---:|---:|---:|");
    for w in [1, 2, 3] {
        let case = Case {
            nodes: 3,
            policy: FsyncPolicy::Always,
            writers: 64,
            w,
            secs,
        };
        let (rate, p50, p99) = rt.block_on(run(case));
        println!("| {w} | {rate:.0} | {} | {} |", ms(p50), ms(p99));
    }
}
