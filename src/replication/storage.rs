//! What the local log reports to the core, and the core's rule for when an
//! entry counts as stored.
//!
//! The runtime reports facts only — written up to here, synced up to
//! there, a write or a sync failed — in one [`StorageReport`] that both
//! roles take as it is. Whether "written" is enough to acknowledge is the
//! core's decision ([`Durability`], from `--fsync`): a master holds every
//! reply, and a secondary every ack, until its rule says the entry is
//! stored. This is openraft's "respond once flushed", with the condition
//! kept by the core rather than attached to each reply.

use crate::entry::Seq;

/// When an entry counts as stored, so that it may be acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Once written to the file (`--fsync batch` and `never`): a failed
    /// sync is reported, and what was written stays acknowledged.
    Written,
    /// Once synced (`--fsync always`, the default): a failed sync cuts the log back to
    /// what was synced, since the kernel may have dropped the rest.
    #[default]
    Synced,
}

impl Durability {
    /// How far `report` says entries are stored under this rule, if it
    /// says anything about that. A sync covers what it syncs whatever the
    /// rule: synced entries are written too.
    pub fn stored_upto(self, report: &StorageReport) -> Option<Seq> {
        match (self, report) {
            (Durability::Written, StorageReport::Written { upto, .. })
            | (_, StorageReport::Synced { upto, .. }) => Some(*upto),
            _ => None,
        }
    }
}

/// One fact about the local log, from the runtime. `gen` is the core's
/// log generation when the write was made (`Core::generation`): a report
/// about writes from before a cut says nothing about what was written after
/// it, and the role core ignores it.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageReport {
    /// Everything up to `upto` is written (not necessarily synced).
    Written {
        /// The core's log generation at the write.
        gen: u64,
        /// Last sequence number written.
        upto: Seq,
    },
    /// Everything up to `upto` is synced.
    Synced {
        /// The core's log generation at the write.
        gen: u64,
        /// Last sequence number synced.
        upto: Seq,
    },
    /// Entries after `after` were not written, or were written but not
    /// made durable and have been cut: they do not exist. The log itself
    /// works (a full disk, say): later writes try again.
    Unwritten {
        /// Last sequence number the log holds.
        after: Seq,
        /// The error, for clients and the master's log.
        reason: String,
    },
    /// A sync of the local log failed. After a failed fdatasync the kernel
    /// may have dropped the written pages, and a later sync can report
    /// success for data that is gone ("fsyncgate"), so what was not yet
    /// reported synced must not be trusted.
    SyncFailed {
        /// The error, for clients and health.
        reason: String,
    },
    /// The log was cut or reset as this node's core asked
    /// (`CutLog`, `ResetLog`): each log's last message number in it now,
    /// and the consumer groups' positions, as the runtime reads them from
    /// the log (with what it has yet to write) when it hands the report
    /// over, since a cut may take back numbers and positions the core no
    /// longer knows. See `super::numbers` and `super::groups`.
    Numbers {
        /// `(log, last number)` of every log that has had a message.
        pairs: Vec<(crate::entry::LogId, Seq)>,
        /// The consumer groups' positions.
        groups: super::groups::Positions,
    },
    /// The local log failed in a way that cannot be undone: nothing more
    /// is acknowledged.
    Failed {
        /// The error, for clients and the log.
        reason: String,
    },
}

impl StorageReport {
    /// The log generation a write report is about; `None` for a failure,
    /// which is about the log as it is now.
    pub fn generation(&self) -> Option<u64> {
        match self {
            StorageReport::Written { gen, .. } | StorageReport::Synced { gen, .. } => Some(*gen),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_counts_only_when_writing_is_enough_and_a_sync_always_counts() {
        let written = StorageReport::Written { gen: 1, upto: 4 };
        let synced = StorageReport::Synced { gen: 1, upto: 3 };
        let failed = StorageReport::SyncFailed { reason: "x".into() };
        assert_eq!(Durability::Written.stored_upto(&written), Some(4));
        assert_eq!(Durability::Written.stored_upto(&synced), Some(3));
        assert_eq!(Durability::Synced.stored_upto(&written), None);
        assert_eq!(Durability::Synced.stored_upto(&synced), Some(3));
        assert_eq!(Durability::Synced.stored_upto(&failed), None);
        assert_eq!(Durability::Written.stored_upto(&failed), None);
        assert_eq!(written.generation(), Some(1));
        assert_eq!(failed.generation(), None);
    }
}
