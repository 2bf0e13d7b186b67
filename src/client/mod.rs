//! The client side, as a library: what the `replog` CLI is built on, and
//! what any Rust program can use.
//!
//! - [`connection`]: a connection to a node ([`Client`]), many requests in
//!   flight on it; finding the master.
//! - [`error`]: what a request can fail with ([`ClientError`]), its exit
//!   code and `--json` kind.
//! - [`bench`](mod@bench): the load generator behind `replog bench`, and
//!   `followers`, its `--readers`.
//! - [`verify`]: every node's log compared by digests (`replog verify`).

pub mod bench;
pub mod connection;
pub mod error;
mod followers;
pub mod verify;

pub use connection::{
    connect_master, find_master, new_key, AppendOptions, Client, ConnectOptions, Progress,
};
pub use error::ClientError;
