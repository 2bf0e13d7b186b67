//! `replog verify`: whether every node holds the same log.
//!
//! Each node hashes ranges of its own visible log (`Frame::Digest`, answered
//! in `node/clients.rs` with `storage::digest`); nothing but 16-byte digests
//! crosses the network. The verifier asks every node for up to
//! [`MAX_DIGESTS`] ranges covering the entries they all hold, and where two
//! disagree it asks again within that range only, until the ranges are one
//! entry long: a handful of rounds finds the first differing sequence
//! number in a log of millions.

use futures_util::future::try_join_all;

use super::connection::{Client, ConnectOptions};
use super::error::ClientError;
use crate::entry::Seq;
use crate::storage::digest::{MAX_DIGESTS, MAX_DIGEST_ENTRIES};
use crate::wire::NodeRole;

/// What `verify` found.
#[derive(Debug)]
pub struct Verdict {
    /// Each node: id, address and the last sequence number it shows.
    pub nodes: Vec<(String, String, Seq)>,
    /// Every node holds the same entries from `compared_from` to this.
    pub agreed_upto: Seq,
    /// The first sequence number compared: 1, or the latest first entry
    /// any node holds after retention.
    pub compared_from: Seq,
    /// The first sequence number where they differ, and the nodes grouped
    /// by the entry they hold there.
    pub difference: Option<(Seq, Vec<Vec<String>>)>,
}

/// The nodes to compare: those given, or, given one, every node of its
/// cluster as its master reports them.
pub async fn nodes_to_check(
    nodes: &[String],
    conn: &ConnectOptions,
) -> Result<Vec<String>, ClientError> {
    if nodes.len() > 1 {
        return Ok(nodes.to_vec());
    }
    let client = Client::connect_with(&nodes[0], conn).await?;
    let mut report = client.health().await?;
    if report.role.follows() && !report.master_addr.is_empty() {
        report = Client::connect_with(&report.master_addr, conn)
            .await?
            .health()
            .await?;
    }
    if report.role == NodeRole::Master {
        Ok(report.nodes.into_iter().map(|n| n.addr).collect())
    } else {
        Ok(nodes.to_vec())
    }
}

/// Tries at comparing while the nodes' named logs differ or change.
const CATALOG_TRIES: usize = 25;

/// Compares the logs of `clients`, one per node.
///
/// A node hashes the messages of a log it knows deleted, and those a log's
/// own retention trimmed, as stripped entries (compaction may have freed
/// them, or not yet), so nodes are compared only while they know the same
/// named logs and trims: a change not yet on every node is waited for (a
/// few seconds at most).
pub async fn verify(clients: &[Client]) -> Result<Verdict, ClientError> {
    for _ in 0..CATALOG_TRIES {
        let before = named_logs(clients).await;
        if before
            .iter()
            .flatten()
            .any(|l| Some(l) != before[0].as_ref())
        {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        let verdict = compare(clients).await?;
        if named_logs(clients).await == before {
            return Ok(verdict);
        }
    }
    Err(ClientError::Protocol {
        addr: clients.iter().map(|c| c.addr()).collect::<Vec<_>>().join(","),
        what: "the nodes' named logs differ or kept changing (a log created, deleted or trimmed is not yet on every node): run verify again".into(),
    })
}

/// A node's named logs: name, id and the last number trimmed.
type NamedLogs = Vec<(String, u32, u64)>;

/// Each node's named logs (`None` for a node that did not answer).
async fn named_logs(clients: &[Client]) -> Vec<Option<NamedLogs>> {
    let lists =
        futures_util::future::join_all(clients.iter().map(|c| c.list_logs_in_detail())).await;
    (lists.into_iter())
        .map(|l| {
            let logs = l.ok()?;
            Some(
                logs.into_iter()
                    .map(|d| (d.name, d.id, d.trimmed))
                    .collect(),
            )
        })
        .collect()
}

/// Compares the logs of `clients` once.
// The comparison's steps in order (ranges, digests of the common part,
// narrowing a difference down to its first entry), each using the last.
async fn compare(clients: &[Client]) -> Result<Verdict, ClientError> {
    let nodes: Vec<(String, String, Seq)> = clients
        .iter()
        .map(|c| {
            (
                c.welcome().node.clone(),
                c.addr().to_string(),
                c.welcome().stored,
            )
        })
        .collect();
    // Entries beyond the shortest log are not on every node yet (still
    // being replicated), and those before the latest first entry were
    // deleted by retention on some node: neither is compared.
    let common = nodes.iter().map(|n| n.2).min().unwrap_or(0);
    let start = clients.iter().map(|c| c.welcome().first).max().unwrap_or(1);
    let mut from = start.max(1);
    let mut end = common;
    while from <= end {
        let span = (end - from + 1).min(MAX_DIGEST_ENTRIES);
        let step = span.div_ceil(MAX_DIGESTS).max(1);
        let answers = try_join_all(clients.iter().map(|c| c.digests(from, end, step))).await?;
        // Nodes stop at their read budget: compare what all of them hashed.
        let upto = answers.iter().map(|a| a.0).min().unwrap_or(0);
        let same = answers.iter().all(|a| a.0 == upto);
        // Past the end, or no digest for what all say they covered: answers
        // no node that follows the protocol gives (the loop would not end).
        let empty = same && answers.iter().all(|a| a.1.is_empty());
        if upto < from || upto == Seq::MAX || empty {
            return Err(ClientError::Protocol {
                addr: clients.iter().map(|c| c.addr()).collect::<Vec<_>>().join(","),
                what: format!(
                    "a node's log changed while it was being verified (a failover cut it, or retention deleted its start?): nodes covered up to {}; run verify again",
                    answers.iter().map(|a| a.0.to_string()).collect::<Vec<_>>().join(", ")
                ),
            });
        }
        // Whole ranges only, unless every node stopped at the same place.
        let count = if same {
            answers[0].1.len()
        } else {
            ((upto - from + 1) / step) as usize
        };
        if count == 0 {
            // A node stopped inside the first range: ask for smaller ones.
            end = upto;
            continue;
        }
        let mut digests: Vec<&[[u8; 16]]> = Vec::with_capacity(answers.len());
        for (a, c) in answers.iter().zip(clients) {
            digests.push(a.1.get(..count).ok_or_else(|| ClientError::Protocol {
                addr: c.addr().to_string(),
                what: format!("{} digests where {count} cover up to {}", a.1.len(), a.0),
            })?);
        }
        match first_difference(&digests) {
            None => {
                from = if same {
                    upto + 1
                } else {
                    from + count as u64 * step
                };
                if from > end {
                    // A narrowed range that agrees after all (a log
                    // repaired meanwhile): go on to the end.
                    end = common;
                }
            }
            Some((i, groups)) => {
                let at = from + i as u64 * step;
                if step == 1 {
                    let groups = groups
                        .into_iter()
                        .map(|g| g.into_iter().map(|n| nodes[n].0.clone()).collect())
                        .collect();
                    return Ok(Verdict {
                        nodes,
                        agreed_upto: at - 1,
                        compared_from: start,
                        difference: Some((at, groups)),
                    });
                }
                from = at;
                end = (at + step - 1).min(end);
            }
        }
    }
    Ok(Verdict {
        nodes,
        agreed_upto: common,
        compared_from: start,
        difference: None,
    })
}

/// The first index where the nodes' digests differ, and the nodes (by
/// index) grouped by their digest there, largest group first.
pub fn first_difference(digests: &[&[[u8; 16]]]) -> Option<(usize, Vec<Vec<usize>>)> {
    let len = digests.iter().map(|d| d.len()).min()?;
    let i = (0..len).find(|&i| digests.iter().any(|d| d[i] != digests[0][i]))?;
    let mut groups: Vec<([u8; 16], Vec<usize>)> = Vec::new();
    for (node, d) in digests.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == d[i]) {
            Some((_, members)) => members.push(node),
            None => groups.push((d[i], vec![node])),
        }
    }
    groups.sort_by_key(|(_, m)| std::cmp::Reverse(m.len()));
    Some((i, groups.into_iter().map(|(_, m)| m).collect()))
}

/// "n1 and n2 hold one version, n3 another".
pub fn describe_groups(groups: &[Vec<String>]) -> String {
    let names = |g: &[String]| match g {
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        [] => String::new(),
    };
    let mut parts = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let verb = if g.len() == 1 { "holds" } else { "hold" };
        let which = match i {
            0 => "one version",
            1 => "another",
            _ => "yet another",
        };
        parts.push(format!("{} {verb} {which}", names(g)));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_range_groups_the_nodes_by_their_digest() {
        let (a, b) = ([1u8; 16], [2u8; 16]);
        let n1 = [a, a, a];
        let n2 = [a, b, a];
        let n3 = [a, a, b];
        assert_eq!(
            first_difference(&[&n1, &n2, &n3]),
            Some((1, vec![vec![0, 2], vec![1]]))
        );
        assert_eq!(first_difference(&[&n1, &n1]), None);
        assert_eq!(first_difference(&[&n1]), None);
        let g = vec![vec!["n1".to_string(), "n3".into()], vec!["n2".into()]];
        assert_eq!(
            describe_groups(&g),
            "n1 and n3 hold one version, n2 holds another"
        );
    }
}
