//! One node's core in whichever role it has: the one place where a node's
//! role is decided and changed, where an input meant for the other role is
//! answered (an append on a secondary) or dropped (a stale link's report),
//! where a master's connection is accepted or refused, and where health,
//! quorum and read-only are reported from.
//!
//! The runtime feeds every input to [`Core::step`] and carries out the
//! [`Action`]s that come back, in order; it never asks which role the node
//! has. A change of role is one transition ([`Core::become_master`],
//! [`Core::become_secondary`]): the old role's core is taken apart into the
//! state of its log and the new one is built over it, and the actions say
//! what the runtime must start or stop (links, the epoch on disk).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::master::{Master, MasterAction, MasterConfig, MasterEvent};
use super::membership::Membership;
use super::secondary::{Secondary, SecondaryAction, SecondaryConfig, SecondaryEvent};
use super::storage::{Durability, StorageReport};
use super::{quorum, AppendRequest, ClientId, ConnId, LogState, Timing};
use crate::entry::{Entry, Epoch, Position, Seq, EPOCH_LIMIT};
use crate::wire::{AppendError, Frame, HealthReport, NodeHealth, NodeRole, Welcome};

/// Most appends held on a node while no master is known; more are
/// answered at once ("no master known").
const MAX_UNLED: usize = 4096;

/// Fixed facts a node's core is built with, whatever its role.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// This node's id.
    pub id: String,
    /// Most logs besides `default` (`--max-logs`).
    pub max_logs: usize,
    /// Most consumer group positions, a group counting once per log it
    /// has read (`--max-groups`).
    pub max_groups: usize,
    /// Every node's id and address, in cluster order (this one included).
    pub nodes: Vec<(String, String)>,
    /// The id of the master the cluster was configured with (`--master`).
    pub master: String,
    /// Deadlines and backoff.
    pub timing: Timing,
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most entries sent to one secondary and not yet acknowledged.
    pub window: u64,
    /// Most entries in one `SendEntries` action.
    pub batch: u64,
    /// Seed of the jitter and of the testing aids' draws.
    pub seed: u64,
    /// When an entry counts as stored (`--fsync`), in either role.
    pub durability: Durability,
    /// `--replicate-delay` (a testing aid, on a secondary).
    pub replicate_delay: Duration,
    /// `--fail-rate` (a testing aid, on a secondary).
    pub fail_rate: f64,
    /// Whether nodes prove a cluster key (shown in health).
    pub authenticated: bool,
    /// Whether connections are TLS (shown in health).
    pub encrypted: bool,
    /// Whether a new master is elected when the master is lost
    /// (`--failover on`); otherwise `master` is master for good.
    pub failover: bool,
}

impl CoreConfig {
    /// The address of node `id` in the cluster list.
    fn addr(&self, id: &str) -> &str {
        self.nodes
            .iter()
            .find(|(n, _)| n == id)
            .map_or("", |(_, a)| a.as_str())
    }
}

/// Something that happened, fed to [`Core::step`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A client wants a message appended.
    Append(AppendRequest),
    /// A client asks for a membership change (answered as an append is:
    /// with the configuration entry's sequence number once it is on a
    /// majority of the new voters).
    ChangeMembers {
        /// Client connection.
        client: ClientId,
        /// Request id.
        req: u64,
        /// The change.
        change: super::MemberChange,
    },
    /// A client asks for a log to be created or deleted (answered as a
    /// membership change is).
    ChangeLogs {
        /// Client connection.
        client: ClientId,
        /// Request id.
        req: u64,
        /// The change.
        change: catalog::LogChange,
    },
    /// The runtime's arithmetic over the segments found that these logs'
    /// own retention lets their messages go up to these numbers: the
    /// master writes what it still may as trim entries (see
    /// [`Core::trim_logs`]); any other node does nothing.
    TrimLogs(Vec<(crate::entry::LogId, crate::entry::Seq)>),
    /// A client asks for a consumer group's position to be set, or a group
    /// deleted (answered as a membership change is).
    ChangeGroups {
        /// Client connection.
        client: ClientId,
        /// Request id.
        req: u64,
        /// The request.
        request: groups::GroupRequest,
    },
    /// A link to a secondary reported something (meant for a master).
    Link(MasterEvent),
    /// A master opened a replication connection to this node (and proved
    /// the cluster key, if there is one): accepted or refused here.
    MasterOpened {
        /// Connection id.
        conn: ConnId,
        /// The id the master gave.
        master: String,
        /// The epoch it speaks for.
        epoch: Epoch,
    },
    /// The master sent something (meant for a secondary).
    FromMaster(SecondaryEvent),
    /// A fact about the local log, passed to whichever role this node
    /// has. A report about a write from before a cut (another log
    /// generation) is ignored.
    Storage(StorageReport),
    /// Time passed.
    Tick,
    /// Retention deleted the start of the local log: it now begins after
    /// `base`.
    Compacted {
        /// The entry before the first one held.
        base: Position,
        /// Each log's last message number at `base`.
        numbers: Vec<(crate::entry::LogId, Seq)>,
        /// The consumer groups' positions at `base` (`groups::Positions`'
        /// text).
        groups: Bytes,
    },
    /// A candidate asks for this node's vote (or pre-vote); answered with
    /// `AnswerVote` on `conn`.
    VoteRequested {
        /// The candidate's connection.
        conn: ConnId,
        /// What it asks.
        request: VoteRequest,
    },
    /// A node answered this node's vote request.
    VoteAnswered(VoteAnswer),
    /// Recording the epoch and vote of a `RecordVote` failed (a full
    /// disk): the runtime carried out none of the answers and vote requests
    /// that followed it in that batch.
    VoteUnrecorded {
        /// The epoch of the `RecordVote`.
        epoch: Epoch,
        /// The error.
        reason: String,
    },
    /// A node refused this one's hello because it knows a newer epoch.
    NewerEpoch {
        /// That epoch.
        epoch: Epoch,
    },
}

/// A candidate's request for a vote, as a voter receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteRequest {
    /// The candidate's id (authenticated like any node's).
    pub candidate: String,
    /// The epoch it would be master of.
    pub epoch: Epoch,
    /// Its last entry.
    pub last: Position,
    /// A pre-vote.
    pub pre: bool,
}

/// A voter's answer, as the candidate receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteAnswer {
    /// Who answered.
    pub voter: String,
    /// The epoch asked about.
    pub epoch: Epoch,
    /// The voter's current epoch.
    pub term: Epoch,
    /// Yes or no.
    pub granted: bool,
    /// A pre-vote.
    pub pre: bool,
    /// The yes of a learner, which counts only toward an election every
    /// node grants (see `learner`).
    pub learner: bool,
}

/// Something the runtime must do, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Record `epoch` as the log's newest before anything of it is written.
    RecordEpoch(Epoch),
    /// Record the node's epoch and its vote in it durably, before anything
    /// that follows (an answer to a candidate, a request for votes). What
    /// follows relies on it: if it cannot be recorded, carry out none of
    /// the `AnswerVote` and `RequestVotes` after it in this batch, and
    /// report `VoteUnrecorded`.
    RecordVote {
        /// The epoch.
        epoch: Epoch,
        /// Whom this node voted for in it.
        vote: Option<String>,
    },
    /// Ask each of `peers` (id, address) for its vote or pre-vote in
    /// `epoch`, and report each answer as `VoteAnswered`.
    RequestVotes {
        /// The epoch this node would be master of.
        epoch: Epoch,
        /// A pre-vote.
        pre: bool,
        /// This node's last entry.
        last: Position,
        /// Whom to ask.
        peers: Vec<(String, String)>,
    },
    /// Refuse a candidate on its connection (a stranger, an absurd
    /// epoch): send the reason, say it in the log, and close it.
    RefuseCandidate {
        /// The candidate's connection.
        conn: ConnId,
        /// Why, for the candidate and the log.
        reason: String,
    },
    /// An input was disregarded (a vote answer or a newer epoch no election
    /// could have reached): say so in the log, at most once in a while.
    Disregard {
        /// What was disregarded, and why.
        reason: String,
    },
    /// This learner holds everything committed: record durably that it
    /// votes again, before anything that follows.
    Promoted,
    /// Answer a candidate on its connection (then close it).
    AnswerVote {
        /// The candidate's connection.
        conn: ConnId,
        /// The `VoteReply`.
        frame: Frame,
    },
    /// This node is master now: dial these secondaries (index = peer), one
    /// link each, saying hello for `epoch`.
    StartLinks {
        /// The epoch the links speak for.
        epoch: Epoch,
        /// Each secondary's id and address.
        peers: Vec<(String, String)>,
    },
    /// This node is no longer master: close every link.
    StopLinks,
    /// This node was removed from the cluster (a configuration entry
    /// without it is committed): say so in the log.
    LeftCluster {
        /// The sentence.
        reason: String,
    },
    /// A member was added: dial it too (as peer `peer`, the next index),
    /// in the epoch of the links started last.
    StartLink {
        /// Its index among the secondaries.
        peer: usize,
        /// Its id and address.
        secondary: (String, String),
    },
    /// A member was removed: close its link (its index stays taken).
    StopLink {
        /// Which secondary.
        peer: usize,
    },
    /// Append these consecutive entries to the local log, then report
    /// them `Written`, and `Synced` once a sync covers them (tagged with
    /// [`Core::generation`]).
    Persist(Vec<Entry>),
    /// Empty the local log, which continues after `base` with these epochs
    /// begun up to it (the master's retention deleted what it lacked); say
    /// so loudly. If that fails, report `StorageReport::Failed`.
    ResetLog {
        /// The entry before the next one.
        base: Position,
        /// The epochs begun up to `base`.
        epochs: Vec<(Epoch, Seq)>,
        /// The configuration entries at or before `base` the master says
        /// are the log's (the newest, or none): they replace the node's
        /// own, which may be older or cut. `None` from a master too old to
        /// say: the node's own at or before `base` stay.
        configs: Option<Vec<(Seq, Bytes)>>,
        /// Each log's last message number at `base`.
        numbers: Vec<(crate::entry::LogId, Seq)>,
        /// The named logs at `base` (`catalog::Logs`' text, checked).
        logs: Bytes,
        /// The consumer groups' positions at `base` (`groups::Positions`'
        /// text, checked).
        groups: Bytes,
    },
    /// Cut the local log after `after` (and forget whatever was waiting to
    /// be written beyond it). If cutting fails, report `StorageReport::Failed`.
    CutLog {
        /// Last sequence number kept.
        after: Seq,
        /// Why, for the log line.
        why: &'static str,
        /// Whether what is cut was written durably and must be kept in a
        /// rollback file (a divergent suffix), rather than writes that
        /// never became durable.
        save: bool,
    },
    /// Send entries `from..=to`, read from the local log, to a secondary.
    SendEntries {
        /// Which secondary.
        peer: usize,
        /// On which connection.
        conn: ConnId,
        /// First sequence number.
        from: Seq,
        /// Last sequence number.
        to: Seq,
    },
    /// Send a frame to a secondary.
    ToPeer {
        /// Which secondary.
        peer: usize,
        /// On which connection.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// Drop this replication connection and dial again: it went silent.
    Reconnect {
        /// Which secondary.
        peer: usize,
        /// The silent connection.
        conn: ConnId,
    },
    /// Dial this secondary again after `after`: its link is down and
    /// waits for this.
    Redial {
        /// Which secondary.
        peer: usize,
        /// The link that reported down: only it takes this.
        link: u64,
        /// How long to wait first.
        after: Duration,
    },
    /// The secondary's log cannot be reconciled with this master's without
    /// destroying data: log the reason loudly and drop the connection.
    Diverged {
        /// Which secondary.
        peer: usize,
        /// The connection.
        conn: ConnId,
        /// What was found and what to do.
        reason: String,
    },
    /// Send a frame to the master on this connection.
    ToMaster {
        /// Connection id.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// Refuse this master connection: send the reason and close it.
    RefuseMaster {
        /// Connection id.
        conn: ConnId,
        /// Why, for the master and the log.
        reason: String,
    },
    /// Refuse this master connection as stale: tell it the newer epoch
    /// (`NewerEpoch`) and close it.
    RefuseStale {
        /// Connection id.
        conn: ConnId,
        /// This node's epoch.
        epoch: Epoch,
        /// Why, for the master and the log.
        reason: String,
    },
    /// Answer a client's append.
    Reply {
        /// Client connection.
        client: ClientId,
        /// Request id.
        req: u64,
        /// The sequence number, or why not.
        result: Result<Seq, AppendError>,
    },
    /// Tell a client where its waiting append stands (best effort).
    Progress {
        /// Client connection.
        client: ClientId,
        /// Request id.
        req: u64,
        /// Its sequence number.
        seq: Seq,
        /// Nodes that must still store it.
        needed: u32,
        /// Ids of the nodes that do not hold it yet.
        missing: Vec<String>,
    },
}

/// What a node is, as clients are told in their welcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleView {
    /// Master or secondary.
    pub role: NodeRole,
    /// Where appends go.
    pub master_addr: String,
}

/// The core in its current role.
#[derive(Debug)]
enum Role {
    /// Boxed: the master's core is much larger than the secondary's.
    Master(Box<Master>),
    /// Boxed, like the master's.
    Secondary(Box<Secondary>),
    /// Only between the two halves of a transition.
    Changing,
}

/// One node's core.
#[derive(Debug)]
pub struct Core {
    cfg: CoreConfig,
    role: Role,
    /// Bumped by every cut of the log this core asks for.
    generation: u64,
    /// Epochs, votes and the known master (used with failover).
    ballot: election::Ballot,
    /// Appends that came while no master was known, with when to give up
    /// on them, in arrival order (at most `MAX_UNLED`).
    unled: std::collections::VecDeque<(Instant, AppendRequest)>,
    /// A new incarnation that does not yet hold everything committed (see
    /// `learner`).
    learner: bool,
    /// The committed mark this learner waits to store, and the epoch of
    /// the master that said it (see `learner`).
    learner_mark: Option<(Seq, Epoch)>,
    /// The other nodes whose epochs this learner has heard since it
    /// started: it takes a master only once enough of them answered.
    heard_from: std::collections::BTreeSet<String>,
    /// The epoch of the master this node (as a secondary) last welcomed:
    /// entries of a newer epoch cannot come from it.
    master_epoch: Epoch,
    /// Scratch buffers for the role cores' actions, reused.
    master_out: Vec<MasterAction>,
    secondary_out: Vec<SecondaryAction>,
    /// The members this node acts on (see `config`).
    members: Membership,
    /// The configuration entries its log holds, in order.
    configs: Vec<(Seq, Membership)>,
    /// The named logs its log records (see `catalog`).
    catalog: crate::replication::catalog::Catalog,
    /// The consumer groups' positions its log leaves (see `groups`).
    groups: crate::replication::groups::GroupState,
}

impl Core {
    /// The core of a node whose log is in `log`, at start. The configured
    /// master starts in a new epoch (the actions returned record it first);
    /// every other node starts as a secondary.
    ///
    /// With failover, every node starts as a secondary; the configured
    /// master of a new cluster (no epoch recorded yet) asks for votes at
    /// once, the others only after an election timeout.
    pub fn new(cfg: CoreConfig, log: LogState, now: Instant) -> (Core, Vec<Action>) {
        use rand::SeedableRng;
        let term = log.epoch.max(log.last.epoch);
        let mut log = log;
        let configs = std::mem::take(&mut log.configs);
        let catalog = std::mem::take(&mut log.catalog);
        let groups = std::mem::take(&mut log.groups);
        let members = match configs.last() {
            Some((_, m)) => m.clone(),
            None => Membership::voters(&cfg.nodes),
        };
        if members.voter_count() == 1 && members.is_voter(&cfg.id) {
            // Alone, whatever is stored is on a majority.
            log.committed = log.last.seq;
        }
        let ballot = election::Ballot {
            term,
            vote: log.vote.clone(),
            leader: None,
            heard: now,
            election_at: now,
            running: None,
            master_since: now,
            rng: rand::rngs::SmallRng::seed_from_u64(cfg.seed ^ 0x5eed_e1ec),
        };
        let mut core = Core {
            cfg,
            role: Role::Changing,
            generation: 0,
            ballot,
            master_epoch: 0,
            learner: log.learner,
            learner_mark: None,
            heard_from: std::collections::BTreeSet::new(),
            unled: std::collections::VecDeque::new(),
            master_out: Vec::new(),
            secondary_out: Vec::new(),
            members,
            configs,
            catalog,
            groups,
        };
        let mut out = Vec::new();
        let stored = log.last.seq;
        if core.cfg.failover {
            // A learner asks the others for their epochs at once (see
            // `learner`); the others wait for their master.
            if !core.learner && (core.cfg.id != core.cfg.master || term > 0) {
                core.ballot.heard(now, core.cfg.timing.election_timeout);
            }
            core.role = Role::Secondary(Box::new(Secondary::new(core.secondary_config(), log)));
        } else if core.cfg.id == core.cfg.master {
            core.start_master(now, log, stored, &mut out);
        } else {
            core.role = Role::Secondary(Box::new(Secondary::new(core.secondary_config(), log)));
        }
        (core, out)
    }

    fn secondary_config(&self) -> SecondaryConfig {
        SecondaryConfig {
            replicate_delay: self.cfg.replicate_delay,
            fail_rate: self.cfg.fail_rate,
            seed: self.cfg.seed,
            durability: self.cfg.durability,
        }
    }

    /// Builds the master's core over `log` in a new epoch, newer than any
    /// the log has seen.
    fn start_master(
        &mut self,
        now: Instant,
        mut log: LogState,
        stored: Seq,
        out: &mut Vec<Action>,
    ) {
        // Elected: the epoch won (recorded with the vote). Static: one newer
        // than any the log has seen, recorded now.
        let epoch = if self.cfg.failover {
            self.ballot.term
        } else {
            match crate::entry::next_epoch(log.epoch.max(log.last.epoch)) {
                Some(epoch) => epoch,
                // Only a log at the last epoch there is (a member's name
                // forged at it): never reuse an epoch; stay a secondary.
                None => {
                    let reason =
                        format!("no new epoch below {EPOCH_LIMIT}: this node cannot be master");
                    Self::disregard(reason, out);
                    let secondary = Secondary::new(self.secondary_config(), log);
                    self.role = Role::Secondary(Box::new(secondary));
                    return;
                }
            }
        };
        log.epoch = epoch;
        let peers = self.others();
        let cfg = MasterConfig {
            me: (self.cfg.id.clone(), self.addr_of(&self.cfg.id).to_string()),
            secondaries: peers.clone(),
            members: self.members.clone(),
            config_seq: self.config_seq(),
            configs: self.configs.clone(),
            timing: self.cfg.timing,
            max_message_bytes: self.cfg.max_message_bytes,
            window: self.cfg.window,
            batch: self.cfg.batch,
            seed: self.cfg.seed,
            durability: self.cfg.durability,
            failover: self.cfg.failover,
        };
        if !self.cfg.failover {
            out.push(Action::RecordEpoch(epoch));
        }
        out.push(Action::StartLinks { epoch, peers });
        let mut master = Master::resume(cfg, log, stored, now);
        master.set_logs_at_base(self.catalog.at_base().encode());
        master.set_groups_at_base(self.groups.at_base().clone());
        if self.cfg.failover {
            let mut actions = Vec::new();
            master.begin_epoch(&mut actions);
            Self::master_actions(&mut self.generation, &mut actions, out);
        }
        self.role = Role::Master(Box::new(master));
    }

    /// The log's generation: bumped by every cut this core asks for. The
    /// runtime tags each write with it and hands it back in its storage
    /// reports.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether this node is master now.
    pub fn is_master(&self) -> bool {
        matches!(self.role, Role::Master(_))
    }

    /// What clients are told this node is.
    pub fn view(&self) -> RoleView {
        let role = if self.is_master() {
            NodeRole::Master
        } else {
            NodeRole::Secondary
        };
        RoleView {
            role,
            master_addr: self.master_addr().to_string(),
        }
    }

    /// Where appends go: the configured master, or with failover the
    /// master of the current epoch ("" while none is known).
    fn master_addr(&self) -> &str {
        if !self.cfg.failover {
            return self.addr_of(&self.cfg.master);
        }
        self.ballot
            .leader
            .as_deref()
            .map_or("", |id| self.addr_of(id))
    }

    /// The epoch: the master's own; on a secondary the newest it knows
    /// (with failover) or that of the newest entry it holds.
    pub fn epoch(&self) -> Epoch {
        match &self.role {
            Role::Master(m) => m.epoch(),
            Role::Secondary(_) if self.cfg.failover => self.ballot.term,
            Role::Secondary(s) => s.last().epoch,
            Role::Changing => 0,
        }
    }

    /// Last sequence number known to be on a majority and held here: what
    /// `list --committed` may show.
    pub fn committed(&self) -> Seq {
        match &self.role {
            Role::Master(m) => m.committed().min(m.stored()),
            Role::Secondary(s) => s.committed(),
            Role::Changing => 0,
        }
    }

    /// What retention must keep (`storage::retention::plan`): entries from
    /// the first on are wanted by a secondary this node, as master, hears
    /// from (`Seq::MAX`: none); entries after the second are not known to
    /// be on a majority, and a failover could still need them.
    pub fn retention_marks(&self, now: Instant) -> (Seq, Seq) {
        match &self.role {
            Role::Master(m) => (m.wanted_from(now), self.committed()),
            _ => (Seq::MAX, self.committed()),
        }
    }

    /// Last sequence number stored locally: what readers may see.
    pub fn stored(&self) -> Seq {
        match &self.role {
            Role::Master(m) => m.stored(),
            Role::Secondary(s) => s.stored(),
            Role::Changing => 0,
        }
    }

    /// The next instant at which a `Tick` has something to do, if any.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let role = match &self.role {
            Role::Master(m) => m.poll_timeout(now),
            Role::Secondary(s) => s.poll_timeout(),
            Role::Changing => None,
        };
        if !self.cfg.failover {
            return role;
        }
        let mut election = match &self.role {
            // CheckQuorum looks again every heartbeat interval.
            Role::Master(_) => now + self.cfg.timing.heartbeat_interval,
            _ => self.ballot.election_at,
        };
        if let Some((deadline, _)) = self.unled.front() {
            election = election.min(*deadline);
        }
        Some(role.map_or(election, |t| t.min(election)))
    }

    /// Feeds one event; the actions it causes are pushed to `out`.
    pub fn step(&mut self, now: Instant, event: Event, out: &mut Vec<Action>) {
        let start = out.len();
        self.step_event(now, event, out);
        if !self.unled.is_empty() {
            self.release_unled(now, out);
        }
        if let Some(left) = self.track_configs(&out[start..]) {
            out.push(left);
        }
        self.track_catalog(&out[start..]);
        self.track_groups(&out[start..]);
    }

    fn step_event(&mut self, now: Instant, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::Append(request) => self.on_append(now, request, out),
            Event::ChangeMembers {
                client,
                req,
                change,
            } => self.change_members(now, (client, req), change, out),
            Event::ChangeLogs {
                client,
                req,
                change,
            } => self.change_logs(now, (client, req), change, out),
            Event::TrimLogs(trims) => self.trim_logs(now, trims, out),
            Event::ChangeGroups {
                client,
                req,
                request,
            } => self.change_groups(now, (client, req), request, out),
            // A link's report reaches a node that is no longer master only
            // if it stepped down meanwhile: the link is gone, so is this.
            Event::Link(event) => self.master(now, event, out),
            Event::MasterOpened {
                conn,
                master,
                epoch,
            } => self.on_master_opened(now, conn, master, epoch, out),
            Event::FromMaster(event) => self.on_from_master(now, event, out),
            Event::VoteRequested { conn, request } => self.on_vote_asked(now, conn, request, out),
            Event::VoteUnrecorded { epoch, reason } => {
                if self.cfg.failover {
                    self.on_vote_unrecorded(epoch, reason, out);
                }
            }
            Event::VoteAnswered(answer) => {
                if self.cfg.failover {
                    self.on_vote_answered(now, answer, out);
                }
            }
            Event::NewerEpoch { epoch } => {
                if let Some(reason) = members::absurd_epoch(epoch, "a node refusing this one") {
                    Self::disregard(reason, out);
                } else if self.cfg.failover {
                    self.adopt(now, epoch, out);
                }
            }
            Event::Storage(report) => self.on_storage(now, report, out),
            Event::Compacted {
                base,
                numbers,
                groups,
            } => {
                self.catalog_compacted(base.seq);
                self.groups_compacted(groups);
                self.both(
                    now,
                    MasterEvent::Compacted {
                        base,
                        numbers: numbers.clone(),
                    },
                    SecondaryEvent::Compacted { base, numbers },
                    out,
                )
            }
            Event::Tick => {
                self.both(now, MasterEvent::Tick, SecondaryEvent::Tick, out);
                if self.cfg.failover {
                    self.tick_election(now, out);
                }
            }
        }
    }

    /// An append this node takes as master: refused if its log does not
    /// exist (any more), handed to the master's core otherwise.
    fn hand_to_master(&mut self, now: Instant, request: AppendRequest, out: &mut Vec<Action>) {
        match self.refuse_missing_log(request.log) {
            Some(error) => out.push(Action::Reply {
                client: request.client,
                req: request.req,
                result: Err(error),
            }),
            None => self.master(now, MasterEvent::Append(request), out),
        }
    }

    /// An append: the master takes it; with no master known during an
    /// election it is held a while; otherwise it is told where the master
    /// is.
    fn on_append(&mut self, now: Instant, request: AppendRequest, out: &mut Vec<Action>) {
        match &self.role {
            Role::Master(_) => self.hand_to_master(now, request, out),
            // No master known (an election, or a new cluster starting):
            // held until one is, rather than refused at once.
            _ if self.cfg.failover
                && self.ballot.leader.is_none()
                && self.unled.len() < MAX_UNLED =>
            {
                let wait = 2 * self.cfg.timing.election_timeout;
                let wait = request.timeout.map_or(wait, |t| t.min(wait));
                self.unled.push_back((now + wait, request));
            }
            _ => out.push(Action::Reply {
                client: request.client,
                req: request.req,
                result: Err(AppendError::NotMaster {
                    master_addr: self.master_addr().to_string(),
                }),
            }),
        }
    }

    /// A frame from the master (for the secondary's core), unless it is
    /// one no master sends; hearing the current master puts elections off.
    fn on_from_master(&mut self, now: Instant, event: SecondaryEvent, out: &mut Vec<Action>) {
        if let Some((conn, reason)) = self.impossible_frame(&event) {
            return self.refuse_master_frame(now, conn, reason, out);
        }
        // The master of this epoch spoke: no election for now.
        let current = matches!(&self.role, Role::Secondary(s) if s.conn().is_some() && s.conn() == from_conn(&event));
        if self.cfg.failover && current {
            self.ballot.heard(now, self.cfg.timing.election_timeout);
        }
        let heartbeat = match event {
            SecondaryEvent::Heartbeat { conn, committed } => Some((conn, committed)),
            _ => None,
        };
        self.secondary(now, event, out);
        if let Some(heartbeat) = heartbeat {
            self.catch_up(heartbeat, out);
        }
    }

    /// A candidate asks: refused if it may not stand, answered by the
    /// election rules, or told no by a static master.
    fn on_vote_asked(
        &mut self,
        now: Instant,
        conn: ConnId,
        request: VoteRequest,
        out: &mut Vec<Action>,
    ) {
        let VoteRequest {
            candidate,
            epoch,
            last,
            ..
        } = &request;
        if let Some(reason) = self.candidate_refusal(candidate, *epoch, *last) {
            out.push(Action::RefuseCandidate { conn, reason });
        } else if self.cfg.failover {
            self.on_vote_requested(now, conn, request, out);
        } else {
            // A static master: there are no elections to vote in.
            let frame = Frame::VoteReply {
                epoch: request.epoch,
                term: self.epoch(),
                granted: false,
                pre: request.pre,
            };
            out.push(Action::AnswerVote { conn, frame });
        }
    }

    /// Appends held while no master was known: taken if this node is
    /// master now, sent to the master once one is known, and refused (no
    /// master known) once their wait is over.
    fn release_unled(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.is_master() {
            for (_, request) in std::mem::take(&mut self.unled) {
                self.hand_to_master(now, request, out);
            }
            return;
        }
        let known = self.ballot.leader.is_some();
        while let Some((deadline, _)) = self.unled.front() {
            if !known && *deadline > now {
                break;
            }
            let (_, request) = self.unled.pop_front().expect("checked");
            out.push(Action::Reply {
                client: request.client,
                req: request.req,
                result: Err(AppendError::NotMaster {
                    master_addr: self.master_addr().to_string(),
                }),
            });
        }
    }

    /// After a round of inputs: what secondaries miss is sent (a master's
    /// batching point).
    pub fn flush(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Role::Master(m) = &mut self.role {
            let mut actions = std::mem::take(&mut self.master_out);
            m.flush(now, &mut actions);
            Self::master_actions(&mut self.generation, &mut actions, out);
            self.master_out = actions;
        }
    }

    /// The node is stopping: every waiting append is answered.
    pub fn shutdown(&mut self, out: &mut Vec<Action>) {
        for (_, request) in self.unled.drain(..) {
            out.push(Action::Reply {
                client: request.client,
                req: request.req,
                result: Err(AppendError::ShuttingDown { seq: None }),
            });
        }
        if let Role::Master(m) = &mut self.role {
            let mut actions = Vec::new();
            m.shutdown(&mut actions);
            Self::master_actions(&mut self.generation, &mut actions, out);
        }
    }

    /// Becomes master (of a new epoch) if this node is a secondary: the
    /// master's connection is dropped, the new epoch recorded and links
    /// started. Nothing the node holds is cut.
    pub fn become_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !matches!(self.role, Role::Secondary(_)) {
            return;
        }
        let Role::Secondary(s) = std::mem::replace(&mut self.role, Role::Changing) else {
            unreachable!("checked above");
        };
        if let Some(conn) = s.conn() {
            out.push(Action::RefuseMaster {
                conn,
                reason: format!("node {} is master now", self.cfg.id),
            });
        }
        let (log, stored) = s.into_log_state();
        self.start_master(now, log, stored, out);
    }

    /// This node's epoch, its vote in it and the master it knows for it.
    pub fn term(&self) -> (Epoch, Option<&str>, Option<&str>) {
        (
            self.ballot.term,
            self.ballot.vote.as_deref(),
            self.ballot.leader.as_deref(),
        )
    }

    /// Steps down to secondary if this node is master: appends still
    /// waiting are answered as indefinite (they may or may not survive;
    /// retry with the same key), links are stopped, and nothing is cut.
    pub fn become_secondary(&mut self, out: &mut Vec<Action>) {
        if !self.is_master() {
            return;
        }
        self.shutdown(out);
        let Role::Master(m) = std::mem::replace(&mut self.role, Role::Changing) else {
            unreachable!("checked above");
        };
        out.push(Action::StopLinks);
        let (log, stored) = m.into_log_state();
        self.role = Role::Secondary(Box::new(Secondary::resume(
            self.secondary_config(),
            log,
            stored,
        )));
    }

    /// A master connection: accepted (welcome, then the secondary's core
    /// takes it) or refused, here rather than in the runtime, since whether
    /// a node takes a master is a matter of roles and epochs.
    fn on_master_opened(
        &mut self,
        now: Instant,
        conn: ConnId,
        master: String,
        epoch: Epoch,
        out: &mut Vec<Action>,
    ) {
        if let Some(reason) = self.refusal(&master, epoch, "a master connection") {
            return out.push(Action::RefuseMaster { conn, reason });
        }
        if self.cfg.failover {
            return self.on_master_opened_failover(now, conn, master, epoch, out);
        }
        let id = &self.cfg.id;
        let refusal = match &self.role {
            Role::Master(_) | Role::Changing => {
                Some(format!("node {id} is itself the master of this cluster"))
            }
            Role::Secondary(_) if master != self.cfg.master => Some(format!(
                "node '{master}' is not the master of this cluster (the master is '{}')",
                self.cfg.master
            )),
            // A master older than the newest entry this node holds is not
            // the master of the current epoch: it must not cut or write.
            Role::Secondary(s) if epoch < s.last().epoch => Some(format!(
                "node '{master}' speaks for epoch {epoch}, but node {id} already holds entries of epoch {}: a stale master is refused",
                s.last().epoch
            )),
            Role::Secondary(_) => None,
        };
        if let Some(reason) = refusal {
            return out.push(Action::RefuseMaster { conn, reason });
        }
        self.welcome_master(now, conn, epoch, out);
    }

    /// With failover: a master of an older epoch is stale and told so (it
    /// steps down); one of a newer epoch is the master now (this node steps
    /// down if it was master, or gives up its election); one of this epoch
    /// is accepted unless another is already known for it.
    fn on_master_opened_failover(
        &mut self,
        now: Instant,
        conn: ConnId,
        master: String,
        epoch: Epoch,
        out: &mut Vec<Action>,
    ) {
        // A new cluster's first master is taken at once (see `learner`).
        if let Some(reason) = self.unsure_of_epoch().filter(|_| epoch > 1) {
            return out.push(Action::RefuseMaster { conn, reason });
        }
        let id = &self.cfg.id;
        let term = self.ballot.term;
        if epoch < term {
            let reason = format!(
                "node '{master}' speaks for epoch {epoch}, but node {id} is in epoch {term}: a stale master is refused"
            );
            return out.push(Action::RefuseStale {
                conn,
                epoch: term,
                reason,
            });
        }
        let other = self.ballot.leader.as_ref().filter(|l| **l != master);
        if epoch == term && (self.is_master() || other.is_some()) {
            let reason = format!(
                "node '{master}' speaks for epoch {epoch}, whose master is '{}'",
                other.map_or(id.as_str(), |l| l.as_str())
            );
            return out.push(Action::RefuseMaster { conn, reason });
        }
        // Taking a master of an epoch counts as this node's vote in it: no
        // other node can be master of that epoch, and a node that forgot
        // its vote (a new incarnation) must not give it to another.
        if epoch > self.ballot.term {
            self.take_epoch(now, epoch, Some(master.clone()), out);
        } else if self.ballot.vote.is_none() {
            self.ballot.vote = Some(master.clone());
            out.push(Action::RecordVote {
                epoch,
                vote: Some(master.clone()),
            });
        }
        self.ballot.leader = Some(master);
        self.ballot.running = None;
        self.ballot.heard(now, self.cfg.timing.election_timeout);
        self.welcome_master(now, conn, epoch, out);
    }

    /// Welcomes an accepted master; the secondary's core takes the
    /// connection.
    fn welcome_master(&mut self, now: Instant, conn: ConnId, epoch: Epoch, out: &mut Vec<Action>) {
        let Role::Secondary(s) = &self.role else {
            unreachable!("only a secondary accepts a master");
        };
        self.master_epoch = epoch;
        let welcome = Welcome {
            node: self.cfg.id.clone(),
            role: NodeRole::Secondary,
            master_addr: self.master_addr().to_string(),
            last: s.last(),
            stored: s.stored(),
            max_message_bytes: self.cfg.max_message_bytes as u64,
            epochs: s.epochs().to_vec(),
            first: s.base().seq + 1,
        };
        out.push(Action::ToMaster {
            conn,
            frame: Frame::Welcome(welcome),
        });
        self.secondary(now, SecondaryEvent::MasterConnected { conn }, out);
    }

    /// A storage report for the role this node has; `Unwritten` and the
    /// failures are about the log as it is, a write report about the
    /// generation it names.
    fn on_storage(&mut self, now: Instant, report: StorageReport, out: &mut Vec<Action>) {
        if report
            .generation()
            .is_some_and(|gen| gen != self.generation)
        {
            return; // stale: written before a cut
        }
        self.groups_reported(&report);
        match self.role {
            Role::Master(_) => self.master(now, MasterEvent::Storage(report), out),
            Role::Secondary(_) => {
                self.secondary(now, SecondaryEvent::Storage(report), out);
                self.caught_up(out);
            }
            Role::Changing => {}
        }
    }

    /// An event both roles take (time passed, retention moved the base).
    fn both(
        &mut self,
        now: Instant,
        as_master: MasterEvent,
        as_secondary: SecondaryEvent,
        out: &mut Vec<Action>,
    ) {
        match self.role {
            Role::Master(_) => self.master(now, as_master, out),
            Role::Secondary(_) => self.secondary(now, as_secondary, out),
            Role::Changing => {}
        }
    }

    fn master(&mut self, now: Instant, event: MasterEvent, out: &mut Vec<Action>) {
        let Role::Master(m) = &mut self.role else {
            return;
        };
        let mut actions = std::mem::take(&mut self.master_out);
        m.step(now, event, &mut actions);
        let lost = m.lost_inherited();
        let spent = m.epoch_spent();
        let removed = m.removed_and_committed();
        Self::master_actions(&mut self.generation, &mut actions, out);
        self.master_out = actions;
        if removed && !spent {
            // A change that removed this master is committed: the others
            // elect one of them (it no longer counts, nor stands).
            self.ballot.leader = None;
            self.ballot.heard(now, self.cfg.timing.election_timeout);
            out.push(Action::LeftCluster {
                reason: format!(
                    "node {} was removed from the cluster: it steps down and takes part no more (add it back with replog member add)",
                    self.cfg.id
                ),
            });
            return self.become_secondary(out);
        }
        if spent {
            // Say in the cut's own log line what follows from it.
            let why = if self.cfg.failover {
                "cutting the log back to what is durable; some of it had been sent to secondaries, so this master steps down (a secondary holding it may be elected and keep it)"
            } else {
                "cutting the log back to what is durable; some of it had been sent to secondaries, so this master goes on in a new epoch and they cut it too when they reconnect"
            };
            if let Some(Action::CutLog { why: w, .. }) =
                (out.iter_mut().rev()).find(|a| matches!(a, Action::CutLog { .. }))
            {
                *w = why;
            }
        }
        if self.cfg.failover && (lost || spent) {
            // Another node holds what was lost here (or entries this node
            // cut after sending them, whose sequence numbers it must not
            // reuse in its epoch): let it lead.
            self.ballot.leader = None;
            self.ballot.heard(now, self.cfg.timing.election_timeout);
            self.become_secondary(out);
        } else if spent {
            // A static master goes on as after a restart: a new epoch,
            // recorded before anything of it is written, and new links
            // whose handshakes cut what secondaries hold beyond this log.
            let Some(epoch) = crate::entry::next_epoch(m.epoch()) else {
                // Unreachable in practice (see EPOCH_LIMIT): the spent epoch
                // keeps the master from writing, which is safe.
                let reason = format!("this master cannot go on past epoch {EPOCH_LIMIT}");
                return Self::disregard(reason, out);
            };
            m.start_epoch(epoch, now);
            out.push(Action::RecordEpoch(epoch));
            out.push(Action::StopLinks);
            out.push(Action::StartLinks {
                epoch,
                peers: self.others(),
            });
        }
    }

    fn secondary(&mut self, now: Instant, event: SecondaryEvent, out: &mut Vec<Action>) {
        let Role::Secondary(s) = &mut self.role else {
            return;
        };
        let mut actions = std::mem::take(&mut self.secondary_out);
        s.step(now, event, &mut actions);
        for action in actions.drain(..) {
            out.push(match action {
                SecondaryAction::Persist(entries) => Action::Persist(entries),
                SecondaryAction::ResetLog {
                    base,
                    epochs,
                    configs,
                    numbers,
                    logs,
                    groups,
                } => {
                    self.generation += 1;
                    Action::ResetLog {
                        base,
                        epochs,
                        configs,
                        numbers,
                        logs,
                        groups,
                    }
                }
                SecondaryAction::Truncate { after, diverged } => {
                    self.generation += 1;
                    Action::CutLog {
                        after,
                        why: if diverged {
                            "cutting entries the master never stored (a divergent suffix)"
                        } else {
                            "cutting entries not durable here after a failed sync"
                        },
                        save: diverged,
                    }
                }
                // A learner says so in its answers to heartbeats, for the
                // master's `health`.
                SecondaryAction::Send {
                    conn,
                    frame: Frame::HeartbeatReply { stored },
                } if self.learner => Action::ToMaster {
                    conn,
                    frame: Frame::LearnerHeartbeatReply { stored },
                },
                SecondaryAction::Send { conn, frame } => Action::ToMaster { conn, frame },
            });
        }
        self.secondary_out = actions;
    }

    /// The master core's actions as the node's; consecutive entries to
    /// persist become one batch.
    fn master_actions(
        generation: &mut u64,
        actions: &mut Vec<MasterAction>,
        out: &mut Vec<Action>,
    ) {
        for action in actions.drain(..) {
            let action = match action {
                MasterAction::Persist(entry) => {
                    if let Some(Action::Persist(batch)) = out.last_mut() {
                        batch.push(entry);
                        continue;
                    }
                    Action::Persist(vec![entry])
                }
                MasterAction::SendEntries {
                    peer,
                    conn,
                    from,
                    to,
                } => Action::SendEntries {
                    peer,
                    conn,
                    from,
                    to,
                },
                MasterAction::Send { peer, conn, frame } => Action::ToPeer { peer, conn, frame },
                MasterAction::StartLink { peer, id, addr } => Action::StartLink {
                    peer,
                    secondary: (id, addr),
                },
                MasterAction::StopLink { peer } => Action::StopLink { peer },
                MasterAction::Reply {
                    client,
                    req,
                    result,
                } => Action::Reply {
                    client,
                    req,
                    result,
                },
                MasterAction::CutLog { after } => {
                    *generation += 1;
                    Action::CutLog {
                        after,
                        why: "cutting the log back to what is durable",
                        save: false,
                    }
                }
                MasterAction::Progress {
                    client,
                    req,
                    seq,
                    needed,
                    missing,
                } => Action::Progress {
                    client,
                    req,
                    seq,
                    needed,
                    missing,
                },
                MasterAction::Reconnect { peer, conn } => Action::Reconnect { peer, conn },
                MasterAction::Redial { peer, link, after } => Action::Redial { peer, link, after },
                MasterAction::Diverged { peer, conn, reason } => {
                    Action::Diverged { peer, conn, reason }
                }
            };
            out.push(action);
        }
    }

    /// What this node is when not master, as `health` shows it.
    fn follower_role(&self) -> NodeRole {
        if self.learner {
            NodeRole::Learner
        } else {
            NodeRole::Secondary
        }
    }

    /// What `replog health` shows of this node: on a master, every node's
    /// status, the quorum and whether appends are refused; on a secondary,
    /// itself as it sees itself.
    pub fn health(&self, now: Instant) -> HealthReport {
        let cfg = &self.cfg;
        match &self.role {
            Role::Master(m) => HealthReport {
                node: cfg.id.clone(),
                role: NodeRole::Master,
                epoch: m.epoch(),
                stored: m.stored(),
                master_addr: self.master_addr().to_string(),
                read_only: m.read_only(now),
                reachable: m.reachable(now),
                needed: m.needed(),
                nodes: m.health(now),
                authenticated: cfg.authenticated,
                encrypted: cfg.encrypted,
            },
            _ => HealthReport {
                node: cfg.id.clone(),
                role: self.follower_role(),
                epoch: self.epoch(),
                stored: self.stored(),
                master_addr: self.master_addr().to_string(),
                read_only: false,
                reachable: 0,
                needed: quorum::majority(self.voters()),
                nodes: match &self.role {
                    Role::Secondary(s) => vec![NodeHealth {
                        id: cfg.id.clone(),
                        addr: self.addr_of(&cfg.id).to_string(),
                        role: self.follower_role(),
                        status: s.status(),
                        acked: s.stored(),
                        lag: s.lag(),
                        last_heard_ms: None,
                        detail: None,
                    }],
                    _ => Vec::new(),
                },
                authenticated: cfg.authenticated,
                encrypted: cfg.encrypted,
            },
        }
    }
}

/// The connection a master's event came on, if it names one.
fn from_conn(event: &SecondaryEvent) -> Option<ConnId> {
    match event {
        SecondaryEvent::MasterConnected { conn }
        | SecondaryEvent::Sync { conn, .. }
        | SecondaryEvent::Entries { conn, .. }
        | SecondaryEvent::Heartbeat { conn, .. } => Some(*conn),
        _ => None,
    }
}

mod catalog;
pub use catalog::LogChange;
mod groups;
pub use groups::GroupRequest;
mod config;
mod election;
mod frames;
mod learner;
mod members;

#[cfg(test)]
mod tests;
