//! `replog append`: one message, or every line of standard input
//! (pipelined), each with a request key, retried through elections with
//! the same key until it is settled or `--timeout` passes.

use crate::wire::WriteConcern;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};

use crate::client::{
    connect_master, find_master, AppendOptions, Client, ClientError, ConnectOptions,
};
use crate::wire::AppendError;

use super::common::*;

/// Most appends in flight at once for `append -`.
pub(super) const PIPELINE: usize = 256;

/// Appends one message and prints its sequence number, or with `json` one
/// object saying what happened (success or not).
pub(super) async fn append_printed(
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
pub(super) async fn show_waiting(
    mut seen: tokio::sync::watch::Receiver<Option<crate::client::Progress>>,
) {
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
pub(super) fn append_error_json(e: &ClientError, key: &str) -> serde_json::Value {
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
pub(super) fn with_key(e: ClientError, key: String) -> ClientError {
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
pub(super) async fn append_keyed(
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
        _ => follow_master(nodes, opts, conn, (deadline, &key), send).await?,
    };
    Ok(seq)
}

/// An append to a cluster of several nodes: the master is found (again
/// after a failover), and an append whose outcome is unknown is retried
/// with the same key until `deadline`.
async fn follow_master<F, A>(
    nodes: &[String],
    opts: &AppendOptions,
    conn: &ConnectOptions,
    (deadline, key): (Option<tokio::time::Instant>, &str),
    send: F,
) -> Result<u64, ClientError>
where
    F: Fn(Client, String) -> A,
    A: std::future::Future<Output = Result<u64, ClientError>>,
{
    let mut hint = None;
    // Once an append may have been stored, giving up is indefinite:
    // say so, with the key to retry with.
    let mut sent = false;
    loop {
        let finding = find_master(nodes, conn, &mut hint, deadline);
        let limit = opts.timeout.zip(deadline);
        let client = match within(limit, &nodes.join(","), "; nothing was sent", finding).await {
            Ok(client) => client,
            Err(_) if sent => {
                return Err(ClientError::NoAnswer {
                    addr: nodes.join(","),
                    key: key.to_string(),
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
            other => break other,
        }
    }
}

/// How long past `--timeout` an append waits for the master's own answer
/// (which names the sequence number when it has one).
pub(super) const ANSWER_GRACE: Duration = Duration::from_millis(500);

/// Appends every message of standard input (each ended by `separator`,
/// the last one possibly not), pipelined, printing sequence numbers in input
/// order. Messages are bytes: nothing is decoded or altered.
pub(super) async fn append_stdin(
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
    let mut rx = read_messages(separator);
    let mut answers = Answers {
        stdout: std::io::stdout().lock(),
        json,
        first_error: None,
        input_open: true,
        appended: 0,
        progress: spinner(),
    };
    let mut in_flight = FuturesOrdered::new();
    let mut line_no: u64 = 0;
    let mut read_error: Option<std::io::Error> = None;
    loop {
        tokio::select! {
            line = rx.recv(), if answers.input_open && in_flight.len() < PIPELINE && answers.first_error.is_none() => {
                match line {
                    Some(Err(e)) => {
                        answers.input_open = false;
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
                    None => answers.input_open = false,
                }
            }
            Some((line, key, result)) = in_flight.next(), if !in_flight.is_empty() => {
                answers.take(line, key, result);
            }
            else => break,
        }
        if (!answers.input_open || answers.first_error.is_some()) && in_flight.is_empty() {
            break;
        }
    }
    if let Some(bar) = answers.progress {
        bar.finish_and_clear();
    }
    let _ = answers.stdout.flush();
    match (answers.first_error, read_error) {
        (Some(e), _) => Err(e),
        (None, Some(source)) => Err(ClientError::Input {
            appended: answers.appended,
            source,
        }),
        (None, None) => Ok(()),
    }
}

/// Reads standard input on a blocking thread, one message per `separator`,
/// so that messages flow as they come; a read error ends it.
fn read_messages(separator: u8) -> tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(PIPELINE);
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
    rx
}

/// A spinner on standard error, if it is a terminal.
fn spinner() -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {human_pos} appended in {elapsed}")
                .expect("valid template"),
        );
        bar
    })
}

/// Where the answers to `append` from standard input go, in input order.
struct Answers<'a> {
    stdout: std::io::StdoutLock<'a>,
    json: bool,
    first_error: Option<ClientError>,
    /// Lines are still taken.
    input_open: bool,
    appended: u64,
    progress: Option<indicatif::ProgressBar>,
}

impl Answers<'_> {
    /// Standard output holds the sequence numbers of the lines before the
    /// first failure, one per line, so that it still lines up with the
    /// input. What was in flight behind the failure is reported on
    /// standard error, line by line.
    fn take(&mut self, line: u64, key: String, result: Result<u64, ClientError>) {
        match (result, self.first_error.is_some()) {
            (Ok(seq), false) => {
                self.appended += 1;
                let text = if self.json {
                    format!("{}\n", serde_json::json!({"key": key, "seq": seq}))
                } else {
                    format!("{seq}\n")
                };
                let written = emit(&mut self.stdout, text, || {
                    format!("line {line} was appended as sequence number {seq}")
                });
                match written {
                    Ok(true) => {}
                    // Nobody reads the numbers any more: stop taking lines.
                    Ok(false) => self.input_open = false,
                    Err(e) => self.first_error = Some(e),
                }
                if let Some(bar) = &self.progress {
                    bar.inc(1);
                }
            }
            (Ok(seq), true) => {
                eprintln!("replog: line {line} was appended as sequence number {seq}")
            }
            (Err(e), false) => {
                if self.json {
                    let text = format!("{}\n", append_error_json(&e, &key));
                    let _ = emit(&mut self.stdout, text, || format!("line {line} failed"));
                }
                self.first_error = Some(ClientError::Line {
                    line,
                    source: Box::new(e),
                });
            }
            (Err(e), true) => eprintln!("replog: line {line}: {e}"),
        }
    }
}

/// The arguments of `replog append` (see [`super::Command::Append`]).
#[derive(Debug, clap::Args)]
pub struct AppendArgs {
    /// Node(s) to send to, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE). A secondary redirects to the master; with several nodes the master is found, followed through failovers, and an append whose outcome is unknown is retried with the same key.
    #[arg(long, env = "REPLOG_NODES")]
    pub(super) node: Option<String>,
    /// Write concern: voting nodes (master included) that must store the message: a number, "majority" or "all". Only an append acknowledged with a majority (or more) is never lost when a new master is elected; one acknowledged by fewer nodes may be.
    #[arg(short = 'w', long = "write-concern", default_value = "1")]
    pub(super) w: WriteConcern,
    /// Stop waiting after this long (e.g. 500ms, 5s), counted from the start (connecting included). A message the master took stays in its log: exit 3 if no failover can cut it (it is on a majority, or --failover off and the master stored it), 5 if not yet (a failover may still cut it: retry with the key printed).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(super) timeout: Option<Duration>,
    /// Request key: an append retried with the same key (and message) returns the original sequence number while its entry is in the log (within --dedup-window); one a failover cut is appended again.
    #[arg(long)]
    pub(super) key: Option<String>,
    /// With "-": messages are separated by NUL bytes instead of newlines, so a message may contain newlines.
    #[arg(short = '0', long = "null-data")]
    pub(super) null_data: bool,
    /// Print one JSON object per message instead of sequence numbers: {"key": K, "seq": N} when appended, or {"definite": B, "error": KIND, "key": K, "reason": "...", "seq": N or null} when not, where definite is true when the outcome is settled (nothing was appended, or the message is on a majority at seq and survives any failover) and false when it may or may not be kept: retry with key K (the exit code is as without --json).
    #[arg(long)]
    pub(super) json: bool,
    /// The message (stored byte for byte), or "-" to read one message per line of standard input.
    pub(super) message: OsString,
    /// The log.
    #[command(flatten)]
    pub(super) log: LogArg,
    /// Token and TLS, for clusters that require them.
    #[command(flatten)]
    pub(super) conn: ConnArgs,
}

/// Runs `replog append`.
pub(super) async fn run(args: AppendArgs) -> Result<(), ClientError> {
    let AppendArgs {
        node,
        w,
        timeout,
        key,
        null_data,
        json,
        message,
        log,
        conn,
    } = args;
    let conn = log.on(conn.options()?)?;
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
