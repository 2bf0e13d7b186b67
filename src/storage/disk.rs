//! The on-disk log: segment files of checksummed records, a sparse
//! in-memory index of where entries start, and what recovery (`recovery.rs`)
//! found made into the log.
//!
//! Layout of a data directory:
//!
//! ```text
//! lock                         held (flock) by the process that has the
//!                              log open: one per data directory
//! epoch                        the master's current epoch, decimal
//! base                         "SEQ EPOCH": the entry before the first
//!                              held, once retention deleted segments,
//!                              then "EPOCH FIRST" of each epoch begun by
//!                              then (so logs can still be compared)
//! 00000000000000000001.log     segment whose first entry is seq 1
//! 00000000000000104211.log     next segment, first entry seq 104211
//! segment.next                 the segment after, prepared ahead; written
//!                              to from a roll until the roll is durable
//!                              (`roll.rs`), then renamed to its number
//! ```
//!
//! Retention deletes whole segments from the oldest on (never the one being
//! written): `base` is written and synced first, so a crash part-way leaves
//! segments the next start recognises as below the base and deletes.
//!
//! A record (`record.rs`) is `len: u32 LE | crc32c: u32 LE | payload (len bytes)`, the
//! checksum covering the length bytes and the payload. The payload is
//! `epoch u64 | seq u64 | key_len u32 (u32::MAX = no key) | key | msg_len u32
//! | msg`, all little-endian: a fixed format of its own, independent of the
//! wire encoding, so the protocol can change without rewriting logs. The
//! message is arbitrary bytes; the key is UTF-8. (Logs written before
//! messages became bytes used the same layout with UTF-8 messages, so they
//! open unchanged.)
//!
//! Recovery: a record that is incomplete, or fails its checksum, *and* has
//! nothing but zeros or nothing at all after it in the last segment is a torn
//! write from a crash: it is cut and the log goes on. Anything else that does
//! not verify is damage in the middle of the log: opening fails with the file
//! and offset, and nothing is ever skipped silently. (A `segment.next` that
//! does not continue the log is another matter: it was never synced, and
//! is removed with a warning; see `roll.rs`.) The segments are read
//! by `recovery.rs`, several at once.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::compaction;
use super::damage::corrupt;
use super::files::{
    injected_fault, lock_dir, open_rw, replace_file, segment_firsts, segment_name, sync_dir,
    FaultOp,
};
use super::numbering::{last_numbers, read_base_numbers, write_base_numbers, SegmentNumbers};
use super::record::{
    decode_record, encode_record, read_at_most, record_need, record_span, refill, Decoded, Record,
    HEADER, READ_CHUNK, RUN_BYTES,
};
use super::recovery::{Scanned, STRIDE};
use super::retention::SegmentInfo;
use super::roll::{self, Prepared, Roll, SyncPoint};
use crate::entry::{Entry, Epoch, LogId, Position, Seq};
use crate::replication::groups::{self, Delta, Effect, GroupChange, Positions};

/// Entries whose offsets are kept exactly, newest first: replication and
/// `--follow` read just behind the end of the log, and must not walk the
/// record headers from the sparse index for every batch (128 KiB).
const RECENT: usize = 16 * 1024;

/// One segment file.
#[derive(Debug)]
struct Segment {
    /// Sequence number of its first entry.
    first: Seq,
    /// Its path.
    path: PathBuf,
    /// Open for reading and writing; shared with the syncer.
    file: Arc<File>,
    /// Bytes of valid records.
    len: u64,
    /// Offset of entry `first + i * STRIDE` at index `i`.
    sparse: Vec<u64>,
    /// The message numbers of each log it holds.
    numbers: SegmentNumbers,
    /// What its group entries did.
    groups: Delta,
    /// Stripped entries it holds one record each (see `compaction`).
    loose: u64,
    /// Whether a record of it stands for several entries (a run).
    runs: bool,
}

impl Segment {
    /// The segment starting at `first`, at `path`, as recovery read it
    /// (its file, or a compacted copy renamed to `path`).
    fn scanned(first: Seq, path: PathBuf, found: Scanned) -> Self {
        Segment {
            first,
            path,
            file: Arc::new(found.file),
            len: found.len,
            sparse: found.sparse,
            numbers: found.numbers,
            groups: found.groups,
            loose: found.loose,
            runs: found.runs,
        }
    }

    /// A new segment with nothing written yet.
    fn empty(first: Seq, path: PathBuf, file: File) -> Self {
        Segment {
            first,
            path,
            file: Arc::new(file),
            len: 0,
            sparse: Vec::new(),
            numbers: SegmentNumbers::default(),
            groups: Delta::default(),
            loose: 0,
            runs: false,
        }
    }
}

/// The log on disk.
#[derive(Debug)]
pub struct DiskLog {
    /// The data directory.
    dir: PathBuf,
    /// Segments in order; the last is written to.
    segments: Vec<Segment>,
    /// Entries in the log: the last sequence number.
    count: u64,
    /// Offset (in its segment) of each of the newest entries: entry
    /// `count - recent.len() + 1 + i` at index `i`.
    recent: std::collections::VecDeque<u64>,
    /// How many entries `recent` keeps ([`RECENT`]; smaller in tests, so
    /// that the sparse index is exercised).
    recent_cap: usize,
    /// Epoch of the last entry.
    last_epoch: Epoch,
    /// First sequence number of every epoch present.
    epochs: Vec<(Epoch, Seq)>,
    /// The configuration entries the log holds (and the newest at or
    /// before the base, from `base.members`): few, one per membership
    /// change, and needed at every start.
    configs: Vec<(Seq, bytes::Bytes)>,
    /// The recorded epoch (the node's, with failover; the master's last
    /// one otherwise).
    epoch: Epoch,
    /// Whom this node voted for in `epoch`.
    vote: Option<String>,
    /// Roll to a new segment past this size.
    segment_bytes: u64,
    /// Testing aid: while this file exists, writes fail as if the disk
    /// were full.
    fault: Option<PathBuf>,
    /// The entry just before the first one held: (0, 0) until retention
    /// deletes a segment or the log is reset to start later.
    base: Position,
    /// Each log's last message number at the base (`base.numbers`).
    at_base: Vec<(LogId, Seq)>,
    /// The catalog entries the log holds (few: one per log created or
    /// deleted), and the named logs at the base (`base.logs`).
    catalog: (Vec<(Seq, bytes::Bytes)>, bytes::Bytes),
    /// The consumer groups' positions at the base (`base.groups`).
    groups_at_base: Positions,
    /// The positions before the last segment: a group or log deleted in
    /// it that had none there is not remembered (`Delta::prune`).
    groups_before_last: Positions,
    /// The roll to the last segment, while it is not yet durable
    /// (`roll.rs`): at most one.
    roll: Option<Arc<Roll>>,
    /// The file the next roll writes to, prepared ahead.
    prepared: Prepared,
    /// Whether a roll's syncs are left to the syncer (a node with one);
    /// otherwise the roll is made durable where it happens.
    defer_rolls: bool,
    /// Whether a roll whose sync failed is tried again at the next sync
    /// (see [`DiskLog::defer_rolls`]).
    retry_failed_rolls: bool,
    /// Counts cuts and resets: a compacted copy made before one is not
    /// put in place.
    generation: u64,
    /// Held (locked) for as long as the log is open.
    _lock: File,
}

/// A record that recovery checked and that no longer reads as it did: not
/// [`super::damage::Damage`] (which says where the checked records end),
/// since only a disk or a bug makes it, and healing must not act on it.
fn unreadable(path: &Path, offset: u64, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} cannot be read at byte offset {offset}: {what}",
            path.display()
        ),
    )
}

impl DiskLog {
    /// Opens the log in `dir` (creating it), recovering from a crash.
    pub fn open(dir: &Path, segment_bytes: u64) -> io::Result<Self> {
        Self::open_keeping(dir, segment_bytes, RECENT, &mut || Ok(()))
    }

    /// [`DiskLog::open`], calling `before_cut` before a torn last record is
    /// cut: a record torn by a crash and a last record damaged on the disk
    /// look the same, and the node may have acknowledged the second.
    pub fn open_with(
        dir: &Path,
        segment_bytes: u64,
        before_cut: &mut dyn FnMut() -> io::Result<()>,
    ) -> io::Result<Self> {
        Self::open_keeping(dir, segment_bytes, RECENT, before_cut)
    }

    /// [`DiskLog::open`], keeping exact offsets for the newest `recent`
    /// entries (fewer in tests).
    fn open_keeping(
        dir: &Path,
        segment_bytes: u64,
        recent: usize,
        before_cut: &mut dyn FnMut() -> io::Result<()>,
    ) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        compaction::remove_leftovers(dir)?;
        // `EPOCH` or `EPOCH VOTE`: the node's epoch and whom it voted for.
        let (epoch, vote) = match fs::read_to_string(dir.join("epoch")) {
            Ok(s) => {
                let mut words = s.split_whitespace();
                let epoch = words.next().and_then(|w| w.parse().ok()).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} does not hold a number", dir.join("epoch").display()),
                    )
                })?;
                (epoch, words.next().map(str::to_string))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, None),
            Err(e) => return Err(e),
        };
        let (base, base_epochs) = read_base(dir)?;
        let mut firsts = segment_firsts(dir)?;
        // Segments wholly below the base are what a crash left of a
        // retention or a reset: finish the job.
        while let Some(&first) = firsts.first() {
            let next = firsts.get(1).copied();
            if first > base.seq || next.is_some_and(|n| n > base.seq + 1) {
                break;
            }
            fs::remove_file(dir.join(segment_name(first)))?;
            firsts.remove(0);
        }
        // A reset to a lower base than the log had, cut short by a crash,
        // leaves one empty segment that does not follow the base: it holds
        // nothing, so it goes.
        if let [only] = firsts[..] {
            let path = dir.join(segment_name(only));
            if only != base.seq + 1 && fs::metadata(&path)?.len() == 0 {
                fs::remove_file(&path)?;
                firsts.clear();
            }
        }
        let mut log = DiskLog {
            dir: dir.to_path_buf(),
            segments: Vec::new(),
            count: 0,
            recent: std::collections::VecDeque::new(),
            recent_cap: recent,
            last_epoch: 0,
            epochs: Vec::new(),
            configs: read_base_members(dir)?.into_iter().collect(),
            epoch,
            vote,
            segment_bytes: segment_bytes.max(1),
            fault: None,
            base,
            at_base: read_base_numbers(dir)?,
            catalog: (Vec::new(), read_base_logs(dir)?),
            groups_at_base: read_base_groups(dir)?,
            groups_before_last: Positions::default(),
            roll: None,
            prepared: Prepared::default(),
            defer_rolls: false,
            retry_failed_rolls: true,
            generation: 0,
            _lock: lock,
        };
        log.count = base.seq;
        log.last_epoch = base.epoch;
        log.epochs = base_epochs;
        let threads = super::recovery::threads();
        let scanned = super::recovery::scan_segments(dir, &firsts, threads);
        for (first, found) in firsts.into_iter().zip(scanned) {
            log.adopt(first, found, before_cut)?;
        }
        log.adopt_next()?;
        log.find_recent()?;
        if log.segments.is_empty() {
            log.new_segment(base.seq + 1)?;
        }
        log.prune_groups();
        // Whatever survived is made durable before anything counts on it.
        log.segments.last().expect("one segment").file.sync_all()?;
        roll::prepare_ahead(dir, &log.prepared);
        Ok(log)
    }

    /// Leaves a segment roll's syncs to whoever syncs the log's sync point
    /// (the node's syncer) instead of making each roll durable where it
    /// happens. With `stored_means_synced` (`--fsync always`) a roll whose
    /// sync failed is never tried again: the node cuts back to what was
    /// synced, which drops the new segment. Otherwise nothing cuts, and the
    /// roll is tried again at every sync until it succeeds, as a full
    /// segment's sync always was.
    pub(super) fn defer_rolls(&mut self, stored_means_synced: bool) {
        self.defer_rolls = true;
        self.retry_failed_rolls = !stored_means_synced;
    }

    /// Deals with a [`roll::NEXT`] file a crash left: a roll whose syncs
    /// were not done, so nothing in it was ever synced. If it continues the
    /// log exactly (the process died, the page cache did not), it becomes
    /// the last segment; otherwise (after a power cut, the segment before
    /// it lost its tail) it is removed.
    fn adopt_next(&mut self) -> io::Result<()> {
        let path = self.dir.join(roll::NEXT);
        let bytes = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let first = self.count + 1;
        let found = match super::recovery::scan_next(&path, first) {
            Ok(found) => Ok(found),
            // Damage or a gap: not a continuation. Any other error (the
            // disk, no file handles) is not a verdict on what it holds.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(e),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot read {}: {e}", path.display()),
                ))
            }
        };
        let epoch_ok = |f: &Scanned| f.epochs.first().is_none_or(|(e, _)| *e >= self.last_epoch);
        match found {
            Ok(mut found) if found.last >= first && epoch_ok(&found) => {
                // The rule `roll.rs` keeps: a named segment only follows a
                // durable one. The full segment's tail may still be only in
                // the page cache, as may this file's records.
                if let Some(last) = self.segments.last() {
                    last.file.sync_data()?;
                }
                found.cut_torn()?;
                found.file.sync_all()?;
                let to = self.dir.join(segment_name(first));
                fs::rename(&path, &to)?;
                sync_dir(&self.dir)?;
                tracing::info!(file = %to.display(), first, last = found.last,
                               "adopted the segment a roll had begun before a crash");
                found.path = to;
                self.adopt(first, Ok(found), &mut || Ok(()))
            }
            found => {
                if bytes > 0 {
                    let why = match found {
                        Err(e) => e.to_string(),
                        Ok(_) => format!(
                            "it does not continue the log after seq {}, epoch {}",
                            first - 1,
                            self.last_epoch
                        ),
                    };
                    tracing::warn!(file = %path.display(), bytes, reason = %why,
                                   "removing a segment a roll had begun before a crash: it was never synced");
                }
                fs::remove_file(&path)?;
                // Gone for good before a new file of that name is made.
                sync_dir(&self.dir)
            }
        }
    }

    /// Makes a pending roll durable here and now.
    fn finish_roll(&mut self) -> io::Result<()> {
        if let Some(roll) = &self.roll {
            roll.finish()?;
            self.roll = None;
        }
        Ok(())
    }

    /// Starts segment `first` in the prepared file (or a new one), leaving
    /// the roll's syncs to [`Roll::finish`].
    fn start_segment(&mut self, first: Seq) -> io::Result<()> {
        let prepared = self.prepared.lock().expect("prepared").take();
        let file = match prepared {
            Some(file) => file,
            None => roll::prepare(&self.dir)?,
        };
        let closed = self.segments.last().expect("one segment").file.clone();
        let path = self.dir.join(segment_name(first));
        self.roll = Some(Arc::new(Roll::new(
            closed,
            &self.dir,
            path.clone(),
            self.prepared.clone(),
            self.fault.clone(),
            self.retry_failed_rolls,
        )));
        let before = &mut self.groups_before_last;
        before.then(&self.segments.last().expect("one segment").groups);
        self.segments.push(Segment::empty(first, path, file));
        Ok(())
    }

    /// Each segment's group deletions cut to what the positions before it
    /// had, and the positions before the last segment found again (at
    /// start, and after a cut or a reset).
    fn prune_groups(&mut self) {
        let mut before = self.groups_at_base.clone();
        let n = self.segments.len();
        for (i, seg) in self.segments.iter_mut().enumerate() {
            seg.groups.prune(&before);
            if i + 1 < n {
                before.then(&seg.groups);
            }
        }
        self.groups_before_last = before;
    }

    /// Takes the next segment as recovery read it, once it is known to
    /// start where the log ends (a segment missing in between is damage,
    /// said before anything the segment itself holds).
    fn adopt(
        &mut self,
        first: Seq,
        found: io::Result<Scanned>,
        before_cut: &mut dyn FnMut() -> io::Result<()>,
    ) -> io::Result<()> {
        let expected_first = self.count + 1;
        if first != expected_first {
            return Err(corrupt(
                &self.dir.join(segment_name(first)),
                0,
                &format!(
                    "segment starts at seq {first} but the log before it ends at {}",
                    expected_first - 1
                ),
            ));
        }
        let mut found = found?;
        if found.torn.is_some() {
            before_cut()?;
        }
        found.cut_torn()?;
        for &(epoch, seq) in &found.epochs {
            self.index(epoch, seq);
        }
        self.configs.extend(found.configs.iter().cloned());
        self.catalog.0.extend(found.catalog.iter().cloned());
        self.count = found.last.max(self.count);
        let path = found.path.clone();
        self.segments.push(Segment::scanned(first, path, found));
        Ok(())
    }

    /// Finds the offsets of the newest entries (`recent`) once recovery has
    /// checked every record: from the sparse index entry before the oldest
    /// one wanted, by the records' lengths.
    fn find_recent(&mut self) -> io::Result<()> {
        self.recent.clear();
        // Not into a segment with runs, where records and entries are not
        // one for one.
        let after_runs = (self.segments.iter().rposition(|s| s.runs))
            .map_or(self.base.seq, |i| self.segment_last(i));
        let want = (self.count - after_runs).min(self.recent_cap as u64);
        if want == 0 {
            return Ok(());
        }
        let from = self.count + 1 - want;
        for si in self.segment_of(from)..self.segments.len() {
            let seg = &self.segments[si];
            if seg.len == 0 {
                continue;
            }
            let start = from.max(seg.first);
            let k = (start - seg.first) / STRIDE;
            let pos = *seg.sparse.get(k as usize).ok_or_else(|| {
                unreadable(&seg.path, 0, &format!("no index entry for seq {start}"))
            })?;
            let offsets = super::recovery::record_offsets(&seg.file, &seg.path, pos, seg.len)?;
            let skip = (start - seg.first - k * STRIDE) as usize;
            self.recent.extend(offsets.into_iter().skip(skip));
        }
        // `offset_of` trusts these, and a cut goes where it says: a count
        // that does not add up is refused, not used.
        if self.recent.len() as u64 != want {
            let seg = self.segments.last().expect("one segment");
            return Err(unreadable(
                &seg.path,
                0,
                &format!(
                    "found {} offsets for the newest {want} entries",
                    self.recent.len()
                ),
            ));
        }
        Ok(())
    }

    /// Records the offset of the entry just counted.
    fn remember(&mut self, offset: u64) {
        if self.recent.len() >= self.recent_cap {
            self.recent.pop_front();
        }
        self.recent.push_back(offset);
    }

    /// Keeps exact offsets for only the newest `n` entries (tests).
    #[cfg(test)]
    pub(super) fn set_recent_cap(&mut self, n: usize) {
        self.recent_cap = n;
        while self.recent.len() > n {
            self.recent.pop_front();
        }
    }

    /// Counts an entry written or recovered (its offset is indexed by the
    /// caller when it falls on the stride).
    fn index(&mut self, epoch: Epoch, seq: Seq) {
        self.count = seq;
        if self.epochs.last().map(|(ep, _)| *ep) != Some(epoch) {
            self.epochs.push((epoch, seq));
        }
        self.last_epoch = epoch;
    }

    fn new_segment(&mut self, first: Seq) -> io::Result<()> {
        let path = self.dir.join(segment_name(first));
        let created = open_rw(&path, true).and_then(|file| {
            file.set_len(0)?;
            sync_dir(&self.dir)?;
            Ok(file)
        });
        let file = match created {
            Ok(file) => file,
            Err(e) => {
                // A segment file that is not in the log would stop the next
                // start ("segment starts at seq …"): leave none behind.
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        self.segments.push(Segment::empty(first, path, file));
        Ok(())
    }

    /// Testing aid: while `path` exists, writes fail with "no space left on
    /// device".
    pub(super) fn set_fault_file(&mut self, path: Option<PathBuf>) {
        self.fault = path;
    }

    pub(super) fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        if let Some(err) = injected_fault(self.fault.as_deref(), FaultOp::Write) {
            return Err(err);
        }
        let mut buf = Vec::with_capacity(entries.iter().map(|e| e.message.len() + 64).sum());
        let mut starts = Vec::with_capacity(entries.len());
        for e in entries {
            starts.push(buf.len() as u64);
            encode_record(e, &mut buf);
        }
        let seg = self.segments.last_mut().expect("one segment");
        let base = seg.len;
        if let Err(e) = seg.file.write_all_at(&buf, base) {
            // Leave no half record behind for the next append to follow.
            let _ = seg.file.set_len(base);
            return Err(e);
        }
        seg.len += buf.len() as u64;
        let first = seg.first;
        for (e, start) in entries.iter().zip(&starts) {
            if (e.seq - first).is_multiple_of(STRIDE) {
                seg.sparse.push(base + start);
            }
        }
        let seg = self.segments.last_mut().expect("one segment");
        entries.iter().for_each(|e| seg.numbers.note(e));
        seg.loose += entries.iter().filter(|e| e.is_stripped()).count() as u64;
        for (e, start) in entries.iter().zip(&starts) {
            self.index(e.epoch, e.seq);
            if e.is_config() {
                self.configs.push((e.seq, e.message.clone()));
            }
            if e.key.as_deref() == Some(crate::replication::catalog::CATALOG_KEY) {
                self.catalog.0.push((e.seq, e.message.clone()));
            }
            if let Some(effect) = groups::effect(e.key.as_deref(), &e.message) {
                let seg = self.segments.last_mut().expect("one segment");
                seg.groups.note(&effect);
                if !matches!(effect, Effect::Change(GroupChange::Set { .. })) {
                    seg.groups.prune(&self.groups_before_last);
                }
            }
            self.remember(base + start);
        }
        if self.segments.last().expect("one segment").len >= self.segment_bytes {
            // A roll still pending is made durable first: at most one is
            // ever outstanding. If that fails, these entries are written
            // but may never be durable: a different failure from a write
            // that failed.
            self.finish_roll()?;
            let next = self.count + 1;
            if let Err(e) = self.start_segment(next) {
                // Everything is written; the roll is tried again at the next
                // append (the full segment grows a little meanwhile).
                tracing::warn!(error = %e, "cannot start a new log segment; will retry at the next write");
            } else if !self.defer_rolls {
                self.finish_roll()?;
            }
        }
        Ok(())
    }

    pub(super) fn truncate_after(&mut self, seq: Seq) -> io::Result<()> {
        if seq >= self.count {
            return Ok(());
        }
        if seq < self.base.seq {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot cut the log after seq {seq}: retention deleted everything up to {}",
                    self.base.seq
                ),
            ));
        }
        // Where the cut falls; a segment it would leave empty goes whole
        // (a roll still pending is then abandoned rather than finished).
        self.generation += 1;
        let (mut si, mut cut) = self.offset_of(seq + 1)?;
        // A run of stripped entries the cut falls inside stays, shortened.
        let shortened = self.shortened_run(si, cut, seq)?;
        if cut == 0 && si > 0 && shortened.is_none() {
            si -= 1;
            cut = self.segments[si].len;
        }
        // The numbers of the messages cut from the segment that stays,
        // read before it is cut (a cut removes what no majority holds:
        // few entries, as a rule).
        let mut removed = Vec::new();
        self.walk(seq + 1, self.segment_last(si), |_, _, r| {
            // Messages only: a run of stripped entries may be millions.
            if !r.is_control() {
                removed.push(r.to_entry());
            }
            true
        })?;
        self.segments[si].numbers.cut(&removed);
        // Drop whole segments after that. The newest may still be pending
        // its roll: abandoned, it is never named.
        while self.segments.len() > si + 1 {
            let seg = self.segments.pop().expect("checked");
            match self.roll.take() {
                Some(roll) => roll.abandon()?,
                None => fs::remove_file(&seg.path)?,
            }
            // Newest first, each gone for good before the next: a power
            // cut part-way leaves a shorter log, never one with a segment
            // missing in the middle (which would not open).
            sync_dir(&self.dir)?;
        }
        // A cut inside a segment still pending its roll needs its name.
        self.finish_roll()?;
        let seg = self.segments.last_mut().expect("one segment");
        let kept_run = shortened.as_ref().map_or(0, |r| r.len() as u64);
        seg.file.set_len(cut + kept_run)?;
        if let Some(run) = &shortened {
            // Written over the longer run's own record, once what followed
            // it is gone: a crash in between leaves the longer run last.
            seg.file.write_all_at(run, cut)?;
        }
        // From here the file is cut: the state below follows it even if
        // making the cut durable fails.
        seg.len = cut + kept_run;
        // Keep the index entries of the entries that stay.
        let kept = if seq >= seg.first {
            (seq - seg.first) / STRIDE + 1
        } else {
            0
        };
        seg.sparse.truncate(kept as usize);
        let file = seg.file.clone();
        let dropped = (self.count - seq) as usize;
        let keep = self.recent.len().saturating_sub(dropped);
        self.recent.truncate(keep);
        self.count = seq;
        self.epochs.retain(|(_, first)| *first <= seq);
        self.catalog.0.retain(|(s, _)| *s <= seq);
        // What the segment's group entries did is read again from those
        // that stay (a cut is rare: a segment's read is affordable).
        let first = self.segments.last().expect("one segment").first;
        let mut groups = Delta::default();
        self.walk(first, seq, |key, message, r| {
            if r.is_control() {
                groups.note_entry(key, message);
            }
            true
        })?;
        self.segments.last_mut().expect("one segment").groups = groups;
        self.prune_groups();
        // The newest configuration entry at or before the base stays: it
        // is the membership from there on.
        let base = self.base.seq;
        let keep = self.configs.iter().rposition(|(s, _)| *s <= base);
        let mut i = 0;
        self.configs.retain(|(s, _)| {
            i += 1;
            *s <= seq && (*s > base || Some(i - 1) == keep)
        });
        self.last_epoch = match seq {
            _ if seq == self.base.seq => self.base.epoch,
            _ => self
                .read(seq, seq, 1, usize::MAX)?
                .first()
                .map_or(0, |e| e.epoch),
        };
        file.sync_all()?;
        sync_dir(&self.dir)
    }

    /// The entry before the first one held.
    pub(super) fn base(&self) -> Position {
        self.base
    }

    /// If the record at `pos` of segment `si` is a run that begins at or
    /// before `seq`, the record of that run cut after `seq`.
    fn shortened_run(&self, si: usize, pos: u64, seq: Seq) -> io::Result<Option<Vec<u8>>> {
        let seg = &self.segments[si];
        let mut head = [0u8; RUN_BYTES as usize];
        let got = read_at_most(&seg.file, &mut head, pos, seg.len)?;
        let Decoded::Entry(r, _) = decode_record(&head[..got]) else {
            return Ok(None);
        };
        if !r.run || r.seq > seq {
            return Ok(None);
        }
        let mut run = Vec::with_capacity(RUN_BYTES as usize);
        super::record::encode_run(r.epoch, r.seq, seq + 1 - r.seq, &mut run);
        Ok(Some(run))
    }

    /// The segments, oldest first.
    pub(super) fn segments(&self) -> io::Result<Vec<SegmentInfo>> {
        let mut out = Vec::with_capacity(self.segments.len());
        for (i, s) in self.segments.iter().enumerate() {
            let last = match self.segments.get(i + 1) {
                Some(next) => next.first - 1,
                None => self.count,
            };
            out.push(SegmentInfo {
                first: s.first,
                last,
                bytes: s.len,
                modified: s.file.metadata()?.modified()?,
            });
        }
        Ok(out)
    }

    /// `log`'s messages in each segment holding any, oldest first, for its
    /// own retention: a segment not written to and wholly at or before
    /// `committed` is settled.
    pub(super) fn log_shares(
        &self,
        log: LogId,
        committed: Seq,
    ) -> io::Result<Vec<super::retention::LogShare>> {
        let older = self.segments.len().saturating_sub(1);
        let mut out = Vec::new();
        for (i, s) in self.segments.iter().enumerate() {
            let Some(r) = s.numbers.range(log) else {
                continue;
            };
            out.push(super::retention::LogShare {
                last: r.last,
                bytes: r.bytes,
                modified: s.file.metadata()?.modified()?,
                settled: i < older && self.segment_last(i) <= committed,
            });
        }
        Ok(out)
    }

    /// Deletes the oldest segments up to the one that ends at `seq` (never
    /// the segment being written): the base is recorded durably first.
    /// Returns how many segments went.
    pub(super) fn delete_through(&mut self, seq: Seq) -> io::Result<usize> {
        let deletable = self
            .segments
            .iter()
            .skip(1)
            .take_while(|next| next.first <= seq + 1)
            .count();
        if deletable == 0 {
            return Ok(0);
        }
        // Segments go only behind a durable roll.
        self.finish_roll()?;
        let through = self.segments[deletable].first - 1;
        let epoch = self
            .read(through, through, 1, usize::MAX)?
            .first()
            .map(|e| e.epoch)
            .ok_or_else(|| io::Error::other(format!("entry {through} is not in the log")))?;
        let base = Position {
            epoch,
            seq: through,
        };
        // The epochs stay known (they are few): logs are compared by them.
        let begun: Vec<(Epoch, Seq)> = (self.epochs.iter())
            .filter(|(_, s)| *s <= through)
            .copied()
            .collect();
        // The membership at the base outlives the entry recording it, and
        // so do each log's numbers.
        if let Some(config) = self.configs.iter().rev().find(|(s, _)| *s <= through) {
            write_base_members(&self.dir, config)?;
        }
        let at_base = last_numbers(
            &self.at_base,
            self.segments[..deletable].iter().map(|s| &s.numbers),
        );
        write_base_numbers(&self.dir, &at_base)?;
        // So do the groups' positions (in the logs that exist there).
        let mut groups_at_base = self.groups_at_base.clone();
        for seg in &self.segments[..deletable] {
            groups_at_base.then(&seg.groups);
        }
        let logs = crate::replication::catalog::Logs::decode(&self.catalog_at(through));
        let logs = logs.unwrap_or_default();
        groups_at_base.retain_logs(|l| logs.exists(l));
        write_base_groups(&self.dir, &groups_at_base.encode())?;
        // The catalog entries deleted are the base's catalog now.
        let gone = self.catalog.0.partition_point(|(s, _)| *s <= through);
        let logs_at_base = if gone > 0 {
            let logs = self.catalog_at(through);
            write_base_logs(&self.dir, &logs)?;
            Some(logs)
        } else {
            None
        };
        write_base(&self.dir, base, &begun)?;
        self.base = base;
        self.at_base = at_base;
        self.groups_at_base = groups_at_base;
        if let Some(logs) = logs_at_base {
            self.catalog.0.drain(..gone);
            self.catalog.1 = logs;
        }
        for seg in self.segments.drain(..deletable) {
            fs::remove_file(&seg.path)?;
        }
        sync_dir(&self.dir)?;
        Ok(deletable)
    }

    /// Empties the log so that its next entry is `base.seq + 1`, with the
    /// epochs begun up to there: the base is recorded durably, then every
    /// segment deleted.
    ///
    /// In steps that each leave a log the next start reads: first the log
    /// is cut to nothing (newest segments first, as any cut: a crash leaves
    /// a shorter log), then the base is written, then the one empty segment
    /// left is renamed to start after it (a crash before that leaves an
    /// empty segment below the base, which the next start deletes). A
    /// failure part-way leaves the log cut and at least one segment, so
    /// nothing panics; the caller stops trusting the log.
    ///
    /// The membership at the base is the master's `configs` when it says
    /// (they replace the node's own, which may be older or cut), else
    /// what this node knew up to the base.
    pub(super) fn reset(
        &mut self,
        base: Position,
        epochs: &[(Epoch, Seq)],
        configs: Option<&[(Seq, bytes::Bytes)]>,
        (numbers, logs, groups): (&[(LogId, Seq)], &bytes::Bytes, &bytes::Bytes),
    ) -> io::Result<()> {
        if base.seq == Seq::MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a log cannot start after the last possible sequence number",
            ));
        }
        self.truncate_after(self.base.seq)?;
        // The members before the base: a crash before the base is written
        // leaves the old base with the new members, which the next reset
        // (the node is still behind) writes again; the other order would
        // leave the new base with the old members, and no reset to mend
        // them.
        match configs {
            Some(given) => self.configs = given.to_vec(),
            None => self.configs.retain(|(s, _)| *s <= base.seq),
        }
        match self.configs.last() {
            Some(config) => write_base_members(&self.dir, config)?,
            None => remove_base_members(&self.dir)?,
        }
        write_base_numbers(&self.dir, numbers)?;
        write_base_logs(&self.dir, logs)?;
        let groups = Positions::decode(groups)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
        write_base_groups(&self.dir, &groups.encode())?;
        write_base(&self.dir, base, epochs)?;
        self.base = base;
        self.at_base = numbers.to_vec();
        self.catalog = (Vec::new(), logs.clone());
        self.groups_at_base = groups;
        self.count = base.seq;
        self.last_epoch = base.epoch;
        self.epochs = epochs.to_vec();
        self.recent.clear();
        let seg = self.segments.last_mut().expect("one segment");
        let path = self.dir.join(segment_name(base.seq + 1));
        fs::rename(&seg.path, &path)?;
        seg.path = path;
        seg.first = base.seq + 1;
        seg.sparse.clear();
        seg.numbers = SegmentNumbers::default();
        seg.groups = Delta::default();
        seg.loose = 0;
        seg.runs = false;
        self.generation += 1;
        self.groups_before_last = self.groups_at_base.clone();
        sync_dir(&self.dir)
    }

    /// The oldest segment compaction has bytes to free in, if any: one no
    /// longer written to, wholly at or before `committed`, that holds a
    /// message for which `gone(log, number)` is true (it is asked of each
    /// log's first there) or stripped entries one record each.
    pub(super) fn compaction_job(
        &self,
        committed: Seq,
        gone: &dyn Fn(LogId, Seq) -> bool,
    ) -> Option<compaction::Job> {
        let older = self.segments.len().saturating_sub(1);
        (0..older)
            .take_while(|&i| self.segment_last(i) <= committed)
            .find(|&i| {
                let n = &self.segments[i].numbers;
                self.segments[i].loose > 0
                    || (n.lasts()).any(|(log, _)| n.range(log).is_some_and(|r| gone(log, r.first)))
            })
            .map(|i| compaction::Job {
                first: self.segments[i].first,
                last: self.segment_last(i),
                len: self.segments[i].len,
                file: self.segments[i].file.clone(),
                dir: self.dir.clone(),
                generation: self.generation,
            })
    }

    /// Puts a compacted copy in its segment's place, if the segment is
    /// still as it was when copied (a reset or retention may have removed
    /// it meanwhile): the bytes freed.
    pub(super) fn install(&mut self, c: compaction::Compacted) -> io::Result<u64> {
        let copy = compaction::copy_path(&self.dir, c.first);
        let older = self.segments.len().saturating_sub(1);
        let Some(i) = (self.segments[..older].iter())
            .position(|s| s.first == c.first && s.len == c.len_before)
            .filter(|_| c.generation == self.generation)
        else {
            fs::remove_file(&copy)?;
            return Ok(0);
        };
        let seg = &mut self.segments[i];
        // The directory is synced by the caller, off the node loop: until
        // then a crash leaves the old file or the copy, the same entries.
        fs::rename(&copy, &seg.path)?;
        let freed = seg.len.saturating_sub(c.scanned.len);
        *seg = Segment::scanned(c.first, seg.path.clone(), c.scanned);
        // The newest offsets kept in it point into the old file.
        let last = self.segment_last(i);
        while self.count + 1 - (self.recent.len() as u64) <= last && !self.recent.is_empty() {
            self.recent.pop_front();
        }
        self.prune_groups();
        Ok(freed)
    }

    /// The first message number of `log` the log holds (0 if none).
    pub(super) fn first_number(&self, log: LogId) -> Seq {
        (self.segments.iter())
            .find_map(|s| s.numbers.range(log))
            .map_or(0, |r| r.first)
    }

    /// Up to `max` messages of `log` from number `from` (at most
    /// `max_bytes` by their cost, at least one), none after `upto` (a
    /// sequence number): read from the mark before `from` on, the other
    /// logs' entries passed over.
    pub(super) fn read_messages(
        &self,
        log: LogId,
        from: Seq,
        upto: Seq,
        (max, max_bytes): (usize, usize),
    ) -> io::Result<Vec<Entry>> {
        let Some(range) = (self.segments.iter())
            .filter_map(|s| s.numbers.range(log))
            .find(|r| r.last >= from)
        else {
            return Ok(Vec::new());
        };
        let start = range.start_for(from.max(range.first));
        self.collect((start, upto), (max, max_bytes), |r| {
            r.log == log && r.number >= from && !r.is_control()
        })
    }

    /// The entries `from..=upto` that `keep` takes, at most `max` of them
    /// and `max_bytes` by their cost (at least one).
    fn collect(
        &self,
        (from, upto): (Seq, Seq),
        (max, max_bytes): (usize, usize),
        keep: impl Fn(&Record<'_>) -> bool,
    ) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        let mut bytes = 0usize;
        self.walk(from, upto, |_, _, r| {
            if !keep(r) {
                return true;
            }
            let e = r.to_entry();
            let cost = super::entry_cost(&e);
            if !out.is_empty() && bytes + cost > max_bytes {
                return false;
            }
            bytes += cost;
            out.push(e);
            out.len() < max
        })?;
        Ok(out)
    }

    /// The last message number of `log` at or before sequence number
    /// `seq` (0 if it had none by then).
    pub(super) fn number_at(&self, log: LogId, seq: Seq) -> io::Result<Seq> {
        let before = |i: usize| {
            let at_base = self
                .at_base
                .iter()
                .find(|(l, _)| *l == log)
                .map(|(_, n)| *n);
            (self.segments[..i].iter().rev())
                .find_map(|s| s.numbers.range(log).map(|r| r.last))
                .or(at_base)
                .unwrap_or(0)
        };
        let seq = seq.min(self.count);
        if seq <= self.base.seq {
            return Ok(self
                .at_base
                .iter()
                .find(|(l, _)| *l == log)
                .map_or(0, |(_, n)| *n));
        }
        let i = self.segment_of(seq);
        let Some((mut number, start)) =
            (self.segments[i].numbers.range(log)).and_then(|r| r.start_before(seq))
        else {
            return Ok(before(i));
        };
        self.walk(start, seq, |_, _, r| {
            if r.log == log && !r.is_control() {
                number = r.number;
            }
            true
        })?;
        Ok(number)
    }

    /// Each log's last message number.
    pub(super) fn numbers(&self) -> Vec<(LogId, Seq)> {
        last_numbers(&self.at_base, self.segments.iter().map(|s| &s.numbers))
    }

    /// The bytes of `log`'s messages the log holds.
    pub(super) fn log_bytes(&self, log: LogId) -> u64 {
        (self.segments.iter())
            .filter_map(|s| s.numbers.range(log))
            .map(|r| r.bytes)
            .sum()
    }

    /// The consumer groups' positions: those at the base, then what each
    /// segment's group entries did.
    pub(super) fn groups(&self) -> Positions {
        let mut positions = self.groups_at_base.clone();
        self.segments.iter().for_each(|s| positions.then(&s.groups));
        positions
    }

    /// The consumer groups' positions at the base, as text.
    pub(super) fn groups_at_base(&self) -> bytes::Bytes {
        self.groups_at_base.encode()
    }

    /// Each log's last message number at the base.
    pub(super) fn numbers_at_base(&self) -> Vec<(LogId, Seq)> {
        self.at_base.clone()
    }

    /// The last sequence number segment `i` holds.
    fn segment_last(&self, i: usize) -> Seq {
        self.segments
            .get(i + 1)
            .map_or(self.count, |next| next.first - 1)
    }

    pub(super) fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    pub(super) fn last(&self) -> Position {
        Position {
            epoch: self.last_epoch,
            seq: self.count,
        }
    }

    fn segment_of(&self, seq: Seq) -> usize {
        self.segments.partition_point(|s| s.first <= seq) - 1
    }

    /// Segment and byte offset of the record holding entry `seq`
    /// (1..=count): from the nearest indexed entry before it, walk the
    /// record headers forward (a run of stripped entries is one record).
    fn offset_of(&self, seq: Seq) -> io::Result<(usize, u64)> {
        let si = self.segment_of(seq);
        let oldest_recent = self.count + 1 - self.recent.len() as u64;
        if seq >= oldest_recent {
            return Ok((si, self.recent[(seq - oldest_recent) as usize]));
        }
        let seg = &self.segments[si];
        let k = (seq - seg.first) / STRIDE;
        let mut pos = *seg.sparse.get(k as usize).ok_or_else(|| {
            let at = seg.first + k * STRIDE;
            unreadable(&seg.path, 0, &format!("no index entry for seq {at}"))
        })?;
        loop {
            let mut head = [0u8; RUN_BYTES as usize];
            let got = read_at_most(&seg.file, &mut head, pos, seg.len)?;
            let (len, last) = record_span(&head[..got])
                .ok_or_else(|| unreadable(&seg.path, pos, "record header unreadable"))?;
            if last >= seq {
                return Ok((si, pos));
            }
            pos += (HEADER + len) as u64;
            if pos >= seg.len {
                return Err(unreadable(
                    &seg.path,
                    pos,
                    "record runs past the written end",
                ));
            }
        }
    }

    pub(super) fn read(
        &self,
        from: Seq,
        upto: Seq,
        max: usize,
        max_bytes: usize,
    ) -> io::Result<Vec<Entry>> {
        self.collect((from, upto), (max, max_bytes), |_| true)
    }

    /// Calls `visit((seq, log, number), key, message)` for entries `from..=upto`
    /// in order, borrowing them from the read buffer (nothing is copied),
    /// until it returns false.
    pub(super) fn scan(
        &self,
        from: Seq,
        upto: Seq,
        mut visit: impl FnMut((Seq, LogId, Seq), Option<&str>, &[u8]) -> bool,
    ) -> io::Result<()> {
        self.walk(from, upto, |key, message, r| {
            visit((r.seq, r.log, r.number), key, message)
        })
    }

    /// The records `from..=upto` in order, each checked, handed to `visit`
    /// until it returns false.
    fn walk(
        &self,
        from: Seq,
        upto: Seq,
        mut visit: impl FnMut(Option<&str>, &[u8], &Record<'_>) -> bool,
    ) -> io::Result<()> {
        let from = from.max(self.base.seq + 1);
        let upto = upto.min(self.count);
        if from > upto {
            return Ok(());
        }
        let mut seq = from;
        let (mut si, mut pos) = self.offset_of(from)?;
        // `buf` holds the segment's bytes from file offset `buf_at`.
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_at = pos;
        while seq <= upto {
            let seg = &self.segments[si];
            if pos >= seg.len {
                si += 1;
                if si >= self.segments.len() {
                    break;
                }
                pos = 0;
                buf.clear();
                buf_at = 0;
                continue;
            }
            let rel = (pos - buf_at) as usize;
            let decoded = match buf.get(rel..) {
                Some(rest) => decode_record(rest),
                None => Decoded::Incomplete,
            };
            match decoded {
                Decoded::Entry(r, used) => {
                    // A run may begin before `from`; any other record is
                    // the entry expected next.
                    if r.seq > seq || r.last() < seq || (r.count == 1 && r.seq != seq) {
                        return Err(unreadable(
                            &seg.path,
                            pos,
                            &format!("expected seq {seq}, found {}", r.seq),
                        ));
                    }
                    let through = r.last().min(upto);
                    while seq <= through {
                        let one = r.at(seq);
                        if !visit(one.key, one.message, &one) {
                            return Ok(());
                        }
                        seq += 1;
                    }
                    pos += used as u64;
                }
                Decoded::Incomplete if buf_at + (buf.len() as u64) < seg.len => {
                    let need = record_need(buf.get(rel..).unwrap_or(&[]));
                    refill(&seg.file, pos, seg.len, READ_CHUNK.max(need), &mut buf)?;
                    buf_at = pos;
                }
                Decoded::Incomplete | Decoded::Bad(_) => {
                    return Err(unreadable(
                        &seg.path,
                        pos,
                        "record unreadable after it was written",
                    ))
                }
            }
        }
        Ok(())
    }

    pub(super) fn epochs(&self) -> Vec<(Epoch, Seq)> {
        self.epochs.clone()
    }

    /// The configuration entries held (see the field).
    pub(super) fn configs(&self) -> Vec<(Seq, bytes::Bytes)> {
        self.configs.clone()
    }

    /// The named logs at the base and the catalog entries held.
    pub(super) fn catalog(&self) -> (bytes::Bytes, Vec<(Seq, bytes::Bytes)>) {
        (self.catalog.1.clone(), self.catalog.0.clone())
    }

    /// The named logs' text (`catalog::Logs`) as of `seq`: the base's,
    /// with the catalog entries up to `seq` applied.
    fn catalog_at(&self, seq: Seq) -> bytes::Bytes {
        use crate::replication::catalog::{Change, Logs};
        let mut logs = Logs::decode(&self.catalog.1).unwrap_or_default();
        let held = self.catalog.0.iter().take_while(|(s, _)| *s <= seq);
        for change in held.filter_map(|(_, m)| Change::decode(m).ok()) {
            logs.apply(&change);
        }
        logs.encode()
    }

    pub(super) fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub(super) fn vote(&self) -> Option<&str> {
        self.vote.as_deref()
    }

    /// Records the epoch and the vote in it: written to a new file, synced,
    /// renamed over the old one and the directory synced, so that a crash
    /// leaves either the old record or the new one.
    pub(super) fn set_epoch(&mut self, epoch: Epoch, vote: Option<&str>) -> io::Result<()> {
        let text = match vote {
            Some(v) => format!("{epoch} {v}\n"),
            None => format!("{epoch}\n"),
        };
        replace_file(&self.dir, "epoch", &text)?;
        self.epoch = epoch;
        self.vote = vote.map(str::to_string);
        Ok(())
    }

    pub(super) fn sync_point(&self) -> SyncPoint {
        SyncPoint {
            file: self.segments.last().expect("one segment").file.clone(),
            roll: self.roll.clone(),
        }
    }
}

/// The `base` file: the entry before the first held and the epochs begun
/// up to it; (0, 0) and none if there is no file.
fn read_base(dir: &Path) -> io::Result<(Position, Vec<(Epoch, Seq)>)> {
    let path = dir.join("base");
    let text = match fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(e),
    };
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} does not hold 'SEQ EPOCH' then 'EPOCH FIRST' lines",
                path.display()
            ),
        )
    };
    let mut pairs = text.lines().map(|line| {
        let mut words = line.split_whitespace().map(str::parse::<u64>);
        match (words.next(), words.next(), words.next()) {
            (Some(Ok(a)), Some(Ok(b)), None) => Ok((a, b)),
            _ => Err(bad()),
        }
    });
    let (seq, epoch) = pairs.next().ok_or_else(bad)??;
    let epochs = pairs.collect::<io::Result<Vec<_>>>()?;
    Ok((Position { epoch, seq }, epochs))
}

/// The `base.members` file: the newest configuration entry at or before
/// the base (its sequence number on the first line, what it records
/// after), once retention or a reset removed it from the segments.
fn read_base_members(dir: &Path) -> io::Result<Option<(Seq, bytes::Bytes)>> {
    let path = dir.join("base.members");
    let text = match fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (seq, members) = text
        .split_once('\n')
        .and_then(|(seq, rest)| Some((seq.parse::<Seq>().ok()?, rest)))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} does not hold 'SEQ' then the members", path.display()),
            )
        })?;
    Ok(Some((seq, bytes::Bytes::from(members.to_string()))))
}

/// Records the newest configuration entry at or before the base.
fn write_base_members(dir: &Path, (seq, members): &(Seq, bytes::Bytes)) -> io::Result<()> {
    let text = format!("{seq}\n{}", String::from_utf8_lossy(members));
    replace_file(dir, "base.members", &text)
}

/// Removes `base.members` (none of the log's configuration entries is at or
/// before its base): the directory is synced by the caller's next step.
fn remove_base_members(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join("base.members")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The `base.logs` file: the named logs at the base, as
/// `catalog::Logs::encode` writes them (checked when read); none if there
/// is no file.
fn read_base_logs(dir: &Path) -> io::Result<bytes::Bytes> {
    let path = dir.join("base.logs");
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(bytes::Bytes::new()),
        Err(e) => return Err(e),
    };
    crate::replication::catalog::Logs::decode(&text).map_err(|why| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} does not hold the named logs: {why}", path.display()),
        )
    })?;
    Ok(text.into())
}

/// The `base.groups` file: the consumer groups' positions at the base, as
/// `groups::Positions::encode` writes them (checked when read); none if
/// there is no file.
fn read_base_groups(dir: &Path) -> io::Result<Positions> {
    let path = dir.join("base.groups");
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Positions::default()),
        Err(e) => return Err(e),
    };
    Positions::decode(&text).map_err(|why| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} does not hold the groups' positions: {why}",
                path.display()
            ),
        )
    })
}

/// Records the consumer groups' positions at the base.
fn write_base_groups(dir: &Path, groups: &bytes::Bytes) -> io::Result<()> {
    replace_file(dir, "base.groups", &String::from_utf8_lossy(groups))
}

/// Records the named logs at the base.
fn write_base_logs(dir: &Path, logs: &bytes::Bytes) -> io::Result<()> {
    replace_file(dir, "base.logs", &String::from_utf8_lossy(logs))
}

/// Records the base and the epochs begun up to it: a new file, synced,
/// renamed over the old one, the directory synced.
fn write_base(dir: &Path, base: Position, epochs: &[(Epoch, Seq)]) -> io::Result<()> {
    let mut text = format!("{} {}\n", base.seq, base.epoch);
    for (epoch, first) in epochs {
        text.push_str(&format!("{epoch} {first}\n"));
    }
    replace_file(dir, "base", &text)
}

/// Saves entries cut from the log (a divergent suffix) to
/// `dir/rollback/<epoch>-<first>-<last>.log`, in the log's record format,
/// durably; returns the file's path. An existing file of that name (the
/// same cut saved before a crash) is replaced.
pub fn write_rollback(
    dir: &Path,
    epoch: Epoch,
    first: Seq,
    last: Seq,
    entries: &[Entry],
) -> io::Result<PathBuf> {
    let rollback = dir.join("rollback");
    fs::create_dir_all(&rollback)?;
    let path = rollback.join(format!("{epoch}-{first}-{last}.log"));
    let tmp = rollback.join(format!("{epoch}-{first}-{last}.tmp"));
    let mut buf = Vec::new();
    for e in entries {
        encode_record(e, &mut buf);
    }
    let mut f = File::create(&tmp)?;
    f.write_all(&buf)?;
    f.sync_all()?;
    fs::rename(&tmp, &path)?;
    sync_dir(&rollback)?;
    sync_dir(dir)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::files::is_not_durable;
    use crate::storage::record::RECOVERY_CHUNK;
    use std::fs::OpenOptions;

    fn entry(seq: Seq) -> Entry {
        Entry {
            epoch: 1 + seq / 10,
            seq,
            log: crate::entry::DEFAULT_LOG,
            number: seq,
            key: seq.is_multiple_of(2).then(|| format!("key-{seq}")),
            message: format!("message {seq} {}", "x".repeat(seq as usize % 7)).into(),
        }
    }

    fn write(dir: &Path, n: Seq, segment_bytes: u64) -> DiskLog {
        let mut log = DiskLog::open(dir, segment_bytes).unwrap();
        // Few exact offsets: lookups go through the sparse index.
        log.set_recent_cap(5);
        let entries: Vec<Entry> = (1..=n).map(entry).collect();
        for chunk in entries.chunks(3) {
            log.append(chunk).unwrap();
        }
        log
    }

    fn all(log: &DiskLog) -> Vec<Entry> {
        log.read(1, log.last().seq, usize::MAX, usize::MAX).unwrap()
    }

    #[test]
    fn retention_deletes_whole_old_segments_and_a_restart_keeps_the_base() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = write(dir.path(), 60, 200);
        let segs = log.segments().unwrap();
        assert!(segs.len() > 4, "{segs:?}");
        assert_eq!(segs[0].first, 1);
        assert!(segs.windows(2).all(|w| w[0].last + 1 == w[1].first));
        assert_eq!(segs.last().unwrap().last, 60);
        // Through 25: every segment that ends at or before it.
        let through = segs
            .iter()
            .take_while(|s| s.last <= 25)
            .last()
            .unwrap()
            .last;
        let gone = segs.iter().filter(|s| s.last <= 25).count();
        assert_eq!(log.delete_through(25).unwrap(), gone);
        let base = Position {
            epoch: entry(through).epoch,
            seq: through,
        };
        assert_eq!(log.base(), base);
        let kept: Vec<Entry> = (through + 1..=60).map(entry).collect();
        assert_eq!(all(&log), kept, "reading from 1 starts at the first kept");
        // The epochs stay whole: logs are compared by them.
        let epochs = vec![(1, 1), (2, 10), (3, 20), (4, 30), (5, 40), (6, 50), (7, 60)];
        assert_eq!(log.epochs(), epochs);
        assert!(log.truncate_after(through - 1).is_err());
        // Never the segment being written.
        let n = log.segments().unwrap().len();
        assert_eq!(log.delete_through(60).unwrap(), n - 1);
        drop(log);
        let log = DiskLog::open(dir.path(), 200).unwrap();
        let base = log.base();
        assert_eq!(base.seq + 1, log.segments().unwrap()[0].first);
        assert_eq!(
            all(&log),
            (base.seq + 1..=60).map(entry).collect::<Vec<_>>()
        );
        assert_eq!(log.epochs(), epochs);
        assert_eq!(log.last(), Position { epoch: 7, seq: 60 });
    }

    /// Entries 1..=n: a marker every tenth, the rest messages of logs 0
    /// and 3 in turn, numbered in each log from 1.
    fn two_logs(n: Seq) -> Vec<Entry> {
        let mut last = [0, 0];
        (1..=n)
            .map(|seq| {
                if seq % 10 == 1 {
                    return Entry::marker(1, seq);
                }
                let i = (seq % 2) as usize;
                last[i] += 1;
                let message = format!("m{seq}").into();
                Entry::message((1, seq), ([0, 3][i], last[i]), None, message)
            })
            .collect()
    }

    #[test]
    fn each_logs_last_number_follows_cuts_retention_resets_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), 200).unwrap();
        let entries = two_logs(60);
        entries.chunks(5).for_each(|c| log.append(c).unwrap());
        let numbers_at = |seq: Seq| {
            let mut last = std::collections::BTreeMap::new();
            for e in entries[..seq as usize].iter().filter(|e| !e.is_control()) {
                last.insert(e.log, e.number);
            }
            last.into_iter().collect::<Vec<_>>()
        };
        assert_eq!(log.numbers(), numbers_at(60));
        assert!(log.segments().unwrap().len() > 3);
        // A cut inside a segment, and one that drops whole segments.
        log.truncate_after(57).unwrap();
        assert_eq!(log.numbers(), numbers_at(57));
        log.truncate_after(44).unwrap();
        assert_eq!(log.numbers(), numbers_at(44));
        // What comes after a cut takes the numbers back.
        entries[44..50]
            .chunks(3)
            .for_each(|c| log.append(c).unwrap());
        assert_eq!(log.numbers(), numbers_at(50));
        // Retention records the numbers at the base.
        let through = log.segments().unwrap()[1].last;
        log.delete_through(through).unwrap();
        assert_eq!(log.numbers_at_base(), numbers_at(through));
        assert_eq!(log.numbers(), numbers_at(50));
        drop(log);
        // A restart finds them all again.
        let mut log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!(log.numbers_at_base(), numbers_at(through));
        assert_eq!(log.numbers(), numbers_at(50));
        // A reset takes the master's, past a restart.
        let base = Position { epoch: 1, seq: 90 };
        let logs = bytes::Bytes::from("2\n2 orders\n");
        log.reset(
            base,
            &[(1, 1)],
            None,
            (&[(0, 40), (3, 39)], &logs, &bytes::Bytes::new()),
        )
        .unwrap();
        assert_eq!(log.numbers(), vec![(0, 40), (3, 39)]);
        drop(log);
        let log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!(log.numbers(), vec![(0, 40), (3, 39)]);
        assert_eq!(log.numbers_at_base(), vec![(0, 40), (3, 39)]);
        // And the named logs at its base.
        assert_eq!(log.catalog(), (logs, vec![]));
    }

    /// Entries 1..=n: every third a group entry setting group `g{seq % 2}`
    /// at `seq` in log 0 (and every 21st deleting `g1`), the rest messages.
    fn with_groups(n: Seq) -> Vec<Entry> {
        use crate::replication::groups::GroupChange;
        (1..=n)
            .map(|seq| match seq {
                _ if seq % 21 == 0 => GroupChange::Delete { group: "g1".into() }.entry(1, seq),
                _ if seq % 3 == 0 => GroupChange::Set {
                    group: format!("g{}", seq % 2),
                    log: 0,
                    number: seq,
                }
                .entry(1, seq),
                _ => Entry::message((1, seq), (0, seq), None, format!("m{seq}").into()),
            })
            .collect()
    }

    #[test]
    fn groups_set_and_deleted_again_and_again_leave_nothing_behind() {
        use crate::replication::groups::GroupChange;
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), 4096).unwrap();
        let keep = GroupChange::Set {
            group: "kept".into(),
            log: 0,
            number: 0,
        };
        log.append(&[keep.entry(1, 1)]).unwrap();
        // Two thousand groups, each set and deleted, over many segments:
        // each remembers the one kept and its deletion at most.
        let mut seq = 1;
        for i in 0..2000 {
            let group = format!("g-{i}");
            let set = GroupChange::Set {
                group: group.clone(),
                log: 0,
                number: 0,
            };
            let delete = GroupChange::Delete { group };
            log.append(&[set.entry(1, seq + 1), delete.entry(1, seq + 2)])
                .unwrap();
            seq += 2;
        }
        assert!(log.segments.len() > 10);
        assert!(log.segments.iter().all(|s| s.groups.size() <= 2));
        let delete = GroupChange::Delete {
            group: "kept".into(),
        };
        log.append(&[delete.entry(1, seq + 1)]).unwrap();
        assert_eq!(log.groups(), Default::default());
        // Read again at start: the same, each segment pruned.
        drop(log);
        let log = DiskLog::open(dir.path(), 4096).unwrap();
        assert!(log.segments.iter().all(|s| s.groups.size() <= 2));
        assert_eq!(log.groups(), Default::default());
    }

    #[test]
    fn groups_positions_follow_cuts_retention_resets_and_restarts() {
        use crate::replication::groups::{GroupChange, Positions};
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), 200).unwrap();
        let entries = with_groups(60);
        entries.chunks(5).for_each(|c| log.append(c).unwrap());
        let positions_at = |seq: Seq| {
            let mut p = Positions::default();
            for e in &entries[..seq as usize] {
                if let Ok(change) = GroupChange::decode(&e.message) {
                    p.apply(&change);
                }
            }
            p
        };
        assert_eq!(log.groups(), positions_at(60));
        assert!(log.segments().unwrap().len() > 3);
        // A cut inside a segment, and one that drops whole segments: the
        // positions are those the entries kept leave.
        log.truncate_after(58).unwrap();
        assert_eq!(log.groups(), positions_at(58));
        log.truncate_after(40).unwrap();
        assert_eq!(log.groups(), positions_at(40));
        assert_ne!(positions_at(40), positions_at(58), "the cut mattered");
        entries[40..50]
            .chunks(3)
            .for_each(|c| log.append(c).unwrap());
        assert_eq!(log.groups(), positions_at(50));
        // Retention records the positions at the base.
        let through = log.segments().unwrap()[1].last;
        log.delete_through(through).unwrap();
        assert_eq!(log.groups_at_base(), positions_at(through).encode());
        assert_eq!(log.groups(), positions_at(50));
        drop(log);
        // A restart finds them all again.
        let mut log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!(log.groups(), positions_at(50));
        // A reset takes the master's, past a restart.
        let base = Position { epoch: 1, seq: 90 };
        let groups = bytes::Bytes::from("billing 0 70\n");
        let no_logs = bytes::Bytes::new();
        log.reset(base, &[(1, 1)], None, (&[(0, 70)], &no_logs, &groups))
            .unwrap();
        drop(log);
        let log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!(
            log.groups().iter().collect::<Vec<_>>(),
            [("billing", 0, 70)]
        );
        assert_eq!(log.groups_at_base(), groups);
    }

    #[test]
    fn a_reset_log_starts_after_its_base_and_a_crash_midway_is_finished_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = write(dir.path(), 30, 200);
        let base = Position { epoch: 9, seq: 100 };
        log.reset(
            base,
            &[(1, 1), (9, 95)],
            None,
            (&[(0, 70)], &bytes::Bytes::new(), &bytes::Bytes::new()),
        )
        .unwrap();
        assert_eq!((log.last(), all(&log)), (base, vec![]));
        let next = Entry {
            epoch: 9,
            seq: 101,
            log: crate::entry::DEFAULT_LOG,
            number: 101,
            key: None,
            message: "after".into(),
        };
        log.append(std::slice::from_ref(&next)).unwrap();
        drop(log);
        let log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!((log.base(), all(&log)), (base, vec![next]));
        assert_eq!(log.epochs(), vec![(1, 1), (9, 95)]);
        drop(log);
        // A crash after the base was written, before the segments went.
        let other = tempfile::tempdir().unwrap();
        drop(write(other.path(), 30, 200));
        write_base(other.path(), Position { epoch: 4, seq: 50 }, &[(4, 30)]).unwrap();
        let log = DiskLog::open(other.path(), 200).unwrap();
        assert_eq!(log.last(), Position { epoch: 4, seq: 50 });
        assert_eq!(log.segments().unwrap().len(), 1);
        assert_eq!(log.segments().unwrap()[0].first, 51);
        drop(log);
        // A reset to a lower base, cut short before the empty segment was
        // renamed: that segment (51) does not follow the new base (20).
        write_base(other.path(), Position { epoch: 2, seq: 20 }, &[(2, 10)]).unwrap();
        let log = DiskLog::open(other.path(), 200).unwrap();
        assert_eq!(log.last(), Position { epoch: 2, seq: 20 });
        assert_eq!(log.segments().unwrap()[0].first, 21);
    }

    #[test]
    fn write_reopen_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), 25, 1 << 20);
        assert_eq!(all(&log), (1..=25).map(entry).collect::<Vec<_>>());
        drop(log);
        let log = DiskLog::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(log.last(), Position { epoch: 3, seq: 25 });
        assert_eq!(all(&log), (1..=25).map(entry).collect::<Vec<_>>());
        assert_eq!(log.epochs(), vec![(1, 1), (2, 10), (3, 20)]);
    }

    #[test]
    fn a_failed_sync_at_a_segment_roll_is_written_but_not_durable() {
        let dir = tempfile::tempdir().unwrap();
        let fault = dir.path().join("fault");
        let mut log = DiskLog::open(&dir.path().join("log"), 200).unwrap();
        log.set_fault_file(Some(fault.clone()));
        std::fs::write(&fault, "sync").unwrap();
        let entries: Vec<Entry> = (1..=10).map(entry).collect();
        let err = log.append(&entries).unwrap_err();
        assert!(is_not_durable(&err), "{err}");
        assert_eq!(log.last().seq, 10, "written all the same");
        // A plain write failure is not that.
        std::fs::write(&fault, "").unwrap();
        let err = log.append(&[entry(11)]).unwrap_err();
        assert!(!is_not_durable(&err), "{err}");
        assert_eq!(log.last().seq, 10);
        std::fs::remove_file(&fault).unwrap();
        log.append(&[entry(11)]).unwrap();
        drop(log);
        let log = DiskLog::open(&dir.path().join("log"), 200).unwrap();
        assert_eq!(all(&log), (1..=11).map(entry).collect::<Vec<_>>());
    }

    #[test]
    fn records_larger_than_a_read_chunk_read_back_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), 1 << 30).unwrap();
        let big = |seq: Seq, len: usize| Entry {
            message: vec![seq as u8; len].into(),
            ..entry(seq)
        };
        let entries = vec![
            entry(1),
            big(2, 3 * READ_CHUNK as usize / 2),
            entry(3),
            big(4, 3 * RECOVERY_CHUNK as usize),
        ];
        log.append(&entries).unwrap();
        assert_eq!(all(&log), entries);
        assert_eq!(log.read(2, 2, 1, usize::MAX).unwrap(), entries[1..2]);
        drop(log);
        let log = DiskLog::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(all(&log), entries);
    }

    #[test]
    fn recovery_reads_a_segment_of_several_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let n = 80_000; // about 4 MiB: records straddle the 1 MiB chunks
        drop(write(dir.path(), n, 1 << 30));
        let path = dir.path().join(segment_name(1));
        let size = fs::metadata(&path).unwrap().len();
        assert!(size > 3 * RECOVERY_CHUNK, "{size}");
        let log = DiskLog::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(log.last().seq, n);
        assert_eq!(
            log.read(n - 1, n, 10, usize::MAX).unwrap(),
            vec![entry(n - 1), entry(n)]
        );
        drop(log);
        // A torn last record is cut, however far into the file.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(size - 3).unwrap();
        drop(f);
        let log = DiskLog::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(log.last().seq, n - 1);
        drop(log);
        // Damage in the middle, past the first chunks, is refused with its
        // offset.
        let mut data = fs::read(&path).unwrap();
        let at = (2 * RECOVERY_CHUNK + 12_345) as usize;
        data[at] ^= 0xff;
        fs::write(&path, &data).unwrap();
        let err = DiskLog::open(dir.path(), 1 << 30).unwrap_err().to_string();
        assert!(err.contains("is damaged at byte offset"), "{err}");
    }

    #[test]
    fn the_sparse_index_finds_every_entry_across_strides_segments_and_cuts() {
        let dir = tempfile::tempdir().unwrap();
        // About 400 entries a segment: several strides in each.
        let mut log = write(dir.path(), 3000, 20_000);
        assert!(log.segments.len() > 4);
        assert!(log.segments[0].sparse.len() > 1);
        let want: Vec<Entry> = (1..=3000).map(entry).collect();
        for from in [1, 2, 255, 256, 257, 511, 512, 513, 1000, 2999, 3000] {
            let got = log.read(from, 3000, 700, usize::MAX).unwrap();
            let end = (from as usize + 699).min(3000);
            assert_eq!(got, want[from as usize - 1..end], "from {from}");
        }
        for cut in [2900, 1234, 513, 512, 257] {
            log.truncate_after(cut).unwrap();
            assert_eq!(log.last().seq, cut);
            assert_eq!(all(&log), want[..cut as usize], "after cutting at {cut}");
        }
        // Appends after a cut are indexed from where it left off.
        let more: Vec<Entry> = (258..=1500).map(entry).collect();
        log.append(&more).unwrap();
        assert_eq!(all(&log), want[..1500]);
        drop(log);
        let mut log = DiskLog::open(dir.path(), 20_000).unwrap();
        log.set_recent_cap(5);
        assert_eq!(all(&log), want[..1500]);
        assert_eq!(log.read(700, 700, 1, usize::MAX).unwrap(), want[699..700]);
        // A cut right before a segment's first entry empties that segment.
        let boundary = log.segments[1].first - 1;
        log.truncate_after(boundary).unwrap();
        assert_eq!(all(&log), want[..boundary as usize]);
        log.append(&want[boundary as usize..boundary as usize + 10])
            .unwrap();
        assert_eq!(all(&log), want[..boundary as usize + 10]);
        log.truncate_after(0).unwrap();
        assert_eq!(log.last(), Position::default());
        log.append(&want[..3]).unwrap();
        drop(log);
        let log = DiskLog::open(dir.path(), 20_000).unwrap();
        assert_eq!(all(&log), want[..3]);
    }

    #[test]
    fn segments_roll_and_reads_from_any_seq_cross_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(dir.path(), 100, 300);
        assert!(log.segments.len() > 5, "{} segments", log.segments.len());
        for from in [1, 2, 37, 99, 100] {
            let got = log.read(from, 100, usize::MAX, usize::MAX).unwrap();
            assert_eq!(
                got,
                (from..=100).map(entry).collect::<Vec<_>>(),
                "from {from}"
            );
        }
        // Limits: count, bytes (at least one entry), upto.
        assert_eq!(log.read(5, 100, 3, usize::MAX).unwrap().len(), 3);
        assert_eq!(log.read(5, 100, 100, 1).unwrap().len(), 1);
        assert_eq!(log.read(5, 7, 100, usize::MAX).unwrap().len(), 3);
        drop(log);
        let log = DiskLog::open(dir.path(), 300).unwrap();
        assert_eq!(all(&log), (1..=100).map(entry).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_last_record_is_cut_at_every_byte_offset() {
        let dir = tempfile::tempdir().unwrap();
        drop(write(dir.path(), 5, 1 << 20));
        let path = dir.path().join(segment_name(1));
        let full = fs::read(&path).unwrap();
        let mut last = Vec::new();
        encode_record(&entry(5), &mut last);
        let last_start = full.len() - last.len();
        for cut in last_start..full.len() {
            let copy = tempfile::tempdir().unwrap();
            fs::write(copy.path().join(segment_name(1)), &full[..cut]).unwrap();
            let log = DiskLog::open(copy.path(), 1 << 20).unwrap();
            assert_eq!(log.last().seq, 4, "cut at {cut}");
            assert_eq!(all(&log), (1..=4).map(entry).collect::<Vec<_>>());
            assert_eq!(
                fs::metadata(copy.path().join(segment_name(1)))
                    .unwrap()
                    .len(),
                last_start as u64
            );
            // And the log goes on from there.
            let mut log = log;
            log.append(&[entry(5)]).unwrap();
            drop(log);
            let log = DiskLog::open(copy.path(), 1 << 20).unwrap();
            assert_eq!(log.last().seq, 5);
        }
        // A last record whose bytes were garbled (not just cut) is torn too,
        // and so is a zero-filled tail.
        let copy = tempfile::tempdir().unwrap();
        let mut garbled = full.clone();
        *garbled.last_mut().unwrap() ^= 0xff;
        garbled.extend_from_slice(&[0; 4096]);
        fs::write(copy.path().join(segment_name(1)), &garbled).unwrap();
        assert_eq!(DiskLog::open(copy.path(), 1 << 20).unwrap().last().seq, 4);
    }

    #[test]
    fn a_corrupt_record_mid_log_is_refused_with_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        drop(write(dir.path(), 5, 1 << 20));
        let path = dir.path().join(segment_name(1));
        let mut data = fs::read(&path).unwrap();
        let mut first = Vec::new();
        encode_record(&entry(1), &mut first);
        // Flip a byte inside record 2's payload.
        let at = first.len() + HEADER + 3;
        data[at] ^= 0x55;
        fs::write(&path, &data).unwrap();
        let err = DiskLog::open(dir.path(), 1 << 20).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(&format!("offset {}", first.len())), "{text}");
        // Nothing was cut.
        assert_eq!(fs::read(&path).unwrap(), data);
    }

    #[test]
    fn truncate_after_cuts_across_segments_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = write(dir.path(), 60, 300);
        log.truncate_after(17).unwrap();
        assert_eq!(log.last(), Position { epoch: 2, seq: 17 });
        log.append(&[entry(18)]).unwrap();
        drop(log);
        let log = DiskLog::open(dir.path(), 300).unwrap();
        assert_eq!(all(&log), (1..=18).map(entry).collect::<Vec<_>>());
        let mut log = log;
        log.truncate_after(0).unwrap();
        assert_eq!(log.last().seq, 0);
        drop(log);
        assert_eq!(DiskLog::open(dir.path(), 300).unwrap().last().seq, 0);
    }

    #[test]
    fn a_data_directory_is_opened_by_one_log_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = DiskLog::open(dir.path(), 1 << 20).unwrap();
        let err = DiskLog::open(dir.path(), 1 << 20).unwrap_err();
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
        drop(first);
        DiskLog::open(dir.path(), 1 << 20).unwrap();
    }

    #[test]
    fn the_epoch_is_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(log.epoch(), 0);
        log.set_epoch(7, None).unwrap();
        drop(log);
        assert_eq!(DiskLog::open(dir.path(), 1 << 20).unwrap().epoch(), 7);
        let mut log = DiskLog::open(dir.path(), 1 << 20).unwrap();
        log.set_epoch(8, Some("n2")).unwrap();
        drop(log);
        let log = DiskLog::open(dir.path(), 1 << 20).unwrap();
        assert_eq!((log.epoch(), log.vote()), (8, Some("n2")));
    }

    #[test]
    fn a_damaged_length_in_the_last_segment_is_refused_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        drop(write(dir.path(), 5, 1 << 20));
        let path = dir.path().join(segment_name(1));
        let mut data = fs::read(&path).unwrap();
        let mut first = Vec::new();
        encode_record(&entry(1), &mut first);
        // Record 2's length now claims more than the file holds: it looks
        // like a torn write, but records 3..=5 follow intact.
        data[first.len() + 2] = 0x7f;
        fs::write(&path, &data).unwrap();
        let err = DiskLog::open(dir.path(), 1 << 20).unwrap_err().to_string();
        assert!(err.contains(&format!("offset {}", first.len())), "{err}");
        assert!(err.contains("intact record follows"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), data, "nothing was cut");
    }

    /// Opens a log whose rolls are left to `sync_point().sync()` (as a
    /// node with a syncer does) and appends entries `from..=to` in threes.
    fn deferred(dir: &Path, from: Seq, to: Seq) -> DiskLog {
        let mut log = DiskLog::open(dir, 200).unwrap();
        log.defer_rolls(true);
        let entries: Vec<Entry> = (from..=to).map(entry).collect();
        for chunk in entries.chunks(3) {
            log.append(chunk).unwrap();
        }
        log
    }

    /// The first seq of the segment being written.
    fn writing(log: &DiskLog) -> Seq {
        log.segments.last().unwrap().first
    }

    #[test]
    fn a_deferred_roll_names_the_new_segment_only_once_its_sync_point_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = deferred(dir.path(), 1, 6);
        assert_eq!(log.segments.len(), 2, "rolled once");
        let new = writing(&log);
        // Written and readable, but not yet named: its roll is not durable.
        assert_eq!(firsts(dir.path()), vec![1]);
        assert!(dir.path().join(roll::NEXT).exists());
        assert_eq!(all(&log), (1..=6).map(entry).collect::<Vec<_>>());
        log.sync_point().sync().unwrap();
        assert_eq!(firsts(dir.path()), vec![1, new]);
        // The roll is done: the next point has nothing more to finish, and
        // the file for the next roll is prepared, empty.
        log.finish_roll().unwrap();
        assert!(log.roll.is_none());
        assert_eq!(fs::metadata(dir.path().join(roll::NEXT)).unwrap().len(), 0);
        log.append(&[entry(7)]).unwrap();
        drop(log);
        let log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!(all(&log), (1..=7).map(entry).collect::<Vec<_>>());
        assert_eq!(firsts(dir.path()), vec![1, new]);
    }

    #[test]
    fn a_roll_not_yet_durable_at_a_crash_is_adopted_when_it_continues_the_log() {
        // The process died with its page cache intact: what it wrote to the
        // next segment is all there, and under `batch` already acknowledged.
        let dir = tempfile::tempdir().unwrap();
        let log = deferred(dir.path(), 1, 9);
        let new = writing(&log);
        assert!(log.roll.is_some());
        drop(log);
        let log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!(all(&log), (1..=9).map(entry).collect::<Vec<_>>());
        assert_eq!(firsts(dir.path()), vec![1, new]);
        assert_eq!(fs::metadata(dir.path().join(roll::NEXT)).unwrap().len(), 0);
    }

    #[test]
    fn a_roll_not_yet_durable_at_a_power_cut_is_removed_when_the_segment_before_lost_its_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = deferred(dir.path(), 1, 9);
        let new = writing(&log);
        drop(log);
        // The power cut lost the full segment's last record (never synced:
        // its roll was pending), but not the next segment's writes.
        let path = dir.path().join(segment_name(1));
        let len = fs::metadata(&path).unwrap().len();
        let mut last = Vec::new();
        encode_record(&entry(new - 1), &mut last);
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - last.len() as u64 + 3)
            .unwrap();
        let log = DiskLog::open(dir.path(), 200).unwrap();
        // The log ends where the segment was torn: no gap, nothing after.
        assert_eq!(log.last().seq, new - 2);
        assert_eq!(all(&log), (1..new - 1).map(entry).collect::<Vec<_>>());
        assert_eq!(firsts(dir.path()), vec![1]);
        drop(log);
        // And it stays so.
        let log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!(log.last().seq, new - 2);
    }

    #[test]
    fn a_cut_through_a_pending_roll_abandons_it_and_a_stale_point_still_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = deferred(dir.path(), 1, 9);
        let new = writing(&log);
        let stale = log.sync_point();
        log.truncate_after(new - 2).unwrap();
        assert!(log.roll.is_none());
        assert!(!dir.path().join(roll::NEXT).exists());
        // The syncer may still hold a point of the abandoned roll: syncing
        // it must neither fail nor name the segment.
        stale.sync().unwrap();
        assert_eq!(firsts(dir.path()), vec![1]);
        log.append(&[entry(new - 1), entry(new), entry(new + 1)])
            .unwrap();
        log.sync_point().sync().unwrap();
        drop(log);
        let log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!(all(&log), (1..=new + 1).map(entry).collect::<Vec<_>>());
    }

    #[test]
    fn a_cut_inside_a_pending_roll_finishes_it_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = deferred(dir.path(), 1, 3);
        let mut seq = 3;
        while log.segments.len() < 2 || log.last().seq <= writing(&log) {
            seq += 1;
            log.append(&[entry(seq)]).unwrap();
        }
        let new = writing(&log);
        assert_eq!(log.segments.len(), 2);
        assert!(log.roll.is_some());
        log.truncate_after(new).unwrap();
        assert!(log.roll.is_none());
        assert_eq!(firsts(dir.path()), vec![1, new]);
        drop(log);
        let log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!(all(&log), (1..=new).map(entry).collect::<Vec<_>>());
    }

    #[test]
    fn a_second_roll_finishes_the_first_itself_so_at_most_one_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let log = deferred(dir.path(), 1, 30);
        let names = firsts(dir.path());
        let segments: Vec<Seq> = log.segments.iter().map(|s| s.first).collect();
        assert!(segments.len() >= 4, "{segments:?}");
        // Every segment but the one being written is named.
        assert_eq!(names, segments[..segments.len() - 1]);
        drop(log);
        let log = DiskLog::open(dir.path(), 200).unwrap();
        assert_eq!(all(&log), (1..=30).map(entry).collect::<Vec<_>>());
    }

    /// A log in `dir/log` that just rolled, its syncs deferred, and whose
    /// syncs fail while `dir/fault` exists; and the new segment's first seq.
    fn rolled_with_faults(dir: &Path, stored_means_synced: bool) -> (DiskLog, Seq) {
        let mut log = DiskLog::open(&dir.join("log"), 200).unwrap();
        log.set_fault_file(Some(dir.join("fault")));
        log.defer_rolls(stored_means_synced);
        let entries: Vec<Entry> = (1..=9).map(entry).collect();
        log.append(&entries).unwrap();
        let new = writing(&log);
        (log, new)
    }

    #[test]
    fn a_failed_sync_of_a_deferred_roll_is_reported_and_never_retried() {
        let dir = tempfile::tempdir().unwrap();
        let fault = dir.path().join("fault");
        let (mut log, new) = rolled_with_faults(dir.path(), true);
        std::fs::write(&fault, "sync").unwrap();
        let point = log.sync_point();
        let err = point.sync().unwrap_err();
        assert!(is_not_durable(&err), "{err}");
        // The disk recovers, but a failed fdatasync is not tried again.
        std::fs::remove_file(&fault).unwrap();
        assert!(is_not_durable(&point.sync().unwrap_err()));
        assert_eq!(firsts(&dir.path().join("log")), vec![1]);
        // What the node does next: cut back to what was synced, which is
        // never the whole full segment (the round that filled it was not).
        // The new segment goes whole, its roll abandoned rather than
        // finished (which would fail again).
        log.truncate_after(new - 2).unwrap();
        assert!(log.roll.is_none());
        assert_eq!(log.last().seq, new - 2);
        log.append(&[entry(new - 1), entry(new)]).unwrap();
        log.sync_point().sync().unwrap();
        drop(log);
        let log = DiskLog::open(&dir.path().join("log"), 200).unwrap();
        assert_eq!(all(&log), (1..=new).map(entry).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_roll_is_tried_again_where_nothing_cuts_after_a_failed_sync() {
        // `--fsync batch`: as a full segment's sync always was.
        let dir = tempfile::tempdir().unwrap();
        let fault = dir.path().join("fault");
        let (log, new) = rolled_with_faults(dir.path(), false);
        std::fs::write(&fault, "sync").unwrap();
        assert!(is_not_durable(&log.sync_point().sync().unwrap_err()));
        std::fs::remove_file(&fault).unwrap();
        log.sync_point().sync().unwrap();
        assert_eq!(firsts(&dir.path().join("log")), vec![1, new]);
    }

    #[test]
    fn a_next_segment_that_cannot_be_read_stops_the_start_naming_it() {
        // Not a verdict on what it holds: it is neither adopted nor removed.
        let dir = tempfile::tempdir().unwrap();
        drop(write(dir.path(), 5, 100_000));
        fs::remove_file(dir.path().join(roll::NEXT)).unwrap();
        fs::create_dir(dir.path().join(roll::NEXT)).unwrap();
        let err = DiskLog::open(dir.path(), 100_000).unwrap_err().to_string();
        assert!(err.contains(roll::NEXT), "{err}");
        assert!(dir.path().join(roll::NEXT).is_dir());
    }

    #[test]
    fn a_next_segment_of_an_older_epoch_is_not_adopted() {
        // Left by a crash long ago (its removal lost to a power cut), it
        // may even start at the right seq: history that was cut.
        let dir = tempfile::tempdir().unwrap();
        drop(write(dir.path(), 25, 100_000));
        let mut stale = Vec::new();
        encode_record(
            &Entry {
                epoch: 1,
                ..entry(26)
            },
            &mut stale,
        );
        fs::write(dir.path().join(roll::NEXT), &stale).unwrap();
        let log = DiskLog::open(dir.path(), 100_000).unwrap();
        assert_eq!(log.last().seq, 25, "epoch {} last", log.last().epoch);
        assert_eq!(firsts(dir.path()), vec![1]);
        assert_eq!(fs::metadata(dir.path().join(roll::NEXT)).unwrap().len(), 0);
        drop(log);
        // Of the log's own epoch, it is.
        fs::write(dir.path().join(roll::NEXT), {
            let mut next = Vec::new();
            encode_record(&entry(26), &mut next);
            next
        })
        .unwrap();
        let log = DiskLog::open(dir.path(), 100_000).unwrap();
        assert_eq!(all(&log), (1..=26).map(entry).collect::<Vec<_>>());
    }

    /// The first sequence numbers of the segments in `dir`, in order.
    fn firsts(dir: &Path) -> Vec<Seq> {
        let mut firsts: Vec<Seq> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().to_string();
                name.strip_suffix(".log").and_then(|s| s.parse().ok())
            })
            .collect();
        firsts.sort_unstable();
        firsts
    }

    /// What recovery finds in each segment of `dir` on `threads` threads,
    /// as text (without the open files).
    fn scanned(dir: &Path, threads: usize) -> Vec<String> {
        super::super::recovery::scan_segments(dir, &firsts(dir), threads)
            .into_iter()
            .map(|r| match r {
                Ok(s) => format!("{:?}", (s.len, s.last, s.sparse, s.epochs, s.torn)),
                Err(e) => format!("error: {e}"),
            })
            .collect()
    }

    /// Appends the first `n` bytes of entry `seq`'s record to `path`: a
    /// write torn by a crash.
    fn tear(path: &Path, seq: Seq, n: usize) {
        let mut record = Vec::new();
        encode_record(&entry(seq), &mut record);
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(&record[..n]).unwrap();
    }

    #[test]
    fn segments_read_on_several_threads_give_what_one_thread_gives() {
        let dir = tempfile::tempdir().unwrap();
        // About 500 records a segment: two strides of the sparse index each,
        // and epochs that change inside segments and across them.
        let n = 2_500;
        drop(write(dir.path(), n, 20_000));
        let last = dir
            .path()
            .join(segment_name(*firsts(dir.path()).last().unwrap()));
        tear(&last, n + 1, 11);
        let one = scanned(dir.path(), 1);
        assert!(one.len() >= 4, "{one:?}");
        assert!(one.iter().all(|s| !s.starts_with("error")), "{one:?}");
        assert!(
            one.last().unwrap().contains("Some("),
            "the torn write is found: {one:?}"
        );
        for threads in [2, 3, 8] {
            assert_eq!(scanned(dir.path(), threads), one, "{threads} threads");
        }
        // Opened, the log holds every entry, in its epochs, and the torn
        // write is gone.
        let torn_len = fs::metadata(&last).unwrap().len();
        let log = DiskLog::open(dir.path(), 20_000).unwrap();
        assert_eq!(all(&log), (1..=n).map(entry).collect::<Vec<_>>());
        let epochs: Vec<(Epoch, Seq)> = (1..=n)
            .filter(|s| *s == 1 || entry(*s).epoch != entry(s - 1).epoch)
            .map(|s| (entry(s).epoch, s))
            .collect();
        assert_eq!(log.epochs(), epochs);
        assert_eq!(fs::metadata(&last).unwrap().len(), torn_len - 11);
    }

    #[test]
    fn damage_in_two_segments_is_reported_in_the_first_and_nothing_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        drop(write(dir.path(), 2_500, 20_000));
        let firsts = firsts(dir.path());
        assert!(firsts.len() >= 4, "{firsts:?}");
        // A flipped byte in the second segment's tenth record's payload,
        // and in the fourth's; a torn write at the end of the last.
        for first in [firsts[1], firsts[3]] {
            let path = dir.path().join(segment_name(first));
            let mut data = fs::read(&path).unwrap();
            let mut before = Vec::new();
            for seq in first..first + 9 {
                encode_record(&entry(seq), &mut before);
            }
            data[before.len() + HEADER + 3] ^= 0x55;
            fs::write(&path, &data).unwrap();
        }
        let last = dir.path().join(segment_name(*firsts.last().unwrap()));
        tear(&last, 2_501, 11);
        let last_bytes = fs::read(&last).unwrap();
        let second = dir
            .path()
            .join(segment_name(firsts[1]))
            .display()
            .to_string();
        for threads in [1, 4] {
            let found = scanned(dir.path(), threads);
            assert!(found[0].starts_with('('), "{found:?}");
            assert!(
                found[1].starts_with("error") && found[1].contains(&second),
                "{found:?}"
            );
        }
        let err = DiskLog::open(dir.path(), 20_000).unwrap_err().to_string();
        assert!(err.contains(&second), "{err}");
        assert!(err.contains("checksum"), "{err}");
        assert_eq!(
            fs::read(&last).unwrap(),
            last_bytes,
            "the torn write is left as it was"
        );
    }

    #[test]
    fn the_newest_offsets_found_at_open_are_those_the_writes_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), 20_000).unwrap();
        // Every offset, as the writes kept them (about 400 entries a
        // segment).
        log.set_recent_cap(10_000);
        let entries: Vec<Entry> = (1..=2_500).map(entry).collect();
        for chunk in entries.chunks(7) {
            log.append(chunk).unwrap();
        }
        let mut written = log.recent.clone();
        assert_eq!(written.len(), 2_500);
        drop(log);
        // Fewer than a stride, a stride either side, more than a segment
        // (so they start in an earlier one), more than the log.
        let check = |written: &std::collections::VecDeque<u64>, count: Seq, held: usize| {
            for cap in [1, 100, 255, 256, 257, 600, 10_000] {
                let log = DiskLog::open_keeping(dir.path(), 20_000, cap, &mut || Ok(())).unwrap();
                assert_eq!(log.last().seq, count);
                let kept: Vec<u64> = written
                    .iter()
                    .skip(held.saturating_sub(cap))
                    .copied()
                    .collect();
                assert_eq!(
                    log.recent.iter().copied().collect::<Vec<_>>(),
                    kept,
                    "cap {cap}"
                );
                let oldest = count + 1 - kept.len() as Seq;
                for seq in [oldest, count] {
                    assert_eq!(log.read(seq, seq, 1, usize::MAX).unwrap(), vec![entry(seq)]);
                }
            }
        };
        check(&written, 2_500, 2_500);
        let mut log = DiskLog::open(dir.path(), 20_000).unwrap();
        assert!(log.segment_of(2_500 - 599) < log.segments.len() - 1);
        // Retention: the log starts after a base.
        assert!(log.delete_through(1_000).unwrap() > 0);
        let base = log.base().seq;
        drop(log);
        written.drain(..base as usize);
        check(&written, 2_500, 2_500 - base as usize);
        // A torn last write, cut at open.
        let last = *firsts(dir.path()).last().unwrap();
        tear(&dir.path().join(segment_name(last)), 2_501, 11);
        check(&written, 2_500, 2_500 - base as usize);
    }

    #[test]
    fn configuration_entries_are_found_at_start_forgotten_when_cut_and_kept_past_retention_and_resets(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), 2_000).unwrap();
        let config = |seq: Seq, text: &str| Entry::config(1, seq, text.to_string().into());
        for seq in 1..=200 {
            let e = match seq {
                50 => config(50, "voter a h:1\n"),
                150 => config(150, "voter b h:2\n"),
                _ => entry(seq),
            };
            log.append(&[e]).unwrap();
        }
        let both = vec![(50, "voter a h:1\n".into()), (150, "voter b h:2\n".into())];
        assert_eq!(log.configs(), both);
        drop(log);
        let mut log = DiskLog::open(dir.path(), 2_000).unwrap();
        assert_eq!(log.configs(), both);
        // Cut: the newer one is gone, after a restart too.
        log.truncate_after(149).unwrap();
        assert_eq!(log.configs(), both[..1]);
        drop(log);
        let mut log = DiskLog::open(dir.path(), 2_000).unwrap();
        assert_eq!(log.configs(), both[..1]);
        // Retention deletes the segment holding it: it is kept beside the
        // base, and found there at the next start.
        assert!(log.delete_through(120).unwrap() > 0);
        assert!(log.base.seq >= 50, "{:?}", log.base);
        assert_eq!(log.configs(), both[..1]);
        drop(log);
        let mut log = DiskLog::open(dir.path(), 2_000).unwrap();
        assert_eq!(log.configs(), both[..1]);
        // A reset with the master's members at its base: they replace the
        // node's own, past a restart.
        let base = Position { epoch: 1, seq: 300 };
        let given = vec![(250, bytes::Bytes::from("voter c h:3\n"))];
        log.reset(
            base,
            &[(1, 1)],
            Some(&given),
            (&[], &bytes::Bytes::new(), &bytes::Bytes::new()),
        )
        .unwrap();
        assert_eq!(log.configs(), given);
        drop(log);
        let mut log = DiskLog::open(dir.path(), 2_000).unwrap();
        assert_eq!(log.configs(), given);
        // A master that says none were made: none, past a restart.
        let base = Position { epoch: 1, seq: 400 };
        log.reset(
            base,
            &[(1, 1)],
            Some(&[]),
            (&[], &bytes::Bytes::new(), &bytes::Bytes::new()),
        )
        .unwrap();
        assert_eq!(log.configs(), vec![]);
        drop(log);
        let log = DiskLog::open(dir.path(), 2_000).unwrap();
        assert_eq!(log.configs(), vec![]);
    }
}
