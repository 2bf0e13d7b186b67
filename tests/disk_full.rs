//! A full disk (injected with the `--fail-storage-while` testing aid) is a
//! clear error while it lasts, acknowledges nothing, loses nothing, and
//! heals by itself once there is room: no restart, secondaries catch up.

mod common;

use std::path::PathBuf;

use common::*;
use replog::client::Client;
use replog::wire::PeerStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_on_master_or_secondary_heals_by_itself_and_loses_nothing() {
    let faults = tempfile::tempdir().unwrap();
    let full = |i: usize| -> PathBuf { faults.path().join(format!("full-{i}")) };
    // A static master: with failover, a master whose sync fails after it
    // sent the entries steps down instead (see the next test).
    let mut c = Cluster::new(3, true, |i| {
        let mut f = flags(FAST);
        f.extend(flags(STATIC));
        f.push("--fail-storage-while".into());
        f.push(full(i).display().to_string());
        f
    });
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let m = c.master().to_string();
    let mut acked: Vec<(u64, String)> = Vec::new();
    let append_ok = |acked: &mut Vec<(u64, String)>, w: &str, msg: String| {
        let (code, out, err) = replog(&["append", "--node", &m, "-w", w, &msg]);
        assert_eq!(code, 0, "{msg}: {err}");
        acked.push((out.trim().parse().unwrap(), msg));
    };
    for i in 1..=10 {
        append_ok(&mut acked, "3", format!("before-{i}"));
    }

    // The master's disk is full: every append is a definite error.
    std::fs::write(full(0), "").unwrap();
    for _ in 0..5 {
        let (code, _, err) = replog(&["append", "--node", c.master(), "-w", "1", "lost"]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("No space left on device"), "{err}");
        assert!(err.contains("nothing was appended"), "{err}");
    }
    let h = Client::connect(c.master())
        .await
        .unwrap()
        .health()
        .await
        .unwrap();
    assert_eq!(h.nodes[0].status, PeerStatus::Unhealthy, "{h:?}");
    // Room again: the next append takes the next number, no restart.
    std::fs::remove_file(full(0)).unwrap();
    append_ok(&mut acked, "3", "after-write-failure".into());
    assert_eq!(acked.last().unwrap().0, 11, "failed appends left no trace");

    // Writes work but fdatasync fails: what was written and not made
    // durable is cut, and not acknowledged.
    std::fs::write(full(0), "sync").unwrap();
    let (code, _, err) = replog(&["append", "--node", c.master(), "-w", "1", "unsynced"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("fdatasync failed"), "{err}");
    // It had been sent to the secondaries while the sync ran: the master
    // goes on in a new epoch, whose handshakes cut it there too.
    wait_for("the master to go on in a new epoch", || async {
        c.logs(0).contains("goes on in a new epoch").then_some(())
    })
    .await;
    // Many appends in flight while syncs keep failing: several rounds of
    // assigned, written and cut entries, none acknowledged.
    let burst: String = (0..300).map(|i| format!("burst-{i}\n")).collect();
    let args = ["append", "--node", c.master(), "-w", "1", "-"];
    let (code, out, _) = replog_with_input(&args, burst.as_bytes());
    assert_eq!(code, 1);
    assert!(out.is_empty(), "nothing may be acknowledged");
    std::fs::remove_file(full(0)).unwrap();
    append_ok(&mut acked, "3", "after-sync-failure".into());
    assert_eq!(acked.last().unwrap().0, 12);

    // A secondary's disk is full: w=2 still goes through the other one,
    // w=3 cannot complete while it lasts...
    std::fs::write(full(1), "").unwrap();
    append_ok(&mut acked, "2", "while-s1-full".into());
    let (code, _, err) = replog(&[
        "append",
        "--node",
        c.master(),
        "-w",
        "3",
        "--timeout",
        "500ms",
        "waits",
    ]);
    assert_eq!(code, 3, "{err}");
    acked.push((14, "waits".into())); // timed out, but in the log as seq 14
                                      // ...and once it has room it catches up by itself.
    std::fs::remove_file(full(1)).unwrap();
    append_ok(&mut acked, "3", "after-s1-recovered".into());
    let lists = c.wait_converged(&[0, 1, 2], acked.len()).await;
    for l in &lists {
        assert_eq!(l, &acked, "every node holds exactly what was acknowledged");
    }
    // The master's log reopens and holds exactly that too.
    c.kill(0);
    c.start(0);
    c.wait_up(0).await;
    assert_eq!(c.wait_converged(&[0], acked.len()).await[0], acked);
    // Each kind of failure was logged, not once per append.
    let log = c.logs(0);
    let lines = log
        .matches("cannot store entries: nothing is acknowledged")
        .count();
    assert!((1..=2).contains(&lines), "{lines} lines:\n{log}");
    assert!(c.logs(1).contains("cannot store entries"));
}

/// With failover, the master sends entries while its own fdatasync runs.
/// If that sync fails, what it cut may be on secondaries, so it must not
/// reuse those sequence numbers in its epoch: it steps down, the append is
/// answered as indefinite, another node is elected, and the cluster
/// converges on one log holding everything acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_whose_sync_fails_after_sending_steps_down_and_nothing_acknowledged_is_lost() {
    let faults = tempfile::tempdir().unwrap();
    let full = |i: usize| -> PathBuf { faults.path().join(format!("full-{i}")) };
    let mut c = Cluster::new(3, true, |i| {
        let mut f = flags(FAST);
        f.push("--fail-storage-while".into());
        f.push(full(i).display().to_string());
        f
    });
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let all = c.addrs.join(",");
    let mut acked: Vec<(u64, String)> = Vec::new();
    for i in 1..=5 {
        let msg = format!("before-{i}");
        let (code, out, err) = replog(&["append", "--node", c.master(), "-w", "3", &msg]);
        assert_eq!(code, 0, "{err}");
        acked.push((out.trim().parse().unwrap(), msg));
    }
    std::fs::write(full(0), "sync").unwrap();
    // Indefinite: the CLI retries with the same key until a new master
    // answers (then exit 0, once), or says it may or may not be stored.
    let (code, out, err) = replog(&["append", "--node", &all, "-w", "1", "unsynced"]);
    assert!([0, 3, 5].contains(&code), "{code}: {err}");
    assert!(!err.contains("nothing was appended"), "not definite: {err}");
    if code == 0 {
        acked.push((out.trim().parse().unwrap(), "unsynced".into()));
    }
    wait_for("the master to step down", || async {
        c.logs(0).contains("this master steps down").then_some(())
    })
    .await;
    std::fs::remove_file(full(0)).unwrap();
    // A master is elected (any node); appends go on.
    let (code, out, err) = replog(&["append", "--node", &all, "-w", "3", "after"]);
    assert_eq!(code, 0, "{err}");
    acked.push((out.trim().parse().unwrap(), "after".into()));
    // Every node ends with the same log, holding every acknowledged entry
    // at its sequence number ("unsynced" may or may not be in it).
    let lists = wait_for("the three logs to agree", || async {
        let mut lists = Vec::new();
        for addr in all.split(',') {
            let l = Client::connect(addr).await.ok()?.list_all(1).await.ok()?;
            lists.push(text(l));
        }
        (lists[0] == lists[1] && lists[1] == lists[2] && lists[0].len() >= acked.len())
            .then_some(lists)
    })
    .await;
    for (seq, msg) in &acked {
        assert!(
            lists[0].contains(&(*seq, msg.clone())),
            "seq {seq} ({msg}) lost: {:?}",
            lists[0]
        );
    }
    let copies = lists[0].iter().filter(|(_, m)| m == "unsynced").count();
    assert!(copies <= 1, "retried with one key: {:?}", lists[0]);
}
