//! Named logs created and deleted, consumer groups' positions set: the
//! master writes the catalog or group entry the core checked, and answers
//! once a majority holds it.

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
}
