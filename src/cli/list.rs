//! `replog list`: a range of the log, or `--follow` its new entries.

use std::time::Duration;

use crate::client::{ClientError, ConnectOptions};
use crate::json::entry_json;
use crate::wire::AppendError;

use super::common::*;
use super::group::Consumer;

/// What `list` prints: the range, and how.
#[derive(Debug, Clone)]
pub(super) struct Listing {
    pub(super) from: u64,
    /// Last sequence number to print, if bounded.
    pub(super) to: Option<u64>,
    /// Most messages to print.
    pub(super) max: Option<u64>,
    pub(super) json: bool,
    pub(super) follow: bool,
    pub(super) committed: bool,
    /// The consumer group to read as: from after its position, moved as
    /// pages are printed.
    pub(super) group: Option<String>,
}

/// How long `list --follow` waits before reconnecting after losing its
/// node (it then resumes after the last message it printed).
pub(super) const FOLLOW_RECONNECT: Duration = Duration::from_millis(500);

pub(super) async fn list(
    nodes: &[String],
    l: Listing,
    conn: &ConnectOptions,
) -> Result<(), ClientError> {
    // A group reads what is committed only, on the master: what it has
    // read never goes, and its position is never ahead of what it reads.
    let mut consumer = (l.group.clone()).map(|g| Consumer::new(nodes, conn, g, l.follow));
    let (from, mut client) = match &mut consumer {
        Some(c) => (c.start().await? + 1, c.reader().await?),
        None => (l.from.max(1), connect_any(nodes, conn).await?),
    };
    let committed = l.committed || consumer.is_some();
    let mut stdout = std::io::stdout().lock();
    let mut next = from;
    // Numbers have no gaps: a page that starts later than the number asked
    // for starts where retention left the log (before the first page, or
    // while following, behind a reader that fell behind it).
    let mut first_page = true;
    let mut printed = 0u64;
    let budget = |printed: u64| l.max.map_or(u64::MAX, |m| m.saturating_sub(printed));
    // A JSON array unless following or committing pages as they are
    // printed (then one object per line, NDJSON).
    let array = l.json && !l.follow && consumer.is_none();
    let mut items: Vec<serde_json::Value> = Vec::new();
    // The last message of the page a group printed, not yet committed.
    let mut uncommitted: Option<u64> = None;
    loop {
        if budget(printed) == 0 || l.to.is_some_and(|to| next > to) {
            break;
        }
        let page_max = budget(printed).min(1000) as u32;
        let fetch = client.list_entries(next, page_max, l.follow, committed);
        // A group's printed page is committed while the next is fetched,
        // and before the next is printed: at most one page printed is ever
        // not committed.
        let fetched = match (&mut consumer, uncommitted.take()) {
            (Some(c), Some(last)) => {
                // A refused commit stops the consumer at once, whatever
                // the fetch still waits for; otherwise both end.
                let commit = c.commit(last);
                tokio::pin!(fetch, commit);
                tokio::select! {
                    committed = &mut commit => {
                        committed?;
                        fetch.await
                    }
                    fetched = &mut fetch => {
                        commit.await?;
                        fetched
                    }
                }
            }
            _ => fetch.await,
        };
        let (entries, _) = match fetched {
            Ok(page) => page,
            // Following: the node restarted or went away; come back to it
            // (or another listed node) and go on after the last message.
            // A log deleted is gone for good.
            Err(e)
                if l.follow && !matches!(e, ClientError::Append(AppendError::NoSuchLog { .. })) =>
            {
                eprintln!(
                    "replog: {e}; reconnecting to resume after sequence number {}",
                    next - 1
                );
                if let Some(c) = &mut consumer {
                    client = c.reader().await?;
                    continue;
                }
                loop {
                    tokio::time::sleep(FOLLOW_RECONNECT).await;
                    if let Ok(c) = connect_any(nodes, conn).await {
                        client = c;
                        break;
                    }
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        match entries.first() {
            Some((first, _)) if *first > next && first_page => eprintln!(
                "replog: messages before sequence number {first} were deleted by retention on {} (the log's own, or the node's --retention-bytes, --retention-age); listing from {first}",
                client.addr()
            ),
            Some((first, _)) if *first > next => eprintln!(
                "replog: messages {next} to {} were deleted by retention on {} before they were read (the log's own, or the node's --retention-bytes, --retention-age); going on from {first}",
                first - 1,
                client.addr()
            ),
            _ => {}
        }
        first_page &= entries.is_empty();
        if entries.is_empty() && !l.follow {
            break;
        }
        // One flush per page, not per line.
        let mut page = Vec::new();
        let mut last = None;
        for (seq, message) in entries {
            if l.to.is_some_and(|to| seq > to) || budget(printed) == 0 {
                next = u64::MAX;
                break;
            }
            next = seq + 1;
            last = Some(seq);
            printed += 1;
            if array {
                items.push(entry_json(seq, &message));
            } else if l.json {
                page.extend_from_slice(entry_json(seq, &message).to_string().as_bytes());
                page.push(b'\n');
            } else {
                page.extend_from_slice(&message);
                page.push(b'\n');
            }
        }
        if !page.is_empty() && !emit(&mut stdout, &page, || "the messages were read".into())? {
            return Ok(()); // a closed pipe (| head) is not an error
        }
        // Printed: the group has read them. A consumer killed before the
        // commit prints the page again; after it, never.
        uncommitted = last.filter(|_| consumer.is_some());
    }
    if let (Some(c), Some(last)) = (&mut consumer, uncommitted) {
        c.commit(last).await?;
    }
    if array {
        emit(
            &mut stdout,
            format!("{}\n", serde_json::Value::Array(items)),
            || "the messages were read".into(),
        )?;
    }
    Ok(())
}

/// The arguments of `replog list` (see [`super::Command::List`]).
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Node to read from (default 127.0.0.1:7001, or REPLOG_NODE); of a comma-separated list, the first that answers.
    #[arg(long, env = "REPLOG_NODES")]
    pub(super) node: Option<String>,
    /// First sequence number to print.
    #[arg(long, default_value_t = 1, conflicts_with = "group")]
    pub(super) from: u64,
    /// Last sequence number to print.
    #[arg(long)]
    pub(super) to: Option<u64>,
    /// Print at most this many messages.
    #[arg(long)]
    pub(super) max: Option<u64>,
    /// Print a JSON array of {"message": "...", "seq": N} (with --follow, one such object per line); a message that is not UTF-8 comes as "message_base64".
    #[arg(long)]
    pub(super) json: bool,
    /// Keep printing messages as they become visible, like tail -f; if the node goes away, reconnect (to it or another listed node) and resume after the last message printed.
    #[arg(long)]
    pub(super) follow: bool,
    /// Only messages known to be stored on a majority of nodes: these are never lost by a failover (a plain list shows everything the node holds, which after a failover may lose messages acknowledged with w below a majority). A secondary learns the mark with the master's next heartbeat.
    #[arg(long)]
    pub(super) committed: bool,
    /// Read as consumer group GROUP, from the master: start after the group's position in the log (replog group list shows them; a group with none is given 0 first, refused past the nodes' --max-groups before anything is printed) and move it as each page is printed, so that a consumer killed and started again prints at most its last page again and misses nothing (but what retention deleted before it read it, skipped with a warning). Only committed messages are read (as with --committed); with --json, one object per line. One consumer per group and log at a time: if anything else moves the position meanwhile (another consumer, group set, group delete), the next commit is refused and it stops (exit 2).
    #[arg(long, value_name = "GROUP")]
    pub(super) group: Option<String>,
    /// Give up (exit 5) if the listing has not finished after this long, connecting included.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "follow")]
    pub(super) timeout: Option<Duration>,
    /// The log.
    #[command(flatten)]
    pub(super) log: LogArg,
    /// Token and TLS, for clusters that require them.
    #[command(flatten)]
    pub(super) conn: ConnArgs,
}

/// Runs `replog list`.
pub(super) async fn run(args: ListArgs) -> Result<(), ClientError> {
    let ListArgs {
        node,
        from,
        to,
        max,
        json,
        follow,
        committed,
        group,
        timeout,
        log,
        conn,
    } = args;
    if let Some(g) = &group {
        super::group::check_group(g)?;
    }
    let conn = log.on(conn.options()?)?;
    let nodes = node_list(node);
    let listing = Listing {
        from,
        to,
        max,
        json,
        follow,
        committed,
        group,
    };
    within(
        from_now(timeout),
        &nodes.join(","),
        "",
        list(&nodes, listing, &conn),
    )
    .await
}
