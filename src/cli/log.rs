//! `replog log`: the cluster's named logs, created, listed and deleted.

use std::time::Duration;

use clap::Subcommand;

use super::change::{at_master, Change};
use super::common::*;
use crate::client::ClientError;
use crate::replication::catalog::check_name;
use crate::wire::{LogChangeRequest, LogDetail};

/// What `replog log` does.
#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Create a log: a sequence of messages of its own, numbered from 1, on the same cluster (append and list take --log NAME). Names are 1 to 200 ASCII letters, digits, '.', '_' and '-' (not '.' or '..'): any other exits 2 and creates nothing; one that exists exits 1.
    Create {
        /// Its name.
        name: String,
        /// Its own retention: the master deletes its oldest messages, a segment's share at a time, while it would still hold at least this much without them (e.g. 1GiB), on every node alike. Its last message always stays (it numbers the next).
        #[arg(long, value_name = "SIZE", value_parser = crate::node::config::parse_bytes)]
        retention_bytes: Option<u64>,
        /// Its own retention: the master deletes its messages in segments last written longer ago than this (e.g. 7d), on every node alike. Its last message always stays (it numbers the next).
        #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
        retention_age: Option<Duration>,
        /// Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// How long to wait for a master (through an election) and for the answer; past it: exit 4 (no master) or 5 (sent, may or may not be made).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
        timeout: Duration,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List the logs, default first: name, the first message held and the last visible one (0: none), the bytes of its messages the node holds, and its own retention; --json prints [{name, first, last, bytes, retention_bytes, retention_age_secs}] (null: none).
    List {
        /// Node(s) to ask, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the first that answers is asked.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Print a JSON array of {"name", "first", "last", "bytes", "retention_bytes", "retention_age_secs"}.
        #[arg(long)]
        json: bool,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete a log: its messages are no longer listed and appends to it are refused, on every node; a log created again under its name starts again from 1. The log named default cannot be deleted (exit 2); a name with no log exits 1.
    Delete {
        /// Its name.
        name: String,
        /// Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// How long to wait for a master (through an election) and for the answer; past it: exit 4 (no master) or 5 (sent, may or may not be made).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
        timeout: Duration,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// Runs `replog log ...`.
pub(super) async fn run(command: LogCommand) -> Result<(), ClientError> {
    match command {
        LogCommand::Create {
            name,
            retention_bytes,
            retention_age,
            node,
            timeout,
            conn,
        } => {
            let create = match (retention_bytes, retention_age) {
                (None, None) => LogChangeRequest::Create { name: name.clone() },
                (bytes, age) => LogChangeRequest::CreateRetained {
                    name: name.clone(),
                    retention_bytes: bytes,
                    retention_age_secs: age.map(|a| a.as_secs().max(1)),
                },
            };
            change(&name, create, (node, timeout, &conn)).await?;
            say(format!("created log {name}\n"))
        }
        LogCommand::Delete {
            name,
            node,
            timeout,
            conn,
        } => {
            let delete = LogChangeRequest::Delete { name: name.clone() };
            change(&name, delete, (node, timeout, &conn)).await?;
            say(format!("deleted log {name}\n"))
        }
        LogCommand::List { node, json, conn } => {
            let client = connect_any(&node_list(node), &conn.options()?).await?;
            let logs = client.list_logs_in_detail().await?;
            say(if json {
                as_json(&logs)
            } else {
                as_table(&logs)
            })
        }
    }
}

/// The logs as a JSON array.
fn as_json(logs: &[LogDetail]) -> String {
    let rows: Vec<serde_json::Value> = logs.iter().map(crate::json::log_json).collect();
    format!("{}\n", serde_json::Value::Array(rows))
}

/// The logs as a table: NAME FIRST LAST BYTES RETENTION ("-": none).
fn as_table(logs: &[LogDetail]) -> String {
    let rows: Vec<[String; 5]> = (logs.iter())
        .map(|l| {
            let retention = [
                l.retention_bytes.map(|b| format!("{b} bytes")),
                (l.retention_age_secs)
                    .map(|s| humantime::format_duration(Duration::from_secs(s)).to_string()),
            ];
            let retention: Vec<String> = retention.into_iter().flatten().collect();
            [
                l.name.clone(),
                l.first.to_string(),
                l.last.to_string(),
                l.bytes.to_string(),
                if retention.is_empty() {
                    "-".into()
                } else {
                    retention.join(", ")
                },
            ]
        })
        .collect();
    let width = rows.iter().map(|r| r[0].len()).max().unwrap_or(4).max(4);
    let line = |r: &[String; 5]| {
        format!(
            "{:width$}  {:>10}  {:>10}  {:>12}  {}\n",
            r[0], r[1], r[2], r[3], r[4]
        )
    };
    let header = ["NAME", "FIRST", "LAST", "BYTES", "RETENTION"].map(String::from);
    std::iter::once(&header).chain(&rows).map(line).collect()
}

/// Makes `request` about log `name` at the master, once the name is one a
/// log can have (a usage error otherwise: nothing is sent).
async fn change(
    name: &str,
    request: LogChangeRequest,
    (node, timeout, conn): (Option<String>, Duration, &ConnArgs),
) -> Result<u64, ClientError> {
    check_name(name).map_err(|e| ClientError::Usage(format!("log name: {e}")))?;
    at_master(
        &node_list(node),
        Change::Logs(request),
        &conn.options()?,
        timeout,
    )
    .await
}

/// Prints `text` on standard output.
fn say(text: String) -> Result<(), ClientError> {
    emit(&mut std::io::stdout().lock(), text, || {
        "the change was made".into()
    })
    .map(|_| ())
}
