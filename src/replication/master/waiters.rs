//! Appends waiting for their write concern: answered once enough nodes
//! hold their entry, or when their timeout passes.

use std::time::Instant;

use super::*;

impl Master {
    /// Answers the waiters whose timeout has passed: the entry stays in the
    /// log and is still replicated, so the answer says where it is, and
    /// whether it is settled ([`Master::unsettled`]).
    pub(super) fn expire_waiters(&mut self, now: Instant, out: &mut Vec<MasterAction>) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(waiter) = self.waiters.remove(&id) {
                out.push(MasterAction::Reply {
                    client: waiter.client,
                    req: waiter.req,
                    result: Err(self.unsettled((waiter.seq, waiter.shown), true)),
                });
            }
        }
    }
}

impl Master {
    /// Tells each waiter that asked for progress where it stands, if that
    /// changed since it was last told; forgets those answered meanwhile.
    pub(super) fn tell_progress(&mut self, out: &mut Vec<MasterAction>) {
        if self.progress.is_empty() {
            return;
        }
        let ids: Vec<u64> = self.progress.iter().copied().collect();
        for id in ids {
            let Some(waiter) = self.waiters.get(&id) else {
                self.progress.remove(&id);
                continue;
            };
            let on = self.stored_on(waiter.seq);
            if waiter.told == Some(on) {
                continue;
            }
            let (seq, shown) = (waiter.seq, waiter.shown);
            let mut missing = Vec::new();
            if self.stored < seq {
                missing.push(self.cfg.me.0.clone());
            }
            missing.extend(
                self.peers
                    .iter()
                    .filter(|p| p.counts() && p.acked < seq)
                    .map(|p| p.id.clone()),
            );
            let waiter = self.waiters.get_mut(&id).expect("found above");
            waiter.told = Some(on);
            out.push(MasterAction::Progress {
                client: waiter.client,
                req: waiter.req,
                seq: shown,
                needed: waiter.w.saturating_sub(on),
                missing,
            });
        }
    }

    /// The answer to an append whose entry is in the log at `seq`, and
    /// which the client knows as `shown`, but has not reached its write
    /// concern, when the wait ends: its timeout
    /// (`timed_out`), or this master stopping or stepping down.
    ///
    /// Only an entry no failover can cut is promised: one known to be on a
    /// majority (committed), which every later master holds, or, with a
    /// static master (`--failover off`), one the master has stored, since
    /// its log is the truth. It will still be replicated (`TimedOut`, or
    /// `ShuttingDown` with its sequence number). Anything less may be cut
    /// by a failover that elects a node without it, and is `Uncommitted`:
    /// the client cannot know, and retries with the same key (which waits
    /// for this entry if it is kept, and appends it again if it was cut).
    pub(super) fn unsettled(&self, (seq, shown): (Seq, Seq), timed_out: bool) -> AppendError {
        let stored_on = self.stored_on(seq);
        let settled = seq <= self.committed || (!self.cfg.failover && seq <= self.stored);
        match (settled, timed_out) {
            (true, true) => AppendError::TimedOut {
                seq: shown,
                stored_on,
            },
            (true, false) => AppendError::ShuttingDown { seq: Some(shown) },
            (false, _) => AppendError::Uncommitted {
                seq: shown,
                stored_on,
                timed_out,
            },
        }
    }

    /// How many nodes hold `seq`, master included (0 if the master does not).
    pub(super) fn stored_on(&self, seq: Seq) -> u32 {
        let master = u32::from(self.me_voter() && self.stored >= seq);
        master
            + (self.peers.iter())
                .filter(|p| p.counts() && p.acked >= seq)
                .count() as u32
    }

    /// Answers every waiter whose entry has reached its write concern.
    pub(super) fn release(&mut self, out: &mut Vec<MasterAction>) {
        // Still runs once the log is broken: `stored` no longer moves then,
        // so what completes is only what was stored before the failure.
        // What each voter holds, most first (the master, if it votes, as
        // what it stored). Nothing is answered or committed beyond what
        // the master itself stored: its log is where every answer is from.
        let mut acked: Vec<Seq> = (self.peers.iter())
            .filter(|p| p.counts())
            .map(|p| p.acked)
            .chain(self.me_voter().then_some(self.stored))
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let voters = acked.len();
        let majority = super::super::quorum::majority(voters) as usize;
        let on_majority = acked.get(majority - 1).map_or(0, |s| self.stored.min(*s));
        if on_majority >= self.commit_floor {
            self.committed = self.committed.max(on_majority);
        }
        for w in 1..=voters.min(self.by_w.len()) {
            let done_upto = self.stored.min(acked[w - 1]);
            let queue = &mut self.by_w[w - 1];
            while let Some(entry) = queue.first_entry() {
                if *entry.key() > done_upto {
                    break;
                }
                let (_, ids) = entry.remove_entry();
                for id in ids {
                    if let Some(waiter) = self.waiters.remove(&id) {
                        out.push(MasterAction::Reply {
                            client: waiter.client,
                            req: waiter.req,
                            result: Ok(waiter.shown),
                        });
                    }
                }
            }
        }
        self.tell_progress(out);
    }
}
