//! `replog group`: consumer groups' positions, listed, shown, set and
//! deleted; and the commits of `replog list --group`, which reads from
//! after a group's position and moves it as it prints.

use std::time::Duration;

use clap::Subcommand;

use super::change::{at_master, Change};
use super::common::*;
use crate::client::{connect_master, Client, ClientError, ConnectOptions};
use crate::replication::catalog::check_name;
use crate::wire::{AppendError, GroupChangeRequest, GroupStatus, NodeRole};

/// What `replog group` does.
#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List every consumer group's position in each log it reads: the last message it has read, the log's last visible one, and the lag between them; --json prints [{group, log, position, last, lag}]. Asked of the master, which holds every position committed.
    List {
        /// Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the master is asked.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Print a JSON array of {"group", "log", "position", "last", "lag"}.
        #[arg(long)]
        json: bool,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Show one group's positions, as group list does; a group with no position exits 1.
    Show {
        /// The group's name.
        group: String,
        /// Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the master is asked.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Print a JSON array of {"group", "log", "position", "last", "lag"}.
        #[arg(long)]
        json: bool,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Set a group's position in a log: the group has read it up to message SEQ, and its next consumer starts at SEQ+1 (--to 0 reads the log again from its start). SEQ past the log's last message exits 2. Creates the group if it has no position yet (past the nodes' --max-groups: exit 2).
    Set {
        /// The group's name: 1 to 200 ASCII letters, digits, '.', '_' and '-' (not '.' or '..'); any other exits 2.
        group: String,
        /// The log.
        #[command(flatten)]
        log: LogArg,
        /// The number of the last message the group has read.
        #[arg(long, value_name = "SEQ")]
        to: u64,
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
    /// Delete a group, with its positions in every log: a consumer of that name starts again from each log's start. A name with no group exits 1.
    Delete {
        /// The group's name.
        group: String,
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

/// How long a consumer of `list --group` keeps trying to read or commit
/// its group's position (through an election, a restart of the master)
/// before it gives up.
const GROUP_WAIT: Duration = Duration::from_secs(30);

/// Runs `replog group ...`.
pub(super) async fn run(command: GroupCommand) -> Result<(), ClientError> {
    match command {
        GroupCommand::List { node, json, conn } => {
            let client = master(&node_list(node), &conn.options()?, GROUP_WAIT).await?;
            let groups = client.list_groups(None).await?;
            say(table(&groups, json))
        }
        GroupCommand::Show {
            group,
            node,
            json,
            conn,
        } => {
            check_group(&group)?;
            let client = master(&node_list(node), &conn.options()?, GROUP_WAIT).await?;
            let groups = client.list_groups(Some(&group)).await?;
            if groups.is_empty() {
                return Err(ClientError::Append(AppendError::NoSuchGroup { group }));
            }
            say(table(&groups, json))
        }
        GroupCommand::Set {
            group,
            log,
            to,
            node,
            timeout,
            conn,
        } => {
            check_group(&group)?;
            let log_name = log_name(&log)?;
            let set = GroupChangeRequest::Set {
                group: group.clone(),
                log: log_name.clone(),
                number: to,
                expect: None,
            };
            let opts = conn.options()?;
            at_master(&node_list(node), Change::Groups(set), &opts, timeout).await?;
            say(format!(
                "group {group} has read log {log_name} up to {to}: it goes on at {}\n",
                to + 1
            ))
        }
        GroupCommand::Delete {
            group,
            node,
            timeout,
            conn,
        } => {
            check_group(&group)?;
            let delete = GroupChangeRequest::Delete {
                group: group.clone(),
            };
            let opts = conn.options()?;
            at_master(&node_list(node), Change::Groups(delete), &opts, timeout).await?;
            say(format!("deleted group {group}\n"))
        }
    }
}

/// A group name a group can have; a usage error otherwise (nothing sent).
pub(super) fn check_group(group: &str) -> Result<(), ClientError> {
    check_name(group).map_err(|e| ClientError::Usage(format!("group name: {e}")))
}

/// The log's name `--log` gives (checked), `default` if none.
fn log_name(log: &LogArg) -> Result<String, ClientError> {
    let conn = log.on(ConnectOptions::default())?;
    let name = conn.log.as_deref();
    Ok(name
        .unwrap_or(crate::replication::catalog::DEFAULT_NAME)
        .to_string())
}

/// A connection to the master of `nodes`, waiting up to `wait` through an
/// election: positions are read and committed there, where every
/// committed one is.
async fn master(
    nodes: &[String],
    conn: &ConnectOptions,
    wait: Duration,
) -> Result<Client, ClientError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut last = None;
        for addr in nodes {
            match connect_master(addr, conn).await {
                Ok(c) if c.welcome().role == NodeRole::Master => return Ok(c),
                Ok(c) => {
                    last = Some(ClientError::Append(AppendError::NotMaster {
                        master_addr: c.welcome().master_addr.clone(),
                    }))
                }
                Err(e @ (ClientError::Unreachable { .. } | ClientError::Lost { .. })) => {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(last.expect("at least one node"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The groups' positions as a table or a JSON array.
fn table(groups: &[GroupStatus], json: bool) -> String {
    let lag = |g: &GroupStatus| g.last.saturating_sub(g.position);
    if json {
        let rows: Vec<serde_json::Value> = (groups.iter())
            .map(|g| {
                serde_json::json!({"group": g.group, "log": g.log, "position": g.position, "last": g.last, "lag": lag(g)})
            })
            .collect();
        return format!("{}\n", serde_json::Value::Array(rows));
    }
    let gw = groups
        .iter()
        .map(|g| g.group.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let lw = groups.iter().map(|g| g.log.len()).max().unwrap_or(3).max(3);
    let mut text = format!(
        "{:gw$}  {:lw$}  {:>10}  {:>10}  {:>10}\n",
        "GROUP", "LOG", "POSITION", "LAST", "LAG"
    );
    for g in groups {
        text.push_str(&format!(
            "{:gw$}  {:lw$}  {:>10}  {:>10}  {:>10}\n",
            g.group,
            g.log,
            g.position,
            g.last,
            lag(g)
        ));
    }
    text
}

/// A group's position in one log, read and moved by a consumer
/// (`list --group`), and the messages it reads, all on one connection to
/// the master (which holds every committed position and message), kept
/// from request to request and found again through an election.
pub(super) struct Consumer {
    nodes: Vec<String>,
    /// With the log: the connection reads it.
    conn: ConnectOptions,
    group: String,
    log: String,
    /// How long to wait for a master before giving up; `None`: as long as
    /// it takes (`--follow`).
    wait: Option<Duration>,
    master: Option<Client>,
    /// The position this consumer read or last committed: a commit is
    /// made only from it, so that a move it did not make (another
    /// consumer, `group set`, `group delete`) stops it rather than being
    /// undone. `None` until it is known.
    position: Option<u64>,
}

impl Consumer {
    /// The consumer of `group` in the log `conn` names; `follow`: it waits
    /// for a master as long as it takes.
    pub(super) fn new(
        nodes: &[String],
        conn: &ConnectOptions,
        group: String,
        follow: bool,
    ) -> Self {
        let log = (conn.log.as_deref()).unwrap_or(crate::replication::catalog::DEFAULT_NAME);
        Consumer {
            nodes: nodes.to_vec(),
            conn: conn.clone(),
            log: log.to_string(),
            group,
            wait: (!follow).then_some(GROUP_WAIT),
            master: None,
            position: None,
        }
    }

    /// The group's position in the log: the last message it has read. A
    /// group with none yet is given one (0) before anything is read, so
    /// that one the cluster cannot keep (`--max-groups`) is refused before
    /// a message is printed.
    pub(super) async fn start(&mut self) -> Result<u64, ClientError> {
        let (group, log) = (self.group.clone(), self.log.clone());
        let groups = self
            .retry(|c| {
                let group = group.clone();
                async move { c.list_groups(Some(&group)).await }
            })
            .await?;
        match groups.iter().find(|g| g.log == log) {
            Some(g) => {
                self.position = Some(g.position);
                Ok(g.position)
            }
            None => self.commit(0).await.map(|()| 0),
        }
    }

    /// The connection to the master, to read the log from.
    pub(super) async fn reader(&mut self) -> Result<Client, ClientError> {
        self.retry(|c| async move { Ok(c) }).await
    }

    /// Moves the group's position to `number` (messages up to it are
    /// printed), once a majority holds it. Setting a position is the same
    /// whether done once or twice, so a commit whose answer was lost is
    /// sent again.
    pub(super) async fn commit(&mut self, number: u64) -> Result<(), ClientError> {
        let set = GroupChangeRequest::Set {
            group: self.group.clone(),
            log: self.log.clone(),
            number,
            expect: self.position,
        };
        self.retry(|c| {
            let set = set.clone();
            async move { c.change_groups(set).await }
        })
        .await?;
        self.position = Some(number);
        Ok(())
    }

    /// Does `request` on the master, again on a new connection (through an
    /// election) while the master is not known or did not answer, for up
    /// to the consumer's wait.
    async fn retry<T, F>(&mut self, request: impl Fn(Client) -> F) -> Result<T, ClientError>
    where
        F: std::future::Future<Output = Result<T, ClientError>>,
    {
        let started = tokio::time::Instant::now();
        let mut said = false;
        loop {
            let client = match self.master.take() {
                Some(c) if !c.is_closed() => Ok(c),
                _ => master(&self.nodes, &self.conn, GROUP_WAIT).await,
            };
            let result = match client {
                Ok(client) => {
                    let result = request(client.clone()).await;
                    if !again(&result) {
                        self.master = Some(client);
                        return result;
                    }
                    result
                }
                Err(e) => Err(e),
            };
            if self.wait.is_some_and(|w| started.elapsed() >= w) {
                return result;
            }
            if !said && self.wait.is_none() {
                if let Err(e) = &result {
                    eprintln!(
                        "replog: {e}; waiting for a master to go on as group {}",
                        self.group
                    );
                }
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether a consumer's request failed for want of a master that answers:
/// then it is made again (through an election).
fn again<T>(result: &Result<T, ClientError>) -> bool {
    matches!(
        result,
        Err(ClientError::Append(
            AppendError::NotMaster { .. }
                | AppendError::ShuttingDown { .. }
                | AppendError::Uncommitted { .. }
                | AppendError::Storage(_)
                | AppendError::Refused { .. }
        ) | ClientError::Lost { .. }
            | ClientError::Unreachable { .. }
            | ClientError::NoAnswer { .. })
    )
}

/// Prints `text` on standard output.
fn say(text: String) -> Result<(), ClientError> {
    emit(&mut std::io::stdout().lock(), text, || {
        "the change was made".into()
    })
    .map(|_| ())
}
