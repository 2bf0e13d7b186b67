//! The configuration a node acts on follows its log's configuration
//! entries: taken when written, dropped when cut. Exact action lists.

use super::*;

fn opened(conn: ConnId) -> Event {
    Event::MasterOpened {
        conn,
        master: "a".into(),
        epoch: 1,
    }
}

#[test]
fn a_secondary_acts_on_a_configuration_entry_once_written_and_forgets_it_once_cut() {
    let now = Instant::now();
    let (mut b, _) = Core::new(config("b"), log(0), now);
    step(&mut b, now, opened(3));
    let sync = SecondaryEvent::Sync {
        conn: 3,
        truncate_after: None,
    };
    step(&mut b, now, Event::FromMaster(sync));
    assert_eq!(b.members().voter_count(), 3);
    // The master removes c.
    let without_c = b.members().without("c").unwrap();
    let entries = vec![entry(1, 1), without_c.entry(1, 2)];
    let out = step(
        &mut b,
        now,
        Event::FromMaster(SecondaryEvent::Entries {
            conn: 3,
            entries: entries.clone(),
        }),
    );
    assert_eq!(out, vec![Action::Persist(entries)]);
    assert_eq!(b.members(), &without_c);
    // A new master of epoch 2 never had it: cut, and c counts again.
    let opened2 = Event::MasterOpened {
        conn: 4,
        master: "a".into(),
        epoch: 2,
    };
    step(&mut b, now, opened2);
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
    assert_eq!(b.members().voter_count(), 3);
    assert!(b.members().is_voter("c"));
    // At start, its log's configuration entries are what it acts on.
    let state = LogState {
        configs: vec![(2, without_c.clone())],
        ..log(2)
    };
    let (c_view, _) = Core::new(config("c"), state, now);
    assert_eq!(c_view.members(), &without_c);
    assert!(!c_view.is_voter());
}

#[test]
fn a_reset_replaces_the_members_with_those_the_master_says_are_in_force_at_its_base() {
    let now = Instant::now();
    // b's log holds a change its master never committed: c removed.
    let (b, _) = Core::new(config("b"), log(0), now);
    let without_c = b.members().without("c").unwrap();
    let with_d = b.members().with_learner("d", "d:1").unwrap();
    let state = LogState {
        configs: vec![(2, without_c.clone())],
        ..log(2)
    };
    let (mut b, _) = Core::new(config("b"), state, now);
    assert_eq!(b.members(), &without_c);
    let reset = |conn, configs| {
        Event::FromMaster(SecondaryEvent::Reset {
            conn,
            base: Position { epoch: 1, seq: 10 },
            epochs: vec![(1, 1)],
            configs,
            numbers: Vec::new(),
            logs: bytes::Bytes::new(),
            groups: bytes::Bytes::new(),
        })
    };
    // The master says d was added at 6, in force at the base 10.
    step(&mut b, now, opened(3));
    let given = Some(vec![(6, with_d.encode())]);
    let out = step(&mut b, now, reset(3, given.clone()));
    assert_eq!(
        out,
        vec![Action::ResetLog {
            base: Position { epoch: 1, seq: 10 },
            epochs: vec![(1, 1)],
            configs: given,
            numbers: Vec::new(),
            logs: bytes::Bytes::new(),
            groups: bytes::Bytes::new(),
        }]
    );
    assert_eq!(b.members(), &with_d);
    // A master that says none was made: --cluster's members again.
    step(&mut b, now, opened(4));
    step(&mut b, now, reset(4, Some(vec![])));
    assert_eq!(b.members().voter_count(), 3);
    assert!(b.members().is_voter("c") && b.members().get("d").is_none());
    // One too old to say: the node's own up to the base stay.
    let state = LogState {
        configs: vec![(2, without_c.clone()), (12, with_d.clone())],
        ..log(12)
    };
    let (mut b, _) = Core::new(config("b"), state, now);
    let opened2 = Event::MasterOpened {
        conn: 5,
        master: "a".into(),
        epoch: 2,
    };
    step(&mut b, now, opened2);
    let out = step(&mut b, now, reset(5, None));
    assert!(matches!(&out[..], [Action::ResetLog { .. }]), "{out:?}");
    assert_eq!(b.members(), &without_c);
}

#[test]
fn a_core_says_whether_its_members_come_from_its_log_and_from_which_entry() {
    let now = Instant::now();
    let (b, _) = Core::new(config("b"), log(2), now);
    assert!(!b.members_from_log());
    assert_eq!(b.config_seq(), 0);
    let without_c = b.members().without("c").unwrap();
    let state = LogState {
        configs: vec![(2, without_c)],
        ..log(2)
    };
    let (b, _) = Core::new(config("b"), state, now);
    assert!(b.members_from_log());
    assert_eq!(b.config_seq(), 2);
}
