//! Prometheus metrics, served on `--metrics-listen` as OpenMetrics text.
//!
//! Counters and histograms are updated where things happen: appends by the
//! node loop when it answers one, fsyncs by the syncer, refused handshakes
//! by the connection that refuses. Everything that is a state rather than
//! an event (role, epoch, the secondaries as the master sees them, the
//! log's size) is read at scrape time from the core's health report and
//! the log, so it is never stale and costs nothing between scrapes.
//!
//! The page itself is served by `metrics_page`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::wire::{AppendError, HealthReport, NodeRole, PeerStatus, WriteConcern};

/// An append's labels: how it ended and its write concern.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AppendLabels {
    outcome: &'static str,
    w: &'static str,
}

/// A write concern as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct WLabels {
    w: &'static str,
}

/// Why a handshake was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// A secondary, as the master sees it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    node: String,
}

/// A secondary and one status it may be in.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerStatusLabels {
    node: String,
    status: &'static str,
}

/// A role this node may have.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    role: &'static str,
}

/// Every metric of one node.
pub(crate) struct Metrics {
    registry: Registry,
    /// `w` label values, by number of nodes (index 0: out of range). A
    /// client cannot grow the label set: an impossible `w` is "invalid".
    w_labels: Vec<&'static str>,
    appends: Family<AppendLabels, Counter>,
    append_seconds: Family<WLabels, Histogram, fn() -> Histogram>,
    fsync_seconds: Histogram,
    /// Segment rolls made durable by the syncer.
    roll_seconds: Histogram,
    write_seconds: Histogram,
    refused: Family<ReasonLabels, Counter>,
    connections: Gauge,
    role: Family<RoleLabels, Gauge>,
    epoch: Gauge,
    entries: Gauge,
    log_bytes: Gauge,
    first_seq: Gauge,
    last_seq: Gauge,
    committed_seq: Gauge,
    reachable: Gauge,
    peer_acked: Family<PeerLabels, Gauge>,
    peer_lag: Family<PeerLabels, Gauge>,
    peer_learner: Family<PeerLabels, Gauge>,
    peer_status: Family<PeerStatusLabels, Gauge>,
    /// Each log's and group's figures.
    pub(super) logs: super::log_metrics::LogMetrics,
}

/// Latencies from 50 µs to about 27 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

impl Metrics {
    /// The metrics of a node of a cluster of `nodes`.
    // Long by nature: one registration after another, each with its help
    // text, the catalogue of what a node exposes read in one place.
    pub(crate) fn new(nodes: usize) -> Self {
        let w_labels = (0..=nodes)
            .map(|n| match n {
                0 => "invalid",
                // Once per node start, as many as the cluster has nodes.
                n => &*Box::leak(n.to_string().into_boxed_str()),
            })
            .collect();
        let mut registry = Registry::with_prefix("replog");
        let appends = Family::<AppendLabels, Counter>::default();
        registry.register(
            "appends",
            "Appends answered by this node, by outcome and write concern",
            appends.clone(),
        );
        let append_seconds = Family::<WLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register_with_unit(
            "append_latency",
            "Time from an append's arrival to its answer, by write concern",
            Unit::Seconds,
            append_seconds.clone(),
        );
        let fsync_seconds = latency_histogram();
        registry.register_with_unit(
            "fsync_latency",
            "Time one fdatasync of the log took",
            Unit::Seconds,
            fsync_seconds.clone(),
        );
        let roll_seconds = latency_histogram();
        registry.register_with_unit(
            "roll_sync_latency",
            "Time the syncer took to make one segment roll durable: sync the full segment, name the next one, sync the directory",
            Unit::Seconds,
            roll_seconds.clone(),
        );
        let write_seconds = latency_histogram();
        registry.register_with_unit(
            "log_write_latency",
            "Time the node loop spent writing one round of entries to the log (a segment roll's syncs only without a syncer, or when a roll is still pending at the next)",
            Unit::Seconds,
            write_seconds.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "refused_handshakes",
            "Connections refused at the handshake, by reason",
            refused.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let connections = gauge(
            &mut registry,
            "connections",
            "Connections open to this node (clients, master, candidates)",
        );
        let role = Family::<RoleLabels, Gauge>::default();
        registry.register(
            "role",
            "1 for this node's role (master or secondary)",
            role.clone(),
        );
        let epoch = gauge(&mut registry, "epoch", "This node's epoch");
        let entries = gauge(&mut registry, "log_entries", "Entries in this node's log");
        let log_bytes = Gauge::default();
        registry.register_with_unit(
            "log_size",
            "Size of this node's log on disk (records, or messages in memory)",
            Unit::Bytes,
            log_bytes.clone(),
        );
        let first_seq = gauge(
            &mut registry,
            "log_first_seq",
            "Sequence number of the first entry this node holds (0: none)",
        );
        let last_seq = gauge(
            &mut registry,
            "log_last_seq",
            "Sequence number of the last entry in this node's log",
        );
        let committed_seq = gauge(
            &mut registry,
            "committed_seq",
            "Last sequence number this node knows is on a majority",
        );
        let reachable = gauge(
            &mut registry,
            "reachable_nodes",
            "Nodes the master reaches, itself included (0 on a secondary)",
        );
        let peer_acked = Family::<PeerLabels, Gauge>::default();
        registry.register(
            "secondary_acked_seq",
            "On the master: last sequence number each secondary acknowledged as stored",
            peer_acked.clone(),
        );
        let peer_lag = Family::<PeerLabels, Gauge>::default();
        registry.register(
            "secondary_lag_entries",
            "On the master: entries each secondary is behind the master's log",
            peer_lag.clone(),
        );
        let peer_learner = Family::<PeerLabels, Gauge>::default();
        registry.register(
            "secondary_learner",
            "On the master: 1 for each secondary that is a learner (back as a new incarnation, it votes once it holds everything committed), 0 for the others",
            peer_learner.clone(),
        );
        let peer_status = Family::<PeerStatusLabels, Gauge>::default();
        registry.register(
            "secondary_status",
            "On the master: 1 for each secondary's status",
            peer_status.clone(),
        );
        let logs = super::log_metrics::LogMetrics::register(&mut registry);
        Metrics {
            logs,
            registry,
            w_labels,
            appends,
            append_seconds,
            fsync_seconds,
            roll_seconds,
            write_seconds,
            refused,
            connections,
            role,
            epoch,
            entries,
            log_bytes,
            first_seq,
            last_seq,
            committed_seq,
            reachable,
            peer_acked,
            peer_lag,
            peer_learner,
            peer_status,
        }
    }
}

/// An append's outcome as a label value.
pub(crate) fn outcome_label(result: &Result<u64, AppendError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(AppendError::BadRequest(_)) => "bad_request",
        Err(AppendError::KeyReused { .. }) => "key_reused",
        Err(AppendError::Deleted { .. }) => "deleted",
        Err(AppendError::TimedOut { .. }) => "timed_out",
        Err(AppendError::Refused { .. }) => "refused",
        Err(AppendError::NotMaster { .. }) => "not_master",
        Err(AppendError::Storage(_)) => "storage",
        Err(AppendError::ShuttingDown { .. }) => "shutting_down",
        Err(AppendError::Uncommitted { .. }) => "uncommitted",
        Err(AppendError::Unauthorized(_)) => "unauthorized",
        Err(AppendError::NoSuchLog { .. }) => "no_such_log",
        Err(AppendError::LogExists { .. }) => "log_exists",
        Err(AppendError::NoSuchGroup { .. }) => "no_such_group",
    }
}

/// Counts an open connection until dropped.
pub(crate) struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// A write concern as a label value: one of a fixed few.
    fn w_label(&self, w: WriteConcern) -> &'static str {
        match w {
            WriteConcern::Nodes(n) => (self.w_labels.get(n as usize)).unwrap_or(&self.w_labels[0]),
            WriteConcern::Majority => "majority",
            WriteConcern::All => "all",
        }
    }

    /// An append answered after `seconds`.
    pub(crate) fn append(&self, w: WriteConcern, outcome: &'static str, seconds: f64) {
        let w = self.w_label(w);
        self.append_seconds
            .get_or_create(&WLabels { w })
            .observe(seconds);
        self.appends
            .get_or_create(&AppendLabels { outcome, w })
            .inc();
    }

    /// One fdatasync that took `seconds`.
    pub(crate) fn fsync(&self, seconds: f64) {
        self.fsync_seconds.observe(seconds);
    }

    /// One segment roll made durable by the syncer in `seconds`.
    pub(crate) fn roll_sync(&self, seconds: f64) {
        self.roll_seconds.observe(seconds);
    }

    /// One round of entries written to the log in `seconds`.
    pub(crate) fn log_write(&self, seconds: f64) {
        self.write_seconds.observe(seconds);
    }

    /// A handshake refused: `reason` is one of a few fixed words.
    pub(crate) fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// A connection accepted; it counts until the guard is dropped.
    pub(crate) fn connection(&self) -> OpenConnection {
        self.connections.inc();
        OpenConnection(self.connections.clone())
    }

    /// The states read at scrape time.
    pub(super) fn set_state(&self, report: &HealthReport, log: LogFigures) {
        self.role.clear();
        let role = match report.role {
            NodeRole::Master => "master",
            NodeRole::Secondary => "secondary",
            NodeRole::Learner => "learner",
        };
        self.role.get_or_create(&RoleLabels { role }).set(1);
        self.epoch.set(report.epoch as i64);
        self.entries.set(log.entries as i64);
        self.log_bytes.set(log.bytes as i64);
        self.first_seq.set(log.first as i64);
        self.last_seq.set(log.last as i64);
        self.committed_seq.set(log.committed as i64);
        self.reachable.set(report.reachable as i64);
        self.peer_acked.clear();
        self.peer_lag.clear();
        self.peer_learner.clear();
        self.peer_status.clear();
        if report.role != NodeRole::Master {
            return;
        }
        for n in report.nodes.iter().filter(|n| n.role.follows()) {
            let node = PeerLabels { node: n.id.clone() };
            self.peer_acked.get_or_create(&node).set(n.acked as i64);
            self.peer_lag.get_or_create(&node).set(n.lag as i64);
            (self.peer_learner.get_or_create(&node)).set(i64::from(n.role == NodeRole::Learner));
            for status in ALL_STATUSES {
                let labels = PeerStatusLabels {
                    node: n.id.clone(),
                    status: status_label(status),
                };
                self.peer_status
                    .get_or_create(&labels)
                    .set(i64::from(n.status == status));
            }
        }
    }

    /// The exposition text.
    pub(super) fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }
}

/// Every status, so that a dashboard sees each as 0 or 1.
const ALL_STATUSES: [PeerStatus; 6] = [
    PeerStatus::Healthy,
    PeerStatus::Suspected,
    PeerStatus::Unhealthy,
    PeerStatus::Connecting,
    PeerStatus::Refused,
    PeerStatus::Mismatch,
];

/// A status as a label value (one word, unlike its display).
fn status_label(s: PeerStatus) -> &'static str {
    match s {
        PeerStatus::Healthy => "healthy",
        PeerStatus::Suspected => "suspected",
        PeerStatus::Unhealthy => "unhealthy",
        PeerStatus::Connecting => "connecting",
        PeerStatus::Refused => "refused",
        PeerStatus::Mismatch => "mismatch",
    }
}

/// What the log holds, read at scrape time.
pub(super) struct LogFigures {
    pub(super) entries: u64,
    pub(super) bytes: u64,
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) committed: u64,
}
