//! Consumer groups: where each group has read each log up to.
//!
//! A group's position in a log is the number of the last message the group
//! has read there (0: none yet); a consumer of the group starts after it.
//! Setting or deleting positions is an entry of the replicated log, a
//! *group entry* (key [`GROUP_KEY`]), which the master writes and answers
//! once a majority holds it: so a position a consumer was told is
//! committed survives failovers and restarts as every acknowledged entry
//! does. Its message is one line of text: `set GROUP LOG NUMBER` or
//! `delete GROUP`.
//!
//! Unlike catalog entries, group entries are many (a consumer commits as
//! it reads), so nobody keeps them: a node keeps the positions they leave
//! ([`Positions`]), and its log on disk what each segment's entries did
//! ([`Delta`]) and the positions at its base (`base.groups`), from which it
//! says the positions again after a cut, as it does each log's numbers
//! (see `super::numbers`).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::entry::{Entry, Epoch, LogId, Seq, DEFAULT_LOG};

/// The key of a group entry (keys that start with a NUL byte are the log's
/// own: no client can send one).
pub const GROUP_KEY: &str = "\0group";

/// One group entry's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    /// Group `group` has read log `log` up to message `number`.
    Set {
        /// The group's name (`catalog::check_name`).
        group: String,
        /// The log.
        log: LogId,
        /// The last message read (0: none).
        number: Seq,
    },
    /// Group `group` is gone, with its positions in every log.
    Delete {
        /// The group's name.
        group: String,
    },
}

impl GroupChange {
    /// The entry that records this change.
    pub fn entry(&self, epoch: Epoch, seq: Seq) -> Entry {
        Entry {
            epoch,
            seq,
            log: DEFAULT_LOG,
            number: 0,
            key: Some(GROUP_KEY.to_string()),
            message: self.encode(),
        }
    }

    /// The entry's text.
    pub fn encode(&self) -> Bytes {
        Bytes::from(match self {
            GroupChange::Set { group, log, number } => format!("set {group} {log} {number}\n"),
            GroupChange::Delete { group } => format!("delete {group}\n"),
        })
    }

    /// Reads what [`GroupChange::encode`] wrote; refuses anything else.
    pub fn decode(bytes: &[u8]) -> Result<GroupChange, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        let line = text.strip_suffix('\n').unwrap_or(text);
        let words: Vec<&str> = line.split(' ').collect();
        let change = match words[..] {
            ["set", group, log, number] => GroupChange::Set {
                group: group.to_string(),
                log: log
                    .parse()
                    .map_err(|_| format!("'{log}' is not a log id"))?,
                number: (number.parse()).map_err(|_| format!("'{number}' is not a number"))?,
            },
            ["delete", group] => GroupChange::Delete {
                group: group.to_string(),
            },
            _ => {
                return Err(format!(
                    "'{line}' is not 'set GROUP LOG NUMBER' or 'delete GROUP'"
                ))
            }
        };
        let (GroupChange::Set { group, .. } | GroupChange::Delete { group }) = &change;
        super::catalog::check_name(group).map_err(|e| e.to_string())?;
        Ok(change)
    }
}

/// What an entry does to the positions: a group entry's change, or a
/// catalog entry's deletion of a log, whose positions go with it (ids are
/// never given again, so they could only be read by mistake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A group entry.
    Change(GroupChange),
    /// A catalog entry deleting log `0`.
    LogDeleted(LogId),
}

/// What the entry of key `key` and message `message` does to the
/// positions, if anything. An unreadable group or catalog entry does
/// nothing (a master wrote it).
pub fn effect(key: Option<&str>, message: &[u8]) -> Option<Effect> {
    match key? {
        GROUP_KEY => GroupChange::decode(message).ok().map(Effect::Change),
        super::catalog::CATALOG_KEY => match super::catalog::Change::decode(message).ok()? {
            super::catalog::Change::Delete { id, .. } => Some(Effect::LogDeleted(id)),
            super::catalog::Change::Create { .. } | super::catalog::Change::Trim { .. } => None,
        },
        _ => None,
    }
}

/// Every group's position in each log it has one in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    /// Group -> log -> last message read.
    groups: BTreeMap<String, BTreeMap<LogId, Seq>>,
}

impl Positions {
    /// Takes what an entry does, in the log's order.
    pub fn take(&mut self, effect: &Effect) {
        match effect {
            Effect::Change(change) => self.apply(change),
            Effect::LogDeleted(log) => self.retain_logs(|l| l != *log),
        }
    }

    /// Takes a change, in the log's order.
    pub fn apply(&mut self, change: &GroupChange) {
        match change {
            GroupChange::Set { group, log, number } => {
                self.groups
                    .entry(group.clone())
                    .or_default()
                    .insert(*log, *number);
            }
            GroupChange::Delete { group } => {
                self.groups.remove(group);
            }
        }
    }

    /// Takes what a stretch of later entries did.
    pub fn then(&mut self, delta: &Delta) {
        for group in &delta.deleted {
            self.groups.remove(group);
        }
        if !delta.deleted_logs.is_empty() {
            self.retain_logs(|l| !delta.deleted_logs.contains(&l));
        }
        for (group, logs) in &delta.set.groups {
            let mine = self.groups.entry(group.clone()).or_default();
            mine.extend(logs.iter().map(|(l, n)| (*l, *n)));
        }
    }

    /// Group `group`'s position in log `log`, if it has one.
    pub fn get(&self, group: &str, log: LogId) -> Option<Seq> {
        self.groups.get(group)?.get(&log).copied()
    }

    /// Whether group `group` has a position anywhere.
    pub fn has(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// `(group, log, position)` for every position, by group then log.
    pub fn iter(&self) -> impl Iterator<Item = (&str, LogId, Seq)> + '_ {
        (self.groups.iter())
            .flat_map(|(g, logs)| logs.iter().map(move |(l, n)| (g.as_str(), *l, *n)))
    }

    /// How many positions there are.
    pub fn count(&self) -> usize {
        self.groups.values().map(BTreeMap::len).sum()
    }

    /// Keeps only the positions in logs that `keep`.
    pub fn retain_logs(&mut self, exists: impl Fn(LogId) -> bool) {
        for logs in self.groups.values_mut() {
            logs.retain(|l, _| exists(*l));
        }
        self.groups.retain(|_, logs| !logs.is_empty());
    }

    /// The text of `base.groups` and of a reset's positions: a
    /// `GROUP LOG NUMBER` line for each.
    pub fn encode(&self) -> Bytes {
        let text: String = (self.iter())
            .map(|(g, l, n)| format!("{g} {l} {n}\n"))
            .collect();
        Bytes::from(text)
    }

    /// Reads what [`Positions::encode`] wrote; refuses anything else.
    pub fn decode(bytes: &[u8]) -> Result<Positions, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        let mut positions = Positions::default();
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let [group, log, number] = words[..] else {
                return Err(format!("'{line}' is not 'GROUP LOG NUMBER'"));
            };
            let change = GroupChange::decode(format!("set {group} {log} {number}").as_bytes())?;
            positions.apply(&change);
        }
        Ok(positions)
    }
}

/// What a stretch of entries did to the positions (a segment's, on disk):
/// the groups and logs deleted, then the positions set after that, so that
/// taking it after the positions before the stretch gives the positions
/// after it. At most one position per group and log, whatever the number
/// of entries. (A position is never set in a log after its deletion: the
/// master refuses it, and ids are never given again.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Groups deleted in the stretch.
    deleted: BTreeSet<String>,
    /// Logs deleted in the stretch.
    deleted_logs: BTreeSet<LogId>,
    /// Positions set in the stretch, after any deletion of their group.
    set: Positions,
}

impl Delta {
    /// What an entry of the stretch does, in order.
    pub fn note(&mut self, effect: &Effect) {
        match effect {
            Effect::Change(GroupChange::Delete { group }) => {
                self.deleted.insert(group.clone());
            }
            Effect::LogDeleted(log) => {
                self.deleted_logs.insert(*log);
            }
            Effect::Change(GroupChange::Set { .. }) => {}
        }
        self.set.take(effect);
    }

    /// The entry of key `key` and message `message`, if it does anything
    /// to the positions ([`effect`]).
    pub fn note_entry(&mut self, key: Option<&str>, message: &[u8]) {
        if let Some(effect) = effect(key, message) {
            self.note(&effect);
        }
    }

    /// How many groups, logs and positions it remembers.
    pub fn size(&self) -> usize {
        self.deleted.len() + self.deleted_logs.len() + self.set.count()
    }

    /// Forgets the deletions of groups and logs that had no position
    /// `before` the stretch: they only undid sets within it, which the
    /// stretch's own positions already say. What is left is bounded by the
    /// positions there were, whatever the number of groups set and deleted
    /// in the stretch.
    pub fn prune(&mut self, before: &Positions) {
        self.deleted.retain(|g| before.has(g));
        (self.deleted_logs).retain(|l| before.iter().any(|(_, log, _)| log == *l));
    }
}

/// The positions a core acts on: those its log leaves, unknown from a cut
/// until the runtime reports them (as each log's numbers are), and those
/// at the log's base, which a master sends in a reset. The default is an
/// empty log's: known, and no position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The positions after every entry the log holds; `None` while a
    /// cut's are not yet reported.
    positions: Option<Positions>,
    /// The positions at the base (`Positions`' text).
    at_base: Bytes,
    /// Counts the changes to `positions`, so that whoever copies them
    /// knows when to copy them again.
    version: u64,
}

impl Default for GroupState {
    fn default() -> Self {
        GroupState::known(Positions::default(), Bytes::new())
    }
}

impl GroupState {
    /// The positions a log leaves, and those at its base.
    pub fn known(positions: Positions, at_base: Bytes) -> Self {
        GroupState {
            positions: Some(positions),
            at_base,
            version: 1,
        }
    }

    /// The positions, unless a cut's are not yet reported.
    pub fn positions(&self) -> Option<&Positions> {
        self.positions.as_ref()
    }

    /// The positions at the base, as text.
    pub fn at_base(&self) -> &Bytes {
        &self.at_base
    }

    /// Changes whenever the positions may have.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// An entry written to the log that does something to the positions.
    pub fn push(&mut self, effect: &Effect) {
        if let Some(p) = &mut self.positions {
            p.take(effect);
            self.version += 1;
        }
    }

    /// The log was cut: the positions are unknown until reported.
    pub fn forget(&mut self) {
        self.positions = None;
        self.version += 1;
    }

    /// The runtime reports the positions the log leaves (after a cut).
    pub fn set(&mut self, positions: Positions) {
        self.positions = Some(positions);
        self.version += 1;
    }

    /// The log starts again after a base with these positions (a reset;
    /// checked when it came).
    pub fn reset(&mut self, at_base: Bytes) {
        self.set(Positions::decode(&at_base).unwrap_or_default());
        self.at_base = at_base;
    }

    /// Retention moved the base: these are the positions there.
    pub fn compacted(&mut self, at_base: Bytes) {
        self.at_base = at_base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(group: &str, log: LogId, number: Seq) -> GroupChange {
        GroupChange::Set {
            group: group.into(),
            log,
            number,
        }
    }

    #[test]
    fn a_change_is_read_back_and_anything_else_refused() {
        for c in [
            set("billing", 3, 120),
            GroupChange::Delete { group: "x".into() },
        ] {
            assert_eq!(GroupChange::decode(&c.encode()), Ok(c.clone()));
            let e = c.entry(2, 40);
            assert!(e.is_control() && e.number == 0);
        }
        for bad in [
            "set g 1\n",
            "set g x 1\n",
            "set a/b 1 1\n",
            "delete\n",
            "rename g\n",
            "set g 1 -1\n",
        ] {
            assert!(GroupChange::decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_deleted_logs_positions_go_with_it_directly_and_through_a_delta() {
        use crate::replication::catalog::{Change, CATALOG_KEY};
        let delete = |id| Change::Delete {
            id,
            name: format!("l{id}"),
        };
        let create = Change::Create {
            id: 3,
            name: "l3".into(),
            retention: Default::default(),
        };
        let entries = [
            (GROUP_KEY, set("a", 1, 5).encode()),
            (GROUP_KEY, set("a", 2, 6).encode()),
            (CATALOG_KEY, delete(1).encode()),
            (CATALOG_KEY, create.encode()),
            (GROUP_KEY, set("b", 3, 1).encode()),
        ];
        let mut before = Positions::default();
        before.apply(&set("c", 1, 9));
        let (mut direct, mut delta) = (before.clone(), Delta::default());
        for (key, message) in &entries {
            if let Some(e) = effect(Some(key), message) {
                direct.take(&e);
            }
            delta.note_entry(Some(key), message);
        }
        let mut via = before;
        via.then(&delta);
        assert_eq!(via, direct);
        assert_eq!(
            direct.iter().collect::<Vec<_>>(),
            [("a", 2, 6), ("b", 3, 1)]
        );
        // A log created takes no position; other keys do nothing.
        assert_eq!(effect(Some(CATALOG_KEY), &create.encode()), None);
        assert_eq!(effect(Some("k"), b"set a 1 1"), None);
        assert_eq!(effect(None, b""), None);
    }

    #[test]
    fn positions_follow_sets_and_deletes_and_a_delta_gives_the_same() {
        let changes = [
            set("a", 0, 5),
            set("b", 1, 2),
            set("a", 1, 7),
            GroupChange::Delete { group: "a".into() },
            set("a", 0, 9),
            set("b", 1, 3),
        ];
        let mut before = Positions::default();
        before.apply(&set("a", 2, 100));
        before.apply(&set("c", 0, 1));
        let mut direct = before.clone();
        let mut delta = Delta::default();
        for c in &changes {
            direct.apply(c);
            delta.note_entry(Some(GROUP_KEY), &c.encode());
        }
        let mut via = before.clone();
        via.then(&delta);
        assert_eq!(via, direct);
        // The delete took a's position in log 2, from before the stretch.
        assert_eq!(direct.get("a", 2), None);
        assert_eq!(direct.get("a", 0), Some(9));
        assert_eq!(direct.get("b", 1), Some(3));
        assert_eq!(direct.count(), 3);
        assert_eq!(Positions::decode(&direct.encode()), Ok(direct.clone()));
        direct.retain_logs(|l| l == 0);
        assert_eq!(
            direct.iter().collect::<Vec<_>>(),
            [("a", 0, 9), ("c", 0, 1)]
        );
        assert!(Positions::decode(b"a 1\n").is_err());
        assert!(Positions::decode(b"a/b 1 1\n").is_err());
        assert_eq!(Positions::decode(b""), Ok(Positions::default()));
    }
}
