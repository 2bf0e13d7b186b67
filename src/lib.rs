//! replog: a replicated, append-only log with a write concern chosen per
//! append.
//!
//! Three sides, one folder or file each:
//!
//! The node side, `replogd`:
//! - [`replication`]: one node's core in either role (it decides roles,
//!   quorum, membership, health, read-only, what to send, when an entry
//!   counts as stored and when to answer) over the master's and the
//!   secondary's state machines: events in, actions out, time passed in
//!   (`tests/core_is_pure.rs` fails if its non-test code names the runtime,
//!   the clock, the filesystem or the network).
//! - [`storage`]: the log, in memory or on disk (segments, checksums,
//!   recovery, healing), and the node's identity file.
//! - [`node`]: the tokio runtime of one node, which carries out the core's
//!   actions and decides nothing: the node loop, connections, the master's
//!   links to secondaries, group commit; and its configuration
//!   ([`node::config`]: cluster list and node settings, validated).
//! - [`daemon`]: the `replogd` command line, logging, signals, systemd.
//!
//! The client side, `replog`:
//! - [`client`]: the client library (a connection, its errors), and the
//!   load generator and log comparison behind `replog bench` and `verify`.
//! - [`cli`]: the `replog` command line, one file per subcommand.
//!
//! What both sides share:
//! - [`entry`]: entries, sequence numbers, epochs and positions;
//!   [`json`]: the JSON shapes of entries and health reports, which the CLI
//!   prints and the HTTP API answers with.
//! - [`wire`]: the frames and the length-delimited bincode codec (the only
//!   module that knows bincode).
//! - [`net`]: the transport, generic for the simulations, and the frame
//!   reader and writer; [`addr`]: node addresses (`HOST:PORT`).
//! - [`auth`]: the cluster key's challenge–response and client tokens;
//!   [`tls`]: optional TLS (rustls) for every connection.

// The node side.
pub mod daemon;
pub mod node;
pub mod replication;
pub mod storage;

// The client side.
pub mod cli;
pub mod client;

// Shared.
pub mod addr;
pub mod auth;
pub mod entry;
pub mod json;
pub mod net;
pub mod tls;
pub mod wire;
