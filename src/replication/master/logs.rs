//! Named logs created and deleted: the master writes the catalog entry the
//! core checked, and answers once a majority holds it.

use super::*;
use crate::replication::catalog::Change;

impl Master {
    /// Writes `change` (checked by the core against the catalog) as a
    /// catalog entry; the client is answered with its sequence number
    /// once a majority of voters holds it, like a membership change.
    pub(super) fn change_logs(
        &mut self,
        (client, req): (ClientId, u64),
        change: Change,
        out: &mut Vec<MasterAction>,
    ) {
        if let Some(reason) = &self.broken {
            return out.push(MasterAction::Reply {
                client,
                req,
                result: Err(AppendError::Storage(reason.clone())),
            });
        }
        let seq = self.next_seq((0, 0), Some(crate::replication::catalog::CATALOG_KEY), &[]);
        out.push(MasterAction::Persist(change.entry(self.epoch, seq)));
        let w = crate::replication::quorum::majority(self.nodes());
        self.wait_for(client, req, seq, w);
    }
}
