//! Membership changes on a running cluster, real processes: a node joins
//! (`replogd --join`, `replog member add`) as a learner and is promoted;
//! the master removes itself and the others elect a new one; a writer with
//! w=majority runs throughout and every append acknowledged is on every
//! remaining node at its printed sequence number. On a cluster with a key,
//! a change needs the key.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;

/// A node started by hand (`--join`), killed when dropped.
struct Joiner(Child);

impl Drop for Joiner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts node `id` joining the cluster at `join`, listening at `addr`,
/// with its data in `dir`, its log in `log`.
fn join(
    id: &str,
    addr: &str,
    join: &str,
    dir: &std::path::Path,
    log: &std::path::Path,
    extra: &[&str],
) -> Joiner {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args(["--id", id, "--join", join, "--listen", addr])
        .arg("--data-dir")
        .arg(dir)
        .args(FAST)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Joiner(child)
}

/// The members as `replog member list --json` prints them: (id, voter).
fn members(nodes: &str) -> Option<Vec<(String, bool)>> {
    let (code, out, _) = replog(&["member", "list", "--json", "--node", nodes]);
    if code != 0 {
        return None;
    }
    let list: serde_json::Value = serde_json::from_str(&out).ok()?;
    let mut members: Vec<(String, bool)> = (list.as_array()?.iter())
        .map(|m| {
            (
                m["id"].as_str().unwrap_or_default().to_string(),
                m["voter"] == true,
            )
        })
        .collect();
    members.sort();
    Some(members)
}

/// Appends `w-<i>` with w=majority through every listed node until
/// stopped; returns what was acknowledged, (seq, message).
fn writer(nodes: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<(u64, String)>> {
    std::thread::spawn(move || {
        let acked = Mutex::new(Vec::new());
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let message = format!("w-{i}");
            let key = format!("key-{i}");
            let args = [
                "append",
                "-w",
                "majority",
                "--timeout",
                "20s",
                "--node",
                &nodes,
                "--key",
                &key,
                &message,
            ];
            let (code, out, err) = replog(&args);
            match code {
                0 => acked
                    .lock()
                    .unwrap()
                    .push((out.trim().parse::<u64>().unwrap(), message)),
                // Not acknowledged (no master for a moment): fine, not promised.
                3..=5 => eprintln!("writer: {message}: exit {code}: {err}"),
                _ => panic!("writer: {message}: exit {code}: {out}{err}"),
            }
        }
        acked.into_inner().unwrap()
    })
}

#[test]
fn a_node_joins_as_a_learner_and_the_master_removes_itself_under_a_majority_writer() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    let first = c.addrs.join(",");
    let (code, out, err) = replog(&["health", "--node", &first, "--wait", "30s"]);
    assert_eq!(code, 0, "{out}{err}");
    let n4 = format!("127.0.0.1:{}", free_port());
    let all = format!("{first},{n4}");
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(all.clone(), stop.clone());

    // n4 joins: it knows no member until the master adds it.
    let dir4 = c.dir.path().join("n4");
    let log4 = c.dir.path().join("n4.log");
    let _n4 = join("n4", &n4, &c.addrs[0], &dir4, &log4, &[]);
    let (code, out, err) = replog(&["member", "add", &format!("n4={n4}"), "--node", &first]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("added n4 as a learner"), "{out}");
    // Promoted once it holds everything committed.
    let voters = |want: &[&str]| {
        let want: Vec<(String, bool)> = want.iter().map(|id| (id.to_string(), true)).collect();
        let all = all.clone();
        move || (members(&all).as_ref() == Some(&want)).then_some(())
    };
    wait_until("n4 to be promoted", voters(&["n1", "n2", "n3", "n4"]));

    // The master (n1) removes itself: it steps down once that is committed,
    // and the others elect one of them.
    let (code, out, err) = replog(&["member", "remove", "n1", "--node", &first]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("n1 to be gone", voters(&["n2", "n3", "n4"]));
    wait_until("n1 to say it left", || {
        c.logs(0)
            .contains("was removed from the cluster")
            .then_some(())
    });
    // A few more appends after the change, then the writer stops.
    let (code, out, err) = replog(&["append", "-w", "majority", "--node", &all, "after"]);
    assert_eq!(code, 0, "{out}{err}");
    stop.store(true, Ordering::Relaxed);
    let acked = writing.join().unwrap();
    assert!(acked.len() > 3, "{acked:?}");

    // Every acknowledged append is on every remaining node at its seq.
    let remaining = [c.addrs[1].clone(), c.addrs[2].clone(), n4.clone()];
    for addr in &remaining {
        let list = wait_until(&format!("{addr} to hold 'after'"), || {
            let (code, out, _) = replog(&["list", "--json", "--node", addr]);
            let list: serde_json::Value = serde_json::from_str(&out).ok()?;
            let items: Vec<(u64, String)> = (list.as_array()?.iter())
                .map(|m| {
                    (
                        m["seq"].as_u64().unwrap(),
                        m["message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            (code == 0 && items.iter().any(|(_, m)| m == "after")).then_some(items)
        });
        for (seq, message) in &acked {
            assert!(
                list.contains(&(*seq, message.clone())),
                "{addr} lacks {message} at {seq}: {list:?}"
            );
        }
    }
    let (code, out, err) = replog(&["verify", "--node", &remaining.join(",")]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_change_on_a_cluster_with_a_key_needs_the_key() {
    let key = c_key();
    let key_path = key.0.path().join("key");
    let key_flag = key_path.to_string_lossy().to_string();
    let mut c = Cluster::new(3, true, |_| {
        flags(&[FAST, &["--cluster-key-file", &key_flag][..]].concat())
    });
    c.start_all();
    let nodes = c.addrs.join(",");
    let (code, out, err) = replog(&["health", "--node", &nodes, "--wait", "30s"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = replog(&["member", "remove", "n3", "--node", &nodes]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("proves the cluster key"), "{err}");
    assert_eq!(members(&nodes).map(|m| m.len()), Some(3));
    let (code, out, err) = replog(&[
        "member",
        "remove",
        "n3",
        "--node",
        &nodes,
        "--cluster-key-file",
        &key_flag,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(members(&nodes).map(|m| m.len()), Some(2));
}

/// A directory holding a cluster key file named `key`.
fn c_key() -> (tempfile::TempDir,) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "membership-key-0123456789abcdef\n").unwrap();
    (dir,)
}
