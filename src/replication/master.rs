//! The master's replication logic: where sequence numbers are assigned,
//! where acks are counted and where an append learns it has reached `w`.
//!
//! Counting rule: an append with write concern `w` completes once the master
//! itself has stored the entry *and* `w - 1` secondaries have acknowledged
//! it. The master always counts among the `w` (SPEC 2.4: "w=2 once the
//! master and one secondary have"). This is what makes the master's log the
//! truth: every acknowledged entry is in it, so cutting a secondary's suffix
//! the master never stored can never cut an acknowledged entry.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::SeedableRng;

use super::keys::KeyWindow;
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
    /// Entries count as stored only once synced (`--fsync always`): a failed
    /// sync then means the log is cut back to what was synced. Otherwise
    /// entries count once written and a failed sync is only reported.
    pub stored_means_synced: bool,
}

/// What the master's log held when the core was built.
#[derive(Debug)]
pub struct LogState {
    /// The epoch this master runs in (a new one per start).
    pub epoch: Epoch,
    /// Last entry in the log.
    pub last: Position,
    /// First sequence number of each epoch present in the log, in order.
    pub epochs: Vec<(Epoch, Seq)>,
    /// Request keys of the newest entries of the log (the dedup window),
    /// ending at `last`.
    pub keys: KeyWindow,
}

/// Something that happened, fed to [`Master::step`].
#[derive(Debug, Clone, PartialEq)]
pub enum MasterEvent {
    /// A client wants a message appended.
    Append(AppendRequest),
    /// The local log has stored everything up to `upto` under its policy.
    Stored {
        /// Last sequence number stored.
        upto: Seq,
    },
    /// Entries after `after` were not written, or were written but not
    /// made durable and have been cut: they do not exist. The log itself
    /// works (a full disk, say): later appends try again.
    Unwritten {
        /// Last sequence number the log holds.
        after: Seq,
        /// The error, for clients.
        reason: String,
    },
    /// A sync of the local log failed. After a failed fdatasync the kernel
    /// may have dropped the written pages, and a later sync can report
    /// success for data that is gone ("fsyncgate"), so what was not yet
    /// reported stored must not be trusted.
    SyncFailed {
        /// The error, for clients and health.
        reason: String,
    },
    /// The local log failed in a way that cannot be undone: nothing more
    /// is acknowledged.
    StorageFailed {
        /// The error, for clients and the log.
        reason: String,
    },
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
    },
    /// A secondary answered the master's hello with a refusal (another
    /// cluster, say): it is up, but will not replicate.
    PeerRefused {
        /// Which secondary.
        peer: usize,
        /// What was refused, for health and the log.
        reason: String,
    },
    /// A replication connection closed or failed.
    PeerDisconnected {
        /// Which secondary.
        peer: usize,
        /// Connection id.
        conn: ConnId,
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
    },
    /// Time passed.
    Tick,
}

/// Something the runtime must do, returned by [`Master::step`] and
/// [`Master::flush`], in order.
#[derive(Debug, Clone, PartialEq)]
pub enum MasterAction {
    /// Write this entry to the local log (then report `Stored`).
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
    /// be written beyond it). If cutting fails, report `StorageFailed`.
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
    /// The secondary's log cannot be reconciled with this master's without
    /// destroying data: log the reason loudly and drop the connection.
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
    /// Last time anything arrived from it.
    last_heard: Option<Instant>,
    /// Last time a heartbeat was sent to it.
    last_ping: Option<Instant>,
    /// Delivery is paused until then after a failure.
    retry_at: Option<Instant>,
    /// Consecutive failures, for the backoff.
    attempt: u32,
    /// Why the last handshake was refused, until a connection succeeds.
    refused: Option<String>,
}

/// A client waiting for its entry to reach `w` nodes.
#[derive(Debug, Clone)]
struct Waiter {
    client: ClientId,
    req: u64,
    seq: Seq,
}

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
    /// The secondaries.
    peers: Vec<Peer>,
    /// Waiting appends by id.
    waiters: HashMap<u64, Waiter>,
    /// Waiter ids by write concern (index w-1) and sequence number.
    by_w: Vec<BTreeMap<Seq, Vec<u64>>>,
    /// Waiter ids by deadline.
    deadlines: BTreeSet<(Instant, u64)>,
    /// Next waiter id.
    next_waiter: u64,
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
    /// A master over a log in the given state, starting at `now`.
    pub fn new(cfg: MasterConfig, log: LogState, now: Instant) -> Self {
        let peers = cfg
            .secondaries
            .iter()
            .map(|(id, addr)| Peer {
                id: id.clone(),
                addr: addr.clone(),
                conn: None,
                connected_at: None,
                acked: 0,
                sent: 0,
                max_sent: 0,
                last_heard: None,
                last_ping: None,
                retry_at: None,
                attempt: 0,
                refused: None,
            })
            .collect();
        let n = cfg.secondaries.len() + 1;
        Master {
            rng: SmallRng::seed_from_u64(cfg.seed),
            epoch: log.epoch,
            last: log.last.seq,
            // Whatever the log held at start has been recovered from disk and
            // synced again by the runtime before the core is built.
            stored: log.last.seq,
            epochs: log.epochs,
            keys: log.keys,
            peers,
            waiters: HashMap::new(),
            by_w: vec![BTreeMap::new(); n],
            deadlines: BTreeSet::new(),
            next_waiter: 0,
            broken: None,
            storage_trouble: None,
            started: now,
            held: VecDeque::new(),
            cfg,
        }
    }

    /// Number of nodes in the cluster, master included.
    pub fn nodes(&self) -> usize {
        self.peers.len() + 1
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

    /// Whether the local log failed: nothing more is acknowledged.
    pub fn broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Last sequence number stored locally.
    pub fn stored(&self) -> Seq {
        self.stored
    }

    /// Status of one secondary at `now`. A secondary without a live
    /// connection is Unhealthy: a closed connection is proof enough, and
    /// waiting for the deadline would keep the master writable on a
    /// minority for seconds. The exception is a secondary never heard from
    /// since this master started: during the first `unhealthy_after` it is
    /// Connecting (it may simply not be listening yet), not Unhealthy.
    fn status(&self, peer: &Peer, now: Instant) -> PeerStatus {
        match (peer.conn, peer.last_heard) {
            (Some(_), Some(heard)) => {
                let silent = now.saturating_duration_since(heard);
                if silent > self.cfg.timing.unhealthy_after {
                    PeerStatus::Unhealthy
                } else if silent > self.cfg.timing.suspect_after {
                    PeerStatus::Suspected
                } else {
                    PeerStatus::Healthy
                }
            }
            (None, _) if peer.refused.is_some() => PeerStatus::Refused,
            (None, None)
                if now.saturating_duration_since(self.started)
                    <= self.cfg.timing.unhealthy_after =>
            {
                PeerStatus::Connecting
            }
            _ => PeerStatus::Unhealthy,
        }
    }

    /// Nodes (master included) known to be reachable: neither Unhealthy nor
    /// still Connecting.
    pub fn reachable(&self, now: Instant) -> u32 {
        1 + self
            .peers
            .iter()
            .filter(|p| {
                !matches!(
                    self.status(p, now),
                    PeerStatus::Unhealthy | PeerStatus::Connecting | PeerStatus::Refused
                )
            })
            .count() as u32
    }

    /// Secondaries still Connecting.
    fn connecting(&self, now: Instant) -> u32 {
        self.peers
            .iter()
            .filter(|p| self.status(p, now) == PeerStatus::Connecting)
            .count() as u32
    }

    fn quorum(&self, now: Instant) -> Quorum {
        let reachable = self.reachable(now);
        if reachable >= self.needed() {
            Quorum::Known
        } else if reachable + self.connecting(now) >= self.needed() {
            Quorum::Unknown
        } else {
            Quorum::Lost
        }
    }

    /// Whether new appends are refused: no quorum can be had now (while it
    /// is still unknown they wait instead), or the local log failed.
    pub fn read_only(&self, now: Instant) -> bool {
        self.broken.is_some() || self.quorum(now) == Quorum::Lost
    }

    /// Every node as the master sees it, itself first.
    pub fn health(&self, now: Instant) -> Vec<NodeHealth> {
        let mut nodes = vec![NodeHealth {
            id: self.cfg.me.0.clone(),
            addr: self.cfg.me.1.clone(),
            role: NodeRole::Master,
            status: if self.broken.is_some() || self.storage_trouble.is_some() {
                PeerStatus::Unhealthy
            } else {
                PeerStatus::Healthy
            },
            acked: self.stored,
            lag: self.last - self.stored,
            last_heard_ms: Some(0),
        }];
        for p in &self.peers {
            nodes.push(NodeHealth {
                id: p.id.clone(),
                addr: p.addr.clone(),
                role: NodeRole::Secondary,
                status: self.status(p, now),
                acked: p.acked,
                lag: self.last.saturating_sub(p.acked),
                last_heard_ms: p
                    .last_heard
                    .map(|h| now.saturating_duration_since(h).as_millis() as u64),
            });
        }
        nodes
    }

    /// Last sequence number of the log whose epoch is at most `epoch`: where
    /// a secondary whose log ends in `epoch` agrees with this log at most.
    fn last_seq_of_epoch_at_most(&self, epoch: Epoch) -> Seq {
        match self.epochs.iter().find(|(e, _)| *e > epoch) {
            Some((_, first)) => first - 1,
            None => self.last,
        }
    }

    /// Feeds one event; the actions it causes are pushed to `out`.
    pub fn step(&mut self, now: Instant, event: MasterEvent, out: &mut Vec<MasterAction>) {
        self.on_event(now, event, out);
        // Whatever the event changed (a secondary heard, time passed), held
        // appends may now be admitted or refused.
        self.admit_held(now, out);
    }

    fn on_event(&mut self, now: Instant, event: MasterEvent, out: &mut Vec<MasterAction>) {
        match event {
            MasterEvent::Append(request) => self.append(now, request, out),
            MasterEvent::Stored { upto } => {
                if self.broken.is_none() {
                    if upto.min(self.last) > self.stored {
                        self.storage_trouble = None;
                    }
                    self.stored = self.stored.max(upto.min(self.last));
                    self.release(out);
                }
            }
            MasterEvent::Unwritten { after, reason } => self.on_unwritten(now, after, reason, out),
            MasterEvent::SyncFailed { reason } => {
                if self.cfg.stored_means_synced {
                    // Cut back to what is durable: none of the rest was
                    // acknowledged, and (only stored entries are sent) no
                    // other node holds it.
                    let after = self.stored;
                    out.push(MasterAction::CutLog { after });
                    self.on_unwritten(now, after, reason, out);
                } else {
                    // Already acknowledged on being written: they stay.
                    self.storage_trouble = Some(reason);
                }
            }
            MasterEvent::StorageFailed { reason } => {
                self.broken = Some(reason.clone());
                // Nothing past what is already stored will ever count: fail
                // everyone still waiting on it.
                let ids: Vec<u64> = self.waiters.keys().copied().collect();
                for id in ids {
                    let waiter = &self.waiters[&id];
                    if waiter.seq > self.stored {
                        let w = self.waiters.remove(&id).expect("present");
                        out.push(MasterAction::Reply {
                            client: w.client,
                            req: w.req,
                            result: Err(AppendError::Storage(reason.clone())),
                        });
                    }
                }
            }
            MasterEvent::PeerConnected {
                peer,
                conn,
                last,
                stored,
            } => {
                // Entries of this master's epoch (or a later one) that this
                // master does not have cannot exist unless its own data
                // directory was lost or replaced. Cutting the secondary back
                // would destroy data, and keeping it would let the logs
                // diverge: refuse to replicate to it and say so.
                if last.epoch > self.epoch || (last.epoch == self.epoch && last.seq > self.last) {
                    let reason = format!(
                        "secondary {} holds entries up to seq {} of epoch {}, which this master (epoch {}, last seq {}) never wrote: this master's data directory was lost or replaced. Refusing to replicate to it so that nothing is cut; restore the master's data directory (for example from this secondary) and restart it",
                        self.peers[peer].id, last.seq, last.epoch, self.epoch, self.last
                    );
                    // Heard from, and refused: Unhealthy, not Connecting.
                    self.peers[peer].last_heard = Some(now);
                    return out.push(MasterAction::Diverged { peer, conn, reason });
                }
                let agree = last.seq.min(self.last_seq_of_epoch_at_most(last.epoch));
                let truncate_after = (agree < last.seq).then_some(agree);
                let p = &mut self.peers[peer];
                p.conn = Some(conn);
                p.connected_at = Some(now);
                p.last_heard = Some(now);
                p.last_ping = Some(now);
                p.acked = stored.min(agree);
                p.sent = agree;
                p.max_sent = agree;
                p.retry_at = None;
                p.attempt = 0;
                p.refused = None;
                out.push(MasterAction::Send {
                    peer,
                    conn,
                    frame: Frame::Sync { truncate_after },
                });
                self.release(out);
            }
            MasterEvent::PeerRefused { peer, reason } => {
                // Heard from, without a connection: Refused at once, not
                // Connecting, until a connection succeeds.
                let p = &mut self.peers[peer];
                if p.conn.is_none() {
                    p.last_heard = Some(now);
                    p.refused = Some(reason);
                }
            }
            MasterEvent::PeerDisconnected { peer, conn } => {
                let p = &mut self.peers[peer];
                if p.conn == Some(conn) {
                    p.conn = None;
                    p.connected_at = None;
                }
            }
            MasterEvent::Ack { peer, conn, stored } => {
                if self.heard(peer, conn, now, stored) {
                    self.peers[peer].attempt = 0;
                    self.release(out);
                }
            }
            MasterEvent::Nack {
                peer, conn, stored, ..
            } => {
                if self.heard(peer, conn, now, stored) {
                    // Rewind to what it holds and pause; `flush` resends once
                    // the backoff has passed.
                    let delay = backoff(
                        self.cfg.timing.retry_base,
                        self.cfg.timing.retry_max,
                        self.peers[peer].attempt,
                        &mut self.rng,
                    );
                    let p = &mut self.peers[peer];
                    p.sent = p.acked;
                    p.attempt = p.attempt.saturating_add(1);
                    p.retry_at = Some(now + delay);
                    self.release(out);
                }
            }
            MasterEvent::HeartbeatReply { peer, conn, stored } => {
                if self.heard(peer, conn, now, stored) {
                    // A live secondary: resume delivery now rather than at
                    // the end of the backoff. Not after repeated failures,
                    // though: a secondary that keeps failing (a broken disk)
                    // still answers heartbeats, and resending everything at
                    // every heartbeat would defeat the backoff.
                    let p = &mut self.peers[peer];
                    if p.attempt < RESUME_ON_HEARTBEAT_MAX_ATTEMPTS {
                        p.retry_at = None;
                    }
                    self.release(out);
                }
            }
            MasterEvent::Tick => self.tick(now, out),
        }
    }

    /// The log holds nothing after `after`: every append waiting on a later
    /// entry is answered that it was not stored (definite: the entry is
    /// gone from this node, and no other node ever had it, since only
    /// stored entries are sent), their keys are forgotten, and the next
    /// append takes `after + 1`.
    fn on_unwritten(
        &mut self,
        now: Instant,
        after: Seq,
        reason: String,
        out: &mut Vec<MasterAction>,
    ) {
        self.storage_trouble = Some(reason.clone());
        if after > self.last {
            // The log holds entries this core never assigned: a bug, and
            // nothing it could acknowledge from here on can be trusted.
            let reason = format!(
                "{reason}; the log holds seq {after} but only {} were assigned",
                self.last
            );
            return self.on_event(now, MasterEvent::StorageFailed { reason }, out);
        }
        if after == self.last {
            return;
        }
        let mut gone: Vec<(Seq, u64)> = self
            .waiters
            .iter()
            .filter(|(_, w)| w.seq > after)
            .map(|(id, w)| (w.seq, *id))
            .collect();
        gone.sort_unstable();
        for (_, id) in gone {
            let w = self.waiters.remove(&id).expect("present");
            out.push(MasterAction::Reply {
                client: w.client,
                req: w.req,
                result: Err(AppendError::Storage(format!(
                    "{reason}; the message was not stored"
                ))),
            });
        }
        // Stale ids left in `by_w` and `deadlines` find no waiter and are
        // skipped.
        self.keys.truncate_after(after);
        self.epochs.retain(|(_, first)| *first <= after);
        self.last = after;
        self.stored = self.stored.min(after);
    }

    /// Records that `peer` spoke on `conn` and holds `stored`. Returns false
    /// for a stale connection.
    fn heard(&mut self, peer: usize, conn: ConnId, now: Instant, stored: Seq) -> bool {
        let p = &mut self.peers[peer];
        if p.conn != Some(conn) {
            return false;
        }
        p.last_heard = Some(now);
        p.acked = p.acked.max(stored.min(p.max_sent));
        // Cumulative acks can overtake a rewind after a nack.
        p.sent = p.sent.max(p.acked);
        true
    }

    fn append(&mut self, now: Instant, request: AppendRequest, out: &mut Vec<MasterAction>) {
        let AppendRequest {
            client,
            req,
            ref key,
            w,
            timeout,
            ref message,
        } = request;
        let reply = |out: &mut Vec<MasterAction>, result| {
            out.push(MasterAction::Reply {
                client,
                req,
                result,
            })
        };
        let n = self.nodes();
        let w = super::quorum::nodes_for(w, n);
        if w < 1 || w as usize > n {
            let msg = format!(
                "write concern w={w} is impossible in a cluster of {n} node(s); use 1 to {n}, 'majority' or 'all'"
            );
            return reply(out, Err(AppendError::BadRequest(msg)));
        }
        if message.len() > self.cfg.max_message_bytes {
            let msg = format!(
                "the message is {} bytes, over the {} byte limit (--max-message-bytes)",
                message.len(),
                self.cfg.max_message_bytes
            );
            return reply(out, Err(AppendError::BadRequest(msg)));
        }
        if key.as_ref().is_some_and(|k| k.len() > MAX_KEY_BYTES) {
            let msg = format!("the request key is over {MAX_KEY_BYTES} bytes");
            return reply(out, Err(AppendError::BadRequest(msg)));
        }
        if let Some(reason) = &self.broken {
            return reply(out, Err(AppendError::Storage(reason.clone())));
        }
        let held = Held {
            deadline: timeout.map(|t| now + t),
            w,
            request,
        };
        // Behind appends already held, to keep arrival order.
        if self.held.is_empty() {
            self.admit(now, held, out);
        } else {
            self.held.push_back(held);
        }
    }

    /// Assigns a sequence number (or finds the original one for a known
    /// key), holds the append while quorum is unknown, or refuses it.
    fn admit(&mut self, now: Instant, a: Held, out: &mut Vec<MasterAction>) {
        let known = a.request.key.as_deref().and_then(|k| self.keys.get(k));
        let seq = match known {
            // A retry: answer with the original entry once it reaches `w`.
            Some(seq) => seq,
            None => match self.quorum(now) {
                Quorum::Known => {
                    self.last += 1;
                    let seq = self.last;
                    if self.epochs.last().map(|(e, _)| *e) != Some(self.epoch) {
                        self.epochs.push((self.epoch, seq));
                    }
                    self.keys.push(seq, a.request.key.as_deref());
                    out.push(MasterAction::Persist(Entry {
                        epoch: self.epoch,
                        seq,
                        key: a.request.key.clone(),
                        message: a.request.message.clone(),
                    }));
                    seq
                }
                Quorum::Unknown => return self.held.push_back(a),
                Quorum::Lost => return out.push(self.refusal(now, &a)),
            },
        };
        let id = self.next_waiter;
        self.next_waiter += 1;
        self.waiters.insert(
            id,
            Waiter {
                client: a.request.client,
                req: a.request.req,
                seq,
            },
        );
        self.by_w[a.w as usize - 1].entry(seq).or_default().push(id);
        if let Some(t) = a.request.timeout {
            // The client's clock started when the append arrived.
            let deadline = a.deadline.unwrap_or(now + t);
            self.deadlines.insert((deadline, id));
        }
        if known.is_some() {
            self.release(out);
        }
    }

    fn refusal(&self, now: Instant, a: &Held) -> MasterAction {
        MasterAction::Reply {
            client: a.request.client,
            req: a.request.req,
            result: Err(AppendError::Refused {
                reachable: self.reachable(now),
                needed: self.needed(),
            }),
        }
    }

    /// Admits held appends in order once quorum is known, refuses them once
    /// it is lost, and refuses those whose client timeout passed while
    /// waiting (nothing was appended for them).
    fn admit_held(&mut self, now: Instant, out: &mut Vec<MasterAction>) {
        if self.held.is_empty() {
            return;
        }
        if let Some(reason) = &self.broken {
            let reason = reason.clone();
            for a in self.held.drain(..) {
                out.push(MasterAction::Reply {
                    client: a.request.client,
                    req: a.request.req,
                    result: Err(AppendError::Storage(reason.clone())),
                });
            }
            return;
        }
        // Whose client stopped waiting before quorum was known: nothing was
        // appended for them, and nothing will be.
        let (expired, waiting): (Vec<Held>, Vec<Held>) = self
            .held
            .drain(..)
            .partition(|a| a.deadline.is_some_and(|d| d <= now));
        self.held = waiting.into();
        for a in expired {
            out.push(self.refusal(now, &a));
        }
        match self.quorum(now) {
            Quorum::Unknown => {}
            Quorum::Known | Quorum::Lost => {
                let held = std::mem::take(&mut self.held);
                for a in held {
                    self.admit(now, a, out);
                }
            }
        }
    }

    /// How many nodes hold `seq`, master included (0 if the master does not).
    fn stored_on(&self, seq: Seq) -> u32 {
        let master = u32::from(self.stored >= seq);
        master + self.peers.iter().filter(|p| p.acked >= seq).count() as u32
    }

    /// Answers every waiter whose entry has reached its write concern.
    fn release(&mut self, out: &mut Vec<MasterAction>) {
        // Still runs once the log is broken: `stored` no longer moves then,
        // so what completes is only what was stored before the failure.
        let mut acked: Vec<Seq> = self.peers.iter().map(|p| p.acked).collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        for w in 1..=self.nodes() {
            // The master must hold it, and w-1 secondaries.
            let done_upto = if w == 1 {
                self.stored
            } else {
                self.stored.min(acked[w - 2])
            };
            let queue = &mut self.by_w[w - 1];
            while let Some(entry) = queue.first_entry() {
                if *entry.key() > done_upto {
                    break;
                }
                let (seq, ids) = entry.remove_entry();
                for id in ids {
                    if let Some(waiter) = self.waiters.remove(&id) {
                        out.push(MasterAction::Reply {
                            client: waiter.client,
                            req: waiter.req,
                            result: Ok(seq),
                        });
                    }
                }
            }
        }
    }

    /// The next instant at which a `Tick` has something to do (a heartbeat
    /// due, a silence to detect, a backoff ending, an append timing out, the
    /// start-up period ending for appends held on it), if any. The runtime
    /// sleeps until then instead of ticking at a fixed rate.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let timing = self.cfg.timing;
        // Comparisons with the silence deadlines are strict (`>`).
        let just_after = std::time::Duration::from_millis(1);
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for p in &self.peers {
            if p.conn.is_none() {
                continue;
            }
            let heard = p.last_heard.or(p.connected_at).unwrap_or(now);
            at(heard + timing.unhealthy_after + just_after);
            at(p.last_ping.map_or(now, |t| t + timing.heartbeat_interval));
            if let Some(t) = p.retry_at {
                at(t);
            }
        }
        if let Some(&(deadline, _)) = self.deadlines.first() {
            at(deadline);
        }
        if !self.held.is_empty() {
            at(self.started + timing.unhealthy_after + just_after);
            for h in &self.held {
                if let Some(d) = h.deadline {
                    at(d);
                }
            }
        }
        next
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<MasterAction>) {
        let timing = self.cfg.timing;
        for (i, p) in self.peers.iter_mut().enumerate() {
            let Some(conn) = p.conn else { continue };
            let heard = p.last_heard.or(p.connected_at).unwrap_or(now);
            if now.saturating_duration_since(heard) > timing.unhealthy_after {
                // Silent: no error, no bytes. Do not trust this connection.
                p.conn = None;
                p.connected_at = None;
                out.push(MasterAction::Reconnect { peer: i, conn });
                continue;
            }
            let due = p
                .last_ping
                .is_none_or(|t| now.saturating_duration_since(t) >= timing.heartbeat_interval);
            if due {
                p.last_ping = Some(now);
                out.push(MasterAction::Send {
                    peer: i,
                    conn,
                    frame: Frame::Heartbeat,
                });
            }
            if p.retry_at.is_some_and(|t| t <= now) {
                p.retry_at = None;
            }
        }
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(waiter) = self.waiters.remove(&id) {
                let stored_on = self.stored_on(waiter.seq);
                out.push(MasterAction::Reply {
                    client: waiter.client,
                    req: waiter.req,
                    result: Err(AppendError::TimedOut {
                        seq: waiter.seq,
                        stored_on,
                    }),
                });
            }
        }
    }

    /// The node is stopping: every waiting append is answered with
    /// `ShuttingDown` and its sequence number (it is in the log).
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
                result: Err(AppendError::ShuttingDown { seq: Some(w.seq) }),
            });
        }
        for q in &mut self.by_w {
            q.clear();
        }
        self.deadlines.clear();
    }

    /// Sends whatever each connected secondary is missing, up to the window.
    /// The runtime calls this after each batch of events, so entries that
    /// arrived together travel together.
    ///
    /// Only entries the master has stored are sent. Under `--fsync always`
    /// a secondary therefore never holds an entry the master could lose in a
    /// power cut, so it never shows an entry that is cut later; the cost is
    /// that a `w >= 2` append waits for the master's sync before the
    /// secondaries' instead of alongside it.
    pub fn flush(&mut self, now: Instant, out: &mut Vec<MasterAction>) {
        for (i, p) in self.peers.iter_mut().enumerate() {
            let Some(conn) = p.conn else { continue };
            if p.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            p.retry_at = None;
            while p.sent < self.stored && p.sent - p.acked < self.cfg.window {
                let room = self.cfg.window - (p.sent - p.acked);
                let to = self.stored.min(p.sent + self.cfg.batch.min(room));
                out.push(MasterAction::SendEntries {
                    peer: i,
                    conn,
                    from: p.sent + 1,
                    to,
                });
                p.sent = to;
                p.max_sent = p.max_sent.max(to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WriteConcern;
    use std::time::Duration;
    use MasterAction as A;
    use MasterEvent as E;

    fn master(secondaries: usize) -> (Master, Instant) {
        let cfg = MasterConfig {
            me: ("m".into(), "m:1".into()),
            secondaries: (0..secondaries)
                .map(|i| (format!("s{i}"), format!("s{i}:1")))
                .collect(),
            timing: Timing::default(),
            max_message_bytes: 100,
            window: 1000,
            batch: 100,
            seed: 1,
            stored_means_synced: true,
        };
        let state = LogState {
            epoch: 1,
            last: Position::default(),
            epochs: Vec::new(),
            keys: KeyWindow::new(1000, 1),
        };
        let now = Instant::now();
        (Master::new(cfg, state, now), now)
    }

    fn step(m: &mut Master, now: Instant, e: MasterEvent) -> Vec<MasterAction> {
        let mut out = Vec::new();
        m.step(now, e, &mut out);
        out
    }

    fn flush(m: &mut Master, now: Instant) -> Vec<MasterAction> {
        let mut out = Vec::new();
        m.flush(now, &mut out);
        out
    }

    fn connect_all(m: &mut Master, now: Instant) {
        for peer in 0..m.peers.len() {
            let out = step(
                m,
                now,
                E::PeerConnected {
                    peer,
                    conn: peer as u64 + 10,
                    last: Position::default(),
                    stored: 0,
                },
            );
            assert_eq!(
                out,
                vec![A::Send {
                    peer,
                    conn: peer as u64 + 10,
                    frame: Frame::Sync {
                        truncate_after: None
                    }
                }]
            );
        }
    }

    // Events and actions on the connections `connect_all` opens (peer i on
    // connection i + 10).
    fn ack_from(peer: usize, stored: Seq) -> MasterEvent {
        E::Ack {
            peer,
            conn: peer as u64 + 10,
            stored,
        }
    }

    fn heartbeat_reply(peer: usize, stored: Seq) -> MasterEvent {
        E::HeartbeatReply {
            peer,
            conn: peer as u64 + 10,
            stored,
        }
    }

    fn sent(peer: usize, from: Seq, to: Seq) -> MasterAction {
        A::SendEntries {
            peer,
            conn: peer as u64 + 10,
            from,
            to,
        }
    }

    fn append(client: u64, req: u64, w: WriteConcern, msg: &str) -> MasterEvent {
        E::Append(AppendRequest {
            client,
            req,
            key: None,
            w,
            timeout: None,
            message: bytes::Bytes::copy_from_slice(msg.as_bytes()),
        })
    }

    fn entry(seq: Seq, msg: &str) -> Entry {
        Entry {
            epoch: 1,
            seq,
            key: None,
            message: bytes::Bytes::copy_from_slice(msg.as_bytes()),
        }
    }

    fn ok(client: u64, req: u64, seq: Seq) -> MasterAction {
        A::Reply {
            client,
            req,
            result: Ok(seq),
        }
    }

    #[test]
    fn append_completes_at_exactly_the_wth_ack() {
        let (mut m, now) = master(2);
        connect_all(&mut m, now);
        assert_eq!(
            step(&mut m, now, append(7, 1, WriteConcern::Nodes(3), "a")),
            vec![A::Persist(entry(1, "a"))]
        );
        // Nothing leaves before the master has stored it...
        assert_eq!(flush(&mut m, now), vec![]);
        assert_eq!(step(&mut m, now, E::Stored { upto: 1 }), vec![]);
        // ...then it goes to both secondaries, before any ack.
        assert_eq!(flush(&mut m, now), vec![sent(0, 1, 1), sent(1, 1, 1)]);
        assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
        assert_eq!(step(&mut m, now, ack_from(1, 1)), vec![ok(7, 1, 1)]);
    }

    #[test]
    fn acks_for_entries_never_sent_on_this_connection_do_not_count() {
        let (mut m, now) = master(2);
        connect_all(&mut m, now);
        step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
        step(&mut m, now, E::Stored { upto: 1 });
        // A stale ack (from before a reconnection, say) claims seq 1, which
        // was not sent on this connection yet: it must not count.
        let stale = ack_from(0, 1);
        assert_eq!(step(&mut m, now, stale.clone()), vec![]);
        assert_eq!(flush(&mut m, now).len(), 2);
        assert_eq!(step(&mut m, now, stale), vec![ok(1, 1, 1)]);
    }

    #[test]
    fn acks_out_of_order_across_secondaries_release_the_right_waiters() {
        let (mut m, now) = master(2);
        connect_all(&mut m, now);
        step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
        step(&mut m, now, append(1, 2, WriteConcern::Nodes(3), "b"));
        step(&mut m, now, append(1, 3, WriteConcern::Nodes(2), "c"));
        step(&mut m, now, E::Stored { upto: 3 });
        assert_eq!(flush(&mut m, now), vec![sent(0, 1, 3), sent(1, 1, 3)]);
        // Secondary 1 is ahead of secondary 0.
        assert_eq!(
            step(&mut m, now, ack_from(1, 3)),
            vec![ok(1, 1, 1), ok(1, 3, 3)]
        );
        assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
        assert_eq!(step(&mut m, now, ack_from(0, 2)), vec![ok(1, 2, 2)]);
        // A stale ack (lower) changes nothing.
        assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
    }

    #[test]
    fn impossible_w_and_oversized_messages_are_bad_requests() {
        let (mut m, now) = master(2);
        connect_all(&mut m, now);
        for w in [WriteConcern::Nodes(4), WriteConcern::Nodes(0)] {
            let out = step(&mut m, now, append(1, 9, w, "a"));
            assert!(
                matches!(
                    &out[..],
                    [A::Reply {
                        result: Err(AppendError::BadRequest(_)),
                        ..
                    }]
                ),
                "{out:?}"
            );
        }
        let out = step(
            &mut m,
            now,
            append(1, 9, WriteConcern::All, &"x".repeat(101)),
        );
        assert!(matches!(
            &out[..],
            [A::Reply {
                result: Err(AppendError::BadRequest(_)),
                ..
            }]
        ));
        assert_eq!(m.last(), 0, "nothing was appended");
    }

    #[test]
    fn without_quorum_appends_are_refused_and_nothing_is_assigned() {
        let (mut m, start) = master(2);
        // Past the start-up period: secondaries never heard are Unhealthy.
        let now = start + Timing::default().unhealthy_after + Duration::from_millis(1);
        let out = step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a"));
        assert_eq!(
            out,
            vec![A::Reply {
                client: 1,
                req: 1,
                result: Err(AppendError::Refused {
                    reachable: 1,
                    needed: 2
                })
            }]
        );
        assert_eq!(m.last(), 0);
        // One secondary back is a majority of three.
        step(
            &mut m,
            now,
            E::PeerConnected {
                peer: 0,
                conn: 1,
                last: Position::default(),
                stored: 0,
            },
        );
        assert_eq!(
            step(&mut m, now, append(1, 2, WriteConcern::Nodes(1), "a")),
            vec![A::Persist(entry(1, "a"))]
        );
    }

    #[test]
    fn a_retried_key_gets_the_original_sequence_number() {
        let (mut m, now) = master(0);
        let keyed = |req| {
            E::Append(AppendRequest {
                client: 1,
                req,
                key: Some("k".into()),
                w: WriteConcern::Nodes(1),
                timeout: None,
                message: "a".into(),
            })
        };
        assert_eq!(step(&mut m, now, keyed(1)).len(), 1);
        assert_eq!(step(&mut m, now, E::Stored { upto: 1 }), vec![ok(1, 1, 1)]);
        assert_eq!(step(&mut m, now, keyed(2)), vec![ok(1, 2, 1)]);
        assert_eq!(m.last(), 1);
    }

    #[test]
    fn timeout_reports_the_sequence_number_and_the_entry_stays() {
        let (mut m, now) = master(1);
        connect_all(&mut m, now);
        let ev = E::Append(AppendRequest {
            client: 1,
            req: 1,
            key: None,
            w: WriteConcern::Nodes(2),
            timeout: Some(Duration::from_millis(100)),
            message: "a".into(),
        });
        step(&mut m, now, ev);
        step(&mut m, now, E::Stored { upto: 1 });
        assert_eq!(
            step(&mut m, now + Duration::from_millis(50), E::Tick),
            vec![]
        );
        let out = step(&mut m, now + Duration::from_millis(101), E::Tick);
        assert!(out.contains(&A::Reply {
            client: 1,
            req: 1,
            result: Err(AppendError::TimedOut {
                seq: 1,
                stored_on: 1
            })
        }));
        assert_eq!(m.last(), 1);
        // A late ack answers nobody twice.
        assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
    }

    #[test]
    fn nack_rewinds_and_resends_after_backoff_or_at_once_on_heartbeat_reply() {
        let (mut m, now) = master(1);
        connect_all(&mut m, now);
        step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
        step(&mut m, now, append(1, 2, WriteConcern::Nodes(2), "b"));
        step(&mut m, now, E::Stored { upto: 2 });
        flush(&mut m, now);
        step(
            &mut m,
            now,
            E::Nack {
                peer: 0,
                conn: 10,
                stored: 1,
                reason: "x".into(),
            },
        );
        // Paused by the backoff: nothing to send yet.
        assert_eq!(flush(&mut m, now), vec![]);
        let later = now + Timing::default().retry_base * 2;
        step(&mut m, later, E::Tick);
        assert_eq!(flush(&mut m, later), vec![sent(0, 2, 2)]);
        // Another failure, then a heartbeat reply resumes at once.
        step(
            &mut m,
            later,
            E::Nack {
                peer: 0,
                conn: 10,
                stored: 1,
                reason: "x".into(),
            },
        );
        assert_eq!(flush(&mut m, later), vec![]);
        step(&mut m, later, heartbeat_reply(0, 1));
        assert_eq!(flush(&mut m, later), vec![sent(0, 2, 2)]);
    }

    #[test]
    fn a_silent_secondary_becomes_unhealthy_and_is_redialled() {
        let (mut m, now) = master(2);
        connect_all(&mut m, now);
        let t = Timing::default();
        let h = |m: &Master, at| m.health(at).iter().map(|n| n.status).collect::<Vec<_>>();
        assert_eq!(h(&m, now)[1], PeerStatus::Healthy);
        step(&mut m, now + t.suspect_after, heartbeat_reply(1, 0));
        let suspect = now + t.suspect_after + Duration::from_millis(1);
        assert_eq!(h(&m, suspect)[1], PeerStatus::Suspected);
        assert_eq!(h(&m, suspect)[2], PeerStatus::Healthy);
        let dead = now + t.unhealthy_after + Duration::from_millis(1);
        let out = step(&mut m, dead, E::Tick);
        assert!(out.contains(&A::Reconnect { peer: 0, conn: 10 }), "{out:?}");
        assert_eq!(h(&m, dead)[1], PeerStatus::Unhealthy);
        // Stale events from the dropped connection are ignored.
        assert_eq!(step(&mut m, dead, ack_from(0, 0)), vec![]);
        assert_eq!(h(&m, dead)[1], PeerStatus::Unhealthy);
    }

    #[test]
    fn a_secondary_with_a_suffix_the_master_never_stored_is_cut_back() {
        let cfg = MasterConfig {
            me: ("m".into(), "m:1".into()),
            secondaries: vec![("s".into(), "s:1".into())],
            timing: Timing::default(),
            max_message_bytes: 100,
            window: 1000,
            batch: 100,
            seed: 1,
            stored_means_synced: true,
        };
        // The log holds 1..=5 of epoch 1 and 6..=7 of epoch 2; this is epoch 3.
        let state = LogState {
            epoch: 3,
            last: Position { epoch: 2, seq: 7 },
            epochs: vec![(1, 1), (2, 6)],
            keys: KeyWindow::new(100, 8),
        };
        let mut m = Master::new(cfg, state, Instant::now());
        let now = Instant::now();
        // The secondary got 1..=8 of epoch 1: 6..=8 never made it to the master's disk.
        let out = step(
            &mut m,
            now,
            E::PeerConnected {
                peer: 0,
                conn: 1,
                last: Position { epoch: 1, seq: 8 },
                stored: 8,
            },
        );
        assert_eq!(
            out,
            vec![A::Send {
                peer: 0,
                conn: 1,
                frame: Frame::Sync {
                    truncate_after: Some(5)
                }
            }]
        );
        assert_eq!(
            flush(&mut m, now),
            vec![A::SendEntries {
                peer: 0,
                conn: 1,
                from: 6,
                to: 7
            }]
        );
        // A secondary that agrees is not cut.
        let out = step(
            &mut m,
            now,
            E::PeerConnected {
                peer: 0,
                conn: 2,
                last: Position { epoch: 2, seq: 7 },
                stored: 7,
            },
        );
        assert_eq!(
            out,
            vec![A::Send {
                peer: 0,
                conn: 2,
                frame: Frame::Sync {
                    truncate_after: None
                }
            }]
        );
        assert_eq!(flush(&mut m, now), vec![]);
    }

    #[test]
    fn at_start_appends_wait_for_connecting_secondaries_instead_of_being_refused() {
        let (mut m, now) = master(2);
        assert_eq!(
            m.health(now)[1..]
                .iter()
                .map(|n| n.status)
                .collect::<Vec<_>>(),
            [PeerStatus::Connecting, PeerStatus::Connecting]
        );
        assert!(!m.read_only(now), "quorum is unknown, not lost");
        // Held in arrival order, nothing assigned yet.
        assert_eq!(
            step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a")),
            vec![]
        );
        assert_eq!(
            step(&mut m, now, append(2, 1, WriteConcern::Nodes(2), "b")),
            vec![]
        );
        assert_eq!(m.last(), 0);
        // One secondary connects: a majority of three. Both are admitted,
        // in order, before anything that arrives after.
        let t = now + Duration::from_millis(30);
        let out = step(
            &mut m,
            t,
            E::PeerConnected {
                peer: 1,
                conn: 4,
                last: Position::default(),
                stored: 0,
            },
        );
        assert_eq!(
            out,
            vec![
                A::Send {
                    peer: 1,
                    conn: 4,
                    frame: Frame::Sync {
                        truncate_after: None
                    }
                },
                A::Persist(entry(1, "a")),
                A::Persist(entry(2, "b")),
            ]
        );
        assert_eq!(step(&mut m, t, E::Stored { upto: 2 }), vec![ok(1, 1, 1)]);
        assert_eq!(
            m.health(t)[1..]
                .iter()
                .map(|n| n.status)
                .collect::<Vec<_>>(),
            [PeerStatus::Connecting, PeerStatus::Healthy]
        );
    }

    #[test]
    fn a_secondary_that_refuses_the_hello_is_unhealthy_at_once_not_connecting() {
        let (mut m, now) = master(2);
        let refused = |peer| E::PeerRefused {
            peer,
            reason: "another cluster".into(),
        };
        assert_eq!(step(&mut m, now, refused(0)), vec![]);
        assert_eq!(m.health(now)[1].status, PeerStatus::Refused);
        assert_eq!(m.health(now)[2].status, PeerStatus::Connecting);
        step(&mut m, now, refused(1));
        // Nobody left who could make a quorum: refused now, not held.
        assert!(m.read_only(now));
        assert!(matches!(
            &step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a"))[..],
            [A::Reply {
                result: Err(AppendError::Refused { .. }),
                ..
            }]
        ));
    }

    #[test]
    fn held_appends_are_refused_once_the_start_up_period_passes_without_quorum() {
        let (mut m, now) = master(2);
        let with_timeout = E::Append(AppendRequest {
            client: 3,
            req: 1,
            key: None,
            w: WriteConcern::Nodes(1),
            timeout: Some(Duration::from_millis(500)),
            message: "t".into(),
        });
        assert_eq!(
            step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a")),
            vec![]
        );
        assert_eq!(step(&mut m, now, with_timeout), vec![]);
        let refused = |client| A::Reply {
            client,
            req: 1,
            result: Err(AppendError::Refused {
                reachable: 1,
                needed: 2,
            }),
        };
        // The client's own timeout passes first: that one alone is refused
        // (nothing was appended for it).
        let t = now + Duration::from_millis(500);
        assert_eq!(step(&mut m, t, E::Tick), vec![refused(3)]);
        let end = now + Timing::default().unhealthy_after;
        assert_eq!(step(&mut m, end, E::Tick), vec![]);
        // Past the start-up period nobody came: quorum is lost.
        let after = end + Duration::from_millis(1);
        assert!(m.read_only(after));
        assert_eq!(step(&mut m, after, E::Tick), vec![refused(1)]);
        assert_eq!(m.last(), 0);
        assert_eq!(
            m.health(after)[1].status,
            PeerStatus::Unhealthy,
            "never heard, and the period is over"
        );
    }

    #[test]
    fn a_secondary_ahead_of_a_master_that_lost_its_data_is_refused_not_cut() {
        // A fresh master (epoch 1, empty log) meets a secondary holding 9
        // entries of epoch 3: cutting it would destroy them.
        let (mut m, now) = master(1);
        let ahead = E::PeerConnected {
            peer: 0,
            conn: 5,
            last: Position { epoch: 3, seq: 9 },
            stored: 9,
        };
        let out = step(&mut m, now, ahead);
        assert!(
            matches!(&out[..], [A::Diverged { peer: 0, conn: 5, reason }] if reason.contains("lost or replaced")),
            "{out:?}"
        );
        assert_eq!(m.health(now)[1].status, PeerStatus::Unhealthy);
        // Same epoch, longer log than the master's: also impossible.
        let longer = E::PeerConnected {
            peer: 0,
            conn: 6,
            last: Position { epoch: 1, seq: 2 },
            stored: 2,
        };
        assert!(matches!(
            &step(&mut m, now, longer)[..],
            [A::Diverged { .. }]
        ));
    }

    #[test]
    fn storage_failure_fails_waiters_and_refuses_new_appends() {
        let (mut m, now) = master(0);
        step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a"));
        let out = step(
            &mut m,
            now,
            E::StorageFailed {
                reason: "disk full".into(),
            },
        );
        assert_eq!(
            out,
            vec![A::Reply {
                client: 1,
                req: 1,
                result: Err(AppendError::Storage("disk full".into()))
            }]
        );
        // A late Stored must not acknowledge anything now.
        assert_eq!(step(&mut m, now, E::Stored { upto: 1 }), vec![]);
        let out = step(&mut m, now, append(1, 2, WriteConcern::Nodes(1), "b"));
        assert!(matches!(
            &out[..],
            [A::Reply {
                result: Err(AppendError::Storage(_)),
                ..
            }]
        ));
    }

    #[test]
    fn unwritten_entries_fail_their_waiters_and_their_numbers_are_reused() {
        let (mut m, now) = master(0);
        let keyed = |req, key: &str| {
            E::Append(AppendRequest {
                client: 1,
                req,
                key: Some(key.into()),
                w: WriteConcern::Nodes(1),
                timeout: None,
                message: "m".into(),
            })
        };
        step(&mut m, now, keyed(1, "k1"));
        step(&mut m, now, E::Stored { upto: 1 });
        step(&mut m, now, keyed(2, "k2"));
        step(&mut m, now, keyed(3, "k3"));
        let failed = |req| A::Reply {
            client: 1,
            req,
            result: Err(AppendError::Storage(
                "disk full; the message was not stored".into(),
            )),
        };
        // 2 and 3 were never written: their waiters learn it, in order.
        let out = step(
            &mut m,
            now,
            E::Unwritten {
                after: 1,
                reason: "disk full".into(),
            },
        );
        assert_eq!(out, vec![failed(2), failed(3)]);
        assert_eq!((m.last(), m.stored()), (1, 1));
        assert_eq!(m.health(now)[0].status, PeerStatus::Unhealthy);
        // Not broken: the next append tries again and takes seq 2; its key
        // was forgotten with the entry, and k1 still names entry 1.
        let out = step(&mut m, now, keyed(4, "k2"));
        assert!(
            matches!(&out[..], [A::Persist(Entry { seq: 2, .. })]),
            "{out:?}"
        );
        assert_eq!(step(&mut m, now, E::Stored { upto: 2 }), vec![ok(1, 4, 2)]);
        assert_eq!(m.health(now)[0].status, PeerStatus::Healthy);
        assert_eq!(step(&mut m, now, keyed(5, "k1")), vec![ok(1, 5, 1)]);
    }

    #[test]
    fn a_failed_sync_cuts_back_to_what_is_durable_only_when_that_is_what_stored_means() {
        for synced in [true, false] {
            let (mut m, now) = master(0);
            m.cfg.stored_means_synced = synced;
            step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a"));
            step(&mut m, now, E::Stored { upto: 1 });
            step(&mut m, now, append(1, 2, WriteConcern::Nodes(1), "b"));
            let out = step(
                &mut m,
                now,
                E::SyncFailed {
                    reason: "EIO".into(),
                },
            );
            if synced {
                assert_eq!(
                    out,
                    vec![
                        A::CutLog { after: 1 },
                        A::Reply {
                            client: 1,
                            req: 2,
                            result: Err(AppendError::Storage(
                                "EIO; the message was not stored".into()
                            )),
                        }
                    ]
                );
                assert_eq!(m.last(), 1);
            } else {
                assert_eq!(out, vec![], "written entries stay under batch/never");
                assert_eq!(m.last(), 2);
            }
            assert_eq!(m.health(now)[0].status, PeerStatus::Unhealthy);
        }
    }

    #[test]
    fn poll_timeout_names_the_next_instant_a_tick_has_work() {
        let (mut m, now) = master(1);
        assert_eq!(m.poll_timeout(now), None, "nothing to do");
        // A held append: its own timeout, and the end of the start-up period.
        let held = E::Append(AppendRequest {
            client: 1,
            req: 1,
            key: None,
            w: WriteConcern::Nodes(1),
            timeout: Some(Duration::from_millis(300)),
            message: "x".into(),
        });
        step(&mut m, now, held);
        assert_eq!(m.poll_timeout(now), Some(now + Duration::from_millis(300)));
        // Connected (another master): the next heartbeat comes first.
        let (mut m, now) = master(1);
        connect_all(&mut m, now);
        let t = Timing::default();
        assert_eq!(m.poll_timeout(now), Some(now + t.heartbeat_interval));
        // Ticking at that instant sends it, and names the next one.
        let later = now + t.heartbeat_interval;
        assert!(step(&mut m, later, E::Tick).contains(&A::Send {
            peer: 0,
            conn: 10,
            frame: Frame::Heartbeat
        }));
        assert_eq!(m.poll_timeout(later), Some(later + t.heartbeat_interval));
    }

    #[test]
    fn window_limits_what_is_in_flight() {
        let (mut m, now) = master(1);
        m.cfg.window = 3;
        m.cfg.batch = 2;
        connect_all(&mut m, now);
        for i in 0..5 {
            step(&mut m, now, append(1, i, WriteConcern::Nodes(1), "x"));
        }
        step(&mut m, now, E::Stored { upto: 5 });
        assert_eq!(flush(&mut m, now), vec![sent(0, 1, 2), sent(0, 3, 3)]);
        step(&mut m, now, ack_from(0, 2));
        assert_eq!(flush(&mut m, now), vec![sent(0, 4, 5)]);
    }
}
