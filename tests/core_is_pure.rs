//! The replication core (`src/replication`) decides everything and does no
//! I/O: it takes events and the time, and gives actions. This test fails if
//! any of its non-test code names the runtime (tokio, the node, the
//! transport), the clock, the filesystem, the network, threads or entropy
//! from the system, so that a decision cannot quietly move where a
//! simulation cannot reach it.

use std::path::{Path, PathBuf};

/// What the core may not name, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("tokio", "the runtime"),
    ("crate::node", "the runtime"),
    ("crate::net", "the transport"),
    (
        "crate::storage",
        "the disk (the core hears of it as events)",
    ),
    ("std::fs", "the filesystem"),
    ("std::net", "the network"),
    ("std::thread", "threads"),
    ("std::process", "processes"),
    ("std::io", "I/O"),
    ("Instant::now", "the clock (time is passed in)"),
    ("SystemTime", "the clock (time is passed in)"),
    (
        "thread_rng",
        "entropy from the system (the seed is passed in)",
    ),
    (
        "rand::random",
        "entropy from the system (the seed is passed in)",
    ),
    (
        "from_entropy",
        "entropy from the system (the seed is passed in)",
    ),
];

/// Every `.rs` file under `dir`, test files left out.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "tests" {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
            out.push(path);
        }
    }
}

/// The forbidden names `text` uses outside comments and its test module
/// (which starts at its first `#[cfg(test)]`), with their line numbers.
fn offences(text: &str) -> Vec<(usize, &'static str, &'static str)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or_default();
        for (name, what) in FORBIDDEN {
            if code.contains(name) {
                found.push((n + 1, *name, *what));
            }
        }
    }
    found
}

#[test]
fn the_replication_core_names_no_runtime_clock_filesystem_or_network() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/replication");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(
        files.len() > 10,
        "the core's files were not found: {files:?}"
    );
    let mut report = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (line, name, what) in offences(&text) {
            report.push(format!("{}:{line}: {name} ({what})", file.display()));
        }
    }
    assert!(
        report.is_empty(),
        "the core must not do I/O; pass what it needs in as events and state:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_check_finds_what_it_looks_for_and_skips_comments_and_tests() {
    let text = "use std::time::Instant;\n\
                // tokio is mentioned in a comment only\n\
                fn f(now: Instant) { let _ = now; }\n\
                fn g() { tokio::spawn(async {}); let _ = std::fs::read(\"x\"); }\n\
                #[cfg(test)]\n\
                mod tests { fn t() { let _ = std::time::Instant::now(); } }\n";
    let found: Vec<(usize, &str)> = offences(text)
        .into_iter()
        .map(|(n, name, _)| (n, name))
        .collect();
    assert_eq!(found, vec![(4, "tokio"), (4, "std::fs")]);
}
