//! The secondary's replication logic: store only in order, show only the
//! contiguous prefix, hold early entries until the gap is filled, ignore and
//! re-acknowledge duplicates, and acknowledge cumulatively once entries are
//! stored under the fsync policy.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::ConnId;
use crate::entry::{Entry, Seq};
use crate::wire::Frame;

/// Most entries held ahead of a gap. Past this, early entries are dropped:
/// the master resends them after the gap is filled.
const MAX_EARLY: usize = 100_000;

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
    },
    /// The local log has stored everything up to `upto`.
    Stored {
        /// Last sequence number stored.
        upto: Seq,
    },
    /// The local log failed to write or sync.
    StorageFailed {
        /// The error.
        reason: String,
    },
    /// Time passed.
    Tick,
}

/// Something the runtime must do.
#[derive(Debug, Clone, PartialEq)]
pub enum SecondaryAction {
    /// Append these consecutive entries to the local log (then report
    /// `Stored`).
    Persist(Vec<Entry>),
    /// Cut the local log after this sequence number.
    Truncate {
        /// Last sequence number kept.
        after: Seq,
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
    /// Batches waiting out `--replicate-delay`, oldest first.
    delayed: VecDeque<(Instant, Vec<Entry>)>,
    /// The master's current connection.
    conn: Option<ConnId>,
    /// Set once the local log failed.
    broken: Option<String>,
    /// Source of the fail-rate draws.
    rng: SmallRng,
}

impl Secondary {
    /// A secondary whose log ends at `last` (all of it stored).
    pub fn new(cfg: SecondaryConfig, last: Seq) -> Self {
        Secondary {
            rng: SmallRng::seed_from_u64(cfg.seed),
            cfg,
            received: last,
            stored: last,
            early: BTreeMap::new(),
            delayed: VecDeque::new(),
            conn: None,
            broken: None,
        }
    }

    /// Last contiguous sequence number received.
    pub fn received(&self) -> Seq {
        self.received
    }

    /// Last sequence number stored.
    pub fn stored(&self) -> Seq {
        self.stored
    }

    /// Whether the master currently has a connection to this node.
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Feeds one event; the actions it causes are pushed to `out`.
    pub fn step(&mut self, now: Instant, event: SecondaryEvent, out: &mut Vec<SecondaryAction>) {
        match event {
            SecondaryEvent::MasterConnected { conn } => {
                self.conn = Some(conn);
                // Whatever was in flight on the old connection is resent
                // after the Sync; drop it so nothing older than the Sync is
                // applied after it.
                self.early.clear();
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
            } => {
                if self.conn != Some(conn) {
                    return;
                }
                self.early.clear();
                self.delayed.clear();
                if let Some(after) = truncate_after {
                    if after < self.received {
                        self.received = after;
                        self.stored = self.stored.min(after);
                        out.push(SecondaryAction::Truncate { after });
                    }
                }
            }
            SecondaryEvent::Entries { conn, entries } => {
                if self.conn != Some(conn) {
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
            SecondaryEvent::Heartbeat { conn } => {
                if self.conn == Some(conn) {
                    out.push(SecondaryAction::Send {
                        conn,
                        frame: Frame::HeartbeatReply {
                            stored: self.stored,
                        },
                    });
                }
            }
            SecondaryEvent::Stored { upto } => {
                if self.broken.is_some() {
                    return;
                }
                let upto = upto.min(self.received);
                if upto <= self.stored {
                    return;
                }
                self.stored = upto;
                if let Some(conn) = self.conn {
                    let frame = if self.cfg.fail_rate > 0.0 && self.rng.gen_bool(self.cfg.fail_rate.min(1.0)) {
                        Frame::Nack {
                            stored: self.stored,
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
            SecondaryEvent::StorageFailed { reason } => {
                self.broken = Some(reason.clone());
                if let Some(conn) = self.conn {
                    let frame = Frame::Nack {
                        stored: self.stored,
                        reason,
                    };
                    out.push(SecondaryAction::Send { conn, frame });
                }
            }
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

    /// Takes a batch: in-order entries go to the log, early ones wait,
    /// duplicates are ignored and re-acknowledged.
    fn apply(&mut self, conn: ConnId, entries: Vec<Entry>, out: &mut Vec<SecondaryAction>) {
        let mut accepted = Vec::new();
        let mut duplicate = false;
        for entry in entries {
            if entry.seq <= self.received {
                duplicate = true;
            } else if entry.seq == self.received + 1 {
                self.received = entry.seq;
                accepted.push(entry);
                // The gap may be filled now.
                while let Some(next) = self.early.remove(&(self.received + 1)) {
                    self.received = next.seq;
                    accepted.push(next);
                }
            } else if self.early.len() < MAX_EARLY {
                self.early.insert(entry.seq, entry);
            }
        }
        if !accepted.is_empty() {
            out.push(SecondaryAction::Persist(accepted));
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
