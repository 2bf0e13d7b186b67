//! replog: a replicated, append-only log with a write concern chosen per
//! append.
//!
//! The heart, without I/O:
//! - [`entry`]: entries, sequence numbers, epochs and positions.
//! - [`wire`]: the frames and the length-delimited bincode codec (the only
//!   module that knows bincode).
//! - [`replication`]: one node's core in either role (it decides roles,
//!   quorum, health, read-only, what to send and when to answer) over the
//!   master's and the secondary's state machines: events in, actions out,
//!   time passed in (`tests/core_is_pure.rs` fails if its non-test code names the
//!   runtime, the clock, the filesystem or the network).
//!
//! Around it:
//! - [`storage`]: the log, in memory or on disk (segments, checksums,
//!   recovery).
//! - [`node`]: the tokio runtime of one node, which carries out the
//!   core's actions and decides nothing: the node loop, connections, the
//!   master's links to secondaries, group commit.
//! - [`net`]: the transport the runtime is generic over, and the frame
//!   writer task; [`addr`]: node addresses (`HOST:PORT`).
//! - [`config`]: cluster list and node configuration, validated.
//! - [`auth`]: the cluster key's challenge–response and client tokens;
//!   [`tls`]: optional TLS (rustls) for every connection.
//! - [`verify`]: `replog verify`, comparing the nodes' logs by digests;
//!   [`bench`](mod@bench): `replog bench`, a load generator for any cluster.
//! - [`client`]: the client library; [`cli`] and [`daemon`]: the two
//!   command lines (clap definitions shared with the man pages; the CLI
//!   one file per subcommand);
//!   [`systemd`]: readiness, watchdog and stopping notifications.

pub mod addr;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod entry;
pub mod net;
pub mod node;
pub mod replication;
pub mod storage;
pub mod systemd;
pub mod tls;
pub mod verify;
pub mod wire;
