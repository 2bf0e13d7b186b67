//! Consumer groups a node acts on: the positions its log leaves (see
//! `replication::groups`), followed from the entries the core writes,
//! forgotten at a cut until the runtime reports them again, and a client's
//! request to set a position or delete a group, which the master checks
//! and writes as a group entry.

use std::time::Instant;

use super::{Action, ClientId, Core, Role};
use crate::entry::Seq;
use crate::replication::catalog::check_name;
use crate::replication::groups::{effect, GroupChange, Positions};
use crate::replication::master::MasterEvent;
use crate::replication::storage::StorageReport;
use crate::wire::AppendError;

/// A client's request about a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRequest {
    /// Group `group` has read log `log` up to message `number` (a commit,
    /// or `replog group set`).
    Set {
        /// The group's name.
        group: String,
        /// The log's name (the core finds it: a node behind may not know
        /// yet of a log just created, and is not the one to say).
        log: String,
        /// The last message read; 0 to read the log from its start.
        number: Seq,
        /// Set only if the position is this now, or `number` already
        /// (see `GroupChangeRequest::Set`).
        expect: Option<Seq>,
    },
    /// Delete group `group` and its positions in every log.
    Delete(String),
}

impl Core {
    /// The consumer groups' positions this node acts on (those in logs
    /// deleted since included: see [`Core::logs`]); `None` right after a
    /// cut, until the runtime reports them.
    pub fn groups(&self) -> Option<&Positions> {
        self.groups.positions()
    }

    /// Changes whenever [`Core::groups`] may have.
    pub fn groups_version(&self) -> u64 {
        self.groups.version()
    }

    /// Follows what `actions` do to the positions.
    pub(super) fn track_groups(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::Persist(entries) => {
                    let control = entries.iter().filter(|e| e.is_control());
                    for e in control {
                        if let Some(effect) = effect(e.key.as_deref(), &e.message) {
                            self.groups.push(&effect);
                        }
                    }
                }
                Action::CutLog { .. } => self.groups.forget(),
                // Checked when it came (`frames`).
                Action::ResetLog { groups, .. } => self.groups.reset(groups.clone()),
                _ => {}
            }
        }
    }

    /// The runtime read the positions the log leaves (after a cut).
    pub(super) fn groups_reported(&mut self, report: &StorageReport) {
        if let StorageReport::Numbers { groups, .. } = report {
            self.groups.set(groups.clone());
        }
    }

    /// Retention moved the log's base: the positions there.
    pub(super) fn groups_compacted(&mut self, at_base: bytes::Bytes) {
        if let Role::Master(m) = &mut self.role {
            m.set_groups_at_base(at_base.clone());
        }
        self.groups.compacted(at_base);
    }

    /// A client's request to set a group's position or delete a group:
    /// made by the master (as a group entry it answers once a majority
    /// holds it), refused with the reason if it cannot be, sent to the
    /// master by any other node.
    pub(super) fn change_groups(
        &mut self,
        now: Instant,
        (client, req): (ClientId, u64),
        request: GroupRequest,
        out: &mut Vec<Action>,
    ) {
        let reply = |result| Action::Reply {
            client,
            req,
            result,
        };
        let change = match self.check_group_request(request) {
            Ok(change) => change,
            Err(error) => return out.push(reply(Err(error))),
        };
        self.master(
            now,
            MasterEvent::ChangeGroups {
                client,
                req,
                change,
            },
            out,
        );
    }

    /// The group entry `request` makes, or why it cannot be made here.
    fn check_group_request(&self, request: GroupRequest) -> Result<GroupChange, AppendError> {
        let Role::Master(m) = &self.role else {
            let master_addr = self.master_addr().to_string();
            return Err(AppendError::NotMaster { master_addr });
        };
        let group = match &request {
            GroupRequest::Set { group, .. } | GroupRequest::Delete(group) => group,
        };
        check_name(group).map_err(|e| AppendError::BadRequest(format!("group name: {e}")))?;
        let again = || {
            AppendError::Storage(
                "the master is reading its log's positions again after a cut: try again".into(),
            )
        };
        let positions = self.groups.positions().ok_or_else(again)?;
        let logs = self.catalog.logs();
        match request {
            GroupRequest::Delete(group) => match positions.has(&group) {
                true => Ok(GroupChange::Delete { group }),
                false => Err(AppendError::NoSuchGroup { group }),
            },
            GroupRequest::Set {
                group,
                log: name,
                number,
                expect,
            } => {
                let log = logs
                    .id_of(&name)
                    .ok_or(AppendError::NoSuchLog { log: name.clone() })?;
                let now = positions.get(&group, log);
                if expect.is_some_and(|e| now != Some(e) && now != Some(number)) {
                    let now = now.map_or("none".to_string(), |n| n.to_string());
                    return Err(AppendError::BadRequest(format!(
                        "group {group}'s position in log {name} is {now}, not {}: another consumer of the group, replog group set or replog group delete moved it (one consumer per group and log at a time)",
                        expect.unwrap_or_default()
                    )));
                }
                let last = m.last_number(log).ok_or_else(again)?;
                if number > last {
                    return Err(AppendError::BadRequest(format!(
                        "log {name} ends at message {last}: a group cannot have read it up to {number}"
                    )));
                }
                let count = positions.count();
                if positions.get(&group, log).is_none() && count >= self.cfg.max_groups {
                    return Err(AppendError::BadRequest(format!(
                        "the cluster keeps {count} group positions, as many as --max-groups allows: delete a group (replog group delete), or raise --max-groups on every node"
                    )));
                }
                Ok(GroupChange::Set { group, log, number })
            }
        }
    }
}
