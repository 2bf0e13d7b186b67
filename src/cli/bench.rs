//! `replog bench`: runs the load generator (`crate::client::bench`) and prints its
//! report, as text or JSON.

use super::common::*;
use crate::client::ClientError;

/// The arguments of `replog bench` (see [`super::Command::Bench`]).
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Node(s) of the cluster (default 127.0.0.1:7001, or REPLOG_NODE); connections go to its master.
    #[arg(long, env = "REPLOG_NODES")]
    pub(super) node: Option<String>,
    /// What to run.
    #[command(flatten)]
    pub(super) opts: crate::client::bench::BenchOptions,
    /// Print the report as JSON.
    #[arg(long)]
    pub(super) json: bool,
    /// The log to append to (replog log list shows them), or several, comma-separated: connection i appends to the i-th, round the list (create them first with replog log create); default: the log named default.
    #[arg(long, env = "REPLOG_LOG", value_name = "NAME[,NAME...]")]
    pub(super) log: Option<String>,
    /// Token and TLS, for clusters that require them.
    #[command(flatten)]
    pub(super) conn: ConnArgs,
}

/// Runs `replog bench`.
pub(super) async fn run(args: BenchArgs) -> Result<(), ClientError> {
    let BenchArgs {
        node,
        opts,
        json,
        log,
        conn,
    } = args;
    let conn = conn.options()?;
    let logs: Vec<String> = (log.iter())
        .flat_map(|l| l.split(','))
        .map(|l| {
            crate::replication::catalog::check_name(l)
                .map(|()| l.to_string())
                .map_err(|e| ClientError::Usage(format!("--log: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let nodes = node_list(node);
    let report = crate::client::bench::run(&nodes, &opts, !json, (&conn, &logs)).await?;
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
