//! The master's replication logic: where sequence numbers are assigned,
//! where acks are counted and where an append learns it has reached `w`.
//!
//! Counting rule: an append with write concern `w` completes once the master
//! itself has stored the entry *and* `w - 1` secondaries have acknowledged
//! it. The master always counts among the `w` (SPEC 2.4: "w=2 once the
//! master and one secondary have"). This is what makes the master's log the
//! truth: every acknowledged entry is in it, so cutting a secondary's suffix
//! the master never stored can never cut an acknowledged entry.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::keys::KeyWindow;
use super::numbers::Numbers;
use super::redial::{LinkDown, Redial};
use super::storage::{Durability, StorageReport};
pub use super::LogState;
use super::{backoff, AppendRequest, ClientId, ConnId, Timing};
use crate::entry::{Entry, Epoch, Position, Seq};
use crate::wire::{AppendError, Frame, NodeHealth, NodeRole, PeerStatus};

/// A heartbeat reply resumes a paused delivery at once only while the
/// secondary has failed fewer times than this in a row.
const RESUME_ON_HEARTBEAT_MAX_ATTEMPTS: u32 = 3;

/// Longest request key accepted. Keys are stored with every entry and
/// counted in replication batches, so they must stay small.
pub const MAX_KEY_BYTES: usize = 256;

/// Fixed facts the master core is built with.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// The master's own id and address.
    pub me: (String, String),
    /// Every secondary's id and address, in cluster order.
    pub secondaries: Vec<(String, String)>,
    /// The members, the master included: who of them votes (counts toward
    /// `w`, a majority and the commit mark).
    pub members: crate::replication::membership::Membership,
    /// The sequence number of the configuration entry `members` comes from
    /// (0 for `--cluster`'s): a change waits until it is committed.
    pub config_seq: Seq,
    /// The configuration entries of the log, in order, with the members
    /// each records (the newest is `members`): a reset sends the one in
    /// force at its base.
    pub configs: Vec<(Seq, crate::replication::membership::Membership)>,
    /// Deadlines and backoff.
    pub timing: Timing,
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most entries sent to one secondary and not yet acknowledged.
    pub window: u64,
    /// Most entries in one `SendEntries` action.
    pub batch: u64,
    /// Seed of the jitter; fixed in tests, random in production.
    pub seed: u64,
    /// When an entry counts as stored (`--fsync`): only once synced, and a
    /// failed sync cuts the log back to what was; or once written, and a
    /// failed sync is only reported.
    pub durability: Durability,
    /// Elections (`--failover on`): a secondary holding entries this
    /// master cut may be elected and keep them, so an append whose entry
    /// was cut after being sent is answered as indefinite, not as "not
    /// stored".
    pub failover: bool,
}

/// Something that happened, fed to [`Master::step`].
#[derive(Debug, Clone, PartialEq)]
pub enum MasterEvent {
    /// A client wants a message appended.
    Append(AppendRequest),
    /// A fact about the local log; what it means for acknowledgements is
    /// this core's [`Durability`].
    Storage(StorageReport),
    /// A replication connection finished its handshake.
    PeerConnected {
        /// Index of the secondary in the cluster's secondaries.
        peer: usize,
        /// Connection id.
        conn: ConnId,
        /// The secondary's last entry (written, maybe not synced).
        last: Position,
        /// The secondary's last stored sequence number.
        stored: Seq,
        /// The first sequence number of each epoch in its log.
        epochs: Vec<(Epoch, Seq)>,
        /// The node protocol version it said (`NodeVersion`; 7 if it said
        /// none): which frames it reads.
        version: u32,
    },
    /// A secondary answered the master's hello with a refusal (a wrong
    /// key, another configuration): it is up, but will not replicate.
    PeerRefused {
        /// Which secondary.
        peer: usize,
        /// What was refused, for health and the log.
        reason: String,
        /// Refused because its `--cluster` or `--master` differs.
        mismatch: bool,
    },
    /// Retention deleted the log's start: it begins after `base`.
    Compacted {
        /// The entry before the first one held.
        base: Position,
        /// Each log's last message number at `base`.
        numbers: Vec<(crate::entry::LogId, Seq)>,
    },
    /// A replication connection closed or failed.
    PeerDisconnected {
        /// Which secondary.
        peer: usize,
        /// Connection id.
        conn: ConnId,
    },
    /// The link to a secondary is down (after `PeerDisconnected` or
    /// `PeerRefused`, or a dial that reached nothing) and waits to be told
    /// when to dial again (`Redial`).
    LinkDown {
        /// Which secondary.
        peer: usize,
        /// Which link to it (a link stopped for a new one may report too):
        /// echoed in `Redial`, and a report from an older link than one
        /// already heard is ignored.
        link: u64,
        /// Why.
        down: LinkDown,
    },
    /// A cumulative acknowledgement.
    Ack {
        /// Which secondary.
        peer: usize,
        /// Connection id.
        conn: ConnId,
        /// Everything up to here is stored there.
        stored: Seq,
    },
    /// The secondary failed to take entries after `stored`.
    Nack {
        /// Which secondary.
        peer: usize,
        /// Connection id.
        conn: ConnId,
        /// Everything up to here is stored there.
        stored: Seq,
        /// Why, for the log.
        reason: String,
    },
    /// Answer to a heartbeat.
    HeartbeatReply {
        /// Which secondary.
        peer: usize,
        /// Connection id.
        conn: ConnId,
        /// Everything up to here is stored there.
        stored: Seq,
        /// It said it is a learner (`LearnerHeartbeatReply`).
        learner: bool,
    },
    /// A client asks for a membership change: `next` is the membership it
    /// makes (one change from the current one, checked by the caller).
    ChangeMembers {
        /// Client connection.
        client: ClientId,
        /// Request id.
        req: u64,
        /// The membership asked for.
        next: crate::replication::membership::Membership,
    },
    /// A client asks for a log to be created or deleted: `change` is the
    /// catalog entry's, checked by the core against the catalog.
    ChangeLogs {
        /// Client connection.
        client: ClientId,
        /// Request id.
        req: u64,
        /// The change.
        change: crate::replication::catalog::Change,
    },
    /// A log's own retention lets its messages go up to a number: `change`
    /// is the trim entry's, checked by the core against the catalog. It is
    /// written up to the log's last message but one (that one numbers the
    /// next), if that still trims something, and answered to nobody.
    Trim {
        /// The change.
        change: crate::replication::catalog::Change,
        /// What the log has trimmed already.
        trimmed: Seq,
    },
    /// A client asks for a consumer group's position to be set, or the
    /// group deleted: `change` is the group entry's, checked by the core.
    ChangeGroups {
        /// Client connection.
        client: ClientId,
        /// Request id.
        req: u64,
        /// The change.
        change: crate::replication::groups::GroupChange,
    },
    /// Time passed.
    Tick,
}

/// Something the runtime must do, returned by [`Master::step`] and
/// [`Master::flush`], in order.
#[derive(Debug, Clone, PartialEq)]
pub enum MasterAction {
    /// Write this entry to the local log (then report it written and synced).
    Persist(Entry),
    /// Send entries `from..=to`, read from the local log, to a secondary.
    SendEntries {
        /// Which secondary.
        peer: usize,
        /// On which connection.
        conn: ConnId,
        /// First sequence number.
        from: Seq,
        /// Last sequence number.
        to: Seq,
    },
    /// Send a frame to a secondary.
    Send {
        /// Which secondary.
        peer: usize,
        /// On which connection.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// Tell a client where its waiting append stands (best effort).
    Progress {
        /// Client connection.
        client: ClientId,
        /// Request id.
        req: u64,
        /// Its sequence number.
        seq: Seq,
        /// Nodes that must still store it.
        needed: u32,
        /// Ids of the nodes that do not hold it yet.
        missing: Vec<String>,
    },
    /// Answer a client's append.
    Reply {
        /// Client connection.
        client: ClientId,
        /// Request id.
        req: u64,
        /// The sequence number, or why not.
        result: Result<Seq, AppendError>,
    },
    /// Cut the local log after `after` (and forget whatever was waiting to
    /// be written beyond it). If cutting fails, report `StorageReport::Failed`.
    CutLog {
        /// Last sequence number kept.
        after: Seq,
    },
    /// Drop this replication connection and dial again: it went silent.
    Reconnect {
        /// Which secondary.
        peer: usize,
        /// The silent connection.
        conn: ConnId,
    },
    /// Dial this secondary again after `after` (its link is down).
    Redial {
        /// Which secondary.
        peer: usize,
        /// The link that reported down.
        link: u64,
        /// How long to wait first.
        after: std::time::Duration,
    },
    /// Start a link to a member just added (peer `peer`, listening at
    /// `addr`), in this master's epoch.
    StartLink {
        /// Its index among the secondaries.
        peer: usize,
        /// Its id.
        id: String,
        /// Its address.
        addr: String,
    },
    /// Stop the link to a member just removed.
    StopLink {
        /// Which secondary.
        peer: usize,
    },
    /// The secondary's log cannot be reconciled with this master's without
    /// destroying data, or the secondary runs a release that cannot take
    /// its entries: log the reason loudly and drop the connection.
    Diverged {
        /// Which secondary.
        peer: usize,
        /// The connection.
        conn: ConnId,
        /// What was found and what to do.
        reason: String,
    },
}

/// One secondary as the master tracks it.
#[derive(Debug, Clone)]
struct Peer {
    /// Node id.
    id: String,
    /// Address from the cluster list.
    addr: String,
    /// The live replication connection, if any.
    conn: Option<ConnId>,
    /// The node protocol version it said on that connection (0 before).
    version: u32,
    /// When that connection was established.
    connected_at: Option<Instant>,
    /// Highest sequence number it acknowledged as stored.
    acked: Seq,
    /// Next sequence number to send is `sent + 1` (rewound after a nack).
    sent: Seq,
    /// Highest sequence number ever sent on the current connection (or
    /// agreed at its start): an ack above it is impossible and ignored, so
    /// a stale ack can never count copies a secondary does not hold.
    max_sent: Seq,
    /// The last sequence number of each `SendEntries` not yet acked, at
    /// most [`super::FRAMES_IN_FLIGHT`].
    in_flight: VecDeque<Seq>,
    /// Last time anything arrived from it.
    last_heard: Option<Instant>,
    /// Last time a heartbeat was sent to it.
    last_ping: Option<Instant>,
    /// Delivery is paused until then after a failure.
    retry_at: Option<Instant>,
    /// Consecutive failures, for the backoff.
    attempt: u32,
    /// Why the last handshake was refused, until a connection succeeds,
    /// and whether that was a configuration mismatch.
    refused: Option<(String, bool)>,
    /// What its last answer to a heartbeat said: it is a learner (it does
    /// not vote yet). Shown in `health`; it counts toward `w` and the
    /// commit mark all the same, since an ack means it stored the entry
    /// and everything before it.
    learner: bool,
    /// A voter of the members: it counts toward `w`, a majority and the
    /// commit mark (a learner member only receives entries).
    voter: bool,
    /// No longer a member: nothing is sent to it, nothing it says counts.
    gone: bool,
    /// When its link dials again after going down.
    redial: Redial,
    /// The newest link to it that reported down.
    link: u64,
    /// Removed by the configuration entry at this seq, not yet committed:
    /// it counts for nothing, and is still sent the log, so that it holds
    /// its own removal (and says so) before its link is closed.
    leaving: Option<Seq>,
    /// A learner member: the commit mark it is promoted once it has
    /// stored (the first one seen while it is connected: see `members`).
    promote_at: Option<Seq>,
}

/// A client waiting for its entry to reach `w` nodes.
#[derive(Debug, Clone)]
struct Waiter {
    client: ClientId,
    req: u64,
    /// Where its entry is in the log.
    seq: Seq,
    /// What the client is told: a message's number in its log (a
    /// configuration entry's `seq`, having none).
    shown: Seq,
    /// Nodes it needs, master included.
    w: u32,
    /// For an append that asked for progress: on how many nodes it was
    /// when last told.
    told: Option<u32>,
}

/// Most waiters told of their progress at once: progress is advisory, and
/// each ack looks at every such waiter.
pub const MAX_PROGRESS_WAITERS: usize = 256;

/// The master's state machine.
#[derive(Debug)]
pub struct Master {
    /// Fixed configuration.
    cfg: MasterConfig,
    /// This master's epoch.
    epoch: Epoch,
    /// Last sequence number assigned.
    last: Seq,
    /// Last sequence number stored locally under the fsync policy.
    stored: Seq,
    /// First sequence number of every epoch in the log, in order.
    epochs: Vec<(Epoch, Seq)>,
    /// Request key -> sequence number of the newest entries, for
    /// exactly-once appends (within the dedup window).
    keys: KeyWindow,
    /// Each log's last message number: a message takes the next of its
    /// log's. Unknown after a cut until the runtime reports them (appends
    /// are held meanwhile).
    numbers: Numbers,
    /// The named logs at the base, as a reset tells them (the core, which
    /// follows the catalog, says: [`Master::set_logs_at_base`]).
    logs_at_base: bytes::Bytes,
    /// The consumer groups' positions at the base, as a reset tells them
    /// (from the core: [`Master::set_groups_at_base`]).
    groups_at_base: bytes::Bytes,
    /// The secondaries.
    peers: Vec<Peer>,
    /// Waiting appends by id.
    waiters: foldhash::HashMap<u64, Waiter>,
    /// Waiter ids by write concern (index w-1) and sequence number.
    by_w: Vec<BTreeMap<Seq, Vec<u64>>>,
    /// Waiter ids by deadline.
    deadlines: BTreeSet<(Instant, u64)>,
    /// Next waiter id.
    next_waiter: u64,
    /// Waiters that asked for progress (some may have been answered since).
    progress: BTreeSet<u64>,
    /// The entry before the first the log holds (retention deleted the
    /// ones before): a secondary that lacks entries up to it starts again
    /// after it.
    base: Position,
    /// First sequence number of this master's own epoch when it was
    /// elected (its marker), 0 otherwise. An entry of an older epoch counts
    /// as on a node only once that node holds this one too (Raft's commit
    /// rule): counting copies of an older epoch's entry is not enough, a
    /// master elected later could still cut it.
    commit_floor: Seq,
    /// Last sequence number known to be on a majority, at or after
    /// `commit_floor`: no failover removes it. Never goes back.
    committed: Seq,
    /// The last entry of the log this master took over: entries up to it
    /// came from earlier masters and may be committed on other nodes.
    inherited: Seq,
    /// The epoch's first entry was cut (a failed write or sync): a marker is
    /// written again at the next tick, unless an append comes first.
    marker_due: bool,
    /// Highest sequence number handed to any secondary (entries are sent
    /// once written, while the master's own sync runs): a cut below it
    /// removes entries another node may hold.
    replicated: Seq,
    /// A cut removed entries already sent to secondaries: reusing their
    /// sequence numbers in this epoch would give two nodes different
    /// entries of one epoch at one seq, which log matching rules out. The
    /// node must go on in a new epoch (static master) or step down (with
    /// elections) before anything else is written.
    epoch_spent: bool,
    /// Set once the local log failed: nothing more is acknowledged.
    broken: Option<String>,
    /// The last write or sync failed (a full disk, say) and nothing has
    /// been stored since: shown in health. Appends still try.
    storage_trouble: Option<String>,
    /// When this master started: a secondary not heard from since is
    /// `Connecting`, not `Unhealthy`, for the first `unhealthy_after`.
    started: Instant,
    /// Appends that arrived while quorum was still unknown (secondaries
    /// still connecting), in arrival order: admitted once quorum is known,
    /// refused once it cannot be had.
    held: VecDeque<Held>,
    /// Jitter source, seeded.
    rng: SmallRng,
    /// A membership change asked for, waiting until one may be written
    /// (see `members`).
    change: Option<members::Change>,
}

/// An append past its checks, waiting to learn whether the master has a
/// quorum (or about to be admitted).
#[derive(Debug, Clone)]
struct Held {
    /// The request.
    request: AppendRequest,
    /// Its write concern, resolved.
    w: u32,
    /// When the client stops waiting (from its timeout).
    deadline: Option<Instant>,
}

/// What the master knows about its quorum at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quorum {
    /// A majority is reachable: appends are accepted.
    Known,
    /// Not yet, but secondaries still connecting could make it.
    Unknown,
    /// Cannot be had now: appends are refused.
    Lost,
}

impl Master {
    /// A master over a log in the given state, all of it stored (recovered
    /// from disk and synced again by the runtime before the core is built),
    /// starting at `now`.
    pub fn new(cfg: MasterConfig, log: LogState, now: Instant) -> Self {
        let last = log.last.seq;
        Master::resume(cfg, log, last, now)
    }

    /// A master over a log in the given state of which only `stored` is
    /// known to be stored (a secondary taking over).
    pub fn resume(cfg: MasterConfig, log: LogState, stored: Seq, now: Instant) -> Self {
        let peers = (cfg.secondaries.iter())
            .map(|(id, addr)| Peer::new(id, addr, cfg.members.is_voter(id)))
            .collect();
        let n = cfg.secondaries.len() + 1;
        Master {
            change: None,
            rng: SmallRng::seed_from_u64(cfg.seed),
            epoch: log.epoch,
            last: log.last.seq,
            stored: stored.min(log.last.seq),
            epochs: log.epochs,
            keys: log.keys,
            numbers: log.numbers,
            logs_at_base: log.catalog.at_base().encode(),
            groups_at_base: log.groups.at_base().clone(),
            peers,
            // Looked up for every ack: a fast hasher (randomly seeded).
            waiters: foldhash::HashMap::default(),
            by_w: vec![BTreeMap::new(); n],
            deadlines: BTreeSet::new(),
            next_waiter: 0,
            progress: BTreeSet::new(),
            commit_floor: 0,
            marker_due: false,
            inherited: log.last.seq,
            // What the log held when it was known committed: never more
            // than the log (a secondary may have heard of a mark beyond
            // what it had received).
            // Retention deleted only committed entries.
            committed: log.committed.max(log.base.seq).min(log.last.seq),
            base: log.base,
            replicated: 0,
            epoch_spent: false,
            broken: None,
            storage_trouble: None,
            started: now,
            held: VecDeque::new(),
            cfg,
        }
    }

    /// The named logs at the log's base changed (retention moved it): a
    /// reset tells a secondary these.
    pub fn set_logs_at_base(&mut self, logs: bytes::Bytes) {
        self.logs_at_base = logs;
    }

    /// Log `log`'s last message number, unless a cut's numbers are not yet
    /// reported.
    pub fn last_number(&self, log: crate::entry::LogId) -> Option<Seq> {
        self.numbers.is_known().then(|| self.numbers.last(log))
    }

    /// The consumer groups' positions at the log's base changed
    /// (retention moved it): a reset tells a secondary these.
    pub fn set_groups_at_base(&mut self, groups: bytes::Bytes) {
        self.groups_at_base = groups;
    }

    /// Number of voters in the cluster, master included if it is one:
    /// what `w`, a majority and the commit mark count.
    pub fn nodes(&self) -> usize {
        usize::from(self.me_voter()) + self.peers.iter().filter(|p| p.counts()).count()
    }

    /// Nodes needed for a quorum.
    pub fn needed(&self) -> u32 {
        super::quorum::majority(self.nodes())
    }

    /// The master's epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Last sequence number assigned.
    pub fn last(&self) -> Seq {
        self.last
    }

    /// The last entry's position.
    pub fn last_position(&self) -> Position {
        Position {
            epoch: super::last_epoch(&self.epochs, self.last),
            seq: self.last,
        }
    }

    /// Whether the local log failed: nothing more is acknowledged.
    pub fn broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Last sequence number stored locally.
    pub fn stored(&self) -> Seq {
        self.stored
    }

    /// Whether a failed write or sync cut entries this master took over
    /// (received from an earlier master but not yet durable here). Those
    /// may be committed on other nodes: a master without them must not go
    /// on, or it would write over them.
    pub fn lost_inherited(&self) -> bool {
        self.last < self.inherited
    }

    /// Whether a cut removed entries already sent to secondaries, so that
    /// this epoch cannot go on: see [`Master::start_epoch`].
    pub fn epoch_spent(&self) -> bool {
        self.epoch_spent
    }

    /// A static master goes on in `epoch` after a cut spent its old one,
    /// as if it had restarted at `now`: every replication connection is
    /// forgotten (the runtime restarts the links saying hello for the new
    /// epoch), each secondary's handshake then cuts what it holds beyond
    /// this log, and meanwhile the secondaries are Connecting, so appends
    /// wait for them rather than being refused for want of a quorum.
    pub fn start_epoch(&mut self, epoch: Epoch, now: Instant) {
        debug_assert!(epoch > self.epoch);
        self.epoch = epoch;
        self.epoch_spent = false;
        self.started = now;
        for p in &mut self.peers {
            p.conn = None;
            p.connected_at = None;
            p.last_heard = None;
            p.refused = None;
            // New links dial afresh, as at a master's start.
            p.redial = Redial::default();
        }
    }

    /// Last sequence number known to be on a majority (see `committed`).
    pub fn committed(&self) -> Seq {
        self.committed
    }

    /// An elected master's first act: the marker of its epoch
    /// ([`Entry::marker`]), after which entries of older epochs can be
    /// counted as committed. Not needed when every entry it holds is
    /// known committed already (a new cluster's empty log, or a quiet
    /// cluster): then no sequence number goes to a marker.
    pub fn begin_epoch(&mut self, out: &mut Vec<MasterAction>) {
        if self.committed >= self.last {
            return;
        }
        self.write_marker(out);
    }

    /// Writes the epoch's marker as the next entry; entries of older epochs
    /// count from it on.
    pub(super) fn write_marker(&mut self, out: &mut Vec<MasterAction>) {
        let seq = self.next_seq((0, 0), None, &[]);
        self.commit_floor = seq;
        out.push(MasterAction::Persist(Entry::marker(self.epoch, seq)));
    }

    /// The next sequence number, for an entry of this epoch with `key` and
    /// `message`: recorded in the epochs and the dedup window. Any entry of
    /// this epoch does what a due marker would.
    pub(super) fn next_seq(
        &mut self,
        (log, number): (crate::entry::LogId, Seq),
        key: Option<&str>,
        message: &[u8],
    ) -> Seq {
        self.marker_due = false;
        self.last += 1;
        let seq = self.last;
        if self.epochs.last().map(|(e, _)| *e) != Some(self.epoch) {
            self.epochs.push((self.epoch, seq));
        }
        self.keys.push((seq, log, number), key, message);
        seq
    }

    /// Feeds one event; the actions it causes are pushed to `out`.
    pub fn step(&mut self, now: Instant, event: MasterEvent, out: &mut Vec<MasterAction>) {
        self.on_event(now, event, out);
        // Whatever the event changed (a secondary heard, time passed), held
        // appends may now be admitted or refused, and a membership change
        // written.
        self.admit_held(now, out);
        self.write_change(out);
    }

    /// One handler per event (the `on_*` methods, by concern: storage
    /// events in `storage.rs`, the secondaries' in `peers.rs`).
    fn on_event(&mut self, now: Instant, event: MasterEvent, out: &mut Vec<MasterAction>) {
        match event {
            MasterEvent::Append(request) => self.append(now, request, out),
            MasterEvent::Storage(report) => self.on_storage(report, out),
            MasterEvent::PeerConnected {
                peer,
                conn,
                last,
                stored,
                epochs,
                version,
            } => {
                let theirs = (last, &epochs[..], version);
                self.on_peer_connected(now, peer, conn, theirs, stored, out)
            }
            MasterEvent::PeerRefused {
                peer,
                reason,
                mismatch,
            } => self.on_peer_refused(now, peer, reason, mismatch),
            MasterEvent::PeerDisconnected { peer, conn } => self.on_peer_disconnected(peer, conn),
            MasterEvent::LinkDown { peer, link, down } => {
                self.on_link_down(now, (peer, link), down, out)
            }
            MasterEvent::Ack { peer, conn, stored } => self.on_ack(now, peer, conn, stored, out),
            MasterEvent::Nack {
                peer, conn, stored, ..
            } => self.on_nack(now, peer, conn, stored, out),
            MasterEvent::HeartbeatReply {
                peer,
                conn,
                stored,
                learner,
            } => self.on_heartbeat_reply(now, (peer, conn), (stored, learner), out),
            MasterEvent::Tick => self.tick(now, out),
            MasterEvent::ChangeLogs {
                client,
                req,
                change,
            } => self.write_control((client, req), change.entry(self.epoch, self.last + 1), out),
            MasterEvent::ChangeGroups {
                client,
                req,
                change,
            } => self.write_control((client, req), change.entry(self.epoch, self.last + 1), out),
            MasterEvent::Trim { change, trimmed } => self.write_trim(change, trimmed, out),
            MasterEvent::ChangeMembers { client, req, next } => {
                self.change((client, req), next, out)
            }
            MasterEvent::Compacted { base, numbers } => {
                self.numbers.compacted(numbers);
                self.on_compacted(base, out)
            }
        }
    }

    /// What this core knows of its log, to build the core of another role
    /// over it, and the last sequence number stored. Waiters must have been
    /// answered first ([`Master::shutdown`]).
    pub fn into_log_state(self) -> (LogState, Seq) {
        let state = LogState {
            epoch: self.epoch,
            last: Position {
                epoch: super::last_epoch(&self.epochs, self.last),
                seq: self.last,
            },
            epochs: self.epochs,
            keys: self.keys,
            vote: None,
            committed: self.committed,
            base: self.base,
            learner: false,
            configs: Vec::new(),
            numbers: self.numbers,
            // The role's core keeps the catalog (`role::catalog`).
            catalog: Default::default(),
            groups: Default::default(),
        };
        (state, self.stored)
    }

    /// Retention deleted the log's start: it now begins after `base`. A
    /// connected secondary still to be sent an entry before it cannot be
    /// caught up from this log: its connection is dropped, and the next
    /// one starts it again after the base.
    fn on_compacted(&mut self, base: Position, out: &mut Vec<MasterAction>) {
        self.base = base;
        // Of the configuration entries at or before the base, only the
        // newest is the members in force there.
        let older = (self.cfg.configs.iter())
            .take_while(|(s, _)| *s <= base.seq)
            .count();
        self.cfg.configs.drain(..older.saturating_sub(1));
        // Waiting for an entry that is gone: no node still lacking it can
        // be sent it (retention deletes only entries on a majority).
        let gone: Vec<u64> = (self.waiters.iter())
            .filter(|(_, w)| w.seq <= base.seq)
            .map(|(id, _)| *id)
            .collect();
        let majority = crate::replication::quorum::majority(self.nodes());
        let mut gone: Vec<Waiter> = gone
            .iter()
            .filter_map(|id| self.waiters.remove(id))
            .collect();
        gone.sort_by_key(|w| w.seq);
        for w in gone {
            // Everything deleted was on a majority: enough for w up to it
            // (a waiter may only have been held by the commit floor).
            let result = if w.w <= majority {
                Ok(w.shown)
            } else {
                Err(AppendError::Deleted {
                    seq: w.shown,
                    stored_on: self.stored_on(w.seq).max(majority),
                })
            };
            out.push(MasterAction::Reply {
                client: w.client,
                req: w.req,
                result,
            });
        }
        for (peer, p) in self.peers.iter_mut().enumerate() {
            // Still to be sent (or, after a nack, sent again) an entry that
            // is gone: the next connection resets it.
            if let Some(conn) = p.conn.filter(|_| p.acked < base.seq || p.sent < base.seq) {
                p.conn = None;
                p.connected_at = None;
                out.push(MasterAction::Reconnect { peer, conn });
            }
        }
    }

    /// From which sequence number on entries are still wanted by a
    /// secondary this master hears from (retention keeps them, within its
    /// byte limit); `Seq::MAX` if none is behind.
    pub fn wanted_from(&self, now: Instant) -> Seq {
        (self.peers.iter())
            .filter(|p| {
                matches!(
                    self.status(p, now),
                    PeerStatus::Healthy | PeerStatus::Suspected
                )
            })
            .map(|p| p.acked + 1)
            .min()
            .unwrap_or(Seq::MAX)
    }

    /// The node is stopping (or stepping down): every waiting append is
    /// answered with its sequence number, as settled if its entry is
    /// known to be on a majority and as not settled otherwise
    /// (`Master::unsettled`).
    pub fn shutdown(&mut self, out: &mut Vec<MasterAction>) {
        // Held appends were never given a sequence number: nothing stored.
        for a in self.held.drain(..) {
            out.push(MasterAction::Reply {
                client: a.request.client,
                req: a.request.req,
                result: Err(AppendError::ShuttingDown { seq: None }),
            });
        }
        let mut waiters: Vec<Waiter> = self.waiters.drain().map(|(_, w)| w).collect();
        waiters.sort_by_key(|w| w.seq);
        for w in waiters {
            out.push(MasterAction::Reply {
                client: w.client,
                req: w.req,
                result: Err(self.unsettled((w.seq, w.shown), false)),
            });
        }
        for q in &mut self.by_w {
            q.clear();
        }
        self.deadlines.clear();
    }
}

mod admission;
mod delivery;
mod liveness;
mod logs;
mod members;
mod peers;
mod storage;
mod waiters;

#[cfg(test)]
mod member_tests;
#[cfg(test)]
mod tests;
