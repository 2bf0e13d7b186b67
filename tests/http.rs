//! The HTTP API (`--http-listen`) from outside, with a plain HTTP client
//! (ureq) and raw sockets: the seed's acceptance test over HTTP alone, the
//! status of each outcome, follow streams, and bad or idle clients.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A client that reads every status as an answer, not an error.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// A cluster of `n` nodes, each also serving HTTP; their HTTP addresses.
fn http_cluster(n: usize, flags: &[&str]) -> (Cluster, Vec<String>) {
    let http: Vec<String> = (0..n)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let h = http.clone();
    let f: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    let c = Cluster::new(n, false, move |i| {
        let mut v = vec!["--http-listen".to_string(), h[i].clone()];
        v.extend(f.iter().cloned());
        v
    });
    (c, http)
}

/// `POST /messages` with `body`: the status and the JSON answer.
fn post(http: &str, body: Value) -> (u16, Value) {
    post_with(http, "/messages", body, &[])
}

fn post_with(http: &str, path: &str, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = agent().post(format!("http://{http}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    // Refused unread (a full port) or not yet listening: no status, and
    // callers that wait poll again.
    let Ok(mut r) = req.send_json(body) else {
        return (0, Value::Null);
    };
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

fn get(http: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = agent().get(format!("http://{http}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    // Not yet listening: no status (callers that wait poll again).
    let Ok(mut r) = req.call() else {
        return (0, Value::Null);
    };
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

/// The node's messages, as the seed's `GET /messages` gives them.
fn messages(http: &str) -> Option<Vec<String>> {
    let mut r = agent().get(format!("http://{http}/messages")).call().ok()?;
    let v: Value = r.body_mut().read_json().ok()?;
    let list = v["messages"].as_array()?;
    Some(
        list.iter()
            .map(|m| m.as_str().unwrap_or("?").to_string())
            .collect(),
    )
}

/// Waits until the node at `http` says the cluster takes appends.
fn wait_accepting(http: &str) {
    wait_until(&format!("{http} to say appends are taken"), || {
        let mut r = agent().get(format!("http://{http}/health")).call().ok()?;
        let v: Value = r.body_mut().read_json().ok()?;
        (v["accepting_appends"] == true).then_some(())
    });
}

/// The assignment's acceptance test 3.3, over HTTP only: M and S1 up;
/// Msg1 (w=1) and Msg2 (w=2) ok; Msg3 (w=3) waits, Msg4 (w=1) ok
/// meanwhile; S2 starts; Msg3 ok; S2 lists Msg1–Msg4.
#[test]
fn the_acceptance_test_passes_over_http_alone() {
    let (mut c, http) = http_cluster(3, &[]);
    let (m, s2) = (http[0].clone(), http[2].clone());
    c.start(0);
    c.start(1);
    wait_accepting(&m);
    assert_eq!(
        post(&m, json!({"message": "Msg1", "w": 1})),
        (201, json!({"seq": 1}))
    );
    assert_eq!(
        post(&m, json!({"message": "Msg2", "w": 2})),
        (201, json!({"seq": 2}))
    );
    let m3 = m.clone();
    let msg3 = std::thread::spawn(move || post(&m3, json!({"message": "Msg3", "w": 3})));
    // Msg3 must be in the log before Msg4 for the expected order.
    wait_until("Msg3 to be stored on M", || {
        (messages(&m)?.len() == 3).then_some(())
    });
    assert_eq!(
        post(&m, json!({"message": "Msg4", "w": 1})),
        (201, json!({"seq": 4}))
    );
    assert!(!msg3.is_finished(), "Msg3 (w=3) must wait for S2");
    c.start(2);
    assert_eq!(msg3.join().unwrap(), (201, json!({"seq": 3})));
    wait_until("S2 to list Msg1..Msg4", || {
        (messages(&s2)? == ["Msg1", "Msg2", "Msg3", "Msg4"]).then_some(())
    });
}

/// A secondary takes a plain POST (no redirect handling) and hands it to
/// the master itself; the key the client gave holds across the hop.
#[test]
fn a_secondary_forwards_an_append_to_the_master_with_its_key() {
    let (mut c, http) = http_cluster(3, &[]);
    c.start_all();
    wait_accepting(&http[0]);
    let key = [("Idempotency-Key", "order-17")];
    let body = json!({"message": "via a secondary", "w": "all"});
    let first = post_with(&http[1], "/v1/messages", body.clone(), &key);
    assert_eq!(first, (201, json!({"seq": 1})));
    // The same key and message again, through another secondary: the same entry.
    assert_eq!(post_with(&http[2], "/v1/messages", body, &key), first);
    // Another message under that key: refused, nothing appended.
    let (status, answer) = post_with(&http[2], "/v1/messages", json!({"message": "other"}), &key);
    assert_eq!(
        (status, &answer["error"], &answer["seq"]),
        (409, &json!("key_reused"), &json!(1))
    );
    for h in &http {
        wait_until("every node to list the one message", || {
            (messages(h)? == ["via a secondary"]).then_some(())
        });
    }
}

/// A named log over HTTP: appended to through the master and through a
/// secondary (which forwards it, on a connection for that log), listed and
/// read by number on every node, numbered apart from the default log; a
/// log that does not exist is 404, a name no log can have 400.
#[test]
fn a_named_log_is_appended_to_and_read_under_v1_logs() {
    let (mut c, http) = http_cluster(3, &[]);
    c.start_all();
    wait_accepting(&http[0]);
    let (code, out, err) = replog(&["log", "create", "orders", "--node", &c.addrs[0]]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        post(&http[0], json!({"message": "d1"})),
        (201, json!({"seq": 1}))
    );
    let path = "/v1/logs/orders/messages";
    let key = [("Idempotency-Key", "o-1")];
    assert_eq!(
        post_with(&http[0], path, json!({"message": "paid", "w": "all"}), &key),
        (201, json!({"seq": 1}))
    );
    // Through a secondary, with w=all so every node holds both after.
    let second = post_with(
        &http[1],
        path,
        json!({"message": "shipped", "w": "all"}),
        &[],
    );
    assert_eq!(second, (201, json!({"seq": 2})));
    // The same key in the default log is another message: keys are a log's own.
    assert_eq!(
        post_with(
            &http[2],
            "/v1/messages",
            json!({"message": "paid", "w": "all"}),
            &key
        ),
        (201, json!({"seq": 2}))
    );
    for h in &http {
        let (status, listed) = get(h, path, &[]);
        assert_eq!(status, 200, "{listed}");
        assert_eq!(
            listed["messages"],
            json!([{"message": "paid", "seq": 1}, {"message": "shipped", "seq": 2}]),
            "{h}"
        );
        assert_eq!(
            get(h, "/v1/logs/orders/messages/2", &[]).1["message"],
            "shipped"
        );
        let (_, logs) = get(h, "/v1/logs", &[]);
        assert_eq!(
            logs["logs"],
            json!([
                {"name": "default", "first": 1, "last": 2, "bytes": 6,
                 "retention_bytes": null, "retention_age_secs": null},
                {"name": "orders", "first": 1, "last": 2, "bytes": 11,
                 "retention_bytes": null, "retention_age_secs": null}
            ]),
            "{h}"
        );
    }
    let (status, answer) = post_with(
        &http[1],
        "/v1/logs/missing/messages",
        json!({"message": "x"}),
        &[],
    );
    assert_eq!(
        (status, &answer["error"]),
        (404, &json!("no_such_log")),
        "{answer}"
    );
    let (status, answer) = get(&http[2], "/v1/logs/missing/messages", &[]);
    assert_eq!(
        (status, &answer["error"]),
        (404, &json!("no_such_log")),
        "{answer}"
    );
    let (status, answer) = get(&http[2], "/v1/logs/bad%20name/messages", &[]);
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("bad_request")),
        "{answer}"
    );
    // Nothing was created by any of those.
    assert_eq!(
        get(&http[0], "/v1/logs", &[]).1["logs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

fn put_or_delete(method: &str, http: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("http://{http}{path}");
    let sent = match (method, body) {
        ("PUT", Some(body)) => agent().put(&url).send_json(body),
        ("PUT", None) => agent().put(&url).send("not json"),
        _ => agent().delete(&url).call(),
    };
    let Ok(mut r) = sent else {
        return (0, Value::Null);
    };
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

#[test]
fn a_consumer_group_is_set_read_as_and_deleted_under_v1_groups() {
    let (mut c, http) = http_cluster(3, &[]);
    c.start_all();
    wait_accepting(&http[0]);
    let (code, out, err) = replog(&["log", "create", "orders", "--node", &c.addrs[0]]);
    assert_eq!(code, 0, "{out}{err}");
    let path = "/v1/logs/orders/messages";
    for m in ["a", "b", "c", "d"] {
        let (status, _) = post_with(&http[0], path, json!({"message": m, "w": "all"}), &[]);
        assert_eq!(status, 201);
    }
    // Set through a secondary: handed on to the master.
    let (status, set) = put_or_delete(
        "PUT",
        &http[1],
        "/v1/groups/billing/logs/orders",
        Some(json!({"position": 2})),
    );
    assert_eq!(status, 200, "{set}");
    assert_eq!(
        (&set["group"], &set["position"]),
        (&json!("billing"), &json!(2))
    );
    // Every node knows it once it has the entry; read as the group there.
    for h in &http {
        let shown = wait_until(&format!("{h} to know billing"), || {
            let (status, v) = get(h, "/v1/groups/billing", &[]);
            (status == 200).then_some(v)
        });
        assert_eq!(
            shown["logs"],
            json!([{"group": "billing", "log": "orders", "position": 2, "last": 4, "lag": 2}]),
            "{h}"
        );
        // Committed messages only: a secondary learns the mark with the
        // master's next heartbeat.
        let listed = wait_until(&format!("{h} to list as billing"), || {
            let (status, listed) = get(h, &format!("{path}?group=billing"), &[]);
            assert_eq!(status, 200, "{listed}");
            let messages = listed["messages"].clone();
            (messages.as_array()?.len() == 2).then_some(messages)
        });
        assert_eq!(
            listed,
            json!([{"message": "c", "seq": 3}, {"message": "d", "seq": 4}]),
            "{h}"
        );
    }
    let (_, all) = get(&http[2], "/v1/groups", &[]);
    assert_eq!(all["groups"].as_array().map(Vec::len), Some(1), "{all}");
    // Refusals: past the end, a missing log, a bad name or body, group with from.
    let refused = |path: &str, body: Option<Value>| put_or_delete("PUT", &http[2], path, body);
    let (status, v) = refused(
        "/v1/groups/billing/logs/orders",
        Some(json!({"position": 9})),
    );
    assert_eq!((status, &v["error"]), (400, &json!("bad_request")), "{v}");
    let (status, v) = refused("/v1/groups/billing/logs/nope", Some(json!({"position": 0})));
    assert_eq!((status, &v["error"]), (404, &json!("no_such_log")), "{v}");
    let (status, v) = refused("/v1/groups/a%20b/logs/orders", Some(json!({"position": 0})));
    assert_eq!((status, &v["error"]), (400, &json!("bad_request")), "{v}");
    let (status, v) = refused("/v1/groups/billing/logs/orders", None);
    assert_eq!((status, &v["error"]), (400, &json!("bad_request")), "{v}");
    let (status, v) = get(&http[0], &format!("{path}?group=billing&from=1"), &[]);
    assert_eq!((status, &v["error"]), (400, &json!("bad_request")), "{v}");
    // Deleted: gone, and a second delete says there is none.
    let (status, v) = put_or_delete("DELETE", &http[1], "/v1/groups/billing", None);
    assert_eq!(status, 200, "{v}");
    let (status, v) = put_or_delete("DELETE", &http[0], "/v1/groups/billing", None);
    assert_eq!((status, &v["error"]), (404, &json!("no_such_group")), "{v}");
    let (status, v) = get(&http[0], "/v1/groups/billing", &[]);
    assert_eq!((status, &v["error"]), (404, &json!("no_such_group")), "{v}");
}

/// Each outcome has its status and a JSON body that names it.
#[test]
fn each_outcome_has_its_status_and_a_json_body() {
    let dir = tempfile::tempdir().unwrap();
    let (client, read) = (dir.path().join("client"), dir.path().join("read"));
    std::fs::write(&client, "client-secret-0123456789\n").unwrap();
    std::fs::write(&read, "read-secret-0123456789\n").unwrap();
    let (client, read) = (client.to_str().unwrap(), read.to_str().unwrap());
    let flags = [
        "--client-token-file",
        client,
        "--read-token-file",
        read,
        "--max-message-bytes",
        "1000",
        "--failover",
        "off",
        "--unhealthy-after",
        "1s",
    ];
    let (mut c, http) = http_cluster(3, &flags);
    c.start_all();
    let m = &http[0];
    let auth = [("Authorization", "Bearer client-secret-0123456789")];
    let reader = [("Authorization", "Bearer read-secret-0123456789")];
    wait_until("the master to take appends", || {
        let (_, v) = get(m, "/health", &auth);
        (v["accepting_appends"] == true).then_some(())
    });
    let status = |(s, v): (u16, Value)| (s, v["error"].as_str().unwrap_or("").to_string());
    // Tokens: none (401), one that may only read (403), a wrong one (403).
    assert_eq!(
        status(post(m, json!({"message": "x"}))),
        (401, "unauthorized".into())
    );
    let r = post_with(m, "/messages", json!({"message": "x"}), &reader);
    assert_eq!(status(r), (403, "unauthorized".into()));
    let wrong = [("Authorization", "Bearer nope")];
    assert_eq!(
        status(get(m, "/messages", &wrong)),
        (403, "unauthorized".into())
    );
    assert_eq!(get(m, "/messages", &reader).0, 200);
    // Bad requests: no message, not JSON, an impossible w, a bad timeout.
    let bad = |body: Value| status(post_with(m, "/messages", body, &auth));
    assert_eq!(bad(json!({"msg": "x"})), (400, "bad_request".into()));
    assert_eq!(bad(json!({"message": 3})), (400, "bad_request".into()));
    assert_eq!(
        bad(json!({"message": "x", "w": 4})),
        (400, "bad_request".into())
    );
    assert_eq!(
        bad(json!({"message": "x", "w": "most"})),
        (400, "bad_request".into())
    );
    assert_eq!(
        bad(json!({"message": "x", "timeout": "soon"})),
        (400, "bad_request".into())
    );
    let mut r = agent()
        .post(format!("http://{m}/messages"))
        .header("Authorization", "Bearer client-secret-0123456789")
        .content_type("application/json")
        .send("{not json")
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.body_mut().read_json::<Value>().unwrap()["error"],
        "bad_request"
    );
    // Too large: 413, as JSON text and as raw bytes.
    assert_eq!(
        bad(json!({"message": "x".repeat(1001)})),
        (413, "too_large".into())
    );
    let mut r = agent()
        .post(format!("http://{m}/v1/messages"))
        .header("Authorization", "Bearer client-secret-0123456789")
        .content_type("application/octet-stream")
        .send(&vec![7u8; 5000][..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(
        r.body_mut().read_json::<Value>().unwrap()["max_message_bytes"],
        1000
    );
    // A Content-Length over the limit is refused before any body comes
    // (waiting for it would be a 408 after --hello-timeout, 5 s).
    let mut s = TcpStream::connect(m.as_str()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let head = "POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer client-secret-0123456789\r\nContent-Type: application/octet-stream\r\nContent-Length: 99999999\r\n\r\n";
    s.write_all(head.as_bytes()).unwrap();
    let mut answer = [0u8; 12];
    s.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    // Raw bytes within the limit: stored as given, read back as base64.
    let mut r = agent()
        .post(format!("http://{m}/v1/messages?w=3"))
        .header("Authorization", "Bearer client-secret-0123456789")
        .content_type("application/octet-stream")
        .send(&[0xffu8, 0, 1][..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let seq = r.body_mut().read_json::<Value>().unwrap()["seq"]
        .as_u64()
        .unwrap();
    let (s, v) = get(m, &format!("/v1/messages/{seq}"), &reader);
    assert_eq!((s, v), (200, json!({"seq": seq, "message_base64": "/wAB"})));
    assert_eq!(
        status(get(m, "/v1/messages/99", &reader)),
        (404, "not_found".into())
    );
    // Unknown routes and methods.
    assert_eq!(
        status(get(m, "/nothing", &reader)),
        (404, "not_found".into())
    );
    let r = agent()
        .delete(format!("http://{m}/messages"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // One secondary down: w=3 with a timeout is stored short of w (504,
    // settled, with its seq and key); two down: read-only (503).
    c.kill(2);
    let body = json!({"message": "short", "w": 3, "timeout": "300ms"});
    let (s, v) = post_with(m, "/messages", body, &auth);
    assert_eq!(
        (s, &v["error"], &v["settled"]),
        (504, &json!("timed_out"), &json!(true)),
        "{v}"
    );
    assert!(
        v["seq"].as_u64().is_some() && v["key"].as_str().is_some(),
        "{v}"
    );
    c.kill(1);
    let (s, v) = wait_until("the master to turn read-only", || {
        let r = post_with(m, "/messages", json!({"message": "ro"}), &auth);
        (r.0 != 201).then_some(r)
    });
    assert_eq!((s, &v["error"]), (503, &json!("read_only")), "{v}");
}

/// Reads from `stream` until `want` has been seen; what was read.
fn read_until(stream: &mut TcpStream, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(want) {
        assert!(
            Instant::now() < deadline,
            "never saw {want:?} in {:?}",
            String::from_utf8_lossy(&seen)
        );
        match stream.read(&mut buf) {
            Ok(0) => panic!(
                "closed before {want:?}: {:?}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn connect(http: &str) -> TcpStream {
    let s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// `follow=true` streams each new message as it is stored, as NDJSON or as
/// server-sent events resumed after `Last-Event-ID`.
#[test]
fn a_follow_stream_sees_new_messages_and_events_resume_after_the_last_id() {
    let (mut c, http) = http_cluster(3, &[]);
    c.start_all();
    let m = &http[0];
    wait_accepting(m);
    assert_eq!(post(m, json!({"message": "one"})).0, 201);
    let mut ndjson = connect(&http[1]);
    write!(
        ndjson,
        "GET /v1/messages?follow=true HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    read_until(&mut ndjson, "{\"message\":\"one\",\"seq\":1}\n");
    let mut events = connect(&http[2]);
    write!(
        events,
        "GET /v1/messages?follow=true&from=1 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nLast-Event-ID: 1\r\n\r\n"
    )
    .unwrap();
    read_until(&mut events, "text/event-stream");
    assert_eq!(post(m, json!({"message": "two", "w": 3})).0, 201);
    read_until(&mut ndjson, "{\"message\":\"two\",\"seq\":2}\n");
    let seen = read_until(
        &mut events,
        "id: 2\ndata: {\"message\":\"two\",\"seq\":2}\n\n",
    );
    assert!(!seen.contains("\"one\""), "resumed after 1: {seen}");
    // Only an event stream resumes by Last-Event-ID: a JSON listing goes by
    // its URL.
    let plain = get(m, "/v1/messages?from=1&to=1", &[("Last-Event-ID", "1")]);
    assert_eq!(
        plain,
        (
            200,
            json!({"messages": [{"message": "one", "seq": 1}], "next": 2})
        )
    );
}

/// Sends `bytes` on a fresh connection; what comes back before it closes
/// (or 10 s pass).
fn exchange(http: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Garbage, a head too large, a body shorter than it said, a slowloris and
/// thousands of idle connections: each gets a 4xx or a closed connection,
/// and the node goes on serving with its memory bounded.
#[test]
fn bad_and_idle_http_clients_get_4xx_or_a_close_and_the_node_lives() {
    let flags = ["--hello-timeout", "1s", "--max-connections", "200"];
    let (mut c, http) = http_cluster(3, &flags);
    c.start_all();
    let m = &http[0];
    wait_accepting(m);
    let rss_before = c.rss(0);
    assert!(exchange(m, b"\x16\x03\x01 this is no HTTP\r\n\r\n").starts_with("HTTP/1.1 400"));
    let huge = format!(
        "GET /messages HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert!(exchange(m, huge.as_bytes()).starts_with("HTTP/1.1 431"));
    // A body shorter than its Content-Length: 408 once the time is up.
    let lying = "POST /messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"message\":";
    let answer = exchange(m, lying.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A head sent a byte at a time and never finished: closed.
    let mut slow = TcpStream::connect(m).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"GET /messages HTTP/1.1\r\nX-").unwrap();
    let mut out = Vec::new();
    let _ = slow.read_to_end(&mut out);
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    // A keep-alive connection idle after one request: closed.
    let mut idle = TcpStream::connect(m).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = idle.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    // Two thousand connections that say nothing: past --max-connections,
    // told 503; the rest closed after --hello-timeout.
    let idle: Vec<TcpStream> = (0..2000)
        .filter_map(|_| TcpStream::connect(m).ok())
        .collect();
    let refused = exchange(m, b"");
    assert!(
        refused.starts_with("HTTP/1.1 503") || refused.is_empty(),
        "{refused}"
    );
    // The HTTP port is full; the node itself goes on (its binary port).
    let nodes = c.addrs.join(",");
    let (code, out, err) = replog(&["append", "--node", &nodes, "-w", "3", "still here"]);
    assert_eq!((code, out.trim()), (0, "1"), "{err}");
    let grown = c.rss(0).saturating_sub(rss_before);
    assert!(grown < 64 << 20, "RSS grew by {grown} bytes");
    drop(idle);
    wait_until("the node to serve again after the idle flood", || {
        (post(m, json!({"message": "after", "w": 3})).0 == 201).then_some(())
    });
}

/// Messages of NUL bytes grow sixfold as JSON (`\u0000`). Many readers of
/// them at once, and clients that ask for them and never read, neither
/// hold up the master (it stays master, appends are answered) nor hold
/// the memory: pages are encoded off the node loop's thread under a budget,
/// and a client that reads nothing of its answer is closed.
#[test]
fn readers_of_large_escaped_pages_neither_stall_the_master_nor_hold_its_memory() {
    let (mut c, http) = http_cluster(3, &["--hello-timeout", "1s"]);
    c.start_all();
    let m = http[0].clone();
    wait_accepting(&m);
    for _ in 0..4 {
        let mut r = agent()
            .post(format!("http://{m}/v1/messages?w=3"))
            .content_type("application/octet-stream")
            .send(&vec![0u8; 1 << 20][..])
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            201,
            "{}",
            r.body_mut().read_to_string().unwrap()
        );
    }
    let (_, before) = get(&m, "/health", &[]);
    let rss_before = c.rss(0);
    storm(&m);
    let first = c.rss(0).saturating_sub(rss_before);
    storm(&m);
    storm(&m);
    let more = c.rss(0).saturating_sub(rss_before + first);
    // Bounded by the budget (64 MiB encoded) and a page read per listing,
    // and given back: the same after every burst.
    assert!(first < 160 << 20, "RSS grew by {first} bytes");
    assert!(
        more < 64 << 20,
        "RSS grew by {first}, then by {more} more bytes"
    );
    let (_, after) = get(&m, "/health", &[]);
    assert_eq!(
        (&after["role"], &after["epoch"]),
        (&before["role"], &before["epoch"]),
        "no failover"
    );
}

/// Forty clients that ask for every message and never read, sixteen that
/// read everything, and twenty appends meanwhile, all answered; the silent
/// clients closed in the end.
fn storm(m: &str) {
    // Clients that ask and never read.
    let silent: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = TcpStream::connect(m).unwrap();
            s.write_all(b"GET /v1/messages?from=1&to=4 HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    // Readers that read everything, meanwhile.
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let m = m.to_string();
            std::thread::spawn(move || {
                let url = format!("http://{m}/v1/messages?from=1&to=4");
                let limit = ureq::Agent::config_builder().build();
                let agent: ureq::Agent = limit.into();
                let mut r = agent.get(url).call().unwrap();
                let body = r
                    .body_mut()
                    .with_config()
                    .limit(64 << 20)
                    .read_to_string()
                    .unwrap();
                serde_json::from_str::<Value>(&body).unwrap()["messages"]
                    .as_array()
                    .unwrap()
                    .len()
            })
        })
        .collect();
    for i in 0..20 {
        let (status, v) = post(m, json!({"message": format!("during {i}"), "w": 3}));
        assert_eq!(status, 201, "an append during the reads: {v}");
    }
    for r in readers {
        assert_eq!(r.join().unwrap(), 4, "a reader got every message");
    }
    // The silent ones are closed once they have read nothing for 1 s.
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut sink = [0u8; 1 << 16];
        // Reading now drains what the kernel held, then meets the close.
        let closed = loop {
            match s.read(&mut sink) {
                Ok(0) => break Ok(()),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        assert!(
            closed.is_ok(),
            "a client that read nothing is still open: {closed:?}"
        );
    }
}
