//! Unit tests of a node's core across roles: exact action lists.

use std::time::Instant;

use super::*;
use crate::entry::Position;
use crate::replication::keys::KeyWindow;
use crate::wire::{PeerStatus, WriteConcern};

fn config(id: &str) -> CoreConfig {
    CoreConfig {
        max_logs: 8,
        max_groups: 8,
        id: id.into(),
        nodes: vec![
            ("a".into(), "a:1".into()),
            ("b".into(), "b:1".into()),
            ("c".into(), "c:1".into()),
        ],
        master: "a".into(),
        timing: Timing::default(),
        max_message_bytes: 100,
        window: 100,
        batch: 10,
        seed: 1,
        durability: Durability::Synced,
        replicate_delay: Duration::ZERO,
        fail_rate: 0.0,
        authenticated: true,
        encrypted: false,
        failover: false,
    }
}

/// A log of `last` entries, 1..=5 of epoch 1 and the rest of epoch 2,
/// each a message of the default log numbered as its sequence number (as
/// a log of a release before logs had names reads).
fn log(last: Seq) -> LogState {
    let mut epochs = Vec::new();
    if last >= 1 {
        epochs.push((1, 1));
    }
    if last >= 6 {
        epochs.push((2, 6));
    }
    LogState {
        catalog: Default::default(),
        groups: Default::default(),
        epoch: if last >= 6 { 2 } else { 1 },
        last: Position {
            epoch: epochs.last().map_or(0, |(e, _)| *e),
            seq: last,
        },
        epochs,
        keys: KeyWindow::new(100, last + 1),
        vote: None,
        committed: 0,
        base: Default::default(),
        learner: false,
        configs: Vec::new(),
        numbers: crate::replication::numbers::Numbers::known(
            [(crate::entry::DEFAULT_LOG, last)],
            Vec::new(),
        ),
    }
}

/// The local log reports everything up to `upto` synced, written in log
/// generation `gen`.
fn synced(gen: u64, upto: Seq) -> Event {
    Event::Storage(StorageReport::Synced { gen, upto })
}

/// One secondary connects to master `core`: with it, two of three.
fn connect_one(core: &mut Core, now: Instant) -> Vec<Action> {
    let connected = MasterEvent::PeerConnected {
        peer: 0,
        conn: 1,
        last: Position::default(),
        stored: 0,
        epochs: vec![],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    step(core, now, Event::Link(connected))
}

fn step(core: &mut Core, now: Instant, event: Event) -> Vec<Action> {
    let mut out = Vec::new();
    core.step(now, event, &mut out);
    out
}

fn append(req: u64, key: Option<&str>, w: u32) -> Event {
    Event::Append(AppendRequest {
        log: crate::entry::DEFAULT_LOG,
        client: 7,
        req,
        key: key.map(String::from),
        w: WriteConcern::Nodes(w),
        timeout: None,
        message: bytes::Bytes::from_static(b"m"),
        progress: false,
    })
}

fn entry(epoch: Epoch, seq: Seq) -> Entry {
    Entry {
        epoch,
        seq,
        log: crate::entry::DEFAULT_LOG,
        number: seq,
        key: None,
        message: bytes::Bytes::from_static(b"x"),
    }
}

fn peers() -> Vec<(String, String)> {
    vec![("b".into(), "b:1".into()), ("c".into(), "c:1".into())]
}

#[test]
fn the_configured_master_starts_in_a_new_epoch_recorded_before_its_links_start() {
    let (core, out) = Core::new(config("a"), log(7), Instant::now());
    assert_eq!(
        out,
        vec![
            Action::RecordEpoch(3),
            Action::StartLinks {
                epoch: 3,
                peers: peers()
            }
        ]
    );
    assert!(core.is_master());
    assert_eq!(core.epoch(), 3);
    assert_eq!(core.stored(), 7);
    assert_eq!(
        core.view(),
        RoleView {
            role: NodeRole::Master,
            master_addr: "a:1".into()
        }
    );
}

#[test]
fn every_other_node_starts_as_a_secondary_with_nothing_to_do() {
    let (core, out) = Core::new(config("b"), log(7), Instant::now());
    assert_eq!(out, vec![]);
    assert!(!core.is_master());
    assert_eq!(core.epoch(), 2, "the epoch of its newest entry");
    assert_eq!(core.view().role, NodeRole::Secondary);
    assert_eq!(core.view().master_addr, "a:1");
}

#[test]
fn an_append_on_a_secondary_is_answered_with_the_masters_address() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("b"), log(0), now);
    assert_eq!(
        step(&mut core, now, append(4, None, 1)),
        vec![Action::Reply {
            client: 7,
            req: 4,
            result: Err(AppendError::NotMaster {
                master_addr: "a:1".into()
            })
        }]
    );
}

#[test]
fn a_master_connection_is_welcomed_with_the_secondarys_position() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("b"), log(7), now);
    let out = step(
        &mut core,
        now,
        Event::MasterOpened {
            conn: 3,
            master: "a".into(),
            epoch: 3,
        },
    );
    assert_eq!(
        out,
        vec![Action::ToMaster {
            conn: 3,
            frame: Frame::Welcome(Welcome {
                node: "b".into(),
                role: NodeRole::Secondary,
                master_addr: "a:1".into(),
                last: Position { epoch: 2, seq: 7 },
                stored: 7,
                max_message_bytes: 100,
                epochs: vec![(1, 1), (2, 6)],
                first: 1,
            })
        }]
    );
    // The secondary's core has the connection now: after the Sync, entries
    // on it are persisted.
    let sync = SecondaryEvent::Sync {
        conn: 3,
        truncate_after: None,
    };
    assert_eq!(step(&mut core, now, Event::FromMaster(sync)), vec![]);
    let entries = SecondaryEvent::Entries {
        conn: 3,
        entries: vec![entry(3, 8)],
    };
    assert_eq!(
        step(&mut core, now, Event::FromMaster(entries)),
        vec![Action::Persist(vec![entry(3, 8)])]
    );
    assert_eq!(
        step(&mut core, now, synced(0, 8)),
        vec![Action::ToMaster {
            conn: 3,
            frame: Frame::Ack { stored: 8 }
        }]
    );
    assert_eq!(core.epoch(), 3, "the epoch of the entry just taken");
}

#[test]
fn a_master_connection_is_refused_by_a_master_from_another_node_or_from_an_old_epoch() {
    let now = Instant::now();
    let opened = |master: &str, epoch| Event::MasterOpened {
        conn: 3,
        master: master.into(),
        epoch,
    };
    let (mut master, _) = Core::new(config("a"), log(0), now);
    assert_eq!(
        step(&mut master, now, opened("a", 1)),
        vec![Action::RefuseMaster {
            conn: 3,
            reason: "node a is itself the master of this cluster".into()
        }]
    );
    let (mut secondary, _) = Core::new(config("b"), log(7), now);
    assert_eq!(
        step(&mut secondary, now, opened("c", 9)),
        vec![Action::RefuseMaster {
            conn: 3,
            reason: "node 'c' is not the master of this cluster (the master is 'a')".into()
        }]
    );
    assert_eq!(
        step(&mut secondary, now, opened("a", 1)),
        vec![Action::RefuseMaster {
            conn: 3,
            reason: "node 'a' speaks for epoch 1, but node b already holds entries of epoch 2: a stale master is refused".into()
        }]
    );
    // The same epoch as its newest entry is the current master's.
    assert!(matches!(
        step(&mut secondary, now, opened("a", 2)).as_slice(),
        [Action::ToMaster {
            frame: Frame::Welcome(_),
            ..
        }]
    ));
}

#[test]
fn a_master_answers_on_a_write_only_where_writing_counts_and_ignores_an_old_generation() {
    for durability in [Durability::Synced, Durability::Written] {
        let now = Instant::now();
        let cfg = CoreConfig {
            durability,
            ..config("a")
        };
        let (mut core, _) = Core::new(cfg, log(0), now);
        // Appends are taken with a quorum: one secondary makes two of three.
        connect_one(&mut core, now);
        let out = step(&mut core, now, append(1, None, 1));
        assert!(matches!(out.as_slice(), [Action::Persist(_)]), "{out:?}");
        let report = |gen, synced| {
            let (gen, upto) = (gen, 1);
            Event::Storage(match synced {
                true => StorageReport::Synced { gen, upto },
                false => StorageReport::Written { gen, upto },
            })
        };
        // A report about another generation's write says nothing.
        assert_eq!(step(&mut core, now, report(5, true)), vec![]);
        let written = step(&mut core, now, report(0, false));
        let synced = step(&mut core, now, report(0, true));
        let answer = vec![Action::Reply {
            client: 7,
            req: 1,
            result: Ok(1),
        }];
        match durability {
            Durability::Synced => assert_eq!((written, synced), (vec![], answer)),
            Durability::Written => assert_eq!((written, synced), (answer, vec![])),
        }
    }
}

#[test]
fn a_master_persists_an_append_and_answers_it_once_stored_on_w_nodes() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("a"), log(0), now);
    // Quorum: one secondary connected makes two of three.
    assert_eq!(
        connect_one(&mut core, now),
        vec![Action::ToPeer {
            peer: 0,
            conn: 1,
            frame: Frame::Sync {
                truncate_after: None
            }
        }]
    );
    let out = step(&mut core, now, append(1, Some("k"), 1));
    let [Action::Persist(batch)] = out.as_slice() else {
        panic!("expected one batch to persist, got {out:?}");
    };
    assert_eq!((batch.len(), batch[0].seq, batch[0].epoch), (1, 1, 2));
    assert_eq!(
        step(&mut core, now, synced(0, 1)),
        vec![Action::Reply {
            client: 7,
            req: 1,
            result: Ok(1)
        }]
    );
    assert_eq!(core.stored(), 1);
    // Retention keeps what the connected secondary still lacks (it holds
    // nothing) and what is not known committed (nothing is: w=1).
    assert_eq!(core.retention_marks(now), (1, 0));
    // Storage events reach the master's core: a failed sync cuts back.
    let out = step(
        &mut core,
        now,
        Event::Storage(StorageReport::SyncFailed {
            reason: "EIO".into(),
        }),
    );
    assert_eq!(
        out,
        vec![Action::CutLog {
            after: 1,
            why: "cutting the log back to what is durable",
            save: false,
        }]
    );
    // A report meant for a secondary does nothing on a master.
    let heartbeat = SecondaryEvent::Heartbeat {
        conn: 1,
        committed: 0,
    };
    assert_eq!(step(&mut core, now, Event::FromMaster(heartbeat)), vec![]);
}

#[test]
fn stepping_down_answers_waiters_as_indefinite_stops_links_and_cuts_nothing() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("a"), log(5), now);
    let connected = MasterEvent::PeerConnected {
        peer: 0,
        conn: 1,
        last: Position { epoch: 1, seq: 5 },
        stored: 5,
        epochs: vec![(1, 1)],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    step(&mut core, now, Event::Link(connected));
    step(&mut core, now, append(1, Some("k"), 2));
    step(&mut core, now, synced(0, 6));
    let mut out = Vec::new();
    core.become_secondary(&mut out);
    assert_eq!(
        out,
        vec![
            Action::Reply {
                client: 7,
                req: 1,
                result: Err(AppendError::ShuttingDown { seq: Some(6) })
            },
            Action::StopLinks
        ]
    );
    assert!(!core.is_master());
    assert_eq!(core.stored(), 6, "nothing it held is cut");
    assert_eq!(core.epoch(), 2, "its last entry is of the epoch it ran");
    // A link's late report is dropped; an append is sent to the master.
    let late = MasterEvent::Ack {
        peer: 0,
        conn: 1,
        stored: 6,
    };
    assert_eq!(step(&mut core, now, Event::Link(late)), vec![]);
    assert!(matches!(
        step(&mut core, now, append(2, None, 1)).as_slice(),
        [Action::Reply {
            result: Err(AppendError::NotMaster { .. }),
            ..
        }]
    ));
    // Stepping down twice does nothing.
    let mut again = Vec::new();
    core.become_secondary(&mut again);
    assert_eq!(again, vec![]);
}

#[test]
fn taking_over_drops_the_masters_connection_and_starts_a_newer_epoch_keeping_keys() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("b"), log(0), now);
    step(
        &mut core,
        now,
        Event::MasterOpened {
            conn: 3,
            master: "a".into(),
            epoch: 4,
        },
    );
    let sync = SecondaryEvent::Sync {
        conn: 3,
        truncate_after: None,
    };
    step(&mut core, now, Event::FromMaster(sync));
    let mut keyed = entry(4, 1);
    keyed.key = Some("k".into());
    // The retry below sends the same message.
    keyed.message = bytes::Bytes::from_static(b"m");
    let entries = SecondaryEvent::Entries {
        conn: 3,
        entries: vec![keyed],
    };
    step(&mut core, now, Event::FromMaster(entries));
    step(&mut core, now, synced(0, 1));
    let mut out = Vec::new();
    core.become_master(now, &mut out);
    assert_eq!(
        out,
        vec![
            Action::RefuseMaster {
                conn: 3,
                reason: "node b is master now".into()
            },
            Action::RecordEpoch(5),
            Action::StartLinks {
                epoch: 5,
                peers: vec![("a".into(), "a:1".into()), ("c".into(), "c:1".into())]
            }
        ]
    );
    assert!(core.is_master());
    assert_eq!(core.epoch(), 5);
    assert_eq!(core.stored(), 1);
    // The key of the entry it took as a secondary is known: a retry is
    // answered with its sequence number once quorum is known.
    let connected = MasterEvent::PeerConnected {
        peer: 0,
        conn: 9,
        last: Position { epoch: 4, seq: 1 },
        stored: 1,
        epochs: vec![(4, 1)],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    step(&mut core, now, Event::Link(connected));
    assert_eq!(
        step(&mut core, now, append(2, Some("k"), 1)),
        vec![Action::Reply {
            client: 7,
            req: 2,
            result: Ok(1)
        }]
    );
    // Taking over twice does nothing.
    let mut again = Vec::new();
    core.become_master(now, &mut again);
    assert_eq!(again, vec![]);
}

#[test]
fn a_secondary_reports_its_own_health_and_the_clusters_majority() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("b"), log(7), now);
    let report = core.health(now);
    assert_eq!(report.role, NodeRole::Secondary);
    assert_eq!((report.epoch, report.stored, report.needed), (2, 7, 2));
    assert_eq!((report.authenticated, report.encrypted), (true, false));
    assert_eq!(report.nodes.len(), 1);
    assert_eq!(report.nodes[0].status, PeerStatus::Unhealthy);
    assert_eq!(report.nodes[0].addr, "b:1");
    step(
        &mut core,
        now,
        Event::MasterOpened {
            conn: 3,
            master: "a".into(),
            epoch: 2,
        },
    );
    assert_eq!(core.health(now).nodes[0].status, PeerStatus::Healthy);
}

#[test]
fn a_master_reports_every_node_and_is_read_only_without_a_quorum() {
    let now = Instant::now();
    let (core, _) = Core::new(config("a"), log(0), now);
    let later = now + Timing::default().unhealthy_after * 2;
    let report = core.health(later);
    assert_eq!(report.role, NodeRole::Master);
    assert_eq!((report.epoch, report.needed, report.reachable), (2, 2, 1));
    assert!(report.read_only);
    assert_eq!(report.nodes.len(), 3);
}

#[test]
fn a_stored_report_from_before_a_cut_is_ignored() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("b"), log(0), now);
    let opened = Event::MasterOpened {
        conn: 3,
        master: "a".into(),
        epoch: 1,
    };
    step(&mut core, now, opened);
    let sync = SecondaryEvent::Sync {
        conn: 3,
        truncate_after: None,
    };
    step(&mut core, now, Event::FromMaster(sync));
    let entries = SecondaryEvent::Entries {
        conn: 3,
        entries: vec![entry(1, 1), entry(1, 2)],
    };
    step(&mut core, now, Event::FromMaster(entries));
    assert_eq!(core.generation(), 0);
    // The master reconnects and cuts entry 2; the node writes 2 anew.
    let opened = Event::MasterOpened {
        conn: 4,
        master: "a".into(),
        epoch: 2,
    };
    step(&mut core, now, opened);
    let sync = SecondaryEvent::Sync {
        conn: 4,
        truncate_after: Some(1),
    };
    let out = step(&mut core, now, Event::FromMaster(sync));
    assert!(matches!(out.as_slice(), [Action::CutLog { after: 1, .. }]));
    assert_eq!(core.generation(), 1);
    // The syncer's report of the old write of 1..=2 says nothing now.
    assert_eq!(step(&mut core, now, synced(0, 2)), vec![]);
    assert_eq!(core.stored(), 0);
    assert_eq!(
        step(&mut core, now, synced(1, 1)),
        vec![Action::ToMaster {
            conn: 4,
            frame: Frame::Ack { stored: 1 }
        }]
    );
}

#[test]
fn the_next_deadline_is_the_role_cores() {
    let now = Instant::now();
    let (mut master, _) = Core::new(config("a"), log(0), now);
    connect_one(&mut master, now);
    // The new connection's first heartbeat is due at once, the next one an
    // interval later.
    assert_eq!(master.poll_timeout(now), Some(now));
    step(&mut master, now, Event::Tick);
    assert_eq!(
        master.poll_timeout(now),
        Some(now + Timing::default().heartbeat_interval)
    );
    let mut cfg = config("b");
    cfg.replicate_delay = Duration::from_millis(300);
    let (mut secondary, _) = Core::new(cfg, log(0), now);
    assert_eq!(secondary.poll_timeout(now), None);
    let opened = Event::MasterOpened {
        conn: 3,
        master: "a".into(),
        epoch: 1,
    };
    step(&mut secondary, now, opened);
    let sync = SecondaryEvent::Sync {
        conn: 3,
        truncate_after: None,
    };
    step(&mut secondary, now, Event::FromMaster(sync));
    let entries = SecondaryEvent::Entries {
        conn: 3,
        entries: vec![entry(1, 1)],
    };
    step(&mut secondary, now, Event::FromMaster(entries));
    assert_eq!(
        secondary.poll_timeout(now),
        Some(now + Duration::from_millis(300))
    );
}

#[test]
fn every_cut_a_master_asks_for_starts_a_new_generation() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("a"), log(0), now);
    connect_one(&mut core, now);
    step(&mut core, now, append(1, None, 1));
    for generation in 1..=2 {
        let failed = Event::Storage(StorageReport::SyncFailed {
            reason: "EIO".into(),
        });
        let out = step(&mut core, now, failed);
        assert!(matches!(
            out.as_slice(),
            [Action::CutLog { after: 0, .. }, ..]
        ));
        assert_eq!(core.generation(), generation);
    }
    // A report from before the cuts: ignored.
    assert_eq!(step(&mut core, now, synced(0, 1)), vec![]);
    assert_eq!(core.stored(), 0);
}

mod election;
mod groups;
mod learner;
mod members;
mod membership;
mod retention;

/// A connected secondary `peer` of a master whose log ends at `last`
/// (epochs as in [`log`]).
fn connected(peer: usize, conn: ConnId, last: Seq) -> Event {
    let state = log(last);
    Event::Link(MasterEvent::PeerConnected {
        peer,
        conn,
        last: state.last,
        stored: last,
        epochs: state.epochs,
        version: crate::wire::NODE_PROTOCOL_VERSION,
    })
}

#[test]
fn a_static_master_whose_failed_sync_cuts_sent_entries_goes_on_in_a_new_epoch() {
    let now = Instant::now();
    let (mut core, _) = Core::new(config("a"), log(7), now);
    step(&mut core, now, connected(0, 1, 7));
    step(&mut core, now, connected(1, 2, 7));
    step(&mut core, now, append(1, None, 2));
    let mut out = Vec::new();
    core.flush(now, &mut out);
    assert_eq!(out.len(), 2, "seq 8 sent to both before it is synced");
    let failed = Event::Storage(StorageReport::SyncFailed {
        reason: "EIO".into(),
    });
    let out = step(&mut core, now, failed);
    assert_eq!(
        out,
        vec![
            Action::CutLog {
                after: 7,
                why: "cutting the log back to what is durable; some of it had been sent to secondaries, so this master goes on in a new epoch and they cut it too when they reconnect",
                save: false
            },
            Action::Reply {
                client: 7,
                req: 1,
                result: Err(AppendError::Storage(
                    "EIO; the message was not stored".into()
                ))
            },
            Action::RecordEpoch(4),
            Action::StopLinks,
            Action::StartLinks {
                epoch: 4,
                peers: peers()
            },
        ]
    );
    assert!(core.is_master());
    assert_eq!(core.epoch(), 4);
    // Until a secondary is back, an append waits (it is not refused); so
    // it would until the log reports its numbers as cut.
    assert_eq!(step(&mut core, now, append(2, None, 1)), vec![]);
    let numbers = StorageReport::Numbers {
        pairs: vec![(crate::entry::DEFAULT_LOG, 7)],
        groups: Default::default(),
    };
    assert_eq!(step(&mut core, now, Event::Storage(numbers)), vec![]);
    // A secondary that holds the cut seq 8 (of epoch 3) is told to cut it
    // by its handshake; the waiting append then takes seq 8 again, in the
    // new epoch.
    let holding_old_eight = Event::Link(MasterEvent::PeerConnected {
        peer: 0,
        conn: 3,
        last: Position { epoch: 3, seq: 8 },
        stored: 8,
        epochs: vec![(1, 1), (2, 6), (3, 8)],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    });
    let out = step(&mut core, now, holding_old_eight);
    let mut eight = entry(4, 8);
    eight.message = bytes::Bytes::from_static(b"m");
    assert_eq!(
        out,
        vec![
            Action::ToPeer {
                peer: 0,
                conn: 3,
                frame: Frame::Sync {
                    truncate_after: Some(7)
                }
            },
            Action::Persist(vec![eight])
        ]
    );
}

#[test]
fn an_elected_master_whose_failed_sync_cuts_sent_entries_steps_down() {
    let now = Instant::now();
    let mut cfg = config("a");
    cfg.failover = true;
    let (mut core, _) = Core::new(cfg, log(7), now);
    core.become_master(now, &mut Vec::new());
    assert!(core.is_master());
    step(&mut core, now, connected(0, 1, 7));
    step(&mut core, now, connected(1, 2, 7));
    step(&mut core, now, append(1, None, 2));
    let mut out = Vec::new();
    core.flush(now, &mut out);
    assert!(!out.is_empty(), "entries sent before they are synced");
    let failed = Event::Storage(StorageReport::SyncFailed {
        reason: "EIO".into(),
    });
    let out = step(&mut core, now, failed);
    assert!(!core.is_master(), "{out:?}");
    assert!(out.contains(&Action::StopLinks), "{out:?}");
    // Indefinite: a secondary holding the cut entry may be elected.
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::Reply {
                result: Err(AppendError::ShuttingDown { seq: None }),
                ..
            }
        )),
        "{out:?}"
    );
}
