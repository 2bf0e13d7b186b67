//! The CLI for scripts and people (issue 13): ranges and single messages,
//! following as NDJSON, and following through a node's restart.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_takes_a_range_and_get_prints_one_message() {
    let mut c = Cluster::new(1, false, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let node = c.addrs[0].clone();
    for i in 1..=6 {
        let (code, out, err) = replog(&["append", "--node", &node, &format!("m{i}")]);
        assert_eq!((code, out.trim()), (0, i.to_string().as_str()), "{err}");
    }
    let (code, out, _) = replog(&["list", "--node", &node, "--from", "2", "--to", "4"]);
    assert_eq!((code, out.as_str()), (0, "m2\nm3\nm4\n"));
    let (code, out, _) = replog(&["list", "--node", &node, "--from", "3", "--max", "2"]);
    assert_eq!((code, out.as_str()), (0, "m3\nm4\n"));
    let (code, out, _) = replog(&["list", "--node", &node, "--max", "2", "--json"]);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "[{\"message\":\"m1\",\"seq\":1},{\"message\":\"m2\",\"seq\":2}]\n"
        )
    );
    let (code, out, _) = replog(&["get", "--node", &node, "5"]);
    assert_eq!((code, out.as_str()), (0, "m5\n"));
    let (code, out, _) = replog(&["get", "--node", &node, "5", "--json"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "{\"message\":\"m5\",\"seq\":5}\n")
    );
    let (code, out, err) = replog(&["get", "--node", &node, "9"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("no message at sequence number 9") && err.contains("only up to 6"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_follow_json_streams_one_object_per_line_and_resumes_after_a_restart() {
    let mut c = Cluster::new(1, true, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let node = c.addrs[0].clone();
    let (code, _, err) = replog(&["append", "--node", &node, "one"]);
    assert_eq!(code, 0, "{err}");
    let mut follower = Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(["list", "--follow", "--json", "--node", &node])
        .env_remove("REPLOG_NODE")
        .env_remove("REPLOG_NODES")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(Reaped)
        .unwrap();
    let mut lines = BufReader::new(follower.0.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "{\"message\":\"one\",\"seq\":1}"
    );
    // The node goes away and comes back; the follower reconnects and goes
    // on after what it printed, nothing twice, nothing missed.
    c.kill(0);
    c.start(0);
    wait_for("the restarted node to take an append", || async {
        let (code, _, _) = replog(&["append", "--node", &node, "--key", "k2", "two"]);
        (code == 0).then_some(())
    })
    .await;
    let (code, _, err) = replog(&["append", "--node", &node, "three"]);
    assert_eq!(code, 0, "{err}");
    let rest: Vec<serde_json::Value> = (0..2)
        .map(|_| serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap())
        .collect();
    let messages: Vec<&str> = rest
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["two", "three"]);
    let seqs: Vec<u64> = rest.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert!(seqs[0] > 1 && seqs[1] > seqs[0], "{seqs:?}");
    let mut stderr = follower.0.stderr.take().unwrap();
    follower.0.kill().unwrap();
    follower.0.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
    assert!(
        err.contains("reconnecting to resume after sequence number 1"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_json_prints_one_object_per_message_failures_included() {
    let mut c = Cluster::new(1, false, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let node = c.addrs[0].clone();
    let (code, out, err) = replog(&["append", "--node", &node, "--json", "--key", "k1", "hello"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "{\"key\":\"k1\",\"seq\":1}\n");
    // A failure is an object too: its kind, whether it is definite, the
    // key to retry with; the exit code is unchanged.
    let (code, out, _) = replog(&["append", "--node", &node, "--json", "-w", "5", "x"]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"], "bad_request");
    assert_eq!(v["definite"], true);
    assert!(
        v["seq"].is_null() && v["key"].as_str().is_some_and(|k| !k.is_empty()),
        "{v}"
    );
    assert!(v["reason"].as_str().unwrap().contains("w=5"), "{v}");
    // Standard input: one object per line, each with its own key.
    let mut child = Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(["append", "--node", &node, "--json", "--key", "b", "-"])
        .env_remove("REPLOG_NODE")
        .env_remove("REPLOG_NODES")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"a\nb\n").unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"key\":\"b-1\",\"seq\":2}\n{\"key\":\"b-2\",\"seq\":3}\n"
    );
    // Unreachable: definite, nothing was sent.
    let (code, out, _) = replog(&["append", "--node", "127.0.0.1:1", "--json", "x"]);
    assert_eq!(code, 5);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["error"].as_str(), v["definite"].as_bool()),
        (Some("unreachable"), Some(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_for_another_message_is_a_definite_error_naming_its_seq() {
    let mut c = Cluster::new(1, true, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let node = c.addrs[0].clone();
    let append =
        |key: &str, message: &str| replog(&["append", "--node", &node, "--key", key, message]);
    assert_eq!(append("k1", "first").0, 0);
    assert_eq!(append("k2", "second").1.trim(), "2");
    // A retry: the same key and message get the original seq.
    assert_eq!(append("k1", "first").1.trim(), "1");
    let (code, out, err) = append("k1", "other");
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("already used for another message")
            && err.contains("sequence number 1")
            && err.contains("nothing was appended"),
        "{err}"
    );
    let (code, out, _) = replog(&["append", "--node", &node, "--key", "k2", "--json", "x"]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (&v["error"], &v["definite"], &v["key"]),
        (&"key_reused".into(), &true.into(), &"k2".into()),
        "{out}"
    );
    // After a restart the node rebuilds the window from its log, messages
    // included.
    c.kill(0);
    c.start(0);
    c.wait_up(0).await;
    assert_eq!(append("k1", "other").0, 2);
    assert_eq!(append("k1", "first").1.trim(), "1");
    let (_, out, _) = replog(&["list", "--node", &node]);
    assert_eq!(out, "first\nsecond\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_a_node_with_another_cluster_list_as_a_configuration_mismatch() {
    let mut c = Cluster::new(3, false, |_| flags(FAST));
    c.start(0);
    c.start(1);
    // n3 lists a fourth node the others do not.
    let other = format!("{},n4=127.0.0.1:1", c.cluster_arg);
    let _n3 = Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args(["--id", "n3", "--cluster", &other])
        .args(FAST)
        .stderr(Stdio::null())
        .spawn()
        .map(Reaped)
        .unwrap();
    let node = c.addrs[0].clone();
    let report = wait_for("n1 to see n3's configuration", || async {
        let (_, out, _) = replog(&["health", "--node", &node, "--json"]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).ok()?;
        (v["nodes"][2]["status"] == "configuration mismatch").then_some(v)
    })
    .await;
    let detail = report["nodes"][2]["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("it lists n4=127.0.0.1:1 that this node does not"),
        "{detail}"
    );
    // Not merely "unhealthy": the table and the verdict say what differs,
    // and the cluster, which has a majority, is degraded (exit 7).
    let (code, out, err) = replog(&["health", "--node", &node]);
    assert_eq!(code, 7, "{out}{err}");
    assert!(out.contains("configuration mismatch"), "{out}");
    assert!(out.contains(&format!("n3: {detail}")), "{out}");
    assert!(
        err.contains("n3 has a configuration mismatch") && err.contains("n4=127.0.0.1:1"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_secondary_whose_segment_was_edited_while_it_was_stopped() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let node = c.addrs[0].clone();
    for i in 1..=30 {
        let (code, _, err) = replog(&["append", "--node", &node, "-w", "all", &format!("m{i}")]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = replog(&["verify", "--node", &node]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("all 3 nodes agree on sequence numbers 1 to 30\n"),
        "{out}"
    );

    // Stop n3 and rewrite entry 17 of its log with valid checksums: its
    // log opens as if nothing happened.
    c.kill(2);
    let dir = c.data_dir(2);
    let entries = {
        let log =
            replog::storage::Log::open(&dir, replog::node::config::DEFAULT_SEGMENT_BYTES).unwrap();
        log.read(1, u64::MAX, usize::MAX, usize::MAX).unwrap()
    };
    assert_eq!(entries.len(), 30);
    let mut segment = Vec::new();
    for mut e in entries {
        if e.seq == 17 {
            e.message = bytes::Bytes::from_static(b"forged");
        }
        replog::storage::record::encode_record(&e, &mut segment);
    }
    std::fs::write(dir.join(format!("{:020}.log", 1)), segment).unwrap();
    c.start(2);
    c.wait_healthy(&[1, 2]).await;
    let (code, _, err) = replog(&["append", "--node", &node, "-w", "all", "after"]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = replog(&["verify", "--node", &node]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(
        out.starts_with("the nodes DISAGREE at sequence number 17: n1 and n2 hold one version, n3 holds another; 1 to 16 agree\n"),
        "{out}"
    );
    assert!(out.contains("holds up to 31"), "{out}");
    assert!(err.contains("disagree at sequence number 17"), "{err}");
    let all = format!("{},{},{}", c.addrs[0], c.addrs[1], c.addrs[2]);
    let (code, out, _) = replog(&["verify", "--node", &all, "--json"]);
    assert_eq!(code, 8);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (&v["agree"], &v["first_difference"], &v["agreed_upto"]),
        (&false.into(), &17.into(), &16.into()),
        "{out}"
    );
    assert_eq!(v["groups"], serde_json::json!([["n1", "n2"], ["n3"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_append_shows_whom_it_waits_for_and_ctrl_c_prints_its_seq_and_key() {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let mut c = Cluster::new(3, false, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    // n3 paused: a w=all append waits for it.
    c.signal(2, "STOP");
    let node = c.addrs[0].clone();
    // On a terminal: script(1) gives the CLI a pseudo-terminal, and its
    // standard input is that terminal's keyboard.
    let command = format!(
        "exec {} append --node {node} -w all --key k1 hello",
        env!("CARGO_BIN_EXE_replog")
    );
    let mut term = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env_remove("REPLOG_NODES")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map(Reaped)
        .unwrap();
    let screen = Arc::new(Mutex::new(Vec::new()));
    let mut out = term.stdout.take().unwrap();
    let shown = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            shown.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let text = || String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    wait_for("the terminal to show whom the append waits for", || async {
        text()
            .contains("sequence number 1: waiting for 1 more node(s) of n3")
            .then_some(())
    })
    .await;
    // Ctrl-C, typed.
    let mut keyboard = term.stdin.take().unwrap();
    keyboard.write_all(b"\x03").unwrap();
    keyboard.flush().unwrap();
    let status = term.wait().unwrap();
    wait_for("the last words", || async {
        text().contains("--key k1").then_some(())
    })
    .await;
    let screen = text();
    assert_eq!(status.code(), Some(130), "{screen}");
    assert!(
        screen.contains("interrupted: the message is in the master's log as sequence number 1")
            && screen.contains("retry with --key k1 and the same message"),
        "{screen}"
    );
    // It is, and once n3 is back a retry with the key gets the same seq.
    c.signal(2, "CONT");
    let (code, out, err) = replog(&[
        "append", "--node", &node, "-w", "all", "--key", "k1", "hello",
    ]);
    assert_eq!((code, out.trim()), (0, "1"), "{err}");
}

/// Appends one message per line of `lines` through `append -`.
fn append_lines(node: &str, w: &str, lines: &str) {
    let args = ["append", "--node", node, "-w", w, "-"];
    let (code, _, err) = replog_with_input(&args, lines.as_bytes());
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_segments_and_a_secondary_behind_it_starts_again_from_the_first_kept()
{
    let retention = ["--segment-bytes", "4096", "--retention-bytes", "16KiB"];
    let mut c = Cluster::new(3, true, |_| flags(&[FAST, &retention].concat()));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let node = c.addrs[0].clone();
    append_lines(&node, "all", "early\n");
    // n3 goes away; the log grows well past the limit without it.
    c.kill(2);
    let lines: String = (1..=600)
        .map(|i| format!("message number {i:05} {}\n", "x".repeat(60)))
        .collect();
    append_lines(&node, "majority", &lines);
    wait_for("the master's retention to delete old segments", || async {
        let (_, out, _) = replog(&[
            "verify",
            "--node",
            &format!("{},{}", c.addrs[0], c.addrs[1]),
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).ok()?;
        let first = v["compared_from"].as_u64()?;
        (first > 1).then_some(())
    })
    .await;
    let (code, out, err) = replog(&["list", "--node", &node, "--from", "1", "--max", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("messages before sequence number") && err.contains("deleted by retention"),
        "{err}"
    );
    assert!(out.starts_with("message number"), "{out}");
    let (code, _, err) = replog(&["get", "--node", &node, "1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("retention deleted the messages before"),
        "{err}"
    );

    // n3 comes back holding only "early": what it lacks is gone from the
    // master, so it starts again after the master's base, loudly.
    c.start(2);
    c.wait_healthy(&[1, 2]).await;
    append_lines(&node, "all", "after\n");
    assert!(
        c.logs(2)
            .contains("lacks entries its master has deleted by retention"),
        "{}",
        c.logs(2)
    );
    let (code, out, err) = replog(&["verify", "--node", &node]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("all 3 nodes agree on sequence numbers"),
        "{out}"
    );
    let (_, out, _) = replog(&["list", "--node", &c.addrs[2], "--json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(listed.last().unwrap()["message"], "after");
    assert!(
        listed.len() < 600,
        "n3 holds only what was kept: {}",
        listed.len()
    );
    // Its "early" (seq 1) went with the reset: it starts after the
    // master's base (each node trims on its own, so not n2's).
    assert!(listed[0]["seq"].as_u64().unwrap() > 1, "{}", listed[0]);
    // Health shows where each node's log starts and ends.
    let (_, out, _) = replog(&["health", "--node", &node]);
    assert!(out.contains("FIRST") && out.contains("LAST"), "{out}");
    let (_, out, _) = replog(&["health", "--node", &node, "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for n in v["nodes"].as_array().unwrap() {
        assert!(n["first"].as_u64().unwrap() > 1, "{v}");
        assert_eq!(n["last"].as_u64(), Some(602), "{v}");
    }
    // Both start again from their base: n2 trimmed by retention, n3 reset.
    // One at a time, as in a rolling restart: with both away at once the
    // master hears no majority, rightly steps down, and another node may
    // be elected, which is not what this test is about.
    for i in [1, 2] {
        c.kill(i);
        c.start(i);
        c.wait_healthy(&[1, 2]).await;
    }
    append_lines(&node, "all", "restarted\n");
    let (code, out, err) = replog(&["verify", "--node", &node]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("to 603\n"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_a_counted_load_and_reports_throughput_latency_and_outcomes() {
    let mut c = Cluster::new(1, true, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let node = c.addrs[0].clone();
    let probe = tempfile::tempdir().unwrap();
    let (code, out, err) = replog(&[
        "bench",
        "--node",
        &node,
        "--count",
        "300",
        "--connections",
        "2",
        "--inflight",
        "4",
        "--warmup",
        "0s",
        "--key-every-append",
        "--fsync-probe",
        probe.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["measured"], 300, "{v}");
    assert_eq!(v["outcomes"], serde_json::json!({"ok": 300}), "{v}");
    let l = &v["latency_us"];
    assert!(
        l["p50"].as_u64().unwrap() > 0 && l["p50"].as_u64() <= l["max"].as_u64(),
        "{v}"
    );
    assert!(v["appends_per_second"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["fsync_probe_us"]["p50"].as_u64().unwrap() > 0, "{v}");
    // As many syncs at once as the cluster has nodes (one here), and the
    // probe's files removed afterwards.
    assert_eq!(v["fsync_together"], 1, "{v}");
    assert!(v["fsync_together_us"]["p50"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(std::fs::read_dir(probe.path()).unwrap().count(), 0);
    // Not a serial run: no ratio.
    assert!(v["p50_over_fsync_and_round_trip"].is_null(), "{v}");
    // Every one of them is in the log.
    let (_, listed, _) = replog(&["list", "--node", &node, "--json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_str(listed.trim()).unwrap();
    assert_eq!(listed.len(), 300);
    // An impossible w is counted by kind, not measured.
    let (code, out, _) = replog(&[
        "bench",
        "--node",
        &node,
        "--count",
        "5",
        "--connections",
        "1",
        "--inflight",
        "1",
        "-w",
        "3",
        "--warmup",
        "0s",
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (&v["measured"], &v["outcomes"]),
        (&0.into(), &serde_json::json!({"bad_request": 5})),
        "{v}"
    );
}
