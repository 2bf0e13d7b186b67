//! `replog bench`: a closed-loop load generator against any cluster.
//!
//! `C` connections to the master each keep `K` appends of `B` bytes in
//! flight; every answer is timed into an HDR histogram (after the warm-up)
//! and counted by outcome. Optionally it times `fdatasync` of a probe file
//! in a directory (put it on the data directory's filesystem) and the
//! loopback round trip (a `health` request), so that a serial `w=N` latency
//! can be read against the disk it waits for: `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::connection::{connect_master, Client, ConnectOptions};
use super::error::ClientError;
use super::followers::{AckTimes, Followers};
use crate::wire::WriteConcern;

/// What to run (the flags of `replog bench`).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Connections to the master.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Appends in flight on each connection.
    #[arg(long, default_value_t = 64)]
    pub inflight: usize,
    /// Message size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    pub size: usize,
    /// Stop after this many appends (warm-up included) instead of after --duration.
    #[arg(long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Measure for this long after the warm-up.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Appends in this first period are not measured.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// Write concern of every append.
    #[arg(short = 'w', long = "write-concern", default_value = "1")]
    pub w: WriteConcern,
    /// Send a fresh request key with every append (as `replog append` does); by default benchmark appends carry none.
    #[arg(long)]
    pub key_every_append: bool,
    /// Also time fdatasync of a probe file in DIR (give a directory on the data directory's filesystem), one fdatasync per node at once there (what a w=N append waits for when every node shares that disk), and a round trip to the master; for a serial run (--connections 1 --inflight 1), print append p50 over the sum of the first and the last.
    #[arg(long, value_name = "DIR")]
    pub fsync_probe: Option<PathBuf>,
    /// Also run this many followers on the master beside the writers, each reading every new committed message as `replog list --follow --committed` does; the report adds what they read per second and how long after an append's answer they saw it.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub readers: usize,
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The slowest.
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        Latency {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// What was measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// Appends answered in the measured period.
    pub measured: u64,
    /// Its length, in seconds.
    pub seconds: f64,
    /// Successful appends per second in it.
    pub appends_per_second: f64,
    /// Latency of successful appends, microseconds.
    pub latency_us: Latency,
    /// Every answer (warm-up included) by outcome: "ok", or the kind of
    /// error as `append --json` names it.
    pub outcomes: BTreeMap<String, u64>,
    /// `fdatasync` of a 4 KiB write to the probe file, microseconds.
    pub fsync_probe_us: Option<Latency>,
    /// A `health` request's round trip to the master, microseconds.
    pub round_trip_us: Option<Latency>,
    /// As many fdatasyncs at once as the cluster has nodes, one per file
    /// and thread, each a 4 KiB write and its fdatasync, timed from the
    /// start of a round until the last is done (two barrier wake-ups
    /// included), microseconds. What a w=N append waits for when every node
    /// keeps its log on the probe's disk, as on one test machine.
    pub fsync_together_us: Option<Latency>,
    /// How many syncs `fsync_together_us` ran at once.
    pub fsync_together: Option<usize>,
    /// Append p50 over (probe fsync p50 + round trip p50): how close a
    /// serial append comes to the one sync and one trip it must wait for
    /// (only for a serial run: one connection, one in flight).
    pub p50_over_fsync_and_round_trip: Option<f64>,
    /// What `--readers` followers did, if any ran.
    pub readers: Option<ReadersReport>,
}

/// What the `--readers` followers did in the measured period.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadersReport {
    /// How many followed.
    pub followers: usize,
    /// Messages they received per second, all together.
    pub messages_per_second: f64,
    /// From an append's answer to a follower receiving it, microseconds
    /// (0 when the follower saw it first).
    pub seen_after_answer_us: Latency,
}

/// Times `n` fdatasyncs of a small write to a file in `dir`.
fn probe_fsync(dir: &std::path::Path, n: usize) -> std::io::Result<Histogram<u64>> {
    use std::io::Write;
    let path = dir.join(format!(".replog-bench-probe-{}", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    let mut h = Histogram::new(3).expect("3 significant digits");
    let block = [0x5au8; 4096];
    let result = (|| {
        for _ in 0..n {
            file.write_all(&block)?;
            let start = Instant::now();
            file.sync_data()?;
            let _ = h.record(start.elapsed().as_micros() as u64);
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    result.map(|()| h)
}

/// Times `n` rounds of `files` fdatasyncs started together, one file and
/// thread each: from the start of a round until the last sync is done.
fn probe_fsync_together(
    dir: &std::path::Path,
    files: usize,
    n: usize,
) -> std::io::Result<Histogram<u64>> {
    use std::io::Write;
    use std::sync::Barrier;
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| dir.join(format!(".replog-bench-probe-{}-{i}", std::process::id())))
        .collect();
    let start = Barrier::new(files + 1);
    let done = Barrier::new(files + 1);
    let mut h = Histogram::new(3).expect("3 significant digits");
    let result = paths
        .iter()
        .map(std::fs::File::create)
        .collect::<std::io::Result<Vec<_>>>()
        .and_then(|opened| {
            std::thread::scope(|s| {
                let syncers: Vec<_> = opened
                    .into_iter()
                    .map(|mut file| {
                        let (start, done) = (&start, &done);
                        s.spawn(move || -> std::io::Result<()> {
                            let block = [0x5au8; 4096];
                            let mut failed = Ok(());
                            // Every round is waited for, failed or not, so
                            // that no barrier waits for a thread that left.
                            for _ in 0..n {
                                start.wait();
                                if failed.is_ok() {
                                    failed = file.write_all(&block).and_then(|()| file.sync_data());
                                }
                                done.wait();
                            }
                            failed
                        })
                    })
                    .collect();
                for _ in 0..n {
                    let began = Instant::now();
                    start.wait();
                    done.wait();
                    let _ = h.record(began.elapsed().as_micros() as u64);
                }
                syncers
                    .into_iter()
                    .try_for_each(|t| t.join().expect("a probe thread panicked"))
            })
        });
    for path in &paths {
        let _ = std::fs::remove_file(path);
    }
    result.map(|()| h)
}

/// Latencies a worker keeps before recording them in its connection's
/// histogram.
const LATENCY_CHUNK: usize = 256;

/// Runs the benchmark against the cluster of `nodes`, with a progress bar
/// on standard error if `progress` (and it is a terminal). Connection `i`
/// appends to `logs[i % logs.len()]`, or to `conn`'s log if none is given.
pub async fn run(
    nodes: &[String],
    opts: &BenchOptions,
    progress: bool,
    (conn, logs): (&ConnectOptions, &[String]),
) -> Result<BenchReport, ClientError> {
    let connections = opts.connections.max(1);
    let inflight = opts.inflight.max(1);
    let mut clients = Vec::with_capacity(connections);
    for i in 0..connections {
        let node = &nodes[i % nodes.len()];
        let conn = match logs.get(i % logs.len().max(1)) {
            Some(log) => ConnectOptions {
                log: Some(log.clone()),
                ..conn.clone()
            },
            None => conn.clone(),
        };
        clients.push(Arc::new(connect_master(node, &conn).await?));
    }
    // Readers follow the first log.
    let first;
    let conn = match logs.first() {
        Some(log) => {
            first = ConnectOptions {
                log: Some(log.clone()),
                ..conn.clone()
            };
            &first
        }
        None => conn,
    };
    let probes = Probes::take(&clients[0], opts).await?;
    let message = bytes::Bytes::from(vec![b'x'; opts.size]);
    let mut readers = Vec::with_capacity(opts.readers);
    for _ in 0..opts.readers {
        readers.push(connect_master(&nodes[0], conn).await?);
    }
    let started = Instant::now();
    let measure_from = started + opts.warmup;
    let acks = (opts.readers > 0).then(|| Arc::new(AckTimes::new(started)));
    let followers = match &acks {
        Some(acks) => {
            // After the last message there is now.
            let (_, visible) = clients[0].list_entries(u64::MAX, 1, false, false).await?;
            Some(Followers::start(
                readers,
                visible + 1,
                acks.clone(),
                measure_from,
            ))
        }
        None => None,
    };
    let stop_at = opts.count.is_none().then(|| measure_from + opts.duration);
    let tally = Tally::new(started);
    // The workers keep their counts to themselves and share them rarely:
    // the generator runs on the cores it measures, and every cache line
    // its workers fight over is time taken from the cluster.
    let mut tasks = Vec::new();
    let mut histograms = Vec::new();
    for client in &clients {
        // One histogram per connection, fed in chunks: one per worker
        // would be a thousand histograms to miss the cache on.
        let shared_h = Arc::new(Mutex::new(
            Histogram::<u64>::new(3).expect("3 significant digits"),
        ));
        histograms.push(shared_h.clone());
        for _ in 0..inflight {
            let worker = Worker {
                client: client.clone(),
                message: message.clone(),
                tally: tally.clone(),
                histogram: shared_h.clone(),
                w: opts.w,
                keyed: opts.key_every_append,
                count: opts.count,
                measure_from,
                acks: acks.clone(),
            };
            tasks.push(tokio::spawn(worker.run()));
        }
    }
    let bar = progress.then(|| progress_bar(opts));
    tally.clock(&tasks, bar, opts.count, stop_at).await;
    for t in tasks {
        let _ = t.await;
    }
    if let Some(f) = &followers {
        f.stop();
    }
    let mut h = Histogram::<u64>::new(3).expect("3 significant digits");
    for shared_h in histograms {
        h.add(&*shared_h.lock().expect("lock"))
            .expect("same bounds");
    }
    // Only a serial run waits for exactly one sync and one trip at a time.
    let serial = connections * inflight == 1;
    let mut report = tally.report(&h, measure_from, probes, serial);
    report.readers = followers.map(|f| ReadersReport {
        followers: opts.readers,
        messages_per_second: f.read.load(Ordering::Relaxed) as f64 / report.seconds,
        seen_after_answer_us: Latency::of(&f.lag.lock().expect("lock")),
    });
    Ok(report)
}

/// What `--fsync-probe` measures before the run: a fdatasync alone and of
/// several files at once where the nodes keep their logs, and a round trip
/// to the master.
#[derive(Default)]
struct Probes {
    fsync: Option<Histogram<u64>>,
    together: Option<(usize, Histogram<u64>)>,
    round_trip: Option<Histogram<u64>>,
}

impl Probes {
    async fn take(client: &Client, opts: &BenchOptions) -> Result<Probes, ClientError> {
        let Some(dir) = &opts.fsync_probe else {
            return Ok(Probes::default());
        };
        let files = client.health().await?.nodes.len().max(1);
        let probed = probe_fsync(dir, 200)
            .and_then(|alone| Ok((alone, probe_fsync_together(dir, files, 200)?)));
        let (alone, at_once) = probed.map_err(|e| {
            ClientError::Usage(format!(
                "--fsync-probe {}: cannot time fdatasync there: {e}",
                dir.display()
            ))
        })?;
        let mut trip = Histogram::<u64>::new(3).expect("3 significant digits");
        for _ in 0..200 {
            let start = Instant::now();
            client.health().await?;
            let _ = trip.record(start.elapsed().as_micros() as u64);
        }
        Ok(Probes {
            fsync: Some(alone),
            together: Some((files, at_once)),
            round_trip: Some(trip),
        })
    }
}

fn progress_bar(opts: &BenchOptions) -> indicatif::ProgressBar {
    let bar = match opts.count {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new((opts.warmup + opts.duration).as_secs().max(1)),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {msg} ({elapsed}/{duration})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// What the workers share: each counter its own allocation, touched
/// rarely (see `run`).
#[derive(Clone)]
struct Tally {
    started: Instant,
    issued: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<BTreeMap<String, u64>>>,
    measured: Arc<AtomicU64>,
    first_measured: Arc<Mutex<Option<Instant>>>,
    last_answer: Arc<Mutex<Instant>>,
}

impl Tally {
    fn new(started: Instant) -> Tally {
        Tally {
            started,
            issued: Arc::default(),
            answered: Arc::default(),
            stop: Arc::default(),
            outcomes: Arc::default(),
            measured: Arc::default(),
            first_measured: Arc::default(),
            last_answer: Arc::new(Mutex::new(started)),
        }
    }

    /// The clock: stops the workers at the deadline, moves the bar.
    async fn clock(
        &self,
        tasks: &[tokio::task::JoinHandle<()>],
        bar: Option<indicatif::ProgressBar>,
        count: Option<u64>,
        stop_at: Option<Instant>,
    ) {
        loop {
            let done = tasks.iter().all(|t| t.is_finished());
            let now = Instant::now();
            if let Some(bar) = &bar {
                match count {
                    Some(_) => bar.set_position(self.answered.load(Ordering::Relaxed)),
                    None => bar.set_position(now.duration_since(self.started).as_secs()),
                }
                bar.set_message(format!("{} appends", self.answered.load(Ordering::Relaxed)));
            }
            if done {
                break;
            }
            if stop_at.is_some_and(|s| now >= s) {
                self.stop.store(true, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }

    /// The figures, once every worker is done.
    fn report(
        &self,
        h: &Histogram<u64>,
        measure_from: Instant,
        probes: Probes,
        serial: bool,
    ) -> BenchReport {
        let first = self
            .first_measured
            .lock()
            .expect("lock")
            .unwrap_or(measure_from);
        let last = *self.last_answer.lock().expect("lock");
        let seconds = last
            .saturating_duration_since(first)
            .as_secs_f64()
            .max(1e-9);
        let ok_measured = self.measured.load(Ordering::Relaxed);
        let latency = Latency::of(h);
        let fsync = probes.fsync.as_ref().map(Latency::of);
        let trip = probes.round_trip.as_ref().map(Latency::of);
        let ratio = match (fsync, trip) {
            (Some(f), Some(t)) if serial && f.p50 + t.p50 > 0 => {
                Some(latency.p50 as f64 / (f.p50 + t.p50) as f64)
            }
            _ => None,
        };
        let outcomes = self.outcomes.lock().expect("lock").clone();
        BenchReport {
            measured: ok_measured,
            seconds,
            appends_per_second: ok_measured as f64 / seconds,
            latency_us: latency,
            outcomes,
            fsync_probe_us: fsync,
            round_trip_us: trip,
            fsync_together_us: probes.together.as_ref().map(|(_, h)| Latency::of(h)),
            fsync_together: probes.together.as_ref().map(|(files, _)| *files),
            p50_over_fsync_and_round_trip: ratio,
            readers: None,
        }
    }
}

/// One of `--inflight` appenders on one connection: one append at a time.
struct Worker {
    client: Arc<Client>,
    message: bytes::Bytes,
    tally: Tally,
    histogram: Arc<Mutex<Histogram<u64>>>,
    w: WriteConcern,
    keyed: bool,
    count: Option<u64>,
    measure_from: Instant,
    /// Where answers are noted for `--readers`, if any run.
    acks: Option<Arc<AckTimes>>,
}

/// What one worker counted, shared with the others once it is done.
#[derive(Default)]
struct Counts {
    ok: u64,
    ok_measured: u64,
    unpublished: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    failed: BTreeMap<String, u64>,
}

impl Worker {
    async fn run(self) {
        let mut latencies: Vec<u64> = Vec::with_capacity(LATENCY_CHUNK);
        let mut counts = Counts::default();
        let tally = &self.tally;
        loop {
            if tally.stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(c) = self.count {
                if tally.issued.fetch_add(1, Ordering::Relaxed) >= c {
                    break;
                }
            }
            let key = self.keyed.then(crate::client::new_key);
            let start = Instant::now();
            let result = (self.client)
                .append_bytes(self.message.clone(), key, self.w, None)
                .await;
            let now = Instant::now();
            counts.unpublished += 1;
            if counts.unpublished == 64 {
                tally
                    .answered
                    .fetch_add(counts.unpublished, Ordering::Relaxed);
                counts.unpublished = 0;
            }
            match &result {
                Ok(seq) => {
                    counts.ok += 1;
                    if let Some(acks) = &self.acks {
                        acks.answered(*seq, now);
                    }
                }
                Err(e) => *counts.failed.entry(e.kind().to_string()).or_default() += 1,
            }
            if let Err(ClientError::Lost { .. } | ClientError::Rejected { .. }) = result {
                // The connection is gone: nothing more on it.
                break;
            }
            if result.is_ok() && start >= self.measure_from {
                latencies.push(now.duration_since(start).as_micros() as u64);
                if latencies.len() == LATENCY_CHUNK {
                    self.record(&mut latencies);
                }
                counts.ok_measured += 1;
                counts.first = Some(counts.first.map_or(start, |f| f.min(start)));
                counts.last = Some(counts.last.map_or(now, |l| l.max(now)));
            }
        }
        self.record(&mut latencies);
        self.publish(counts);
    }

    fn record(&self, latencies: &mut Vec<u64>) {
        let mut h = self.histogram.lock().expect("lock");
        for l in latencies.drain(..) {
            let _ = h.record(l);
        }
    }

    fn publish(&self, counts: Counts) {
        let tally = &self.tally;
        tally
            .answered
            .fetch_add(counts.unpublished, Ordering::Relaxed);
        tally
            .measured
            .fetch_add(counts.ok_measured, Ordering::Relaxed);
        if let Some(first) = counts.first {
            let mut earliest = tally.first_measured.lock().expect("lock");
            *earliest = Some(earliest.map_or(first, |e| e.min(first)));
        }
        if let Some(last) = counts.last {
            let mut latest = tally.last_answer.lock().expect("lock");
            *latest = (*latest).max(last);
        }
        let mut all = tally.outcomes.lock().expect("lock");
        if counts.ok > 0 {
            *all.entry("ok".to_string()).or_default() += counts.ok;
        }
        for (k, v) in counts.failed {
            *all.entry(k).or_default() += v;
        }
    }
}

impl BenchReport {
    /// The report for people.
    pub fn text(&self, opts: &BenchOptions) -> String {
        let w = match opts.w {
            WriteConcern::Nodes(n) => n.to_string(),
            WriteConcern::Majority => "majority".into(),
            WriteConcern::All => "all".into(),
        };
        let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
        let mut out = format!(
            "{} connection(s) x {} in flight, {} B messages, w={w}{}\n",
            opts.connections,
            opts.inflight,
            opts.size,
            if opts.key_every_append {
                ", a key per append"
            } else {
                ""
            },
        );
        out.push_str(&format!(
            "{:.0} appends/s ({} in {:.2} s after a {} warm-up)\n",
            self.appends_per_second,
            self.measured,
            self.seconds,
            humantime::format_duration(opts.warmup)
        ));
        let l = self.latency_us;
        out.push_str(&format!(
            "latency: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}\n",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max)
        ));
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.push_str(&format!("outcomes: {}\n", outcomes.join(", ")));
        if let (Some(f), Some(t)) = (self.fsync_probe_us, self.round_trip_us) {
            out.push_str(&format!(
                "fdatasync probe: p50 {}  p99 {}; round trip: p50 {}\n",
                ms(f.p50),
                ms(f.p99),
                ms(t.p50)
            ));
        }
        if let (Some(l), Some(files)) = (self.fsync_together_us, self.fsync_together) {
            out.push_str(&format!(
                "{files} fdatasyncs at once on the probe's disk (one per node): p50 {}  p99 {}\n",
                ms(l.p50),
                ms(l.p99)
            ));
        }
        if let Some(r) = self.p50_over_fsync_and_round_trip {
            out.push_str(&format!(
                "append p50 / (fdatasync p50 + round trip p50) = {r:.2}\n"
            ));
        }
        if let Some(r) = &self.readers {
            let l = r.seen_after_answer_us;
            out.push_str(&format!(
                "readers: {} follower(s) read {:.0} messages/s; seen after the append's answer: p50 {}  p99 {}  max {}\n",
                r.followers,
                r.messages_per_second,
                ms(l.p50),
                ms(l.p99),
                ms(l.max)
            ));
        }
        out
    }
}
