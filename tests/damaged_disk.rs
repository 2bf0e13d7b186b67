//! A node that finds its log damaged at start heals by itself (real
//! processes, default settings): it keeps every record before the damage,
//! moves the rest to `DATA_DIR/damaged/`, comes back as a learner and takes
//! what it lacks from the master. As a learner it cannot help elect a
//! master that lacks what it lost.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use replog::client::{AppendOptions, Client};
use replog::wire::NodeRole;
use replog::wire::WriteConcern;

/// Appends `from..=to` as `m{i}` with write concern `w` on one connection
/// to the master.
async fn append_range(addr: &str, from: u64, to: u64, w: u32) {
    let client = Client::connect(addr).await.unwrap();
    let options = AppendOptions {
        w: WriteConcern::Nodes(w),
        ..AppendOptions::default()
    };
    for i in from..=to {
        client.append(format!("m{i}"), &options).await.unwrap();
    }
}

/// Node i's segment files, in order.
fn segments(c: &Cluster, i: usize) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(c.data_dir(i))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

/// Flips one byte of `path` at `at` (from its end if negative).
fn flip(path: &Path, at: isize) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let at = if at < 0 {
        bytes.len() as isize + at
    } else {
        at
    } as usize;
    bytes[at] ^= 0x20;
    std::fs::write(path, &bytes).unwrap();
    bytes
}

/// What is under node i's `damaged/`: the directories set aside.
fn set_aside(c: &Cluster, i: usize) -> Vec<PathBuf> {
    match std::fs::read_dir(c.data_dir(i).join("damaged")) {
        Ok(items) => items.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether node `i` says it is master.
async fn is_master(c: &Cluster, i: usize) -> bool {
    match Client::connect(&c.addrs[i]).await {
        Ok(client) => client.welcome().role == NodeRole::Master,
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_secondarys_segment_heals_by_itself_and_verify_agrees() {
    let mut c = Cluster::new(3, true, |_| flags(&["--segment-bytes", "4KiB"]));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    append_range(c.master(), 1, 200, 3).await;
    c.kill(2);
    let files = segments(&c, 2);
    assert!(files.len() >= 4, "{files:?}");
    let damaged = files[files.len() / 2].clone();
    let bytes = flip(&damaged, 2000);

    // Told to refuse, the node stops, names the file, and touches nothing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args([
            "--id",
            "n3",
            "--cluster",
            &c.cluster_arg,
            "--on-damage",
            "refuse",
        ])
        .arg("--data-dir")
        .arg(c.data_dir(2))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let name = damaged.file_name().unwrap().to_string_lossy();
    assert!(
        err.contains(&*name) && err.contains("--on-damage refuse"),
        "{err}"
    );
    assert_eq!(segments(&c, 2), files);
    assert!(set_aside(&c, 2).is_empty());

    // By default it heals: one line names the damage and where the rest
    // went, and it starts as a learner.
    c.start(2);
    c.wait_up(2).await;
    let logs = c.logs(2);
    assert_eq!(logs.matches("the log is damaged").count(), 1, "{logs}");
    assert!(
        logs.contains(&*name) && logs.contains("a new incarnation"),
        "{logs}"
    );
    let aside = set_aside(&c, 2);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(logs.contains(&*aside[0].to_string_lossy()), "{logs}");
    assert_eq!(std::fs::read(aside[0].join(&*name)).unwrap(), bytes);

    // It takes what it lacks from the master: w=3 appends go on, every
    // node holds the same log, and the learner votes again.
    append_range(c.master(), 201, 210, 3).await;
    let lists = c.wait_converged(&[0, 1, 2], 210).await;
    let expected: Vec<String> = (1..=210).map(|i| format!("m{i}")).collect();
    for list in &lists {
        let messages: Vec<&String> = list.iter().map(|(_, m)| m).collect();
        assert_eq!(messages, expected.iter().collect::<Vec<_>>());
    }
    let all = c.addrs.join(",");
    let (code, out, err) = replog(&["verify", "--node", &all]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for("node 3 to vote again", || async {
        c.logs(2).contains("it votes again").then_some(())
    })
    .await;
}

/// Issue 24's reproduction with a damaged segment in place of a replaced
/// disk: with node 3 down, 20 appends are acknowledged with w=2 by nodes 1
/// and 2; node 1 crashes and node 2's segment turns out damaged at its
/// first record. Node 2 heals to an empty log and is a learner: nodes 2
/// and 3 elect no master, and once node 1 is back every node holds all 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_disk_and_a_crash_lose_no_majority_acknowledged_append() {
    let mut c = Cluster::new(3, true, |_| Vec::new());
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    c.kill(2);
    append_range(c.master(), 1, 20, 2).await;
    c.kill(1);
    c.kill(0);
    let files = segments(&c, 1);
    assert_eq!(files.len(), 1, "{files:?}");
    flip(&files[0], 20);

    c.start(1);
    c.start(2);
    wait_for("node 3 to have asked for votes twice", || async {
        let asked = c.logs(2).matches("asking for votes").count();
        (asked >= 2).then_some(())
    })
    .await;
    assert!(c.logs(1).contains("the log is damaged"), "{}", c.logs(1));
    for i in [1, 2] {
        assert!(!is_master(&c, i).await, "node {} became master", i + 1);
    }

    c.start(0);
    let lists = c.wait_converged(&[0, 1, 2], 20).await;
    let expected: Vec<(u64, String)> = (1..=20).map(|i| (i, format!("m{i}"))).collect();
    for list in &lists {
        assert_eq!(*list, expected);
    }
    assert!(!c.data_dir(0).join("rollback").exists(), "node 1 cut");
}
