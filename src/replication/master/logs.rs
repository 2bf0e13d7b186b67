//! Named logs created and deleted, consumer groups' positions set: the
//! master writes the catalog or group entry the core checked, and answers
//! once a majority holds it. A log's own retention: the trim entries the
//! master writes, answered to nobody.

use super::*;

impl Master {
    /// Writes `entry` (a catalog or group entry the core checked, made for
    /// the next sequence number); the client is answered with its sequence
    /// number once a majority of voters holds it, like a membership change.
    pub(super) fn write_control(
        &mut self,
        (client, req): (ClientId, u64),
        entry: Entry,
        out: &mut Vec<MasterAction>,
    ) {
        if let Some(reason) = &self.broken {
            return out.push(MasterAction::Reply {
                client,
                req,
                result: Err(AppendError::Storage(reason.clone())),
            });
        }
        let seq = self.next_seq((0, 0), entry.key.as_deref(), &[]);
        debug_assert_eq!(seq, entry.seq, "made for the next sequence number");
        out.push(MasterAction::Persist(entry));
        let w = crate::replication::quorum::majority(self.nodes());
        self.wait_for(client, req, seq, w);
    }

    /// The members not connected now with at least node protocol
    /// `version`: who might not read an entry only that version writes.
    pub fn members_below(&self, version: u32) -> Vec<String> {
        (self.peers.iter())
            .filter(|p| !p.gone && (p.conn.is_none() || p.version < version))
            .map(|p| p.id.clone())
            .collect()
    }

    /// Writes a trim entry (the core checked it against the catalog), cut
    /// to leave the log's last message, which numbers the next, if it still
    /// trims past `trimmed`.
    pub(super) fn write_trim(
        &mut self,
        change: crate::replication::catalog::Change,
        trimmed: Seq,
        out: &mut Vec<MasterAction>,
    ) {
        use crate::replication::catalog::Change;
        let Change::Trim { id, name, through } = change else {
            return;
        };
        let through = through.min(self.numbers.last(id).saturating_sub(1));
        if self.broken.is_some() || through <= trimmed {
            return;
        }
        let entry = Change::Trim { id, name, through }.entry(self.epoch, self.last + 1);
        let seq = self.next_seq((0, 0), entry.key.as_deref(), &[]);
        debug_assert_eq!(seq, entry.seq, "made for the next sequence number");
        out.push(MasterAction::Persist(entry));
    }
}
