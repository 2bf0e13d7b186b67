//! `replog health`: the master's report as a table or JSON, its verdict
//! (exit 4 or 7), and `--wait` until the cluster takes appends.

use std::time::Duration;

use crate::client::{connect_master, find_master, Client, ClientError, ConnectOptions};
use crate::json::{health_json, LogRanges};
use crate::wire::HealthReport;

use super::common::*;

pub(super) async fn health(
    nodes: &[String],
    json: bool,
    conn: &ConnectOptions,
) -> Result<(), ClientError> {
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

/// What a health report means for a script: read-only (exit 4), some node
/// not healthy (exit 7), or all well.
pub(super) fn verdict(r: &HealthReport) -> Result<(), ClientError> {
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

/// Polls the master's health (following a secondary to it) until the
/// cluster can take appends, then prints the report as `health` does. Nodes
/// that are not up yet are waited for too. After `limit`: exit 4 with the
/// last report's numbers, or 5 if no node answered.
pub(super) async fn health_wait(
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

/// Each node's first and last sequence number, as the node itself says in
/// its welcome (asked of every node the report lists, at once, for at most a
/// second; a node that does not answer is left out).
pub(super) async fn log_ranges(r: &HealthReport, conn: &ConnectOptions) -> LogRanges {
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

/// The health report as an aligned table for people.
// One line or column after another, as they appear on the screen.
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

/// The arguments of `replog health` (see [`super::Command::Health`]).
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// Node to ask (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers.
    #[arg(long, env = "REPLOG_NODES")]
    pub(super) node: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(super) json: bool,
    /// Wait until the cluster can take appends (a master with a quorum), then print; give up after DUR if given (exit 4).
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration, num_args = 0..=1, default_missing_value = "1000y")]
    pub(super) wait: Option<Duration>,
    /// Give up (exit 5) if the node has not answered after this long, connecting included.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "wait")]
    pub(super) timeout: Option<Duration>,
    /// Token and TLS, for clusters that require them.
    #[command(flatten)]
    pub(super) conn: ConnArgs,
}

/// Runs `replog health`.
pub(super) async fn run(args: HealthArgs) -> Result<(), ClientError> {
    let HealthArgs {
        node,
        json,
        wait,
        timeout,
        conn,
    } = args;
    let conn = conn.options()?;
    let nodes = node_list(node);
    match wait {
        Some(limit) => health_wait(&nodes, json, limit, &conn).await,
        None => {
            let health = health(&nodes, json, &conn);
            within(from_now(timeout), &nodes.join(","), "", health).await
        }
    }
}
