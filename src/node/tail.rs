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

use std::collections::{BTreeMap, VecDeque};

use crate::entry::{Entry, LogId, Seq};
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
    /// Each log's last message number before the first entry held, so
    /// that a reader of one log knows whether the tail holds everything it
    /// wants from a number on; `None` until the runtime says
    /// ([`Tail::restart`]).
    before: Option<BTreeMap<LogId, Seq>>,
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
            self.entries.clear();
            self.bytes = 0;
            self.before = None;
        }
        for e in written.drain(..) {
            self.bytes += entry_cost(&e);
            self.entries.push_back(e);
        }
        while self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.forget(&e);
        }
    }

    /// The index just after the entry at `seq` (or after the last held,
    /// or 0 if `seq` is before the first): entries hold consecutive seqs.
    fn index_after(&self, seq: Seq) -> usize {
        let Some(first) = self.entries.front().map(|e| e.seq) else {
            return 0;
        };
        (seq.saturating_add(1).saturating_sub(first) as usize).min(self.entries.len())
    }

    /// An entry leaves the front.
    fn forget(&mut self, e: &Entry) {
        self.bytes -= entry_cost(e);
        if let (Some(before), false) = (self.before.as_mut(), e.is_control()) {
            before.insert(e.log, e.number);
        }
    }

    /// Up to `max` messages of `log` from number `from` (at most
    /// `max_bytes` by their cost, at least one), none after sequence number
    /// `upto`, if the tail holds every message of that log from `from` on
    /// that the log does; `None` if it may not (read the log instead).
    pub(crate) fn read_messages(
        &self,
        log: LogId,
        from: Seq,
        upto: Seq,
        (max, max_bytes): (usize, usize),
    ) -> Option<Vec<Entry>> {
        let before = self.before.as_ref()?.get(&log).copied().unwrap_or(0);
        if from <= before {
            return None;
        }
        // A follower at the end wants what comes after the last message
        // within the mark: look back from the mark (entries are held by
        // consecutive seqs, so it is found by its index) for the last one
        // it has.
        let start = (self.entries.range(..self.index_after(upto)).rev())
            .position(|e| e.log == log && !e.is_control() && e.number < from)
            .map_or(0, |back| self.index_after(upto) - back);
        let held = self.entries.range(start..);
        Some(take_batch(
            held.take_while(|e| e.seq <= upto)
                .filter(|e| e.log == log && !e.is_control()),
            max,
            max_bytes,
        ))
    }

    /// The last message number of `log` at or before sequence number
    /// `seq`, if the tail knows it (`seq` is not before its first entry).
    pub(crate) fn number_at(&self, log: LogId, seq: Seq) -> Option<Seq> {
        let before = self.before.as_ref()?;
        let first = self.entries.front().map_or(Seq::MAX, |e| e.seq);
        if seq + 1 < first && !self.entries.is_empty() {
            return None;
        }
        let held = (self.entries.range(..self.index_after(seq)).rev())
            .find(|e| e.log == log && !e.is_control())
            .map(|e| e.number);
        held.or_else(|| Some(before.get(&log).copied().unwrap_or(0)))
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
            self.forget(&e);
        }
    }

    /// Drops everything (the log was reset, or a write failed); the log
    /// then ends with `numbers`, each log's last message number.
    pub(crate) fn restart(&mut self, numbers: impl IntoIterator<Item = (LogId, Seq)>) {
        self.entries.clear();
        self.bytes = 0;
        self.before = Some(numbers.into_iter().collect());
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
        t.restart([]);
        assert_eq!(seqs(t.read(100, 100, 100, usize::MAX)), None);
    }

    /// Message `number` of `log` at `seq`.
    fn m(seq: Seq, log: LogId, number: Seq) -> Entry {
        Entry::message((1, seq), (log, number), None, "m".into())
    }

    fn numbers(v: Option<Vec<Entry>>) -> Option<Vec<Seq>> {
        v.map(|v| v.iter().map(|e| e.number).collect())
    }

    #[test]
    fn serves_a_log_from_a_number_only_when_it_holds_everything_from_there() {
        let mut t = Tail::default();
        let all = (usize::MAX, usize::MAX);
        // Unknown numbers before the tail: nothing is served from it.
        t.push(&mut vec![m(1, 0, 1)]);
        assert_eq!(t.read_messages(0, 1, 10, all), None);
        assert_eq!(t.number_at(0, 1), None);
        // Logs 0 and 5 after 20 entries: log 0 had 12, log 5 had 3.
        t.restart([(0, 12), (5, 3)]);
        t.push(&mut vec![
            m(21, 0, 13),
            Entry::marker(2, 22),
            m(23, 5, 4),
            m(24, 0, 14),
            m(25, 0, 15),
        ]);
        assert_eq!(
            numbers(t.read_messages(0, 13, 25, all)),
            Some(vec![13, 14, 15])
        );
        assert_eq!(numbers(t.read_messages(0, 14, 24, all)), Some(vec![14]));
        assert_eq!(numbers(t.read_messages(5, 4, 25, all)), Some(vec![4]));
        // Past the end (a follower): nothing yet, from the tail.
        assert_eq!(numbers(t.read_messages(0, 16, 25, all)), Some(vec![]));
        assert_eq!(numbers(t.read_messages(9, 1, 25, all)), Some(vec![]));
        // Before the tail: read the log.
        assert_eq!(t.read_messages(0, 12, 25, all), None);
        // The last number within a mark.
        assert_eq!(t.number_at(0, 25), Some(15));
        assert_eq!(t.number_at(0, 23), Some(13));
        assert_eq!(t.number_at(5, 22), Some(3));
        assert_eq!(t.number_at(0, 20), Some(12), "just before the tail");
        assert_eq!(t.number_at(0, 19), None);
        assert_eq!(t.number_at(9, 25), Some(0));
        // What leaves the front is remembered as before it.
        t.drop_through(23);
        assert_eq!(t.read_messages(5, 4, 25, all), None);
        assert_eq!(numbers(t.read_messages(5, 5, 25, all)), Some(vec![]));
        assert_eq!(t.number_at(5, 25), Some(4));
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
