//! The record: how one entry is laid out in a segment (and a rollback
//! file), encoded, checked and decoded, and how records are read from a
//! file in chunks.
//!
//! A record is an 8-byte header (the payload's length, then a CRC32C of
//! the length and the payload), then the payload: epoch, seq, the key's
//! length (`u32::MAX` for none) and bytes, the message's length and bytes,
//! all little-endian.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::entry::{Entry, Epoch, Seq};

pub(super) const HEADER: usize = 8;
/// A record longer than this cannot be valid (messages are capped far lower).
pub(super) const MAX_RECORD: usize = 512 * 1024 * 1024;
const NO_KEY: u32 = u32::MAX;

/// Bytes read at once when recovering a segment.
pub(super) const RECOVERY_CHUNK: u64 = 1024 * 1024;

/// Bytes read at once when reading entries in order.
pub(super) const READ_CHUNK: u64 = 256 * 1024;

/// Encodes one entry as a record, appended to `buf`.
pub fn encode_record(e: &Entry, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    buf.extend_from_slice(&e.epoch.to_le_bytes());
    buf.extend_from_slice(&e.seq.to_le_bytes());
    match &e.key {
        Some(k) => {
            buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
            buf.extend_from_slice(k.as_bytes());
        }
        None => buf.extend_from_slice(&NO_KEY.to_le_bytes()),
    }
    buf.extend_from_slice(&(e.message.len() as u32).to_le_bytes());
    buf.extend_from_slice(&e.message);
    let len = (buf.len() - start - HEADER) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), &buf[start + HEADER..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What decoding the record at the start of `buf` found: the record
/// borrowed from `buf` (nothing is copied until an entry is wanted).
pub(super) enum Decoded<'a> {
    /// A valid record of this many bytes.
    Entry(Record<'a>, usize),
    /// Not enough bytes for the record the header announces.
    Incomplete,
    /// Checksum or structure wrong.
    Bad(&'static str),
}

/// A valid record, borrowed from the buffer it was read into.
pub(super) struct Record<'a> {
    pub(super) epoch: Epoch,
    pub(super) seq: Seq,
    pub(super) key: Option<&'a str>,
    pub(super) message: &'a [u8],
}

impl Record<'_> {
    /// What it records, if it is a configuration entry
    /// ([`Entry::is_config`]).
    pub(super) fn config(&self) -> Option<bytes::Bytes> {
        (self.key == Some(crate::entry::CONFIG_KEY))
            .then(|| bytes::Bytes::copy_from_slice(self.message))
    }

    pub(super) fn to_entry(&self) -> Entry {
        Entry {
            epoch: self.epoch,
            seq: self.seq,
            key: self.key.map(str::to_string),
            message: bytes::Bytes::copy_from_slice(self.message),
        }
    }
}

pub(super) fn decode_record(buf: &[u8]) -> Decoded<'_> {
    if buf.len() < HEADER {
        return Decoded::Incomplete;
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if len > MAX_RECORD {
        return Decoded::Bad("impossible record length");
    }
    if buf.len() < HEADER + len {
        return Decoded::Incomplete;
    }
    let payload = &buf[HEADER..HEADER + len];
    if crc32c::crc32c_append(crc32c::crc32c(&buf[0..4]), payload) != crc {
        return Decoded::Bad("checksum mismatch");
    }
    let mut p = payload;
    let mut take = |n: usize| -> Option<&[u8]> {
        if p.len() < n {
            return None;
        }
        let (a, b) = p.split_at(n);
        p = b;
        Some(a)
    };
    let parsed = (|| {
        let epoch = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let seq = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let key_len = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let key = if key_len == NO_KEY {
            None
        } else {
            Some(std::str::from_utf8(take(key_len as usize)?).ok()?)
        };
        let msg_len = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let message = take(msg_len as usize)?;
        Some(Record {
            epoch,
            seq,
            key,
            message,
        })
    })();
    match parsed {
        Some(r) if p.is_empty() => Decoded::Entry(r, HEADER + len),
        _ => Decoded::Bad("record does not parse"),
    }
}

/// The bytes the record starting `rest` takes, if its header is there and
/// plausible; 0 if not known yet.
pub(super) fn record_need(rest: &[u8]) -> u64 {
    decode_len(rest)
        .filter(|len| *len <= MAX_RECORD)
        .map_or(0, |len| (HEADER + len) as u64)
}

/// Reads `want` bytes of `file` from `pos` into `buf` (never past `end`):
/// a chunk for reading records in order, or a whole record larger than
/// one. A record whose header was not in the buffer yet gets a chunk first,
/// and its full length on the next refill.
pub(super) fn refill(
    file: &File,
    pos: u64,
    end: u64,
    want: u64,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    buf.resize(want.min(end - pos) as usize, 0);
    file.read_exact_at(buf, pos)
}

pub(super) fn decode_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= 4).then(|| u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize)
}
