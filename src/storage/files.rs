//! The data directory's files: segment names, opening, replacing and
//! syncing files and the directory, the lock that keeps one process per
//! directory, the error that says written but not durable, and the testing
//! aid that makes writes fail as a full disk does.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::entry::Seq;

pub(super) fn segment_name(first: Seq) -> String {
    format!("{first:020}.log")
}

/// The first sequence number of the segment file `name`, if it is one:
/// exactly as [`segment_name`] writes it (a stray `7.log` is none of ours).
pub(super) fn segment_first(name: &str) -> Option<Seq> {
    let first = name.strip_suffix(".log")?.parse().ok()?;
    (segment_name(first) == name).then_some(first)
}

/// The first sequence numbers of the segments in `dir`, in order.
pub(super) fn segment_firsts(dir: &Path) -> io::Result<Vec<Seq>> {
    let mut firsts = Vec::new();
    for item in fs::read_dir(dir)? {
        if let Some(first) = segment_first(&item?.file_name().to_string_lossy()) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

pub(super) fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
}

/// Replaces `dir/name` with `text` so that a crash leaves either the old
/// file or the new one: written to a new file, synced, renamed over the
/// old one, and the directory synced.
pub(super) fn replace_file(dir: &Path, name: &str, text: &str) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Locks the data directory `dir` for this process. One process per data
/// directory: a second daemon writing the same segments would corrupt
/// them. The lock goes with the file (and the process), so a crash never
/// leaves it behind.
pub(super) fn lock_dir(dir: &Path) -> io::Result<File> {
    let lock = File::create(dir.join("lock"))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{} is in use by another process (another replogd?); give each node its own --data-dir",
                dir.display()
            ),
        )),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Carried inside an `io::Error` from `DiskLog::append` when the entries
/// were written but making them durable failed.
#[derive(Debug)]
pub struct NotDurable(pub String);

impl std::fmt::Display for NotDurable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotDurable {}

/// Whether an error from appending says the entries were written but may
/// not be durable (rather than not written).
pub fn is_not_durable(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<NotDurable>())
}

/// Which operation the testing aid's file is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// Writing records.
    Write,
    /// fdatasync.
    Sync,
}

/// The error a full disk gives, if the testing aid's file exists: for every
/// operation, or only for syncs if the file holds the word `sync`.
pub fn injected_fault(path: Option<&Path>, op: FaultOp) -> Option<io::Error> {
    let path = path?;
    let only = std::fs::read_to_string(path).ok()?;
    (op == FaultOp::Sync || only.trim() != "sync").then(|| {
        io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "No space left on device (injected: {} exists)",
                path.display()
            ),
        )
    })
}
