//! A change the master makes and answers once a majority holds it (a
//! membership change, a log created or deleted): sent to the master of the
//! nodes given, through a redirect, and again through an election, for as
//! long as the command may wait.

use std::time::Duration;

use crate::client::{connect_master, Client, ClientError, ConnectOptions};
use crate::wire::{AppendError, GroupChangeRequest, LogChangeRequest, MemberChangeRequest};

/// What to ask the master.
#[derive(Debug, Clone)]
pub(super) enum Change {
    /// A member added or removed.
    Members(MemberChangeRequest),
    /// A log created or deleted.
    Logs(LogChangeRequest),
    /// A consumer group's position set, or a group deleted.
    Groups(GroupChangeRequest),
}

impl Change {
    /// Asks `client`; the change's position in the replicated log.
    async fn send(&self, client: &Client) -> Result<u64, ClientError> {
        match self {
            Change::Members(c) => client.change_members(c.clone()).await,
            Change::Logs(c) => client.change_logs(c.clone()).await,
            Change::Groups(c) => client.change_groups(c.clone()).await,
        }
    }
}

/// Sends `change` to the master of `nodes`, waiting through an election or
/// another membership change not yet committed, for up to `wait`.
pub(super) async fn at_master(
    nodes: &[String],
    change: Change,
    conn: &ConnectOptions,
    wait: Duration,
) -> Result<u64, ClientError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let attempt = once(nodes, &change, conn);
        let result = match tokio::time::timeout_at(deadline, attempt).await {
            // Written, not known committed: an append's words would mislead.
            Ok(Err(ClientError::Append(
                AppendError::Uncommitted { .. } | AppendError::ShuttingDown { .. },
            )))
            | Ok(Err(ClientError::Lost { .. }))
            | Err(_) => return Err(ClientError::ChangeUnanswered),
            Ok(result) => result,
        };
        let again = match &result {
            // No master known (an election), or none reached.
            Err(ClientError::Append(AppendError::NotMaster { .. }))
            | Err(ClientError::Unreachable { .. }) => true,
            Err(ClientError::Append(AppendError::BadRequest(why))) => why.contains("under way"),
            _ => false,
        };
        if !again || tokio::time::Instant::now() >= deadline {
            return result;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One try of [`at_master`], following one redirect.
async fn once(
    nodes: &[String],
    change: &Change,
    conn: &ConnectOptions,
) -> Result<u64, ClientError> {
    let mut last = None;
    for addr in nodes {
        let client = match connect_master(addr, conn).await {
            Ok(c) => c,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        match change.send(&client).await {
            Err(ClientError::Append(AppendError::NotMaster { master_addr }))
                if !master_addr.is_empty() =>
            {
                let master = Client::connect_with(&master_addr, conn).await?;
                return change.send(&master).await;
            }
            // A node that knows of no master (a node removed, one in an
            // election): another listed node may.
            Err(e @ ClientError::Append(AppendError::NotMaster { .. }))
            | Err(e @ ClientError::Unreachable { .. }) => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| ClientError::Usage("no node given".into())))
}
