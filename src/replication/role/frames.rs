//! What the current master sends that no master could: entries or a
//! reset of an epoch newer than its own, or a reset to a base no log has
//! (epochs out of order or past it, more than one configuration entry, one
//! after the base or one that does not read). The connection is refused
//! and nothing of the frame is taken.

use std::time::Instant;

use super::{Action, ConnId, Core, Role};
use crate::entry::{Epoch, Position, Seq};
use crate::replication::membership::Membership;
use crate::replication::secondary::SecondaryEvent;

impl Core {
    /// The connection and why, if what came from the current master is
    /// a frame no master sends.
    pub(super) fn impossible_frame(&self, event: &SecondaryEvent) -> Option<(ConnId, String)> {
        if let Some((conn, newest)) = self.newer_than_master(event) {
            let reason = format!(
                "the master of epoch {} sent epoch {newest}, newer than its own: a forged or corrupt frame, refused",
                self.master_epoch
            );
            return Some((conn, reason));
        }
        let SecondaryEvent::Reset {
            conn,
            base,
            epochs,
            configs,
            logs,
            groups,
            ..
        } = event
        else {
            return None;
        };
        let current = matches!(&self.role, Role::Secondary(s) if s.conn() == Some(*conn));
        let why = impossible_reset(*base, epochs, configs.as_deref())
            .or_else(|| {
                let unreadable = crate::replication::catalog::Logs::decode(logs).is_err();
                unreadable.then_some("a Reset whose catalog of logs is not readable, refused")
            })
            .or_else(|| {
                let unreadable = crate::replication::groups::Positions::decode(groups).is_err();
                unreadable.then_some("a Reset whose groups' positions are not readable, refused")
            })?;
        current.then(|| (*conn, why.to_string()))
    }

    /// The connection and the newest epoch of what the current master sent,
    /// if it is newer than the master's own epoch: entries, or a reset's
    /// epochs. A master writes only in its own epoch and older ones, so
    /// that is a forged or corrupt frame. (What comes on another connection
    /// is the secondary's to ignore.)
    pub(super) fn newer_than_master(&self, event: &SecondaryEvent) -> Option<(ConnId, Epoch)> {
        let Role::Secondary(s) = &self.role else {
            return None;
        };
        let (conn, newest) = match event {
            SecondaryEvent::Entries { conn, entries } => {
                (*conn, entries.iter().map(|e| e.epoch).max())
            }
            SecondaryEvent::Reset {
                conn, base, epochs, ..
            } => (
                *conn,
                epochs.iter().map(|(e, _)| *e).chain([base.epoch]).max(),
            ),
            _ => return None,
        };
        let newest = newest.filter(|e| *e > self.master_epoch)?;
        (s.conn() == Some(conn)).then_some((conn, newest))
    }

    /// Refuses what the master sent on `conn` (see
    /// [`Core::impossible_frame`]): nothing of it is stored, the connection
    /// is dropped, and the master dials again.
    pub(super) fn refuse_master_frame(
        &mut self,
        now: Instant,
        conn: ConnId,
        reason: String,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::RefuseMaster { conn, reason });
        self.secondary(now, SecondaryEvent::MasterDisconnected { conn }, out);
    }
}

/// Why a reset names no log: epochs and their first seqs rising, none past
/// the base, the last the base's own, and at most one configuration entry,
/// at or before the base and readable; `None` if it does.
fn impossible_reset(
    base: Position,
    epochs: &[(Epoch, Seq)],
    configs: Option<&[(Seq, bytes::Bytes)]>,
) -> Option<&'static str> {
    let rising = epochs
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
    let fits = epochs
        .last()
        .is_none_or(|&(e, s)| e == base.epoch && s <= base.seq);
    if base.seq == Seq::MAX || !rising || !fits {
        return Some("a Reset to an impossible base, refused");
    }
    let members = configs.unwrap_or_default();
    let readable = |(s, m): &(Seq, bytes::Bytes)| *s <= base.seq && Membership::decode(m).is_ok();
    if members.len() > 1 || !members.iter().all(readable) {
        return Some("a Reset with members that are not one readable configuration at or before its base, refused");
    }
    None
}
