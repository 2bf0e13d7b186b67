//! The node loop: the one task that owns the replication core and the
//! log's writing. It takes inputs in rounds (control first, then client
//! requests), feeds each to the core, carries out the actions that come
//! back, and at the end of each round persists, syncs, sends and publishes
//! in fixed phases; then it sleeps until the next input or the core's next
//! deadline. It decides nothing itself.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use foldhash::HashMap;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::shared::{Input, Outbox, Shared, MAX_INPUTS_PER_ROUND, MAX_SLEEP};
use super::{link, syncer};

/// How often retention looks at the log's segments.
const RETENTION_EVERY: Duration = Duration::from_secs(1);
use crate::entry::{Entry, Epoch, Seq};
use crate::replication::role::{Action, Core, Event, RoleView, VoteRequest};
use crate::replication::secondary::SecondaryEvent;
use crate::replication::storage::StorageReport;
use crate::replication::{ClientId, ConnId};
use crate::wire::{Frame, WriteConcern};

/// Starts the link to one secondary: its index, id and address, the epoch
/// it speaks for and its command queue.
pub(super) type SpawnLink =
    Box<dyn Fn(usize, (String, String), Epoch, mpsc::Receiver<link::LinkCmd>) + Send>;

/// Asks one node (id, address) for its vote with this `VoteRequest`.
pub(super) type SpawnVote = Box<dyn Fn((String, String), Frame) + Send>;

pub(super) struct NodeLoop {
    pub(super) shared: Arc<Shared>,
    /// The replication core: every decision is its.
    pub(super) core: Core,
    /// One command channel per secondary link, while the core is master,
    /// with the secondary's id (for log lines).
    pub(super) links: Vec<(String, mpsc::Sender<link::LinkCmd>)>,
    /// The epoch the links speak for (a link added later speaks for it too).
    pub(super) link_epoch: crate::entry::Epoch,
    /// Starts a link task.
    pub(super) spawn_link: SpawnLink,
    /// Starts a task asking one node for its vote.
    pub(super) spawn_vote: SpawnVote,
    /// The master's current replication connection, on a secondary, and
    /// the node protocol version the master said.
    pub(super) master: Option<(ConnId, Outbox, u32)>,
    /// A master connection the core is deciding on, during that step.
    pub(super) opening: Option<(ConnId, Outbox, u32)>,
    /// The cluster id that master's hello named.
    pub(super) opening_cluster: u64,
    /// A candidate's connection, during the step that answers it.
    pub(super) voter: Option<(ConnId, Outbox, u32)>,
    /// Where each client's answers go, and the protocol version it speaks.
    pub(super) clients: HashMap<ClientId, (Outbox, u32)>,
    /// Publishes the visible sequence number to readers.
    pub(super) visible_tx: watch::Sender<Seq>,
    /// Publishes the committed mark to `list --committed`.
    pub(super) committed_tx: watch::Sender<Seq>,
    /// Publishes what the core says this node is.
    pub(super) role_tx: watch::Sender<RoleView>,
    /// To the syncer, when the log has something to sync.
    pub(super) sync_tx: Option<Arc<syncer::SyncQueue>>,
    /// The syncer task, awaited at shutdown so that no result is lost.
    pub(super) syncer: Option<tokio::task::JoinHandle<()>>,
    /// When the core next has work for a tick (its `poll_timeout`, at most
    /// `MAX_SLEEP` away).
    pub(super) next_tick: std::time::Instant,
    /// When retention looks at the log's segments next.
    pub(super) retention_due: std::time::Instant,
    /// When the logs' own retention is looked at next (master only).
    pub(super) log_retention_due: std::time::Instant,
    /// Entries to persist, not yet written: written before anything is read
    /// back to be sent, and at the end of every round.
    pub(super) pending: Vec<Entry>,
    /// Ranges of entries (`from..=to`) that more than one secondary is
    /// sent in the actions being carried out, with their frames once
    /// encoded: encoded once, written to each as the same bytes. Noted
    /// anew for each list of actions, and emptied by a cut, a reset or
    /// retention.
    pub(super) shared_sends: Vec<(Seq, Seq, Option<Vec<Frame>>)>,
    /// The version of the named logs last copied to `Shared::logs`.
    pub(super) logs_version: u64,
    /// Scratch action buffer, reused.
    pub(super) actions: Vec<Action>,
    /// Inputs the loop generated for itself (stored without a syncer).
    pub(super) requeue: VecDeque<Input>,
    /// When each unanswered append arrived, and its write concern: for the
    /// metrics. Bounded as the appends in flight are (connections times
    /// `--max-inflight`). Hashed with a fast, randomly seeded hasher: two
    /// lookups per append, and the keys partly the clients' choice.
    pub(super) appends: HashMap<(ClientId, u64), (std::time::Instant, WriteConcern)>,
    /// Who the data directory belongs to: written when this node, a
    /// learner, votes again.
    pub(super) identity: crate::storage::identity::Identity,
}

impl NodeLoop {
    /// A loop with nothing yet in flight: what it shares with the tasks,
    /// the core and the node's identity; how it starts links and vote
    /// requests; the watches it publishes on; the syncer it feeds.
    pub(super) fn new(
        (shared, core, identity): (Arc<Shared>, Core, crate::storage::identity::Identity),
        (spawn_link, spawn_vote): (SpawnLink, SpawnVote),
        (visible_tx, committed_tx, role_tx): (
            watch::Sender<Seq>,
            watch::Sender<Seq>,
            watch::Sender<RoleView>,
        ),
        (sync_tx, syncer): (
            Option<Arc<syncer::SyncQueue>>,
            Option<tokio::task::JoinHandle<()>>,
        ),
    ) -> NodeLoop {
        let now = Instant::now().into_std();
        NodeLoop {
            shared,
            core,
            links: Vec::new(),
            link_epoch: 0,
            spawn_link,
            spawn_vote,
            master: None,
            opening: None,
            opening_cluster: 0,
            voter: None,
            clients: HashMap::default(),
            visible_tx,
            committed_tx,
            role_tx,
            sync_tx,
            syncer,
            next_tick: now,
            retention_due: now,
            log_retention_due: now,
            pending: Vec::new(),
            shared_sends: Vec::new(),
            logs_version: 0,
            actions: Vec::new(),
            requeue: VecDeque::new(),
            appends: HashMap::default(),
            identity,
        }
    }

    pub(super) async fn run(
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
                // A master that steps down on a tick (no majority heard)
                // says so like any other role change.
                self.step_as_input(now, Event::Tick);
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

    /// One input: turned into the core's event (with what the loop keeps
    /// about it: a connection's outbox, a voter's), then stepped.
    // One arm per kind of input.
    fn handle_one(&mut self, now: std::time::Instant, input: Input) {
        let event = match input {
            Input::ClientOpened {
                client,
                tx,
                version,
            } => {
                self.clients.insert(client, (tx, version));
                return;
            }
            Input::ClientClosed { client } => {
                self.clients.remove(&client);
                self.appends.retain(|(c, _), _| *c != client);
                return;
            }
            Input::Health { tx } => {
                let _ = tx.send(self.core.health(now));
                return;
            }
            Input::Compacted { copy, tx } => {
                // Same entries, same positions: nothing the core or the
                // tail holds changes.
                let _ = tx.send(self.shared.log.write().install(*copy));
                return;
            }
            Input::Groups { group, tx } => {
                let positions = self.core.groups().map(|p| {
                    (p.iter())
                        .filter(|(g, _, _)| group.as_deref().is_none_or(|want| want == *g))
                        .map(|(g, l, n)| (g.to_string(), l, n))
                        .collect()
                });
                let _ = tx.send(positions);
                return;
            }
            Input::ChangeGroups {
                client,
                req,
                request,
            } => Event::ChangeGroups {
                client,
                req,
                request,
            },
            Input::ChangeMembers {
                client,
                req,
                change,
            } => {
                info!(node = %self.shared.cfg.id, ?change, "a membership change is asked for");
                Event::ChangeMembers {
                    client,
                    req,
                    change,
                }
            }
            Input::ChangeLogs {
                client,
                req,
                change,
            } => {
                info!(node = %self.shared.cfg.id, ?change, "a log change is asked for");
                Event::ChangeLogs {
                    client,
                    req,
                    change,
                }
            }
            Input::Appends(requests) => {
                for request in requests {
                    (self.appends).insert((request.client, request.req), (now, request.w));
                    self.step_as_input(now, Event::Append(request));
                }
                return;
            }
            Input::Link(event) => Event::Link(event),
            Input::MasterOpened {
                conn,
                tx,
                master,
                epoch,
                version,
                cluster,
            } => {
                // The welcome tells the master where this log ends: write
                // what is pending first, and take what that reports, so
                // that it says what the log holds.
                self.write_pending();
                while let Some(input) = self.requeue.pop_front() {
                    self.handle_one(now, input);
                }
                // The core's answer goes out on this connection: a welcome
                // makes it the master's connection, replacing any older
                // one; a refusal closes it and leaves the older one be.
                self.opening = Some((conn, tx, version));
                self.opening_cluster = cluster;
                Event::MasterOpened {
                    conn,
                    master,
                    epoch,
                }
            }
            Input::FromMaster(event) => {
                if let SecondaryEvent::MasterDisconnected { conn } = &event {
                    if self.master.as_ref().is_some_and(|(c, _, _)| c == conn) {
                        self.master = None;
                    }
                }
                Event::FromMaster(event)
            }
            Input::Storage(report) => Event::Storage(self.storage_report(report)),
            Input::VoteRequested {
                conn,
                tx,
                candidate,
                epoch,
                last,
                pre,
                version,
            } => {
                self.voter = Some((conn, tx, version));
                let request = VoteRequest {
                    candidate,
                    epoch,
                    last,
                    pre,
                };
                Event::VoteRequested { conn, request }
            }
            Input::VoteAnswered(answer) => Event::VoteAnswered(answer),
            Input::NewerEpoch { epoch } => Event::NewerEpoch { epoch },
            Input::VoteUnrecorded { epoch, reason } => Event::VoteUnrecorded { epoch, reason },
        };
        self.step_as_input(now, event);
    }

    /// Records the cluster this node belongs to, if it knew none: its
    /// hellos name it from now on, and it takes only that cluster's nodes.
    pub(super) fn settle(&mut self, cluster: u64) {
        let known = self
            .shared
            .cluster_id
            .load(std::sync::atomic::Ordering::Relaxed);
        if known != 0 || cluster == super::config::UNKNOWN_CLUSTER {
            return;
        }
        // Known from now on in any case; only a restart can forget it.
        if let Err(e) = self.identity.settle(cluster) {
            warn!(node = %self.shared.cfg.id, error = %e, "cannot record the cluster id in the data directory: this node knows it until it restarts");
        }
        (self.shared.cluster_id).store(cluster, std::sync::atomic::Ordering::Relaxed);
        info!(node = %self.shared.cfg.id, cluster = format!("{cluster:016x}"), "this node belongs to cluster {cluster:016x}");
    }

    /// Feeds the core an event that came from an input (or a tick), and says
    /// so if the node's role changed.
    fn step_as_input(&mut self, now: std::time::Instant, event: Event) {
        let was_master = self.core.is_master();
        self.step(now, event);
        self.opening = None;
        self.voter = None;
        if self.core.is_master() != was_master {
            // The first master of a new cluster names it after its list
            // (which, with no change made, every node's is).
            if self.shared.cfg.join.is_none() && !self.core.members_from_log() {
                self.settle(self.shared.cfg.cluster.fingerprint());
            }
            let (epoch, _, master) = self.core.term();
            let role = self.core.view().role;
            info!(node = %self.shared.cfg.id, %role, epoch, master = master.unwrap_or("unknown"), "role changed");
        }
    }

    /// Logs what went wrong with the local log (loudly for a failed log,
    /// throttled for what the node retries) and names this node in the
    /// reason the core passes on to clients and the master.
    fn storage_report(&mut self, report: StorageReport) -> StorageReport {
        let id = &self.shared.cfg.id;
        match report {
            StorageReport::Failed { reason } => {
                error!(node = %id, %reason, "THE LOG FAILED: no further entry will be acknowledged by this node; fix the disk and restart it");
                StorageReport::Failed {
                    reason: self.cannot_store(reason),
                }
            }
            StorageReport::Unwritten { after, reason } => {
                // A write failed but the log works: the core forgets what
                // was not written, and the next append simply tries again,
                // so the node resumes by itself once the disk has room.
                if let Some(more) = self.shared.throttle.allow("unwritten") {
                    error!(node = %id, %reason, suppressed = more,
                           "cannot store entries: nothing is acknowledged until a write succeeds; retried at every append (or resend)");
                }
                // Entries not yet written are gone too, as the core
                // forgets everything after `after`.
                self.pending.retain(|e| e.seq <= after);
                StorageReport::Unwritten {
                    after,
                    reason: self.cannot_store(reason),
                }
            }
            StorageReport::SyncFailed { reason } => {
                if let Some(more) = self.shared.throttle.allow("sync-failed") {
                    error!(node = %id, %reason, suppressed = more, "syncing the log failed");
                }
                StorageReport::SyncFailed {
                    reason: self.cannot_store(reason),
                }
            }
            // The numbers and positions as the log holds them now, with
            // what is still to be written: read here, when the core takes
            // the report, and not when it was queued, since the core may
            // have taken entries since.
            StorageReport::Numbers { .. } => {
                let log = self.shared.log.read();
                let mut last: std::collections::BTreeMap<_, _> =
                    log.numbers().into_iter().collect();
                let mut groups = log.groups();
                drop(log);
                for e in self.pending.iter() {
                    if !e.is_control() {
                        last.insert(e.log, e.number);
                    } else if let Some(effect) =
                        crate::replication::groups::effect(e.key.as_deref(), &e.message)
                    {
                        groups.take(&effect);
                    }
                }
                StorageReport::Numbers {
                    pairs: last.into_iter().collect(),
                    groups,
                }
            }
            written @ (StorageReport::Written { .. } | StorageReport::Synced { .. }) => written,
        }
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
        if self.core.logs_version() != self.logs_version {
            // Before any answer of this step goes out: a client told its
            // log was created finds it.
            self.logs_version = self.core.logs_version();
            *self.shared.logs.write().expect("logs lock") = Arc::new(self.core.logs().clone());
        }
        self.run_actions(&mut actions);
        self.actions = actions;
    }

    /// Cuts the log after `after`. The log is cut and the visible position
    /// lowered under one write lock, so a reader never sees one without the
    /// other (`truncate_after` syncs the cut itself).
    pub(super) fn cut_log(&mut self, after: Seq) -> std::io::Result<()> {
        self.shared.tail().truncate_after(after);
        self.shared_sends.clear();
        let mut log = self.shared.log.write();
        let result = log.truncate_after(after);
        self.visible_tx.send_if_modified(|v| {
            let changed = *v > after;
            *v = (*v).min(after);
            changed
        });
        drop(log);
        result
    }

    /// Writes what is pending, reports it written, and hands it to the
    /// syncer.
    pub(super) fn write_pending(&mut self) {
        let mut entries = std::mem::take(&mut self.pending);
        if entries.is_empty() {
            return;
        }
        let upto = entries.last().expect("not empty").seq;
        // One lock for the write and for the file the sync must cover.
        let (written, started) = {
            let mut log = self.shared.log.write();
            // Timed from the lock taken: what readers hold it for is not
            // the disk's.
            let started = std::time::Instant::now();
            (log.append(&entries).map(|()| log.sync_point()), started)
        };
        // Timed because a slow write shows in the tail of every append
        // behind it. A segment roll's syncs are the syncer's (`roll.rs`),
        // unless a second roll comes before the first is durable.
        self.shared
            .metrics
            .log_write(started.elapsed().as_secs_f64());
        // What was written joins the tail: a master sends it on, and
        // readers near the end of the log on any node are served from it.
        // The buffer is kept: its capacity serves the next round.
        let is_written = match &written {
            Ok(_) => true,
            Err(e) => crate::storage::files::is_not_durable(e),
        };
        if is_written {
            self.shared.tail().push(&mut entries);
        } else {
            let numbers = self.shared.log.read().numbers();
            self.shared.tail().restart(numbers);
        }
        self.pending = entries;
        self.pending.clear();
        let gen = self.core.generation();
        let point = match written {
            Ok(point) => point,
            Err(e) if crate::storage::files::is_not_durable(&e) => {
                // Written, but a sync failed on the way (a roll still
                // pending, made durable here before the next one). Both
                // facts go to the core, the failure first: under `always`
                // it cuts back to what is durable, otherwise the entries
                // count once written.
                let reason = format!("{e}");
                self.report(StorageReport::SyncFailed { reason });
                self.report(StorageReport::Written { gen, upto });
                return;
            }
            Err(e) => {
                // Whatever the failed write left is cut by the log itself:
                // it holds exactly what it says.
                let after = self.shared.log.read().last().seq;
                let reason = format!("writing the log failed: {e}");
                self.report(StorageReport::Unwritten { after, reason });
                // A secondary forgets the numbers of what was not written.
                self.report(StorageReport::Numbers {
                    pairs: Vec::new(),
                    groups: Default::default(),
                });
                return;
            }
        };
        self.report(StorageReport::Written { gen, upto });
        // The syncer reports `Synced`; with none (`--fsync never`, a log
        // in memory) the core counts what is written.
        if let (Some(tx), Some(point)) = (&self.sync_tx, point) {
            tx.push(gen, upto, point);
        }
    }

    /// Queues a storage report for the core, after the input at hand.
    pub(super) fn report(&mut self, report: StorageReport) {
        self.requeue.push_back(Input::Storage(report));
    }

    /// Carries out the core's actions, in order.
    pub(super) fn run_actions(&mut self, actions: &mut Vec<Action>) {
        self.note_shared_ranges(actions);
        // Set when an epoch or vote could not be recorded: nothing of this
        // batch that relies on it (an answer to a candidate, a request for
        // votes) goes out.
        let mut unrecorded = false;
        for action in actions.drain(..) {
            match action {
                Action::RecordEpoch(_)
                | Action::RecordVote { .. }
                | Action::RequestVotes { .. }
                | Action::AnswerVote { .. }
                | Action::RefuseCandidate { .. } => self.election_action(action, &mut unrecorded),
                Action::StartLinks { .. }
                | Action::StopLinks
                | Action::StartLink { .. }
                | Action::StopLink { .. }
                | Action::ToPeer { .. }
                | Action::Reconnect { .. }
                | Action::Redial { .. }
                | Action::Diverged { .. }
                | Action::SendEntries { .. } => self.link_action(action),
                Action::Persist(_) | Action::ResetLog { .. } | Action::CutLog { .. } => {
                    self.log_action(action)
                }
                Action::RefuseStale { .. }
                | Action::ToMaster { .. }
                | Action::RefuseMaster { .. } => self.master_action(action),
                Action::Progress { .. } | Action::Reply { .. } => self.client_action(action),
                Action::Disregard { .. } | Action::Promoted | Action::LeftCluster { .. } => {
                    self.note_action(action)
                }
            }
        }
    }

    /// Records the epoch and the vote in it, durably.
    pub(super) fn record_epoch(&mut self, epoch: Epoch, vote: Option<&str>) -> std::io::Result<()> {
        self.shared.log.write().set_epoch(epoch, vote)
    }

    /// The master connection `conn` (being opened, or the live one), taken
    /// away to be refused.
    pub(super) fn take_master_conn(&mut self, conn: ConnId) -> Option<(ConnId, Outbox, u32)> {
        if self.opening.as_ref().is_some_and(|(c, _, _)| *c == conn) {
            self.opening.take()
        } else if self.master.as_ref().is_some_and(|(c, _, _)| *c == conn) {
            self.master.take()
        } else {
            None
        }
    }

    /// Before a divergent suffix is cut: every entry after `after` is saved
    /// to `DATA_DIR/rollback/<epoch>-<first>-<last>.log` in the log's own
    /// record format, and one line says where. What cannot be saved is
    /// said loudly, and cut anyway: the cluster's log wins.
    pub(super) fn save_rollback(&self, after: Seq) {
        let Some(dir) = &self.shared.cfg.data_dir else {
            return;
        };
        let log = self.shared.log.read();
        let last = log.last();
        if last.seq <= after {
            return;
        }
        let saved = (|| -> std::io::Result<std::path::PathBuf> {
            let mut entries = Vec::new();
            let mut next = after + 1;
            while next <= last.seq {
                let page = log.read(next, last.seq, 1000, 1 << 20)?;
                let Some(end) = page.last().map(|e| e.seq) else {
                    break;
                };
                entries.extend(page);
                next = end + 1;
            }
            let first = entries.first().map_or(after + 1, |e| e.seq);
            let epoch = entries.first().map_or(last.epoch, |e| e.epoch);
            crate::storage::disk::write_rollback(dir, epoch, first, last.seq, &entries)
        })();
        match saved {
            Ok(path) => {
                warn!(node = %self.shared.cfg.id, file = %path.display(), first = after + 1, last = last.seq,
                      "entries this node held but the master does not were cut; they are saved in this rollback file")
            }
            Err(e) => {
                error!(node = %self.shared.cfg.id, first = after + 1, last = last.seq, error = %e,
                       "could not save the entries about to be cut to a rollback file; they are lost")
            }
        }
    }

    /// Hands a command to a link without waiting. The core's window bounds
    /// what is sent to a secondary, so a full queue is a stuck link task:
    /// said loudly, and the frame is dropped (the core resends after the
    /// link reconnects).
    pub(super) fn to_link(&self, peer: usize, cmd: link::LinkCmd) {
        let Some((id, link)) = self.links.get(peer) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = link.try_send(cmd) {
            if let Some(more) = self.shared.throttle.allow("link-queue") {
                error!(
                    node = %self.shared.cfg.id,
                    peer = %id,
                    suppressed = more,
                    "the link to a secondary is not taking commands; dropping one"
                );
            }
        }
    }

    /// A secondary's id, for log lines (its index if links changed since).
    pub(super) fn peer_id(&self, peer: usize) -> String {
        self.links
            .get(peer)
            .map_or_else(|| peer.to_string(), |(id, _)| id.clone())
    }

    pub(super) fn send_entries(&mut self, peer: usize, conn: ConnId, from: Seq, to: Seq) {
        let shared = self
            .shared_sends
            .iter()
            .position(|(f, t, _)| (*f, *t) == (from, to));
        if let Some(frames) = shared.and_then(|i| self.shared_sends[i].2.clone()) {
            // Encoded for the secondary before: the same bytes.
            for frame in frames {
                self.to_link(peer, link::LinkCmd::Send(conn, frame));
            }
            return;
        }
        let max_bytes = self.shared.cfg.max_message_bytes;
        let batch = crate::replication::BATCH as usize;
        let mut frames = Vec::new();
        let mut next = from;
        while next <= to {
            // What the master just wrote is in the tail; a secondary
            // catching up is served from the log.
            let from_tail = self.shared.tail().read(next, to, batch, max_bytes);
            let read = match from_tail {
                Some(entries) => Ok(entries),
                None => self.shared.log.read().read(next, to, batch, max_bytes),
            };
            match read {
                Ok(entries) if !entries.is_empty() => {
                    next = entries.last().expect("not empty").seq + 1;
                    frames.push(Frame::Entries { entries });
                }
                Ok(_) => break,
                Err(e) => {
                    self.report(StorageReport::Failed {
                        reason: format!("reading the log to replicate failed: {e}"),
                    });
                    break;
                }
            }
        }
        if let Some(i) = shared {
            let max_frame = self.shared.cfg.max_frame_bytes();
            frames = (frames.into_iter())
                .map(|f| crate::wire::FrameCodec::encode_once(f, max_frame))
                .collect();
            self.shared_sends[i].2 = Some(frames.clone());
        }
        for frame in frames {
            self.to_link(peer, link::LinkCmd::Send(conn, frame));
        }
    }

    /// Notes the ranges of entries that more than one secondary is sent in
    /// `actions` (a round's sends usually go to every secondary alike).
    fn note_shared_ranges(&mut self, actions: &[Action]) {
        self.shared_sends.clear();
        for (from, to) in ranges_sent_twice(actions) {
            self.shared_sends.push((from, to, None));
        }
    }

    /// After a round of inputs, in fixed phases: persist what the round
    /// assigned, take what that reported, let the core send what
    /// secondaries miss, publish what readers and clients may see.
    /// Deletes the oldest segments that retention lets go: the plan is the
    /// storage's arithmetic over what the core says must stay.
    fn apply_retention(&mut self, now: std::time::Instant) {
        let retention = self.shared.cfg.retention;
        if !retention.is_on() || now < self.retention_due {
            return;
        }
        self.retention_due = now + RETENTION_EVERY;
        let (wanted, committed) = self.core.retention_marks(now);
        let segments = match self.shared.log.read().segments() {
            Ok(s) => s,
            Err(e) => return warn!(error = %e, "retention cannot list the log's segments"),
        };
        let wall = std::time::SystemTime::now();
        let plan = crate::storage::retention::plan(&segments, &retention, wanted, committed, wall);
        let Some(through) = plan else {
            return;
        };
        let mut log = self.shared.log.write();
        let before = log.base();
        match log.delete_through(through) {
            Ok(0) => {}
            Ok(n) => {
                let (base, numbers) = (log.base(), log.numbers_at_base());
                let groups = log.groups_at_base();
                drop(log);
                self.shared.tail().drop_through(base.seq);
                self.shared_sends.clear();
                info!(node = %self.shared.cfg.id, segments = n, first = base.seq + 1, "retention deleted the oldest segment(s): the log now starts at sequence number {}", base.seq + 1);
                self.step(
                    now,
                    Event::Compacted {
                        base,
                        numbers,
                        groups,
                    },
                );
            }
            Err(e) => {
                // The base may have moved before the failure: the core
                // must know where the log starts.
                let (base, numbers) = (log.base(), log.numbers_at_base());
                let groups = log.groups_at_base();
                drop(log);
                warn!(error = %e, "retention could not delete old segments; will try again");
                self.shared.tail().drop_through(base.seq);
                self.shared_sends.clear();
                if base != before {
                    self.step(
                        now,
                        Event::Compacted {
                            base,
                            numbers,
                            groups,
                        },
                    );
                }
            }
        }
    }

    /// Asks the core (the master's) to trim the logs whose own retention
    /// lets messages go: the plan is the storage's arithmetic over each
    /// log's share of the segments; the core writes what it still may.
    fn apply_log_retention(&mut self, now: std::time::Instant) {
        if !self.core.is_master() || now < self.log_retention_due {
            return;
        }
        self.log_retention_due = now + RETENTION_EVERY;
        let retained = self.core.logs().retained();
        if retained.is_empty() {
            return;
        }
        let committed = self.core.committed();
        let wall = std::time::SystemTime::now();
        let mut trims = Vec::new();
        for (id, retention, trimmed) in retained {
            let shares = match self.shared.log.read().log_shares(id, committed) {
                Ok(s) => s,
                Err(e) => {
                    return warn!(error = %e, "a log's retention cannot list the log's segments")
                }
            };
            let limits = (retention.bytes, retention.age_secs.map(Duration::from_secs));
            if let Some(through) =
                crate::storage::retention::plan_log(&shares, limits, trimmed, wall)
            {
                trims.push((id, through));
            }
        }
        if !trims.is_empty() {
            self.step(now, Event::TrimLogs(trims));
        }
    }

    fn end_round(&mut self, now: std::time::Instant) {
        self.apply_retention(now);
        self.apply_log_retention(now);
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
        let committed = self.core.committed();
        self.committed_tx.send_if_modified(|c| {
            let changed = *c != committed;
            *c = committed;
            changed
        });
        let visible = self.core.stored();
        self.visible_tx.send_if_modified(|v| {
            let changed = *v != visible;
            *v = visible;
            changed
        });
        (self.shared.members_from_log).store(
            self.core.members_from_log(),
            std::sync::atomic::Ordering::Relaxed,
        );
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
            if matches!(input, Input::Storage(_)) {
                self.handle(now, input);
            }
        }
        while let Some(input) = self.requeue.pop_front() {
            self.handle_one(now, input);
        }
        let (point, last) = {
            let log = self.shared.log.read();
            (log.sync_point(), log.last().seq)
        };
        let synced = match point {
            Some(point) => match tokio::task::spawn_blocking(move || point.sync()).await {
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
                let upto = last;
                self.step(now, Event::Storage(StorageReport::Synced { gen, upto }))
            }
            Err(reason) => self.handle_one(now, Input::Storage(StorageReport::Failed { reason })),
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

/// The ranges of entries (`from..=to`) that `actions` send more than once
/// (to several secondaries), each once, in order of first appearance.
fn ranges_sent_twice(actions: &[Action]) -> Vec<(Seq, Seq)> {
    let ranges: Vec<(Seq, Seq)> = (actions.iter())
        .filter_map(|a| match a {
            Action::SendEntries { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    let mut twice = Vec::new();
    for (i, range) in ranges.iter().enumerate() {
        if !twice.contains(range) && ranges[i + 1..].contains(range) {
            twice.push(*range);
        }
    }
    twice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(peer: usize, from: Seq, to: Seq) -> Action {
        Action::SendEntries {
            peer,
            conn: 1,
            from,
            to,
        }
    }

    #[test]
    fn only_ranges_sent_to_more_than_one_secondary_are_encoded_once() {
        let actions = vec![
            send(0, 1, 512),
            send(0, 513, 600),
            Action::RecordEpoch(2),
            send(1, 1, 512),
            // Misaligned: this secondary is one entry behind.
            send(1, 512, 600),
            send(2, 1, 512),
            send(2, 513, 600),
        ];
        assert_eq!(ranges_sent_twice(&actions), vec![(1, 512), (513, 600)]);
        assert_eq!(ranges_sent_twice(&actions[..3]), vec![]);
        assert_eq!(ranges_sent_twice(&[]), vec![]);
    }
}
