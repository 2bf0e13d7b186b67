//! `replog verify`: every node's log compared by digests (`crate::client::verify`).

use crate::client::{Client, ClientError, ConnectOptions};
use std::time::Duration;

use super::common::*;

/// Compares every node's log and prints the verdict.
pub(super) async fn verify(
    nodes: &[String],
    json: bool,
    conn: &ConnectOptions,
) -> Result<(), ClientError> {
    let addrs = crate::client::verify::nodes_to_check(nodes, conn).await?;
    let clients =
        futures_util::future::try_join_all(addrs.iter().map(|a| Client::connect_with(a, conn)))
            .await?;
    let v = crate::client::verify::verify(&clients).await?;
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
                crate::client::verify::describe_groups(&groups),
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
            groups: crate::client::verify::describe_groups(&groups),
        }),
    }
}

/// The arguments of `replog verify` (see [`super::Command::Verify`]).
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The nodes to compare (comma-separated), or one node of the cluster (default 127.0.0.1:7001, or REPLOG_NODE).
    #[arg(long, env = "REPLOG_NODES")]
    pub(super) node: Option<String>,
    /// Print {"agree": B, "agreed_upto": N, "compared_from": N, "first_difference": N or null, "groups": [[ID...]...], "nodes": [{"id","addr","last"}...]}.
    #[arg(long)]
    pub(super) json: bool,
    /// Give up (exit 5) if the nodes have not answered after this long, connecting included.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(super) timeout: Option<Duration>,
    /// Token and TLS, for clusters that require them.
    #[command(flatten)]
    pub(super) conn: ConnArgs,
}

/// Runs `replog verify`.
pub(super) async fn run(args: VerifyArgs) -> Result<(), ClientError> {
    let VerifyArgs {
        node,
        json,
        timeout,
        conn,
    } = args;
    let conn = conn.options()?;
    let nodes = node_list(node);
    let run = verify(&nodes, json, &conn);
    within(from_now(timeout), &nodes.join(","), "", run).await
}
