//! The README's commands, run as written: the quick start against
//! `replogd --dev`, and the walkthrough's three daemons, appends and reads.
//! Only the ports (7001-7003 become free ones, so that tests never collide)
//! and `/tmp/replog` (a temporary directory) are changed; the default node
//! is pointed at the first port through `REPLOG_NODES`, as a reader whose
//! 7001 is taken would do. Where a comment says what a command prints
//! (`# → 5 6 7`, `# prints 1`), the output must say it.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// The lines of the ```sh block that follows `after` in the README.
fn block_after(readme: &str, after: &str) -> Vec<String> {
    let start = readme
        .find(after)
        .unwrap_or_else(|| panic!("README lacks {after:?}"));
    let rest = &readme[start..];
    let open = rest.find("```sh\n").expect("a sh block follows") + 6;
    let close = rest[open..].find("```").expect("the block ends") + open;
    rest[open..close].lines().map(str::to_string).collect()
}

/// A command line and what its comment says it prints, if anything.
fn split_comment(line: &str) -> (&str, Option<&str>) {
    match line.find("  #") {
        Some(at) => (line[..at].trim(), Some(line[at + 3..].trim())),
        None => (line.trim(), None),
    }
}

struct Shell {
    ports: [u16; 3],
    dir: std::path::PathBuf,
}

impl Shell {
    /// The line as it runs here.
    fn adapt(&self, line: &str) -> String {
        let mut line = line.replace("/tmp/replog", self.dir.to_str().unwrap());
        for (i, port) in self.ports.iter().enumerate() {
            line = line.replace(&format!("{}", 7001 + i), &port.to_string());
        }
        line
    }

    fn command(&self, script: &str) -> Command {
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_replog"))
            .parent()
            .unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script])
            .env("PATH", path)
            .env("REPLOG_NODES", format!("127.0.0.1:{}", self.ports[0]))
            .env_remove("REPLOG_NODE");
        cmd
    }

    /// Runs one line; checks its exit and what its comment promises.
    fn run(&self, line: &str) -> String {
        let (command, comment) = split_comment(line);
        let out = self.command(&self.adapt(command)).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command}: {stderr}");
        let promised = comment.and_then(|c| {
            c.strip_prefix("→ ")
                .or_else(|| c.strip_prefix("prints "))
                .map(|p| {
                    p.split(" once")
                        .next()
                        .unwrap()
                        .split(", one line")
                        .next()
                        .unwrap()
                })
        });
        if let Some(promised) = promised {
            let printed = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(printed, promised, "{command}");
        }
        stdout
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sh = Shell {
        ports: [free_port(), free_port(), free_port()],
        dir: dir.path().to_path_buf(),
    };
    let daemons = block_after(&readme, "Start three daemons");
    let (assign, starts) = daemons.split_first().unwrap();
    assert!(assign.starts_with("C="), "{assign}");
    let _nodes: Vec<Reaped> = starts
        .iter()
        .map(|start| {
            let script = format!("{}\nexec {}", sh.adapt(assign), sh.adapt(start));
            sh.command(&script)
                .stderr(Stdio::null())
                .spawn()
                .map(Reaped)
                .unwrap()
        })
        .collect();
    sh.run("replog health --wait 20s");
    let appends = block_after(&readme, "Append with different write concerns");
    for line in &appends {
        sh.run(line);
    }
    let reads = block_after(&readme, "Read from any node");
    let mut ran = 0;
    for line in reads.iter().filter(|l| !l.contains("--follow")) {
        let out = sh.run(line);
        assert!(!out.is_empty(), "{line}");
        ran += 1;
    }
    assert!(ran >= 5, "the read block has {ran} commands that end");
    // What the comments describe.
    let (_, listed, _) = replog(&["list", "--node", &format!("127.0.0.1:{}", sh.ports[2])]);
    assert_eq!(
        listed,
        "stored on the master\nmaster and one secondary\nevery node\ntwo of three\na\nb\nc\npaid\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // --dev takes three consecutive ports: free_port counts upwards,
    // skipping taken ones, so draw until three in a row are free.
    let ports = loop {
        let (a, b, c) = (free_port(), free_port(), free_port());
        if b == a + 1 && c == a + 2 {
            break [a, b, c];
        }
    };
    let base = ports[0];
    let sh = Shell {
        ports,
        dir: dir.path().to_path_buf(),
    };
    // `cargo run --release --bin replogd -- --dev`, on free ports.
    let dev = block_after(&readme, "Run a three-node cluster on your machine");
    assert_eq!(dev, ["cargo run --release --bin replogd -- --dev"]);
    let _dev = Command::new(env!("CARGO_BIN_EXE_replogd"))
        .args(["--dev", "--base-port", &base.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Reaped)
        .unwrap();
    sh.run("replog health --wait 20s");
    let lines = block_after(&readme, "With the dev cluster running");
    let mut ran = 0;
    for line in lines.iter().filter(|l| l.starts_with("replog ")) {
        sh.run(line);
        ran += 1;
    }
    assert_eq!(ran, 3);
}
