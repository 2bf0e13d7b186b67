//! A node back as a new incarnation (its data directory empty: a replaced
//! disk, a wiped one, a log kept in memory across a restart) has forgotten
//! what it held and whom it voted for. Counted as a voter at once, it could
//! help elect a master that lacks writes a majority acknowledged, the
//! majority it was part of. So it is a *learner*: its vote counts only
//! toward an election that every node of the cluster grants (a candidate
//! every node finds at least as up to date as itself holds everything any
//! of them holds, so everything committed, as long as one holder of each
//! committed entry kept its disk). A master needs a majority of voters, or
//! every node.
//!
//! A learner becomes a voter once it holds everything committed, which it
//! knows once it has stored up to its master's committed mark and that
//! mark covers everything committed: it falls on an entry of the master's
//! own epoch (every older committed entry is then before it, by Raft's
//! commit rule), or the master is of epoch 1, which has no older epoch.
//! It also becomes one once elected. It records that it votes again before
//! acting on it.
//!
//! A new cluster starts as learners (every data directory empty), and its
//! first election, for epoch 1, counts every yes: only the configured
//! master stands in it (`--master`), with a log that is empty since no
//! epoch came before, so a learner's yes there cannot help elect a master
//! that lacks anything. (Two disks lost, the configured master's among
//! them, could: that is past what a write concern of two promises.)

use super::{Action, Core, Role, SecondaryEvent};

impl Core {
    /// Whether this node is a learner.
    pub fn is_learner(&self) -> bool {
        self.learner
    }

    /// After a master's event: a heartbeat from the current master saying
    /// `committed` promotes this learner if it holds everything committed.
    pub(super) fn catch_up(&mut self, event: &SecondaryEvent, out: &mut Vec<Action>) {
        let SecondaryEvent::Heartbeat { conn, committed } = *event else {
            return;
        };
        let Role::Secondary(s) = &self.role else {
            return;
        };
        let covers_all = self.master_epoch == 1
            || super::super::last_epoch(s.epochs(), committed) == self.master_epoch;
        let caught_up = s.conn() == Some(conn) && s.stored() >= committed && covers_all;
        if self.learner && caught_up {
            self.promote(out);
        }
    }

    /// This node holds everything committed (it caught up, or was elected):
    /// it votes again, recorded first.
    pub(super) fn promote(&mut self, out: &mut Vec<Action>) {
        if self.learner {
            self.learner = false;
            out.push(Action::Promoted);
        }
    }
}
