//! Deterministic simulation of whole clusters: the real node runtime and
//! replication core on turmoil's simulated network and clock, with fixed
//! seeds. After every simulation step each test checks that no node shows a
//! gap or a duplicate, that nodes agree on every position they share, and
//! that every acknowledged append is held by enough nodes.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use replog::client::{AppendOptions, Client, ClientError, ConnectOptions};
use replog::net::Net;
use replog::node::config::{Cluster, NodeConfig};
use replog::node::Probe;
use replog::replication::Timing;
use replog::wire::{AppendError, WriteConcern};

/// turmoil's TCP as a replog transport.
struct SimNet;

impl Net for SimNet {
    type Stream = turmoil::net::TcpStream;
    type Listener = turmoil::net::TcpListener;
    const SIMULATED: bool = true;

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        listener.accept().await
    }

    async fn connect(addr: String) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr).await
    }
}

const NODES: [&str; 3] = ["n1", "n2", "n3"];
const PORT: u16 = 7000;

fn node_config(i: usize, seed: u64, failover: bool) -> NodeConfig {
    let list: Vec<String> = NODES.iter().map(|n| format!("{n}={n}:{PORT}")).collect();
    let cluster = Cluster::parse(&list.join(","), None).unwrap();
    let mut cfg = NodeConfig::new(NODES[i], cluster);
    cfg.timing = Timing {
        heartbeat_interval: Duration::from_millis(50),
        suspect_after: Duration::from_millis(200),
        unhealthy_after: Duration::from_millis(500),
        retry_base: Duration::from_millis(10),
        retry_max: Duration::from_millis(300),
        election_timeout: Duration::from_millis(300),
    };
    cfg.seed = Some(seed + i as u64);
    cfg.failover = failover;
    cfg
}

/// One acknowledged append.
#[derive(Debug, Clone)]
struct Acked {
    seq: u64,
    message: String,
    w: u32,
}

#[derive(Default)]
struct Observed {
    /// The current incarnation of each node, `None` while it is down.
    probes: Vec<Option<Probe>>,
    /// Acknowledged appends.
    acked: Vec<Acked>,
    /// Appends refused for lack of quorum.
    refused: u32,
    /// The writer finished.
    done: bool,
    /// Nodes seen as master at some step.
    masters: HashSet<usize>,
    /// Who was master, from when (simulated ms), at each change.
    timeline: Vec<(u64, Vec<usize>)>,
}

type Shared = Arc<Mutex<Observed>>;

/// What a scenario does to the network, at simulated times.
enum Fault {
    Partition(&'static str, &'static str),
    Repair(&'static str, &'static str),
    Crash(&'static str),
    Restart(&'static str),
}

struct Scenario {
    seed: u64,
    appends: usize,
    /// Write concern of append i.
    w: fn(usize) -> u32,
    /// (time in ms, fault), in time order.
    faults: Vec<(u64, Fault)>,
    max_latency: Duration,
    /// Nodes that lose their log (memory) when they crash; lowers the
    /// number of copies an acknowledged append is guaranteed to have.
    disk_losses_allowed: u32,
    /// Masters are elected (`--failover on`); the writer follows them.
    failover: bool,
}

fn run(s: Scenario) -> Observed {
    let seed = s.seed;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_inner(s)));
    match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("simulation failed with rng seed {seed}");
            std::panic::resume_unwind(e)
        }
    }
}

fn run_inner(s: Scenario) -> Observed {
    let mut sim = turmoil::Builder::new()
        .rng_seed(s.seed)
        .simulation_duration(Duration::from_secs(120))
        .max_message_latency(s.max_latency)
        .build();
    let shared: Shared = Arc::new(Mutex::new(Observed {
        probes: vec![None, None, None],
        ..Observed::default()
    }));
    for (i, name) in NODES.iter().enumerate() {
        let shared = shared.clone();
        let seed = s.seed;
        let failover = s.failover;
        sim.host(*name, move || {
            let shared = shared.clone();
            async move {
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
                let cfg = node_config(i, seed, failover);
                replog::node::run::<SimNet>(
                    cfg,
                    listener,
                    CancellationToken::new(),
                    move |probe| {
                        shared.lock().unwrap().probes[i] = Some(probe);
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
                Ok(())
            }
        });
    }
    {
        let shared = shared.clone();
        let (appends, w, failover) = (s.appends, s.w, s.failover);
        sim.client("writer", async move {
            writer(shared.clone(), appends, w, failover).await;
            shared.lock().unwrap().done = true;
            Ok(())
        });
    }

    let mut faults = s.faults.into_iter().peekable();
    let mut disk_losses = 0;
    loop {
        let elapsed = sim.elapsed().as_millis() as u64;
        while faults.peek().is_some_and(|(at, _)| *at <= elapsed) {
            let (_, fault) = faults.next().unwrap();
            match fault {
                Fault::Partition(a, b) => sim.partition(a, b),
                Fault::Repair(a, b) => sim.repair(a, b),
                Fault::Crash(n) => {
                    sim.crash(n);
                    let i = NODES.iter().position(|x| *x == n).unwrap();
                    shared.lock().unwrap().probes[i] = None;
                    disk_losses += 1;
                }
                Fault::Restart(n) => sim.bounce(n),
            }
        }
        sim.step().unwrap();
        let allowed = s.disk_losses_allowed;
        assert!(
            disk_losses <= allowed,
            "scenario loses more disks than it allows for"
        );
        let mut o = shared.lock().unwrap();
        let masters: Vec<usize> = (0..NODES.len())
            .filter(|&i| o.probes[i].as_ref().is_some_and(|p| p.is_master()))
            .collect();
        o.masters.extend(masters.iter().copied());
        if o.timeline.last().map(|(_, m)| m) != Some(&masters) {
            o.timeline.push((elapsed, masters));
        }
        // Done once every fault has happened and the logs converged.
        if check(&o, disk_losses, s.failover) && faults.peek().is_none() {
            break;
        }
    }
    let observed = std::mem::take(&mut *shared.lock().unwrap());
    observed
}

/// Checks the invariants; returns true once the writer is done and every
/// node holds exactly the master's log.
fn check(o: &Observed, disk_losses: u32, failover: bool) -> bool {
    let mut logs = Vec::new();
    for (i, probe) in o.probes.iter().enumerate() {
        let Some(probe) = probe else {
            logs.push(None);
            continue;
        };
        let entries = probe.entries().unwrap();
        let mut seen = HashSet::new();
        let mut number = 0;
        for (k, e) in entries.iter().enumerate() {
            assert_eq!(
                e.seq,
                k as u64 + 1,
                "node {} shows a gap at {}",
                NODES[i],
                k + 1
            );
            // Messages are numbered without gaps; control entries not.
            if !e.is_control() {
                number += 1;
                assert_eq!(e.number, number, "node {} numbers {e:?}", NODES[i]);
            }
            assert!(
                e.is_marker() || seen.insert(e.message.clone()),
                "node {} shows {:?} twice",
                NODES[i],
                e.message
            );
        }
        logs.push(Some(entries));
    }
    // Total order. With a static master, nodes agree on every position
    // they both show. With failover a deposed master may hold a suffix of
    // its epoch that the new master never had (it is cut when it rejoins):
    // logs agree up to the last position where they hold the same epoch
    // (Raft's log matching).
    let present: Vec<&Vec<replog::entry::Entry>> = logs.iter().flatten().collect();
    for a in &present {
        for b in &present {
            let n = a.len().min(b.len());
            let n = if failover {
                (0..n)
                    .rev()
                    .find(|&k| a[k].epoch == b[k].epoch)
                    .map_or(0, |k| k + 1)
            } else {
                n
            };
            assert_eq!(a[..n], b[..n], "two nodes disagree on their common prefix");
        }
    }
    // Every acknowledged append is held by at least w nodes (fewer by the
    // number of disks lost), and always by the master, which counts in w.
    for ack in &o.acked {
        let holders = present
            .iter()
            .filter(|l| {
                // An answer names the message's number in its log.
                l.iter()
                    .find(|e| !e.is_control() && e.number == ack.seq)
                    .is_some_and(|e| e.message == ack.message.as_bytes())
            })
            .count() as u32;
        let needed = ack.w.saturating_sub(disk_losses).max(1);
        assert!(
            holders >= needed,
            "acknowledged {ack:?} is on {holders} node(s), needs {needed}"
        );
    }
    // Done: every node holds the same log.
    o.done && logs.iter().all(|l| l.is_some() && *l == logs[0])
}

/// Appends `n` messages one at a time with the real client library over
/// simulated TCP, each with its own key, retrying (with the same key) until
/// each is acknowledged.
async fn writer(shared: Shared, n: usize, w_of: fn(usize) -> u32, failover: bool) {
    let mut conn: Option<Client> = None;
    let mut i = 0;
    let mut next_node = 0;
    while i < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if conn.is_none() {
            // A static master is n1; with failover, whichever node says it
            // is master (tried in turn).
            let node = if failover {
                NODES[next_node % NODES.len()]
            } else {
                "n1"
            };
            next_node += 1;
            let addr = format!("{node}:{PORT}");
            let options = ConnectOptions::default();
            let connecting = Client::connect_over::<SimNet>(&addr, &options);
            conn = tokio::time::timeout(Duration::from_secs(2), connecting)
                .await
                .ok()
                .and_then(Result::ok)
                .filter(|c| !failover || c.welcome().role == replog::wire::NodeRole::Master);
            if conn.is_none() {
                continue;
            }
        }
        let client = conn.as_ref().unwrap();
        let message = format!("m{i}");
        let w = w_of(i);
        let opts = AppendOptions {
            w: WriteConcern::Nodes(w),
            key: Some(format!("key-{i}")),
            timeout: Some(Duration::from_millis(1500)),
            progress: None,
        };
        match tokio::time::timeout(Duration::from_secs(5), client.append(&message, &opts)).await {
            Ok(Ok(seq)) => {
                shared.lock().unwrap().acked.push(Acked { seq, message, w });
                i += 1;
            }
            Ok(Err(ClientError::Append(AppendError::Refused { .. }))) => {
                shared.lock().unwrap().refused += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Timed out, on a majority or not: in the log, retried with the
            // same key.
            Ok(Err(ClientError::Append(
                AppendError::TimedOut { .. }
                | AppendError::Uncommitted {
                    timed_out: true, ..
                },
            ))) => {}
            // Deposed, or stepping down: retried with the same key at the
            // master, wherever it is now.
            Ok(Err(ClientError::Append(
                AppendError::NotMaster { .. }
                | AppendError::ShuttingDown { .. }
                | AppendError::Uncommitted { .. },
            ))) if failover => conn = None,
            Ok(Err(ClientError::Append(other))) => panic!("unexpected answer {other:?}"),
            // The connection broke or hung: open another.
            _ => conn = None,
        }
    }
}

#[test]
fn partition_and_heal_a_secondary_seed_1() {
    let o = run(Scenario {
        seed: 1,
        appends: 120,
        w: |i| 1 + (i % 2) as u32,
        faults: vec![
            (500, Fault::Partition("n1", "n3")),
            (2500, Fault::Repair("n1", "n3")),
        ],
        max_latency: Duration::from_millis(5),
        disk_losses_allowed: 0,
        failover: false,
    });
    assert_eq!(o.acked.len(), 120);
    assert_eq!(o.refused, 0, "two of three nodes keep the quorum");
}

#[test]
fn master_cut_off_from_everyone_goes_read_only_then_recovers_seed_2() {
    let o = run(Scenario {
        seed: 2,
        appends: 120,
        w: |_| 1,
        faults: vec![
            (800, Fault::Partition("n1", "n2")),
            (800, Fault::Partition("n1", "n3")),
            (3000, Fault::Repair("n1", "n2")),
            (3000, Fault::Repair("n1", "n3")),
        ],
        max_latency: Duration::from_millis(5),
        disk_losses_allowed: 0,
        failover: false,
    });
    assert!(o.refused > 0, "the master must refuse appends while alone");
    assert_eq!(o.acked.len(), 120, "and accept them again after the heal");
}

#[test]
fn secondary_crashes_and_comes_back_empty_seed_3() {
    let o = run(Scenario {
        seed: 3,
        appends: 120,
        w: |i| 1 + (i % 3) as u32,
        faults: vec![(700, Fault::Crash("n3")), (1800, Fault::Restart("n3"))],
        max_latency: Duration::from_millis(5),
        disk_losses_allowed: 1,
        failover: false,
    });
    assert_eq!(o.acked.len(), 120);
}

#[test]
fn delayed_and_reordered_messages_seed_4() {
    let o = run(Scenario {
        seed: 4,
        appends: 100,
        w: |i| 1 + (i % 3) as u32,
        faults: vec![],
        max_latency: Duration::from_millis(80),
        disk_losses_allowed: 0,
        failover: false,
    });
    assert_eq!(o.acked.len(), 100);
}

#[test]
fn everything_at_once_seed_5() {
    let o = run(Scenario {
        seed: 5,
        appends: 150,
        w: |i| 1 + (i % 2) as u32,
        faults: vec![
            (300, Fault::Partition("n1", "n2")),
            (900, Fault::Crash("n3")),
            (1500, Fault::Repair("n1", "n2")),
            (2000, Fault::Restart("n3")),
            (2600, Fault::Partition("n1", "n3")),
            (3400, Fault::Repair("n1", "n3")),
        ],
        max_latency: Duration::from_millis(40),
        disk_losses_allowed: 1,
        failover: false,
    });
    assert_eq!(o.acked.len(), 150);
}

#[test]
fn master_partitioned_away_is_replaced_and_healing_converges_seed_6() {
    let o = run(Scenario {
        seed: 6,
        appends: 150,
        // Majority: never lost by the failover.
        w: |_| 2,
        faults: vec![
            (800, Fault::Partition("n1", "n2")),
            (800, Fault::Partition("n1", "n3")),
            (5000, Fault::Repair("n1", "n2")),
            (5000, Fault::Repair("n1", "n3")),
        ],
        max_latency: Duration::from_millis(5),
        disk_losses_allowed: 0,
        failover: true,
    });
    assert_eq!(o.acked.len(), 150, "the majority side took appends");
    assert!(o.masters.contains(&0), "n1 was master first");
    // Cut off, n1 stopped being master by itself (it hears no majority)
    // before the partition healed.
    let cut_off = o
        .timeline
        .iter()
        .any(|(at, m)| (800..5000).contains(at) && !m.contains(&0));
    assert!(cut_off, "n1 never stepped down: {:?}", o.timeline);
    assert!(
        o.masters.len() >= 2,
        "another node was elected while n1 was cut off: {:?}",
        o.masters
    );
}

#[test]
fn a_secondary_back_from_a_partition_does_not_depose_the_master_seed_7() {
    // A short burst of appends, then quiet: n3's log is as up to date as
    // anyone's while it is cut off, so only the live master's lease keeps
    // its votes from being granted.
    let o = run(Scenario {
        seed: 7,
        appends: 20,
        w: |_| 2,
        faults: vec![
            (3000, Fault::Partition("n3", "n1")),
            (3000, Fault::Partition("n3", "n2")),
            (8000, Fault::Repair("n3", "n1")),
            (8000, Fault::Repair("n3", "n2")),
            // Time to ask for votes after the heal, before the run ends.
            (12000, Fault::Repair("n3", "n1")),
        ],
        max_latency: Duration::from_millis(5),
        disk_losses_allowed: 0,
        failover: true,
    });
    assert_eq!(o.acked.len(), 20);
    // n3 asked for votes again and again while cut off; back, it is
    // refused by nodes that still hear their master (PreVote).
    assert_eq!(
        o.masters,
        HashSet::from([0]),
        "the master changed: {:?}",
        o.timeline
    );
}
