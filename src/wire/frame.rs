//! The frame enum: handshake, client requests and answers, replication.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Epoch, Position, Seq};

/// Version of the protocol spoken by this build: what its clients say in
/// their hello. Version 6 added the batch frames, `Appends` and `Answers`;
/// version 7 the answer `AppendError::Uncommitted`; version 8 the role
/// `NodeRole::Learner` in health reports; version 9 `MemberChange`;
/// version 10 the named logs (`UseLog`, `LogChange`, `ListLogs`, and the
/// errors `NoSuchLog` and `LogExists`); version 11 the consumer groups
/// (`GroupChange`, `ListGroups`, `GroupsListed`, and the error
/// `NoSuchGroup`); version 12 a log's own retention
/// (`LogChangeRequest::CreateRetained`) and `LogsDetailed`, the answer to
/// `ListLogs` with each log's id, bytes and retention.
pub const PROTOCOL_VERSION: u32 = 12;

/// The oldest version a node still serves: a hello saying any version from
/// this one to [`PROTOCOL_VERSION`] is accepted, and a peer is sent only the
/// frames its version has (a version-5 client gets no `Answers`). A hello
/// outside the range is refused, with both versions in the reason.
pub const OLDEST_PROTOCOL_VERSION: u32 = 5;

/// The version nodes say to each other (replication and elections): 6
/// added `LearnerVote`, sent only to a candidate that said 6 or later, so a
/// cluster can be upgraded one node at a time: nodes saying 5 and 6
/// replicate to each other and vote for each other (a learner answers a
/// candidate saying 5 with a refusal instead). 7 added
/// `LearnerHeartbeatReply`, by which a master learns which of its
/// secondaries are learners; a master saying 6 or less is sent
/// `HeartbeatReply` instead. 8 added `NodeVersion`, by which a node tells a
/// master saying 8 or later its own version before its welcome, and
/// `ResetMembers`, sent only to a secondary that said 8 or later: a reset
/// that carries the membership at its base. 9 gave every entry its log and
/// its number in that log (`Entry`, and `ResetMembers` the numbers at its
/// base): entries are not read alike by older nodes, so nodes of 9 or later
/// replicate only with each other ([`OLDEST_REPLICATION_VERSION`]), while
/// elections still span both. 10 added the consumer groups' positions at
/// the base to `ResetMembers`, and group entries, which a node of 9 would
/// keep but not follow: so nodes of 10 replicate only with each other. 11
/// reads a log's own retention and its trims (catalog entries a node of 10
/// ignores): a master creates a log with a retention of its own only while
/// every member is connected saying 11 or later.
pub const NODE_PROTOCOL_VERSION: u32 = 11;

/// The oldest node version a master replicates to, and a secondary takes
/// entries from: the first that follows consumer groups.
pub const OLDEST_REPLICATION_VERSION: u32 = 10;

/// Everything that can be sent on a replog connection, in either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    // ---- handshake (first frame of every connection, then its answer) ----
    /// Opens a connection: protocol version, cluster and who is calling.
    Hello(Hello),
    /// The node accepted the hello.
    Welcome(Welcome),
    /// The node refused the hello; the connection is closed after this frame.
    Refused {
        /// One sentence: what did not match.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        reason: String,
    },

    // ---- client requests ----
    /// Append one message with write concern `w`.
    Append {
        /// Chosen by the client; echoed in the answer.
        req: u64,
        /// Idempotency key: a retried append with the same key gets the
        /// original sequence number back instead of a second entry.
        #[serde(deserialize_with = "super::bounded::opt_string::deserialize")]
        key: Option<String>,
        /// How many nodes (master included) must store it before the answer.
        w: WriteConcern,
        /// Give up waiting after this many milliseconds (the entry stays).
        timeout_ms: Option<u64>,
        /// The message itself: arbitrary bytes.
        #[serde(with = "super::bounded::bytes_field")]
        message: Bytes,
        /// Ask for `Progress` frames while the append waits for `w`.
        progress: bool,
    },
    /// Read visible entries starting at `from`.
    List {
        /// Chosen by the client; echoed in the answer.
        req: u64,
        /// First sequence number wanted (1 = from the start).
        from: Seq,
        /// At most this many entries in the answer.
        max: u32,
        /// If nothing at `from` is visible yet, wait until something is
        /// (used by `replog list --follow`).
        wait: bool,
        /// Only entries known to be on a majority, which no failover
        /// removes (`replog list --committed`).
        committed: bool,
    },
    /// Ask for the node's health report.
    Health {
        /// Chosen by the client; echoed in the answer.
        req: u64,
    },

    // ---- answers to clients ----
    /// The append reached its write concern.
    Appended {
        /// The request this answers.
        req: u64,
        /// Sequence number of the entry.
        seq: Seq,
    },
    /// The append did not (or not yet) reach its write concern.
    AppendFailed {
        /// The request this answers.
        req: u64,
        /// Why.
        error: AppendError,
    },
    /// Entries answering a `List`, in order, without gaps.
    Listed {
        /// The request this answers.
        req: u64,
        /// `(seq, message)` pairs.
        #[serde(with = "super::bounded::listed")]
        entries: Vec<(Seq, Bytes)>,
        /// Last sequence number visible on the node when answering.
        visible: Seq,
    },
    /// Health answering a `Health`.
    HealthReport {
        /// The request this answers.
        req: u64,
        /// The report.
        report: HealthReport,
    },

    // ---- replication: master -> secondary ----
    /// First frame after the welcome: where replication resumes. If
    /// `truncate_after` is set, the secondary holds a suffix the master
    /// never stored and must cut its log after that sequence number.
    Sync {
        /// Cut everything after this sequence number.
        truncate_after: Option<Seq>,
    },
    /// A batch of consecutive entries.
    Entries {
        /// The entries, in sequence order.
        #[serde(deserialize_with = "super::bounded::vec::deserialize")]
        entries: Vec<Entry>,
    },
    /// Liveness probe; answered with `HeartbeatReply`. Carries the
    /// master's committed mark: entries up to it are on a majority and no
    /// failover removes them (`replog list --committed`).
    Heartbeat {
        /// Last sequence number known to be on a majority.
        committed: Seq,
    },

    // ---- replication: secondary -> master ----
    /// Cumulative acknowledgement: "I have stored everything up to `stored`".
    Ack {
        /// Last contiguous sequence number stored under the fsync policy.
        stored: Seq,
    },
    /// The secondary could not take the last entries; the master resends
    /// from `stored + 1` after a backoff.
    Nack {
        /// Last contiguous sequence number stored.
        stored: Seq,
        /// Why, for the master's log.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        reason: String,
    },
    /// Answer to a heartbeat, with the secondary's position.
    HeartbeatReply {
        /// Last contiguous sequence number stored.
        stored: Seq,
    },

    // ---- elections: candidate -> voter, then the answer ----
    /// "Would you vote for me?" (`pre`, which changes nothing on either
    /// side) or "vote for me in `epoch`". Sent on a connection opened with
    /// `Role::Candidate`.
    VoteRequest {
        /// The epoch the candidate would be master of.
        epoch: Epoch,
        /// The candidate's last entry: a vote goes only to a log at least
        /// as up to date as the voter's (last epoch, then last seq).
        last: Position,
        /// A pre-vote: asks without raising anybody's epoch.
        pre: bool,
    },
    /// The answer to a `VoteRequest`.
    VoteReply {
        /// The epoch asked about (echoed).
        epoch: Epoch,
        /// The voter's own current epoch: a candidate behind it gives up.
        term: Epoch,
        /// Whether the vote (or pre-vote) is granted.
        granted: bool,
        /// Echoes the request's `pre`.
        pre: bool,
    },
    /// A master's or candidate's hello refused because the node already
    /// knows a newer epoch: the caller is stale and must step down.
    NewerEpoch {
        /// The node's current epoch.
        epoch: Epoch,
        /// One sentence, for the caller's log.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        reason: String,
    },

    // ---- node-to-node authentication (after the hello, before the welcome) ----
    /// The acceptor's half of the handshake: its nonce, and one proof per
    /// cluster key it holds (see `crate::auth`).
    Challenge {
        /// The acceptor's fresh nonce.
        nonce: [u8; 32],
        /// HMAC-SHA256 proofs, one per key (one or two).
        #[serde(deserialize_with = "super::bounded::vec::deserialize")]
        proofs: Vec<[u8; 32]>,
    },
    /// The opener's half: proof that it holds a key the acceptor accepts.
    Proof {
        /// HMAC-SHA256 proof.
        proof: [u8; 32],
    },
    /// The hello's client token is wrong or missing where one is required;
    /// the connection is closed after this frame. Definite: nothing was
    /// done.
    Unauthorized {
        /// One sentence: what is missing and which flag gives it.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        reason: String,
    },
    /// The node refused a node's hello because their `--cluster` or
    /// `--master` differ, and says its own, so the caller can report the
    /// difference (sent only to a node that proved the cluster key, when
    /// there is one); the connection is closed after this frame.
    Mismatch {
        /// The node's `--cluster` list, as the flag takes it.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        cluster: String,
        /// The node's `--master`.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        master: String,
    },

    // ---- replica verification (`replog verify`) ----
    /// Digests of the node's visible entries from `from` to `to`, one per
    /// `step` entries.
    Digest {
        /// Request id.
        req: u64,
        /// First sequence number.
        from: Seq,
        /// Last sequence number asked for.
        to: Seq,
        /// Entries per digest (at least 1).
        step: u64,
    },
    /// Answer to `Digest`: digest `i` covers `from + i·step` to the smaller
    /// of `from + (i+1)·step − 1` and `upto`.
    Digests {
        /// Request id.
        req: u64,
        /// Last sequence number covered: the node stops at its visible
        /// log's end and at its per-request limits.
        upto: Seq,
        /// 128-bit digests (SHA-256, truncated) of each range's entries:
        /// sequence number, epoch, key and message.
        #[serde(deserialize_with = "super::bounded::vec::deserialize")]
        digests: Vec<[u8; 16]>,
    },

    // ---- progress of a waiting append ----
    /// An append that asked for progress is in the master's log at `seq`
    /// and waits for `needed` more nodes, among `missing`. Sent when the
    /// sequence number is assigned and whenever an acknowledgement changes
    /// what is missing; best effort (dropped if the client reads slowly).
    Progress {
        /// The append's request id.
        req: u64,
        /// Its sequence number.
        seq: Seq,
        /// Nodes that must still store it.
        needed: u32,
        /// The nodes (ids) that do not hold it yet.
        #[serde(deserialize_with = "super::bounded::vec::deserialize")]
        missing: Vec<String>,
    },

    // ---- retention ----
    /// The master no longer holds entries this secondary lacks (retention
    /// deleted them): the secondary empties its log, which continues after
    /// `base`, and takes entries from there. Sent instead of `Sync`.
    Reset {
        /// The entry before the first the master holds.
        base: Position,
        /// The epochs begun up to `base` (first sequence number of each).
        #[serde(deserialize_with = "super::bounded::vec::deserialize")]
        epochs: Vec<(Epoch, Seq)>,
    },

    // ---- batches (version 6) ----
    /// Several appends in one frame: what the client library found queued on
    /// its connection when it wrote. Each is taken and answered exactly as
    /// if it had come in an `Append` frame of its own, in this order.
    Appends {
        /// The appends, in the order they were made.
        #[serde(deserialize_with = "super::bounded::vec::deserialize")]
        appends: Vec<AppendItem>,
    },
    /// Answers to several appends in one frame (sent only to clients of
    /// version 6 or later): each one what `Appended` or `AppendFailed` would
    /// have said.
    Answers {
        /// The answers, in the order they were decided.
        #[serde(deserialize_with = "super::bounded::vec::deserialize")]
        answers: Vec<AppendAnswer>,
    },

    // ---- learners (node version 6) ----
    /// A vote (or pre-vote) granted by a learner, a node back as a new
    /// incarnation that does not yet hold everything committed: it counts
    /// only toward an election that every node grants. Sent only to
    /// candidates that said node version 6 or later; an older one is sent
    /// `VoteReply` with `granted: false` instead.
    LearnerVote {
        /// The epoch asked about (echoed).
        epoch: Epoch,
        /// The voter's own current epoch.
        term: Epoch,
        /// Echoes the request's `pre`.
        pre: bool,
    },

    // ---- learners (node version 7) ----
    /// A learner's answer to a heartbeat: as `HeartbeatReply`, and it says
    /// that the secondary does not yet vote (it holds less than everything
    /// committed), so that the master's `health` can show it. Sent only to
    /// masters that said node version 7 or later.
    LearnerHeartbeatReply {
        /// Last contiguous sequence number stored.
        stored: Seq,
    },

    // ---- membership (version 9) ----
    /// Add or remove a member (`replog member`), answered as an append is:
    /// `Appended` with the configuration entry's sequence number once it
    /// is on a majority of the new voters, or `AppendFailed`. On a cluster
    /// with a key, only a connection that proved it may ask.
    MemberChange {
        /// Request id, echoed in the answer.
        req: u64,
        /// The change.
        change: MemberChangeRequest,
    },

    // ---- membership (node version 8) ----
    /// A node's own node protocol version, sent to a master whose hello
    /// said 8 or later, after the proof of the key and right before the
    /// `Welcome`: the master then knows which frames the node reads.
    NodeVersion {
        /// The node's [`NODE_PROTOCOL_VERSION`].
        version: u32,
    },
    /// `Reset`, with the membership in force at the base: the
    /// configuration entries at or before it that the secondary can no
    /// longer be sent (retention deleted them), so that it acts on the
    /// cluster's members and not on older ones its log held. Sent only to
    /// secondaries that said node version 8 or later.
    ResetMembers(Box<ResetAtBase>),

    // ---- named logs (version 10) ----
    /// The log this connection's appends and lists are for from now on
    /// (every connection starts with `default`): answered `Appended` with
    /// seq 0, or `AppendFailed` with `NoSuchLog` (and the connection's log
    /// stays as it was).
    UseLog {
        /// Chosen by the client; echoed in the answer.
        req: u64,
        /// The log's name.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        log: String,
    },
    /// Create or delete a log: answered as a `MemberChange` is, `Appended`
    /// with the catalog entry's position once a majority holds it, or
    /// `AppendFailed` saying why not.
    LogChange {
        /// Chosen by the client; echoed in the answer.
        req: u64,
        /// What to do.
        change: LogChangeRequest,
    },
    /// The logs this node knows: answered `LogsListed`.
    ListLogs {
        /// Chosen by the client; echoed in the answer.
        req: u64,
    },
    /// Every log the node knows, `default` first.
    LogsListed {
        /// The request this answers.
        req: u64,
        /// The logs.
        #[serde(deserialize_with = "super::bounded::vec::deserialize")]
        logs: Vec<LogStatus>,
    },

    // ---- consumer groups (version 11) ----
    /// Set a consumer group's position in a log, or delete a group:
    /// answered as a `LogChange` is, `Appended` with the group entry's
    /// position once a majority holds it, or `AppendFailed` saying why not.
    GroupChange {
        /// Chosen by the client; echoed in the answer.
        req: u64,
        /// What to do.
        change: GroupChangeRequest,
    },
    /// The consumer groups' positions this node knows (of one group, or of
    /// all): answered `GroupsListed`.
    ListGroups {
        /// Chosen by the client; echoed in the answer.
        req: u64,
        /// Only this group's positions; `None`: every group's.
        #[serde(deserialize_with = "super::bounded::opt_string::deserialize")]
        group: Option<String>,
    },
    /// Consumer groups' positions, by group then log.
    GroupsListed {
        /// The request this answers.
        req: u64,
        /// The positions.
        #[serde(deserialize_with = "super::bounded::vec::deserialize")]
        groups: Vec<GroupStatus>,
    },

    // ---- logs in detail (version 12) ----
    /// Every log the node knows, `default` first, with its id, bytes and
    /// retention: the answer to `ListLogs` for a client of version 12 or
    /// later (older ones are answered `LogsListed`).
    LogsDetailed {
        /// The request this answers.
        req: u64,
        /// The logs.
        #[serde(deserialize_with = "super::bounded::vec::deserialize")]
        logs: Vec<LogDetail>,
    },

    // ---- not a frame of the protocol: new frames go above ----
    /// A frame already encoded, length prefix included
    /// ([`super::FrameCodec::encode_once`]): written as it is, so that
    /// entries sent to several secondaries are encoded once. It never
    /// appears on the wire as such (it cannot be serialized, and nothing
    /// decodes to it), and it comes last so that no variant's number moves.
    #[serde(skip)]
    Encoded(Bytes),
}

/// One append of an `Appends` frame: the fields of `Frame::Append`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppendItem {
    /// Chosen by the client; echoed in the answer.
    pub req: u64,
    /// Idempotency key.
    #[serde(deserialize_with = "super::bounded::opt_string::deserialize")]
    pub key: Option<String>,
    /// How many nodes (master included) must store it before the answer.
    pub w: WriteConcern,
    /// Give up waiting after this many milliseconds (the entry stays).
    pub timeout_ms: Option<u64>,
    /// The message itself: arbitrary bytes.
    #[serde(with = "super::bounded::bytes_field")]
    pub message: Bytes,
    /// Ask for `Progress` frames while the append waits for `w`.
    pub progress: bool,
}

/// What a message and its key cost in a frame, generously: their bytes and
/// 32 for the numbers and lengths around them. Batches of appends and of
/// replicated entries are both sized by it, against `--max-message-bytes`.
pub fn cost_in_frame(message: &[u8], key: Option<&str>) -> usize {
    message.len() + key.map_or(0, str::len) + 32
}

/// What an entry costs in a frame ([`cost_in_frame`]): what replication
/// batches, reads of the log and the secondary's early entries are counted
/// in.
pub fn entry_cost(e: &Entry) -> usize {
    cost_in_frame(&e.message, e.key.as_deref())
}

impl AppendItem {
    /// Bytes this append counts against a batch ([`cost_in_frame`]).
    pub fn cost(&self) -> usize {
        cost_in_frame(&self.message, self.key.as_deref())
    }
}

impl From<AppendItem> for Frame {
    fn from(a: AppendItem) -> Frame {
        Frame::Append {
            req: a.req,
            key: a.key,
            w: a.w,
            timeout_ms: a.timeout_ms,
            message: a.message,
            progress: a.progress,
        }
    }
}

impl Frame {
    /// An `Append` frame's fields as a batch item; any other frame back.
    pub fn into_append_item(self) -> Result<AppendItem, Frame> {
        match self {
            Frame::Append {
                req,
                key,
                w,
                timeout_ms,
                message,
                progress,
            } => Ok(AppendItem {
                req,
                key,
                w,
                timeout_ms,
                message,
                progress,
            }),
            other => Err(other),
        }
    }

    /// An `Appended` or `AppendFailed` frame as a batch answer; any other
    /// frame back.
    pub fn into_append_answer(self) -> Result<AppendAnswer, Frame> {
        match self {
            Frame::Appended { req, seq } => Ok(AppendAnswer {
                req,
                result: Ok(seq),
            }),
            Frame::AppendFailed { req, error } => Ok(AppendAnswer {
                req,
                result: Err(error),
            }),
            other => Err(other),
        }
    }
}

impl From<AppendAnswer> for Frame {
    fn from(a: AppendAnswer) -> Frame {
        match a.result {
            Ok(seq) => Frame::Appended { req: a.req, seq },
            Err(error) => Frame::AppendFailed { req: a.req, error },
        }
    }
}

/// One answer of an `Answers` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppendAnswer {
    /// The request this answers.
    pub req: u64,
    /// Its sequence number (as `Appended` says), or why not (as
    /// `AppendFailed` says).
    pub result: Result<Seq, AppendError>,
}

/// The first frame of every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the caller.
    pub version: u32,
    /// Fingerprint of the caller's `--cluster` list; `None` for clients,
    /// which work with any cluster.
    pub cluster: Option<u64>,
    /// Who is calling.
    pub role: Role,
    /// The opener's fresh nonce, when it holds a cluster key and expects the
    /// node to prove it holds one too (node-to-node connections).
    pub nonce: Option<[u8; 32]>,
    /// A client's token (`--token-file`), when the node requires one.
    #[serde(deserialize_with = "super::bounded::opt_string::deserialize")]
    pub token: Option<String>,
}

/// Who opened a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Role {
    /// A `replog` client or any program using the client library.
    Client,
    /// The master, opening its replication connection to a secondary.
    Master {
        /// The master's node id.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        id: String,
        /// The master's current epoch.
        epoch: u64,
    },
    /// A node asking for votes (or pre-votes) in an election; the one
    /// frame after the handshake is a `VoteRequest`.
    Candidate {
        /// The candidate's node id.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        id: String,
    },
}

/// The node's answer to an accepted hello.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// Id of the answering node.
    #[serde(deserialize_with = "super::bounded::string::deserialize")]
    pub node: String,
    /// Its role.
    pub role: NodeRole,
    /// Address of the cluster's master, for redirecting appends.
    #[serde(deserialize_with = "super::bounded::string::deserialize")]
    pub master_addr: String,
    /// Last entry in the node's log (written, maybe not yet synced).
    pub last: Position,
    /// Last sequence number stored under the node's fsync policy.
    pub stored: Seq,
    /// The node's `--max-message-bytes`, so that a client can refuse an
    /// oversized message itself instead of having its connection closed.
    pub max_message_bytes: u64,
    /// To a master: the first sequence number of every epoch in the node's
    /// log, so that the master finds where their logs part (empty for
    /// clients).
    #[serde(deserialize_with = "super::bounded::vec::deserialize")]
    pub epochs: Vec<(Epoch, Seq)>,
    /// The first sequence number the node holds (or will hold next, if its
    /// log is empty): retention deleted the entries before it. 1 if it
    /// deleted none.
    pub first: Seq,
}

/// A membership change, as a client asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberChangeRequest {
    /// Add node `id`, listening at `addr`, as a learner.
    Add {
        /// Its node id.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        id: String,
        /// Where it listens for other nodes.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        addr: String,
    },
    /// Remove node `id`.
    Remove {
        /// Its node id.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        id: String,
    },
}

/// A log created or deleted, as a client asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogChangeRequest {
    /// Create a log of this name.
    Create {
        /// Its name.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        name: String,
    },
    /// Delete the log of this name.
    Delete {
        /// Its name.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        name: String,
    },
    /// Create a log of this name with its own retention (version 12).
    CreateRetained {
        /// Its name.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        name: String,
        /// Keep at least this many bytes of its messages.
        retention_bytes: Option<u64>,
        /// Delete its messages older than this many seconds.
        retention_age_secs: Option<u64>,
    },
}

/// What a `ResetMembers` says of the base (boxed: the largest frame, kept
/// out of every other frame's size; encoded as the fields in order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetAtBase {
    /// The entry before the first the master holds.
    pub base: Position,
    /// The epochs begun up to `base` (first sequence number of each).
    #[serde(deserialize_with = "super::bounded::vec::deserialize")]
    pub epochs: Vec<(Epoch, Seq)>,
    /// The newest configuration entry at or before the base, as its
    /// sequence number and message; none if the cluster's members
    /// never changed up to it. (A list, of one at most, so that it is
    /// read as `Listed`'s pairs are.)
    #[serde(with = "super::bounded::listed")]
    pub configs: Vec<(Seq, Bytes)>,
    /// Each log's last message number at the base (node version 9).
    #[serde(deserialize_with = "super::bounded::vec::deserialize")]
    pub numbers: Vec<(crate::entry::LogId, Seq)>,
    /// The named logs at the base, as `base.logs` holds them (node
    /// version 9).
    #[serde(with = "super::bounded::bytes_field")]
    pub logs: Bytes,
    /// The consumer groups' positions at the base, as `base.groups`
    /// holds them (node version 10).
    #[serde(with = "super::bounded::bytes_field")]
    pub groups: Bytes,
}

/// A consumer group's position set, or a group deleted, as a client asks
/// for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupChangeRequest {
    /// Group `group` has read log `log` up to message `number` (0: none).
    Set {
        /// The group's name.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        group: String,
        /// The log's name.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        log: String,
        /// The last message read.
        number: Seq,
        /// Set only if the position is this now (or `number` already: a
        /// commit sent again): a consumer's commit, which must not undo a
        /// move it did not make. `None`: whatever it is.
        expect: Option<Seq>,
    },
    /// Delete group `group`, with its positions in every log.
    Delete {
        /// The group's name.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        group: String,
    },
}

/// One consumer group's position in one log, as a node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group's name.
    #[serde(deserialize_with = "super::bounded::string::deserialize")]
    pub group: String,
    /// The log's name.
    #[serde(deserialize_with = "super::bounded::string::deserialize")]
    pub log: String,
    /// The number of the last message the group has read (0: none).
    pub position: Seq,
    /// The log's last visible message number: the group lags by the
    /// difference.
    pub last: Seq,
}

/// One log, as a node holds it, in detail (version 12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDetail {
    /// Its name.
    #[serde(deserialize_with = "super::bounded::string::deserialize")]
    pub name: String,
    /// Its id (ids are never given twice: a log deleted and created again
    /// under its name has a new one).
    pub id: u32,
    /// The first message's number held (0: none).
    pub first: Seq,
    /// The last visible message's number (0: none yet).
    pub last: Seq,
    /// The bytes of its messages this node holds.
    pub bytes: u64,
    /// Its own retention: at least this many bytes kept.
    pub retention_bytes: Option<u64>,
    /// Its own retention: messages older than this many seconds go.
    pub retention_age_secs: Option<u64>,
    /// The last number its own retention deleted (0: none).
    pub trimmed: Seq,
}

impl LogDetail {
    /// What a client of version 11 or older is told of it.
    pub fn status(&self) -> LogStatus {
        LogStatus {
            name: self.name.clone(),
            first: self.first,
            last: self.last,
        }
    }
}

/// One log, as a node holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStatus {
    /// Its name.
    #[serde(deserialize_with = "super::bounded::string::deserialize")]
    pub name: String,
    /// The first message's sequence number held (0: none).
    pub first: Seq,
    /// The last visible message's sequence number (0: none yet).
    pub last: Seq,
}

/// The role of a node in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRole {
    /// Assigns sequence numbers and accepts appends.
    Master,
    /// Stores what the master sends.
    Secondary,
    /// A secondary back as a new incarnation (an empty or healed disk)
    /// that does not yet hold everything committed: it stores what the
    /// master sends, and votes only once it holds everything committed.
    /// Shown to clients of protocol version 8 or later; older ones are
    /// told `Secondary`.
    Learner,
}

impl NodeRole {
    /// Whether the node stores what a master sends (a secondary or a
    /// learner).
    pub fn follows(self) -> bool {
        matches!(self, NodeRole::Secondary | NodeRole::Learner)
    }
}

impl std::fmt::Display for NodeRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeRole::Master => "master",
            NodeRole::Secondary => "secondary",
            NodeRole::Learner => "learner",
        })
    }
}

/// How many nodes must store an entry before its append is answered (what
/// that comes to in a given cluster is `replication::quorum::nodes_for`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteConcern {
    /// Exactly this many nodes, master included.
    Nodes(u32),
    /// ⌊N/2⌋+1 nodes.
    Majority,
    /// Every node of the cluster.
    All,
}

impl std::str::FromStr for WriteConcern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "majority" => Ok(WriteConcern::Majority),
            "all" => Ok(WriteConcern::All),
            n => n.parse::<u32>().map(WriteConcern::Nodes).map_err(|_| {
                format!("'{n}' is not a write concern: use a number of nodes, 'majority' or 'all'")
            }),
        }
    }
}

/// Why an append was not answered with a sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AppendError {
    /// Definite: not appended (w out of range, message too large...).
    BadRequest(#[serde(deserialize_with = "super::bounded::string::deserialize")] String),
    /// Settled, though short of its write concern when the time ran out:
    /// the entry is on a majority (committed) with this sequence number,
    /// survives any failover, and will still be replicated.
    TimedOut {
        /// Sequence number of the entry.
        seq: Seq,
        /// How many nodes had stored it when the time ran out.
        stored_on: u32,
    },
    /// Definite: not appended, the master lacks a quorum and is read-only.
    Refused {
        /// Nodes (master included) known reachable: neither unhealthy nor
        /// still connecting.
        reachable: u32,
        /// Nodes needed for a quorum.
        needed: u32,
    },
    /// Appends go to the master; here is its address.
    NotMaster {
        /// The master's address from the cluster list.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        master_addr: String,
    },
    /// The master could not store the entry (disk full, I/O error...).
    Storage(#[serde(deserialize_with = "super::bounded::string::deserialize")] String),
    /// The master is shutting down or stepped down before the entry
    /// reached its write concern. With a sequence number: settled, the
    /// entry is on a majority (committed) and survives any failover.
    /// Without: it may or may not have been stored (retry with the same
    /// key).
    ShuttingDown {
        /// Sequence number, if the entry is known to be on a majority.
        seq: Option<Seq>,
    },
    /// Definite: not appended, this connection's token does not allow
    /// appends.
    Unauthorized(#[serde(deserialize_with = "super::bounded::string::deserialize")] String),
    /// Definite: not appended, the request key already names the entry at
    /// `seq`, which holds another message.
    KeyReused {
        /// Sequence number of the entry the key is bound to.
        seq: Seq,
    },
    /// Stored on a majority (committed, it survives any failover), but
    /// retention deleted it from the master's log before `w` nodes held it:
    /// it will never reach `w`.
    Deleted {
        /// Sequence number of the entry.
        seq: Seq,
        /// How many nodes held it when it was deleted.
        stored_on: u32,
    },
    /// Not settled (version 7): the entry is in the master's log with this
    /// sequence number, but was not known to be on a majority when the wait
    /// ended, so a failover may still cut it. The client cannot know
    /// whether it will stay: it retries with the same key, which waits for
    /// this entry if it is kept and appends the message again if it was cut.
    Uncommitted {
        /// Sequence number of the entry in the master's log.
        seq: Seq,
        /// How many nodes had stored it.
        stored_on: u32,
        /// Whether the append's timeout ended the wait (otherwise the master
        /// shut down or stepped down).
        timed_out: bool,
    },
    /// Definite (version 10): no log of that name exists, so nothing was
    /// appended (or deleted).
    NoSuchLog {
        /// The name asked for.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        log: String,
    },
    /// Definite (version 10): a log of that name exists already, so none
    /// was created.
    LogExists {
        /// The name asked for.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        log: String,
    },
    /// Definite (version 11): no consumer group of that name has a
    /// position, so none was deleted.
    NoSuchGroup {
        /// The name asked for.
        #[serde(deserialize_with = "super::bounded::string::deserialize")]
        group: String,
    },
}

impl Frame {
    /// The frame's kind, for log lines (never its content, which may be
    /// large).
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "Hello",
            Frame::Welcome(_) => "Welcome",
            Frame::Refused { .. } => "Refused",
            Frame::Append { .. } => "Append",
            Frame::List { .. } => "List",
            Frame::Health { .. } => "Health",
            Frame::Appended { .. } => "Appended",
            Frame::AppendFailed { .. } => "AppendFailed",
            Frame::Listed { .. } => "Listed",
            Frame::HealthReport { .. } => "HealthReport",
            Frame::Sync { .. } => "Sync",
            Frame::Entries { .. } => "Entries",
            Frame::Heartbeat { .. } => "Heartbeat",
            Frame::VoteRequest { .. } => "VoteRequest",
            Frame::VoteReply { .. } => "VoteReply",
            Frame::LearnerVote { .. } => "LearnerVote",
            Frame::NewerEpoch { .. } => "NewerEpoch",
            Frame::Ack { .. } => "Ack",
            Frame::Nack { .. } => "Nack",
            Frame::HeartbeatReply { .. } => "HeartbeatReply",
            Frame::LearnerHeartbeatReply { .. } => "LearnerHeartbeatReply",
            Frame::MemberChange { .. } => "MemberChange",
            Frame::Challenge { .. } => "Challenge",
            Frame::Proof { .. } => "Proof",
            Frame::Unauthorized { .. } => "Unauthorized",
            Frame::Mismatch { .. } => "Mismatch",
            Frame::Progress { .. } => "Progress",
            Frame::Reset { .. } => "Reset",
            Frame::ResetMembers(_) => "ResetMembers",
            Frame::UseLog { .. } => "UseLog",
            Frame::LogChange { .. } => "LogChange",
            Frame::ListLogs { .. } => "ListLogs",
            Frame::LogsListed { .. } => "LogsListed",
            Frame::GroupChange { .. } => "GroupChange",
            Frame::ListGroups { .. } => "ListGroups",
            Frame::GroupsListed { .. } => "GroupsListed",
            Frame::LogsDetailed { .. } => "LogsDetailed",
            Frame::NodeVersion { .. } => "NodeVersion",
            Frame::Digest { .. } => "Digest",
            Frame::Digests { .. } => "Digests",
            Frame::Appends { .. } => "Appends",
            Frame::Encoded(_) => "Encoded",
            Frame::Answers { .. } => "Answers",
        }
    }

    /// This frame as a node speaking node protocol `version` can decode it:
    /// a candidate older than version 6 knows no `LearnerVote`, and is
    /// refused instead (a learner's yes counts for little, and for nothing
    /// to a candidate that cannot tell it from a voter's).
    pub fn for_node_version(self, version: u32) -> Frame {
        match self {
            Frame::LearnerHeartbeatReply { stored } if version < 7 => {
                Frame::HeartbeatReply { stored }
            }
            Frame::LearnerVote { epoch, term, pre } if version < 6 => Frame::VoteReply {
                epoch,
                term,
                granted: false,
                pre,
            },
            other => other,
        }
    }
}

impl AppendError {
    /// This error as a client speaking protocol `version` can decode it: a
    /// client older than version 7 knows no `Uncommitted`, and is told
    /// what that means to it, `ShuttingDown` without a sequence number
    /// ("may or may not have been stored: retry with the same key").
    pub fn for_version(self, version: u32) -> AppendError {
        match self {
            AppendError::Uncommitted { .. } if version < 7 => {
                AppendError::ShuttingDown { seq: None }
            }
            AppendError::NoSuchLog { log } if version < 10 => {
                AppendError::BadRequest(format!("there is no log named {log}"))
            }
            AppendError::LogExists { log } if version < 10 => {
                AppendError::BadRequest(format!("a log named {log} exists already"))
            }
            AppendError::NoSuchGroup { group } if version < 11 => {
                AppendError::BadRequest(format!("there is no group named {group}"))
            }
            other => other,
        }
    }
}

impl HealthReport {
    /// This report as a client speaking protocol `version` can decode it:
    /// a client older than version 8 knows no `NodeRole::Learner`, and is
    /// told `Secondary` (which a learner is, but for its vote).
    pub fn for_version(mut self, version: u32) -> HealthReport {
        if version < 8 {
            let old = |role: &mut NodeRole| {
                if *role == NodeRole::Learner {
                    *role = NodeRole::Secondary;
                }
            };
            old(&mut self.role);
            self.nodes.iter_mut().for_each(|n| old(&mut n.role));
        }
        self
    }
}

/// What `replog health` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Id of the answering node.
    #[serde(deserialize_with = "super::bounded::string::deserialize")]
    pub node: String,
    /// Its role.
    pub role: NodeRole,
    /// Its epoch (the master's epoch for a secondary that has been synced).
    pub epoch: u64,
    /// Last sequence number visible (stored) on this node.
    pub stored: Seq,
    /// Address of the master.
    #[serde(deserialize_with = "super::bounded::string::deserialize")]
    pub master_addr: String,
    /// On the master: whether it refuses appends, for lack of quorum or
    /// because its own log failed.
    pub read_only: bool,
    /// Nodes known reachable (neither unhealthy nor still connecting),
    /// master included (master only; 0 elsewhere).
    pub reachable: u32,
    /// Nodes needed for a quorum.
    pub needed: u32,
    /// On the master: every node of the cluster, itself first.
    #[serde(deserialize_with = "super::bounded::vec::deserialize")]
    pub nodes: Vec<NodeHealth>,
    /// Whether node-to-node connections are authenticated (a cluster key).
    pub authenticated: bool,
    /// Whether connections are encrypted (TLS).
    pub encrypted: bool,
}

/// One node as the master sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeHealth {
    /// Node id.
    #[serde(deserialize_with = "super::bounded::string::deserialize")]
    pub id: String,
    /// Address from the cluster list.
    #[serde(deserialize_with = "super::bounded::string::deserialize")]
    pub addr: String,
    /// Role.
    pub role: NodeRole,
    /// Status as the master sees it.
    pub status: PeerStatus,
    /// Last sequence number the node acknowledged as stored.
    pub acked: Seq,
    /// Entries it is behind the master's last entry.
    pub lag: u64,
    /// Milliseconds since the master last heard from it (None = never).
    pub last_heard_ms: Option<u64>,
    /// Why it is refused or mismatched, in its own words (None otherwise).
    #[serde(deserialize_with = "super::bounded::opt_string::deserialize")]
    pub detail: Option<String>,
}

/// Health of a secondary as seen by the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerStatus {
    /// Heard within the suspect period.
    Healthy,
    /// Silent longer than the suspect period.
    Suspected,
    /// Silent longer than the unhealthy period, its connection closed, or
    /// never heard since the master started and that start is longer ago
    /// than the unhealthy period.
    Unhealthy,
    /// Never heard since the master started, which is less than the
    /// unhealthy period ago: it may not be listening yet.
    Connecting,
    /// It answers, but refuses this master or cannot prove the cluster key
    /// (a wrong key, a newer epoch): it will not be replicated to.
    Refused,
    /// It was started with another `--cluster` list or `--master`: it will
    /// not be replicated to until every node has the same.
    Mismatch,
}

impl std::fmt::Display for PeerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PeerStatus::Healthy => "healthy",
            PeerStatus::Suspected => "suspected",
            PeerStatus::Unhealthy => "unhealthy",
            PeerStatus::Connecting => "connecting",
            PeerStatus::Refused => "refused",
            PeerStatus::Mismatch => "configuration mismatch",
        })
    }
}
