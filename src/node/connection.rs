//! Every accepted connection: where frames from clients (and, on a
//! secondary, from the master) are decoded and dispatched.
//!
//! A connection opens with a hello. Anything wrong — a first frame that is
//! not a hello, another protocol version, another cluster, a frame over the
//! limit, bytes that do not decode — closes that one connection with a log
//! line (rate-limited: a flood of bad connections is a few lines, with a
//! count). Nothing a peer sends can stop the node.
//!
//! What a peer can make the node spend is bounded here:
//! - open connections: `--max-connections` (one more is refused, with the
//!   reason, and closed); a connection must say hello within
//!   `--hello-timeout`, and a client connection idle for `--idle-timeout`
//!   is closed;
//! - a client's unanswered requests: `--max-inflight` credits, each given
//!   back only once its answer is written to the socket. A client that
//!   sends requests and does not read the answers runs out of credit, and
//!   then the node stops reading from it: its requests wait in its own
//!   socket, not in the node's memory;
//! - `List` answers are read from the log one page at a time per
//!   connection, the next only once the previous one is written;
//! - the queues to the node loop are bounded; client requests and the
//!   replication traffic travel on separate ones, and the loop serves the
//!   replication queue first, so clients cannot starve heartbeats and acks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, info, warn, Instrument};

use super::{timeout_from_ms, Input, Shared};
use crate::net::{BoxConn, Credits, Net, Outbox};
use crate::replication::secondary::SecondaryEvent;
use crate::replication::AppendRequest;
use crate::wire::{
    AppendError, Frame, FrameCodec, FrameError, Hello, Role, Welcome, PROTOCOL_VERSION,
};

/// Most entries in one `Listed` answer.
const LIST_PAGE: u32 = 1000;

/// Most message bytes in one `Listed` answer (at least one entry is sent
/// whatever its size).
const LIST_PAGE_BYTES: usize = 256 * 1024;

/// `List` pages per connection read from the log and not yet written.
const LIST_PAGES_IN_FLIGHT: usize = 1;

/// Frames queued towards the master on a secondary's replication
/// connection (acks and heartbeat replies; one cumulative ack is enough).
const REPLICATION_OUTBOX: usize = 1024;

/// Connections refused for `--max-connections` that are still being told
/// why; past this many, further ones are closed without a word.
const REFUSALS_IN_FLIGHT: usize = 64;

/// Accepts connections until the node stops.
pub(super) async fn accept_loop<N: Net>(listener: N::Listener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.cfg.limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            a = N::accept(&listener) => a,
        };
        match accepted {
            Ok((stream, addr)) => match slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let shared2 = shared.clone();
                    shared
                        .tracker
                        .spawn(open::<N>(stream, addr, shared2, slot).in_current_span());
                }
                Err(_) => {
                    let max = shared.cfg.limits.max_connections;
                    if let Some(more) = shared.throttle.allow("max-connections") {
                        warn!(peer = %addr, suppressed = more, "refusing a connection: {max} connections are open (--max-connections)");
                    }
                    // Over TLS a plain frame would be garbage: just close.
                    let told = if shared.cfg.tls.is_some() {
                        None
                    } else {
                        refusals.clone().try_acquire_owned().ok()
                    };
                    if let Some(permit) = told {
                        let reason = format!(
                            "node {} has {max} connections open, its limit (--max-connections); try again later",
                            shared.cfg.id
                        );
                        let limit = shared.cfg.max_frame_bytes();
                        shared.tracker.spawn(async move {
                            let mut w = FramedWrite::new(stream, FrameCodec::new(limit));
                            let _ = tokio::time::timeout(
                                Duration::from_millis(500),
                                w.send(Frame::Refused { reason }),
                            )
                            .await;
                            drop(permit);
                        });
                    }
                }
            },
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                if let Some(more) = shared.throttle.allow("accept") {
                    warn!(error = %e, suppressed = more, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Opens an accepted connection: the TLS handshake first if the node has
/// TLS (here, in the connection's own task, so that a slow handshake never
/// holds up accepting), then [`serve`].
async fn open<N: Net>(
    stream: N::Stream,
    addr: SocketAddr,
    shared: Arc<Shared>,
    slot: OwnedSemaphorePermit,
) {
    let Some(tls) = shared.cfg.tls.clone() else {
        return serve(Box::new(stream), addr, shared, slot, false).await;
    };
    let limit = shared.cfg.limits.hello_timeout;
    match tokio::time::timeout(limit, tls.acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            let has_cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            serve(Box::new(stream), addr, shared, slot, has_cert).await
        }
        Ok(Err(e)) => {
            if let Some(more) = shared.throttle.allow("tls-handshake") {
                warn!(peer = %addr, error = %e, suppressed = more, "closing connection: TLS handshake failed (this node accepts only TLS)");
            }
        }
        Err(_) => {
            if let Some(more) = shared.throttle.allow("tls-timeout") {
                warn!(peer = %addr, suppressed = more, "closing connection: no TLS handshake within {} (--hello-timeout)", humantime::format_duration(limit));
            }
        }
    }
}

type Reader = FramedRead<tokio::io::ReadHalf<BoxConn>, FrameCodec>;
type Writer = FramedWrite<tokio::io::WriteHalf<BoxConn>, FrameCodec>;

/// Serves one connection. `slot` is its place under `--max-connections`:
/// held by client connections, given back by the master's replication
/// connection (which must never be refused because clients are many).
async fn serve(
    stream: BoxConn,
    addr: SocketAddr,
    shared: Arc<Shared>,
    slot: OwnedSemaphorePermit,
    has_cert: bool,
) {
    let cfg = &shared.cfg;
    let (r, w) = tokio::io::split(stream);
    let mut reader: Reader = FramedRead::new(r, FrameCodec::new(cfg.max_frame_bytes()));
    let mut writer: Writer = FramedWrite::new(w, FrameCodec::new(cfg.max_frame_bytes()));

    let hello_timeout = cfg.limits.hello_timeout;
    let deadline = tokio::time::Instant::now() + hello_timeout;
    let first = tokio::select! {
        _ = shared.shutdown.cancelled() => return,
        f = tokio::time::timeout_at(deadline, reader.next()) => f,
    };
    let hello = match first {
        Ok(Some(Ok(Frame::Hello(hello)))) => hello,
        Ok(Some(Ok(other))) => {
            if let Some(more) = shared.throttle.allow("no-hello") {
                warn!(peer = %addr, suppressed = more, "closing connection: first frame was not a hello ({})", frame_name(&other));
            }
            return;
        }
        Ok(Some(Err(e))) => {
            if let Some(more) = shared.throttle.allow("bad-hello") {
                warn!(peer = %addr, error = %e, suppressed = more, "closing connection: bad bytes before hello");
            }
            return;
        }
        Ok(None) => return,
        Err(_) => {
            if let Some(more) = shared.throttle.allow("hello-timeout") {
                warn!(peer = %addr, suppressed = more, "closing connection: no hello within {} (--hello-timeout)", humantime::format_duration(hello_timeout));
            }
            return;
        }
    };
    if let Err(reason) = check_hello(&shared, &hello) {
        if let Some(more) = shared.throttle.allow("refused-hello") {
            warn!(peer = %addr, %reason, suppressed = more, "refusing connection");
        }
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            writer.send(Frame::Refused { reason }),
        )
        .await;
        return;
    }

    match hello.role {
        Role::Client => {
            let access = crate::auth::client_access(
                hello.token.as_deref(),
                cfg.client_token.as_deref(),
                cfg.read_token.as_deref(),
                &cfg.id,
            );
            match access {
                Ok(access) => serve_client(reader, writer, addr, &shared, access).await,
                Err(reason) => {
                    if let Some(more) = shared.throttle.allow("unauthorized-client") {
                        warn!(peer = %addr, %reason, suppressed = more, "refusing a client");
                    }
                    let _ = tokio::time::timeout(
                        Duration::from_millis(500),
                        writer.send(Frame::Unauthorized { reason }),
                    )
                    .await;
                }
            }
        }
        Role::Master { ref id, epoch } => {
            let proved = if cfg.tls.is_some() && !has_cert {
                // Mutual TLS between nodes: the master's certificate, which
                // the handshake already checked against the CA if offered.
                Err(format!(
                    "node {} accepts a master only with a TLS certificate of the cluster's CA (--tls-cert, --tls-key)",
                    cfg.id
                ))
            } else {
                prove(&shared, deadline, &hello, &mut reader, &mut writer).await
            };
            if let Err(reason) = proved {
                if let Some(more) = shared.throttle.allow("refused-master") {
                    let key_file = cfg
                        .cluster_keys
                        .as_ref()
                        .map(|k| k.source().display().to_string());
                    warn!(peer = %addr, master = %id, %reason, key_file, suppressed = more, "refusing a master connection");
                }
                let _ = tokio::time::timeout(
                    Duration::from_millis(500),
                    writer.send(Frame::Refused { reason }),
                )
                .await;
                return;
            }
            drop(slot);
            info!(node = %cfg.id, master = %id, epoch, peer = %addr, "master connected");
            serve_master(reader, writer, addr, &shared, id.clone(), epoch).await
        }
    }
}

/// The acceptor's half of the node-to-node handshake (`crate::auth`): with
/// a cluster key, nothing but the handshake is read from the master until
/// it has proved it holds the key. Without one, there is nothing to prove.
async fn prove(
    shared: &Shared,
    deadline: tokio::time::Instant,
    hello: &Hello,
    reader: &mut Reader,
    writer: &mut Writer,
) -> Result<(), String> {
    let cfg = &shared.cfg;
    let Some(keys) = &cfg.cluster_keys else {
        return Ok(());
    };
    let Role::Master { id, .. } = &hello.role else {
        return Ok(());
    };
    // The reasons go back to a peer not yet proven: they name the flag, not
    // this node's key file (which the local log line names).
    let Some(theirs) = hello.nonce else {
        return Err(format!(
            "node {} requires the cluster key, and node '{id}' offered none: start it with --cluster-key-file (the same key as every other node)",
            cfg.id
        ));
    };
    let ours = crate::auth::nonce();
    let challenge = Frame::Challenge {
        nonce: ours,
        proofs: keys.acceptor_proofs(&theirs, &ours, &cfg.id),
    };
    let limit = cfg.limits.hello_timeout;
    // One deadline for the hello and the handshake together, counted from
    // the connection's start: an unproven peer holds its slot no longer.
    match tokio::time::timeout_at(deadline, writer.send(challenge)).await {
        Ok(Ok(())) => {}
        _ => return Err("the master did not take the challenge".into()),
    }
    match tokio::time::timeout_at(deadline, reader.next()).await {
        Ok(Some(Ok(Frame::Proof { proof }))) if keys.check_opener(&proof, &ours, &theirs, id) => {
            Ok(())
        }
        Ok(Some(Ok(Frame::Proof { .. }))) => Err(format!(
            "node '{id}' does not hold the cluster key of node {}: give every node the same --cluster-key-file",
            cfg.id
        )),
        Ok(Some(Ok(other))) => Err(format!(
            "expected the master's proof of the cluster key, got {}",
            frame_name(&other)
        )),
        Ok(Some(Err(e))) => Err(format!("unreadable proof: {e}")),
        Ok(None) => Err("closed during the handshake".into()),
        Err(_) => Err(format!(
            "no proof of the cluster key within {} (--hello-timeout)",
            humantime::format_duration(limit)
        )),
    }
}

/// Checks version, cluster and role; the error is the reason sent back.
fn check_hello(shared: &Shared, hello: &Hello) -> Result<(), String> {
    let cfg = &shared.cfg;
    if hello.version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} is not spoken here (node {} speaks version {}); run the same replog release on every node and client",
            hello.version, cfg.id, PROTOCOL_VERSION
        ));
    }
    if let Some(fp) = hello.cluster {
        if fp != cfg.cluster.fingerprint() {
            return Err(format!(
                "node {} was started with a different --cluster list (or --master); start every node with the same one",
                cfg.id
            ));
        }
    }
    // Whether this node takes that master (its role, its epoch) is the
    // core's decision, once the master has proved itself.
    if matches!(hello.role, Role::Master { .. }) && hello.cluster.is_none() {
        return Err("a master must name its cluster".into());
    }
    Ok(())
}

/// Sends `input` to the node loop's request queue, waiting for room (the
/// connection is not read meanwhile). `false` once the node stops.
async fn to_node(shared: &Shared, input: Input) -> bool {
    tokio::select! {
        biased;
        _ = shared.shutdown.cancelled() => false,
        sent = shared.requests.send(input) => sent.is_ok(),
    }
}

async fn serve_client(
    mut reader: Reader,
    writer: Writer,
    addr: SocketAddr,
    shared: &Arc<Shared>,
    access: crate::auth::Access,
) {
    let cfg = &shared.cfg;
    let limits = cfg.limits;
    let client = shared.next_id();
    let credits = Arc::new(Credits::new(limits.max_inflight, LIST_PAGES_IN_FLIGHT));
    // Room for every answer the credits allow, the welcome and a refusal:
    // the node loop's `offer` never finds it full unless this is a bug.
    let (outbox, rx) = Outbox::new(limits.max_inflight + 4);
    let writer_task = shared.tracker.spawn(
        crate::net::write_frames(writer, rx, addr.to_string(), Some(credits.clone()))
            .in_current_span(),
    );
    let view = shared.role.borrow().clone();
    let welcome = Welcome {
        node: cfg.id.clone(),
        role: view.role,
        master_addr: view.master_addr,
        last: shared.log.read().expect("log lock").last(),
        stored: *shared.visible.borrow(),
        max_message_bytes: cfg.max_message_bytes as u64,
    };
    outbox.offer(Frame::Welcome(welcome));
    let opened = to_node(
        shared,
        Input::ClientOpened {
            client,
            tx: outbox.clone(),
        },
    )
    .await;
    // The requests, until the peer goes, misbehaves or the node stops.
    if opened {
        loop {
            let idle = credits.idle();
            let frame = tokio::select! {
                biased;
                _ = shared.shutdown.cancelled() => break,
                _ = outbox.closed() => {
                    if let Some(more) = shared.throttle.allow("not-reading") {
                        warn!(peer = %addr, suppressed = more, "closing client connection: it does not read its answers");
                    }
                    break;
                }
                f = reader.next() => f,
                _ = tokio::time::sleep(limits.idle_timeout), if idle => {
                    if let Some(more) = shared.throttle.allow("idle") {
                        info!(peer = %addr, suppressed = more, "closing client connection idle for {} (--idle-timeout)", humantime::format_duration(limits.idle_timeout));
                    }
                    break;
                }
            };
            let frame = match frame {
                Some(Ok(frame)) => frame,
                Some(Err(e)) => {
                    if let Some(more) = shared.throttle.allow("bad-client-frame") {
                        warn!(peer = %addr, error = %e, suppressed = more, "closing client connection");
                    }
                    // Say why before closing, so the client can tell a bad
                    // request from a broken connection.
                    let reason = match e {
                        FrameError::TooLarge { .. } => format!(
                        "{e}: this node accepts messages of up to {} bytes (--max-message-bytes)",
                        cfg.max_message_bytes
                    ),
                        other => format!("unreadable request: {other}"),
                    };
                    outbox.offer(Frame::Refused { reason });
                    break;
                }
                None => break,
            };
            if !matches!(
                frame,
                Frame::Append { .. } | Frame::List { .. } | Frame::Health { .. }
            ) {
                if let Some(more) = shared.throttle.allow("unexpected-client-frame") {
                    warn!(peer = %addr, suppressed = more, "closing client connection: unexpected {}", frame_name(&frame));
                }
                break;
            }
            // One credit per request, given back when its answer is written.
            // Without one, this connection is not read until answers go out.
            if credits.inflight.available_permits() == 0 {
                if let Some(more) = shared.throttle.allow("max-inflight") {
                    info!(peer = %addr, suppressed = more, "a client has {} requests unanswered (--max-inflight): not reading from it until answers go out", limits.max_inflight);
                }
            }
            let credit = tokio::select! {
                biased;
                _ = shared.shutdown.cancelled() => break,
                _ = outbox.closed() => break,
                c = credits.inflight.acquire() => c,
            };
            match credit {
                Ok(c) => c.forget(),
                Err(_) => break,
            }
            match frame {
                Frame::Append {
                    req,
                    key,
                    w,
                    timeout_ms,
                    message,
                } => {
                    if !access.append {
                        let error = AppendError::Unauthorized(format!(
                        "node {} requires the client token to append: give it with --token-file (or REPLOG_TOKEN); nothing was appended",
                        cfg.id
                    ));
                        outbox.offer(Frame::AppendFailed { req, error });
                    } else {
                        // On a secondary, the core answers where the master is.
                        let input = Input::Append(AppendRequest {
                            client,
                            req,
                            key,
                            w,
                            timeout: timeout_from_ms(timeout_ms),
                            message,
                        });
                        if !to_node(shared, input).await {
                            break;
                        }
                    }
                }
                Frame::List {
                    req,
                    from,
                    max,
                    wait,
                } => {
                    let (shared2, outbox, credits) =
                        (shared.clone(), outbox.clone(), credits.clone());
                    // Its own task: a waiting list (follow) must not hold up the
                    // other requests of this connection.
                    shared.tracker.spawn(
                        async move {
                            list(&shared2, &outbox, &credits, req, from, max, wait).await;
                        }
                        .in_current_span(),
                    );
                }
                Frame::Health { req } => {
                    let (otx, orx) = oneshot::channel();
                    if !to_node(shared, Input::Health { tx: otx }).await {
                        break;
                    }
                    let outbox = outbox.clone();
                    shared.tracker.spawn(async move {
                        tokio::select! {
                            _ = outbox.closed() => {}
                            report = orx => if let Ok(report) = report {
                                outbox.send(Frame::HealthReport { req, report }).await;
                            }
                        }
                    });
                }
                _ => unreachable!("checked above"),
            }
        }
    }
    if opened {
        // Must arrive, or the loop would keep this client's outbox.
        let _ = shared.requests.send(Input::ClientClosed { client }).await;
    }
    // Queued answers still go out, but a peer that reads nothing does not
    // hold this task.
    outbox.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
}

/// Answers one `List`: waits (with `wait`) until something at `from` is
/// visible, then reads one page, at most [`LIST_PAGE_BYTES`] of messages,
/// once the connection's previous page has been written.
async fn list(
    shared: &Shared,
    outbox: &Outbox,
    credits: &Credits,
    req: u64,
    from: u64,
    max: u32,
    wait: bool,
) {
    let from = from.max(1);
    let mut visible_rx = shared.visible.clone();
    if wait {
        while *visible_rx.borrow_and_update() < from {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                _ = outbox.closed() => return,
                changed = visible_rx.changed() => if changed.is_err() { return },
            }
        }
    }
    let page = tokio::select! {
        _ = shared.shutdown.cancelled() => return,
        _ = outbox.closed() => return,
        p = credits.list_pages.acquire() => p,
    };
    match page {
        Ok(p) => p.forget(), // given back by the writer
        Err(_) => return,
    }
    // `visible` is read under the log's lock: the loop changes both under
    // the write lock (a truncation lowers it), so they agree here.
    let (visible, read) = {
        let log = shared.log.read().expect("log lock");
        let visible = *visible_rx.borrow_and_update();
        let max = max.clamp(1, LIST_PAGE) as usize;
        (visible, log.read(from, visible, max, LIST_PAGE_BYTES))
    };
    let answer = match read {
        Ok(entries) => Frame::Listed {
            req,
            entries: entries.into_iter().map(|e| (e.seq, e.message)).collect(),
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

async fn serve_master(
    mut reader: Reader,
    writer: Writer,
    addr: SocketAddr,
    shared: &Arc<Shared>,
    master: String,
    epoch: u64,
) {
    let conn = shared.next_id();
    let (outbox, rx) = Outbox::new(REPLICATION_OUTBOX);
    let writer_task = shared
        .tracker
        .spawn(crate::net::write_frames(writer, rx, addr.to_string(), None).in_current_span());
    // Replication inputs go to the control queue, which the node loop
    // serves before client requests.
    let control = shared.control.clone();
    let send = |input| {
        let control = control.clone();
        async move {
            tokio::select! {
                biased;
                _ = shared.shutdown.cancelled() => false,
                sent = control.send(input) => sent.is_ok(),
            }
        }
    };
    let mut open = send(Input::MasterOpened {
        conn,
        tx: outbox.clone(),
        master,
        epoch,
    })
    .await;
    while open {
        let frame = tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => break,
            _ = outbox.closed() => {
                debug!(node = %shared.cfg.id, "replication connection closed by this node (refused, or the master does not read its acknowledgements)");
                break;
            }
            f = reader.next() => f,
        };
        let event = match frame {
            Some(Ok(Frame::Sync { truncate_after })) => SecondaryEvent::Sync {
                conn,
                truncate_after,
            },
            Some(Ok(Frame::Entries { entries })) => SecondaryEvent::Entries { conn, entries },
            Some(Ok(Frame::Heartbeat)) => SecondaryEvent::Heartbeat { conn },
            Some(Ok(other)) => {
                warn!(node = %shared.cfg.id, "closing replication connection: unexpected {}", frame_name(&other));
                break;
            }
            Some(Err(e)) => {
                warn!(node = %shared.cfg.id, error = %e, "closing replication connection");
                break;
            }
            None => {
                debug!(node = %shared.cfg.id, "master closed the replication connection");
                break;
            }
        };
        open = send(Input::FromMaster(event)).await;
    }
    let _ = shared
        .control
        .send(Input::FromMaster(SecondaryEvent::MasterDisconnected {
            conn,
        }))
        .await;
    outbox.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
}

/// A frame's kind, for log lines (never its content, which may be large).
pub(crate) fn frame_name(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello(_) => "Hello",
        Frame::Welcome(_) => "Welcome",
        Frame::Refused { .. } => "Refused",
        Frame::Append { .. } => "Append",
        Frame::List { .. } => "List",
        Frame::Health { .. } => "Health",
        Frame::Appended { .. } => "Appended",
        Frame::AppendFailed { .. } => "AppendFailed",
        Frame::Listed { .. } => "Listed",
        Frame::HealthReport { .. } => "HealthReport",
        Frame::Sync { .. } => "Sync",
        Frame::Entries { .. } => "Entries",
        Frame::Heartbeat => "Heartbeat",
        Frame::Ack { .. } => "Ack",
        Frame::Nack { .. } => "Nack",
        Frame::HeartbeatReply { .. } => "HeartbeatReply",
        Frame::Challenge { .. } => "Challenge",
        Frame::Proof { .. } => "Proof",
        Frame::Unauthorized { .. } => "Unauthorized",
    }
}
