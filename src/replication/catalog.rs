//! The cluster's named logs: which exist, by name and id.
//!
//! Every log but `default` is created and deleted by an entry of the
//! replicated log, a *catalog entry* (key [`CATALOG_KEY`]), so that every
//! node agrees on which logs exist and a failover keeps what was created.
//! Its message is one line of text: `create ID NAME`, followed by
//! `bytes=B` and `age=SECONDS` for a log with its own retention, `delete ID
//! NAME`, or `trim ID NAME N`: the master's retention deleted the log's
//! messages up to number N (see [`Logs::trimmed`]). Ids are given in order
//! and never again, so a log deleted and created again under its name is a
//! new log, numbered from 1.
//!
//! A node acts on the catalog its log holds, committed or not, as it does
//! on configuration entries: an append to a log created by an entry not yet
//! committed comes after that entry, so a failover that cuts the one cuts
//! the other. The catalog is followed from the entries a core writes and
//! cuts ([`Catalog`]); what retention deleted or a reset skipped is kept as
//! the catalog at the base (`base.logs` on disk, and in a reset's frame).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::entry::{Entry, Epoch, LogId, Seq, DEFAULT_LOG};

/// The key of a catalog entry (keys that start with a NUL byte are the
/// log's own: no client can send one).
pub const CATALOG_KEY: &str = "\0log";

/// The name of the log that always exists, id [`DEFAULT_LOG`].
pub const DEFAULT_NAME: &str = "default";

/// Longest log name, in bytes (Kafka allows 249 for a topic).
pub const MAX_NAME_BYTES: usize = 200;

/// Why a log's or a consumer group's name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing.
    #[error("a name cannot be empty")]
    Empty,
    /// Over [`MAX_NAME_BYTES`].
    #[error("the name is {0} bytes, over the {MAX_NAME_BYTES} allowed")]
    TooLong(usize),
    /// `.` or `..`, which name directories, not logs.
    #[error("'{0}' cannot be a name")]
    Dots(String),
    /// A character other than ASCII letters, digits, `.`, `_` and `-`.
    #[error("the name {0:?} holds {1:?}: use only ASCII letters, digits, '.', '_' and '-'")]
    Character(String, char),
}

/// Checks a log name: 1 to [`MAX_NAME_BYTES`] bytes of ASCII letters,
/// digits, `.`, `_` and `-` (Kafka's rule for topics), and neither `.` nor
/// `..`. So no name holds a `/`, a space or a control character, and every
/// name is safe in a path, a URL and a shell.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong(name.len()));
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots(name.to_string()));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(NameError::Character(name.to_string(), c)),
        None => Ok(()),
    }
}

/// A log's own retention (`replog log create --retention-bytes B
/// --retention-age D`): what of its messages the master deletes, as a
/// node's `--retention-*` do for the whole log on that node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogRetention {
    /// Keep at least this many bytes of its messages, and no more than a
    /// segment's worth beyond.
    pub bytes: Option<u64>,
    /// Delete its messages older than this many seconds.
    pub age_secs: Option<u64>,
}

impl LogRetention {
    /// Whether it deletes anything.
    pub fn is_on(&self) -> bool {
        self.bytes.is_some() || self.age_secs.is_some()
    }

    /// `" bytes=B age=S"`, each part only if set.
    fn words(&self) -> String {
        let mut w = String::new();
        if let Some(b) = self.bytes {
            w.push_str(&format!(" bytes={b}"));
        }
        if let Some(a) = self.age_secs {
            w.push_str(&format!(" age={a}"));
        }
        w
    }

    /// Takes one `bytes=B` or `age=S` word; false for any other.
    fn take(&mut self, word: &str) -> bool {
        let number = |v: &str| v.parse::<u64>().ok();
        match word.split_once('=') {
            Some(("bytes", v)) if self.bytes.is_none() => {
                self.bytes = number(v);
                self.bytes.is_some()
            }
            Some(("age", v)) if self.age_secs.is_none() => {
                self.age_secs = number(v);
                self.age_secs.is_some()
            }
            _ => false,
        }
    }
}

/// One catalog entry's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Log `id` is created as `name`.
    Create {
        /// Its id.
        id: LogId,
        /// Its name.
        name: String,
        /// Its own retention (none: only the nodes' `--retention-*`).
        retention: LogRetention,
    },
    /// Log `id`, named `name`, is deleted.
    Delete {
        /// Its id.
        id: LogId,
        /// Its name.
        name: String,
    },
    /// The master's retention deleted log `id`'s messages numbered up to
    /// `through`.
    Trim {
        /// Its id.
        id: LogId,
        /// Its name.
        name: String,
        /// The last number deleted.
        through: Seq,
    },
}

impl Change {
    /// The entry that records this change.
    pub fn entry(&self, epoch: Epoch, seq: Seq) -> Entry {
        Entry {
            epoch,
            seq,
            log: DEFAULT_LOG,
            number: 0,
            key: Some(CATALOG_KEY.to_string()),
            message: self.encode(),
        }
    }

    /// The entry's text.
    pub fn encode(&self) -> Bytes {
        Bytes::from(match self {
            Change::Create {
                id,
                name,
                retention,
            } => format!("create {id} {name}{}\n", retention.words()),
            Change::Delete { id, name } => format!("delete {id} {name}\n"),
            Change::Trim { id, name, through } => format!("trim {id} {name} {through}\n"),
        })
    }

    /// Reads what [`Change::encode`] wrote; refuses anything else.
    pub fn decode(bytes: &[u8]) -> Result<Change, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        let line = text.strip_suffix('\n').unwrap_or(text);
        let mut words = line.split(' ');
        let (word, id, name) = match (words.next(), words.next(), words.next()) {
            (Some(w), Some(id), Some(name)) => (w, id, name),
            _ => return Err(format!("'{line}' is not 'create|delete|trim ID NAME ...'")),
        };
        let rest: Vec<&str> = words.collect();
        let id: LogId = id.parse().map_err(|_| format!("'{id}' is not a log id"))?;
        check_name(name).map_err(|e| e.to_string())?;
        let name = name.to_string();
        let bad = || format!("'{line}' is not a catalog change");
        match (word, id, &rest[..]) {
            (_, DEFAULT_LOG, _) => Err("log 0 is the default log's".to_string()),
            ("create", _, words) => {
                let mut retention = LogRetention::default();
                if !words.iter().all(|w| retention.take(w)) {
                    return Err(bad());
                }
                Ok(Change::Create {
                    id,
                    name,
                    retention,
                })
            }
            ("delete", _, []) => Ok(Change::Delete { id, name }),
            ("trim", _, [n]) => {
                let through = n.parse().map_err(|_| bad())?;
                Ok(Change::Trim { id, name, through })
            }
            _ => Err(bad()),
        }
    }
}

/// The logs that exist, besides `default`, and the next id to give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logs {
    /// Name -> id.
    by_name: BTreeMap<String, LogId>,
    /// The last id given (0: none yet).
    last_id: LogId,
    /// Each log's own retention, and the last number the master's retention
    /// deleted of it, for logs that have either.
    kept: BTreeMap<LogId, (LogRetention, Seq)>,
}

impl Logs {
    /// The id of the log named `name`, if it exists.
    pub fn id_of(&self, name: &str) -> Option<LogId> {
        if name == DEFAULT_NAME {
            return Some(DEFAULT_LOG);
        }
        self.by_name.get(name).copied()
    }

    /// The name of log `id`, if it exists.
    pub fn name_of(&self, id: LogId) -> Option<String> {
        if id == DEFAULT_LOG {
            return Some(DEFAULT_NAME.to_string());
        }
        (self.by_name.iter()).find_map(|(n, i)| (*i == id).then(|| n.clone()))
    }

    /// Whether log `id` exists.
    pub fn exists(&self, id: LogId) -> bool {
        id == DEFAULT_LOG || self.by_name.values().any(|i| *i == id)
    }

    /// The id the next log created gets.
    pub fn next_id(&self) -> LogId {
        self.last_id + 1
    }

    /// Every log, `default` first, then by name: (name, id).
    pub fn all(&self) -> Vec<(String, LogId)> {
        std::iter::once((DEFAULT_NAME.to_string(), DEFAULT_LOG))
            .chain(self.by_name.iter().map(|(n, i)| (n.clone(), *i)))
            .collect()
    }

    /// How many logs there are besides `default`.
    pub fn count(&self) -> usize {
        self.by_name.len()
    }

    /// Log `id`'s own retention.
    pub fn retention(&self, id: LogId) -> LogRetention {
        self.kept.get(&id).map(|k| k.0).unwrap_or_default()
    }

    /// The last number of log `id` the master's retention deleted (0:
    /// none): its messages up to it are no longer read, on any node.
    pub fn trimmed(&self, id: LogId) -> Seq {
        self.kept.get(&id).map_or(0, |k| k.1)
    }

    /// Whether message `number` of log `id` is no longer read: its log was
    /// deleted, or the master's retention deleted it.
    pub fn deleted_or_trimmed(&self, id: LogId, number: Seq) -> bool {
        !self.exists(id) || number <= self.trimmed(id)
    }

    /// The last number trimmed of each log with one.
    pub fn trims(&self) -> BTreeMap<LogId, Seq> {
        (self.kept.iter())
            .filter(|(_, (_, t))| *t > 0)
            .map(|(id, (_, t))| (*id, *t))
            .collect()
    }

    /// The logs with their own retention: (id, retention, trimmed).
    pub fn retained(&self) -> Vec<(LogId, LogRetention, Seq)> {
        (self.kept.iter())
            .filter(|(_, (r, _))| r.is_on())
            .map(|(id, (r, t))| (*id, *r, *t))
            .collect()
    }

    /// Takes a change, in the log's order.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Create {
                id,
                name,
                retention,
            } => {
                self.by_name.insert(name.clone(), *id);
                self.last_id = self.last_id.max(*id);
                if retention.is_on() {
                    self.kept.insert(*id, (*retention, 0));
                }
            }
            Change::Delete { id, name } => {
                if self.by_name.get(name) == Some(id) {
                    self.by_name.remove(name);
                    self.kept.remove(id);
                }
                self.last_id = self.last_id.max(*id);
            }
            Change::Trim { id, name, through } => {
                if self.by_name.get(name) == Some(id) {
                    let kept = self.kept.entry(*id).or_default();
                    kept.1 = kept.1.max(*through);
                }
            }
        }
    }

    /// The text of `base.logs` and of a reset's catalog: the last id
    /// given, then `ID NAME` for each log, followed by its retention's
    /// words and `trimmed=N` if it has them.
    pub fn encode(&self) -> Bytes {
        let mut text = format!("{}\n", self.last_id);
        for (name, id) in &self.by_name {
            let (retention, trimmed) = self.kept.get(id).copied().unwrap_or_default();
            text.push_str(&format!("{id} {name}{}", retention.words()));
            if trimmed > 0 {
                text.push_str(&format!(" trimmed={trimmed}"));
            }
            text.push('\n');
        }
        Bytes::from(text)
    }

    /// Reads what [`Logs::encode`] wrote; refuses anything else. Empty
    /// text is no log.
    pub fn decode(bytes: &[u8]) -> Result<Logs, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        let mut lines = text.lines();
        let mut logs = Logs::default();
        let Some(first) = lines.next() else {
            return Ok(logs);
        };
        logs.last_id = first
            .parse()
            .map_err(|_| format!("'{first}' is not a log id"))?;
        for line in lines {
            let mut words = line.split(' ');
            let (Some(id), Some(name)) = (words.next(), words.next()) else {
                return Err(format!("'{line}' is not 'ID NAME'"));
            };
            let id: LogId = id.parse().map_err(|_| format!("'{id}' is not a log id"))?;
            check_name(name).map_err(|e| e.to_string())?;
            if id == DEFAULT_LOG || id > logs.last_id {
                return Err(format!("log id {id} was never given"));
            }
            let (mut retention, mut trimmed) = (LogRetention::default(), 0);
            for w in words {
                match w.strip_prefix("trimmed=").map(str::parse::<Seq>) {
                    Some(Ok(n)) if trimmed == 0 => trimmed = n,
                    None if retention.take(w) => {}
                    _ => {
                        return Err(format!(
                            "'{line}' is not 'ID NAME [bytes=B] [age=S] [trimmed=N]'"
                        ))
                    }
                }
            }
            if retention.is_on() || trimmed > 0 {
                logs.kept.insert(id, (retention, trimmed));
            }
            logs.by_name.insert(name.to_string(), id);
        }
        Ok(logs)
    }
}

/// The catalog a node acts on: the logs at the base of its log, and the
/// changes its log holds after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// The logs at the base.
    at_base: Logs,
    /// The catalog entries after the base, in order.
    changes: Vec<(Seq, Change)>,
    /// `at_base` with `changes` applied.
    current: Logs,
    /// Counts the changes to `current`, so that whoever copies it knows
    /// when to copy it again.
    version: u64,
}

impl Catalog {
    /// The catalog of a log whose base had `at_base` and which holds
    /// `changes` after it.
    pub fn new(at_base: Logs, changes: Vec<(Seq, Change)>) -> Self {
        let mut c = Catalog {
            at_base,
            changes,
            current: Logs::default(),
            version: 0,
        };
        c.recompute();
        c
    }

    fn recompute(&mut self) {
        let mut logs = self.at_base.clone();
        self.changes.iter().for_each(|(_, c)| logs.apply(c));
        self.current = logs;
        self.version += 1;
    }

    /// Changes whenever the logs that exist may have.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The logs that exist now.
    pub fn logs(&self) -> &Logs {
        &self.current
    }

    /// The logs at the base.
    pub fn at_base(&self) -> &Logs {
        &self.at_base
    }

    /// A catalog entry written to the log.
    pub fn push(&mut self, seq: Seq, change: Change) {
        self.current.apply(&change);
        self.version += 1;
        self.changes.push((seq, change));
    }

    /// The log was cut after `after`: its changes after it are undone.
    pub fn cut(&mut self, after: Seq) {
        if self.changes.last().is_some_and(|(s, _)| *s > after) {
            self.changes.retain(|(s, _)| *s <= after);
            self.recompute();
        }
    }

    /// Retention deleted the log up to `base`: the changes up to it are
    /// the base's now.
    pub fn compacted(&mut self, base: Seq) {
        let n = self.changes.partition_point(|(s, _)| *s <= base);
        for (_, c) in self.changes.drain(..n) {
            self.at_base.apply(&c);
        }
    }

    /// The log starts again after a base where the catalog was `at_base`.
    pub fn reset(&mut self, at_base: Logs) {
        self.at_base = at_base;
        self.changes.clear();
        self.recompute();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(id: LogId, name: &str) -> Change {
        Change::Create {
            id,
            name: name.into(),
            retention: LogRetention::default(),
        }
    }

    #[test]
    fn names_are_letters_digits_dots_dashes_and_underscores() {
        for ok in ["orders", "a", "payments-2026.v1", "x_y", &"n".repeat(200)] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name(&"n".repeat(201)), Err(NameError::TooLong(201)));
        assert_eq!(check_name(".."), Err(NameError::Dots("..".into())));
        assert_eq!(check_name("."), Err(NameError::Dots(".".into())));
        for (bad, c) in [
            ("a/b", '/'),
            ("a b", ' '),
            ("a\nb", '\n'),
            ("a\0", '\0'),
            ("é", 'é'),
        ] {
            assert_eq!(check_name(bad), Err(NameError::Character(bad.into(), c)));
        }
        // A name with dots that is not a directory's is fine.
        assert_eq!(check_name("..a"), Ok(()));
    }

    #[test]
    fn a_change_is_read_back_and_anything_else_refused() {
        for c in [
            create(3, "orders"),
            Change::Delete {
                id: 9,
                name: "x".into(),
            },
        ] {
            assert_eq!(Change::decode(&c.encode()), Ok(c.clone()));
            let e = c.entry(2, 40);
            assert!(e.is_control() && e.number == 0);
        }
        for bad in [
            "create 0 x\n",
            "create 1\n",
            "rename 1 x\n",
            "create 1 a/b\n",
            "create x y\n",
        ] {
            assert!(Change::decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_catalog_follows_creates_deletes_cuts_retention_and_resets() {
        let mut c = Catalog::default();
        assert_eq!(c.logs().id_of("default"), Some(DEFAULT_LOG));
        assert_eq!(c.logs().id_of("orders"), None);
        c.push(5, create(1, "orders"));
        c.push(9, create(2, "audit"));
        assert_eq!(c.logs().id_of("orders"), Some(1));
        assert_eq!(c.logs().next_id(), 3);
        c.push(
            12,
            Change::Delete {
                id: 1,
                name: "orders".into(),
            },
        );
        assert!(!c.logs().exists(1) && c.logs().exists(2));
        // Created again: a new log.
        c.push(14, create(3, "orders"));
        assert_eq!(c.logs().id_of("orders"), Some(3));
        // A cut undoes what it cuts.
        c.cut(12);
        assert_eq!((c.logs().id_of("orders"), c.logs().next_id()), (None, 3));
        c.cut(9);
        assert_eq!(c.logs().id_of("orders"), Some(1));
        // Retention: the base holds what came before it.
        c.compacted(6);
        assert_eq!(c.at_base().id_of("orders"), Some(1));
        assert_eq!(c.at_base().id_of("audit"), None);
        assert_eq!(c.logs().id_of("audit"), Some(2));
        // A reset takes the master's catalog at its base.
        let at_base = Logs::decode(&c.logs().encode()).unwrap();
        assert_eq!(&at_base, c.logs());
        c.reset(Logs::default());
        assert_eq!(c.logs().all(), vec![("default".to_string(), 0)]);
        c.reset(at_base);
        assert_eq!(c.logs().all().len(), 3);
        assert!(Logs::decode(b"2\n3 x\n").is_err(), "an id never given");
        assert!(Logs::decode(b"2\n1 a/b\n").is_err());
    }

    #[test]
    fn a_logs_own_retention_and_trims_are_read_back_followed_and_kept_at_the_base() {
        let retention = LogRetention {
            bytes: Some(1 << 20),
            age_secs: Some(3600),
        };
        let created = Change::Create {
            id: 4,
            name: "short".into(),
            retention,
        };
        assert_eq!(created.encode(), "create 4 short bytes=1048576 age=3600\n");
        let trim = Change::Trim {
            id: 4,
            name: "short".into(),
            through: 17,
        };
        for c in [created.clone(), trim.clone()] {
            assert_eq!(Change::decode(&c.encode()), Ok(c));
        }
        for bad in [
            "create 4 short bytes=x\n",
            "create 4 short bytes=1 bytes=2\n",
            "create 4 short size=1\n",
            "trim 4 short\n",
            "trim 4 short 1 2\n",
            "delete 4 short 1\n",
        ] {
            assert!(Change::decode(bad.as_bytes()).is_err(), "{bad}");
        }
        let mut c = Catalog::default();
        c.push(3, created);
        c.push(5, create(5, "plain"));
        c.push(8, trim);
        // A trim goes forward only, and not for another log of its name.
        c.push(
            9,
            Change::Trim {
                id: 4,
                name: "short".into(),
                through: 9,
            },
        );
        c.push(
            10,
            Change::Trim {
                id: 5,
                name: "short".into(),
                through: 90,
            },
        );
        let logs = c.logs();
        assert_eq!((logs.retention(4), logs.trimmed(4)), (retention, 17));
        assert_eq!(
            (logs.retention(5), logs.trimmed(5)),
            (LogRetention::default(), 0)
        );
        assert_eq!(logs.retained(), vec![(4, retention, 17)]);
        assert!(logs.deleted_or_trimmed(4, 17) && !logs.deleted_or_trimmed(4, 18));
        assert!(logs.deleted_or_trimmed(9, 1), "a log that does not exist");
        // Kept at the base, and through a reset's text.
        c.compacted(10);
        let text = c.at_base().encode();
        assert_eq!(Logs::decode(&text).as_ref(), Ok(c.at_base()));
        assert!(
            String::from_utf8_lossy(&text).contains("4 short bytes=1048576 age=3600 trimmed=17\n")
        );
        // A cut takes a trim back; a deletion takes the retention with it.
        c.push(
            12,
            Change::Trim {
                id: 4,
                name: "short".into(),
                through: 30,
            },
        );
        c.cut(11);
        assert_eq!(c.logs().trimmed(4), 17);
        c.push(
            13,
            Change::Delete {
                id: 4,
                name: "short".into(),
            },
        );
        assert_eq!(c.logs().retained(), vec![]);
        assert!(Logs::decode(b"4\n4 short trimmed=x\n").is_err());
        assert!(Logs::decode(b"4\n4 short colour=red\n").is_err());
    }
}
