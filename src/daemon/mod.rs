//! The `replogd` command line: its clap definition (also used for the man
//! page), logging, signals, and `--dev`; systemd notification in
//! [`systemd`].

pub mod systemd;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::auth::ClusterKeys;
use crate::net::Tcp;
use crate::node::config::{
    Cluster, Failover, FsyncPolicy, Limits, NodeConfig, OnDamage, DEFAULT_MAX_MESSAGE_BYTES,
};
use crate::replication::Timing;

/// The replog daemon: one node of a replicated log cluster.
#[derive(Debug, Parser)]
#[command(
    name = "replogd",
    version,
    after_help = "Every flag can also be set through the environment variable shown with it.\nExample: replogd --id 1 --cluster 1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001 --cluster-key-file /etc/replog/cluster.key --data-dir /var/lib/replog"
)]
pub struct DaemonArgs {
    /// Run a whole local cluster in this process, for trying replog out.
    #[arg(long, env = "REPLOG_DEV")]
    pub dev: bool,
    /// With --dev: how many nodes.
    #[arg(long, env = "REPLOG_DEV_NODES", default_value_t = 3, requires = "dev")]
    pub nodes: usize,
    /// With --dev: port of the first node; the others follow.
    #[arg(
        long,
        env = "REPLOG_BASE_PORT",
        default_value_t = 7001,
        requires = "dev"
    )]
    pub base_port: u16,
    /// This node's id, as it appears in --cluster.
    #[arg(long, env = "REPLOG_ID", required_unless_present = "dev")]
    pub id: Option<String>,
    /// Every node of the cluster: ID=HOST:PORT[,ID=HOST:PORT...], the same on every node.
    #[arg(long, env = "REPLOG_CLUSTER", required_unless_present_any = ["dev", "join"], conflicts_with = "join")]
    pub cluster: Option<String>,
    /// Join a running cluster instead of starting one: NODE[,NODE...] are nodes of it (for the log line that says whom to ask). The node knows no member until the cluster's master, once asked to (replog member add ID=ADDR, with this node's --listen address), sends it the log; it then is a learner until it holds everything committed. Needs --listen; the cluster's key, if it has one.
    #[arg(
        long,
        env = "REPLOG_JOIN",
        value_name = "NODE[,NODE...]",
        requires = "listen"
    )]
    pub join: Option<String>,
    /// Directory of the log (with --dev: one subdirectory per node). Without it the log is kept in memory only.
    #[arg(long, env = "REPLOG_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Id of the master; defaults to the first node of --cluster.
    #[arg(long, env = "REPLOG_MASTER")]
    pub master: Option<String>,
    /// Address to listen on; defaults to this node's address in --cluster.
    #[arg(long, env = "REPLOG_LISTEN")]
    pub listen: Option<String>,
    /// When the log is synced to disk before an entry counts as stored.
    #[arg(long, env = "REPLOG_FSYNC", value_enum, default_value_t = FsyncPolicy::Always)]
    pub fsync: FsyncPolicy,
    /// How often the master sends a heartbeat to each secondary.
    #[arg(long, env = "REPLOG_HEARTBEAT_INTERVAL", value_parser = humantime::parse_duration, default_value = "200ms")]
    pub heartbeat_interval: Duration,
    /// A secondary silent this long is Suspected.
    #[arg(long, env = "REPLOG_SUSPECT_AFTER", value_parser = humantime::parse_duration, default_value = "1s")]
    pub suspect_after: Duration,
    /// A secondary silent this long is Unhealthy (and its connection is redialled).
    #[arg(long, env = "REPLOG_UNHEALTHY_AFTER", value_parser = humantime::parse_duration, default_value = "3s")]
    pub unhealthy_after: Duration,
    /// Whether a new master is elected when the master is lost: 'on' (a majority of voters elects one within seconds; a node back with an empty disk votes only once it holds everything committed) or 'off' (--master stays master; appends wait for it to come back).
    #[arg(long, env = "REPLOG_FAILOVER", value_enum, default_value_t = Failover::On)]
    pub failover: Failover,
    /// What to do with a log found damaged at start (a checksum that does not match, a record out of place, a missing segment): 'heal' keeps every record before the damage, moves the rest to DATA_DIR/damaged/ and comes back as a learner that votes once it holds everything committed (refused as with 'refuse' on a node whose --cluster lists only itself and that did not --join, and on the master under --failover off); 'refuse' stops, naming the file and the byte offset.
    #[arg(long, env = "REPLOG_ON_DAMAGE", value_enum, default_value_t = OnDamage::Heal)]
    pub on_damage: OnDamage,
    /// With failover: a secondary that hears nothing from the master for between this and twice this asks for votes; a master that hears from no majority for this long steps down.
    #[arg(long, env = "REPLOG_ELECTION_TIMEOUT", value_parser = humantime::parse_duration, default_value = "1s")]
    pub election_timeout: Duration,
    /// First delay before retrying a failed delivery.
    #[arg(long, env = "REPLOG_RETRY_BASE", value_parser = humantime::parse_duration, default_value = "50ms")]
    pub retry_base: Duration,
    /// Largest delay between retries.
    #[arg(long, env = "REPLOG_RETRY_MAX", value_parser = humantime::parse_duration, default_value = "5s")]
    pub retry_max: Duration,
    /// Largest message accepted, in bytes.
    #[arg(long, env = "REPLOG_MAX_MESSAGE_BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Most open connections (clients, and connections before their hello); more are refused with a reason.
    #[arg(long, env = "REPLOG_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Most named logs besides default (replog log create); more are refused with the reason. Give every node the same.
    #[arg(long, env = "REPLOG_MAX_LOGS", default_value_t = Limits::default().max_logs)]
    pub max_logs: usize,
    /// Most consumer group positions, a group counting once per log it reads (replog group); a commit past it is refused with the reason. Give every node the same.
    #[arg(long, env = "REPLOG_MAX_GROUPS", default_value_t = Limits::default().max_groups)]
    pub max_groups: usize,
    /// Most unanswered requests per client connection; past it the connection is not read until answers go out.
    #[arg(long, env = "REPLOG_MAX_INFLIGHT", default_value_t = Limits::default().max_inflight)]
    pub max_inflight: usize,
    /// A connection that has not said hello within this long is closed.
    #[arg(long, env = "REPLOG_HELLO_TIMEOUT", value_parser = humantime::parse_duration, default_value = "5s")]
    pub hello_timeout: Duration,
    /// A client connection idle this long (nothing sent, nothing in flight) is closed.
    #[arg(long, env = "REPLOG_IDLE_TIMEOUT", value_parser = humantime::parse_duration, default_value = "5m")]
    pub idle_timeout: Duration,
    /// File holding the cluster key (one line; during a key change two: the new one, then the previous one). Every node-to-node connection proves it by challenge and response; without it the cluster is unauthenticated.
    #[arg(long, env = "REPLOG_CLUSTER_KEY_FILE", value_name = "PATH")]
    pub cluster_key_file: Option<PathBuf>,
    /// Listen beyond loopback without --cluster-key-file (or TLS). Refused otherwise: without a key, anyone who reaches the node and names a member can act as its master (cut or rewrite its log) or win its vote.
    #[arg(long, env = "REPLOG_INSECURE")]
    pub insecure: bool,
    /// File whose first line is the token clients need to append (they may read with it too).
    #[arg(long, env = "REPLOG_CLIENT_TOKEN_FILE", value_name = "PATH")]
    pub client_token_file: Option<PathBuf>,
    /// File whose first line is a token that lets clients list and ask for health; with it set, reads need this token or the client token.
    #[arg(long, env = "REPLOG_READ_TOKEN_FILE", value_name = "PATH")]
    pub read_token_file: Option<PathBuf>,
    /// TLS: this node's certificate chain (PEM). With --tls-key and --tls-ca, every connection (clients and replication) is TLS.
    #[arg(long, env = "REPLOG_TLS_CERT", value_name = "PATH", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// TLS: this node's private key (PEM).
    #[arg(long, env = "REPLOG_TLS_KEY", value_name = "PATH", requires_all = ["tls_cert", "tls_ca"])]
    pub tls_key: Option<PathBuf>,
    /// TLS: the CA (PEM) every node's certificate chains to; a client certificate, when offered, must chain to it too.
    #[arg(long, env = "REPLOG_TLS_CA", value_name = "PATH", requires_all = ["tls_cert", "tls_key"])]
    pub tls_ca: Option<PathBuf>,
    /// Entries whose request keys are remembered: a retry with the same key after this many newer entries may append a second copy (each remembered entry costs about 32 bytes).
    #[arg(long, env = "REPLOG_DEDUP_WINDOW", default_value_t = crate::replication::keys::DEFAULT_DEDUP_WINDOW)]
    pub dedup_window: u64,
    /// Retention: delete the oldest whole log segments while the log would still hold at least this much without them (e.g. 10GiB). A secondary missing what was deleted starts again from the first entry kept, with a warning. Needs --data-dir.
    #[arg(long, env = "REPLOG_RETENTION_BYTES", value_name = "SIZE", value_parser = crate::node::config::parse_bytes)]
    pub retention_bytes: Option<u64>,
    /// Retention: delete log segments last written longer ago than this (e.g. 7d), unless a secondary the master hears from still needs them. Only entries known to be on a majority are ever deleted. Needs --data-dir.
    #[arg(long, env = "REPLOG_RETENTION_AGE", value_name = "DUR", value_parser = humantime::parse_duration)]
    pub retention_age: Option<Duration>,
    /// Roll to a new log segment past this size; retention deletes whole segments.
    #[arg(long, env = "REPLOG_SEGMENT_BYTES", value_name = "SIZE", value_parser = crate::node::config::parse_bytes, default_value = "64MiB")]
    pub segment_bytes: u64,
    /// Threads that run connections. With 1, the default, the node loop and every connection share one thread, which is the fastest here: no append crosses threads except to the syncer. More lets TLS encryption and frame decoding of many clients use more cores (handshakes always run on a thread of their own); the node loop then runs on a thread of its own.
    #[arg(long, env = "REPLOG_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,
    /// Serve Prometheus metrics (OpenMetrics text) at http://ADDR/metrics; off unless given. Under --dev, node i serves on ADDR's port + i - 1.
    #[arg(long, env = "REPLOG_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Serve the HTTP API (POST/GET /messages, GET /health, /v1/...; docs/http.md) at ADDR, over TLS when --tls-cert is given; off unless given. Under --dev it is on: node i serves on ADDR's port + i - 1, by default --base-port + 1000 + i - 1 (8001, 8002, ...).
    #[arg(long, env = "REPLOG_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<std::net::SocketAddr>,
    /// Testing aid: while this file exists, writes and syncs of the log fail as if the disk were full (only syncs if it holds the word "sync").
    #[arg(long, env = "REPLOG_FAIL_STORAGE_WHILE", value_name = "PATH")]
    pub fail_storage_while: Option<PathBuf>,
    /// Testing aid (secondaries): delay every apply by this long.
    #[arg(long, env = "REPLOG_REPLICATE_DELAY", value_parser = humantime::parse_duration, default_value = "0s")]
    pub replicate_delay: Duration,
    /// Testing aid (secondaries): after storing, answer the master with an error with this probability.
    #[arg(long, env = "REPLOG_FAIL_RATE", default_value_t = 0.0)]
    pub fail_rate: f64,
}

impl DaemonArgs {
    /// The TLS configuration, if the three TLS flags are given.
    fn tls(&self) -> anyhow::Result<Option<crate::tls::NodeTls>> {
        match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (Some(cert), Some(key), Some(ca)) => {
                Ok(Some(crate::tls::NodeTls::load(cert, key, ca)?))
            }
            _ => Ok(None),
        }
    }

    fn timing(&self) -> Timing {
        Timing {
            heartbeat_interval: self.heartbeat_interval,
            suspect_after: self.suspect_after,
            unhealthy_after: self.unhealthy_after,
            retry_base: self.retry_base,
            retry_max: self.retry_max,
            election_timeout: self.election_timeout,
        }
    }

    fn node_config(&self, id: &str, cluster: Cluster, data_dir: Option<PathBuf>) -> NodeConfig {
        let mut cfg = NodeConfig::new(id, cluster);
        cfg.data_dir = data_dir;
        cfg.fsync = self.fsync;
        cfg.timing = self.timing();
        cfg.failover = self.failover == Failover::On;
        cfg.on_damage = self.on_damage;
        cfg.max_message_bytes = self.max_message_bytes;
        cfg.replicate_delay = self.replicate_delay;
        cfg.fail_rate = self.fail_rate;
        cfg.dedup_window = self.dedup_window;
        cfg.metrics_listen = self.metrics_listen;
        cfg.http_listen = self.http_listen;
        cfg.segment_bytes = self.segment_bytes;
        cfg.retention = crate::storage::retention::Retention {
            bytes: self.retention_bytes,
            age: self.retention_age,
        };
        cfg.fail_storage_while = self.fail_storage_while.clone();
        cfg.limits = Limits {
            max_connections: self.max_connections,
            max_inflight: self.max_inflight,
            hello_timeout: self.hello_timeout,
            idle_timeout: self.idle_timeout,
            max_logs: self.max_logs,
            max_groups: self.max_groups,
        };
        cfg
    }
}

/// Sets up logging: journald when started by systemd, stderr otherwise;
/// `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let under_systemd =
        std::env::var_os("JOURNAL_STREAM").is_some() || std::env::var_os("INVOCATION_ID").is_some();
    if under_systemd {
        if let Ok(journald) = tracing_journald::layer() {
            tracing_subscriber::registry()
                .with(filter)
                .with(journald)
                .init();
            return;
        }
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr),
        )
        .init();
}

/// Cancels `token` on SIGINT or SIGTERM.
fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => info!("SIGINT received, stopping"),
                _ = term.recv() => info!("SIGTERM received, stopping"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        token.cancel();
    });
}

/// Whether `addr` (`HOST:PORT`) can only be reached from this machine:
/// every address it names is a loopback one (a name is looked up).
async fn is_loopback(addr: &str) -> bool {
    let host = crate::addr::host_of(addr);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    match tokio::net::lookup_host(addr).await {
        Ok(addrs) => only_loopback(addrs),
        // Binding will say why the name does not work.
        Err(_) => host == "localhost",
    }
}

/// Whether there are addresses and all of them are loopback ones.
fn only_loopback(addrs: impl IntoIterator<Item = std::net::SocketAddr>) -> bool {
    let mut any = false;
    for a in addrs {
        if !a.ip().is_loopback() {
            return false;
        }
        any = true;
    }
    any
}

/// Why a node without a cluster key or TLS may not listen on `listen`, if
/// it may not: secure by default, as Redis's protected mode. Beyond
/// loopback it needs a key, or `--insecure` to run without one on purpose.
fn unauthenticated_refusal(listen: &str, loopback: bool, insecure: bool) -> Option<String> {
    (!loopback && !insecure).then(|| {
        format!(
            "refusing to listen on {listen} without a cluster key: anyone who can reach it and names a member could act as this node's master (and cut or rewrite its log) or win its vote. Give every node the same --cluster-key-file (see the README, \"Securing a cluster\"), listen on a loopback address, or pass --insecure to run unauthenticated on purpose"
        )
    })
}

/// Buffers of 1 MiB or more (pages of the log encoded as JSON, which a
/// message of NUL bytes makes six times its size) are mapped on their own
/// and given back to the system when freed; smaller ones, the hot path's
/// batches and frames, stay in the heaps. glibc's default raises that threshold to the size of
/// the last such buffer freed, after which the heaps of the threads that
/// encode pages keep megabytes each that a burst of readers once needed
/// (measured in tests/http.rs: 260-310 MB held after bursts of readers of
/// escaped pages, against a budget of 64 MiB).
fn return_large_buffers() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any thread of ours is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// Builds the runtime `--threads` asks for and runs the daemon on it;
/// returns the process exit code.
pub fn main(args: DaemonArgs) -> i32 {
    return_large_buffers();
    // One thread: a current-thread runtime, on which the node loop runs in
    // place beside the connections (see `node::run`). A w=3 append then
    // crosses threads only to reach each node's syncer, where a runtime
    // with workers and a loop thread of its own adds a wake-up on each
    // side of every node's loop (docs/benchmarks.md, "One thread").
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.into())
            .enable_all()
            .build(),
    };
    match runtime {
        Ok(runtime) => {
            let code = runtime.block_on(run(args));
            // The node has stopped in order (its log synced, connections
            // closed or given their time). Dropping the runtime would wait
            // without limit for what is left on blocking threads: a syncer
            // given up on at its timeout, a name lookup, a read stuck on
            // the disk. None of it may keep the process from exiting.
            runtime.shutdown_background();
            code
        }
        Err(e) => {
            eprintln!("replogd: cannot start the runtime: {e}");
            1
        }
    }
}

/// Runs the daemon on the current runtime; returns the process exit code.
pub async fn run(args: DaemonArgs) -> i32 {
    let shutdown = CancellationToken::new();
    cancel_on_signals(shutdown.clone());
    let result = if args.dev {
        run_dev(&args, shutdown).await
    } else {
        run_node(&args, shutdown).await
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            // Once, on stderr (the journal under systemd): this is for the
            // person starting the daemon, not a log line.
            eprintln!("replogd: {e:#}");
            1
        }
    }
}

async fn run_node(args: &DaemonArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let id = args.id.clone().expect("clap requires --id");
    let cluster = match (&args.join, &args.listen) {
        // Joining, the node lists only itself: the log will say the rest.
        (Some(_), Some(listen)) => Cluster::parse(&format!("{id}={listen}"), None),
        _ => Cluster::parse(
            args.cluster
                .as_deref()
                .expect("clap requires --cluster or --join"),
            args.master.as_deref(),
        ),
    }?;
    let mut cfg = args.node_config(&id, cluster, args.data_dir.clone());
    cfg.join = args.join.as_ref().map(|nodes| {
        let nodes: Vec<String> = nodes.split(',').map(|n| n.trim().to_string()).collect();
        tracing::info!(node = %id, join = ?nodes, "joining a running cluster: this node takes part once its master adds it (replog member add {id}=<this node's --listen address>, on any node of it)");
        nodes
    });
    cfg.validate()?;
    if let Some(path) = &args.cluster_key_file {
        cfg.cluster_keys = Some(ClusterKeys::load(path)?);
    }
    cfg.tls = args.tls()?;
    if let Some(path) = &args.client_token_file {
        cfg.client_token = Some(crate::auth::load_token(path, "--client-token-file")?);
    }
    if let Some(path) = &args.read_token_file {
        cfg.read_token = Some(crate::auth::load_token(path, "--read-token-file")?);
    }
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| cfg.cluster.addr(&id).expect("validated").to_string());
    if cfg.cluster_keys.is_none() {
        let loopback = is_loopback(&listen).await;
        // Mutual TLS proves nodes by the CA's certificates: not a stranger's.
        if cfg.tls.is_none() {
            if let Some(refusal) = unauthenticated_refusal(&listen, loopback, args.insecure) {
                anyhow::bail!(refusal);
            }
        }
        if cfg.client_token.is_some() || cfg.read_token.is_some() {
            warn!(node = %id, "client tokens are set but there is no --cluster-key-file: tokens guard clients only, and without a cluster key anyone who reaches this node can act as its master (see the README, \"Securing a cluster\")");
        } else if !loopback {
            warn!(node = %id, %listen, "THIS CLUSTER IS UNAUTHENTICATED: anyone who can reach {listen} can impersonate its master or secondaries; give every node the same --cluster-key-file (see the README, \"Securing a cluster\")");
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("cannot listen on {listen}: {e} (is another replogd running there?)")
        } else {
            anyhow::anyhow!("cannot listen on {listen}: {e}")
        }
    })?;
    info!(node = %id, %listen, "listening");
    let watchdog = systemd::Watchdog::from_env();
    let result = crate::node::run::<Tcp>(cfg, listener, shutdown.clone(), move |probe| {
        systemd::ready();
        if let Some(w) = watchdog {
            w.spawn(probe, shutdown);
        }
    })
    .await;
    systemd::stopping();
    result
}

/// Node `i`'s address (from 0) under `--dev`: `addr` with its port + i.
fn nth_port(
    addr: Option<std::net::SocketAddr>,
    i: usize,
    flag: &str,
) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let Some(mut addr) = addr else {
        return Ok(None);
    };
    let port = addr.port() as usize + i;
    let port =
        u16::try_from(port).map_err(|_| anyhow::anyhow!("{flag}: port {port} is out of range"))?;
    addr.set_port(port);
    Ok(Some(addr))
}

/// The first dev node's HTTP address: `--http-listen`, or 127.0.0.1 on
/// `--base-port` + 1000.
fn dev_http(args: &DaemonArgs) -> anyhow::Result<std::net::SocketAddr> {
    if let Some(addr) = args.http_listen {
        return Ok(addr);
    }
    let port = u16::try_from(args.base_port as usize + 1000).map_err(|_| {
        anyhow::anyhow!(
            "--base-port: {} leaves no room for the HTTP ports 1000 above it; give --http-listen",
            args.base_port
        )
    })?;
    Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `replogd --dev`: a whole cluster of `--nodes` nodes in this process, on
/// ports from `--base-port`, with their logs under `--data-dir` if given
/// (in memory otherwise).
// Its set-up in the order it happens (checks, addresses, configurations,
// the nodes started, the summary printed): read top to bottom.
async fn run_dev(args: &DaemonArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    if args.nodes == 0 || args.nodes > 64 {
        anyhow::bail!("--nodes: {} is out of range; use 1 to 64", args.nodes);
    }
    let list: Vec<String> = (0..args.nodes)
        .map(|i| format!("{}=127.0.0.1:{}", i + 1, args.base_port as usize + i))
        .collect();
    let cluster = Cluster::parse(&list.join(","), None)?;
    // The dev nodes authenticate each other with a key made up for this run.
    let keys = match &args.cluster_key_file {
        Some(path) => ClusterKeys::load(path)?,
        None => ClusterKeys::new(
            vec![ClusterKeys::generate().into_bytes()],
            "a key generated by --dev".into(),
        )?,
    };
    let tls = args.tls()?;
    let mut listeners = Vec::new();
    for (id, addr) in &cluster.nodes {
        let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {addr} for node {id}: {e}; pick free ports with --base-port"
            )
        })?;
        listeners.push(l);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, ((id, _), listener)) in cluster.nodes.iter().zip(listeners).enumerate() {
        let dir = args.data_dir.as_ref().map(|d| d.join(format!("node-{id}")));
        let mut cfg = args.node_config(id, cluster.clone(), dir);
        // One address per node: node i on the given port + i - 1.
        cfg.metrics_listen = nth_port(cfg.metrics_listen, i, "--metrics-listen")?;
        cfg.http_listen = nth_port(Some(dev_http(args)?), i, "--http-listen")?;
        cfg.cluster_keys = Some(keys.clone());
        cfg.tls = tls.clone();
        tasks.spawn(crate::node::run::<Tcp>(
            cfg,
            listener,
            shutdown.clone(),
            |_| {},
        ));
    }
    let first = &cluster.nodes[0].1;
    let storage = match &args.data_dir {
        Some(d) => format!("logs under {}", d.display()),
        None => "logs in memory (add --data-dir DIR to keep them)".into(),
    };
    println!(
        "replog dev cluster: {} nodes on 127.0.0.1:{}..{}, node 1 is the master, {storage}.",
        args.nodes,
        args.base_port,
        args.base_port as usize + args.nodes - 1
    );
    // `replog` talks to 127.0.0.1:7001 unless told otherwise.
    let node = if args.base_port == 7001 {
        String::new()
    } else {
        format!(" --node {first}")
    };
    println!("Try, in another terminal:");
    println!(
        "  replog append{node} -w {} \"hello\"          # stored on every node",
        args.nodes
    );
    println!(
        "  replog list --node 127.0.0.1:{}",
        args.base_port as usize + args.nodes - 1
    );
    println!("  replog health{node}");
    let http = dev_http(args)?;
    println!(
        "  curl -d '{{\"message\": \"hi\", \"w\": {}}}' http://{http}/messages   # the HTTP API on ports {}..{}",
        args.nodes,
        http.port(),
        http.port() as usize + args.nodes - 1
    );
    println!("Ctrl-C stops the cluster.");
    systemd::ready();
    // In the order they finish: a node that fails stops the others at
    // once, whichever it is, and its reason is the one given.
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        let failed = match done {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => anyhow::anyhow!("a node panicked: {e}"),
        };
        shutdown.cancel();
        if result.is_ok() {
            result = Err(failed);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_key_only_loopback_is_listened_on_unless_insecure() {
        assert_eq!(unauthenticated_refusal("127.0.0.1:7001", true, false), None);
        assert_eq!(unauthenticated_refusal("0.0.0.0:7001", false, true), None);
        let refusal = unauthenticated_refusal("0.0.0.0:7001", false, false).unwrap();
        assert!(refusal.starts_with("refusing to listen on 0.0.0.0:7001 without a cluster key"));
        assert!(refusal.contains("--cluster-key-file") && refusal.contains("--insecure"));
    }

    #[tokio::test]
    async fn loopback_means_every_address_a_name_or_literal_gives() {
        assert!(is_loopback("127.0.0.1:7001").await);
        assert!(is_loopback("127.3.2.1:7001").await);
        assert!(is_loopback("[::1]:7001").await);
        assert!(is_loopback("localhost:7001").await);
        assert!(!is_loopback("0.0.0.0:7001").await);
        assert!(!is_loopback("[::]:7001").await);
        assert!(!is_loopback("192.0.2.1:7001").await);
        let v4: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let other: std::net::SocketAddr = "192.0.2.1:1".parse().unwrap();
        assert!(only_loopback([v4]));
        assert!(!only_loopback([v4, other]));
        assert!(!only_loopback([]));
    }
}
