//! A cluster of replication cores in memory: no tokio, no sockets, no
//! clock. Each node is a `Core` with a log (a vector) and a sync that
//! completes some time after a write; the network is a queue of frames per
//! connection and direction that a schedule may delay, drop, reorder, cut
//! and heal; secondaries crash (losing what they had not synced) and come
//! back. Everything is drawn from one seed, so a schedule replays exactly.
//!
//! The invariants are checked as the schedule runs, and each failure names
//! the seed; `check_quiet` then heals everything and checks that the
//! cluster converges.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use replog::entry::{Entry, Epoch, Position, Seq};
use replog::replication::keys::KeyWindow;
use replog::replication::master::MasterEvent;
use replog::replication::role::{Action, Core, CoreConfig, Event};
use replog::replication::secondary::SecondaryEvent;
use replog::replication::{quorum, AppendRequest, LogState, Timing};
use replog::wire::{AppendError, Frame, WriteConcern};

/// How a schedule may misbehave.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Nodes in the cluster (node 0 is the master).
    pub nodes: usize,
    /// Appends issued over the run.
    pub appends: usize,
    /// Largest one-way delay of a frame, in ms.
    pub max_delay_ms: u64,
    /// Chance that a frame is lost.
    pub drop: f64,
    /// Chance that a frame overtakes those sent before it.
    pub reorder: f64,
    /// Chance, per step, that a link is cut (until healed).
    pub cut: f64,
    /// Chance, per step, that a secondary crashes (and restarts later).
    pub crash: f64,
    /// Chance that a sync fails (what it covered may then be lost).
    pub sync_fail: f64,
}

impl Faults {
    /// Faults drawn from the seed's generator: every kind, in varying
    /// measure, including none.
    pub fn draw(rng: &mut SmallRng) -> Faults {
        Faults {
            nodes: [2, 3, 3, 5][rng.gen_range(0..4)],
            appends: rng.gen_range(5..40),
            max_delay_ms: rng.gen_range(1..30),
            drop: [0.0, 0.0, 0.01, 0.05][rng.gen_range(0..4)],
            reorder: [0.0, 0.0, 0.02, 0.1][rng.gen_range(0..4)],
            cut: [0.0, 0.002, 0.01][rng.gen_range(0..3)],
            crash: [0.0, 0.001, 0.005][rng.gen_range(0..3)],
            sync_fail: [0.0, 0.0, 0.02, 0.1][rng.gen_range(0..4)],
        }
    }
}

/// One node: its core (none while crashed), its log and what is synced.
struct Node {
    id: String,
    core: Option<Core>,
    log: Vec<Entry>,
    /// Entries known durable: a crash keeps these and loses the rest.
    durable: usize,
    /// The newest epoch recorded.
    epoch: Epoch,
    /// When the last sync asked completes: syncs complete in order.
    last_sync: Duration,
    /// On the master: the connection per secondary (peer index) and the
    /// secondary's node index.
    links: Vec<Option<u64>>,
    /// Restart time, while crashed.
    restart_at: Option<Duration>,
    /// Bumped at every boot: a sync asked before a crash reports nothing.
    incarnation: u64,
    /// Cuts of this log so far: a sync asked before a cut covers only what
    /// was written before it, and the harness counts them itself rather
    /// than trust the core's generation.
    cuts: u64,
}

/// A frame on its way, over connection `conn` between master link `peer`
/// and secondary `node`.
#[derive(Debug, Clone)]
enum Deliver {
    /// Master to secondary.
    ToSecondary { conn: u64, frame: Frame },
    /// Secondary to master.
    ToMaster { conn: u64, frame: Frame },
}

/// A scheduled happening.
#[derive(Debug)]
enum Happening {
    Frame(Deliver),
    /// Node `node`'s sync completes up to `upto` for generation `gen`.
    Synced {
        node: usize,
        incarnation: u64,
        /// The harness's count of cuts when the sync was asked.
        cuts: u64,
        /// The core's generation then, as the runtime passes it back.
        gen: u64,
        upto: Seq,
    },
    Append(AppendRequest),
}

/// One connection between the master and secondary `node` (link `peer`).
#[derive(Debug, Clone, Copy)]
struct Conn {
    peer: usize,
    node: usize,
    /// Whether the master has heard the welcome (PeerConnected sent).
    open: bool,
}

/// What the client asked and was told.
#[derive(Debug, Clone)]
struct Request {
    key: Option<String>,
    message: Bytes,
    w: u32,
    answer: Option<Result<Seq, AppendError>>,
}

/// What a schedule did, to show that the faults happened.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub acknowledged: u64,
    pub refused_or_timed_out: u64,
    pub dropped: u64,
    pub reordered: u64,
    pub cuts: u64,
    pub crashes: u64,
    pub sync_failures: u64,
    pub master_crashes: u64,
    /// Log cuts the cores asked for (after failed syncs, and secondaries'
    /// suffixes a restarted master does not hold).
    pub log_cuts: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.acknowledged += o.acknowledged;
        self.refused_or_timed_out += o.refused_or_timed_out;
        self.dropped += o.dropped;
        self.reordered += o.reordered;
        self.cuts += o.cuts;
        self.crashes += o.crashes;
        self.sync_failures += o.sync_failures;
        self.master_crashes += o.master_crashes;
        self.log_cuts += o.log_cuts;
    }
}

/// The whole cluster.
pub struct World {
    pub stats: Stats,
    pub seed: u64,
    faults: Faults,
    rng: SmallRng,
    start: Instant,
    /// Virtual time since start.
    now: Duration,
    nodes: Vec<Node>,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    /// Links (by secondary node index) cut until the given time.
    cut_until: Vec<Duration>,
    /// Per connection and direction, when its last frame arrives: frames
    /// arrive in order (as on TCP) unless one is reordered.
    last_arrival: HashMap<(u64, bool), Duration>,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    happenings: HashMap<u64, Happening>,
    next_happening: u64,
    requests: BTreeMap<u64, Request>,
    /// Every acknowledged entry: seq -> (epoch, message).
    acked: BTreeMap<Seq, (Epoch, Bytes)>,
    /// Keys and the seq the first acknowledgement gave them.
    keys: HashMap<String, Seq>,
}

const STEP: Duration = Duration::from_millis(1);

impl World {
    /// A cluster for `seed`, with faults drawn from it.
    pub fn new(seed: u64) -> World {
        let mut rng = SmallRng::seed_from_u64(seed);
        let faults = Faults::draw(&mut rng);
        World::with_faults(seed, faults)
    }

    /// A cluster for `seed` with the given faults.
    pub fn with_faults(seed: u64, faults: Faults) -> World {
        let rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
        let start = Instant::now();
        let mut world = World {
            seed,
            stats: Stats::default(),
            faults,
            rng,
            start,
            now: Duration::ZERO,
            nodes: Vec::new(),
            conns: HashMap::new(),
            next_conn: 1,
            cut_until: vec![Duration::ZERO; faults.nodes],
            last_arrival: HashMap::new(),
            queue: BinaryHeap::new(),
            happenings: HashMap::new(),
            next_happening: 0,
            requests: BTreeMap::new(),
            acked: BTreeMap::new(),
            keys: HashMap::new(),
        };
        for i in 0..faults.nodes {
            world.nodes.push(Node {
                id: format!("n{i}"),
                core: None,
                log: Vec::new(),
                durable: 0,
                epoch: 0,
                last_sync: Duration::ZERO,
                links: Vec::new(),
                restart_at: None,
                incarnation: 0,
                cuts: 0,
            });
        }
        for i in 0..faults.nodes {
            world.boot(i);
        }
        world
    }

    fn config(&self, node: usize) -> CoreConfig {
        CoreConfig {
            id: format!("n{node}"),
            nodes: (0..self.faults.nodes)
                .map(|i| (format!("n{i}"), format!("n{i}:1")))
                .collect(),
            master: "n0".into(),
            timing: Timing {
                heartbeat_interval: Duration::from_millis(50),
                suspect_after: Duration::from_millis(200),
                unhealthy_after: Duration::from_millis(500),
                retry_base: Duration::from_millis(10),
                retry_max: Duration::from_millis(200),
                election_timeout: Duration::from_millis(150),
            },
            max_message_bytes: 64,
            window: 16,
            batch: 4,
            seed: self.seed ^ node as u64,
            stored_means_synced: true,
            replicate_delay: Duration::ZERO,
            fail_rate: 0.0,
            authenticated: false,
            encrypted: false,
            failover: false,
        }
    }

    fn instant(&self) -> Instant {
        self.start + self.now
    }

    /// Starts (or restarts) a node over what its log holds.
    fn boot(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.log.truncate(n.durable);
        n.restart_at = None;
        n.incarnation += 1;
        let mut keys = KeyWindow::new(1 << 16, 1);
        let mut epochs: Vec<(Epoch, Seq)> = Vec::new();
        for e in &n.log {
            keys.push(e.seq, e.key.as_deref());
            if epochs.last().map(|(x, _)| *x) != Some(e.epoch) {
                epochs.push((e.epoch, e.seq));
            }
        }
        let last = n.log.last().map_or(Position::default(), |e| Position {
            epoch: e.epoch,
            seq: e.seq,
        });
        let state = LogState {
            epoch: n.epoch.max(last.epoch),
            last,
            epochs,
            keys,
            vote: None,
            committed: 0,
        };
        let cfg = self.config(node);
        let (core, actions) = Core::new(cfg, state, self.instant());
        self.nodes[node].core = Some(core);
        self.run_actions(node, actions);
    }

    fn after(&mut self, delay: Duration, what: Happening) {
        let id = self.next_happening;
        self.next_happening += 1;
        self.happenings.insert(id, what);
        self.queue.push(Reverse((self.now + delay, id)));
    }

    /// A frame onto the network: delayed, maybe lost, maybe reordered. The
    /// welcome is part of the handshake, which a real link either completes
    /// or gives up on: it is never lost or reordered.
    fn send(&mut self, deliver: Deliver) {
        let (conn, down, welcome) = match &deliver {
            Deliver::ToSecondary { conn, .. } => (*conn, true, false),
            Deliver::ToMaster { conn, frame } => (*conn, false, matches!(frame, Frame::Welcome(_))),
        };
        let Some(secondary) = self.conns.get(&conn).map(|c| c.node) else {
            return;
        };
        if self.now < self.cut_until[secondary] {
            return;
        }
        if !welcome && self.rng.gen_bool(self.faults.drop) {
            self.stats.dropped += 1;
            return;
        }
        let delay = Duration::from_millis(self.rng.gen_range(0..=self.faults.max_delay_ms));
        let at = if !welcome && self.rng.gen_bool(self.faults.reorder) {
            // Overtakes whatever is in flight on this connection.
            self.stats.reordered += 1;
            self.now + STEP
        } else {
            let last = self.last_arrival.entry((conn, down)).or_default();
            *last = (*last).max(self.now + delay);
            *last
        };
        self.after(at - self.now, Happening::Frame(deliver));
    }

    fn step_node(&mut self, node: usize, event: Event) {
        let now = self.instant();
        let Some(core) = self.nodes[node].core.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        core.step(now, event, &mut out);
        self.run_actions(node, out);
        self.check_node(node);
    }

    fn flush_node(&mut self, node: usize) {
        let now = self.instant();
        let Some(core) = self.nodes[node].core.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        core.flush(now, &mut out);
        self.run_actions(node, out);
    }

    fn run_actions(&mut self, node: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::RecordEpoch(epoch) => self.nodes[node].epoch = epoch,
                Action::StartLinks { peers, .. } => {
                    self.nodes[node].links = vec![None; peers.len()];
                }
                Action::StopLinks => self.nodes[node].links.clear(),
                Action::Persist(entries) => self.persist(node, entries),
                Action::CutLog { after, .. } => {
                    self.stats.log_cuts += 1;
                    let n = &mut self.nodes[node];
                    n.cuts += 1;
                    n.log.truncate(after as usize);
                    n.durable = n.durable.min(after as usize);
                }
                Action::SendEntries { conn, from, to, .. } => {
                    let mut next = from;
                    while next <= to {
                        let end = to.min(next + 3);
                        let entries: Vec<Entry> =
                            self.nodes[node].log[(next - 1) as usize..end as usize].to_vec();
                        self.send(Deliver::ToSecondary {
                            conn,
                            frame: Frame::Entries { entries },
                        });
                        next = end + 1;
                    }
                }
                Action::ToPeer { conn, frame, .. } => {
                    self.send(Deliver::ToSecondary { conn, frame });
                }
                Action::Reconnect { conn, .. } => self.close(conn),
                Action::Diverged { conn, reason, .. } => {
                    panic!(
                        "seed {}: n{node} diverged on conn {conn}: {reason}",
                        self.seed
                    )
                }
                Action::ToMaster { conn, frame } => self.send(Deliver::ToMaster { conn, frame }),
                Action::RefuseMaster { conn, reason } => {
                    panic!(
                        "seed {}: n{node} refused its master on conn {conn}: {reason}",
                        self.seed
                    )
                }
                Action::Reply { req, result, .. } => self.answer(node, req, result),
                other => panic!("seed {}: n{node} did {other:?} without failover", self.seed),
            }
        }
    }

    /// A write: the entries must continue the log exactly.
    fn persist(&mut self, node: usize, entries: Vec<Entry>) {
        let seed = self.seed;
        let n = &mut self.nodes[node];
        for e in entries {
            assert_eq!(
                e.seq,
                n.log.len() as u64 + 1,
                "seed {seed}: {} would write seq {} after {} (a gap or a rewrite)",
                n.id,
                e.seq,
                n.log.len()
            );
            n.log.push(e);
        }
        self.start_sync(node);
    }

    fn start_sync(&mut self, node: usize) {
        let n = &self.nodes[node];
        if n.durable >= n.log.len() {
            return;
        }
        let gen = n.core.as_ref().map_or(0, |c| c.generation());
        let (upto, incarnation, cuts) = (n.log.len() as u64, n.incarnation, n.cuts);
        // One sync per write, as many in flight as writes come (the real
        // syncer coalesces them, but a sync asked before a cut can still
        // report after it), completing in order.
        let delay = Duration::from_micros(self.rng.gen_range(100..3000));
        let at = self.nodes[node].last_sync.max(self.now + delay);
        self.nodes[node].last_sync = at;
        let delay = at - self.now;
        self.after(
            delay,
            Happening::Synced {
                node,
                incarnation,
                cuts,
                gen,
                upto,
            },
        );
    }

    fn answer(&mut self, node: usize, req: u64, result: Result<Seq, AppendError>) {
        let seed = self.seed;
        let request = self.requests.get_mut(&req).expect("a request we made");
        assert!(
            request.answer.is_none(),
            "seed {seed}: request {req} answered twice"
        );
        request.answer = Some(result.clone());
        let Ok(seq) = result else {
            self.stats.refused_or_timed_out += 1;
            return;
        };
        self.stats.acknowledged += 1;
        // Acknowledged ⇒ stored (synced) on w nodes, with this message.
        let (w, message, key) = (request.w, request.message.clone(), request.key.clone());
        let entry = self.nodes[node].log[(seq - 1) as usize].clone();
        assert_eq!(
            entry.message, message,
            "seed {seed}: request {req} acknowledged as seq {seq}, which holds another message"
        );
        let holders = self
            .nodes
            .iter()
            .filter(|n| n.durable as u64 >= seq && n.log[(seq - 1) as usize] == entry)
            .count() as u32;
        assert!(
            holders >= w,
            "seed {seed}: seq {seq} acknowledged for w={w} but synced on {holders} nodes"
        );
        self.acked.insert(seq, (entry.epoch, message));
        // Exactly once per key: a retry is answered with the first seq.
        if let Some(key) = key {
            let first = *self.keys.entry(key.clone()).or_insert(seq);
            assert_eq!(
                first, seq,
                "seed {seed}: key {key} acknowledged as seq {first} and as seq {seq}"
            );
        }
    }

    /// Invariants of one node after a step.
    fn check_node(&self, node: usize) {
        let n = &self.nodes[node];
        let Some(core) = &n.core else { return };
        // Contiguous visibility: what readers may see is written and synced.
        assert!(
            core.stored() as usize <= n.durable,
            "seed {}: {} shows seq {} but has synced only {}",
            self.seed,
            n.id,
            core.stored(),
            n.durable
        );
    }

    /// Closes a connection on both sides.
    fn close(&mut self, conn: u64) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if self.nodes[0].links.get(c.peer) == Some(&Some(conn)) {
            self.nodes[0].links[c.peer] = None;
        }
        if c.open {
            self.step_node(
                0,
                Event::Link(MasterEvent::PeerDisconnected { peer: c.peer, conn }),
            );
        }
        self.step_node(
            c.node,
            Event::FromMaster(SecondaryEvent::MasterDisconnected { conn }),
        );
    }

    /// Closes every connection to secondary `node`.
    fn close_all_of(&mut self, node: usize) {
        let conns: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.node == node)
            .map(|(id, _)| *id)
            .collect();
        for conn in conns {
            self.close(conn);
        }
    }

    /// The master's links dial secondaries that are up and reachable.
    fn dial(&mut self) {
        let links = self.nodes[0].links.clone();
        for (peer, conn) in links.iter().enumerate() {
            let node = peer + 1;
            if conn.is_some()
                || self.nodes[node].core.is_none()
                || self.now < self.cut_until[node]
                || !self.rng.gen_bool(0.2)
            {
                continue;
            }
            let conn = self.next_conn;
            self.next_conn += 1;
            self.nodes[0].links[peer] = Some(conn);
            self.conns.insert(
                conn,
                Conn {
                    peer,
                    node,
                    open: false,
                },
            );
            let epoch = self.nodes[0].core.as_ref().map_or(0, |c| c.epoch());
            self.step_node(
                node,
                Event::MasterOpened {
                    conn,
                    master: "n0".into(),
                    epoch,
                },
            );
        }
    }

    fn deliver(&mut self, deliver: Deliver) {
        match deliver {
            Deliver::ToSecondary { conn, frame } => {
                let Some(c) = self.conns.get(&conn).copied() else {
                    return;
                };
                let event = match frame {
                    Frame::Sync { truncate_after } => SecondaryEvent::Sync {
                        conn,
                        truncate_after,
                    },
                    Frame::Entries { entries } => SecondaryEvent::Entries { conn, entries },
                    Frame::Heartbeat { committed } => SecondaryEvent::Heartbeat { conn, committed },
                    other => panic!("seed {}: master sent {other:?}", self.seed),
                };
                self.step_node(c.node, Event::FromMaster(event));
            }
            Deliver::ToMaster { conn, frame } => {
                let Some(c) = self.conns.get(&conn).copied() else {
                    return;
                };
                let peer = c.peer;
                let event = match frame {
                    Frame::Welcome(w) => {
                        self.conns.get_mut(&conn).expect("checked").open = true;
                        MasterEvent::PeerConnected {
                            peer,
                            conn,
                            last: w.last,
                            stored: w.stored,
                            epochs: w.epochs,
                        }
                    }
                    // A frame that overtook the welcome: the master does not
                    // know this connection yet and ignores it.
                    _ if !c.open => return,
                    Frame::Ack { stored } => MasterEvent::Ack { peer, conn, stored },
                    Frame::Nack { stored, reason } => MasterEvent::Nack {
                        peer,
                        conn,
                        stored,
                        reason,
                    },
                    Frame::HeartbeatReply { stored } => {
                        MasterEvent::HeartbeatReply { peer, conn, stored }
                    }
                    other => panic!("seed {}: secondary sent {other:?}", self.seed),
                };
                self.step_node(0, Event::Link(event));
            }
        }
    }

    /// A client append, issued now: sometimes a retry of an earlier key
    /// with its message, with a write concern from all kinds.
    fn issue_append(&mut self, req: u64) {
        let nodes = self.faults.nodes;
        let retry = req > 0 && self.rng.gen_bool(0.2);
        let (key, message) = if retry {
            let earlier = self.rng.gen_range(0..req);
            let r = &self.requests[&earlier];
            (r.key.clone(), r.message.clone())
        } else {
            let key = self.rng.gen_bool(0.7).then(|| format!("k{req}"));
            (key, Bytes::from(format!("m{req}")))
        };
        let w = match self.rng.gen_range(0..4) {
            0 => WriteConcern::Majority,
            1 => WriteConcern::All,
            _ => WriteConcern::Nodes(self.rng.gen_range(1..=nodes as u32)),
        };
        let timeout = self
            .rng
            .gen_bool(0.3)
            .then(|| Duration::from_millis(self.rng.gen_range(1..300)));
        self.requests.insert(
            req,
            Request {
                key: key.clone(),
                message: message.clone(),
                w: quorum::nodes_for(w, nodes),
                answer: None,
            },
        );
        let request = AppendRequest {
            client: 1,
            req,
            key,
            w,
            timeout,
            message,
        };
        let delay = Duration::from_millis(self.rng.gen_range(0..1500));
        self.after(delay, Happening::Append(request));
    }

    /// One millisecond of the schedule: faults, dialing, due happenings,
    /// ticks, the master's flush.
    fn advance(&mut self, faulty: bool) {
        self.now += STEP;
        if faulty {
            if self.nodes[0].core.is_some() && self.rng.gen_bool(self.faults.crash / 2.0) {
                self.crash(0);
            }
            for node in 1..self.faults.nodes {
                if self.rng.gen_bool(self.faults.cut) {
                    self.stats.cuts += 1;
                    let until = self.now + Duration::from_millis(self.rng.gen_range(10..800));
                    self.cut_until[node] = until;
                    self.close_all_of(node);
                }
                if self.nodes[node].core.is_some() && self.rng.gen_bool(self.faults.crash) {
                    self.crash(node);
                }
            }
        }
        for node in 0..self.faults.nodes {
            if self.nodes[node].restart_at.is_some_and(|t| t <= self.now) {
                self.boot(node);
            }
        }
        self.dial();
        while let Some(Reverse((at, id))) = self.queue.peek().copied() {
            if at > self.now {
                break;
            }
            self.queue.pop();
            match self.happenings.remove(&id).expect("scheduled") {
                Happening::Frame(d) => self.deliver(d),
                Happening::Synced {
                    node,
                    incarnation,
                    cuts,
                    gen,
                    upto,
                } => {
                    let n = &mut self.nodes[node];
                    if n.incarnation != incarnation {
                        continue;
                    }
                    if n.core.is_none() {
                        continue;
                    }
                    if faulty && self.rng.gen_bool(self.faults.sync_fail) {
                        // After a failed fdatasync the kernel may have
                        // dropped the dirty pages: what was not synced is
                        // gone, and the core must not write as if it were
                        // there.
                        self.stats.sync_failures += 1;
                        let n = &mut self.nodes[node];
                        n.log.truncate(n.durable);
                        let reason = "EIO (simulated)".to_string();
                        self.step_node(node, Event::SyncFailed { reason });
                        self.start_sync(node);
                        continue;
                    }
                    let n = &mut self.nodes[node];
                    if cuts == n.cuts {
                        n.durable = n.durable.max((upto as usize).min(n.log.len()));
                    }
                    self.step_node(node, Event::Stored { gen, upto });
                }
                Happening::Append(request) => {
                    if self.nodes[0].core.is_none() {
                        // The client cannot reach the master: it is told so.
                        self.lost(request.req);
                    } else {
                        self.step_node(0, Event::Append(request));
                    }
                }
            }
        }
        for node in 0..self.faults.nodes {
            let due = self.nodes[node]
                .core
                .as_ref()
                .and_then(|c| c.poll_timeout(self.instant()))
                .is_some_and(|t| t <= self.instant());
            if due || self.now.as_millis().is_multiple_of(10) {
                self.step_node(node, Event::Tick);
            }
        }
        self.flush_node(0);
    }

    /// A secondary stops: what it had not synced is lost.
    /// A request whose connection to the master broke: the client knows
    /// nothing of it (it may or may not be in the log).
    fn lost(&mut self, req: u64) {
        let r = self.requests.get_mut(&req).expect("a request we made");
        if r.answer.is_none() {
            r.answer = Some(Err(AppendError::ShuttingDown { seq: None }));
            self.stats.refused_or_timed_out += 1;
        }
    }

    fn crash(&mut self, node: usize) {
        self.stats.crashes += 1;
        if node == 0 {
            // Its waiting clients see their connections break; its links
            // go with it.
            self.stats.master_crashes += 1;
            // First the connections, which the master sees close (and may
            // answer for), then what is still unanswered is lost.
            let conns: Vec<u64> = self.conns.keys().copied().collect();
            for conn in conns {
                self.close(conn);
            }
            let waiting: Vec<u64> = self
                .requests
                .iter()
                .filter(|(_, r)| r.answer.is_none())
                .map(|(id, _)| *id)
                .collect();
            let pending: std::collections::HashSet<u64> = self
                .happenings
                .values()
                .filter_map(|h| match h {
                    Happening::Append(r) => Some(r.req),
                    _ => None,
                })
                .collect();
            for req in waiting {
                if !pending.contains(&req) {
                    self.lost(req);
                }
            }
            self.nodes[0].links.clear();
        }
        self.close_all_of(node);
        let n = &mut self.nodes[node];
        n.core = None;
        n.log.truncate(n.durable);
        n.restart_at = Some(self.now + Duration::from_millis(self.rng.gen_range(1..600)));
        // Happenings addressed to it (syncs) are dropped when they come.
    }

    /// Runs the schedule: appends under faults for a while, then a quiet
    /// period with every fault healed, then the final checks.
    pub fn run(&mut self) {
        for req in 0..self.faults.appends as u64 {
            self.issue_append(req);
        }
        for _ in 0..2000 {
            self.advance(true);
        }
        // Heal: links up, crashed nodes back; the cluster must converge.
        for t in &mut self.cut_until {
            *t = Duration::ZERO;
        }
        self.faults.drop = 0.0;
        self.faults.reorder = 0.0;
        for node in 0..self.faults.nodes {
            if self.nodes[node].core.is_none() {
                self.boot(node);
            }
        }
        // Frames lost inside a connection may leave a secondary waiting
        // for a resend that only a new connection brings (TCP never loses
        // them): start every connection afresh.
        let conns: Vec<u64> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(conn);
        }
        for _ in 0..3000 {
            self.advance(false);
        }
        self.check_quiet();
    }

    /// After the quiet period: every append answered, every acknowledged
    /// entry still where it was acknowledged, and every node holding
    /// exactly the master's log.
    fn check_quiet(&self) {
        let seed = self.seed;
        for (req, r) in &self.requests {
            assert!(
                r.answer.is_some(),
                "seed {seed}: request {req} never answered"
            );
        }
        let master = &self.nodes[0];
        for (seq, (epoch, message)) in &self.acked {
            let e = &master.log[(*seq - 1) as usize];
            assert_eq!(
                (&e.epoch, &e.message),
                (epoch, message),
                "seed {seed}: acknowledged seq {seq} changed"
            );
        }
        let mut keys = HashMap::new();
        for e in &master.log {
            if let Some(k) = &e.key {
                if let Some(first) = keys.insert(k.clone(), e.seq) {
                    panic!(
                        "seed {seed}: key {k} stored twice, at {first} and {}",
                        e.seq
                    );
                }
            }
        }
        for n in &self.nodes[1..] {
            assert_eq!(
                n.log, master.log,
                "seed {seed}: {} did not converge to the master's log",
                n.id
            );
        }
    }
}
