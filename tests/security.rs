//! With a cluster key, nobody outside the cluster can impersonate its
//! master or a secondary: raw-socket impostors try to displace the master,
//! cut or forge a secondary's log, and receive the master's log; a node with
//! a wrong key is refused and shown as such; the key changes by a rolling
//! restart without refusing anyone or losing anything.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use replog::client::Client;
use replog::entry::Entry;
use replog::node::config::Cluster as ClusterList;
use replog::wire::{Frame, Hello, PeerStatus, Role, PROTOCOL_VERSION};

fn writer_opts() -> replog::client::ConnectOptions {
    replog::client::ConnectOptions {
        token: Some("writer-token-0123456789".into()),
        tls: None,
        cluster_key: None,
        log: None,
    }
}

const KEY_A: &str = "a-cluster-key-0123456789abcdef";
const KEY_B: &str = "another-key-0123456789abcdef00";

fn key_file(dir: &std::path::Path, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// A hello claiming to be the cluster's master (`n1`), of a huge epoch.
fn master_hello(c: &Cluster, nonce: Option<[u8; 32]>) -> Vec<u8> {
    let list = cluster_list(c);
    framed(&Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        cluster: Some(ClusterList::parse(&list, None).unwrap().fingerprint()),
        role: Role::Master {
            id: "n1".into(),
            epoch: 1 << 40,
        },
        nonce,
        token: None,
    }))
}

fn cluster_list(c: &Cluster) -> String {
    c.addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("n{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",")
}

fn forged(seq: u64) -> Frame {
    Frame::Entries {
        entries: vec![Entry {
            epoch: 1 << 40,
            seq,
            log: replog::entry::DEFAULT_LOG,
            number: seq,
            key: None,
            message: "forged".into(),
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostor_masters_can_neither_displace_cut_nor_forge() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "key", &[KEY_A]);
    let mut c = Cluster::new(3, true, |_| {
        let mut f = flags(FAST);
        f.extend(["--cluster-key-file".into(), key.display().to_string()]);
        f
    });
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    for i in 1..=5 {
        append(c.master(), &format!("m{i}"), 3).await.unwrap();
    }
    let before = c.wait_converged(&[1], 5).await;
    let s2 = c.addrs[1].clone();

    // 1. No nonce (no key): refused, naming the flag.
    let mut s = TcpStream::connect(&s2).unwrap();
    s.write_all(&master_hello(&c, None)).unwrap();
    let (got, closed) = read_frames(&mut s, Duration::from_secs(10));
    assert!(closed);
    assert!(
        matches!(&got[..], [Frame::Refused { reason }] if reason.contains("--cluster-key-file")),
        "{got:?}"
    );

    // 2. A nonce, then a made-up proof, then a Sync that would cut the log
    //    and forged entries, all sent at once.
    let mut s = TcpStream::connect(&s2).unwrap();
    let mut attack = master_hello(&c, Some([7; 32]));
    attack.extend(framed(&Frame::Proof { proof: [9; 32] }));
    attack.extend(framed(&Frame::Sync {
        truncate_after: Some(0),
    }));
    attack.extend(framed(&forged(1)));
    let _ = s.write_all(&attack);
    let (got, closed) = read_frames(&mut s, Duration::from_secs(10));
    assert!(closed);
    assert!(
        matches!(&got[..], [Frame::Challenge { .. }, Frame::Refused { reason }] if reason.contains("does not hold the cluster key")),
        "{got:?}"
    );

    // 3. Frames sent without waiting for the challenge at all.
    let mut s = TcpStream::connect(&s2).unwrap();
    let mut attack = master_hello(&c, Some([8; 32]));
    attack.extend(framed(&Frame::Sync {
        truncate_after: Some(0),
    }));
    attack.extend(framed(&forged(6)));
    let _ = s.write_all(&attack);
    let (_, closed) = read_frames(&mut s, Duration::from_secs(10));
    assert!(closed);

    // Nothing changed: the secondary holds its entries, the real master's
    // connection was never displaced, and replication goes on.
    let h = Client::connect(c.master())
        .await
        .unwrap()
        .health()
        .await
        .unwrap();
    assert_eq!(h.nodes[1].status, PeerStatus::Healthy, "{h:?}");
    assert!(h.authenticated);
    append(c.master(), "m6", 3).await.unwrap();
    let after = c.wait_converged(&[0, 1, 2], 6).await;
    assert_eq!(after[1][..5], before[0][..]);
    assert!(after.iter().all(|l| l[5].1 == "m6"));
    assert!(!c.logs(1).contains("truncat"), "nothing was cut");
    // Said in the secondary's log, rate-limited.
    let lines = c.logs(1).matches("refusing a master connection").count();
    assert!((1..=2).contains(&lines), "{lines}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_sends_nothing_to_an_impostor_secondary() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "key", &[KEY_A]);
    let mut c = Cluster::new(3, true, |_| {
        let mut f = flags(FAST);
        f.extend(["--cluster-key-file".into(), key.display().to_string()]);
        f
    });
    // Node 3's address is held by an impostor that welcomes the master
    // without a challenge, or with a made-up one.
    let impostor = TcpListener::bind(&c.addrs[2]).unwrap();
    c.start(0);
    c.start(1);
    c.wait_healthy(&[1]).await;
    append(c.master(), "secret", 2).await.unwrap();
    let mut seen = Vec::new();
    let mut round = 0;
    while round < 4 {
        let (mut s, _) = impostor.accept().unwrap();
        let (hello, _) = read_frames(&mut s, Duration::from_millis(300));
        assert!(
            matches!(hello[..], [Frame::Hello(Hello { nonce: Some(_), .. })]),
            "{hello:?}"
        );
        // The master's vote requests, while it is being elected, are not
        // what this is about: its replication link is.
        if matches!(
            hello[..],
            [Frame::Hello(Hello {
                role: replog::wire::Role::Candidate { .. },
                ..
            })]
        ) {
            continue;
        }
        round += 1;
        let answer = if round % 2 == 0 {
            Frame::Welcome(replog::wire::Welcome {
                node: "n3".into(),
                role: replog::wire::NodeRole::Secondary,
                master_addr: c.master().into(),
                last: Default::default(),
                stored: 0,
                max_message_bytes: 1 << 20,
                epochs: Vec::new(),
                first: 1,
            })
        } else {
            Frame::Challenge {
                nonce: [1; 32],
                proofs: vec![[2; 32], [3; 32]],
            }
        };
        s.write_all(&framed(&answer)).unwrap();
        let (got, _) = read_frames(&mut s, Duration::from_millis(500));
        seen.extend(got);
    }
    assert!(
        !seen.iter().any(|f| matches!(
            f,
            Frame::Entries { .. } | Frame::Sync { .. } | Frame::Proof { .. }
        )),
        "the master sent {seen:?}"
    );
    let h = Client::connect(c.master())
        .await
        .unwrap()
        .health()
        .await
        .unwrap();
    assert_eq!(h.nodes[2].status, PeerStatus::Refused, "{h:?}");
    // A refused node makes the cluster degraded (exit 7), not down.
    let (code, out, err) = replog(&["health", "--node", c.master()]);
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("is refused"), "{err}");
    assert!(
        out.contains("refused") && out.contains("cluster: authenticated"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_key_is_refused_by_name_of_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = key_file(dir.path(), "good", &[KEY_A]);
    let bad = key_file(dir.path(), "bad", &[KEY_B]);
    let mut c = Cluster::new(3, false, |i| {
        let mut f = flags(FAST);
        let k = if i == 1 { &bad } else { &good };
        f.extend(["--cluster-key-file".into(), k.display().to_string()]);
        f
    });
    c.start_all();
    c.wait_healthy(&[2]).await;
    let h = wait_for("node 2 to be shown as refused", || async {
        let h = Client::connect(c.master())
            .await
            .ok()?
            .health()
            .await
            .ok()?;
        (h.nodes[1].status == PeerStatus::Refused).then_some(h)
    })
    .await;
    assert!(!h.read_only, "nodes 1 and 3 are a majority");
    let log = c.logs(0);
    assert!(
        log.contains("does not hold this node's cluster key") && log.contains("--cluster-key-file"),
        "{log}"
    );
    // And nothing reached node 2.
    append(c.master(), "x", 2).await.unwrap();
    let listed = Client::connect(&c.addrs[1])
        .await
        .unwrap()
        .list_all(1)
        .await
        .unwrap();
    assert!(listed.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_changes_by_rolling_restart_with_appends_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let key = |i: usize| dir.path().join(format!("key-{i}"));
    for i in 0..3 {
        key_file(dir.path(), &format!("key-{i}"), &[KEY_A]);
    }
    // The writer sends to the configured master through its restart.
    let mut c = Cluster::new(3, true, |i| {
        let mut f = flags(&[FAST, STATIC].concat());
        f.extend(["--cluster-key-file".into(), key(i).display().to_string()]);
        f
    });
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    // A writer keeps appending with w=2 all along; every append it makes
    // must succeed (a restart of the master is retried with the same key).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (m, stop) = (c.master().to_string(), stop.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let msg = format!("w{i}");
                let opts = replog::client::AppendOptions {
                    w: replog::wire::WriteConcern::Nodes(2),
                    key: Some(msg.clone()),
                    timeout: None,
                    progress: None,
                };
                // Retried with the same key through restarts.
                let seq = loop {
                    match Client::connect(&m).await {
                        Ok(cl) => match cl.append(&msg, &opts).await {
                            Ok(seq) => break seq,
                            Err(e) => assert!(
                                (3..=5).contains(&e.exit_code()),
                                "an authorised append was refused: {e}"
                            ),
                        },
                        Err(e) => assert_eq!(e.exit_code(), 5, "{e}"),
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                };
                acked.push((seq, msg));
            }
            acked
        })
    };
    // Phase 1: every node learns the new key, keeping the old one.
    // Phase 2: every node drops the old key.
    for keys in [[KEY_B, KEY_A].as_slice(), &[KEY_B]] {
        for i in [1, 2, 0] {
            key_file(dir.path(), &format!("key-{i}"), keys);
            c.kill(i);
            c.start(i);
            c.wait_up(i).await;
            // The restarted node is back in the cluster before the next.
            let back: Vec<usize> = if i == 0 { vec![1, 2] } else { vec![i] };
            c.wait_healthy(&back).await;
        }
    }
    // Nobody was ever refused for the key.
    for i in 0..3 {
        assert!(
            !c.logs(i).contains("does not hold"),
            "node {i}: {}",
            c.logs(i)
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(acked.len() > 10, "{} appends", acked.len());
    eprintln!("{} appends acknowledged across the key change", acked.len());
    let n = acked.iter().map(|(s, _)| *s).max().unwrap() as usize;
    let lists = c.wait_converged(&[0, 1, 2], n).await;
    for (seq, msg) in &acked {
        for l in &lists {
            assert_eq!(&l[*seq as usize - 1].1, msg, "acknowledged {seq} lost");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tokens_guard_appends_and_reads_with_their_own_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let writer = key_file(dir.path(), "writer", &["writer-token-0123456789"]);
    let reader = key_file(dir.path(), "reader", &["reader-token-0123456789"]);
    let wrong = key_file(dir.path(), "wrong", &["wrong-token-0123456789"]);
    let mut c = Cluster::new(2, false, |_| {
        let mut f = flags(FAST);
        f.extend([
            "--client-token-file".into(),
            writer.display().to_string(),
            "--read-token-file".into(),
            reader.display().to_string(),
        ]);
        f
    });
    c.start_all();
    let tok = |p: &PathBuf| p.display().to_string();
    let (m, s) = (c.addrs[0].clone(), c.addrs[1].clone());
    for addr in [&m, &s] {
        wait_for("the node to answer", || async {
            let c = Client::connect_with(addr, &writer_opts()).await.ok()?;
            c.health().await.ok()
        })
        .await;
    }
    // No token: nothing at all, exit 6, naming the flag.
    for args in [
        vec!["append", "--node", &m, "x"],
        vec!["list", "--node", &m],
        vec!["health", "--node", &m],
    ] {
        let (code, _, err) = replog(&args);
        assert_eq!(code, 6, "{args:?}: {err}");
        assert!(err.contains("--token-file"), "{err}");
    }
    // A wrong token: refused outright.
    let (code, _, err) = replog(&["list", "--node", &m, "--token-file", &tok(&wrong)]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("does not accept the token"), "{err}");
    // The read token reads, but cannot append.
    let (code, _, err) = replog(&["append", "--node", &m, "--token-file", &tok(&reader), "x"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("requires the client token to append"), "{err}");
    let (code, out, err) = replog(&["list", "--node", &m, "--token-file", &tok(&reader)]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    // The client token appends (also through a secondary's redirect) and reads.
    let (code, out, err) = replog(&[
        "append",
        "--node",
        &s,
        "--token-file",
        &tok(&writer),
        "-w",
        "2",
        "ok",
    ]);
    assert_eq!((code, out.trim()), (0, "1"), "{err}");
    let (code, out, _) = replog(&["list", "--node", &s, "--token-file", &tok(&writer)]);
    assert_eq!((code, out.as_str()), (0, "ok\n"));
    // REPLOG_TOKEN works as well as the file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(["health", "--node", &m, "--json"])
        .env("REPLOG_TOKEN", "reader-token-0123456789")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing the refused clients sent was appended.
    let listed = Client::connect_with(&m, &writer_opts())
        .await
        .unwrap()
        .list_all(1)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}
