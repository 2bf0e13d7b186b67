//! `replog member`: its subcommands, dispatched to `list`, `add` and
//! `remove` (`commands`).

use std::time::Duration;

use clap::Subcommand;

use crate::client::ClientError;

use super::common::*;
use commands::{add, list, remove, with_key};

mod commands;

/// Runs `replog member ...`.
pub(super) async fn member(command: MemberCommand) -> Result<(), ClientError> {
    match command {
        MemberCommand::List { node, json, conn } => {
            list(&node_list(node), json, &conn.options()?).await
        }
        MemberCommand::Add {
            member,
            node,
            cluster_key_file,
            timeout,
            conn,
        } => {
            let conn = with_key(conn.options()?, cluster_key_file)?;
            add(&node_list(node), &member, &conn, timeout).await
        }
        MemberCommand::Remove {
            id,
            node,
            cluster_key_file,
            timeout,
            conn,
        } => {
            let conn = with_key(conn.options()?, cluster_key_file)?;
            remove(&node_list(node), &id, &conn, timeout).await
        }
    }
}

/// What `replog member` does.
#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// List the members as the master sees them: id, address, whether it votes ("learner": a member not yet promoted, or a voter back with an empty or healed disk that does not vote yet), status and how far behind it is; --json prints [{id, addr, voter, master, status, lag}].
    List {
        /// Node(s) to ask, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the master they name is asked.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Print a JSON array of {"id", "addr", "voter", "master", "status", "lag"}.
        #[arg(long)]
        json: bool,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Add node ID, listening at HOST:PORT for other nodes: it joins as a learner, receives the log, and votes once the master promotes it (when it holds everything committed). Start the node with replogd --join first.
    Add {
        /// ID=HOST:PORT of the node to add.
        member: String,
        /// Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// The cluster key, for a cluster started with --cluster-key-file: a change needs it.
        #[arg(long, env = "REPLOG_CLUSTER_KEY_FILE", value_name = "PATH")]
        cluster_key_file: Option<std::path::PathBuf>,
        /// How long to wait for a master (through an election), for a change under way to be committed before this one is taken, and for this one's answer; past it: exit 4 (no master), 2 (still under way) or 5 (sent, may or may not be made).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
        timeout: Duration,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Remove node ID: it stops counting at once, and stops taking part. The master may remove itself: it steps down once the change is committed.
    Remove {
        /// Id of the node to remove.
        id: String,
        /// Node(s) of the cluster, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE); the change goes to the master.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// The cluster key, for a cluster started with --cluster-key-file: a change needs it.
        #[arg(long, env = "REPLOG_CLUSTER_KEY_FILE", value_name = "PATH")]
        cluster_key_file: Option<std::path::PathBuf>,
        /// How long to wait for a master (through an election), for a change under way to be committed before this one is taken, and for this one's answer; past it: exit 4 (no master), 2 (still under way) or 5 (sent, may or may not be made).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
        timeout: Duration,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
}
