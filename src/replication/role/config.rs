//! The configuration a node acts on: the membership recorded by the newest
//! configuration entry its log holds, committed or not, or `--cluster`'s
//! before any (see `replication::membership`).
//!
//! The core sees every entry that goes into the log and every cut, as the
//! actions it gives the runtime (`Persist`, `CutLog`, `ResetLog`), so it
//! follows the log's configuration entries from those: one written is
//! acted on at once, one cut is forgotten and the one before it is acted
//! on again.

use std::time::Instant;

use super::{Action, ClientId, Core, Role};
use crate::entry::Seq;
use crate::replication::master::MasterEvent;
use crate::replication::membership::{Membership, Standing};
use crate::replication::MemberChange;
use crate::wire::AppendError;

impl Core {
    /// The members this node acts on.
    pub fn members(&self) -> &Membership {
        &self.members
    }

    /// The sequence number of the configuration entry the members come
    /// from (0 for `--cluster`'s).
    pub(super) fn config_seq(&self) -> Seq {
        self.configs.last().map_or(0, |(seq, _)| *seq)
    }

    /// Follows what `actions` do to the log's configuration entries; on a
    /// node that is not master, says so when an entry newly leaves it out.
    pub(super) fn track_configs(&mut self, actions: &[Action]) -> Option<Action> {
        let was_member = self.members.get(&self.cfg.id).is_some();
        for action in actions {
            match action {
                Action::Persist(entries) => {
                    for e in entries.iter().filter(|e| e.is_config()) {
                        // The master wrote it, or checked it before taking
                        // it: an unreadable one is none.
                        if let Ok(m) = Membership::decode(&e.message) {
                            self.configs.push((e.seq, m));
                        }
                    }
                }
                Action::CutLog { after, .. } => self.configs.retain(|(s, _)| s <= after),
                Action::ResetLog { base, configs, .. } => match configs {
                    // The master's word for what its log records up to the
                    // base, which the node's own may not (cut, or older).
                    Some(given) => {
                        self.configs = (given.iter())
                            .filter_map(|(s, m)| Some((*s, Membership::decode(m).ok()?)))
                            .collect()
                    }
                    None => self.configs.retain(|(s, _)| *s <= base.seq),
                },
                _ => {}
            }
        }
        self.members = match self.configs.last() {
            Some((_, m)) => m.clone(),
            None => Membership::voters(&self.cfg.nodes),
        };
        let left = was_member && self.members.get(&self.cfg.id).is_none();
        (left && !matches!(self.role, Role::Master(_))).then(|| Action::LeftCluster {
            reason: format!(
                "node {} is no longer a member as of the configuration entry at seq {}: once that is committed it takes part no more (add it back with replog member add)",
                self.cfg.id,
                self.config_seq()
            ),
        })
    }

    /// A client's membership change: made by the master, refused with the
    /// reason if it cannot be, sent to the master by any other node.
    pub(super) fn change_members(
        &mut self,
        now: Instant,
        (client, req): (ClientId, u64),
        change: MemberChange,
        out: &mut Vec<Action>,
    ) {
        let reply = |result| Action::Reply {
            client,
            req,
            result,
        };
        if !matches!(self.role, Role::Master(_)) {
            let master_addr = self.master_addr().to_string();
            return out.push(reply(Err(AppendError::NotMaster { master_addr })));
        }
        let next = match &change {
            MemberChange::Add { id, addr } => self.members.with_learner(id, addr),
            MemberChange::Remove { id } => self.members.without(id),
        };
        match next {
            Ok(next) => self.master(now, MasterEvent::ChangeMembers { client, req, next }, out),
            Err(e) => out.push(reply(Err(AppendError::BadRequest(e.to_string())))),
        }
    }

    /// Whether the members come from a configuration entry of the log
    /// (a change was made) rather than from `--cluster`.
    pub fn members_from_log(&self) -> bool {
        !self.configs.is_empty()
    }

    /// Whether this node votes.
    pub fn is_voter(&self) -> bool {
        self.members.is_voter(&self.cfg.id)
    }

    /// Whether this node may stand in an election: a voter, or a node
    /// whose removal its log holds but does not know committed (the
    /// cluster may still need it to elect a master, as Raft's thesis has
    /// it, 4.2.2; it does not count its own vote). A learner member never
    /// stands.
    pub(super) fn may_stand(&self) -> bool {
        self.is_voter()
            || (self.members.get(&self.cfg.id).is_none() && self.committed() < self.config_seq())
    }

    /// How many members vote.
    pub(super) fn voters(&self) -> usize {
        self.members.voter_count()
    }

    /// Every other member, voter or learner, in order: a master's
    /// secondaries.
    pub(super) fn others(&self) -> Vec<(String, String)> {
        self.others_where(|_| true)
    }

    /// Every other voter: whom a candidate asks.
    pub(super) fn other_voters(&self) -> Vec<(String, String)> {
        self.others_where(|s| s == Standing::Voter)
    }

    fn others_where(&self, keep: impl Fn(Standing) -> bool) -> Vec<(String, String)> {
        (self.members.members().iter())
            .filter(|m| m.id != self.cfg.id && keep(m.standing))
            .map(|m| (m.id.clone(), m.addr.clone()))
            .collect()
    }

    /// The address of node `id`: as the members say, or as `--cluster`
    /// said for a node no longer a member.
    pub(super) fn addr_of(&self, id: &str) -> &str {
        match self.members.get(id) {
            Some(m) => &m.addr,
            None => self.cfg.addr(id),
        }
    }
}
