//! The named logs a node acts on: the catalog its log records (see
//! `replication::catalog`), followed from the entries the core writes and
//! cuts as it follows configuration entries, and a client's request to
//! create or delete a log, which the master writes as a catalog entry.

use std::time::Instant;

use super::{Action, ClientId, Core, Role};
use crate::entry::{LogId, Seq};
use crate::replication::catalog::{
    check_name, Change, LogRetention, Logs, CATALOG_KEY, DEFAULT_NAME,
};
use crate::replication::master::MasterEvent;
use crate::wire::AppendError;

/// The node protocol version that reads a log's own retention and its
/// trims: a log with one is created only while every member speaks it.
pub const RETENTION_NODE_VERSION: u32 = 11;

/// A client's request about the named logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogChange {
    /// Create a log of this name, with its own retention (or none).
    Create(String, LogRetention),
    /// Delete the log of this name.
    Delete(String),
}

impl Core {
    /// The logs this node acts on.
    pub fn logs(&self) -> &Logs {
        self.catalog.logs()
    }

    /// Changes whenever [`Core::logs`] may have.
    pub fn logs_version(&self) -> u64 {
        self.catalog.version()
    }

    /// Follows what `actions` do to the log's catalog entries.
    pub(super) fn track_catalog(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::Persist(entries) => {
                    let catalog =
                        (entries.iter()).filter(|e| e.key.as_deref() == Some(CATALOG_KEY));
                    for e in catalog {
                        // The master wrote it: an unreadable one is none.
                        if let Ok(change) = Change::decode(&e.message) {
                            self.catalog.push(e.seq, change);
                        }
                    }
                }
                Action::CutLog { after, .. } => self.catalog.cut(*after),
                // Checked when it came (`frames`).
                Action::ResetLog { logs, .. } => {
                    self.catalog.reset(Logs::decode(logs).unwrap_or_default())
                }
                _ => {}
            }
        }
    }

    /// Retention moved the log's base: what the catalog was there.
    pub(super) fn catalog_compacted(&mut self, base: crate::entry::Seq) {
        self.catalog.compacted(base);
        if let Role::Master(m) = &mut self.role {
            m.set_logs_at_base(self.catalog.at_base().encode());
        }
    }

    /// Whether an append may go to log `log`: it exists.
    pub(super) fn refuse_missing_log(&self, log: LogId) -> Option<AppendError> {
        (!self.catalog.logs().exists(log)).then(|| AppendError::NoSuchLog {
            log: format!("id {log}"),
        })
    }

    /// A client's request to create or delete a log: made by the master
    /// (as a catalog entry it answers once a majority holds it), refused
    /// with the reason if it cannot be, sent to the master by any other
    /// node.
    pub(super) fn change_logs(
        &mut self,
        now: Instant,
        (client, req): (ClientId, u64),
        change: LogChange,
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
        let logs = self.catalog.logs();
        let change = match change {
            LogChange::Create(name, retention) => {
                if let Err(e) = check_name(&name) {
                    let why = format!("log name: {e}");
                    return out.push(reply(Err(AppendError::BadRequest(why))));
                }
                if logs.id_of(&name).is_some() {
                    return out.push(reply(Err(AppendError::LogExists { log: name })));
                }
                if let (true, Role::Master(m)) = (retention.is_on(), &self.role) {
                    let behind = m.members_below(RETENTION_NODE_VERSION);
                    if !behind.is_empty() {
                        let msg = format!(
                            "a log's own retention needs every node on a release that reads it (node protocol {RETENTION_NODE_VERSION}), and {} not connected to the master with one: upgrade or start {}, then create the log again; nothing was created",
                            if behind.len() == 1 { "this one is" } else { "these are" },
                            behind.join(", ")
                        );
                        return out.push(reply(Err(AppendError::BadRequest(msg))));
                    }
                }
                if logs.count() >= self.cfg.max_logs {
                    let msg = format!(
                        "the cluster has {} logs besides {DEFAULT_NAME}, as many as --max-logs allows: delete one, or raise --max-logs on every node",
                        logs.count()
                    );
                    return out.push(reply(Err(AppendError::BadRequest(msg))));
                }
                Change::Create {
                    id: logs.next_id(),
                    name,
                    retention,
                }
            }
            LogChange::Delete(name) => match logs.id_of(&name) {
                _ if name == DEFAULT_NAME => {
                    let msg =
                        format!("the log named {DEFAULT_NAME} always exists: it cannot be deleted");
                    return out.push(reply(Err(AppendError::BadRequest(msg))));
                }
                Some(id) => Change::Delete { id, name },
                None => return out.push(reply(Err(AppendError::NoSuchLog { log: name }))),
            },
        };
        self.master(
            now,
            MasterEvent::ChangeLogs {
                client,
                req,
                change,
            },
            out,
        );
    }

    /// The runtime found that these logs' own retention lets their
    /// messages go up to these numbers. The master writes a trim entry for
    /// each log that still exists with a retention of its own, where the
    /// number is past what is already trimmed and before the log's last
    /// message (which numbers the next, so it always stays); nobody is
    /// answered. Any other node does nothing: its own master decides.
    pub(super) fn trim_logs(
        &mut self,
        now: Instant,
        trims: Vec<(LogId, Seq)>,
        out: &mut Vec<Action>,
    ) {
        if !matches!(self.role, Role::Master(_)) {
            return;
        }
        for (id, through) in trims {
            let logs = self.catalog.logs();
            let Some(name) = logs.name_of(id) else {
                continue;
            };
            if !logs.retention(id).is_on() || through <= logs.trimmed(id) {
                continue;
            }
            let trimmed = logs.trimmed(id);
            let change = Change::Trim { id, name, through };
            self.master(now, MasterEvent::Trim { change, trimmed }, out);
        }
    }
}
