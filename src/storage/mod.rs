//! Where entries hit the disk: the log every node keeps.
//!
//! [`Log`] is the one type the runtime stores through. It is either kept in
//! memory (`--data-dir` not given: tests and quick trials) or on disk as
//! segment files of checksummed records (see [`disk`], and [`record`] for
//! a record's layout). Writing and syncing
//! are separate steps so that one `fdatasync` can cover every entry written
//! while the previous one ran (group commit, done by the runtime's syncer).

pub mod compaction;
pub mod damage;
pub mod digest;
pub mod disk;
pub mod files;
pub mod heal;
pub mod identity;
mod numbering;
pub mod record;
mod recovery;
pub mod retention;
pub mod roll;

use std::io;
use std::path::Path;

use crate::entry::{Entry, Epoch, LogId, Position, Seq};

pub use crate::wire::entry_cost;

/// The first of `entries`, at most `max` of them and `max_bytes` by
/// [`entry_cost`], and at least one if there is one (a lone entry larger
/// than `max_bytes` still goes): what one read or one frame of entries
/// held in memory takes.
pub fn take_batch<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    max: usize,
    max_bytes: usize,
) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for e in entries {
        let cost = entry_cost(e);
        if out.len() >= max || (!out.is_empty() && bytes + cost > max_bytes) {
            break;
        }
        bytes += cost;
        out.push(e.clone());
    }
    out
}

/// The node's log: memory or disk.
#[derive(Debug)]
pub enum Log {
    /// Everything in a vector; lost when the process ends.
    Memory(MemoryLog),
    /// Segment files under a data directory.
    Disk(Box<disk::DiskLog>),
}

/// A log kept in memory only.
#[derive(Debug, Default)]
pub struct MemoryLog {
    /// Entries; `entries[i].seq == base.seq + i + 1`.
    entries: Vec<Entry>,
    /// The entry before the first held ((0, 0) unless reset).
    base: Position,
    /// The epochs begun up to `base`.
    base_epochs: Vec<(Epoch, Seq)>,
    /// Each log's last message number at `base`.
    base_numbers: Vec<(LogId, Seq)>,
    /// The named logs at `base`.
    base_logs: bytes::Bytes,
    /// The consumer groups' positions at `base` (`groups::Positions`' text).
    base_groups: bytes::Bytes,
    /// Epoch persisted by `set_epoch` (memory only: 0 after a restart).
    epoch: Epoch,
    /// The vote recorded with it.
    vote: Option<String>,
}

impl Log {
    /// A log in memory.
    pub fn memory() -> Self {
        Log::Memory(MemoryLog::default())
    }

    /// Opens (or creates) the log in `dir`, recovering from a crash.
    pub fn open(dir: &Path, segment_bytes: u64) -> io::Result<Self> {
        Ok(Log::Disk(Box::new(disk::DiskLog::open(
            dir,
            segment_bytes,
        )?)))
    }

    /// [`Log::open`], calling `before_cut` before a torn last record is cut
    /// (see [`disk::DiskLog::open_with`]).
    pub fn open_with(
        dir: &Path,
        segment_bytes: u64,
        before_cut: &mut dyn FnMut() -> io::Result<()>,
    ) -> io::Result<Self> {
        Ok(Log::Disk(Box::new(disk::DiskLog::open_with(
            dir,
            segment_bytes,
            before_cut,
        )?)))
    }

    /// Appends consecutive entries; they are readable at once but not yet
    /// durable (see [`Log::sync_point`]).
    pub fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        let next = self.last().seq + 1;
        // Every entry, not only the first: a log with a gap or a repeat
        // would be unreadable.
        for (i, e) in entries.iter().enumerate() {
            if e.seq != next + i as u64 {
                return Err(io::Error::other(format!(
                    "log append out of order: expected seq {}, got {}",
                    next + i as u64,
                    e.seq
                )));
            }
        }
        match self {
            Log::Memory(m) => {
                m.entries.extend_from_slice(entries);
                Ok(())
            }
            Log::Disk(d) => d.append(entries),
        }
    }

    /// Removes every entry after `seq`.
    pub fn truncate_after(&mut self, seq: Seq) -> io::Result<()> {
        match self {
            Log::Memory(m) => {
                if seq < m.base.seq {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "cannot cut the log below its first entry ({})",
                            m.base.seq + 1
                        ),
                    ));
                }
                m.entries.truncate((seq - m.base.seq) as usize);
                Ok(())
            }
            Log::Disk(d) => d.truncate_after(seq),
        }
    }

    /// The last entry's position.
    pub fn last(&self) -> Position {
        match self {
            Log::Memory(m) => m
                .entries
                .last()
                .map(|e| Position {
                    epoch: e.epoch,
                    seq: e.seq,
                })
                .unwrap_or(m.base),
            Log::Disk(d) => d.last(),
        }
    }

    /// The entry just before the first one held: (0, 0) unless retention
    /// deleted the start of the log, or it was reset to start later.
    pub fn base(&self) -> Position {
        match self {
            Log::Memory(m) => m.base,
            Log::Disk(d) => d.base(),
        }
    }

    /// Sequence number of the first entry held (0 when the log is empty).
    pub fn first(&self) -> Seq {
        let base = self.base().seq;
        if self.last().seq > base {
            base + 1
        } else {
            0
        }
    }

    /// The segments, oldest first (none for a log in memory).
    pub fn segments(&self) -> io::Result<Vec<retention::SegmentInfo>> {
        match self {
            Log::Memory(_) => Ok(Vec::new()),
            Log::Disk(d) => d.segments(),
        }
    }

    /// The oldest segment compaction would free bytes in, and the logs as
    /// the `committed` mark leaves them (whose deletions and trims say
    /// which messages go): no segment for a log in memory, which frees
    /// nothing, and an error while a catalog entry cannot be read
    /// (compaction acts on the catalog as written, or not at all).
    pub fn compaction_job(
        &self,
        committed: Seq,
    ) -> Result<(Option<compaction::Job>, crate::replication::catalog::Logs), String> {
        use crate::replication::catalog::{Catalog, Change, Logs};
        let (at_base, changes) = match self {
            Log::Disk(d) => d.catalog(),
            Log::Memory(m) => {
                let changes = (m.entries.iter())
                    .filter(|e| e.key.as_deref() == Some(crate::replication::catalog::CATALOG_KEY))
                    .map(|e| (e.seq, e.message.clone()))
                    .collect();
                (m.base_logs.clone(), changes)
            }
        };
        let at_base = Logs::decode(&at_base).map_err(|e| format!("base.logs: {e}"))?;
        let changes = (changes.into_iter())
            .map(|(s, m)| Ok((s, Change::decode(&m).map_err(|e| format!("seq {s}: {e}"))?)))
            .collect::<Result<Vec<_>, String>>()?;
        let mut catalog = Catalog::new(at_base, changes);
        catalog.cut(committed);
        let logs = catalog.logs().clone();
        let job = match self {
            Log::Disk(d) => d.compaction_job(committed, &|id, n| logs.deleted_or_trimmed(id, n)),
            Log::Memory(_) => None,
        };
        Ok((job, logs))
    }

    /// `log`'s messages in each segment holding any, oldest first, for its
    /// own retention (none for a log in memory, which keeps them all).
    pub fn log_shares(&self, log: LogId, committed: Seq) -> io::Result<Vec<retention::LogShare>> {
        match self {
            Log::Memory(_) => Ok(Vec::new()),
            Log::Disk(d) => d.log_shares(log, committed),
        }
    }

    /// Puts a compacted copy of a segment in its place (see
    /// [`compaction`]): the bytes freed (0 if the segment went meanwhile).
    pub fn install(&mut self, compacted: compaction::Compacted) -> io::Result<u64> {
        match self {
            Log::Memory(_) => Ok(0),
            Log::Disk(d) => d.install(compacted),
        }
    }

    /// Retention: deletes the oldest segments through the one ending at
    /// `seq` (never the one being written); how many went.
    pub fn delete_through(&mut self, seq: Seq) -> io::Result<usize> {
        match self {
            Log::Memory(_) => Ok(0),
            Log::Disk(d) => d.delete_through(seq),
        }
    }

    /// Empties the log so that its next entry is `base.seq + 1`, with the
    /// epochs begun up to there (a node behind its master's retention
    /// starts again from there). `configs`, when the master said, are the
    /// configuration entries at or before the base (see `disk`); a log in
    /// memory has none to keep past a restart.
    pub fn reset(
        &mut self,
        base: Position,
        epochs: &[(Epoch, Seq)],
        configs: Option<&[(Seq, bytes::Bytes)]>,
        (numbers, logs, groups): (&[(LogId, Seq)], &bytes::Bytes, &bytes::Bytes),
    ) -> io::Result<()> {
        match self {
            Log::Memory(m) => {
                m.entries.clear();
                m.base = base;
                m.base_epochs = epochs.to_vec();
                m.base_numbers = numbers.to_vec();
                m.base_logs = logs.clone();
                m.base_groups = groups.clone();
                Ok(())
            }
            Log::Disk(d) => d.reset(base, epochs, configs, (numbers, logs, groups)),
        }
    }

    /// The consumer groups' positions the log leaves: those at its base,
    /// then what its group entries did.
    pub fn groups(&self) -> crate::replication::groups::Positions {
        use crate::replication::groups::{Delta, Positions};
        match self {
            Log::Memory(m) => {
                let mut positions = Positions::decode(&m.base_groups).unwrap_or_default();
                let mut delta = Delta::default();
                (m.entries.iter())
                    .filter(|e| e.is_control())
                    .for_each(|e| delta.note_entry(e.key.as_deref(), &e.message));
                positions.then(&delta);
                positions
            }
            Log::Disk(d) => d.groups(),
        }
    }

    /// The consumer groups' positions at the base (`groups::Positions`'
    /// text), which a secondary reset to start there is sent.
    pub fn groups_at_base(&self) -> bytes::Bytes {
        match self {
            Log::Memory(m) => m.base_groups.clone(),
            Log::Disk(d) => d.groups_at_base(),
        }
    }

    /// The named logs the log records: at its base, and the catalog
    /// entries after it (unreadable ones, which no master writes, left
    /// out).
    pub fn catalog(&self) -> crate::replication::catalog::Catalog {
        use crate::replication::catalog::{Catalog, Change, Logs, CATALOG_KEY};
        let (at_base, changes) = match self {
            Log::Memory(m) => {
                let changes = (m.entries.iter())
                    .filter(|e| e.key.as_deref() == Some(CATALOG_KEY))
                    .map(|e| (e.seq, e.message.clone()))
                    .collect();
                (m.base_logs.clone(), changes)
            }
            Log::Disk(d) => d.catalog(),
        };
        let changes = (changes.into_iter())
            .filter_map(|(s, m)| Some((s, Change::decode(&m).ok()?)))
            .collect();
        Catalog::new(Logs::decode(&at_base).unwrap_or_default(), changes)
    }

    /// Each log's last message number, for every log that has had one.
    pub fn numbers(&self) -> Vec<(LogId, Seq)> {
        match self {
            Log::Memory(m) => {
                let mut last: std::collections::BTreeMap<LogId, Seq> =
                    m.base_numbers.iter().copied().collect();
                for e in m.entries.iter().filter(|e| !e.is_control()) {
                    last.insert(e.log, e.number);
                }
                last.into_iter().collect()
            }
            Log::Disk(d) => d.numbers(),
        }
    }

    /// The first message number of `log` held (0 if none).
    pub fn first_number(&self, log: LogId) -> Seq {
        match self {
            Log::Memory(m) => (m.entries.iter())
                .find(|e| e.log == log && !e.is_control())
                .map_or(0, |e| e.number),
            Log::Disk(d) => d.first_number(log),
        }
    }

    /// Up to `max` messages of `log` from number `from` on (at most
    /// `max_bytes` by [`entry_cost`], at least one), none after sequence
    /// number `upto`.
    pub fn read_messages(
        &self,
        log: LogId,
        from: Seq,
        upto: Seq,
        (max, max_bytes): (usize, usize),
    ) -> io::Result<Vec<Entry>> {
        match self {
            Log::Memory(m) => Ok(take_batch(
                (m.entries.iter())
                    .take_while(|e| e.seq <= upto)
                    .filter(|e| e.log == log && !e.is_control() && e.number >= from),
                max,
                max_bytes,
            )),
            Log::Disk(d) => d.read_messages(log, from, upto, (max, max_bytes)),
        }
    }

    /// The last message number of `log` at or before sequence number
    /// `seq` (0 if none by then).
    pub fn number_at(&self, log: LogId, seq: Seq) -> io::Result<Seq> {
        match self {
            Log::Memory(m) => {
                let held = (m.entries.iter().rev())
                    .filter(|e| e.seq <= seq && e.log == log && !e.is_control())
                    .map(|e| e.number)
                    .next();
                let at_base = || {
                    m.base_numbers
                        .iter()
                        .find(|(l, _)| *l == log)
                        .map(|(_, n)| *n)
                };
                Ok(held.or_else(at_base).unwrap_or(0))
            }
            Log::Disk(d) => d.number_at(log, seq),
        }
    }

    /// Each log's last message number at the base.
    pub fn numbers_at_base(&self) -> Vec<(LogId, Seq)> {
        match self {
            Log::Memory(m) => m.base_numbers.clone(),
            Log::Disk(d) => d.numbers_at_base(),
        }
    }

    /// The bytes of `log`'s messages the log holds.
    pub fn log_bytes(&self, log: LogId) -> u64 {
        match self {
            Log::Memory(m) => (m.entries.iter())
                .filter(|e| e.log == log && !e.is_control())
                .map(|e| e.message.len() as u64)
                .sum(),
            Log::Disk(d) => d.log_bytes(log),
        }
    }

    /// Bytes the log takes: its records on disk, or its messages in memory.
    pub fn bytes(&self) -> u64 {
        match self {
            Log::Memory(m) => m.entries.iter().map(|e| e.message.len() as u64).sum(),
            Log::Disk(d) => d.bytes(),
        }
    }

    /// Up to `max` entries from `from`, stopping before `upto` is passed or
    /// the answer would exceed `max_bytes` as counted by [`entry_cost`] (at
    /// least one entry is returned if there is one).
    pub fn read(
        &self,
        from: Seq,
        upto: Seq,
        max: usize,
        max_bytes: usize,
    ) -> io::Result<Vec<Entry>> {
        // Nothing before the first entry held is there to read.
        let from = from.max(self.base().seq + 1);
        let upto = upto.min(self.last().seq);
        if from > upto {
            return Ok(Vec::new());
        }
        match self {
            Log::Memory(m) => {
                let at = |seq: Seq| (seq - m.base.seq) as usize;
                Ok(take_batch(
                    &m.entries[at(from) - 1..at(upto)],
                    max,
                    max_bytes,
                ))
            }
            Log::Disk(d) => d.read(from, upto, max, max_bytes),
        }
    }

    /// Calls `visit((seq, log, number), key, message)` for the entries
    /// `from..=upto` in order, without copying them, until it returns false (recovery's
    /// rebuild of the dedup window reads a million entries this way).
    pub fn scan(
        &self,
        from: Seq,
        upto: Seq,
        mut visit: impl FnMut((Seq, LogId, Seq), Option<&str>, &[u8]) -> bool,
    ) -> io::Result<()> {
        match self {
            Log::Memory(m) => {
                let from = from.max(m.base.seq + 1);
                let upto = upto.min(self.last().seq);
                if from > upto {
                    return Ok(());
                }
                let at = |seq: Seq| (seq - m.base.seq) as usize;
                for e in &m.entries[at(from) - 1..at(upto)] {
                    if !visit((e.seq, e.log, e.number), e.key.as_deref(), &e.message) {
                        break;
                    }
                }
                Ok(())
            }
            Log::Disk(d) => d.scan(from, upto, visit),
        }
    }

    /// The configuration entries the log holds, in order, with what each
    /// records (and, after retention or a reset, the newest before the
    /// log's start).
    pub fn configs(&self) -> Vec<(Seq, bytes::Bytes)> {
        match self {
            Log::Memory(m) => (m.entries.iter())
                .filter(|e| e.is_config())
                .map(|e| (e.seq, e.message.clone()))
                .collect(),
            Log::Disk(d) => d.configs(),
        }
    }

    /// First sequence number of every epoch in the log, in order.
    pub fn epochs(&self) -> Vec<(Epoch, Seq)> {
        match self {
            Log::Memory(m) => {
                let mut out: Vec<(Epoch, Seq)> = m.base_epochs.clone();
                for e in &m.entries {
                    if out.last().map(|(ep, _)| *ep) != Some(e.epoch) {
                        out.push((e.epoch, e.seq));
                    }
                }
                out
            }
            Log::Disk(d) => d.epochs(),
        }
    }

    /// The epoch last recorded with [`Log::set_epoch`].
    pub fn epoch(&self) -> Epoch {
        match self {
            Log::Memory(m) => m.epoch,
            Log::Disk(d) => d.epoch(),
        }
    }

    /// Whom this node voted for in [`Log::epoch`].
    pub fn vote(&self) -> Option<&str> {
        match self {
            Log::Memory(m) => m.vote.as_deref(),
            Log::Disk(d) => d.vote(),
        }
    }

    /// Records an epoch durably (before any entry of it is written, or
    /// any vote in it answered), with the node's vote in it.
    pub fn set_epoch(&mut self, epoch: Epoch, vote: Option<&str>) -> io::Result<()> {
        match self {
            Log::Memory(m) => {
                m.epoch = epoch;
                m.vote = vote.map(str::to_string);
                Ok(())
            }
            Log::Disk(d) => d.set_epoch(epoch, vote),
        }
    }

    /// Leaves segment rolls' syncs to whoever syncs the sync point (a
    /// node with a syncer thread), so that no write waits on a roll;
    /// `stored_means_synced` under `--fsync always` (a failed roll is then
    /// never tried again).
    pub fn defer_rolls(&mut self, stored_means_synced: bool) {
        if let Log::Disk(d) = self {
            d.defer_rolls(stored_means_synced);
        }
    }

    /// Testing aid (`--fail-storage-while`): while `path` exists, writes
    /// fail as if the disk were full. Memory logs cannot fail.
    pub fn set_fault_file(&mut self, path: Option<std::path::PathBuf>) {
        if let Log::Disk(d) = self {
            d.set_fault_file(path);
        }
    }

    /// What a sync must cover to make everything written so far durable
    /// (the file being written, and a roll still pending),
    /// or `None` if this log has nothing to sync (memory).
    pub fn sync_point(&self) -> Option<roll::SyncPoint> {
        match self {
            Log::Memory(_) => None,
            Log::Disk(d) => Some(d.sync_point()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(seq: Seq) -> Entry {
        Entry {
            epoch: 1,
            seq,
            log: crate::entry::DEFAULT_LOG,
            number: seq,
            key: None,
            message: bytes::Bytes::from_static(b"m"),
        }
    }

    #[test]
    fn appends_with_a_gap_or_a_repeat_anywhere_in_the_batch_are_refused() {
        let mut log = Log::memory();
        log.append(&[e(1), e(2)]).unwrap();
        assert!(log.append(&[e(3), e(5)]).is_err(), "gap inside the batch");
        assert!(
            log.append(&[e(3), e(3)]).is_err(),
            "repeat inside the batch"
        );
        assert!(log.append(&[e(2)]).is_err(), "first entry out of order");
        assert_eq!(log.last().seq, 2, "nothing of a refused batch is kept");
        log.append(&[e(3), e(4)]).unwrap();
    }
}
