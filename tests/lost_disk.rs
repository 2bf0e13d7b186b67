//! One lost disk and one crash, as an operator would meet them (issue 24's
//! reproduction, real processes, default settings): with node 3 down, 20
//! appends are acknowledged with w=2 by nodes 1 and 2; node 2's disk is
//! replaced and node 1 crashes. Node 2 comes back empty, a learner: its
//! vote counts only toward an election every node grants, so node 3, which
//! lacks the 20 appends, is not elected with it. Once node 1 is back, every
//! node holds all 20. (An older release let node 2 vote at once: nodes 2
//! and 3 elected node 3, and node 1 cut the 20 into a rollback file.)

mod common;

use common::*;
use replog::client::Client;
use replog::wire::NodeRole;

/// Whether node `i` says it is master.
async fn is_master(c: &Cluster, i: usize) -> bool {
    match Client::connect(&c.addrs[i]).await {
        Ok(client) => client.welcome().role == NodeRole::Master,
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_disk_and_a_crash_lose_no_majority_acknowledged_append() {
    let mut c = Cluster::new(3, true, |_| Vec::new());
    c.start_all();
    let all = c.addrs.join(",");
    let (code, out, err) = replog(&["health", "--node", &all, "--wait", "30s"]);
    assert_eq!(code, 0, "{out}{err}");

    c.kill(2);
    for i in 1..=20 {
        let message = format!("acked-{i}");
        let (code, out, err) = replog(&["append", "-w", "2", "--node", &all, &message]);
        assert_eq!(code, 0, "{message}: {out}{err}");
    }
    c.kill(1);
    c.kill(0);
    std::fs::remove_dir_all(c.data_dir(1)).unwrap();

    c.start(1);
    c.start(2);
    // Node 3 asks for votes again and again; node 2, empty, a learner,
    // grants its yes, which does not elect. No master while node 1 is down.
    wait_for("node 3 to have asked for votes twice", || async {
        let asked = c.logs(2).matches("asking for votes").count();
        (asked >= 2).then_some(())
    })
    .await;
    assert!(c.logs(1).contains("a new incarnation"), "{}", c.logs(1));
    for i in [1, 2] {
        assert!(!is_master(&c, i).await, "node {} became master", i + 1);
    }

    c.start(0);
    let expected: Vec<(u64, String)> = (1..=20).map(|i| (i, format!("acked-{i}"))).collect();
    let lists = c.wait_converged(&[0, 1, 2], 20).await;
    for list in &lists {
        assert_eq!(*list, expected);
    }
    assert!(!c.data_dir(0).join("rollback").exists(), "node 1 cut");
    // Node 2 caught up, and votes again.
    wait_for("node 2 to vote again", || async {
        c.logs(1).contains("it votes again").then_some(())
    })
    .await;
}

/// A data directory holds its node's identity: started by another node's
/// flags, the daemon refuses it with a sentence naming both, and the
/// directory is left as it was.
#[test]
fn a_data_directory_of_another_node_is_refused_at_start() {
    let mut c = Cluster::new(1, true, |_| Vec::new());
    c.start_all();
    let (code, out, err) = replog(&["health", "--node", c.master(), "--wait", "30s"]);
    assert_eq!(code, 0, "{out}{err}");
    c.kill(0);
    let identity = std::fs::read_to_string(c.data_dir(0).join("identity")).unwrap();
    assert!(identity.starts_with("node n1\nincarnation "), "{identity}");
    let port = free_port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args(["--id", "n2", "--cluster", &format!("n2=127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(c.data_dir(0))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("belongs to node 'n1', not 'n2': give each node its own --data-dir"),
        "{err}"
    );
    let after = std::fs::read_to_string(c.data_dir(0).join("identity")).unwrap();
    assert_eq!(after, identity);
}

/// A learner's yes is a `LearnerVote`, which a candidate of node version 5
/// cannot read: such a candidate is answered `VoteReply{granted: false}`,
/// over a real connection, and a version-6 one gets the `LearnerVote`.
#[test]
fn a_learner_answers_an_old_candidate_with_a_no_and_a_new_one_with_a_learners_yes() {
    use replog::entry::Position;
    use replog::node::config::Cluster as ClusterList;
    use replog::wire::{Frame, Hello, Role};
    use std::io::Write;

    let mut c = Cluster::new(3, true, |_| Vec::new());
    // Node 2 alone, a new incarnation: a learner that knows of no epoch.
    c.start(1);
    wait_until("node 2 to listen", || {
        std::net::TcpStream::connect(&c.addrs[1]).ok()
    });
    let ask = |version: u32| {
        let hello = Frame::Hello(Hello {
            version,
            cluster: Some(
                ClusterList::parse(&c.cluster_arg, None)
                    .unwrap()
                    .fingerprint(),
            ),
            role: Role::Candidate { id: "n1".into() },
            nonce: None,
            token: None,
        });
        let request = Frame::VoteRequest {
            epoch: 1,
            last: Position::default(),
            pre: true,
        };
        let mut s = std::net::TcpStream::connect(&c.addrs[1]).unwrap();
        s.write_all(&framed(&hello)).unwrap();
        s.write_all(&framed(&request)).unwrap();
        let (frames, _) = read_frames(&mut s, std::time::Duration::from_secs(5));
        frames.last().cloned()
    };
    assert_eq!(
        ask(5),
        Some(Frame::VoteReply {
            epoch: 1,
            term: 0,
            granted: false,
            pre: true
        })
    );
    assert_eq!(
        ask(6),
        Some(Frame::LearnerVote {
            epoch: 1,
            term: 0,
            pre: true
        })
    );
}

/// The price of learners in a cluster of three: a node back with an empty
/// disk while another node is down takes no master of an epoch past 1 (it
/// cannot know that master is not a deposed one) until that node is back
/// and has told it its epoch; then it catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_takes_no_master_past_epoch_1_until_enough_nodes_told_it_their_epochs() {
    // A longer election timeout: the master, alone once the other two are
    // down, stays master (CheckQuorum) past the learner's restart, and
    // dials it, so that the learner's refusal is there to see.
    let slow = ["--election-timeout", "4s"];
    let mut c = Cluster::new(3, true, |_| flags(&[FAST, &slow[..]].concat()));
    c.start_all();
    let all = c.addrs.join(",");
    let (code, out, err) = replog(&["health", "--node", &all, "--wait", "30s"]);
    assert_eq!(code, 0, "{out}{err}");
    // A failover: node 2 or 3 becomes master of epoch 2 or later.
    c.kill(0);
    // Tried again (with its key, so once) if the election outlasts the
    // wait of the node it reached.
    let append = [
        "append", "-w", "2", "--node", &all, "--key", "before", "before",
    ];
    wait_for("an append after the failover", || async {
        (replog(&append).0 == 0).then_some(())
    })
    .await;
    c.start(0);
    let master = wait_for("a master of the others", || async {
        for i in [1, 2] {
            if is_master(&c, i).await {
                return Some(i);
            }
        }
        None
    })
    .await;
    let (learner, other) = if master == 1 { (2, 0) } else { (1, 0) };
    // The learner's disk is lost while the other node is down.
    c.kill(other);
    c.kill(learner);
    std::fs::remove_dir_all(c.data_dir(learner)).unwrap();
    c.start(learner);
    wait_for("the learner to refuse the master", || async {
        let log = c.logs(learner);
        // The first refusal is logged (later ones are counted in the next
        // line, ten seconds on), whether the master dialled before the
        // learner heard its epoch or after.
        log.contains("takes a master only once it has heard the newest epoch from 2 other node(s)")
            .then_some(())
    })
    .await;
    let list = Client::connect(&c.addrs[learner])
        .await
        .unwrap()
        .list_all(1)
        .await
        .unwrap();
    assert!(list.is_empty(), "the learner took entries: {list:?}");
    // The other node is back: the learner hears its epoch, takes the
    // master and catches up.
    c.start(other);
    let lists = c.wait_converged(&[0, 1, 2], 1).await;
    for list in lists {
        assert_eq!(list, vec![(list[0].0, "before".to_string())]);
    }
}

/// What the master's health, the CLI and the metrics say of a learner: a
/// node back with an empty disk whose entries are held up (a long
/// `--replicate-delay`) is shown as a learner, lagging, until, restarted
/// without the delay, it catches up and votes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_is_shown_as_one_in_health_and_metrics_until_it_votes_again() {
    let metrics: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut c = Cluster::new(3, true, |i| {
        flags(&[FAST, &["--metrics-listen", &metrics[i]][..]].concat())
    });
    c.start_all();
    let all = c.addrs.join(",");
    let (code, out, err) = replog(&["health", "--node", &all, "--wait", "30s"]);
    assert_eq!(code, 0, "{out}{err}");
    for i in 1..=3 {
        let (code, out, err) = replog(&["append", "-w", "3", "--node", &all, &format!("m{i}")]);
        assert_eq!(code, 0, "{out}{err}");
    }
    c.kill(2);
    std::fs::remove_dir_all(c.data_dir(2)).unwrap();
    let normal = c.extra[2].clone();
    c.extra[2].extend(flags(&["--replicate-delay", "1h"]));
    c.start(2);

    // The master shows it as a learner, three entries behind.
    let master = c.master().to_string();
    let health = ["health", "--node", &master, "--json"];
    let node3 = wait_for("the master to show node 3 as a learner", || async {
        let (_, out, _) = replog(&health);
        let report: serde_json::Value = serde_json::from_str(&out).ok()?;
        let n = report["nodes"][2].clone();
        (n["role"] == "learner").then_some(n)
    })
    .await;
    assert_eq!(node3["lag"], 3, "{node3}");
    let (code, table, err) = replog(&["health", "--node", c.master()]);
    assert_eq!(code, 0, "{table}{err}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("n3 ") && l.contains(" learner ")),
        "{table}"
    );
    // So do the node itself and the metrics.
    let (_, own, _) = replog(&["health", "--node", &c.addrs[2], "--json"]);
    let own: serde_json::Value = serde_json::from_str(&own).unwrap();
    assert_eq!(own["role"], "learner", "{own}");
    let scrape = |i: usize| {
        let mut s = std::net::TcpStream::connect(&metrics[i]).unwrap();
        use std::io::{Read, Write};
        write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    assert!(scrape(0).contains("replog_secondary_learner{node=\"n3\"} 1"));
    assert!(scrape(0).contains("replog_secondary_learner{node=\"n2\"} 0"));
    assert!(scrape(2).contains("replog_role{role=\"learner\"} 1"));

    // Back without the delay, it catches up and votes again: a secondary.
    c.kill(2);
    let promotions = c.logs(2).matches("it votes again").count();
    c.extra[2] = normal;
    c.start(2);
    wait_for("node 3 to vote again", || async {
        let now = c.logs(2).matches("it votes again").count();
        (now > promotions).then_some(())
    })
    .await;
    wait_for("the master to show node 3 as a secondary", || async {
        let (_, out, _) = replog(&health);
        let report: serde_json::Value = serde_json::from_str(&out).ok()?;
        (report["nodes"][2]["role"] == "secondary").then_some(())
    })
    .await;
    assert!(scrape(0).contains("replog_secondary_learner{node=\"n3\"} 0"));
}
