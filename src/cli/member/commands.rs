//! `replog member`: list the cluster's members, add one (it joins as a
//! learner and the master promotes it once it holds everything committed),
//! remove one. A change goes to the master, which answers once the change
//! is on a majority of the new voters; on a cluster with a key the client
//! proves it (`--cluster-key-file`).

use std::path::PathBuf;
use std::time::Duration;

use super::super::change::{at_master, Change};
use crate::client::{connect_master, ClientError, ConnectOptions};
use crate::wire::{HealthReport, MemberChangeRequest, NodeRole};

/// `replog member add ID=HOST:PORT`: prints what was done.
pub async fn add(
    nodes: &[String],
    member: &str,
    conn: &ConnectOptions,
    wait: Duration,
) -> Result<(), ClientError> {
    let Some((id, addr)) = member.split_once('=') else {
        return Err(ClientError::Usage(format!(
            "'{member}' is not ID=HOST:PORT (example: replog member add n4=10.0.0.4:7001)"
        )));
    };
    let change = MemberChangeRequest::Add {
        id: id.trim().to_string(),
        addr: addr.trim().to_string(),
    };
    let seq = at_master(nodes, Change::Members(change), conn, wait).await?;
    println!("added {id} as a learner (configuration entry {seq}): it votes once it holds everything committed");
    Ok(())
}

/// `replog member remove ID`: prints what was done.
pub async fn remove(
    nodes: &[String],
    id: &str,
    conn: &ConnectOptions,
    wait: Duration,
) -> Result<(), ClientError> {
    let change = MemberChangeRequest::Remove { id: id.to_string() };
    let seq = at_master(nodes, Change::Members(change), conn, wait).await?;
    println!("removed {id} (configuration entry {seq})");
    Ok(())
}

/// `conn`, proving the cluster key in `path` if given.
pub fn with_key(
    conn: ConnectOptions,
    path: Option<PathBuf>,
) -> Result<ConnectOptions, ClientError> {
    let cluster_key = match path {
        Some(path) => Some(
            crate::auth::ClusterKeys::load(&path).map_err(|e| ClientError::Usage(e.to_string()))?,
        ),
        None => None,
    };
    Ok(ConnectOptions {
        cluster_key,
        ..conn
    })
}

/// `replog member list`: the members as the master sees them.
pub async fn list(nodes: &[String], json: bool, conn: &ConnectOptions) -> Result<(), ClientError> {
    let report = master_health(nodes, conn).await?;
    let rows: Vec<(String, String, bool, bool, String, u64)> = (report.nodes.iter())
        .map(|n| {
            let voter = n.role != NodeRole::Learner;
            let master = n.role == NodeRole::Master;
            (
                n.id.clone(),
                n.addr.clone(),
                voter,
                master,
                n.status.to_string(),
                n.lag,
            )
        })
        .collect();
    if json {
        let value: Vec<serde_json::Value> = (rows.iter())
            .map(|(id, addr, voter, master, status, lag)| {
                serde_json::json!({"id": id, "addr": addr, "voter": voter, "master": master, "status": status, "lag": lag})
            })
            .collect();
        println!("{}", serde_json::Value::Array(value));
        return Ok(());
    }
    println!(
        "{:<12} {:<24} {:<16} {:<10} LAG",
        "ID", "ADDRESS", "STANDING", "STATUS"
    );
    for (id, addr, voter, master, status, lag) in rows {
        let standing = match (voter, master) {
            (_, true) => "voter (master)",
            (true, false) => "voter",
            (false, false) => "learner",
        };
        println!("{id:<12} {addr:<24} {standing:<16} {status:<10} {lag}");
    }
    Ok(())
}

/// The health report of the master the first node that answers names.
async fn master_health(
    nodes: &[String],
    conn: &ConnectOptions,
) -> Result<HealthReport, ClientError> {
    let mut last = None;
    for addr in nodes {
        match connect_master(addr, conn).await {
            Ok(client) => {
                let report = client.health().await?;
                if report.role == NodeRole::Master {
                    return Ok(report);
                }
                last = Some(ClientError::Usage(format!(
                    "{addr} knows of no master yet (an election may be under way): try again"
                )));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ClientError::Usage("no node given".into())))
}
