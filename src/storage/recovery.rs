//! Recovery at start: every record of every segment is read and checked
//! (length, checksum, sequence number) before the log opens.
//!
//! Segments are read on several threads at once. A long log comes back
//! from the page cache at the speed of a core, not of the disk (a
//! ten-million-entry log is 1.6 GB of checksums and headers), and a node
//! that restarts should be ready in well under a second.
//!
//! Reading a segment changes nothing: it reports what it found, and the
//! caller adopts the segments in order, checking that each starts where the
//! one before ends. Only then is a torn last write cut ([`Scanned::cut_torn`]),
//! so a log refused for damage anywhere is left exactly as it was found.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::damage::corrupt;
use super::files::{open_rw, segment_name};
use super::record::{
    decode_len, decode_record, record_need, refill, Decoded, HEADER, MAX_RECORD, READ_CHUNK,
    RECOVERY_CHUNK,
};
use crate::entry::{Epoch, Seq};

/// The index keeps the offset of every `STRIDE`-th entry of a segment
/// (8 bytes per 256 entries: 0.3 MiB for ten million), and a lookup walks
/// the record headers forward from there: at most `STRIDE - 1` small reads.
pub(super) const STRIDE: u64 = 256;

/// At most this many threads read segments (each with a buffer of
/// [`RECOVERY_CHUNK`]).
const MAX_THREADS: usize = 4;

/// What reading one segment found.
#[derive(Debug)]
pub(super) struct Scanned {
    pub(super) path: PathBuf,
    pub(super) file: File,
    /// Bytes of whole, valid records: the segment's length once a torn
    /// tail is cut.
    pub(super) len: u64,
    /// Sequence number of its last record (`first - 1` if it has none).
    pub(super) last: Seq,
    /// Offset of the record holding every `STRIDE`-th entry.
    pub(super) sparse: Vec<u64>,
    /// Stripped entries it holds one record each (as replication brings
    /// them), which compaction would join into runs.
    pub(super) loose: u64,
    /// Whether a record stands for several entries (a run of stripped
    /// ones): the newest offsets (`DiskLog::recent`) are kept after it.
    pub(super) runs: bool,
    /// `(epoch, seq)` of its first record and of every record whose epoch
    /// differs from the one before it.
    pub(super) epochs: Vec<(Epoch, Seq)>,
    /// The file's length when a torn last write was found after `len`.
    pub(super) torn: Option<u64>,
    /// Its configuration entries (few: one per membership change), with
    /// what they record.
    pub(super) configs: Vec<(Seq, bytes::Bytes)>,
    /// The message numbers of each log it holds.
    pub(super) numbers: super::numbering::SegmentNumbers,
    /// Its catalog entries (few: one per log created or deleted), with
    /// what they record.
    pub(super) catalog: Vec<(Seq, bytes::Bytes)>,
    /// What its group entries did.
    pub(super) groups: crate::replication::groups::Delta,
}

impl Scanned {
    /// Cuts the torn last write found, if any (the last segment only).
    pub(super) fn cut_torn(&mut self) -> io::Result<()> {
        let Some(file_len) = self.torn.take() else {
            return Ok(());
        };
        tracing::warn!(file = %self.path.display(), offset = self.len, dropped = file_len - self.len,
                       "cutting a torn record at the end of the log (a write interrupted by a crash)");
        self.file.set_len(self.len)?;
        self.file.sync_all()
    }
}

/// How many threads recovery reads segments on: one per core, at most
/// [`MAX_THREADS`].
pub(super) fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
}

/// Reads the segments of `dir` whose first sequence numbers are `firsts`
/// (in order; the last is the one written to) on up to `threads` threads.
/// What each keeps is small (one offset per `STRIDE` records), so the
/// memory a start takes does not grow with the log. The results
/// come in the order of `firsts`, whatever the threads; after a segment
/// that failed, later ones may be left unread (their result is then an
/// error too, never looked at).
pub(super) fn scan_segments(
    dir: &Path,
    firsts: &[Seq],
    threads: usize,
) -> Vec<io::Result<Scanned>> {
    let scan = |i: usize| {
        let first = firsts[i];
        let is_last = i + 1 == firsts.len();
        scan_segment(&dir.join(segment_name(first)), first, is_last)
    };
    let threads = threads.min(firsts.len());
    if threads <= 1 {
        return (0..firsts.len()).map(scan).collect();
    }
    let next = AtomicUsize::new(0);
    // The first segment found damaged: those after it need not be read.
    let failed = AtomicUsize::new(usize::MAX);
    let results: Mutex<Vec<Option<io::Result<Scanned>>>> =
        Mutex::new((0..firsts.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= firsts.len() || i > failed.load(Ordering::Relaxed) {
                    return;
                }
                let result = scan(i);
                if result.is_err() {
                    failed.fetch_min(i, Ordering::Relaxed);
                }
                results.lock().expect("recovery results")[i] = Some(result);
            });
        }
    });
    let results = results.into_inner().expect("recovery results");
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(io::Error::other("not read: an earlier segment failed"))))
        .collect()
}

/// Reads a [`super::roll::NEXT`] file as the last segment, starting at
/// `first`.
pub(super) fn scan_next(path: &Path, first: Seq) -> io::Result<Scanned> {
    scan_segment(path, first, true)
}

/// Reads a compacted copy of the segment starting at `first` (see
/// `compaction`), checking every record: it is not the last segment, so it
/// may not end in a torn write.
pub(super) fn scan_copy(path: &Path, first: Seq) -> io::Result<Scanned> {
    scan_segment(path, first, false)
}

/// Reads one segment whose first record must be `first`, checking every
/// record. Only the last segment may end in a torn write (recorded, not cut).
// One loop over the records, with each way a record can be wrong beside
// the check that finds it: split, the cases would lose their order.
fn scan_segment(path: &Path, first: Seq, is_last: bool) -> io::Result<Scanned> {
    // Sequence numbers start at 1: a segment named 0 is not one of ours.
    let Some(before) = first.checked_sub(1) else {
        return Err(corrupt(path, 0, "a segment cannot start at seq 0"));
    };
    let file = open_rw(path, false)?;
    let file_len = file.metadata()?.len();
    let mut found = Scanned {
        path: path.to_path_buf(),
        file,
        len: 0,
        last: before,
        sparse: Vec::new(),
        loose: 0,
        runs: false,
        epochs: Vec::new(),
        torn: None,
        configs: Vec::new(),
        numbers: Default::default(),
        catalog: Vec::new(),
        groups: Default::default(),
    };
    // Read in chunks: a segment is up to 64 MiB and the node's memory
    // should not peak at that at every start. `buf` holds the file from
    // offset `buf_at`.
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_at = 0u64;
    let mut off = 0u64;
    while off < file_len {
        let rel = (off - buf_at) as usize;
        let decoded = decode_record(buf.get(rel..).unwrap_or(&[]));
        let buf_end = buf_at + buf.len() as u64;
        match decoded {
            Decoded::Entry(e, used) => {
                let want = found.last + 1;
                if e.seq != want {
                    return Err(corrupt(
                        path,
                        off,
                        &format!("expected seq {want}, found {}", e.seq),
                    ));
                }
                // A run holds every indexed entry within it.
                while first + found.sparse.len() as u64 * STRIDE <= e.last() {
                    found.sparse.push(off);
                }
                found.runs |= e.count > 1;
                found.loose += u64::from(e.is_stripped() && !e.run);
                if found.epochs.last().map(|(ep, _)| *ep) != Some(e.epoch) {
                    found.epochs.push((e.epoch, e.seq));
                }
                if let Some(members) = e.config() {
                    found.configs.push((e.seq, members));
                }
                if !e.is_control() {
                    let bytes = e.message.len() as u64;
                    found.numbers.note_message(e.log, e.number, e.seq, bytes);
                } else {
                    if e.key == Some(crate::replication::catalog::CATALOG_KEY) {
                        found
                            .catalog
                            .push((e.seq, bytes::Bytes::copy_from_slice(e.message)));
                    }
                    found.groups.note_entry(e.key, e.message);
                }
                found.last = e.last();
                off += used as u64;
            }
            Decoded::Incomplete if buf_end < file_len => {
                let need = record_need(buf.get(rel..).unwrap_or(&[]));
                refill(
                    &found.file,
                    off,
                    file_len,
                    RECOVERY_CHUNK.max(need),
                    &mut buf,
                )?;
                buf_at = off;
            }
            bad => {
                // The rare path: look at everything after the bad record to
                // tell a torn last write from damage.
                let mut rest = vec![0u8; (file_len - off) as usize];
                found.file.read_exact_at(&mut rest, off)?;
                let torn = is_last && (matches!(bad, Decoded::Incomplete) || torn_tail(&rest));
                if torn {
                    // A torn last write: the bad record is the end of the
                    // log. If an intact record of a later seq follows it,
                    // this is damage in the middle (a flipped length, say),
                    // and cutting would drop good records: refuse instead.
                    if let Some(at) = later_record(&rest, 1, found.last + 1) {
                        return Err(corrupt(
                            path,
                            off,
                            &format!(
                                "the record there is unreadable but an intact record follows at offset {}",
                                off + at as u64
                            ),
                        ));
                    }
                    found.torn = Some(file_len);
                    break;
                }
                return Err(match bad {
                    Decoded::Bad(what) => corrupt(path, off, what),
                    _ => corrupt(
                        path,
                        off,
                        "record runs past the end of a segment that is not the last",
                    ),
                });
            }
        }
    }
    found.len = off.min(file_len);
    Ok(found)
}

/// The offsets of the records of `file` from `pos` (where one starts) to
/// `end`, found by their length prefixes alone: for records already
/// checked. Read a chunk at a time; after a large record (a quarter of a
/// chunk or more), only the next header is read, so that a log of large
/// messages is not read whole for its headers.
pub(super) fn record_offsets(
    file: &File,
    path: &Path,
    mut pos: u64,
    end: u64,
) -> io::Result<Vec<u64>> {
    let mut offsets = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_at = 0u64;
    let mut large = false;
    while pos < end {
        if pos + HEADER as u64 > buf_at + buf.len() as u64 {
            let want = if large { HEADER as u64 } else { READ_CHUNK };
            refill(file, pos, end, want, &mut buf)?;
            buf_at = pos;
        }
        let len = decode_len(&buf[(pos - buf_at) as usize..])
            .filter(|len| pos + (HEADER + len) as u64 <= end)
            .ok_or_else(|| corrupt(path, pos, "record runs past the written end"))?;
        offsets.push(pos);
        pos += (HEADER + len) as u64;
        large = (HEADER + len) as u64 >= READ_CHUNK / 4;
    }
    Ok(offsets)
}

/// True if what follows a bad record is nothing or only zeros: a write cut
/// short by a crash, not damage in the middle of the log.
fn torn_tail(rest: &[u8]) -> bool {
    if rest.iter().all(|b| *b == 0) {
        return true;
    }
    match decode_len(rest) {
        // The bad record is the last thing written: only zeros (or nothing)
        // after it.
        Some(len) if len <= MAX_RECORD => rest
            .get(HEADER + len..)
            .is_none_or(|after| after.iter().all(|b| *b == 0)),
        _ => false,
    }
}

/// Offset of the first intact record at or after `from` whose sequence
/// number is at least `seq`, if any. The sequence number is checked before
/// the checksum, so random bytes are passed over cheaply.
fn later_record(data: &[u8], from: usize, seq: Seq) -> Option<usize> {
    (from..data.len().saturating_sub(HEADER + 16)).find(|&at| {
        let found = u64::from_le_bytes(
            data[at + HEADER + 8..at + HEADER + 16]
                .try_into()
                .expect("8 bytes"),
        );
        found >= seq
            && found < seq + (1 << 32)
            && matches!(decode_record(&data[at..]), Decoded::Entry(e, _) if e.seq == found)
    })
}
