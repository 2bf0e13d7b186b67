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
//! A learner becomes a voter once it holds everything committed when it
//! came back (all it may have acknowledged before it lost its disk; what
//! it acknowledges since, it keeps), which it knows once it has stored up
//! to a committed mark a master said since, and that mark covered
//! everything committed then: it falls on an entry of that master's own
//! epoch (every older committed entry is then before it, by Raft's commit
//! rule), or the master is of epoch 1, which has no older epoch. The mark
//! is the first one heard, kept until the learner has stored up to it:
//! under a steady load the master's newest mark is always a little ahead
//! of a secondary's log, and a learner that waited to catch up with the
//! newest would never vote again. It also becomes a voter once elected. It
//! records that it votes again before acting on it.
//!
//! Having forgotten its epoch too, a learner takes no master of an epoch
//! past 1 before it has heard the newest epoch from enough other nodes
//! ([`Core::unsure_of_epoch`]): a master deposed while it was away could
//! otherwise still use it.
//!
//! A new cluster starts as learners (every data directory empty), so epoch
//! 1 is the exception: its election counts every yes toward a majority, and
//! a learner takes its master at once. Only the configured master stands
//! in it (`--master`: a node whose epoch is 0 never stands otherwise), with
//! an empty log. Nothing tells a new node from one that lost its disk, so
//! this leaves two ways to lose acknowledged writes with one lost disk,
//! both needing a node that has never heard from any master, or a master
//! of epoch 1 deposed without knowing it: the configured master loses its
//! disk while one node has never heard from any master and the others are
//! out of reach (the two elect it again in epoch 1); or a node loses its
//! disk while the cluster's first master, deposed by a second election it
//! has not heard of, still reaches it and the other nodes do not. Telling
//! a new cluster apart for sure takes what only the other nodes know.

use super::{quorum, Action, Core, Role};
use crate::entry::Seq;

impl Core {
    /// Why this learner does not take a master yet, if it does not: it has
    /// forgotten the newest epoch it knew, and a master deposed since
    /// could still believe it leads. It asks every other node (by
    /// pre-votes, which raise no epoch) and takes a master only once it
    /// has heard from enough of them that one is in every majority that
    /// may have elected a master without it (N − majority + 1 of the N − 1
    /// others): it then knows the newest epoch, and refuses older masters
    /// as any node does.
    pub(super) fn unsure_of_epoch(&self) -> Option<String> {
        let nodes = self.voters();
        if nodes == 0 {
            // Joining (`--join`): no member is known to ask; the first
            // master that reaches it (proving the key) is its cluster's.
            return None;
        }
        let needed = (nodes + 1 - quorum::majority(nodes) as usize).min(nodes - 1);
        (self.learner && self.heard_from.len() < needed).then(|| {
            format!(
                "node {} came back with an empty data directory and takes a master only once it has heard the newest epoch from {needed} other node(s) ({} so far)",
                self.cfg.id,
                self.heard_from.len()
            )
        })
    }

    /// Whether this node is a learner.
    pub fn is_learner(&self) -> bool {
        self.learner
    }

    /// After a master's heartbeat on `conn` saying `committed`: the mark
    /// this learner waits to store, if it has none and that was its current
    /// master; then [`Core::caught_up`].
    pub(super) fn catch_up(
        &mut self,
        (conn, committed): (super::ConnId, Seq),
        out: &mut Vec<Action>,
    ) {
        let Role::Secondary(s) = &self.role else {
            return;
        };
        if self.learner && self.learner_mark.is_none() && s.conn() == Some(conn) {
            self.learner_mark = Some((committed, self.master_epoch));
        }
        self.caught_up(out);
    }

    /// Promotes this learner if it has stored up to the committed mark it
    /// waits for and that mark covered everything committed; forgets a
    /// mark that did not (the next heartbeat gives another).
    pub(super) fn caught_up(&mut self, out: &mut Vec<Action>) {
        let (Role::Secondary(s), Some((mark, epoch))) = (&self.role, self.learner_mark) else {
            return;
        };
        if !self.learner || s.stored() < mark {
            return;
        }
        self.learner_mark = None;
        if epoch == 1 || super::super::last_epoch(s.epochs(), mark) == epoch {
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
