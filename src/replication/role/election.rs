//! Elections, with failover on: when a secondary stops hearing from its
//! master it asks the others whether they would vote for it (a pre-vote,
//! which raises nobody's epoch), then for their votes in the next epoch;
//! a majority makes it master. Votes and epochs are recorded before they
//! are answered or acted on. A master that hears from no majority for an
//! election timeout steps down by itself (CheckQuorum), and a node that
//! still hears a live master refuses both pre-votes and votes, so a node
//! rejoining after a partition cannot depose a healthy master (PreVote, as
//! etcd's raft has it).
//!
//! Everything here is decided from events and the time passed in; the
//! runtime only carries the requests and answers.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::Rng;

use super::{quorum, Action, Core, Role, SecondaryEvent, VoteAnswer, VoteRequest};
use crate::entry::{Epoch, Position};
use crate::wire::Frame;

/// What a node knows of epochs, votes and masters.
#[derive(Debug)]
pub(super) struct Ballot {
    /// The node's current epoch (recorded).
    pub term: Epoch,
    /// Whom it voted for in `term` (recorded with it).
    pub vote: Option<String>,
    /// The master of `term`, once known.
    pub leader: Option<String>,
    /// When the master of `term` was last heard from (or a vote granted,
    /// or the node started): the base of the election timer.
    pub heard: Instant,
    /// When to start an election if nothing is heard before.
    pub election_at: Instant,
    /// The election this node is running, if any.
    pub running: Option<Election>,
    /// When this node last became master (for CheckQuorum's grace).
    pub master_since: Instant,
    /// Source of the timers' jitter.
    pub rng: SmallRng,
}

/// One election (or pre-election) this node runs.
#[derive(Debug)]
pub(super) struct Election {
    /// The epoch it would be master of.
    epoch: Epoch,
    /// A pre-vote: nobody's epoch was raised.
    pre: bool,
    /// Voters who said yes (itself included, if it is one).
    granted: BTreeSet<String>,
    /// Learners who said yes (itself, if it is one): they count only
    /// toward an election every node grants (see `learner`).
    learners: BTreeSet<String>,
}

impl Election {
    /// Whether the yeses elect: a majority of the cluster's nodes among
    /// the voters, or every node; in epoch 1, a new cluster's first
    /// election, any majority (see `learner`).
    fn won(&self, nodes: usize) -> bool {
        let voters = self.granted.len();
        let all = voters + self.learners.len();
        let counted = if self.epoch == 1 { all } else { voters };
        counted as u32 >= quorum::majority(nodes) || all >= nodes
    }
}

impl Ballot {
    /// A random election timeout, between one and two `base`: nodes that
    /// lost their master together do not all ask at once.
    fn timeout(&mut self, base: Duration) -> Duration {
        let base = base.max(Duration::from_millis(1));
        base + self.rng.gen_range(Duration::ZERO..base)
    }

    /// The master was heard from (or a vote granted): the next election
    /// waits for a new timeout from now.
    pub fn heard(&mut self, now: Instant, base: Duration) {
        self.heard = now;
        self.election_at = now + self.timeout(base);
    }
}

impl Core {
    /// The node's last entry.
    pub(super) fn last_position(&self) -> Position {
        match &self.role {
            Role::Master(m) => m.last_position(),
            Role::Secondary(s) => s.last(),
            Role::Changing => Position::default(),
        }
    }

    /// Whether this node still has a live master (itself, or one heard
    /// within the election timeout): it then refuses to help depose it.
    fn in_lease(&self, now: Instant) -> bool {
        match self.role {
            Role::Master(_) => true,
            _ => {
                self.ballot.leader.is_some()
                    && now.saturating_duration_since(self.ballot.heard)
                        < self.cfg.timing.election_timeout
            }
        }
    }

    /// Time passed: start an election if the master has been silent too
    /// long; as master, step down if no majority has been heard from.
    pub(super) fn tick_election(&mut self, now: Instant, out: &mut Vec<Action>) {
        let timeout = self.cfg.timing.election_timeout;
        match &self.role {
            Role::Master(m) => {
                let since = now.saturating_duration_since(self.ballot.master_since);
                if since >= timeout
                    && m.heard_within(now, timeout) < quorum::majority(self.voters())
                {
                    self.ballot.leader = None;
                    self.ballot.heard(now, timeout);
                    self.become_secondary(out);
                }
            }
            // A new cluster (no epoch yet): its first master is the one
            // configured; the others wait to hear from it (a learner asks
            // for pre-votes all the same, to learn the others' epochs, and
            // stands no further).
            Role::Secondary(_)
                if self.ballot.term == 0
                    && self.cfg.id != self.cfg.master
                    && now >= self.ballot.election_at
                    && self.unsure_of_epoch().is_none() =>
            {
                self.ballot.heard(now, timeout);
            }
            Role::Secondary(_)
                if self.ballot.term == 0
                    && self.cfg.id != self.cfg.master
                    && self.unsure_of_epoch().is_none() => {}
            // A learner member, or a node removed, never stands; as a
            // learner unsure of the newest epoch it asks for pre-votes all
            // the same, to learn the others' epochs, and goes no further.
            Role::Secondary(_)
                if now >= self.ballot.election_at
                    && (self.may_stand() || self.unsure_of_epoch().is_some()) =>
            {
                self.start_election(now, true, out);
            }
            _ => {}
        }
    }

    /// Asks every other node for its pre-vote or vote in the next epoch.
    fn start_election(&mut self, now: Instant, pre: bool, out: &mut Vec<Action>) {
        let timeout = self.cfg.timing.election_timeout;
        // If this one does not conclude in time, the next starts afresh.
        let wait = if self.ballot.term == 0 {
            // The configured master of a new cluster asks again soon: the
            // others may simply not be listening yet.
            self.cfg.timing.heartbeat_interval
        } else {
            self.ballot.timeout(timeout)
        };
        self.ballot.election_at = now + wait;
        let Some(epoch) = crate::entry::next_epoch(self.ballot.term) else {
            // Unreachable in practice: no accepted epoch passes EPOCH_LIMIT.
            let reason = format!("no election past epoch {}", self.ballot.term);
            return Self::disregard(reason, out);
        };
        if !pre {
            self.ballot.term = epoch;
            self.ballot.vote = Some(self.cfg.id.clone());
            self.ballot.leader = None;
            out.push(Action::RecordVote {
                epoch,
                vote: self.ballot.vote.clone(),
            });
            self.drop_stale_master(now, out);
        }
        // Its own vote counts only if it is a voter of its configuration
        // (a node standing while its own removal is not known committed
        // does not count itself).
        let me = BTreeSet::from([self.cfg.id.clone()]);
        let (granted, learners) = if !self.is_voter() {
            (BTreeSet::new(), BTreeSet::new())
        } else if self.learner {
            (BTreeSet::new(), me)
        } else {
            (me, BTreeSet::new())
        };
        self.ballot.running = Some(Election {
            epoch,
            pre,
            granted,
            learners,
        });
        out.push(Action::RequestVotes {
            epoch,
            pre,
            last: self.last_position(),
            peers: self.other_voters(),
        });
        self.count_votes(now, out);
    }

    /// A majority of yeses: a pre-vote becomes a vote, a vote makes this
    /// node master.
    fn count_votes(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(e) = &self.ballot.running else {
            return;
        };
        if !e.won(self.voters()) {
            return;
        }
        if e.pre {
            if (self.ballot.term == 0 && self.cfg.id != self.cfg.master) || !self.may_stand() {
                // It only asked to learn the others' epochs.
                self.ballot.running = None;
                return;
            }
            self.start_election(now, false, out);
        } else {
            self.ballot.running = None;
            self.ballot.leader = Some(self.cfg.id.clone());
            self.ballot.master_since = now;
            // Elected, it holds everything committed.
            self.promote(out);
            self.become_master(now, out);
        }
    }

    /// A newer epoch is known: take it (no vote in it yet, no master known)
    /// and step down if master.
    pub(super) fn adopt(&mut self, now: Instant, epoch: Epoch, out: &mut Vec<Action>) {
        self.take_epoch(now, epoch, None, out);
    }

    /// Takes a newer `epoch` with `vote` cast in it: recorded first, then
    /// whatever stepping down does. Returns whether the epoch was newer.
    pub(super) fn take_epoch(
        &mut self,
        now: Instant,
        epoch: Epoch,
        vote: Option<String>,
        out: &mut Vec<Action>,
    ) -> bool {
        if epoch <= self.ballot.term {
            return false;
        }
        self.ballot.term = epoch;
        self.ballot.vote = vote.clone();
        self.ballot.leader = None;
        self.ballot.running = None;
        out.push(Action::RecordVote { epoch, vote });
        self.become_secondary(out);
        self.drop_stale_master(now, out);
        true
    }

    /// This node's epoch is newer than its master's now: that master's
    /// connection is closed, telling it the newer epoch. A master of an
    /// older epoch must not have its entries stored or acknowledged here:
    /// counted toward a majority by a deposed master, they could be cut by
    /// the new one.
    fn drop_stale_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Role::Secondary(s) = &self.role else {
            return;
        };
        let Some(conn) = s.conn() else {
            return;
        };
        let epoch = self.ballot.term;
        out.push(Action::RefuseStale {
            conn,
            epoch,
            reason: format!(
                "node {} is in epoch {epoch} now: its former master is stale",
                self.cfg.id
            ),
        });
        self.secondary(now, SecondaryEvent::MasterDisconnected { conn }, out);
    }

    /// A candidate asks for this node's pre-vote or vote.
    pub(super) fn on_vote_requested(
        &mut self,
        now: Instant,
        conn: super::ConnId,
        request: VoteRequest,
        out: &mut Vec<Action>,
    ) {
        let VoteRequest {
            candidate,
            epoch,
            last,
            pre,
        } = request;
        // Whatever this node's configuration says of the candidate: the
        // candidate counts votes by its own (Raft's rule; a node removed
        // that does not know it is kept out by the lease below and by the
        // log comparison, since its log lacks the entry removing it).
        // A vote goes only to a log at least as up to date as this one:
        // whoever is elected holds every entry a majority holds.
        let up_to_date = last >= self.last_position();
        let granted = if pre {
            epoch > self.ballot.term && up_to_date && !self.in_lease(now)
        } else if epoch < self.ballot.term || (epoch > self.ballot.term && self.in_lease(now)) {
            false
        } else {
            let granted = if epoch > self.ballot.term {
                // A new epoch, and the vote in it, recorded together.
                let vote = up_to_date.then(|| candidate.clone());
                self.take_epoch(now, epoch, vote, out);
                up_to_date
            } else {
                let free = self.ballot.vote.as_ref().is_none_or(|v| *v == candidate);
                if free && up_to_date && self.ballot.vote.is_none() {
                    self.ballot.vote = Some(candidate.clone());
                    out.push(Action::RecordVote {
                        epoch,
                        vote: Some(candidate),
                    });
                }
                free && up_to_date
            };
            if granted {
                // Give the candidate time to win before competing.
                self.ballot.running = None;
                self.ballot.heard(now, self.cfg.timing.election_timeout);
            }
            granted
        };
        // A learner's yes is worth less, and says so.
        let frame = if granted && self.learner {
            Frame::LearnerVote {
                epoch,
                term: self.ballot.term,
                pre,
            }
        } else {
            Frame::VoteReply {
                epoch,
                term: self.ballot.term,
                granted,
                pre,
            }
        };
        out.push(Action::AnswerVote { conn, frame });
    }

    /// Recording this node's vote in `epoch` failed, so the runtime sent
    /// no answer or request that relied on it. A vote for a candidate is
    /// taken back: nobody was told of it, and the disk does not hold it,
    /// so the next request in this epoch may be granted (and recorded)
    /// afresh. A vote given by taking a master stays. An election it runs in
    /// `epoch` stops, and a master it made steps down: its epoch is not
    /// recorded, so a restart could vote in it again. The next election
    /// tries again, by when the disk may have room.
    pub(super) fn on_vote_unrecorded(
        &mut self,
        epoch: Epoch,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        if self.ballot.term != epoch {
            return; // a newer epoch was recorded since
        }
        // A vote given by taking a master was acted on (it was welcomed):
        // it stays, in memory at least, so that no other node gets this
        // node's vote in this epoch.
        let took_master = self.ballot.leader.is_some()
            && self.ballot.leader != Some(self.cfg.id.clone())
            && self.ballot.leader == self.ballot.vote;
        if !took_master {
            self.ballot.vote = None;
        }
        if self
            .ballot
            .running
            .as_ref()
            .is_some_and(|e| e.epoch == epoch)
        {
            self.ballot.running = None;
        }
        if self.ballot.leader.as_deref() == Some(self.cfg.id.as_str()) {
            self.ballot.leader = None;
            self.become_secondary(out);
        }
        let reason = format!(
            "cannot record epoch {epoch} and this node's vote in it ({reason}): no vote is given or asked for until it can be"
        );
        Self::disregard(reason, out);
    }

    /// A voter answered.
    pub(super) fn on_vote_answered(
        &mut self,
        now: Instant,
        answer: VoteAnswer,
        out: &mut Vec<Action>,
    ) {
        let VoteAnswer {
            voter,
            epoch,
            term,
            granted,
            pre,
            learner,
        } = answer;
        if let Some(reason) = self.refusal(&voter, term, "a vote answer") {
            return Self::disregard(reason, out);
        }
        if self.learner {
            self.heard_from.insert(voter.clone());
        }
        if term > self.ballot.term && !granted {
            return self.adopt(now, term, out);
        }
        // A yes counts only from a voter.
        if !self.members.is_voter(&voter) {
            return;
        }
        let Some(e) = &mut self.ballot.running else {
            return;
        };
        if e.epoch != epoch || e.pre != pre || !granted {
            return;
        }
        if learner {
            e.learners.insert(voter);
        } else {
            e.granted.insert(voter);
        }
        self.count_votes(now, out);
    }
}
