//! The `replog` command line: its clap definition (also used for the man
//! page and completions) and what each subcommand does.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures_util::stream::{FuturesOrdered, StreamExt};

use crate::client::{
    connect_master, find_master, AppendOptions, Client, ClientError, ConnectOptions,
};
use crate::wire::{AppendError, HealthReport, WriteConcern};

/// Most appends in flight at once for `append -`.
const PIPELINE: usize = 256;

/// The replog client: append to, read from and check a replog cluster.
#[derive(Debug, Parser)]
#[command(
    name = "replog",
    version,
    after_help = "Exit codes: 0 ok, 1 other error, 2 bad request (not appended), 3 timed out (where no failover can cut it: still replicating), 4 refused: no quorum (not appended), 5 unknown outcome (may or may not be appended or kept: retry with the key printed), 6 unauthorized: a token is missing or wrong (not appended), 7 degraded (health), 8 diverged (verify), 130 interrupted (Ctrl-C while an append waited)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Append a message (or, with "-", one message per line of standard input).
    Append {
        /// Node(s) to send to, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE). A secondary redirects to the master; with several nodes the master is found, followed through failovers, and an append whose outcome is unknown is retried with the same key.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Write concern: voting nodes (master included) that must store the message: a number, "majority" or "all". Only an append acknowledged with a majority (or more) is never lost when a new master is elected; one acknowledged by fewer nodes may be.
        #[arg(short = 'w', long = "write-concern", default_value = "1")]
        w: WriteConcern,
        /// Stop waiting after this long (e.g. 500ms, 5s), counted from the start (connecting included). A message the master took stays in its log: exit 3 if no failover can cut it (it is on a majority, or --failover off and the master stored it), 5 if not yet (a failover may still cut it: retry with the key printed).
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        /// Request key: an append retried with the same key (and message) returns the original sequence number while its entry is in the log (within --dedup-window); one a failover cut is appended again.
        #[arg(long)]
        key: Option<String>,
        /// With "-": messages are separated by NUL bytes instead of newlines, so a message may contain newlines.
        #[arg(short = '0', long = "null-data")]
        null_data: bool,
        /// Print one JSON object per message instead of sequence numbers: {"key": K, "seq": N} when appended, or {"definite": B, "error": KIND, "key": K, "reason": "...", "seq": N or null} when not, where definite is true when the outcome is settled (nothing was appended, or the message is on a majority at seq and survives any failover) and false when it may or may not be kept: retry with key K (the exit code is as without --json).
        #[arg(long)]
        json: bool,
        /// The message (stored byte for byte), or "-" to read one message per line of standard input.
        message: OsString,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print the messages of a node, in order.
    List {
        /// Node to read from (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// First sequence number to print.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last sequence number to print.
        #[arg(long)]
        to: Option<u64>,
        /// Print at most this many messages.
        #[arg(long)]
        max: Option<u64>,
        /// Print a JSON array of {"message": "...", "seq": N} (with --follow, one such object per line); a message that is not UTF-8 comes as "message_base64".
        #[arg(long)]
        json: bool,
        /// Keep printing messages as they become visible, like tail -f; if the node goes away, reconnect (to it or another listed node) and resume after the last message printed.
        #[arg(long)]
        follow: bool,
        /// Only messages known to be stored on a majority of nodes: these are never lost by a failover (a plain list shows everything the node holds, which after a failover may lose messages acknowledged with w below a majority). A secondary learns the mark with the master's next heartbeat.
        #[arg(long)]
        committed: bool,
        /// Give up (exit 5) if the listing has not finished after this long, connecting included.
        #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "follow")]
        timeout: Option<Duration>,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print the message at one sequence number.
    Get {
        /// Node to read from (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// The sequence number.
        seq: u64,
        /// Print {"message": "...", "seq": N} ("message_base64" when not UTF-8).
        #[arg(long)]
        json: bool,
        /// Only if the message is known to be on a majority of nodes.
        #[arg(long)]
        committed: bool,
        /// Give up (exit 5) if the node has not answered after this long, connecting included.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Show the health of a node and, on the master, of every secondary. Exit 0 when every node shown is healthy, 4 when the master is read-only (appends are refused), 7 when appends are taken but some node is not healthy. With --wait, exit 0 as soon as appends are taken.
    Health {
        /// Node to ask (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Wait until the cluster can take appends (a master with a quorum), then print; give up after DUR if given (exit 4).
        #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration, num_args = 0..=1, default_missing_value = "1000y")]
        wait: Option<Duration>,
        /// Give up (exit 5) if the node has not answered after this long, connecting included.
        #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "wait")]
        timeout: Option<Duration>,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// See and change the cluster's members.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Check that every node holds the same log: compares digests of ranges of each node's log and reports the first sequence number where two disagree, or that all agree up to the last entry every node holds. Exit 0 when they agree, 8 when they do not. Given one node, every node of its cluster is checked.
    Verify {
        /// The nodes to compare (comma-separated), or one node of the cluster (default 127.0.0.1:7001, or REPLOG_NODE).
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Print {"agree": B, "agreed_upto": N, "compared_from": N, "first_difference": N or null, "groups": [[ID...]...], "nodes": [{"id","addr","last"}...]}.
        #[arg(long)]
        json: bool,
        /// Give up (exit 5) if the nodes have not answered after this long, connecting included.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Measure appends per second and their latency against a cluster: C connections to the master each keep K appends in flight; prints throughput, latency percentiles (an HDR histogram) and outcomes by kind.
    Bench {
        /// Node(s) of the cluster (default 127.0.0.1:7001, or REPLOG_NODE); connections go to its master.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// What to run.
        #[command(flatten)]
        opts: crate::bench::BenchOptions,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// What `replog member` does.
#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// List the members as the master sees them: id, address, whether it votes ("learner": a member not yet promoted, or a voter back with an empty or healed disk that does not vote yet), status and how far behind it is; --json prints [{id, addr, voter, master, status, lag}].
    List {
        /// Node(s) to ask, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the master they name is asked.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Print a JSON array of {"id", "addr", "voter", "master", "status", "lag"}.
        #[arg(long)]
        json: bool,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Add node ID, listening at HOST:PORT for other nodes: it joins as a learner, receives the log, and votes once the master promotes it (when it holds everything committed). Start the node with replogd --join first.
    Add {
        /// ID=HOST:PORT of the node to add.
        member: String,
        /// Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// The cluster key, for a cluster started with --cluster-key-file: a change needs it.
        #[arg(long, env = "REPLOG_CLUSTER_KEY_FILE", value_name = "PATH")]
        cluster_key_file: Option<std::path::PathBuf>,
        /// How long to wait for a master (through an election), for a change under way to be committed before this one is taken, and for this one's answer; past it: exit 4 (no master), 2 (still under way) or 5 (sent, may or may not be made).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
        timeout: Duration,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Remove node ID: it stops counting at once, and stops taking part. The master may remove itself: it steps down once the change is committed.
    Remove {
        /// Id of the node to remove.
        id: String,
        /// Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// The cluster key, for a cluster started with --cluster-key-file: a change needs it.
        #[arg(long, env = "REPLOG_CLUSTER_KEY_FILE", value_name = "PATH")]
        cluster_key_file: Option<std::path::PathBuf>,
        /// How long to wait for a master (through an election), for a change under way to be committed before this one is taken, and for this one's answer; past it: exit 4 (no master), 2 (still under way) or 5 (sent, may or may not be made).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
        timeout: Duration,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// How the CLI reaches a node: the client token, from `--token-file` or
/// else the `REPLOG_TOKEN` environment variable (there is no flag for the
/// token itself, so that it never shows in a process list); and TLS.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// File whose first line is the client token, for a cluster started with --client-token-file or --read-token-file (or set REPLOG_TOKEN to the token itself).
    #[arg(long, env = "REPLOG_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<std::path::PathBuf>,
    /// Use TLS, verifying the node's certificate against this CA (PEM): for a cluster started with --tls-ca.
    #[arg(long, env = "REPLOG_TLS_CA", value_name = "PATH")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// With --tls-ca: a client certificate (PEM) to present.
    #[arg(long, env = "REPLOG_TLS_CERT", value_name = "PATH", requires_all = ["tls_ca", "tls_key"])]
    pub tls_cert: Option<std::path::PathBuf>,
    /// With --tls-cert: its private key (PEM).
    #[arg(long, env = "REPLOG_TLS_KEY", value_name = "PATH", requires_all = ["tls_ca", "tls_cert"])]
    pub tls_key: Option<std::path::PathBuf>,
}

impl ConnArgs {
    fn options(&self) -> Result<ConnectOptions, ClientError> {
        let token = match &self.token_file {
            Some(path) => Some(
                crate::auth::load_token(path, "--token-file")
                    .map_err(|e| ClientError::Usage(e.to_string()))?,
            ),
            None => std::env::var("REPLOG_TOKEN").ok().filter(|t| !t.is_empty()),
        };
        let tls = match &self.tls_ca {
            None => None,
            Some(ca) => {
                let identity = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
                Some(
                    crate::tls::client_connector(ca, identity)
                        .map_err(|e| ClientError::Usage(e.to_string()))?,
                )
            }
        };
        Ok(ConnectOptions {
            token,
            tls,
            cluster_key: None,
        })
    }
}

/// The nodes `--node` (or `REPLOG_NODES`, or the older `REPLOG_NODE`)
/// names, in order.
fn node_list(arg: Option<String>) -> Vec<String> {
    let given = arg
        .or_else(|| std::env::var("REPLOG_NODE").ok())
        .unwrap_or_else(|| "127.0.0.1:7001".to_string());
    let nodes: Vec<String> = given
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if nodes.is_empty() {
        vec![given]
    } else {
        nodes
    }
}

/// Connects to the first of `nodes` that answers.
async fn connect_any(nodes: &[String], conn: &ConnectOptions) -> Result<Client, ClientError> {
    let mut last = None;
    for node in nodes {
        match Client::connect_with(node, conn).await {
            Ok(client) => return Ok(client),
            Err(e @ ClientError::Unreachable { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one node"))
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Append {
            node,
            w,
            timeout,
            key,
            null_data,
            json,
            message,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let node = node_list(node);
                let opts = AppendOptions {
                    w,
                    key,
                    timeout,
                    progress: None,
                };
                let message = message.as_bytes();
                if message == b"-" {
                    let separator = if null_data { b'\0' } else { b'\n' };
                    append_stdin(&node, opts, (separator, json), &conn).await
                } else if null_data {
                    Err(ClientError::Usage(
                        "--null-data (-0) applies to messages read from standard input: give \"-\" as the message".into(),
                    ))
                } else {
                    append_printed(&node, message, &opts, &conn, json).await
                }
            }
        },
        Command::List {
            node,
            from,
            to,
            max,
            json,
            follow,
            committed,
            timeout,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let nodes = node_list(node);
                let listing = Listing {
                    from,
                    to,
                    max,
                    json,
                    follow,
                    committed,
                };
                within(
                    from_now(timeout),
                    &nodes.join(","),
                    "",
                    list(&nodes, listing, &conn),
                )
                .await
            }
        },
        Command::Get {
            node,
            seq,
            json,
            committed,
            timeout,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let nodes = node_list(node);
                let get = get(&nodes, seq, (json, committed), &conn);
                within(from_now(timeout), &nodes.join(","), "", get).await
            }
        },
        Command::Bench {
            node,
            opts,
            json,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let nodes = node_list(node);
                match crate::bench::run(&nodes, &opts, !json, &conn).await {
                    Err(e) => Err(e),
                    Ok(report) => {
                        let text = if json {
                            format!("{}\n", serde_json::to_string(&report).expect("plain data"))
                        } else {
                            report.text(&opts)
                        };
                        emit(&mut std::io::stdout().lock(), text, || {
                            "the benchmark ran".into()
                        })
                        .map(|_| ())
                    }
                }
            }
        },
        Command::Verify {
            node,
            json,
            timeout,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let nodes = node_list(node);
                let run = verify(&nodes, json, &conn);
                within(from_now(timeout), &nodes.join(","), "", run).await
            }
        },
        Command::Health {
            node,
            json,
            wait,
            timeout,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let nodes = node_list(node);
                match wait {
                    Some(limit) => health_wait(&nodes, json, limit, &conn).await,
                    None => {
                        let health = health(&nodes, json, &conn);
                        within(from_now(timeout), &nodes.join(","), "", health).await
                    }
                }
            }
        },
        Command::Member { command } => member(command).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "replog", &mut script);
            emit(&mut std::io::stdout().lock(), &script, || {
                "the completion script was generated".into()
            })
            .map(|_| ())
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("replog: {e}");
            e.exit_code()
        }
    }
}

/// Writes `text` (lines, each ending in a newline) and flushes. `Ok(false)` means the reader went away (a
/// closed pipe, as with `| head`): stop quietly. Any other failure is an
/// error that says what had happened (`what`), since for an append that is
/// worth knowing even when its sequence number cannot be printed.
fn emit(
    out: &mut impl Write,
    text: impl AsRef<[u8]>,
    what: impl FnOnce() -> String,
) -> Result<bool, ClientError> {
    match out.write_all(text.as_ref()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(source) => Err(ClientError::Output {
            what: what(),
            source,
        }),
    }
}

/// Appends one message and prints its sequence number, or with `json` one
/// object saying what happened (success or not).
async fn append_printed(
    nodes: &[String],
    message: &[u8],
    opts: &AppendOptions,
    conn: &ConnectOptions,
    json: bool,
) -> Result<(), ClientError> {
    // The key is chosen here, so that it can be printed whatever happens.
    let key = opts.key.clone().unwrap_or_else(crate::client::new_key);
    // The master says where the append stands while it waits: its
    // sequence number (for Ctrl-C) and the nodes it waits for (shown on a
    // terminal).
    let (progress, seen) = tokio::sync::watch::channel(None);
    let opts = AppendOptions {
        key: Some(key.clone()),
        progress: Some(progress),
        ..opts.clone()
    };
    let display = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(show_waiting(seen.clone())));
    let result = tokio::select! {
        result = append_one(nodes, message, &opts, conn) => result,
        _ = tokio::signal::ctrl_c() => Err(ClientError::Interrupted {
            seq: seen.borrow().as_ref().map(|p| p.seq),
            key: key.clone(),
        }),
    };
    if let Some(display) = display {
        display.abort();
        let _ = display.await;
    }
    let text = match (&result, json) {
        (Ok(seq), false) => format!("{seq}\n"),
        (Ok(seq), true) => format!("{}\n", serde_json::json!({"key": key, "seq": seq})),
        (Err(e), true) => format!("{}\n", append_error_json(e, &key)),
        (Err(_), false) => String::new(),
    };
    let what = match &result {
        Ok(seq) => format!("the message was appended as sequence number {seq}"),
        Err(e) => format!("the append failed ({e})"),
    };
    if !text.is_empty() {
        emit(&mut std::io::stdout().lock(), text, || what)?;
    }
    result.map(|_| ())
}

/// On a terminal, while an append waits for its write concern: which
/// nodes it still waits for, once it has waited long enough to be worth
/// saying (a prompt append shows nothing). Cleared when dropped.
async fn show_waiting(mut seen: tokio::sync::watch::Receiver<Option<crate::client::Progress>>) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    // Cleared however this task ends (it is aborted once the answer comes).
    struct Clear(indicatif::ProgressBar);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.finish_and_clear();
        }
    }
    let bar = Clear(bar);
    loop {
        let text = match seen.borrow_and_update().as_ref() {
            None => "waiting for the master to store the message".to_string(),
            Some(p) => format!(
                "sequence number {}: waiting for {} more node(s) of {}",
                p.seq,
                p.needed,
                p.missing.join(", ")
            ),
        };
        bar.0.set_message(text);
        if seen.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A failed append as `append --json` prints it: what kind of failure,
/// whether it is definite (settled: nothing was appended, or the message
/// is on a majority at `seq` and survives any failover), the sequence
/// number if the message is known to be in the master's log, the key to
/// retry with, and the sentence.
fn append_error_json(e: &ClientError, key: &str) -> serde_json::Value {
    let (kind, definite, seq) = e.facts();
    serde_json::json!({
        "error": kind,
        "definite": definite,
        "seq": seq,
        "key": key,
        "reason": e.to_string(),
    })
}

/// Appends one message: to one node, following a redirect to the master
/// once; to a list of nodes, finding the master, waiting through an
/// election and retrying an unknown outcome with the same key until
/// `--timeout` (or for as long as it takes).
pub async fn append_one(
    nodes: &[String],
    message: &[u8],
    opts: &AppendOptions,
    conn: &ConnectOptions,
) -> Result<u64, ClientError> {
    let key = opts.key.clone().unwrap_or_else(crate::client::new_key);
    let opts = AppendOptions {
        key: Some(key.clone()),
        ..opts.clone()
    };
    append_keyed(nodes, message, &opts, conn)
        .await
        .map_err(|e| with_key(e, key))
}

/// An outcome that is not settled, and whose sentence does not name the
/// key, with the key to retry with.
fn with_key(e: ClientError, key: String) -> ClientError {
    match e {
        ClientError::Append(
            AppendError::Uncommitted { .. } | AppendError::ShuttingDown { seq: None },
        )
        | ClientError::Lost { .. }
        | ClientError::Rejected { .. } => ClientError::Unsettled {
            source: Box::new(e),
            key,
        },
        e => e,
    }
}

/// [`append_one`], with the key chosen.
async fn append_keyed(
    nodes: &[String],
    message: &[u8],
    opts: &AppendOptions,
    conn: &ConnectOptions,
) -> Result<u64, ClientError> {
    // --timeout covers everything: connecting, the hello, a redirect and
    // the append. The master is given what is left of it, and its answer
    // (TimedOut, with the sequence number) a moment to arrive.
    let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
    let connect = |addr: String| async move {
        let limit = opts.timeout.zip(deadline);
        let connecting = Client::connect_with(&addr, conn);
        within(limit, &addr, "; nothing was sent", connecting).await
    };
    // One key for both tries, so the redirect cannot append twice.
    let key = opts.key.clone().unwrap_or_else(crate::client::new_key);
    let send = |client: Client, addr: String| {
        let key = key.clone();
        async move {
            let Some(d) = deadline else {
                let opts = AppendOptions {
                    key: Some(key),
                    ..opts.clone()
                };
                return client.append(message, &opts).await;
            };
            let left = d.saturating_duration_since(tokio::time::Instant::now());
            let opts = AppendOptions {
                key: Some(key.clone()),
                timeout: Some(left.max(Duration::from_millis(1))),
                ..opts.clone()
            };
            tokio::time::timeout_at(d + ANSWER_GRACE, client.append(message, &opts))
                .await
                .unwrap_or(Err(ClientError::NoAnswer { addr, key }))
        }
    };
    let seq = match nodes {
        [node] => {
            let client = connect(node.to_string()).await?;
            match send(client, node.to_string()).await {
                Err(ClientError::Append(AppendError::NotMaster { master_addr }))
                    if !master_addr.is_empty() =>
                {
                    let client = connect(master_addr.clone()).await?;
                    send(client, master_addr).await?
                }
                other => other?,
            }
        }
        _ => {
            let mut hint = None;
            // Once an append may have been stored, giving up is indefinite:
            // say so, with the key to retry with.
            let mut sent = false;
            loop {
                let finding = find_master(nodes, conn, &mut hint, deadline);
                let limit = opts.timeout.zip(deadline);
                let client =
                    match within(limit, &nodes.join(","), "; nothing was sent", finding).await {
                        Ok(client) => client,
                        Err(_) if sent => {
                            return Err(ClientError::NoAnswer {
                                addr: nodes.join(","),
                                key: key.clone(),
                            })
                        }
                        Err(e) => return Err(e),
                    };
                let addr = client.addr().to_string();
                match send(client, addr).await {
                    Err(ClientError::Append(AppendError::NotMaster { master_addr })) => {
                        hint = Some(master_addr).filter(|m| !m.is_empty());
                    }
                    // The master stepped down or went away with the append
                    // in flight: it may or may not be stored (or, if it is
                    // on a majority, the new master still has to bring it
                    // to `w`). The same key makes the retry safe (within
                    // the dedup window), and waits for the entry if kept.
                    Err(
                        e @ (ClientError::Append(
                            AppendError::ShuttingDown { .. }
                            | AppendError::Uncommitted {
                                timed_out: false, ..
                            },
                        )
                        | ClientError::Lost { .. }),
                    ) => {
                        sent = true;
                        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                            return Err(e);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => break other?,
                }
            }
        }
    };
    Ok(seq)
}

/// Runs `command`, giving up at the deadline of `limit` (the duration as
/// given, and when it ends) as unreachable: a paused or overloaded node
/// answers nothing, not even an error. `after` ends the sentence.
async fn within<T>(
    limit: Option<(Duration, tokio::time::Instant)>,
    addr: &str,
    after: &str,
    command: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    let Some((given, deadline)) = limit else {
        return command.await;
    };
    tokio::time::timeout_at(deadline, command)
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Unreachable {
                addr: addr.to_string(),
                reason: format!(
                    "no answer within --timeout {} (a paused or overloaded node?){after}",
                    humantime::format_duration(given)
                ),
            })
        })
}

/// A `--timeout` as `within` takes it, counted from now.
fn from_now(timeout: Option<Duration>) -> Option<(Duration, tokio::time::Instant)> {
    timeout.map(|t| (t, tokio::time::Instant::now() + t))
}

/// How long past `--timeout` an append waits for the master's own answer
/// (which names the sequence number when it has one).
const ANSWER_GRACE: Duration = Duration::from_millis(500);

/// Appends every message of standard input (each ended by `separator`,
/// the last one possibly not), pipelined, printing sequence numbers in input
/// order. Messages are bytes: nothing is decoded or altered.
async fn append_stdin(
    nodes: &[String],
    opts: AppendOptions,
    (separator, json): (u8, bool),
    conn: &ConnectOptions,
) -> Result<(), ClientError> {
    let client = match nodes {
        [node] => connect_master(node, conn).await?,
        _ => {
            let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
            find_master(nodes, conn, &mut None, deadline).await?
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(PIPELINE);
    // Standard input is read on a blocking thread: messages flow as they come.
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        loop {
            let mut message = Vec::new();
            let read = match input.read_until(separator, &mut message) {
                Ok(0) => break,
                Ok(_) => {
                    if message.last() == Some(&separator) {
                        message.pop();
                    }
                    Ok(message)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = read.is_err();
            if tx.blocking_send(read).is_err() || failed {
                break;
            }
        }
    });
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {human_pos} appended in {elapsed}")
                .expect("valid template"),
        );
        bar
    });
    let mut in_flight = FuturesOrdered::new();
    let mut stdout = std::io::stdout().lock();
    let mut first_error: Option<ClientError> = None;
    let mut input_open = true;
    let mut line_no: u64 = 0;
    let mut appended: u64 = 0;
    let mut read_error: Option<std::io::Error> = None;
    loop {
        tokio::select! {
            line = rx.recv(), if input_open && in_flight.len() < PIPELINE && first_error.is_none() => {
                match line {
                    Some(Err(e)) => {
                        input_open = false;
                        read_error = Some(e);
                    }
                    Some(Ok(line)) => {
                        let client = client.clone();
                        let mut opts = opts.clone();
                        // Each line is its own message with its own key: a
                        // given --key becomes KEY-1, KEY-2, ... by line.
                        line_no += 1;
                        // Chosen here, so that --json can print it.
                        opts.key = Some(opts.key.as_ref().map_or_else(crate::client::new_key, |k| format!("{k}-{line_no}")));
                        let n = line_no;
                        in_flight.push_back(async move {
                            let key = opts.key.clone().unwrap_or_default();
                            let result = client.append(&line, &opts).await;
                            (n, key.clone(), result.map_err(|e| with_key(e, key)))
                        });
                    }
                    None => input_open = false,
                }
            }
            Some((line, key, result)) = in_flight.next(), if !in_flight.is_empty() => {
                // Standard output holds the sequence numbers of the lines
                // before the first failure, one per line, so that it still
                // lines up with the input. What was in flight behind the
                // failure is reported on standard error, line by line.
                match (result, first_error.is_some()) {
                    (Ok(seq), false) => {
                        appended += 1;
                        let text = if json {
                            format!("{}\n", serde_json::json!({"key": key, "seq": seq}))
                        } else {
                            format!("{seq}\n")
                        };
                        let written = emit(&mut stdout, text, || {
                            format!("line {line} was appended as sequence number {seq}")
                        });
                        match written {
                            Ok(true) => {}
                            // Nobody reads the numbers any more: stop taking lines.
                            Ok(false) => input_open = false,
                            Err(e) => first_error = Some(e),
                        }
                        if let Some(bar) = &progress { bar.inc(1); }
                    }
                    (Ok(seq), true) => eprintln!("replog: line {line} was appended as sequence number {seq}"),
                    (Err(e), false) => {
                        if json {
                            let _ = emit(&mut stdout, format!("{}\n", append_error_json(&e, &key)), || {
                                format!("line {line} failed")
                            });
                        }
                        first_error = Some(ClientError::Line { line, source: Box::new(e) });
                    }
                    (Err(e), true) => eprintln!("replog: line {line}: {e}"),
                }
            }
            else => break,
        }
        if (!input_open || first_error.is_some()) && in_flight.is_empty() {
            break;
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let _ = stdout.flush();
    match (first_error, read_error) {
        (Some(e), _) => Err(e),
        (None, Some(source)) => Err(ClientError::Input { appended, source }),
        (None, None) => Ok(()),
    }
}

/// What `list` prints: the range, and how.
#[derive(Debug, Clone, Copy)]
struct Listing {
    from: u64,
    /// Last sequence number to print, if bounded.
    to: Option<u64>,
    /// Most messages to print.
    max: Option<u64>,
    json: bool,
    follow: bool,
    committed: bool,
}

/// How long `list --follow` waits before reconnecting after losing its
/// node (it then resumes after the last message it printed).
const FOLLOW_RECONNECT: Duration = Duration::from_millis(500);

async fn list(nodes: &[String], l: Listing, conn: &ConnectOptions) -> Result<(), ClientError> {
    let mut client = connect_any(nodes, conn).await?;
    let mut stdout = std::io::stdout().lock();
    let mut next = l.from.max(1);
    let first = client.welcome().first;
    if next < first {
        eprintln!(
            "replog: entries before sequence number {first} were deleted by retention on {} (--retention-bytes, --retention-age); listing from {first}",
            client.addr()
        );
        next = first;
    }
    let mut printed = 0u64;
    let budget = |printed: u64| l.max.map_or(u64::MAX, |m| m.saturating_sub(printed));
    // A JSON array unless following (then one object per line, NDJSON).
    let array = l.json && !l.follow;
    let mut items: Vec<serde_json::Value> = Vec::new();
    loop {
        if budget(printed) == 0 || l.to.is_some_and(|to| next > to) {
            break;
        }
        let page_max = budget(printed).min(1000) as u32;
        let (entries, _) = match client
            .list_entries(next, page_max, l.follow, l.committed)
            .await
        {
            Ok(page) => page,
            // Following: the node restarted or went away; come back to it
            // (or another listed node) and go on after the last message.
            Err(e) if l.follow => {
                eprintln!(
                    "replog: {e}; reconnecting to resume after sequence number {}",
                    next - 1
                );
                loop {
                    tokio::time::sleep(FOLLOW_RECONNECT).await;
                    if let Ok(c) = connect_any(nodes, conn).await {
                        client = c;
                        break;
                    }
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if entries.is_empty() && !l.follow {
            break;
        }
        // One flush per page, not per line.
        let mut page = Vec::new();
        for (seq, message) in entries {
            if l.to.is_some_and(|to| seq > to) || budget(printed) == 0 {
                next = u64::MAX;
                break;
            }
            next = seq + 1;
            printed += 1;
            if array {
                items.push(entry_json(seq, &message));
            } else if l.json {
                page.extend_from_slice(entry_json(seq, &message).to_string().as_bytes());
                page.push(b'\n');
            } else {
                page.extend_from_slice(&message);
                page.push(b'\n');
            }
        }
        if !page.is_empty() && !emit(&mut stdout, &page, || "the messages were read".into())? {
            return Ok(()); // a closed pipe (| head) is not an error
        }
    }
    if array {
        emit(
            &mut stdout,
            format!("{}\n", serde_json::Value::Array(items)),
            || "the messages were read".into(),
        )?;
    }
    Ok(())
}

/// Prints the message at `seq`, or says why there is none.
async fn get(
    nodes: &[String],
    seq: u64,
    (json, committed): (bool, bool),
    conn: &ConnectOptions,
) -> Result<(), ClientError> {
    let client = connect_any(nodes, conn).await?;
    let (entries, visible) = client.list_entries(seq, 1, false, committed).await?;
    let Some((_, message)) = entries.into_iter().find(|(s, _)| *s == seq) else {
        let what = if committed { "committed" } else { "stored" };
        let first = client.welcome().first;
        let why = if seq != 0 && seq < first {
            format!(
                "retention deleted the entries before {first} on {} (--retention-bytes, --retention-age)",
                client.addr()
            )
        } else if seq == 0 || seq <= visible {
            format!("{seq} holds no message (sequence numbers start at 1, and an epoch marker holds one without a message)")
        } else {
            format!("{} has {what} only up to {visible}", client.addr())
        };
        return Err(ClientError::NotFound {
            what: format!("no message at sequence number {seq}: {why}"),
        });
    };
    let text = if json {
        format!("{}\n", entry_json(seq, &message))
    } else {
        let mut raw = message.to_vec();
        raw.push(b'\n');
        return emit(&mut std::io::stdout().lock(), raw, || {
            "the message was read".into()
        })
        .map(|_| ());
    };
    emit(&mut std::io::stdout().lock(), text, || {
        "the message was read".into()
    })
    .map(|_| ())
}

async fn health(nodes: &[String], json: bool, conn: &ConnectOptions) -> Result<(), ClientError> {
    let client = connect_any(nodes, conn).await?;
    let report = client.health().await?;
    // A secondary reports only itself: the cluster is shown as the master
    // it names sees it.
    let secondary = report.role.follows();
    let master = if secondary && !report.master_addr.is_empty() {
        match Client::connect_with(&report.master_addr, conn).await {
            Ok(m) => Some(m.health().await),
            Err(e) => Some(Err(e)),
        }
    } else {
        None
    };
    let view = master.as_ref().and_then(|m| m.as_ref().ok());
    let text = if json {
        let ranges = log_ranges(view.unwrap_or(&report), conn).await;
        let mut value = health_json(&report, &ranges);
        if secondary {
            value["master_report"] =
                view.map_or(serde_json::Value::Null, |m| health_json(m, &ranges));
        }
        format!("{value}\n")
    } else {
        let ranges = log_ranges(view.unwrap_or(&report), conn).await;
        let mut text = health_table(&report, &ranges);
        if let Some(m) = view {
            text.push_str(&format!(
                "\nthe cluster, as its master {} sees it:\n",
                m.node
            ));
            text.push_str(&health_table(m, &ranges));
        }
        text
    };
    emit(&mut std::io::stdout().lock(), &text, || {
        "the health report was read".into()
    })?;
    match master {
        Some(Ok(m)) => verdict(&m),
        Some(Err(e)) => Err(e),
        None if secondary => Err(ClientError::NoMaster { node: report.node }),
        None => verdict(&report),
    }
}

/// Compares every node's log and prints the verdict.
async fn verify(nodes: &[String], json: bool, conn: &ConnectOptions) -> Result<(), ClientError> {
    let addrs = crate::verify::nodes_to_check(nodes, conn).await?;
    let clients =
        futures_util::future::try_join_all(addrs.iter().map(|a| Client::connect_with(a, conn)))
            .await?;
    let v = crate::verify::verify(&clients).await?;
    let groups: Vec<Vec<String>> = v.difference.iter().flat_map(|d| d.1.clone()).collect();
    let text = if json {
        let value = serde_json::json!({
            "agree": v.difference.is_none(),
            "agreed_upto": v.agreed_upto,
            "compared_from": v.compared_from,
            "first_difference": v.difference.as_ref().map(|d| d.0),
            "groups": groups,
            "nodes": v.nodes.iter().map(|(id, addr, last)| serde_json::json!({
                "id": id, "addr": addr, "last": last,
            })).collect::<Vec<_>>(),
        });
        format!("{value}\n")
    } else {
        let mut text = match &v.difference {
            None if v.agreed_upto < v.compared_from => format!(
                "all {} nodes agree: no entry is on every node yet\n",
                v.nodes.len()
            ),
            None => format!(
                "all {} nodes agree on sequence numbers {} to {}\n",
                v.nodes.len(),
                v.compared_from,
                v.agreed_upto
            ),
            Some((seq, _)) => format!(
                "the nodes DISAGREE at sequence number {seq}: {}; {} to {} agree\n",
                crate::verify::describe_groups(&groups),
                v.compared_from,
                v.agreed_upto
            ),
        };
        for (id, addr, last) in &v.nodes {
            text.push_str(&format!("{id}  {addr}  holds up to {last}\n"));
        }
        text
    };
    emit(&mut std::io::stdout().lock(), &text, || {
        "the verdict was found".into()
    })?;
    match v.difference {
        None => Ok(()),
        Some((seq, _)) => Err(ClientError::Diverged {
            seq,
            groups: crate::verify::describe_groups(&groups),
        }),
    }
}

/// What a health report means for a script: read-only (exit 4), some node
/// not healthy (exit 7), or all well.
fn verdict(r: &HealthReport) -> Result<(), ClientError> {
    let master_broken = r.nodes.first().is_some_and(|n| {
        n.role == crate::wire::NodeRole::Master && n.status == crate::wire::PeerStatus::Unhealthy
    });
    if r.read_only {
        return Err(ClientError::NotReady {
            reachable: r.reachable,
            needed: r.needed,
            read_only_disk: master_broken,
        });
    }
    let unwell: Vec<String> = r
        .nodes
        .iter()
        .filter(|n| n.status != crate::wire::PeerStatus::Healthy)
        .map(|n| match (n.status, &n.detail) {
            (crate::wire::PeerStatus::Mismatch, Some(d)) => {
                format!("{} has a configuration mismatch ({d})", n.id)
            }
            (status, _) => format!("{} is {status}", n.id),
        })
        .collect();
    if unwell.is_empty() {
        Ok(())
    } else {
        Err(ClientError::Degraded { nodes: unwell })
    }
}

/// One entry as `list --json` prints it: `message` when the bytes are UTF-8,
/// `message_base64` (standard alphabet, padded) when they are not.
pub fn entry_json(seq: u64, message: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(message) {
        Ok(text) => serde_json::json!({"seq": seq, "message": text}),
        Err(_) => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(message);
            serde_json::json!({"seq": seq, "message_base64": b64})
        }
    }
}

/// Polls the master's health (following a secondary to it) until the
/// cluster can take appends, then prints the report as `health` does. Nodes
/// that are not up yet are waited for too. After `limit`: exit 4 with the
/// last report's numbers, or 5 if no node answered.
async fn health_wait(
    nodes: &[String],
    json: bool,
    limit: Duration,
    conn: &ConnectOptions,
) -> Result<(), ClientError> {
    let node = nodes.join(",");
    let node = node.as_str();
    let deadline = tokio::time::Instant::now()
        .checked_add(limit)
        .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86400 * 365 * 100));
    let mut last: Result<HealthReport, ClientError> = Err(ClientError::Unreachable {
        addr: node.to_string(),
        reason: "no answer yet".into(),
    });
    loop {
        let attempt = async {
            let client = match nodes {
                [one] => connect_master(one, conn).await?,
                _ => find_master(nodes, conn, &mut None, Some(deadline)).await?,
            };
            client.health().await
        };
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Ok(answer) = tokio::time::timeout(remaining, attempt).await {
            if let Ok(r) = &answer {
                if r.role == crate::wire::NodeRole::Master
                    && !r.read_only
                    && r.reachable >= r.needed
                {
                    let ranges = log_ranges(r, conn).await;
                    let text = if json {
                        format!("{}\n", health_json(r, &ranges))
                    } else {
                        health_table(r, &ranges)
                    };
                    // What was waited for is here: exit 0, even if some
                    // node is still down (the report says which).
                    emit(&mut std::io::stdout().lock(), text, || {
                        "the cluster can take appends".into()
                    })?;
                    return Ok(());
                }
            }
            // A bad address, or a node that refuses us (another protocol
            // version) or answers nonsense, never gets better by waiting.
            if let Err(
                e @ (ClientError::BadAddress { .. }
                | ClientError::Refused { .. }
                | ClientError::Unauthorized { .. }
                | ClientError::Protocol { .. }),
            ) = answer
            {
                return Err(e);
            }
            last = answer;
        }
        if tokio::time::Instant::now() + Duration::from_millis(100) > deadline {
            return Err(match last {
                Ok(r) => ClientError::NotReady {
                    reachable: r.reachable,
                    needed: r.needed,
                    read_only_disk: r.nodes.first().is_some_and(|n| {
                        n.role == crate::wire::NodeRole::Master
                            && n.status == crate::wire::PeerStatus::Unhealthy
                    }),
                },
                Err(e) => e,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The health report as the JSON object `health --json` prints.
/// Each node's first and last sequence number, by id, as the node itself
/// says in its welcome (asked of every node a report lists, at once, for
/// at most a second; a node that does not answer is left out).
pub type LogRanges = HashMap<String, (u64, u64)>;

async fn log_ranges(r: &HealthReport, conn: &ConnectOptions) -> LogRanges {
    let asks = r.nodes.iter().map(|n| async move {
        let connecting = Client::connect_with(&n.addr, conn);
        let client = tokio::time::timeout(Duration::from_secs(1), connecting).await;
        let w = client.ok()?.ok()?.welcome().clone();
        Some((n.id.clone(), (w.first, w.last.seq)))
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

pub fn health_json(r: &HealthReport, ranges: &LogRanges) -> serde_json::Value {
    serde_json::json!({
        "node": r.node,
        "role": r.role.to_string(),
        "epoch": r.epoch,
        "stored": r.stored,
        "master": r.master_addr,
        "read_only": r.read_only,
        "reachable": r.reachable,
        "needed": r.needed,
        "authenticated": r.authenticated,
        "encrypted": r.encrypted,
        "nodes": r.nodes.iter().map(|n| serde_json::json!({
            "id": n.id,
            "addr": n.addr,
            "role": n.role.to_string(),
            "status": n.status.to_string(),
            "acked": n.acked,
            "lag": n.lag,
            "last_heard_ms": n.last_heard_ms,
            "detail": n.detail,
            "first": ranges.get(&n.id).map(|r| r.0),
            "last": ranges.get(&n.id).map(|r| r.1),
        })).collect::<Vec<_>>(),
    })
}

/// The health report as an aligned table for people.
pub fn health_table(r: &HealthReport, ranges: &LogRanges) -> String {
    let mut out = format!("node {} ({}), stored up to {}", r.node, r.role, r.stored);
    if r.role == crate::wire::NodeRole::Master {
        out.push_str(&format!(
            ", epoch {}, {} node(s) reachable, {} needed{}\n",
            r.epoch,
            r.reachable,
            r.needed,
            if r.read_only {
                ": READ-ONLY (appends refused)"
            } else if r.reachable < r.needed {
                ": waiting for secondaries that are still connecting (appends wait)"
            } else {
                ": accepting appends"
            }
        ));
    } else if r.master_addr.is_empty() {
        out.push_str(&format!(
            ", epoch {}, no master known (an election may be under way)\n",
            r.epoch
        ));
    } else {
        out.push_str(&format!(
            ", epoch {}, master at {}\n",
            r.epoch, r.master_addr
        ));
    }
    out.push_str(match (r.authenticated, r.encrypted) {
        (true, true) => "cluster: authenticated, encrypted\n",
        (true, false) => "cluster: authenticated, not encrypted\n",
        (false, true) => "cluster: encrypted, NOT AUTHENTICATED (no --cluster-key-file)\n",
        (false, false) => "cluster: NOT AUTHENTICATED (no --cluster-key-file), not encrypted\n",
    });
    let rows: Vec<[String; 9]> = r
        .nodes
        .iter()
        .map(|n| {
            let range = ranges.get(&n.id);
            let seq = |s: Option<u64>| s.map_or("-".into(), |s| s.to_string());
            [
                n.id.clone(),
                n.addr.clone(),
                n.role.to_string(),
                n.status.to_string(),
                seq(range.map(|r| r.0)),
                seq(range.map(|r| r.1)),
                n.acked.to_string(),
                n.lag.to_string(),
                n.last_heard_ms
                    .map_or("never".into(), |ms| format!("{ms}ms ago")),
            ]
        })
        .collect();
    // FIRST and LAST as each node says (retention may have deleted the
    // entries before FIRST); ACKED, LAG and HEARD as the master sees it.
    let header = [
        "ID", "ADDRESS", "ROLE", "STATUS", "FIRST", "LAST", "ACKED", "LAG", "HEARD",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.push('\n');
        s
    };
    out.push_str(&line(header.to_vec()));
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    // Why a node is refused or mismatched: too long for a column.
    for n in &r.nodes {
        if let Some(detail) = &n.detail {
            out.push_str(&format!("{}: {detail}\n", n.id));
        }
    }
    out
}

/// Runs `replog member ...`.
async fn member(command: MemberCommand) -> Result<(), ClientError> {
    use crate::member_cli::{add, list, remove, with_key};
    match command {
        MemberCommand::List { node, json, conn } => {
            list(&node_list(node), json, &conn.options()?).await
        }
        MemberCommand::Add {
            member,
            node,
            cluster_key_file,
            timeout,
            conn,
        } => {
            let conn = with_key(conn.options()?, cluster_key_file)?;
            add(&node_list(node), &member, &conn, timeout).await
        }
        MemberCommand::Remove {
            id,
            node,
            cluster_key_file,
            timeout,
            conn,
        } => {
            let conn = with_key(conn.options()?, cluster_key_file)?;
            remove(&node_list(node), &id, &conn, timeout).await
        }
    }
}
