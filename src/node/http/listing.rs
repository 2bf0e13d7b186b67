//! A listing of the log as an HTTP body, read a page at a time with the
//! binary protocol's readers (`requests::read_page`) and written as the
//! client asked: the seed's `{"messages": ["..."]}`, a JSON object of
//! entries, one JSON entry per line (NDJSON), or server-sent events.
//!
//! The next page is read only once hyper has taken the previous one for
//! the socket: a client that reads slowly holds one page, as a binary
//! `list --follow` does with its page credit, and a client that goes away
//! drops the listing. Pages are encoded off the runtime's thread, and what
//! they hold encoded counts against the node's HTTP budget (`budget.rs`).

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::watch;

use super::super::requests::{mark_of, number_at, read_page, wait_for, Waited};
use super::super::shared::Shared;
use super::budget::{json_bound, Budget};
use crate::entry::LogId;
use crate::entry::Seq;
use crate::json::{entry_json, write_entry_json};

/// How long a followed event stream may stay silent before a comment is
/// sent on it.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// How the entries are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `{"messages": ["Msg1", ...]}`: the seed's shape (a message that is
    /// not UTF-8 is an object with `message_base64`).
    Seed,
    /// `{"messages": [{"seq": 1, "message": "..."}, ...], "next": N}`.
    Object,
    /// One entry object per line.
    Ndjson,
    /// Server-sent events: `id` the seq, `data` the entry object.
    Events,
}

/// What to list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    /// The log.
    pub log: LogId,
    /// First sequence number wanted.
    pub from: Seq,
    /// Last one wanted; `None`: up to the mark when the listing starts, or
    /// for ever with `follow`.
    pub to: Option<Seq>,
    /// Most entries.
    pub max: Option<u64>,
    /// Only what is on a majority.
    pub committed: bool,
    /// Wait for new entries instead of ending at the mark.
    pub follow: bool,
}

/// A listing in progress.
struct Listing {
    shared: Arc<Shared>,
    log: LogId,
    mark: watch::Receiver<Seq>,
    next: Seq,
    /// The last number to list: a listing that does not follow lists
    /// what is visible when it starts, found at its first page.
    to: Option<Seq>,
    left: u64,
    follow: bool,
    format: Format,
    /// Entries written so far (for the separators).
    written: u64,
    /// What the encoded pages may hold.
    budget: Budget,
    /// The closing bytes are written.
    done: bool,
}

/// The body listing `range` in `format`.
pub(crate) fn body(shared: Arc<Shared>, budget: Budget, range: Range, format: Format) -> Body {
    let mark = mark_of(&shared, range.committed);
    // Nothing before the first message held is left (retention): a
    // listing from below it starts at it.
    let next = range.from.max(1);
    let to = match (range.to, range.follow) {
        (Some(to), _) => Some(to),
        (None, true) => Some(Seq::MAX),
        (None, false) => None,
    };
    let listing = Listing {
        shared,
        log: range.log,
        mark,
        next,
        to,
        left: range.max.unwrap_or(u64::MAX),
        follow: range.follow,
        format,
        written: 0,
        budget,
        done: false,
    };
    let opening = match format {
        Format::Seed | Format::Object => Some(Bytes::from_static(b"{\"messages\":[")),
        Format::Ndjson | Format::Events => None,
    };
    let rest = futures_util::stream::unfold(listing, |mut l| async move {
        let chunk = l.next_chunk().await?;
        Some((chunk, l))
    });
    let opening = futures_util::stream::iter(opening.map(Ok));
    Body::from_stream(futures_util::StreamExt::chain(opening, rest))
}

impl Listing {
    /// The next bytes of the body; `None` once it is complete.
    async fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            if self.done {
                return None;
            }
            let to = match self.to {
                Some(to) => to,
                None => {
                    let upto = *self.mark.borrow();
                    let visible = number_at(&self.shared, self.log, upto).await;
                    *self.to.insert(visible.unwrap_or(Seq::MAX))
                }
            };
            if self.left == 0 || self.next > to {
                self.done = true;
                return self.closing().map(Ok);
            }
            if self.follow {
                let waiting = wait_for(&self.shared, self.log, &mut self.mark, self.next);
                match tokio::time::timeout(KEEP_ALIVE, waiting).await {
                    Ok(Waited::Ready) => {}
                    // The node stops, or the log was deleted: the listing
                    // ends as if complete.
                    Ok(Waited::Stopping | Waited::Gone) => {
                        self.done = true;
                        return self.closing().map(Ok);
                    }
                    // A comment line, which event readers skip, so that a
                    // proxy in between does not close a quiet stream.
                    Err(_) if self.format == Format::Events => {
                        return Some(Ok(Bytes::from_static(b": keep-alive\n\n")));
                    }
                    Err(_) => continue,
                }
            }
            let max = self.left.min(u64::from(u32::MAX)) as usize;
            let read = read_page(&self.shared, self.log, &self.mark, self.next, max).await;
            let entries = match read {
                Ok((_, entries)) => entries,
                Err(e) => {
                    // The status is sent: the body breaks off, and the
                    // client sees it incomplete.
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let entries: Vec<_> = entries.into_iter().filter(|e| e.number <= to).collect();
            let Some(last) = entries.last().map(|e| e.number) else {
                // Nothing more up to the mark (a cut, or the end).
                if self.follow {
                    continue;
                }
                self.done = true;
                return self.closing().map(Ok);
            };
            self.next = last + 1;
            let mut shown = Vec::new();
            for e in entries {
                if self.left == 0 {
                    self.next = e.number;
                    break;
                }
                self.left -= 1;
                shown.push((e.number, e.message));
            }
            if shown.is_empty() {
                continue;
            }
            let first = self.written == 0;
            self.written += shown.len() as u64;
            return Some(encode_page(&self.budget, self.format, first, shown).await);
        }
    }

    /// What ends the body, if its format has an end.
    fn closing(&self) -> Option<Bytes> {
        match self.format {
            Format::Seed => Some(Bytes::from_static(b"]}")),
            Format::Object => Some(Bytes::from(format!("],\"next\":{}}}", self.next))),
            Format::Ndjson | Format::Events => None,
        }
    }
}

/// `entries` in `format` (`first`: nothing was written before them), as
/// bytes that hold their share of `budget` until written. Encoded on a
/// blocking thread: a page may be megabytes of JSON (a message of NUL bytes
/// grows sixfold), which must not hold the thread the node loop runs on.
async fn encode_page(
    budget: &Budget,
    format: Format,
    first: bool,
    entries: Vec<(Seq, Bytes)>,
) -> std::io::Result<Bytes> {
    let bound = entries.iter().map(|(_, m)| json_bound(m.len())).sum();
    let share = budget
        .reserve(bound)
        .await
        .ok_or_else(|| std::io::Error::other("the node is stopping"))?;
    let encoding = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for (i, (seq, message)) in entries.iter().enumerate() {
            push(&mut out, format, first && i == 0, *seq, message);
        }
        out
    });
    let out = encoding.await.map_err(std::io::Error::other)?;
    Ok(Budget::hold(share, out))
}

/// Appends one entry in `format` (`first`: no separator before it).
fn push(out: &mut Vec<u8>, format: Format, first: bool, seq: Seq, message: &[u8]) {
    match format {
        Format::Seed => {
            if !first {
                out.push(b',');
            }
            match std::str::from_utf8(message) {
                // Writing into a Vec cannot fail.
                Ok(text) => drop(serde_json::to_writer(&mut *out, text)),
                Err(_) => {
                    let mut object = entry_json(seq, message);
                    object.as_object_mut().map(|o| o.remove("seq"));
                    out.extend_from_slice(object.to_string().as_bytes());
                }
            }
        }
        Format::Object => {
            if !first {
                out.push(b',');
            }
            write_entry_json(out, seq, message);
        }
        Format::Ndjson => {
            write_entry_json(out, seq, message);
            out.push(b'\n');
        }
        Format::Events => {
            out.extend_from_slice(format!("id: {seq}\ndata: ").as_bytes());
            write_entry_json(out, seq, message);
            out.extend_from_slice(b"\n\n");
        }
    }
}
