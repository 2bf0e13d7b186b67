//! Test harness: real `replogd` processes on free loopback ports, talked to
//! with the client library or the `replog` binary.
#![allow(dead_code)]

pub mod frames;
pub mod netns;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use replog::client::{AppendOptions, Client, ClientError};
use replog::wire::{HealthReport, PeerStatus, WriteConcern};

/// Short deadlines so fault tests run in seconds.
pub const FAST: &[&str] = &[
    "--heartbeat-interval",
    "50ms",
    "--suspect-after",
    "200ms",
    "--unhealthy-after",
    "600ms",
    "--retry-base",
    "10ms",
    "--retry-max",
    "200ms",
];

/// A static master (`--failover off`): for tests of what the configured
/// master does across its own restarts and the loss of its secondaries.
/// Failover itself is tested in `failover.rs` and the cores harness.
pub const STATIC: &[&str] = &["--failover", "off"];

/// A free loopback port below the ephemeral range (so that no outgoing
/// connection of another test can take it while its node is down), unique
/// within this test process and checked to be bindable.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20000 + (std::process::id() % 500) as u16 * 20,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port < 32000, "ran out of test ports");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A cluster of `replogd` processes.
pub struct Cluster {
    /// Node addresses; node 0 is the master.
    pub addrs: Vec<String>,
    pub cluster_arg: String,
    /// Per-node extra flags.
    pub extra: Vec<Vec<String>>,
    /// Keeps the data directories.
    pub dir: tempfile::TempDir,
    /// Whether nodes keep their logs on disk.
    disk: bool,
    /// The network namespace each node runs in, if not this one's.
    netns: Vec<Option<String>>,
    procs: Vec<Option<Child>>,
}

impl Cluster {
    /// A cluster of `n` nodes, not started. `extra(i)` gives node i's flags.
    pub fn new(n: usize, disk: bool, extra: impl Fn(usize) -> Vec<String>) -> Cluster {
        let addrs: Vec<String> = (0..n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        Cluster::at(addrs, disk, extra)
    }

    /// A cluster of `n` nodes, each in its own namespace of `net` (node i
    /// in `net.ns(i)`, at `net.ip(i)`), not started.
    pub fn in_netns(
        net: &netns::Netns,
        n: usize,
        disk: bool,
        extra: impl Fn(usize) -> Vec<String>,
    ) -> Cluster {
        let addrs = (0..n).map(|i| format!("{}:7001", net.ip(i))).collect();
        let mut c = Cluster::at(addrs, disk, extra);
        c.netns = (0..n).map(|i| Some(net.ns(i))).collect();
        c
    }

    fn at(addrs: Vec<String>, disk: bool, extra: impl Fn(usize) -> Vec<String>) -> Cluster {
        let n = addrs.len();
        let cluster_arg = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("n{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        Cluster {
            addrs,
            cluster_arg,
            extra: (0..n).map(extra).collect(),
            dir: tempfile::tempdir().unwrap(),
            disk,
            netns: vec![None; n],
            procs: (0..n).map(|_| None).collect(),
        }
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for i in 0..self.addrs.len() {
            self.start(i);
        }
    }

    /// Where node i writes its stderr.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{}.log", i + 1))
    }

    /// Node i's data directory.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{}", i + 1))
    }

    /// How many named log segments (`*.log`) node i's data directory holds.
    pub fn segment_files(&self, i: usize) -> usize {
        std::fs::read_dir(self.data_dir(i))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".log")
            })
            .count()
    }

    /// Starts node i (again).
    pub fn start(&mut self, i: usize) {
        assert!(self.procs[i].is_none(), "node {i} already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let replogd = env!("CARGO_BIN_EXE_replogd");
        // `ip netns exec` execs the daemon: the child is the daemon itself.
        let mut cmd = match &self.netns[i] {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, replogd]);
                cmd
            }
            None => Command::new(replogd),
        };
        cmd.args([
            "--id",
            &format!("n{}", i + 1),
            "--cluster",
            &self.cluster_arg,
        ])
        .args(&self.extra[i])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        if self.disk {
            cmd.arg("--data-dir").arg(self.data_dir(i));
        }
        self.procs[i] = Some(cmd.spawn().unwrap());
    }

    /// Sends a signal to node i.
    pub fn signal(&self, i: usize, sig: &str) {
        let pid = self.procs[i].as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    /// kill -9 node i and reap it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.procs[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM node i and wait for its exit status.
    pub fn terminate(&mut self, i: usize) -> std::process::ExitStatus {
        self.signal(i, "TERM");
        self.terminate_wait(i)
    }

    /// Waits for node i, already signalled, to exit; returns its status.
    pub fn terminate_wait(&mut self, i: usize) -> std::process::ExitStatus {
        let mut child = self.procs[i].take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "node {i} did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Node i's process id.
    pub fn pid(&self, i: usize) -> u32 {
        self.procs[i].as_ref().expect("running").id()
    }

    /// Node i's resident memory, in bytes (VmRSS).
    pub fn rss(&self, i: usize) -> u64 {
        rss_of(self.pid(i))
    }

    /// The master's address.
    pub fn master(&self) -> &str {
        &self.addrs[0]
    }

    /// Node i's stderr so far (for failure messages).
    pub fn logs(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// Waits until node i answers a health query, and returns it.
    pub async fn wait_up(&self, i: usize) -> HealthReport {
        wait_for(&format!("node {i} to answer"), || async {
            let c = Client::connect(&self.addrs[i]).await.ok()?;
            c.health().await.ok()
        })
        .await
    }

    /// Waits until the master sees every listed secondary Healthy.
    pub async fn wait_healthy(&self, secondaries: &[usize]) {
        wait_for("secondaries to be healthy", || async {
            let c = Client::connect(self.master()).await.ok()?;
            let h = c.health().await.ok()?;
            if h.role != replog::wire::NodeRole::Master {
                return None; // not elected yet
            }
            secondaries
                .iter()
                .all(|&i| h.nodes[i].status == PeerStatus::Healthy)
                .then_some(())
        })
        .await
    }

    /// Waits until every running node in `nodes` lists exactly `n` entries,
    /// and returns their lists.
    pub async fn wait_converged(&self, nodes: &[usize], n: usize) -> Vec<Vec<(u64, String)>> {
        wait_for(&format!("nodes {nodes:?} to hold {n} entries"), || async {
            let mut lists = Vec::new();
            for &i in nodes {
                let c = Client::connect(&self.addrs[i]).await.ok()?;
                let l = c.list_all(1).await.ok()?;
                if l.len() != n {
                    return None;
                }
                lists.push(text(l));
            }
            Some(lists)
        })
        .await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            if let Some(child) = self.procs[i].as_mut() {
                // A stopped process must be continued to die cleanly.
                let _ = Command::new("kill")
                    .args(["-CONT", &child.id().to_string()])
                    .status();
            }
            self.kill(i);
        }
        if std::thread::panicking() {
            for i in 0..self.addrs.len() {
                eprintln!("---- node {i} log ----\n{}", self.logs(i));
            }
        }
    }
}

/// Polls `probe` every 20 ms until it yields, for at most 30 s. This waits
/// on a condition, never on a guess of how long something takes.
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_for`] for a test without a runtime: polls `probe` every 50 ms
/// until it yields, for at most 30 s.
pub fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Listed entries with their messages as text (the tests append UTF-8).
pub fn text(entries: Vec<(u64, bytes::Bytes)>) -> Vec<(u64, String)> {
    entries
        .into_iter()
        .map(|(s, m)| (s, String::from_utf8(m.to_vec()).expect("UTF-8 message")))
        .collect()
}

/// Appends with write concern `w` through a fresh connection.
pub async fn append(addr: &str, msg: &str, w: u32) -> Result<u64, ClientError> {
    let c = Client::connect(addr).await?;
    c.append(
        msg,
        &AppendOptions {
            w: WriteConcern::Nodes(w),
            ..AppendOptions::default()
        },
    )
    .await
}

/// Runs the `replog` binary with `input` on its standard input; returns
/// (exit code, stdout, stderr).
pub fn replog_with_input(args: &[&str], input: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(args)
        .env_remove("REPLOG_NODE")
        .env_remove("REPLOG_NODES")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the `replog` binary; returns (exit code, stdout, stderr).
pub fn replog(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_replog"))
        .args(args)
        .env_remove("REPLOG_NODE")
        .env_remove("REPLOG_NODES")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Resident memory of a process, in bytes (VmRSS from /proc).
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// A payload behind its length prefix, as it travels (valid or not).
pub fn prefixed(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// A frame as it travels: length prefix and payload.
pub fn framed(frame: &replog::wire::Frame) -> Vec<u8> {
    prefixed(&replog::wire::FrameCodec::to_payload(frame).unwrap())
}

/// Reads frames from a raw socket until the node closes it or `limit`
/// passes; returns them and whether the node closed the connection.
pub fn read_frames(
    s: &mut std::net::TcpStream,
    limit: Duration,
) -> (Vec<replog::wire::Frame>, bool) {
    use std::io::Read;
    use tokio_util::codec::Decoder;
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let deadline = Instant::now() + limit;
    let mut buf = bytes::BytesMut::new();
    let mut codec = replog::wire::FrameCodec::new(64 * 1024 * 1024);
    let mut frames = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        let closed = match s.read(&mut chunk) {
            Ok(0) => true,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        while let Ok(Some(f)) = codec.decode(&mut buf) {
            frames.push(f);
        }
        if closed {
            return (frames, true);
        }
    }
    (frames, false)
}

/// A client's hello, framed.
pub fn client_hello() -> Vec<u8> {
    framed(&replog::wire::Frame::Hello(replog::wire::Hello {
        version: replog::wire::PROTOCOL_VERSION,
        cluster: None,
        role: replog::wire::Role::Client,
        nonce: None,
        token: None,
    }))
}

/// Flags as owned strings.
pub fn flags(f: &[&str]) -> Vec<String> {
    f.iter().map(|s| s.to_string()).collect()
}

/// A child process killed and reaped when dropped, so that a failing test
/// never leaves a daemon behind.
pub struct Reaped(pub Child);

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
