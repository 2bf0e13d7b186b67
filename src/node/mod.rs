//! The runtime around the replication core: one node's sockets, log and
//! timers.
//!
//! One task, the *node loop*, owns the core and is the only writer of the
//! log. Everything else talks to it through two bounded queues of `Input`s:
//! *control* (the replication links, the master's connection on a
//! secondary, the syncer) and *requests* (client connections). The loop
//! serves control first, so no amount of client traffic delays a heartbeat
//! or an ack; and a full queue makes its senders wait, which stops them
//! reading their sockets (back-pressure) instead of growing memory. The
//! loop itself never waits on anyone: it offers answers to bounded outboxes
//! and a peer whose outbox is full is not reading, so its connection is
//! closed.
//!
//! - `connection`: every accepted connection (clients, and on a secondary
//!   the master's replication connection); where a frame is decoded.
//! - `link`: on the master, one task per secondary that dials it, keeps one
//!   connection open and redials with backoff.
//! - `syncer`: calls `fdatasync` off the loop; one sync covers every entry
//!   written while the previous one ran (group commit).
//!
//! Reads (`list`) do not go through the loop: they take the log's read lock
//! and stop at the *visible* sequence number the loop publishes.

mod connection;
mod link;
mod syncer;
mod throttle;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::RngCore;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn, Instrument};

use crate::config::{FsyncPolicy, NodeConfig};
use crate::entry::{Entry, Seq};
use crate::net::Net;
use crate::replication::keys::KeyWindow;
use crate::replication::master::{LogState, Master, MasterAction, MasterConfig, MasterEvent};
use crate::replication::secondary::{Secondary, SecondaryAction, SecondaryConfig, SecondaryEvent};
use crate::replication::{AppendRequest, ClientId, ConnId};
use crate::storage::Log;
use crate::wire::{Frame, HealthReport, NodeHealth, NodeRole, Welcome};

/// How often the core is ticked: the resolution of every deadline.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Most entries sent to one secondary and not yet acknowledged.
const WINDOW: u64 = 8192;

/// Most entries in one replication frame.
const BATCH: u64 = 512;

/// Most inputs handled before the loop writes, syncs and sends: the batch
/// that turns many concurrent appends into one write and one frame.
const MAX_INPUTS_PER_ROUND: usize = 1024;

pub(crate) use crate::net::Outbox;
pub(crate) use connection::frame_name as frame_kind;

/// Inputs waiting for the loop on the control queue (links, syncer, the
/// master's connection on a secondary).
const CONTROL_QUEUE: usize = 4096;

/// Inputs waiting for the loop on the requests queue (client connections).
const REQUEST_QUEUE: usize = 4096;

/// Commands queued for one link. The core's window bounds what it sends to
/// a secondary, so this fills only if the link task is stuck.
const LINK_QUEUE: usize = 1024;

/// What the node loop is told.
#[derive(Debug)]
pub(crate) enum Input {
    /// A client connection opened; answers go to `tx`.
    ClientOpened { client: ClientId, tx: Outbox },
    /// A client connection closed.
    ClientClosed { client: ClientId },
    /// A client asks for an append (master only).
    Append(AppendRequest),
    /// A client asks for the health report.
    Health { tx: oneshot::Sender<HealthReport> },
    /// Something a link reported (master only).
    Link(MasterEvent),
    /// The master opened a replication connection (secondary only); the
    /// welcome and everything after it goes to `tx`.
    MasterOpened { conn: ConnId, tx: Outbox },
    /// Something the master sent (secondary only).
    FromMaster(SecondaryEvent),
    /// The syncer made everything up to `upto` durable. `gen` is the log
    /// generation the write belonged to: a truncation starts a new one, and
    /// a report from before it says nothing about what was written after.
    Stored { gen: u64, upto: Seq },
    /// A write failed (a full disk, say): the log holds nothing after
    /// `after`. The log still works; what was not written does not exist.
    Unwritten { after: Seq, reason: String },
    /// The syncer could not make the log durable.
    SyncFailed { reason: String },
    /// The log failed in a way that cannot be undone.
    StorageFailed(String),
}

/// What every task of a node shares.
pub(crate) struct Shared {
    /// The configuration.
    pub cfg: NodeConfig,
    /// The log: written by the loop only, read by `list` handlers.
    pub log: RwLock<Log>,
    /// To the node loop, served first: replication and storage.
    pub control: mpsc::Sender<Input>,
    /// To the node loop: client requests.
    pub requests: mpsc::Sender<Input>,
    /// Rate limit of repeated warnings.
    pub throttle: throttle::Throttle,
    /// Last sequence number visible to readers.
    pub visible: watch::Receiver<Seq>,
    /// Cancelled when the node shuts down.
    pub shutdown: CancellationToken,
    /// Connection and client ids.
    pub next_id: AtomicU64,
    /// The master's epoch (0 on a secondary).
    pub epoch: u64,
    /// Connection tasks, waited for at shutdown.
    pub tracker: TaskTracker,
    /// Rounds the node loop has completed: proof of life for the watchdog.
    pub rounds: AtomicU64,
}

impl Shared {
    /// A fresh id for a connection or client.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
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
    cfg.validate().map_err(anyhow::Error::msg)?;
    // Every line this node logs, from any of its tasks, names it: several
    // nodes share one process under --dev and in tests.
    let span = tracing::info_span!("node", id = %cfg.id);
    let mut log = match &cfg.data_dir {
        Some(dir) => Log::open(dir, cfg.segment_bytes)
            .map_err(|e| anyhow::anyhow!("cannot open the log in {}: {e}", dir.display()))?,
        None => Log::memory(),
    };
    log.set_fault_file(cfg.fail_storage_while.clone());
    let seed = cfg.seed.unwrap_or_else(|| rand::thread_rng().next_u64());
    let last = log.last();
    let epoch = if cfg.is_master() {
        // A new epoch per start, recorded before any entry of it is written,
        // so that entries of an earlier run that never became durable can be
        // told apart from this run's.
        let epoch = log.epoch() + 1;
        log.set_epoch(epoch)
            .map_err(|e| anyhow::anyhow!("cannot record the new epoch: {e}"))?;
        epoch
    } else {
        0
    };
    info!(node = %cfg.id, role = if cfg.is_master() { "master" } else { "secondary" },
          last = last.seq, epoch, "log open");

    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (requests_tx, requests_rx) = mpsc::channel(REQUEST_QUEUE);
    let (visible_tx, visible_rx) = watch::channel(last.seq);
    let tracker = TaskTracker::new();
    let role = if cfg.is_master() {
        let core = Master::new(
            MasterConfig {
                me: (cfg.id.clone(), cfg.cluster.master_addr().to_string()),
                secondaries: cfg.cluster.secondaries(),
                timing: cfg.timing,
                max_message_bytes: cfg.max_message_bytes,
                window: WINDOW,
                batch: BATCH,
                seed,
                stored_means_synced: cfg.fsync == FsyncPolicy::Always,
            },
            LogState {
                epoch,
                last,
                epochs: log.epochs(),
                keys: recent_keys(&log, cfg.dedup_window)?,
            },
            Instant::now().into_std(),
        );
        RoleState::Master {
            core: Box::new(core),
            links: Vec::new(),
        }
    } else {
        let core = Secondary::new(
            SecondaryConfig {
                replicate_delay: cfg.replicate_delay,
                fail_rate: cfg.fail_rate,
                seed,
                stored_means_synced: cfg.fsync == FsyncPolicy::Always,
            },
            last.seq,
            recent_keys(&log, cfg.dedup_window)?,
        );
        RoleState::Secondary {
            core: Box::new(core),
            master: None,
        }
    };
    let sync_point = log.sync_point();
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        log: RwLock::new(log),
        control: control_tx.clone(),
        requests: requests_tx,
        throttle: throttle::Throttle::default(),
        visible: visible_rx,
        shutdown: shutdown.clone(),
        next_id: AtomicU64::new(1),
        epoch,
        tracker: tracker.clone(),
        rounds: AtomicU64::new(0),
    });

    let (sync_tx, syncer) = match (sync_point, cfg.fsync) {
        (Some(_), FsyncPolicy::Always | FsyncPolicy::Batch) => {
            let queue = Arc::new(syncer::SyncQueue::default());
            let report = cfg.fsync == FsyncPolicy::Always;
            let task = tokio::spawn(
                syncer::run(
                    queue.clone(),
                    control_tx.clone(),
                    report,
                    cfg.fail_storage_while.clone(),
                )
                .instrument(span.clone()),
            );
            (Some(queue), Some(task))
        }
        _ => (None, None),
    };

    let mut node = NodeLoop {
        shared: shared.clone(),
        role,
        clients: HashMap::new(),
        visible_tx,
        sync_tx,
        syncer,
        log_gen: 0,
        next_tick: Instant::now().into_std(),
        fsync: cfg.fsync,
        pending: Vec::new(),
        actions_m: Vec::new(),
        actions_s: Vec::new(),
        requeue: VecDeque::new(),
    };
    if let RoleState::Master { links, .. } = &mut node.role {
        for (peer, (id, addr)) in cfg.cluster.secondaries().into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(LINK_QUEUE);
            links.push(tx);
            tracker.spawn(
                link::run::<N>(peer, id, addr, shared.clone(), rx, seed ^ peer as u64)
                    .instrument(span.clone()),
            );
        }
    }

    let acceptor = tokio::spawn(
        connection::accept_loop::<N>(listener, shared.clone()).instrument(span.clone()),
    );
    on_ready(Probe {
        shared: shared.clone(),
    });
    node.run(control_rx, requests_rx)
        .instrument(span.clone())
        .await;
    acceptor.abort();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(3), tracker.wait())
        .await
        .is_err()
    {
        warn!("some connections did not close within 3s of shutdown");
    }
    info!(node = %cfg.id, "stopped");
    Ok(())
}

/// The dedup window as the log leaves it: the keys of its newest `window`
/// entries, read from the log (on every node: a secondary may become
/// master). Read page by page, so the memory it takes is the window's own.
fn recent_keys(log: &Log, window: u64) -> anyhow::Result<KeyWindow> {
    let last = log.last().seq;
    let from = last.saturating_sub(window.max(1)) + 1;
    let mut keys = KeyWindow::with_expected(window, from, last + 1 - from);
    let mut next = from;
    while next <= last {
        let page = log
            .read(next, last, 1000, 1 << 20)
            .map_err(|e| anyhow::anyhow!("cannot read the log's request keys: {e}"))?;
        let Some(end) = page.last().map(|e| e.seq) else {
            break;
        };
        for e in &page {
            keys.push(e.seq, e.key.as_deref());
        }
        next = end + 1;
    }
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

    /// Rounds the node loop has completed; an idle loop still completes one
    /// a second, so a number that stops growing means the loop is stuck.
    pub fn rounds(&self) -> u64 {
        self.shared.rounds.load(Ordering::Relaxed)
    }

    /// Every visible entry, in order.
    pub fn entries(&self) -> std::io::Result<Vec<Entry>> {
        let visible = self.visible();
        let log = self.shared.log.read().expect("log lock");
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

/// The core of this node and the channels only the loop uses.
enum RoleState {
    Master {
        /// Boxed: the master's core is much larger than the secondary's.
        core: Box<Master>,
        /// One command channel per secondary link.
        links: Vec<mpsc::Sender<link::LinkCmd>>,
    },
    Secondary {
        /// Boxed, like the master's.
        core: Box<Secondary>,
        /// The master's current replication connection.
        master: Option<(ConnId, Outbox)>,
    },
}

struct NodeLoop {
    shared: Arc<Shared>,
    role: RoleState,
    /// Where each client's answers go.
    clients: HashMap<ClientId, Outbox>,
    /// Publishes the visible sequence number to readers.
    visible_tx: watch::Sender<Seq>,
    /// To the syncer, when the log has something to sync.
    sync_tx: Option<Arc<syncer::SyncQueue>>,
    /// The syncer task, awaited at shutdown so that no result is lost.
    syncer: Option<tokio::task::JoinHandle<()>>,
    /// Bumped by every truncation; see [`Input::Stored`].
    log_gen: u64,
    /// When the core next has work for a tick (its `poll_timeout`, at most
    /// `MAX_SLEEP` away).
    next_tick: std::time::Instant,
    /// The fsync policy.
    fsync: FsyncPolicy,
    /// Entries assigned this round and not yet written (master).
    pending: Vec<Entry>,
    /// Scratch action buffers, reused.
    actions_m: Vec<MasterAction>,
    actions_s: Vec<SecondaryAction>,
    /// Inputs the loop generated for itself (stored without a syncer).
    requeue: VecDeque<Input>,
}

impl NodeLoop {
    async fn run(
        &mut self,
        mut control: mpsc::Receiver<Input>,
        mut requests: mpsc::Receiver<Input>,
    ) {
        let shutdown = self.shared.shutdown.clone();
        loop {
            // Sleep until an input comes or the core's next deadline.
            let wake = Instant::from_std(self.next_tick);
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(input) = control.recv() => Some(input),
                Some(input) = requests.recv() => Some(input),
                _ = tokio::time::sleep_until(wake) => None,
            };
            let now = Instant::now().into_std();
            if let Some(input) = first {
                self.handle(now, input);
            }
            // Control first, then requests, up to the round's size.
            let mut n = 1;
            while n < MAX_INPUTS_PER_ROUND {
                match control.try_recv().or_else(|_| requests.try_recv()) {
                    Ok(input) => self.handle(now, input),
                    Err(_) => break,
                }
                n += 1;
            }
            // Inputs win the select above; under steady load the sleep
            // would never be taken, and timeouts, heartbeats and silence
            // detection with it. Tick here whenever the deadline is due.
            if now >= self.next_tick {
                self.tick(now);
            }
            self.end_round(now);
            self.next_tick = self.poll_timeout(now);
            self.shared.rounds.fetch_add(1, Ordering::Relaxed);
        }
        drop(requests);
        self.stop(control).await;
    }

    fn handle(&mut self, now: std::time::Instant, input: Input) {
        self.requeue.push_back(input);
        while let Some(input) = self.requeue.pop_front() {
            self.handle_one(now, input);
        }
    }

    fn handle_one(&mut self, now: std::time::Instant, input: Input) {
        match input {
            Input::ClientOpened { client, tx } => {
                self.clients.insert(client, tx);
            }
            Input::ClientClosed { client } => {
                self.clients.remove(&client);
            }
            Input::Health { tx } => {
                let _ = tx.send(self.health(now));
            }
            Input::Append(request) => self.master_step(now, MasterEvent::Append(request)),
            Input::Link(event) => self.master_step(now, event),
            Input::MasterOpened { conn, tx } => {
                if let RoleState::Secondary { core, master } = &mut self.role {
                    let log = self.shared.log.read().expect("log lock");
                    let welcome = Welcome {
                        node: self.shared.cfg.id.clone(),
                        role: NodeRole::Secondary,
                        master_addr: self.shared.cfg.cluster.master_addr().to_string(),
                        last: log.last(),
                        stored: core.stored(),
                        max_message_bytes: self.shared.cfg.max_message_bytes as u64,
                    };
                    drop(log);
                    if tx.offer(Frame::Welcome(welcome)) {
                        *master = Some((conn, tx));
                        self.secondary_step(now, SecondaryEvent::MasterConnected { conn });
                    }
                }
            }
            Input::FromMaster(event) => {
                if let SecondaryEvent::MasterDisconnected { conn } = &event {
                    if let RoleState::Secondary { master, .. } = &mut self.role {
                        if master.as_ref().is_some_and(|(c, _)| c == conn) {
                            *master = None;
                        }
                    }
                }
                self.secondary_step(now, event)
            }
            Input::Stored { gen, upto } => {
                if gen == self.log_gen {
                    self.stored(now, upto)
                }
            }
            Input::StorageFailed(reason) => self.storage_failed(now, reason),
            Input::Unwritten { after, reason } => self.unwritten(now, after, reason),
            Input::SyncFailed { reason } => self.sync_failed(now, reason),
        }
    }

    /// When the next tick is due: the core's next deadline, never in the
    /// past (a deadline that a tick did not clear must not spin the loop),
    /// and never more than `MAX_SLEEP` away, so that an idle loop still
    /// completes rounds (the watchdog counts them).
    fn poll_timeout(&self, now: std::time::Instant) -> std::time::Instant {
        let core = match &self.role {
            RoleState::Master { core, .. } => core.poll_timeout(now),
            RoleState::Secondary { core, .. } => core.poll_timeout(),
        };
        let soonest = now + Duration::from_millis(1);
        core.unwrap_or(now + MAX_SLEEP)
            .clamp(soonest, now + MAX_SLEEP)
    }

    fn tick(&mut self, now: std::time::Instant) {
        match &self.role {
            RoleState::Master { .. } => self.master_step(now, MasterEvent::Tick),
            RoleState::Secondary { .. } => self.secondary_step(now, SecondaryEvent::Tick),
        }
    }

    fn stored(&mut self, now: std::time::Instant, upto: Seq) {
        match &self.role {
            RoleState::Master { .. } => self.master_step(now, MasterEvent::Stored { upto }),
            RoleState::Secondary { .. } => {
                self.secondary_step(now, SecondaryEvent::Stored { upto })
            }
        }
    }

    fn storage_failed(&mut self, now: std::time::Instant, reason: String) {
        error!(node = %self.shared.cfg.id, %reason, "THE LOG FAILED: no further entry will be acknowledged by this node; fix the disk and restart it");
        let reason = format!("node {} cannot store entries: {reason}", self.shared.cfg.id);
        match &self.role {
            RoleState::Master { .. } => {
                self.master_step(now, MasterEvent::StorageFailed { reason })
            }
            RoleState::Secondary { .. } => {
                self.secondary_step(now, SecondaryEvent::StorageFailed { reason })
            }
        }
    }

    /// A write failed but the log works: the core forgets what was not
    /// written, and the next append simply tries again, so the node resumes
    /// by itself once the disk has room. One line per interval.
    fn unwritten(&mut self, now: std::time::Instant, after: Seq, reason: String) {
        // Entries assigned but not yet written are gone too: the core
        // forgets everything after `after`, and so must the write queue.
        self.pending.retain(|e| e.seq <= after);
        if let Some(more) = self.shared.throttle.allow("unwritten") {
            error!(node = %self.shared.cfg.id, %reason, suppressed = more,
                   "cannot store entries: nothing is acknowledged until a write succeeds; retried at every append (or resend)");
        }
        let reason = format!("node {} cannot store entries: {reason}", self.shared.cfg.id);
        match &self.role {
            RoleState::Master { .. } => {
                self.master_step(now, MasterEvent::Unwritten { after, reason })
            }
            RoleState::Secondary { .. } => {
                self.secondary_step(now, SecondaryEvent::Unwritten { after, reason })
            }
        }
    }

    /// A sync failed: said (once per interval), and handed to the core,
    /// which decides what it means under the fsync policy (a cut back to
    /// what is durable under `always`).
    fn sync_failed(&mut self, now: std::time::Instant, reason: String) {
        if let Some(more) = self.shared.throttle.allow("sync-failed") {
            error!(node = %self.shared.cfg.id, %reason, suppressed = more,
                   "syncing the log failed");
        }
        let reason = format!("node {} cannot store entries: {reason}", self.shared.cfg.id);
        match &self.role {
            RoleState::Master { .. } => self.master_step(now, MasterEvent::SyncFailed { reason }),
            RoleState::Secondary { .. } => {
                self.secondary_step(now, SecondaryEvent::SyncFailed { reason })
            }
        }
    }

    /// Cuts the log after `after`. The log is cut and the visible position
    /// lowered under one write lock, so a reader never sees one without the
    /// other (`truncate_after` syncs the cut itself); and a new log
    /// generation starts, since syncs reported for writes from before the
    /// cut say nothing about what is written after it.
    fn cut_log(&mut self, after: Seq) -> std::io::Result<()> {
        let mut log = self.shared.log.write().expect("log lock");
        let result = log.truncate_after(after);
        self.visible_tx.send_if_modified(|v| {
            let changed = *v > after;
            *v = (*v).min(after);
            changed
        });
        drop(log);
        self.log_gen += 1;
        result
    }

    /// Writes what was assigned this round, hands it to the syncer (or
    /// reports it stored at once when there is nothing to wait for).
    fn write_pending(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let upto = entries.last().expect("not empty").seq;
        // One lock for the write and for the file the sync must cover.
        let written = {
            let mut log = self.shared.log.write().expect("log lock");
            log.append(&entries).map(|()| log.sync_point())
        };
        let point = match written {
            Ok(point) => point,
            Err(e) if crate::storage::disk::is_not_durable(&e) => {
                // Written, but a sync failed on the way (a segment roll).
                // Under `always` that is a failed sync: cut back to what is
                // durable. Otherwise the entries count once written.
                self.requeue.push_back(Input::SyncFailed {
                    reason: format!("{e}"),
                });
                if self.fsync != FsyncPolicy::Always {
                    self.requeue.push_back(Input::Stored {
                        gen: self.log_gen,
                        upto,
                    });
                }
                return;
            }
            Err(e) => {
                // Whatever the failed write left is cut by the log itself:
                // it holds exactly what it says.
                let after = self.shared.log.read().expect("log lock").last().seq;
                self.requeue.push_back(Input::Unwritten {
                    after,
                    reason: format!("writing the log failed: {e}"),
                });
                return;
            }
        };
        if let (Some(tx), Some(point)) = (&self.sync_tx, point) {
            tx.push(self.log_gen, upto, point);
            if self.fsync == FsyncPolicy::Always {
                return; // the syncer reports Stored
            }
        }
        self.requeue.push_back(Input::Stored {
            gen: self.log_gen,
            upto,
        });
    }

    fn master_step(&mut self, now: std::time::Instant, event: MasterEvent) {
        let RoleState::Master { core, .. } = &mut self.role else {
            return;
        };
        let mut actions = std::mem::take(&mut self.actions_m);
        core.step(now, event, &mut actions);
        self.run_master_actions(&mut actions);
        self.actions_m = actions;
    }

    fn run_master_actions(&mut self, actions: &mut Vec<MasterAction>) {
        for action in actions.drain(..) {
            match action {
                MasterAction::Persist(entry) => self.pending.push(entry),
                MasterAction::SendEntries {
                    peer,
                    conn,
                    from,
                    to,
                } => {
                    // Entries are read from the log: write this round's first.
                    let pending = std::mem::take(&mut self.pending);
                    self.write_pending(pending);
                    self.send_entries(peer, conn, from, to);
                }
                MasterAction::Send { peer, conn, frame } => {
                    self.to_link(peer, link::LinkCmd::Send(conn, frame));
                }
                MasterAction::Diverged { peer, conn, reason } => {
                    error!(peer, "{reason}");
                    self.to_link(peer, link::LinkCmd::Reconnect(conn));
                }
                MasterAction::CutLog { after } => {
                    warn!(node = %self.shared.cfg.id, after, "cutting the log back to what is durable");
                    self.pending.retain(|e| e.seq <= after);
                    if let Err(e) = self.cut_log(after) {
                        self.requeue.push_back(Input::StorageFailed(format!(
                            "cutting the log back to what is durable failed: {e}"
                        )));
                    }
                }
                MasterAction::Reconnect { peer, conn } => {
                    warn!(node = %self.shared.cfg.id, peer, "secondary silent past --unhealthy-after; reconnecting");
                    self.to_link(peer, link::LinkCmd::Reconnect(conn));
                }
                MasterAction::Reply {
                    client,
                    req,
                    result,
                } => {
                    if let Some(tx) = self.clients.get(&client) {
                        let frame = match result {
                            Ok(seq) => Frame::Appended { req, seq },
                            Err(error) => Frame::AppendFailed { req, error },
                        };
                        tx.offer(frame);
                    }
                }
            }
        }
    }

    /// Hands a command to a link without waiting. The core's window bounds
    /// what is sent to a secondary, so a full queue is a stuck link task:
    /// said loudly, and the frame is dropped (the core resends after the
    /// link reconnects).
    fn to_link(&self, peer: usize, cmd: link::LinkCmd) {
        if let RoleState::Master { links, .. } = &self.role {
            if let Err(mpsc::error::TrySendError::Full(_)) = links[peer].try_send(cmd) {
                if let Some(more) = self.shared.throttle.allow("link-queue") {
                    error!(
                        peer,
                        suppressed = more,
                        "the link to a secondary is not taking commands; dropping one"
                    );
                }
            }
        }
    }

    fn send_entries(&mut self, peer: usize, conn: ConnId, from: Seq, to: Seq) {
        if !matches!(self.role, RoleState::Master { .. }) {
            return;
        }
        let max_bytes = self.shared.cfg.max_message_bytes;
        let mut next = from;
        while next <= to {
            let read =
                self.shared
                    .log
                    .read()
                    .expect("log lock")
                    .read(next, to, BATCH as usize, max_bytes);
            match read {
                Ok(entries) if !entries.is_empty() => {
                    next = entries.last().expect("not empty").seq + 1;
                    self.to_link(peer, link::LinkCmd::Send(conn, Frame::Entries { entries }));
                }
                Ok(_) => break,
                Err(e) => {
                    self.requeue.push_back(Input::StorageFailed(format!(
                        "reading the log to replicate failed: {e}"
                    )));
                    break;
                }
            }
        }
    }

    fn secondary_step(&mut self, now: std::time::Instant, event: SecondaryEvent) {
        let RoleState::Secondary { core, .. } = &mut self.role else {
            return;
        };
        let mut actions = std::mem::take(&mut self.actions_s);
        core.step(now, event, &mut actions);
        for action in actions.drain(..) {
            match action {
                SecondaryAction::Persist(entries) => self.write_pending(entries),
                SecondaryAction::Truncate { after } => {
                    warn!(node = %self.shared.cfg.id, after, "cutting entries the master never stored (or, after a failed sync, not yet durable here)");
                    if let Err(e) = self.cut_log(after) {
                        self.requeue.push_back(Input::StorageFailed(format!(
                            "cutting the log failed: {e}"
                        )));
                    }
                }
                SecondaryAction::Send { conn, frame } => {
                    if let RoleState::Secondary {
                        master: Some((c, tx)),
                        ..
                    } = &self.role
                    {
                        if *c == conn {
                            tx.offer(frame);
                        }
                    }
                }
            }
        }
        self.actions_s = actions;
    }

    /// After a round of inputs: write, let the core send what secondaries
    /// miss, publish what readers may see.
    fn end_round(&mut self, now: std::time::Instant) {
        let pending = std::mem::take(&mut self.pending);
        self.write_pending(pending);
        while let Some(input) = self.requeue.pop_front() {
            self.handle_one(now, input);
        }
        if let RoleState::Master { core, .. } = &mut self.role {
            let mut actions = std::mem::take(&mut self.actions_m);
            core.flush(now, &mut actions);
            self.run_master_actions(&mut actions);
            self.actions_m = actions;
        }
        while let Some(input) = self.requeue.pop_front() {
            self.handle_one(now, input);
        }
        let visible = match &self.role {
            RoleState::Master { core, .. } => core.stored(),
            RoleState::Secondary { core, .. } => core.stored(),
        };
        self.visible_tx.send_if_modified(|v| {
            let changed = *v != visible;
            *v = visible;
            changed
        });
    }

    fn health(&self, now: std::time::Instant) -> HealthReport {
        let cfg = &self.shared.cfg;
        match &self.role {
            RoleState::Master { core, .. } => {
                let reachable = core.reachable(now);
                HealthReport {
                    node: cfg.id.clone(),
                    role: NodeRole::Master,
                    epoch: core.epoch(),
                    stored: core.stored(),
                    master_addr: cfg.cluster.master_addr().to_string(),
                    read_only: core.read_only(now),
                    reachable,
                    needed: core.needed(),
                    nodes: core.health(now),
                    authenticated: cfg.cluster_keys.is_some(),
                    encrypted: cfg.tls.is_some(),
                }
            }
            RoleState::Secondary { core, .. } => HealthReport {
                node: cfg.id.clone(),
                role: NodeRole::Secondary,
                // The epoch of the newest entry this secondary holds.
                epoch: self.shared.log.read().expect("log lock").last().epoch,
                stored: core.stored(),
                master_addr: cfg.cluster.master_addr().to_string(),
                read_only: false,
                reachable: 0,
                needed: crate::replication::quorum::majority(cfg.cluster.nodes.len()),
                nodes: vec![NodeHealth {
                    id: cfg.id.clone(),
                    addr: cfg.cluster.addr(&cfg.id).unwrap_or_default().to_string(),
                    role: NodeRole::Secondary,
                    status: core.status(),
                    acked: core.stored(),
                    lag: core.lag(),
                    last_heard_ms: None,
                }],
                authenticated: cfg.cluster_keys.is_some(),
                encrypted: cfg.tls.is_some(),
            },
        }
    }

    /// Shutdown: stop taking appends, fail what still waits, make the log
    /// durable.
    async fn stop(&mut self, mut rx: mpsc::Receiver<Input>) {
        let now = Instant::now().into_std();
        let pending = std::mem::take(&mut self.pending);
        self.write_pending(pending);
        // Let the syncer finish, and take what it reported: a failed sync
        // must be known before anything is declared durable (Linux reports
        // a writeback error once, so the final sync below may not see it).
        if let Some(queue) = self.sync_tx.take() {
            queue.close();
        }
        if let Some(task) = self.syncer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        rx.close();
        while let Ok(input) = rx.try_recv() {
            if matches!(
                input,
                Input::Stored { .. }
                    | Input::StorageFailed(_)
                    | Input::SyncFailed { .. }
                    | Input::Unwritten { .. }
            ) {
                self.handle(now, input);
            }
        }
        while let Some(input) = self.requeue.pop_front() {
            self.handle_one(now, input);
        }
        let point = self.shared.log.read().expect("log lock").sync_point();
        let synced = match point {
            Some(point) => match tokio::task::spawn_blocking(move || point.sync_data()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("final sync of the log failed: {e}")),
                Err(e) => Err(format!("final sync of the log panicked: {e}")),
            },
            None => Ok(()),
        };
        match synced {
            Ok(()) => {
                // Everything written is durable now: answer whoever that
                // satisfies (a broken core ignores this).
                if let RoleState::Master { core, .. } = &self.role {
                    let upto = core.last();
                    self.master_step(now, MasterEvent::Stored { upto });
                }
            }
            Err(reason) => self.storage_failed(now, reason),
        }
        if let RoleState::Master { core, .. } = &mut self.role {
            let mut actions = Vec::new();
            core.shutdown(&mut actions);
            self.run_master_actions(&mut actions);
        }
        // Dropping the outboxes lets every writer finish and close.
        self.clients.clear();
        match &mut self.role {
            RoleState::Master { links, .. } => links.clear(),
            RoleState::Secondary { master, .. } => *master = None,
        }
    }
}

/// Milliseconds from a client's timeout field.
pub(crate) fn timeout_from_ms(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}
