//! A client's connection once its hello is accepted: each frame is read
//! into a `Request` and handed to its own handler, which calls what any
//! front end would (`requests.rs`). Appends go to the node loop (which
//! answers them, or says where the master is), lists and digests are read
//! from the log a page at a time, health is asked of the loop, and a
//! membership change goes to it for the master. Each request spends one of
//! the connection's `--max-inflight` credits until its answer is written.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::oneshot;
use tracing::{info, warn, Instrument};

use super::requests::{
    change_logs, change_members, digests, list, list_logs, page_credit, take_appends, take_credit,
    to_node, welcome, Page, LIST_PAGES_IN_FLIGHT,
};
use super::shared::{Input, Shared};
use crate::auth::Access;
use crate::entry::Seq;
use crate::net::{Coalesce, Credits, Outbox};
use crate::net::{FrameReader as Reader, FrameWriter as Writer};
use crate::replication::ClientId;
use crate::wire::{
    AppendError, AppendItem, Frame, FrameError, LogChangeRequest, MemberChangeRequest,
};

/// Who is on the other end of a client connection.
pub(super) struct Peer {
    /// Its address.
    pub(super) addr: SocketAddr,
    /// What its token lets it do.
    pub(super) access: crate::auth::Access,
    /// The protocol version its hello said: answers are merged into
    /// `Answers` frames only for version 6 or later.
    pub(super) version: u32,
}

pub(super) async fn serve(mut reader: Reader, writer: Writer, peer: Peer, shared: &Arc<Shared>) {
    let Peer {
        addr,
        access,
        version,
    } = peer;
    let cfg = &shared.cfg;
    let limits = cfg.limits;
    let client = shared.next_id();
    let credits = Arc::new(Credits::new(limits.max_inflight, LIST_PAGES_IN_FLIGHT));
    let writer_credits = credits.clone();
    // Room for every answer the credits allow, the welcome and a refusal:
    // the node loop's `offer` never finds it full unless this is a bug.
    let (outbox, rx) = Outbox::new(limits.max_inflight + 4);
    let coalesce = if version >= 6 {
        Coalesce::Answers
    } else {
        Coalesce::Off
    };
    let writer_task = shared.tracker.spawn(
        crate::net::write_frames(writer, rx, addr.to_string(), Some(writer_credits), coalesce)
            .in_current_span(),
    );
    outbox.offer(Frame::Welcome(welcome(shared)));
    let opened = to_node(
        shared,
        Input::ClientOpened {
            client,
            tx: outbox.clone(),
            version,
        },
    )
    .await;
    // The requests, until the peer goes, misbehaves or the node stops.
    let conn = Conn {
        shared: shared.clone(),
        outbox: outbox.clone(),
        credits,
        client,
        addr,
        access,
        version,
        log: std::sync::Mutex::new(None),
    };
    if opened {
        while let Some(request) = conn.next_request(&mut reader).await {
            if !conn.handle(request).await {
                break;
            }
        }
        // Must arrive, or the loop would keep this client's outbox.
        let _ = shared.requests.send(Input::ClientClosed { client }).await;
    }
    // Queued answers still go out, but a peer that reads nothing does not
    // hold this task.
    outbox.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
}

/// One client connection, as its request handlers see it.
struct Conn {
    shared: Arc<Shared>,
    outbox: Outbox,
    credits: Arc<Credits>,
    client: ClientId,
    addr: SocketAddr,
    access: Access,
    version: u32,
    /// The name of the log its appends and lists are for (`UseLog`;
    /// `None`: default), found again at each request, so that a log
    /// deleted and created again under its name is the new one.
    log: std::sync::Mutex<Option<String>>,
}

/// A client's request, one type each, as read from its frame.
enum Request {
    /// `Append` or `Appends`: taken one by one, each with its own credit.
    Appends(Vec<AppendItem>),
    /// `List`: a page of the log.
    List(Page),
    /// `Digest`: digests of ranges of the log (`replog verify`).
    Digest {
        req: u64,
        range: (Seq, Seq),
        step: u64,
    },
    /// `Health`: the node's report.
    Health { req: u64 },
    /// `MemberChange`: a membership change, for the master.
    MemberChange {
        req: u64,
        change: MemberChangeRequest,
    },
    /// `UseLog`: the log this connection's appends and lists are for.
    UseLog { req: u64, log: String },
    /// `LogChange`: a log created or deleted, for the master.
    LogChange { req: u64, change: LogChangeRequest },
    /// `ListLogs`: the logs this node knows.
    ListLogs { req: u64 },
    /// `GroupChange`: a group's position set, or a group deleted, for the
    /// master.
    GroupChange {
        req: u64,
        change: crate::wire::GroupChangeRequest,
    },
    /// `ListGroups`: the groups' positions this node knows.
    ListGroups { req: u64, group: Option<String> },
}

impl Conn {
    /// The next request, or `None` once the connection is to close: the
    /// peer went, sent what no client sends, does not read its answers or
    /// stayed idle past `--idle-timeout`, or the node stops.
    async fn next_request(&self, reader: &mut Reader) -> Option<Request> {
        let (shared, addr) = (&self.shared, self.addr);
        let limits = shared.cfg.limits;
        let idle = self.credits.idle();
        let frame = tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => return None,
            _ = self.outbox.closed() => {
                if let Some(more) = shared.throttle.allow("not-reading") {
                    warn!(peer = %addr, suppressed = more, "closing client connection: it does not read its answers");
                }
                return None;
            }
            f = reader.next() => f,
            _ = tokio::time::sleep(limits.idle_timeout), if idle => {
                if let Some(more) = shared.throttle.allow("idle") {
                    info!(peer = %addr, suppressed = more, "closing client connection idle for {} (--idle-timeout)", humantime::format_duration(limits.idle_timeout));
                }
                return None;
            }
        };
        let frame = match frame? {
            Ok(frame) => frame,
            Err(e) => {
                if let Some(more) = shared.throttle.allow("bad-client-frame") {
                    warn!(peer = %addr, error = %e, suppressed = more, "closing client connection");
                }
                // Say why before closing, so the client can tell a bad
                // request from a broken connection.
                let reason = match e {
                    FrameError::TooLarge { .. } => format!(
                        "{e}: this node accepts messages of up to {} bytes (--max-message-bytes)",
                        shared.cfg.max_message_bytes
                    ),
                    other => format!("unreadable request: {other}"),
                };
                self.outbox.offer(Frame::Refused { reason });
                return None;
            }
        };
        let request = match frame.into_append_item() {
            Ok(item) => Request::Appends(vec![item]),
            Err(Frame::Appends { appends }) => Request::Appends(appends),
            Err(Frame::List {
                req,
                from,
                max,
                wait,
                committed,
            }) => Request::List(Page {
                req,
                // The connection's, set when it is handled.
                log: crate::entry::DEFAULT_LOG,
                log_name: String::new(),
                from,
                max,
                wait,
                committed,
            }),
            Err(Frame::Digest {
                req,
                from,
                to,
                step,
            }) => Request::Digest {
                req,
                range: (from, to),
                step,
            },
            Err(Frame::Health { req }) => Request::Health { req },
            Err(Frame::MemberChange { req, change }) => Request::MemberChange { req, change },
            Err(Frame::UseLog { req, log }) => Request::UseLog { req, log },
            Err(Frame::LogChange { req, change }) => Request::LogChange { req, change },
            Err(Frame::ListLogs { req }) => Request::ListLogs { req },
            Err(Frame::GroupChange { req, change }) => Request::GroupChange { req, change },
            Err(Frame::ListGroups { req, group }) => Request::ListGroups { req, group },
            Err(other) => {
                if let Some(more) = shared.throttle.allow("unexpected-client-frame") {
                    warn!(peer = %addr, suppressed = more, "closing client connection: unexpected {}", other.name());
                }
                return None;
            }
        };
        Some(request)
    }

    /// Hands `request` to its handler; false if the connection is to
    /// close. Appends take their credits one by one, as they are handed
    /// on; every other request takes one credit.
    async fn handle(&self, request: Request) -> bool {
        let (shared, outbox, credits) = (&self.shared, &self.outbox, &self.credits);
        if let Request::Appends(items) = request {
            let from = (self.client, self.addr, self.access);
            return match self.log_id() {
                Ok(log) => take_appends(shared, outbox, credits, from, (log, items)).await,
                Err(error) => {
                    // Each refused as it would be one by one.
                    for item in items {
                        if !take_credit(shared, outbox, credits, self.addr).await {
                            return false;
                        }
                        let error = error.clone();
                        outbox.offer(Frame::AppendFailed {
                            req: item.req,
                            error,
                        });
                    }
                    true
                }
            };
        }
        if !take_credit(shared, outbox, credits, self.addr).await {
            return false;
        }
        match request {
            Request::Appends(_) => unreachable!("handled above"),
            Request::List(mut page) => {
                match self.log_id() {
                    Ok(log) => {
                        page.log = log;
                        page.log_name = (self.log.lock().expect("log lock").clone())
                            .unwrap_or_else(|| crate::replication::catalog::DEFAULT_NAME.into());
                        self.on_list(page);
                    }
                    Err(error) => {
                        outbox.offer(Frame::AppendFailed {
                            req: page.req,
                            error,
                        });
                    }
                }
                true
            }
            Request::UseLog { req, log } => {
                let answer = match shared.log_id(&log) {
                    Some(_) => {
                        let name =
                            (log != crate::replication::catalog::DEFAULT_NAME).then_some(log);
                        *self.log.lock().expect("log lock") = name;
                        Frame::Appended { req, seq: 0 }
                    }
                    None => Frame::AppendFailed {
                        req,
                        error: AppendError::NoSuchLog { log }.for_version(self.version),
                    },
                };
                outbox.offer(answer);
                true
            }
            Request::LogChange { req, change } => {
                change_logs(shared, outbox, (self.client, self.access), req, change).await
            }
            Request::ListLogs { req } => {
                self.on_list_logs(req);
                true
            }
            Request::GroupChange { req, change } => {
                let from = (self.client, self.access);
                super::groups::change_groups(shared, outbox, from, req, change).await
            }
            Request::ListGroups { req, group } => self.on_list_groups(req, group).await,
            Request::Digest { req, range, step } => {
                self.on_digest(req, range, step);
                true
            }
            Request::Health { req } => self.on_health(req).await,
            Request::MemberChange { req, change } => {
                change_members(shared, outbox, (self.client, self.access), req, change).await
            }
        }
    }

    /// The id of the connection's log now, or why there is none.
    fn log_id(&self) -> Result<crate::entry::LogId, AppendError> {
        match self.log.lock().expect("log lock").as_deref() {
            None => Ok(crate::entry::DEFAULT_LOG),
            Some(name) => (self.shared.log_id(name)).ok_or_else(|| {
                AppendError::NoSuchLog {
                    log: name.to_string(),
                }
                .for_version(self.version)
            }),
        }
    }

    /// The groups' positions, of one group or of all. False if the node
    /// stops.
    async fn on_list_groups(&self, req: u64, group: Option<String>) -> bool {
        if !self.access.read {
            let error = AppendError::Unauthorized(format!(
                "node {} shows groups only to a client that may read: give the client or read token with --token-file",
                self.shared.cfg.id
            ));
            self.outbox.offer(Frame::AppendFailed { req, error });
            return true;
        }
        let Some(answer) = super::groups::list_groups(&self.shared, group).await else {
            return false;
        };
        self.outbox.offer(match answer {
            Ok(groups) => Frame::GroupsListed { req, groups },
            Err(error) => Frame::AppendFailed { req, error },
        });
        true
    }

    /// The logs and where each starts and ends, read in a task of its own.
    fn on_list_logs(&self, req: u64) {
        let (shared, outbox) = (self.shared.clone(), self.outbox.clone());
        let version = self.version;
        self.shared.tracker.spawn(
            async move {
                let answer = match list_logs(&shared).await {
                    Ok(logs) if version >= 12 => Frame::LogsDetailed { req, logs },
                    Ok(logs) => Frame::LogsListed {
                        req,
                        logs: logs.iter().map(crate::wire::LogDetail::status).collect(),
                    },
                    Err(error) => Frame::AppendFailed { req, error },
                };
                outbox.send(answer).await;
            }
            .in_current_span(),
        );
    }

    /// A page of the log, in a task of its own: a waiting list (follow)
    /// must not hold up the connection's other requests.
    fn on_list(&self, page: Page) {
        let (shared, outbox, credits) = (
            self.shared.clone(),
            self.outbox.clone(),
            self.credits.clone(),
        );
        self.shared
            .tracker
            .spawn(async move { list(&shared, &outbox, &credits, page).await }.in_current_span());
    }

    /// Digests, in a task of its own like a list: a long read must not
    /// hold up the connection's other requests. It takes a list page's
    /// credit: one such read per connection at a time.
    fn on_digest(&self, req: u64, range: (Seq, Seq), step: u64) {
        let (shared, outbox, credits) = (
            self.shared.clone(),
            self.outbox.clone(),
            self.credits.clone(),
        );
        self.shared.tracker.spawn(
            async move {
                if !page_credit(&shared, &outbox, &credits).await {
                    return;
                }
                let answer = digests(&shared, req, range, step).await;
                outbox.send(answer).await;
            }
            .in_current_span(),
        );
    }

    /// The node's health report, asked of the node loop and sent when it
    /// comes (as this client's version reads it).
    async fn on_health(&self, req: u64) -> bool {
        let (otx, orx) = oneshot::channel();
        if !to_node(&self.shared, Input::Health { tx: otx }).await {
            return false;
        }
        let (outbox, version) = (self.outbox.clone(), self.version);
        self.shared.tracker.spawn(async move {
            tokio::select! {
                _ = outbox.closed() => {}
                report = orx => if let Ok(report) = report {
                    let report = report.for_version(version);
                    outbox.send(Frame::HealthReport { req, report }).await;
                }
            }
        });
        true
    }
}
