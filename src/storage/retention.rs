//! Retention: which of the oldest segments to delete.
//!
//! Whole segments go, oldest first, never the one being written and never
//! one holding an entry not known to be on a majority (the committed
//! mark): what retention deletes, no failover can need.
//!
//! - `--retention-bytes B`: a segment goes while the log would still hold
//!   at least B bytes without it (Kafka's `retention.bytes`). This is a hard
//!   limit: a secondary still missing those entries is reset to start from
//!   the first entry kept when it next connects, and the master says so.
//! - `--retention-age D`: a segment goes once its last write is older than
//!   D, unless a secondary the master hears from still needs entries in it;
//!   then it stays until that secondary has them, or until the byte limit
//!   takes it.
//!
//! A log's own retention (`replog log create --retention-*`, [`plan_log`])
//! is decided by the master over its segments and written as a trim entry,
//! so that every node stops reading the same messages; compaction then
//! frees them on each node. It goes a segment's share of the log at a time,
//! oldest first, never in the segment being written or past the committed
//! mark, and never the log's last message (the master keeps that one).

use std::time::{Duration, SystemTime};

use crate::entry::Seq;

/// One segment, for retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its first sequence number.
    pub first: Seq,
    /// Its last (`first - 1` when empty).
    pub last: Seq,
    /// Its size.
    pub bytes: u64,
    /// When it was last written.
    pub modified: std::time::SystemTime,
}

/// The retention flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// `--retention-bytes`.
    pub bytes: Option<u64>,
    /// `--retention-age`.
    pub age: Option<Duration>,
}

impl Retention {
    /// Whether anything is ever deleted.
    pub fn is_on(&self) -> bool {
        self.bytes.is_some() || self.age.is_some()
    }
}

/// The sequence number to delete through (the last entry of the newest
/// segment that goes), if any segment goes. Entries from `needed` on are
/// wanted by a live secondary; entries after `committed` are never
/// deleted.
pub fn plan(
    segments: &[SegmentInfo],
    retention: &Retention,
    needed: Seq,
    committed: Seq,
    now: SystemTime,
) -> Option<Seq> {
    let mut total: u64 = segments.iter().map(|s| s.bytes).sum();
    let mut through = None;
    let (_, older) = segments.split_last()?;
    for s in older {
        if s.last > committed {
            break;
        }
        let by_bytes = retention.bytes.is_some_and(|b| total - s.bytes >= b);
        let by_age = retention.age.is_some_and(|age| {
            now.duration_since(s.modified)
                .is_ok_and(|elapsed| elapsed > age)
        });
        let wanted = s.last >= needed;
        if by_bytes || (by_age && !wanted) {
            through = Some(s.last);
            total -= s.bytes;
        } else {
            break;
        }
    }
    through
}

/// One log's messages in one segment, for that log's own retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogShare {
    /// The last number of the log's messages in the segment.
    pub last: Seq,
    /// The bytes of its messages there.
    pub bytes: u64,
    /// When the segment was last written.
    pub modified: SystemTime,
    /// Whether the segment may lose them: not the one being written, and
    /// wholly at or before the committed mark.
    pub settled: bool,
}

/// The last message number a log's own retention lets go, if past
/// `trimmed` (what already went): `shares`, oldest first, are the segments
/// holding its messages.
pub fn plan_log(
    shares: &[LogShare],
    (bytes, age): (Option<u64>, Option<Duration>),
    trimmed: Seq,
    now: SystemTime,
) -> Option<Seq> {
    let mut total: u64 = shares.iter().map(|s| s.bytes).sum();
    let mut through = None;
    for s in shares {
        if s.last <= trimmed {
            // Gone already, if not yet compacted: it holds nothing.
            total -= s.bytes;
            continue;
        }
        if !s.settled {
            break;
        }
        let by_bytes = bytes.is_some_and(|b| total - s.bytes >= b);
        let by_age = age.is_some_and(|age| {
            now.duration_since(s.modified)
                .is_ok_and(|elapsed| elapsed > age)
        });
        if !(by_bytes || by_age) {
            break;
        }
        through = Some(s.last);
        total -= s.bytes;
    }
    through
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(first: Seq, last: Seq, bytes: u64, age_s: u64, now: SystemTime) -> SegmentInfo {
        SegmentInfo {
            first,
            last,
            bytes,
            modified: now - Duration::from_secs(age_s),
        }
    }

    #[test]
    fn bytes_delete_the_oldest_segments_while_the_rest_still_holds_the_limit() {
        let now = SystemTime::now();
        let segs = [
            seg(1, 10, 100, 50, now),
            seg(11, 20, 100, 40, now),
            seg(21, 30, 100, 30, now),
            seg(31, 35, 50, 0, now),
        ];
        let bytes = |b| Retention {
            bytes: Some(b),
            age: None,
        };
        // 350 bytes; keeping at least 150 lets two go, 200 one.
        assert_eq!(plan(&segs, &bytes(150), 0, 35, now), Some(20));
        assert_eq!(plan(&segs, &bytes(200), 0, 35, now), Some(10));
        assert_eq!(plan(&segs, &bytes(251), 0, 35, now), None);
        // The segment being written never goes, however small the limit.
        assert_eq!(plan(&segs, &bytes(0), 0, 35, now), Some(30));
        // Nothing past the committed mark goes.
        assert_eq!(plan(&segs, &bytes(0), 0, 15, now), Some(10));
        // A limit is a limit: a secondary's need does not hold it back.
        assert_eq!(plan(&segs, &bytes(150), 5, 35, now), Some(20));
        assert_eq!(plan(&[], &bytes(0), 0, 35, now), None);
    }

    #[test]
    fn a_logs_own_retention_lets_its_oldest_shares_go_never_an_unsettled_one() {
        let now = SystemTime::now();
        let share = |last, bytes, age_s, settled| LogShare {
            last,
            bytes,
            modified: now - Duration::from_secs(age_s),
            settled,
        };
        let shares = [
            share(10, 100, 50, true),
            share(20, 100, 40, true),
            share(30, 100, 30, true),
            share(35, 50, 0, false),
        ];
        let bytes = |b| (Some(b), None);
        let age = |s| (None, Some(Duration::from_secs(s)));
        assert_eq!(plan_log(&shares, bytes(150), 0, now), Some(20));
        assert_eq!(plan_log(&shares, bytes(251), 0, now), None);
        // The segment being written (or not yet committed) stops it.
        assert_eq!(plan_log(&shares, bytes(0), 0, now), Some(30));
        assert_eq!(plan_log(&shares, age(35), 0, now), Some(20));
        // What is trimmed already counts for nothing and is not said again.
        assert_eq!(plan_log(&shares, bytes(150), 20, now), None);
        assert_eq!(plan_log(&shares, bytes(50), 10, now), Some(30));
        assert_eq!(plan_log(&shares, (None, None), 0, now), None);
        assert_eq!(plan_log(&[], bytes(0), 0, now), None);
    }

    #[test]
    fn age_deletes_old_segments_unless_a_live_secondary_still_needs_them() {
        let now = SystemTime::now();
        let segs = [
            seg(1, 10, 100, 50, now),
            seg(11, 20, 100, 40, now),
            seg(21, 30, 100, 30, now),
            seg(31, 35, 50, 100, now),
        ];
        let age = |s| Retention {
            bytes: None,
            age: Some(Duration::from_secs(s)),
        };
        assert_eq!(plan(&segs, &age(35), u64::MAX, 35, now), Some(20));
        assert_eq!(plan(&segs, &age(45), u64::MAX, 35, now), Some(10));
        // A secondary still wants entry 15: segment 11-20 stays, and so
        // does everything after it.
        assert_eq!(plan(&segs, &age(35), 15, 35, now), Some(10));
        // ...unless the byte limit takes it.
        let both = Retention {
            bytes: Some(150),
            age: Some(Duration::from_secs(35)),
        };
        assert_eq!(plan(&segs, &both, 15, 35, now), Some(20));
        assert!(!Retention::default().is_on());
    }
}
