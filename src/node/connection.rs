//! Every accepted connection: the hello checked and the cluster key
//! proved, then handed on: a client to `clients`, on a secondary the
//! master's replication connection served here, a candidate answered.
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
//!   replication queue first, so queued client requests cannot delay
//!   heartbeats and acks behind them;
//! - a TLS handshake, a burst of CPU, runs on a thread of its own, not on
//!   the thread the node loop may share with the connections.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, info, warn, Instrument};

use super::config::UNKNOWN_CLUSTER;
use super::shared::{Input, Shared};
use super::{clients, requests};
use crate::auth::Access;
use crate::net::{BoxConn, Coalesce, FrameReader as Reader, FrameWriter as Writer, Net, Outbox};
use crate::replication::secondary::SecondaryEvent;
use crate::wire::{Frame, FrameCodec, Hello, Role, OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION};

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
                    shared.metrics.refused("max_connections");
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
    // The handshake's key exchange and signature are a millisecond of CPU
    // or more (an RSA key), in one poll. On the thread the node loop may
    // share with the connections, a reconnect storm of --max-connections
    // clients (after a failover, say) would put a second of them ahead of
    // the loop and its heartbeats. They run on a thread of their own,
    // which the system shares the cores with; and still as tasks, so that
    // a client that stalls its handshake holds no thread.
    let accept = tokio::time::timeout(limit, tls.acceptor.accept(stream));
    let handshake = match handshakes() {
        Some(runtime) => match runtime.spawn(accept).await {
            Ok(handshake) => handshake,
            // Its runtime is gone (the process is exiting) or it panicked:
            // the connection is dropped, as if its own task had panicked.
            Err(_) => return,
        },
        None => accept.await,
    };
    match handshake {
        Ok(Ok(stream)) => {
            let has_cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            serve(Box::new(stream), addr, shared, slot, has_cert).await
        }
        Ok(Err(e)) => {
            shared.metrics.refused("tls");
            if let Some(more) = shared.throttle.allow("tls-handshake") {
                warn!(peer = %addr, error = %e, suppressed = more, "closing connection: TLS handshake failed (this node accepts only TLS)");
            }
        }
        Err(_) => {
            shared.metrics.refused("tls");
            if let Some(more) = shared.throttle.allow("tls-timeout") {
                warn!(peer = %addr, suppressed = more, "closing connection: no TLS handshake within {} (--hello-timeout)", humantime::format_duration(limit));
            }
        }
    }
}

/// The runtime TLS handshakes run on: one thread, started at the first
/// handshake, shared by every node of the process. `None` if it cannot be
/// started (no thread to be had): handshakes then run in place.
pub(super) fn handshakes() -> Option<&'static tokio::runtime::Handle> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("replog-tls")
                .enable_all()
                .build()
                .inspect_err(|e| warn!(error = %e, "cannot start the TLS handshake thread; handshakes share the node's thread"))
                .ok()
        })
        .as_ref()
        .map(|runtime| runtime.handle())
}

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
    let _open = shared.metrics.connection();
    let (r, w) = tokio::io::split(stream);
    let mut reader: Reader = FramedRead::new(r, FrameCodec::new(cfg.max_frame_bytes()));
    let mut writer: Writer = FramedWrite::new(w, FrameCodec::new(cfg.max_frame_bytes()));

    let hello_timeout = cfg.limits.hello_timeout;
    let deadline = tokio::time::Instant::now() + hello_timeout;
    let Some(hello) = read_hello(&shared, &mut reader, addr, deadline).await else {
        return;
    };
    if let Err(refusal) = check_hello(&shared, &hello) {
        let peer = (deadline, has_cert, addr);
        return refuse_hello(&shared, refusal, &hello, peer, (&mut reader, &mut writer)).await;
    }

    // A master or a candidate proves itself before anything else is read
    // (clients pass: their token is checked below).
    let peer = (deadline, has_cert, addr);
    if !admit_node(&shared, peer, &hello, &mut reader, &mut writer).await {
        return;
    }
    match hello.role {
        Role::Client => serve_client(reader, writer, addr, &shared, &hello).await,
        Role::Master { ref id, epoch } => {
            drop(slot);
            info!(node = %cfg.id, master = %id, epoch, peer = %addr, "master connected");
            let master = (id.clone(), epoch, hello.version, hello.cluster.unwrap_or(0));
            serve_master(reader, writer, addr, &shared, master).await
        }
        Role::Candidate { ref id } => {
            // Proven above: a node of this cluster, like a master.
            drop(slot);
            let candidate = (id.clone(), hello.version);
            serve_candidate(reader, writer, addr, &shared, candidate, deadline).await
        }
    }
}

/// The connection's first frame, which must be a hello within
/// `--hello-timeout`; `None` (said in the log, counted) if it is not.
async fn read_hello(
    shared: &Shared,
    reader: &mut Reader,
    addr: SocketAddr,
    deadline: tokio::time::Instant,
) -> Option<Hello> {
    let hello_timeout = shared.cfg.limits.hello_timeout;
    let first = tokio::select! {
        _ = shared.shutdown.cancelled() => return None,
        f = tokio::time::timeout_at(deadline, reader.next()) => f,
    };
    match first {
        Ok(Some(Ok(Frame::Hello(hello)))) => Some(hello),
        Ok(Some(Ok(other))) => {
            shared.metrics.refused("bad_hello");
            if let Some(more) = shared.throttle.allow("no-hello") {
                warn!(peer = %addr, suppressed = more, "closing connection: first frame was not a hello ({})", other.name());
            }
            None
        }
        Ok(Some(Err(e))) => {
            shared.metrics.refused("bad_hello");
            if let Some(more) = shared.throttle.allow("bad-hello") {
                warn!(peer = %addr, error = %e, suppressed = more, "closing connection: bad bytes before hello");
            }
            None
        }
        Ok(None) => None,
        Err(_) => {
            shared.metrics.refused("hello_timeout");
            if let Some(more) = shared.throttle.allow("hello-timeout") {
                warn!(peer = %addr, suppressed = more, "closing connection: no hello within {} (--hello-timeout)", humantime::format_duration(hello_timeout));
            }
            None
        }
    }
}

/// Refuses a hello, saying why (a node of this cluster whose
/// configuration differs, once it has proved itself, is told this node's).
async fn refuse_hello(
    shared: &Shared,
    refusal: HelloRefusal,
    hello: &Hello,
    peer: (tokio::time::Instant, bool, SocketAddr),
    (reader, writer): (&mut Reader, &mut Writer),
) {
    let cfg = &shared.cfg;
    let addr = peer.2;
    let reason = match &refusal {
        HelloRefusal::Other(reason)
        | HelloRefusal::Mismatch(reason)
        | HelloRefusal::Stranger(reason) => reason.clone(),
    };
    shared.metrics.refused(match refusal {
        HelloRefusal::Mismatch(_) | HelloRefusal::Stranger(_) => "configuration_mismatch",
        HelloRefusal::Other(_) => "hello",
    });
    if let Some(more) = shared.throttle.allow("refused-hello") {
        warn!(peer = %addr, %reason, suppressed = more, "refusing connection");
    }
    let answer = match refusal {
        // Never this node's cluster list to a client, nor to anyone
        // who cannot prove anything while clients need a token to see
        // the cluster's addresses.
        HelloRefusal::Mismatch(reason)
            if hello.role == Role::Client
                || (cfg.cluster_keys.is_none()
                    && cfg.tls.is_none()
                    && (cfg.client_token.is_some() || cfg.read_token.is_some())) =>
        {
            Frame::Refused { reason }
        }
        // Another node's configuration differs: once it has proved
        // itself a node of this cluster (key, certificate), it is told
        // this node's, so that its `health` can say what differs.
        HelloRefusal::Mismatch(_) => {
            if !admit_node(shared, peer, hello, reader, writer).await {
                return;
            }
            Frame::Mismatch {
                cluster: cfg.cluster.list(),
                master: cfg.cluster.master.clone(),
            }
        }
        HelloRefusal::Stranger(reason) => {
            if !admit_node(shared, peer, hello, reader, writer).await {
                return;
            }
            Frame::Refused { reason }
        }
        HelloRefusal::Other(reason) => Frame::Refused { reason },
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), writer.send(answer)).await;
}

/// A client's connection: its token gives its access, and its requests
/// are served (`clients.rs`); a wrong or missing token is told so.
async fn serve_client(
    reader: Reader,
    mut writer: Writer,
    addr: SocketAddr,
    shared: &Arc<Shared>,
    hello: &Hello,
) {
    let cfg = &shared.cfg;
    let access = crate::auth::client_access(
        hello.token.as_deref(),
        cfg.client_token.as_deref(),
        cfg.read_token.as_deref(),
        &cfg.id,
    )
    .map(|access| member_access(access, cfg.cluster_keys.is_some(), hello.nonce.is_some()));
    match access {
        Ok(access) => {
            let peer = clients::Peer {
                addr,
                access,
                version: hello.version,
            };
            clients::serve(reader, writer, peer, shared).await
        }
        Err(reason) => {
            shared.metrics.refused("client_token");
            if let Some(more) = shared.throttle.allow("unauthorized-client") {
                warn!(peer = %addr, %reason, suppressed = more, "refusing a client");
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(500),
                writer.send(Frame::Unauthorized {
                    reason: reason.to_string(),
                }),
            )
            .await;
        }
    }
}

/// Whether a client may change the membership: one that may append, and,
/// on a cluster with a key, proved it (its hello offered a nonce, and the
/// handshake before this checked the proof).
fn member_access(access: Access, keyed: bool, proved: bool) -> Access {
    Access {
        members: access.append && (!keyed || proved),
        ..access
    }
}

/// Another node (a master, a candidate) must show a certificate of the
/// cluster's CA under TLS and prove the cluster key: returns whether it
/// did; if not, it is refused with the reason, said in a (rate-limited)
/// log line naming the key file.
async fn admit_node(
    shared: &Shared,
    (deadline, has_cert, addr): (tokio::time::Instant, bool, SocketAddr),
    hello: &Hello,
    reader: &mut Reader,
    writer: &mut Writer,
) -> bool {
    let cfg = &shared.cfg;
    let (what, throttle, id) = match &hello.role {
        Role::Master { id, .. } => ("a master connection", "refused-master", id.as_str()),
        Role::Candidate { id } => ("a vote request", "refused-candidate", id.as_str()),
        // A client proves the key only if it offers to (see `prove`); a
        // client has no certificate to show beyond what TLS checked.
        Role::Client if hello.nonce.is_some() && shared.cfg.cluster_keys.is_some() => {
            let reason = prove(shared, deadline, hello, reader, writer).await;
            return match reason {
                Ok(()) => true,
                Err(reason) => {
                    shared.metrics.refused("node_proof");
                    let _ = tokio::time::timeout(
                        Duration::from_millis(500),
                        writer.send(Frame::Refused {
                            reason: reason.to_string(),
                        }),
                    )
                    .await;
                    false
                }
            };
        }
        Role::Client => return true,
    };
    let proved = if cfg.tls.is_some() && !has_cert {
        // Mutual TLS between nodes: the other node's certificate, which
        // the handshake already checked against the CA if offered.
        Err(ProofRefusal::NoCertificate {
            node: cfg.id.clone(),
            what,
        })
    } else {
        prove(shared, deadline, hello, reader, writer).await
    };
    let Err(reason) = proved else {
        return true;
    };
    shared.metrics.refused("node_proof");
    if let Some(more) = shared.throttle.allow(throttle) {
        let key_file = cfg
            .cluster_keys
            .as_ref()
            .map(|k| k.source().display().to_string());
        warn!(peer = %addr, node = %id, %reason, key_file, suppressed = more, "refusing {what}");
    }
    let _ = tokio::time::timeout(
        Duration::from_millis(500),
        writer.send(Frame::Refused {
            reason: reason.to_string(),
        }),
    )
    .await;
    false
}

/// A candidate's connection: a welcome, then its one `VoteRequest`, read
/// within the hello's deadline, answered by the core (which records the
/// vote first), and closed.
async fn serve_candidate(
    mut reader: Reader,
    mut writer: Writer,
    addr: SocketAddr,
    shared: &Arc<Shared>,
    (candidate, version): (String, u32),
    deadline: tokio::time::Instant,
) {
    let welcome = requests::welcome(shared);
    if writer.send(Frame::Welcome(welcome)).await.is_err() {
        return;
    }
    let (epoch, last, pre) = match tokio::time::timeout_at(deadline, reader.next()).await {
        Ok(Some(Ok(Frame::VoteRequest { epoch, last, pre }))) => (epoch, last, pre),
        Ok(Some(Ok(other))) => {
            warn!(node = %shared.cfg.id, %candidate, "closing a candidate's connection: unexpected {}", other.name());
            return;
        }
        _ => return,
    };
    let conn = shared.next_id();
    let (outbox, rx) = Outbox::new(2);
    let writer_task = shared.tracker.spawn(
        crate::net::write_frames(writer, rx, addr.to_string(), None, Coalesce::Off)
            .in_current_span(),
    );
    let input = Input::VoteRequested {
        conn,
        tx: outbox.clone(),
        candidate,
        epoch,
        last,
        pre,
        version,
    };
    let sent = tokio::select! {
        biased;
        _ = shared.shutdown.cancelled() => false,
        sent = shared.control.send(input) => sent.is_ok(),
    };
    if sent {
        // The node loop answers and closes the outbox.
        tokio::select! {
            _ = shared.shutdown.cancelled() => {}
            _ = outbox.closed() => {}
            _ = tokio::time::sleep(shared.cfg.timing.election_timeout) => {}
        }
    }
    outbox.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), writer_task).await;
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
) -> Result<(), ProofRefusal> {
    let cfg = &shared.cfg;
    let Some(keys) = &cfg.cluster_keys else {
        return Ok(());
    };
    let id = match &hello.role {
        Role::Master { id, .. } | Role::Candidate { id } => id.as_str(),
        // A client that offers a nonce proves the key too, to change the
        // membership (`member_access`).
        Role::Client if hello.nonce.is_some() => crate::auth::CLIENT_OPENER,
        Role::Client => return Ok(()),
    };
    // The reasons go back to a peer not yet proven: they name the flag, not
    // this node's key file (which the local log line names).
    let Some(theirs) = hello.nonce else {
        return Err(ProofRefusal::NoNonce {
            node: cfg.id.clone(),
            caller: id.into(),
        });
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
        _ => return Err(ProofRefusal::ChallengeNotTaken),
    }
    match tokio::time::timeout_at(deadline, reader.next()).await {
        Ok(Some(Ok(Frame::Proof { proof }))) if keys.check_opener(&proof, &ours, &theirs, id) => {
            Ok(())
        }
        Ok(Some(Ok(Frame::Proof { .. }))) => Err(ProofRefusal::WrongKey {
            node: cfg.id.clone(),
            caller: id.into(),
        }),
        Ok(Some(Ok(other))) => Err(ProofRefusal::NotAProof(other.name())),
        Ok(Some(Err(e))) => Err(ProofRefusal::Unreadable(e.to_string())),
        Ok(None) => Err(ProofRefusal::Closed),
        Err(_) => Err(ProofRefusal::TimedOut(limit)),
    }
}

/// Why a node (or a client offering to) did not prove the cluster key, or
/// show a certificate: the sentence sent back to it.
#[derive(Debug, thiserror::Error)]
enum ProofRefusal {
    /// With TLS, nodes must present a certificate of the cluster's CA.
    #[error("node {node} takes {what} only with a TLS certificate of the cluster's CA (--tls-cert, --tls-key)")]
    NoCertificate {
        /// This node.
        node: String,
        /// What was asked for.
        what: &'static str,
    },
    /// A hello without a nonce to a node that requires the key.
    #[error("node {node} requires the cluster key, and node '{caller}' offered none: start it with --cluster-key-file (the same key as every other node)")]
    NoNonce {
        /// This node.
        node: String,
        /// Who called.
        caller: String,
    },
    /// The challenge could not be sent.
    #[error("the node did not take the challenge")]
    ChallengeNotTaken,
    /// A proof made with another key.
    #[error("node '{caller}' does not hold the cluster key of node {node}: give every node the same --cluster-key-file")]
    WrongKey {
        /// This node.
        node: String,
        /// Who called.
        caller: String,
    },
    /// Another frame where the proof was due.
    #[error("expected the node's proof of the cluster key, got {0}")]
    NotAProof(&'static str),
    /// A frame that does not decode.
    #[error("unreadable proof: {0}")]
    Unreadable(String),
    /// Closed before proving.
    #[error("closed during the handshake")]
    Closed,
    /// No proof within the deadline.
    #[error("no proof of the cluster key within {} (--hello-timeout)", humantime::format_duration(*.0))]
    TimedOut(Duration),
}

/// Why a hello is refused.
enum HelloRefusal {
    /// The caller's `--cluster` or `--master` differs from this node's.
    Mismatch(String),
    /// The caller names another cluster's id: the reason is sent back
    /// once it has proved itself (it names this node's id).
    Stranger(String),
    /// Anything else: the reason sent back.
    Other(String),
}

/// Checks version, cluster and role.
fn check_hello(shared: &Shared, hello: &Hello) -> Result<(), HelloRefusal> {
    let cfg = &shared.cfg;
    if !(OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&hello.version) {
        return Err(HelloRefusal::Other(format!(
            "protocol version {} is not spoken here (node {} speaks versions {OLDEST_PROTOCOL_VERSION} to {PROTOCOL_VERSION}); upgrade the nodes before their clients, and run a replog release no older than theirs",
            hello.version, cfg.id
        )));
    }
    if matches!(hello.role, Role::Master { .. })
        && hello.version < crate::wire::OLDEST_REPLICATION_VERSION
    {
        return Err(HelloRefusal::Other(format!(
            "a master of node protocol {} does not replicate what this node does (each log's numbers, consumer groups): node {} (node protocol {}) takes entries only from a master of {} or later; upgrade the master",
            hello.version,
            cfg.id,
            crate::wire::NODE_PROTOCOL_VERSION,
            crate::wire::OLDEST_REPLICATION_VERSION
        )));
    }
    if matches!(hello.role, Role::Master { .. } | Role::Candidate { .. }) && hello.cluster.is_none()
    {
        return Err(HelloRefusal::Other("a node must name its cluster".into()));
    }
    // A node that knows its cluster's id takes only that cluster's nodes,
    // whatever their --cluster lists now say (the members are in the log).
    // One that does not is new: in a new cluster every node's list must be
    // the same (the id will be its fingerprint); a node joining takes
    // whichever cluster its first master names; and one whose members come
    // from its log without an id (changes made under an older release)
    // has no list to compare. A caller saying `UNKNOWN_CLUSTER` is such a
    // node too.
    let ours = shared.cluster_id.load(Ordering::Relaxed);
    let from_log = shared.members_from_log.load(Ordering::Relaxed);
    match hello.cluster {
        Some(UNKNOWN_CLUSTER) | None => {}
        Some(theirs) if ours != 0 && theirs != ours => {
            return Err(HelloRefusal::Stranger(format!(
                "node {} belongs to another cluster (cluster id {ours:016x} in its data directory, {theirs:016x} in the hello): a node takes part only in the cluster its data directory belongs to",
                cfg.id
            )));
        }
        Some(theirs)
            if ours == 0
                && !from_log
                && cfg.join.is_none()
                && theirs != cfg.cluster.fingerprint() =>
        {
            return Err(HelloRefusal::Mismatch(format!(
                "node {} has an empty data directory and was started with a different --cluster list (or --master): start every node of a new cluster with the same one, and a node joining a running cluster (or replacing a lost disk) with --join NODE",
                cfg.id
            )));
        }
        Some(_) => {}
    }
    // Whether this node takes that master (its role, its epoch) is the
    // core's decision, once the master has proved itself.
    Ok(())
}

/// Serves the master's replication connection: its frames to the core (as
/// the secondary's events), the core's answers back.
// One arm per frame a master sends, in one loop with the answers' writer.
async fn serve_master(
    mut reader: Reader,
    writer: Writer,
    addr: SocketAddr,
    shared: &Arc<Shared>,
    (master, epoch, version, cluster): (String, u64, u32, u64),
) {
    let conn = shared.next_id();
    let (outbox, rx) = Outbox::new(REPLICATION_OUTBOX);
    let writer_task = shared.tracker.spawn(
        crate::net::write_frames(writer, rx, addr.to_string(), None, Coalesce::Off)
            .in_current_span(),
    );
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
        version,
        cluster,
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
            // The core checks that a reset names a log (`role::frames`).
            // Only a master older than this node's version sends a reset
            // without numbers, and none is accepted (`check_master`).
            Some(Ok(Frame::Reset { base, epochs })) => SecondaryEvent::Reset {
                conn,
                base,
                epochs,
                configs: None,
                numbers: Vec::new(),
                logs: bytes::Bytes::new(),
                groups: bytes::Bytes::new(),
            },
            Some(Ok(Frame::ResetMembers(reset))) => {
                let crate::wire::ResetAtBase {
                    base,
                    epochs,
                    configs,
                    numbers,
                    logs,
                    groups,
                } = *reset;
                SecondaryEvent::Reset {
                    conn,
                    base,
                    epochs,
                    configs: Some(configs),
                    numbers,
                    logs,
                    groups,
                }
            }
            Some(Ok(Frame::Entries { entries })) => SecondaryEvent::Entries { conn, entries },
            Some(Ok(Frame::Heartbeat { committed })) => {
                SecondaryEvent::Heartbeat { conn, committed }
            }
            Some(Ok(other)) => {
                warn!(node = %shared.cfg.id, "closing replication connection: unexpected {}", other.name());
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
