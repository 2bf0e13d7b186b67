//! The master's side of replication to one secondary: dial it, say hello,
//! keep exactly one connection open, and when it fails or goes silent,
//! report it down and dial again when the core says (its backoff is
//! `replication/redial.rs`). What to send is decided by the core; this
//! only carries it.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};

use super::shared::{Input, Shared};
use crate::entry::Epoch;
use crate::net::{Coalesce, DialError, FrameReader as Reader, FrameWriter as Writer, Net, Outbox};
use crate::replication::master::MasterEvent;
use crate::replication::redial::LinkDown;
use crate::replication::ConnId;
use crate::wire::{Frame, Hello, Role, NODE_PROTOCOL_VERSION};

/// Frames queued for the writer of one replication connection: the core
/// has at most `FRAMES_IN_FLIGHT` entry sends unacked, each one frame
/// unless its messages are large, plus heartbeats for a few seconds, and
/// room. With large messages a send becomes several frames of up to
/// `--max-message-bytes`, and a secondary that reads slowly can still fill
/// this and be dropped (then redialled): the bound holds either way.
const WRITE_QUEUE: usize = 4 * crate::replication::FRAMES_IN_FLIGHT;

/// What the node loop asks of a link.
#[derive(Debug)]
pub(crate) enum LinkCmd {
    /// Send this frame if connection `ConnId` is still the live one.
    Send(ConnId, Frame),
    /// Connection `ConnId` went silent: drop it and dial again.
    Reconnect(ConnId),
    /// Link `u64` is down: dial again after this long (the core's answer
    /// to its `LinkDown`).
    Redial(u64, Duration),
}

/// Runs the link to secondary `peer`, saying hello for `epoch`, until
/// shutdown or until its command queue is closed (the node is no longer
/// master).
// Dial, serve, report and wait, in one loop: each outcome of the dial is
// an arm that says what the core is told.
pub(crate) async fn run<N: Net>(
    peer: usize,
    id: String,
    addr: String,
    epoch: u64,
    shared: Arc<Shared>,
    mut cmds: mpsc::Receiver<LinkCmd>,
) {
    let cfg = &shared.cfg;
    let timing = cfg.timing;
    let mut last_error = String::new();
    // This link's id, unique in the node: the core's answers to its
    // reports name it.
    let link = shared.next_id();
    loop {
        if shared.shutdown.is_cancelled() || cmds.is_closed() {
            return;
        }
        let role = Role::Master {
            id: cfg.id.clone(),
            epoch,
        };
        let down = match connect::<N>(&shared, &id, &addr, role, timing.unhealthy_after).await {
            // Stopped while dialling (a static master's new epoch): this
            // hello spoke for the old epoch, and the new link is dialling.
            Ok(_) if cmds.is_closed() => return,
            Ok((stream, welcome, version)) => {
                last_error.clear();
                let conn = shared.next_id();
                info!(node = %cfg.id, peer = %id, %addr, conn, their_last = welcome.last.seq,
                      "replication connection open");
                let _ = shared
                    .control
                    .send(Input::Link(MasterEvent::PeerConnected {
                        peer,
                        conn,
                        last: welcome.last,
                        stored: welcome.stored,
                        epochs: welcome.epochs,
                        version,
                    }))
                    .await;
                let reason = serve((peer, &id), conn, stream, &shared, &mut cmds).await;
                info!(node = %cfg.id, peer = %id, conn, %reason, "replication connection closed");
                let _ = shared
                    .control
                    .send(Input::Link(MasterEvent::PeerDisconnected { peer, conn }))
                    .await;
                LinkDown::Closed
            }
            Err(e) => {
                if let HandshakeError::Stale { epoch, .. } = &e {
                    // This node is a stale master: the core steps down.
                    let _ = shared
                        .control
                        .send(Input::NewerEpoch { epoch: *epoch })
                        .await;
                }
                let mismatch = matches!(e, HandshakeError::Mismatch(_));
                let (e, down) = match e {
                    HandshakeError::Refused(reason)
                    | HandshakeError::Mismatch(reason)
                    | HandshakeError::Stale { reason, .. } => {
                        // It answered: alive, but it will not take us (or we
                        // will not take it).
                        let _ = shared
                            .control
                            .send(Input::Link(MasterEvent::PeerRefused {
                                peer,
                                reason: reason.clone(),
                                mismatch,
                            }))
                            .await;
                        (format!("refused: {reason}"), LinkDown::Refused)
                    }
                    HandshakeError::Failed(e) => (e, LinkDown::Unreachable),
                };
                // Say it once per streak, not at every retry.
                if e != last_error {
                    warn!(node = %cfg.id, peer = %id, %addr, error = %e, "cannot reach secondary; retrying with backoff");
                    last_error = e;
                } else {
                    debug!(peer = %id, "still cannot reach secondary");
                }
                down
            }
        };
        if !wait_to_redial((peer, link), down, &shared, &mut cmds).await {
            return;
        }
    }
}

/// Tells the core the link is down and waits for its word on when to dial
/// again (`LinkCmd::Redial`), then for that long. Other commands meanwhile
/// are for connections that no longer exist. Returns false once the link
/// is to stop (shutdown, or its queue closed).
async fn wait_to_redial(
    (peer, link): (usize, u64),
    down: LinkDown,
    shared: &Shared,
    cmds: &mut mpsc::Receiver<LinkCmd>,
) -> bool {
    // A stopped link says nothing: its slot may be another link's now.
    if cmds.is_closed() {
        return false;
    }
    let event = Input::Link(MasterEvent::LinkDown { peer, link, down });
    if shared.control.send(event).await.is_err() {
        return false;
    }
    // The answer comes within a round of the node loop; should it be
    // dropped (a full queue), the longest delay the core could have said
    // is waited instead.
    let mut wake = tokio::time::Instant::now() + shared.cfg.timing.retry_max;
    let mut told = false;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return false,
            _ = tokio::time::sleep_until(wake) => return true,
            cmd = cmds.recv() => match cmd {
                None => return false,
                Some(LinkCmd::Redial(to, after)) if to == link && !told => {
                    told = true;
                    wake = tokio::time::Instant::now() + after;
                }
                Some(_) => {}
            },
        }
    }
}

/// Why a node-to-node handshake did not end in a welcome.
#[derive(Debug)]
pub(super) enum HandshakeError {
    /// The node answered, and refused (a wrong key, a newer epoch...).
    Refused(String),
    /// The node answered that its `--cluster` or `--master` differs: how.
    Mismatch(String),
    /// The node refused: it knows a newer epoch than the caller's.
    Stale {
        /// That epoch.
        epoch: Epoch,
        /// Its words.
        reason: String,
    },
    /// The node could not be reached, or did not answer.
    Failed(String),
}

/// Dials another node as `role` (a master, a candidate), says hello,
/// proves the cluster key and waits for the welcome.
// The handshake's steps in the order they cross the wire (dial, hello,
// challenge, proof, version, welcome), each with its refusal.
pub(super) async fn connect<N: Net>(
    shared: &Shared,
    peer_id: &str,
    addr: &str,
    role: Role,
    deadline: Duration,
) -> Result<((Reader, Writer), crate::wire::Welcome, u32), HandshakeError> {
    use HandshakeError::{Failed, Refused};
    let what = match role {
        Role::Master { .. } => "secondary",
        _ => "node",
    };
    let cfg = &shared.cfg;
    let ours = crate::auth::nonce();
    let hello = Hello {
        version: NODE_PROTOCOL_VERSION,
        // The cluster's id once this node knows it; until then its
        // --cluster list's fingerprint (a new cluster's id will be that),
        // or none to compare if its members come from its log.
        cluster: Some(match shared.cluster_id.load(Relaxed) {
            0 if shared.members_from_log.load(Relaxed) => super::config::UNKNOWN_CLUSTER,
            0 => cfg.cluster.fingerprint(),
            id => id,
        }),
        role,
        nonce: cfg.cluster_keys.as_ref().map(|_| ours),
        token: None,
    };
    let tls = cfg.tls.as_ref().map(|t| &t.connector);
    let (mut reader, mut writer, mut answer) =
        crate::net::dial::<N>(addr, tls, hello, cfg.max_frame_bytes(), deadline)
            .await
            .map_err(|e| match e {
                DialError::TlsRefused(e) => Refused(format!(
                    "TLS handshake with {what} {peer_id} failed: {e} (check --tls-cert and --tls-ca on both nodes)"
                )),
                DialError::Unreachable(e) => Failed(e),
            })?;
    // The opener's half of the handshake (`crate::auth`): nothing is sent
    // to a node that has not proved it holds the cluster key.
    if let Some(keys) = &cfg.cluster_keys {
        let key_file = keys.source().display();
        match answer {
            Some(Ok(Frame::Challenge { nonce, proofs })) => {
                let Some(k) = keys.check_acceptor(&proofs, &ours, &nonce, peer_id) else {
                    return Err(Refused(format!(
                        "{what} {peer_id} does not hold this node's cluster key ({key_file}): give every node the same --cluster-key-file"
                    )));
                };
                let proof = keys.opener_proof(k, &nonce, &ours, &cfg.id);
                writer
                    .send(Frame::Proof { proof })
                    .await
                    .map_err(|e| Failed(e.to_string()))?;
                answer = tokio::time::timeout(deadline, reader.next())
                    .await
                    .map_err(|_| Failed("no answer to the proof".to_string()))?;
            }
            Some(Ok(Frame::Welcome(_) | Frame::NodeVersion { .. })) => {
                return Err(Refused(format!(
                    "{what} {peer_id} did not prove the cluster key: start it with --cluster-key-file (the same key as {key_file})"
                )))
            }
            _ => {}
        }
    }
    // A node of version 8 or later says its own version before its welcome.
    let mut version = 7;
    if let Some(Ok(Frame::NodeVersion { version: v })) = answer {
        version = v;
        answer = tokio::time::timeout(deadline, reader.next())
            .await
            .map_err(|_| Failed("no welcome after the node's version".to_string()))?;
    }
    match answer {
        Some(Ok(Frame::Welcome(welcome))) => Ok(((reader, writer), welcome, version)),
        Some(Ok(Frame::Challenge { .. })) => Err(Refused(format!(
            "{what} {peer_id} requires the cluster key and this node has none: start it with --cluster-key-file"
        ))),
        Some(Ok(Frame::Refused { reason })) => Err(Refused(reason)),
        Some(Ok(Frame::Mismatch { cluster, master })) => Err(HandshakeError::Mismatch(
            match super::config::Cluster::parse(&cluster, Some(&master)) {
                Ok(theirs) => cfg.cluster.difference(peer_id, &theirs),
                Err(e) => format!(
                    "{what} {peer_id} was started with another --cluster or --master, which this node cannot read ({e}); start every node with the same ones"
                ),
            },
        )),
        Some(Ok(Frame::NewerEpoch { epoch, reason })) => {
            Err(HandshakeError::Stale { epoch, reason })
        }
        Some(Ok(other)) => Err(Failed(format!(
            "unexpected answer to hello: {}",
            other.name()
        ))),
        Some(Err(e)) => Err(Failed(e.to_string())),
        None => Err(Failed("closed during hello".into())),
    }
}

/// Carries frames both ways until the connection fails, goes silent (the
/// core says so) or the node stops. Returns why it ended.
async fn serve(
    (peer, id): (usize, &str),
    conn: ConnId,
    (mut reader, writer): (Reader, Writer),
    shared: &Shared,
    cmds: &mut mpsc::Receiver<LinkCmd>,
) -> String {
    // Writing goes through its own task so that a full socket (a paused
    // secondary) never stops acks and commands from being read here. Its
    // queue is bounded: the core's window bounds the entries in flight, and
    // a secondary that lets heartbeats pile up past it is not reading.
    let (wtx, wrx) = Outbox::new(WRITE_QUEUE);
    let writer_task = shared.tracker.spawn(
        crate::net::write_frames(writer, wrx, format!("secondary {id}"), None, Coalesce::Off)
            .in_current_span(),
    );
    let reason = loop {
        tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => break "shutdown".to_string(),
            cmd = cmds.recv() => match cmd {
                Some(LinkCmd::Send(c, frame)) if c == conn => {
                    if !wtx.offer(frame) {
                        break "the secondary does not read what is sent (or the write failed)".to_string();
                    }
                }
                Some(LinkCmd::Reconnect(c)) if c == conn => break "silent past --unhealthy-after".to_string(),
                Some(_) => {}
                None => break "node stopping".to_string(),
            },
            frame = reader.next() => {
                let event = match frame {
                    Some(Ok(Frame::Ack { stored })) => MasterEvent::Ack { peer, conn, stored },
                    Some(Ok(Frame::Nack { stored, reason })) => {
                        debug!(peer = %id, %reason, stored, "secondary failed to take entries; will resend");
                        MasterEvent::Nack { peer, conn, stored, reason }
                    }
                    Some(Ok(Frame::HeartbeatReply { stored })) => MasterEvent::HeartbeatReply { peer, conn, stored, learner: false },
                    Some(Ok(Frame::LearnerHeartbeatReply { stored })) => MasterEvent::HeartbeatReply { peer, conn, stored, learner: true },
                    // The secondary moved to a newer epoch: this master is
                    // stale, and steps down.
                    Some(Ok(Frame::NewerEpoch { epoch, reason })) => {
                        let _ = shared.control.send(Input::NewerEpoch { epoch }).await;
                        break format!("refused: {reason}");
                    }
                    Some(Ok(other)) => break format!("unexpected frame from secondary: {other:?}"),
                    Some(Err(e)) => break e.to_string(),
                    None => break "closed by the secondary".to_string(),
                };
                if shared.control.send(Input::Link(event)).await.is_err() {
                    break "node stopping".to_string();
                }
            }
        }
    };
    wtx.close();
    writer_task.abort();
    reason
}
