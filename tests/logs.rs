//! Named logs with real processes: logs written in parallel keep their own
//! numbers, without a gap, on every node and through a failover; a deleted
//! log is gone on every node; bad names, missing logs and the cap are
//! refused with clear errors and change nothing.

mod common;

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

/// Node `addr`'s messages of `log` as (seq, message), if it answers.
fn listed(addr: &str, log: &str) -> Option<Vec<(u64, String)>> {
    let (code, out, _) = replog(&["list", "--log", log, "--json", "--node", addr]);
    let list: serde_json::Value = serde_json::from_str(&out).ok()?;
    let list = (list.as_array()?.iter())
        .map(|m| Some((m["seq"].as_u64()?, m["message"].as_str()?.to_string())))
        .collect::<Option<Vec<_>>>()?;
    (code == 0).then_some(list)
}

/// What `n` appends of `prefix`-numbered messages to `log` were answered.
fn append_many(nodes: &str, log: &str, prefix: &str, range: std::ops::Range<u32>) -> Vec<u64> {
    range
        .map(|i| {
            let msg = format!("{prefix}-{i}");
            let out = run(0, nodes, &["append", "--log", log, "-w", "majority", &msg]);
            out.trim().parse().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_logs_written_in_parallel_keep_their_own_numbers_on_every_node_through_a_failover() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let nodes = c.addrs.join(",");
    run(0, &nodes, &["log", "create", "orders"]);
    run(0, &nodes, &["log", "create", "audit"]);
    // Both logs and the default one at once, in three writers.
    let writers = |from: u32, to: u32| {
        let spawn = |log: &'static str| {
            let nodes = nodes.clone();
            std::thread::spawn(move || append_many(&nodes, log, log, from..to))
        };
        let handles = [spawn("orders"), spawn("audit"), spawn("default")];
        handles.map(|h| h.join().unwrap())
    };
    let first = writers(0, 15);
    for answered in &first {
        assert_eq!(*answered, (1..=15).collect::<Vec<u64>>());
    }
    // The master dies: a new one, whose marker takes no number, goes on
    // numbering each log where it was.
    c.kill(0);
    let second = writers(15, 30);
    for answered in &second {
        assert_eq!(*answered, (16..=30).collect::<Vec<u64>>());
    }
    c.start(0);
    for log in ["orders", "audit", "default"] {
        let want: Vec<(u64, String)> = (0..30).map(|i| (i + 1, format!("{log}-{i}"))).collect();
        for addr in &c.addrs {
            let got = wait_until(&format!("{addr} to hold {log}"), || {
                listed(addr, log).filter(|got| got.len() == want.len())
            });
            assert_eq!(got, want, "{log} on {addr}");
        }
    }
    // Every node agrees on the replicated log itself too.
    run(0, &nodes, &["verify"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_log_is_gone_on_every_node_and_a_new_one_of_its_name_starts_at_one() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let nodes = c.addrs.join(",");
    run(0, &nodes, &["log", "create", "tmp"]);
    append_many(&nodes, "tmp", "old", 0..5);
    run(0, &nodes, &["log", "delete", "tmp"]);
    for addr in &c.addrs {
        let gone = wait_until(&format!("{addr} to lose tmp"), || {
            let (code, _, err) = replog(&["list", "--log", "tmp", "--node", addr]);
            (code == 1).then_some(err)
        });
        assert!(gone.contains("there is no log named tmp"), "{gone}");
        assert!(!run(0, addr, &["log", "list"]).contains("tmp"));
    }
    // Appends to it are refused, saying so.
    let (code, _, err) = replog(&["append", "--log", "tmp", "x", "--node", &nodes]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("there is no log named tmp"), "{err}");
    // Past a restart, still gone; created again, a new log.
    c.kill(2);
    c.start(2);
    c.wait_healthy(&[1, 2]).await;
    run(0, &nodes, &["log", "create", "tmp"]);
    assert_eq!(append_many(&nodes, "tmp", "new", 0..2), vec![1, 2]);
    let want = vec![(1, "new-0".to_string()), (2, "new-1".to_string())];
    for addr in &c.addrs {
        let got = wait_until(&format!("{addr} to hold the new tmp"), || {
            listed(addr, "tmp").filter(|got| got.len() == 2)
        });
        assert_eq!(got, want, "{addr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_missing_logs_and_the_cap_are_refused_and_change_nothing() {
    let mut c = Cluster::new(3, true, |_| flags(&[FAST, &["--max-logs", "2"]].concat()));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let nodes = c.addrs.join(",");
    let long = "n".repeat(201);
    for bad in ["", &long, "a/b", "..", ".", "a\u{1}b", "a b", "tab\t"] {
        let (code, out, err) = replog(&["log", "create", bad, "--node", &nodes]);
        assert_eq!(code, 2, "{bad:?}: {out}{err}");
        assert!(err.contains("log name"), "{bad:?}: {err}");
        let (code, _, err) = replog(&["append", "--log", bad, "x", "--node", &nodes]);
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
    // Nothing was created.
    let logs = run(0, &nodes, &["log", "list", "--json"]);
    let logs: serde_json::Value = serde_json::from_str(&logs).unwrap();
    assert_eq!(logs.as_array().unwrap().len(), 1, "{logs}");
    // A missing log says so, and is not made by an append.
    let (code, _, err) = replog(&["append", "--log", "missing", "x", "--node", &nodes]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("there is no log named missing"), "{err}");
    let (code, _, err) = replog(&["get", "--log", "missing", "1", "--node", &nodes]);
    assert_eq!(code, 1, "{err}");
    // The cap: two logs besides default, then a clear refusal.
    run(0, &nodes, &["log", "create", "a"]);
    run(0, &nodes, &["log", "create", "b"]);
    let (code, _, err) = replog(&["log", "create", "c", "--node", &nodes]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--max-logs"), "{err}");
    // A name taken, and default, which always exists.
    let (code, _, err) = replog(&["log", "create", "a", "--node", &nodes]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exists already"), "{err}");
    let (code, _, err) = replog(&["log", "delete", "default", "--node", &nodes]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("always exists"), "{err}");
    let logs = run(0, &nodes, &["log", "list"]);
    assert!(
        logs.contains("default")
            && logs.contains("a ")
            && logs.contains("b ")
            && !logs.contains("c "),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_names_its_log_by_name_so_a_log_created_again_is_the_new_one() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let nodes = c.addrs.join(",");
    run(0, &nodes, &["log", "create", "tmp"]);
    let opts = replog::client::ConnectOptions {
        log: Some("tmp".into()),
        ..Default::default()
    };
    let client = replog::client::connect_master(&c.addrs[1], &opts)
        .await
        .unwrap();
    let append = |m: &'static str| {
        let client = client.clone();
        async move { client.append(m, &Default::default()).await }
    };
    assert_eq!(append("a").await.unwrap(), 1);
    assert_eq!(append("b").await.unwrap(), 2);
    run(0, &nodes, &["log", "delete", "tmp"]);
    let refused = append("c").await.unwrap_err();
    assert!(
        refused.to_string().contains("there is no log named tmp"),
        "{refused}"
    );
    run(0, &nodes, &["log", "create", "tmp"]);
    // The same connection: the new log, from 1.
    assert_eq!(append("d").await.unwrap(), 1);
    let (entries, _) = client.list(1, 10, false).await.unwrap();
    assert_eq!(text(entries), vec![(1, "d".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_of_a_log_deleted_under_it_stops_saying_so() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let nodes = c.addrs.join(",");
    run(0, &nodes, &["log", "create", "tmp"]);
    append_many(&nodes, "tmp", "m", 0..2);
    let mut follower = std::process::Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(["list", "--log", "tmp", "--follow", "--node", &c.addrs[1]])
        .env_remove("REPLOG_NODE")
        .env_remove("REPLOG_NODES")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It has printed both and waits for more.
    let mut out = std::io::BufReader::new(follower.stdout.take().unwrap());
    let mut line = String::new();
    for want in ["m-0\n", "m-1\n"] {
        line.clear();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line, want);
    }
    run(0, &nodes, &["log", "delete", "tmp"]);
    let status = wait_until("the follower to stop", || follower.try_wait().unwrap());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut follower.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("there is no log named tmp"), "{err}");
}

/// `replog append` of each line of `lines` to `log` with `-w all`.
fn append_lines(nodes: &str, log: &str, lines: &str) {
    let args = ["append", "--log", log, "-w", "all", "--node", nodes, "-"];
    let (code, _, err) = replog_with_input(&args, lines.as_bytes());
    assert_eq!(code, 0, "append to {log}: {err}");
}

/// Three nodes rolling to a new segment every 16 KiB, healthy, and their
/// addresses as `--node` takes them.
async fn small_segments() -> (Cluster, String) {
    let small = ["--segment-bytes", "16KiB"];
    let mut c = Cluster::new(3, true, |_| flags(&[FAST, &small[..]].concat()));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let nodes = c.addrs.join(",");
    (c, nodes)
}

/// The bytes of node `i`'s segment files.
fn segment_bytes(c: &Cluster, i: usize) -> u64 {
    (std::fs::read_dir(c.data_dir(i)).unwrap())
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_logs_disk_space_is_freed_on_every_node_and_what_is_left_reads_and_verifies() {
    let (mut c, nodes) = small_segments().await;
    run(0, &nodes, &["log", "create", "big"]);
    // 600 messages of 1,000 bytes, in the same segments as 80 small
    // messages of the default log.
    let mut kept = Vec::new();
    for round in 0..4 {
        let big: String = (0..150).map(|i| format!("{round}-{i:0>996}\n")).collect();
        append_lines(&nodes, "big", &big);
        let small: Vec<String> = (0..20).map(|i| format!("kept-{round}-{i}")).collect();
        append_lines(&nodes, "default", &(small.join("\n") + "\n"));
        kept.extend(small);
    }
    let want: Vec<(u64, String)> = (1..).zip(kept).collect();
    let before: Vec<u64> = (0..3).map(|i| segment_bytes(&c, i)).collect();
    assert!(before.iter().all(|b| *b > 600_000), "{before:?}");
    run(0, &nodes, &["log", "delete", "big"]);
    // Every node frees what the deleted log took in every segment but the
    // one being written (at most 16 KiB).
    for (i, before) in before.into_iter().enumerate() {
        let left = wait_until(
            &format!("n{} to free the deleted log's bytes", i + 1),
            || Some(segment_bytes(&c, i)).filter(|b| *b < 60_000),
        );
        assert!(left < before / 10, "n{}: {left} of {before}", i + 1);
        assert_eq!(listed(&c.addrs[i], "default").unwrap(), want);
    }
    run(0, &nodes, &["verify"]);
    // A node back with an empty disk is sent what is left, every sequence
    // number still there, and holds the same log.
    c.kill(2);
    std::fs::remove_dir_all(c.data_dir(2)).unwrap();
    c.start(2);
    let got = wait_until("n3 to catch up from an empty disk", || {
        listed(&c.addrs[2], "default").filter(|got| got.len() == want.len())
    });
    assert_eq!(got, want);
    wait_until("n3 to free what it was sent", || {
        Some(segment_bytes(&c, 2)).filter(|b| *b < 60_000)
    });
    run(0, &nodes, &["verify"]);
    // And past a restart of every node.
    for i in 0..3 {
        c.kill(i);
    }
    // Any of them may be elected: each shows what is committed once it is.
    c.start_all();
    for addr in &c.addrs {
        let got = wait_until(&format!("{addr} to list default again"), || {
            listed(addr, "default").filter(|got| got.len() == want.len())
        });
        assert_eq!(got, want, "{addr}");
    }
    run(0, &nodes, &["verify"]);
}

/// Log `log` as node `addr` lists it: (first, last, bytes).
fn log_row(addr: &str, log: &str) -> Option<(u64, u64, u64)> {
    let out = run(0, addr, &["log", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).ok()?;
    let row = rows.as_array()?.iter().find(|r| r["name"] == log)?;
    Some((
        row["first"].as_u64()?,
        row["last"].as_u64()?,
        row["bytes"].as_u64()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logs_own_retention_deletes_its_oldest_messages_on_every_node_and_no_other_logs() {
    let (c, nodes) = small_segments().await;
    run(
        0,
        &nodes,
        &["log", "create", "short", "--retention-bytes", "50KiB"],
    );
    run(
        0,
        &nodes,
        &["log", "create", "aged", "--retention-age", "1s"],
    );
    let listed_retention = run(0, &nodes, &["log", "list"]);
    assert!(
        listed_retention.contains("51200 bytes"),
        "{listed_retention}"
    );
    assert!(listed_retention.contains("1s"), "{listed_retention}");
    // 400 messages of 1,000 bytes to short and 20 to aged, in the same
    // segments as 40 small messages of the default log.
    let line = |round: u32, i: u32| format!("{round}-{i:0>996}");
    let mut kept = Vec::new();
    for round in 0..4 {
        let short: String = (0..100).map(|i| line(round, i) + "\n").collect();
        append_lines(&nodes, "short", &short);
        let aged: String = (0..5).map(|i| line(round, i) + "\n").collect();
        append_lines(&nodes, "aged", &aged);
        let small: Vec<String> = (0..10).map(|i| format!("kept-{round}-{i}")).collect();
        append_lines(&nodes, "default", &(small.join("\n") + "\n"));
        kept.extend(small);
    }
    // Past a second, more of the default log fills the segment being
    // written: aged's messages are all in segments older than a second.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let filler: String = (0..20).map(|i| format!("fill-{i:0>995}\n")).collect();
    append_lines(&nodes, "default", &filler);
    kept.extend((0..20).map(|i| format!("fill-{i:0>995}")));
    let all_short: Vec<(u64, String)> = (1..)
        .zip((0..4).flat_map(|r| (0..100).map(move |i| line(r, i))))
        .collect();
    for addr in &c.addrs {
        // short keeps at least 50 KiB, a segment's share more at most,
        // read on every node from the same first message, without a gap.
        let (first, last, bytes) = wait_until(&format!("{addr} to trim short"), || {
            log_row(addr, "short").filter(|(first, _, bytes)| *first > 1 && *bytes < 150_000)
        });
        assert_eq!(last, 400);
        assert!(bytes >= 50 * 1024, "{addr}: short keeps {bytes} bytes");
        let got = listed(addr, "short").unwrap();
        assert_eq!(got, all_short[first as usize - 1..], "{addr}");
        // aged keeps its last message only (it numbers the next).
        let (_, last, _) = wait_until(&format!("{addr} to trim aged"), || {
            log_row(addr, "aged").filter(|(first, _, _)| *first == 20)
        });
        assert_eq!(last, 20);
        assert_eq!(listed(addr, "aged").unwrap(), vec![(20, line(3, 4))]);
        // The default log has no retention of its own: all there.
        let want: Vec<(u64, String)> = (1..).zip(kept.clone()).collect();
        assert_eq!(listed(addr, "default").unwrap(), want, "{addr}");
    }
    // The bytes are freed on every node.
    for i in 0..3 {
        wait_until(&format!("n{} to free short's bytes", i + 1), || {
            Some(segment_bytes(&c, i)).filter(|b| *b < 250_000)
        });
    }
    run(0, &nodes, &["verify"]);
    // A new consumer group starts at the first message kept, saying so.
    let first = log_row(&c.addrs[0], "short").unwrap().0;
    let (code, out, err) = replog(&["list", "--log", "short", "--group", "g", "--node", &nodes]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count() as u64, 401 - first, "{err}");
    assert!(
        err.contains(&format!(
            "before sequence number {first} were deleted by retention"
        )),
        "{err}"
    );
    // A message trimmed is gone by number too; the next append goes on.
    let (code, _, err) = replog(&["get", "--log", "aged", "1", "--node", &c.addrs[1]]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("retention deleted the messages before 20"),
        "{err}"
    );
    let out = run(
        0,
        &nodes,
        &["append", "--log", "aged", "-w", "all", "again"],
    );
    assert_eq!(out.trim(), "21");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_a_logs_own_retention_says_what_it_missed_and_goes_on() {
    let (c, nodes) = small_segments().await;
    run(
        0,
        &nodes,
        &["log", "create", "kept", "--retention-bytes", "20KiB"],
    );
    let lines = |from: u32, to: u32| -> String {
        (from..=to)
            .map(|i| format!("{i:04}-{:0>995}\n", 0))
            .collect()
    };
    append_lines(&nodes, "kept", &lines(1, 10));
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut follower = std::process::Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(["list", "--log", "kept", "--follow", "--node", &c.addrs[0]])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let printed = || std::fs::read_to_string(&out).unwrap_or_default();
    wait_until("the follower to print 1 to 10", || {
        (printed().lines().count() == 10).then_some(())
    });
    // Paused, it falls behind: what it waits for comes (11 to 20), then
    // the log's retention deletes far past it.
    let pid = follower.id().to_string();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status();
        assert!(status.unwrap().success());
    };
    signal("-STOP");
    append_lines(&nodes, "kept", &lines(11, 20));
    append_lines(&nodes, "kept", &lines(21, 3000));
    let first = wait_until("the master to trim kept past 21", || {
        log_row(&c.addrs[0], "kept")
            .map(|r| r.0)
            .filter(|f| *f > 21)
    });
    signal("-CONT");
    wait_until("the follower to print 3000", || {
        printed().lines().last()?.starts_with("3000-").then_some(())
    });
    follower.kill().unwrap();
    follower.wait().unwrap();
    // Everything it was sent, in order, without a gap but the one it says:
    // 1 to what it was sent before the trims (20, or less if it got 11 to
    // 20 in more than one page), then from past the trims on.
    let numbers: Vec<u64> = (printed().lines())
        .map(|l| l[..4].parse().unwrap())
        .collect();
    let gap = (1..numbers.len())
        .find(|&i| numbers[i] != numbers[i - 1] + 1)
        .expect("a gap where retention deleted what it had not read");
    let (before, resumed) = (numbers[gap - 1], numbers[gap]);
    assert!(before >= 10 && resumed >= first, "{before} then {resumed}");
    let want: Vec<u64> = (1..=before).chain(resumed..=3000).collect();
    assert_eq!(numbers, want);
    let said = std::fs::read_to_string(&err).unwrap();
    let gone = format!(
        "messages {} to {} were deleted by retention",
        before + 1,
        resumed - 1
    );
    assert!(said.contains(&gone), "{said}");
}
