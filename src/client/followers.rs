//! The followers of `replog bench --readers N`: N connections to the master
//! that follow the log as `replog list --follow --committed` does, beside
//! the writers, so that what readers cost the writers can be measured (and
//! how soon a reader sees a message once it is committed).
//!
//! The writers note when each append was answered in a ring indexed by
//! sequence number ([`AckTimes`]); a follower that receives that sequence
//! number takes the difference. A w=N answer comes once the entry is on N
//! nodes, so for N at least a majority it is the commit as the writer
//! learns it; a follower may see it first (the figure is then 0).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;

use super::connection::Client;
use crate::entry::Seq;

/// Slots of the ring: a follower further behind than this many appends
/// finds its slot taken by a newer one and skips timing it.
const RING: usize = 1 << 20;

/// When each recent append was answered, by sequence number.
pub(crate) struct AckTimes {
    started: Instant,
    /// (sequence number, microseconds since `started`), per slot.
    slots: Vec<(AtomicU64, AtomicU64)>,
}

impl AckTimes {
    pub(crate) fn new(started: Instant) -> AckTimes {
        AckTimes {
            started,
            slots: (0..RING).map(|_| Default::default()).collect(),
        }
    }

    /// Notes that `seq` was answered at `at`.
    pub(crate) fn answered(&self, seq: Seq, at: Instant) {
        let (s, t) = &self.slots[seq as usize % RING];
        // Time first: a reader that sees the new seq reads a time at least
        // as new (a torn pair is at worst a slot skipped).
        t.store(
            at.duration_since(self.started).as_micros() as u64,
            Ordering::Relaxed,
        );
        s.store(seq, Ordering::Release);
    }

    /// Microseconds from `seq`'s answer to `at`, if its slot still holds it.
    fn since_answer(&self, seq: Seq, at: Instant) -> Option<u64> {
        let (s, t) = &self.slots[seq as usize % RING];
        if s.load(Ordering::Acquire) != seq {
            return None;
        }
        let answered = t.load(Ordering::Relaxed);
        let now = at.duration_since(self.started).as_micros() as u64;
        Some(now.saturating_sub(answered))
    }
}

/// What the followers share.
pub(crate) struct Followers {
    /// Messages received in the measured period.
    pub(crate) read: AtomicU64,
    /// From an append's answer to a follower receiving it, microseconds.
    pub(crate) lag: Mutex<Histogram<u64>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Followers {
    /// Starts one follower per client, each from `from`, measuring from
    /// `measure_from`.
    pub(crate) fn start(
        clients: Vec<Client>,
        from: Seq,
        acks: Arc<AckTimes>,
        measure_from: Instant,
    ) -> Arc<Followers> {
        let followers = Arc::new(Followers {
            read: AtomicU64::new(0),
            lag: Mutex::new(Histogram::new(3).expect("3 significant digits")),
            tasks: Mutex::new(Vec::new()),
        });
        let tasks = clients
            .into_iter()
            .map(|client| {
                let (f, acks) = (followers.clone(), acks.clone());
                tokio::spawn(async move { f.follow(client, from, &acks, measure_from).await })
            })
            .collect();
        *followers.tasks.lock().expect("lock") = tasks;
        followers
    }

    /// One follower: a page at a time, each waited for, committed entries
    /// only, until stopped or the connection breaks.
    async fn follow(&self, client: Client, mut next: Seq, acks: &AckTimes, measure_from: Instant) {
        let mut lags = Vec::with_capacity(1024);
        while let Ok((entries, _)) = client.list_entries(next, 1000, true, true).await {
            let now = Instant::now();
            let Some(last) = entries.last().map(|e| e.0) else {
                continue;
            };
            next = last + 1;
            if now < measure_from {
                continue;
            }
            self.read.fetch_add(entries.len() as u64, Ordering::Relaxed);
            lags.extend(
                entries
                    .iter()
                    .filter_map(|(seq, _)| acks.since_answer(*seq, now)),
            );
            let mut h = self.lag.lock().expect("lock");
            for l in lags.drain(..) {
                let _ = h.record(l);
            }
        }
    }

    /// Stops every follower.
    pub(crate) fn stop(&self) {
        for t in self.tasks.lock().expect("lock").drain(..) {
            t.abort();
        }
    }
}
