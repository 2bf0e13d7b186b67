//! `replog get`: one entry by its sequence number.

use crate::client::{ClientError, ConnectOptions};
use crate::json::entry_json;
use std::time::Duration;

use super::common::*;

/// Prints the message at `seq`, or says why there is none.
pub(super) async fn get(
    nodes: &[String],
    seq: u64,
    (json, committed): (bool, bool),
    conn: &ConnectOptions,
) -> Result<(), ClientError> {
    let client = connect_any(nodes, conn).await?;
    let (entries, visible) = client.list_entries(seq, 1, false, committed).await?;
    // The node answers with the first message from `seq` on: numbers have
    // no gaps, so a later one means retention deleted `seq`.
    let first = entries.first().map(|(s, _)| *s);
    let Some((_, message)) = entries.into_iter().find(|(s, _)| *s == seq) else {
        let what = if committed { "committed" } else { "stored" };
        let why = if let (Some(first), true) = (first, seq != 0) {
            format!(
                "retention deleted the messages before {first} on {} (the log's own retention, or the node's --retention-bytes, --retention-age)",
                client.addr()
            )
        } else if seq == 0 {
            "sequence numbers start at 1".to_string()
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

/// The arguments of `replog get` (see [`super::Command::Get`]).
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// Node to read from (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers.
    #[arg(long, env = "REPLOG_NODES")]
    pub(super) node: Option<String>,
    /// The sequence number.
    pub(super) seq: u64,
    /// Print {"message": "...", "seq": N} ("message_base64" when not UTF-8).
    #[arg(long)]
    pub(super) json: bool,
    /// Only if the message is known to be on a majority of nodes.
    #[arg(long)]
    pub(super) committed: bool,
    /// Give up (exit 5) if the node has not answered after this long, connecting included.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(super) timeout: Option<Duration>,
    /// The log.
    #[command(flatten)]
    pub(super) log: LogArg,
    /// Token and TLS, for clusters that require them.
    #[command(flatten)]
    pub(super) conn: ConnArgs,
}

/// Runs `replog get`.
pub(super) async fn run(args: GetArgs) -> Result<(), ClientError> {
    let GetArgs {
        node,
        seq,
        json,
        committed,
        timeout,
        log,
        conn,
    } = args;
    let conn = log.on(conn.options()?)?;
    let nodes = node_list(node);
    let get = get(&nodes, seq, (json, committed), &conn);
    within(from_now(timeout), &nodes.join(","), "", get).await
}
