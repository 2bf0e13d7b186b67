//! replog: a replicated, append-only log with a write concern chosen per
//! append.
//!
//! - [`entry`]: entries, sequence numbers, epochs and positions.
//! - [`wire`]: the frames and the length-delimited bincode codec.
//! - [`replication`]: master and secondary state machines, without I/O.

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
pub mod wire;
