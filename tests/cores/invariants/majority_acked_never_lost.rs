//! An append acknowledged with w ≥ majority is never lost: every master of
//! a later epoch holds it where it was acknowledged (Raft's leader
//! completeness), and after the cluster heals every node does.

use replog::entry::{Entry, Epoch};

use super::kept::Kept;
use super::NodeView;

pub struct Check(Kept);

impl Default for Check {
    fn default() -> Self {
        Check(Kept::new("acknowledged to a majority"))
    }
}

impl Check {
    /// A master of `epoch` acknowledged `entry` to a majority.
    pub fn acknowledged(&mut self, epoch: Epoch, entry: Entry) -> Result<(), String> {
        self.0.vouched(epoch, entry)
    }

    /// Every master holds what masters of its epoch or older acknowledged.
    pub fn check(&self, nodes: &[NodeView]) -> Result<(), String> {
        self.0.check(nodes)
    }

    /// After healing: every node holds every such entry.
    pub fn check_final(&self, nodes: &[NodeView]) -> Result<(), String> {
        self.0.check_final(nodes)
    }
}
