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

use std::process::Output;

use common::netns::{self, Netns};
use common::*;

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
        match (self.code, json["definite"].as_bool()) {
            (0, _) | (_, Some(true)) => json["seq"].as_u64(),
            _ => None,
        }
    }

    /// Whether the answer says, definitely, that nothing was appended.
    fn not_appended(&self) -> bool {
        (self.json.as_ref()).is_some_and(|j| j["definite"] == true && j["seq"].is_null())
    }

    /// The key the answer says to retry with, if it names one.
    fn key(&self) -> Option<String> {
        if let Some(json) = &self.json {
            return json["key"].as_str().map(str::to_string);
        }
        let at = self.stderr.rfind("(--key ")? + "(--key ".len();
        Some(self.stderr[at..].trim().trim_end_matches(')').to_string())
    }
}

/// Node `i`'s log as (seq, message), read from inside namespace `from`.
fn list(net: &Netns, from: usize, c: &Cluster, i: usize) -> Option<Vec<(u64, String)>> {
    let args = ["list", "--node", &c.addrs[i], "--json", "--timeout", "2s"];
    let out = net.replog(from, &args).wait_with_output().unwrap();
    if !out.status.success() {
        return None;
    }
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
    let entry =
        |e: &serde_json::Value| Some((e["seq"].as_u64()?, e["message"].as_str()?.to_string()));
    entries.iter().map(entry).collect()
}

/// Every node's log, once all three agree and `done` holds of it.
fn agreed(
    net: &Netns,
    c: &Cluster,
    what: &str,
    done: impl Fn(&[(u64, String)]) -> bool,
) -> Vec<(u64, String)> {
    let clients = net.clients();
    wait_until(what, || {
        let logs: Vec<_> = (0..3)
            .map(|i| list(net, clients, c, i))
            .collect::<Option<_>>()?;
        let first = logs[0].clone();
        (logs.iter().all(|l| *l == first) && done(&first)).then_some(first)
    })
}

/// Appends `message` with `args` from inside namespace `ns`; panics unless
/// it is acknowledged.
fn append_ok(net: &Netns, ns: usize, args: &[&str], message: &str) {
    let mut all = vec!["append"];
    all.extend(args);
    all.push(message);
    let out = net.replog(ns, &all).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{message}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let mut c = Cluster::in_netns(&net, 3, true, |i| {
        let mut f = flags(FAST);
        f.extend(["--cluster-key-file".into(), key.display().to_string()]);
        if i == 0 {
            // Node 1 steps down 3 s after it is cut off: time enough for
            // the appends below to reach it while it is still master,
            // however slowly their processes start.
            f.extend(["--election-timeout".into(), "3s".into()]);
        }
        f
    });
    c.start_all();
    let clients = net.clients();
    let all = c.addrs.join(",");
    let wait = ["health", "--node", &c.addrs[0], "--wait", "30s"];
    let out = net.replog(clients, &wait).wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    for i in 1..=3 {
        append_ok(
            &net,
            clients,
            &["--node", &all, "-w", "3"],
            &format!("before-{i}"),
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
        (message.to_string(), net.replog(0, &args))
    };
    let waiting = vec![
        cut_off("short-1", "300ms", true),
        cut_off("short-2", "300ms", true),
        cut_off("short-text", "300ms", false),
        cut_off("long-1", "8s", true),
        cut_off("long-2", "8s", true),
    ];
    let told: Vec<Told> = (waiting.into_iter())
        .map(|(m, child)| Told::of(&m, child.wait_with_output().unwrap()))
        .collect();

    // The majority elects another master and appends go on there, taking
    // the sequence numbers node 1 gave the appends above.
    let majority = format!("{},{}", c.addrs[1], c.addrs[2]);
    for i in 1..=3 {
        append_ok(
            &net,
            clients,
            &["--node", &majority, "-w", "2"],
            &format!("majority-{i}"),
        );
    }
    net.heal(0);
    let logs = agreed(&net, &c, "the three logs to agree", |log| {
        log.iter().any(|(_, m)| m == "majority-3")
    });

    // Promised ⇒ present, at the seq given, on every node; "not appended"
    // ⇒ absent.
    for t in &told {
        if let Some(seq) = t.promised() {
            assert!(
                logs.contains(&(seq, t.message.clone())),
                "{t:?} was promised at seq {seq} but the log is {logs:?}"
            );
        }
        let present = logs.iter().any(|(_, m)| *m == t.message);
        assert!(!(t.not_appended() && present), "{t:?} is in {logs:?}");
    }
    // The scenario happened: node 1 took entries of these appends and cut
    // them after the heal (saving them to a rollback file), and those
    // appends were told so honestly, with the key to retry with.
    let rollback = c.data_dir(0).join("rollback");
    let saved = std::fs::read_dir(&rollback).map_or(0, |d| d.count());
    assert!(saved > 0, "node 1 cut nothing: {logs:?}\n{}", c.logs(0));
    let mut lost = Vec::new();
    for t in &told {
        if logs.iter().any(|(_, m)| *m == t.message) || t.not_appended() {
            continue;
        }
        lost.push(t);
        assert_eq!(t.code, 5, "{t:?}");
        match &t.json {
            Some(json) => assert_eq!(json["definite"], false, "{t:?}"),
            None => assert!(t.stderr.contains("may or may not"), "{t:?}"),
        }
        assert!(t.key().is_some(), "{t:?}");
    }
    assert!(
        lost.iter()
            .any(|t| t.json.as_ref().is_some_and(|j| j["seq"].is_u64())),
        "no append given a sequence number was cut: {told:?}\n{logs:?}"
    );

    // Following the advice loses nothing: retried with their keys, the
    // messages not kept are appended, each once.
    for t in &lost {
        let key = t.key().unwrap();
        append_ok(
            &net,
            clients,
            &["--node", &all, "-w", "3", "--key", &key],
            &t.message,
        );
    }
    let kept: Vec<String> = (told.iter())
        .filter(|t| !t.not_appended())
        .map(|t| t.message.clone())
        .collect();
    assert!(kept.len() >= 2, "{told:?}");
    let logs = agreed(&net, &c, "the retries to reach every node", |log| {
        let once = |m: &String| log.iter().filter(|(_, x)| x == m).count() == 1;
        kept.iter().all(once)
    });
    assert_eq!(logs.len(), 3 + 3 + kept.len(), "{logs:?}");
    drop(c);
}
