//! Every accepted connection: where frames from clients (and, on a
//! secondary, from the master) are decoded and dispatched.
//!
//! A connection opens with a hello. Anything wrong — a first frame that is
//! not a hello, another protocol version, another cluster, a frame over the
//! limit, bytes that do not decode — closes that one connection with a log
//! line. Nothing a peer sends can stop the node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, info, warn, Instrument};

use super::{timeout_from_ms, Input, Shared};
use crate::net::Net;
use crate::replication::secondary::SecondaryEvent;
use crate::wire::{
    AppendError, Frame, FrameCodec, FrameError, Hello, NodeRole, Role, Welcome, PROTOCOL_VERSION,
};

/// A connection that has not said hello by then is closed.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Most entries in one `Listed` answer.
const LIST_PAGE: u32 = 1000;

/// Accepts connections until the node stops.
pub(super) async fn accept_loop<N: Net>(listener: N::Listener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            a = N::accept(&listener) => a,
        };
        match accepted {
            Ok((stream, addr)) => {
                let shared2 = shared.clone();
                shared
                    .tracker
                    .spawn(serve::<N>(stream, addr, shared2).in_current_span());
            }
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

type Reader<N> = FramedRead<tokio::io::ReadHalf<<N as Net>::Stream>, FrameCodec>;

async fn serve<N: Net>(stream: N::Stream, addr: SocketAddr, shared: Arc<Shared>) {
    let cfg = &shared.cfg;
    let (r, w) = tokio::io::split(stream);
    let mut reader: Reader<N> = FramedRead::new(r, FrameCodec::new(cfg.max_frame_bytes()));
    let mut writer = FramedWrite::new(w, FrameCodec::new(cfg.max_frame_bytes()));

    let first = tokio::select! {
        _ = shared.shutdown.cancelled() => return,
        f = tokio::time::timeout(HELLO_TIMEOUT, reader.next()) => f,
    };
    let hello = match first {
        Ok(Some(Ok(Frame::Hello(hello)))) => hello,
        Ok(Some(Ok(other))) => {
            warn!(node = %cfg.id, peer = %addr, "closing connection: first frame was not a hello ({})", frame_name(&other));
            return;
        }
        Ok(Some(Err(e))) => {
            warn!(node = %cfg.id, peer = %addr, error = %e, "closing connection: bad bytes before hello");
            return;
        }
        Ok(None) => return,
        Err(_) => {
            warn!(node = %cfg.id, peer = %addr, "closing connection: no hello within {HELLO_TIMEOUT:?}");
            return;
        }
    };
    if let Err(reason) = check_hello(&shared, &hello) {
        warn!(node = %cfg.id, peer = %addr, %reason, "refusing connection");
        let _ = writer.send(Frame::Refused { reason }).await;
        return;
    }

    // From here on everything is written by one task fed through a channel,
    // so answers produced anywhere (the node loop, list handlers) queue in
    // order without holding up this reader.
    let (tx, rx) = mpsc::unbounded_channel::<Frame>();
    let writer_task =
        tokio::spawn(crate::net::write_frames(writer, rx, addr.to_string()).in_current_span());

    match hello.role {
        Role::Client => serve_client::<N>(reader, tx, addr, &shared).await,
        Role::Master { id, epoch } => {
            info!(node = %cfg.id, master = %id, epoch, peer = %addr, "master connected");
            serve_master::<N>(reader, tx, &shared).await
        }
    }
    // Let queued answers go out, but do not hang on a peer that reads
    // nothing.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
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
    if let Role::Master { id, .. } = &hello.role {
        if hello.cluster.is_none() {
            return Err("a master must name its cluster".into());
        }
        if cfg.is_master() {
            return Err(format!(
                "node {} is itself the master of this cluster",
                cfg.id
            ));
        }
        if *id != cfg.cluster.master {
            return Err(format!(
                "node '{id}' is not the master of this cluster (the master is '{}')",
                cfg.cluster.master
            ));
        }
    }
    Ok(())
}

async fn serve_client<N: Net>(
    mut reader: Reader<N>,
    tx: mpsc::UnboundedSender<Frame>,
    addr: SocketAddr,
    shared: &Arc<Shared>,
) {
    let cfg = &shared.cfg;
    let client = shared.next_id();
    let welcome = Welcome {
        node: cfg.id.clone(),
        role: if cfg.is_master() {
            NodeRole::Master
        } else {
            NodeRole::Secondary
        },
        master_addr: cfg.cluster.master_addr().to_string(),
        last: shared.log.read().expect("log lock").last(),
        stored: *shared.visible.borrow(),
        max_message_bytes: cfg.max_message_bytes as u64,
    };
    if tx.send(Frame::Welcome(welcome)).is_err() {
        return;
    }
    if cfg.is_master() {
        let _ = shared.inputs.send(Input::ClientOpened {
            client,
            tx: tx.clone(),
        });
    }
    loop {
        let frame = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            f = reader.next() => f,
        };
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                warn!(node = %cfg.id, peer = %addr, error = %e, "closing client connection");
                // Say why before closing, so the client can tell a bad
                // request from a broken connection.
                let reason = match e {
                    FrameError::TooLarge { .. } => format!(
                        "{e}: this node accepts messages of up to {} bytes (--max-message-bytes)",
                        cfg.max_message_bytes
                    ),
                    other => format!("unreadable request: {other}"),
                };
                let _ = tx.send(Frame::Refused { reason });
                break;
            }
            None => break,
        };
        match frame {
            Frame::Append {
                req,
                key,
                w,
                timeout_ms,
                message,
            } => {
                if cfg.is_master() {
                    let _ = shared.inputs.send(Input::Append {
                        client,
                        req,
                        key,
                        w,
                        timeout: timeout_from_ms(timeout_ms),
                        message,
                    });
                } else {
                    let error = AppendError::NotMaster {
                        master_addr: cfg.cluster.master_addr().to_string(),
                    };
                    let _ = tx.send(Frame::AppendFailed { req, error });
                }
            }
            Frame::List {
                req,
                from,
                max,
                wait,
            } => {
                let shared = shared.clone();
                let tx = tx.clone();
                // Its own task: a waiting list (follow) must not hold up the
                // other requests of this connection.
                tokio::spawn(async move {
                    if let Some(answer) = list(&shared, req, from, max, wait).await {
                        let _ = tx.send(answer);
                    }
                });
            }
            Frame::Health { req } => {
                let (otx, orx) = oneshot::channel();
                let _ = shared.inputs.send(Input::Health { tx: otx });
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(report) = orx.await {
                        let _ = tx.send(Frame::HealthReport { req, report });
                    }
                });
            }
            other => {
                warn!(node = %cfg.id, peer = %addr, "closing client connection: unexpected {}", frame_name(&other));
                break;
            }
        }
    }
    if cfg.is_master() {
        let _ = shared.inputs.send(Input::ClientClosed { client });
    }
}

/// Reads up to `max` visible entries from `from`; with `wait`, waits until
/// there is at least one (or the node stops).
async fn list(shared: &Shared, req: u64, from: u64, max: u32, wait: bool) -> Option<Frame> {
    let from = from.max(1);
    let mut visible_rx = shared.visible.clone();
    loop {
        // `visible` is read under the log's lock: the loop changes both
        // under the write lock (a truncation lowers it), so they agree here.
        let (visible, read) = {
            let log = shared.log.read().expect("log lock");
            let visible = *visible_rx.borrow_and_update();
            let read = (visible >= from || !wait).then(|| {
                let max = max.clamp(1, LIST_PAGE) as usize;
                log.read(from, visible, max, shared.cfg.max_message_bytes)
            });
            (visible, read)
        };
        if let Some(read) = read {
            return match read {
                Ok(entries) => Some(Frame::Listed {
                    req,
                    entries: entries.into_iter().map(|e| (e.seq, e.message)).collect(),
                    visible,
                }),
                Err(e) => {
                    warn!(error = %e, "cannot read the log for a list");
                    Some(Frame::Refused {
                        reason: format!("node {} cannot read its log: {e}", shared.cfg.id),
                    })
                }
            };
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return None,
            changed = visible_rx.changed() => if changed.is_err() { return None },
        }
    }
}

async fn serve_master<N: Net>(
    mut reader: Reader<N>,
    tx: mpsc::UnboundedSender<Frame>,
    shared: &Arc<Shared>,
) {
    let conn = shared.next_id();
    let _ = shared.inputs.send(Input::MasterOpened { conn, tx });
    loop {
        let frame = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
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
        let _ = shared.inputs.send(Input::FromMaster(event));
    }
    let _ = shared
        .inputs
        .send(Input::FromMaster(SecondaryEvent::MasterDisconnected {
            conn,
        }));
}

/// A frame's kind, for log lines (never its content, which may be large).
fn frame_name(frame: &Frame) -> &'static str {
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
    }
}
