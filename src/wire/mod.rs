//! The wire: every frame that crosses a replog connection and the codec that
//! turns them into bytes and back.
//!
//! A connection is a stream of frames, each a 4-byte big-endian length
//! followed by a bincode 2 (serde, standard config) payload encoding one
//! [`Frame`]. This module is the only place that knows about bincode, so the
//! encoding can be swapped here without touching the rest of the crate.
//! `docs/protocol.md` describes every frame for people.
//!
//! - `frame.rs`: the frame enum and the types inside it.
//! - `codec.rs`: length prefix, size limit, bincode; where a frame is decoded.
//! - [`bounded`]: the field decoders that keep a lying length from costing
//!   more memory than the bytes that came.

pub mod bounded;
mod codec;
mod frame;

pub use codec::{FrameCodec, FrameError, DEFAULT_MAX_FRAME_BYTES};
pub use frame::{
    cost_in_frame, entry_cost, AppendAnswer, AppendError, AppendItem, Frame, GroupChangeRequest,
    GroupStatus, HealthReport, Hello, LogChangeRequest, LogDetail, LogStatus, MemberChangeRequest,
    NodeHealth, NodeRole, PeerStatus, ResetAtBase, Role, Welcome, WriteConcern,
    NODE_PROTOCOL_VERSION, OLDEST_PROTOCOL_VERSION, OLDEST_REPLICATION_VERSION, PROTOCOL_VERSION,
};
