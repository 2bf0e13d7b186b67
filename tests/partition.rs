//! A master cut off from both secondaries by a silent partition, in
//! network namespaces of the test's own making: the appends it takes with
//! w=3, short and long `--timeout`s, cannot reach a majority, the majority
//! elects another master, and when the cut heals the old master cuts them.
//! No answer promised any of them ("on a majority, will still be
//! replicated": exit 3, or JSON `definite: true` with a seq); each said
//! "may or may not be kept" with its key, and retrying with that key
//! appends each message exactly once. An older release answered exit 3
//! ("will still be replicated, do not append it again") and the messages
//! were lost.

mod common;

use std::process::{Child, Output, Stdio};

use common::netns::{self, Netns};
use common::*;

/// `replog` with `args`, run inside namespace `ns` of `net`.
fn replog_in(net: &Netns, ns: usize, args: &[&str]) -> Child {
    net.command(ns, env!("CARGO_BIN_EXE_replog"))
        .args(args)
        .env_remove("REPLOG_NODE")
        .env_remove("REPLOG_NODES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What one append was told.
#[derive(Debug)]
struct Told {
    message: String,
    code: i32,
    json: Option<serde_json::Value>,
    stderr: String,
}

impl Told {
    fn of(message: &str, out: Output) -> Told {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Told {
            message: message.to_string(),
            code: out.status.code().unwrap_or(-1),
            json: serde_json::from_str(stdout.trim()).ok(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The sequence number the answer promises will stay, if it promises
    /// one: acknowledged, or failed but settled on a majority.
    fn promised(&self) -> Option<u64> {
        let json = self.json.as_ref()?;
        let definite = json.get("definite").and_then(|d| d.as_bool());
        match (self.code, definite) {
            (0, _) | (_, Some(true)) => json["seq"].as_u64(),
            _ => None,
        }
    }
}

/// Node `i`'s log as (seq, message), read from inside namespace `from`.
fn list(net: &Netns, from: usize, c: &Cluster, i: usize) -> Option<Vec<(u64, String)>> {
    let out = replog_in(
        net,
        from,
        &["list", "--node", &c.addrs[i], "--json", "--timeout", "2s"],
    )
    .wait_with_output()
    .unwrap();
    if !out.status.success() {
        return None;
    }
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        entries
            .iter()
            .map(|e| {
                (
                    e["seq"].as_u64().unwrap(),
                    e["message"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    )
}

/// Polls every 50 ms, for at most 30 s, until `probe` yields.
fn poll<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_master_cut_off_silently_promises_nothing_a_failover_cuts() {
    if netns::skipped() {
        return;
    }
    // Dropped last: the nodes must be gone before their namespaces.
    let net = Netns::new(3);
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("cluster.key");
    std::fs::write(&key, "a-cluster-key-0123456789abcdef\n").unwrap();
    let mut c = Cluster::in_netns(&net, 3, true, |_| {
        let mut f = flags(FAST);
        f.extend(["--cluster-key-file".into(), key.display().to_string()]);
        f
    });
    c.start_all();
    let clients = net.clients();
    let all = c.addrs.join(",");
    let out = replog_in(
        &net,
        clients,
        &["health", "--node", &c.addrs[0], "--wait", "30s"],
    )
    .wait_with_output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for i in 1..=3 {
        let m = format!("before-{i}");
        let out = replog_in(&net, clients, &["append", "--node", &all, "-w", "3", &m])
            .wait_with_output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Node 1, the master, is cut off; clients beside it (in its namespace)
    // still reach it, and append with w=3: short and long timeouts, JSON
    // and text.
    net.isolate(0);
    let cut_off = |message: &str, timeout: &str, json: bool| {
        let mut args = vec![
            "append",
            "--node",
            &c.addrs[0],
            "-w",
            "3",
            "--timeout",
            timeout,
        ];
        if json {
            args.push("--json");
        }
        args.push(message);
        (message.to_string(), replog_in(&net, 0, &args))
    };
    let waiting = vec![
        cut_off("short-1", "300ms", true),
        cut_off("short-2", "300ms", true),
        cut_off("short-text", "300ms", false),
        cut_off("long-1", "5s", true),
        cut_off("long-2", "5s", true),
    ];
    let told: Vec<Told> = waiting
        .into_iter()
        .map(|(m, child)| Told::of(&m, child.wait_with_output().unwrap()))
        .collect();

    // The majority elects another master and appends go on there, taking
    // the sequence numbers node 1 gave the appends above.
    let majority = format!("{},{}", c.addrs[1], c.addrs[2]);
    for i in 1..=3 {
        let m = format!("majority-{i}");
        let out = replog_in(
            &net,
            clients,
            &["append", "--node", &majority, "-w", "2", &m],
        )
        .wait_with_output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    net.heal(0);
    let logs = poll("the three logs to agree", || {
        let logs: Vec<_> = (0..3)
            .map(|i| list(&net, clients, &c, i))
            .collect::<Option<_>>()?;
        let first: &Vec<(u64, String)> = &logs[0];
        (logs.iter().all(|l| l == first) && first.iter().any(|(_, m)| m == "majority-3"))
            .then(|| first.clone())
    });

    // Promised ⇒ present, at the seq given, on every node.
    for t in &told {
        if let Some(seq) = t.promised() {
            assert!(
                logs.contains(&(seq, t.message.clone())),
                "{t:?} was promised at seq {seq} but the log is {logs:?}"
            );
        }
    }
    // The scenario happened: node 1 took entries of these appends and cut
    // them after the heal (saving them to a rollback file), and those
    // appends were told so honestly.
    let rollback = c.data_dir(0).join("rollback");
    let saved = std::fs::read_dir(&rollback).map_or(0, |d| d.count());
    assert!(saved > 0, "node 1 cut nothing: {logs:?}\n{}", c.logs(0));
    let mut lost = Vec::new();
    for t in &told {
        if logs.iter().any(|(_, m)| *m == t.message) {
            continue;
        }
        lost.push(t);
        assert_eq!(t.code, 5, "{t:?}");
        match &t.json {
            Some(json) => {
                assert_eq!(json["definite"], false, "{t:?}");
                assert!(json["seq"].is_u64() && json["key"].is_string(), "{t:?}");
            }
            None => assert!(
                t.stderr.contains("may or may not be kept") && t.stderr.contains("--key "),
                "{t:?}"
            ),
        }
    }
    assert!(
        lost.iter()
            .any(|t| t.json.as_ref().is_some_and(|j| j["seq"].is_u64())),
        "no append given a sequence number was cut: {told:?}\n{logs:?}"
    );

    // Following the advice loses nothing: retried with their keys, the
    // messages not kept are appended, each once.
    for t in &lost {
        let key = match &t.json {
            Some(json) => json["key"].as_str().unwrap().to_string(),
            None => {
                let at = t.stderr.rfind("--key ").unwrap() + "--key ".len();
                t.stderr[at..].trim().trim_end_matches(')').to_string()
            }
        };
        let out = replog_in(
            &net,
            clients,
            &[
                "append", "--node", &all, "-w", "3", "--key", &key, &t.message,
            ],
        )
        .wait_with_output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let everything: Vec<String> = told.iter().map(|t| t.message.clone()).collect();
    let logs = poll("the retries to reach every node", || {
        let logs: Vec<_> = (0..3)
            .map(|i| list(&net, clients, &c, i))
            .collect::<Option<_>>()?;
        let first = logs[0].clone();
        let holds = |m: &String| first.iter().filter(|(_, x)| x == m).count() == 1;
        (logs.iter().all(|l| *l == first) && everything.iter().all(holds)).then_some(first)
    });
    assert_eq!(logs.len(), 3 + 3 + everything.len(), "{logs:?}");
    drop(c);
}
