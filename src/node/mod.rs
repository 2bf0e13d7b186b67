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
use crate::entry::{Entry, Epoch, Seq};
use crate::net::Net;
use crate::replication::keys::KeyWindow;
use crate::replication::master::MasterEvent;
use crate::replication::role::{Action, Core, CoreConfig, Event, RoleView};
use crate::replication::secondary::SecondaryEvent;
use crate::replication::{AppendRequest, ClientId, ConnId, LogState};
use crate::storage::Log;
use crate::wire::{Frame, HealthReport};

/// How often the core is ticked: the resolution of every deadline.
const MAX_SLEEP: Duration = Duration::from_secs(1);

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
    /// A master opened a replication connection and proved itself; the core
    /// accepts or refuses it, and the welcome or refusal goes to `tx`.
    MasterOpened {
        conn: ConnId,
        tx: Outbox,
        master: String,
        epoch: Epoch,
    },
    /// Something the master sent (secondary only).
    FromMaster(SecondaryEvent),
    /// The syncer made everything up to `upto` durable. `gen` is the core's
    /// log generation when the write was made (see `Event::Stored`).
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
    /// What the core says this node is, for the clients' welcome.
    pub role: watch::Receiver<RoleView>,
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
    let (core, mut start) = Core::new(
        CoreConfig {
            id: cfg.id.clone(),
            nodes: cfg.cluster.nodes.clone(),
            master: cfg.cluster.master.clone(),
            timing: cfg.timing,
            max_message_bytes: cfg.max_message_bytes,
            window: crate::replication::WINDOW,
            batch: crate::replication::BATCH,
            seed,
            stored_means_synced: cfg.fsync == FsyncPolicy::Always,
            replicate_delay: cfg.replicate_delay,
            fail_rate: cfg.fail_rate,
            authenticated: cfg.cluster_keys.is_some(),
            encrypted: cfg.tls.is_some(),
        },
        LogState {
            epoch: log.epoch(),
            last,
            epochs: log.epochs(),
            keys: recent_keys(&log, cfg.dedup_window)?,
        },
        Instant::now().into_std(),
    );
    // A new epoch is recorded before any entry of it is written, so that
    // entries of an earlier run that never became durable can be told
    // apart from this run's; at start, failing to is failing to start.
    for action in &start {
        if let Action::RecordEpoch(epoch) = action {
            log.set_epoch(*epoch)
                .map_err(|e| anyhow::anyhow!("cannot record the new epoch: {e}"))?;
        }
    }
    start.retain(|a| !matches!(a, Action::RecordEpoch(_)));
    let view = core.view();
    info!(node = %cfg.id, role = ?view.role, last = last.seq, epoch = core.epoch(), "log open");

    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (requests_tx, requests_rx) = mpsc::channel(REQUEST_QUEUE);
    let (visible_tx, visible_rx) = watch::channel(last.seq);
    let (role_tx, role_rx) = watch::channel(view);
    let tracker = TaskTracker::new();
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
        role: role_rx,
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

    let spawn_link: SpawnLink = {
        let (shared, tracker, span) = (shared.clone(), tracker.clone(), span.clone());
        Box::new(move |peer, (id, addr), epoch, rx| {
            tracker.spawn(
                link::run::<N>(
                    peer,
                    id,
                    addr,
                    epoch,
                    shared.clone(),
                    rx,
                    seed ^ peer as u64,
                )
                .instrument(span.clone()),
            );
        })
    };
    let mut node = NodeLoop {
        shared: shared.clone(),
        core,
        links: Vec::new(),
        spawn_link,
        master: None,
        clients: HashMap::new(),
        visible_tx,
        role_tx,
        sync_tx,
        syncer,
        next_tick: Instant::now().into_std(),
        fsync: cfg.fsync,
        pending: Vec::new(),
        actions: Vec::new(),
        requeue: VecDeque::new(),
    };
    node.run_actions(&mut start);

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

/// Starts the link to one secondary: its index, id and address, the epoch
/// it speaks for and its command queue.
type SpawnLink = Box<dyn Fn(usize, (String, String), Epoch, mpsc::Receiver<link::LinkCmd>) + Send>;

struct NodeLoop {
    shared: Arc<Shared>,
    /// The replication core: every decision is its.
    core: Core,
    /// One command channel per secondary link, while the core is master.
    links: Vec<mpsc::Sender<link::LinkCmd>>,
    /// Starts a link task.
    spawn_link: SpawnLink,
    /// The master's current replication connection, on a secondary.
    master: Option<(ConnId, Outbox)>,
    /// Where each client's answers go.
    clients: HashMap<ClientId, Outbox>,
    /// Publishes the visible sequence number to readers.
    visible_tx: watch::Sender<Seq>,
    /// Publishes what the core says this node is.
    role_tx: watch::Sender<RoleView>,
    /// To the syncer, when the log has something to sync.
    sync_tx: Option<Arc<syncer::SyncQueue>>,
    /// The syncer task, awaited at shutdown so that no result is lost.
    syncer: Option<tokio::task::JoinHandle<()>>,
    /// When the core next has work for a tick (its `poll_timeout`, at most
    /// `MAX_SLEEP` away).
    next_tick: std::time::Instant,
    /// The fsync policy.
    fsync: FsyncPolicy,
    /// Entries to persist, not yet written: written before anything is read
    /// back to be sent, and at the end of every round.
    pending: Vec<Entry>,
    /// Scratch action buffer, reused.
    actions: Vec<Action>,
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
                self.step(now, Event::Tick);
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
        let event = match input {
            Input::ClientOpened { client, tx } => {
                self.clients.insert(client, tx);
                return;
            }
            Input::ClientClosed { client } => {
                self.clients.remove(&client);
                return;
            }
            Input::Health { tx } => {
                let _ = tx.send(self.core.health(now));
                return;
            }
            Input::Append(request) => Event::Append(request),
            Input::Link(event) => Event::Link(event),
            Input::MasterOpened {
                conn,
                tx,
                master,
                epoch,
            } => {
                // The newest connection replaces any older one; the core's
                // answer (welcome or refusal) goes out on it first.
                self.master = Some((conn, tx));
                Event::MasterOpened {
                    conn,
                    master,
                    epoch,
                }
            }
            Input::FromMaster(event) => {
                if let SecondaryEvent::MasterDisconnected { conn } = &event {
                    if self.master.as_ref().is_some_and(|(c, _)| c == conn) {
                        self.master = None;
                    }
                }
                Event::FromMaster(event)
            }
            Input::Stored { gen, upto } => Event::Stored { gen, upto },
            Input::StorageFailed(reason) => {
                error!(node = %self.shared.cfg.id, %reason, "THE LOG FAILED: no further entry will be acknowledged by this node; fix the disk and restart it");
                Event::StorageFailed {
                    reason: self.cannot_store(reason),
                }
            }
            Input::Unwritten { after, reason } => {
                // A write failed but the log works: the core forgets what
                // was not written, and the next append simply tries again,
                // so the node resumes by itself once the disk has room.
                if let Some(more) = self.shared.throttle.allow("unwritten") {
                    error!(node = %self.shared.cfg.id, %reason, suppressed = more,
                           "cannot store entries: nothing is acknowledged until a write succeeds; retried at every append (or resend)");
                }
                // Entries not yet written are gone too, as the core
                // forgets everything after `after`.
                self.pending.retain(|e| e.seq <= after);
                Event::Unwritten {
                    after,
                    reason: self.cannot_store(reason),
                }
            }
            Input::SyncFailed { reason } => {
                if let Some(more) = self.shared.throttle.allow("sync-failed") {
                    error!(node = %self.shared.cfg.id, %reason, suppressed = more,
                           "syncing the log failed");
                }
                Event::SyncFailed {
                    reason: self.cannot_store(reason),
                }
            }
        };
        self.step(now, event);
    }

    /// A storage error as clients and peers are told it.
    fn cannot_store(&self, reason: String) -> String {
        format!("node {} cannot store entries: {reason}", self.shared.cfg.id)
    }

    /// When the next tick is due: the core's next deadline, never in the
    /// past (a deadline that a tick did not clear must not spin the loop),
    /// and never more than `MAX_SLEEP` away, so that an idle loop still
    /// completes rounds (the watchdog counts them).
    fn poll_timeout(&self, now: std::time::Instant) -> std::time::Instant {
        let soonest = now + Duration::from_millis(1);
        self.core
            .poll_timeout(now)
            .unwrap_or(now + MAX_SLEEP)
            .clamp(soonest, now + MAX_SLEEP)
    }

    /// Feeds the core one event and carries out what it says.
    fn step(&mut self, now: std::time::Instant, event: Event) {
        let mut actions = std::mem::take(&mut self.actions);
        self.core.step(now, event, &mut actions);
        self.run_actions(&mut actions);
        self.actions = actions;
    }

    /// Cuts the log after `after`. The log is cut and the visible position
    /// lowered under one write lock, so a reader never sees one without the
    /// other (`truncate_after` syncs the cut itself).
    fn cut_log(&mut self, after: Seq) -> std::io::Result<()> {
        let mut log = self.shared.log.write().expect("log lock");
        let result = log.truncate_after(after);
        self.visible_tx.send_if_modified(|v| {
            let changed = *v > after;
            *v = (*v).min(after);
            changed
        });
        drop(log);
        result
    }

    /// Writes what is pending, hands it to the syncer (or reports it stored
    /// at once when there is nothing to wait for).
    fn write_pending(&mut self) {
        let entries = std::mem::take(&mut self.pending);
        if entries.is_empty() {
            return;
        }
        let upto = entries.last().expect("not empty").seq;
        // One lock for the write and for the file the sync must cover.
        let written = {
            let mut log = self.shared.log.write().expect("log lock");
            log.append(&entries).map(|()| log.sync_point())
        };
        // The buffer is kept: its capacity serves the next round.
        self.pending = entries;
        self.pending.clear();
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
                        gen: self.core.generation(),
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
            tx.push(self.core.generation(), upto, point);
            if self.fsync == FsyncPolicy::Always {
                return; // the syncer reports Stored
            }
        }
        self.requeue.push_back(Input::Stored {
            gen: self.core.generation(),
            upto,
        });
    }

    /// Carries out the core's actions, in order.
    fn run_actions(&mut self, actions: &mut Vec<Action>) {
        for action in actions.drain(..) {
            match action {
                Action::RecordEpoch(epoch) => {
                    let recorded = self.shared.log.write().expect("log lock").set_epoch(epoch);
                    if let Err(e) = recorded {
                        self.requeue.push_back(Input::StorageFailed(format!(
                            "cannot record the new epoch: {e}"
                        )));
                    }
                }
                Action::StartLinks { epoch, peers } => {
                    self.links.clear();
                    for (peer, secondary) in peers.into_iter().enumerate() {
                        let (tx, rx) = mpsc::channel(LINK_QUEUE);
                        self.links.push(tx);
                        (self.spawn_link)(peer, secondary, epoch, rx);
                    }
                }
                // Closing its queue ends a link.
                Action::StopLinks => self.links.clear(),
                Action::Persist(entries) => {
                    if self.pending.is_empty() {
                        self.pending = entries;
                    } else {
                        self.pending.extend(entries);
                    }
                }
                Action::CutLog { after, why } => {
                    warn!(node = %self.shared.cfg.id, after, "{why}");
                    self.pending.retain(|e| e.seq <= after);
                    if let Err(e) = self.cut_log(after) {
                        self.requeue
                            .push_back(Input::StorageFailed(format!("{why} failed: {e}")));
                    }
                }
                Action::SendEntries {
                    peer,
                    conn,
                    from,
                    to,
                } => {
                    // Entries are read from the log: write this round's first.
                    self.write_pending();
                    self.send_entries(peer, conn, from, to);
                }
                Action::ToPeer { peer, conn, frame } => {
                    self.to_link(peer, link::LinkCmd::Send(conn, frame));
                }
                Action::Reconnect { peer, conn } => {
                    warn!(node = %self.shared.cfg.id, peer, "secondary silent past --unhealthy-after; reconnecting");
                    self.to_link(peer, link::LinkCmd::Reconnect(conn));
                }
                Action::Diverged { peer, conn, reason } => {
                    error!(peer, "{reason}");
                    self.to_link(peer, link::LinkCmd::Reconnect(conn));
                }
                Action::ToMaster { conn, frame } => {
                    if let Some((c, tx)) = &self.master {
                        if *c == conn {
                            tx.offer(frame);
                        }
                    }
                }
                Action::RefuseMaster { conn, reason } => {
                    if let Some((c, tx)) = &self.master {
                        if *c == conn {
                            warn!(node = %self.shared.cfg.id, %reason, "refusing a master connection");
                            tx.offer(Frame::Refused { reason });
                            tx.close();
                            self.master = None;
                        }
                    }
                }
                Action::Reply {
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
        let Some(link) = self.links.get(peer) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = link.try_send(cmd) {
            if let Some(more) = self.shared.throttle.allow("link-queue") {
                error!(
                    peer,
                    suppressed = more,
                    "the link to a secondary is not taking commands; dropping one"
                );
            }
        }
    }

    fn send_entries(&mut self, peer: usize, conn: ConnId, from: Seq, to: Seq) {
        let max_bytes = self.shared.cfg.max_message_bytes;
        let mut next = from;
        while next <= to {
            let read = self.shared.log.read().expect("log lock").read(
                next,
                to,
                crate::replication::BATCH as usize,
                max_bytes,
            );
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

    /// After a round of inputs, in fixed phases: persist what the round
    /// assigned, take what that reported, let the core send what
    /// secondaries miss, publish what readers and clients may see.
    fn end_round(&mut self, now: std::time::Instant) {
        self.write_pending();
        while let Some(input) = self.requeue.pop_front() {
            self.handle_one(now, input);
        }
        let mut actions = std::mem::take(&mut self.actions);
        self.core.flush(now, &mut actions);
        self.run_actions(&mut actions);
        self.actions = actions;
        self.write_pending();
        while let Some(input) = self.requeue.pop_front() {
            self.handle_one(now, input);
        }
        let visible = self.core.stored();
        self.visible_tx.send_if_modified(|v| {
            let changed = *v != visible;
            *v = visible;
            changed
        });
        let view = self.core.view();
        self.role_tx.send_if_modified(|v| {
            let changed = *v != view;
            *v = view;
            changed
        });
    }

    /// Shutdown: stop taking appends, fail what still waits, make the log
    /// durable.
    async fn stop(&mut self, mut rx: mpsc::Receiver<Input>) {
        let now = Instant::now().into_std();
        self.write_pending();
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
        let (point, last) = {
            let log = self.shared.log.read().expect("log lock");
            (log.sync_point(), log.last().seq)
        };
        let synced = match point {
            Some(point) => match tokio::task::spawn_blocking(move || point.sync_data()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("final sync of the log failed: {e}")),
                Err(e) => Err(format!("final sync of the log panicked: {e}")),
            },
            None => Ok(()),
        };
        match synced {
            // Everything written is durable now: answer whoever that
            // satisfies (a broken core ignores this).
            Ok(()) => {
                let gen = self.core.generation();
                self.step(now, Event::Stored { gen, upto: last })
            }
            Err(reason) => self.handle_one(now, Input::StorageFailed(reason)),
        }
        let mut actions = Vec::new();
        self.core.shutdown(&mut actions);
        self.run_actions(&mut actions);
        // Dropping the outboxes lets every writer finish and close.
        self.clients.clear();
        self.links.clear();
        self.master = None;
    }
}

/// Milliseconds from a client's timeout field.
pub(crate) fn timeout_from_ms(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}
