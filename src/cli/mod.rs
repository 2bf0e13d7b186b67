//! The `replog` command line: its clap definition (also used for the man
//! page and completions) and what each subcommand does.

use clap::{Parser, Subcommand};

mod append;
mod bench;
mod change;
mod common;
mod get;
mod group;
mod health;
mod list;
mod log;
mod member;
mod verify;

pub use crate::json::{entry_json, health_json, LogRanges};
pub use append::append_one;
pub use common::ConnArgs;
use common::*;
pub use health::health_table;
use member::{member, MemberCommand};

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
    Append(append::AppendArgs),
    /// Print the messages of a node, in order.
    List(list::ListArgs),
    /// Print the message at one sequence number.
    Get(get::GetArgs),
    /// Show the health of a node and, on the master, of every secondary. Exit 0 when every node shown is healthy, 4 when the master is read-only (appends are refused), 7 when appends are taken but some node is not healthy. With --wait, exit 0 as soon as appends are taken.
    Health(health::HealthArgs),
    /// Create, list and delete the cluster's named logs (append, list, get and bench take --log NAME).
    Log {
        #[command(subcommand)]
        command: log::LogCommand,
    },
    /// List, show, set and delete consumer groups' positions (replog list --group GROUP reads from after its group's position and moves it as it prints).
    Group {
        #[command(subcommand)]
        command: group::GroupCommand,
    },
    /// See and change the cluster's members.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Check that every node holds the same log: compares digests of ranges of each node's log and reports the first sequence number where two disagree, or that all agree up to the last entry every node holds. Exit 0 when they agree, 8 when they do not. Given one node, every node of its cluster is checked.
    Verify(verify::VerifyArgs),
    /// Measure appends per second and their latency against a cluster: C connections to the master each keep K appends in flight; prints throughput, latency percentiles (an HDR histogram) and outcomes by kind.
    Bench(bench::BenchArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Append(args) => append::run(args).await,
        Command::List(args) => list::run(args).await,
        Command::Get(args) => get::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Health(args) => health::run(args).await,
        Command::Member { command } => member(command).await,
        Command::Log { command } => log::run(command).await,
        Command::Group { command } => group::run(command).await,
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
