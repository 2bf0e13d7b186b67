//! What a peer can make a node spend is bounded: a client that never reads,
//! too many connections, connections that never say hello or go idle, and
//! floods of bad connections (one log line per interval, not one each).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use replog::client::{AppendOptions, Client};
use replog::wire::{Frame, PeerStatus, WriteConcern};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_pipelines_lists_and_never_reads_cannot_hurt_the_cluster() {
    let mut c = Cluster::new(3, false, |_| flags(FAST));
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let m = c.master().to_string();
    // 4 MiB of log, so every List answer is a full page.
    let client = Client::connect(&m).await.unwrap();
    let big = vec![b'x'; 2048];
    let opts = AppendOptions {
        w: WriteConcern::Nodes(3),
        ..AppendOptions::default()
    };
    let mut appends = futures_util::stream::FuturesUnordered::new();
    for _ in 0..2048 {
        appends.push(client.append(&big, &opts));
    }
    use futures_util::StreamExt;
    while let Some(r) = appends.next().await {
        r.unwrap();
    }
    drop(appends);
    let rss_before = c.rss(0);

    // The hostile client: hello, then List after List from the start, and
    // it never reads a byte.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let hostile = {
        let (stop, sent, m) = (stop.clone(), sent.clone(), m.clone());
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&m).unwrap();
            s.set_write_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            s.write_all(&client_hello()).unwrap();
            let mut req = 0u64;
            let mut pending: Vec<u8> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if pending.is_empty() {
                    req += 1;
                    pending = framed(&Frame::List {
                        req,
                        from: 1,
                        max: 1000,
                        wait: false,
                        committed: false,
                    });
                }
                // An error is a timeout: the node stopped reading us; keep
                // trying.
                if let Ok(n) = s.write(&pending) {
                    pending.drain(..n);
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            s
        })
    };

    // For a while: the master's memory stays bounded, both secondaries stay
    // healthy, and a w=3 append from another client completes.
    let until = Instant::now() + Duration::from_secs(4);
    let mut peak = 0;
    let mut w3_done = 0;
    while Instant::now() < until {
        peak = peak.max(c.rss(0));
        let h = Client::connect(&m).await.unwrap().health().await.unwrap();
        assert_eq!(
            (h.nodes[1].status, h.nodes[2].status, h.read_only),
            (PeerStatus::Healthy, PeerStatus::Healthy, false),
            "a client that does not read made the master lose its secondaries: {h:?}"
        );
        let (code, _, err) = replog(&["append", "--node", &m, "-w", "3", "--timeout", "5s", "ok"]);
        assert_eq!(code, 0, "{err}");
        w3_done += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let socket = hostile.join().unwrap();
    let sent = sent.load(Ordering::Relaxed);
    peak = peak.max(c.rss(0));
    eprintln!(
        "hostile client sent {sent} bytes of List requests; master RSS {} MiB before, peak {} MiB; {w3_done} w=3 appends done meanwhile",
        rss_before >> 20,
        peak >> 20
    );
    // The node stopped reading: far fewer requests got in than the client
    // tried to send (each is about 10 bytes; a page answer is 256 KiB).
    assert!(sent < 10 << 20, "the node kept reading: {sent} bytes");
    assert!(
        peak < rss_before + (64 << 20) && peak < 100 << 20,
        "master RSS grew from {} to {} MiB",
        rss_before >> 20,
        peak >> 20
    );
    drop(socket);
    // The limit that bit was said, once.
    let log = c.logs(0);
    assert_eq!(log.matches("(--max-inflight)").count(), 1, "{log}");
    // Still serving.
    c.wait_up(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_are_refused_with_the_reason() {
    let mut c = Cluster::new(1, false, |_| {
        flags(&["--max-connections", "4", "--hello-timeout", "30s"])
    });
    c.start_all();
    c.wait_up(0).await;
    let m = c.master().to_string();
    // Six connections that do not say hello, against a limit of four: the
    // node serves at most four and tells the others why. (At least two are
    // refused; a third may be, while the slot of the connection `wait_up`
    // used is being given back.)
    let mut conns: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(&m).unwrap()).collect();
    let mut refused = 0;
    let mut open = Vec::new();
    for mut s in conns.drain(..) {
        let (frames, closed) = read_frames(&mut s, Duration::from_millis(300));
        match (&frames[..], closed) {
            ([Frame::Refused { reason }], true) => {
                assert!(reason.contains("--max-connections"), "{reason}");
                refused += 1;
            }
            ([], false) => open.push(s),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        refused >= 2 && open.len() <= 4,
        "{refused} refused, {} open",
        open.len()
    );
    // Fill the node up to exactly four, then a client is refused too.
    while open.len() < 4 {
        let mut s = TcpStream::connect(&m).unwrap();
        let (frames, closed) = read_frames(&mut s, Duration::from_millis(300));
        if frames.is_empty() && !closed {
            open.push(s);
        }
    }
    let (code, _, err) = replog(&["health", "--node", &m]);
    assert_ne!(code, 0);
    assert!(err.contains("--max-connections"), "{err}");
    // Room again once they go.
    drop(open);
    wait_for("room for a client", || async {
        Client::connect(&m).await.ok()?.health().await.ok()
    })
    .await;
    let log = c.logs(0);
    assert!(
        log.contains("connections are open (--max-connections)"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed_and_floods_log_a_few_lines() {
    let mut c = Cluster::new(1, false, |_| {
        flags(&["--hello-timeout", "200ms", "--idle-timeout", "300ms"])
    });
    c.start_all();
    c.wait_up(0).await;
    let m = c.master().to_string();
    // No hello: closed after the hello timeout.
    let mut silent = TcpStream::connect(&m).unwrap();
    let (_, closed) = read_frames(&mut silent, Duration::from_secs(10));
    assert!(closed, "a connection without hello stayed open");
    // A client that says hello and then nothing: welcomed, then closed.
    let mut idle = TcpStream::connect(&m).unwrap();
    idle.write_all(&client_hello()).unwrap();
    let (frames, closed) = read_frames(&mut idle, Duration::from_secs(10));
    assert!(matches!(frames[..], [Frame::Welcome(_)]), "{frames:?}");
    assert!(closed, "an idle client stayed open");
    // A follow (a List waiting for entries) is not idle: it is answered
    // when an entry comes, after the idle timeout.
    let mut follow = TcpStream::connect(&m).unwrap();
    follow.write_all(&client_hello()).unwrap();
    follow
        .write_all(&framed(&Frame::List {
            req: 1,
            from: 1,
            max: 10,
            wait: true,
            committed: false,
        }))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    append(&m, "late", 1).await.unwrap();
    let (frames, _) = read_frames(&mut follow, Duration::from_millis(500));
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::Listed { entries, .. } if entries.len() == 1)),
        "{frames:?}"
    );
    // 300 connections sending garbage: a few log lines, with a count.
    for _ in 0..300 {
        let mut s = TcpStream::connect(&m).unwrap();
        let _ = s.write_all(&[0, 0, 0, 3, 0xfe, 0xfe, 0xfe]);
    }
    wait_for("the garbage to be logged", || async {
        c.logs(0).contains("bad bytes before hello").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = c.logs(0).matches("bad bytes before hello").count();
    assert!(lines <= 2, "{lines} lines for one kind of bad connection");
    c.wait_up(0).await;
}
