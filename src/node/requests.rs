//! What a client may ask of a node, whatever the front end (the binary
//! protocol's connections in `clients.rs`; an HTTP one would call the
//! same): appends and membership changes handed to the node loop, list
//! pages and digests read from the log, each under the connection's
//! credits, and the welcome a client is given.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::{info, warn};

use super::shared::{timeout_from_ms, Input, Shared};
use crate::auth::Access;
use crate::entry::{LogId, Seq};
use crate::net::{Credits, Outbox};
use crate::replication::role::LogChange;
use crate::replication::{AppendRequest, ClientId, MemberChange};
use crate::wire::{
    AppendError, AppendItem, Frame, LogChangeRequest, LogDetail, MemberChangeRequest, Welcome,
};

/// Most entries in one `Listed` answer.
const LIST_PAGE: u32 = 1000;

/// Most message bytes in one `Listed` answer (at least one entry is sent
/// whatever its size).
const LIST_PAGE_BYTES: usize = 256 * 1024;

/// `List` pages per connection read from the log and not yet written.
pub(super) const LIST_PAGES_IN_FLIGHT: usize = 1;

/// Sends `input` to the node loop's request queue, waiting for room (the
/// connection is not read meanwhile). `false` once the node stops.
pub(super) async fn to_node(shared: &Shared, input: Input) -> bool {
    tokio::select! {
        biased;
        _ = shared.shutdown.cancelled() => false,
        sent = shared.requests.send(input) => sent.is_ok(),
    }
}

/// What a client (or a candidate) is told of this node when it connects.
pub(super) fn welcome(shared: &Shared) -> Welcome {
    let view = shared.role.borrow().clone();
    // Published beside the log's lock: a welcome never waits for a write.
    let ends = shared.log.ends();
    let (last, base) = (ends.last, ends.base);
    Welcome {
        node: shared.cfg.id.clone(),
        role: view.role,
        master_addr: view.master_addr,
        last,
        stored: *shared.visible.borrow(),
        max_message_bytes: shared.cfg.max_message_bytes as u64,
        epochs: Vec::new(),
        first: base.seq + 1,
    }
}

/// Takes one of the connection's `--max-inflight` credits for a request,
/// given back when its answer is written. Without one, this connection is
/// not read until answers go out. False if the node stops or the connection
/// closes first.
pub(super) async fn take_credit(
    shared: &Shared,
    outbox: &Outbox,
    credits: &Credits,
    addr: SocketAddr,
) -> bool {
    if credits.inflight.available_permits() == 0 {
        if let Some(more) = shared.throttle.allow("max-inflight") {
            let max = shared.cfg.limits.max_inflight;
            info!(peer = %addr, suppressed = more, "a client has {max} requests unanswered (--max-inflight): not reading from it until answers go out");
        }
    }
    acquire(shared, outbox, &credits.inflight).await
}

/// Takes one permit of `credits` for good (the writer gives it back once the
/// answer is written); false if the node stops or the connection closes
/// first.
pub(super) async fn acquire(
    shared: &Shared,
    outbox: &Outbox,
    credits: &tokio::sync::Semaphore,
) -> bool {
    let permit = tokio::select! {
        biased;
        _ = shared.shutdown.cancelled() => return false,
        _ = outbox.closed() => return false,
        p = credits.acquire() => p,
    };
    match permit {
        Ok(p) => {
            p.forget();
            true
        }
        Err(_) => false,
    }
}

/// Hands a client's appends (one `Append`, or an `Appends` frame's) to the
/// node loop in one input, each with its credit. Credits are taken one by
/// one: when they run out, what already holds one is handed on first, since
/// its answers are what give credits back. False once the node stops or the
/// connection closes.
pub(super) async fn take_appends(
    shared: &Shared,
    outbox: &Outbox,
    credits: &Credits,
    (client, addr, access): (
        crate::replication::ClientId,
        SocketAddr,
        crate::auth::Access,
    ),
    (log, appends): (
        LogId,
        impl IntoIterator<Item = AppendItem, IntoIter: ExactSizeIterator>,
    ),
) -> bool {
    let appends = appends.into_iter();
    let mut batch = Vec::with_capacity(appends.len());
    for item in appends {
        if credits.inflight.available_permits() == 0
            && !batch.is_empty()
            && !to_node(shared, Input::Appends(std::mem::take(&mut batch))).await
        {
            return false;
        }
        if !take_credit(shared, outbox, credits, addr).await {
            return false;
        }
        if !access.append {
            let error = AppendError::Unauthorized(format!(
                "node {} requires the client token to append: give it with --token-file (or REPLOG_TOKEN); nothing was appended",
                shared.cfg.id
            ));
            shared.metrics.append(item.w, "unauthorized", 0.0);
            outbox.offer(Frame::AppendFailed {
                req: item.req,
                error,
            });
            continue;
        }
        // On a secondary, the core answers where the master is.
        batch.push(AppendRequest {
            client,
            req: item.req,
            log,
            key: item.key,
            w: item.w,
            timeout: timeout_from_ms(item.timeout_ms),
            message: item.message,
            progress: item.progress,
        });
    }
    batch.is_empty() || to_node(shared, Input::Appends(batch)).await
}

/// Answers one `Digest`: the visible log from `from` read a page at a time
/// (the lock is not held between pages), hashed in ranges of `step`.
pub(super) async fn digests(
    shared: &Arc<Shared>,
    req: u64,
    (from, to): (Seq, Seq),
    step: u64,
) -> Frame {
    use crate::storage::digest::{covered, RangeDigests};
    let from = from.max(1);
    if from <= shared.log.ends().base.seq {
        // Retention deleted it: nothing covered, and the verifier, which
        // asked from the first entry every node said it held, asks again.
        return Frame::Digests {
            req,
            upto: from - 1,
            digests: Vec::new(),
        };
    }
    let mut upto = covered(from, to, step, *shared.visible.borrow());
    let mut ranges = RangeDigests::new(step);
    let logs = shared.logs();
    let mut next = from;
    let mut read_bytes = 0;
    while next <= upto {
        // Hashed where it is read, on a blocking thread: a request may
        // hash up to MAX_DIGEST_BYTES, which must not hold the runtime's
        // thread (and the node loop on it) meanwhile.
        let logs = logs.clone();
        let read = shared
            .read_log(move |log| {
                let page = log.read(next, upto, LIST_PAGE as usize, LIST_PAGE_BYTES)?;
                // Cut meanwhile (a failover), or its start deleted
                // (retention, a reset): nothing of it is hashed.
                let last = page
                    .last()
                    .map(|e| e.seq)
                    .filter(|_| page.first().is_some_and(|e| e.seq == next));
                let mut bytes = 0;
                if last.is_some() {
                    for e in &page {
                        // A message of a deleted log, or one retention
                        // deleted, is hashed as what compaction leaves of
                        // it, whether or not this node has compacted it.
                        if !e.is_control() && logs.deleted_or_trimmed(e.log, e.number) {
                            ranges.push(&crate::entry::Entry::stripped(e.epoch, e.seq));
                        } else {
                            ranges.push(e);
                        }
                        bytes += crate::storage::entry_cost(e);
                    }
                }
                Ok((ranges, last, bytes))
            })
            .await;
        let last = match read {
            Ok((hashed, last, bytes)) => {
                ranges = hashed;
                read_bytes += bytes;
                last
            }
            Err(e) => {
                // Answered as covering nothing, so that the connection's
                // credits come back; the verifier says to run it again.
                warn!(error = %e, "cannot read the log for a digest");
                return Frame::Digests {
                    req,
                    upto: from - 1,
                    digests: Vec::new(),
                };
            }
        };
        // Cut meanwhile, or its start deleted: cover what was read.
        let Some(last) = last else {
            upto = next - 1;
            break;
        };
        next = last + 1;
        if read_bytes >= crate::storage::digest::MAX_DIGEST_BYTES {
            upto = last;
            break;
        }
        tokio::task::yield_now().await;
    }
    Frame::Digests {
        req,
        upto: upto.max(from - 1),
        digests: ranges.finish(),
    }
}

/// Takes the connection's list-page credit (a `List` page or a `Digest`
/// answer), which the writer gives back once the answer is written; false
/// if the node stops or the connection closes first.
pub(super) async fn page_credit(shared: &Shared, outbox: &Outbox, credits: &Credits) -> bool {
    acquire(shared, outbox, &credits.list_pages).await
}

/// One `List` request.
pub(super) struct Page {
    pub(super) req: u64,
    /// The log (the connection's, `UseLog`).
    pub(super) log: LogId,
    /// Its name, to say it was deleted.
    pub(super) log_name: String,
    pub(super) from: u64,
    pub(super) max: u32,
    pub(super) wait: bool,
    pub(super) committed: bool,
}

/// Answers one `List` (of the default log): waits (with `wait`) until
/// message `from` is visible (or committed), then reads one page, at most
/// [`LIST_PAGE_BYTES`] of messages, once the connection's previous page has
/// been written. A list from below the first message held (retention)
/// starts at it; the CLI says so.
pub(super) async fn list(shared: &Arc<Shared>, outbox: &Outbox, credits: &Credits, page: Page) {
    let Page {
        req,
        log,
        log_name,
        from,
        max,
        wait,
        committed,
    } = page;
    let mut mark = mark_of(shared, committed);
    if wait {
        tokio::select! {
            _ = outbox.closed() => return,
            waited = wait_for(shared, log, &mut mark, from) => match waited {
                Waited::Ready => {}
                Waited::Stopping => return,
                // Said as the connection says it of a log it cannot find.
                Waited::Gone => {
                    let error = AppendError::NoSuchLog { log: log_name };
                    outbox.send(Frame::AppendFailed { req, error }).await;
                    return;
                }
            },
        }
    }
    if !page_credit(shared, outbox, credits).await {
        return;
    }
    let answer = match read_page(shared, log, &mark, from, max as usize).await {
        Ok((visible, entries)) => Frame::Listed {
            req,
            entries: entries.into_iter().map(|e| (e.number, e.message)).collect(),
            visible,
        },
        Err(e) => {
            warn!(error = %e, "cannot read the log for a list");
            Frame::Refused {
                reason: format!("node {} cannot read its log: {e}", shared.cfg.id),
            }
        }
    };
    outbox.send(answer).await;
}

/// The mark a reader reads up to: what is visible, or (`committed`) what
/// is on a majority, which no failover removes.
pub(super) fn mark_of(shared: &Shared, committed: bool) -> watch::Receiver<Seq> {
    if committed {
        shared.committed.clone()
    } else {
        shared.visible.clone()
    }
}

/// How a wait for a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waited {
    /// The message is within the mark (or the log cannot be read, which
    /// the read that follows says).
    Ready,
    /// The node stops.
    Stopping,
    /// The log was deleted: no message will come.
    Gone,
}

/// Waits until message `from` of `log` is within `mark`, the node stops,
/// or the log is deleted (looked at whenever the named logs change: the
/// deletion is an entry, which moves the mark).
pub(super) async fn wait_for(
    shared: &Arc<Shared>,
    log: LogId,
    mark: &mut watch::Receiver<Seq>,
    from: Seq,
) -> Waited {
    let mut logs = shared.logs();
    loop {
        // What the log's own retention deleted is not waited for.
        let from = from.max(shared.floor(log) + 1);
        let upto = *mark.borrow_and_update();
        if number_at(shared, log, upto).await.is_none_or(|n| n >= from) {
            return Waited::Ready;
        }
        let now = shared.logs();
        if !Arc::ptr_eq(&now, &logs) {
            if !now.exists(log) {
                return Waited::Gone;
            }
            logs = now;
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return Waited::Stopping,
            changed = mark.changed() => if changed.is_err() { return Waited::Stopping },
        }
    }
}

/// The last message number of `log` at or before sequence number `upto`:
/// from the tail when it knows, else from the log; `None` if the log cannot
/// be read.
pub(super) async fn number_at(shared: &Arc<Shared>, log: LogId, upto: Seq) -> Option<Seq> {
    if let Some(n) = shared.tail().number_at(log, upto) {
        return Some(n);
    }
    shared.read_log(move |l| l.number_at(log, upto)).await.ok()
}

/// Reads up to `max` messages of `log` (at most [`LIST_PAGE`], and
/// [`LIST_PAGE_BYTES`] of messages, at least one) from number `from`, none
/// past `mark`; with `log`'s last number within the mark as read.
///
/// From the tail in memory when it holds every message from `from` on: no
/// lock of the log, no blocking thread, no record decoded, so that readers
/// following the end of the log cost the writers little. The mark is read
/// under the tail's lock, and the loop changes the tail before it raises a
/// mark over what it wrote and before it cuts the log (a cut empties the
/// tail past the cut first, a reset empties it): an entry read so is in the
/// log.
///
/// Otherwise from the log, the mark read under the log's lock: the loop
/// changes both under the write lock (a truncation lowers it), so they
/// agree.
pub(super) async fn read_page(
    shared: &Arc<Shared>,
    log: LogId,
    mark: &watch::Receiver<Seq>,
    from: Seq,
    max: usize,
) -> std::io::Result<(Seq, Vec<crate::entry::Entry>)> {
    let limits = (max.clamp(1, LIST_PAGE as usize), LIST_PAGE_BYTES);
    // What the log's own retention deleted is read on no node, compacted or
    // not yet.
    let from = from.max(shared.floor(log) + 1);
    {
        let tail = shared.tail();
        let upto = *mark.borrow();
        if let (Some(entries), Some(visible)) = (
            tail.read_messages(log, from, upto, limits),
            tail.number_at(log, upto),
        ) {
            return Ok((visible, entries));
        }
    }
    let mark = mark.clone();
    shared
        .read_log(move |l| {
            let upto = *mark.borrow();
            let entries = l.read_messages(log, from, upto, limits)?;
            Ok((l.number_at(log, upto)?, entries))
        })
        .await
}

/// A log created or deleted: handed to the core if this connection may
/// append, refused with the reason otherwise. False if the node stops.
pub(super) async fn change_logs(
    shared: &Shared,
    outbox: &Outbox,
    (client, access): (ClientId, Access),
    req: u64,
    change: LogChangeRequest,
) -> bool {
    if !access.append {
        let error = AppendError::Unauthorized(format!(
            "node {} creates and deletes logs only for a client that may append: give the client token with --token-file (or REPLOG_TOKEN); nothing was changed",
            shared.cfg.id
        ));
        outbox.offer(Frame::AppendFailed { req, error });
        return true;
    }
    let change = match change {
        LogChangeRequest::Create { name } => LogChange::Create(name, Default::default()),
        LogChangeRequest::CreateRetained {
            name,
            retention_bytes,
            retention_age_secs,
        } => LogChange::Create(
            name,
            crate::replication::catalog::LogRetention {
                bytes: retention_bytes,
                age_secs: retention_age_secs,
            },
        ),
        LogChangeRequest::Delete { name } => LogChange::Delete(name),
    };
    to_node(
        shared,
        Input::ChangeLogs {
            client,
            req,
            change,
        },
    )
    .await
}

/// Every log this node knows, `default` first, with the first message it
/// holds and the last visible one; or why the log cannot be read.
pub(super) async fn list_logs(shared: &Arc<Shared>) -> Result<Vec<LogDetail>, AppendError> {
    let logs = shared.logs();
    let floors = shared.floors.read().expect("floors lock").clone();
    let upto = *shared.visible.borrow();
    let read = shared
        .read_log(move |l| {
            (logs.all().into_iter())
                .map(|(name, id)| {
                    let retention = logs.retention(id);
                    Ok(LogDetail {
                        name,
                        id,
                        first: match l.first_number(id) {
                            0 => 0,
                            first => first.max(floors.get(&id).map_or(0, |f| f + 1)),
                        },
                        last: l.number_at(id, upto)?,
                        bytes: l.log_bytes(id),
                        retention_bytes: retention.bytes,
                        retention_age_secs: retention.age_secs,
                        trimmed: logs.trimmed(id),
                    })
                })
                .collect::<std::io::Result<Vec<_>>>()
        })
        .await;
    read.map_err(|e| {
        warn!(error = %e, "cannot read the log for a list of logs");
        AppendError::Storage(format!("node {} cannot read its log: {e}", shared.cfg.id))
    })
}

/// A membership change: handed to the core if this connection may ask for
/// one, refused with the reason otherwise. False if the node stops.
pub(super) async fn change_members(
    shared: &Shared,
    outbox: &Outbox,
    (client, access): (ClientId, Access),
    req: u64,
    change: MemberChangeRequest,
) -> bool {
    if !access.members {
        let error = AppendError::Unauthorized(format!(
            "node {} takes membership changes only from a client that may append and proves the cluster key: give replog --cluster-key-file (and the client token, if the cluster has one); nothing was changed",
            shared.cfg.id
        ));
        outbox.offer(Frame::AppendFailed { req, error });
        return true;
    }
    let change = match change {
        MemberChangeRequest::Add { id, addr } => MemberChange::Add { id, addr },
        MemberChangeRequest::Remove { id } => MemberChange::Remove { id },
    };
    to_node(
        shared,
        Input::ChangeMembers {
            client,
            req,
            change,
        },
    )
    .await
}
