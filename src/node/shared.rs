//! What the node's tasks share: the node loop's input, the state every
//! task reads (`Shared`), the queues' bounds, and small helpers. The wiring
//! that starts the tasks is `node::run`; this module imports none of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::NodeConfig;
use super::{log_lock, metrics, throttle};
use crate::entry::{Epoch, Position, Seq};
use crate::replication::master::MasterEvent;
use crate::replication::role::{RoleView, VoteAnswer};
use crate::replication::secondary::SecondaryEvent;
use crate::replication::storage::StorageReport;
use crate::replication::{AppendRequest, ClientId, ConnId};
use crate::storage::Log;
use crate::wire::HealthReport;

/// How often the core is ticked: the resolution of every deadline.
pub(super) const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Most inputs handled before the loop writes, syncs and sends: the batch
/// that turns many concurrent appends into one write and one frame.
pub(super) const MAX_INPUTS_PER_ROUND: usize = 1024;

pub(crate) use crate::net::Outbox;

/// Inputs waiting for the loop on the control queue (links, syncer, the
/// master's connection on a secondary).
pub(super) const CONTROL_QUEUE: usize = 4096;

/// Inputs waiting for the loop on the requests queue (client connections).
pub(super) const REQUEST_QUEUE: usize = 4096;

/// Commands queued for one link. The core's window bounds what it sends to
/// a secondary, so this fills only if the link task is stuck.
pub(super) const LINK_QUEUE: usize = 1024;

/// What the node loop is told.
#[derive(Debug)]
pub(crate) enum Input {
    /// A client connection opened; answers go to `tx`.
    ClientOpened {
        client: ClientId,
        tx: Outbox,
        /// The protocol version its hello said: answers are given as it
        /// can decode them.
        version: u32,
    },
    /// A client connection closed.
    ClientClosed { client: ClientId },
    /// A client's appends, in the order it sent them (one `Append` frame,
    /// or an `Appends` frame's worth).
    Appends(Vec<AppendRequest>),
    /// A client asks for the health report.
    Health { tx: oneshot::Sender<HealthReport> },
    /// A client asks for a membership change.
    ChangeMembers {
        /// The client's connection, to answer on.
        client: ClientId,
        /// Its request id.
        req: u64,
        /// The change.
        change: crate::replication::MemberChange,
    },
    /// A client asks for a log to be created or deleted.
    ChangeLogs {
        /// The client's connection, to answer on.
        client: ClientId,
        /// Its request id.
        req: u64,
        /// The change.
        change: crate::replication::role::LogChange,
    },
    /// A client asks for a consumer group's position to be set, or a group
    /// deleted.
    ChangeGroups {
        /// The client's connection, to answer on.
        client: ClientId,
        /// Its request id.
        req: u64,
        /// The request.
        request: crate::replication::role::GroupRequest,
    },
    /// A client asks for the groups' positions (of one group, or of all):
    /// `None` while the core does not know them (right after a cut).
    Groups {
        /// Only this group's.
        group: Option<String>,
        /// Where the answer goes: `(group, log, position)`.
        #[allow(clippy::type_complexity)]
        tx: oneshot::Sender<Option<Vec<(String, crate::entry::LogId, crate::entry::Seq)>>>,
    },
    /// Something a link reported (master only).
    Link(MasterEvent),
    /// A master opened a replication connection and proved itself; the core
    /// accepts or refuses it, and the welcome or refusal goes to `tx`.
    MasterOpened {
        conn: ConnId,
        tx: Outbox,
        master: String,
        epoch: Epoch,
        /// The node protocol version its hello said.
        version: u32,
        /// The cluster its hello named: this node's from now on, if it
        /// knew none and takes this master.
        cluster: u64,
    },
    /// Something the master sent (secondary only).
    FromMaster(SecondaryEvent),
    /// A fact about the local log, from the write path or the syncer: the
    /// core decides what it means for acknowledgements.
    Storage(StorageReport),
    /// A candidate asks for this node's vote; the answer goes to `tx`.
    VoteRequested {
        conn: ConnId,
        tx: Outbox,
        candidate: String,
        epoch: Epoch,
        last: Position,
        pre: bool,
        /// The version the candidate's hello said: the answer is given as
        /// it can decode it.
        version: u32,
    },
    /// A node answered this node's request for votes.
    VoteAnswered(VoteAnswer),
    /// A node refused this one's hello: it knows a newer epoch.
    NewerEpoch { epoch: Epoch },
    /// Recording a vote failed (see `Event::VoteUnrecorded`).
    VoteUnrecorded { epoch: Epoch, reason: String },
    /// The compactor made a segment's compacted copy: the loop, which alone
    /// changes the log, puts it in place; the answer is the bytes freed.
    Compacted {
        copy: Box<crate::storage::compaction::Compacted>,
        tx: oneshot::Sender<std::io::Result<u64>>,
    },
}

/// What every task of a node shares.
pub(crate) struct Shared {
    /// The configuration.
    pub cfg: NodeConfig,
    /// The log: written by the loop only, read by `list` handlers.
    pub log: log_lock::SharedLog,
    /// To the node loop, served first: replication and storage.
    pub control: mpsc::Sender<Input>,
    /// To the node loop: client requests.
    pub requests: mpsc::Sender<Input>,
    /// Rate limit of repeated warnings.
    pub throttle: throttle::Throttle,
    /// Last sequence number visible to readers.
    pub visible: watch::Receiver<Seq>,
    /// Last sequence number known to be on a majority and stored here.
    pub committed: watch::Receiver<Seq>,
    /// Cancelled when the node shuts down.
    pub shutdown: CancellationToken,
    /// Connection and client ids.
    pub next_id: AtomicU64,
    /// What the core says this node is, for the clients' welcome.
    pub role: watch::Receiver<RoleView>,
    /// Connection tasks, waited for at shutdown.
    pub tracker: TaskTracker,
    /// Rounds the node loop has completed: proof of life for the watchdog.
    pub rounds: AtomicU64,
    /// What `--metrics-listen` serves.
    pub metrics: Arc<metrics::Metrics>,
    /// Reads of the log run in place, not on a blocking thread: under a
    /// simulation ([`crate::net::Net::SIMULATED`]).
    pub reads_in_place: bool,
    /// The id of the cluster this node belongs to (`storage::identity`),
    /// 0 until known: its hellos name it, and it refuses a master or
    /// candidate that names another.
    pub cluster_id: AtomicU64,
    /// The core acts on members its log records (a change was made): a
    /// node without a cluster id then names none in its hellos.
    pub members_from_log: std::sync::atomic::AtomicBool,
    /// The newest entries written, in memory: the master sends them to
    /// secondaries, and readers near the end of the log are served from
    /// them without the log's lock or a read of the disk. Changed by the
    /// node loop only, each change made so that a reader that holds this
    /// lock and reads a mark never takes an entry the log does not hold up
    /// to that mark (`requests::read_page`).
    pub tail: std::sync::Mutex<super::tail::Tail>,
    /// The named logs the core acts on, copied by the node loop whenever
    /// they change: a request names a log, and is taken for that log's id
    /// (the core refuses it if the log is gone by then).
    pub logs: std::sync::RwLock<Arc<crate::replication::catalog::Logs>>,
    /// Each log's last number deleted by its own retention, by trims at or
    /// before the committed mark (published by the compactor): no reader
    /// is given those messages, compacted or not yet.
    pub floors: std::sync::RwLock<Arc<std::collections::BTreeMap<crate::entry::LogId, Seq>>>,
}

impl Shared {
    /// A fresh id for a connection or client.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The id of the log named `name`, if it exists (as the core last
    /// said).
    pub(crate) fn log_id(&self, name: &str) -> Option<crate::entry::LogId> {
        self.logs.read().expect("logs lock").id_of(name)
    }

    /// The named logs (as the core last said).
    pub(crate) fn floor(&self, log: crate::entry::LogId) -> Seq {
        let floors = self.floors.read().expect("floors lock");
        floors.get(&log).copied().unwrap_or(0)
    }

    pub(crate) fn logs(&self) -> Arc<crate::replication::catalog::Logs> {
        self.logs.read().expect("logs lock").clone()
    }

    /// The tail, locked (held for a copy of its entries' handles at most).
    pub(crate) fn tail(&self) -> std::sync::MutexGuard<'_, super::tail::Tail> {
        self.tail.lock().expect("tail lock")
    }

    /// Runs `read` on the log under its read lock, on a blocking thread: a
    /// page read can wait on the disk, or on the node loop's write lock
    /// while it writes, and it must not hold the runtime's thread meanwhile
    /// (on one thread it would stop the node loop, every link and
    /// connection; with N workers, N such reads would stop them). Under a
    /// simulation it runs in place.
    pub(crate) async fn read_log<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Log) -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        if self.reads_in_place {
            return read(&self.log.read());
        }
        let shared = self.clone();
        let job = tokio::task::spawn_blocking(move || read(&shared.log.read()));
        match job.await {
            Ok(value) => value,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down, and this read with it.
            Err(e) => Err(std::io::Error::other(format!(
                "the read was cancelled: {e}"
            ))),
        }
    }
}

/// Milliseconds from a client's timeout field.
pub(crate) fn timeout_from_ms(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}
