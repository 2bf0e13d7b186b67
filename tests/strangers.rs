//! A cluster without a key still keeps out strangers: a forged hello from
//! an id that is no member, at the last epoch there is, and forged vote
//! requests at that epoch while no master lives, are refused with one log
//! line and change nothing (an older release welcomed the hello, and every
//! node then asked for votes in an epoch that wrapped to 0, forever). And a
//! node without a key refuses to start beyond loopback unless told
//! `--insecure`. A master of an older node protocol, whose entries carry no
//! log and number, is refused as well.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use replog::client::Client;
use replog::entry::{Position, EPOCH_LIMIT};
use replog::node::config::Cluster as ClusterList;
use replog::wire::{Frame, Hello, Role, NODE_PROTOCOL_VERSION};

/// A node's hello (a master's or a candidate's) naming `c`'s cluster, as a
/// client written from docs/protocol.md would send it.
fn node_hello(c: &Cluster, role: Role) -> Vec<u8> {
    node_hello_of(c, role, NODE_PROTOCOL_VERSION)
}

/// [`node_hello`] saying node protocol `version`.
fn node_hello_of(c: &Cluster, role: Role, version: u32) -> Vec<u8> {
    framed(&Frame::Hello(Hello {
        version,
        cluster: Some(
            ClusterList::parse(&c.cluster_arg, None)
                .unwrap()
                .fingerprint(),
        ),
        role,
        nonce: None,
        token: None,
    }))
}

/// Sends `hello` (and then `then`, if any) to node `i`; returns the
/// reason of the `Refused` it is answered with.
fn refused(c: &Cluster, i: usize, hello: Vec<u8>, then: Option<Frame>) -> String {
    let mut s = TcpStream::connect(&c.addrs[i]).unwrap();
    s.write_all(&hello).unwrap();
    if let Some(frame) = then {
        s.write_all(&framed(&frame)).unwrap();
    }
    let (frames, closed) = read_frames(&mut s, Duration::from_secs(5));
    assert!(closed, "node {i} kept the connection open: {frames:?}");
    match frames.last() {
        Some(Frame::Refused { reason }) => reason.clone(),
        other => panic!("node {i} answered {other:?}, not a refusal ({frames:?})"),
    }
}

/// Every node's log, as text.
async fn lists(c: &Cluster, nodes: &[usize]) -> Vec<Vec<(u64, String)>> {
    let mut out = Vec::new();
    for &i in nodes {
        let client = Client::connect(&c.addrs[i]).await.unwrap();
        out.push(text(client.list_all(1).await.unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_hello_at_the_last_epoch_is_refused_and_changes_nothing() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    for i in 1..=5 {
        append(c.master(), &format!("before-{i}"), 3).await.unwrap();
    }
    let epoch = c.wait_up(0).await.epoch;

    let stranger = Role::Master {
        id: "9".into(),
        epoch: u64::MAX,
    };
    let reason = refused(&c, 1, node_hello(&c, stranger), None);
    assert!(
        reason.contains("node '9', which is not a member of this cluster"),
        "{reason}"
    );
    // A member's name at an epoch no election reaches is refused too.
    let impostor = Role::Master {
        id: "n3".into(),
        epoch: EPOCH_LIMIT,
    };
    let reason = refused(&c, 2, node_hello(&c, impostor), None);
    assert!(reason.contains("which no election can reach"), "{reason}");

    // Appends go on at once, with the master of the same epoch.
    let seq = append(c.master(), "after", 3).await.unwrap();
    assert_eq!(seq, 6);
    for i in 0..3 {
        assert_eq!(c.wait_up(i).await.epoch, epoch, "node {i} moved epoch");
    }
    // Nothing was cut anywhere.
    let expected: Vec<(u64, String)> = (1..=5)
        .map(|i| (i, format!("before-{i}")))
        .chain([(6, "after".to_string())])
        .collect();
    assert_eq!(lists(&c, &[0, 1, 2]).await, vec![expected; 3]);
    for i in 0..3 {
        assert!(!c.data_dir(i).join("rollback").exists(), "node {i} cut");
    }
    // One line each says what was refused.
    let lines = |i: usize, what: &str| {
        let log = c.logs(i);
        let n = log.lines().filter(|l| l.contains(what)).count();
        assert_eq!(n, 1, "node {i}: {log}");
    };
    lines(
        1,
        "a master connection from node '9', which is not a member",
    );
    lines(2, "a master connection from node 'n3' claims epoch");
}

/// Copies directory `from` (and what it holds) to `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        match e.file_type().unwrap().is_dir() {
            true => copy_dir(&e.path(), &target),
            false => drop(std::fs::copy(e.path(), target).unwrap()),
        }
    }
}

/// Nodes of two clusters without a key, with the same ids: a data
/// directory of cluster A started among cluster B's nodes (a wrong
/// address, a reused machine) is refused by them and refuses them, since
/// its directory records A's id; it keeps its log untouched. (A has made
/// a membership change, so n3's `--cluster` is ignored.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_with_the_same_ids_is_refused_and_keeps_its_log() {
    let mut a = Cluster::new(3, true, |_| flags(FAST));
    a.start_all();
    a.wait_healthy(&[1, 2]).await;
    append(a.master(), "a-1", 3).await.unwrap();
    // A makes a change, so that n3's --cluster is ignored when it starts
    // among B's nodes (before any change it would refuse to start).
    let all_a = a.addrs.join(",");
    let (code, out, err) = replog(&["member", "add", "n9=127.0.0.1:1", "--node", &all_a]);
    assert_eq!(code, 0, "{out}{err}");
    append(a.master(), "a-2", 3).await.unwrap();
    for i in 0..3 {
        a.kill(i);
    }
    let mut b = Cluster::new(3, true, |_| flags(FAST));
    copy_dir(&a.data_dir(2), &b.data_dir(2));
    b.start_all();
    // B's n1 and n2 are a majority: they elect a master and take appends.
    let two = format!("{},{}", b.addrs[0], b.addrs[1]);
    wait_until("cluster B to take an append", || {
        let args = [
            "append",
            "-w",
            "2",
            "--key",
            "b-1",
            "--timeout",
            "2s",
            "--node",
            &two,
            "b-1",
        ];
        (replog(&args).0 == 0).then_some(())
    });
    wait_until("n3 to refuse B's master", || {
        b.logs(2)
            .contains("belongs to another cluster")
            .then_some(())
    });
    let (code, out, err) = replog(&["append", "-w", "2", "--node", &two, "b-2"]);
    assert_eq!(code, 0, "{out}{err}");
    // A's entry is all n3 holds; nothing of it was cut.
    let client = Client::connect(&b.addrs[2]).await.unwrap();
    let held: Vec<String> = (text(client.list_all(1).await.unwrap()).into_iter())
        .map(|(_, m)| m)
        .collect();
    assert_eq!(held, ["a-1", "a-2"], "{}", b.logs(2));
    assert!(!b.data_dir(2).join("rollback").exists(), "{}", b.logs(2));
    // B's master says why n3 does not replicate.
    wait_until("B's master to say why n3 refuses it", || {
        let (_, out, _) = replog(&["health", "--node", &two, "--json"]);
        out.contains("belongs to another cluster").then_some(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vote_requests_at_the_last_epoch_while_no_master_lives_are_refused() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    append(c.master(), "before", 3).await.unwrap();
    let epoch = c.wait_up(0).await.epoch;
    c.kill(0);

    let request = Frame::VoteRequest {
        epoch: u64::MAX,
        last: Position {
            epoch: u64::MAX - 1,
            seq: u64::MAX,
        },
        pre: false,
    };
    let hello = |id: &str| node_hello(&c, Role::Candidate { id: id.to_string() });
    for (node, id) in [(1, "9"), (2, "9"), (1, "n3")] {
        let reason = refused(&c, node, hello(id), Some(request.clone()));
        assert!(
            reason.contains("not a member") || reason.contains("which no election can reach"),
            "{reason}"
        );
    }

    // The two left elect a master in the next epochs, and take appends.
    let survivors = format!("{},{}", c.addrs[1], c.addrs[2]);
    let (code, out, err) = replog(&["append", "--node", &survivors, "-w", "2", "after"]);
    assert_eq!(code, 0, "{out}{err}");
    // After the new master's epoch marker, if it did not know "before"
    // committed yet.
    let seq: u64 = out.trim().parse().unwrap();
    assert!(seq == 2 || seq == 3, "{out}");
    for i in 1..3 {
        let now = c.wait_up(i).await.epoch;
        assert!(now > epoch && now < epoch + 100, "node {i} at epoch {now}");
    }
    let expected = vec![(1, "before".to_string()), (seq, "after".to_string())];
    assert_eq!(lists(&c, &[1, 2]).await, vec![expected; 2]);
    for i in 1..3 {
        let log = c.logs(i);
        assert!(log.contains("refusing a vote request"), "{log}");
    }
}

#[test]
fn a_node_without_a_key_refuses_to_listen_beyond_loopback_unless_insecure() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_replogd"))
            .args(["--id", "1", "--data-dir"])
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let wildcard = format!("1=0.0.0.0:{port}");
    for extra in [
        vec!["--cluster", wildcard.as_str()],
        vec![
            "--cluster",
            &format!("1=127.0.0.1:{port}"),
            "--listen",
            &format!("0.0.0.0:{port}"),
        ],
    ] {
        let out = run(&extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "refusing to listen on 0.0.0.0:{port} without a cluster key"
            )) && err.contains("--cluster-key-file")
                && err.contains("--insecure"),
            "{err}"
        );
    }
    // Nothing was started: the data directory is as it was.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `--insecure` is the way to run without a key beyond loopback on
/// purpose: in a network namespace of the test's own making (no other
/// address is listened on), the node starts, says so loudly, and `health`
/// shows it.
#[test]
fn an_insecure_node_beyond_loopback_starts_and_says_so() {
    if common::netns::skipped() {
        return;
    }
    let net = common::netns::Netns::new(1);
    let mut c = Cluster::in_netns(&net, 1, false, |_| flags(&["--insecure"]));
    c.start_all();
    let args = ["health", "--node", &c.addrs[0], "--wait", "30s"];
    let out = net.replog(net.clients(), &args).wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", c.logs(0));
    assert!(report.contains("cluster: NOT AUTHENTICATED"), "{report}");
    let log = c.logs(0);
    assert!(log.contains("THIS CLUSTER IS UNAUTHENTICATED"), "{log}");
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_of_an_older_node_protocol_is_refused_and_changes_nothing() {
    let mut c = Cluster::new(3, true, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let seq = append(c.master(), "before", 3).await.unwrap();
    let epoch = c.wait_up(0).await.epoch;
    // A member, at the next epoch, but speaking node protocol 9: it
    // would not follow consumer groups.
    let older = Role::Master {
        id: "n1".into(),
        epoch: epoch + 1,
    };
    let reason = refused(&c, 1, node_hello_of(&c, older, 9), None);
    assert!(
        reason.contains("takes entries only from a master of 10 or later; upgrade the master"),
        "{reason}"
    );
    assert_eq!(append(c.master(), "after", 3).await.unwrap(), seq + 1);
    assert_eq!(c.wait_up(1).await.epoch, epoch, "node 1 moved epoch");
}
