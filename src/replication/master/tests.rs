//! Unit tests of the master's core: exact action lists.

use super::*;
use crate::replication::membership::Membership;
use crate::replication::numbers::Numbers;
use crate::wire::WriteConcern;
use std::time::Duration;
use MasterAction as A;
use MasterEvent as E;

/// `cfg` with its master and secondaries all voters.
pub(super) fn with_all_voters(cfg: MasterConfig) -> MasterConfig {
    let nodes: Vec<(String, String)> = std::iter::once(cfg.me.clone())
        .chain(cfg.secondaries.iter().cloned())
        .collect();
    MasterConfig {
        members: Membership::voters(&nodes),
        ..cfg
    }
}

/// The local log reports everything up to `upto` synced.
pub(super) fn synced(upto: Seq) -> MasterEvent {
    E::Storage(StorageReport::Synced { gen: 0, upto })
}

pub(super) fn master(secondaries: usize) -> (Master, Instant) {
    let cfg = MasterConfig {
        me: ("m".into(), "m:1".into()),
        secondaries: (0..secondaries)
            .map(|i| (format!("s{i}"), format!("s{i}:1")))
            .collect(),
        timing: Timing::default(),
        max_message_bytes: 100,
        window: 1000,
        batch: 100,
        seed: 1,
        durability: Durability::Synced,
        failover: false,
        members: Membership::voters(&[]),
        config_seq: 0,
        configs: Vec::new(),
    };
    let cfg = with_all_voters(cfg);
    let state = LogState {
        catalog: Default::default(),
        groups: Default::default(),
        epoch: 1,
        last: Position::default(),
        epochs: Vec::new(),
        keys: KeyWindow::new(1000, 1),
        vote: None,
        committed: 0,
        base: Default::default(),
        learner: false,
        configs: Vec::new(),
        numbers: Default::default(),
    };
    let now = Instant::now();
    (Master::new(cfg, state, now), now)
}

/// A master with one secondary ("s0"), the given window and batch, over a
/// log in the given state.
pub(super) fn master_over(window: u64, batch: u64, state: LogState) -> Master {
    let cfg = MasterConfig {
        me: ("m".into(), "m:1".into()),
        secondaries: vec![("s0".into(), "s0:1".into())],
        timing: Timing::default(),
        max_message_bytes: 100,
        window,
        batch,
        seed: 1,
        durability: Durability::Synced,
        failover: false,
        members: Membership::voters(&[]),
        config_seq: 0,
        // As the role's core passes them (the members stay all voters).
        configs: state.configs.clone(),
    };
    let cfg = with_all_voters(cfg);
    Master::new(cfg, state, Instant::now())
}

pub(super) fn step(m: &mut Master, now: Instant, e: MasterEvent) -> Vec<MasterAction> {
    let mut out = Vec::new();
    m.step(now, e, &mut out);
    out
}

pub(super) fn flush(m: &mut Master, now: Instant) -> Vec<MasterAction> {
    let mut out = Vec::new();
    m.flush(now, &mut out);
    out
}

pub(super) fn connect_all(m: &mut Master, now: Instant) {
    for peer in 0..m.peers.len() {
        let out = step(
            m,
            now,
            E::PeerConnected {
                peer,
                conn: peer as u64 + 10,
                last: Position::default(),
                stored: 0,
                epochs: vec![],
                version: crate::wire::NODE_PROTOCOL_VERSION,
            },
        );
        assert_eq!(
            out,
            vec![A::Send {
                peer,
                conn: peer as u64 + 10,
                frame: Frame::Sync {
                    truncate_after: None
                }
            }]
        );
    }
    // A new connection gets a heartbeat, the committed mark, at the next
    // tick (a learner needs it to know when it holds everything committed).
    assert_eq!(m.poll_timeout(now), Some(now));
    let beats: Vec<_> = (0..m.peers.len())
        .map(|peer| A::Send {
            peer,
            conn: peer as u64 + 10,
            frame: Frame::Heartbeat { committed: 0 },
        })
        .collect();
    assert_eq!(step(m, now, E::Tick), beats);
}

// Events and actions on the connections `connect_all` opens (peer i on
// connection i + 10).
pub(super) fn ack_from(peer: usize, stored: Seq) -> MasterEvent {
    E::Ack {
        peer,
        conn: peer as u64 + 10,
        stored,
    }
}

pub(super) fn heartbeat_reply(peer: usize, stored: Seq) -> MasterEvent {
    E::HeartbeatReply {
        peer,
        conn: peer as u64 + 10,
        stored,
        learner: false,
    }
}

pub(super) fn sent(peer: usize, from: Seq, to: Seq) -> MasterAction {
    A::SendEntries {
        peer,
        conn: peer as u64 + 10,
        from,
        to,
    }
}

pub(super) fn append(client: u64, req: u64, w: WriteConcern, msg: &str) -> MasterEvent {
    E::Append(AppendRequest {
        log: crate::entry::DEFAULT_LOG,
        client,
        req,
        key: None,
        w,
        timeout: None,
        message: bytes::Bytes::copy_from_slice(msg.as_bytes()),
        progress: false,
    })
}

/// The log's report of its numbers after a cut.
pub(super) fn numbers(pairs: &[(crate::entry::LogId, Seq)]) -> MasterEvent {
    E::Storage(StorageReport::Numbers {
        pairs: pairs.to_vec(),
        groups: Default::default(),
    })
}

pub(super) fn entry(seq: Seq, msg: &str) -> Entry {
    Entry {
        epoch: 1,
        seq,
        log: crate::entry::DEFAULT_LOG,
        number: seq,
        key: None,
        message: bytes::Bytes::copy_from_slice(msg.as_bytes()),
    }
}

pub(super) fn ok(client: u64, req: u64, seq: Seq) -> MasterAction {
    A::Reply {
        client,
        req,
        result: Ok(seq),
    }
}

#[test]
fn append_completes_at_exactly_the_wth_ack() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    assert_eq!(
        step(&mut m, now, append(7, 1, WriteConcern::Nodes(3), "a")),
        vec![A::Persist(entry(1, "a"))]
    );
    // Written, it goes to both secondaries while the master's own sync
    // runs (parallel replication)...
    assert_eq!(flush(&mut m, now), vec![sent(0, 1, 1), sent(1, 1, 1)]);
    assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
    assert_eq!(step(&mut m, now, synced(1)), vec![]);
    assert_eq!(step(&mut m, now, ack_from(1, 1)), vec![ok(7, 1, 1)]);
}

#[test]
fn secondaries_acks_do_not_complete_an_append_before_the_master_has_synced_it() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    step(&mut m, now, append(7, 1, WriteConcern::Nodes(3), "a"));
    step(&mut m, now, append(7, 2, WriteConcern::Nodes(2), "b"));
    assert_eq!(flush(&mut m, now), vec![sent(0, 1, 2), sent(1, 1, 2)]);
    // Both secondaries have synced both: three copies of seq 1, but the
    // master's is not durable yet, and the master always counts.
    assert_eq!(step(&mut m, now, ack_from(0, 2)), vec![]);
    assert_eq!(step(&mut m, now, ack_from(1, 2)), vec![]);
    assert_eq!(m.committed(), 0);
    assert_eq!(step(&mut m, now, synced(2)), vec![ok(7, 2, 2), ok(7, 1, 1)]);
    assert_eq!(m.committed(), 2);
}

#[test]
fn acks_for_entries_never_sent_on_this_connection_do_not_count() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    step(&mut m, now, synced(1));
    // A stale ack (from before a reconnection, say) claims seq 1, which
    // was not sent on this connection yet: it must not count.
    let stale = ack_from(0, 1);
    assert_eq!(step(&mut m, now, stale.clone()), vec![]);
    assert_eq!(flush(&mut m, now).len(), 2);
    assert_eq!(step(&mut m, now, stale), vec![ok(1, 1, 1)]);
}

#[test]
fn acks_out_of_order_across_secondaries_release_the_right_waiters() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    step(&mut m, now, append(1, 2, WriteConcern::Nodes(3), "b"));
    step(&mut m, now, append(1, 3, WriteConcern::Nodes(2), "c"));
    step(&mut m, now, synced(3));
    assert_eq!(flush(&mut m, now), vec![sent(0, 1, 3), sent(1, 1, 3)]);
    // Secondary 1 is ahead of secondary 0.
    assert_eq!(
        step(&mut m, now, ack_from(1, 3)),
        vec![ok(1, 1, 1), ok(1, 3, 3)]
    );
    assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
    assert_eq!(step(&mut m, now, ack_from(0, 2)), vec![ok(1, 2, 2)]);
    // A stale ack (lower) changes nothing.
    assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
}

#[test]
fn impossible_w_and_oversized_messages_are_bad_requests() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    for w in [WriteConcern::Nodes(4), WriteConcern::Nodes(0)] {
        let out = step(&mut m, now, append(1, 9, w, "a"));
        assert!(
            matches!(
                &out[..],
                [A::Reply {
                    result: Err(AppendError::BadRequest(_)),
                    ..
                }]
            ),
            "{out:?}"
        );
    }
    let out = step(
        &mut m,
        now,
        append(1, 9, WriteConcern::All, &"x".repeat(101)),
    );
    assert!(matches!(
        &out[..],
        [A::Reply {
            result: Err(AppendError::BadRequest(_)),
            ..
        }]
    ));
    assert_eq!(m.last(), 0, "nothing was appended");
}

#[test]
fn without_quorum_appends_are_refused_and_nothing_is_assigned() {
    let (mut m, start) = master(2);
    // Past the start-up period: secondaries never heard are Unhealthy.
    let now = start + Timing::default().unhealthy_after + Duration::from_millis(1);
    let out = step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a"));
    assert_eq!(
        out,
        vec![A::Reply {
            client: 1,
            req: 1,
            result: Err(AppendError::Refused {
                reachable: 1,
                needed: 2
            })
        }]
    );
    assert_eq!(m.last(), 0);
    // One secondary back is a majority of three.
    step(
        &mut m,
        now,
        E::PeerConnected {
            peer: 0,
            conn: 1,
            last: Position::default(),
            stored: 0,
            epochs: vec![],
            version: crate::wire::NODE_PROTOCOL_VERSION,
        },
    );
    assert_eq!(
        step(&mut m, now, append(1, 2, WriteConcern::Nodes(1), "a")),
        vec![A::Persist(entry(1, "a"))]
    );
}

#[test]
fn a_retried_key_gets_the_original_sequence_number() {
    let (mut m, now) = master(0);
    let keyed = |req| {
        E::Append(AppendRequest {
            log: crate::entry::DEFAULT_LOG,
            client: 1,
            req,
            key: Some("k".into()),
            w: WriteConcern::Nodes(1),
            timeout: None,
            message: "a".into(),
            progress: false,
        })
    };
    assert_eq!(step(&mut m, now, keyed(1)).len(), 1);
    assert_eq!(step(&mut m, now, synced(1)), vec![ok(1, 1, 1)]);
    assert_eq!(step(&mut m, now, keyed(2)), vec![ok(1, 2, 1)]);
    assert_eq!(m.last(), 1);
}

#[test]
fn a_key_reused_for_another_message_is_refused_naming_its_entry() {
    let (mut m, now) = master(0);
    let keyed = |req, message: &'static str| {
        E::Append(AppendRequest {
            log: crate::entry::DEFAULT_LOG,
            client: 1,
            req,
            key: Some("k".into()),
            w: WriteConcern::Nodes(1),
            timeout: None,
            message: message.into(),
            progress: false,
        })
    };
    assert_eq!(step(&mut m, now, keyed(1, "a")).len(), 1);
    assert_eq!(step(&mut m, now, synced(1)), vec![ok(1, 1, 1)]);
    assert_eq!(
        step(&mut m, now, keyed(2, "b")),
        vec![A::Reply {
            client: 1,
            req: 2,
            result: Err(AppendError::KeyReused { seq: 1 }),
        }]
    );
    // Nothing was appended, and the key still names the first message.
    assert_eq!(m.last(), 1);
    assert_eq!(step(&mut m, now, keyed(3, "a")), vec![ok(1, 3, 1)]);
}

#[test]
fn timeout_reports_the_sequence_number_and_the_entry_stays() {
    // Two nodes, the entry on the master alone: a static master's log is
    // the truth, so the answer promises it; with failover the master alone
    // is no majority, and the answer promises nothing (a failover may cut
    // the entry).
    for failover in [false, true] {
        let (mut m, now) = master(1);
        m.cfg.failover = failover;
        connect_all(&mut m, now);
        let ev = E::Append(AppendRequest {
            log: crate::entry::DEFAULT_LOG,
            client: 1,
            req: 1,
            key: None,
            w: WriteConcern::Nodes(2),
            timeout: Some(Duration::from_millis(100)),
            message: "a".into(),
            progress: false,
        });
        step(&mut m, now, ev);
        step(&mut m, now, synced(1));
        assert_eq!(
            step(&mut m, now + Duration::from_millis(50), E::Tick),
            vec![]
        );
        let out = step(&mut m, now + Duration::from_millis(101), E::Tick);
        let answer = if failover {
            AppendError::Uncommitted {
                seq: 1,
                stored_on: 1,
                timed_out: true,
            }
        } else {
            AppendError::TimedOut {
                seq: 1,
                stored_on: 1,
            }
        };
        assert!(
            out.contains(&A::Reply {
                client: 1,
                req: 1,
                result: Err(answer)
            }),
            "failover {failover}: {out:?}"
        );
        assert_eq!(m.last(), 1);
        // A late ack answers nobody twice.
        assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
    }
}

#[test]
fn nack_rewinds_and_resends_after_backoff_or_at_once_on_heartbeat_reply() {
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    step(&mut m, now, append(1, 2, WriteConcern::Nodes(2), "b"));
    step(&mut m, now, synced(2));
    flush(&mut m, now);
    step(
        &mut m,
        now,
        E::Nack {
            peer: 0,
            conn: 10,
            stored: 1,
            reason: "x".into(),
        },
    );
    // Paused by the backoff: nothing to send yet.
    assert_eq!(flush(&mut m, now), vec![]);
    let later = now + Timing::default().retry_base * 2;
    step(&mut m, later, E::Tick);
    assert_eq!(flush(&mut m, later), vec![sent(0, 2, 2)]);
    // Another failure, then a heartbeat reply resumes at once.
    step(
        &mut m,
        later,
        E::Nack {
            peer: 0,
            conn: 10,
            stored: 1,
            reason: "x".into(),
        },
    );
    assert_eq!(flush(&mut m, later), vec![]);
    step(&mut m, later, heartbeat_reply(0, 1));
    assert_eq!(flush(&mut m, later), vec![sent(0, 2, 2)]);
}

#[test]
fn a_silent_secondary_becomes_unhealthy_and_is_redialled() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    let t = Timing::default();
    let h = |m: &Master, at| m.health(at).iter().map(|n| n.status).collect::<Vec<_>>();
    assert_eq!(h(&m, now)[1], PeerStatus::Healthy);
    step(&mut m, now + t.suspect_after, heartbeat_reply(1, 0));
    let suspect = now + t.suspect_after + Duration::from_millis(1);
    assert_eq!(h(&m, suspect)[1], PeerStatus::Suspected);
    assert_eq!(h(&m, suspect)[2], PeerStatus::Healthy);
    let dead = now + t.unhealthy_after + Duration::from_millis(1);
    let out = step(&mut m, dead, E::Tick);
    assert!(out.contains(&A::Reconnect { peer: 0, conn: 10 }), "{out:?}");
    assert_eq!(h(&m, dead)[1], PeerStatus::Unhealthy);
    // Stale events from the dropped connection are ignored.
    assert_eq!(step(&mut m, dead, ack_from(0, 0)), vec![]);
    assert_eq!(h(&m, dead)[1], PeerStatus::Unhealthy);
}

#[test]
fn a_secondary_with_a_suffix_the_master_never_stored_is_cut_back() {
    let cfg = MasterConfig {
        me: ("m".into(), "m:1".into()),
        secondaries: vec![("s".into(), "s:1".into())],
        timing: Timing::default(),
        max_message_bytes: 100,
        window: 1000,
        batch: 100,
        seed: 1,
        durability: Durability::Synced,
        failover: false,
        members: Membership::voters(&[]),
        config_seq: 0,
        configs: Vec::new(),
    };
    let cfg = with_all_voters(cfg);
    // The log holds 1..=5 of epoch 1 and 6..=7 of epoch 2; this is epoch 3.
    let state = LogState {
        catalog: Default::default(),
        groups: Default::default(),
        epoch: 3,
        last: Position { epoch: 2, seq: 7 },
        epochs: vec![(1, 1), (2, 6)],
        keys: KeyWindow::new(100, 8),
        vote: None,
        committed: 0,
        base: Default::default(),
        learner: false,
        configs: Vec::new(),
        numbers: Default::default(),
    };
    let mut m = Master::new(cfg, state, Instant::now());
    let now = Instant::now();
    // The secondary got 1..=8 of epoch 1: 6..=8 never made it to the master's disk.
    let out = step(
        &mut m,
        now,
        E::PeerConnected {
            peer: 0,
            conn: 1,
            last: Position { epoch: 1, seq: 8 },
            stored: 8,
            epochs: vec![(1, 1)],
            version: crate::wire::NODE_PROTOCOL_VERSION,
        },
    );
    assert_eq!(
        out,
        vec![A::Send {
            peer: 0,
            conn: 1,
            frame: Frame::Sync {
                truncate_after: Some(5)
            }
        }]
    );
    assert_eq!(
        flush(&mut m, now),
        vec![A::SendEntries {
            peer: 0,
            conn: 1,
            from: 6,
            to: 7
        }]
    );
    // A secondary that agrees is not cut.
    let out = step(
        &mut m,
        now,
        E::PeerConnected {
            peer: 0,
            conn: 2,
            last: Position { epoch: 2, seq: 7 },
            stored: 7,
            epochs: vec![(1, 1), (2, 6)],
            version: crate::wire::NODE_PROTOCOL_VERSION,
        },
    );
    assert_eq!(
        out,
        vec![A::Send {
            peer: 0,
            conn: 2,
            frame: Frame::Sync {
                truncate_after: None
            }
        }]
    );
    assert_eq!(flush(&mut m, now), vec![]);
}

#[test]
fn at_start_appends_wait_for_connecting_secondaries_instead_of_being_refused() {
    let (mut m, now) = master(2);
    assert_eq!(
        m.health(now)[1..]
            .iter()
            .map(|n| n.status)
            .collect::<Vec<_>>(),
        [PeerStatus::Connecting, PeerStatus::Connecting]
    );
    assert!(!m.read_only(now), "quorum is unknown, not lost");
    // Held in arrival order, nothing assigned yet.
    assert_eq!(
        step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a")),
        vec![]
    );
    assert_eq!(
        step(&mut m, now, append(2, 1, WriteConcern::Nodes(2), "b")),
        vec![]
    );
    assert_eq!(m.last(), 0);
    // One secondary connects: a majority of three. Both are admitted,
    // in order, before anything that arrives after.
    let t = now + Duration::from_millis(30);
    let out = step(
        &mut m,
        t,
        E::PeerConnected {
            peer: 1,
            conn: 4,
            last: Position::default(),
            stored: 0,
            epochs: vec![],
            version: crate::wire::NODE_PROTOCOL_VERSION,
        },
    );
    assert_eq!(
        out,
        vec![
            A::Send {
                peer: 1,
                conn: 4,
                frame: Frame::Sync {
                    truncate_after: None
                }
            },
            A::Persist(entry(1, "a")),
            A::Persist(entry(2, "b")),
        ]
    );
    assert_eq!(step(&mut m, t, synced(2)), vec![ok(1, 1, 1)]);
    assert_eq!(
        m.health(t)[1..]
            .iter()
            .map(|n| n.status)
            .collect::<Vec<_>>(),
        [PeerStatus::Connecting, PeerStatus::Healthy]
    );
}

#[test]
fn a_secondary_that_refuses_the_hello_is_unhealthy_at_once_not_connecting() {
    let (mut m, now) = master(2);
    let refused = |peer| E::PeerRefused {
        peer,
        reason: "a wrong key".into(),
        mismatch: false,
    };
    assert_eq!(step(&mut m, now, refused(0)), vec![]);
    assert_eq!(m.health(now)[1].status, PeerStatus::Refused);
    assert_eq!(m.health(now)[2].status, PeerStatus::Connecting);
    step(&mut m, now, refused(1));
    // Nobody left who could make a quorum: refused now, not held.
    assert!(m.read_only(now));
    assert!(matches!(
        &step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a"))[..],
        [A::Reply {
            result: Err(AppendError::Refused { .. }),
            ..
        }]
    ));
}

#[test]
fn held_appends_are_refused_once_the_start_up_period_passes_without_quorum() {
    let (mut m, now) = master(2);
    let with_timeout = E::Append(AppendRequest {
        log: crate::entry::DEFAULT_LOG,
        client: 3,
        req: 1,
        key: None,
        w: WriteConcern::Nodes(1),
        timeout: Some(Duration::from_millis(500)),
        message: "t".into(),
        progress: false,
    });
    assert_eq!(
        step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a")),
        vec![]
    );
    assert_eq!(step(&mut m, now, with_timeout), vec![]);
    let refused = |client| A::Reply {
        client,
        req: 1,
        result: Err(AppendError::Refused {
            reachable: 1,
            needed: 2,
        }),
    };
    // The client's own timeout passes first: that one alone is refused
    // (nothing was appended for it).
    let t = now + Duration::from_millis(500);
    assert_eq!(step(&mut m, t, E::Tick), vec![refused(3)]);
    let end = now + Timing::default().unhealthy_after;
    assert_eq!(step(&mut m, end, E::Tick), vec![]);
    // Past the start-up period nobody came: quorum is lost.
    let after = end + Duration::from_millis(1);
    assert!(m.read_only(after));
    assert_eq!(step(&mut m, after, E::Tick), vec![refused(1)]);
    assert_eq!(m.last(), 0);
    assert_eq!(
        m.health(after)[1].status,
        PeerStatus::Unhealthy,
        "never heard, and the period is over"
    );
}

#[test]
fn a_secondary_ahead_of_a_master_that_lost_its_data_is_refused_not_cut() {
    // A fresh master (epoch 1, empty log) meets a secondary holding 9
    // entries of epoch 3: cutting it would destroy them.
    let (mut m, now) = master(1);
    let ahead = E::PeerConnected {
        peer: 0,
        conn: 5,
        last: Position { epoch: 3, seq: 9 },
        stored: 9,
        epochs: vec![(3, 1)],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    let out = step(&mut m, now, ahead);
    assert!(
        matches!(&out[..], [A::Diverged { peer: 0, conn: 5, reason }] if reason.contains("lost or replaced")),
        "{out:?}"
    );
    assert_eq!(m.health(now)[1].status, PeerStatus::Unhealthy);
    // Same epoch, longer log than the master's: also impossible.
    let longer = E::PeerConnected {
        peer: 0,
        conn: 6,
        last: Position { epoch: 1, seq: 2 },
        stored: 2,
        epochs: vec![(1, 1)],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    assert!(matches!(
        &step(&mut m, now, longer)[..],
        [A::Diverged { .. }]
    ));
}

#[test]
fn storage_failure_fails_waiters_and_refuses_new_appends() {
    let (mut m, now) = master(0);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a"));
    let out = step(
        &mut m,
        now,
        E::Storage(StorageReport::Failed {
            reason: "disk full".into(),
        }),
    );
    assert_eq!(
        out,
        vec![A::Reply {
            client: 1,
            req: 1,
            result: Err(AppendError::Storage("disk full".into()))
        }]
    );
    // A late Stored must not acknowledge anything now.
    assert_eq!(step(&mut m, now, synced(1)), vec![]);
    let out = step(&mut m, now, append(1, 2, WriteConcern::Nodes(1), "b"));
    assert!(matches!(
        &out[..],
        [A::Reply {
            result: Err(AppendError::Storage(_)),
            ..
        }]
    ));
}

#[test]
fn unwritten_entries_fail_their_waiters_and_their_numbers_are_reused() {
    let (mut m, now) = master(0);
    let keyed = |req, key: &str| {
        E::Append(AppendRequest {
            log: crate::entry::DEFAULT_LOG,
            client: 1,
            req,
            key: Some(key.into()),
            w: WriteConcern::Nodes(1),
            timeout: None,
            message: "m".into(),
            progress: false,
        })
    };
    step(&mut m, now, keyed(1, "k1"));
    step(&mut m, now, synced(1));
    step(&mut m, now, keyed(2, "k2"));
    step(&mut m, now, keyed(3, "k3"));
    let failed = |req| A::Reply {
        client: 1,
        req,
        result: Err(AppendError::Storage(
            "disk full; the message was not stored".into(),
        )),
    };
    // 2 and 3 were never written: their waiters learn it, in order.
    let out = step(
        &mut m,
        now,
        E::Storage(StorageReport::Unwritten {
            after: 1,
            reason: "disk full".into(),
        }),
    );
    assert_eq!(out, vec![failed(2), failed(3)]);
    assert_eq!((m.last(), m.stored()), (1, 1));
    assert_eq!(m.health(now)[0].status, PeerStatus::Unhealthy);
    // Not broken: the next append tries again and takes seq 2 (and
    // message number 2, once the log says 1 is its last); its key was
    // forgotten with the entry, and k1 still names entry 1.
    assert_eq!(step(&mut m, now, keyed(4, "k2")), vec![]);
    let out = step(&mut m, now, numbers(&[(0, 1)]));
    assert!(
        matches!(
            &out[..],
            [A::Persist(Entry {
                seq: 2,
                number: 2,
                ..
            })]
        ),
        "{out:?}"
    );
    assert_eq!(step(&mut m, now, synced(2)), vec![ok(1, 4, 2)]);
    assert_eq!(m.health(now)[0].status, PeerStatus::Healthy);
    assert_eq!(step(&mut m, now, keyed(5, "k1")), vec![ok(1, 5, 1)]);
}

#[test]
fn a_failed_sync_cuts_back_to_what_is_durable_only_when_that_is_what_stored_means() {
    for only_synced in [true, false] {
        let (mut m, now) = master(0);
        m.cfg.durability = if only_synced {
            Durability::Synced
        } else {
            Durability::Written
        };
        step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a"));
        step(&mut m, now, synced(1));
        step(&mut m, now, append(1, 2, WriteConcern::Nodes(1), "b"));
        let out = step(
            &mut m,
            now,
            E::Storage(StorageReport::SyncFailed {
                reason: "EIO".into(),
            }),
        );
        if only_synced {
            assert_eq!(
                out,
                vec![
                    A::CutLog { after: 1 },
                    A::Reply {
                        client: 1,
                        req: 2,
                        result: Err(AppendError::Storage(
                            "EIO; the message was not stored".into()
                        )),
                    }
                ]
            );
            assert_eq!(m.last(), 1);
        } else {
            assert_eq!(out, vec![], "written entries stay under batch/never");
            assert_eq!(m.last(), 2);
        }
        assert_eq!(m.health(now)[0].status, PeerStatus::Unhealthy);
    }
}

#[test]
fn a_failed_sync_after_sending_spends_the_epoch_and_says_whether_the_cut_is_definite() {
    for failover in [false, true] {
        let (mut m, now) = master(1);
        m.cfg.failover = failover;
        connect_all(&mut m, now);
        step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
        step(&mut m, now, synced(1));
        step(&mut m, now, append(1, 2, WriteConcern::Nodes(2), "b"));
        // Seq 2 goes out while the master's sync runs, and the secondary
        // syncs it...
        assert_eq!(flush(&mut m, now), vec![sent(0, 1, 2)]);
        assert_eq!(step(&mut m, now, ack_from(0, 2)), vec![ok(1, 1, 1)]);
        assert!(!m.epoch_spent());
        // ...but the master's sync fails: seq 2 is cut here and may be on
        // the secondary, so seq 2 must not be reused in this epoch.
        let out = step(
            &mut m,
            now,
            E::Storage(StorageReport::SyncFailed {
                reason: "EIO".into(),
            }),
        );
        let answer = if failover {
            // It steps down; the secondary holding seq 2 may be elected.
            Err(AppendError::ShuttingDown { seq: None })
        } else {
            // It goes on in a new epoch, whose handshake cuts seq 2.
            Err(AppendError::Storage(
                "EIO; the message was not stored".into(),
            ))
        };
        assert_eq!(
            out,
            vec![
                A::CutLog { after: 1 },
                A::Reply {
                    client: 1,
                    req: 2,
                    result: answer
                }
            ],
            "failover {failover}"
        );
        assert!(m.epoch_spent());
        assert_eq!(m.last(), 1);
        // The secondary's ack of the cut seq 2 no longer counts.
        assert_eq!(m.stored_on(2), 0);
        // A static master goes on in a new epoch, connections forgotten.
        m.start_epoch(2, now);
        assert!(!m.epoch_spent());
        assert_eq!(m.epoch(), 2);
        assert_eq!(flush(&mut m, now), vec![]);
        assert_eq!(m.health(now)[1].status, PeerStatus::Connecting);
    }
}

#[test]
fn with_elections_only_a_cut_entry_that_was_sent_is_answered_indefinite() {
    let (mut m, now) = master(1);
    m.cfg.failover = true;
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    assert_eq!(flush(&mut m, now), vec![sent(0, 1, 1)]);
    // Seq 2 is written but not yet sent when the sync fails.
    step(&mut m, now, append(1, 2, WriteConcern::Nodes(2), "b"));
    let out = step(
        &mut m,
        now,
        E::Storage(StorageReport::SyncFailed {
            reason: "EIO".into(),
        }),
    );
    assert_eq!(
        out,
        vec![
            A::CutLog { after: 0 },
            A::Reply {
                client: 1,
                req: 1,
                result: Err(AppendError::ShuttingDown { seq: None })
            },
            A::Reply {
                client: 1,
                req: 2,
                result: Err(AppendError::Storage(
                    "EIO; the message was not stored".into()
                ))
            }
        ]
    );
    assert!(m.epoch_spent());
}

#[test]
fn a_failed_sync_that_cuts_only_unsent_entries_does_not_spend_the_epoch() {
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    assert_eq!(flush(&mut m, now), vec![sent(0, 1, 1)]);
    step(&mut m, now, synced(1));
    step(&mut m, now, append(1, 2, WriteConcern::Nodes(2), "b"));
    // Seq 2 is written but not flushed yet when the sync fails.
    let out = step(
        &mut m,
        now,
        E::Storage(StorageReport::SyncFailed {
            reason: "EIO".into(),
        }),
    );
    assert_eq!(out[0], A::CutLog { after: 1 });
    assert!(!m.epoch_spent());
    // Seq 2 is reused in the same epoch: no other node ever had it. So is
    // number 2, once the log says what it holds.
    assert_eq!(
        step(&mut m, now, append(1, 3, WriteConcern::Nodes(1), "c")),
        vec![]
    );
    assert_eq!(
        step(&mut m, now, numbers(&[(0, 1)])),
        vec![A::Persist(entry(2, "c"))]
    );
}

#[test]
fn a_broken_log_sends_only_what_it_stored_before_failing() {
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    step(&mut m, now, append(1, 2, WriteConcern::Nodes(2), "b"));
    step(&mut m, now, synced(1));
    step(
        &mut m,
        now,
        E::Storage(StorageReport::Failed {
            reason: "EIO".into(),
        }),
    );
    assert_eq!(flush(&mut m, now), vec![sent(0, 1, 1)]);
}

#[test]
fn poll_timeout_names_the_next_instant_a_tick_has_work() {
    let (mut m, now) = master(1);
    assert_eq!(m.poll_timeout(now), None, "nothing to do");
    // A held append: its own timeout, and the end of the start-up period.
    let held = E::Append(AppendRequest {
        log: crate::entry::DEFAULT_LOG,
        client: 1,
        req: 1,
        key: None,
        w: WriteConcern::Nodes(1),
        timeout: Some(Duration::from_millis(300)),
        message: "x".into(),
        progress: false,
    });
    step(&mut m, now, held);
    assert_eq!(m.poll_timeout(now), Some(now + Duration::from_millis(300)));
    // Connected (another master): the next heartbeat comes first.
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    let t = Timing::default();
    assert_eq!(m.poll_timeout(now), Some(now + t.heartbeat_interval));
    // Ticking at that instant sends it, and names the next one.
    let later = now + t.heartbeat_interval;
    assert!(step(&mut m, later, E::Tick).contains(&A::Send {
        peer: 0,
        conn: 10,
        frame: Frame::Heartbeat { committed: 0 }
    }));
    assert_eq!(m.poll_timeout(later), Some(later + t.heartbeat_interval));
}

#[test]
fn window_limits_what_is_in_flight() {
    let (mut m, now) = master(1);
    m.cfg.window = 3;
    m.cfg.batch = 2;
    connect_all(&mut m, now);
    for i in 0..5 {
        step(&mut m, now, append(1, i, WriteConcern::Nodes(1), "x"));
    }
    step(&mut m, now, synced(5));
    assert_eq!(flush(&mut m, now), vec![sent(0, 1, 2), sent(0, 3, 3)]);
    step(&mut m, now, ack_from(0, 2));
    assert_eq!(flush(&mut m, now), vec![sent(0, 4, 5)]);
}

#[test]
fn a_disconnected_secondary_is_sent_nothing_and_its_old_connection_is_ignored() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    step(&mut m, now, synced(1));
    // A disconnection of another connection changes nothing.
    step(&mut m, now, E::PeerDisconnected { peer: 0, conn: 99 });
    assert_eq!(m.health(now)[1].status, PeerStatus::Healthy);
    step(&mut m, now, E::PeerDisconnected { peer: 0, conn: 10 });
    assert_eq!(m.health(now)[1].status, PeerStatus::Unhealthy);
    assert_eq!(m.reachable(now), 2);
    assert_eq!(flush(&mut m, now), vec![sent(1, 1, 1)]);
    // An ack that was on its way on the closed connection counts nothing.
    assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
    assert_eq!(m.health(now)[1].acked, 0);
    // Its next connection starts where the secondary says it is.
    let out = step(
        &mut m,
        now,
        E::PeerConnected {
            peer: 0,
            conn: 20,
            last: Position::default(),
            stored: 0,
            epochs: vec![],
            version: crate::wire::NODE_PROTOCOL_VERSION,
        },
    );
    assert_eq!(
        out,
        vec![A::Send {
            peer: 0,
            conn: 20,
            frame: Frame::Sync {
                truncate_after: None
            }
        }]
    );
    assert_eq!(
        flush(&mut m, now),
        vec![A::SendEntries {
            peer: 0,
            conn: 20,
            from: 1,
            to: 1
        }]
    );
    assert_eq!(
        step(
            &mut m,
            now,
            E::Ack {
                peer: 0,
                conn: 20,
                stored: 1
            }
        ),
        vec![ok(1, 1, 1)]
    );
}

#[test]
fn a_silent_but_connected_secondary_is_suspected_then_unhealthy_without_a_tick() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    let t = Timing::default();
    let ms = Duration::from_millis(1);
    assert_eq!(
        m.health(now + t.suspect_after)[1].status,
        PeerStatus::Healthy
    );
    assert_eq!(m.reachable(now + t.suspect_after), 3);
    // Suspected still counts for the quorum...
    assert_eq!(
        m.health(now + t.suspect_after + ms)[1].status,
        PeerStatus::Suspected
    );
    assert_eq!(m.reachable(now + t.suspect_after + ms), 3);
    assert!(!m.read_only(now + t.suspect_after + ms));
    assert_eq!(
        m.health(now + t.unhealthy_after)[1].status,
        PeerStatus::Suspected
    );
    // ...Unhealthy does not, though the connection is still open.
    assert_eq!(
        m.health(now + t.unhealthy_after + ms)[1].status,
        PeerStatus::Unhealthy
    );
    assert_eq!(m.reachable(now + t.unhealthy_after + ms), 1);
    assert!(m.read_only(now + t.unhealthy_after + ms));
    assert_eq!(
        m.health(now + t.unhealthy_after + ms)[1].last_heard_ms,
        Some(t.unhealthy_after.as_millis() as u64 + 1)
    );
}

#[test]
fn a_storage_failure_answers_only_waiters_not_yet_stored_and_those_stored_complete() {
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    step(&mut m, now, synced(1));
    step(&mut m, now, append(1, 2, WriteConcern::Nodes(2), "b"));
    assert!(!m.broken());
    let out = step(
        &mut m,
        now,
        E::Storage(StorageReport::Failed {
            reason: "EIO".into(),
        }),
    );
    assert_eq!(
        out,
        vec![A::Reply {
            client: 1,
            req: 2,
            result: Err(AppendError::Storage("EIO".into()))
        }]
    );
    assert!(m.broken());
    // Stored before the failure: the secondary's copy completes it.
    assert_eq!(flush(&mut m, now), vec![sent(0, 1, 1)]);
    assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![ok(1, 1, 1)]);
    // Nothing moves `stored` any more.
    assert_eq!(step(&mut m, now, synced(2)), vec![]);
    assert_eq!(m.stored(), 1);
    assert_eq!(m.health(now)[0].status, PeerStatus::Unhealthy);
}

#[test]
fn with_elections_a_broken_logs_waiters_already_sent_are_told_indefinite() {
    let (mut m, now) = master(1);
    m.cfg.failover = true;
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    assert_eq!(flush(&mut m, now), vec![sent(0, 1, 1)]);
    step(&mut m, now, append(1, 2, WriteConcern::Nodes(2), "b"));
    let out = step(
        &mut m,
        now,
        E::Storage(StorageReport::Failed {
            reason: "EIO".into(),
        }),
    );
    let mut out = out;
    out.sort_by_key(|a| match a {
        A::Reply { req, .. } => *req,
        _ => 0,
    });
    assert_eq!(
        out,
        vec![
            // Sent: the secondary may keep it and be elected.
            A::Reply {
                client: 1,
                req: 1,
                result: Err(AppendError::ShuttingDown { seq: None })
            },
            // Never sent: no other node has it.
            A::Reply {
                client: 1,
                req: 2,
                result: Err(AppendError::Storage("EIO".into()))
            }
        ]
    );
}

#[test]
fn after_three_failures_in_a_row_a_heartbeat_reply_no_longer_cuts_the_backoff() {
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    step(&mut m, now, synced(1));
    flush(&mut m, now);
    let nack = E::Nack {
        peer: 0,
        conn: 10,
        stored: 0,
        reason: "x".into(),
    };
    for failures in 1..=RESUME_ON_HEARTBEAT_MAX_ATTEMPTS {
        step(&mut m, now, nack.clone());
        assert_eq!(flush(&mut m, now), vec![], "paused after {failures}");
        step(&mut m, now, heartbeat_reply(0, 0));
        if failures < RESUME_ON_HEARTBEAT_MAX_ATTEMPTS {
            assert_eq!(flush(&mut m, now), vec![sent(0, 1, 1)], "{failures}");
        } else {
            assert_eq!(flush(&mut m, now), vec![], "{failures}: still paused");
        }
    }
    // The backoff's own end resumes it.
    let later = now + Timing::default().retry_max;
    assert_eq!(flush(&mut m, later), vec![sent(0, 1, 1)]);
}

#[test]
fn a_tick_during_the_backoff_keeps_it_and_one_after_it_ends_it() {
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    step(&mut m, now, synced(1));
    flush(&mut m, now);
    step(
        &mut m,
        now,
        E::Nack {
            peer: 0,
            conn: 10,
            stored: 0,
            reason: "x".into(),
        },
    );
    let retry_at = m.peers[0].retry_at.expect("paused");
    assert!(retry_at >= now + Timing::default().retry_base);
    assert_eq!(m.poll_timeout(now), Some(retry_at));
    let before = retry_at - Duration::from_millis(1);
    step(&mut m, before, E::Tick);
    assert_eq!(m.peers[0].retry_at, Some(retry_at));
    assert_eq!(flush(&mut m, before), vec![]);
    step(&mut m, retry_at, E::Tick);
    assert_eq!(m.peers[0].retry_at, None);
    assert_eq!(flush(&mut m, retry_at), vec![sent(0, 1, 1)]);
}

#[test]
fn a_message_of_exactly_the_limit_and_a_key_of_exactly_the_limit_are_taken() {
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    let request = |req, key: String, message: String| {
        E::Append(AppendRequest {
            log: crate::entry::DEFAULT_LOG,
            client: 1,
            req,
            key: Some(key),
            w: WriteConcern::Nodes(1),
            timeout: None,
            message: message.into(),
            progress: false,
        })
    };
    let largest = "m".repeat(100);
    let out = step(&mut m, now, request(1, "k".repeat(MAX_KEY_BYTES), largest));
    assert!(
        matches!(out.as_slice(), [A::Persist(e)] if e.seq == 1),
        "{out:?}"
    );
    let out = step(
        &mut m,
        now,
        request(2, "k".repeat(MAX_KEY_BYTES + 1), "m".into()),
    );
    assert_eq!(
        out,
        vec![A::Reply {
            client: 1,
            req: 2,
            result: Err(AppendError::BadRequest(format!(
                "the request key is over {MAX_KEY_BYTES} bytes"
            )))
        }]
    );
    let out = step(&mut m, now, request(3, "j".into(), "m".repeat(101)));
    assert_eq!(
        out,
        vec![A::Reply {
            client: 1,
            req: 3,
            result: Err(AppendError::BadRequest(
                "the message is 101 bytes, over the 100 byte limit (--max-message-bytes)".into()
            ))
        }]
    );
    assert_eq!(m.last(), 1);
}

#[test]
fn a_timed_out_append_says_how_many_nodes_hold_it_and_is_promised_only_on_a_majority() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    let timed = |req, w| {
        E::Append(AppendRequest {
            log: crate::entry::DEFAULT_LOG,
            client: 1,
            req,
            key: None,
            w: WriteConcern::Nodes(w),
            timeout: Some(Duration::from_millis(10)),
            message: "a".into(),
            progress: false,
        })
    };
    step(&mut m, now, timed(1, 3));
    step(&mut m, now, timed(2, 3));
    step(&mut m, now, synced(1));
    flush(&mut m, now);
    step(&mut m, now, ack_from(1, 1));
    let out = step(&mut m, now + Duration::from_millis(10), E::Tick);
    let replies: Vec<_> = out
        .into_iter()
        .filter(|a| matches!(a, A::Reply { .. }))
        .collect();
    assert_eq!(
        replies,
        vec![
            A::Reply {
                client: 1,
                req: 1,
                result: Err(AppendError::TimedOut {
                    seq: 1,
                    stored_on: 2
                })
            },
            A::Reply {
                client: 1,
                req: 2,
                result: Err(AppendError::Uncommitted {
                    seq: 2,
                    stored_on: 0,
                    timed_out: true,
                })
            }
        ]
    );
}

#[test]
fn shutdown_answers_held_appends_without_and_waiters_with_their_sequence_number_promised_only_on_a_majority(
) {
    for failover in [false, true] {
        let (mut m, now) = master(2);
        m.cfg.failover = failover;
        // One secondary connected: quorum known, appends admitted.
        step(
            &mut m,
            now,
            E::PeerConnected {
                peer: 0,
                conn: 10,
                last: Position::default(),
                stored: 0,
                epochs: vec![],
                version: crate::wire::NODE_PROTOCOL_VERSION,
            },
        );
        step(&mut m, now, E::Tick);
        step(&mut m, now, append(1, 2, WriteConcern::Nodes(3), "b"));
        step(&mut m, now, append(1, 1, WriteConcern::Nodes(3), "a"));
        step(&mut m, now, append(1, 4, WriteConcern::Nodes(3), "d"));
        // Seq 1 is on the master and one secondary, a majority of three;
        // seq 2 only on the master (where a static master's log is the
        // truth); seq 3 nowhere yet.
        step(&mut m, now, synced(2));
        flush(&mut m, now);
        step(&mut m, now, ack_from(0, 1));
        let mut out = Vec::new();
        m.shutdown(&mut out);
        let second = if failover {
            AppendError::Uncommitted {
                seq: 2,
                stored_on: 1,
                timed_out: false,
            }
        } else {
            AppendError::ShuttingDown { seq: Some(2) }
        };
        assert_eq!(
            out,
            vec![
                A::Reply {
                    client: 1,
                    req: 2,
                    result: Err(AppendError::ShuttingDown { seq: Some(1) })
                },
                A::Reply {
                    client: 1,
                    req: 1,
                    result: Err(second)
                },
                A::Reply {
                    client: 1,
                    req: 4,
                    result: Err(AppendError::Uncommitted {
                        seq: 3,
                        stored_on: 0,
                        timed_out: false,
                    })
                },
            ]
        );
        // Nobody is answered twice, whatever comes after.
        assert_eq!(step(&mut m, now, ack_from(0, 2)), vec![]);
        assert_eq!(m.poll_timeout(now).map(|t| t > now), Some(true));
    }

    // Held appends (quorum still unknown at start) never got a number.
    let (mut m, now) = master(2);
    assert_eq!(
        step(&mut m, now, append(1, 3, WriteConcern::Nodes(1), "c")),
        vec![]
    );
    let mut out = Vec::new();
    m.shutdown(&mut out);
    assert_eq!(
        out,
        vec![A::Reply {
            client: 1,
            req: 3,
            result: Err(AppendError::ShuttingDown { seq: None })
        }]
    );
    assert_eq!(m.poll_timeout(now), None);
}

#[test]
fn flush_sends_in_batches_up_to_the_window_and_resumes_as_acks_come() {
    let state = LogState {
        catalog: Default::default(),
        groups: Default::default(),
        epoch: 1,
        last: Position { epoch: 1, seq: 10 },
        epochs: vec![(1, 1)],
        keys: KeyWindow::new(100, 11),
        vote: None,
        committed: 0,
        base: Default::default(),
        learner: false,
        configs: Vec::new(),
        numbers: Default::default(),
    };
    let mut m = master_over(7, 3, state);
    let now = Instant::now();
    step(
        &mut m,
        now,
        E::PeerConnected {
            peer: 0,
            conn: 10,
            last: Position::default(),
            stored: 0,
            epochs: vec![],
            version: crate::wire::NODE_PROTOCOL_VERSION,
        },
    );
    assert_eq!(
        flush(&mut m, now),
        vec![sent(0, 1, 3), sent(0, 4, 6), sent(0, 7, 7)]
    );
    assert_eq!(flush(&mut m, now), vec![], "the window is full");
    step(&mut m, now, ack_from(0, 2));
    assert_eq!(flush(&mut m, now), vec![sent(0, 8, 9)]);
    step(&mut m, now, ack_from(0, 9));
    assert_eq!(flush(&mut m, now), vec![sent(0, 10, 10)]);
    assert_eq!(flush(&mut m, now), vec![]);
}

#[test]
fn ticks_at_the_named_instants_find_a_silent_secondary_exactly_when_it_is_due() {
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    let t = Timing::default();
    // At exactly --unhealthy-after it is not yet silent past it.
    let at_limit = step(&mut m, now + t.unhealthy_after, E::Tick);
    assert!(!at_limit.contains(&A::Reconnect { peer: 0, conn: 10 }));
    // Following poll_timeout from the start reaches the reconnection at
    // the first instant it is due.
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    let due = now + t.unhealthy_after + Duration::from_millis(1);
    let mut at = now;
    for _ in 0..100 {
        at = m
            .poll_timeout(at)
            .expect("a connected secondary has deadlines");
        if step(&mut m, at, E::Tick).contains(&A::Reconnect { peer: 0, conn: 10 }) {
            break;
        }
    }
    assert_eq!(at, due);
}

#[test]
fn a_held_append_is_refused_at_the_instant_the_start_up_period_ends() {
    let (mut m, now) = master(2);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(1), "a"));
    let end = now + Timing::default().unhealthy_after + Duration::from_millis(1);
    assert_eq!(m.poll_timeout(now), Some(end));
    let out = step(&mut m, end, E::Tick);
    assert_eq!(
        out,
        vec![A::Reply {
            client: 1,
            req: 1,
            result: Err(AppendError::Refused {
                reachable: 1,
                needed: 2
            })
        }]
    );
}

#[test]
fn the_backoff_ends_at_its_instant_even_without_a_tick() {
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    step(&mut m, now, synced(1));
    flush(&mut m, now);
    let nack = E::Nack {
        peer: 0,
        conn: 10,
        stored: 0,
        reason: "x".into(),
    };
    step(&mut m, now, nack);
    let retry_at = m.peers[0].retry_at.expect("paused");
    assert_eq!(flush(&mut m, retry_at - Duration::from_nanos(1)), vec![]);
    assert_eq!(flush(&mut m, retry_at), vec![sent(0, 1, 1)]);
}

#[test]
fn unwritten_at_the_last_entry_fails_nobody_and_one_before_fails_only_what_follows() {
    let (mut m, now) = master(1);
    connect_all(&mut m, now);
    step(&mut m, now, append(1, 1, WriteConcern::Nodes(2), "a"));
    step(&mut m, now, append(1, 2, WriteConcern::Nodes(2), "b"));
    let reason = || "disk full".to_string();
    // Everything assigned was written: nothing to fail, nothing broken.
    let out = step(
        &mut m,
        now,
        E::Storage(StorageReport::Unwritten {
            after: 2,
            reason: reason(),
        }),
    );
    assert_eq!(out, vec![]);
    assert!(!m.broken());
    assert_eq!(m.last(), 2);
    // Entry 2 was not written: its waiter fails, entry 1's does not.
    let out = step(
        &mut m,
        now,
        E::Storage(StorageReport::Unwritten {
            after: 1,
            reason: reason(),
        }),
    );
    assert_eq!(
        out,
        vec![A::Reply {
            client: 1,
            req: 2,
            result: Err(AppendError::Storage(
                "disk full; the message was not stored".into()
            ))
        }]
    );
    assert_eq!(m.last(), 1);
    // Trouble is shown until something new is stored; a report of
    // nothing new does not clear it.
    assert_eq!(m.health(now)[0].status, PeerStatus::Unhealthy);
    step(&mut m, now, synced(0));
    assert_eq!(m.health(now)[0].status, PeerStatus::Unhealthy);
    step(&mut m, now, synced(1));
    assert_eq!(m.health(now)[0].status, PeerStatus::Healthy);
}

#[test]
fn a_cut_forgets_the_epochs_that_began_after_it() {
    // 1..=3 of epoch 1, 4..=5 of epoch 2; this master runs epoch 3.
    let state = LogState {
        catalog: Default::default(),
        groups: Default::default(),
        epoch: 3,
        last: Position { epoch: 2, seq: 5 },
        epochs: vec![(1, 1), (2, 4)],
        keys: KeyWindow::new(100, 6),
        vote: None,
        committed: 0,
        base: Default::default(),
        learner: false,
        configs: Vec::new(),
        numbers: Default::default(),
    };
    let mut m = master_over(100, 100, state);
    let now = Instant::now();
    step(
        &mut m,
        now,
        E::Storage(StorageReport::Unwritten {
            after: 4,
            reason: "x".into(),
        }),
    );
    step(
        &mut m,
        now,
        E::Storage(StorageReport::Unwritten {
            after: 3,
            reason: "x".into(),
        }),
    );
    let (state, stored) = m.into_log_state();
    assert_eq!(state.epochs, vec![(1, 1)]);
    assert_eq!((state.last, stored), (Position { epoch: 1, seq: 3 }, 3));
}

#[test]
fn an_append_that_asks_for_progress_is_told_its_seq_and_who_is_missing_as_acks_come() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    let asking = |req, progress| {
        E::Append(AppendRequest {
            log: crate::entry::DEFAULT_LOG,
            client: 1,
            req,
            key: None,
            w: WriteConcern::Nodes(3),
            timeout: None,
            message: "a".into(),
            progress,
        })
    };
    let told = |seq, needed, missing: &[&str]| A::Progress {
        client: 1,
        req: seq,
        seq,
        needed,
        missing: missing.iter().map(|s| s.to_string()).collect(),
    };
    let out = step(&mut m, now, asking(1, true));
    assert_eq!(out.last(), Some(&told(1, 3, &["m", "s0", "s1"])));
    // One that did not ask is never told.
    let out = step(&mut m, now, asking(2, false));
    assert!(!out.iter().any(|a| matches!(a, A::Progress { req: 2, .. })));
    let out = step(&mut m, now, synced(2));
    assert_eq!(out.last(), Some(&told(1, 2, &["s0", "s1"])));
    flush(&mut m, now);
    let out = step(&mut m, now, ack_from(1, 2));
    assert_eq!(out.last(), Some(&told(1, 1, &["s0"])));
    // Nothing changed for it: not told again.
    assert!(!step(&mut m, now, E::Tick)
        .iter()
        .any(|a| matches!(a, A::Progress { .. })));
    let out = step(&mut m, now, ack_from(0, 2));
    assert!(
        out.contains(&ok(1, 1, 1)) && out.contains(&ok(1, 2, 2)),
        "{out:?}"
    );
    assert!(!out.iter().any(|a| matches!(a, A::Progress { .. })));
    assert!(m.progress.is_empty(), "answered waiters are forgotten");
}

#[test]
fn a_secondary_of_an_older_node_protocol_is_not_replicated_to() {
    let (mut m, now) = master(1);
    let out = step(
        &mut m,
        now,
        E::PeerConnected {
            peer: 0,
            conn: 10,
            last: Position::default(),
            stored: 0,
            epochs: vec![],
            version: 8,
        },
    );
    let [A::Diverged {
        peer: 0,
        conn: 10,
        reason,
    }] = &out[..]
    else {
        panic!("{out:?}");
    };
    assert!(
        reason.contains("runs an older replog (node protocol 8)"),
        "{reason}"
    );
    // Nothing is sent to it.
    assert_eq!(flush(&mut m, now), vec![]);
}

#[test]
fn a_secondary_behind_the_masters_retention_is_reset_to_start_after_the_base() {
    let now = Instant::now();
    let base = Position { epoch: 1, seq: 10 };
    let state = LogState {
        catalog: Default::default(),
        groups: Default::default(),
        epoch: 2,
        last: Position { epoch: 2, seq: 20 },
        epochs: vec![(1, 1), (2, 15)],
        keys: KeyWindow::new(100, 21),
        vote: None,
        committed: 0,
        base,
        learner: false,
        configs: Vec::new(),
        numbers: Numbers::known([(0, 15)], vec![(0, 8)]),
    };
    let mut m = master_over(100, 100, state);
    // Everything retention deleted was committed.
    assert_eq!(m.committed(), 10);
    let connected = |conn, seq, epochs: Vec<(u64, u64)>| E::PeerConnected {
        peer: 0,
        conn,
        last: Position { epoch: 1, seq },
        stored: seq,
        epochs,
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    // Its log ends at 3: entries 4 to 10 are gone here.
    let out = step(&mut m, now, connected(10, 3, vec![(1, 1)]));
    assert_eq!(
        out,
        vec![A::Send {
            peer: 0,
            conn: 10,
            frame: Frame::ResetMembers(Box::new(crate::wire::ResetAtBase {
                base,
                epochs: vec![(1, 1)],
                configs: vec![],
                numbers: vec![(0, 8)],
                logs: crate::replication::catalog::Logs::default().encode(),
                groups: bytes::Bytes::new(),
            }))
        }]
    );
    // Then it is sent everything after the base.
    assert_eq!(flush(&mut m, now), vec![sent(0, 11, 20)]);
    // One that holds up to 12 is caught up entry by entry.
    step(&mut m, now, E::PeerDisconnected { peer: 0, conn: 10 });
    let out = step(&mut m, now, connected(11, 12, vec![(1, 1)]));
    assert_eq!(
        out,
        vec![A::Send {
            peer: 0,
            conn: 11,
            frame: Frame::Sync {
                truncate_after: None
            }
        }]
    );
    // Retention deletes more while it is still to be sent 13 on: its
    // connection is dropped, and the next one resets it.
    let out = step(
        &mut m,
        now,
        E::Compacted {
            base: Position { epoch: 2, seq: 16 },
            numbers: vec![(0, 13)],
        },
    );
    assert_eq!(out, vec![A::Reconnect { peer: 0, conn: 11 }]);
    let out = step(&mut m, now, connected(12, 12, vec![(1, 1)]));
    assert!(matches!(
        &out[0],
        A::Send {
            frame: Frame::ResetMembers(reset),
            ..
        } if reset.base == Position { epoch: 2, seq: 16 } && reset.numbers == vec![(0, 13)]
    ));
}

#[test]
fn a_reset_carries_the_members_in_force_at_its_base_to_a_secondary_that_reads_them() {
    let now = Instant::now();
    let three = |x: &str| {
        Membership::voters(&[
            ("m".into(), "m:1".into()),
            ("s0".into(), "s0:1".into()),
            (x.into(), format!("{x}:1")),
        ])
    };
    let state = LogState {
        catalog: Default::default(),
        groups: Default::default(),
        epoch: 2,
        last: Position { epoch: 2, seq: 20 },
        epochs: vec![(1, 1), (2, 15)],
        keys: KeyWindow::new(100, 21),
        vote: None,
        committed: 0,
        base: Position { epoch: 1, seq: 10 },
        learner: false,
        configs: vec![(3, three("a")), (7, three("b")), (12, three("c"))],
        numbers: Default::default(),
    };
    let mut m = master_over(100, 100, state);
    let connected = |conn, version| E::PeerConnected {
        peer: 0,
        conn,
        last: Position { epoch: 1, seq: 2 },
        stored: 2,
        epochs: vec![(1, 1)],
        version,
    };
    let reset_members = |conn, base, configs| A::Send {
        peer: 0,
        conn,
        frame: Frame::ResetMembers(Box::new(crate::wire::ResetAtBase {
            base,
            epochs: vec![(1, 1)],
            configs,
            numbers: Vec::new(),
            logs: crate::replication::catalog::Logs::default().encode(),
            groups: bytes::Bytes::new(),
        })),
    };
    // The entry at 7 is the members at base 10 (12 it will be sent).
    let base = Position { epoch: 1, seq: 10 };
    let out = step(
        &mut m,
        now,
        connected(10, crate::wire::NODE_PROTOCOL_VERSION),
    );
    assert_eq!(
        out,
        vec![reset_members(10, base, vec![(7, three("b").encode())])]
    );
    // Retention deletes through 14: the entry at 12 is the one in force.
    step(&mut m, now, E::PeerDisconnected { peer: 0, conn: 10 });
    let base = Position { epoch: 1, seq: 14 };
    step(
        &mut m,
        now,
        E::Compacted {
            base,
            numbers: Vec::new(),
        },
    );
    assert_eq!(
        step(
            &mut m,
            now,
            connected(11, crate::wire::NODE_PROTOCOL_VERSION)
        ),
        vec![reset_members(11, base, vec![(12, three("c").encode())])]
    );
    assert_eq!(m.cfg.configs.len(), 1, "older ones are forgotten");
}

#[test]
fn a_reset_before_any_change_says_the_members_never_changed() {
    let now = Instant::now();
    let base = Position { epoch: 1, seq: 10 };
    let state = LogState {
        catalog: Default::default(),
        groups: Default::default(),
        epoch: 2,
        last: Position { epoch: 1, seq: 20 },
        epochs: vec![(1, 1)],
        keys: KeyWindow::new(100, 21),
        vote: None,
        committed: 0,
        base,
        learner: false,
        configs: Vec::new(),
        numbers: Default::default(),
    };
    let mut m = master_over(100, 100, state);
    let out = step(
        &mut m,
        now,
        E::PeerConnected {
            peer: 0,
            conn: 10,
            last: Position::default(),
            stored: 0,
            epochs: vec![],
            version: crate::wire::NODE_PROTOCOL_VERSION,
        },
    );
    let expected = Frame::ResetMembers(Box::new(crate::wire::ResetAtBase {
        base,
        epochs: vec![(1, 1)],
        configs: vec![],
        numbers: Vec::new(),
        logs: crate::replication::catalog::Logs::default().encode(),
        groups: bytes::Bytes::new(),
    }));
    assert_eq!(
        out,
        vec![A::Send {
            peer: 0,
            conn: 10,
            frame: expected
        }]
    );
}

#[test]
fn a_waiter_for_an_entry_retention_deletes_is_told_it_will_never_reach_w() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    step(&mut m, now, append(7, 1, WriteConcern::All, "a"));
    step(&mut m, now, synced(1));
    flush(&mut m, now);
    // On a majority, not on all: committed, still waiting.
    assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
    let out = step(
        &mut m,
        now,
        E::Compacted {
            base: Position { epoch: 1, seq: 1 },
            numbers: Vec::new(),
        },
    );
    assert_eq!(
        out,
        vec![
            A::Reply {
                client: 7,
                req: 1,
                result: Err(AppendError::Deleted {
                    seq: 1,
                    stored_on: 2
                }),
            },
            // s1 lacks it and can no longer be sent it.
            A::Reconnect { peer: 1, conn: 11 },
        ]
    );
}

#[test]
fn a_secondary_that_answers_heartbeats_as_a_learner_is_shown_as_one_and_still_counted() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    let roles = |m: &Master| m.health(now).iter().map(|n| n.role).collect::<Vec<_>>();
    assert_eq!(
        roles(&m),
        [NodeRole::Master, NodeRole::Secondary, NodeRole::Secondary]
    );
    let learner_reply = E::HeartbeatReply {
        peer: 1,
        conn: 11,
        stored: 0,
        learner: true,
    };
    assert_eq!(step(&mut m, now, learner_reply), vec![]);
    assert_eq!(
        roles(&m),
        [NodeRole::Master, NodeRole::Secondary, NodeRole::Learner]
    );
    // Its acks count toward w as any secondary's: it stored the entry and
    // everything before it.
    step(&mut m, now, append(7, 1, WriteConcern::Nodes(3), "a"));
    assert_eq!(flush(&mut m, now), vec![sent(0, 1, 1), sent(1, 1, 1)]);
    assert_eq!(step(&mut m, now, synced(1)), vec![]);
    assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![]);
    assert_eq!(step(&mut m, now, ack_from(1, 1)), vec![ok(7, 1, 1)]);
    // Promoted, it answers as a voter again.
    step(&mut m, now, heartbeat_reply(1, 1));
    assert_eq!(roles(&m)[2], NodeRole::Secondary);
}

#[test]
fn a_key_starting_with_a_nul_byte_is_the_logs_own_and_refused() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    let mut request = append(7, 1, WriteConcern::Nodes(1), "a");
    if let E::Append(r) = &mut request {
        r.key = Some(crate::entry::CONFIG_KEY.to_string());
    }
    let out = step(&mut m, now, request);
    assert!(
        matches!(&out[..], [A::Reply { result: Err(AppendError::BadRequest(why)), .. }] if why.contains("NUL")),
        "{out:?}"
    );
}

#[test]
fn a_link_that_is_down_is_told_when_to_dial_again() {
    let (mut m, now) = master(2);
    let base = Timing::default().retry_base;
    let down = |peer, link, down| E::LinkDown { peer, link, down };
    let redial = |peer, link, after| vec![A::Redial { peer, link, after }];
    // Never reached: dialled again at the base delay, however often.
    for _ in 0..5 {
        assert_eq!(
            step(&mut m, now, down(0, 3, LinkDown::Unreachable)),
            redial(0, 3, base)
        );
    }
    // Refused: the delay grows past the base (drawn with jitter).
    let refused = |m: &mut Master| -> Vec<std::time::Duration> {
        (0..10)
            .map(|_| match &step(m, now, down(1, 4, LinkDown::Refused))[..] {
                [A::Redial {
                    peer: 1,
                    link: 4,
                    after,
                }] => *after,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let delays = refused(&mut m);
    assert!(delays.iter().any(|d| *d > 4 * base), "{delays:?}");
    // A link stopped for a newer one is not answered.
    assert_eq!(step(&mut m, now, down(1, 2, LinkDown::Unreachable)), vec![]);
    // No such secondary: nothing to dial.
    assert_eq!(step(&mut m, now, down(7, 5, LinkDown::Closed)), vec![]);
    // A static master's new epoch starts new links: they dial afresh.
    m.start_epoch(2, now);
    assert_eq!(
        step(&mut m, now, down(1, 6, LinkDown::Unreachable)),
        redial(1, 6, base)
    );
}
