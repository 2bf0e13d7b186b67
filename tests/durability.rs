//! Issue 4: the log on disk survives kill -9 and restarts; the master's log
//! is the truth, and a secondary's suffix the master never stored is cut.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use replog::client::{AppendOptions, Client};
use replog::storage::Log;
use replog::wire::WriteConcern;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_killed_after_w3_appends_keeps_every_message() {
    let mut c = Cluster::new(3, true, |_| flags(&[FAST, STATIC].concat()));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let client = Client::connect(c.master()).await.unwrap();
    let opts = AppendOptions {
        w: WriteConcern::All,
        ..AppendOptions::default()
    };
    for i in 0..40 {
        assert_eq!(client.append(&format!("m{i}"), &opts).await.unwrap(), i + 1);
    }
    for i in 0..3 {
        c.kill(i);
    }
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let lists = c.wait_converged(&[0, 1, 2], 40).await;
    for l in &lists {
        let expected: Vec<(u64, String)> = (0..40).map(|i| (i + 1, format!("m{i}"))).collect();
        assert_eq!(l, &expected);
    }
    // The master started a new epoch and goes on after the last entry.
    let h = Client::connect(c.master())
        .await
        .unwrap()
        .health()
        .await
        .unwrap();
    assert_eq!(h.epoch, 2);
    assert_eq!(append(c.master(), "after", 3).await.unwrap(), 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_keys_still_deduplicate_after_a_restart() {
    let mut c = Cluster::new(1, true, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let opts = AppendOptions {
        key: Some("once".into()),
        ..AppendOptions::default()
    };
    let first = Client::connect(c.master())
        .await
        .unwrap()
        .append("pay", &opts)
        .await
        .unwrap();
    c.kill(0);
    c.start(0);
    c.wait_up(0).await;
    let again = Client::connect(c.master())
        .await
        .unwrap()
        .append("pay", &opts)
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(c.wait_converged(&[0], 1).await[0].len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_and_restarts_under_a_w2_writer_lose_no_acknowledged_message() {
    // The smallest segments: rolls are frequent, so kills land while one
    // is still pending (the next segment written, not yet named).
    let small = &["--segment-bytes", "4096"][..];
    let mut c = Cluster::new(3, true, |_| flags(&[FAST, STATIC, small].concat()));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (acked, stop, master) = (acked.clone(), stop.clone(), c.master().to_string());
        async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(client) = Client::connect(&master).await else {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                };
                loop {
                    // About 200 bytes: some twenty records to a segment,
                    // so that every node rolls several times whatever the
                    // machine's speed.
                    let msg = format!("w{i}-{}", "x".repeat(200));
                    let opts = AppendOptions {
                        w: WriteConcern::Nodes(2),
                        key: Some(format!("k{i}")),
                        timeout: Some(std::time::Duration::from_secs(2)),
                        progress: None,
                    };
                    match client.append(&msg, &opts).await {
                        Ok(seq) => {
                            acked.lock().unwrap().push((seq, msg));
                            i += 1;
                        }
                        Err(e) if e.exit_code() == 5 => break, // reconnect, same key
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                    }
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                }
            }
        }
    });
    let progress = |n: usize| {
        let acked = acked.clone();
        async move {
            let start = acked.lock().unwrap().len();
            wait_for("the writer to make progress", || {
                let acked = acked.clone();
                async move { (acked.lock().unwrap().len() >= start + n).then_some(()) }
            })
            .await
        }
    };
    progress(20).await;
    c.kill(1);
    progress(10).await;
    c.start(1);
    c.kill(2);
    progress(10).await;
    c.start(2);
    c.kill(0);
    c.start(0);
    progress(20).await;
    c.kill(1);
    c.kill(0);
    c.start(0);
    c.start(1);
    progress(20).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();

    let acked = acked.lock().unwrap().clone();
    let total = Client::connect(c.master())
        .await
        .unwrap()
        .list_all(1)
        .await
        .unwrap()
        .len();
    let lists = c.wait_converged(&[0, 1, 2], total).await;
    for l in &lists {
        assert_eq!(l, &lists[0], "every node holds the same log");
        let mut msgs: Vec<&String> = l.iter().map(|(_, m)| m).collect();
        msgs.sort();
        msgs.dedup();
        assert_eq!(msgs.len(), l.len(), "every message exactly once");
        for (seq, msg) in &acked {
            assert_eq!(
                l.get(*seq as usize - 1).map(|(_, m)| m),
                Some(msg),
                "acknowledged {msg} at {seq}"
            );
        }
    }
    // A roll is named once the syncer has made the full segment durable:
    // the last one may still be on its way.
    for i in 0..3 {
        wait_for(&format!("node {i} to have rolled its log"), || async {
            (c.segment_files(i) >= 2).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_suffix_the_master_never_stored_is_cut_and_converges() {
    let mut c = Cluster::new(3, true, |_| flags(&[FAST, STATIC].concat()));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    for i in 1..=10 {
        append(c.master(), &format!("old{i}"), 3).await.unwrap();
    }
    for i in 0..3 {
        c.kill(i);
    }
    // The master loses 8..=10 (as a power cut would lose unsynced writes).
    let mut log = Log::open(&c.data_dir(0), 64 << 20).unwrap();
    log.truncate_after(7).unwrap();
    drop(log);
    c.start(0);
    c.start(1);
    c.wait_healthy(&[1]).await;
    for i in 8..=10 {
        assert_eq!(append(c.master(), &format!("new{i}"), 2).await.unwrap(), i);
    }
    c.start(2);
    // Until the master reaches it, the restarted secondary shows its old
    // log; the cut is what this test is about, so wait for it.
    wait_for("the restarted secondary to be cut back", || async {
        c.logs(2)
            .contains("cutting entries the master never stored")
            .then_some(())
    })
    .await;
    let lists = c.wait_converged(&[0, 1, 2], 10).await;
    let expected: Vec<(u64, String)> = (1..=10)
        .map(|i| {
            (
                i,
                if i <= 7 {
                    format!("old{i}")
                } else {
                    format!("new{i}")
                },
            )
        })
        .collect();
    for (i, l) in lists.iter().enumerate() {
        assert_eq!(l, &expected, "node {i}");
    }
    // What was cut is not gone: node 2 saved it to a rollback file, in the
    // log's record format, and said where.
    let rollback = c.data_dir(2).join("rollback");
    let files: Vec<String> = std::fs::read_dir(&rollback)
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, vec!["1-8-10.log".to_string()], "{rollback:?}");
    let saved = std::fs::read(rollback.join("1-8-10.log")).unwrap();
    for i in 8..=10 {
        let old = format!("old{i}");
        assert!(
            saved.windows(old.len()).any(|w| w == old.as_bytes()),
            "{old} not in the rollback file"
        );
    }
    assert!(c.logs(2).contains("rollback file"), "{}", c.logs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_stops_the_daemon_naming_file_and_offset() {
    let mut c = Cluster::new(1, true, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    for i in 0..5 {
        append(c.master(), &format!("m{i}"), 1).await.unwrap();
    }
    c.kill(0);
    let seg = c.data_dir(0).join("00000000000000000001.log");
    let mut data = std::fs::read(&seg).unwrap();
    data[20] ^= 0xff; // inside the first record
    std::fs::write(&seg, &data).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args(["--id", "n1", "--cluster", &format!("n1={}", c.addrs[0])])
        .arg("--data-dir")
        .arg(c.data_dir(0))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("00000000000000000001.log") && err.contains("offset 0"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_is_never_acknowledged_and_corrupts_nothing() {
    // A file size limit makes the log's writes fail with EFBIG once the
    // segment reaches 16 KiB (SIGXFSZ ignored, so the write just fails, as
    // on a full disk).
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let data = dir.path().join("data");
    let start = |limited: bool| {
        let limit = if limited {
            "trap '' XFSZ; ulimit -f 32; "
        } else {
            ""
        };
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{limit}exec \"$0\" --id a --cluster a={addr} --data-dir \"$1\"",
            ))
            .arg(env!("CARGO_BIN_EXE_replogd"))
            .arg(&data)
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .map(Reaped)
            .unwrap()
    };
    let mut node = start(true);
    let client = wait_for("the node", || async { Client::connect(&addr).await.ok() }).await;
    let mut acked = Vec::new();
    let err = loop {
        let msg = format!("{:0100}", acked.len());
        match client.append(&msg, &AppendOptions::default()).await {
            Ok(seq) => acked.push((seq, msg)),
            Err(e) => break e,
        }
        assert!(acked.len() < 10_000, "the size limit never bit");
    };
    assert!(err.to_string().contains("cannot store entries"), "{err}");
    assert!(!acked.is_empty());
    // Still up: reads and health answer; an append that does not fit keeps
    // being refused clearly (nothing appended: the next seq is unchanged).
    let listed = text(client.list_all(1).await.unwrap());
    assert_eq!(listed, acked);
    let again = client
        .append(format!("{:0100}", acked.len()), &AppendOptions::default())
        .await
        .unwrap_err();
    assert!(
        again.to_string().contains("cannot store entries"),
        "{again}"
    );
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(log.contains("cannot store entries"), "{log}");
    node.kill().unwrap();
    node.wait().unwrap();
    // Restarted without the limit: everything acknowledged is there, intact.
    let mut node = start(false);
    let client = wait_for("the node", || async { Client::connect(&addr).await.ok() }).await;
    assert_eq!(text(client.list_all(1).await.unwrap()), acked);
    let seq = client
        .append("after", &AppendOptions::default())
        .await
        .unwrap();
    assert_eq!(seq, acked.len() as u64 + 1);
    node.kill().unwrap();
    node.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_remembered_within_the_dedup_window_across_a_restart() {
    let mut c = Cluster::new(1, true, |_| flags(&["--dedup-window", "3"]));
    c.start_all();
    c.wait_up(0).await;
    let with_key = |k: &str| AppendOptions {
        key: Some(k.into()),
        ..AppendOptions::default()
    };
    let m = c.master().to_string();
    let append_key = |k: &'static str| {
        let m = m.clone();
        async move {
            Client::connect(&m)
                .await
                .unwrap()
                .append(k, &with_key(k))
                .await
                .unwrap()
        }
    };
    assert_eq!(append_key("k1").await, 1);
    assert_eq!(append_key("k2").await, 2);
    assert_eq!(append_key("k3").await, 3);
    c.kill(0);
    c.start(0);
    c.wait_up(0).await;
    // Recovered from the log: k2 is within the last 3 entries.
    assert_eq!(append_key("k2").await, 2);
    assert_eq!(append_key("k4").await, 4);
    // k1 (entry 1) left the window when entry 4 came: a retry appends
    // again, as documented.
    assert_eq!(append_key("k1").await, 5);
    assert_eq!(append_key("k4").await, 4);
    assert_eq!(c.wait_converged(&[0], 5).await[0].len(), 5);
}
