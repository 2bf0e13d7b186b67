//! Consumer groups with real processes: a consumer killed with -9
//! mid-stream resumes with nothing missed and at most its last page
//! printed twice; a group's position survives a failover and a restart of
//! every node; bad names, positions past the end and the cap are refused
//! with clear errors and change nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;

/// `replog` with these arguments against `nodes`; panics unless it exits
/// `code`; its standard output.
fn run(code: i32, nodes: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--node", nodes]);
    let (got, out, err) = replog(&all);
    assert_eq!(got, code, "replog {args:?}: {out}{err}");
    out
}

/// Appends `m{i}` for each i of `range` to `log`, one line each, in one
/// command; each on a majority.
fn append_range(nodes: &str, log: &str, range: std::ops::RangeInclusive<u64>) {
    let lines: String = range.map(|i| format!("m{i}\n")).collect();
    let args = [
        "append", "-", "--log", log, "-w", "majority", "--node", nodes,
    ];
    let (code, _, err) = replog_with_input(&args, lines.as_bytes());
    assert_eq!(code, 0, "appending {log}: {err}");
}

/// `replog list --log LOG --group GROUP --follow --json` against `nodes`,
/// its output read line by line.
fn consumer(nodes: &str, log: &str, group: &str) -> (Child, impl Iterator<Item = u64>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(["list", "--log", log, "--group", group, "--follow", "--json"])
        .args(["--node", nodes])
        .env_remove("REPLOG_NODE")
        .env_remove("REPLOG_NODES")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // A process killed in the middle of writing a page may leave its last
    // line cut short: that message was not printed.
    let seqs = lines.map_while(Result::ok).map_while(|line| {
        let v: serde_json::Value = serde_json::from_str(&line).ok()?;
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(v["message"], format!("m{seq}"), "{line}");
        Some(seq)
    });
    (child, seqs)
}

/// Group `group`'s position in `log`, as `group show --json` says.
fn position(nodes: &str, group: &str, log: &str) -> u64 {
    let out = run(0, nodes, &["group", "show", group, "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    (rows.as_array().unwrap().iter())
        .find(|r| r["log"] == log)
        .and_then(|r| r["position"].as_u64())
        .unwrap_or_else(|| panic!("no position in {log}: {out}"))
}

/// Most messages a page of `list` holds: what a consumer may print twice.
const PAGE: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_stream_resumes_with_nothing_missed_and_at_most_one_page_again() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let nodes = c.addrs.join(",");
    run(0, &nodes, &["log", "create", "orders"]);
    append_range(&nodes, "orders", 1..=2000);
    // Messages keep coming while the consumer reads.
    let writer = {
        let nodes = nodes.clone();
        std::thread::spawn(move || {
            for k in 0..20 {
                let from = 2001 + k * 200;
                append_range(&nodes, "orders", from..=from + 199);
            }
        })
    };
    let total = 2000 + 20 * 200;
    let (mut first, mut seqs) = consumer(&nodes, "orders", "billing");
    let mut printed = Vec::new();
    for seq in seqs.by_ref() {
        printed.push(seq);
        if printed.len() == 2500 {
            break;
        }
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    // What it had printed before it died (still in the pipe).
    printed.extend(seqs);
    let last_printed = *printed.last().unwrap();
    assert_eq!(printed, (1..=last_printed).collect::<Vec<_>>());
    writer.join().unwrap();
    // Its position: never past what it printed, at most a page short.
    let committed = position(&nodes, "billing", "orders");
    assert!(
        committed <= last_printed && last_printed - committed <= PAGE,
        "printed up to {last_printed}, committed {committed}"
    );
    assert!(committed > 0, "it committed as it printed");
    // Started again: from right after the position, to the end.
    let (mut second, seqs) = consumer(&nodes, "orders", "billing");
    let mut again = Vec::new();
    for seq in seqs {
        again.push(seq);
        if seq >= total {
            break;
        }
    }
    // Its last page is committed once printed: the position reaches the
    // end while it waits for more.
    let done = wait_until("the second consumer's last commit", || {
        let p = position(&nodes, "billing", "orders");
        (p == total).then_some(p)
    });
    assert_eq!(done, total);
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(again, (committed + 1..=total).collect::<Vec<_>>());
    // Nothing missed; printed twice only what came after the position.
    let twice = last_printed - committed;
    assert!(twice <= PAGE, "{twice} printed twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_position_survives_a_failover_and_a_restart_of_every_node() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let nodes = c.addrs.join(",");
    run(0, &nodes, &["log", "create", "orders"]);
    append_range(&nodes, "orders", 1..=50);
    // Read 20 as group audit; set group ops by hand.
    let read = run(
        0,
        &nodes,
        &["list", "--log", "orders", "--group", "audit", "--max", "20"],
    );
    let want: String = (1..=20).map(|i| format!("m{i}\n")).collect();
    assert_eq!(read, want);
    run(
        0,
        &nodes,
        &["group", "set", "ops", "--log", "orders", "--to", "42"],
    );
    assert_eq!(position(&nodes, "audit", "orders"), 20);
    // The master dies: the new one has both positions.
    c.kill(0);
    assert_eq!(position(&nodes, "audit", "orders"), 20);
    assert_eq!(position(&nodes, "ops", "orders"), 42);
    c.start(0);
    // Every node stops and starts again: read from their logs.
    for i in 0..3 {
        c.kill(i);
    }
    c.start_all();
    // Any node may be elected: wait until one takes appends.
    run(0, &nodes, &["health", "--wait", "30s"]);
    assert_eq!(position(&nodes, "audit", "orders"), 20);
    assert_eq!(position(&nodes, "ops", "orders"), 42);
    // And a consumer of the group goes on after it (following: a master
    // just elected knows what is committed once its first entry is).
    let args = [
        "list", "--log", "orders", "--group", "audit", "--follow", "--max", "3",
    ];
    assert_eq!(run(0, &nodes, &args), "m21\nm22\nm23\n");
    let listed = run(0, &nodes, &["group", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let rows: Vec<(String, u64, u64)> = (rows.as_array().unwrap().iter())
        .map(|r| {
            let group = r["group"].as_str().unwrap().to_string();
            (
                group,
                r["position"].as_u64().unwrap(),
                r["lag"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, vec![("audit".into(), 23, 27), ("ops".into(), 42, 8)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_whose_position_is_moved_by_someone_else_stops_and_leaves_it_moved() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let nodes = c.addrs.join(",");
    append_range(&nodes, "default", 1..=5);
    let (mut running, mut seqs) = consumer(&nodes, "default", "g");
    let first: Vec<u64> = seqs.by_ref().take(5).collect();
    assert_eq!(first, vec![1, 2, 3, 4, 5]);
    wait_until("the consumer's commit", || {
        (position(&nodes, "g", "default") == 5).then_some(())
    });
    // An operator rewinds the group while it runs: the consumer's next
    // commit finds the position moved, and it stops, saying so.
    run(0, &nodes, &["group", "set", "g", "--to", "2"]);
    append_range(&nodes, "default", 6..=6);
    assert_eq!(seqs.next(), Some(6));
    let status = running.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    assert_eq!(position(&nodes, "g", "default"), 2, "the rewind stays");
    // Started again, it goes on from the rewound position.
    let args = ["list", "--group", "g", "--follow", "--max", "2"];
    assert_eq!(run(0, &nodes, &args), "m3\nm4\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_positions_past_the_end_and_the_cap_are_refused_and_change_nothing() {
    let mut c = Cluster::new(3, true, |_| flags(&[FAST, &["--max-groups", "2"]].concat()));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let nodes = c.addrs.join(",");
    append_range(&nodes, "default", 1..=5);
    let long = "n".repeat(201);
    for bad in ["", &long, "a/b", "..", ".", "a\u{1}b", "a b"] {
        let (code, out, err) = replog(&["group", "set", bad, "--to", "1", "--node", &nodes]);
        assert_eq!(code, 2, "{bad:?}: {out}{err}");
        assert!(err.contains("group name"), "{bad:?}: {err}");
        let (code, _, err) = replog(&["list", "--group", bad, "--node", &nodes]);
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
    // Past the log's end: refused, saying where it ends.
    let (code, _, err) = replog(&["group", "set", "g", "--to", "6", "--node", &nodes]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ends at message 5"), "{err}");
    // A log that does not exist.
    let (code, _, err) = replog(&[
        "group", "set", "g", "--log", "nope", "--to", "0", "--node", &nodes,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("there is no log named nope"), "{err}");
    assert_eq!(run(0, &nodes, &["group", "list", "--json"]), "[]\n");
    // The cap: two positions, then a clear refusal; moving one is fine.
    run(0, &nodes, &["group", "set", "a", "--to", "1"]);
    run(0, &nodes, &["group", "set", "b", "--to", "2"]);
    let (code, _, err) = replog(&["group", "set", "c", "--to", "3", "--node", &nodes]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--max-groups"), "{err}");
    // A new group's consumer is refused before it prints anything.
    let (code, out, err) = replog(&["list", "--group", "c", "--node", &nodes]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains("--max-groups"), "{err}");
    run(0, &nodes, &["group", "set", "a", "--to", "5"]);
    // A group with no position.
    let (code, _, err) = replog(&["group", "show", "c", "--node", &nodes]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no consumer group named c"), "{err}");
    let (code, _, err) = replog(&["group", "delete", "c", "--node", &nodes]);
    assert_eq!(code, 1, "{err}");
    // Deleting one frees its place.
    run(0, &nodes, &["group", "delete", "b"]);
    run(0, &nodes, &["group", "set", "c", "--to", "3"]);
    let listed = run(0, &nodes, &["group", "list"]);
    assert!(
        listed.contains("a ") && listed.contains("c ") && !listed.contains("b "),
        "{listed}"
    );
}
