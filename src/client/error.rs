//! What can go wrong for a client: one error type, each variant with its
//! CLI exit code and, for an append, the kind `--json` names and whether the
//! outcome is settled.

use crate::wire::AppendError;

/// Everything that can go wrong for a client, each with its CLI exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing was sent: the node could not be reached.
    #[error("cannot reach {addr}: {reason}; check that replogd runs there and that --node (or REPLOG_NODE) is right")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The connection broke while a request was in flight: it may or may
    /// not have been carried out.
    #[error("the connection to {addr} broke before an answer came; the append may or may not have been stored: retry with the same --key (a listing cannot tell: an entry not yet on a majority may still be cut)")]
    Lost {
        /// The node.
        addr: String,
    },
    /// `--timeout` passed with the append sent and no answer: it may or
    /// may not have been stored.
    #[error("{addr} did not answer within --timeout; the append may or may not have been stored: retry with --key {key} (a listing cannot tell: an entry not yet on a majority may still be cut)")]
    NoAnswer {
        /// The node.
        addr: String,
        /// The request key to retry with.
        key: String,
    },
    /// A membership change sent, and no answer within `--timeout`: it may
    /// or may not be made.
    #[error("the membership change may or may not be made: no answer came within --timeout, or the master stepped down before it was committed (a master cut off cannot commit it, and a new master may not hold it); see replog member list, and ask again if need be")]
    ChangeUnanswered,
    /// The node refused the hello.
    #[error("{addr} refused the connection: {reason}")]
    Refused {
        /// The node.
        addr: String,
        /// Its reason.
        reason: String,
    },
    /// The append was answered with an error.
    #[error("{}", describe(.0))]
    Append(AppendError),
    /// The node could not read a request on this connection (this library
    /// never sends one it should refuse) and closed it. Requests in flight
    /// may or may not have been carried out.
    #[error("{addr} closed the connection: {reason}; requests in flight may or may not have been stored: retry with the same --key (a listing cannot tell: an entry not yet on a majority may still be cut)")]
    Rejected {
        /// The node.
        addr: String,
        /// Its reason.
        reason: String,
    },
    /// `--node` is not `HOST:PORT`.
    #[error("'{addr}' is not an address: give HOST:PORT, for example 127.0.0.1:7001")]
    BadAddress {
        /// What was given.
        addr: String,
    },
    /// The answer could not be written to standard output.
    #[error("{what}, but writing it to standard output failed: {source}")]
    Output {
        /// What had happened (for an append: that it was stored, and as what).
        what: String,
        /// The write error.
        source: std::io::Error,
    },
    /// An append whose outcome is not settled (it may or may not be, or
    /// stay, in the log), with the key to retry it with.
    #[error("{source} (--key {key})")]
    Unsettled {
        /// What happened.
        source: Box<ClientError>,
        /// The request key to retry with.
        key: String,
    },
    /// One line of `append -` failed.
    #[error("line {line}: {source}")]
    Line {
        /// Line number, from 1.
        line: u64,
        /// What went wrong with it.
        source: Box<ClientError>,
    },
    /// Reading standard input failed part way (`append -`).
    #[error("reading standard input failed after {appended} message(s) had been appended (their sequence numbers are printed above): {source}; nothing after that point was read or appended")]
    Input {
        /// Messages appended (and printed) before the failure.
        appended: u64,
        /// The read error.
        source: std::io::Error,
    },
    /// `health`: the cluster takes appends, but these nodes are not
    /// healthy (each with its status).
    #[error("the cluster takes appends, but not every node is healthy: {}; check those nodes", .nodes.join(", "))]
    Degraded {
        /// "ID is STATUS" for each node that is not healthy.
        nodes: Vec<String>,
    },
    /// `get`: there is no message at that sequence number (yet).
    #[error("{what}")]
    NotFound {
        /// What was asked, and why there is nothing.
        what: String,
    },
    /// `health` on a node that knows of no master.
    #[error("node {node} knows of no master: an election may be under way, or no majority of the nodes is up; appends wait or are refused until one is elected")]
    NoMaster {
        /// The node asked.
        node: String,
    },
    /// `health --wait` gave up: the cluster still cannot take appends.
    #[error("the cluster cannot take appends yet: {reachable} node(s) reachable and {needed} needed for a quorum{}; start the missing nodes or check their logs", if *.read_only_disk { ", and the master's disk has failed" } else { "" })]
    NotReady {
        /// Nodes the master reaches, itself included.
        reachable: u32,
        /// Nodes needed.
        needed: u32,
        /// The master reports its own storage as failed.
        read_only_disk: bool,
    },
    /// The node refused this client's token, or wants one (definite:
    /// nothing was done).
    #[error("{addr} refused this client: {reason}")]
    Unauthorized {
        /// The node.
        addr: String,
        /// Its reason, naming the flag to fix.
        reason: String,
    },
    /// Ctrl-C while an append waited for its write concern.
    #[error("{}", match .seq {
        Some(seq) => format!("interrupted: the message is in the master's log as sequence number {seq}, but its write concern was not confirmed, and unless it is on a majority a failover may still cut it: it may or may not be kept; retry with --key {key} and the same message, which waits for this entry if it is kept and appends the message again if it was cut"),
        None => format!("interrupted before the master said it stored the message: it may or may not be stored; retry with --key {key} and the same message"),
    })]
    Interrupted {
        /// Its sequence number, if the master had said.
        seq: Option<u64>,
        /// The key to retry with.
        key: String,
    },
    /// `verify`: two nodes hold different entries at `seq`.
    #[error("the nodes disagree at sequence number {seq}: {groups}; everything before it agrees. Keep the majority's copy: stop the odd node, move its data directory aside and restart it to resync from the master")]
    Diverged {
        /// The first sequence number where logs differ.
        seq: u64,
        /// Which nodes hold which version, e.g. "n1 and n2 hold one entry, n3 another".
        groups: String,
    },
    /// The command line is inconsistent in a way clap cannot see.
    #[error("{0}")]
    Usage(String),
    /// The node answered something that makes no sense.
    #[error("protocol error talking to {addr}: {what}")]
    Protocol {
        /// The node.
        addr: String,
        /// What was wrong.
        what: String,
    },
}

fn describe(e: &AppendError) -> String {
    match e {
        AppendError::BadRequest(why) => format!("bad request: {why}; nothing was appended"),
        AppendError::TimedOut { seq, stored_on } => format!(
            "timed out: the message is stored as sequence number {seq} where no failover can cut it (on a majority, or by a master that is master for good, --failover off; {stored_on} node(s) had stored it), and will still be replicated to the others; do not append it again"
        ),
        AppendError::Uncommitted {
            seq,
            stored_on,
            timed_out,
        } => format!(
            "{}: the message is in the master's log as sequence number {seq} and {stored_on} node(s) had stored it, but it was not yet known to be on a majority, so a failover may still cut it; it may or may not be kept: retry with the same --key and message, which waits for this entry if it is kept and appends the message again if it was cut",
            if *timed_out { "timed out" } else { "the master is shutting down or stepped down (a failover)" }
        ),
        AppendError::Refused { reachable, needed } => format!(
            "refused: only {reachable} of the cluster's nodes are reachable and {needed} are needed for a quorum, so the master is read-only and nothing was appended; bring a secondary back and retry"
        ),
        AppendError::NotMaster { master_addr } if master_addr.is_empty() => {
            "this node is not the master and knows of none yet (an election may be under way); nothing was appended: retry, or give every node's address (--node A,B,C) to have the master found and waited for".into()
        }
        AppendError::NotMaster { master_addr } => format!(
            "this node is not the master (the master is {master_addr}); send appends there with --node {master_addr}"
        ),
        AppendError::Storage(why) => format!(
            "the master could not store the message ({why}); nothing was appended. A full disk recovers by itself once there is room (retry then); any other failure needs the disk fixed and the node restarted"
        ),
        AppendError::ShuttingDown { seq: Some(seq) } => format!(
            "the master is shutting down or stepped down (a failover) before the write concern was confirmed; the message is stored as sequence number {seq} where no failover can cut it (on a majority, or by a master that is master for good, --failover off), and will still be replicated; do not append it again"
        ),
        AppendError::Unauthorized(why) => format!("unauthorized: {why}"),
        AppendError::Deleted { seq, stored_on } => format!(
            "stored as sequence number {seq} on {stored_on} node(s), a majority (it survives any failover), but retention deleted it from the master's log before it reached the write concern, which it never will now; do not append it again"
        ),
        AppendError::KeyReused { seq } => format!(
            "this request key was already used for another message, now at sequence number {seq}; nothing was appended: give each message its own key (a retry must send the same message)"
        ),
        AppendError::ShuttingDown { seq: None } => {
            "the master is shutting down or stepped down (a failover); the message may or may not have been stored: retry with the same --key".into()
        }
        AppendError::NoSuchLog { log } => format!(
            "there is no log named {log}; nothing was done: create it with replog log create {log} (replog log list shows the logs)"
        ),
        AppendError::LogExists { log } => {
            format!("a log named {log} exists already; nothing was created")
        }
        AppendError::NoSuchGroup { group } => format!(
            "no consumer group named {group} has a position; nothing was done (replog group list shows the groups)"
        ),
    }
}

impl ClientError {
    /// The exit code of SPEC section 3.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Append(AppendError::BadRequest(_))
            | ClientError::Append(AppendError::KeyReused { .. })
            | ClientError::BadAddress { .. }
            | ClientError::Usage(_) => 2,
            ClientError::Line { source, .. } | ClientError::Unsettled { source, .. } => {
                source.exit_code()
            }
            // On a majority with a known sequence number, short of `w`.
            ClientError::Append(AppendError::TimedOut { .. }) => 3,
            ClientError::Append(AppendError::ShuttingDown { seq: Some(_) }) => 3,
            ClientError::Append(AppendError::Deleted { .. }) => 3,
            ClientError::Append(AppendError::Refused { .. })
            | ClientError::NotReady { .. }
            | ClientError::NoMaster { .. } => 4,
            // No master known (an election): definite, nothing appended.
            ClientError::Append(AppendError::NotMaster { master_addr })
                if master_addr.is_empty() =>
            {
                4
            }
            ClientError::Unauthorized { .. }
            | ClientError::Append(AppendError::Unauthorized(_)) => 6,
            ClientError::Unreachable { .. }
            | ClientError::Lost { .. }
            | ClientError::NoAnswer { .. }
            | ClientError::ChangeUnanswered
            | ClientError::Rejected { .. } => 5,
            // May or may not be (or stay) in the log: retry with the key.
            ClientError::Append(
                AppendError::ShuttingDown { seq: None } | AppendError::Uncommitted { .. },
            ) => 5,
            ClientError::Degraded { .. } => 7,
            // Definite, nothing done; as `get` of a message that is not.
            ClientError::Append(
                AppendError::NoSuchLog { .. }
                | AppendError::LogExists { .. }
                | AppendError::NoSuchGroup { .. },
            ) => 1,
            ClientError::Diverged { .. } => 8,
            // As a shell reports a command ended by SIGINT.
            ClientError::Interrupted { .. } => 130,
            _ => 1,
        }
    }

    /// A failed append's kind, as `append --json` and `bench` name it.
    pub fn kind(&self) -> &'static str {
        self.facts().0
    }

    /// A failed append's kind, whether it is definite (settled either way:
    /// not appended, or on a majority), and its sequence number if it is
    /// known to be in the master's log.
    pub fn facts(&self) -> (&'static str, bool, Option<u64>) {
        match self {
            ClientError::Line { source, .. } | ClientError::Unsettled { source, .. } => {
                source.facts()
            }
            ClientError::Append(AppendError::BadRequest(_)) => ("bad_request", true, None),
            ClientError::Append(AppendError::KeyReused { .. }) => ("key_reused", true, None),
            // On a majority: settled, it survives any failover.
            ClientError::Append(AppendError::Deleted { seq, .. }) => ("deleted", true, Some(*seq)),
            ClientError::Append(AppendError::TimedOut { seq, .. }) => {
                ("timed_out", true, Some(*seq))
            }
            ClientError::Append(AppendError::Uncommitted { seq, .. }) => {
                ("uncommitted", false, Some(*seq))
            }
            ClientError::Append(AppendError::Refused { .. }) => ("refused", true, None),
            ClientError::Append(AppendError::NotMaster { .. }) => ("no_master", true, None),
            ClientError::Append(AppendError::Storage(_)) => ("storage", true, None),
            ClientError::Append(AppendError::NoSuchLog { .. }) => ("no_such_log", true, None),
            ClientError::Append(AppendError::LogExists { .. }) => ("log_exists", true, None),
            ClientError::Append(AppendError::NoSuchGroup { .. }) => ("no_such_group", true, None),
            ClientError::Append(AppendError::ShuttingDown { seq }) => {
                ("shutting_down", seq.is_some(), *seq)
            }
            ClientError::Append(AppendError::Unauthorized(_))
            | ClientError::Unauthorized { .. } => ("unauthorized", true, None),
            // Nothing was sent.
            ClientError::Unreachable { .. } | ClientError::Refused { .. } => {
                ("unreachable", true, None)
            }
            ClientError::BadAddress { .. } | ClientError::Usage(_) => ("usage", true, None),
            ClientError::Lost { .. }
            | ClientError::NoAnswer { .. }
            | ClientError::Rejected { .. } => ("unknown_outcome", false, None),
            ClientError::Interrupted { seq, .. } => ("interrupted", false, *seq),
            _ => ("other", false, None),
        }
    }
}
