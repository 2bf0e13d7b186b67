//! Damage found in a log at start: which file, where, and what was wrong.
//!
//! Carried inside an `io::Error` of kind `InvalidData` so that the log's
//! opening keeps one error type, while whoever decides what to do about
//! damage ([`super::heal`]) can tell it from a disk that fails, a missing
//! permission or a damaged `epoch` file, none of which is healed.

use std::io;
use std::path::{Path, PathBuf};

/// A record or segment that is not what the log wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is damaged at byte offset {offset}: {what}", path.display())]
pub struct Damage {
    /// The segment file.
    pub path: PathBuf,
    /// Where in it the first bad record starts: every byte before it is
    /// whole records that were checked (0 when the segment itself is out
    /// of place).
    pub offset: u64,
    /// What was found there.
    pub what: String,
}

/// The error recovery returns for damage at `offset` of `path`.
pub(super) fn corrupt(path: &Path, offset: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        Damage {
            path: path.to_path_buf(),
            offset,
            what: what.to_string(),
        },
    )
}

/// The damage `e` reports, if it is damage.
pub fn damage_of(e: &io::Error) -> Option<&Damage> {
    e.get_ref()?.downcast_ref::<Damage>()
}
