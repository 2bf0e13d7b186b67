//! Which message numbers of which log each segment holds, and each log's
//! last number at the base: how the log on disk knows every log's last
//! number after a cut, a reset or retention (see
//! `crate::replication::numbers` for why numbers are separate from
//! sequence numbers).
//!
//! A segment keeps, for each log with a message in it, the first and last
//! number it holds: a few bytes per log and segment, whatever the number of
//! messages. The base's numbers are recorded in the `base.numbers` file
//! when retention deletes segments or a reset empties the log, since the
//! segments that said them are gone.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::entry::{Entry, LogId, Seq};

/// Messages of a log between two marks: a segment remembers where every
/// this many messages of each log are, so that finding a message by its
/// number reads at most this many of that log's messages.
pub(super) const MARK_EVERY: u64 = 128;

/// One log's messages in one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LogRange {
    /// The first number held.
    pub(super) first: Seq,
    /// The last number held.
    pub(super) last: Seq,
    /// `(number, seq)` of the first message held and of one at least every
    /// [`MARK_EVERY`] numbers after it, in order.
    pub(super) marks: Vec<(Seq, Seq)>,
    /// The bytes of the messages held.
    pub(super) bytes: u64,
}

impl LogRange {
    /// Where to start reading for message `number` (held here): the seq of
    /// the last mark at or before it.
    pub(super) fn start_for(&self, number: Seq) -> Seq {
        let i = self.marks.partition_point(|(n, _)| *n <= number);
        self.marks[i.saturating_sub(1)].1
    }

    /// Where to start reading for the last message at or before `seq`:
    /// the last mark at or before it, if there is one.
    pub(super) fn start_before(&self, seq: Seq) -> Option<(Seq, Seq)> {
        let i = self.marks.partition_point(|(_, s)| *s <= seq);
        i.checked_sub(1).map(|i| self.marks[i])
    }
}

/// The numbers of each log's messages in one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SegmentNumbers {
    /// Log -> its messages here.
    logs: BTreeMap<LogId, LogRange>,
}

impl SegmentNumbers {
    /// An entry written to (or found in) the segment, in order.
    pub(super) fn note(&mut self, e: &Entry) {
        if !e.is_control() {
            self.note_message(e.log, e.number, e.seq, e.message.len() as u64);
        }
    }

    /// Message `number` of `log`, of `bytes` bytes, at `seq`, in order.
    pub(super) fn note_message(&mut self, log: LogId, number: Seq, seq: Seq, bytes: u64) {
        let r = self.logs.entry(log).or_insert_with(|| LogRange {
            first: number,
            last: number,
            marks: Vec::new(),
            bytes: 0,
        });
        r.last = number;
        r.bytes += bytes;
        if r.marks.last().is_none_or(|(n, _)| number >= n + MARK_EVERY) {
            r.marks.push((number, seq));
        }
    }

    /// The segment was cut: `removed` are the messages cut from it (its
    /// last ones), whose numbers it no longer holds.
    pub(super) fn cut(&mut self, removed: &[Entry]) {
        for e in removed.iter().filter(|e| !e.is_control()) {
            if let Some(r) = self.logs.get_mut(&e.log) {
                if e.number <= r.first {
                    self.logs.remove(&e.log);
                } else if e.number <= r.last {
                    r.last = e.number - 1;
                    r.marks.retain(|(n, _)| *n < e.number);
                    r.bytes = r.bytes.saturating_sub(e.message.len() as u64);
                }
            }
        }
    }

    /// `log`'s messages here, if it has any.
    pub(super) fn range(&self, log: LogId) -> Option<&LogRange> {
        self.logs.get(&log)
    }

    /// Each log's last number in the segment.
    pub(super) fn lasts(&self) -> impl Iterator<Item = (LogId, Seq)> + '_ {
        self.logs.iter().map(|(log, r)| (*log, r.last))
    }
}

/// Each log's last number: `at_base`, then what each segment, oldest
/// first, holds after it.
pub(super) fn last_numbers<'a>(
    at_base: &[(LogId, Seq)],
    segments: impl Iterator<Item = &'a SegmentNumbers>,
) -> Vec<(LogId, Seq)> {
    let mut last: BTreeMap<LogId, Seq> = at_base.iter().copied().collect();
    for s in segments {
        last.extend(s.lasts());
    }
    last.into_iter().collect()
}

/// The `base.numbers` file: a `LOG NUMBER` line for each log that had a
/// message at or before the base. No file: none had.
pub(super) fn read_base_numbers(dir: &Path) -> io::Result<Vec<(LogId, Seq)>> {
    let path = dir.join("base.numbers");
    let text = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let parse = |line: &str| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(log), Some(n), None) => Some((log.parse().ok()?, n.parse().ok()?)),
            _ => None,
        }
    };
    text.lines()
        .map(|line| {
            parse(line).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} does not hold 'LOG NUMBER' lines", path.display()),
                )
            })
        })
        .collect()
}

/// Records each log's last number at the base: a new file, synced, renamed
/// over the old one (the directory is synced by the caller's next step).
pub(super) fn write_base_numbers(dir: &Path, numbers: &[(LogId, Seq)]) -> io::Result<()> {
    let text: String = numbers.iter().map(|(l, n)| format!("{l} {n}\n")).collect();
    super::files::replace_file(dir, "base.numbers", &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_bound_what_is_read_to_find_a_message() {
        let mut s = SegmentNumbers::default();
        // Log 1's messages at every third seq from 1000.
        for n in 1..=1000 {
            s.note_message(1, n, 1000 + 3 * n, 1);
        }
        let r = s.range(1).unwrap();
        assert_eq!(r.marks.len(), 8);
        for n in [1, 127, 128, 129, 500, 1000] {
            let start = r.start_for(n);
            assert!(start <= 1000 + 3 * n, "{n}: {start}");
            assert!(1000 + 3 * n - start < 3 * MARK_EVERY, "{n}: {start}");
        }
        assert_eq!(r.start_before(1002), None);
        assert_eq!(r.start_before(1003), Some((1, 1003)));
        assert_eq!(r.start_before(5000), Some((897, 1000 + 3 * 897)));
    }

    fn msg(seq: Seq, log: LogId, number: Seq) -> Entry {
        Entry::message((1, seq), (log, number), None, bytes::Bytes::new())
    }

    #[test]
    fn a_segment_knows_each_logs_numbers_through_cuts() {
        let mut s = SegmentNumbers::default();
        let entries = [msg(1, 0, 7), msg(2, 3, 1), msg(4, 0, 8), msg(5, 3, 2)];
        s.note(&Entry::marker(1, 3));
        entries.iter().for_each(|e| s.note(e));
        assert_eq!(s.lasts().collect::<Vec<_>>(), vec![(0, 8), (3, 2)]);
        s.cut(&entries[2..]);
        assert_eq!(s.lasts().collect::<Vec<_>>(), vec![(0, 7), (3, 1)]);
        s.cut(&entries[1..2]);
        assert_eq!(s.lasts().collect::<Vec<_>>(), vec![(0, 7)]);
        let mut later = SegmentNumbers::default();
        (1..=4).for_each(|n| later.note_message(3, n, 100 + n, 1));
        assert_eq!(
            last_numbers(&[(0, 2), (9, 9)], [&s, &later].into_iter()),
            vec![(0, 7), (3, 4), (9, 9)]
        );
    }

    #[test]
    fn the_base_numbers_are_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_base_numbers(dir.path()).unwrap(), vec![]);
        write_base_numbers(dir.path(), &[(0, 12), (4, 1)]).unwrap();
        assert_eq!(
            read_base_numbers(dir.path()).unwrap(),
            vec![(0, 12), (4, 1)]
        );
        std::fs::write(dir.path().join("base.numbers"), "0 x\n").unwrap();
        assert!(read_base_numbers(dir.path()).is_err());
    }
}
