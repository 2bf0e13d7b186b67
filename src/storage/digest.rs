//! Digests of log ranges, for `replog verify`: every node hashes the same
//! ranges of its log, and the verifier compares them, narrowing down to
//! the first sequence number where two nodes disagree.
//!
//! A range's digest is SHA-256 over each entry's sequence number, epoch,
//! log and number in it, key and message (lengths included, so no two different entries feed
//! the same bytes), truncated to 128 bits: far more than enough to tell
//! two logs apart, and no node can pick entries that collide.

use sha2::{Digest as _, Sha256};

use crate::entry::{Entry, Seq};

/// Most digests in one answer.
pub const MAX_DIGESTS: u64 = 1024;

/// Most entries hashed for one request.
pub const MAX_DIGEST_ENTRIES: u64 = 1 << 20;

/// Most bytes of entries read for one request (the node stops after the
/// page that passes it, and says where): a request costs the node a bounded
/// read whatever the messages' size.
pub const MAX_DIGEST_BYTES: usize = 64 << 20;

/// The digests of consecutive ranges of `step` entries, fed in order.
#[derive(Debug)]
pub struct RangeDigests {
    step: u64,
    hasher: Sha256,
    in_range: u64,
    next: Option<Seq>,
    digests: Vec<[u8; 16]>,
}

impl RangeDigests {
    /// Ranges of `step` entries (at least 1) each.
    pub fn new(step: u64) -> Self {
        RangeDigests {
            step: step.max(1),
            hasher: Sha256::new(),
            in_range: 0,
            next: None,
            digests: Vec::new(),
        }
    }

    /// Adds the next entry (entries come in sequence order, without gaps).
    pub fn push(&mut self, e: &Entry) {
        debug_assert!(self.next.is_none_or(|n| n == e.seq), "entries in order");
        self.next = Some(e.seq + 1);
        self.hasher.update(e.seq.to_le_bytes());
        self.hasher.update(e.epoch.to_le_bytes());
        self.hasher.update(e.log.to_le_bytes());
        self.hasher.update(e.number.to_le_bytes());
        match &e.key {
            None => self.hasher.update([0]),
            Some(k) => {
                self.hasher.update([1]);
                self.hasher.update((k.len() as u64).to_le_bytes());
                self.hasher.update(k.as_bytes());
            }
        }
        self.hasher.update((e.message.len() as u64).to_le_bytes());
        self.hasher.update(&e.message);
        self.in_range += 1;
        if self.in_range == self.step {
            self.close_range();
        }
    }

    fn close_range(&mut self) {
        let full = std::mem::take(&mut self.hasher).finalize();
        let mut d = [0u8; 16];
        d.copy_from_slice(&full[..16]);
        self.digests.push(d);
        self.in_range = 0;
    }

    /// The digests, the last one over a shorter range if the entries ran
    /// out inside it.
    pub fn finish(mut self) -> Vec<[u8; 16]> {
        if self.in_range > 0 {
            self.close_range();
        }
        self.digests
    }
}

/// The last sequence number a request for `from..=to` in ranges of `step`
/// covers on a node whose visible log ends at `visible`: bounded by
/// [`MAX_DIGEST_ENTRIES`] and [`MAX_DIGESTS`] ranges.
pub fn covered(from: Seq, to: Seq, step: u64, visible: Seq) -> Seq {
    let step = step.max(1);
    let by_entries = from.saturating_add(MAX_DIGEST_ENTRIES - 1);
    let by_ranges = from.saturating_add(step.saturating_mul(MAX_DIGESTS) - 1);
    to.min(visible).min(by_entries).min(by_ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: Seq, key: Option<&str>, message: &'static str) -> Entry {
        Entry {
            epoch: 1,
            seq,
            log: crate::entry::DEFAULT_LOG,
            number: seq,
            key: key.map(String::from),
            message: bytes::Bytes::from_static(message.as_bytes()),
        }
    }

    fn digests(entries: &[Entry], step: u64) -> Vec<[u8; 16]> {
        let mut d = RangeDigests::new(step);
        entries.iter().for_each(|e| d.push(e));
        d.finish()
    }

    #[test]
    fn ranges_differ_exactly_where_the_entries_do() {
        let a: Vec<Entry> = (1..=10).map(|s| entry(s, None, "m")).collect();
        let mut b = a.clone();
        b[6].message = bytes::Bytes::from_static(b"other");
        let (da, db) = (digests(&a, 3), digests(&b, 3));
        // Ranges 1-3, 4-6, 7-9, 10: the third differs.
        assert_eq!(da.len(), 4);
        assert_eq!((da[0] == db[0], da[1] == db[1]), (true, true));
        assert_ne!(da[2], db[2]);
        assert_eq!(da[3], db[3]);
        // The epoch, the log, the number, the key and where bytes fall
        // between fields count too.
        let mut c = a.clone();
        c[0].epoch = 2;
        assert_ne!(digests(&c, 10), digests(&a, 10));
        let (mut l, mut n) = (a.clone(), a.clone());
        l[0].log = 1;
        n[0].number = 7;
        assert_ne!(digests(&l, 10), digests(&a, 10));
        assert_ne!(digests(&n, 10), digests(&a, 10));
        let mut k = a.clone();
        k[0].key = Some(String::new());
        assert_ne!(digests(&k, 10), digests(&a, 10));
        let split = [entry(1, Some("ab"), "c"), entry(2, None, "m")];
        let moved = [entry(1, Some("a"), "bc"), entry(2, None, "m")];
        assert_ne!(digests(&split, 2), digests(&moved, 2));
    }

    #[test]
    fn a_request_covers_at_most_its_limits() {
        assert_eq!(covered(1, 100, 10, 50), 50);
        assert_eq!(covered(1, 100, 10, 1000), 100);
        assert_eq!(covered(5, u64::MAX, 1, u64::MAX), 5 + MAX_DIGESTS - 1);
        assert_eq!(covered(1, u64::MAX, u64::MAX, u64::MAX), MAX_DIGEST_ENTRIES);
        assert_eq!(covered(10, 20, 1, 5), 5, "nothing covered");
    }
}
