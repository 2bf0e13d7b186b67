//! What every `replog` subcommand shares: the connection flags, the node
//! list, reaching a node, writing output, and the `--timeout` around a
//! whole command.

use std::io::Write;
use std::time::Duration;

use crate::client::{Client, ClientError, ConnectOptions};

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

/// The log a command appends to or reads: `--log NAME`, or `REPLOG_LOG`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArg {
    /// The log to append to or read (replog log list shows them); default: the log named default.
    #[arg(long, env = "REPLOG_LOG", value_name = "NAME")]
    pub log: Option<String>,
}

impl LogArg {
    /// `conn` for this log; a name no log can have is a usage error.
    pub(super) fn on(&self, mut conn: ConnectOptions) -> Result<ConnectOptions, ClientError> {
        if let Some(log) = &self.log {
            crate::replication::catalog::check_name(log)
                .map_err(|e| ClientError::Usage(format!("--log: {e}")))?;
        }
        conn.log = self.log.clone();
        Ok(conn)
    }
}

impl ConnArgs {
    pub(super) fn options(&self) -> Result<ConnectOptions, ClientError> {
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
            log: None,
        })
    }
}

/// The nodes `--node` (or `REPLOG_NODES`, or the older `REPLOG_NODE`)
/// names, in order.
pub(super) fn node_list(arg: Option<String>) -> Vec<String> {
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
pub(super) async fn connect_any(
    nodes: &[String],
    conn: &ConnectOptions,
) -> Result<Client, ClientError> {
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

/// Writes `text` (lines, each ending in a newline) and flushes. `Ok(false)` means the reader went away (a
/// closed pipe, as with `| head`): stop quietly. Any other failure is an
/// error that says what had happened (`what`), since for an append that is
/// worth knowing even when its sequence number cannot be printed.
pub(super) fn emit(
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

/// Runs `command`, giving up at the deadline of `limit` (the duration as
/// given, and when it ends) as unreachable: a paused or overloaded node
/// answers nothing, not even an error. `after` ends the sentence.
pub(super) async fn within<T>(
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
pub(super) fn from_now(timeout: Option<Duration>) -> Option<(Duration, tokio::time::Instant)> {
    timeout.map(|t| (t, tokio::time::Instant::now() + t))
}
