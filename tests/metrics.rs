//! `--metrics-listen`: a Prometheus scrape of a running cluster.

mod common;

use std::io::{Read, Write};

use common::*;

/// One HTTP GET of `path`; the status line and the body.
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the sample named exactly `series` (name and labels).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_appends_fsyncs_the_log_and_every_secondary() {
    let metrics = format!("127.0.0.1:{}", free_port());
    let m = metrics.clone();
    let mut c = Cluster::new(3, true, move |i| {
        let mut f = flags(FAST);
        if i == 0 {
            f.extend(["--metrics-listen".to_string(), m.clone()]);
        }
        f
    });
    c.start_all();
    c.wait_healthy(&[1, 2]).await;
    let node = c.addrs[0].clone();
    for w in ["1", "1", "1", "majority", "3"] {
        let (code, _, err) = replog(&["append", "--node", &node, "-w", w, "m"]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, _, _) = replog(&["append", "--node", &node, "-w", "5", "m"]);
    assert_eq!(code, 2);
    // Garbage instead of a hello.
    let mut junk = std::net::TcpStream::connect(&node).unwrap();
    junk.write_all(b"\0\0\0\x03zzz").unwrap();
    let mut sink = Vec::new();
    let _ = junk.read_to_end(&mut sink);

    let body = wait_for("the secondaries to have acknowledged all five", || async {
        let (status, body) = get(&metrics, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let acked = |n: &str| {
            sample(
                &body,
                &format!("replog_secondary_acked_seq{{node=\"{n}\"}}"),
            )
        };
        (acked("n2") == Some(5.0) && acked("n3") == Some(5.0)).then_some(body)
    })
    .await;
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&body, series), Some(value), "{series} in\n{body}");
    };
    expect("replog_appends_total{outcome=\"ok\",w=\"1\"}", 3.0);
    expect("replog_appends_total{outcome=\"ok\",w=\"majority\"}", 1.0);
    expect("replog_appends_total{outcome=\"ok\",w=\"3\"}", 1.0);
    // An impossible w is "invalid": a client cannot grow the label set.
    expect(
        "replog_appends_total{outcome=\"bad_request\",w=\"invalid\"}",
        1.0,
    );
    expect("replog_append_latency_seconds_count{w=\"1\"}", 3.0);
    expect("replog_role{role=\"master\"}", 1.0);
    expect("replog_log_entries", 5.0);
    expect("replog_log_last_seq", 5.0);
    expect("replog_secondary_lag_entries{node=\"n3\"}", 0.0);
    expect(
        "replog_secondary_status{node=\"n2\",status=\"healthy\"}",
        1.0,
    );
    expect(
        "replog_secondary_status{node=\"n2\",status=\"unhealthy\"}",
        0.0,
    );
    expect("replog_reachable_nodes", 3.0);
    expect("replog_refused_handshakes_total{reason=\"bad_hello\"}", 1.0);
    assert!(sample(&body, "replog_epoch").unwrap() >= 1.0);
    assert!(sample(&body, "replog_log_size_bytes").unwrap() > 0.0);
    // Every append synced at least once on the master (--fsync always).
    assert!(sample(&body, "replog_fsync_latency_seconds_count").unwrap() >= 1.0);
    // And every append was written by the node loop, in at least one round.
    assert!(sample(&body, "replog_log_write_latency_seconds_count").unwrap() >= 1.0);
    assert!(body.ends_with("# EOF\n"), "{body}");
    // The master dials its secondaries and the clients are gone: nothing
    // open to it, until a client connects.
    expect("replog_connections", 0.0);
    let _idle = std::net::TcpStream::connect(&node).unwrap();
    wait_for("the open connection to be counted", || async {
        let (_, body) = get(&metrics, "/metrics");
        (sample(&body, "replog_connections") == Some(1.0)).then_some(())
    })
    .await;

    // A secondary lost shows up as such.
    c.kill(2);
    wait_for("n3 to be seen unhealthy", || async {
        let (_, body) = get(&metrics, "/metrics");
        let status = "replog_secondary_status{node=\"n3\",status=\"healthy\"}";
        (sample(&body, status) == Some(0.0)).then_some(())
    })
    .await;
    let (status, body) = get(&metrics, "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found", "{body}");
    // Another method, a head too large, and bytes that are no HTTP get
    // an answer that says so, or a closed connection, never metrics.
    let raw = |request: Vec<u8>| {
        let mut s = std::net::TcpStream::connect(&metrics).unwrap();
        let _ = s.write_all(&request);
        let mut text = Vec::new();
        let _ = s.read_to_end(&mut text);
        String::from_utf8_lossy(&text)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    let post = format!("POST /metrics HTTP/1.1\r\nHost: {metrics}\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(raw(post.into_bytes()), "HTTP/1.1 405 Method Not Allowed");
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_eq!(
        raw(huge.into_bytes()),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let garbage = raw(b"\x16\x03\x01 not http at all\r\n\r\n".to_vec());
    assert!(!garbage.contains("200"), "{garbage}");
    let (status, _) = get(&metrics, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "the page still answers");

    // Each log's figures, and each group's position and lag.
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--node", &node]);
        let (code, out, err) = replog(&all);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    };
    run(&["log", "create", "orders"]);
    run(&["append", "--log", "orders", "-w", "majority", "paid"]);
    run(&["append", "--log", "orders", "-w", "majority", "shipped"]);
    run(&["group", "set", "billing", "--log", "orders", "--to", "1"]);
    let body = wait_for("the log's figures", || async {
        let (_, body) = get(&metrics, "/metrics");
        let last = "replog_log_last_number{log=\"orders\"}";
        (sample(&body, last) == Some(2.0)).then_some(body)
    })
    .await;
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&body, series), Some(value), "{series} in\n{body}");
    };
    expect("replog_log_messages{log=\"orders\"}", 2.0);
    expect("replog_log_message_bytes{log=\"orders\"}", 11.0);
    expect("replog_log_messages{log=\"default\"}", 5.0);
    expect(
        "replog_group_position{group=\"billing\",log=\"orders\"}",
        1.0,
    );
    expect(
        "replog_group_lag_messages{group=\"billing\",log=\"orders\"}",
        1.0,
    );

    // Every metric the README lists and the dashboard draws is served.
    let (_, body) = get(&metrics, "/metrics");
    for file in ["README.md", "contrib/grafana-dashboard.json"] {
        let text =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut named = 0;
        for (at, _) in text.match_indices("replog_") {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .fold(name.as_str(), |n, s| n.strip_suffix(s).unwrap_or(n));
            if base == "replog_" {
                continue;
            }
            named += 1;
            assert!(
                body.lines().any(|l| l.starts_with(base)),
                "{file} names {name}, which a scrape does not have"
            );
        }
        assert!(named >= 10, "{file} names {named} metrics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_roll_made_durable_off_the_loop_is_timed() {
    let metrics = format!("127.0.0.1:{}", free_port());
    let m = metrics.clone();
    let mut c = Cluster::new(1, true, move |_| {
        let mut f = flags(&[FAST, STATIC, &["--master", "n1", "--segment-bytes", "4096"]].concat());
        f.extend(["--metrics-listen".to_string(), m.clone()]);
        f
    });
    c.start_all();
    let node = c.addrs[0].clone();
    // One append larger than a segment: the log rolls right after it.
    let big = "x".repeat(5000);
    wait_for("the node to take an append", || async {
        let (code, _, _) = replog(&["append", "--node", &node, "-w", "1", &big]);
        (code == 0).then_some(())
    })
    .await;
    let (code, _, err) = replog(&["append", "--node", &node, "-w", "1", "after the roll"]);
    assert_eq!(code, 0, "{err}");
    let (_, body) = get(&metrics, "/metrics");
    let rolls = sample(&body, "replog_roll_sync_latency_seconds_count");
    assert!(rolls.is_some_and(|n| n >= 1.0), "{body}");
    assert_eq!(c.segment_files(0), 2, "the new segment has its name");
}
