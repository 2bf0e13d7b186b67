//! Elections, with failover on: exact action lists.

use super::*;

pub(super) fn fconfig(id: &str) -> CoreConfig {
    CoreConfig {
        failover: true,
        ..config(id)
    }
}

/// The log of a node of a new cluster: empty, no epoch yet.
pub(super) fn fresh() -> LogState {
    LogState { epoch: 0, ..log(0) }
}

const T: Duration = Duration::from_millis(1000);

pub(super) fn vote_request(epoch: Epoch, last: Position, pre: bool) -> Vec<Action> {
    vec![Action::RequestVotes {
        epoch,
        pre,
        last,
        peers: peers(),
    }]
}

pub(super) fn answer(voter: &str, epoch: Epoch, term: Epoch, granted: bool, pre: bool) -> Event {
    Event::VoteAnswered(VoteAnswer {
        voter: voter.into(),
        epoch,
        term,
        granted,
        pre,
        learner: false,
    })
}

pub(super) fn asked(candidate: &str, epoch: Epoch, last: Position, pre: bool) -> Event {
    Event::VoteRequested {
        conn: 40,
        request: VoteRequest {
            candidate: candidate.into(),
            epoch,
            last,
            pre,
        },
    }
}

pub(super) fn reply(epoch: Epoch, term: Epoch, granted: bool, pre: bool) -> Action {
    Action::AnswerVote {
        conn: 40,
        frame: Frame::VoteReply {
            epoch,
            term,
            granted,
            pre,
        },
    }
}

/// A new cluster: the configured master asks at once, is pre-voted, then
/// voted in (its vote recorded before it asks), and starts its epoch with
/// links; its log is empty, so there is nothing a marker would commit.
fn elected(now: Instant) -> Core {
    let (mut core, out) = Core::new(fconfig("a"), fresh(), now);
    assert_eq!(out, vec![], "every node starts as a secondary");
    assert_eq!(core.view().master_addr, "", "no master known yet");
    assert_eq!(core.poll_timeout(now), Some(now), "it asks at once");
    let none = Position::default();
    assert_eq!(
        step(&mut core, now, Event::Tick),
        vote_request(1, none, true)
    );
    // Nobody answered yet: it asks again a heartbeat interval later.
    assert_eq!(
        core.poll_timeout(now),
        Some(now + Timing::default().heartbeat_interval)
    );
    let mut expected = vec![Action::RecordVote {
        epoch: 1,
        vote: Some("a".into()),
    }];
    expected.extend(vote_request(1, none, false));
    assert_eq!(
        step(&mut core, now, answer("b", 1, 0, true, true)),
        expected
    );
    assert!(!core.is_master());
    let out = step(&mut core, now, answer("c", 1, 1, true, false));
    assert_eq!(
        out,
        vec![Action::StartLinks {
            epoch: 1,
            peers: peers()
        }]
    );
    assert!(core.is_master());
    assert_eq!(core.epoch(), 1);
    assert_eq!(core.view().master_addr, "a:1");
    core
}

#[test]
fn the_configured_master_of_a_new_cluster_is_elected_at_once() {
    elected(Instant::now());
}

#[test]
fn other_nodes_wait_an_election_timeout_and_a_restarted_master_too() {
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), fresh(), now);
    let at = b.poll_timeout(now).unwrap();
    assert!(at >= now + T && at < now + 2 * T, "{:?}", at - now);
    // In a new cluster it never asks: the configured master is the first.
    assert_eq!(step(&mut b, at, Event::Tick), vec![]);
    assert!(b.poll_timeout(at).unwrap() > at);
    // Once it has an epoch, a silent master makes it ask.
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let at = b.poll_timeout(now).unwrap();
    assert!(matches!(
        &step(&mut b, at, Event::Tick)[..],
        [Action::RequestVotes { pre: true, .. }]
    ));
    // The configured master, restarted with epochs behind it, is one node
    // among others: no election at first start.
    let (a, _) = Core::new(fconfig("a"), log(7), now);
    assert!(a.poll_timeout(now).unwrap() >= now + T);
}

#[test]
fn refusals_and_stale_answers_do_not_elect() {
    let now = Instant::now();
    let (mut core, _) = Core::new(fconfig("a"), fresh(), now);
    step(&mut core, now, Event::Tick);
    // A no, and a yes to another election, count for nothing.
    assert_eq!(step(&mut core, now, answer("b", 1, 0, false, true)), vec![]);
    assert_eq!(step(&mut core, now, answer("c", 2, 0, true, true)), vec![]);
    assert_eq!(step(&mut core, now, answer("c", 1, 0, true, false)), vec![]);
    // A voter in a newer epoch: the candidate takes it and gives up.
    assert_eq!(
        step(&mut core, now, answer("c", 1, 5, false, true)),
        vec![Action::RecordVote {
            epoch: 5,
            vote: None
        }]
    );
    assert_eq!(step(&mut core, now, answer("b", 1, 0, true, true)), vec![]);
    assert!(!core.is_master());
}

#[test]
fn a_voter_grants_one_vote_per_epoch_recorded_before_it_answers() {
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let last = Position { epoch: 2, seq: 7 };
    // A pre-vote changes nothing.
    assert_eq!(
        step(&mut b, now, asked("a", 3, last, true)),
        vec![reply(3, 2, true, true)]
    );
    assert_eq!(
        step(&mut b, now, asked("a", 3, last, false)),
        vec![
            Action::RecordVote {
                epoch: 3,
                vote: Some("a".into())
            },
            reply(3, 3, true, false)
        ]
    );
    // Asked again by the same candidate: yes, nothing new to record.
    assert_eq!(
        step(&mut b, now, asked("a", 3, last, false)),
        vec![reply(3, 3, true, false)]
    );
    // Another candidate in the same epoch: no.
    assert_eq!(
        step(&mut b, now, asked("c", 3, last, false)),
        vec![reply(3, 3, false, false)]
    );
    // An older epoch: no.
    let older = Position { epoch: 1, seq: 7 };
    assert_eq!(
        step(&mut b, now, asked("c", 2, older, false)),
        vec![reply(2, 3, false, false)]
    );
}

#[test]
fn a_vote_that_cannot_be_recorded_is_taken_back_and_an_election_on_it_stops() {
    let now = Instant::now();
    let unrecorded = |epoch| Event::VoteUnrecorded {
        epoch,
        reason: "ENOSPC".into(),
    };
    let said = |epoch| {
        vec![Action::Disregard {
            reason: format!("cannot record epoch {epoch} and this node's vote in it (ENOSPC): no vote is given or asked for until it can be"),
        }]
    };
    // A voter: the candidate was never answered, so another may be.
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let last = Position { epoch: 2, seq: 7 };
    let out = step(&mut b, now, asked("a", 3, last, false));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(step(&mut b, now, unrecorded(3)), said(3));
    assert_eq!(
        step(&mut b, now, asked("c", 3, last, false)),
        vec![
            Action::RecordVote {
                epoch: 3,
                vote: Some("c".into())
            },
            reply(3, 3, true, false)
        ]
    );
    // A report about an older epoch changes nothing.
    assert_eq!(step(&mut b, now, unrecorded(2)), vec![]);
    // A vote given by taking a master was acted on: it stays, and no
    // other candidate gets this node's vote in that epoch.
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let opened = Event::MasterOpened {
        conn: 9,
        master: "a".into(),
        epoch: 3,
    };
    let out = step(&mut b, now, opened);
    assert!(
        matches!(out[0], Action::RecordVote { epoch: 3, .. }),
        "{out:?}"
    );
    assert_eq!(step(&mut b, now, unrecorded(3)), said(3));
    assert_eq!(
        step(&mut b, now, asked("c", 3, last, false)),
        vec![reply(3, 3, false, false)]
    );
    // A candidate: its requests were not sent, and late yeses elect
    // nobody.
    let (mut a, _) = Core::new(fconfig("a"), fresh(), now);
    step(&mut a, now, Event::Tick);
    let out = step(&mut a, now, answer("b", 1, 0, true, true));
    assert!(
        matches!(out[0], Action::RecordVote { epoch: 1, .. }),
        "{out:?}"
    );
    assert_eq!(step(&mut a, now, unrecorded(1)), said(1));
    assert_eq!(step(&mut a, now, answer("c", 1, 1, true, false)), vec![]);
    assert!(!a.is_master());
    // A node alone is elected in the same batch: it steps down.
    let alone = CoreConfig {
        nodes: vec![("a".into(), "a:1".into())],
        ..fconfig("a")
    };
    let (mut a, _) = Core::new(alone, fresh(), now);
    step(&mut a, now, Event::Tick);
    assert!(a.is_master());
    let mut expected = vec![Action::StopLinks];
    expected.extend(said(1));
    assert_eq!(step(&mut a, now, unrecorded(1)), expected);
    assert!(!a.is_master());
}

#[test]
fn a_voter_refuses_a_log_less_up_to_date_than_its_own() {
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let behind = Position { epoch: 2, seq: 6 };
    let older = Position { epoch: 1, seq: 9 };
    assert_eq!(
        step(&mut b, now, asked("a", 3, behind, true)),
        vec![reply(3, 2, false, true)]
    );
    // The epoch is taken even when the vote is refused.
    assert_eq!(
        step(&mut b, now, asked("a", 3, older, false)),
        vec![
            Action::RecordVote {
                epoch: 3,
                vote: None
            },
            reply(3, 3, false, false)
        ]
    );
}

#[test]
fn a_node_that_hears_its_master_refuses_pre_votes_and_votes() {
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let opened = Event::MasterOpened {
        conn: 3,
        master: "a".into(),
        epoch: 3,
    };
    let out = step(&mut b, now, opened);
    // Taking a master of an epoch is recorded as the vote in it.
    assert_eq!(
        out[0],
        Action::RecordVote {
            epoch: 3,
            vote: Some("a".into())
        }
    );
    assert!(
        matches!(out[1], Action::ToMaster { conn: 3, .. }),
        "{out:?}"
    );
    assert_eq!(b.view().master_addr, "a:1");
    let ahead = Position { epoch: 3, seq: 50 };
    let soon = now + T / 2;
    assert_eq!(
        step(&mut b, soon, asked("c", 4, ahead, true)),
        vec![reply(4, 3, false, true)]
    );
    assert_eq!(
        step(&mut b, soon, asked("c", 4, ahead, false)),
        vec![reply(4, 3, false, false)],
        "not even its epoch is taken"
    );
    // Once the master has been silent for an election timeout: yes.
    let later = now + T;
    assert_eq!(
        step(&mut b, later, asked("c", 4, ahead, true)),
        vec![reply(4, 3, true, true)]
    );
}

#[test]
fn a_silent_master_makes_a_secondary_ask_for_pre_votes_without_raising_its_epoch() {
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let at = b.poll_timeout(now).unwrap();
    assert_eq!(
        step(&mut b, at - Duration::from_millis(1), Event::Tick),
        vec![]
    );
    let out = step(&mut b, at, Event::Tick);
    assert_eq!(
        out,
        vec![Action::RequestVotes {
            epoch: 3,
            pre: true,
            last: Position { epoch: 2, seq: 7 },
            peers: vec![("a".into(), "a:1".into()), ("c".into(), "c:1".into())],
        }]
    );
    assert_eq!(b.epoch(), 2);
}

#[test]
fn a_master_that_hears_no_majority_for_an_election_timeout_steps_down() {
    let now = Instant::now();
    let mut core = elected(now);
    assert_eq!(step(&mut core, now + T / 2, Event::Tick), vec![]);
    let out = step(&mut core, now + T, Event::Tick);
    assert_eq!(out, vec![Action::StopLinks]);
    assert!(!core.is_master());
    assert_eq!(core.view().master_addr, "", "no master known");
    assert_eq!(core.epoch(), 1, "its epoch stays");
}

#[test]
fn a_master_that_hears_a_majority_stays() {
    let now = Instant::now();
    let mut core = elected(now);
    let connected = MasterEvent::PeerConnected {
        peer: 0,
        conn: 9,
        last: Position::default(),
        stored: 0,
        epochs: vec![],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    step(&mut core, now, Event::Link(connected));
    let later = now + T - Duration::from_millis(1);
    let beat = MasterEvent::HeartbeatReply {
        peer: 0,
        conn: 9,
        stored: 0,
        learner: false,
    };
    step(&mut core, later, Event::Link(beat));
    step(&mut core, now + T, Event::Tick);
    assert!(core.is_master());
}

#[test]
fn a_master_told_of_a_newer_epoch_steps_down_and_answers_waiters_as_indefinite() {
    let now = Instant::now();
    let mut core = elected(now);
    let connected = MasterEvent::PeerConnected {
        peer: 0,
        conn: 9,
        last: Position::default(),
        stored: 0,
        epochs: vec![],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    step(&mut core, now, Event::Link(connected));
    let out = step(&mut core, now, append(1, Some("k"), 3));
    assert_eq!(
        out,
        vec![Action::Persist(vec![Entry {
            epoch: 1,
            seq: 1,
            log: crate::entry::DEFAULT_LOG,
            number: 1,
            key: Some("k".into()),
            message: bytes::Bytes::from_static(b"m"),
        }])]
    );
    let out = step(&mut core, now, Event::NewerEpoch { epoch: 4 });
    assert_eq!(
        out,
        vec![
            Action::RecordVote {
                epoch: 4,
                vote: None
            },
            Action::Reply {
                client: 7,
                req: 1,
                result: Err(AppendError::Uncommitted {
                    seq: 1,
                    stored_on: 0,
                    timed_out: false
                })
            },
            Action::StopLinks
        ]
    );
    assert!(!core.is_master());
    assert_eq!(core.epoch(), 4);
}

#[test]
fn a_master_of_an_older_epoch_is_told_the_newer_one_and_a_newer_one_is_followed() {
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let stale = Event::MasterOpened {
        conn: 3,
        master: "a".into(),
        epoch: 1,
    };
    assert!(matches!(
        &step(&mut b, now, stale)[..],
        [Action::RefuseStale { conn: 3, epoch: 2, reason }] if reason.contains("stale")
    ));
    let newer = Event::MasterOpened {
        conn: 4,
        master: "c".into(),
        epoch: 5,
    };
    let out = step(&mut b, now, newer);
    assert_eq!(
        out[0],
        Action::RecordVote {
            epoch: 5,
            vote: Some("c".into())
        }
    );
    assert!(
        matches!(out[1], Action::ToMaster { conn: 4, .. }),
        "{out:?}"
    );
    assert_eq!(b.view().master_addr, "c:1");
    // Another master for the same epoch is refused.
    let rival = Event::MasterOpened {
        conn: 5,
        master: "a".into(),
        epoch: 5,
    };
    assert!(matches!(
        &step(&mut b, now, rival)[..],
        [Action::RefuseMaster { conn: 5, .. }]
    ));
}

#[test]
fn an_elected_master_counts_an_older_epochs_entry_only_with_its_own_marker() {
    // b holds 1..=7 (epochs 1 and 2), with key "k" at seq 7, and is elected
    // in epoch 3: a retry of "k" waits until the marker (seq 8) is on w
    // nodes, even if seq 7 is.
    let now = Instant::now();
    let mut state = log(7);
    state.keys = KeyWindow::new(100, 1);
    for seq in 1..=7 {
        state
            .keys
            .push((seq, 0, seq), (seq == 7).then_some("k"), b"m");
    }
    let (mut b, _) = Core::new(fconfig("b"), state, now);
    let at = b.poll_timeout(now).unwrap();
    step(&mut b, at, Event::Tick);
    step(&mut b, at, answer("a", 3, 2, true, true));
    let out = step(&mut b, at, answer("a", 3, 3, true, false));
    assert_eq!(
        out.last(),
        Some(&Action::Persist(vec![Entry::marker(3, 8)]))
    );
    let connected = MasterEvent::PeerConnected {
        peer: 0,
        conn: 9,
        last: Position { epoch: 2, seq: 7 },
        stored: 7,
        epochs: vec![(1, 1), (2, 6)],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    step(&mut b, at, Event::Link(connected));
    step(&mut b, at, synced(0, 8));
    let mut sent = Vec::new();
    b.flush(at, &mut sent);
    assert!(sent.contains(&Action::SendEntries {
        peer: 0,
        conn: 9,
        from: 8,
        to: 8
    }));
    // Seq 7 is on two nodes; the retry still waits.
    assert_eq!(step(&mut b, at, append(1, Some("k"), 2)), vec![]);
    assert_eq!(b.committed(), 0);
    let ack = MasterEvent::Ack {
        peer: 0,
        conn: 9,
        stored: 8,
    };
    assert_eq!(
        step(&mut b, at, Event::Link(ack)),
        vec![Action::Reply {
            client: 7,
            req: 1,
            result: Ok(7)
        }]
    );
    assert_eq!(b.committed(), 8);
}

#[test]
fn a_master_elected_over_a_log_known_committed_writes_no_marker() {
    let now = Instant::now();
    let mut state = log(7);
    state.committed = 7;
    let (mut b, _) = Core::new(fconfig("b"), state, now);
    let at = b.poll_timeout(now).unwrap();
    step(&mut b, at, Event::Tick);
    step(&mut b, at, answer("a", 3, 2, true, true));
    let out = step(&mut b, at, answer("a", 3, 3, true, false));
    assert_eq!(
        out,
        vec![Action::StartLinks {
            epoch: 3,
            peers: vec![("a".into(), "a:1".into()), ("c".into(), "c:1".into())],
        }]
    );
    // A mark heard beyond the log counts only up to the log.
    let mut state = log(7);
    state.committed = 50;
    let (mut c, _) = Core::new(fconfig("c"), state, now);
    let at = c.poll_timeout(now).unwrap();
    step(&mut c, at, Event::Tick);
    step(&mut c, at, answer("a", 3, 2, true, true));
    step(&mut c, at, answer("a", 3, 3, true, false));
    assert!(c.is_master());
    assert_eq!(c.committed(), 7);
    let connected = MasterEvent::PeerConnected {
        peer: 0,
        conn: 9,
        last: Position { epoch: 2, seq: 7 },
        stored: 7,
        epochs: vec![(1, 1), (2, 6)],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    step(&mut c, at, Event::Link(connected));
    let later = at + Timing::default().heartbeat_interval;
    let out = step(&mut c, later, Event::Tick);
    assert!(
        out.contains(&Action::ToPeer {
            peer: 0,
            conn: 9,
            frame: Frame::Heartbeat { committed: 7 }
        }),
        "secondaries are told the mark as far as the log goes: {out:?}"
    );
}

#[test]
fn a_node_that_moves_to_a_newer_epoch_drops_its_former_masters_connection() {
    // b follows a (epoch 3) on conn 3; a goes silent, c asks for b's vote
    // in epoch 4. From then on a's frames on conn 3 must not be stored or
    // acknowledged: a deposed master could count them toward a majority
    // that c then cuts.
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let opened = Event::MasterOpened {
        conn: 3,
        master: "a".into(),
        epoch: 3,
    };
    step(&mut b, now, opened);
    let sync = SecondaryEvent::Sync {
        conn: 3,
        truncate_after: None,
    };
    step(&mut b, now, Event::FromMaster(sync));
    let later = now + T;
    let last = Position { epoch: 2, seq: 7 };
    let out = step(&mut b, later, asked("c", 4, last, false));
    assert_eq!(
        out[0],
        Action::RecordVote {
            epoch: 4,
            vote: Some("c".into())
        }
    );
    assert!(
        matches!(
            &out[1],
            Action::RefuseStale {
                conn: 3,
                epoch: 4,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(out[2], reply(4, 4, true, false));
    let late = SecondaryEvent::Entries {
        conn: 3,
        entries: vec![entry(3, 8)],
    };
    assert_eq!(step(&mut b, later, Event::FromMaster(late)), vec![]);
    assert_eq!(b.view().master_addr, "", "no master known in epoch 4 yet");
}

#[test]
fn a_candidate_drops_its_former_masters_connection_when_it_asks_for_votes() {
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let opened = Event::MasterOpened {
        conn: 3,
        master: "a".into(),
        epoch: 3,
    };
    step(&mut b, now, opened);
    let at = b.poll_timeout(now).unwrap();
    step(&mut b, at, Event::Tick);
    let out = step(&mut b, at, answer("c", 4, 3, true, true));
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::RefuseStale {
                conn: 3,
                epoch: 4,
                ..
            }
        )),
        "{out:?}"
    );
}

#[test]
fn an_elected_master_that_loses_entries_it_took_over_steps_down() {
    // b took over 1..=7 with only 1..=5 synced; its first sync fails and
    // cuts back to 5. Entries 6 and 7 may be committed elsewhere: b must
    // not write its own over them.
    let now = Instant::now();
    let mut state = log(7);
    state.committed = 7;
    let (mut b, _) = Core::new(fconfig("b"), state, now);
    let at = b.poll_timeout(now).unwrap();
    step(&mut b, at, Event::Tick);
    step(&mut b, at, answer("a", 3, 2, true, true));
    step(&mut b, at, answer("a", 3, 3, true, false));
    assert!(b.is_master());
    let out = step(
        &mut b,
        at,
        Event::Storage(StorageReport::Unwritten {
            after: 5,
            reason: "EIO".into(),
        }),
    );
    assert!(out.contains(&Action::StopLinks), "{out:?}");
    assert!(!b.is_master());
}

#[test]
fn a_marker_cut_by_a_failed_write_is_written_again_at_the_next_tick() {
    // b took over 1..=7, all synced, none known committed: its marker is
    // seq 8. A failed write cuts the marker; with no append to take its
    // place, the next tick writes it again, and a retry of an older
    // epoch's key is answered once it is on a majority.
    let now = Instant::now();
    let mut state = log(7);
    state.keys = KeyWindow::new(100, 1);
    for seq in 1..=7 {
        state
            .keys
            .push((seq, 0, seq), (seq == 7).then_some("k"), b"m");
    }
    let (mut b, _) = Core::new(fconfig("b"), state, now);
    let at = b.poll_timeout(now).unwrap();
    step(&mut b, at, Event::Tick);
    step(&mut b, at, answer("a", 3, 2, true, true));
    let out = step(&mut b, at, answer("a", 3, 3, true, false));
    assert_eq!(
        out.last(),
        Some(&Action::Persist(vec![Entry::marker(3, 8)]))
    );
    let cut = Event::Storage(StorageReport::Unwritten {
        after: 7,
        reason: "ENOSPC".into(),
    });
    step(&mut b, at, cut);
    assert!(b.is_master(), "nothing it took over was lost");
    let connected = MasterEvent::PeerConnected {
        peer: 0,
        conn: 9,
        last: Position { epoch: 2, seq: 7 },
        stored: 7,
        epochs: vec![(1, 1), (2, 6)],
        version: crate::wire::NODE_PROTOCOL_VERSION,
    };
    step(&mut b, at, Event::Link(connected));
    assert_eq!(step(&mut b, at, append(1, Some("k"), 2)), vec![]);
    let out = step(&mut b, at, Event::Tick);
    assert!(
        out.contains(&Action::Persist(vec![Entry::marker(3, 8)])),
        "{out:?}"
    );
    step(&mut b, at, synced(0, 8));
    let mut sent = Vec::new();
    b.flush(at, &mut sent);
    let ack = MasterEvent::Ack {
        peer: 0,
        conn: 9,
        stored: 8,
    };
    assert_eq!(
        step(&mut b, at, Event::Link(ack)),
        vec![Action::Reply {
            client: 7,
            req: 1,
            result: Ok(7)
        }]
    );
}

#[test]
fn an_append_with_no_master_known_is_held_until_its_wait_is_over() {
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    // No master known: held, not refused.
    assert_eq!(step(&mut b, now, append(1, None, 1)), vec![]);
    let replies = |out: Vec<Action>| -> Vec<Action> {
        out.into_iter()
            .filter(|a| matches!(a, Action::Reply { .. }))
            .collect()
    };
    let wait = 2 * Timing::default().election_timeout;
    assert_eq!(replies(step(&mut b, now + wait / 2, Event::Tick)), vec![]);
    // At its deadline it is over.
    let later = now + wait;
    assert_eq!(
        replies(step(&mut b, later, Event::Tick)),
        vec![Action::Reply {
            client: 7,
            req: 1,
            result: Err(AppendError::NotMaster {
                master_addr: String::new()
            }),
        }]
    );
    // Held appends are bounded: past the bound, refused at once.
    let (mut c, _) = Core::new(fconfig("c"), log(7), now);
    for req in 0..super::super::MAX_UNLED as u64 {
        assert_eq!(step(&mut c, now, append(req, None, 1)), vec![]);
    }
    let out = step(&mut c, now, append(9999, None, 1));
    assert!(
        matches!(out.as_slice(), [Action::Reply { req: 9999, .. }]),
        "{out:?}"
    );
    // A secondary's retention keeps what is not known committed, and
    // nothing for secondaries (it has none).
    assert_eq!(b.retention_marks(later), (Seq::MAX, 0));
}
