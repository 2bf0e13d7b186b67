//! Random frames of every kind, and damaged or random payloads, for the
//! fuzz tests.
#![allow(dead_code)]

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::Rng;
use rand::RngCore;
use replog::entry::{Entry, Position};
use replog::wire::{
    AppendAnswer, AppendError, Frame, FrameCodec, GroupChangeRequest, GroupStatus, HealthReport,
    Hello, LogChangeRequest, LogDetail, NodeHealth, NodeRole, PeerStatus, Role, Welcome,
    WriteConcern,
};

pub fn text(rng: &mut SmallRng) -> String {
    let n = rng.gen_range(0..12);
    (0..n).map(|_| rng.gen_range('a'..='z')).collect()
}

pub fn blob(rng: &mut SmallRng) -> Bytes {
    let n = rng.gen_range(0..40);
    (0..n).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>().into()
}

pub fn entry(rng: &mut SmallRng) -> Entry {
    Entry {
        epoch: rng.gen_range(0..4),
        seq: rng.gen_range(0..1 << 20),
        log: rng.gen_range(0..3),
        number: rng.gen_range(0..1 << 20),
        key: rng.gen_bool(0.5).then(|| text(rng)),
        message: blob(rng),
    }
}

/// A random `Append` frame.
pub fn append(rng: &mut SmallRng) -> Frame {
    Frame::Append {
        req: rng.gen(),
        key: rng.gen_bool(0.5).then(|| text(rng)),
        w: match rng.gen_range(0..3) {
            0 => WriteConcern::Nodes(rng.gen_range(0..5)),
            1 => WriteConcern::Majority,
            _ => WriteConcern::All,
        },
        timeout_ms: rng.gen_bool(0.5).then(|| rng.gen()),
        message: blob(rng),
        progress: rng.gen(),
    }
}

/// A random append error.
pub fn append_error(rng: &mut SmallRng) -> AppendError {
    match rng.gen_range(0..13) {
        0 => AppendError::BadRequest(text(rng)),
        10 => AppendError::NoSuchLog { log: text(rng) },
        11 => AppendError::LogExists { log: text(rng) },
        12 => AppendError::NoSuchGroup { group: text(rng) },
        1 => AppendError::TimedOut {
            seq: rng.gen(),
            stored_on: rng.gen(),
        },
        2 => AppendError::Refused {
            reachable: rng.gen(),
            needed: rng.gen(),
        },
        3 => AppendError::NotMaster {
            master_addr: text(rng),
        },
        4 => AppendError::Storage(text(rng)),
        5 => AppendError::Unauthorized(text(rng)),
        6 => AppendError::KeyReused { seq: rng.gen() },
        7 => AppendError::Deleted {
            seq: rng.gen(),
            stored_on: rng.gen(),
        },
        8 => AppendError::Uncommitted {
            seq: rng.gen(),
            stored_on: rng.gen(),
            timed_out: rng.gen(),
        },
        _ => AppendError::ShuttingDown {
            seq: rng.gen_bool(0.5).then(|| rng.gen()),
        },
    }
}

/// A random frame of any kind.
pub fn frame(rng: &mut SmallRng) -> Frame {
    match rng.gen_range(0..16) {
        0 => Frame::Hello(Hello {
            version: rng.gen_range(0..5),
            cluster: rng.gen_bool(0.5).then(|| rng.gen()),
            role: if rng.gen_bool(0.4) {
                Role::Client
            } else if rng.gen_bool(0.3) {
                Role::Candidate { id: text(rng) }
            } else {
                Role::Master {
                    id: text(rng),
                    epoch: rng.gen(),
                }
            },
            nonce: rng.gen_bool(0.5).then(|| rng.gen()),
            token: rng.gen_bool(0.5).then(|| text(rng)),
        }),
        1 => Frame::Welcome(Welcome {
            node: text(rng),
            role: NodeRole::Secondary,
            master_addr: text(rng),
            last: Position {
                epoch: rng.gen(),
                seq: rng.gen(),
            },
            stored: rng.gen(),
            max_message_bytes: rng.gen(),
            epochs: (0..rng.gen_range(0..4))
                .map(|_| (rng.gen(), rng.gen()))
                .collect(),
            first: rng.gen(),
        }),
        2 => Frame::Refused { reason: text(rng) },
        3 => append(rng),
        4 => Frame::List {
            req: rng.gen(),
            from: rng.gen(),
            max: rng.gen(),
            wait: rng.gen(),
            committed: rng.gen(),
        },
        5 => Frame::Health { req: rng.gen() },
        6 => Frame::Appended {
            req: rng.gen(),
            seq: rng.gen(),
        },
        7 => Frame::AppendFailed {
            req: rng.gen(),
            error: append_error(rng),
        },
        8 => Frame::Listed {
            req: rng.gen(),
            entries: (0..rng.gen_range(0..5))
                .map(|_| (rng.gen(), blob(rng)))
                .collect(),
            visible: rng.gen(),
        },
        9 => Frame::HealthReport {
            req: rng.gen(),
            report: HealthReport {
                node: text(rng),
                role: NodeRole::Master,
                epoch: rng.gen(),
                stored: rng.gen(),
                master_addr: text(rng),
                read_only: rng.gen(),
                reachable: rng.gen(),
                needed: rng.gen(),
                nodes: (0..rng.gen_range(0..4))
                    .map(|_| NodeHealth {
                        id: text(rng),
                        addr: text(rng),
                        role: NodeRole::Secondary,
                        status: PeerStatus::Suspected,
                        acked: rng.gen(),
                        lag: rng.gen(),
                        last_heard_ms: rng.gen_bool(0.5).then(|| rng.gen()),
                        detail: rng.gen_bool(0.5).then(|| text(rng)),
                    })
                    .collect(),
                authenticated: rng.gen(),
                encrypted: rng.gen(),
            },
        },
        10 => Frame::Sync {
            truncate_after: rng.gen_bool(0.5).then(|| rng.gen()),
        },
        11 => Frame::Entries {
            entries: (0..rng.gen_range(0..5)).map(|_| entry(rng)).collect(),
        },
        12 => match rng.gen_range(0..22) {
            19 => Frame::LogChange {
                req: rng.gen(),
                change: LogChangeRequest::CreateRetained {
                    name: text(rng),
                    retention_bytes: rng.gen_bool(0.5).then(|| rng.gen()),
                    retention_age_secs: rng.gen_bool(0.5).then(|| rng.gen()),
                },
            },
            20 => Frame::LogsDetailed {
                req: rng.gen(),
                logs: (0..rng.gen_range(0..4))
                    .map(|_| LogDetail {
                        name: text(rng),
                        id: rng.gen(),
                        first: rng.gen(),
                        last: rng.gen(),
                        bytes: rng.gen(),
                        retention_bytes: rng.gen_bool(0.5).then(|| rng.gen()),
                        retention_age_secs: rng.gen_bool(0.5).then(|| rng.gen()),
                        trimmed: rng.gen(),
                    })
                    .collect(),
            },
            14 => Frame::UseLog {
                req: rng.gen(),
                log: text(rng),
            },
            15 => Frame::ListLogs { req: rng.gen() },
            16 => Frame::GroupChange {
                req: rng.gen(),
                change: if rng.gen_bool(0.5) {
                    GroupChangeRequest::Set {
                        group: text(rng),
                        log: text(rng),
                        number: rng.gen(),
                        expect: rng.gen_bool(0.5).then(|| rng.gen()),
                    }
                } else {
                    GroupChangeRequest::Delete { group: text(rng) }
                },
            },
            17 => Frame::ListGroups {
                req: rng.gen(),
                group: rng.gen_bool(0.5).then(|| text(rng)),
            },
            18 => Frame::GroupsListed {
                req: rng.gen(),
                groups: (0..rng.gen_range(0..4))
                    .map(|_| GroupStatus {
                        group: text(rng),
                        log: text(rng),
                        position: rng.gen(),
                        last: rng.gen(),
                    })
                    .collect(),
            },
            13 => Frame::LearnerVote {
                epoch: rng.gen(),
                term: rng.gen(),
                pre: rng.gen(),
            },
            0 => Frame::Challenge {
                nonce: rng.gen(),
                proofs: (0..rng.gen_range(0..3)).map(|_| rng.gen()).collect(),
            },
            1 => Frame::Proof { proof: rng.gen() },
            2 => Frame::VoteRequest {
                epoch: rng.gen(),
                last: Position {
                    epoch: rng.gen(),
                    seq: rng.gen(),
                },
                pre: rng.gen(),
            },
            3 => Frame::VoteReply {
                epoch: rng.gen(),
                term: rng.gen(),
                granted: rng.gen(),
                pre: rng.gen(),
            },
            4 => Frame::NewerEpoch {
                epoch: rng.gen(),
                reason: text(rng),
            },
            5 => Frame::Mismatch {
                cluster: text(rng),
                master: text(rng),
            },
            6 => Frame::Digest {
                req: rng.gen(),
                from: rng.gen_range(0..100),
                to: rng.gen(),
                step: rng.gen(),
            },
            7 => Frame::Digests {
                req: rng.gen(),
                upto: rng.gen(),
                digests: (0..rng.gen_range(0..4)).map(|_| rng.gen()).collect(),
            },
            8 => Frame::Progress {
                req: rng.gen(),
                seq: rng.gen(),
                needed: rng.gen(),
                missing: (0..rng.gen_range(0..3)).map(|_| text(rng)).collect(),
            },
            9 => Frame::Reset {
                base: Position {
                    epoch: rng.gen(),
                    seq: rng.gen(),
                },
                epochs: (0..rng.gen_range(0..4))
                    .map(|_| (rng.gen(), rng.gen()))
                    .collect(),
            },
            10 => Frame::Appends {
                appends: (0..rng.gen_range(0..4))
                    .map(|_| append(rng).into_append_item().expect("an Append"))
                    .collect(),
            },
            11 => Frame::Answers {
                answers: (0..rng.gen_range(0..4))
                    .map(|_| AppendAnswer {
                        req: rng.gen(),
                        result: if rng.gen_bool(0.5) {
                            Ok(rng.gen())
                        } else {
                            Err(append_error(rng))
                        },
                    })
                    .collect(),
            },
            _ => Frame::Heartbeat {
                committed: rng.gen(),
            },
        },
        13 => Frame::Ack { stored: rng.gen() },
        14 => Frame::Nack {
            stored: rng.gen(),
            reason: text(rng),
        },
        _ => Frame::HeartbeatReply { stored: rng.gen() },
    }
}

/// A bincode varint claiming an absurd length (2^60 or more).
pub fn huge_claim(rng: &mut SmallRng) -> Vec<u8> {
    let mut v = vec![253u8]; // u64 follows
    v.extend_from_slice(&(rng.gen_range(1u64 << 60..u64::MAX)).to_le_bytes());
    v
}

/// The payload of a valid frame, damaged in one of several ways.
pub fn mutated(rng: &mut SmallRng) -> Vec<u8> {
    let mut p = FrameCodec::to_payload(&frame(rng)).unwrap();
    for _ in 0..rng.gen_range(1..4) {
        let at = rng.gen_range(0..=p.len());
        match rng.gen_range(0..6) {
            0 if !p.is_empty() => {
                let i = rng.gen_range(0..p.len());
                p[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => p.truncate(at),
            2 => {
                let claim = huge_claim(rng);
                let end = (at + rng.gen_range(0..3)).min(p.len());
                p.splice(at..end, claim);
            }
            3 => p.insert(at, rng.gen()),
            4 if at < p.len() => {
                p.remove(at);
            }
            _ => {
                let noise: Vec<u8> = (0..rng.gen_range(1..8)).map(|_| rng.gen()).collect();
                p.splice(at..at, noise);
            }
        }
    }
    p
}

pub fn noise(rng: &mut SmallRng) -> Vec<u8> {
    (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect()
}

/// Cases to run: `REPLOG_FUZZ_CASES`, or `default`.
pub fn fuzz_cases(default: u64) -> u64 {
    std::env::var("REPLOG_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The seed: `REPLOG_FUZZ_SEED`, or a random one (printed on failure).
pub fn fuzz_seed() -> u64 {
    std::env::var("REPLOG_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().next_u64())
}
