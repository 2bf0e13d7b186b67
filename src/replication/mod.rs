//! The replication core: master and secondary as plain state machines.
//!
//! Nothing in here touches a socket, a file or the clock. The runtime
//! (`crate::node`) feeds events in — a client append, an entry received, an
//! ack, a tick — together with the current time, and carries out the actions
//! that come back: persist this, send that, answer that client. This is what
//! lets the unit tests assert exact action lists and the simulation tests run
//! whole clusters deterministically.
//!
//! - [`master`]: sequence numbers, write concern, per-secondary delivery with
//!   pipelining, retries with backoff, heartbeats, health and quorum.
//! - [`catalog`]: the cluster's named logs, created and deleted by entries
//!   of the replicated log.
//! - [`keys`]: the dedup window of request keys, compact.
//! - [`numbers`]: each log's last message number, and the master's numbers
//!   taken back by a cut.
//! - [`quorum`]: majority and write-concern arithmetic.
//! - [`redial`]: when a master dials a secondary again after its link went
//!   down.
//! - [`role`]: one node's core in whichever role it has; where a role is
//!   changed, a master connection accepted (and a frame no master sends
//!   refused), and health reported from.
//! - [`membership`]: the members, their standing, and a configuration
//!   entry's text.
//! - [`storage`]: what the local log reports, and when an entry counts as
//!   stored (the `--fsync` rule, kept here so the runtime only reports).
//! - [`secondary`]: in-order storage, early entries held until the gap is
//!   filled, cumulative acks, the `--replicate-delay` and `--fail-rate` aids.

pub mod catalog;
pub mod groups;
pub mod keys;
pub mod master;
pub mod membership;
pub mod numbers;
pub mod quorum;
pub mod redial;
pub mod role;
pub mod secondary;
pub mod storage;

use std::time::Duration;

use rand::Rng;

use crate::entry::{Epoch, Position, Seq};

/// A client's append, as it travels from its connection through the node
/// loop into the master's core: one type for all three.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    /// Connection to answer on.
    pub client: ClientId,
    /// Request id to answer with.
    pub req: u64,
    /// The log it is for (resolved from its name by the node that took
    /// it; the core refuses it if that log does not exist any more).
    pub log: crate::entry::LogId,
    /// Idempotency key.
    pub key: Option<String>,
    /// Write concern.
    pub w: crate::wire::WriteConcern,
    /// Give up waiting after this long (the entry stays).
    pub timeout: Option<Duration>,
    /// The message.
    pub message: bytes::Bytes,
    /// Send progress while it waits (the CLI's waiting display).
    pub progress: bool,
}

/// A membership change a client asks for (`replog member`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add node `id`, listening at `addr`, as a learner: the master
    /// promotes it once it holds everything committed.
    Add {
        /// Its node id.
        id: String,
        /// Where it listens for other nodes.
        addr: String,
    },
    /// Remove node `id` (the master itself included: it steps down once
    /// the change is committed).
    Remove {
        /// Its node id.
        id: String,
    },
}

/// Most entries sent to one secondary and not yet acknowledged.
pub const WINDOW: u64 = 8192;

/// Most entries in one replication frame.
pub const BATCH: u64 = 512;

/// Most `SendEntries` to one secondary not yet covered by its acks.
/// Entries go out as soon as they are written, so under load each round
/// would send its own small frame; past this many, what was written waits
/// for the next ack and goes out as one larger frame (batching driven by
/// acks, as Kafka's in-flight request limit does). It also keeps the frames
/// queued to a connection within what its writer holds.
pub const FRAMES_IN_FLIGHT: usize = 16;

/// What a node's log held when a core was built over it.
#[derive(Debug)]
pub struct LogState {
    /// The newest epoch recorded (a master runs in its own, new one).
    pub epoch: Epoch,
    /// Last entry in the log.
    pub last: Position,
    /// First sequence number of each epoch present in the log, in order.
    pub epochs: Vec<(Epoch, Seq)>,
    /// Request keys of the newest entries of the log (the dedup window),
    /// ending at `last`.
    pub keys: keys::KeyWindow,
    /// The node this one voted for in `epoch`, if any (recorded with it).
    pub vote: Option<String>,
    /// Last sequence number known to be on a majority (0 at start: it is
    /// learnt again from the master).
    pub committed: Seq,
    /// The entry before the first the log holds: (0, 0) unless retention
    /// deleted its start (or it was reset to start after this).
    pub base: Position,
    /// This node came back as a new incarnation (an empty data directory)
    /// and has not yet held everything committed since: it may not vote or
    /// stand (see `role::learner`). The role cores leave it false.
    pub learner: bool,
    /// The configuration entries the log holds, in order, with the
    /// membership each records (`membership`): the node acts on the last,
    /// or on `--cluster` without any.
    pub configs: Vec<(Seq, membership::Membership)>,
    /// Each log's last message number, ending at `last`.
    pub numbers: numbers::Numbers,
    /// The named logs: at the base, and the catalog entries after it.
    pub catalog: catalog::Catalog,
    /// The consumer groups' positions, and those at the base.
    pub groups: groups::GroupState,
}

/// A log that names an epoch no election can reach, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImpossibleEpoch {
    /// Entries of such an epoch: from a forged or corrupt frame.
    #[error("its log holds entries of epoch {epoch}, which no election can reach (epochs stay below {limit}): they came from a forged or corrupt frame. Move the data directory aside and start the node again to have its log copied from the master; do this on a minority of the nodes only, since what a majority holds is the cluster's log")]
    Entries {
        /// The newest epoch of its entries.
        epoch: Epoch,
        /// [`crate::entry::EPOCH_LIMIT`].
        limit: Epoch,
    },
    /// The `epoch` file records one: the entries are sound.
    #[error("its file 'epoch' records epoch {epoch}, which no election can reach (epochs stay below {limit}): a forged frame, taken by an older release. The entries are sound: write {last} (the epoch of the last entry) into that file and start the node again; do not move the data directory aside")]
    Record {
        /// The epoch recorded.
        epoch: Epoch,
        /// [`crate::entry::EPOCH_LIMIT`].
        limit: Epoch,
        /// The epoch of the last entry, to write there instead.
        last: Epoch,
    },
}

impl LogState {
    /// Refuses a log whose epochs no election could have reached (taken
    /// from a forged frame by a release before such epochs were refused, or
    /// damaged), saying what to do: for a forged epoch record, which leaves
    /// the entries sound, not to throw the entries away.
    pub fn check(&self) -> Result<(), ImpossibleEpoch> {
        let limit = crate::entry::EPOCH_LIMIT;
        let entries = (self.epochs.iter().map(|(e, _)| *e))
            .chain([self.last.epoch, self.base.epoch])
            .max()
            .unwrap_or_default();
        if entries >= limit {
            return Err(ImpossibleEpoch::Entries {
                epoch: entries,
                limit,
            });
        }
        if self.epoch >= limit {
            return Err(ImpossibleEpoch::Record {
                epoch: self.epoch,
                limit,
                last: self.last.epoch,
            });
        }
        Ok(())
    }
}

/// Where two logs stop agreeing: the last sequence number up to which the
/// log whose epochs start at `mine` and ends at `my_last` holds the same
/// entries as the one whose epochs start at `theirs` and ends at
/// `their_last`. One master per epoch assigns an epoch's sequence numbers,
/// so two logs holding an entry of the same epoch at the same seq are equal
/// up to it (Raft's log matching): the logs agree through each epoch they
/// share, up to where the shorter run of it ends, and part where one holds
/// an epoch the other does not.
pub fn common_prefix(
    mine: &[(Epoch, Seq)],
    my_last: Seq,
    theirs: &[(Epoch, Seq)],
    their_last: Seq,
) -> Seq {
    let end =
        |runs: &[(Epoch, Seq)], i: usize, last: Seq| runs.get(i + 1).map_or(last, |(_, f)| f - 1);
    let mut agree = 0;
    for (i, (epoch, first)) in theirs.iter().enumerate() {
        let Some(j) = mine.iter().position(|(e, _)| e == epoch) else {
            break;
        };
        if mine[j].1 != *first {
            break;
        }
        let (their_end, my_end) = (end(theirs, i, their_last), end(mine, j, my_last));
        agree = their_end.min(my_end);
        if their_end != my_end {
            break;
        }
    }
    agree
}

/// The epoch of entry `last` in a log whose epochs start as `epochs` says
/// (0 for an empty log).
pub fn last_epoch(epochs: &[(Epoch, Seq)], last: Seq) -> Epoch {
    epochs
        .iter()
        .rev()
        .find(|(_, first)| *first <= last)
        .map_or(0, |(e, _)| *e)
}

/// Identifies one client connection inside a node.
pub type ClientId = u64;

/// Identifies one replication connection; events from a connection that has
/// since been replaced carry an old id and are ignored.
pub type ConnId = u64;

/// Deadlines and backoff of the replication protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often the master sends a heartbeat on each replication connection.
    pub heartbeat_interval: Duration,
    /// Silent for longer than this: Suspected.
    pub suspect_after: Duration,
    /// Silent for longer than this (or never heard): Unhealthy; the master
    /// drops the connection and dials again.
    pub unhealthy_after: Duration,
    /// First retry delay after a failed delivery.
    pub retry_base: Duration,
    /// Largest retry delay.
    pub retry_max: Duration,
    /// With failover: a secondary that hears nothing from a master for a
    /// random time between this and twice this asks for votes; a master
    /// that hears from no majority for this long steps down.
    pub election_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_interval: Duration::from_millis(200),
            suspect_after: Duration::from_millis(1000),
            unhealthy_after: Duration::from_millis(3000),
            retry_base: Duration::from_millis(50),
            retry_max: Duration::from_secs(5),
            election_timeout: Duration::from_millis(1000),
        }
    }
}

/// Exponential backoff with jitter: a delay drawn uniformly between `base`
/// and `min(max, base * 2^attempt)`. The jitter keeps many masters (or many
/// secondaries of one master) from retrying in lock-step.
pub fn backoff(base: Duration, max: Duration, attempt: u32, rng: &mut impl Rng) -> Duration {
    let base = base.max(Duration::from_millis(1));
    let ceiling = base
        .checked_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max)
        .max(base);
    let lo = base.as_micros() as u64;
    let hi = ceiling.as_micros() as u64;
    Duration::from_micros(rng.gen_range(lo..=hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn two_logs_agree_through_the_epochs_they_share() {
        let mine = [(1, 1), (2, 6), (4, 10)];
        // Equal logs.
        assert_eq!(common_prefix(&mine, 12, &mine, 12), 12);
        // A prefix of mine, ending inside an epoch, and a longer one.
        assert_eq!(common_prefix(&mine, 12, &[(1, 1), (2, 6)], 8), 8);
        assert_eq!(common_prefix(&mine, 12, &mine, 15), 12);
        // Theirs continues epoch 2 where mine went on in epoch 4.
        assert_eq!(common_prefix(&mine, 12, &[(1, 1), (2, 6)], 11), 9);
        // Theirs went on in epoch 3 (a master mine never followed) after 7.
        assert_eq!(common_prefix(&mine, 12, &[(1, 1), (2, 6), (3, 8)], 9), 7);
        // Theirs is in epoch 4 from elsewhere: the first seq differs.
        assert_eq!(common_prefix(&mine, 12, &[(1, 1), (4, 3)], 9), 2);
        // Nothing shared.
        assert_eq!(common_prefix(&mine, 12, &[(3, 1)], 4), 0);
        assert_eq!(common_prefix(&mine, 12, &[], 0), 0);
        assert_eq!(common_prefix(&[], 0, &mine, 12), 0);
    }

    #[test]
    fn backoff_stays_between_base_and_cap_and_grows() {
        let mut rng = SmallRng::seed_from_u64(7);
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(500);
        let mut largest_seen = Duration::ZERO;
        for attempt in 0..40 {
            let d = backoff(base, max, attempt, &mut rng);
            assert!(d >= base && d <= max, "attempt {attempt}: {d:?}");
            let cap = (base * 2u32.pow(attempt.min(20))).min(max);
            assert!(d <= cap, "attempt {attempt}: {d:?} over {cap:?}");
            largest_seen = largest_seen.max(d);
        }
        assert!(largest_seen > Duration::from_millis(100));
    }
}
