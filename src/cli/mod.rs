//! The `replog` command line: its clap definition (also used for the man
//! page and completions) and what each subcommand does.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::client::{AppendOptions, ClientError};
use crate::wire::WriteConcern;

mod append;
mod common;
mod get;
mod health;
mod list;
mod member;
mod verify;

pub use append::append_one;
use append::{append_printed, append_stdin};
use common::*;
pub use common::{entry_json, ConnArgs};
use get::get;
use health::{health, health_wait};
pub use health::{health_json, health_table, LogRanges};
use list::{list, Listing};
use member::{member, MemberCommand};
use verify::verify;

/// The replog client: append to, read from and check a replog cluster.
#[derive(Debug, Parser)]
#[command(
    name = "replog",
    version,
    after_help = "Exit codes: 0 ok, 1 other error, 2 bad request (not appended), 3 timed out (where no failover can cut it: still replicating), 4 refused: no quorum (not appended), 5 unknown outcome (may or may not be appended or kept: retry with the key printed), 6 unauthorized: a token is missing or wrong (not appended), 7 degraded (health), 8 diverged (verify), 130 interrupted (Ctrl-C while an append waited)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Append a message (or, with "-", one message per line of standard input).
    Append {
        /// Node(s) to send to, comma-separated (default 127.0.0.1:7001, or REPLOG_NODE). A secondary redirects to the master; with several nodes the master is found, followed through failovers, and an append whose outcome is unknown is retried with the same key.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Write concern: voting nodes (master included) that must store the message: a number, "majority" or "all". Only an append acknowledged with a majority (or more) is never lost when a new master is elected; one acknowledged by fewer nodes may be.
        #[arg(short = 'w', long = "write-concern", default_value = "1")]
        w: WriteConcern,
        /// Stop waiting after this long (e.g. 500ms, 5s), counted from the start (connecting included). A message the master took stays in its log: exit 3 if no failover can cut it (it is on a majority, or --failover off and the master stored it), 5 if not yet (a failover may still cut it: retry with the key printed).
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        /// Request key: an append retried with the same key (and message) returns the original sequence number while its entry is in the log (within --dedup-window); one a failover cut is appended again.
        #[arg(long)]
        key: Option<String>,
        /// With "-": messages are separated by NUL bytes instead of newlines, so a message may contain newlines.
        #[arg(short = '0', long = "null-data")]
        null_data: bool,
        /// Print one JSON object per message instead of sequence numbers: {"key": K, "seq": N} when appended, or {"definite": B, "error": KIND, "key": K, "reason": "...", "seq": N or null} when not, where definite is true when the outcome is settled (nothing was appended, or the message is on a majority at seq and survives any failover) and false when it may or may not be kept: retry with key K (the exit code is as without --json).
        #[arg(long)]
        json: bool,
        /// The message (stored byte for byte), or "-" to read one message per line of standard input.
        message: OsString,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print the messages of a node, in order.
    List {
        /// Node to read from (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// First sequence number to print.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last sequence number to print.
        #[arg(long)]
        to: Option<u64>,
        /// Print at most this many messages.
        #[arg(long)]
        max: Option<u64>,
        /// Print a JSON array of {"message": "...", "seq": N} (with --follow, one such object per line); a message that is not UTF-8 comes as "message_base64".
        #[arg(long)]
        json: bool,
        /// Keep printing messages as they become visible, like tail -f; if the node goes away, reconnect (to it or another listed node) and resume after the last message printed.
        #[arg(long)]
        follow: bool,
        /// Only messages known to be stored on a majority of nodes: these are never lost by a failover (a plain list shows everything the node holds, which after a failover may lose messages acknowledged with w below a majority). A secondary learns the mark with the master's next heartbeat.
        #[arg(long)]
        committed: bool,
        /// Give up (exit 5) if the listing has not finished after this long, connecting included.
        #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "follow")]
        timeout: Option<Duration>,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print the message at one sequence number.
    Get {
        /// Node to read from (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// The sequence number.
        seq: u64,
        /// Print {"message": "...", "seq": N} ("message_base64" when not UTF-8).
        #[arg(long)]
        json: bool,
        /// Only if the message is known to be on a majority of nodes.
        #[arg(long)]
        committed: bool,
        /// Give up (exit 5) if the node has not answered after this long, connecting included.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Show the health of a node and, on the master, of every secondary. Exit 0 when every node shown is healthy, 4 when the master is read-only (appends are refused), 7 when appends are taken but some node is not healthy. With --wait, exit 0 as soon as appends are taken.
    Health {
        /// Node to ask (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Wait until the cluster can take appends (a master with a quorum), then print; give up after DUR if given (exit 4).
        #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration, num_args = 0..=1, default_missing_value = "1000y")]
        wait: Option<Duration>,
        /// Give up (exit 5) if the node has not answered after this long, connecting included.
        #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "wait")]
        timeout: Option<Duration>,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// See and change the cluster's members.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Check that every node holds the same log: compares digests of ranges of each node's log and reports the first sequence number where two disagree, or that all agree up to the last entry every node holds. Exit 0 when they agree, 8 when they do not. Given one node, every node of its cluster is checked.
    Verify {
        /// The nodes to compare (comma-separated), or one node of the cluster (default 127.0.0.1:7001, or REPLOG_NODE).
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// Print {"agree": B, "agreed_upto": N, "compared_from": N, "first_difference": N or null, "groups": [[ID...]...], "nodes": [{"id","addr","last"}...]}.
        #[arg(long)]
        json: bool,
        /// Give up (exit 5) if the nodes have not answered after this long, connecting included.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Measure appends per second and their latency against a cluster: C connections to the master each keep K appends in flight; prints throughput, latency percentiles (an HDR histogram) and outcomes by kind.
    Bench {
        /// Node(s) of the cluster (default 127.0.0.1:7001, or REPLOG_NODE); connections go to its master.
        #[arg(long, env = "REPLOG_NODES")]
        node: Option<String>,
        /// What to run.
        #[command(flatten)]
        opts: crate::bench::BenchOptions,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Token and TLS, for clusters that require them.
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Append {
            node,
            w,
            timeout,
            key,
            null_data,
            json,
            message,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let node = node_list(node);
                let opts = AppendOptions {
                    w,
                    key,
                    timeout,
                    progress: None,
                };
                let message = message.as_bytes();
                if message == b"-" {
                    let separator = if null_data { b'\0' } else { b'\n' };
                    append_stdin(&node, opts, (separator, json), &conn).await
                } else if null_data {
                    Err(ClientError::Usage(
                        "--null-data (-0) applies to messages read from standard input: give \"-\" as the message".into(),
                    ))
                } else {
                    append_printed(&node, message, &opts, &conn, json).await
                }
            }
        },
        Command::List {
            node,
            from,
            to,
            max,
            json,
            follow,
            committed,
            timeout,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let nodes = node_list(node);
                let listing = Listing {
                    from,
                    to,
                    max,
                    json,
                    follow,
                    committed,
                };
                within(
                    from_now(timeout),
                    &nodes.join(","),
                    "",
                    list(&nodes, listing, &conn),
                )
                .await
            }
        },
        Command::Get {
            node,
            seq,
            json,
            committed,
            timeout,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let nodes = node_list(node);
                let get = get(&nodes, seq, (json, committed), &conn);
                within(from_now(timeout), &nodes.join(","), "", get).await
            }
        },
        Command::Bench {
            node,
            opts,
            json,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let nodes = node_list(node);
                match crate::bench::run(&nodes, &opts, !json, &conn).await {
                    Err(e) => Err(e),
                    Ok(report) => {
                        let text = if json {
                            format!("{}\n", serde_json::to_string(&report).expect("plain data"))
                        } else {
                            report.text(&opts)
                        };
                        emit(&mut std::io::stdout().lock(), text, || {
                            "the benchmark ran".into()
                        })
                        .map(|_| ())
                    }
                }
            }
        },
        Command::Verify {
            node,
            json,
            timeout,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let nodes = node_list(node);
                let run = verify(&nodes, json, &conn);
                within(from_now(timeout), &nodes.join(","), "", run).await
            }
        },
        Command::Health {
            node,
            json,
            wait,
            timeout,
            conn,
        } => match conn.options() {
            Err(e) => Err(e),
            Ok(conn) => {
                let nodes = node_list(node);
                match wait {
                    Some(limit) => health_wait(&nodes, json, limit, &conn).await,
                    None => {
                        let health = health(&nodes, json, &conn);
                        within(from_now(timeout), &nodes.join(","), "", health).await
                    }
                }
            }
        },
        Command::Member { command } => member(command).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "replog", &mut script);
            emit(&mut std::io::stdout().lock(), &script, || {
                "the completion script was generated".into()
            })
            .map(|_| ())
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("replog: {e}");
            e.exit_code()
        }
    }
}
