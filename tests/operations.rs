//! Issue 5: replogd under systemd and as an ordinary Linux tool —
//! environment configuration, readiness, SIGTERM, follow mode, completions.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use replog::client::{AppendOptions, Client};

fn recv_until(sock: &UnixDatagram, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            seen.push('\n');
            if seen.contains(want) {
                return seen;
            }
        }
    }
    panic!("no {want} on the notify socket; got {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_only_by_environment_it_sends_ready_once_serving_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_replogd"))
        .env("REPLOG_ID", "a")
        .env("REPLOG_CLUSTER", format!("a={addr}"))
        .env("REPLOG_DATA_DIR", dir.path().join("data"))
        .env("REPLOG_FSYNC", "batch")
        .env("NOTIFY_SOCKET", &sock_path)
        .stderr(Stdio::null())
        .spawn()
        .map(Reaped)
        .unwrap();
    recv_until(&sock, "READY=1");
    // Ready means serving: the listener is bound and the log open.
    let client = Client::connect(&addr)
        .await
        .expect("serving once READY=1 is sent");
    assert_eq!(
        client.append("x", &AppendOptions::default()).await.unwrap(),
        1
    );
    assert!(
        dir.path().join("data").join("epoch").exists(),
        "the log is in REPLOG_DATA_DIR"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    recv_until(&sock, "STOPPING=1");
    assert!(child.wait().unwrap().success());
}

#[test]
fn invalid_values_are_refused_at_start_naming_flag_and_value() {
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_replogd"))
            .envs(envs.iter().copied())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(
        &[
            ("REPLOG_ID", "a"),
            ("REPLOG_CLUSTER", "a=127.0.0.1:1"),
            ("REPLOG_FSYNC", "sometimes"),
        ],
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("sometimes") && err.contains("--fsync"),
        "{err}"
    );
    let (code, err) = run(
        &[],
        &[
            "--id",
            "a",
            "--cluster",
            "a=127.0.0.1:1",
            "--heartbeat-interval",
            "soon",
        ],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("soon") && err.contains("--heartbeat-interval"),
        "{err}"
    );
    // A list separated by spaces is refused naming the entry, not reported
    // as a failure to listen (exit 1, as every check made after clap's).
    let (code, err) = run(
        &[],
        &["--id", "a", "--cluster", "a=127.0.0.1:1 b=127.0.0.1:2"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("'a=127.0.0.1:1 b=127.0.0.1:2' contains a space") && !err.contains("listen"),
        "{err}"
    );
    let (code, err) = run(&[], &["--id", "z", "--cluster", "a=127.0.0.1:1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--id") && err.contains("'z'"), "{err}");
    let (code, err) = run(
        &[],
        &[
            "--id",
            "a",
            "--cluster",
            "a=127.0.0.1:1",
            "--suspect-after",
            "10ms",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--suspect-after") && err.contains("--heartbeat-interval"),
        "{err}"
    );
    let (code, err) = run(
        &[],
        &[
            "--id",
            "a",
            "--cluster",
            "a=127.0.0.1:1",
            "--fail-rate",
            "2",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("--fail-rate") && err.contains('2'), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_appends_exits_0_and_keeps_every_acknowledged_append() {
    let mut c = Cluster::new(1, true, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let client = Client::connect(c.master()).await.unwrap();
    let acked: std::sync::Arc<std::sync::Mutex<Vec<(u64, String)>>> = Default::default();
    // 64 appends in flight at a time, until the node goes away.
    let writer = tokio::spawn({
        let acked = acked.clone();
        async move {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..20_000 {
                let client = client.clone();
                set.spawn(async move {
                    let msg = format!("m{i}");
                    client
                        .append(&msg, &AppendOptions::default())
                        .await
                        .map(|seq| (seq, msg))
                });
                if set.len() >= 64 {
                    if let Some(Ok(Ok(a))) = set.join_next().await {
                        acked.lock().unwrap().push(a);
                    }
                }
            }
            while let Some(r) = set.join_next().await {
                if let Ok(Ok(a)) = r {
                    acked.lock().unwrap().push(a);
                }
            }
        }
    });
    wait_for("appends to be acknowledged", || async {
        (acked.lock().unwrap().len() >= 200).then_some(())
    })
    .await;
    c.signal(0, "TERM");
    writer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    let status = c.terminate_wait(0);
    assert!(status.success(), "{status:?}");
    assert!(
        acked.len() < 20_000,
        "SIGTERM came while appends were in flight"
    );
    c.start(0);
    c.wait_up(0).await;
    let list = text(
        Client::connect(c.master())
            .await
            .unwrap()
            .list_all(1)
            .await
            .unwrap(),
    );
    for (seq, msg) in &acked {
        assert_eq!(list.get(*seq as usize - 1).map(|(_, m)| m), Some(msg));
    }
    assert!(c.logs(0).contains("SIGTERM received"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_follow_prints_messages_appended_after_it_started() {
    let mut c = Cluster::new(2, false, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1]).await;
    append(c.master(), "before", 2).await.unwrap();
    let mut follower = Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(["list", "--follow", "--node", &c.addrs[1]])
        .stdout(Stdio::piped())
        .spawn()
        .map(Reaped)
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "before");
    for i in 0..3 {
        append(c.master(), &format!("after {i}"), 2).await.unwrap();
    }
    for i in 0..3 {
        assert_eq!(lines.next().unwrap().unwrap(), format!("after {i}"));
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef replog"),
        ("fish", "complete -c replog"),
    ] {
        let (code, out, err) = replog(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(marker), "{shell}: {out}");
        assert!(out.contains("append") && out.contains("follow"), "{shell}");
    }
}

#[test]
fn the_systemd_unit_verifies() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        // .ci/run installs systemd; a developer machine without it skips
        // nothing else.
        panic!("systemd-analyze is not installed: apt-get install systemd (CI installs it)");
    };
    assert!(out.status.success());
    // Verify an instance, with ExecStart pointing at the binary just built.
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/systemd/replogd@.service"
    ))
    .unwrap();
    assert!(
        unit.contains("Type=notify")
            && unit.contains("WatchdogSec=")
            && unit.contains("DynamicUser=yes")
    );
    assert!(unit.contains("\nExecStart=replogd\n"), "{unit}");
    let unit = unit.replace(
        "ExecStart=replogd",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_replogd")),
    );
    let path = dir.path().join("replogd@1.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed: {err}");
    assert!(!err.contains("replogd@"), "warnings about the unit: {err}");
}
