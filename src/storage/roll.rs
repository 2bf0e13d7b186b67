//! A segment roll made durable off the node loop, and what a sync must do
//! to make everything written so far durable ([`SyncPoint`]).
//!
//! When the segment being written is full, the loop goes on writing at once
//! into the next one, a file prepared ahead under a name that recovery does
//! not read as a segment ([`NEXT`]). What makes the roll durable is left to
//! the syncer, in this order: the full segment is fdatasynced, only then is
//! the next file renamed to its real name (`<first>.log`), and the
//! directory synced. The syncer finishes the roll before it syncs anything
//! written to the new segment, so nothing there counts as stored before the
//! roll is durable.
//!
//! That order keeps the log free of gaps after a power cut: a segment
//! named `<first>.log` exists on disk only once every segment before it was
//! synced whole, so recovery needs no rule beyond a torn tail in the last
//! segment. A [`NEXT`] file found at a start was never synced: recovery
//! adopts it if it continues the log exactly (a process that crashed with
//! its page cache intact, where `--fsync batch` and `never` have already
//! acknowledged it) and removes it otherwise.
//!
//! At most one roll is pending: a second roll, retention, and a cut inside
//! the new segment finish it on the loop first ([`Roll::finish`] is
//! idempotent, and whichever of the loop and the syncer comes second waits
//! for the first); a cut or a reset that drops the new segment whole
//! abandons it.
//!
//! A roll whose sync failed is tried again only where nothing cuts the log
//! after a failed sync (`--fsync batch`, `never`). Under `always` it stays
//! failed: Linux may drop the dirty pages it could not write, so a second
//! fdatasync can succeed without them; the node cuts back to what was
//! synced instead, which drops the new segment and abandons the roll.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::files::{injected_fault, open_rw, sync_dir, FaultOp, NotDurable};

/// The file the next segment is written to until its roll is durable.
pub const NEXT: &str = "segment.next";

/// A prepared [`NEXT`] file, shared between the log and its rolls: a roll
/// that finishes leaves the file for the roll after it.
pub(super) type Prepared = Arc<Mutex<Option<File>>>;

/// Creates an empty [`NEXT`] file in `dir` (truncating any old one).
pub(super) fn prepare(dir: &Path) -> io::Result<File> {
    let file = open_rw(&dir.join(NEXT), true)?;
    file.set_len(0)?;
    Ok(file)
}

/// Prepares the next roll's file into `slot`. Failing is not an error:
/// the roll then creates the file itself.
pub(super) fn prepare_ahead(dir: &Path, slot: &Prepared) {
    match prepare(dir) {
        Ok(file) => *slot.lock().expect("prepared") = Some(file),
        Err(e) => {
            tracing::warn!(error = %e, "cannot prepare the next log segment; the next roll creates it")
        }
    }
}

/// Where a pending roll stands.
#[derive(Debug)]
enum State {
    /// Not yet durable.
    Pending,
    /// Durable: the new segment has its real name.
    Done,
    /// A step failed: the new segment's entries are written but not
    /// durable (tried again only if the roll says so).
    Failed(String),
    /// The new segment was cut away before the roll finished.
    Abandoned,
}

/// A segment roll whose syncs are still to be done.
#[derive(Debug)]
pub struct Roll {
    /// The full segment: synced before the new one is named.
    closed: Arc<File>,
    /// Where the new segment is written meanwhile ([`NEXT`]).
    from: PathBuf,
    /// Its real name.
    to: PathBuf,
    /// The data directory, synced once the new name is in it.
    dir: PathBuf,
    /// Where the roll stands, and whether `from` was renamed to `to`
    /// (held across the roll's syscalls, so a second caller waits).
    state: Mutex<(State, bool)>,
    /// Filled with the next prepared file once this roll is done.
    prepared: Prepared,
    /// Testing aid (`--fail-storage-while`).
    fault: Option<PathBuf>,
    /// Whether a failed roll is tried again at the next `finish`.
    retry: bool,
}

impl Roll {
    pub(super) fn new(
        closed: Arc<File>,
        dir: &Path,
        to: PathBuf,
        prepared: Prepared,
        fault: Option<PathBuf>,
        retry: bool,
    ) -> Self {
        Roll {
            closed,
            from: dir.join(NEXT),
            to,
            dir: dir.to_path_buf(),
            state: Mutex::new((State::Pending, false)),
            prepared,
            fault,
            retry,
        }
    }

    /// The state, also after a panic in a step (caught by the syncer): a
    /// roll cut short that way counts as failed.
    fn state(&self) -> std::sync::MutexGuard<'_, (State, bool)> {
        self.state.lock().unwrap_or_else(|poisoned| {
            let mut guard = poisoned.into_inner();
            if matches!(guard.0, State::Pending) {
                guard.0 = State::Failed("a step of the roll panicked".into());
            }
            guard
        })
    }

    /// Makes the roll durable (once; later calls return at once, or the
    /// same failure); says whether this call did it. On success the next
    /// segment file is prepared for the roll after this one.
    pub fn finish(&self) -> io::Result<bool> {
        let mut guard = self.state();
        let (state, renamed) = &mut *guard;
        match state {
            State::Done | State::Abandoned => return Ok(false),
            State::Failed(why) if !self.retry => {
                return Err(io::Error::other(NotDurable(why.clone())));
            }
            State::Failed(_) | State::Pending => {}
        }
        let result = (|| {
            if let Some(err) = injected_fault(self.fault.as_deref(), FaultOp::Sync) {
                return Err(err);
            }
            self.closed.sync_data()?;
            if !*renamed {
                std::fs::rename(&self.from, &self.to)?;
                *renamed = true;
            }
            sync_dir(&self.dir)
        })();
        match result {
            Ok(()) => {
                *state = State::Done;
                // Prepared while the state is still held: the loop, waiting
                // in its own `finish` to roll again, then finds it.
                prepare_ahead(&self.dir, &self.prepared);
                Ok(true)
            }
            Err(e) => {
                let why = format!("syncing a full segment failed: {e}");
                *state = State::Failed(why.clone());
                Err(io::Error::new(e.kind(), NotDurable(why)))
            }
        }
    }

    /// The new segment is being cut away whole: removes its file, under
    /// whichever name it has, and makes sure the roll never renames it.
    pub(super) fn abandon(&self) -> io::Result<()> {
        let mut guard = self.state();
        let (state, renamed) = &mut *guard;
        *state = State::Abandoned;
        let path = if *renamed { &self.to } else { &self.from };
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// What a sync must cover to make everything written so far durable: the
/// file being written and, while one is pending, the roll that named it.
#[derive(Debug, Clone)]
pub struct SyncPoint {
    /// The segment being written.
    pub(super) file: Arc<File>,
    /// The roll to finish first, if it is still pending.
    pub(super) roll: Option<Arc<Roll>>,
}

impl SyncPoint {
    /// A point that is just a file (tests of the syncer).
    #[cfg(test)]
    pub fn of_file(file: Arc<File>) -> Self {
        SyncPoint { file, roll: None }
    }

    /// Finishes the roll, if any, then fdatasyncs the file.
    pub fn sync(&self) -> io::Result<()> {
        self.finish_roll()?;
        self.sync_file()
    }

    /// Finishes the roll that named the file, if it is still pending (to
    /// be done before [`SyncPoint::sync_file`]); says whether this call
    /// did it.
    pub fn finish_roll(&self) -> io::Result<bool> {
        match &self.roll {
            Some(roll) => roll.finish(),
            None => Ok(false),
        }
    }

    /// fdatasyncs the file alone.
    pub fn sync_file(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Whether two points are about the same file (a later one covers an
    /// earlier one).
    pub fn same_file(&self, other: &SyncPoint) -> bool {
        Arc::ptr_eq(&self.file, &other.file)
    }
}
