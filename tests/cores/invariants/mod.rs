//! The invariants every schedule is checked against, one per file (as
//! openraft has them). Each looks at the nodes as they are after a step
//! (`NodeView`) and says what is wrong, if anything; the world names the
//! seed and the invariant when one fails.

pub mod committed_never_goes_back;
pub mod groups_follow_the_log;
mod kept;
pub mod keyed_append_at_most_once;
pub mod log_matching;
pub mod majority_acked_never_lost;
pub mod numbers_gapless;
pub mod one_change_at_a_time;
pub mod one_master_per_epoch;
pub mod promised_outcomes_hold;

use replog::entry::Entry;
use replog::replication::role::Core;

/// One node as the invariants see it.
pub struct NodeView<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its log: what it wrote, synced or not.
    pub log: &'a [Entry],
    /// How much of the log is synced.
    pub durable: usize,
    /// Its core, unless it is down.
    pub core: Option<&'a Core>,
}
