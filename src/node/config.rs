//! A node's configuration: the cluster list, timing, fsync policy and the
//! testing aids, validated once at start.

use std::path::PathBuf;
use std::time::Duration;

use crate::replication::Timing;

/// Default `--max-message-bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Default size at which a log segment is closed and a new one started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// `--failover`: whether a new master is elected when the master is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Failover {
    /// A majority of voters elects a new master within seconds.
    On,
    /// `--master` stays master: appends wait for it to come back.
    Off,
}

/// When the log calls `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FsyncPolicy {
    /// Acknowledge only after `fdatasync`; one sync covers every entry that
    /// arrived while the previous one ran (group commit).
    #[default]
    Always,
    /// Acknowledge once written; sync every few milliseconds.
    Batch,
    /// Acknowledge once written; leave syncing to the operating system.
    Never,
}

/// The cluster a node names in its hello when it knows no cluster id and
/// acts on members its log records (changes made under a release before
/// cluster ids): it has no `--cluster` list to compare, and the receiver
/// takes it as it did then (a real fingerprint is this by a chance of one
/// in 2^64).
pub const UNKNOWN_CLUSTER: u64 = 0;

/// `--on-damage`: what a node does with a log it finds damaged at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnDamage {
    /// Keep every record before the damage, move the rest to
    /// DATA_DIR/damaged/, and come back as a learner that takes what it
    /// lacks from the master (refused as with 'refuse' where no other node
    /// can give it: a node whose --cluster lists only itself and that did
    /// not --join, or the master under --failover off).
    #[default]
    Heal,
    /// Stop, naming the file and the byte offset.
    Refuse,
}

/// Why a `--cluster` list (or `--master`) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterListError {
    /// An entry that is not `ID=HOST:PORT`.
    #[error("--cluster: '{item}' is not ID=HOST:PORT{}", if *example { " (example: --cluster 1=127.0.0.1:7001,2=127.0.0.1:7002)" } else { "" })]
    NotAnEntry {
        /// The entry.
        item: String,
        /// Whether to show an example (no `=` at all).
        example: bool,
    },
    /// Entries separated by spaces.
    #[error("--cluster: '{item}' contains a space: separate the entries with commas (example: --cluster 1=127.0.0.1:7001,2=127.0.0.1:7002)")]
    Space {
        /// The entry.
        item: String,
    },
    /// A port that is not one.
    #[error("--cluster: in '{item}', '{port}' is not a port (1 to 65535)")]
    Port {
        /// The entry.
        item: String,
        /// What stood for the port.
        port: String,
    },
    /// An id given twice.
    #[error("--cluster: node id '{id}' appears twice")]
    TwiceId {
        /// The id.
        id: String,
    },
    /// An address given twice.
    #[error("--cluster: address '{addr}' appears twice")]
    TwiceAddr {
        /// The address.
        addr: String,
    },
    /// No entry.
    #[error("--cluster: the list is empty; give at least this node as ID=HOST:PORT")]
    Empty,
    /// A master that is not in the list.
    #[error("--master: '{id}' is not a node of --cluster")]
    Master {
        /// The id given.
        id: String,
    },
}

/// Why a size (`--segment-bytes`, `--retention-bytes`) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number.
    #[error("'{0}' is not a size (examples: 1048576, 512MiB, 10G)")]
    NotASize(String),
    /// A unit not known.
    #[error("'{text}': unknown unit '{unit}' (use K, M, G or T)")]
    Unit {
        /// The size as given.
        text: String,
        /// The unit.
        unit: String,
    },
    /// More bytes than 64 bits count.
    #[error("'{0}' is too large")]
    TooLarge(String),
}

/// The members of a cluster, as given to `--cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `(id, address)` of every node, in the order given.
    pub nodes: Vec<(String, String)>,
    /// Id of the master.
    pub master: String,
}

impl Cluster {
    /// Parses `ID=HOST:PORT[,ID=HOST:PORT...]`; the master defaults to the
    /// first node.
    pub fn parse(list: &str, master: Option<&str>) -> Result<Cluster, ClusterListError> {
        let mut nodes: Vec<(String, String)> = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((id, addr)) = item.split_once('=') else {
                return Err(ClusterListError::NotAnEntry {
                    item: item.into(),
                    example: true,
                });
            };
            let (id, addr) = (id.trim(), addr.trim());
            if item.chars().any(char::is_whitespace) {
                return Err(ClusterListError::Space { item: item.into() });
            }
            let Some((host, port)) = addr.rsplit_once(':') else {
                return Err(ClusterListError::NotAnEntry {
                    item: item.into(),
                    example: false,
                });
            };
            if id.is_empty() || host.is_empty() || host.contains('=') {
                return Err(ClusterListError::NotAnEntry {
                    item: item.into(),
                    example: false,
                });
            }
            if !matches!(port.parse::<u16>(), Ok(p) if p != 0) {
                return Err(ClusterListError::Port {
                    item: item.into(),
                    port: port.into(),
                });
            }
            if nodes.iter().any(|(i, _)| i == id) {
                return Err(ClusterListError::TwiceId { id: id.into() });
            }
            if nodes.iter().any(|(_, a)| a == addr) {
                return Err(ClusterListError::TwiceAddr { addr: addr.into() });
            }
            nodes.push((id.to_string(), addr.to_string()));
        }
        if nodes.is_empty() {
            return Err(ClusterListError::Empty);
        }
        let master = match master {
            Some(m) => {
                if !nodes.iter().any(|(i, _)| i == m) {
                    return Err(ClusterListError::Master { id: m.into() });
                }
                m.to_string()
            }
            None => nodes[0].0.clone(),
        };
        Ok(Cluster { nodes, master })
    }

    /// Address of node `id`.
    pub fn addr(&self, id: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, a)| a.as_str())
    }

    /// Address of the master.
    pub fn master_addr(&self) -> &str {
        self.addr(&self.master)
            .expect("master is validated to be a member")
    }

    /// The secondaries, in cluster order.
    pub fn secondaries(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .filter(|(i, _)| *i != self.master)
            .cloned()
            .collect()
    }

    /// The list as `--cluster` takes it.
    pub fn list(&self) -> String {
        let items: Vec<String> = self.nodes.iter().map(|(i, a)| format!("{i}={a}")).collect();
        items.join(",")
    }

    /// How `theirs` (another node's configuration, named `who`) differs
    /// from this one, in one sentence for `health`.
    pub fn difference(&self, who: &str, theirs: &Cluster) -> String {
        let mut parts = Vec::new();
        let only = |a: &Cluster, b: &Cluster| -> Vec<String> {
            (a.nodes.iter())
                .filter(|(id, _)| b.addr(id).is_none())
                .map(|(id, addr)| format!("{id}={addr}"))
                .collect()
        };
        let extra = only(theirs, self);
        if !extra.is_empty() {
            parts.push(format!(
                "it lists {} that this node does not",
                extra.join(",")
            ));
        }
        let missing = only(self, theirs);
        if !missing.is_empty() {
            parts.push(format!("it lacks {}", missing.join(",")));
        }
        for (id, addr) in &self.nodes {
            if let Some(other) = theirs.addr(id).filter(|a| a != addr) {
                parts.push(format!(
                    "it has {id}={other} where this node has {id}={addr}"
                ));
            }
        }
        if theirs.master != self.master {
            parts.push(format!(
                "its --master is {} where this node's is {}",
                theirs.master, self.master
            ));
        }
        if parts.is_empty() {
            parts.push("it lists the same nodes in another order".into());
        }
        format!(
            "node {who} was started with --cluster {} --master {}: {}; start every node with the same --cluster and --master",
            theirs.list(),
            theirs.master,
            parts.join("; ")
        )
    }

    /// A fingerprint of the membership, exchanged in the hello so that nodes
    /// started with different lists refuse each other.
    pub fn fingerprint(&self) -> u64 {
        let mut text = format!("master={};", self.master);
        for (id, addr) in &self.nodes {
            text.push_str(&format!("{id}={addr};"));
        }
        let lo = crc32c::crc32c(text.as_bytes()) as u64;
        let hi = crc32c::crc32c_append(0x5eed, text.as_bytes()) as u64;
        (hi << 32) | lo
    }
}

/// Parses a size: a number of bytes, optionally with a unit (`K`, `M`, `G`,
/// `T`, powers of 1024; `KiB`, `KB` and the like are read the same way).
pub fn parse_bytes(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| SizeError::NotASize(text.into()))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(SizeError::Unit {
                text: text.into(),
                unit: unit.into(),
            })
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| SizeError::TooLarge(text.into()))
}

/// Why a node's configuration is refused (what clap cannot check): each
/// names the flags to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `--id` is not one of `--cluster`'s.
    #[error("--id: '{id}' is not in --cluster (its ids are {ids}); give this node's own id")]
    NotInCluster {
        /// The id given.
        id: String,
        /// The list's ids, comma-separated.
        ids: String,
    },
    /// Retention deletes files, and a log in memory has none.
    #[error("--retention-bytes and --retention-age delete segment files: give --data-dir")]
    RetentionInMemory,
    /// Segments smaller than a page.
    #[error("--segment-bytes: {0} is too small; give at least 4096 (default 64MiB)")]
    SegmentTooSmall(u64),
    /// No heartbeat interval.
    #[error("--heartbeat-interval: must be more than 0")]
    ZeroHeartbeat,
    /// Two deadlines in the wrong order.
    #[error("{flag} ({}) {rule} {other} ({})", humantime::format_duration(*value), humantime::format_duration(*other_value))]
    Order {
        /// The deadline refused.
        flag: &'static str,
        /// Its value.
        value: std::time::Duration,
        /// How it must compare.
        rule: &'static str,
        /// The deadline it is compared with.
        other: &'static str,
        /// That one's value.
        other_value: std::time::Duration,
    },
    /// An election timeout in which too few heartbeats fit.
    #[error("--election-timeout ({}) must be at least twice --heartbeat-interval ({}); five times or more is usual", humantime::format_duration(*election_timeout), humantime::format_duration(*heartbeat_interval))]
    ElectionTimeout {
        /// `--election-timeout`.
        election_timeout: std::time::Duration,
        /// `--heartbeat-interval`.
        heartbeat_interval: std::time::Duration,
    },
    /// Not a probability.
    #[error("--fail-rate: {0} is not a probability between 0 and 1")]
    FailRate(f64),
    /// A limit out of its range.
    #[error("{flag}: {value} is out of range; use {range}")]
    OutOfRange {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: u64,
        /// The range allowed.
        range: &'static str,
    },
    /// A connection deadline of 0.
    #[error("--hello-timeout and --idle-timeout must be more than 0")]
    ZeroTimeouts,
}

impl ConfigError {
    fn order(
        (flag, value): (&'static str, std::time::Duration),
        rule: &'static str,
        (other, other_value): (&'static str, std::time::Duration),
    ) -> ConfigError {
        ConfigError::Order {
            flag,
            value,
            rule,
            other,
            other_value,
        }
    }
}

/// Everything one node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id (a member of `cluster`).
    pub id: String,
    /// The cluster.
    pub cluster: Cluster,
    /// Where the log lives; `None` keeps it in memory.
    pub data_dir: Option<PathBuf>,
    /// When the log syncs.
    pub fsync: FsyncPolicy,
    /// Heartbeats, health deadlines and retry backoff.
    pub timing: Timing,
    /// Largest message accepted.
    pub max_message_bytes: usize,
    /// Log segment size.
    pub segment_bytes: u64,
    /// Testing aid: delay every apply on a secondary.
    pub replicate_delay: Duration,
    /// Testing aid: probability of answering the master with an error after
    /// storing.
    pub fail_rate: f64,
    /// Seed for jitter and fail-rate draws; random if `None`.
    pub seed: Option<u64>,
    /// What one peer may make this node spend.
    pub limits: Limits,
    /// Entries whose request keys are remembered (`--dedup-window`).
    pub dedup_window: u64,
    /// What retention deletes (`--retention-bytes`, `--retention-age`).
    pub retention: crate::storage::retention::Retention,
    /// Where Prometheus metrics are served (`--metrics-listen`), if at all.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Where the HTTP API is served (`--http-listen`), if at all.
    pub http_listen: Option<std::net::SocketAddr>,
    /// Testing aid: while this file exists, the log's writes and syncs fail
    /// as if the disk were full.
    pub fail_storage_while: Option<PathBuf>,
    /// The cluster key(s): node-to-node connections must prove them.
    pub cluster_keys: Option<crate::auth::ClusterKeys>,
    /// TLS for every connection, if configured.
    pub tls: Option<crate::tls::NodeTls>,
    /// Token clients need to append (and may read with).
    pub client_token: Option<String>,
    /// Token clients need to list and ask for health, if reads are guarded.
    pub read_token: Option<String>,
    /// Elect a new master when the master is lost (`--failover on`).
    pub failover: bool,
    /// What to do with a log found damaged at start (`--on-damage`).
    pub on_damage: OnDamage,
    /// Joining a running cluster (`--join`): the nodes given. The node
    /// knows no member until its first master sends it the log, and
    /// `cluster` holds only itself.
    pub join: Option<Vec<String>>,
}

/// Limits on what peers can make a node spend. Each is logged when it bites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most open connections (clients, and connections that have not said
    /// hello yet); one more is refused with a reason and closed.
    pub max_connections: usize,
    /// Most requests one client connection may have unanswered; past it the
    /// node stops reading that connection until answers go out.
    pub max_inflight: usize,
    /// A connection that has not said hello by then is closed.
    pub hello_timeout: Duration,
    /// A client connection with nothing in flight that sends nothing for
    /// this long is closed.
    pub idle_timeout: Duration,
    /// Most named logs besides `default` (`--max-logs`): a creation past
    /// it is refused with the reason.
    pub max_logs: usize,
    /// Most consumer group positions, a group counting once per log it
    /// has read (`--max-groups`): a commit that would add one past it is
    /// refused with the reason.
    pub max_groups: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_inflight: 1024,
            hello_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(300),
            max_logs: 1024,
            max_groups: 1024,
        }
    }
}

impl NodeConfig {
    /// Why this node does not heal a damaged log, if it does not: healing
    /// drops what follows the damage, which only another node can give back.
    pub fn refuses_to_heal(&self) -> Option<&'static str> {
        if self.on_damage == OnDamage::Refuse {
            Some("--on-damage refuse")
        } else if self.cluster.nodes.len() < 2 && self.join.is_none() {
            Some("its --cluster lists no other node to take what follows the damage from")
        } else if !self.failover && self.cluster.master == self.id {
            Some("under --failover off the master's log is the truth, and the secondaries would be cut to a healed one")
        } else {
            None
        }
    }

    /// A configuration with defaults for node `id` of `cluster`.
    pub fn new(id: &str, cluster: Cluster) -> Self {
        NodeConfig {
            id: id.to_string(),
            cluster,
            data_dir: None,
            fsync: FsyncPolicy::Always,
            timing: Timing::default(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            replicate_delay: Duration::ZERO,
            fail_rate: 0.0,
            seed: None,
            limits: Limits::default(),
            dedup_window: crate::replication::keys::DEFAULT_DEDUP_WINDOW,
            metrics_listen: None,
            http_listen: None,
            retention: Default::default(),
            fail_storage_while: None,
            cluster_keys: None,
            tls: None,
            client_token: None,
            read_token: None,
            // As replogd's --failover defaults.
            failover: true,
            on_damage: OnDamage::Heal,
            join: None,
        }
    }

    /// Checks what clap cannot: membership and the order of the deadlines.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster.addr(&self.id).is_none() {
            let ids: Vec<&str> = self.cluster.nodes.iter().map(|(i, _)| i.as_str()).collect();
            return Err(ConfigError::NotInCluster {
                id: self.id.clone(),
                ids: ids.join(", "),
            });
        }
        if self.retention.is_on() && self.data_dir.is_none() {
            return Err(ConfigError::RetentionInMemory);
        }
        if self.segment_bytes < 4096 {
            return Err(ConfigError::SegmentTooSmall(self.segment_bytes));
        }
        let t = &self.timing;
        if t.heartbeat_interval.is_zero() {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if t.suspect_after <= t.heartbeat_interval {
            return Err(ConfigError::order(
                ("--suspect-after", t.suspect_after),
                "must be longer than",
                ("--heartbeat-interval", t.heartbeat_interval),
            ));
        }
        if t.unhealthy_after < t.suspect_after {
            return Err(ConfigError::order(
                ("--unhealthy-after", t.unhealthy_after),
                "must not be shorter than",
                ("--suspect-after", t.suspect_after),
            ));
        }
        // Several heartbeats must fit in an election timeout, or a healthy
        // master's followers would keep electing another.
        if self.failover && t.election_timeout < 2 * t.heartbeat_interval {
            return Err(ConfigError::ElectionTimeout {
                election_timeout: t.election_timeout,
                heartbeat_interval: t.heartbeat_interval,
            });
        }
        if t.retry_max < t.retry_base {
            return Err(ConfigError::order(
                ("--retry-max", t.retry_max),
                "must not be shorter than",
                ("--retry-base", t.retry_base),
            ));
        }
        if !(0.0..=1.0).contains(&self.fail_rate) {
            return Err(ConfigError::FailRate(self.fail_rate));
        }
        let l = &self.limits;
        if l.max_connections == 0 || l.max_connections > 1_000_000 {
            return Err(ConfigError::OutOfRange {
                flag: "--max-connections",
                value: l.max_connections as u64,
                range: "1 to 1000000",
            });
        }
        if l.max_logs > 1_000_000 {
            return Err(ConfigError::OutOfRange {
                flag: "--max-logs",
                value: l.max_logs as u64,
                range: "0 to 1000000",
            });
        }
        if l.max_groups > 1_000_000 {
            return Err(ConfigError::OutOfRange {
                flag: "--max-groups",
                value: l.max_groups as u64,
                range: "0 to 1000000",
            });
        }
        if l.max_inflight == 0 || l.max_inflight > 1_000_000 {
            return Err(ConfigError::OutOfRange {
                flag: "--max-inflight",
                value: l.max_inflight as u64,
                range: "1 to 1000000",
            });
        }
        if self.dedup_window == 0 || self.dedup_window > 100_000_000 {
            return Err(ConfigError::OutOfRange {
                flag: "--dedup-window",
                value: self.dedup_window,
                range: "1 to 100000000 entries",
            });
        }
        if l.hello_timeout.is_zero() || l.idle_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeouts);
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > 256 * 1024 * 1024 {
            return Err(ConfigError::OutOfRange {
                flag: "--max-message-bytes",
                value: self.max_message_bytes as u64,
                range: "1 to 268435456",
            });
        }
        Ok(())
    }

    /// The frame limit that follows from the message limit, and from the
    /// named logs and groups' positions a reset may carry (every name at
    /// its longest).
    pub fn max_frame_bytes(&self) -> usize {
        use crate::replication::catalog::MAX_NAME_BYTES;
        // `ID NAME` and a log's last number; `GROUP LOG NUMBER`.
        let (log, position) = (MAX_NAME_BYTES + 32, MAX_NAME_BYTES + 34);
        let at_base = self.limits.max_logs * log + self.limits.max_groups * position;
        self.max_message_bytes.max(at_base) + 64 * 1024
    }

    /// Whether this node is the master.
    pub fn is_master(&self) -> bool {
        self.id == self.cluster.master
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cluster_list_with_spaces_or_a_bad_entry_is_an_error_naming_the_entry() {
        let err = Cluster::parse("1=a:1 2=b:2", None).unwrap_err().to_string();
        assert_eq!(
            err,
            "--cluster: '1=a:1 2=b:2' contains a space: separate the entries with commas (example: --cluster 1=127.0.0.1:7001,2=127.0.0.1:7002)"
        );
        // Spaces around commas are fine.
        let c = Cluster::parse(" 1=a:1 , 2=b:2 ", None).unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(
            Cluster::parse("1=a:x", None).unwrap_err().to_string(),
            "--cluster: in '1=a:x', 'x' is not a port (1 to 65535)"
        );
        assert_eq!(
            Cluster::parse("1=a:70000", None).unwrap_err().to_string(),
            "--cluster: in '1=a:70000', '70000' is not a port (1 to 65535)"
        );
        assert_eq!(
            Cluster::parse("1=a:0", None).unwrap_err().to_string(),
            "--cluster: in '1=a:0', '0' is not a port (1 to 65535)"
        );
        for bad in ["1=:7001", "=a:1", "1=a", "1=a=b:1"] {
            assert_eq!(
                Cluster::parse(bad, None).unwrap_err().to_string(),
                format!("--cluster: '{bad}' is not ID=HOST:PORT"),
                "{bad}"
            );
        }
        // IPv6 literals keep their colons.
        let c = Cluster::parse("1=[::1]:7001", None).unwrap();
        assert_eq!(c.nodes[0].1, "[::1]:7001");
    }

    use super::*;

    #[test]
    fn cluster_parses_and_defaults_master_to_first() {
        let c = Cluster::parse("a=127.0.0.1:1, b=127.0.0.1:2", None).unwrap();
        assert_eq!(c.master, "a");
        assert_eq!(c.master_addr(), "127.0.0.1:1");
        assert_eq!(
            c.secondaries(),
            vec![("b".to_string(), "127.0.0.1:2".to_string())]
        );
    }

    #[test]
    fn cluster_errors_name_the_problem() {
        assert!(Cluster::parse("a=1.2.3.4:5,a=1.2.3.4:6", None)
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert!(Cluster::parse("nonsense", None)
            .unwrap_err()
            .to_string()
            .contains("ID=HOST:PORT"));
        assert!(Cluster::parse("a=h:1", Some("z"))
            .unwrap_err()
            .to_string()
            .contains("--master"));
    }

    #[test]
    fn an_election_timeout_must_leave_room_for_heartbeats() {
        let mut cfg = NodeConfig::new("a", Cluster::parse("a=h:1,b=h:2", None).unwrap());
        cfg.timing.election_timeout = cfg.timing.heartbeat_interval;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("--election-timeout"), "{err}");
        // Without failover there are no elections to time.
        cfg.failover = false;
        assert_eq!(cfg.validate(), Ok(()));
        cfg.failover = true;
        cfg.timing.election_timeout = 2 * cfg.timing.heartbeat_interval;
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("10G"), Ok(10 << 30));
        assert_eq!(parse_bytes("3 kb"), Ok(3 << 10));
        assert!(parse_bytes("ten")
            .unwrap_err()
            .to_string()
            .contains("not a size"));
        assert!(parse_bytes("5X")
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
        assert!(parse_bytes("99999999999T")
            .unwrap_err()
            .to_string()
            .contains("too large"));
    }

    #[test]
    fn a_difference_names_what_differs() {
        let ours = Cluster::parse("a=h:1,b=h:2,c=h:3", None).unwrap();
        let theirs = Cluster::parse("a=h:1,b=h:9,d=h:4", Some("b")).unwrap();
        assert_eq!(
            ours.difference("b", &theirs),
            "node b was started with --cluster a=h:1,b=h:9,d=h:4 --master b: it lists d=h:4 that this node does not; it lacks c=h:3; it has b=h:9 where this node has b=h:2; its --master is b where this node's is a; start every node with the same --cluster and --master"
        );
        let reordered = Cluster::parse("b=h:2,a=h:1,c=h:3", Some("a")).unwrap();
        assert!(ours
            .difference("b", &reordered)
            .contains("it lists the same nodes in another order"));
    }

    /// The worked example of `docs/protocol.md` §2.
    #[test]
    fn the_fingerprint_is_the_one_the_protocol_doc_computes() {
        let c = Cluster::parse("1=127.0.0.1:7001,2=127.0.0.1:7002", Some("1")).unwrap();
        assert_eq!(c.fingerprint(), 0x7D7D_8140_F26A_D5F3);
        let doc = include_str!("../../docs/protocol.md");
        assert!(doc.contains("`0x7D7D8140F26AD5F3`"));
    }

    #[test]
    fn fingerprint_differs_with_membership() {
        let a = Cluster::parse("a=h:1,b=h:2", None).unwrap();
        let b = Cluster::parse("a=h:1,b=h:3", None).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
    }

    #[test]
    fn a_node_heals_damage_only_where_another_node_can_give_back_what_follows_it() {
        let three = Cluster::parse("a=h:1,b=h:2,c=h:3", None).unwrap();
        let mut cfg = NodeConfig::new("b", three.clone());
        assert_eq!(cfg.refuses_to_heal(), None);
        cfg.on_damage = OnDamage::Refuse;
        assert_eq!(cfg.refuses_to_heal(), Some("--on-damage refuse"));
        let alone = NodeConfig::new("a", Cluster::parse("a=h:1", None).unwrap());
        assert!(alone.refuses_to_heal().unwrap().contains("no other node"));
        // Joining, it lists only itself and heals all the same.
        let mut joined = alone.clone();
        joined.join = Some(vec!["b:1".into()]);
        assert_eq!(joined.refuses_to_heal(), None);
        // Under --failover off the master refuses, its secondaries heal.
        let mut master = NodeConfig::new("a", three.clone());
        master.failover = false;
        assert!(master.refuses_to_heal().unwrap().contains("--failover off"));
        let mut secondary = NodeConfig::new("b", three);
        secondary.failover = false;
        assert_eq!(secondary.refuses_to_heal(), None);
    }
}
