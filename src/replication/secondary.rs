//! The secondary's replication logic: store only in order, show only the
//! contiguous prefix, hold early entries until the gap is filled, ignore and
//! re-acknowledge duplicates, and acknowledge cumulatively once entries are
//! stored under the fsync policy.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::keys::KeyWindow;
use super::numbers::Numbers;
use super::storage::{Durability, StorageReport};
use super::{ConnId, LogState};
use crate::entry::{Entry, Epoch, LogId, Position, Seq};
use crate::wire::{Frame, PeerStatus};

/// What a reset says of the log at its base: the epochs begun, the
/// configuration entries (if the master said) and each log's last number.
type ResetFacts = (
    Vec<(Epoch, Seq)>,
    Option<Vec<(Seq, Bytes)>>,
    Vec<(LogId, Seq)>,
    Bytes,
    Bytes,
);

/// Most bytes of entries (as [`crate::wire::entry_cost`] counts them)
/// held ahead of a gap. Past this, early entries are dropped. Within one
/// TCP connection entries arrive in order and the master's window keeps far
/// less than this in flight, so it only bounds memory against a misbehaving
/// peer; dropped entries come again after the next reconnection.
const MAX_EARLY_BYTES: usize = 16 * 1024 * 1024;

/// Fixed facts the secondary core is built with.
#[derive(Debug, Clone, Default)]
pub struct SecondaryConfig {
    /// `--replicate-delay`: hold every received batch this long before
    /// applying it (a testing aid).
    pub replicate_delay: Duration,
    /// `--fail-rate`: after storing, answer with a Nack with this
    /// probability instead of an Ack (a testing aid).
    pub fail_rate: f64,
    /// Seed of the fail-rate draws.
    pub seed: u64,
    /// When an entry counts as stored, so that it is acknowledged (see
    /// `MasterConfig::durability`).
    pub durability: Durability,
}

/// Something that happened, fed to [`Secondary::step`].
#[derive(Debug, Clone, PartialEq)]
pub enum SecondaryEvent {
    /// The master opened a replication connection (replacing any other).
    MasterConnected {
        /// Connection id.
        conn: ConnId,
    },
    /// The replication connection closed.
    MasterDisconnected {
        /// Connection id.
        conn: ConnId,
    },
    /// The master says where replication resumes.
    Sync {
        /// Connection id.
        conn: ConnId,
        /// Cut the log after this sequence number.
        truncate_after: Option<Seq>,
    },
    /// The master no longer holds entries this node lacks: its log starts
    /// again after `base` (instead of a `Sync`).
    Reset {
        /// Connection id.
        conn: ConnId,
        /// The entry before the master's first.
        base: Position,
        /// The epochs begun up to `base`.
        epochs: Vec<(Epoch, Seq)>,
        /// The configuration entries at or before `base` (the newest, or
        /// none if the members never changed up to it), as sequence number
        /// and message; `None` from a master too old to say.
        configs: Option<Vec<(Seq, Bytes)>>,
        /// Each log's last message number at `base`.
        numbers: Vec<(LogId, Seq)>,
        /// The named logs at `base` (`catalog::Logs`' text).
        logs: Bytes,
        /// The consumer groups' positions at `base` (`groups::Positions`'
        /// text).
        groups: Bytes,
    },
    /// Retention deleted the start of the local log: it begins after
    /// `base`.
    Compacted {
        /// The entry before the first one held.
        base: Position,
        /// Each log's last message number at `base`.
        numbers: Vec<(LogId, Seq)>,
    },
    /// A batch of entries from the master.
    Entries {
        /// Connection id.
        conn: ConnId,
        /// The entries.
        entries: Vec<Entry>,
    },
    /// A heartbeat from the master.
    Heartbeat {
        /// Connection id.
        conn: ConnId,
        /// The master's committed mark.
        committed: Seq,
    },
    /// A fact about the local log; what it means for acks is this core's
    /// [`Durability`].
    Storage(StorageReport),
    /// Time passed.
    Tick,
}

/// Something the runtime must do.
#[derive(Debug, Clone, PartialEq)]
pub enum SecondaryAction {
    /// Append these consecutive entries to the local log (then report
    /// them written, and synced).
    Persist(Vec<Entry>),
    /// Empty the local log: it continues after `base`, with these epochs
    /// begun up to it (the master's retention deleted what it lacked).
    ResetLog {
        /// The entry before the next one.
        base: Position,
        /// The epochs begun up to `base`.
        epochs: Vec<(Epoch, Seq)>,
        /// The configuration entries at or before `base`, if the master
        /// said (see the event).
        configs: Option<Vec<(Seq, Bytes)>>,
        /// Each log's last message number at `base`.
        numbers: Vec<(LogId, Seq)>,
        /// The named logs at `base`.
        logs: Bytes,
        /// The consumer groups' positions at `base`.
        groups: Bytes,
    },
    /// Cut the local log after this sequence number.
    Truncate {
        /// Last sequence number kept.
        after: Seq,
        /// Whether the master's log parts from this one there (a divergent
        /// suffix, kept in a rollback file), rather than a failed sync.
        diverged: bool,
    },
    /// Send a frame to the master on this connection.
    Send {
        /// Connection id.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
}

/// The secondary's state machine.
#[derive(Debug)]
pub struct Secondary {
    /// Fixed configuration.
    cfg: SecondaryConfig,
    /// Last contiguous sequence number handed to the log.
    received: Seq,
    /// Last sequence number stored under the fsync policy.
    stored: Seq,
    /// Entries that arrived ahead of a gap.
    early: BTreeMap<Seq, Entry>,
    /// What `early` holds, in bytes.
    early_bytes: usize,
    /// Batches waiting out `--replicate-delay`, oldest first.
    delayed: VecDeque<(Instant, Vec<Entry>)>,
    /// The master's current connection.
    conn: Option<ConnId>,
    /// Whether that connection's Sync has been handled: nothing is
    /// acknowledged on a connection before it, since the Sync may cut
    /// entries the node holds.
    synced: bool,
    /// Set once the local log failed.
    broken: Option<String>,
    /// Request keys of the newest entries: not used while this node is a
    /// secondary, kept so that it can dedup as soon as it is master.
    keys: KeyWindow,
    /// Each log's last message number, for the same reason; unknown from
    /// a cut until the runtime reports them.
    numbers: Numbers,
    /// The newest epoch recorded in the log when this core was built.
    epoch: Epoch,
    /// First sequence number of each epoch the log holds, in order: what
    /// the log is, should this node become master, and the epoch of its
    /// last entry (a master older than that is stale).
    epochs: Vec<(Epoch, Seq)>,
    /// Last sequence number the master said is on a majority.
    committed: Seq,
    /// The entry before the first the log holds.
    base: Position,
    /// Source of the fail-rate draws.
    rng: SmallRng,
}

impl Secondary {
    /// A secondary over a log in the given state, all of it stored.
    pub fn new(cfg: SecondaryConfig, log: LogState) -> Self {
        let last = log.last.seq;
        Secondary::resume(cfg, log, last)
    }

    /// A secondary over a log in the given state of which only `stored` is
    /// known to be stored (a master stepping down).
    pub fn resume(cfg: SecondaryConfig, log: LogState, stored: Seq) -> Self {
        Secondary {
            rng: SmallRng::seed_from_u64(cfg.seed),
            cfg,
            received: log.last.seq,
            stored: stored.min(log.last.seq),
            early: BTreeMap::new(),
            early_bytes: 0,
            delayed: VecDeque::new(),
            conn: None,
            synced: false,
            broken: None,
            keys: log.keys,
            numbers: log.numbers,
            epoch: log.epoch,
            epochs: log.epochs,
            committed: log.committed.max(log.base.seq),
            base: log.base,
        }
    }

    /// What this core knows of its log, to build the core of another role
    /// over it, and the last sequence number stored.
    pub fn into_log_state(self) -> (LogState, Seq) {
        let last = self.last();
        let state = LogState {
            epoch: self.epoch.max(last.epoch),
            last,
            epochs: self.epochs,
            keys: self.keys,
            vote: None,
            committed: self.committed.min(self.received),
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

    /// The last entry received (handed to the log).
    pub fn last(&self) -> Position {
        Position {
            epoch: super::last_epoch(&self.epochs, self.received),
            seq: self.received,
        }
    }

    /// Forgets everything after `after`: keys and epochs of entries cut,
    /// and the numbers until the runtime reports them as the cut left them.
    fn forget_after(&mut self, after: Seq) {
        self.keys.truncate_after(after);
        self.numbers.forget();
        while self.epochs.last().is_some_and(|(_, first)| *first > after) {
            self.epochs.pop();
        }
    }

    /// The entry before the first the log holds.
    pub fn base(&self) -> Position {
        self.base
    }

    /// Last contiguous sequence number received.
    pub fn received(&self) -> Seq {
        self.received
    }

    /// Last sequence number stored.
    pub fn stored(&self) -> Seq {
        self.stored
    }

    /// Last sequence number known to be on a majority, as far as this node
    /// holds it: a reader shown no further never sees an entry that a
    /// failover removes.
    pub fn committed(&self) -> Seq {
        self.committed.min(self.stored)
    }

    /// First sequence number of each epoch in the log, in order.
    pub fn epochs(&self) -> &[(Epoch, Seq)] {
        &self.epochs
    }

    /// The master's current connection, if any.
    pub fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    /// This node's status as it reports it itself: healthy while its
    /// master is connected (and its log works), unhealthy otherwise.
    pub fn status(&self) -> PeerStatus {
        if self.conn.is_some() && self.broken.is_none() {
            PeerStatus::Healthy
        } else {
            PeerStatus::Unhealthy
        }
    }

    /// The next instant at which a `Tick` has something to do (a batch
    /// delayed by `--replicate-delay` falling due), if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.delayed.front().map(|(t, _)| *t)
    }

    /// Entries received but not yet stored.
    pub fn lag(&self) -> u64 {
        self.received - self.stored
    }

    /// Feeds one event; the actions it causes are pushed to `out`.
    pub fn step(&mut self, now: Instant, event: SecondaryEvent, out: &mut Vec<SecondaryAction>) {
        match event {
            SecondaryEvent::MasterConnected { conn } => {
                self.conn = Some(conn);
                self.synced = false;
                // Whatever was in flight on the old connection is resent
                // after the Sync; drop it so nothing older than the Sync is
                // applied after it.
                self.clear_early();
                self.delayed.clear();
            }
            SecondaryEvent::MasterDisconnected { conn } => {
                if self.conn == Some(conn) {
                    self.conn = None;
                }
            }
            SecondaryEvent::Sync {
                conn,
                truncate_after,
            } => self.on_sync(conn, truncate_after, out),
            SecondaryEvent::Compacted { base, numbers } => {
                self.base = base;
                self.numbers.compacted(numbers);
            }
            SecondaryEvent::Reset {
                conn,
                base,
                epochs,
                configs,
                numbers,
                logs,
                groups,
            } => self.on_reset(conn, base, (epochs, configs, numbers, logs, groups), out),
            SecondaryEvent::Entries { conn, entries } => {
                if self.conn != Some(conn) || !self.synced {
                    return;
                }
                if let Some(reason) = &self.broken {
                    let frame = Frame::Nack {
                        stored: self.stored,
                        reason: reason.clone(),
                    };
                    return out.push(SecondaryAction::Send { conn, frame });
                }
                if self.cfg.replicate_delay.is_zero() {
                    self.apply(conn, entries, out);
                } else {
                    self.delayed
                        .push_back((now + self.cfg.replicate_delay, entries));
                }
            }
            SecondaryEvent::Heartbeat { conn, committed } => {
                if self.conn == Some(conn) && self.synced {
                    // After the Sync, this node's log is a prefix of the
                    // master's (plus what it is still sent): the mark
                    // applies to it.
                    self.committed = self.committed.max(committed);
                    out.push(SecondaryAction::Send {
                        conn,
                        frame: Frame::HeartbeatReply {
                            stored: self.stored,
                        },
                    });
                }
            }
            SecondaryEvent::Storage(report) => self.on_storage(report, out),
            SecondaryEvent::Tick => {
                while self.delayed.front().is_some_and(|(t, _)| *t <= now) {
                    let (_, entries) = self.delayed.pop_front().expect("checked");
                    if let Some(conn) = self.conn {
                        self.apply(conn, entries, out);
                    }
                }
            }
        }
    }

    /// A Sync or Reset on connection `conn`, if it is the live one: what
    /// came before it is dropped, and entries are taken from now on.
    fn start_over(&mut self, conn: ConnId) -> bool {
        if self.conn != Some(conn) {
            return false;
        }
        self.clear_early();
        self.delayed.clear();
        self.synced = true;
        true
    }

    /// The master says where replication resumes: what is past
    /// `truncate_after` is cut, and entries may come.
    fn on_sync(
        &mut self,
        conn: ConnId,
        truncate_after: Option<Seq>,
        out: &mut Vec<SecondaryAction>,
    ) {
        if !self.start_over(conn) {
            return;
        }
        if let Some(after) = truncate_after {
            if after < self.received {
                self.received = after;
                self.forget_after(after);
                self.stored = self.stored.min(after);
                // Never above what this master holds (a mark heard
                // from a deposed master counts for nothing here).
                self.committed = self.committed.min(after);
                out.push(SecondaryAction::Truncate {
                    after,
                    diverged: true,
                });
            }
        }
    }

    /// The master's retention deleted what this log lacks: it starts
    /// again after `base`, with the epochs and configuration given.
    fn on_reset(
        &mut self,
        conn: ConnId,
        base: Position,
        (epochs, configs, numbers, logs, groups): ResetFacts,
        out: &mut Vec<SecondaryAction>,
    ) {
        if !self.start_over(conn) {
            return;
        }
        self.received = base.seq;
        self.stored = base.seq;
        self.keys.restart(base.seq + 1);
        self.numbers.reset(numbers.clone());
        self.epochs = epochs.clone();
        // Everything up to the base is on a majority: the master
        // deletes nothing else.
        self.committed = base.seq;
        self.base = base;
        out.push(SecondaryAction::ResetLog {
            base,
            epochs,
            configs,
            numbers,
            logs,
            groups,
        });
    }

    /// One handler per fact about the local log; `Written` and `Synced`
    /// count as far as this core's durability rule says.
    fn on_storage(&mut self, report: StorageReport, out: &mut Vec<SecondaryAction>) {
        if let Some(upto) = self.cfg.durability.stored_upto(&report) {
            return self.on_stored(upto, out);
        }
        match report {
            StorageReport::Written { .. } | StorageReport::Synced { .. } => {}
            StorageReport::Unwritten { after, reason } => self.on_unwritten(after, reason, out),
            StorageReport::SyncFailed { reason } => {
                if self.cfg.durability == Durability::Synced {
                    // What was not reported stored may be gone: cut back to
                    // what was (and was acknowledged); the master resends.
                    let after = self.stored;
                    out.push(SecondaryAction::Truncate {
                        after,
                        diverged: false,
                    });
                    self.on_unwritten(after, reason, out);
                }
            }
            StorageReport::Failed { reason } => self.on_storage_failed(reason, out),
            StorageReport::Numbers { pairs, .. } => self.numbers.set_last(pairs),
        }
    }

    /// Everything up to `upto` counts as stored: acknowledged to the
    /// master, cumulatively.
    fn on_stored(&mut self, upto: Seq, out: &mut Vec<SecondaryAction>) {
        if self.broken.is_some() {
            return;
        }
        let upto = upto.min(self.received);
        if upto <= self.stored {
            return;
        }
        let before = self.stored;
        self.stored = upto;
        if let (Some(conn), true) = (self.conn, self.synced) {
            let fail = self.cfg.fail_rate > 0.0 && self.rng.gen_bool(self.cfg.fail_rate.min(1.0));
            let frame = if fail {
                // Stored, but answered as if it had failed: the master
                // resends from `before + 1`, and those duplicates
                // exercise deduplication and ordering.
                Frame::Nack {
                    stored: before,
                    reason: "simulated failure (--fail-rate)".into(),
                }
            } else {
                Frame::Ack {
                    stored: self.stored,
                }
            };
            out.push(SecondaryAction::Send { conn, frame });
        }
    }

    /// Nothing after `after` exists: forgotten, and the master told.
    fn on_unwritten(&mut self, after: Seq, reason: String, out: &mut Vec<SecondaryAction>) {
        if after > self.received {
            // The log holds entries this core never handed it: a bug.
            let reason = format!(
                "{reason}; the log holds seq {after} but only {} were received",
                self.received
            );
            return self.on_storage_failed(reason, out);
        }
        self.received = self.received.min(after);
        self.stored = self.stored.min(after);
        self.forget_after(after);
        self.clear_early();
        self.delayed.clear();
        // The master rewinds to `stored` and resends after a backoff; by
        // then the disk may have room again.
        if let (Some(conn), true) = (self.conn, self.synced) {
            let frame = Frame::Nack {
                stored: self.stored,
                reason,
            };
            out.push(SecondaryAction::Send { conn, frame });
        }
    }

    /// The log failed for good: nothing more is acknowledged, and the
    /// master is told why.
    fn on_storage_failed(&mut self, reason: String, out: &mut Vec<SecondaryAction>) {
        self.broken = Some(reason.clone());
        if let Some(conn) = self.conn {
            let frame = Frame::Nack {
                stored: self.stored,
                reason,
            };
            out.push(SecondaryAction::Send { conn, frame });
        }
    }

    fn clear_early(&mut self) {
        self.early.clear();
        self.early_bytes = 0;
    }

    /// Takes a batch: in-order entries go to the log, early ones wait,
    /// duplicates are ignored and re-acknowledged.
    fn apply(&mut self, conn: ConnId, entries: Vec<Entry>, out: &mut Vec<SecondaryAction>) {
        let mut accepted = Vec::new();
        let mut duplicate = false;
        let mut gap = false;
        for entry in entries {
            if entry.seq <= self.received {
                duplicate = true;
            } else if entry.seq == self.received + 1 {
                self.received = entry.seq;
                accepted.push(entry);
                // The gap may be filled now.
                while let Some(next) = self.early.remove(&(self.received + 1)) {
                    self.early_bytes -= crate::wire::entry_cost(&next);
                    self.received = next.seq;
                    accepted.push(next);
                }
            } else {
                gap = true;
                let cost = crate::wire::entry_cost(&entry);
                if self.early_bytes + cost <= MAX_EARLY_BYTES
                    && !self.early.contains_key(&entry.seq)
                {
                    self.early_bytes += cost;
                    self.early.insert(entry.seq, entry);
                }
            }
        }
        if !accepted.is_empty() {
            for e in &accepted {
                self.keys
                    .push((e.seq, e.log, e.number), e.key.as_deref(), &e.message);
                self.numbers.note(e);
                if self.epochs.last().map(|(epoch, _)| *epoch) != Some(e.epoch) {
                    self.epochs.push((e.epoch, e.seq));
                }
            }
            out.push(SecondaryAction::Persist(accepted));
        } else if gap {
            // Something before these never arrived: ask for it, or the
            // master would wait for acks that cannot come.
            out.push(SecondaryAction::Send {
                conn,
                frame: Frame::Nack {
                    stored: self.stored,
                    reason: format!("missing entries after seq {}", self.received),
                },
            });
        } else if duplicate {
            out.push(SecondaryAction::Send {
                conn,
                frame: Frame::Ack {
                    stored: self.stored,
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SecondaryAction as A;
    use SecondaryEvent as E;

    fn e(seq: Seq) -> Entry {
        Entry {
            epoch: 1,
            seq,
            log: crate::entry::DEFAULT_LOG,
            number: seq,
            key: None,
            message: format!("m{seq}").into(),
        }
    }

    fn batch(conn: ConnId, entries: Vec<Entry>) -> SecondaryEvent {
        E::Entries { conn, entries }
    }

    fn step(s: &mut Secondary, now: Instant, ev: SecondaryEvent) -> Vec<SecondaryAction> {
        let mut out = Vec::new();
        s.step(now, ev, &mut out);
        out
    }

    fn connected(cfg: SecondaryConfig, last: Seq) -> (Secondary, Instant) {
        let log = LogState {
            catalog: Default::default(),
            groups: Default::default(),
            epoch: 1,
            last: Position {
                epoch: if last == 0 { 0 } else { 1 },
                seq: last,
            },
            epochs: if last == 0 { vec![] } else { vec![(1, 1)] },
            keys: KeyWindow::new(100, last + 1),
            vote: None,
            committed: 0,
            base: Default::default(),
            learner: false,
            configs: Vec::new(),
            numbers: Default::default(),
        };
        let mut s = Secondary::new(cfg, log);
        let now = Instant::now();
        assert_eq!(step(&mut s, now, E::MasterConnected { conn: 1 }), vec![]);
        // Nothing is acknowledged on a connection before its Sync.
        assert_eq!(
            step(
                &mut s,
                now,
                E::Heartbeat {
                    conn: 1,
                    committed: 0
                }
            ),
            vec![]
        );
        let sync = E::Sync {
            conn: 1,
            truncate_after: None,
        };
        assert_eq!(step(&mut s, now, sync), vec![]);
        (s, now)
    }

    /// The local log reports everything up to `upto` synced.
    fn synced(upto: Seq) -> SecondaryEvent {
        E::Storage(StorageReport::Synced { gen: 0, upto })
    }

    fn ack(stored: Seq) -> SecondaryAction {
        A::Send {
            conn: 1,
            frame: Frame::Ack { stored },
        }
    }

    #[test]
    fn a_write_is_acked_only_where_writing_counts_and_a_sync_is_acked_either_way() {
        for durability in [Durability::Synced, Durability::Written] {
            let cfg = SecondaryConfig {
                durability,
                ..SecondaryConfig::default()
            };
            let (mut s, now) = connected(cfg, 0);
            let out = step(&mut s, now, batch(1, vec![e(1), e(2)]));
            assert_eq!(out, vec![A::Persist(vec![e(1), e(2)])]);
            let written = step(
                &mut s,
                now,
                E::Storage(StorageReport::Written { gen: 0, upto: 2 }),
            );
            let synced = step(&mut s, now, synced(2));
            match durability {
                Durability::Synced => assert_eq!((written, synced), (vec![], vec![ack(2)])),
                Durability::Written => assert_eq!((written, synced), (vec![ack(2)], vec![])),
            }
        }
    }

    #[test]
    fn early_entries_are_held_up_to_a_byte_bound() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        let big = |seq| Entry {
            message: vec![0u8; 1 << 20].into(),
            ..e(seq)
        };
        // 2..=40 arrive before 1: about 39 MiB, more than is held.
        let early: Vec<Entry> = (2..=40).map(big).collect();
        step(&mut s, now, batch(1, early));
        assert!(s.early_bytes <= MAX_EARLY_BYTES, "{}", s.early_bytes);
        assert!(s.early.len() >= 15, "{}", s.early.len());
        // The gap fills: what was held goes to the log, in order, and the
        // rest will come again.
        let out = step(&mut s, now, batch(1, vec![big(1)]));
        let [A::Persist(persisted)] = &out[..] else {
            panic!("{out:?}")
        };
        let seqs: Vec<Seq> = persisted.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=s.received()).collect::<Vec<_>>());
        assert_eq!(s.early_bytes, 0);
    }

    #[test]
    fn unwritten_entries_are_nacked_and_taken_again_when_resent() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        step(&mut s, now, batch(1, vec![e(1), e(2), e(3)]));
        step(&mut s, now, synced(1));
        let out = step(
            &mut s,
            now,
            E::Storage(StorageReport::Unwritten {
                after: 1,
                reason: "disk full".into(),
            }),
        );
        assert_eq!(
            out,
            vec![A::Send {
                conn: 1,
                frame: Frame::Nack {
                    stored: 1,
                    reason: "disk full".into()
                }
            }]
        );
        assert_eq!((s.received(), s.stored()), (1, 1));
        // The master resends from 2: taken again, not as duplicates.
        assert_eq!(
            step(&mut s, now, batch(1, vec![e(2), e(3)])),
            vec![A::Persist(vec![e(2), e(3)])]
        );
    }

    #[test]
    fn a_log_holding_more_than_was_received_is_a_failure_not_a_cut() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        step(&mut s, now, batch(1, vec![e(1), e(2)]));
        let out = step(
            &mut s,
            now,
            E::Storage(StorageReport::Unwritten {
                after: 5,
                reason: "disk full".into(),
            }),
        );
        let reason = "disk full; the log holds seq 5 but only 2 were received".to_string();
        assert_eq!(
            out,
            vec![A::Send {
                conn: 1,
                frame: Frame::Nack { stored: 0, reason }
            }]
        );
        assert_eq!(s.received(), 2, "nothing forgotten");
        assert_eq!(s.status(), PeerStatus::Unhealthy, "broken");
        // Nothing is taken any more.
        let out = step(&mut s, now, batch(1, vec![e(3)]));
        assert!(matches!(
            out.as_slice(),
            [A::Send {
                frame: Frame::Nack { .. },
                ..
            }]
        ));
    }

    #[test]
    fn a_failed_sync_cuts_back_to_what_was_acked_when_stored_means_synced() {
        for only_synced in [true, false] {
            let cfg = SecondaryConfig {
                durability: if only_synced {
                    Durability::Synced
                } else {
                    Durability::Written
                },
                ..SecondaryConfig::default()
            };
            let (mut s, now) = connected(cfg, 0);
            step(&mut s, now, batch(1, vec![e(1), e(2), e(3)]));
            step(&mut s, now, synced(1));
            let out = step(
                &mut s,
                now,
                E::Storage(StorageReport::SyncFailed {
                    reason: "EIO".into(),
                }),
            );
            if only_synced {
                assert_eq!(
                    out,
                    vec![
                        A::Truncate {
                            after: 1,
                            diverged: false
                        },
                        A::Send {
                            conn: 1,
                            frame: Frame::Nack {
                                stored: 1,
                                reason: "EIO".into()
                            }
                        }
                    ]
                );
                assert_eq!(s.received(), 1);
            } else {
                assert_eq!(out, vec![]);
                assert_eq!(s.received(), 3);
            }
        }
    }

    #[test]
    fn a_secondary_reports_itself_healthy_while_its_master_is_connected() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        assert_eq!(s.status(), PeerStatus::Healthy);
        step(&mut s, now, batch(1, vec![e(1), e(2)]));
        assert_eq!(s.lag(), 2, "received, not yet stored");
        step(&mut s, now, synced(2));
        assert_eq!(s.lag(), 0);
        step(&mut s, now, E::MasterDisconnected { conn: 1 });
        assert_eq!(s.status(), PeerStatus::Unhealthy);
    }

    #[test]
    fn in_order_entries_are_persisted_and_acked_once_stored() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        assert_eq!(
            step(&mut s, now, batch(1, vec![e(1), e(2)])),
            vec![A::Persist(vec![e(1), e(2)])]
        );
        assert_eq!(step(&mut s, now, synced(2)), vec![ack(2)]);
        assert_eq!(s.stored(), 2);
    }

    #[test]
    fn duplicates_are_ignored_and_reacked() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        step(&mut s, now, batch(1, vec![e(1), e(2)]));
        step(&mut s, now, synced(2));
        assert_eq!(step(&mut s, now, batch(1, vec![e(1), e(2)])), vec![ack(2)]);
        // A batch overlapping the end persists only what is new.
        assert_eq!(
            step(&mut s, now, batch(1, vec![e(2), e(3)])),
            vec![A::Persist(vec![e(3)])]
        );
    }

    #[test]
    fn out_of_order_entries_wait_for_the_gap() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        // Held, and the gap reported so that the master resends it.
        let gap_nack = A::Send {
            conn: 1,
            frame: Frame::Nack {
                stored: 0,
                reason: "missing entries after seq 1".into(),
            },
        };
        assert_eq!(
            step(&mut s, now, batch(1, vec![e(1)])),
            vec![A::Persist(vec![e(1)])]
        );
        assert_eq!(
            step(&mut s, now, batch(1, vec![e(4)])),
            vec![gap_nack.clone()]
        );
        assert_eq!(
            step(&mut s, now, batch(1, vec![e(3)])),
            vec![gap_nack.clone()]
        );
        assert_eq!(s.received(), 1, "only the contiguous prefix counts");
        assert_eq!(
            step(&mut s, now, batch(1, vec![e(2)])),
            vec![A::Persist(vec![e(2), e(3), e(4)])]
        );
        // Stored beyond what was received is clamped.
        assert_eq!(step(&mut s, now, synced(9)), vec![ack(4)]);
    }

    #[test]
    fn entries_from_a_replaced_connection_are_ignored() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        step(&mut s, now, E::MasterConnected { conn: 2 });
        step(
            &mut s,
            now,
            E::Sync {
                conn: 2,
                truncate_after: None,
            },
        );
        assert_eq!(step(&mut s, now, batch(1, vec![e(1)])), vec![]);
        assert_eq!(
            step(
                &mut s,
                now,
                E::Heartbeat {
                    conn: 1,
                    committed: 0
                }
            ),
            vec![]
        );
        assert_eq!(
            step(
                &mut s,
                now,
                E::Heartbeat {
                    conn: 2,
                    committed: 0
                }
            ),
            vec![A::Send {
                conn: 2,
                frame: Frame::HeartbeatReply { stored: 0 }
            }]
        );
    }

    #[test]
    fn sync_cuts_a_suffix_the_master_never_stored() {
        let (mut s, now) = connected(SecondaryConfig::default(), 8);
        assert_eq!(
            step(
                &mut s,
                now,
                E::Sync {
                    conn: 1,
                    truncate_after: Some(5)
                }
            ),
            vec![A::Truncate {
                after: 5,
                diverged: true
            }]
        );
        assert_eq!((s.received(), s.stored()), (5, 5));
        assert_eq!(
            step(&mut s, now, batch(1, vec![e(6)])),
            vec![A::Persist(vec![e(6)])]
        );
    }

    #[test]
    fn replicate_delay_holds_batches_in_order() {
        let cfg = SecondaryConfig {
            replicate_delay: Duration::from_secs(1),
            ..SecondaryConfig::default()
        };
        let (mut s, now) = connected(cfg, 0);
        assert_eq!(step(&mut s, now, batch(1, vec![e(1)])), vec![]);
        let t1 = now + Duration::from_millis(500);
        assert_eq!(step(&mut s, t1, batch(1, vec![e(2)])), vec![]);
        // Heartbeats are answered at once, with what is stored.
        assert_eq!(
            step(
                &mut s,
                t1,
                E::Heartbeat {
                    conn: 1,
                    committed: 0
                }
            ),
            vec![A::Send {
                conn: 1,
                frame: Frame::HeartbeatReply { stored: 0 }
            }]
        );
        assert_eq!(
            step(&mut s, now + Duration::from_millis(999), E::Tick),
            vec![]
        );
        assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(1)));
        assert_eq!(
            step(&mut s, now + Duration::from_secs(1), E::Tick),
            vec![A::Persist(vec![e(1)])]
        );
        assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(1)));
        assert_eq!(
            step(&mut s, t1 + Duration::from_secs(1), E::Tick),
            vec![A::Persist(vec![e(2)])]
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn fail_rate_one_always_nacks_after_storing() {
        let cfg = SecondaryConfig {
            fail_rate: 1.0,
            ..SecondaryConfig::default()
        };
        let (mut s, now) = connected(cfg, 0);
        step(&mut s, now, batch(1, vec![e(1)]));
        let out = step(&mut s, now, synced(1));
        assert!(
            matches!(
                &out[..],
                [A::Send {
                    frame: Frame::Nack { stored: 0, .. },
                    ..
                }]
            ),
            "reported as not stored, so that the master sends it again: {out:?}"
        );
        // The resend is a duplicate, acknowledged without a second copy.
        assert_eq!(
            step(&mut s, now, batch(1, vec![e(1)])),
            vec![A::Send {
                conn: 1,
                frame: Frame::Ack { stored: 1 }
            }]
        );
    }

    #[test]
    fn after_the_master_disconnects_nothing_is_taken_or_acknowledged_until_it_reconnects() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        // Another connection's end changes nothing.
        step(&mut s, now, E::MasterDisconnected { conn: 7 });
        assert_eq!(s.conn(), Some(1));
        step(&mut s, now, E::MasterDisconnected { conn: 1 });
        assert_eq!(s.conn(), None);
        assert_eq!(step(&mut s, now, batch(1, vec![e(1)])), vec![]);
        assert_eq!(
            step(
                &mut s,
                now,
                E::Heartbeat {
                    conn: 1,
                    committed: 0
                }
            ),
            vec![]
        );
        assert_eq!(s.received(), 0);
        // Stored while disconnected: recorded, acknowledged to nobody.
        assert_eq!(step(&mut s, now, synced(0)), vec![]);
        step(&mut s, now, E::MasterConnected { conn: 2 });
        let sync = E::Sync {
            conn: 2,
            truncate_after: None,
        };
        assert_eq!(step(&mut s, now, sync), vec![]);
        assert_eq!(
            step(&mut s, now, batch(2, vec![e(1)])),
            vec![A::Persist(vec![e(1)])]
        );
        assert_eq!(s.last(), Position { epoch: 1, seq: 1 });
    }

    #[test]
    fn the_epochs_of_the_log_follow_what_is_taken_and_what_is_cut() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        let mut later = e(3);
        later.epoch = 2;
        step(&mut s, now, batch(1, vec![e(1), e(2), later]));
        assert_eq!(s.last(), Position { epoch: 2, seq: 3 });
        step(&mut s, now, E::MasterConnected { conn: 2 });
        let sync = E::Sync {
            conn: 2,
            truncate_after: Some(2),
        };
        assert_eq!(
            step(&mut s, now, sync),
            vec![A::Truncate {
                after: 2,
                diverged: true
            }]
        );
        assert_eq!(s.last(), Position { epoch: 1, seq: 2 });
        // A cut just after an epoch's first entry keeps that epoch.
        let mut again = e(3);
        again.epoch = 2;
        let mut more = e(4);
        more.epoch = 2;
        step(&mut s, now, batch(2, vec![again, more]));
        step(&mut s, now, E::MasterConnected { conn: 3 });
        let sync = E::Sync {
            conn: 3,
            truncate_after: Some(3),
        };
        step(&mut s, now, sync);
        assert_eq!(s.last(), Position { epoch: 2, seq: 3 });
        step(&mut s, now, E::MasterConnected { conn: 4 });
        let sync = E::Sync {
            conn: 4,
            truncate_after: Some(2),
        };
        step(&mut s, now, sync);
        assert_eq!(s.last(), Position { epoch: 1, seq: 2 });
        let (state, stored) = s.into_log_state();
        assert_eq!(state.epochs, vec![(1, 1)]);
        assert_eq!(
            (state.last, state.epoch, stored),
            (Position { epoch: 1, seq: 2 }, 1, 0)
        );
    }

    #[test]
    fn a_partly_drained_hold_counts_only_what_it_still_holds() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        step(&mut s, now, batch(1, vec![e(3), e(5)]));
        let held = crate::wire::entry_cost(&e(3)) + crate::wire::entry_cost(&e(5));
        assert_eq!(s.early_bytes, held);
        step(&mut s, now, batch(1, vec![e(1), e(2)]));
        assert_eq!(s.received(), 3);
        assert_eq!(s.early_bytes, crate::wire::entry_cost(&e(5)));
    }

    #[test]
    fn a_sync_that_cuts_nothing_asks_for_no_cut() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        step(&mut s, now, batch(1, vec![e(1), e(2)]));
        step(&mut s, now, E::MasterConnected { conn: 2 });
        let sync = E::Sync {
            conn: 2,
            truncate_after: Some(2),
        };
        assert_eq!(step(&mut s, now, sync), vec![]);
        assert_eq!(s.received(), 2);
    }

    #[test]
    fn unwritten_at_exactly_what_was_received_loses_nothing_and_breaks_nothing() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        step(&mut s, now, batch(1, vec![e(1), e(2)]));
        let out = step(
            &mut s,
            now,
            E::Storage(StorageReport::Unwritten {
                after: 2,
                reason: "sync failed".into(),
            }),
        );
        assert_eq!(
            out,
            vec![A::Send {
                conn: 1,
                frame: Frame::Nack {
                    stored: 0,
                    reason: "sync failed".into()
                }
            }]
        );
        assert_eq!((s.received(), s.status()), (2, PeerStatus::Healthy));
    }

    #[test]
    fn a_fail_rate_between_zero_and_one_nacks_some_stores_and_acks_others() {
        let cfg = SecondaryConfig {
            fail_rate: 0.5,
            seed: 9,
            ..SecondaryConfig::default()
        };
        let (mut s, now) = connected(cfg, 0);
        let (mut acks, mut nacks) = (0, 0);
        for seq in 1..=200 {
            step(&mut s, now, batch(1, vec![e(seq)]));
            match step(&mut s, now, synced(seq)).as_slice() {
                [A::Send {
                    frame: Frame::Ack { .. },
                    ..
                }] => acks += 1,
                [A::Send {
                    frame: Frame::Nack { .. },
                    ..
                }] => nacks += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(acks > 50 && nacks > 50, "{acks} acks, {nacks} nacks");
    }

    #[test]
    fn entries_held_from_an_old_connection_are_not_applied_after_a_new_sync() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        step(&mut s, now, batch(1, vec![e(1)]));
        // 3 waits for 2 on the old connection...
        step(&mut s, now, batch(1, vec![e(3)]));
        // ...which a new master connection replaces.
        step(&mut s, now, E::MasterConnected { conn: 2 });
        let sync = E::Sync {
            conn: 2,
            truncate_after: Some(1),
        };
        assert_eq!(step(&mut s, now, sync), vec![]);
        let mut two = e(2);
        two.epoch = 2;
        assert_eq!(
            step(&mut s, now, batch(2, vec![two.clone()])),
            vec![A::Persist(vec![two])]
        );
        assert_eq!((s.received(), s.early_bytes), (2, 0));
    }

    #[test]
    fn a_reset_empties_the_log_to_continue_after_the_masters_base() {
        let (mut s, now) = connected(SecondaryConfig::default(), 0);
        step(&mut s, now, batch(1, vec![e(1), e(2), e(3)]));
        step(&mut s, now, synced(3));
        // A new master connection that resets it: retention deleted 4..=10.
        step(&mut s, now, E::MasterConnected { conn: 2 });
        let base = Position { epoch: 1, seq: 10 };
        let members = Some(vec![(7, Bytes::from("voter a a:1\n"))]);
        let reset = E::Reset {
            conn: 2,
            base,
            epochs: vec![(1, 1)],
            configs: members.clone(),
            numbers: Vec::new(),
            logs: bytes::Bytes::new(),
            groups: bytes::Bytes::new(),
        };
        assert_eq!(
            step(&mut s, now, reset),
            vec![A::ResetLog {
                base,
                epochs: vec![(1, 1)],
                configs: members,
                numbers: Vec::new(),
                logs: bytes::Bytes::new(),
                groups: bytes::Bytes::new(),
            }]
        );
        assert_eq!((s.received(), s.stored(), s.committed()), (10, 10, 10));
        assert_eq!(s.last(), base);
        // It takes entries from 11 on, and its log state says where it starts.
        assert_eq!(
            step(&mut s, now, batch(2, vec![e(11)])),
            vec![A::Persist(vec![e(11)])]
        );
        let (state, _) = s.into_log_state();
        assert_eq!((state.base, state.epochs), (base, vec![(1, 1)]));
    }
}
