//! A cluster that is just starting does not refuse appends it could take:
//! secondaries not yet heard from are "connecting", appends wait for quorum
//! to be known, and `health --wait` tells scripts when to go on.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Waits until something accepts TCP connections on `addr`: the daemon has
/// bound its listener (what systemd's READY=1 says), nothing more.
fn wait_listening(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never listened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn spawn_replog(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(args)
        .env_remove("REPLOG_NODE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `replog append`, checked: exit 0 and the expected sequence number.
fn append_ok(node: &str, w: &str, msg: &str, seq: u64, run: usize) {
    let (code, out, err) = replog(&["append", "--node", node, "-w", w, msg]);
    assert_eq!(
        (code, out.trim()),
        (0, seq.to_string().as_str()),
        "run {run}: append -w {w} {msg}: {err}"
    );
}

fn listed(node: &str) -> Vec<String> {
    let (_, out, _) = replog(&["list", "--node", node]);
    out.lines().map(str::to_string).collect()
}

/// The seed's acceptance scenario at the speed of a shell script, with the
/// default deadlines: M and S1 are started and Msg1 is appended as soon as
/// M listens, before anyone could know whether S1 is up.
#[test]
fn the_acceptance_scenario_at_script_speed_passes_20_times_out_of_20() {
    for run in 0..20 {
        let mut c = Cluster::new(3, false, |_| Vec::new());
        let (m, s2) = (c.addrs[0].clone(), c.addrs[2].clone());
        c.start(0);
        c.start(1);
        wait_listening(&m);
        append_ok(&m, "1", "Msg1", 1, run);
        append_ok(&m, "2", "Msg2", 2, run);
        let mut msg3 = spawn_replog(&["append", "--node", &m, "-w", "3", "Msg3"]);
        // Msg3 must be in the log before Msg4 for the expected order.
        let deadline = Instant::now() + Duration::from_secs(10);
        while listed(&m).len() < 3 {
            assert!(Instant::now() < deadline, "run {run}: Msg3 never stored");
            std::thread::sleep(Duration::from_millis(5));
        }
        append_ok(&m, "1", "Msg4", 4, run);
        assert!(
            msg3.try_wait().unwrap().is_none(),
            "run {run}: Msg3 (w=3) must wait for S2"
        );
        c.start(2);
        let out = msg3.wait_with_output().unwrap();
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
            (Some(0), "3"),
            "run {run}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let l = listed(&s2);
            if l == ["Msg1", "Msg2", "Msg3", "Msg4"] {
                break;
            }
            assert!(Instant::now() < deadline, "run {run}: S2 lists {l:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn health_wait_blocks_until_the_cluster_can_take_appends() {
    let mut c = Cluster::new(3, false, |_| flags(&[FAST, STATIC].concat()));
    let m = c.master().to_string();
    // Nothing listens yet: waiting for a short while fails as unreachable.
    let (code, _, err) = replog(&["health", "--node", &m, "--wait", "200ms"]);
    assert_eq!(code, 5, "{err}");
    c.start(0);
    // The master alone is not a quorum of three: exit 4, saying so.
    let (code, _, err) = replog(&["health", "--node", &m, "--wait", "1s"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("1 node(s) reachable and 2 needed"), "{err}");
    // Waiting without a limit returns once a secondary is there, even when
    // asked through that secondary.
    let waiter = spawn_replog(&["health", "--node", &c.addrs[1].clone(), "--wait", "--json"]);
    c.start(1);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["read_only"], false);
    assert_eq!(report["role"], "master");
    assert_eq!(report["reachable"], 2);
}

/// `replogd --dev` stops, saying why, as soon as any of its nodes cannot
/// start: the last one as well as the first, and without waiting for
/// Ctrl-C.
#[test]
fn a_dev_cluster_whose_last_node_cannot_start_exits_with_the_reason() {
    use std::io::Read;
    let consecutive = || loop {
        let (a, b, c) = (free_port(), free_port(), free_port());
        if b == a + 1 && c == a + 2 {
            break a;
        }
    };
    let base = consecutive();
    let metrics = consecutive();
    // Node 3's metrics address is taken; nodes 1 and 2 start.
    let taken = format!("127.0.0.1:{}", metrics + 2);
    let _taken = std::net::TcpListener::bind(&taken).unwrap();
    let mut dev = Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args(["--dev", "--base-port", &base.to_string()])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(Reaped)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = dev.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "replogd --dev kept running with a node that could not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let mut err = String::new();
    dev.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains(&taken), "{err}");
}
