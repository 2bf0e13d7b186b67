//! Messages are bytes: the CLI stores exactly what it is given, from the
//! command line or standard input, reads NUL-separated input, prints raw
//! bytes, and never ends its input silently.

mod common;

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output, Stdio};

use common::*;
use replog::client::Client;

/// Runs `replog ARGS` with `input` on standard input.
fn replog_with_input(args: &[&std::ffi::OsStr], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(args)
        .env_remove("REPLOG_NODE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

async fn stored(addr: &str) -> Vec<Vec<u8>> {
    Client::connect(addr)
        .await
        .unwrap()
        .list_all(1)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, m)| m.to_vec())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_lines_that_are_not_utf8_are_stored_byte_for_byte() {
    let mut c = Cluster::new(1, false, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let out = replog_with_input(
        &[os("append"), os("--node"), os(c.master()), os("-")],
        b"first\n\xfe\xfd\nthird\nlatin-1 caf\xe9\r\nlast without newline",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"1\n2\n3\n4\n5\n");
    assert_eq!(
        stored(c.master()).await,
        [
            &b"first"[..],
            b"\xfe\xfd",
            b"third",
            b"latin-1 caf\xe9\r",
            b"last without newline"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_data_messages_may_hold_newlines_and_list_prints_raw_bytes() {
    let mut c = Cluster::new(1, false, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let out = replog_with_input(
        &[
            os("append"),
            os("--node"),
            os(c.master()),
            os("-0"),
            os("-"),
        ],
        b"two\nlines\0\0bin\xff\0",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"1\n2\n3\n");
    assert_eq!(
        stored(c.master()).await,
        [&b"two\nlines"[..], b"", b"bin\xff"]
    );
    // An argument is stored exactly as given, too.
    let arg = std::ffi::OsStr::from_bytes(b"arg \xc3\x28 \n end");
    let out = replog_with_input(&[os("append"), os("--node"), os(c.master()), arg], b"");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stored(c.master()).await[3], b"arg \xc3\x28 \n end");
    // `list` writes the bytes themselves, each message followed by a newline.
    let out = replog_with_input(&[os("list"), os("--node"), os(c.master())], b"");
    assert!(out.status.success());
    assert_eq!(
        out.stdout,
        b"two\nlines\n\nbin\xff\narg \xc3\x28 \n end\n".to_vec()
    );
    // `-0` without "-" is a usage error, not a silent no-op.
    let out = replog_with_input(
        &[
            os("append"),
            os("--node"),
            os(c.master()),
            os("-0"),
            os("x"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_json_gives_message_for_utf8_and_message_base64_otherwise() {
    let mut c = Cluster::new(1, false, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    let out = replog_with_input(
        &[os("append"), os("--node"), os(c.master()), os("-")],
        b"h\xc3\xa9llo\n\xff\x00\x01\n",
    );
    assert!(out.status.success(), "{out:?}");
    let (code, stdout, _) = replog(&["list", "--node", c.master(), "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"seq": 1, "message": "héllo"},
            {"seq": 2, "message_base64": "/wAB"},
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_error_on_stdin_is_an_error_that_counts_what_was_appended() {
    let mut c = Cluster::new(1, false, |_| flags(FAST));
    c.start_all();
    c.wait_up(0).await;
    // Reading a directory fails with EISDIR at the first read.
    let dir = std::fs::File::open(c.dir.path()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(["append", "--node", c.master(), "-"])
        .stdin(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("reading standard input failed after 0 message(s) had been appended"),
        "{stderr}"
    );
    assert!(stored(c.master()).await.is_empty());
}
