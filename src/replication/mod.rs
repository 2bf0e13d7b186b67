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
//! - [`keys`]: the dedup window of request keys, compact.
//! - [`quorum`]: majority and write-concern arithmetic.
//! - [`role`]: one node's core in whichever role it has; where a role is
//!   changed, a master connection accepted, and health reported from.
//! - [`secondary`]: in-order storage, early entries held until the gap is
//!   filled, cumulative acks, the `--replicate-delay` and `--fail-rate` aids.

pub mod keys;
pub mod master;
pub mod quorum;
pub mod role;
pub mod secondary;

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
    /// Idempotency key.
    pub key: Option<String>,
    /// Write concern.
    pub w: crate::wire::WriteConcern,
    /// Give up waiting after this long (the entry stays).
    pub timeout: Option<Duration>,
    /// The message.
    pub message: bytes::Bytes,
}

/// Most entries sent to one secondary and not yet acknowledged.
pub const WINDOW: u64 = 8192;

/// Most entries in one replication frame.
pub const BATCH: u64 = 512;

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
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_interval: Duration::from_millis(200),
            suspect_after: Duration::from_millis(1000),
            unhealthy_after: Duration::from_millis(3000),
            retry_base: Duration::from_millis(50),
            retry_max: Duration::from_secs(5),
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
