//! Unit tests of membership changes on the master: exact action lists.

use super::tests::{ack_from, append, connect_all, flush, master, ok, sent, step, synced};
use super::*;
use crate::replication::membership::Membership;
use crate::wire::WriteConcern;
use MasterAction as A;
use MasterEvent as E;

fn change(next: Membership) -> MasterEvent {
    E::ChangeMembers {
        client: 9,
        req: 1,
        next,
    }
}

fn config(seq: Seq, text: &str) -> MasterAction {
    A::Persist(Entry::config(
        1,
        seq,
        bytes::Bytes::copy_from_slice(text.as_bytes()),
    ))
}

/// A master of m, s0 and s1, with elections (membership changes need
/// them).
fn elected() -> (Master, Instant) {
    let (mut m, now) = master(2);
    m.cfg.failover = true;
    (m, now)
}

/// [`elected`], its first entry ("a", w=2) committed.
fn with_committed_entry() -> (Master, Instant) {
    let (mut m, now) = elected();
    connect_all(&mut m, now);
    step(&mut m, now, append(7, 1, WriteConcern::Nodes(2), "a"));
    flush(&mut m, now);
    step(&mut m, now, synced(1));
    assert_eq!(step(&mut m, now, ack_from(0, 1)), vec![ok(7, 1, 1)]);
    (m, now)
}

#[test]
fn a_member_is_added_as_a_learner_that_counts_only_once_promoted() {
    let (mut m, now) = with_committed_entry();
    let next = m.members().with_learner("s2", "s2:1").unwrap();
    assert_eq!(
        step(&mut m, now, change(next)),
        vec![
            config(
                2,
                "voter m m:1\nvoter s0 s0:1\nvoter s1 s1:1\nlearner s2 s2:1\n"
            ),
            A::StartLink {
                peer: 2,
                id: "s2".into(),
                addr: "s2:1".into()
            }
        ]
    );
    let s2 = E::PeerConnected {
        peer: 2,
        conn: 12,
        last: Position::default(),
        stored: 0,
        epochs: vec![],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    step(&mut m, now, s2);
    assert_eq!(
        flush(&mut m, now),
        vec![sent(0, 2, 2), sent(1, 2, 2), sent(2, 1, 2)]
    );
    step(&mut m, now, append(7, 2, WriteConcern::Nodes(3), "b"));
    flush(&mut m, now);
    assert_eq!(step(&mut m, now, synced(3)), vec![]);
    // The learner holds it: not counted toward w=3, and not promoted while
    // the change that added it is not committed.
    assert_eq!(step(&mut m, now, ack_from(2, 3)), vec![]);
    let roles = |m: &Master| m.health(now).iter().map(|n| n.role).collect::<Vec<_>>();
    assert_eq!(roles(&m)[3], NodeRole::Learner);
    assert_eq!(m.nodes(), 3);
    // s0 commits the change (answered), the learner, caught up, is
    // promoted at once, and counts: the w=3 append completes (as message
    // 2: the configuration entry at seq 2 took no number).
    assert_eq!(
        step(&mut m, now, ack_from(0, 3)),
        vec![
            ok(9, 1, 2),
            config(
                4,
                "voter m m:1\nvoter s0 s0:1\nvoter s1 s1:1\nvoter s2 s2:1\n"
            ),
            ok(7, 2, 2)
        ]
    );
    assert_eq!(roles(&m)[3], NodeRole::Secondary);
    assert_eq!(m.nodes(), 4);
}

#[test]
fn one_change_at_a_time_and_only_once_this_epoch_has_a_committed_entry() {
    let (mut m, now) = elected();
    connect_all(&mut m, now);
    // No entry of this epoch yet: its marker first, the change held.
    let next = m.members().without("s1").unwrap();
    assert_eq!(
        step(&mut m, now, change(next.clone())),
        vec![A::Persist(Entry::marker(1, 1))]
    );
    // A second change meanwhile is refused, saying why.
    let other = E::ChangeMembers {
        client: 9,
        req: 2,
        next: m.members().without("s0").unwrap(),
    };
    let out = step(&mut m, now, other);
    assert!(
        matches!(&out[..], [A::Reply { req: 2, result: Err(AppendError::BadRequest(why)), .. }] if why.contains("under way")),
        "{out:?}"
    );
    flush(&mut m, now);
    step(&mut m, now, synced(1));
    // The marker committed: the change is written. s1 counts no more, but
    // is still sent the log, its own removal included.
    assert_eq!(
        step(&mut m, now, ack_from(0, 1)),
        vec![config(2, "voter m m:1\nvoter s0 s0:1\n")]
    );
    assert_eq!(flush(&mut m, now), vec![sent(0, 2, 2), sent(1, 2, 2)]);
    assert_eq!(m.nodes(), 2);
    assert_eq!(m.health(now)[2].role, NodeRole::Learner);
    let out = step(&mut m, now, append(7, 3, WriteConcern::Nodes(3), "x"));
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
    step(&mut m, now, synced(2));
    // Committed: answered, and s1's link closed; it is gone from health.
    assert_eq!(
        step(&mut m, now, ack_from(0, 2)),
        vec![
            ok(9, 1, 2),
            A::Reconnect { peer: 1, conn: 11 },
            A::StopLink { peer: 1 }
        ]
    );
    assert_eq!(m.health(now).len(), 2);
}

#[test]
fn a_master_that_removes_itself_leads_until_the_change_is_committed() {
    let (mut m, now) = with_committed_entry();
    let next = m.members().without("m").unwrap();
    assert_eq!(
        step(&mut m, now, change(next)),
        vec![config(2, "voter s0 s0:1\nvoter s1 s1:1\n")]
    );
    assert!(!m.removed_and_committed());
    flush(&mut m, now);
    // Its own copy no longer counts: s0 alone is not a majority of two.
    step(&mut m, now, synced(2));
    assert_eq!(step(&mut m, now, ack_from(0, 2)), vec![]);
    assert!(!m.removed_and_committed());
    assert_eq!(step(&mut m, now, ack_from(1, 2)), vec![ok(9, 1, 2)]);
    assert!(m.removed_and_committed());
}

#[test]
fn a_configuration_entry_cut_by_a_failed_write_spends_the_epoch() {
    let (mut m, now) = with_committed_entry();
    let next = m.members().without("s1").unwrap();
    step(&mut m, now, change(next));
    assert_eq!(m.nodes(), 2);
    assert!(!m.epoch_spent());
    // The write of the change failed: the log holds seq 1 only. The
    // master no longer acts on what its log holds, so it goes no further
    // in this epoch (it steps down, with elections).
    let cut = E::Storage(StorageReport::Unwritten {
        after: 1,
        reason: "disk full".into(),
    });
    let out = step(&mut m, now, cut);
    assert!(m.epoch_spent(), "{out:?}");
    // No promotion or change is written from the stale membership.
    assert_eq!(step(&mut m, now, E::Tick), vec![]);
}

#[test]
fn a_static_master_refuses_membership_changes() {
    let (mut m, now) = master(2);
    connect_all(&mut m, now);
    let next = m.members().without("s1").unwrap();
    let out = step(&mut m, now, change(next));
    assert!(
        matches!(&out[..], [A::Reply { result: Err(AppendError::BadRequest(why)), .. }] if why.contains("--failover on")),
        "{out:?}"
    );
    assert_eq!(m.nodes(), 3);
}
