//! The frame codec: a 4-byte big-endian length prefix (the framing of
//! tokio-util's `LengthDelimitedCodec`) around a bincode 2 payload.
//!
//! The prefix is read here rather than by `LengthDelimitedCodec`, which
//! reserves buffer room for the announced length as soon as it sees the
//! prefix: four bytes would cost a megabyte. This codec reserves nothing;
//! the read buffer grows only with bytes that actually arrive. A length over
//! the limit is refused at once, so a garbage or hostile prefix (say 4 GiB)
//! costs nothing but the connection it came on.
//!
//! Inside the payload, lengths are claims too. The payload is decoded
//! *borrowed*: strings and messages are checked against the bytes actually
//! left before they are copied, and sequences grow only as their elements
//! decode (see [`super::bounded`]), so no claimed length makes the decoder
//! reserve anything. On top of that, bincode's limit caps what one frame can
//! decode to at most 32 times its own size (bincode counts every integer at
//! its size in memory, so a one-byte varint counts 8).

use tokio_util::bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::Frame;

/// Default maximum frame length: 1 MiB of message plus room for the rest.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// Bytes of the length prefix.
const PREFIX: usize = 4;

/// Why a frame could not be read or written. Any of these closes the
/// connection it happened on, and only that one.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The payload is not a frame this version understands.
    #[error("malformed frame: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// A frame could not be encoded (too large for the limit).
    #[error("cannot encode frame: {0}")]
    Encode(String),
    /// The length prefix announces more than the limit.
    #[error("a frame of {len} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload decoded but left bytes over.
    #[error("malformed frame: {0} trailing bytes")]
    Trailing(usize),
}

/// Encodes and decodes [`Frame`]s with a hard limit on their length.
#[derive(Debug)]
pub struct FrameCodec {
    /// Limit on one frame's payload, in bytes.
    max: usize,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// What a frame may decode to in memory, as a multiple of its size:
/// integers count at their size in memory (a one-byte varint decodes to a
/// `u64`), so the decoded form is legitimately several times larger.
const DECODED_PER_BYTE: usize = 16;

/// Decodes with the smallest bincode limit (a power of two, as bincode's
/// limit is a constant) at or above `DECODED_PER_BYTE` times the payload:
/// every length and integer the payload claims is counted against it before
/// anything is reserved.
fn decode_limited(payload: &[u8]) -> Result<(Frame, usize), bincode::error::DecodeError> {
    let budget = payload.len().saturating_mul(DECODED_PER_BYTE);
    macro_rules! ladder {
        ($($bits:literal)*) => {
            $(
                if budget <= 1usize << $bits {
                    return bincode::serde::borrow_decode_from_slice(
                        payload,
                        bincode::config::standard().with_limit::<{ 1usize << $bits }>(),
                    );
                }
            )*
        };
    }
    ladder!(10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36);
    // No frame can be this large (the codec caps frames far lower).
    Err(bincode::error::DecodeError::LimitExceeded)
}

impl FrameCodec {
    /// A codec that refuses frames longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        FrameCodec {
            max: max_frame_bytes,
        }
    }

    /// Encodes one frame to its payload bytes (without the length prefix).
    pub fn to_payload(frame: &Frame) -> Result<Vec<u8>, FrameError> {
        bincode::serde::encode_to_vec(frame, config())
            .map_err(|e| FrameError::Encode(e.to_string()))
    }

    /// Decodes a payload (without the length prefix). Trailing bytes are an
    /// error: a frame is exactly one message.
    pub fn from_payload(payload: &[u8]) -> Result<Frame, FrameError> {
        let (frame, used) = decode_limited(payload)?;
        if used != payload.len() {
            return Err(FrameError::Trailing(payload.len() - used));
        }
        Ok(frame)
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        // `Ok(None)` is "not enough bytes yet", an expected state. Nothing is
        // reserved for the announced length: it is a claim.
        if src.len() < PREFIX {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        if src.len() < PREFIX + len {
            return Ok(None);
        }
        src.advance(PREFIX);
        let payload = src.split_to(len);
        Ok(Some(Self::from_payload(&payload)?))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode_ref(&frame, dst)
    }
}

impl FrameCodec {
    /// Encodes `frame` once, for several connections: a
    /// [`Frame::Encoded`] of its bytes (length prefix included), checked
    /// against `max_frame_bytes` as any frame written. A frame that cannot
    /// be encoded comes back as it was: the writer that tries it says why.
    pub fn encode_once(frame: Frame, max_frame_bytes: usize) -> Frame {
        let mut buf = BytesMut::new();
        match FrameCodec::new(max_frame_bytes).encode_ref(&frame, &mut buf) {
            Ok(()) => Frame::Encoded(buf.freeze()),
            Err(_) => frame,
        }
    }

    fn encode_ref(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        if let Frame::Encoded(bytes) = frame {
            // Checked when it was encoded: copied as it is.
            dst.extend_from_slice(bytes);
            return Ok(());
        }
        // Encoded in place, behind a prefix filled in once the length is
        // known: no payload buffer per frame, and one copy of each message.
        let start = dst.len();
        dst.extend_from_slice(&[0; PREFIX]);
        let mut out = tokio_util::bytes::BufMut::writer(&mut *dst);
        if let Err(e) = bincode::serde::encode_into_std_write(frame, &mut out, config()) {
            dst.truncate(start);
            return Err(FrameError::Encode(e.to_string()));
        }
        let len = dst.len() - start - PREFIX;
        if len > self.max {
            dst.truncate(start);
            return Err(FrameError::Encode(format!(
                "frame of {len} bytes is over the {} byte limit",
                self.max
            )));
        }
        // u32 big-endian length, then the payload.
        dst[start..start + PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;

    fn roundtrip(frame: Frame) {
        let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME_BYTES);
        let mut buf = BytesMut::new();
        codec.encode(frame.clone(), &mut buf).unwrap();
        // Feed it a byte at a time: every prefix is "not enough yet".
        let bytes = buf.to_vec();
        let mut partial = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            partial.extend_from_slice(&[*b]);
            let got = codec.decode(&mut partial).unwrap();
            if i + 1 < bytes.len() {
                assert!(got.is_none(), "decoded early at byte {i}");
            } else {
                assert_eq!(got, Some(frame.clone()));
            }
        }
    }

    #[test]
    fn a_frame_encoded_once_is_written_as_the_same_bytes_and_decodes_the_same() {
        let frame = Frame::Entries {
            entries: (1..=3)
                .map(|seq| Entry {
                    epoch: 2,
                    seq,
                    log: crate::entry::DEFAULT_LOG,
                    number: seq,
                    key: (seq == 2).then(|| "k".to_string()),
                    message: vec![seq as u8; 40].into(),
                })
                .collect(),
        };
        let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME_BYTES);
        let mut direct = BytesMut::new();
        codec.encode(frame.clone(), &mut direct).unwrap();
        let once = FrameCodec::encode_once(frame.clone(), DEFAULT_MAX_FRAME_BYTES);
        assert!(matches!(&once, Frame::Encoded(b) if b[..] == direct[..]));
        // Written twice (two secondaries), behind another frame.
        let mut out = BytesMut::new();
        codec
            .encode(Frame::Heartbeat { committed: 1 }, &mut out)
            .unwrap();
        codec.encode(once.clone(), &mut out).unwrap();
        codec.encode(once, &mut out).unwrap();
        assert_eq!(
            codec.decode(&mut out).unwrap(),
            Some(Frame::Heartbeat { committed: 1 })
        );
        assert_eq!(codec.decode(&mut out).unwrap(), Some(frame.clone()));
        assert_eq!(codec.decode(&mut out).unwrap(), Some(frame.clone()));
        assert!(out.is_empty());
        // Over the limit: the frame comes back as it was (and writing it
        // fails with the reason).
        let back = FrameCodec::encode_once(frame.clone(), 64);
        assert_eq!(back, frame);
        let err = FrameCodec::new(64).encode(back, &mut out).unwrap_err();
        assert!(err.to_string().contains("over the 64 byte limit"), "{err}");
        // Never serialized as such.
        assert!(FrameCodec::to_payload(&Frame::Encoded(direct.freeze())).is_err());
    }

    #[test]
    fn frame_numbers_do_not_move() {
        // Variant order is protocol (docs/protocol.md): the last frames of
        // the protocol keep their numbers, behind the skipped `Encoded`.
        let number = |frame: Frame| FrameCodec::to_payload(&frame).unwrap()[0];
        assert_eq!(number(Frame::Heartbeat { committed: 0 }), 12);
        assert_eq!(number(Frame::Appends { appends: vec![] }), 27);
        assert_eq!(number(Frame::Answers { answers: vec![] }), 28);
        let vote = Frame::LearnerVote {
            epoch: 1,
            term: 1,
            pre: false,
        };
        assert_eq!(number(vote), 29);
        let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME_BYTES);
        let mut buf = BytesMut::new();
        codec
            .encode(Frame::Answers { answers: vec![] }, &mut buf)
            .unwrap();
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Frame::Answers { answers: vec![] })
        );
    }

    #[test]
    fn frames_roundtrip_byte_by_byte() {
        roundtrip(Frame::Heartbeat { committed: 7 });
        roundtrip(Frame::Entries {
            entries: vec![Entry {
                epoch: 1,
                seq: 7,
                log: crate::entry::DEFAULT_LOG,
                number: 7,
                key: Some("k".into()),
                message: bytes::Bytes::from_static(b"h\xffllo\n\0"),
            }],
        });
        roundtrip(Frame::Ack { stored: u64::MAX });
    }

    /// A client older than version 7 cannot decode `Uncommitted`: it is
    /// told what that means to it, and nothing else changes.
    #[test]
    fn an_uncommitted_answer_reaches_an_older_client_as_may_or_may_not() {
        use crate::wire::AppendError;
        let uncommitted = AppendError::Uncommitted {
            seq: 4,
            stored_on: 1,
            timed_out: true,
        };
        assert_eq!(uncommitted.clone().for_version(7), uncommitted);
        for old in [5, 6] {
            assert_eq!(
                uncommitted.clone().for_version(old),
                AppendError::ShuttingDown { seq: None }
            );
        }
        let settled = AppendError::TimedOut {
            seq: 4,
            stored_on: 2,
        };
        assert_eq!(settled.clone().for_version(5), settled);
    }

    /// A client older than version 8 cannot decode `NodeRole::Learner`: a
    /// learner is shown to it as the secondary it also is.
    #[test]
    fn a_learner_in_a_health_report_reaches_an_older_client_as_a_secondary() {
        use crate::wire::{HealthReport, NodeHealth, NodeRole, PeerStatus};
        let node = |id: &str, role| NodeHealth {
            id: id.into(),
            addr: format!("{id}:1"),
            role,
            status: PeerStatus::Healthy,
            acked: 3,
            lag: 2,
            last_heard_ms: Some(5),
            detail: None,
        };
        let report = HealthReport {
            node: "b".into(),
            role: NodeRole::Learner,
            epoch: 2,
            stored: 3,
            master_addr: "a:1".into(),
            read_only: false,
            reachable: 0,
            needed: 2,
            nodes: vec![node("a", NodeRole::Master), node("b", NodeRole::Learner)],
            authenticated: false,
            encrypted: false,
        };
        assert_eq!(report.clone().for_version(8), report);
        let old = report.clone().for_version(7);
        assert_eq!(old.role, NodeRole::Secondary);
        let roles: Vec<NodeRole> = old.nodes.iter().map(|n| n.role).collect();
        assert_eq!(roles, [NodeRole::Master, NodeRole::Secondary]);
        assert_eq!(
            HealthReport {
                role: report.role,
                nodes: report.nodes.clone(),
                ..old
            },
            report,
            "nothing else changes"
        );
    }

    /// The examples in `docs/protocol.md`, byte for byte.
    #[test]
    fn the_documented_examples_encode_as_documented() {
        use crate::wire::{Hello, Role, PROTOCOL_VERSION};
        let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME_BYTES);
        let mut bytes = |f: Frame| {
            let mut buf = BytesMut::new();
            codec.encode(f, &mut buf).unwrap();
            buf.to_vec()
        };
        assert_eq!(PROTOCOL_VERSION, 12);
        let hello = Frame::Hello(Hello {
            version: 5,
            cluster: None,
            role: Role::Client,
            nonce: None,
            token: None,
        });
        assert_eq!(bytes(hello), [0, 0, 0, 6, 0, 5, 0, 0, 0, 0]);
        assert_eq!(
            bytes(Frame::Heartbeat { committed: 5 }),
            [0, 0, 0, 2, 0x0c, 0x05]
        );
        assert_eq!(
            bytes(Frame::Ack { stored: 300 }),
            [0, 0, 0, 4, 0x0d, 0xfb, 0x2c, 0x01]
        );
    }

    /// §6 of `docs/protocol.md`: frames of the example exchange, as the
    /// doc writes them (length prefix, `|`, payload), are what the codec
    /// makes.
    #[test]
    fn the_example_exchange_encodes_as_the_protocol_doc_shows() {
        use crate::wire::{Hello, Role, WriteConcern};
        let doc = include_str!("../../docs/protocol.md");
        let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME_BYTES);
        let mut line = |f: Frame| {
            let mut buf = BytesMut::new();
            codec.encode(f, &mut buf).unwrap();
            let hex: Vec<String> = buf.iter().map(|b| format!("{b:02X}")).collect();
            format!("{} | {}", hex[..4].join(" "), hex[4..].join(" "))
        };
        let hello = |version, cluster, role| {
            Frame::Hello(Hello {
                version,
                cluster,
                role,
                nonce: None,
                token: None,
            })
        };
        // The cluster's fingerprint, as §2 computes it.
        let fp = 0x7D7D_8140_F26A_D5F3;
        let master = Role::Master {
            id: "1".into(),
            epoch: 1,
        };
        let append = Frame::Append {
            req: 1,
            key: Some("5f0c3a9e7b2d4c18a6f0e9d2b1c47ae1".into()),
            w: WriteConcern::Nodes(2),
            timeout_ms: None,
            message: bytes::Bytes::from_static(b"hello"),
            progress: true,
        };
        let append_hex = "03 01 01 20 35 66 30 63 33 61 39 65 37 62 32 64 34 \
            63 31 38 61 36 66 30 65 39 64 32 62 31 63 34 37 61 \
            65 31 00 02 00 05 68 65 6C 6C 6F 01";
        assert_eq!(line(append), format!("00 00 00 2E | {append_hex}"));
        // §3's HealthReport of a one-node master, as the doc spells it.
        let addr = "127.0.0.1:7001".to_string();
        let report = crate::wire::HealthReport {
            node: "1".into(),
            role: crate::wire::NodeRole::Master,
            epoch: 1,
            stored: 1,
            master_addr: addr.clone(),
            read_only: false,
            reachable: 1,
            needed: 1,
            nodes: vec![crate::wire::NodeHealth {
                id: "1".into(),
                addr,
                role: crate::wire::NodeRole::Master,
                status: crate::wire::PeerStatus::Healthy,
                acked: 1,
                lag: 0,
                last_heard_ms: Some(0),
                detail: None,
            }],
            authenticated: false,
            encrypted: false,
        };
        let addr_hex = "0E 31 32 37 2E 30 2E 30 2E 31 3A 37 30 30 31";
        let shown = "09 02 | 01 31 | 00 | 01 | 01 | 0E \"127.0.0.1:7001\" | 00 | 01 | 01 | 01 | \
            01 31 | 0E \"127.0.0.1:7001\" | 00 | 00 | 01 | 00 | 01 00 | 00 | 00 | 00";
        let expected = shown
            .replace('"', "")
            .replace("0E 127.0.0.1:7001", addr_hex)
            .replace(" |", "");
        let got = line(Frame::HealthReport { req: 2, report });
        assert_eq!(got, format!("00 00 00 34 | {expected}"));
        assert!(
            doc.contains("sends the 52-byte payload `09 02 | 01 31 | 00 | 01 | 01 | 0E"),
            "docs/protocol.md §3 changed: update this test"
        );
        for frame in [
            hello(9, None, Role::Client),
            hello(8, Some(fp), master),
            Frame::Ack { stored: 1 },
            Frame::Appended { req: 1, seq: 1 },
        ] {
            let shown = line(frame);
            assert!(doc.contains(&shown), "docs/protocol.md lacks {shown}");
        }
    }

    #[test]
    fn oversized_length_prefix_is_refused_without_buffering() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge {
                len: 0xffff_ffff,
                max: 1024
            })
        ));
    }

    #[test]
    fn a_length_prefix_alone_reserves_nothing() {
        let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME_BYTES);
        let announced = (DEFAULT_MAX_FRAME_BYTES as u32).to_be_bytes();
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&announced);
        buf.extend_from_slice(&[0; 10]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.capacity(), 64, "no room reserved for a claimed length");
        assert_eq!(buf.len(), 14, "nothing consumed before the frame is whole");
    }

    #[test]
    fn garbage_payload_is_a_decode_error() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 0xfe, 0xfe, 0xfe][..]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Decode(_))));
    }

    #[test]
    fn encoding_over_the_limit_fails() {
        let mut codec = FrameCodec::new(16);
        let mut buf = BytesMut::new();
        let frame = Frame::Refused {
            reason: "x".repeat(100),
        };
        assert!(codec.encode(frame, &mut buf).is_err());
    }
}
