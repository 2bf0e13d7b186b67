//! Log entries and positions: the values every other module passes around.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A sequence number. The first entry is 1; 0 means "nothing yet".
pub type Seq = u64;

/// A log's id in the cluster: 0 is the log named `default`, which always
/// exists (and which every entry written before logs had names belongs to).
pub type LogId = u32;

/// The log named `default`.
pub const DEFAULT_LOG: LogId = 0;

/// A master epoch. The master starts a new one every time it starts, so an
/// entry's `(epoch, seq)` names it uniquely across master restarts.
pub type Epoch = u64;

/// Epochs stay below 2^53, which also keeps an epoch exact in JSON (a
/// double). Every epoch is one more than one before it, and elections come
/// at most about once per election timeout: at one per millisecond this is
/// 285,000 years away. An epoch at or above it can only come from a forged
/// or corrupt frame, and is refused wherever it arrives; with every
/// accepted epoch below it, `epoch + 1` cannot wrap.
pub const EPOCH_LIMIT: Epoch = 1 << 53;

/// The epoch after `epoch`, or `None` if that would reach [`EPOCH_LIMIT`].
pub fn next_epoch(epoch: Epoch) -> Option<Epoch> {
    epoch.checked_add(1).filter(|e| *e < EPOCH_LIMIT)
}

/// The key of a configuration entry ([`Entry::config`]): keys that start
/// with a NUL byte are the log's own.
pub const CONFIG_KEY: &str = "\0config";

/// The key of a stripped entry ([`Entry::stripped`]).
pub const STRIPPED_KEY: &str = "\0stripped";

/// One entry of the replicated log: a message of one of the cluster's
/// logs, or one of the entries the replicated log keeps for itself
/// ([`Entry::is_control`]).
///
/// Two numbers place it. `seq` is its position in the replicated log,
/// which every entry takes (markers and configuration entries too):
/// replication, elections, the commit mark and retention count in it.
/// `number` is a message's number in its log (`log`), which only that
/// log's messages take, so that a reader of one log sees 1, 2, 3, ...
/// without gaps; a control entry has number 0. Both are fixed by the master
/// that writes the entry and replicated with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Epoch of the master that assigned `seq`.
    pub epoch: Epoch,
    /// Position in the replicated log, from 1, without gaps.
    pub seq: Seq,
    /// The log a message belongs to ([`DEFAULT_LOG`] for a control entry).
    pub log: LogId,
    /// A message's number in its log, from 1, without gaps; 0 for a
    /// control entry.
    pub number: Seq,
    /// The client's request key, kept so that a retried append is answered
    /// with this entry instead of creating a second one.
    #[serde(deserialize_with = "crate::wire::bounded::opt_string::deserialize")]
    pub key: Option<String>,
    /// The message: arbitrary bytes.
    #[serde(with = "crate::wire::bounded::bytes_field")]
    pub message: Bytes,
}

impl Entry {
    /// The marker a master writes first in its epoch, when it was elected:
    /// an empty key, no message, and `list` does not show it. Entries of older
    /// epochs count as committed only once an entry of the master's own
    /// epoch after them is on a majority (Raft's commit rule), and this is
    /// that entry. It is told apart by its key, which is empty: no client
    /// can send an empty key (it is refused as a bad request).
    pub fn marker(epoch: Epoch, seq: Seq) -> Entry {
        Entry {
            epoch,
            seq,
            log: DEFAULT_LOG,
            number: 0,
            key: Some(String::new()),
            message: Bytes::new(),
        }
    }

    /// A message: `message` as number `number` of log `log`, at `seq`.
    pub fn message(
        (epoch, seq): (Epoch, Seq),
        (log, number): (LogId, Seq),
        key: Option<String>,
        message: Bytes,
    ) -> Entry {
        Entry {
            epoch,
            seq,
            log,
            number,
            key,
            message,
        }
    }

    /// Whether this is an epoch's marker (see [`Entry::marker`]).
    pub fn is_marker(&self) -> bool {
        self.key.as_deref() == Some("")
    }

    /// A configuration entry: the cluster's members from here on, as
    /// `crate::replication::membership` writes them. `list` does not show
    /// it. It is told apart by its key, [`CONFIG_KEY`], which no client
    /// can send (a key starting with a NUL byte is refused as a bad
    /// request).
    pub fn config(epoch: Epoch, seq: Seq, members: Bytes) -> Entry {
        Entry {
            epoch,
            seq,
            log: DEFAULT_LOG,
            number: 0,
            key: Some(CONFIG_KEY.to_string()),
            message: members,
        }
    }

    /// What is left of a message of a deleted log once compaction freed its
    /// bytes: its place in the replicated log and nothing else, a control
    /// entry that `list` does not show (key [`STRIPPED_KEY`], which no
    /// client can send). Replication sends it as it is stored, so that a
    /// node catching up holds every sequence number still.
    pub fn stripped(epoch: Epoch, seq: Seq) -> Entry {
        Entry {
            epoch,
            seq,
            log: DEFAULT_LOG,
            number: 0,
            key: Some(STRIPPED_KEY.to_string()),
            message: Bytes::new(),
        }
    }

    /// Whether this is a stripped entry (see [`Entry::stripped`]).
    pub fn is_stripped(&self) -> bool {
        self.key.as_deref() == Some(STRIPPED_KEY)
    }

    /// Whether this is a configuration entry (see [`Entry::config`]).
    pub fn is_config(&self) -> bool {
        self.key.as_deref() == Some(CONFIG_KEY)
    }

    /// Whether the log keeps this entry for itself (a marker, a
    /// configuration entry, a catalog entry: an empty key or one that
    /// starts with a NUL byte, which no client can send): it takes no
    /// message number, and `list` leaves it out.
    pub fn is_control(&self) -> bool {
        self.key
            .as_deref()
            .is_some_and(|k| k.is_empty() || k.starts_with('\0'))
    }
}

/// Where a log ends: the epoch and sequence number of its last entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// Epoch of the last entry (0 for an empty log).
    pub epoch: Epoch,
    /// Sequence number of the last entry (0 for an empty log).
    pub seq: Seq,
}
