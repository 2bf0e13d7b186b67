//! The HTTP API's documents held to the server: every `$ curl` example of
//! docs/http.md and of the README's HTTP section run as written, in order,
//! against `replogd --dev` (only the ports change), each printing what the
//! document shows; and docs/openapi.json, whose every operation must be
//! served with one of the statuses it lists, and whose every path must
//! refuse (405) the methods it does not list.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `replogd --dev` on free ports: three nodes at `base`.., HTTP at
/// `base + 1000`...
struct Dev {
    child: Child,
    base: u16,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three consecutive free ports, with the three 1000 above them free too.
fn free_base() -> u16 {
    loop {
        let base = free_port();
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if (0..3).all(|i| free(base + i) && free(base + 1000 + i)) {
            // Taken from the sequence free_port hands out, so that the
            // next cluster does not pick them.
            for _ in 0..3 {
                free_port();
            }
            return base;
        }
    }
}

fn dev() -> Dev {
    // One cluster starts at a time: the ports found free stay free until
    // this one has bound them.
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    let base = free_base();
    let child = Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args(["--dev", "--base-port", &base.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dev = Dev { child, base };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    wait_until(
        "the dev cluster to take appends with every node healthy",
        || {
            let url = format!("http://127.0.0.1:{}/health", base + 1000);
            let v: Value = agent.get(url).call().ok()?.body_mut().read_json().ok()?;
            let all = v["nodes"]
                .as_array()?
                .iter()
                .all(|n| n["status"] == "healthy");
            (v["accepting_appends"] == true && all).then_some(())
        },
    );
    dev
}

/// The `$ ` commands of every ```console block of `doc`, each with the
/// lines it is shown to print.
fn examples(doc: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside && line.trim() == "```console";
            continue;
        }
        if !inside {
            continue;
        }
        match line.strip_prefix("$ ") {
            Some(command) => out.push((command.to_string(), Vec::new())),
            None => out
                .last_mut()
                .expect("output after a command")
                .1
                .push(line.into()),
        }
    }
    out
}

/// Whether `got` is what the document shows: the same text, or the same
/// JSON where a value shown as `"..."` may be anything.
fn same(shown: &Value, got: &Value) -> bool {
    match (shown, got) {
        (Value::String(s), _) if s == "..." => true,
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| same(v, w))
        }
        _ => shown == got,
    }
}

/// Runs the examples of `doc` (named `name`) against a fresh dev cluster.
fn run_examples(name: &str, doc: &str) {
    let cluster = dev();
    let examples = examples(doc);
    assert!(
        examples.len() >= 5,
        "{name} has only {} examples",
        examples.len()
    );
    for (command, shown) in examples {
        let mut line = command.clone();
        for i in 0..3u16 {
            line = line.replace(&format!("{}", 7001 + i), &(cluster.base + i).to_string());
            line = line.replace(
                &format!("{}", 8001 + i),
                &(cluster.base + 1000 + i).to_string(),
            );
        }
        assert!(
            line.starts_with("curl "),
            "{name}: not a curl command: {command}"
        );
        let out = Command::new("sh").args(["-c", &line]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            got.len(),
            shown.len(),
            "{name}: {command}\nshows {shown:?}\nprints {got:?}"
        );
        for (s, g) in shown.iter().zip(&got) {
            let matches = match (serde_json::from_str(s), serde_json::from_str(g)) {
                (Ok(s), Ok(g)) => same(&s, &g),
                _ => s == g,
            };
            assert!(matches, "{name}: {command}\nshows {s}\nprints {g}");
        }
    }
}

#[test]
fn the_http_guide_examples_print_what_the_guide_shows() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/http.md"));
    run_examples("docs/http.md", &doc.unwrap());
}

#[test]
fn the_readme_http_examples_print_what_the_readme_shows() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let readme = readme.unwrap();
    let start = readme.find("## HTTP").expect("README has an HTTP section");
    let end = readme[start + 3..]
        .find("\n## ")
        .map_or(readme.len(), |e| e + start + 3);
    run_examples("README.md", &readme[start..end]);
}

/// A request of `method` to `path` with a body an operation of that kind
/// takes; its status.
fn call(agent: &ureq::Agent, method: &str, url: &str) -> u16 {
    let answer = match method {
        "get" => agent.get(url).call(),
        "delete" => agent.delete(url).call(),
        "post" => agent
            .post(url)
            .send_json(serde_json::json!({"message": "openapi"})),
        "put" => agent
            .put(url)
            .send_json(serde_json::json!({"message": "openapi"})),
        other => panic!("no request for {other}"),
    };
    answer.unwrap().status().as_u16()
}

#[test]
fn every_operation_of_the_openapi_document_is_served_with_a_status_it_lists() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"));
    let spec: Value = serde_json::from_str(&text.unwrap()).expect("docs/openapi.json is JSON");
    assert!(
        spec["openapi"].as_str().unwrap_or("").starts_with("3."),
        "OpenAPI 3"
    );
    let cluster = dev();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let paths = spec["paths"].as_object().expect("paths");
    let operations: usize = paths
        .values()
        .map(|ops| ops.as_object().map_or(0, |o| o.len()))
        .sum();
    assert!(
        operations >= 8,
        "every route is documented: {operations} operations"
    );
    for (path, ops) in paths {
        let url = format!(
            "http://127.0.0.1:{}{}",
            cluster.base + 1000,
            path.replace("{seq}", "1")
                .replace("{log}", "default")
                .replace("{group}", "openapi")
        );
        for method in ["get", "post", "put", "delete"] {
            let status = call(&agent, method, &url);
            let Some(op) = ops.get(method) else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is not documented, yet answered"
                );
                continue;
            };
            let listed: Vec<&String> = op["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .collect();
            assert!(
                listed.iter().any(|s| s.as_str() == status.to_string()),
                "{method} {path} answered {status}, which the document does not list ({listed:?})"
            );
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has an operationId"
            );
        }
    }
}
