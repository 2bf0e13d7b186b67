//! The metrics of each named log and consumer group, read at scrape time
//! (`metrics_page`): a series per log and per group position, so at most
//! `--max-logs` + 1 and `--max-groups` of each.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::wire::GroupStatus;

/// A log, by name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabels {
    log: String,
}

/// A group's position in a log.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
    log: String,
}

/// One log as this node holds it, read at scrape time.
pub(super) struct LogFigure {
    pub(super) name: String,
    /// The first message number held (0: none).
    pub(super) first: u64,
    /// The last visible message number (0: none).
    pub(super) last: u64,
    /// The bytes of the messages held.
    pub(super) bytes: u64,
}

/// The families of each log's and group's figures.
pub(super) struct LogMetrics {
    messages: Family<LogLabels, Gauge>,
    last: Family<LogLabels, Gauge>,
    bytes: Family<LogLabels, Gauge>,
    position: Family<GroupLabels, Gauge>,
    lag: Family<GroupLabels, Gauge>,
}

impl LogMetrics {
    /// The families, registered.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let mut family = |name: &str, help: &str| {
            let f = Family::<LogLabels, Gauge>::default();
            registry.register(name, help, f.clone());
            f
        };
        let messages = family("log_messages", "Messages of each log this node holds");
        let last = family(
            "log_last_number",
            "Each log's last visible message number (its rate is the log's appends per second)",
        );
        let bytes = family(
            "log_message_bytes",
            "Bytes of each log's messages this node holds",
        );
        let mut family = |name: &str, help: &str| {
            let f = Family::<GroupLabels, Gauge>::default();
            registry.register(name, help, f.clone());
            f
        };
        let position = family(
            "group_position",
            "Each consumer group's position in each log it reads: the last message it has read",
        );
        let lag = family(
            "group_lag_messages",
            "Messages each consumer group has yet to read in each log it reads",
        );
        LogMetrics {
            messages,
            last,
            bytes,
            position,
            lag,
        }
    }

    /// The figures read at scrape time; series of logs and positions gone
    /// since go too.
    pub(super) fn set(&self, logs: &[LogFigure], groups: &[GroupStatus]) {
        for f in [&self.messages, &self.last, &self.bytes] {
            f.clear();
        }
        for l in logs {
            let labels = LogLabels {
                log: l.name.clone(),
            };
            let held = if l.first == 0 || l.last < l.first {
                0
            } else {
                l.last - l.first + 1
            };
            self.messages.get_or_create(&labels).set(held as i64);
            self.last.get_or_create(&labels).set(l.last as i64);
            self.bytes.get_or_create(&labels).set(l.bytes as i64);
        }
        self.position.clear();
        self.lag.clear();
        for g in groups {
            let labels = GroupLabels {
                group: g.group.clone(),
                log: g.log.clone(),
            };
            self.position.get_or_create(&labels).set(g.position as i64);
            let lag = g.last.saturating_sub(g.position);
            self.lag.get_or_create(&labels).set(lag as i64);
        }
    }
}
