//! A log's own retention: the master writes the trims the runtime's
//! arithmetic asks for, never past the log's last message but one (which
//! numbers the next), answered to nobody; a log without a retention of its
//! own, or a trim that goes nowhere new, writes nothing. Exact action lists.

use super::*;
use crate::replication::catalog::{Change, LogRetention};
use crate::replication::role::catalog::LogChange;

fn to(log: crate::entry::LogId, req: u64) -> Event {
    Event::Append(AppendRequest {
        log,
        client: 7,
        req,
        key: None,
        w: WriteConcern::Nodes(1),
        timeout: None,
        message: bytes::Bytes::from_static(b"m"),
        progress: false,
    })
}

const RETENTION: LogRetention = LogRetention {
    bytes: Some(10),
    age_secs: None,
};

fn create(req: u64) -> Event {
    Event::ChangeLogs {
        client: 7,
        req,
        change: LogChange::Create("short".into(), RETENTION),
    }
}

/// Secondary `peer` (0 is b, 1 is c) connects saying node version
/// `version`.
fn connect(core: &mut Core, now: Instant, peer: usize, version: u32) {
    let connected = MasterEvent::PeerConnected {
        peer,
        conn: 1 + peer as u64,
        last: Position::default(),
        stored: 0,
        epochs: vec![],
        version,
    };
    step(core, now, Event::Link(connected));
}

#[test]
fn a_log_with_its_own_retention_is_created_only_while_every_member_reads_it() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("a"), log(0), now);
    connect(&mut core, now, 0, crate::wire::NODE_PROTOCOL_VERSION);
    let refused = |out: Vec<Action>| match &out[..] {
        [Action::Reply {
            result: Err(AppendError::BadRequest(why)),
            ..
        }] => why.clone(),
        _ => panic!("{out:?}"),
    };
    // c is not connected: its release cannot be told.
    let why = refused(step(&mut core, now, create(1)));
    assert!(
        why.contains("node protocol 11") && why.contains(" c"),
        "{why}"
    );
    // c says 10: it would not read the log's trims.
    connect(&mut core, now, 1, 10);
    let why = refused(step(&mut core, now, create(2)));
    assert!(
        why.ends_with("upgrade or start c, then create the log again; nothing was created"),
        "{why}"
    );
    assert_eq!(core.logs().id_of("short"), None);
    // A log without a retention of its own needs nothing of the kind.
    let plain = Event::ChangeLogs {
        client: 7,
        req: 3,
        change: LogChange::Create("plain".into(), LogRetention::default()),
    };
    assert!(matches!(
        &step(&mut core, now, plain)[..],
        [Action::Persist(_)]
    ));
}

#[test]
fn a_master_trims_a_log_of_its_own_retention_up_to_its_last_message_but_one() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("a"), log(0), now);
    connect(&mut core, now, 0, crate::wire::NODE_PROTOCOL_VERSION);
    connect(&mut core, now, 1, crate::wire::NODE_PROTOCOL_VERSION);
    let retention = RETENTION;
    let out = step(&mut core, now, create(1));
    let Some(Action::Persist(created)) = out.first() else {
        panic!("{out:?}")
    };
    let (epoch, seq) = (created[0].epoch, created[0].seq);
    assert_eq!(core.logs().retention(1), retention);
    for req in 2..5 {
        step(&mut core, now, to(1, req));
    }
    // Numbers 1 to 3 at seq + 1 ..= seq + 3: the trim stops at 2.
    let out = step(&mut core, now, Event::TrimLogs(vec![(1, 3)]));
    let trim = Change::Trim {
        id: 1,
        name: "short".into(),
        through: 2,
    };
    assert_eq!(out, vec![Action::Persist(vec![trim.entry(epoch, seq + 4)])]);
    assert_eq!(core.logs().trimmed(1), 2);
    // Nothing new to trim, a log without a retention of its own, a log
    // that does not exist: nothing written.
    assert_eq!(step(&mut core, now, Event::TrimLogs(vec![(1, 3)])), vec![]);
    assert_eq!(step(&mut core, now, Event::TrimLogs(vec![(1, 1)])), vec![]);
    step(&mut core, now, to(0, 9));
    assert_eq!(step(&mut core, now, Event::TrimLogs(vec![(0, 1)])), vec![]);
    assert_eq!(step(&mut core, now, Event::TrimLogs(vec![(7, 1)])), vec![]);
    // A new message lets the one before it go.
    step(&mut core, now, to(1, 10));
    let out = step(&mut core, now, Event::TrimLogs(vec![(1, 4)]));
    let trim = Change::Trim {
        id: 1,
        name: "short".into(),
        through: 3,
    };
    assert_eq!(out, vec![Action::Persist(vec![trim.entry(epoch, seq + 7)])]);
}
