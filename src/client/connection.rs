//! A connection to a node: many requests in flight on it, answers matched
//! by request id; finding the master.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{oneshot, watch};

use crate::entry::Seq;
use crate::wire::{
    AppendError, Frame, GroupChangeRequest, GroupStatus, HealthReport, Hello, LogChangeRequest,
    LogDetail, LogStatus, MemberChangeRequest, Role, Welcome, WriteConcern, PROTOCOL_VERSION,
};

use super::error::ClientError;

/// Largest frame a client accepts: generous, since a node's limit is set by
/// its own `--max-message-bytes`.
const CLIENT_MAX_FRAME: usize = 512 * 1024 * 1024;

/// Requests queued for the connection's writer; more wait for room.
const CLIENT_QUEUE: usize = 1024;

/// How long connecting and the hello may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The node's answer to the hello (and to the key's proof): its welcome,
/// or why there is none.
fn welcome_in(
    addr: &str,
    answer: Option<Result<Frame, crate::wire::FrameError>>,
) -> Result<Welcome, ClientError> {
    let unreachable = |reason: String| ClientError::Unreachable {
        addr: addr.to_string(),
        reason,
    };
    let welcome = match answer {
        Some(Ok(Frame::Welcome(w))) => w,
        Some(Ok(Frame::Refused { reason })) => {
            return Err(ClientError::Refused {
                addr: addr.to_string(),
                reason,
            })
        }
        Some(Ok(Frame::Unauthorized { reason })) => {
            return Err(ClientError::Unauthorized {
                addr: addr.to_string(),
                reason,
            })
        }
        Some(Ok(other)) => {
            return Err(ClientError::Protocol {
                addr: addr.to_string(),
                what: format!("unexpected answer to hello: {other:?}"),
            })
        }
        Some(Err(e)) => return Err(unreachable(e.to_string())),
        None => return Err(unreachable("closed during hello".into())),
    };
    Ok(welcome)
}

/// Reads the node's answers and hands each to the request waiting for it
/// (progress to whoever watches it), until the connection ends; then every
/// waiter left learns it by its sender being dropped.
async fn read_answers(mut reader: crate::net::FrameReader, pending: Pending, watching: Watching) {
    while let Some(Ok(frame)) = reader.next().await {
        if let Frame::Progress {
            req,
            seq,
            needed,
            missing,
        } = frame
        {
            if let Some(tx) = watching.lock().expect("watching lock").get(&req) {
                tx.send_replace(Some(Progress {
                    seq,
                    needed,
                    missing,
                }));
            }
            continue;
        }
        if let Frame::Refused { .. } = &frame {
            // Said just before the node closes: every request in
            // flight gets the reason.
            let waiters = pending.lock().expect("pending lock").take();
            for (_, w) in waiters.into_iter().flatten() {
                let _ = w.send(frame.clone());
            }
            return;
        }
        if let Frame::Answers { answers } = frame {
            // Several appends answered at once: each waiter gets
            // its own answer, as if it had come alone.
            let mut pending = pending.lock().expect("pending lock");
            for answer in answers {
                let waiter = pending.as_mut().and_then(|p| p.remove(&answer.req));
                if let Some(w) = waiter {
                    let _ = w.send(answer.into());
                }
            }
            continue;
        }
        let req = match &frame {
            Frame::Appended { req, .. }
            | Frame::AppendFailed { req, .. }
            | Frame::Listed { req, .. }
            | Frame::Digests { req, .. }
            | Frame::HealthReport { req, .. }
            | Frame::LogsListed { req, .. }
            | Frame::LogsDetailed { req, .. }
            | Frame::GroupsListed { req, .. } => *req,
            _ => continue,
        };
        let waiter = pending
            .lock()
            .expect("pending lock")
            .as_mut()
            .and_then(|p| p.remove(&req));
        if let Some(w) = waiter {
            let _ = w.send(frame);
        }
    }
    // Gone: every waiter learns it by its sender being dropped.
    pending.lock().expect("pending lock").take();
}

/// Options of one append.
#[derive(Debug, Clone)]
pub struct AppendOptions {
    /// Write concern.
    pub w: WriteConcern,
    /// Idempotency key; `None` lets the client make one up.
    pub key: Option<String>,
    /// Stop waiting after this long (the entry stays in the log).
    pub timeout: Option<Duration>,
    /// Where to publish the master's progress reports while the append
    /// waits for `w` (its sequence number as soon as it has one, and the
    /// nodes still missing); `None` asks for none.
    pub progress: Option<watch::Sender<Option<Progress>>>,
}

impl Default for AppendOptions {
    fn default() -> Self {
        AppendOptions {
            w: WriteConcern::Nodes(1),
            key: None,
            timeout: None,
            progress: None,
        }
    }
}

/// Where a waiting append stands, as the master last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Its sequence number in the master's log.
    pub seq: Seq,
    /// Nodes that must still store it.
    pub needed: u32,
    /// Ids of the nodes that do not hold it yet.
    pub missing: Vec<String>,
}

/// Requests waiting for their answer, by request id (a fast hasher: a lookup
/// per answer, and the ids are this library's own).
type Pending = Arc<Mutex<Option<foldhash::HashMap<u64, oneshot::Sender<Frame>>>>>;

/// Appends that asked for progress, by request id.
type Watching = Arc<Mutex<HashMap<u64, watch::Sender<Option<Progress>>>>>;

/// Removes an append's progress entry when dropped.
struct Unwatch<'a> {
    watching: &'a Watching,
    req: Option<u64>,
}

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        if let Some(req) = self.req {
            self.watching.lock().expect("watching lock").remove(&req);
        }
    }
}

/// How to connect: the client token and TLS, both optional.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// The client token (`--token-file`, `REPLOG_TOKEN`).
    pub token: Option<String>,
    /// TLS, verifying nodes against a CA (`--tls-ca`).
    pub tls: Option<tokio_rustls::TlsConnector>,
    /// The cluster key, proved in the handshake: membership changes on a
    /// cluster with a key need it (`replog member --cluster-key-file`).
    pub cluster_key: Option<crate::auth::ClusterKeys>,
    /// The log appends and lists are for (`--log`, `REPLOG_LOG`): `None`
    /// or `default` for the log named default.
    pub log: Option<String>,
}

impl std::fmt::Debug for ConnectOptions {
    // Never print the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("tls", &self.tls.is_some())
            .field("cluster_key", &self.cluster_key.is_some())
            .field("log", &self.log)
            .finish()
    }
}

/// A connection to one node.
#[derive(Debug, Clone)]
pub struct Client {
    /// The node's address.
    addr: String,
    /// How it connected (used again for a redirect).
    opts: ConnectOptions,
    /// What the node said in its welcome.
    welcome: Welcome,
    /// Frames to the writer task.
    tx: crate::net::Outbox,
    /// Requests waiting for an answer; `None` once the connection is gone.
    pending: Pending,
    /// Next request id.
    next_req: Arc<AtomicU64>,
    /// Where progress reports go.
    watching: Watching,
}

impl Client {
    /// Connects and says hello, without a token.
    pub async fn connect(addr: &str) -> Result<Client, ClientError> {
        Self::connect_with(addr, &ConnectOptions::default()).await
    }

    /// Connects (over TLS if `opts` says so) and says hello with the
    /// client token, if any.
    pub async fn connect_with(addr: &str, opts: &ConnectOptions) -> Result<Client, ClientError> {
        Self::connect_over::<crate::net::Tcp>(addr, opts).await
    }

    /// Like [`Client::connect_with`], over any transport (the simulation
    /// tests run the real client over simulated TCP).
    pub async fn connect_over<N: crate::net::Net>(
        addr: &str,
        opts: &ConnectOptions,
    ) -> Result<Client, ClientError> {
        let token = opts.token.as_deref();
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(ClientError::BadAddress {
                addr: addr.to_string(),
            });
        }
        let unreachable = |reason: String| ClientError::Unreachable {
            addr: addr.to_string(),
            reason,
        };
        let ours = crate::auth::nonce();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            cluster: None,
            role: Role::Client,
            nonce: opts.cluster_key.as_ref().map(|_| ours),
            token: token.map(str::to_string),
        };
        let (mut reader, mut writer, mut answer) = crate::net::dial::<N>(
            addr,
            opts.tls.as_ref(),
            hello,
            CLIENT_MAX_FRAME,
            CONNECT_TIMEOUT,
        )
        .await
        .map_err(|e| unreachable(e.to_string()))?;
        // Holding the cluster key, the client proves it (with the newest
        // key: a node holding two during a change accepts either).
        if let (Some(keys), Some(Ok(Frame::Challenge { nonce, .. }))) = (&opts.cluster_key, &answer)
        {
            let proof = keys.opener_proof(0, nonce, &ours, crate::auth::CLIENT_OPENER);
            futures_util::SinkExt::send(&mut writer, Frame::Proof { proof })
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            answer = tokio::time::timeout(CONNECT_TIMEOUT, reader.next())
                .await
                .map_err(|_| unreachable("no answer to the proof of the cluster key".into()))?;
        }
        let welcome = welcome_in(addr, answer)?;

        let pending: Pending = Arc::new(Mutex::new(Some(foldhash::HashMap::default())));
        let (tx, rx) = crate::net::Outbox::new(CLIENT_QUEUE);
        // Appends queued together go out as one frame, within what the
        // node's frame limit holds.
        let coalesce = crate::net::Coalesce::Appends {
            max_bytes: usize::try_from(welcome.max_message_bytes).unwrap_or(usize::MAX),
        };
        tokio::spawn(crate::net::write_frames(
            writer,
            rx,
            addr.to_string(),
            None,
            coalesce,
        ));
        let pending2 = pending.clone();
        let watching: Watching = Arc::default();
        let watching2 = watching.clone();
        tokio::spawn(read_answers(reader, pending2, watching2));
        let client = Client {
            addr: addr.to_string(),
            opts: opts.clone(),
            welcome,
            tx,
            pending,
            next_req: Arc::new(AtomicU64::new(1)),
            watching,
        };
        match opts.log.as_deref() {
            None | Some(crate::replication::catalog::DEFAULT_NAME) => {}
            Some(log) => client.use_log(log).await?,
        }
        Ok(client)
    }

    /// Makes `log` the log this connection's appends and lists are for
    /// (`NoSuchLog` if there is none of that name on the node).
    pub async fn use_log(&self, log: &str) -> Result<(), ClientError> {
        let log = log.to_string();
        match self.request(|req| Frame::UseLog { req, log }).await? {
            Frame::Appended { .. } => Ok(()),
            Frame::AppendFailed { error, .. } => Err(ClientError::Append(error)),
            other => Err(self.protocol(other)),
        }
    }

    /// Creates or deletes a log; answered, once a majority holds the
    /// change, with its position in the replicated log.
    pub async fn change_logs(&self, change: LogChangeRequest) -> Result<Seq, ClientError> {
        match self.request(|req| Frame::LogChange { req, change }).await? {
            Frame::Appended { seq, .. } => Ok(seq),
            Frame::AppendFailed { error, .. } => Err(ClientError::Append(error)),
            other => Err(self.protocol(other)),
        }
    }

    /// Every log the node knows, `default` first, with the first message
    /// it holds and the last visible one.
    pub async fn list_logs(&self) -> Result<Vec<LogStatus>, ClientError> {
        Ok(self
            .list_logs_in_detail()
            .await?
            .iter()
            .map(LogDetail::status)
            .collect())
    }

    /// Every log the node knows, `default` first, in detail: with its id,
    /// the bytes of its messages the node holds and its own retention. (A
    /// node answers `LogsDetailed` to a client of this version; one of an
    /// older release refuses this client's hello.)
    pub async fn list_logs_in_detail(&self) -> Result<Vec<LogDetail>, ClientError> {
        match self.request(|req| Frame::ListLogs { req }).await? {
            Frame::LogsDetailed { logs, .. } => Ok(logs),
            Frame::AppendFailed { error, .. } => Err(ClientError::Append(error)),
            other => Err(self.protocol(other)),
        }
    }

    /// Sets a consumer group's position in a log, or deletes a group;
    /// answered, once a majority holds the change, with its position in
    /// the replicated log.
    pub async fn change_groups(&self, change: GroupChangeRequest) -> Result<Seq, ClientError> {
        match self
            .request(|req| Frame::GroupChange { req, change })
            .await?
        {
            Frame::Appended { seq, .. } => Ok(seq),
            Frame::AppendFailed { error, .. } => Err(ClientError::Append(error)),
            other => Err(self.protocol(other)),
        }
    }

    /// The consumer groups' positions the node knows (of `group`, or of
    /// every group), by group then log, each with its log's last visible
    /// message number.
    pub async fn list_groups(&self, group: Option<&str>) -> Result<Vec<GroupStatus>, ClientError> {
        let group = group.map(str::to_string);
        match self.request(|req| Frame::ListGroups { req, group }).await? {
            Frame::GroupsListed { groups, .. } => Ok(groups),
            Frame::AppendFailed { error, .. } => Err(ClientError::Append(error)),
            other => Err(self.protocol(other)),
        }
    }

    /// What the node said when the connection opened.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The node's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// How this client connected.
    pub fn options(&self) -> &ConnectOptions {
        &self.opts
    }

    /// Whether the connection is gone: a request now fails at once, unsent.
    pub fn is_closed(&self) -> bool {
        self.pending.lock().expect("pending lock").is_none()
    }

    async fn request(&self, make: impl FnOnce(u64) -> Frame) -> Result<Frame, ClientError> {
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (otx, orx) = oneshot::channel();
        {
            let mut pending = self.pending.lock().expect("pending lock");
            match pending.as_mut() {
                Some(p) => {
                    p.insert(req, otx);
                }
                None => {
                    return Err(ClientError::Lost {
                        addr: self.addr.clone(),
                    })
                }
            }
        }
        // Requests go out in the order their futures are first polled (the
        // order `append -` relies on for its sequence numbers): outside
        // tokio's cooperative budget, the send completes on that first poll
        // whenever the queue has room, and waiters for room are served in
        // order.
        if !tokio::task::unconstrained(self.tx.send(make(req))).await {
            return Err(ClientError::Lost {
                addr: self.addr.clone(),
            });
        }
        match orx.await {
            Ok(Frame::Refused { reason }) => Err(ClientError::Rejected {
                addr: self.addr.clone(),
                reason,
            }),
            Ok(frame) => Ok(frame),
            Err(_) => Err(ClientError::Lost {
                addr: self.addr.clone(),
            }),
        }
    }

    /// Appends one message on this node. A secondary answers with
    /// `AppendError::NotMaster`; [`connect_master`] and `cli::append_one` follow it.
    pub async fn append(
        &self,
        message: impl AsRef<[u8]>,
        opts: &AppendOptions,
    ) -> Result<Seq, ClientError> {
        let message = bytes::Bytes::copy_from_slice(message.as_ref());
        let key = opts.key.clone().unwrap_or_else(new_key);
        let (w, timeout) = (opts.w, opts.timeout);
        self.send_append(message, Some(key), (w, timeout), opts.progress.as_ref())
            .await
    }

    /// Appends `message` as given, without copying it, with `key` or none
    /// (then there is nothing to deduplicate: a retry may append it twice,
    /// and the master does the least work). For load generators (`replog
    /// bench`); `append`, which always sends a key, is what applications
    /// want.
    pub async fn append_bytes(
        &self,
        message: bytes::Bytes,
        key: Option<String>,
        w: WriteConcern,
        timeout: Option<Duration>,
    ) -> Result<Seq, ClientError> {
        self.send_append(message, key, (w, timeout), None).await
    }

    /// Sends one `Append` and waits for its answer, publishing the master's
    /// progress reports to `progress` meanwhile.
    async fn send_append(
        &self,
        message: bytes::Bytes,
        key: Option<String>,
        (w, timeout): (WriteConcern, Option<Duration>),
        progress: Option<&watch::Sender<Option<Progress>>>,
    ) -> Result<Seq, ClientError> {
        // Refused here, as the node would: sent, it would not fit a frame
        // and the node would have to close the connection.
        let max = self.welcome.max_message_bytes;
        if message.len() as u64 > max {
            return Err(ClientError::Append(AppendError::BadRequest(format!(
                "the message is {} bytes, over the {max} byte limit of {} (--max-message-bytes)",
                message.len(),
                self.addr
            ))));
        }
        // Forgotten however this ends, a dropped (timed out) future too.
        let mut unwatch = Unwatch {
            watching: &self.watching,
            req: None,
        };
        let answer = self
            .request(|req| {
                if let Some(tx) = progress {
                    unwatch.req = Some(req);
                    let mut watching = self.watching.lock().expect("watching lock");
                    watching.insert(req, tx.clone());
                }
                Frame::Append {
                    req,
                    key,
                    w,
                    timeout_ms: timeout.map(|t| t.as_millis() as u64),
                    message,
                    progress: progress.is_some(),
                }
            })
            .await;
        drop(unwatch);
        match answer? {
            Frame::Appended { seq, .. } => Ok(seq),
            Frame::AppendFailed { error, .. } => Err(ClientError::Append(error)),
            other => Err(self.protocol(other)),
        }
    }

    /// Asks for a membership change; answered with the configuration
    /// entry's sequence number once it is on a majority of the new voters.
    /// Only the master makes one (`AppendError::NotMaster` elsewhere).
    pub async fn change_members(&self, change: MemberChangeRequest) -> Result<Seq, ClientError> {
        let answer = self
            .request(|req| Frame::MemberChange { req, change })
            .await;
        match answer? {
            Frame::Appended { seq, .. } => Ok(seq),
            Frame::AppendFailed { error, .. } => Err(ClientError::Append(error)),
            other => Err(self.protocol(other)),
        }
    }

    /// Up to `max` visible entries from `from`, and the node's last visible
    /// sequence number. With `wait`, the answer comes once there is at least
    /// one entry at `from`.
    pub async fn list(
        &self,
        from: Seq,
        max: u32,
        wait: bool,
    ) -> Result<(Vec<(Seq, Bytes)>, Seq), ClientError> {
        self.list_entries(from, max, wait, false).await
    }

    /// Like [`Client::list`]; with `committed`, only entries known to be on
    /// a majority (which no failover removes), and the last of those.
    pub async fn list_entries(
        &self,
        from: Seq,
        max: u32,
        wait: bool,
        committed: bool,
    ) -> Result<(Vec<(Seq, Bytes)>, Seq), ClientError> {
        let answer = self
            .request(|req| Frame::List {
                req,
                from,
                max,
                wait,
                committed,
            })
            .await?;
        match answer {
            Frame::Listed {
                entries, visible, ..
            } => Ok((entries, visible)),
            // The connection's log was deleted.
            Frame::AppendFailed { error, .. } => Err(ClientError::Append(error)),
            other => Err(self.protocol(other)),
        }
    }

    /// Every visible entry from `from` on.
    pub async fn list_all(&self, from: Seq) -> Result<Vec<(Seq, Bytes)>, ClientError> {
        self.list_upto_mark(from, false).await
    }

    /// Every visible (or, with `committed`, committed) entry from `from` on.
    pub async fn list_upto_mark(
        &self,
        from: Seq,
        committed: bool,
    ) -> Result<Vec<(Seq, Bytes)>, ClientError> {
        let mut out = Vec::new();
        let mut next = from.max(1);
        loop {
            let (entries, visible) = self.list_entries(next, 1000, false, committed).await?;
            let Some(last) = entries.last() else {
                return Ok(out);
            };
            next = last.0 + 1;
            out.extend(entries);
            if next > visible {
                return Ok(out);
            }
        }
    }

    /// The node's health report.
    pub async fn health(&self) -> Result<HealthReport, ClientError> {
        match self.request(|req| Frame::Health { req }).await? {
            Frame::HealthReport { report, .. } => Ok(report),
            other => Err(self.protocol(other)),
        }
    }

    /// Digests of the node's visible entries from `from` to `to`, one per
    /// `step` entries, and the last sequence number they cover (the node
    /// stops at its log's end and at its per-request limits).
    pub async fn digests(
        &self,
        from: Seq,
        to: Seq,
        step: u64,
    ) -> Result<(Seq, Vec<[u8; 16]>), ClientError> {
        let answer = self
            .request(|req| Frame::Digest {
                req,
                from,
                to,
                step,
            })
            .await?;
        match answer {
            Frame::Digests { upto, digests, .. } => Ok((upto, digests)),
            other => Err(self.protocol(other)),
        }
    }

    fn protocol(&self, frame: Frame) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            what: format!("unexpected answer {frame:?}"),
        }
    }
}

/// Connects to `addr` and, if it is a secondary, to the master it names
/// (once). Returns a client connected to the master, or to the secondary if
/// it knows of no master.
pub async fn connect_master(addr: &str, opts: &ConnectOptions) -> Result<Client, ClientError> {
    // The log is chosen on the master: a secondary still catching up may
    // not know yet of a log just created.
    let first = ConnectOptions {
        log: None,
        ..opts.clone()
    };
    let client = Client::connect_with(addr, &first).await?;
    let master = client.welcome().master_addr.clone();
    if client.welcome().role == crate::wire::NodeRole::Master || master.is_empty() {
        // The master; or no master known yet (an election): the secondary
        // it is.
        if let Some(log) = opts.log.as_deref() {
            if log != crate::replication::catalog::DEFAULT_NAME {
                client.use_log(log).await?;
            }
        }
        return Ok(client);
    }
    Client::connect_with(&master, opts).await
}

/// How long one node of a `--node` list is given to answer before the next
/// is tried: a paused node must not hold up the search for the master.
const PER_NODE: Duration = Duration::from_secs(2);

/// Between two rounds of asking for the master while none is known (an
/// election under way).
const ELECTION_POLL: Duration = Duration::from_millis(100);

/// How long, without `--timeout`, the master the nodes name may stay
/// unreachable from this client before it gives up: far longer than an
/// election, so that only a master this client can never reach ends it.
const NAMED_MASTER_PATIENCE: Duration = Duration::from_secs(30);

/// Finds the master among `nodes` (tried from `hint`, then in turn),
/// following what each says the master is and waiting while none is known
/// (an election), until `deadline` if given. Fails at once on a refusal,
/// and with the last error once a whole round of nodes was unreachable.
pub async fn find_master(
    nodes: &[String],
    opts: &ConnectOptions,
    hint: &mut Option<String>,
    deadline: Option<tokio::time::Instant>,
) -> Result<Client, ClientError> {
    let mut next = 0;
    let mut unreachable = 0;
    // Since when the master the nodes name cannot be reached from here.
    let mut named_but_unreachable: Option<tokio::time::Instant> = None;
    loop {
        let hinted = hint.is_some();
        let addr = hint.take().unwrap_or_else(|| {
            next += 1;
            nodes[(next - 1) % nodes.len()].clone()
        });
        let now = tokio::time::Instant::now();
        let limit = deadline.map_or(PER_NODE, |d| d.saturating_duration_since(now).min(PER_NODE));
        let connected = tokio::time::timeout(limit, Client::connect_with(&addr, opts))
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Unreachable {
                    addr: addr.clone(),
                    reason: format!("no answer within {}", humantime::format_duration(limit)),
                })
            });
        let failed = match connected {
            Ok(client) if client.welcome().role == crate::wire::NodeRole::Master => {
                return Ok(client)
            }
            Ok(client) => {
                unreachable = 0;
                let master = &client.welcome().master_addr;
                if !master.is_empty() && *master != addr {
                    *hint = Some(master.clone());
                    continue;
                }
                None
            }
            Err(e @ ClientError::Unreachable { .. }) if hinted => {
                // Nodes answer and name a master this client cannot reach:
                // in a failover, for a moment; for good if their addresses
                // are not reachable from here. Without --timeout, give up
                // after a while, saying which.
                let since = *named_but_unreachable.get_or_insert_with(tokio::time::Instant::now);
                if deadline.is_none() && since.elapsed() >= NAMED_MASTER_PATIENCE {
                    return Err(ClientError::Unreachable {
                        addr: addr.clone(),
                        reason: format!(
                            "the nodes name it as the master, but it has not been reachable from here for {}: {e}",
                            humantime::format_duration(NAMED_MASTER_PATIENCE)
                        ),
                    });
                }
                Some(e)
            }
            Err(e @ ClientError::Unreachable { .. }) => {
                unreachable += 1;
                Some(e)
            }
            // A node that refuses this client (another protocol version in
            // a rolling upgrade, say) may not be the only one.
            Err(e @ ClientError::Refused { .. }) if nodes.len() > 1 => {
                unreachable += 1;
                Some(e)
            }
            Err(e) => return Err(e),
        };
        let out_of_time =
            deadline.is_some_and(|d| tokio::time::Instant::now() + ELECTION_POLL >= d);
        match failed {
            Some(e) if unreachable >= nodes.len() || out_of_time => return Err(e),
            None if out_of_time => {
                return Err(ClientError::Unreachable {
                    addr: nodes.join(","),
                    reason: "no master was known to any node within --timeout (an election under way, or no majority up)".into(),
                })
            }
            _ => {}
        }
        if next % nodes.len() == 0 {
            tokio::time::sleep(ELECTION_POLL).await;
        }
    }
}

/// A random request key: 128 bits, hex.
pub fn new_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}
