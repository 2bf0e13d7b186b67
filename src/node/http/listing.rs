//! A listing of the log as an HTTP body, read a page at a time with the
//! binary protocol's readers (`requests::read_page`) and written as the
//! client asked: the seed's `{"messages": ["..."]}`, a JSON object of
//! entries, one JSON entry per line (NDJSON), or server-sent events.
//!
//! The next page is read only once hyper has taken the previous one for
//! the socket: a client that reads slowly holds one page in memory, as a
//! binary `list --follow` does with its page credit, and a client that
//! goes away drops the listing.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::watch;

use super::super::requests::{mark_of, read_page, wait_for};
use super::super::shared::Shared;
use crate::entry::Seq;
use crate::json::entry_json;

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
    mark: watch::Receiver<Seq>,
    next: Seq,
    to: Seq,
    left: u64,
    follow: bool,
    format: Format,
    /// Entries written so far (for the separators).
    written: u64,
    /// The closing bytes are written.
    done: bool,
}

/// The body listing `range` in `format`.
pub(crate) fn body(shared: Arc<Shared>, range: Range, format: Format) -> Body {
    let mark = mark_of(&shared, range.committed);
    // Nothing before the base is left (retention): a listing from below it
    // starts after it.
    let next = range.from.max(shared.log.ends().base.seq + 1);
    let to = match (range.to, range.follow) {
        (Some(to), _) => to,
        (None, true) => Seq::MAX,
        (None, false) => *mark.borrow(),
    };
    let listing = Listing {
        shared,
        mark,
        next,
        to,
        left: range.max.unwrap_or(u64::MAX),
        follow: range.follow,
        format,
        written: 0,
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
            if self.left == 0 || self.next > self.to {
                self.done = true;
                return self.closing().map(Ok);
            }
            if self.follow {
                let waiting = wait_for(&self.shared, &mut self.mark, self.next);
                match tokio::time::timeout(KEEP_ALIVE, waiting).await {
                    Ok(true) => {}
                    // The node stops: the listing ends as if complete.
                    Ok(false) => {
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
            let entries = match read_page(&self.shared, &self.mark, self.next, self.to, max).await {
                Ok((_, entries)) => entries,
                Err(e) => {
                    // The status is sent: the body breaks off, and the
                    // client sees it incomplete.
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let Some(last) = entries.last().map(|e| e.seq) else {
                // Nothing more up to the mark (a cut, or the end).
                if self.follow {
                    continue;
                }
                self.done = true;
                return self.closing().map(Ok);
            };
            self.next = last + 1;
            let mut out = Vec::new();
            for e in entries.iter().filter(|e| !e.is_control()) {
                if self.left == 0 {
                    self.next = e.seq;
                    break;
                }
                self.left -= 1;
                self.push(&mut out, e.seq, &e.message);
            }
            if !out.is_empty() {
                return Some(Ok(Bytes::from(out)));
            }
        }
    }

    /// Appends one entry in the listing's format.
    fn push(&mut self, out: &mut Vec<u8>, seq: Seq, message: &[u8]) {
        let separator = self.written > 0;
        self.written += 1;
        match self.format {
            Format::Seed => {
                if separator {
                    out.push(b',');
                }
                let item = match std::str::from_utf8(message) {
                    Ok(text) => serde_json::Value::from(text),
                    Err(_) => {
                        let mut object = entry_json(seq, message);
                        object.as_object_mut().map(|o| o.remove("seq"));
                        object
                    }
                };
                out.extend_from_slice(item.to_string().as_bytes());
            }
            Format::Object => {
                if separator {
                    out.push(b',');
                }
                out.extend_from_slice(entry_json(seq, message).to_string().as_bytes());
            }
            Format::Ndjson => {
                out.extend_from_slice(entry_json(seq, message).to_string().as_bytes());
                out.push(b'\n');
            }
            Format::Events => {
                let data = entry_json(seq, message).to_string();
                out.extend_from_slice(format!("id: {seq}\ndata: {data}\n\n").as_bytes());
            }
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
