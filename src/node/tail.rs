//! The newest entries written to the log, kept in memory.
//!
//! A master sends every entry to its secondaries right after writing it,
//! and readers that follow the log want it as soon as it is visible.
//! Reading each round back from the log (a read of the page cache, a CRC
//! check and a copy of every message) once per secondary and per reader is
//! work for nothing: the entries were in memory a moment before. The tail
//! keeps them on every node, messages shared (`Bytes`), bounded in count
//! and bytes; a secondary or reader further behind is served from the log
//! as before.
//!
//! It follows the log: what a cut removes, a reset empties, or retention
//! deletes is dropped from the tail too, so it never holds an entry the
//! log does not.

use std::collections::VecDeque;

use crate::entry::{Entry, Seq};
use crate::storage::{entry_cost, take_batch};

/// Most entries kept.
const MAX_ENTRIES: usize = 4096;

/// Most bytes kept, counted as in a frame.
const MAX_BYTES: usize = 1024 * 1024;

/// Consecutive entries, the newest written.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// In sequence order, without gaps.
    entries: VecDeque<Entry>,
    /// Their cost ([`entry_cost`]), summed.
    bytes: usize,
}

impl Tail {
    /// Takes the entries just written (leaving `written` empty). Entries
    /// that do not follow the tail replace it.
    pub(crate) fn push(&mut self, written: &mut Vec<Entry>) {
        let follows = match (self.entries.back(), written.first()) {
            (Some(last), Some(first)) => first.seq == last.seq + 1,
            _ => true,
        };
        if !follows {
            self.clear();
        }
        for e in written.drain(..) {
            self.bytes += entry_cost(&e);
            self.entries.push_back(e);
        }
        while self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= entry_cost(&e);
        }
    }

    /// Entries `from..=upto`, at most `max` of them and `max_bytes` by
    /// their cost (at least one), if the tail holds `from`; `None` if it
    /// does not (read the log instead).
    pub(crate) fn read(
        &self,
        from: Seq,
        upto: Seq,
        max: usize,
        max_bytes: usize,
    ) -> Option<Vec<Entry>> {
        let first = self.entries.front()?.seq;
        if from < first || from > self.entries.back()?.seq {
            return None;
        }
        let held = self.entries.range((from - first) as usize..);
        Some(take_batch(
            held.take_while(|e| e.seq <= upto),
            max,
            max_bytes,
        ))
    }

    /// Drops the entries after `seq` (a cut of the log).
    pub(crate) fn truncate_after(&mut self, seq: Seq) {
        while self.entries.back().is_some_and(|e| e.seq > seq) {
            let e = self.entries.pop_back().expect("checked");
            self.bytes -= entry_cost(&e);
        }
    }

    /// Drops the entries up to `seq` (retention deleted them).
    pub(crate) fn drop_through(&mut self, seq: Seq) {
        while self.entries.front().is_some_and(|e| e.seq <= seq) {
            let e = self.entries.pop_front().expect("checked");
            self.bytes -= entry_cost(&e);
        }
    }

    /// Drops everything (the log was reset).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(seq: Seq, len: usize) -> Entry {
        Entry {
            epoch: 1,
            seq,
            log: crate::entry::DEFAULT_LOG,
            number: seq,
            key: None,
            message: vec![b'x'; len].into(),
        }
    }

    fn seqs(v: Option<Vec<Entry>>) -> Option<Vec<Seq>> {
        v.map(|v| v.iter().map(|e| e.seq).collect())
    }

    #[test]
    fn reads_what_it_holds_within_the_limits_and_nothing_else() {
        let mut t = Tail::default();
        t.push(&mut (1..=10).map(|s| e(s, 10)).collect());
        assert_eq!(seqs(t.read(3, 5, 100, usize::MAX)), Some(vec![3, 4, 5]));
        assert_eq!(seqs(t.read(8, 20, 100, usize::MAX)), Some(vec![8, 9, 10]));
        assert_eq!(seqs(t.read(1, 10, 2, usize::MAX)), Some(vec![1, 2]));
        // Bytes: at least one entry, then only what fits.
        let one = entry_cost(&e(1, 10));
        assert_eq!(seqs(t.read(1, 10, 100, 1)), Some(vec![1]));
        assert_eq!(seqs(t.read(1, 10, 100, 2 * one)), Some(vec![1, 2]));
        assert_eq!(seqs(t.read(11, 12, 100, usize::MAX)), None);
        assert_eq!(seqs(t.read(0, 3, 100, usize::MAX)), None);
    }

    #[test]
    fn follows_the_log_through_cuts_resets_and_retention() {
        let mut t = Tail::default();
        t.push(&mut (1..=10).map(|s| e(s, 10)).collect());
        t.truncate_after(6);
        assert_eq!(seqs(t.read(7, 7, 100, usize::MAX)), None);
        // Entries rewritten after the cut follow it.
        t.push(&mut vec![e(7, 3)]);
        assert_eq!(t.read(7, 7, 1, usize::MAX).unwrap()[0].message.len(), 3);
        t.drop_through(4);
        assert_eq!(seqs(t.read(4, 5, 100, usize::MAX)), None);
        assert_eq!(seqs(t.read(5, 9, 100, usize::MAX)), Some(vec![5, 6, 7]));
        // Entries that do not follow (a reset) replace the tail.
        t.push(&mut vec![e(100, 1)]);
        assert_eq!(seqs(t.read(5, 5, 100, usize::MAX)), None);
        assert_eq!(seqs(t.read(100, 100, 100, usize::MAX)), Some(vec![100]));
        t.clear();
        assert_eq!(seqs(t.read(100, 100, 100, usize::MAX)), None);
    }

    #[test]
    fn stays_within_its_bounds() {
        let mut t = Tail::default();
        for s in 0..(MAX_ENTRIES as u64 + 10) {
            t.push(&mut vec![e(s + 1, 1)]);
        }
        assert_eq!(t.entries.len(), MAX_ENTRIES);
        assert_eq!(t.entries.front().unwrap().seq, 11);
        let big = MAX_BYTES / 4;
        t.push(
            &mut (MAX_ENTRIES as u64 + 11..MAX_ENTRIES as u64 + 16)
                .map(|s| e(s, big))
                .collect(),
        );
        assert!(t.bytes <= MAX_BYTES, "{}", t.bytes);
        assert_eq!(t.bytes, t.entries.iter().map(entry_cost).sum::<usize>());
    }
}
