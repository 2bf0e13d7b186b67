//! Whole clusters of replication cores, in memory and without a clock,
//! under seeded schedules of appends with mixed write concerns, delayed,
//! lost and reordered frames, cut and healed links, partitions, and nodes
//! that crash (losing what they had not synced, or with failover their
//! whole disk, coming back as learners) and restart, and strangers forging
//! hellos, votes and epochs: with a static master, and with failover
//! (elections), where the master is also asked for membership changes
//! (members removed, masters among them, and added back as learners that
//! it promotes). See `world.rs` for the schedule
//! and `invariants/` for what is checked, one invariant per file.
//!
//! `REPLOG_CORE_SCHEDULES` sets how many schedules run per mode (1000 by
//! default) and `REPLOG_CORE_SEED` the first seed. A failing schedule names
//! its seed and the invariant; keep it below as a regression test named
//! after the bug.

mod invariants;
mod world;

use std::panic::{catch_unwind, AssertUnwindSafe};

use world::{Stats, World};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn schedules(failover: bool) {
    let count = env("REPLOG_CORE_SCHEDULES", 1000);
    let first = env("REPLOG_CORE_SEED", 1);
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    let mut stats = Stats::default();
    for seed in first..first + count {
        let run = catch_unwind(AssertUnwindSafe(|| {
            let mut world = World::new(seed, failover);
            world.run();
            world.stats
        }));
        match run {
            Ok(s) => stats += s,
            Err(_) => failed.push(seed),
        }
    }
    eprintln!(
        "{count} schedules (failover {failover}) from seed {first} in {:.1?}: {stats:?}",
        started.elapsed()
    );
    assert!(
        failed.is_empty(),
        "schedules failed for seeds {failed:?}: rerun one with REPLOG_CORE_SEED=<seed> REPLOG_CORE_SCHEDULES=1"
    );
}

#[test]
fn seeded_schedules_with_a_static_master_keep_every_invariant() {
    schedules(false);
}

#[test]
fn seeded_schedules_with_elections_keep_every_invariant() {
    schedules(true);
}

/// The schedules are worth something only if what they inject happens:
/// over the default run, every kind of fault and of answer occurs.
#[test]
fn the_schedules_inject_every_fault_they_claim() {
    for failover in [false, true] {
        let mut stats = Stats::default();
        for seed in 1..=200 {
            let mut world = World::new(seed, failover);
            world.run();
            stats += world.stats;
        }
        assert!(stats.acknowledged > 1000, "{stats:?}");
        assert!(stats.refused_or_timed_out > 0, "{stats:?}");
        assert!(stats.dropped > 0 && stats.reordered > 0, "{stats:?}");
        assert!(
            stats.cuts > 0 && stats.crashes > 0 && stats.master_crashes > 0,
            "{stats:?}"
        );
        assert!(stats.sync_failures > 0 && stats.log_cuts > 0, "{stats:?}");
        // Consumer groups' positions were set through the faults, and the
        // cores followed them (`groups_follow_the_log`).
        assert!(stats.groups_made > 50, "{stats:?}");
        // Strangers forged hellos, votes and epochs, and were refused.
        assert!(stats.forgeries > 0 && stats.refusals > 0, "{stats:?}");
        // Failed appends whose answers promised their entry.
        assert!(stats.promised > 0, "{stats:?}");
        // A master's failed sync cut entries it had already sent.
        assert!(stats.spent_epochs > 0, "{stats:?}");
        if failover {
            assert!(stats.partitions > 0 && stats.silent_cuts > 0, "{stats:?}");
            assert!(stats.elections > 200 && stats.step_downs > 0, "{stats:?}");
            assert!(stats.rollbacks > 0, "divergent suffixes are cut: {stats:?}");
            // And answers that could promise nothing.
            assert!(stats.uncommitted > 0, "{stats:?}");
            // Disks lost: learners voted (for what little that counts),
            // then caught up.
            assert!(stats.wipes > 0 && stats.learner_votes > 0, "{stats:?}");
            // Some of them damaged, healed to a prefix.
            assert!(
                stats.damaged > 0 && stats.damaged < stats.wipes,
                "{stats:?}"
            );
            assert!(stats.promotions > stats.wipes, "{stats:?}");
            // Membership changed: members removed (masters among them,
            // which stepped down once it was committed), added back as
            // learners and promoted by configuration entries of their own.
            assert!(stats.changes_made > 20, "{stats:?}");
            assert!(stats.config_entries > stats.changes_made, "{stats:?}");
            assert!(stats.left > 0, "{stats:?}");
        }
    }
}

// Regression tests: seeds that once failed, named after the bug.

/// A failed sync on a newly elected master cut its epoch's marker, and no
/// append followed: a retry of an older epoch's key waited for the marker
/// to be acknowledged, forever ("request 12 never answered"). The marker is
/// now written again at the next tick. Since the harness learnt silent
/// cuts, this seed's schedule no longer reaches that path (nor did 16,000
/// others with the fix taken out); the unit test
/// `a_marker_cut_by_a_failed_write_is_written_again_at_the_next_tick` is
/// what guards it. The seed stays as one more schedule.
#[test]
fn regression_a_marker_cut_by_a_failed_sync_left_a_retry_waiting_forever_seed_1197() {
    World::new(1197, true).run();
}

/// A timed-out append was answered "in the master's log, it will still be
/// replicated" while its entry was on the master alone; a failover elected
/// a node without it and the entry was cut. Only an entry known to be on a
/// majority is promised now (`AppendError::TimedOut`); anything less is
/// `Uncommitted`, retried with the same key.
#[test]
fn regression_a_timed_out_append_promised_an_entry_a_failover_cut_seed_8() {
    World::new(8, true).run();
}

/// A stranger's hello claiming the last epoch there is was welcomed; every
/// node then asked for votes in an epoch that wrapped to 0, and no master
/// was ever elected again. Hellos, vote requests and votes from strangers,
/// and epochs no election reaches, are refused now.
#[test]
fn regression_a_strangers_hello_at_an_absurd_epoch_left_the_cluster_without_a_master_seed_1() {
    World::new(1, true).run();
}

/// Issue 24's reproduction on cores, timings drawn from each seed: a node
/// back with an empty disk (a learner) must not help elect a master that
/// lacks what a majority acknowledged.
#[test]
fn a_lost_disk_and_a_crash_lose_no_majority_acknowledged_append() {
    let count = env("REPLOG_CORE_SCHEDULES", 1000) / 5;
    let mut failed = Vec::new();
    for seed in 1..=count {
        let run = catch_unwind(AssertUnwindSafe(|| World::lost_disk_then_a_crash(seed)));
        if run.is_err() {
            failed.push(seed);
        }
    }
    assert!(failed.is_empty(), "failed for seeds {failed:?}");
}

/// Membership changes, once the sims made them: a learner member caught
/// up was never promoted by a master elected over a log known committed,
/// which wrote no entry of its own epoch (a promotion now writes the
/// epoch's marker first).
#[test]
fn regression_a_caught_up_learner_waited_forever_for_an_entry_of_its_masters_epoch_seed_1911() {
    World::new(1911, true).run();
}

/// A master wrote its own removal and crashed before it was committed,
/// holding the longest log; the others could elect nobody without it
/// (two learners among them). A node whose removal is not known committed
/// now stands, without counting its own vote (Raft's thesis, 4.2.2).
#[test]
fn regression_a_removed_master_with_the_longest_log_would_not_stand_seed_1411() {
    World::new(1411, true).run();
}

/// A node removed, then wiped and added back, could not learn the newest
/// epoch: it asked no one (a non-voter did not stand), and voters refused
/// it. It now asks for pre-votes to learn epochs, and only strangers are
/// refused.
#[test]
fn regression_a_removed_node_added_back_could_not_learn_the_newest_epoch_seed_108() {
    World::new(108, true).run();
}

/// Voters refused the vote of a candidate their stale configuration no
/// longer counted, while the candidate's configuration did: no master.
/// Votes are now judged on logs and epochs alone; the candidate counts by
/// its own configuration.
#[test]
fn regression_voters_refused_a_candidate_their_stale_configuration_did_not_count_seed_13343() {
    World::new(13343, true).run();
}
