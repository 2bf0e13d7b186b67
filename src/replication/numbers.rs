//! Message numbers: the last number each log has given, from which the
//! master numbers a log's next message.
//!
//! A message has two numbers ([`crate::entry::Entry`]): its position in the
//! replicated log, which control entries (epoch markers, configuration
//! entries) take too, and its number in its own log, which only that log's
//! messages take. The second is what clients see, so that a reader of a log
//! sees 1, 2, 3, ... and knows a gap means something is missing.
//!
//! The master gives a message the next number of its log, so every core
//! keeps each log's last number: the master as it numbers, a secondary as it
//! takes entries (it may be elected next). A cut of the log takes the
//! numbers of what it cuts back, so that the next message of that log is
//! given the first of them again: a core that cuts (a master's failed write
//! or sync, a secondary cut by its master) forgets its numbers, and the
//! runtime, which holds the log, reports them as the cut left them
//! (`StorageReport::Numbers`) right after; a master holds its appends until
//! then. A reset says the numbers at its base, which the secondary takes.

use std::collections::BTreeMap;

use crate::entry::{Entry, LogId, Seq};

/// Each log's last message number, if known, and its last number at the
/// log's base (what a secondary reset to start there is told). The default
/// is an empty log's: known, and no log has had a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbers {
    /// The last number of each log that has had a message; `None` while a
    /// cut's numbers are not yet reported.
    last: Option<BTreeMap<LogId, Seq>>,
    /// Each log's last number at or before the base (the entry before the
    /// first the log holds), for logs that had a message by then.
    at_base: Vec<(LogId, Seq)>,
}

impl Default for Numbers {
    fn default() -> Self {
        Numbers::known([], Vec::new())
    }
}

impl Numbers {
    /// Numbers as the log holds them: `(log, last number)` pairs, and the
    /// same at its base.
    pub fn known(
        pairs: impl IntoIterator<Item = (LogId, Seq)>,
        at_base: Vec<(LogId, Seq)>,
    ) -> Self {
        let mut n = Numbers {
            last: None,
            at_base,
        };
        n.set_last(pairs);
        n
    }

    /// Each log's last number is as reported (after a cut).
    pub fn set_last(&mut self, pairs: impl IntoIterator<Item = (LogId, Seq)>) {
        self.last = Some(pairs.into_iter().filter(|(_, n)| *n > 0).collect());
    }

    /// The numbers are not known until the runtime reports them (a cut).
    pub fn forget(&mut self) {
        self.last = None;
    }

    /// The log starts again after a base where its logs' last numbers
    /// were `at_base` (a reset): so they are now.
    pub fn reset(&mut self, at_base: Vec<(LogId, Seq)>) {
        self.set_last(at_base.iter().copied());
        self.at_base = at_base;
    }

    /// Retention moved the base: these were the last numbers there.
    pub fn compacted(&mut self, at_base: Vec<(LogId, Seq)>) {
        self.at_base = at_base;
    }

    /// Each log's last number at the base.
    pub fn at_base(&self) -> &[(LogId, Seq)] {
        &self.at_base
    }

    /// Whether they are known.
    pub fn is_known(&self) -> bool {
        self.last.is_some()
    }

    /// The last number of `log` (0 if it has had no message, or if the
    /// numbers are not known).
    pub fn last(&self, log: LogId) -> Seq {
        (self.last.as_ref()).map_or(0, |m| m.get(&log).copied().unwrap_or(0))
    }

    /// Gives `log`'s next number. Only while known (the master checks).
    pub fn assign(&mut self, log: LogId) -> Seq {
        let last = self.last.as_mut().expect("numbers are known");
        let n = last.entry(log).or_insert(0);
        *n += 1;
        *n
    }

    /// Takes an entry written to the log: a message sets its log's last
    /// number.
    pub fn note(&mut self, e: &Entry) {
        if let (Some(last), false) = (self.last.as_mut(), e.is_control()) {
            last.insert(e.log, e.number);
        }
    }

    /// `(log, last number)` of every log that has had a message.
    pub fn pairs(&self) -> Vec<(LogId, Seq)> {
        (self.last.iter().flatten())
            .map(|(l, n)| (*l, *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::DEFAULT_LOG;

    fn msg(seq: Seq, log: LogId, number: Seq) -> Entry {
        Entry::message((1, seq), (log, number), None, bytes::Bytes::new())
    }

    #[test]
    fn a_log_numbers_its_own_messages_and_control_entries_take_none() {
        let mut n = Numbers::known([(DEFAULT_LOG, 4)], vec![]);
        assert_eq!(n.assign(DEFAULT_LOG), 5);
        assert_eq!(n.assign(7), 1);
        assert_eq!(n.assign(7), 2);
        n.note(&Entry::marker(2, 10));
        n.note(&msg(11, 9, 3));
        assert_eq!(n.pairs(), vec![(DEFAULT_LOG, 5), (7, 2), (9, 3)]);
        assert_eq!(n.last(8), 0);
    }

    #[test]
    fn unknown_numbers_say_so() {
        let mut n = Numbers::known([(0, 3)], vec![(0, 1)]);
        n.forget();
        assert!(!n.is_known());
        n.note(&msg(1, 0, 1));
        assert_eq!((n.last(0), n.pairs()), (0, vec![]));
        n.set_last([(0, 2)]);
        assert_eq!((n.last(0), n.at_base()), (2, &[(0, 1)][..]));
        n.reset(vec![(4, 9)]);
        assert_eq!((n.pairs(), n.at_base()), (vec![(4, 9)], &[(4, 9)][..]));
    }
}
