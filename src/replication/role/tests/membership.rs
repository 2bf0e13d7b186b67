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
