//! What a failed append's answer promises holds: an answer that says the
//! entry is on a majority and will still be replicated (timed out, or the
//! master shutting down or stepping down, with its sequence number; or
//! deleted by retention) names an entry that no failover cuts. Every later
//! master holds it, and after healing every node does: promised ⇒
//! present. Answers that promise nothing (`Uncommitted`, `ShuttingDown`
//! without a number) are not checked: their entries may be cut.

use replog::entry::{Entry, Epoch, Seq};
use replog::wire::AppendError;

use super::kept::Kept;
use super::NodeView;

pub struct Check(Kept);

impl Default for Check {
    fn default() -> Self {
        Check(Kept::new("promised to its client as on a majority"))
    }
}

impl Check {
    /// The sequence number an answer promises will stay, if it promises
    /// one.
    pub fn promise(result: &Result<Seq, AppendError>) -> Option<Seq> {
        match result {
            Err(AppendError::TimedOut { seq, .. })
            | Err(AppendError::ShuttingDown { seq: Some(seq) })
            | Err(AppendError::Deleted { seq, .. }) => Some(*seq),
            _ => None,
        }
    }

    /// A master of `epoch` promised `entry`.
    pub fn promised(&mut self, epoch: Epoch, entry: Entry) -> Result<(), String> {
        self.0.vouched(epoch, entry)
    }

    /// Every master holds what masters of its epoch or older promised.
    pub fn check(&self, nodes: &[NodeView]) -> Result<(), String> {
        self.0.check(nodes)
    }

    /// After healing: every node holds every promised entry.
    pub fn check_final(&self, nodes: &[NodeView]) -> Result<(), String> {
        self.0.check_final(nodes)
    }
}
