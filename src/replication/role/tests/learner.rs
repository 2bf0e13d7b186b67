//! A node back as a new incarnation is a learner until it holds everything
//! committed: its vote counts only toward an election every node grants.
//! A new cluster, all learners, elects its first master so. Exact action
//! lists.

use super::election::{answer, asked, fconfig, fresh, reply, vote_request};
use super::*;

/// An empty log, a learner's.
fn wiped() -> LogState {
    LogState {
        learner: true,
        ..fresh()
    }
}

/// Node `id`, a learner with an empty log that has recorded `epoch`.
fn learner_in(id: &str, epoch: Epoch, now: Instant) -> Core {
    Core::new(fconfig(id), LogState { epoch, ..wiped() }, now).0
}

fn learner_reply(epoch: Epoch, term: Epoch, pre: bool) -> Action {
    Action::AnswerVote {
        conn: 40,
        frame: Frame::LearnerVote { epoch, term, pre },
    }
}

fn learner_answer(voter: &str, epoch: Epoch, term: Epoch, pre: bool) -> Event {
    Event::VoteAnswered(VoteAnswer {
        learner: true,
        ..vote_answer(voter, epoch, term, pre)
    })
}

fn vote_answer(voter: &str, epoch: Epoch, term: Epoch, pre: bool) -> VoteAnswer {
    let Event::VoteAnswered(a) = answer(voter, epoch, term, true, pre) else {
        unreachable!()
    };
    a
}

#[test]
fn a_learners_yes_says_it_is_a_learners() {
    let now = Instant::now();
    // Node b, wiped, in a cluster at epoch 5 whose log node c holds.
    let mut b = learner_in("b", 5, now);
    assert!(b.is_learner());
    let c_last = Position { epoch: 5, seq: 3 };
    assert_eq!(
        step(&mut b, now, asked("c", 6, c_last, true)),
        vec![learner_reply(6, 5, true)]
    );
    assert_eq!(
        step(&mut b, now, asked("c", 6, c_last, false)),
        vec![
            Action::RecordVote {
                epoch: 6,
                vote: Some("c".into())
            },
            learner_reply(6, 6, false)
        ]
    );
    // A no is a no, learner or not.
    assert_eq!(
        step(&mut b, now, asked("a", 6, c_last, false)),
        vec![reply(6, 6, false, false)]
    );
}

#[test]
fn a_learners_vote_counts_only_toward_an_election_every_node_grants() {
    let now = Instant::now();
    let three = |log| Core::new(fconfig("c"), log, now).0;
    // c, a voter of a three-node cluster, asks; b is a learner.
    let mut c = three(log(7));
    let later = now + Duration::from_secs(3);
    let last = Position { epoch: 2, seq: 7 };
    assert!(matches!(
        &step(&mut c, later, Event::Tick)[..],
        [Action::RequestVotes { epoch: 3, pre: true, last: l, .. }] if *l == last
    ));
    // b's yes alone does not make c's own a majority.
    assert_eq!(step(&mut c, later, learner_answer("b", 3, 2, true)), vec![]);
    // a's yes does: voters c and a.
    let out = step(&mut c, later, answer("a", 3, 2, true, true));
    assert!(
        matches!(out[0], Action::RecordVote { epoch: 3, .. }),
        "{out:?}"
    );
    step(&mut c, later, learner_answer("b", 3, 3, false));
    assert!(!c.is_master());
    let out = step(&mut c, later, answer("a", 3, 3, true, false));
    assert!(c.is_master(), "{out:?}");

    // Without a: not elected; with a learner's yes from every other node
    // (and its own, a voter's), elected.
    let mut c = three(log(7));
    step(&mut c, later, Event::Tick);
    step(&mut c, later, learner_answer("b", 3, 2, true));
    assert!(matches!(
        &step(&mut c, later, learner_answer("a", 3, 2, true))[..],
        [Action::RecordVote { epoch: 3, .. }, ..]
    ));
    step(&mut c, later, learner_answer("b", 3, 3, false));
    assert!(!c.is_master());
    step(&mut c, later, learner_answer("a", 3, 3, false));
    assert!(c.is_master());
}

#[test]
fn a_new_cluster_of_learners_elects_its_first_master_and_they_vote_at_its_first_heartbeat() {
    let now = Instant::now();
    let (mut a, out) = Core::new(fconfig("a"), wiped(), now);
    assert_eq!(out, vec![]);
    let none = Position::default();
    assert_eq!(step(&mut a, now, Event::Tick), vote_request(1, none, true));
    // In epoch 1 every yes counts: its own and b's make a majority.
    let mut asks = vec![Action::RecordVote {
        epoch: 1,
        vote: Some("a".into()),
    }];
    asks.extend(vote_request(1, none, false));
    assert_eq!(step(&mut a, now, learner_answer("b", 1, 0, true)), asks);
    // Elected: it votes again (recorded first) and starts its links.
    let out = step(&mut a, now, learner_answer("b", 1, 1, false));
    assert_eq!(out[0], Action::Promoted, "{out:?}");
    assert!(
        matches!(out[1], Action::StartLinks { epoch: 1, .. }),
        "{out:?}"
    );
    assert!(a.is_master() && !a.is_learner());

    // b, a learner, asks the others for their epochs at once (pre-votes it
    // takes no further: not the configured master, it does not stand)...
    let (mut b, _) = Core::new(fconfig("b"), wiped(), now);
    let query = vec![Action::RequestVotes {
        epoch: 1,
        pre: true,
        last: none,
        peers: vec![("a".into(), "a:1".into()), ("c".into(), "c:1".into())],
    }];
    assert_eq!(step(&mut b, now, Event::Tick), query);
    // ...but takes the first master of a new cluster without waiting for
    // them: epoch 1 has no older epoch, so its master's committed mark
    // covers everything committed, nothing at first.
    assert!(matches!(
        &step(
            &mut b,
            now,
            Event::MasterOpened {
                conn: 3,
                master: "a".into(),
                epoch: 1
            }
        )[..],
        [
            Action::RecordVote { epoch: 1, .. },
            Action::ToMaster { conn: 3, .. }
        ]
    ));
    let heartbeat = SecondaryEvent::Heartbeat {
        conn: 3,
        committed: 0,
    };
    let out = step(&mut b, now, Event::FromMaster(heartbeat));
    assert_eq!(out.last(), Some(&Action::Promoted), "{out:?}");
    assert!(!b.is_learner());
}

#[test]
fn after_epoch_1_a_learners_vote_needs_every_other_node() {
    let now = Instant::now();
    let mut a = learner_in("a", 1, now);
    let later = now + Duration::from_secs(3);
    assert!(matches!(
        &step(&mut a, later, Event::Tick)[..],
        [Action::RequestVotes {
            epoch: 2,
            pre: true,
            ..
        }]
    ));
    assert_eq!(step(&mut a, later, learner_answer("b", 2, 1, true)), vec![]);
    assert!(matches!(
        &step(&mut a, later, learner_answer("c", 2, 1, true))[..],
        [
            Action::RecordVote { epoch: 2, .. },
            Action::RequestVotes {
                epoch: 2,
                pre: false,
                ..
            }
        ]
    ));
}

#[test]
fn a_learner_votes_again_once_it_holds_everything_committed() {
    let now = Instant::now();
    let mut b = learner_in("b", 5, now);
    // It hears the others' epochs (a no from c, in epoch 6)...
    step(&mut b, now, Event::Tick);
    step(&mut b, now, answer("c", 6, 6, false, true));
    step(&mut b, now, answer("a", 6, 6, false, true));
    assert_eq!(b.term().0, 6);
    // ...and master a of epoch 6 takes it and sends it what it lacks.
    let opened = Event::MasterOpened {
        conn: 3,
        master: "a".into(),
        epoch: 6,
    };
    step(&mut b, now, opened);
    let heartbeat = |committed| Event::FromMaster(SecondaryEvent::Heartbeat { conn: 3, committed });
    // Behind the committed mark: still a learner; it keeps the mark.
    assert!(!step(&mut b, now, heartbeat(3)).contains(&Action::Promoted));
    let sync = SecondaryEvent::Sync {
        conn: 3,
        truncate_after: None,
    };
    step(&mut b, now, Event::FromMaster(sync));
    let entries = (1..=3).map(|s| entry(5, s)).chain([entry(6, 4)]).collect();
    let entries = SecondaryEvent::Entries { conn: 3, entries };
    step(&mut b, now, Event::FromMaster(entries));
    // Stored up to the mark, which falls on an entry of an older epoch: it
    // cannot know that was all (the master's own entry was not known
    // committed then), so it waits for another mark.
    let out = step(&mut b, now, synced(0, 4));
    assert!(!out.contains(&Action::Promoted), "{out:?}");
    assert!(b.is_learner());
    // Under a steady load the newest mark is always a little ahead of what
    // it stored: it keeps the first it heard, 5, and not the later 6.
    assert!(!step(&mut b, now, heartbeat(5)).contains(&Action::Promoted));
    assert!(!step(&mut b, now, heartbeat(6)).contains(&Action::Promoted));
    let entries = vec![entry(6, 5)];
    step(
        &mut b,
        now,
        Event::FromMaster(SecondaryEvent::Entries { conn: 3, entries }),
    );
    // Stored up to 5, an entry of the master's own epoch: promoted,
    // recorded before anything else, and its yes is a voter's again.
    let out = step(&mut b, now, synced(0, 5));
    assert_eq!(out.last(), Some(&Action::Promoted), "{out:?}");
    assert!(!b.is_learner());
    assert!(!step(&mut b, now, heartbeat(6)).contains(&Action::Promoted));
    let later = now + Duration::from_secs(5);
    let last = Position { epoch: 6, seq: 5 };
    assert_eq!(
        step(&mut b, later, asked("c", 7, last, true)),
        vec![reply(7, 6, true, true)]
    );
}

#[test]
fn taking_a_master_is_a_vote_given_no_other_candidate_gets_in_that_epoch() {
    let now = Instant::now();
    let (mut b, _) = Core::new(fconfig("b"), log(7), now);
    let opened = Event::MasterOpened {
        conn: 3,
        master: "a".into(),
        epoch: 3,
    };
    step(&mut b, now, opened);
    assert_eq!(b.term(), (3, Some("a"), Some("a")));
    // Long after the master went silent, a late request of epoch 3 from c.
    let later = now + Duration::from_secs(5);
    let last = Position { epoch: 2, seq: 7 };
    assert_eq!(
        step(&mut b, later, asked("c", 3, last, false)),
        vec![reply(3, 3, false, false)]
    );
}

#[test]
fn a_candidate_too_old_for_learner_votes_is_refused_by_a_learner() {
    let yes = Frame::LearnerVote {
        epoch: 3,
        term: 3,
        pre: false,
    };
    assert_eq!(yes.clone().for_node_version(6), yes);
    assert_eq!(
        yes.for_node_version(5),
        Frame::VoteReply {
            epoch: 3,
            term: 3,
            granted: false,
            pre: false
        }
    );
}

#[test]
fn a_learner_learns_the_newest_epoch_before_a_deposed_master_can_take_it() {
    let now = Instant::now();
    // c lost its disk; a, deposed master of epoch 2, does not know it yet;
    // b is master of epoch 3.
    let (mut c, _) = Core::new(fconfig("c"), wiped(), now);
    step(&mut c, now, Event::Tick);
    let stale = |conn| Event::MasterOpened {
        conn,
        master: "a".into(),
        epoch: 2,
    };
    assert!(matches!(
        &step(&mut c, now, stale(2))[..],
        [Action::RefuseMaster { conn: 2, .. }]
    ));
    // a answers (it leads, it says no) and b answers with epoch 3.
    step(&mut c, now, answer("a", 1, 2, false, true));
    assert!(matches!(
        &step(&mut c, now, stale(3))[..],
        [Action::RefuseMaster { conn: 3, .. }]
    ));
    step(&mut c, now, answer("b", 1, 3, false, true));
    assert_eq!(c.term().0, 3);
    // Now it knows: a is stale, b is taken.
    assert!(matches!(
        &step(&mut c, now, stale(4))[..],
        [Action::RefuseStale {
            conn: 4,
            epoch: 3,
            ..
        }]
    ));
    let current = Event::MasterOpened {
        conn: 5,
        master: "b".into(),
        epoch: 3,
    };
    assert!(matches!(
        &step(&mut c, now, current)[..],
        [
            Action::RecordVote { epoch: 3, .. },
            Action::ToMaster { conn: 5, .. }
        ]
    ));
}

#[test]
fn a_learner_says_so_in_its_answers_to_heartbeats_and_in_health_until_promoted() {
    let now = Instant::now();
    let mut b = learner_in("b", 5, now);
    step(&mut b, now, Event::Tick);
    step(&mut b, now, answer("c", 6, 6, false, true));
    step(&mut b, now, answer("a", 6, 6, false, true));
    let opened = Event::MasterOpened {
        conn: 3,
        master: "a".into(),
        epoch: 6,
    };
    step(&mut b, now, opened);
    let sync = SecondaryEvent::Sync {
        conn: 3,
        truncate_after: None,
    };
    step(&mut b, now, Event::FromMaster(sync));
    let entries = (1..=3).map(|s| entry(5, s)).chain([entry(6, 4)]).collect();
    let entries = SecondaryEvent::Entries { conn: 3, entries };
    step(&mut b, now, Event::FromMaster(entries));
    step(&mut b, now, synced(0, 4));
    assert_eq!(b.health(now).role, NodeRole::Learner);
    assert_eq!(b.health(now).nodes[0].role, NodeRole::Learner);
    let heartbeat = |committed| Event::FromMaster(SecondaryEvent::Heartbeat { conn: 3, committed });
    let reply = |frame| Action::ToMaster { conn: 3, frame };
    assert_eq!(
        step(&mut b, now, heartbeat(3)),
        vec![reply(Frame::LearnerHeartbeatReply { stored: 4 })]
    );
    assert_eq!(
        step(&mut b, now, heartbeat(4)),
        vec![
            reply(Frame::LearnerHeartbeatReply { stored: 4 }),
            Action::Promoted
        ]
    );
    assert_eq!(
        step(&mut b, now, heartbeat(4)),
        vec![reply(Frame::HeartbeatReply { stored: 4 })]
    );
    assert_eq!(b.health(now).role, NodeRole::Secondary);
    // A master older than node version 7 is told a plain reply.
    assert_eq!(
        Frame::LearnerHeartbeatReply { stored: 4 }.for_node_version(6),
        Frame::HeartbeatReply { stored: 4 }
    );
}

#[test]
fn a_learner_takes_a_master_once_it_has_heard_from_one_node_of_every_majority() {
    let now = Instant::now();
    // Five voters: a majority of three may have elected a master without
    // it, so it must hear from 5 - 3 + 1 = 3 of the 4 others.
    let five = CoreConfig {
        nodes: ["a", "b", "c", "d", "e"]
            .iter()
            .map(|id| (id.to_string(), format!("{id}:1")))
            .collect(),
        ..fconfig("e")
    };
    let (mut e, _) = Core::new(
        five,
        LogState {
            epoch: 1,
            ..wiped()
        },
        now,
    );
    e.heard_from.extend(["a".to_string(), "b".to_string()]);
    assert!(e.unsure_of_epoch().is_some());
    e.heard_from.insert("c".to_string());
    assert_eq!(e.unsure_of_epoch(), None);
    // Alone, there is nobody to hear from, and nobody could have elected
    // a master without it.
    let alone = CoreConfig {
        nodes: vec![("e".into(), "e:1".into())],
        ..fconfig("e")
    };
    let (e, _) = Core::new(
        alone,
        LogState {
            epoch: 1,
            ..wiped()
        },
        now,
    );
    assert_eq!(e.unsure_of_epoch(), None);
}
