//! Issue 2: a cluster with every node up — write concern, total order,
//! exactly-once, and bad input that must not hurt a daemon.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use replog::client::{AppendOptions, Client, ClientError};
use replog::wire::{AppendError, WriteConcern};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w3_waits_for_a_delayed_secondary_while_w1_does_not() {
    let mut c = Cluster::new(3, false, |i| {
        let mut f = flags(FAST);
        if i == 2 {
            f.extend(flags(&["--replicate-delay", "1s"]));
        }
        f
    });
    c.start_all();
    c.wait_healthy(&[1, 2]).await;

    let master = c.master().to_string();
    let started = Instant::now();
    let slow = tokio::spawn({
        let m = master.clone();
        async move { append(&m, "slow", 3).await }
    });
    // While the w=3 append waits on the delayed secondary, w=1 appends go
    // through.
    let fast = append(&master, "fast", 1).await.unwrap();
    assert!(
        !slow.is_finished(),
        "w=3 must still wait for the delayed secondary"
    );
    let seq_slow = slow.await.unwrap().unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "w=3 answered before the delayed secondary could have stored it"
    );
    let mut expected = vec![(seq_slow, "slow".to_string()), (fast, "fast".to_string())];
    expected.sort();
    let lists = c.wait_converged(&[0, 1, 2], 2).await;
    for l in &lists {
        assert_eq!(l, &expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_parallel_clients_leave_identical_logs() {
    thirty_parallel_clients(Cluster::new(3, false, |_| flags(FAST))).await;
}

/// The same on disk, with the node loop on a thread of its own and the
/// connections on two workers (`--threads 2`) rather than all on one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_parallel_clients_leave_identical_logs_with_two_threads() {
    let extra = [FAST, &["--threads", "2"]].concat();
    thirty_parallel_clients(Cluster::new(3, true, |_| flags(&extra))).await;
}

async fn thirty_parallel_clients(mut c: Cluster) {
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let mut tasks = Vec::new();
    for client in 0..30 {
        let m = c.master().to_string();
        tasks.push(tokio::spawn(async move {
            let conn = Client::connect(&m).await.unwrap();
            let mut seqs = Vec::new();
            for i in 0..10 {
                let w = WriteConcern::Nodes(1 + (i % 3));
                let opts = AppendOptions {
                    w,
                    ..AppendOptions::default()
                };
                seqs.push(conn.append(&format!("c{client}-{i}"), &opts).await.unwrap());
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = t.await.unwrap();
        // One client's appends are ordered as it made them.
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=300).collect::<Vec<u64>>(),
        "every seq once, no gaps"
    );
    let lists = c.wait_converged(&[0, 1, 2], 300).await;
    assert_eq!(lists[0], lists[1]);
    assert_eq!(lists[0], lists[2]);
    let mut msgs: Vec<&String> = lists[0].iter().map(|(_, m)| m).collect();
    msgs.sort();
    msgs.dedup();
    assert_eq!(msgs.len(), 300, "every message exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_w_is_refused_at_once_with_exit_2() {
    let mut c = Cluster::new(3, false, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let (code, out, err) = replog(&["append", "--node", c.master(), "-w", "4", "x"]);
    assert_eq!(code, 2, "stdout {out} stderr {err}");
    assert!(err.contains("w=4") && err.contains("3 node"), "{err}");
    let (code, _, _) = replog(&["append", "--node", c.master(), "-w", "0", "x"]);
    assert_eq!(code, 2);
    let (code, _, err) = replog(&["append", "--node", c.master(), "-w", "lots", "x"]);
    assert_eq!(code, 2, "clap usage errors are exit 2 too: {err}");
    // Nothing was appended.
    let (code, out, _) = replog(&["list", "--node", c.master()]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_appends_lists_and_follows_a_redirect_from_a_secondary() {
    let mut c = Cluster::new(3, false, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let (code, out, err) = replog(&[
        "append",
        "--node",
        &c.addrs[1],
        "-w",
        "all",
        "via secondary",
    ]);
    assert_eq!((code, out.trim()), (0, "1"), "{err}");
    let (code, out, _) = replog(&["append", "--node", c.master(), "-w", "majority", "second"]);
    assert_eq!((code, out.trim()), (0, "2"));
    c.wait_converged(&[2], 2).await;
    let (code, out, _) = replog(&["list", "--node", &c.addrs[2]]);
    assert_eq!((code, out.as_str()), (0, "via secondary\nsecond\n"));
    let (code, out, _) = replog(&["list", "--node", &c.addrs[2], "--json", "--from", "2"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, serde_json::json!([{"seq": 2, "message": "second"}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_appends_are_pipelined_and_printed_in_order() {
    let mut c = Cluster::new(2, false, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1]).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(["append", "--node", c.master(), "-w", "2", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = (1..=500).map(|i| format!("line {i}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let printed: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(printed, (1..=500).collect::<Vec<u64>>());
    let lists = c.wait_converged(&[1], 500).await;
    assert_eq!(lists[0][499], (500, "line 500".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_key_returns_the_original_sequence_number() {
    let mut c = Cluster::new(3, false, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let (_, out1, _) = replog(&[
        "append",
        "--node",
        c.master(),
        "--key",
        "order-17",
        "-w",
        "3",
        "pay",
    ]);
    let (_, _, _) = replog(&["append", "--node", c.master(), "other"]);
    let (code, out2, _) = replog(&[
        "append",
        "--node",
        &c.addrs[1],
        "--key",
        "order-17",
        "-w",
        "3",
        "pay",
    ]);
    assert_eq!(code, 0);
    assert_eq!(out1, out2, "the retry gets the original sequence number");
    let lists = c.wait_converged(&[0, 1, 2], 2).await;
    assert_eq!(
        lists[1],
        vec![(1, "pay".to_string()), (2, "other".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_bad_requests() {
    let mut c = Cluster::new(1, false, |_| flags(&["--max-message-bytes", "100"]));
    c.start_all();
    c.wait_up(0).await;
    let err = append(c.master(), &"x".repeat(101), 1).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Append(AppendError::BadRequest(_))),
        "{err}"
    );
    assert_eq!(err.exit_code(), 2);
    // Far over the limit: the client refuses it itself (the node told it
    // the limit in its welcome)...
    let err = append(c.master(), &"x".repeat(200_000), 1)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("100 byte limit"), "{err}");
    // ...and a raw frame over the node's frame limit is answered with the
    // reason and closes only that connection.
    let mut s = std::net::TcpStream::connect(c.master()).unwrap();
    let hello = replog::wire::Frame::Hello(replog::wire::Hello {
        version: replog::wire::PROTOCOL_VERSION,
        cluster: None,
        role: replog::wire::Role::Client,
        nonce: None,
        token: None,
    });
    let payload = replog::wire::FrameCodec::to_payload(&hello).unwrap();
    s.write_all(&(payload.len() as u32).to_be_bytes()).unwrap();
    s.write_all(&payload).unwrap();
    s.write_all(&(10_000_000u32).to_be_bytes()).unwrap();
    let mut buf = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.contains("up to 100 bytes"), "{text}");
    assert_eq!(append(c.master(), "fits", 1).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_a_4gib_length_prefix_do_no_harm() {
    let mut c = Cluster::new(2, false, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1]).await;
    assert_eq!(append(c.master(), "before", 2).await.unwrap(), 1);
    for target in [0, 1] {
        let addr = c.addrs[target].clone();
        // Raw garbage.
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\x02\xff\xfe")
            .unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut buf = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let _ = s.read_to_end(&mut buf); // the node closes it
                                         // A 4 GiB length prefix: refused before anything is buffered.
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(buf.is_empty(), "nothing is answered to garbage");
        // A well-formed frame that is not a hello.
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let payload =
            replog::wire::FrameCodec::to_payload(&replog::wire::Frame::Heartbeat { committed: 0 })
                .unwrap();
        s.write_all(&(payload.len() as u32).to_be_bytes()).unwrap();
        s.write_all(&payload).unwrap();
        let _ = s.read_to_end(&mut buf);
    }
    // A client of another protocol version is refused with a reason.
    let mut s = std::net::TcpStream::connect(c.master()).unwrap();
    let hello = replog::wire::Frame::Hello(replog::wire::Hello {
        version: 99,
        cluster: None,
        role: replog::wire::Role::Client,
        nonce: None,
        token: None,
    });
    let payload = replog::wire::FrameCodec::to_payload(&hello).unwrap();
    s.write_all(&(payload.len() as u32).to_be_bytes()).unwrap();
    s.write_all(&payload).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let answer = replog::wire::FrameCodec::from_payload(&buf[4..]).unwrap();
    assert!(
        matches!(&answer, replog::wire::Frame::Refused { reason } if reason.contains("99")),
        "{answer:?}"
    );
    // Both daemons still serve, and replication still works.
    assert_eq!(append(c.master(), "after", 2).await.unwrap(), 2);
    let lists = c.wait_converged(&[0, 1], 2).await;
    assert_eq!(lists[1][1].1, "after");
    assert!(
        c.logs(0).contains("closing connection"),
        "the node logs why"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_is_refused() {
    // Secondary started with a different --cluster list than the master.
    let mut c = Cluster::new(2, false, |_| flags(FAST));
    c.start(0);
    let other = format!("n1={},n2={},n3=127.0.0.1:1", c.addrs[0], c.addrs[1]);
    let _stray = std::process::Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args(["--id", "n2", "--cluster", &other])
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Reaped)
        .unwrap();
    wait_for("the master to log the refusal", || async {
        c.logs(0)
            .contains("node n2 was started with --cluster")
            .then_some(())
    })
    .await;
    // The stray node does not count toward a majority: no master is
    // elected (and a static master would be read-only).
    // (A learner, as every node of a new cluster is until its first
    // master's heartbeat.)
    let h = c.wait_up(0).await;
    assert!(h.role.follows(), "{:?}", h.role);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_failures_and_bad_addresses_get_clear_exit_codes() {
    let mut c = Cluster::new(1, false, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let (code, _, err) = replog(&["list", "--node", "nonsense"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'nonsense' is not an address"), "{err}");
    // Standard output on a full device: exit 1, saying what had happened.
    let to_full = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_replog"))
            .args(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = to_full(&["append", "--node", c.master(), "kept"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("appended as sequence number 1") && err.contains("standard output"),
        "{err}"
    );
    for args in [["list", "--node"], ["health", "--node"]] {
        let (code, err) = to_full(&[args[0], args[1], c.master()]);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // The append did happen.
    let (code, out, _) = replog(&["list", "--node", c.master()]);
    assert_eq!((code, out.as_str()), (0, "kept\n"));
}

/// A stale master (an older epoch: a former master come back) that dials a
/// secondary is refused, and the refusal leaves the live master's
/// connection alone: its acks keep flowing, so it never goes silent and
/// is never redialled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stale_master_does_not_disturb_the_live_masters_connection() {
    use replog::node::config::Cluster as ClusterList;
    use replog::wire::{Frame, Hello, Role, PROTOCOL_VERSION};

    // Default timings: silent past 3 s means redialled.
    let mut c = Cluster::new(3, false, |_| Vec::new());
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    append(c.master(), "first", 3).await.unwrap();

    let list = c
        .addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("n{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let hello = framed(&Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        cluster: Some(ClusterList::parse(&list, None).unwrap().fingerprint()),
        role: Role::Master {
            id: "n1".into(),
            epoch: 0,
        },
        nonce: None,
        token: None,
    }));
    let mut s = std::net::TcpStream::connect(&c.addrs[1]).unwrap();
    s.write_all(&hello).unwrap();
    let (got, closed) = read_frames(&mut s, Duration::from_secs(10));
    assert!(closed);
    // Told the newer epoch, so that a stale master steps down.
    assert!(
        matches!(&got[..], [Frame::NewerEpoch { reason, .. }] if reason.contains("stale master")),
        "{got:?}"
    );

    // Longer than --unhealthy-after, appends that need every node.
    let until = Instant::now() + Duration::from_secs(4);
    let mut n = 1;
    while Instant::now() < until {
        n += 1;
        append(c.master(), &format!("m{n}"), 3).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = c.logs(0);
    assert!(
        !logs.contains("replication connection closed"),
        "the master lost a secondary: {logs}"
    );
    c.wait_converged(&[1, 2], n as usize).await;
}

/// Readers near the end of the log are served from the entries kept in
/// memory (the tail), and still only up to the mark they asked for: with
/// both secondaries paused, an entry the master stored alone is listed,
/// but not by a committed listing or a committed follow, until the
/// secondaries store it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_served_from_memory_stops_at_the_commit_mark() {
    let mut c = Cluster::new(3, false, |_| flags(STATIC));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let m = c.master().to_string();
    assert_eq!(append(&m, "on all", 3).await.unwrap(), 1);
    c.signal(1, "STOP");
    c.signal(2, "STOP");
    assert_eq!(append(&m, "on the master alone", 1).await.unwrap(), 2);
    let client = Client::connect(&m).await.unwrap();
    let (visible, _) = client.list_entries(1, 1000, false, false).await.unwrap();
    assert_eq!(
        text(visible),
        [(1, "on all".into()), (2, "on the master alone".into())]
    );
    let (committed, mark) = client.list_entries(1, 1000, false, true).await.unwrap();
    assert_eq!(
        (text(committed), mark),
        (vec![(1, "on all".to_string())], 1)
    );
    // A committed follow from 2 waits for the commit, then gets it.
    let following = tokio::spawn({
        let client = client.clone();
        async move { client.list_entries(2, 1000, true, true).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !following.is_finished(),
        "a committed follow must wait for the commit"
    );
    c.signal(1, "CONT");
    c.signal(2, "CONT");
    let (entries, mark) = following.await.unwrap().unwrap();
    assert_eq!(
        (text(entries), mark),
        (vec![(2, "on the master alone".to_string())], 2)
    );
}
