//! The log as a node's tasks share it: one writer (the node loop), many
//! readers (lists, digests, probes), and where the log starts and ends
//! published beside the lock.
//!
//! The loop holds the write lock while it writes, and a write can wait on
//! the disk (retention or a cut syncs the directory, and a segment roll
//! syncs under `--fsync never` or when one is still pending). A task
//! that only wants to know where the log starts or ends, a welcome say,
//! must not wait behind that on one of the runtime's threads: it reads
//! [`SharedLog::ends`], which every write guard updates as it is released.

use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::entry::Position;
use crate::storage::Log;

/// Where the log starts and ends, as of the last write released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogEnds {
    /// The last entry.
    pub(crate) last: Position,
    /// The entry before the first one held.
    pub(crate) base: Position,
}

/// The log behind its lock, with its ends published.
pub(crate) struct SharedLog {
    log: RwLock<Log>,
    /// Held only to copy the two positions in or out, never across I/O.
    ends: Mutex<LogEnds>,
}

impl SharedLog {
    pub(crate) fn new(log: Log) -> Self {
        let ends = LogEnds {
            last: log.last(),
            base: log.base(),
        };
        SharedLog {
            log: RwLock::new(log),
            ends: Mutex::new(ends),
        }
    }

    /// The log, to read. This waits while the node loop writes: off the
    /// runtime's threads, go through `Shared::read_log`.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Log> {
        self.log.read().expect("log lock")
    }

    /// The log, to change (the node loop only). Its ends are published
    /// when the guard is dropped.
    pub(crate) fn write(&self) -> LogWriteGuard<'_> {
        LogWriteGuard {
            log: self.log.write().expect("log lock"),
            ends: &self.ends,
        }
    }

    /// Where the log starts and ends, without waiting for a write.
    pub(crate) fn ends(&self) -> LogEnds {
        *self.ends.lock().expect("log ends")
    }
}

/// The write lock; publishes the log's ends when dropped.
pub(crate) struct LogWriteGuard<'a> {
    log: RwLockWriteGuard<'a, Log>,
    ends: &'a Mutex<LogEnds>,
}

impl std::ops::Deref for LogWriteGuard<'_> {
    type Target = Log;
    fn deref(&self) -> &Log {
        &self.log
    }
}

impl std::ops::DerefMut for LogWriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Log {
        &mut self.log
    }
}

impl Drop for LogWriteGuard<'_> {
    fn drop(&mut self) {
        // Still under the write lock: a reader never sees ends that the
        // log under the lock has moved past.
        *self.ends.lock().expect("log ends") = LogEnds {
            last: self.log.last(),
            base: self.log.base(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;

    #[test]
    fn the_ends_follow_every_write_once_its_guard_is_released() {
        let shared = SharedLog::new(Log::memory());
        let entry = |seq| Entry {
            epoch: 2,
            seq,
            log: crate::entry::DEFAULT_LOG,
            number: seq,
            key: None,
            message: "m".into(),
        };
        let zero = Position { epoch: 0, seq: 0 };
        assert_eq!(shared.ends().last, zero);
        {
            let mut log = shared.write();
            log.append(&[entry(1), entry(2)]).unwrap();
            // Not yet: the guard is held.
            assert_eq!(shared.ends().last, zero);
        }
        assert_eq!(shared.ends().last, Position { epoch: 2, seq: 2 });
        shared.write().truncate_after(1).unwrap();
        assert_eq!(shared.ends().last, Position { epoch: 2, seq: 1 });
        assert_eq!(shared.ends().base, zero);
    }
}
