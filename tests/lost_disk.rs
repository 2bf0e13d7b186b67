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
