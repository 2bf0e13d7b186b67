//! Compaction: an old segment rewritten without the messages of deleted
//! logs, and those a log's own retention trimmed, so that deleting a log
//! or trimming it frees its disk space.
//!
//! Logs share segments, so a deleted log's messages sit between other
//! logs' entries. Compaction copies a segment record by record into a new
//! file, each kept record as it is stored, and the deleted log's messages
//! (and stripped entries replication brought one record each) as *runs*:
//! one 36-byte record for each stretch of consecutive ones of an epoch
//! (`record::encode_run`). Every sequence number still reads, as a
//! stripped entry (`Entry::stripped`), so replication, elections, the
//! commit mark and retention count as before.
//!
//! Only a segment no longer written to and wholly committed is compacted:
//! what it holds can never be cut. The copy is made without the log's lock
//! (such a segment never changes), then synced and renamed over the old
//! file under it: a crash leaves the old file or the new one, and a
//! leftover copy (`*.compact`) is removed at the next start.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::{open_rw, segment_name};
use super::record::{decode_record, encode_run, record_need, refill, Decoded, MAX_RUN, READ_CHUNK};
use super::recovery::Scanned;
use crate::entry::{Epoch, LogId, Seq};

/// The ending of a segment's copy while it is being made.
const SUFFIX: &str = ".compact";

/// Bytes written to the copy at once.
const WRITE_CHUNK: usize = 1 << 20;

/// A segment to compact, as the log held it when chosen.
#[derive(Debug)]
pub struct Job {
    /// Its first sequence number.
    pub(super) first: Seq,
    /// Its last.
    pub(super) last: Seq,
    /// Its length.
    pub(super) len: u64,
    /// The file, open (it is never written again).
    pub(super) file: Arc<File>,
    /// The data directory.
    pub(super) dir: PathBuf,
    /// The log's count of cuts and resets when it was chosen: the copy is
    /// put in place only if there was none since.
    pub(super) generation: u64,
}

/// A segment's compacted copy, synced, to be put in its place.
#[derive(Debug)]
pub struct Compacted {
    /// The segment's first sequence number.
    pub(super) first: Seq,
    /// Its length when the copy was made.
    pub(super) len_before: u64,
    /// The log's count of cuts and resets then.
    pub(super) generation: u64,
    /// The copy, read back as recovery reads a segment.
    pub(super) scanned: Scanned,
}

/// Removes copies a crash left in `dir`.
pub(super) fn remove_leftovers(dir: &Path) -> io::Result<()> {
    for item in fs::read_dir(dir)? {
        let item = item?;
        if item.file_name().to_string_lossy().ends_with(SUFFIX) {
            fs::remove_file(item.path())?;
        }
    }
    Ok(())
}

/// Where the copy of the segment starting at `first` is made.
pub(super) fn copy_path(dir: &Path, first: Seq) -> PathBuf {
    dir.join(format!("{}{SUFFIX}", segment_name(first)))
}

impl Job {
    /// Makes the copy: every record of the segment, the messages for which
    /// `gone(log, number)` is true and stripped entries joined into runs.
    pub fn run(self, gone: &dyn Fn(LogId, Seq) -> bool) -> io::Result<Compacted> {
        let path = copy_path(&self.dir, self.first);
        let made = self.copy(&path, gone).and_then(|()| {
            let scanned = super::recovery::scan_copy(&path, self.first)?;
            if scanned.last != self.last {
                return Err(io::Error::other(format!(
                    "the compacted copy of segment {} ends at seq {}, not {}",
                    self.first, scanned.last, self.last
                )));
            }
            Ok(scanned)
        });
        match made {
            Ok(scanned) => Ok(Compacted {
                first: self.first,
                len_before: self.len,
                generation: self.generation,
                scanned,
            }),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(e)
            }
        }
    }

    fn copy(&self, path: &Path, gone: &dyn Fn(LogId, Seq) -> bool) -> io::Result<()> {
        let mut out = Copy {
            file: open_rw(path, true)?,
            buf: Vec::with_capacity(WRITE_CHUNK),
            run: None,
        };
        out.file.set_len(0)?;
        // The copy is as old as the segment: retention by age goes by it.
        let modified = self.file.metadata()?.modified()?;
        let mut buf: Vec<u8> = Vec::new();
        let (mut buf_at, mut pos) = (0u64, 0u64);
        while pos < self.len {
            let rel = (pos - buf_at) as usize;
            match decode_record(buf.get(rel..).unwrap_or(&[])) {
                Decoded::Entry(r, used) => {
                    if r.is_stripped() || (!r.is_control() && gone(r.log, r.number)) {
                        out.strip(r.epoch, r.seq, r.count)?;
                    } else {
                        out.keep(&buf[rel..rel + used])?;
                    }
                    pos += used as u64;
                }
                Decoded::Incomplete if buf_at + (buf.len() as u64) < self.len => {
                    let need = record_need(buf.get(rel..).unwrap_or(&[]));
                    refill(&self.file, pos, self.len, READ_CHUNK.max(need), &mut buf)?;
                    buf_at = pos;
                }
                Decoded::Incomplete | Decoded::Bad(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "segment {} cannot be read at byte offset {pos} to compact it",
                            self.first
                        ),
                    ))
                }
            }
        }
        out.finish(modified)
    }

    /// The data directory, synced once the copy is in place.
    pub fn dir(&self) -> PathBuf {
        self.dir.clone()
    }
}

/// Makes a copy put in place durable: its rename in `dir`.
pub fn settle(dir: &Path) -> io::Result<()> {
    super::files::sync_dir(dir)
}

/// The copy being written: records kept, and the run being joined.
struct Copy {
    file: File,
    buf: Vec<u8>,
    /// `(epoch, first seq, count)` of the stripped entries not yet written.
    run: Option<(Epoch, Seq, u64)>,
}

impl Copy {
    fn strip(&mut self, epoch: Epoch, seq: Seq, count: u64) -> io::Result<()> {
        match &mut self.run {
            Some((e, first, n)) if *e == epoch && *first + *n == seq && *n + count <= MAX_RUN => {
                *n += count
            }
            _ => {
                self.end_run()?;
                self.run = Some((epoch, seq, count));
            }
        }
        Ok(())
    }

    fn keep(&mut self, record: &[u8]) -> io::Result<()> {
        self.end_run()?;
        self.buf.extend_from_slice(record);
        self.flush_full()
    }

    fn end_run(&mut self) -> io::Result<()> {
        if let Some((epoch, seq, count)) = self.run.take() {
            encode_run(epoch, seq, count, &mut self.buf);
        }
        self.flush_full()
    }

    fn flush_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= WRITE_CHUNK {
            self.file.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self, modified: std::time::SystemTime) -> io::Result<()> {
        self.end_run()?;
        self.file.write_all(&self.buf)?;
        self.file.set_modified(modified)?;
        self.file.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::super::disk::DiskLog;
    use super::*;
    use crate::entry::Entry;

    /// Messages of 100 bytes of logs 0, 3 and 5 in turn, a marker at every
    /// tenth seq, a new epoch every 25, and one stripped entry in every 40
    /// (as replication brings them).
    fn entries(n: Seq) -> Vec<Entry> {
        let mut last = [0; 3];
        (1..=n)
            .map(|seq| {
                let epoch = 1 + seq / 25;
                if seq % 10 == 1 {
                    return Entry::marker(epoch, seq);
                }
                if seq % 40 == 7 {
                    return Entry::stripped(epoch, seq);
                }
                let i = (seq % 3) as usize;
                last[i] += 1;
                let message = format!("{seq:0>100}").into();
                Entry::message((epoch, seq), ([0, 3, 5][i], last[i]), None, message)
            })
            .collect()
    }

    fn open(dir: &Path) -> DiskLog {
        let mut log = DiskLog::open(dir, 4096).unwrap();
        // Few exact offsets: lookups go through the sparse index.
        log.set_recent_cap(5);
        log
    }

    fn compact_all(log: &mut DiskLog, gone: &dyn Fn(LogId, Seq) -> bool) -> (usize, u64) {
        let (mut segments, mut freed) = (0, 0);
        while let Some(job) = log.compaction_job(log.last().seq, gone) {
            freed += log.install(job.run(gone).unwrap()).unwrap();
            segments += 1;
            assert!(segments < 1000, "compaction never ends");
        }
        (segments, freed)
    }

    /// What a reader sees once log 3 is deleted and compacted: every entry
    /// but log 3's messages as written, and those stripped.
    fn expected(written: &[Entry]) -> Vec<Entry> {
        (written.iter())
            .map(|e| match e.log == 3 && !e.is_control() {
                true => Entry::stripped(e.epoch, e.seq),
                false => e.clone(),
            })
            .collect()
    }

    fn check_reads(log: &DiskLog, want: &[Entry]) {
        let n = want.len() as Seq;
        assert_eq!(&log.read(1, n, usize::MAX, usize::MAX).unwrap(), want);
        // From every seq (into the middle of a run too), one and a few.
        for seq in 1..=n {
            let one = log.read(seq, seq, 1, usize::MAX).unwrap();
            assert_eq!(one, want[seq as usize - 1..seq as usize], "seq {seq}");
            let few = log.read(seq, n, 3, usize::MAX).unwrap();
            let end = (seq as usize + 2).min(n as usize);
            assert_eq!(few, want[seq as usize - 1..end], "from seq {seq}");
        }
        let of = |l: LogId| -> Vec<Entry> {
            (want.iter())
                .filter(|e| e.log == l && !e.is_control())
                .cloned()
                .collect()
        };
        for l in [0, 3, 5] {
            assert_eq!(
                log.read_messages(l, 1, n, (usize::MAX, usize::MAX))
                    .unwrap(),
                of(l)
            );
        }
        for l in [0, 5] {
            assert_eq!(
                log.read_messages(l, 9, n, (2, usize::MAX)).unwrap(),
                of(l)[8..10]
            );
        }
    }

    #[test]
    fn a_deleted_logs_messages_are_freed_and_every_seq_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let written = entries(600);
        let mut log = open(dir.path());
        for chunk in written.chunks(7) {
            log.append(chunk).unwrap();
        }
        let before = log.bytes();
        let log3: u64 = log.log_bytes(3);
        let numbers = log.numbers();
        assert!(log3 > 15_000, "{log3}");
        // Nothing to do while no log is gone but for the loose stripped
        // entries, which are joined into runs.
        let (n, joined) = compact_all(&mut log, &|_, _| false);
        assert!(n > 0 && joined > 0, "{n} segments, {joined} bytes");
        assert_eq!(log.read(1, 600, usize::MAX, usize::MAX).unwrap(), written);

        let gone = |l: LogId, _| l == 3;
        let (n, freed) = compact_all(&mut log, &gone);
        assert!(n > 5, "{n} segments compacted");
        // Every message of log 3 but those in the segment being written is
        // gone, each leaving at most a run's bytes.
        let last_first = log.segments().unwrap().last().unwrap().first;
        let kept3: u64 = (written.iter())
            .filter(|e| e.log == 3 && !e.is_control() && e.seq >= last_first)
            .map(|e| e.message.len() as u64)
            .sum();
        assert_eq!(log.log_bytes(3), kept3);
        assert!(freed > (log3 - kept3) * 9 / 10, "freed {freed} of {log3}");
        assert_eq!(log.bytes(), before - joined - freed);
        let want: Vec<Entry> = (expected(&written).into_iter().zip(&written))
            .map(|(e, w)| if w.seq >= last_first { w.clone() } else { e })
            .map(|e| {
                if e.is_stripped() {
                    Entry::stripped(e.epoch, e.seq)
                } else {
                    e
                }
            })
            .collect();
        check_reads(&log, &want);
        assert_eq!(log.numbers()[..1], numbers[..1]);
        assert_eq!(log.numbers()[2], numbers[2]);
        // Nothing left to compact; a restart reads the same.
        assert!(log.compaction_job(600, &gone).is_none());
        drop(log);
        let log = open(dir.path());
        check_reads(&log, &want);
        assert_eq!(log.epochs(), {
            let mut e = Vec::new();
            for w in &written {
                if e.last().map(|(ep, _)| *ep) != Some(w.epoch) {
                    e.push((w.epoch, w.seq));
                }
            }
            e
        });
    }

    #[test]
    fn a_copy_of_a_segment_changed_meanwhile_is_dropped_and_a_crash_leaves_none() {
        let dir = tempfile::tempdir().unwrap();
        let written = entries(300);
        let mut log = open(dir.path());
        log.append(&written).unwrap();
        let gone = |l: LogId, _| l == 3;
        let job = log.compaction_job(300, &gone).unwrap();
        let first = job.first;
        // Only what is committed is compacted.
        assert!(log.compaction_job(job.last - 1, &gone).is_none());
        let copy = job.run(&gone).unwrap();
        assert!(copy_path(dir.path(), first).exists());
        // A reset empties the log meanwhile: the copy is not used.
        let nothing = bytes::Bytes::new();
        let base = crate::entry::Position {
            epoch: 20,
            seq: 500,
        };
        log.reset(base, &[(20, 500)], None, (&[], &nothing, &nothing))
            .unwrap();
        assert_eq!(log.install(copy).unwrap(), 0);
        assert!(!copy_path(dir.path(), first).exists());
        // A copy left by a crash is removed at the next start.
        drop(log);
        let log = open(dir.path());
        fs::write(copy_path(dir.path(), 1), b"half a copy").unwrap();
        drop(log);
        let _log = open(dir.path());
        assert!(!copy_path(dir.path(), 1).exists());
    }

    #[test]
    fn a_trimmed_logs_first_messages_go_and_a_cut_inside_a_run_keeps_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let written = entries(600);
        let mut log = open(dir.path());
        log.append(&written).unwrap();
        // Log 5's messages up to number 100 go, and all of log 3's.
        let gone = |l: LogId, n: Seq| l == 3 || (l == 5 && n <= 100);
        compact_all(&mut log, &gone);
        let last_first = log.segments().unwrap().last().unwrap().first;
        let want: Vec<Entry> = (written.iter())
            .map(
                |e| match e.is_stripped() || (e.seq < last_first && gone(e.log, e.number)) {
                    true => Entry::stripped(e.epoch, e.seq),
                    false => e.clone(),
                },
            )
            .collect();
        assert_eq!(log.read(1, 600, usize::MAX, usize::MAX).unwrap(), want);
        let five = log.read_messages(5, 1, 600, (1, usize::MAX)).unwrap();
        assert_eq!(five[0].number, 101);
        assert_eq!(log.first_number(5), 101);
        assert_eq!(log.first_number(0), 1);
        // A cut inside a run keeps the run's start, through a restart.
        let run = (2..last_first)
            .find(|&s| want[s as usize - 2].is_stripped() && want[s as usize - 1].is_stripped())
            .expect("a run of two");
        log.truncate_after(run - 1).unwrap();
        assert_eq!(log.last().seq, run - 1);
        assert_eq!(
            log.read(1, run - 1, usize::MAX, usize::MAX).unwrap(),
            want[..run as usize - 1]
        );
        log.append(&written[run as usize - 1..]).unwrap();
        drop(log);
        let log = open(dir.path());
        let mut again = want[..run as usize - 1].to_vec();
        again.extend_from_slice(&written[run as usize - 1..]);
        assert_eq!(log.read(1, 600, usize::MAX, usize::MAX).unwrap(), again);
    }
}
