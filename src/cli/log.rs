//! `replog log`: the cluster's named logs, created, listed and deleted.

use std::time::Duration;

use clap::Subcommand;

use super::change::{at_master, Change};
use super::common::*;
use crate::client::ClientError;
use crate::replication::catalog::check_name;
use crate::wire::LogChangeRequest;

/// What `replog log` does.
#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Create a log: a sequence of messages of its own, numbered from 1, on the same cluster (append and list take --log NAME). Names are 1 to 200 ASCII letters, digits, '.', '_' and '-' (not '.' or '..'): any other exits 2 and creates nothing; one that exists exits 1.
    Create {
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
    /// List the logs, default first: name, the first message held and the last visible one (0: none); --json prints [{name, first, last}].
    List {
        /// Node(s) to ask, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the first that answers is asked.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Print a JSON array of {"name", "first", "last"}.
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
            node,
            timeout,
            conn,
        } => {
            let create = LogChangeRequest::Create { name: name.clone() };
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
            let logs = client.list_logs().await?;
            let text = if json {
                let rows: Vec<serde_json::Value> = (logs.iter())
                    .map(|l| serde_json::json!({"name": l.name, "first": l.first, "last": l.last}))
                    .collect();
                format!("{}\n", serde_json::Value::Array(rows))
            } else {
                let width = logs.iter().map(|l| l.name.len()).max().unwrap_or(4).max(4);
                let mut text = format!("{:width$}  {:>10}  {:>10}\n", "NAME", "FIRST", "LAST");
                for l in &logs {
                    text.push_str(&format!(
                        "{:width$}  {:>10}  {:>10}\n",
                        l.name, l.first, l.last
                    ));
                }
                text
            };
            say(text)
        }
    }
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
