//! Consumer groups' positions: the master checks a request, writes a group
//! entry and answers once a majority holds it; every core follows the
//! positions its log leaves, forgets them at a cut and takes them as the
//! runtime reports them. Exact action lists.

use super::*;
use crate::replication::groups::{GroupChange, Positions};

fn set(req: u64, group: &str, number: Seq) -> Event {
    Event::ChangeGroups {
        client: 7,
        req,
        request: GroupRequest::Set {
            group: group.into(),
            log: "default".into(),
            number,
            expect: None,
        },
    }
}

fn refused(req: u64, error: AppendError) -> Vec<Action> {
    vec![Action::Reply {
        client: 7,
        req,
        result: Err(error),
    }]
}

/// A master of three with one secondary connected and message 1 stored on
/// both (a majority).
fn master_with_one_message(now: Instant) -> Core {
    let (mut core, _) = Core::new(config("a"), log(0), now);
    connect_one(&mut core, now);
    step(&mut core, now, append(1, None, 1));
    step(&mut core, now, synced(0, 1));
    core
}

fn ack(stored: Seq) -> Event {
    Event::Link(MasterEvent::Ack {
        peer: 0,
        conn: 1,
        stored,
    })
}

#[test]
fn a_master_writes_a_position_and_answers_once_a_majority_holds_it() {
    let now = Instant::now();
    let mut core = master_with_one_message(now);
    let out = step(&mut core, now, set(2, "billing", 1));
    let change = GroupChange::Set {
        group: "billing".into(),
        log: crate::entry::DEFAULT_LOG,
        number: 1,
    };
    assert_eq!(out, vec![Action::Persist(vec![change.entry(2, 2)])]);
    // The core acts on it at once (the next request sees it).
    assert_eq!(core.groups().unwrap().get("billing", 0), Some(1));
    // Stored here: one of three, not yet a majority.
    assert_eq!(step(&mut core, now, synced(0, 2)), vec![]);
    let mut sent = Vec::new();
    core.flush(now, &mut sent);
    assert!(
        sent.iter()
            .any(|a| matches!(a, Action::SendEntries { from: 1, to: 2, .. })),
        "{sent:?}"
    );
    let out = step(&mut core, now, ack(2));
    assert_eq!(
        out,
        vec![Action::Reply {
            client: 7,
            req: 2,
            result: Ok(2)
        }]
    );
}

#[test]
fn a_request_the_master_cannot_make_is_refused_with_the_reason_and_writes_nothing() {
    let now = Instant::now();
    let mut core = master_with_one_message(now);
    let bad_name = step(&mut core, now, set(2, "a/b", 1));
    assert!(
        matches!(&bad_name[..], [Action::Reply { result: Err(AppendError::BadRequest(why)), .. }] if why.contains("group")),
        "{bad_name:?}"
    );
    let past_the_end = step(&mut core, now, set(3, "g", 2));
    assert!(
        matches!(&past_the_end[..], [Action::Reply { result: Err(AppendError::BadRequest(why)), .. }] if why.contains("ends at message 1")),
        "{past_the_end:?}"
    );
    let missing_log = Event::ChangeGroups {
        client: 7,
        req: 4,
        request: GroupRequest::Set {
            group: "g".into(),
            log: "nope".into(),
            number: 0,
            expect: None,
        },
    };
    let out = step(&mut core, now, missing_log);
    assert!(
        matches!(
            &out[..],
            [Action::Reply {
                result: Err(AppendError::NoSuchLog { .. }),
                ..
            }]
        ),
        "{out:?}"
    );
    let delete = |req| Event::ChangeGroups {
        client: 7,
        req,
        request: GroupRequest::Delete("nobody".into()),
    };
    assert_eq!(
        step(&mut core, now, delete(5)),
        refused(
            5,
            AppendError::NoSuchGroup {
                group: "nobody".into()
            }
        )
    );
    assert_eq!(core.groups(), Some(&Positions::default()));
}

#[test]
fn the_cap_counts_positions_and_a_group_already_counted_may_move() {
    let now = Instant::now();
    let mut core = master_with_one_message(now);
    // config() allows 8.
    for i in 0..8u64 {
        let out = step(&mut core, now, set(10 + i, &format!("g{i}"), 1));
        assert!(matches!(&out[..], [Action::Persist(_)]), "{out:?}");
    }
    let out = step(&mut core, now, set(20, "g8", 1));
    assert!(
        matches!(&out[..], [Action::Reply { result: Err(AppendError::BadRequest(why)), .. }] if why.contains("--max-groups")),
        "{out:?}"
    );
    let out = step(&mut core, now, set(21, "g3", 0));
    assert!(matches!(&out[..], [Action::Persist(_)]), "{out:?}");
}

#[test]
fn a_secondary_sends_a_request_to_the_master_and_follows_positions_through_cuts() {
    let now = Instant::now();
    let (mut b, _) = Core::new(config("b"), log(0), now);
    assert_eq!(
        step(&mut b, now, set(1, "g", 0)),
        refused(
            1,
            AppendError::NotMaster {
                master_addr: "a:1".into()
            }
        )
    );
    step(
        &mut b,
        now,
        Event::MasterOpened {
            conn: 3,
            master: "a".into(),
            epoch: 1,
        },
    );
    let sync = SecondaryEvent::Sync {
        conn: 3,
        truncate_after: None,
    };
    step(&mut b, now, Event::FromMaster(sync));
    let change = GroupChange::Set {
        group: "g".into(),
        log: crate::entry::DEFAULT_LOG,
        number: 1,
    };
    let entries = vec![entry(1, 1), change.entry(1, 2)];
    let out = step(
        &mut b,
        now,
        Event::FromMaster(SecondaryEvent::Entries { conn: 3, entries }),
    );
    assert!(matches!(&out[..], [Action::Persist(_)]), "{out:?}");
    assert_eq!(b.groups().unwrap().get("g", 0), Some(1));
    // A new master never had the group entry: cut, and the positions are
    // unknown until the runtime reads them from what the cut left.
    step(
        &mut b,
        now,
        Event::MasterOpened {
            conn: 4,
            master: "a".into(),
            epoch: 2,
        },
    );
    let sync = SecondaryEvent::Sync {
        conn: 4,
        truncate_after: Some(1),
    };
    let out = step(&mut b, now, Event::FromMaster(sync));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::CutLog { after: 1, .. })),
        "{out:?}"
    );
    assert_eq!(b.groups(), None);
    let report = StorageReport::Numbers {
        pairs: vec![(crate::entry::DEFAULT_LOG, 1)],
        groups: Positions::default(),
    };
    step(&mut b, now, Event::Storage(report));
    assert_eq!(b.groups(), Some(&Positions::default()));
}

#[test]
fn a_commit_that_expects_another_position_is_refused_and_one_sent_again_is_not() {
    let now = Instant::now();
    let mut core = master_with_one_message(now);
    let commit = |req, number, expect| Event::ChangeGroups {
        client: 7,
        req,
        request: GroupRequest::Set {
            group: "g".into(),
            log: "default".into(),
            number,
            expect,
        },
    };
    // A consumer's first commit, from 0 (the group has none yet: refused).
    let out = step(&mut core, now, commit(2, 1, Some(0)));
    assert!(
        matches!(&out[..], [Action::Reply { result: Err(AppendError::BadRequest(why)), .. }] if why.contains("is none, not 0")),
        "{out:?}"
    );
    let out = step(&mut core, now, commit(3, 0, None));
    assert!(matches!(&out[..], [Action::Persist(_)]), "{out:?}");
    let out = step(&mut core, now, commit(4, 1, Some(0)));
    assert!(matches!(&out[..], [Action::Persist(_)]), "{out:?}");
    // Sent again (its answer lost): the position is already 1.
    let out = step(&mut core, now, commit(5, 1, Some(0)));
    assert!(matches!(&out[..], [Action::Persist(_)]), "{out:?}");
    // Moved back by someone else (group set, no expectation)...
    let out = step(&mut core, now, commit(6, 0, None));
    assert!(matches!(&out[..], [Action::Persist(_)]), "{out:?}");
    // ...the consumer's next commit, from 1, is refused with the reason.
    let out = step(&mut core, now, commit(7, 1, Some(1)));
    assert!(
        matches!(&out[..], [Action::Reply { result: Err(AppendError::BadRequest(why)), .. }] if why.contains("is 0, not 1") && why.contains("one consumer per group")),
        "{out:?}"
    );
    assert_eq!(core.groups().unwrap().get("g", 0), Some(0));
}
