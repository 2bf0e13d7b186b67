//! The record: how one entry is laid out in a segment (and a rollback
//! file), encoded, checked and decoded, and how records are read from a
//! file in chunks.
//!
//! A record is an 8-byte header (the payload's length, then a CRC32C of
//! the length and the payload), then the payload: epoch, seq, the key's
//! field and bytes, then the log and the number, then the message's length
//! and bytes, all little-endian.
//!
//! The key's field is [`EXTENDED`] plus the key's length ([`EXTENDED_NO_KEY`]
//! for none), and the log (u32) and the message's number in it (u64)
//! follow the key. Records written before logs had names have no such bit:
//! the field is the key's length, or `u32::MAX` for none, and nothing
//! follows the key but the message; such a record is read as a message of
//! the default log whose number is its sequence number (which is what a
//! client was told then), or as a control entry. So a data directory of an
//! older release is read in place, and its messages keep their numbers.
//!
//! A *run* ([`RUN`] in the key's field, then a count) stands for that many
//! consecutive stripped entries of one epoch from its seq on
//! ([`Entry::stripped`]): what compaction leaves of a deleted log's
//! messages, so that their bytes are freed while every sequence number
//! still reads.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::entry::{Entry, Epoch, LogId, Seq, DEFAULT_LOG};

pub(super) const HEADER: usize = 8;
/// A record longer than this cannot be valid (messages are capped far lower).
pub(super) const MAX_RECORD: usize = 512 * 1024 * 1024;
/// The key's field of a record written before logs had names, for no key.
const LEGACY_NO_KEY: u32 = u32::MAX;

/// The two top bits of the key's field that mark a record carrying its log
/// and number (a record of an older release has `00` there, a key's length
/// being far smaller, or `11`, no key).
const EXTENDED: u32 = 0x8000_0000;
const EXTENDED_MASK: u32 = 0xC000_0000;

/// The key's field of a record with its log and number and no key.
const EXTENDED_NO_KEY: u32 = EXTENDED | 0x3FFF_FFFF;

/// The key's field of a run of stripped entries (top bits `01`, which
/// neither an older release nor [`EXTENDED`] writes); a u64 count follows.
const RUN: u32 = 0x4000_0000;

/// The most entries one run stands for: compaction starts a new run past
/// it, and a record claiming more is damage (a segment's index holds an
/// offset for every 256 entries of a run).
pub(super) const MAX_RUN: u64 = 1 << 24;

/// The bytes of a run record: header, epoch, seq, field and count.
pub(super) const RUN_BYTES: u64 = (HEADER + 8 + 8 + 4 + 8) as u64;

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
            buf.extend_from_slice(&(EXTENDED | k.len() as u32).to_le_bytes());
            buf.extend_from_slice(k.as_bytes());
        }
        None => buf.extend_from_slice(&EXTENDED_NO_KEY.to_le_bytes()),
    }
    buf.extend_from_slice(&e.log.to_le_bytes());
    buf.extend_from_slice(&e.number.to_le_bytes());
    buf.extend_from_slice(&(e.message.len() as u32).to_le_bytes());
    buf.extend_from_slice(&e.message);
    seal(buf, start);
}

/// Encodes a run of `count` stripped entries of `epoch` from `seq` on,
/// appended to `buf`.
pub(super) fn encode_run(epoch: Epoch, seq: Seq, count: u64, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    buf.extend_from_slice(&epoch.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&RUN.to_le_bytes());
    buf.extend_from_slice(&count.to_le_bytes());
    seal(buf, start);
}

/// Writes the header of the record that starts at `start` in `buf`.
fn seal(buf: &mut [u8], start: usize) {
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
    pub(super) log: LogId,
    pub(super) number: Seq,
    pub(super) message: &'a [u8],
    /// The entries it stands for: 1, or a run's count (each a stripped
    /// entry, the first at `seq`).
    pub(super) count: u64,
    /// Whether it is a run record (of any count, 1 included).
    pub(super) run: bool,
}

impl Record<'_> {
    /// What it records, if it is a configuration entry
    /// ([`Entry::is_config`]).
    pub(super) fn config(&self) -> Option<bytes::Bytes> {
        (self.key == Some(crate::entry::CONFIG_KEY))
            .then(|| bytes::Bytes::copy_from_slice(self.message))
    }

    /// The last sequence number it stands for.
    pub(super) fn last(&self) -> Seq {
        self.seq + (self.count - 1)
    }

    /// Whether it is a stripped entry or a run of them.
    pub(super) fn is_stripped(&self) -> bool {
        self.key == Some(crate::entry::STRIPPED_KEY)
    }

    /// Entry `seq` of those it stands for (a run's; any other record is
    /// one entry).
    pub(super) fn at(&self, seq: Seq) -> Record<'_> {
        Record {
            seq,
            count: 1,
            run: false,
            key: self.key,
            message: self.message,
            ..*self
        }
    }

    /// Whether it is a control entry ([`Entry::is_control`]).
    pub(super) fn is_control(&self) -> bool {
        self.key
            .is_some_and(|k| k.is_empty() || k.starts_with('\0'))
    }

    pub(super) fn to_entry(&self) -> Entry {
        Entry {
            epoch: self.epoch,
            seq: self.seq,
            log: self.log,
            number: self.number,
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
        let field = u32::from_le_bytes(take(4)?.try_into().ok()?);
        if field == RUN {
            let count = u64::from_le_bytes(take(8)?.try_into().ok()?);
            // A run stands for 1 to MAX_RUN entries and ends before the
            // last sequence number there is.
            if count > MAX_RUN {
                return None;
            }
            seq.checked_add(count.checked_sub(1)?)?;
            return Some(Record {
                epoch,
                seq,
                key: Some(crate::entry::STRIPPED_KEY),
                log: DEFAULT_LOG,
                number: 0,
                message: &[],
                count,
                run: true,
            });
        }
        let extended = field & EXTENDED_MASK == EXTENDED;
        let key = match field {
            LEGACY_NO_KEY | EXTENDED_NO_KEY => None,
            _ => {
                let len = if extended { field & !EXTENDED } else { field };
                Some(std::str::from_utf8(take(len as usize)?).ok()?)
            }
        };
        let (log, number) = if extended {
            let log = u32::from_le_bytes(take(4)?.try_into().ok()?);
            (log, u64::from_le_bytes(take(8)?.try_into().ok()?))
        } else {
            // Written before logs had names: a message of the default log
            // numbered by its position, or a control entry.
            let control = key == Some("") || key == Some(crate::entry::CONFIG_KEY);
            (DEFAULT_LOG, if control { 0 } else { seq })
        };
        let msg_len = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let message = take(msg_len as usize)?;
        Some(Record {
            epoch,
            seq,
            key,
            log,
            number,
            message,
            count: 1,
            run: false,
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

/// Reads into `buf` from `pos`, never past `end`: how many bytes came.
pub(super) fn read_at_most(file: &File, buf: &mut [u8], pos: u64, end: u64) -> io::Result<usize> {
    let n = (buf.len() as u64).min(end.saturating_sub(pos)) as usize;
    file.read_exact_at(&mut buf[..n], pos)?;
    Ok(n)
}

/// The payload length and the last sequence number of the record whose
/// first [`RUN_BYTES`] bytes (or fewer, at the end of a file) are `head`,
/// read from its header alone: for records already checked.
pub(super) fn record_span(head: &[u8]) -> Option<(usize, Seq)> {
    let len = decode_len(head)?;
    let word = |at: usize| Some(u64::from_le_bytes(head.get(at..at + 8)?.try_into().ok()?));
    let seq = word(HEADER + 8)?;
    let field = u32::from_le_bytes(head.get(HEADER + 16..HEADER + 20)?.try_into().ok()?);
    if field != RUN {
        return Some((len, seq));
    }
    let count = word(HEADER + 20)?;
    Some((len, seq.checked_add(count.checked_sub(1)?)?))
}

pub(super) fn decode_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= 4).then(|| u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::CONFIG_KEY;

    /// A record as a release before logs had names wrote it.
    fn legacy_record(epoch: Epoch, seq: Seq, key: Option<&str>, message: &[u8]) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&epoch.to_le_bytes());
        payload.extend_from_slice(&seq.to_le_bytes());
        match key {
            Some(k) => {
                payload.extend_from_slice(&(k.len() as u32).to_le_bytes());
                payload.extend_from_slice(k.as_bytes());
            }
            None => payload.extend_from_slice(&LEGACY_NO_KEY.to_le_bytes()),
        }
        payload.extend_from_slice(&(message.len() as u32).to_le_bytes());
        payload.extend_from_slice(message);
        let len = (payload.len() as u32).to_le_bytes();
        let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &payload);
        [&len[..], &crc.to_le_bytes()[..], &payload[..]].concat()
    }

    fn decoded(buf: &[u8]) -> Entry {
        match decode_record(buf) {
            Decoded::Entry(r, used) => {
                assert_eq!(used, buf.len());
                r.to_entry()
            }
            _ => panic!("does not decode"),
        }
    }

    #[test]
    fn a_record_keeps_its_log_and_number_with_or_without_a_key() {
        for key in [None, Some("k".to_string()), Some(String::new())] {
            let e = Entry::message((3, 40), (7, 12), key, "hello".into());
            let mut buf = Vec::new();
            encode_record(&e, &mut buf);
            assert_eq!(decoded(&buf), e);
        }
    }

    #[test]
    fn a_record_of_an_older_release_is_a_default_log_message_numbered_by_its_seq() {
        let old = decoded(&legacy_record(2, 9, Some("k"), b"m"));
        assert_eq!((old.log, old.number, old.key.as_deref()), (0, 9, Some("k")));
        let keyless = decoded(&legacy_record(2, 10, None, b"m"));
        assert_eq!((keyless.log, keyless.number, keyless.key), (0, 10, None));
        // Control entries take no number.
        let marker = decoded(&legacy_record(2, 11, Some(""), b""));
        assert!(marker.is_marker());
        assert_eq!(marker.number, 0);
        let config = decoded(&legacy_record(2, 12, Some(CONFIG_KEY), b"voter a a:1\n"));
        assert!(config.is_config());
        assert_eq!(config.number, 0);
    }

    #[test]
    fn a_run_stands_for_its_count_of_stripped_entries_and_a_wrong_count_is_damage() {
        let mut buf = Vec::new();
        encode_run(4, 100, 7, &mut buf);
        assert_eq!(buf.len() as u64, RUN_BYTES);
        match decode_record(&buf) {
            Decoded::Entry(r, used) => {
                assert_eq!(
                    (r.seq, r.last(), r.count, r.run, used),
                    (100, 106, 7, true, buf.len())
                );
                assert_eq!(r.at(103).to_entry(), Entry::stripped(4, 103));
            }
            _ => panic!("a run does not decode"),
        }
        assert_eq!(record_span(&buf), Some((buf.len() - HEADER, 106)));
        for count in [0, MAX_RUN + 1, u64::MAX] {
            let mut bad = Vec::new();
            encode_run(4, 100, count, &mut bad);
            assert!(matches!(decode_record(&bad), Decoded::Bad(_)), "{count}");
        }
        // A stripped entry written one record each is not a run.
        let mut one = Vec::new();
        encode_record(&Entry::stripped(4, 9), &mut one);
        assert!(matches!(decode_record(&one), Decoded::Entry(r, _) if r.is_stripped() && !r.run));
    }
}
