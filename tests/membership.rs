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

/// A node started by hand (`--join`), killed when dropped; if a test
/// fails meanwhile, its log (the file its stderr went to, if any) is
/// printed, as a cluster's nodes' logs are.
struct Joiner(Child, Option<std::path::PathBuf>);

impl Drop for Joiner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let (true, Some(log)) = (std::thread::panicking(), &self.1) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            eprintln!("---- {} ----\n{text}", log.display());
        }
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
    let path = log.to_path_buf();
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
    Joiner(child, Some(path))
}

/// A cluster of `n` nodes on disk with the fast timings and `extra`
/// flags, started and able to take appends.
fn started(n: usize, extra: &[&str]) -> Cluster {
    let mut c = Cluster::new(n, true, |_| flags(&[FAST, extra].concat()));
    c.start_all();
    let all = c.addrs.join(",");
    let (code, out, err) = replog(&["health", "--node", &all, "--wait", "30s"]);
    assert_eq!(code, 0, "{out}{err}");
    c
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

/// Waits until the node at `addr` lists "after", then checks that it holds
/// every append in `acked` at its sequence number.
fn holds_every(addr: &str, acked: &[(u64, String)]) {
    let list = wait_until(&format!("{addr} to hold 'after'"), || {
        let list = log_of(addr)?;
        list.iter().any(|(_, m)| m == "after").then_some(list)
    });
    for (seq, message) in acked {
        assert!(
            list.contains(&(*seq, message.clone())),
            "{addr} lacks {message} at {seq}: {list:?}"
        );
    }
    // The configuration entries (and the markers of new masters) took no
    // number: the messages run 1, 2, 3, ... without a gap.
    let numbers: Vec<u64> = list.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        numbers,
        (1..=list.len() as u64).collect::<Vec<_>>(),
        "{addr}"
    );
}

/// The node at `addr`'s log as (seq, message), by `replog list --json`.
fn log_of(addr: &str) -> Option<Vec<(u64, String)>> {
    let (code, out, _) = replog(&["list", "--json", "--node", addr]);
    let list: serde_json::Value = serde_json::from_str(&out).ok()?;
    let entries = (list.as_array()?.iter())
        .map(|m| Some((m["seq"].as_u64()?, m["message"].as_str()?.to_string())))
        .collect::<Option<Vec<_>>>()?;
    (code == 0).then_some(entries)
}

/// What a writer had acknowledged so far: (seq, message).
type Acked = Arc<Mutex<Vec<(u64, String)>>>;

/// A probe for `wait_until`: whether the members `nodes` name are exactly
/// `want`, every one a voter.
fn voters_are(nodes: &str, want: &[&str]) -> impl FnMut() -> Option<()> {
    let want: Vec<(String, bool)> = want.iter().map(|id| (id.to_string(), true)).collect();
    let nodes = nodes.to_string();
    move || (members(&nodes).as_ref() == Some(&want)).then_some(())
}

/// Appends `w-<i>` with w=majority through every listed node until
/// stopped, recording what was acknowledged.
fn writer(nodes: String, stop: Arc<AtomicBool>) -> (std::thread::JoinHandle<()>, Acked) {
    let acked: Acked = Arc::default();
    let record = acked.clone();
    let handle = std::thread::spawn(move || {
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
                0 => record
                    .lock()
                    .unwrap()
                    .push((out.trim().parse::<u64>().unwrap(), message)),
                // Not acknowledged (no master for a moment): fine, not promised.
                3..=5 => eprintln!("writer: {message}: exit {code}: {err}"),
                _ => panic!("writer: {message}: exit {code}: {out}{err}"),
            }
        }
    });
    (handle, acked)
}

/// Lets the writer get `n` more appends acknowledged, then stops it;
/// returns everything it had acknowledged.
fn stop_after(
    writing: (std::thread::JoinHandle<()>, Acked),
    stop: &AtomicBool,
    n: usize,
) -> Vec<(u64, String)> {
    let (handle, acked) = writing;
    let before = acked.lock().unwrap().len();
    wait_until("the writer to go on", || {
        (acked.lock().unwrap().len() >= before + n).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    acked
}

#[test]
fn a_node_joins_as_a_learner_and_the_master_removes_itself_under_a_majority_writer() {
    let mut c = started(3, &[]);
    let first = c.addrs.join(",");
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
    let voters = |want: &[&str]| voters_are(&all, want);
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
    let acked = stop_after(writing, &stop, 3);

    // Every acknowledged append is on every remaining node at its seq.
    let remaining = [c.addrs[1].clone(), c.addrs[2].clone(), n4.clone()];
    for addr in &remaining {
        holds_every(addr, &acked);
    }
    let (code, out, err) = replog(&["verify", "--node", &remaining.join(",")]);
    assert_eq!(code, 0, "{out}{err}");

    // n3's disk is replaced, and it comes back with a --cluster list that
    // matches no other node's (it names every member, and one more). An
    // empty data directory has no cluster id yet, so it compares lists
    // and refuses the master, saying to start it with --join (a new
    // cluster's nodes must all have the same list).
    c.kill(2);
    std::fs::remove_dir_all(c.data_dir(2)).unwrap();
    let stale = format!("{},n4={n4},n9=127.0.0.1:1", c.cluster_arg);
    let log3 = c.dir.path().join("n3-again.log");
    let n3 = Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args(["--id", "n3", "--cluster", &stale])
        .arg("--data-dir")
        .arg(c.data_dir(2))
        .args(FAST)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log3).unwrap())
        .spawn()
        .unwrap();
    let n3 = Joiner(n3, Some(log3.clone()));
    wait_until("n3 to refuse the master, naming --join", || {
        let said = std::fs::read_to_string(&log3).ok()?;
        said.contains("start every node of a new cluster with the same one, and a node joining a running cluster (or replacing a lost disk) with --join NODE").then_some(())
    });
    drop(n3);
    // Started with --join, it takes the master, and the cluster's id.
    let members = remaining.join(",");
    let _n3 = join(
        "n3",
        &c.addrs[2],
        &members,
        &c.data_dir(2),
        &c.dir.path().join("n3-joined.log"),
        &[],
    );
    holds_every(&c.addrs[2], &acked);
}

#[test]
fn a_change_on_a_cluster_with_a_key_needs_the_key() {
    let key = c_key();
    let key_path = key.path().join("key");
    let key_flag = key_path.to_string_lossy().to_string();
    let c = started(3, &["--cluster-key-file", &key_flag]);
    let nodes = c.addrs.join(",");
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
fn c_key() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "membership-key-0123456789abcdef\n").unwrap();
    dir
}

/// Grow 3 → 5 (two nodes join), shrink 5 → 3 by removing the master and
/// another node, then kill the new master, all under a w=majority writer:
/// every acknowledged append is on every node still up at its sequence
/// number.
#[test]
fn grow_to_five_shrink_to_three_and_lose_the_new_master_under_a_majority_writer() {
    let mut c = started(3, &[]);
    let first = c.addrs.join(",");
    let n4 = format!("127.0.0.1:{}", free_port());
    let n5 = format!("127.0.0.1:{}", free_port());
    let all = format!("{first},{n4},{n5}");
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(all.clone(), stop.clone());
    let path = |name: &str| c.dir.path().join(name);
    let _n4 = join("n4", &n4, &c.addrs[1], &path("n4"), &path("n4.log"), &[]);
    let _n5 = join("n5", &n5, &c.addrs[2], &path("n5"), &path("n5.log"), &[]);
    let voters = |want: &[&str]| voters_are(&all, want);
    for (id, addr) in [("n4", &n4), ("n5", &n5)] {
        let (code, out, err) = replog(&["member", "add", &format!("{id}={addr}"), "--node", &all]);
        assert_eq!(code, 0, "{out}{err}");
    }
    wait_until("five voters", voters(&["n1", "n2", "n3", "n4", "n5"]));
    for id in ["n1", "n2"] {
        let (code, out, err) = replog(&["member", "remove", id, "--node", &all]);
        assert_eq!(code, 0, "{out}{err}");
    }
    wait_until("three voters", voters(&["n3", "n4", "n5"]));
    // Each node removed holds its removal and says so.
    for i in [0, 1] {
        wait_until(&format!("n{} to say it was removed", i + 1), || {
            let log = c.logs(i);
            let said = log.contains("is no longer a member")
                || log.contains("was removed from the cluster");
            said.then_some(())
        });
    }
    // Kill the new master; the two left elect one of them.
    let rest = format!("{},{n4},{n5}", c.addrs[2]);
    let master = wait_until("the new master", || {
        let (code, out, _) = replog(&["member", "list", "--json", "--node", &rest]);
        let list: serde_json::Value = serde_json::from_str(&out).ok()?;
        let master = (list.as_array()?.iter()).find(|m| m["master"] == true)?;
        (code == 0).then(|| master["id"].as_str().unwrap().to_string())
    });
    let survivors: Vec<String> = match master.as_str() {
        "n3" => {
            c.kill(2);
            vec![n4.clone(), n5.clone()]
        }
        "n4" => {
            drop(_n4);
            vec![c.addrs[2].clone(), n5.clone()]
        }
        _ => {
            drop(_n5);
            vec![c.addrs[2].clone(), n4.clone()]
        }
    };
    let (code, out, err) = replog(&[
        "append",
        "-w",
        "majority",
        "--node",
        &survivors.join(","),
        "--timeout",
        "30s",
        "after",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let acked = stop_after(writing, &stop, 3);
    for addr in &survivors {
        holds_every(addr, &acked);
    }
}

/// A dead node replaced by a new machine (new id, new address, empty
/// disk) under a w=majority writer: add the new one, wait for it to vote,
/// remove the dead one.
#[test]
fn a_dead_node_is_replaced_by_a_new_machine_under_a_majority_writer() {
    let mut c = started(3, &[]);
    c.kill(2);
    let n4 = format!("127.0.0.1:{}", free_port());
    let all = format!("{},{},{n4}", c.addrs[0], c.addrs[1]);
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(all.clone(), stop.clone());
    let _n4 = join(
        "n4",
        &n4,
        &c.addrs[0],
        &c.dir.path().join("n4"),
        &c.dir.path().join("n4.log"),
        &[],
    );
    let (code, out, err) = replog(&["member", "add", &format!("n4={n4}"), "--node", &all]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("n4 to vote", || {
        let m = members(&all)?;
        m.contains(&("n4".to_string(), true)).then_some(())
    });
    let (code, out, err) = replog(&["member", "remove", "n3", "--node", &all]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("n1, n2 and n4", voters_are(&all, &["n1", "n2", "n4"]));
    let (code, out, err) = replog(&["append", "-w", "all", "--node", &all, "after"]);
    assert_eq!(code, 0, "{out}{err}");
    let acked = stop_after(writing, &stop, 3);
    let (code, out, err) = replog(&["verify", "--node", &all]);
    assert_eq!(code, 0, "{out}{err}");
    holds_every(&n4, &acked);
}

/// A node down through a change, and behind the master's retention past
/// the entry that records it, is reset when it comes back: the reset
/// carries the members in force at its base, so it acts on the cluster's
/// members and not on the older ones its own log (or `--cluster`) holds.
#[test]
fn a_node_reset_past_a_change_acts_on_the_members_in_force_at_its_base_and_ignores_its_list() {
    let retention = ["--segment-bytes", "4096", "--retention-bytes", "16KiB"];
    let mut c = started(3, &retention);
    // Every node of a new cluster starts as a learner (a new incarnation)
    // and votes once it holds everything committed: n3 killed before that
    // stays listed as a learner, not as the voter the test counts on.
    let three = c.addrs.join(",");
    wait_until("n3 to vote", voters_are(&three, &["n1", "n2", "n3"]));
    c.kill(2);
    let n4 = format!("127.0.0.1:{}", free_port());
    let all = format!("{},{},{n4}", c.addrs[0], c.addrs[1]);
    let _n4 = join(
        "n4",
        &n4,
        &c.addrs[0],
        &c.dir.path().join("n4"),
        &c.dir.path().join("n4.log"),
        &retention,
    );
    let (code, out, err) = replog(&["member", "add", &format!("n4={n4}"), "--node", &all]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("n4 to vote", voters_are(&all, &["n1", "n2", "n3", "n4"]));
    // The log grows well past retention without n3: the entries that
    // record n4's addition and promotion are deleted on the master.
    let (code, out, err) = replog(&[
        "bench", "--node", &all, "-w", "majority", "--count", "2000", "--warmup", "0s",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("the master's retention to pass the changes", || {
        let (_, out, _) = replog(&["verify", "--node", &all, "--json"]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).ok()?;
        (v["compared_from"].as_u64()? > 100).then_some(())
    });
    // n3 comes back: its log and its --cluster know three voters, the
    // cluster four, so a majority is 3 and not 2.
    c.start(2);
    wait_until("n3 to be reset", || {
        c.logs(2)
            .contains("lacks entries its master has deleted by retention")
            .then_some(())
    });
    let n3 = c.addrs[2].clone();
    let needed = || {
        let (_, out, _) = replog(&["health", "--node", &n3, "--json"]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).ok()?;
        v["needed"].as_u64()
    };
    wait_until("n3 to count four voters", || (needed()? == 3).then_some(()));
    // And it keeps them past a restart (`base.members`).
    c.kill(2);
    c.start(2);
    wait_until("n3 to count four voters again", || {
        (needed()? == 3).then_some(())
    });
    let (code, out, err) = replog(&["append", "-w", "all", "--node", &all, "after"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = replog(&["verify", "--node", &all]);
    assert_eq!(code, 0, "{out}{err}");
    // A change was made: a --cluster list that now names n4 too is
    // ignored, and said to be, once.
    c.kill(1);
    c.cluster_arg = format!("{},n4={n4}", c.cluster_arg);
    c.start(1);
    wait_until("n2 to say its --cluster is ignored", || {
        let said = c.logs(1);
        (said
            .matches("is ignored: it only seeds a new cluster")
            .count()
            == 1)
            .then_some(())
    });
    let (code, out, err) = replog(&["append", "-w", "all", "--node", &all, "later"]);
    assert_eq!(code, 0, "{out}{err}");
    let said = c.logs(1);
    assert_eq!(
        said.matches("is ignored: it only seeds").count(),
        1,
        "{said}"
    );
}

/// Before any change, every node acts on its own --cluster list, so a node
/// restarted with another list than the cluster was started with is
/// refused at start (its data directory records the cluster's id).
#[test]
fn a_node_restarted_with_another_list_before_any_change_refuses_to_start() {
    // Able to take appends first: spawned is not yet listening.
    let mut c = started(3, &[]);
    let first = c.addrs.join(",");
    let (code, out, err) = replog(&["append", "-w", "all", "--node", &first, "one"]);
    assert_eq!(code, 0, "{out}{err}");
    c.kill(2);
    let list = format!("{},n4=127.0.0.1:1", c.cluster_arg);
    let out = Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args(["--id", "n3", "--cluster", &list])
        .arg("--data-dir")
        .arg(c.data_dir(2))
        .args(FAST)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is not the list this node's cluster was started with")
            && err.contains("no membership change has been made"),
        "{err}"
    );
    // With the list it was started with, it starts and catches up.
    c.start(2);
    let (code, out, err) = replog(&["append", "-w", "all", "--node", &first, "two"]);
    assert_eq!(code, 0, "{out}{err}");
}
