//! The dedup window: which request key names which of the last `window`
//! entries, so that a retried append gets its original sequence number
//! back instead of a second entry.
//!
//! Keys are remembered for the newest `--dedup-window` entries only (as
//! Kafka remembers producer ids for a while): a retry that comes after
//! that many newer entries may append a second copy.
//!
//! Memory is what matters here: a key is up to 256 bytes and the CLI sends
//! a 32-byte one with every append, so keeping the keys themselves would
//! cost about 100 bytes an entry. Instead each entry gets 128 bits: a
//! 96-bit fingerprint of its key (two independently and randomly keyed
//! SipHashes, so no client can craft a collision without the node's secret
//! keys) and a 32-bit digest (CRC32C) of its message, kept in a ring indexed by
//! sequence number, with an open-addressing table of 4-byte slots pointing
//! into it, and the entry's message number (what a retry is answered
//! with): about 32 bytes an entry. Two different keys colliding in a
//! window of a million is a chance of about 1e-17.
//!
//! The message digest tells a retry (same key, same message: answered with
//! the original entry) from a key reused for another message (a client's
//! mistake, refused). A reused key whose message happens to share the
//! digest (a chance of one in four billion) is taken for a retry, as every
//! reuse was before digests.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::BuildHasher;

use crate::entry::{LogId, Seq};

/// Default window: entries whose keys are remembered.
pub const DEFAULT_DEDUP_WINDOW: u64 = 1_000_000;

/// Fingerprint of "no key".
const NONE: u128 = 0;

/// The bits of a fingerprint that come from the key; the low 32 are the
/// message's digest.
const KEY_BITS: u128 = !0xffff_ffff;

/// Empty table slot.
const EMPTY: u32 = 0;

/// What a key names in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// An entry appended with the same message: the append is a retry.
    Same(Seq),
    /// An entry appended with another message: the key was reused.
    Different(Seq),
}

/// Request keys of the newest entries, by fingerprint.
#[derive(Debug)]
pub struct KeyWindow {
    /// Most entries remembered.
    window: u64,
    /// Sequence number of `fps[0]`.
    base: Seq,
    /// Fingerprint of every entry from `base` on (`NONE` for no key): the
    /// key's in [`KEY_BITS`], the message's digest below.
    fps: VecDeque<u128>,
    /// The message number of every entry from `base` on (0 for a control
    /// entry): what a retry is told.
    numbers: VecDeque<Seq>,
    /// Open addressing, linear probing: `seq - origin + 1`, or `EMPTY`.
    /// Its length is a power of two, at least twice the keys in it.
    slots: Vec<u32>,
    /// Keys in `slots`.
    keyed: usize,
    /// What slot values are counted from.
    origin: Seq,
    /// The two secret hash keys.
    hashers: (RandomState, RandomState),
}

impl KeyWindow {
    /// An empty window of `window` entries (at least 1) whose next entry is
    /// `next`.
    pub fn new(window: u64, next: Seq) -> Self {
        Self::with_expected(window, next, 0)
    }

    /// An empty window sized up front for `expected` entries (at most the
    /// window): building one of known size by growth would leave the
    /// allocator fragmented with every intermediate size.
    pub fn with_expected(window: u64, next: Seq, expected: u64) -> Self {
        let window = window.max(1);
        let expected = expected.min(window) as usize;
        KeyWindow {
            window,
            base: next,
            fps: VecDeque::with_capacity(expected),
            numbers: VecDeque::with_capacity(expected),
            slots: vec![EMPTY; (expected * 2).next_power_of_two().max(16)],
            keyed: 0,
            origin: next,
            hashers: (RandomState::new(), RandomState::new()),
        }
    }

    /// Sequence number the next [`KeyWindow::push`] must carry.
    pub fn next(&self) -> Seq {
        self.base + self.fps.len() as u64
    }

    /// The key's part of a fingerprint (low 32 bits zero, never `NONE`):
    /// of the key and its log, since each log has keys of its own.
    fn fingerprint(&self, log: LogId, key: &str) -> u128 {
        let a = self.hashers.0.hash_one((log, key)) as u128;
        let b = self.hashers.1.hash_one((log, key)) as u128;
        (((a << 64) | b) & KEY_BITS).max(1 << 32)
    }

    /// The message's part of a fingerprint: its CRC32C, which the CPU
    /// computes at memory speed (a SipHash of a 1 MiB message would cost
    /// the node loop half a millisecond). No secret is needed here: a
    /// client that crafts a colliding message only fools the check of its
    /// own key's reuse.
    fn digest(&self, message: &[u8]) -> u128 {
        crc32c::crc32c(message) as u128
    }

    /// Table slot where the search for a key's fingerprint starts.
    fn home(&self, fp: u128) -> usize {
        ((fp >> 32) as usize) & (self.slots.len() - 1)
    }

    /// The sequence number a slot points at.
    fn seq_of(&self, slot: u32) -> Seq {
        self.origin + slot as u64 - 1
    }

    fn fp_at(&self, seq: Seq) -> u128 {
        self.fps[(seq - self.base) as usize]
    }

    /// The message number of entry `seq`, if it is within the window.
    pub fn number(&self, seq: Seq) -> Option<Seq> {
        let i = seq.checked_sub(self.base)?;
        self.numbers.get(i as usize).copied()
    }

    /// The entry that `key` named, if it is within the window.
    pub fn get(&self, log: LogId, key: &str) -> Option<Seq> {
        self.find(self.fingerprint(log, key))
    }

    /// The entry that `key` named, if it is within the window, and whether
    /// it was appended with `message` (a retry) or with another (a reused
    /// key).
    pub fn lookup(&self, log: LogId, key: &str, message: &[u8]) -> Option<Known> {
        let seq = self.find(self.fingerprint(log, key))?;
        Some(if self.fp_at(seq) & !KEY_BITS == self.digest(message) {
            Known::Same(seq)
        } else {
            Known::Different(seq)
        })
    }

    /// The entry whose key has fingerprint `fp` (key bits only), if it is
    /// in the window.
    fn find(&self, fp: u128) -> Option<Seq> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(fp);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            let seq = self.seq_of(s);
            if self.fp_at(seq) & KEY_BITS == fp {
                return Some(seq);
            }
            i = (i + 1) & mask;
        }
    }

    /// Records entry `seq` (which must be [`KeyWindow::next`]), its message
    /// number, its key and its message, forgetting the oldest entry once
    /// the window is full. A key already in the window keeps naming its
    /// first entry.
    pub fn push(
        &mut self,
        (seq, log, number): (Seq, LogId, Seq),
        key: Option<&str>,
        message: &[u8],
    ) {
        assert_eq!(seq, self.next(), "the key window takes entries in order");
        if seq - self.origin + 1 >= u32::MAX as u64 {
            self.rebuild(self.slots.len());
        }
        // An empty key is an epoch's marker (`Entry::marker`), one that
        // starts with a NUL a configuration entry's (`Entry::config`):
        // neither is a client's key.
        let key = key.filter(|k| !k.is_empty() && !k.starts_with('\0'));
        // One fingerprint per key: hashing is the costly part of a push.
        let fp = match key.map(|k| self.fingerprint(log, k)) {
            Some(fp) if self.find(fp).is_none() => fp,
            _ => NONE,
        };
        let fp = if fp == NONE {
            NONE
        } else {
            fp | self.digest(message)
        };
        if fp != NONE && (self.keyed + 1) * 2 > self.slots.len() {
            // Grown before the new entry is in `fps`, so that the rebuild
            // does not place it too.
            self.rebuild(self.slots.len() * 2);
        }
        self.fps.push_back(fp);
        self.numbers.push_back(number);
        if fp != NONE {
            self.place(fp, seq);
            self.keyed += 1;
        }
        while self.fps.len() as u64 > self.window {
            let oldest = self.base;
            let fp = self.fps[0];
            if fp != NONE {
                self.remove(fp, oldest);
            }
            self.fps.pop_front();
            self.numbers.pop_front();
            self.base += 1;
        }
    }

    /// Forgets everything: the next entry is `next` (a log started again).
    pub fn restart(&mut self, next: Seq) {
        self.fps.clear();
        self.numbers.clear();
        self.slots.iter_mut().for_each(|s| *s = EMPTY);
        self.keyed = 0;
        self.base = next;
        self.origin = next;
    }

    /// Forgets every entry after `seq` (a cut log).
    pub fn truncate_after(&mut self, seq: Seq) {
        while self.next() > seq + 1 && !self.fps.is_empty() {
            let last = self.next() - 1;
            let fp = *self.fps.back().expect("not empty");
            if fp != NONE {
                self.remove(fp, last);
            }
            self.fps.pop_back();
            self.numbers.pop_back();
        }
        if self.fps.is_empty() && seq + 1 < self.base {
            // Cut below the window: it starts again after the cut.
            self.base = seq + 1;
            self.origin = self.base;
            self.slots.iter_mut().for_each(|s| *s = EMPTY);
        }
    }

    fn place(&mut self, fp: u128, seq: Seq) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(fp);
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = (seq - self.origin + 1) as u32;
    }

    /// Removes the slot of entry `seq`, shifting later slots of its probe
    /// run back so that no lookup stops early.
    fn remove(&mut self, fp: u128, seq: Seq) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(fp);
        let target = (seq - self.origin + 1) as u32;
        while self.slots[i] != target {
            debug_assert_ne!(self.slots[i], EMPTY, "a remembered key has a slot");
            if self.slots[i] == EMPTY {
                return;
            }
            i = (i + 1) & mask;
        }
        self.slots[i] = EMPTY;
        self.keyed -= 1;
        // Backward-shift deletion.
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while self.slots[j] != EMPTY {
            let home = self.home(self.fp_at(self.seq_of(self.slots[j])));
            // Move j into the hole if its home is not within (hole, j].
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                self.slots[hole] = self.slots[j];
                self.slots[j] = EMPTY;
                hole = j;
            }
            j = (j + 1) & mask;
        }
    }

    /// Rebuilds the table with `len` slots, counting from `base`.
    fn rebuild(&mut self, len: usize) {
        self.origin = self.base;
        self.slots = vec![EMPTY; len.max(16)];
        for k in 0..self.fps.len() {
            let fp = self.fps[k];
            if fp != NONE {
                self.place(fp, self.base + k as u64);
            }
        }
    }

    /// Bytes this window holds, roughly (for tests and the benchmarks).
    pub fn memory(&self) -> usize {
        self.fps.capacity() * 16 + self.numbers.capacity() * 8 + self.slots.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};
    use std::collections::HashMap;

    #[test]
    fn keys_name_their_first_entry_until_they_leave_the_window() {
        let mut w = KeyWindow::new(3, 1);
        w.push((1, 0, 0), Some("a"), b"m");
        w.push((2, 0, 0), None, b"m");
        w.push((3, 0, 0), Some("b"), b"m");
        assert_eq!(
            (w.get(0, "a"), w.get(0, "b"), w.get(0, "c")),
            (Some(1), Some(3), None)
        );
        // A repeated key keeps naming the first entry.
        w.push((4, 0, 0), Some("b"), b"m");
        assert_eq!(w.get(0, "b"), Some(3));
        // Entry 1 left the window: its key is forgotten.
        assert_eq!(w.get(0, "a"), None);
        w.push((5, 0, 0), Some("c"), b"m");
        w.push((6, 0, 0), None, b"m");
        assert_eq!(w.get(0, "b"), None, "entry 3 left the window");
        assert_eq!(w.get(0, "c"), Some(5));
        w.truncate_after(4);
        assert_eq!(w.get(0, "c"), None, "cut entries' keys are forgotten");
        assert_eq!(w.next(), 5);
        w.push((5, 0, 0), Some("c"), b"m");
        assert_eq!(w.get(0, "c"), Some(5));
    }

    /// The same rules with a plain map and the key each entry recorded.
    #[derive(Default)]
    struct Model {
        map: HashMap<String, Seq>,
        recorded: std::collections::BTreeMap<Seq, String>,
    }

    #[test]
    fn matches_a_plain_map_over_many_random_operations() {
        let mut rng = SmallRng::seed_from_u64(3);
        let window = 300;
        let mut w = KeyWindow::new(window, 1);
        let mut m = Model::default();
        for step in 0..60_000 {
            let next = w.next();
            if rng.gen_ratio(1, 300) && next > 1 {
                let keep = rng.gen_range(next.saturating_sub(200)..next);
                w.truncate_after(keep);
                for (_, k) in m.recorded.split_off(&(keep + 1)) {
                    m.map.remove(&k);
                }
            } else {
                let key = rng
                    .gen_bool(0.8)
                    .then(|| format!("k{}", rng.gen_range(0..1500)));
                w.push((next, 0, 0), key.as_deref(), b"m");
                // The table stays at most half full: probes stay short and
                // always find an empty slot.
                assert!(w.slots.len() >= 2 * w.keyed, "step {step}");
                if let Some(k) = key {
                    if !m.map.contains_key(&k) {
                        m.map.insert(k.clone(), next);
                        m.recorded.insert(next, k);
                    }
                }
                if next >= window {
                    if let Some(k) = m.recorded.remove(&(next - window)) {
                        m.map.remove(&k);
                    }
                }
            }
            for probe in 0..8u64 {
                let k = format!("k{}", (step * 31 + probe * 197) % 1500);
                assert_eq!(w.get(0, &k), m.map.get(&k).copied(), "step {step}: {k}");
            }
        }
    }

    #[test]
    fn a_million_keys_fit_in_about_32_bytes_each() {
        let mut w = KeyWindow::new(DEFAULT_DEDUP_WINDOW, 1);
        for seq in 1..=1_200_000u64 {
            w.push((seq, 0, 0), Some(&format!("{seq:032x}")), b"m");
        }
        assert_eq!(w.get(0, &format!("{:032x}", 1_200_000)), Some(1_200_000));
        assert_eq!(w.get(0, &format!("{:032x}", 200_001)), Some(200_001));
        assert_eq!(w.get(0, &format!("{:032x}", 200_000)), None);
        assert!(w.memory() <= 34 << 20, "{} bytes", w.memory());
        // And no less than the rings and table it counts.
        assert!(
            w.memory() >= (16 + 8) * 1_000_000 + 4 * 2_000_000,
            "{}",
            w.memory()
        );
    }

    #[test]
    fn each_entry_keeps_its_message_number_through_cuts_and_the_window() {
        let mut w = KeyWindow::new(3, 1);
        w.push((1, 0, 0), Some(""), b"");
        w.push((2, 0, 1), Some("a"), b"m");
        w.push((3, 0, 2), None, b"m");
        assert_eq!(
            (w.number(1), w.number(2), w.number(3)),
            (Some(0), Some(1), Some(2))
        );
        w.truncate_after(2);
        assert_eq!(w.number(3), None);
        w.push((3, 0, 7), Some("b"), b"m");
        w.push((4, 0, 8), Some("c"), b"m");
        // Out of the window: forgotten with its key.
        assert_eq!(
            (w.number(1), w.number(2), w.number(4)),
            (None, Some(1), Some(8))
        );
        w.restart(10);
        assert_eq!(w.number(4), None);
    }

    #[test]
    fn a_fingerprint_is_both_secret_hashes_side_by_side() {
        let w = KeyWindow::new(10, 1);
        let fp = w.fingerprint(0, "some key");
        assert_eq!((fp >> 64) as u64, w.hashers.0.hash_one((0u32, "some key")));
        // The low 32 bits are left for the message's digest.
        assert_eq!(
            fp as u64,
            w.hashers.1.hash_one((0u32, "some key")) & !0xffff_ffff
        );
        // Another window has other secrets, and another log other keys.
        assert_ne!(KeyWindow::new(10, 1).fingerprint(0, "some key"), fp);
        assert_ne!(w.fingerprint(1, "some key"), fp);
    }

    #[test]
    fn a_key_tells_a_retry_from_a_reuse_for_another_message() {
        let mut w = KeyWindow::new(10, 1);
        w.push((1, 0, 0), Some("a"), b"first");
        w.push((2, 0, 0), None, b"first");
        w.push((3, 0, 0), Some("b"), b"");
        assert_eq!(w.lookup(0, "a", b"first"), Some(Known::Same(1)));
        assert_eq!(w.lookup(0, "a", b"second"), Some(Known::Different(1)));
        assert_eq!(w.lookup(0, "b", b""), Some(Known::Same(3)));
        assert_eq!(w.lookup(0, "b", b"x"), Some(Known::Different(3)));
        assert_eq!(w.lookup(0, "c", b"first"), None);
        // The digest does not change where a key is found: after growth
        // and removals every key is still there, with its own message.
        for seq in 4..=10u64 {
            w.push(
                (seq, 0, 0),
                Some(&format!("k{seq}")),
                format!("m{seq}").as_bytes(),
            );
        }
        for seq in 4..=10u64 {
            let (k, m) = (format!("k{seq}"), format!("m{seq}"));
            assert_eq!(w.lookup(0, &k, m.as_bytes()), Some(Known::Same(seq)));
            assert_eq!(w.lookup(0, &k, b"m"), Some(Known::Different(seq)));
        }
        assert_eq!(w.get(0, "a"), Some(1));
        w.push((11, 0, 0), Some("z"), b"m");
        assert_eq!(w.get(0, "a"), None, "entry 1 left the window");
    }

    #[test]
    fn a_cut_below_the_window_starts_it_again_after_the_cut() {
        let mut w = KeyWindow::new(3, 1);
        for seq in 1..=6 {
            w.push((seq, 0, 0), Some(&format!("k{seq}")), b"m");
        }
        w.truncate_after(1);
        assert_eq!(w.next(), 2);
        for seq in 1..=6 {
            assert_eq!(w.get(0, &format!("k{seq}")), None);
        }
        w.push((2, 0, 0), Some("k4"), b"m");
        assert_eq!(w.get(0, "k4"), Some(2));
        // A cut at or above what the window holds changes nothing, empty
        // or not.
        w.truncate_after(5);
        assert_eq!((w.next(), w.get(0, "k4")), (3, Some(2)));
        let mut empty = KeyWindow::new(3, 5);
        empty.truncate_after(10);
        assert_eq!(empty.next(), 5);
        empty.push((5, 0, 0), Some("x"), b"m");
        assert_eq!(empty.get(0, "x"), Some(5));
    }

    #[test]
    fn slot_numbers_that_would_overflow_rebuild_the_table_from_the_window() {
        let base = 1u64 << 40;
        let mut w = KeyWindow::new(4, base);
        w.push((base, 0, 0), Some("a"), b"m");
        w.push((base + 1, 0, 0), Some("b"), b"m");
        // As if four billion entries had passed since the table's origin:
        // slots counted from that far back.
        let far = base - (u32::MAX as u64 - 4);
        w.origin = far;
        w.slots.fill(EMPTY);
        for k in 0..w.fps.len() {
            let fp = w.fps[k];
            w.place(fp, w.base + k as u64);
        }
        assert_eq!((w.get(0, "a"), w.get(0, "b")), (Some(base), Some(base + 1)));
        // Slot number u32::MAX - 1 still fits: no rebuild.
        w.push((base + 2, 0, 0), None, b"m");
        assert_eq!(w.origin, far);
        // The next would be u32::MAX: the table is rebuilt, counting from
        // the window's first entry.
        w.push((base + 3, 0, 0), Some("c"), b"m");
        assert_eq!(w.origin, base);
        assert_eq!(
            (w.get(0, "a"), w.get(0, "b"), w.get(0, "c")),
            (Some(base), Some(base + 1), Some(base + 3))
        );
    }
}
