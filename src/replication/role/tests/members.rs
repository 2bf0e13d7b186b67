//! Only members take part, at epochs an election could have reached:
//! exact action lists.

use super::election::{answer, asked, fconfig, fresh};
use super::*;
use crate::entry::{next_epoch, EPOCH_LIMIT};

fn opened(master: &str, epoch: Epoch) -> Event {
    Event::MasterOpened {
        conn: 3,
        master: master.into(),
        epoch,
    }
}

#[test]
fn epochs_stop_at_the_highest_an_election_can_reach() {
    assert_eq!(next_epoch(0), Some(1));
    assert_eq!(next_epoch(EPOCH_LIMIT - 2), Some(EPOCH_LIMIT - 1));
    assert_eq!(next_epoch(EPOCH_LIMIT - 1), None);
    assert_eq!(next_epoch(u64::MAX), None);
    // A log that reached it (an older release took it from a forged
    // frame) is refused at start, saying what to do: a forged epoch
    // record leaves the entries sound, forged entries do not.
    assert!(log(7).check().is_ok());
    let record = LogState {
        epoch: u64::MAX,
        ..log(7)
    };
    let err = record.check().unwrap_err().to_string();
    assert!(
        err.contains(&format!("its file 'epoch' records epoch {}", u64::MAX))
            && err.contains("write 2 (the epoch of the last entry) into that file")
            && err.contains("do not move the data directory aside"),
        "{err}"
    );
    let entries = LogState {
        last: Position {
            epoch: EPOCH_LIMIT,
            seq: 7,
        },
        epochs: vec![(1, 1), (EPOCH_LIMIT, 6)],
        ..log(7)
    };
    let err = entries.check().unwrap_err().to_string();
    assert!(
        err.contains(&format!("its log holds entries of epoch {EPOCH_LIMIT}"))
            && err.contains("on a minority of the nodes only"),
        "{err}"
    );
}

#[test]
fn a_master_connection_from_a_stranger_or_at_an_absurd_epoch_is_refused() {
    let now = Instant::now();
    for cfg in [config("b"), fconfig("b")] {
        let (mut b, _) = Core::new(cfg, log(7), now);
        let before = b.epoch();
        assert_eq!(
            step(&mut b, now, opened("9", u64::MAX)),
            vec![Action::RefuseMaster {
                conn: 3,
                reason: "a master connection from node '9', which is not a member of this cluster (members: a, b, c), refused".into()
            }]
        );
        assert_eq!(
            step(&mut b, now, opened("a", EPOCH_LIMIT)),
            vec![Action::RefuseMaster {
                conn: 3,
                reason: format!("a master connection from node 'a' claims epoch {EPOCH_LIMIT}, which no election can reach (epochs stay below {EPOCH_LIMIT}): a forged or corrupt frame, refused")
            }]
        );
        assert_eq!(b.epoch(), before, "nothing was adopted");
        assert_eq!(b.term().2, None, "no master taken");
    }
}

#[test]
fn a_vote_request_from_a_stranger_at_an_absurd_epoch_or_with_an_impossible_log_is_refused() {
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let last = Position { epoch: 2, seq: 7 };
    let refused = |reason: &str| {
        vec![Action::RefuseCandidate {
            conn: 40,
            reason: reason.into(),
        }]
    };
    assert_eq!(
        step(&mut b, now, asked("9", u64::MAX, last, false)),
        refused("a vote request from node '9', which is not a member of this cluster (members: a, b, c), refused")
    );
    assert_eq!(
        step(&mut b, now, asked("9", 3, last, true)),
        refused("a vote request from node '9', which is not a member of this cluster (members: a, b, c), refused")
    );
    assert_eq!(
        step(&mut b, now, asked("a", u64::MAX, last, false)),
        refused(&format!("a vote request from node 'a' claims epoch {}, which no election can reach (epochs stay below {EPOCH_LIMIT}): a forged or corrupt frame, refused", u64::MAX))
    );
    let beyond = Position {
        epoch: u64::MAX,
        seq: 1,
    };
    assert_eq!(
        step(&mut b, now, asked("a", 3, beyond, false)),
        refused(&format!("a vote request from node 'a' for epoch 3 claims a last entry of epoch {}: a forged or corrupt frame, refused", u64::MAX))
    );
    // Nothing recorded, nothing moved: a member's honest request is still
    // answered as before.
    assert_eq!(b.term(), (2, None, None));
    assert!(matches!(
        &step(&mut b, now, asked("a", 3, last, false))[..],
        [
            Action::RecordVote { epoch: 3, .. },
            Action::AnswerVote { .. }
        ]
    ));
}

#[test]
fn a_static_node_refuses_a_strangers_vote_request_too() {
    let now = Instant::now();
    let (mut b, _) = Core::new(config("b"), log(7), now);
    let last = Position { epoch: 2, seq: 7 };
    assert!(matches!(
        &step(&mut b, now, asked("9", 3, last, false))[..],
        [Action::RefuseCandidate { conn: 40, .. }]
    ));
}

#[test]
fn a_strangers_vote_does_not_elect_and_an_absurd_epoch_is_not_adopted() {
    let now = Instant::now();
    let (mut a, _) = Core::new(fconfig("a"), fresh(), now);
    step(&mut a, now, Event::Tick);
    // Pre-votes from two strangers would make a majority of three.
    let stranger = |who| answer(who, 1, 0, true, true);
    let disregarded = |who: &str| {
        vec![Action::Disregard {
            reason: format!("a vote answer from node '{who}', which is not a member of this cluster (members: a, b, c), refused"),
        }]
    };
    assert_eq!(step(&mut a, now, stranger("8")), disregarded("8"));
    assert_eq!(step(&mut a, now, stranger("9")), disregarded("9"));
    assert!(!a.is_master());
    assert_eq!(a.epoch(), 0);
    // A member's no naming an epoch no election reaches: not adopted.
    assert_eq!(
        step(&mut a, now, answer("b", 1, u64::MAX, false, true)),
        vec![Action::Disregard {
            reason: format!("a vote answer from node 'b' claims epoch {}, which no election can reach (epochs stay below {EPOCH_LIMIT}): a forged or corrupt frame, refused", u64::MAX),
        }]
    );
    assert_eq!(
        step(&mut a, now, Event::NewerEpoch { epoch: u64::MAX }),
        vec![Action::Disregard {
            reason: format!("a node refusing this one claims epoch {}, which no election can reach (epochs stay below {EPOCH_LIMIT}): a forged or corrupt frame, refused", u64::MAX),
        }]
    );
    assert_eq!(a.epoch(), 0);
    // The members' own votes still elect it.
    step(&mut a, now, answer("b", 1, 0, true, true));
    step(&mut a, now, answer("c", 1, 1, true, false));
    assert!(a.is_master());
}

#[test]
fn entries_of_an_epoch_newer_than_their_masters_are_refused() {
    let now = Instant::now();
    let (mut b, _) = Core::new(config("b"), log(7), now);
    assert!(matches!(
        &step(&mut b, now, opened("a", 3))[..],
        [Action::ToMaster { .. }]
    ));
    let sync = SecondaryEvent::Sync {
        conn: 3,
        truncate_after: None,
    };
    step(&mut b, now, Event::FromMaster(sync));
    let entries = SecondaryEvent::Entries {
        conn: 3,
        entries: vec![entry(3, 8), entry(u64::MAX, 9)],
    };
    assert_eq!(
        step(&mut b, now, Event::FromMaster(entries)),
        vec![Action::RefuseMaster {
            conn: 3,
            reason: format!(
                "the master of epoch 3 sent epoch {}, newer than its own: a forged or corrupt frame, refused",
                u64::MAX
            )
        }]
    );
    assert_eq!(b.stored(), 7, "nothing of it was taken");
    // The connection is forgotten: what comes on it later is ignored.
    let more = SecondaryEvent::Entries {
        conn: 3,
        entries: vec![entry(4, 8)],
    };
    assert_eq!(step(&mut b, now, Event::FromMaster(more)), vec![]);
    // A reset naming a newer epoch is refused the same way.
    step(&mut b, now, opened("a", 3));
    let reset = SecondaryEvent::Reset {
        conn: 3,
        base: Position { epoch: 9, seq: 20 },
        epochs: vec![(1, 1)],
        configs: None,
        numbers: Vec::new(),
        logs: bytes::Bytes::new(),
        groups: bytes::Bytes::new(),
    };
    assert!(matches!(
        &step(&mut b, now, Event::FromMaster(reset))[..],
        [Action::RefuseMaster { conn: 3, .. }]
    ));
    assert_eq!(b.stored(), 7);
}

#[test]
fn a_reset_to_a_base_no_log_has_is_refused() {
    let now = Instant::now();
    let (mut b, _) = Core::new(config("b"), log(7), now);
    let reset = |conn, epochs, configs| {
        Event::FromMaster(SecondaryEvent::Reset {
            conn,
            base: Position { epoch: 2, seq: 20 },
            epochs,
            configs,
            numbers: Vec::new(),
            logs: bytes::Bytes::new(),
            groups: bytes::Bytes::new(),
        })
    };
    let refused = |out: Vec<Action>, conn: ConnId, why: &str| {
        assert!(
            matches!(&out[..], [Action::RefuseMaster { conn: c, reason }] if *c == conn && reason.contains(why)),
            "{out:?}"
        );
    };
    let members =
        Membership::voters(&[("a".into(), "a:1".into()), ("b".into(), "b:1".into())]).encode();
    // Epochs out of order, then one past the base.
    step(&mut b, now, opened("a", 2));
    let out = step(&mut b, now, reset(3, vec![(2, 1), (1, 5)], None));
    refused(out, 3, "a Reset to an impossible base");
    step(&mut b, now, opened("a", 2));
    let out = step(&mut b, now, reset(3, vec![(1, 1), (2, 21)], None));
    refused(out, 3, "a Reset to an impossible base");
    // Two configurations, one after the base, one that does not read.
    for configs in [
        vec![(3, members.clone()), (9, members.clone())],
        vec![(21, members.clone())],
        vec![(3, bytes::Bytes::from("nonsense"))],
    ] {
        step(&mut b, now, opened("a", 2));
        let out = step(&mut b, now, reset(3, vec![(1, 1), (2, 9)], Some(configs)));
        refused(out, 3, "not one readable configuration");
    }
    assert_eq!(b.stored(), 7, "nothing was taken");
    // A sound one is taken.
    step(&mut b, now, opened("a", 2));
    let out = step(
        &mut b,
        now,
        reset(3, vec![(1, 1), (2, 9)], Some(vec![(3, members)])),
    );
    assert!(matches!(&out[..], [Action::ResetLog { .. }]), "{out:?}");
}
