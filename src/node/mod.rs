//! The runtime around the replication core: one node's sockets, log and
//! timers.
//!
//! One task, the *node loop*, owns the core and is the only writer of the
//! log. By default it shares one thread with the node's connections, so
//! that a request reaches it without waking another thread; with
//! `--threads N` it gets a thread of its own, so that a write waiting on
//! the disk never holds one of tokio's workers (see the end of [`run`]).
//! Everything else talks to it through two bounded queues of `Input`s:
//! *control* (the replication links, the master's connection on a
//! secondary, the syncer) and *requests* (client connections). The loop
//! serves control first, so that queued client requests never delay a
//! heartbeat or an ack behind them (on one thread, the clients' tasks still
//! take their turns on it, each bounded); and a full queue makes its
//! senders wait, which stops them reading their sockets (back-pressure)
//! instead of growing memory. The
//! loop itself never waits on anyone: it offers answers to bounded outboxes
//! and a peer whose outbox is full is not reading, so its connection is
//! closed.
//!
//! - `shared`: what the tasks share: the loop's `Input`, `Shared`, the
//!   queues' bounds.
//! - `connection`: every accepted connection: the hello checked and the
//!   cluster key proved, then handed on: to `clients`, or on a secondary
//!   the master's replication connection served, or a candidate answered.
//! - `clients`: a client's connection: each request read as a `Request`
//!   and handed to its handler (appends, lists, digests, health,
//!   membership changes).
//! - `requests`: what those handlers do, whatever the front end: appends
//!   and membership changes handed to the loop, list pages and digests
//!   read from the log, under the connection's credits.
//! - `event_loop`: the node loop itself; `actions`: how it carries out
//!   each kind of the core's actions.
//! - `vote`: on a candidate, one task per voter asked.
//! - `metrics` and `metrics_page`: the Prometheus figures, and the page
//!   that serves them; `throttle`: log lines rate-limited.
//! - `link`: on the master, one task per secondary that dials it, keeps one
//!   connection open and dials again when the core says.
//! - `config`: the cluster list and the node's settings, validated.
//! - `syncer`: calls `fdatasync` off the loop; one sync covers every entry
//!   written while the previous one ran (group commit); it also makes
//!   segment rolls durable.
//! - `tail`: on the master, the newest entries written, sent to
//!   secondaries from memory.
//! - `log_lock`: the log behind its lock, with where it starts and ends
//!   published beside it.
//!
//! Reads (`list`) do not go through the loop: they take the log's read lock
//! on a blocking thread (`Shared::read_log`) and stop at the *visible*
//! sequence number the loop publishes.

mod actions;
mod clients;
mod compactor;
pub mod config;
mod connection;
mod event_loop;
mod groups;
mod http;
mod link;
mod log_lock;
mod log_metrics;
mod metrics;
mod requests;
mod shared;
mod syncer;
mod tail;
mod throttle;
mod vote;

use event_loop::{NodeLoop, SpawnLink, SpawnVote};
pub(crate) use shared::Shared;
use shared::{CONTROL_QUEUE, REQUEST_QUEUE};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn, Instrument};

use crate::entry::{Entry, Seq};
use crate::net::Net;
use crate::replication::keys::KeyWindow;
use crate::replication::role::{Action, Core, CoreConfig};
use crate::replication::storage::Durability;
use crate::replication::LogState;
use crate::storage::Log;
use config::{FsyncPolicy, NodeConfig};

/// The configuration entries of `log`, read: the membership the node acts
/// on is the newest (`--cluster` without any).
fn configs(log: &Log) -> anyhow::Result<Vec<(Seq, crate::replication::membership::Membership)>> {
    (log.configs().into_iter())
        .map(|(seq, text)| {
            crate::replication::membership::Membership::decode(&text)
                .map(|m| (seq, m))
                .map_err(|e| anyhow::anyhow!("the configuration entry at seq {seq}: {e}"))
        })
        .collect()
}

/// Whether `--cluster` may be acted on, or is ignored, given the cluster
/// id the data directory records and the configuration entries its log
/// holds: the list only seeds a new cluster, so once a change is made it
/// is ignored (said once), and before any change it must be the list the
/// cluster was started with, since every node acts on its own.
fn check_cluster_list(
    cfg: &NodeConfig,
    cluster: Option<u64>,
    configs: &[(Seq, crate::replication::membership::Membership)],
) -> anyhow::Result<()> {
    let Some(id) = cluster.filter(|_| cfg.join.is_none()) else {
        return Ok(());
    };
    if cfg.cluster.fingerprint() == id {
        return Ok(());
    }
    match configs.last() {
        None => Err(anyhow::anyhow!(
            "--cluster {} is not the list this node's cluster was started with (cluster id {id:016x}, recorded in its data directory's identity file), and no membership change has been made, so every node still acts on that list: start it with the same --cluster (and --master) as every other node, and change the members with replog member",
            cfg.cluster.list()
        )),
        Some((seq, _)) => {
            info!(node = %cfg.id, "--cluster {} is ignored: it only seeds a new cluster, and the members are those the configuration entry at seq {seq} records (see replog member list)", cfg.cluster.list());
            Ok(())
        }
    }
}

/// When the core counts an entry as stored: once synced under `--fsync
/// always` on disk, once written otherwise (a log in memory has nothing to
/// sync).
fn durability(cfg: &NodeConfig) -> Durability {
    match (&cfg.data_dir, cfg.fsync) {
        (Some(_), FsyncPolicy::Always) => Durability::Synced,
        _ => Durability::Written,
    }
}

/// Opens the log in `dir`, healing damage unless the configuration says
/// why not (then the damage is refused, with what to do about it).
fn open_log(cfg: &NodeConfig, dir: &std::path::Path) -> anyhow::Result<Log> {
    let refuses = cfg.refuses_to_heal();
    match crate::storage::heal::open(dir, cfg.segment_bytes, &cfg.id, refuses.is_none()) {
        Ok((log, _healed)) => Ok(log),
        Err(e) => match (crate::storage::damage::damage_of(&e), refuses) {
            (Some(_), Some(why)) => Err(anyhow::anyhow!(
                "cannot open the log in {}: {e}; the log will not be opened ({why}: no data is skipped silently). Restore this node's data directory from a replica{}",
                dir.display(),
                if cfg.on_damage == config::OnDamage::Refuse {
                    ", or start the node with --on-damage heal to set the damage aside and take the rest from the master"
                } else {
                    ""
                }
            )),
            _ => Err(anyhow::anyhow!(
                "cannot open the log in {}: {e}",
                dir.display()
            )),
        },
    }
}

/// Runs one node on `listener` until `shutdown` is cancelled, then answers
/// or fails what is in flight, syncs the log and returns.
///
/// `on_ready` is called once the listener is bound (it is, being passed in)
/// and the log is open: the moment to tell systemd `READY=1`. It is handed
/// a [`Probe`] through which tests can watch the node's log.
pub async fn run<N: Net>(
    cfg: NodeConfig,
    listener: N::Listener,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(Probe) + Send,
) -> anyhow::Result<()> {
    cfg.validate()?;
    // The node loop may run on a thread of its own (`--threads N`): should
    // this future be dropped instead of awaited, the node must still stop.
    let shutdown = shutdown.child_token();
    let _stop_when_dropped = shutdown.clone().drop_guard();
    // Every line this node logs, from any of its tasks, names it: several
    // nodes share one process under --dev and in tests.
    let span = tracing::info_span!("node", id = %cfg.id);
    let seed = cfg.seed.unwrap_or_else(|| rand::thread_rng().next_u64());
    let (mut log, identity, state) = open_storage(&cfg)?;
    let last = state.last;
    let (core, mut start) = start_core(&cfg, &mut log, state, seed)?;
    let view = core.view();
    info!(node = %cfg.id, role = ?view.role, last = last.seq, epoch = core.epoch(), "log open");

    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (requests_tx, requests_rx) = mpsc::channel(REQUEST_QUEUE);
    let (visible_tx, visible_rx) = watch::channel(last.seq);
    let (committed_tx, committed_rx) = watch::channel(0);
    let (role_tx, role_rx) = watch::channel(view);
    let tracker = TaskTracker::new();
    let sync_point = log.sync_point();
    // Readers near the end of the log are served from the tail, which
    // starts empty after what the log holds.
    let mut tail = tail::Tail::default();
    tail.restart(log.numbers());
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        log: log_lock::SharedLog::new(log),
        control: control_tx.clone(),
        requests: requests_tx,
        throttle: throttle::Throttle::default(),
        visible: visible_rx,
        committed: committed_rx,
        shutdown: shutdown.clone(),
        next_id: AtomicU64::new(1),
        role: role_rx,
        tracker: tracker.clone(),
        rounds: AtomicU64::new(0),
        metrics: Arc::new(metrics::Metrics::new(cfg.cluster.nodes.len())),
        reads_in_place: N::SIMULATED,
        cluster_id: AtomicU64::new(identity.cluster.unwrap_or(0)),
        members_from_log: std::sync::atomic::AtomicBool::new(false),
        tail: std::sync::Mutex::new(tail),
        logs: std::sync::RwLock::new(Arc::new(core.logs().clone())),
        floors: Default::default(),
    });

    let (sync_tx, syncer) = start_syncer(&cfg, sync_point.is_some(), &shared, &span);

    let (spawn_link, spawn_vote) = spawners::<N>(&shared, &tracker, &span);
    let mut node = NodeLoop::new(
        (shared.clone(), core, identity),
        (spawn_link, spawn_vote),
        (visible_tx, committed_tx, role_tx),
        (sync_tx, syncer),
    );
    node.run_actions(&mut start);
    tracker.spawn(compactor::run(shared.clone()).instrument(span.clone()));

    if let Some(addr) = cfg.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen for metrics on {addr} (--metrics-listen): {e}")
        })?;
        info!(node = %cfg.id, %addr, "serving metrics at http://{addr}/metrics");
        tracker.spawn(http::metrics_page::serve(listener, shared.clone()).instrument(span.clone()));
    }
    if let Some(addr) = cfg.http_listen {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen for HTTP on {addr} (--http-listen): {e}")
        })?;
        let scheme = if cfg.tls.is_some() { "https" } else { "http" };
        info!(node = %cfg.id, %addr, "serving the HTTP API at {scheme}://{addr}/");
        tracker.spawn(http::serve(listener, shared.clone()).instrument(span.clone()));
    }
    let acceptor = tokio::spawn(
        connection::accept_loop::<N>(listener, shared.clone()).instrument(span.clone()),
    );
    on_ready(Probe {
        shared: shared.clone(),
    });
    let finished = run_loop(node, control_rx, requests_rx, span).await;
    acceptor.abort();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(3), tracker.wait())
        .await
        .is_err()
    {
        warn!("some connections did not close within 3s of shutdown");
    }
    info!(node = %cfg.id, "stopped");
    finished
}

/// Opens the log and the node's identity, and reads from them what the
/// core starts from; refuses a cluster list that contradicts the log.
fn open_storage(
    cfg: &NodeConfig,
) -> anyhow::Result<(Log, crate::storage::identity::Identity, LogState)> {
    let mut log = match &cfg.data_dir {
        Some(dir) => open_log(cfg, dir)?,
        None => Log::memory(),
    };
    log.set_fault_file(cfg.fail_storage_while.clone());
    if matches!(cfg.fsync, FsyncPolicy::Always | FsyncPolicy::Batch) {
        // The syncer below makes rolls durable: none waits on the loop.
        log.defer_rolls(durability(cfg) == Durability::Synced);
    }
    let last = log.last();
    // Who the data directory belongs to, and whether this is a new
    // incarnation (an empty log where none was, or a log in memory).
    let empty = last.seq == 0 && log.base().seq == 0;
    let mut identity = match &cfg.data_dir {
        Some(dir) => crate::storage::identity::Identity::open(dir, &cfg.id, empty)
            .map_err(|e| anyhow::anyhow!("cannot start on {}: {e}", dir.display()))?,
        None => crate::storage::identity::Identity::in_memory(&cfg.id),
    };
    // A log of a release before cluster ids, with no change made: its
    // cluster was started with this --cluster list (every node's had to be
    // the same). After a change the lists may differ: no id is known.
    let configs = configs(&log)?;
    if identity.cluster.is_none() && !empty && cfg.join.is_none() && configs.is_empty() {
        identity.settle(cfg.cluster.fingerprint()).map_err(|e| {
            anyhow::anyhow!("cannot record the cluster id in the data directory: {e}")
        })?;
    }
    check_cluster_list(cfg, identity.cluster, &configs)?;
    if identity.learner {
        info!(node = %cfg.id, incarnation = format!("{:016x}", identity.incarnation), "a new incarnation: this node votes only once it holds everything committed (a learner)");
    }
    let state = LogState {
        epoch: log.epoch(),
        last,
        epochs: log.epochs(),
        keys: recent_keys(&log, cfg.dedup_window)?,
        vote: log.vote().map(str::to_string),
        committed: 0,
        base: log.base(),
        learner: identity.learner,
        configs,
        numbers: crate::replication::numbers::Numbers::known(log.numbers(), log.numbers_at_base()),
        catalog: log.catalog(),
        groups: crate::replication::groups::GroupState::known(log.groups(), log.groups_at_base()),
    };
    state.check().map_err(|e| {
        let dir = cfg.data_dir.as_ref().map(|d| d.display().to_string());
        anyhow::anyhow!(
            "cannot start on {}: {e}",
            dir.as_deref().unwrap_or("this log")
        )
    })?;
    Ok((log, identity, state))
}

/// Builds the core over `state`, and records the new epoch it starts in
/// before anything else happens: the actions left to carry out.
fn start_core(
    cfg: &NodeConfig,
    log: &mut Log,
    state: LogState,
    seed: u64,
) -> anyhow::Result<(Core, Vec<Action>)> {
    let (core, mut start) = Core::new(
        CoreConfig {
            id: cfg.id.clone(),
            max_logs: cfg.limits.max_logs,
            max_groups: cfg.limits.max_groups,
            // Joining, it knows no member: its log will say.
            nodes: match cfg.join {
                Some(_) => Vec::new(),
                None => cfg.cluster.nodes.clone(),
            },
            master: cfg.cluster.master.clone(),
            timing: cfg.timing,
            max_message_bytes: cfg.max_message_bytes,
            window: crate::replication::WINDOW,
            batch: crate::replication::BATCH,
            seed,
            durability: durability(cfg),
            replicate_delay: cfg.replicate_delay,
            fail_rate: cfg.fail_rate,
            authenticated: cfg.cluster_keys.is_some(),
            encrypted: cfg.tls.is_some(),
            failover: cfg.failover,
        },
        state,
        Instant::now().into_std(),
    );
    // A new epoch is recorded before any entry of it is written, so that
    // entries of an earlier run that never became durable can be told
    // apart from this run's; at start, failing to is failing to start.
    for action in &start {
        if let Action::RecordEpoch(epoch) = action {
            log.set_epoch(*epoch, None)
                .map_err(|e| anyhow::anyhow!("cannot record the new epoch: {e}"))?;
        }
    }
    start.retain(|a| !matches!(a, Action::RecordEpoch(_)));
    Ok((core, start))
}

/// Starts the syncer (`--fsync always` and `batch`, on disk): a thread of
/// its own that reports to the loop what became durable.
fn start_syncer(
    cfg: &NodeConfig,
    on_disk: bool,
    shared: &Arc<Shared>,
    span: &tracing::Span,
) -> (
    Option<Arc<syncer::SyncQueue>>,
    Option<tokio::task::JoinHandle<()>>,
) {
    match (on_disk, cfg.fsync) {
        (true, FsyncPolicy::Always | FsyncPolicy::Batch) => {
            let queue = Arc::new(syncer::SyncQueue::default());
            let gather = cfg.fsync == FsyncPolicy::Batch;
            let (queue2, inputs, fault, metrics, span) = (
                queue.clone(),
                shared.control.clone(),
                cfg.fail_storage_while.clone(),
                shared.metrics.clone(),
                span.clone(),
            );
            let task = tokio::task::spawn_blocking(move || {
                let _span = span.enter();
                syncer::run(queue2, inputs, gather, fault, metrics)
            });
            (Some(queue), Some(task))
        }
        _ => (None, None),
    }
}

/// How the node loop starts a link to a secondary and a vote request: as
/// tasks of the node, in its span.
fn spawners<N: Net>(
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    span: &tracing::Span,
) -> (SpawnLink, SpawnVote) {
    let spawn_link: SpawnLink = {
        let (shared, tracker, span) = (shared.clone(), tracker.clone(), span.clone());
        Box::new(move |peer, (id, addr), epoch, rx| {
            tracker.spawn(
                link::run::<N>(peer, id, addr, epoch, shared.clone(), rx).instrument(span.clone()),
            );
        })
    };
    let spawn_vote: SpawnVote = {
        let (shared, tracker, span) = (shared.clone(), tracker.clone(), span.clone());
        Box::new(move |peer, request| {
            tracker.spawn(vote::ask::<N>(shared.clone(), peer, request).instrument(span.clone()));
        })
    };
    (spawn_link, spawn_vote)
}

/// Runs the node loop until it stops.
async fn run_loop(
    mut node: NodeLoop,
    control_rx: mpsc::Receiver<shared::Input>,
    requests_rx: mpsc::Receiver<shared::Input>,
    span: tracing::Span,
) -> anyhow::Result<()> {
    // Where the node loop runs follows the runtime. On a current-thread
    // runtime (replogd's default, `--threads 1`, and a simulation's host)
    // it runs in place, beside the connections and links: handing a frame
    // to it or an answer from it is then a queue push, not a thread's
    // wake-up. A write that waits on a stalled disk stalls every task of
    // the node with it; they could do nothing useful meanwhile anyway, as
    // every request, ack and heartbeat goes through the loop, while reads
    // of the log (in place under a simulation) and fdatasync run on other
    // threads.
    //
    // On a runtime with workers (`--threads N`) the loop gets a thread of
    // its own: on a worker, a write that waits on the disk would hold up
    // every task queued behind it there too. It still uses the runtime's
    // timers and channels, and what it spawns runs on the workers.
    let runtime = tokio::runtime::Handle::current();
    let run = async move { node.run(control_rx, requests_rx).await }.instrument(span.clone());
    match runtime.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => {
            run.await;
            Ok(())
        }
        _ => match tokio::task::spawn_blocking(move || runtime.block_on(run)).await {
            Ok(()) => Ok(()),
            // A panic in the loop: the daemon must not go on without it.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(anyhow::anyhow!("the node loop did not finish: {e}")),
        },
    }
}

/// The dedup window as the log leaves it: the keys of its newest `window`
/// entries, read from the log (on every node: a secondary may become
/// master). Scanned without copying entries, so the memory it takes is the
/// window's own.
fn recent_keys(log: &Log, window: u64) -> anyhow::Result<KeyWindow> {
    let last = log.last().seq;
    // Nothing before the base is left to read (retention, a reset).
    let from = (last.saturating_sub(window.max(1)) + 1).max(log.base().seq + 1);
    let mut keys = KeyWindow::with_expected(window, from, last + 1 - from);
    log.scan(from, last, |seq, key, message| {
        keys.push(seq, key, message);
        true
    })
    .map_err(|e| anyhow::anyhow!("cannot read the log's request keys: {e}"))?;
    Ok(keys)
}

/// A read-only view of a running node, for tests and tools.
#[derive(Clone)]
pub struct Probe {
    shared: Arc<Shared>,
}

impl Probe {
    /// Last sequence number visible to readers.
    pub fn visible(&self) -> Seq {
        *self.shared.visible.borrow()
    }

    /// Whether the node is master now.
    pub fn is_master(&self) -> bool {
        self.shared.role.borrow().role == crate::wire::NodeRole::Master
    }

    /// Rounds the node loop has completed; an idle loop still completes one
    /// a second, so a number that stops growing means the loop is stuck.
    pub fn rounds(&self) -> u64 {
        self.shared.rounds.load(Ordering::Relaxed)
    }

    /// Every visible entry, in order (epoch markers included: they hold
    /// their sequence numbers).
    pub fn entries(&self) -> std::io::Result<Vec<Entry>> {
        let visible = self.visible();
        let log = self.shared.log.read();
        let mut out = Vec::new();
        while (out.len() as u64) < visible {
            let next = out.len() as u64 + 1;
            let batch = log.read(next, visible, 10_000, usize::MAX)?;
            if batch.is_empty() {
                break;
            }
            out.extend(batch);
        }
        Ok(out)
    }
}
