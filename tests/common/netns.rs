//! Network namespaces of the test's own making, for faults the loopback
//! interface cannot show: a silent partition, where a node's packets are
//! dropped without an error or a reset, as on a real network.
//!
//! One namespace per node and one for clients, each with an `eth0` plugged
//! into a bridge in a hub namespace. Addresses are in 192.0.2.0/24
//! (TEST-NET-1, reserved for documentation: no host anywhere has one), and
//! none of these namespaces has a route out, so nothing leaves them. A
//! partition is a classic-BPF `tc` filter on a node's `eth0`, both ways,
//! that returns "shot" for every packet: dropped silently (this kernel has
//! neither netem nor gact). Traffic a node sends itself goes through its
//! own loopback and is never cut, so a client run inside a node's
//! namespace still reaches that node while it is cut off.
//!
//! Creating namespaces needs root (CI runs as root). Anywhere else the
//! test fails saying so, unless `REPLOG_SKIP_NETNS=1` says to skip it on
//! purpose.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The namespaces of one test, removed when dropped.
pub struct Netns {
    /// Names: the hub's first, then node 0, node 1, ..., then clients'.
    prefix: String,
    nodes: usize,
}

/// Whether the caller asked to skip tests that need namespaces, having
/// been told why they cannot run here.
pub fn skipped() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        return false;
    }
    if std::env::var_os("REPLOG_SKIP_NETNS").is_some() {
        eprintln!(
            "skipped on purpose (REPLOG_SKIP_NETNS): this test needs root for network namespaces"
        );
        return true;
    }
    panic!("this test makes network namespaces and needs root (CI runs as root): run it as root, or set REPLOG_SKIP_NETNS=1 to skip it knowingly");
}

/// Runs `ip` (or `tc`) with `args`, panicking with its words if it fails.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e} (iproute2 is needed: apt-get install iproute2)")
        });
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// `nodes` node namespaces and one for clients, plugged into one hub.
    pub fn new(nodes: usize) -> Netns {
        remove_stale();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let net = Netns {
            prefix: format!("rl{}x{n}", std::process::id()),
            nodes,
        };
        let hub = net.name("hub");
        run("ip", &["netns", "add", &hub]);
        run(
            "ip",
            &["-n", &hub, "link", "add", "name", "br0", "type", "bridge"],
        );
        run("ip", &["-n", &hub, "link", "set", "br0", "up"]);
        for i in 0..=nodes {
            let ns = net.ns(i);
            let port = format!("p{i}");
            run("ip", &["netns", "add", &ns]);
            run(
                "ip",
                &[
                    "-n", &ns, "link", "add", "name", "eth0", "type", "veth", "peer", "name",
                    &port, "netns", &hub,
                ],
            );
            run("ip", &["-n", &hub, "link", "set", &port, "master", "br0"]);
            run("ip", &["-n", &hub, "link", "set", &port, "up"]);
            let addr = format!("{}/24", net.ip(i));
            run("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        }
        net
    }

    fn name(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    /// The namespace of node `i` (`i == nodes`: the clients').
    pub fn ns(&self, i: usize) -> String {
        if i == self.nodes {
            self.name("c")
        } else {
            self.name(&format!("n{i}"))
        }
    }

    /// The namespace clients run in, which reaches every node.
    pub fn clients(&self) -> usize {
        self.nodes
    }

    /// Node `i`'s address (`i == nodes`: the clients').
    pub fn ip(&self, i: usize) -> String {
        format!("192.0.2.{}", 11 + i)
    }

    /// `program` with `args`, to be run inside namespace `i`.
    pub fn command(&self, i: usize, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(i), program]);
        cmd
    }

    /// The `replog` CLI with `args`, started inside namespace `i`, its
    /// output captured.
    pub fn replog(&self, i: usize, args: &[&str]) -> Child {
        self.command(i, env!("CARGO_BIN_EXE_replog"))
            .args(args)
            .env_remove("REPLOG_NODE")
            .env_remove("REPLOG_NODES")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Cuts node `i` off: every packet in or out of its `eth0` is dropped
    /// silently. Its own loopback still works.
    pub fn isolate(&self, i: usize) {
        let ns = self.ns(i);
        run("tc", &["-n", &ns, "qdisc", "add", "dev", "eth0", "clsact"]);
        for way in ["ingress", "egress"] {
            // One classic-BPF instruction: `ret #2`, TC_ACT_SHOT.
            run(
                "tc",
                &[
                    "-n",
                    &ns,
                    "filter",
                    "add",
                    "dev",
                    "eth0",
                    way,
                    "bpf",
                    "da",
                    "bytecode",
                    "1,6 0 0 2,",
                ],
            );
        }
    }

    /// Cuts node `i` off from the nodes in `from` only: an IPv4 packet
    /// between them, either way, is dropped silently; everything else
    /// passes (clients, the other nodes, ARP). Undone by [`Netns::heal`].
    pub fn cut_off(&self, i: usize, from: &[usize]) {
        let ns = self.ns(i);
        run("tc", &["-n", &ns, "qdisc", "add", "dev", "eth0", "clsact"]);
        // The frame starts at its Ethernet header both ways; the IPv4
        // source is at byte 26, the destination at 30.
        for (way, at) in [("ingress", 26), ("egress", 30)] {
            let ips: Vec<u32> = from.iter().map(|&j| self.ip_u32(j)).collect();
            let program = drop_ipv4(at, &ips);
            run(
                "tc",
                &[
                    "-n", &ns, "filter", "add", "dev", "eth0", way, "bpf", "da", "bytecode",
                    &program,
                ],
            );
        }
    }

    fn ip_u32(&self, i: usize) -> u32 {
        let ip: std::net::Ipv4Addr = self.ip(i).parse().unwrap();
        u32::from(ip)
    }

    /// Undoes [`Netns::isolate`].
    pub fn heal(&self, i: usize) {
        run(
            "tc",
            &["-n", &self.ns(i), "qdisc", "del", "dev", "eth0", "clsact"],
        );
    }
}

/// A classic-BPF program, in `tc`'s `bytecode` form, that returns "shot"
/// (2) for an IPv4 frame whose 32-bit word at byte `at` is one of `ips`,
/// and "ok" (0) for any other frame.
fn drop_ipv4(at: u32, ips: &[u32]) -> String {
    assert!(!ips.is_empty(), "no address to drop");
    let n = ips.len() as u32;
    // ldh [12]; jeq #0x800 (else to "ok"); ld [at]; one jeq per address
    // (a match jumps to "shot"); ret #2; ret #0.
    let mut code = vec![(0x28, 0, 0, 12), (0x15, 0, n + 2, 0x800), (0x20, 0, 0, at)];
    for (k, ip) in ips.iter().enumerate() {
        let k = k as u32;
        let jf = if k + 1 == n { 1 } else { 0 };
        code.push((0x15, n - k - 1, jf, *ip));
    }
    code.push((0x06, 0, 0, 2));
    code.push((0x06, 0, 0, 0));
    let mut text = format!("{},", code.len());
    for (op, jt, jf, k) in code {
        text.push_str(&format!("{op} {jt} {jf} {k},"));
    }
    text
}

/// Removes what a test process killed before its clean-up (SIGKILL, a
/// timeout) left behind: namespaces named after a process that is gone,
/// and the daemons still inside them.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name
            .strip_prefix("rl")
            .and_then(|rest| rest.split('x').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = Command::new("ip")
            .args(["netns", "pids", name])
            .output()
            .map(|o| {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            });
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The processes inside must be gone first (the cluster is dropped
        // before this): a namespace lives on while a process is in it.
        for i in 0..=self.nodes {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(i)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name("hub")])
            .status();
    }
}
