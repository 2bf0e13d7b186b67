//! A cluster of replication cores in memory: no tokio, no sockets, no
//! clock. Each node is a `Core` with a log (a vector) and a sync that
//! completes some time after a write; the network is a queue of frames per
//! connection and direction that a schedule may delay, drop, reorder, cut
//! and heal, between any two nodes; nodes crash (losing what they had not
//! synced, keeping their recorded epoch and vote) and come back. With
//! failover, any node may become master: masters dial the others, and
//! candidates' vote requests travel like any frame. Everything is drawn
//! from one seed, so a schedule replays exactly.
//!
//! The invariants (`invariants/`) are checked as the schedule runs, and
//! each failure names the seed and the invariant; `run` then heals
//! everything and checks that the cluster converges on one master's log.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use replog::entry::{Entry, Epoch, Position, Seq, EPOCH_LIMIT};
use replog::replication::catalog::{Catalog, Logs};
use replog::replication::groups::{effect, GroupState, Positions};
use replog::replication::keys::KeyWindow;
use replog::replication::master::MasterEvent;
use replog::replication::membership::Membership;
use replog::replication::numbers::Numbers;
use replog::replication::role::{
    Action, Core, CoreConfig, Event, GroupRequest, VoteAnswer, VoteRequest,
};
use replog::replication::secondary::SecondaryEvent;
use replog::replication::storage::{Durability, StorageReport};
use replog::replication::{quorum, AppendRequest, LogState, MemberChange, Timing};
use replog::wire::{AppendError, Frame, WriteConcern};

use crate::invariants::{self, NodeView};

/// How a schedule may misbehave.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Nodes in the cluster (node 0 is the configured master).
    pub nodes: usize,
    /// Whether masters are elected (`--failover on`).
    pub failover: bool,
    /// Appends issued over the run.
    pub appends: usize,
    /// Largest one-way delay of a frame, in ms.
    pub max_delay_ms: u64,
    /// Chance that a frame is lost.
    pub drop: f64,
    /// Chance that a frame overtakes those sent before it.
    pub reorder: f64,
    /// Chance, per step, that the link between two nodes is cut (until
    /// healed).
    pub cut: f64,
    /// Chance, per step, that a node (the master, mostly) is cut off from
    /// every other node for a while.
    pub partition: f64,
    /// Chance, per step, that a secondary crashes (and restarts later); a
    /// master crashes at half this rate.
    pub crash: f64,
    /// Chance that a sync fails (what it covered may then be lost).
    pub sync_fail: f64,
    /// Chance, per step, that a stranger (a keyless cluster's attacker)
    /// sends a node a forged hello, vote request, vote or newer epoch:
    /// from an id no member has, or at an epoch no election reaches.
    pub forge: f64,
    /// Chance that a crash also loses the node's disk (its log, epoch and
    /// vote): it comes back a new incarnation, a learner. With failover,
    /// three nodes or more, and only while no other node is a learner (one
    /// disk lost at a time, as the guarantee has it: w−1 disks for w).
    pub wipe: f64,
    /// Chance, per step, that the master is asked for a membership change
    /// (a member removed, or a removed one added back); drawn from a
    /// generator of its own (see `World::new`), with failover only.
    pub changes: f64,
}

impl Faults {
    /// Faults drawn from the seed's generator: every kind, in varying
    /// measure, including none.
    pub fn draw(rng: &mut SmallRng, failover: bool) -> Faults {
        Faults {
            nodes: [2, 3, 3, 5][rng.gen_range(0..4)],
            failover,
            appends: rng.gen_range(5..40),
            max_delay_ms: rng.gen_range(1..30),
            drop: [0.0, 0.0, 0.01, 0.05][rng.gen_range(0..4)],
            reorder: [0.0, 0.0, 0.02, 0.1][rng.gen_range(0..4)],
            cut: [0.0, 0.002, 0.01][rng.gen_range(0..3)],
            partition: if failover {
                [0.0, 0.0005, 0.002][rng.gen_range(0..3)]
            } else {
                0.0
            },
            crash: [0.0, 0.001, 0.005][rng.gen_range(0..3)],
            sync_fail: [0.0, 0.0, 0.02, 0.1][rng.gen_range(0..4)],
            forge: [0.0, 0.0, 0.002, 0.01][rng.gen_range(0..4)],
            wipe: [0.0, 0.3, 1.0][rng.gen_range(0..3)],
            changes: 0.0,
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
    /// The epoch and vote recorded (kept through a crash).
    epoch: Epoch,
    vote: Option<String>,
    /// Recorded as a learner (a new incarnation, not yet caught up).
    learner: bool,
    /// What its durable log held each time its disk was lost: the master
    /// cannot know of a loss before the node is back, and counts what it
    /// stored before it.
    lost: Vec<Vec<Entry>>,
    /// When the last sync asked completes: syncs complete in order.
    last_sync: Duration,
    /// While master: per link (peer index) the live connection, and the
    /// node each link dials.
    links: Vec<Option<u64>>,
    link_nodes: Vec<usize>,
    /// The epoch the links speak for.
    link_epoch: Epoch,
    /// Restart time, while crashed.
    restart_at: Option<Duration>,
    /// Bumped at every boot: a sync asked before a crash reports nothing.
    incarnation: u64,
    /// Cuts of this log so far: a sync asked before a cut covers only what
    /// was written before it, and the harness counts them itself rather
    /// than trust the core's generation.
    cuts: u64,
}

/// Something on its way between two nodes.
#[derive(Debug, Clone)]
enum Deliver {
    /// Master to secondary, on a replication connection.
    ToSecondary { conn: u64, frame: Frame },
    /// Secondary to master, on a replication connection.
    ToMaster { conn: u64, frame: Frame },
    /// A vote request, its answer, or a refusal naming a newer epoch.
    Vote {
        from: usize,
        to: usize,
        event: Event,
    },
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
    /// A client's append, and how often it found no master yet.
    Append(AppendRequest, u32),
}

/// One replication connection from `master`'s link `peer` to `node`.
#[derive(Debug, Clone, Copy)]
struct Conn {
    master: usize,
    peer: usize,
    node: usize,
    /// Whether the master has heard the welcome (PeerConnected sent).
    open: bool,
}

/// What the client asked and was told.
#[derive(Debug, Clone)]
struct Request {
    /// As sent, to send again after a redirect.
    request: AppendRequest,
    key: Option<String>,
    message: Bytes,
    w: u32,
    /// The node it was sent to.
    sent_to: Option<usize>,
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
    pub partitions: u64,
    /// Cuts and partitions that left connections open.
    pub silent_cuts: u64,
    pub crashes: u64,
    pub sync_failures: u64,
    pub master_crashes: u64,
    /// Log cuts the cores asked for (after failed syncs, and suffixes the
    /// master does not hold).
    pub log_cuts: u64,
    /// Divergent suffixes cut (saved to a rollback file by the runtime).
    pub rollbacks: u64,
    /// Times a node became master.
    pub elections: u64,
    /// Masters that stepped down (a newer epoch, or no majority heard).
    pub step_downs: u64,
    /// Failed syncs on a master that cut entries it had already sent
    /// (parallel replication): it went on in a new epoch or stepped down.
    pub spent_epochs: u64,
    /// Forged inputs sent to nodes, and the refusals and disregards they
    /// met.
    pub forgeries: u64,
    pub refusals: u64,
    /// Failed appends whose answer promised the entry (on a majority), and
    /// those whose answer promised nothing though it named a seq.
    pub promised: u64,
    pub uncommitted: u64,
    /// Membership changes asked for, and made (committed).
    pub changes_asked: u64,
    pub changes_made: u64,
    /// Consumer groups' requests asked for, and made (committed).
    pub groups_asked: u64,
    pub groups_made: u64,
    /// Configuration entries masters wrote (changes and promotions).
    pub config_entries: u64,
    /// Masters that stepped down once their own removal was committed.
    pub left: u64,
    /// Disks lost in a crash, learners' votes and promotions.
    pub wipes: u64,
    /// Of the disks lost, those found damaged and healed to a prefix (the
    /// others were replaced, empty).
    pub damaged: u64,
    pub learner_votes: u64,
    pub promotions: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.acknowledged += o.acknowledged;
        self.refused_or_timed_out += o.refused_or_timed_out;
        self.dropped += o.dropped;
        self.reordered += o.reordered;
        self.cuts += o.cuts;
        self.partitions += o.partitions;
        self.silent_cuts += o.silent_cuts;
        self.crashes += o.crashes;
        self.sync_failures += o.sync_failures;
        self.master_crashes += o.master_crashes;
        self.log_cuts += o.log_cuts;
        self.rollbacks += o.rollbacks;
        self.elections += o.elections;
        self.step_downs += o.step_downs;
        self.spent_epochs += o.spent_epochs;
        self.forgeries += o.forgeries;
        self.refusals += o.refusals;
        self.promised += o.promised;
        self.uncommitted += o.uncommitted;
        self.wipes += o.wipes;
        self.changes_asked += o.changes_asked;
        self.changes_made += o.changes_made;
        self.groups_asked += o.groups_asked;
        self.groups_made += o.groups_made;
        self.config_entries += o.config_entries;
        self.left += o.left;
        self.damaged += o.damaged;
        self.learner_votes += o.learner_votes;
        self.promotions += o.promotions;
    }
}

/// The invariants' state.
#[derive(Default)]
struct Invariants {
    one_master: invariants::one_master_per_epoch::Check,
    committed: invariants::committed_never_goes_back::Check,
    majority: invariants::majority_acked_never_lost::Check,
    keys: invariants::keyed_append_at_most_once::Check,
    promised: invariants::promised_outcomes_hold::Check,
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
    /// Vote connections: candidate and voter.
    vote_conns: HashMap<u64, (usize, usize)>,
    /// The link between two nodes is cut until the given time.
    cut_until: Vec<Vec<Duration>>,
    /// Per connection and direction, when its last frame arrives: frames
    /// arrive in order (as on TCP) unless one is reordered.
    last_arrival: HashMap<(u64, bool), Duration>,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    happenings: HashMap<u64, Happening>,
    next_happening: u64,
    requests: BTreeMap<u64, Request>,
    /// Static master: every acknowledged entry, seq -> (epoch, message).
    acked: BTreeMap<Seq, (Epoch, Bytes)>,
    /// Which nodes were master after the last step (to count changes).
    was_master: Vec<bool>,
    /// Connections a forger opened: refusing them is right, even for a
    /// static master's secondary.
    forged: HashSet<u64>,
    /// Set while a forged input is being stepped: only then may a node
    /// disregard an input.
    forging: bool,
    /// The epoch of the node being stepped, if it was master before the
    /// step: the epoch an answer given in the step speaks for, even if the
    /// node stepped down in it.
    master_epoch: Option<Epoch>,
    invariants: Invariants,
    /// Draws membership changes (see `Faults::changes`).
    change_rng: SmallRng,
    /// The request id of the next membership change.
    next_change: u64,
    /// Draws consumer groups' positions set and groups deleted.
    group_rng: SmallRng,
    /// The request ids of groups' requests (answered as changes are).
    group_reqs: HashSet<u64>,
}

/// Whether node `n` stored `entry` at `seq` durably: it holds it, or held
/// it when its disk was lost.
fn stored(n: &Node, seq: Seq, entry: &Entry) -> bool {
    let at = (seq - 1) as usize;
    (n.durable > at && n.log[at] == *entry) || n.lost.iter().any(|l| l.get(at) == Some(entry))
}

/// The nodes as the invariants see them.
fn views(nodes: &[Node]) -> Vec<NodeView<'_>> {
    nodes
        .iter()
        .map(|n| NodeView {
            id: &n.id,
            log: &n.log,
            durable: n.durable,
            core: n.core.as_ref(),
        })
        .collect()
}

const STEP: Duration = Duration::from_millis(1);

/// Seeds the generator of membership changes; also the first request id of
/// a change (appends' ids are below it).
const CHANGES: u64 = 1 << 40;

/// Seeds the draws of consumer groups' requests, which are answered as
/// membership changes are (their ids come from the same count).
const GROUPS: u64 = 1 << 41;

impl World {
    /// A cluster for `seed`, with faults drawn from it.
    pub fn new(seed: u64, failover: bool) -> World {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut faults = Faults::draw(&mut rng, failover);
        // Membership changes come from a generator of their own, so that
        // every other draw, and what the seeds kept as regression tests
        // replay, is what it was before there were changes.
        let mut own = SmallRng::seed_from_u64(seed ^ CHANGES);
        if failover && faults.nodes >= 3 {
            faults.changes = [0.0, 0.002, 0.01][own.gen_range(0..3)];
        }
        World::with_faults(seed, faults)
    }

    /// A cluster for `seed` with the given faults.
    pub fn with_faults(seed: u64, faults: Faults) -> World {
        let rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
        let start = Instant::now();
        let n = faults.nodes;
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
            vote_conns: HashMap::new(),
            cut_until: vec![vec![Duration::ZERO; n]; n],
            last_arrival: HashMap::new(),
            queue: BinaryHeap::new(),
            happenings: HashMap::new(),
            next_happening: 0,
            requests: BTreeMap::new(),
            acked: BTreeMap::new(),
            was_master: vec![false; n],
            forged: HashSet::new(),
            forging: false,
            master_epoch: None,
            invariants: Invariants::default(),
            change_rng: SmallRng::seed_from_u64(seed ^ CHANGES ^ 1),
            next_change: CHANGES,
            group_rng: SmallRng::seed_from_u64(seed ^ GROUPS),
            group_reqs: HashSet::new(),
        };
        for i in 0..n {
            world.nodes.push(Node {
                id: format!("n{i}"),
                core: None,
                log: Vec::new(),
                durable: 0,
                epoch: 0,
                vote: None,
                // A new cluster: every node a new incarnation.
                learner: true,
                lost: Vec::new(),
                last_sync: Duration::ZERO,
                links: Vec::new(),
                link_nodes: Vec::new(),
                link_epoch: 0,
                restart_at: None,
                incarnation: 0,
                cuts: 0,
            });
        }
        for i in 0..n {
            world.boot(i);
        }
        world
    }

    fn config(&self, node: usize) -> CoreConfig {
        CoreConfig {
            max_logs: 8,
            max_groups: 8,
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
            durability: Durability::Synced,
            replicate_delay: Duration::ZERO,
            fail_rate: 0.0,
            authenticated: false,
            encrypted: false,
            failover: self.faults.failover,
        }
    }

    fn instant(&self) -> Instant {
        self.start + self.now
    }

    fn fail(&self, invariant: &str, what: String) -> ! {
        panic!(
            "seed {} ({}): invariant '{invariant}' broken at {:?}: {what}",
            self.seed,
            if self.faults.failover {
                "failover"
            } else {
                "static master"
            },
            self.now
        )
    }

    fn views(&self) -> Vec<NodeView<'_>> {
        views(&self.nodes)
    }

    /// Starts (or restarts) a node over what its log holds.
    fn boot(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.log.truncate(n.durable);
        n.restart_at = None;
        n.incarnation += 1;
        n.links.clear();
        let mut keys = KeyWindow::new(1 << 16, 1);
        let mut epochs: Vec<(Epoch, Seq)> = Vec::new();
        for e in &n.log {
            keys.push((e.seq, e.log, e.number), e.key.as_deref(), &e.message);
            if epochs.last().map(|(x, _)| *x) != Some(e.epoch) {
                epochs.push((e.epoch, e.seq));
            }
        }
        let last = n.log.last().map_or(Position::default(), |e| Position {
            epoch: e.epoch,
            seq: e.seq,
        });
        let state = LogState {
            epoch: n.epoch,
            last,
            epochs,
            keys,
            vote: n.vote.clone(),
            committed: 0,
            base: Default::default(),
            learner: n.learner,
            // As the node's storage finds them at start.
            configs: (n.log.iter())
                .filter(|e| e.is_config())
                .map(|e| {
                    (
                        e.seq,
                        Membership::decode(&e.message).expect("written by a master"),
                    )
                })
                .collect(),
            numbers: Numbers::known(numbers_of(&n.log), Vec::new()),
            // Every cluster has a second log, which a third of the appends
            // go to (`log_of`), from the start.
            catalog: Catalog::new(
                Logs::decode(b"1\n1 orders\n").expect("a catalog"),
                Vec::new(),
            ),
            // As the node's storage reads them at start.
            groups: GroupState::known(groups_of(&n.log), Bytes::new()),
        };
        let cfg = self.config(node);
        let (core, actions) = Core::new(cfg, state, self.instant());
        self.nodes[node].core = Some(core);
        self.invariants.committed.booted(node);
        self.run_actions(node, actions);
    }

    fn after(&mut self, delay: Duration, what: Happening) {
        let id = self.next_happening;
        self.next_happening += 1;
        self.happenings.insert(id, what);
        self.queue.push(Reverse((self.now + delay, id)));
    }

    fn blocked(&self, a: usize, b: usize) -> bool {
        self.now < self.cut_until[a][b]
    }

    fn up(&self, node: usize) -> bool {
        self.nodes[node].core.is_some()
    }

    /// A frame onto the network: delayed, maybe lost, maybe reordered. The
    /// welcome is part of the handshake, which a real link either completes
    /// or gives up on: it is never lost or reordered. Votes travel on their
    /// own short connections: delayed, maybe lost, never reordered within
    /// one.
    fn send(&mut self, deliver: Deliver) {
        let (key, ends, handshake) = match &deliver {
            Deliver::ToSecondary { conn, .. } => {
                let Some(c) = self.conns.get(conn) else {
                    return;
                };
                ((*conn, true), (c.master, c.node), false)
            }
            Deliver::ToMaster { conn, frame } => {
                let Some(c) = self.conns.get(conn) else {
                    return;
                };
                let welcome = matches!(frame, Frame::Welcome(_));
                ((*conn, false), (c.node, c.master), welcome)
            }
            Deliver::Vote { from, to, .. } => ((u64::MAX, false), (*from, *to), true),
        };
        if self.blocked(ends.0, ends.1) {
            return;
        }
        if self.rng.gen_bool(self.faults.drop)
            && !matches!(deliver, Deliver::ToMaster { .. } if handshake)
        {
            self.stats.dropped += 1;
            return;
        }
        let delay = Duration::from_millis(self.rng.gen_range(0..=self.faults.max_delay_ms));
        let at = if matches!(deliver, Deliver::Vote { .. }) {
            self.now + delay
        } else if !handshake && self.rng.gen_bool(self.faults.reorder) {
            // Overtakes whatever is in flight on this connection.
            self.stats.reordered += 1;
            self.now + STEP
        } else {
            let last = self.last_arrival.entry(key).or_default();
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
        self.master_epoch = core.is_master().then(|| core.epoch());
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
        self.master_epoch = core.is_master().then(|| core.epoch());
        let mut out = Vec::new();
        core.flush(now, &mut out);
        self.run_actions(node, out);
    }

    fn run_actions(&mut self, node: usize, actions: Vec<Action>) {
        // A cut is followed by a report of the numbers the log holds after
        // it, taken once this batch's actions are carried out, as the node
        // loop takes it after the input at hand.
        let cut = actions.iter().any(|a| matches!(a, Action::CutLog { .. }));
        self.carry_out(node, actions);
        if cut && self.nodes[node].core.is_some() {
            let pairs = numbers_of(&self.nodes[node].log);
            let groups = groups_of(&self.nodes[node].log);
            let report = StorageReport::Numbers { pairs, groups };
            self.step_node(node, Event::Storage(report));
        }
    }

    fn carry_out(&mut self, node: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::RecordEpoch(epoch) => {
                    self.nodes[node].epoch = epoch;
                    self.nodes[node].vote = None;
                }
                Action::RecordVote { epoch, vote } => {
                    let n = &mut self.nodes[node];
                    assert!(
                        epoch > n.epoch || (epoch == n.epoch && (n.vote.is_none() || n.vote == vote)),
                        "seed {}: n{node} recorded epoch {epoch} vote {vote:?} over epoch {} vote {:?}",
                        self.seed,
                        n.epoch,
                        n.vote
                    );
                    n.epoch = epoch;
                    n.vote = vote;
                }
                Action::StartLinks { epoch, peers } => {
                    let n = &mut self.nodes[node];
                    n.links = vec![None; peers.len()];
                    n.link_nodes = peers
                        .iter()
                        .map(|(id, _)| id[1..].parse().expect("n<i>"))
                        .collect();
                    n.link_epoch = epoch;
                }
                Action::StopLinks => {
                    self.nodes[node].links.clear();
                    let conns: Vec<u64> = self
                        .conns
                        .iter()
                        .filter(|(_, c)| c.master == node)
                        .map(|(id, _)| *id)
                        .collect();
                    for conn in conns {
                        self.close(conn);
                    }
                }
                Action::StartLink { peer, secondary } => {
                    let n = &mut self.nodes[node];
                    let to = secondary.0[1..].parse().expect("n<i>");
                    if peer < n.links.len() {
                        (n.links[peer], n.link_nodes[peer]) = (None, to);
                    } else {
                        n.links.push(None);
                        n.link_nodes.push(to);
                    }
                }
                Action::StopLink { peer } => {
                    let conn = self.nodes[node].links.get(peer).copied().flatten();
                    if let Some(conn) = conn {
                        self.close(conn);
                    }
                    // A link never dials again once its member is gone.
                    self.nodes[node].link_nodes[peer] = usize::MAX;
                }
                Action::Persist(entries) => self.persist(node, entries),
                Action::CutLog { after, save, .. } => {
                    self.stats.log_cuts += 1;
                    if save {
                        self.stats.rollbacks += 1;
                    }
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
                // The world dials on its own schedule (`dial`): its
                // links never report `LinkDown`, so this never comes.
                Action::Redial { .. } => {}
                Action::Diverged { conn, reason, .. } => {
                    panic!(
                        "seed {}: n{node} diverged on conn {conn}: {reason}",
                        self.seed
                    )
                }
                Action::ToMaster { conn, frame } => self.send(Deliver::ToMaster { conn, frame }),
                Action::RefuseMaster { conn, reason } => {
                    // With failover a node taking over drops the old
                    // master's connection; a static master is never
                    // refused, and a forger always is.
                    if self.forged.contains(&conn) {
                        self.stats.refusals += 1;
                        continue;
                    }
                    // Honest masters are never refused as strangers, nor
                    // for what they send.
                    assert!(
                        !reason.contains("forged") && !reason.contains("not a member"),
                        "seed {}: n{node} refused an honest master on conn {conn}: {reason}",
                        self.seed
                    );
                    assert!(
                        self.faults.failover,
                        "seed {}: n{node} refused its master on conn {conn}: {reason}",
                        self.seed
                    );
                    if std::env::var_os("REPLOG_CORE_DEBUG").is_some() {
                        eprintln!(
                            "{:?} n{node} refused master conn {conn}: {reason}",
                            self.now
                        );
                    }
                    self.close(conn);
                }
                Action::RefuseStale { conn, epoch, .. } => {
                    if let Some(c) = self.conns.get(&conn).copied() {
                        self.send(Deliver::Vote {
                            from: c.node,
                            to: c.master,
                            event: Event::NewerEpoch { epoch },
                        });
                        self.close(conn);
                    }
                }
                Action::RequestVotes {
                    epoch,
                    pre,
                    last,
                    peers,
                } => {
                    for (id, _) in peers {
                        let to: usize = id[1..].parse().expect("n<i>");
                        let conn = self.next_conn;
                        self.next_conn += 1;
                        self.vote_conns.insert(conn, (node, to));
                        let request = VoteRequest {
                            candidate: self.nodes[node].id.clone(),
                            epoch,
                            last,
                            pre,
                        };
                        self.send(Deliver::Vote {
                            from: node,
                            to,
                            event: Event::VoteRequested { conn, request },
                        });
                    }
                }
                Action::LeftCluster { .. } => self.stats.left += 1,
                Action::RefuseCandidate { conn, reason } => {
                    // Honest only if the candidate is no voter here (a
                    // node removed that does not know it yet).
                    let candidate = self.vote_conns.get(&conn).map(|(c, _)| format!("n{c}"));
                    let voter = |c: &String| {
                        let core = self.nodes[node].core.as_ref().expect("refusing");
                        core.members().is_voter(c)
                    };
                    assert!(
                        self.forged.contains(&conn) || !candidate.is_some_and(|c| voter(&c)),
                        "seed {}: n{node} refused a member's honest vote request: {reason}",
                        self.seed
                    );
                    self.stats.refusals += 1;
                }
                Action::Promoted => {
                    self.stats.promotions += 1;
                    self.nodes[node].learner = false;
                }
                Action::Disregard { reason } => {
                    // An answer from a node no longer a voter here, to an
                    // election begun before that, is disregarded too.
                    let changed = self.faults.changes > 0.0
                        && (reason.contains("not a member") || reason.contains("not a voter"));
                    assert!(
                        self.forging || changed,
                        "seed {}: n{node} disregarded an honest input: {reason}",
                        self.seed
                    );
                    self.stats.refusals += 1;
                }
                Action::AnswerVote { conn, frame } => {
                    let Some((candidate, voter)) = self.vote_conns.remove(&conn) else {
                        continue;
                    };
                    let (epoch, term, granted, pre, learner) = match frame {
                        Frame::VoteReply {
                            epoch,
                            term,
                            granted,
                            pre,
                        } => (epoch, term, granted, pre, false),
                        Frame::LearnerVote { epoch, term, pre } => {
                            self.stats.learner_votes += 1;
                            (epoch, term, true, pre, true)
                        }
                        frame => {
                            panic!("seed {}: n{node} answered a vote with {frame:?}", self.seed)
                        }
                    };
                    let answer = VoteAnswer {
                        voter: self.nodes[voter].id.clone(),
                        epoch,
                        term,
                        granted,
                        pre,
                        learner,
                    };
                    self.send(Deliver::Vote {
                        from: voter,
                        to: candidate,
                        event: Event::VoteAnswered(answer),
                    });
                }
                Action::Reply { req, result, .. } if req >= CHANGES => {
                    self.changed(req, result);
                }
                Action::Reply { req, result, .. } => self.answer(node, req, result),
                // The harness's clients do not ask for progress.
                Action::Progress { .. } => panic!("seed {}: progress nobody asked for", self.seed),
                // No retention here: no log is ever reset.
                Action::ResetLog { .. } => panic!("seed {}: a reset without retention", self.seed),
            }
        }
    }

    /// A write: the entries must continue the log exactly.
    fn persist(&mut self, node: usize, entries: Vec<Entry>) {
        for e in entries.iter().filter(|e| e.is_config()) {
            // A master's own (a secondary's came from one).
            if self.master_epoch == Some(e.epoch) {
                self.stats.config_entries += 1;
                let before = self.nodes[node].log.iter().rev().find(|b| b.is_config());
                let holds = |id: &str| {
                    let i: usize = id[1..].parse().expect("n<i>");
                    before.is_some_and(|b| stored(&self.nodes[i], b.seq, b))
                };
                if let Err(e) = invariants::one_change_at_a_time::check(e, before, holds) {
                    self.fail("one membership change at a time", e);
                }
            }
        }
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

    /// `result`, whose numbers are messages' numbers in the default log
    /// (what clients are told), with each turned into the message's
    /// sequence number in `node`'s log, which must hold it.
    fn positions(
        &self,
        node: usize,
        req: u64,
        result: Result<Seq, AppendError>,
    ) -> Result<Seq, AppendError> {
        let to = self.requests[&req].request.log;
        let seq_of = |number: Seq| {
            let log = &self.nodes[node].log;
            let found = (log.iter().rev())
                .find(|e| !e.is_control() && e.log == to && e.number == number)
                .map(|e| e.seq);
            found.unwrap_or_else(|| {
                panic!(
                    "seed {}: request {req} answered with message number {number}, which n{node}'s log does not hold",
                    self.seed
                )
            })
        };
        match result {
            Ok(n) => Ok(seq_of(n)),
            Err(AppendError::TimedOut { seq, stored_on }) => Err(AppendError::TimedOut {
                seq: seq_of(seq),
                stored_on,
            }),
            Err(AppendError::ShuttingDown { seq: Some(n) }) => Err(AppendError::ShuttingDown {
                seq: Some(seq_of(n)),
            }),
            other => other,
        }
    }

    fn answer(&mut self, node: usize, req: u64, result: Result<Seq, AppendError>) {
        let seed = self.seed;
        let request = self.requests.get_mut(&req).expect("a request we made");
        assert!(
            request.answer.is_none(),
            "seed {seed}: request {req} answered twice"
        );
        if let Err(AppendError::NotMaster { .. }) = result {
            // Not appended: the client tries the master (or again later).
            let again = request.request.clone();
            self.after(Duration::from_millis(5), Happening::Append(again, 0));
            return;
        }
        request.answer = Some(result.clone());
        let (w, message, key) = (request.w, request.message.clone(), request.key.clone());
        let concern = request.request.w;
        // Clients are told a message's number in its log; the checks below
        // look at where it is in the replicated log.
        let result = self.positions(node, req, result);
        if let Some(seq) = invariants::promised_outcomes_hold::Check::promise(&result) {
            // Promised: the entry is the request's, durable where no
            // failover cuts it (a majority; a static master's own log), and
            // stays.
            self.stats.promised += 1;
            let entry = self.nodes[node].log[(seq - 1) as usize].clone();
            assert_eq!(
                entry.message, message,
                "seed {seed}: request {req} promised as seq {seq}, which holds another message"
            );
            let durable_on = |n: &Node| stored(n, seq, &entry);
            let voters = self.voters_of(node);
            let holders = voters.iter().filter(|n| durable_on(n)).count() as u32;
            let settled = if self.faults.failover {
                holders >= quorum::majority(self.fewest_voters(node))
            } else {
                durable_on(&self.nodes[node])
            };
            assert!(
                settled,
                "seed {seed}: request {req} promised as seq {seq}, durable on {holders} node(s)"
            );
            let epoch = (self.master_epoch)
                .unwrap_or_else(|| self.nodes[node].core.as_ref().map_or(0, |c| c.epoch()));
            if let Err(e) = self.invariants.promised.promised(epoch, entry) {
                self.fail("what an answer promises holds", e);
            }
        }
        if let Err(AppendError::Uncommitted { .. }) = result {
            self.stats.uncommitted += 1;
        }
        let Ok(seq) = result else {
            self.stats.refused_or_timed_out += 1;
            return;
        };
        self.stats.acknowledged += 1;
        // Acknowledged ⇒ stored (synced) on w nodes, with this message.
        let entry = self.nodes[node].log[(seq - 1) as usize].clone();
        assert_eq!(
            entry.message, message,
            "seed {seed}: request {req} acknowledged as seq {seq}, which holds another message"
        );
        // Only voters count toward w: a learner member holding it does not.
        // What `majority` and `all` come to depends on the voters when the
        // master took the append: at least the fewer of the last two
        // configurations'.
        let voters = self.voters_of(node);
        let fewest = self.fewest_voters(node);
        let w = match concern {
            WriteConcern::Nodes(_) => w,
            WriteConcern::Majority => w.min(quorum::majority(fewest)),
            WriteConcern::All => w.min(fewest as u32),
        };
        let holders = voters.iter().filter(|n| stored(n, seq, &entry)).count() as u32;
        // REPLOG_CORE_DEBUG=1 shows the members and configurations behind
        // an acknowledgement short of w.
        if holders < w && std::env::var_os("REPLOG_CORE_DEBUG").is_some() {
            let core = self.nodes[node].core.as_ref().unwrap();
            eprintln!(
                "answering n{node} members {:?} health {:?}",
                core.members(),
                core.health(self.instant()).nodes
            );
            for e in self.nodes[node].log.iter().filter(|e| e.is_config()) {
                eprintln!(
                    "config {}: {:?}",
                    e.seq,
                    std::str::from_utf8(&e.message).unwrap()
                );
            }
            eprintln!("request {req}: w {w}");
        }
        assert!(
            holders >= w,
            "seed {seed}: seq {seq} acknowledged for w={w} but synced on {holders} voters"
        );
        let majority = w >= quorum::majority(voters.len());
        // Without failover the master's log is the truth: every
        // acknowledgement is final, whatever its w.
        let lasting = majority || !self.faults.failover;
        if lasting {
            let epoch = self.nodes[node].core.as_ref().map_or(0, |c| c.epoch());
            if let Err(e) = self.invariants.majority.acknowledged(epoch, entry.clone()) {
                self.fail("majority-acknowledged never lost", e);
            }
        }
        if !self.faults.failover {
            self.acked.insert(seq, (entry.epoch, message));
        }
        if let Some(key) = key {
            if let Err(e) = self.invariants.keys.acknowledged(&key, seq, lasting) {
                self.fail("a keyed append appears at most once", e);
            }
        }
    }

    /// The nodes that vote as master `node` answers: in its configuration
    /// now, or in the one before it (a change the step wrote after the
    /// answer was given).
    fn voters_of(&self, node: usize) -> Vec<&Node> {
        let seed = Membership::voters(&self.config(node).nodes);
        let mut configs: Vec<Membership> = (self.nodes[node].log.iter())
            .filter(|e| e.is_config())
            .map(|e| Membership::decode(&e.message).expect("written by a master"))
            .collect();
        configs.insert(0, seed);
        let recent = &configs[configs.len().saturating_sub(2)..];
        (self.nodes.iter())
            .filter(|n| recent.iter().any(|m| m.is_voter(&n.id)))
            .collect()
    }

    /// The fewer voters of master `node`'s last two configurations.
    fn fewest_voters(&self, node: usize) -> usize {
        let configs: Vec<usize> = (self.nodes[node].log.iter())
            .filter(|e| e.is_config())
            .map(|e| {
                Membership::decode(&e.message)
                    .expect("written")
                    .voter_count()
            })
            .collect();
        let seed = self.faults.nodes;
        match configs[..] {
            [] => seed,
            [one] => one.min(seed),
            [.., a, b] => a.min(b),
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

    /// The invariants over the whole cluster, after a millisecond of
    /// schedule (the costlier ones every ten).
    fn check_cluster(&mut self) {
        let views = views(&self.nodes);
        let mut failures = Vec::new();
        if let Err(e) = self.invariants.one_master.check(&views) {
            failures.push(("at most one master per epoch", e));
        }
        if let Err(e) = self.invariants.committed.check(&views) {
            failures.push(("the committed mark never goes back", e));
        }
        if let Err(e) = self.invariants.majority.check(&views) {
            failures.push(("majority-acknowledged never lost", e));
        }
        if let Err(e) = self.invariants.promised.check(&views) {
            failures.push(("what an answer promises holds", e));
        }
        if self.now.as_millis().is_multiple_of(10) {
            if let Err(e) = invariants::groups_follow_the_log::check(&views) {
                failures.push(("a core's groups' positions are its log's", e));
            }
            if let Err(e) = invariants::log_matching::check(&views) {
                failures.push(("logs equal on their common prefix", e));
            }
            if let Err(e) = invariants::keyed_append_at_most_once::Check::check(&views) {
                failures.push(("a keyed append appears at most once", e));
            }
            if let Err(e) = invariants::numbers_gapless::check(&views) {
                failures.push(("every log's messages are numbered without gaps", e));
            }
        }
        drop(views);
        if let Some((name, e)) = failures.into_iter().next() {
            self.fail(name, e);
        }
        for node in 0..self.faults.nodes {
            let master = self.nodes[node]
                .core
                .as_ref()
                .is_some_and(|c| c.is_master());
            // REPLOG_CORE_DEBUG=1 traces who is master when.
            if std::env::var_os("REPLOG_CORE_DEBUG").is_some() && self.was_master[node] != master {
                eprintln!(
                    "{:?} n{node} master={master} {:?} log {} committed {:?}",
                    self.now,
                    self.nodes[node].core.as_ref().map(|c| c.term()),
                    self.nodes[node].log.len(),
                    self.nodes[node].core.as_ref().map(|c| c.committed())
                );
            }
            match (self.was_master[node], master) {
                (false, true) => self.stats.elections += 1,
                (true, false) if self.up(node) => self.stats.step_downs += 1,
                _ => {}
            }
            self.was_master[node] = master;
        }
    }

    /// Closes a replication connection on both sides.
    fn close(&mut self, conn: u64) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if self.nodes[c.master].links.get(c.peer) == Some(&Some(conn)) {
            self.nodes[c.master].links[c.peer] = None;
        }
        if c.open {
            self.step_node(
                c.master,
                Event::Link(MasterEvent::PeerDisconnected { peer: c.peer, conn }),
            );
        }
        self.step_node(
            c.node,
            Event::FromMaster(SecondaryEvent::MasterDisconnected { conn }),
        );
    }

    /// Closes every replication connection with `node` at either end (or
    /// between `node` and `other`).
    fn close_all_of(&mut self, node: usize, other: Option<usize>) {
        let conns: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                let ends = [c.master, c.node];
                ends.contains(&node) && other.is_none_or(|o| ends.contains(&o))
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in conns {
            self.close(conn);
        }
    }

    /// Every master's links dial the nodes that are up and reachable.
    fn dial(&mut self) {
        for master in 0..self.faults.nodes {
            let links = self.nodes[master].links.clone();
            for (peer, conn) in links.iter().enumerate() {
                let node = self.nodes[master].link_nodes[peer];
                if node == usize::MAX
                    || conn.is_some()
                    || !self.up(node)
                    || self.blocked(master, node)
                    || !self.rng.gen_bool(0.2)
                {
                    continue;
                }
                let conn = self.next_conn;
                self.next_conn += 1;
                self.nodes[master].links[peer] = Some(conn);
                self.conns.insert(
                    conn,
                    Conn {
                        master,
                        peer,
                        node,
                        open: false,
                    },
                );
                let epoch = self.nodes[master].link_epoch;
                let id = self.nodes[master].id.clone();
                self.step_node(
                    node,
                    Event::MasterOpened {
                        conn,
                        master: id,
                        epoch,
                    },
                );
            }
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
                            version: replog::wire::NODE_PROTOCOL_VERSION,
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
                    Frame::HeartbeatReply { stored } => MasterEvent::HeartbeatReply {
                        peer,
                        conn,
                        stored,
                        learner: false,
                    },
                    Frame::LearnerHeartbeatReply { stored } => MasterEvent::HeartbeatReply {
                        peer,
                        conn,
                        stored,
                        learner: true,
                    },
                    other => panic!("seed {}: secondary sent {other:?}", self.seed),
                };
                self.step_node(c.master, Event::Link(event));
            }
            Deliver::Vote { from, to, event } => {
                // A vote's connection is cut with the link it crosses.
                if !self.blocked(from, to) {
                    self.step_node(to, event);
                }
            }
        }
    }

    /// A client append, issued now: sometimes a retry of an earlier key
    /// with its message, with a write concern from all kinds.
    fn issue_append(&mut self, req: u64) {
        let nodes = self.faults.nodes;
        let retry = req > 0 && self.rng.gen_bool(0.2);
        // A retry goes to the log its first try went to.
        let (key, message, log) = if retry {
            let earlier = self.rng.gen_range(0..req);
            let r = &self.requests[&earlier];
            (r.key.clone(), r.message.clone(), r.request.log)
        } else {
            let key = self.rng.gen_bool(0.7).then(|| format!("k{req}"));
            (key, Bytes::from(format!("m{req}")), log_of(req))
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
        let request = AppendRequest {
            log,
            client: 1,
            req,
            key: key.clone(),
            w,
            timeout,
            message: message.clone(),
            progress: false,
        };
        self.requests.insert(
            req,
            Request {
                request: request.clone(),
                key: key.clone(),
                message: message.clone(),
                w: quorum::nodes_for(w, nodes),
                sent_to: None,
                answer: None,
            },
        );
        let delay = Duration::from_millis(self.rng.gen_range(0..1500));
        self.after(delay, Happening::Append(request, 0));
    }

    /// An append reaches a master (one that believes it is: with failover,
    /// a deposed master that has not heard yet may take it). With none, the
    /// client tries again a little later, and gives up after a second.
    fn append(&mut self, request: AppendRequest, tries: u32) {
        let masters: Vec<usize> = (0..self.faults.nodes)
            .filter(|&i| self.nodes[i].core.as_ref().is_some_and(|c| c.is_master()))
            .collect();
        let up: Vec<usize> = (0..self.faults.nodes).filter(|&i| self.up(i)).collect();
        // With failover a client may reach any node: one that knows of no
        // master holds the append until one is known, then redirects it.
        let node = if self.faults.failover && !up.is_empty() && self.rng.gen_bool(0.3) {
            up[self.rng.gen_range(0..up.len())]
        } else if !masters.is_empty() {
            masters[self.rng.gen_range(0..masters.len())]
        } else {
            if tries < 100 {
                self.after(
                    Duration::from_millis(10),
                    Happening::Append(request, tries + 1),
                );
            } else {
                self.lost(request.req);
            }
            return;
        };
        self.requests.get_mut(&request.req).expect("ours").sent_to = Some(node);
        self.step_node(node, Event::Append(request));
    }

    /// One millisecond of the schedule: faults, dialing, due happenings,
    /// ticks, the masters' flush, the invariants.
    fn advance(&mut self, faulty: bool) {
        self.now += STEP;
        let n = self.faults.nodes;
        if faulty {
            for node in 0..n {
                let master = self.nodes[node]
                    .core
                    .as_ref()
                    .is_some_and(|c| c.is_master());
                let rate = if master {
                    self.faults.crash / 2.0
                } else {
                    self.faults.crash
                };
                if self.up(node) && self.rng.gen_bool(rate) {
                    self.crash(node);
                }
            }
            if self.rng.gen_bool(self.faults.cut) {
                let a = self.rng.gen_range(0..n);
                let b = self.rng.gen_range(0..n);
                if a != b {
                    self.stats.cuts += 1;
                    let until = self.now + Duration::from_millis(self.rng.gen_range(10..800));
                    self.cut_until[a][b] = until;
                    self.cut_until[b][a] = until;
                    // Half the cuts reset the connections; the others leave
                    // them open and silent (a stalled path), so that a
                    // connection can outlive an election.
                    if self.rng.gen_bool(0.5) {
                        self.close_all_of(a, Some(b));
                    } else {
                        self.stats.silent_cuts += 1;
                    }
                }
            }
            if self.rng.gen_bool(self.faults.forge) {
                self.forge();
            }
            if self.faults.changes > 0.0 && self.change_rng.gen_bool(self.faults.changes) {
                self.change_members(false);
            }
            if self.group_rng.gen_bool(0.01) {
                self.change_groups();
            }
            if self.rng.gen_bool(self.faults.partition) {
                // The master, mostly: cut off from everyone for a while.
                let master =
                    (0..n).find(|&i| self.nodes[i].core.as_ref().is_some_and(|c| c.is_master()));
                let node = match master {
                    Some(m) if self.rng.gen_bool(0.7) => m,
                    _ => self.rng.gen_range(0..n),
                };
                self.stats.partitions += 1;
                let until = self.now + Duration::from_millis(self.rng.gen_range(100..1000));
                for other in 0..n {
                    if other != node {
                        self.cut_until[node][other] = until;
                        self.cut_until[other][node] = until;
                    }
                }
                if self.rng.gen_bool(0.5) {
                    self.close_all_of(node, None);
                } else {
                    self.stats.silent_cuts += 1;
                }
            }
        }
        for node in 0..n {
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
                    if n.incarnation != incarnation || n.core.is_none() {
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
                        let role = |n: &Node| n.core.as_ref().map(|c| (c.is_master(), c.epoch()));
                        let before = role(&self.nodes[node]);
                        self.step_node(node, Event::Storage(StorageReport::SyncFailed { reason }));
                        let after = role(&self.nodes[node]);
                        if before.is_some_and(|(m, _)| m) && after != before {
                            self.stats.spent_epochs += 1;
                        }
                        self.start_sync(node);
                        continue;
                    }
                    let n = &mut self.nodes[node];
                    if cuts == n.cuts {
                        n.durable = n.durable.max((upto as usize).min(n.log.len()));
                    }
                    self.step_node(node, Event::Storage(StorageReport::Synced { gen, upto }));
                }
                Happening::Append(request, tries) => self.append(request, tries),
            }
        }
        for node in 0..n {
            let due = self.nodes[node]
                .core
                .as_ref()
                .and_then(|c| c.poll_timeout(self.instant()))
                .is_some_and(|t| t <= self.instant());
            if due || self.now.as_millis().is_multiple_of(10) {
                self.step_node(node, Event::Tick);
            }
        }
        for node in 0..n {
            self.flush_node(node);
        }
        self.check_cluster();
    }

    /// A stranger's forged input to a node that is up: a hello, a vote
    /// request, a vote or a newer epoch, from an id no member has or at an
    /// epoch no election reaches (a member at a plausible epoch cannot be
    /// told from the real one without a key, and is not forged here).
    fn forge(&mut self) {
        let up: Vec<usize> = (0..self.faults.nodes).filter(|&i| self.up(i)).collect();
        if up.is_empty() {
            return;
        }
        let node = up[self.rng.gen_range(0..up.len())];
        self.stats.forgeries += 1;
        let term = self.nodes[node].core.as_ref().map_or(0, |c| c.term().0);
        let absurd = [u64::MAX, EPOCH_LIMIT, EPOCH_LIMIT + 1][self.rng.gen_range(0..3)];
        let member = format!("n{}", self.rng.gen_range(0..self.faults.nodes));
        // A stranger may claim any epoch; a member's name only an absurd one.
        let (who, epoch) = if self.rng.gen_bool(0.5) {
            let epoch = [absurd, term + 1, term, 1][self.rng.gen_range(0..4)];
            ("n9".to_string(), epoch)
        } else {
            (member, absurd)
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        self.forged.insert(conn);
        self.forging = true;
        let event = match self.rng.gen_range(0..4) {
            0 => Event::MasterOpened {
                conn,
                master: who,
                epoch,
            },
            1 => Event::VoteRequested {
                conn,
                request: VoteRequest {
                    candidate: who,
                    epoch,
                    last: Position {
                        epoch: epoch.saturating_sub(1),
                        seq: u64::MAX,
                    },
                    pre: self.rng.gen_bool(0.5),
                },
            },
            // A vote the runtime would never hand over (it names the node
            // it asked), but the core must not count it either way.
            2 => Event::VoteAnswered(VoteAnswer {
                voter: "n9".into(),
                epoch: term + 1,
                term: [term, absurd][self.rng.gen_range(0..2)],
                granted: true,
                pre: self.rng.gen_bool(0.5),
                learner: self.rng.gen_bool(0.5),
            }),
            _ => Event::NewerEpoch { epoch: absurd },
        };
        self.step_node(node, event);
        self.forging = false;
    }

    /// A request whose connection to its node broke: the client knows
    /// nothing of it (it may or may not be in the log).
    fn lost(&mut self, req: u64) {
        let r = self.requests.get_mut(&req).expect("a request we made");
        if r.answer.is_none() {
            r.answer = Some(Err(AppendError::ShuttingDown { seq: None }));
            self.stats.refused_or_timed_out += 1;
        }
    }

    /// A node stops: what it had not synced is lost (its recorded epoch
    /// and vote stay), its connections break, and the clients waiting on
    /// it lose their answers.
    fn crash(&mut self, node: usize) {
        let wipe = self.faults.failover
            && self.faults.nodes >= 3
            && !self.nodes.iter().any(|n| n.learner)
            && self.rng.gen_bool(self.faults.wipe);
        let down = Duration::from_millis(self.rng.gen_range(1..600));
        self.crash_for(node, wipe, down);
    }

    /// [`World::crash`], losing the disk too if `wipe`, and back after
    /// `down`.
    fn crash_for(&mut self, node: usize, wipe: bool, down: Duration) {
        self.stats.crashes += 1;
        if self.nodes[node]
            .core
            .as_ref()
            .is_some_and(|c| c.is_master())
        {
            self.stats.master_crashes += 1;
        }
        // First the connections, which the node sees close (and may answer
        // for), then what is still unanswered is lost.
        self.close_all_of(node, None);
        let pending: HashSet<u64> = self
            .happenings
            .values()
            .filter_map(|h| match h {
                Happening::Append(r, _) => Some(r.req),
                _ => None,
            })
            .collect();
        let waiting: Vec<u64> = self
            .requests
            .iter()
            .filter(|(id, r)| {
                r.answer.is_none() && r.sent_to == Some(node) && !pending.contains(id)
            })
            .map(|(id, _)| *id)
            .collect();
        for req in waiting {
            self.lost(req);
        }
        self.vote_conns.retain(|_, (a, b)| *a != node && *b != node);
        // A lost disk is either replaced (nothing kept) or found damaged at
        // the next start, healed to a prefix of what was durable, its epoch
        // and vote kept.
        // Drawn from a generator of their own, so that the schedule's
        // stream, and what the seeds kept as regression tests replay, is
        // what it was before disks were damaged.
        let mut own = SmallRng::seed_from_u64(self.seed ^ (self.stats.crashes << 32));
        let damaged = wipe && own.gen_bool(0.5);
        let healed_to = own.gen_range(0..=self.nodes[node].durable);
        let n = &mut self.nodes[node];
        n.links.clear();
        n.core = None;
        n.log.truncate(n.durable);
        if damaged {
            self.stats.wipes += 1;
            self.stats.damaged += 1;
            n.lost.push(n.log.clone());
            n.log.truncate(healed_to);
            n.durable = healed_to;
            n.learner = true;
            n.cuts += 1;
        } else if wipe {
            // A new disk: nothing of the log, the epoch or the vote.
            self.stats.wipes += 1;
            n.lost.push(std::mem::take(&mut n.log));
            n.durable = 0;
            n.epoch = 0;
            n.vote = None;
            n.learner = true;
            n.cuts += 1;
        }
        n.restart_at = Some(self.now + down);
        // Happenings addressed to it (syncs, frames) are dropped when they
        // come.
    }

    /// The lost disk and the crash of issue 24, on cores, with timings from
    /// the seed: n2 down; appends with w=2 acknowledged by n0 (the master)
    /// and n1; n1 loses its disk (replaced, or damaged and healed to a
    /// prefix) and n0 crashes; n1 and n2 come back while n0 is down, then
    /// n0 comes back. Before learners, n1 voted at once and elected n2,
    /// which lacks every one of those appends.
    pub fn lost_disk_then_a_crash(seed: u64) -> World {
        let faults = Faults {
            nodes: 3,
            failover: true,
            appends: 0,
            max_delay_ms: 5,
            drop: 0.0,
            reorder: 0.0,
            cut: 0.0,
            partition: 0.0,
            crash: 0.0,
            sync_fail: 0.0,
            forge: 0.0,
            wipe: 0.0,
            changes: 0.0,
        };
        let mut w = World::with_faults(seed, faults);
        w.quiet_for(500);
        let hour = Duration::from_secs(3600);
        w.crash_for(2, false, hour);
        let first = w.requests.len() as u64;
        for req in first..first + 20 {
            w.append_with(req, 2);
        }
        let answered = |w: &World| w.requests.values().all(|r| r.answer.is_some());
        while !answered(&w) {
            w.advance(false);
        }
        let wait = Duration::from_millis(w.rng.gen_range(0..50));
        let master = (0..3).find(|&i| w.nodes[i].core.as_ref().is_some_and(|c| c.is_master()));
        let other = if master == Some(1) { 0 } else { 1 };
        w.crash_for(other, true, wait);
        w.crash_for(master.unwrap_or(0), false, hour);
        w.boot(2);
        let down = w.rng.gen_range(500..3000);
        w.quiet_for(down);
        for node in 0..3 {
            if !w.up(node) {
                w.boot(node);
            }
        }
        w.quiet_for(3000);
        w.check_quiet();
        w
    }

    /// Advances `ms` milliseconds without faults.
    fn quiet_for(&mut self, ms: u64) {
        for _ in 0..ms {
            self.advance(false);
        }
    }

    /// An append of a new message with write concern `w`, no timeout, sent
    /// to the master now.
    fn append_with(&mut self, req: u64, w: u32) {
        let message = Bytes::from(format!("m{req}"));
        let key = Some(format!("k{req}"));
        let request = AppendRequest {
            log: log_of(req),
            client: 1,
            req,
            key: key.clone(),
            w: WriteConcern::Nodes(w),
            timeout: None,
            message: message.clone(),
            progress: false,
        };
        let r = Request {
            request: request.clone(),
            key,
            message,
            w,
            sent_to: None,
            answer: None,
        };
        self.requests.insert(req, r);
        self.append(request, 0);
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
        for row in &mut self.cut_until {
            row.fill(Duration::ZERO);
        }
        self.faults.drop = 0.0;
        self.faults.reorder = 0.0;
        for node in 0..self.faults.nodes {
            if !self.up(node) {
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
        for step in 0..3000 {
            // Every node removed is added back, one at a time, so that the
            // cluster ends with every node a member holding the log.
            if self.faults.changes > 0.0 && step % 100 == 0 && step < 2000 {
                self.change_members(true);
            }
            self.advance(false);
        }
        self.check_quiet();
    }

    /// Asks the master (if a node is master) for a membership change: a
    /// node no longer a member added back, or (unless only `add_back`) a
    /// member removed, the master itself now and then, while at least
    /// three voters would remain.
    fn change_members(&mut self, add_back: bool) {
        let n = self.faults.nodes;
        let Some(master) =
            (0..n).find(|&i| self.nodes[i].core.as_ref().is_some_and(|c| c.is_master()))
        else {
            return;
        };
        let members = self.nodes[master]
            .core
            .as_ref()
            .expect("up")
            .members()
            .clone();
        let outside: Vec<usize> = (0..n)
            .filter(|i| members.get(&format!("n{i}")).is_none())
            .collect();
        let change = if let Some(&i) = outside
            .first()
            .filter(|_| add_back || self.change_rng.gen_bool(0.5))
        {
            MemberChange::Add {
                id: format!("n{i}"),
                addr: format!("n{i}:1"),
            }
        } else if !add_back && members.voter_count() > 3 {
            let ids: Vec<String> = members.members().iter().map(|m| m.id.clone()).collect();
            let id = if self.change_rng.gen_bool(0.25) {
                format!("n{master}")
            } else {
                ids[self.change_rng.gen_range(0..ids.len())].clone()
            };
            MemberChange::Remove { id }
        } else {
            return;
        };
        let req = self.next_change;
        self.next_change += 1;
        self.stats.changes_asked += 1;
        self.step_node(
            master,
            Event::ChangeMembers {
                client: 0,
                req,
                change,
            },
        );
    }

    /// Asks the master (if a node is master) to set a consumer group's
    /// position in one of the two logs, at most its last number there (a
    /// request past it is refused), or now and then to delete a group.
    fn change_groups(&mut self) {
        let n = self.faults.nodes;
        let Some(master) =
            (0..n).find(|&i| self.nodes[i].core.as_ref().is_some_and(|c| c.is_master()))
        else {
            return;
        };
        let group = format!("g{}", self.group_rng.gen_range(0..3));
        let request = if self.group_rng.gen_bool(0.1) {
            GroupRequest::Delete(group)
        } else {
            let log = self.group_rng.gen_range(0..2u32);
            let last = (numbers_of(&self.nodes[master].log).into_iter())
                .find(|(l, _)| *l == log)
                .map_or(0, |(_, n)| n);
            GroupRequest::Set {
                group,
                log: ["default", "orders"][log as usize].to_string(),
                number: self.group_rng.gen_range(0..=last + 1),
                expect: None,
            }
        };
        let req = self.next_change;
        self.next_change += 1;
        self.stats.groups_asked += 1;
        self.group_reqs.insert(req);
        self.step_node(
            master,
            Event::ChangeGroups {
                client: 0,
                req,
                request,
            },
        );
    }

    /// The answer to a membership change: made (its entry committed), or
    /// refused for a reason a client is told.
    fn changed(&mut self, req: u64, result: Result<Seq, AppendError>) {
        match result {
            Ok(_) if self.group_reqs.contains(&req) => self.stats.groups_made += 1,
            Ok(_) => self.stats.changes_made += 1,
            Err(
                AppendError::BadRequest(_)
                | AppendError::NotMaster { .. }
                | AppendError::ShuttingDown { .. }
                | AppendError::Uncommitted { .. }
                | AppendError::NoSuchGroup { .. }
                | AppendError::Storage(_),
            ) => {}
            Err(other) => panic!("seed {}: change {req} answered {other:?}", self.seed),
        }
    }

    /// After the quiet period: one master, every append answered, every
    /// lasting acknowledgement where it was given, and every node holding
    /// exactly the master's log.
    fn check_quiet(&self) {
        let seed = self.seed;
        for (req, r) in &self.requests {
            // REPLOG_CORE_DEBUG=1 shows the request and every node.
            if r.answer.is_none() && std::env::var_os("REPLOG_CORE_DEBUG").is_some() {
                eprintln!(
                    "request {req}: {:?} sent_to {:?} w {}",
                    r.request, r.sent_to, r.w
                );
                for n in &self.nodes {
                    let Some(c) = n.core.as_ref() else { continue };
                    eprintln!(
                        "{}: master {} epoch {} term {:?} log {:?} durable {} stored {}",
                        n.id,
                        c.is_master(),
                        c.epoch(),
                        c.term(),
                        n.log
                            .iter()
                            .map(|e| (e.epoch, e.seq, e.key.clone()))
                            .collect::<Vec<_>>(),
                        n.durable,
                        c.stored()
                    );
                }
            }
            assert!(
                r.answer.is_some(),
                "seed {seed}: request {req} never answered"
            );
        }
        let masters: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|n| n.core.as_ref().is_some_and(|c| c.is_master()))
            .collect();
        let [master] = masters[..] else {
            if std::env::var_os("REPLOG_CORE_DEBUG").is_some() {
                for n in &self.nodes {
                    let c = n.core.as_ref().unwrap();
                    eprintln!(
                        "{}: term {:?} learner {} voter {} members {:?} last {:?} durable {}",
                        n.id,
                        c.term(),
                        c.is_learner(),
                        c.is_voter(),
                        String::from_utf8_lossy(&c.members().entry(0, 0).message),
                        n.log.last().map(|e| (e.epoch, e.seq)),
                        n.durable
                    );
                }
            }
            panic!(
                "seed {seed}: {} masters after the quiet period",
                masters.len()
            );
        };
        for (seq, (epoch, message)) in &self.acked {
            let e = &master.log[(*seq - 1) as usize];
            assert_eq!(
                (&e.epoch, &e.message),
                (epoch, message),
                "seed {seed}: acknowledged seq {seq} changed"
            );
        }
        // Every node removed was added back, and promoted once it caught up.
        let members = master.core.as_ref().expect("master").members();
        for n in &self.nodes {
            assert!(
                members.is_voter(&n.id),
                "seed {seed}: {} is no voter after the quiet period: {:?}; it: {:?} {:?} log {:?}; master log {:?}",
                n.id,
                String::from_utf8_lossy(&members.entry(0, 0).message),
                n.core.as_ref().map(|c| (c.is_master(), c.term(), c.stored())),
                n.core.as_ref().map(|c| String::from_utf8_lossy(&c.members().entry(0, 0).message).into_owned()),
                n.log.iter().map(|e| (e.epoch, e.seq, e.key.clone())).collect::<Vec<_>>(),
                master.core.as_ref().map(|c| (c.committed(), c.health(self.instant()).nodes)),
            );
        }
        if let Err(e) = self.invariants.majority.check_final(&self.views()) {
            self.fail("majority-acknowledged never lost", e);
        }
        if let Err(e) = self.invariants.promised.check_final(&self.views()) {
            self.fail("what an answer promises holds", e);
        }
        if let Err(e) = invariants::keyed_append_at_most_once::Check::check(&self.views()) {
            self.fail("a keyed append appears at most once", e);
        }
        for n in &self.nodes {
            assert_eq!(
                n.log, master.log,
                "seed {seed}: {} did not converge to {}'s log",
                n.id, master.id
            );
        }
    }
}

/// Each log's last message number in `log`, as a node's storage reports it.
/// The consumer groups' positions `log` leaves, as the node's storage
/// reads them.
pub fn groups_of(log: &[Entry]) -> Positions {
    let mut positions = Positions::default();
    for e in log.iter().filter(|e| e.is_control()) {
        if let Some(effect) = effect(e.key.as_deref(), &e.message) {
            positions.take(&effect);
        }
    }
    positions
}

fn numbers_of(log: &[Entry]) -> Vec<(u32, Seq)> {
    let mut last = std::collections::BTreeMap::new();
    for e in log.iter().filter(|e| !e.is_control()) {
        last.insert(e.log, e.number);
    }
    last.into_iter().collect()
}

/// The log request `req` appends to: every third goes to the second log,
/// the rest to the default one (by its number, so that no schedule draws
/// differently for it).
fn log_of(req: u64) -> replog::entry::LogId {
    u32::from(req.is_multiple_of(3))
}
