//! Appends waiting for their write concern: answered once enough nodes
//! hold their entry, or when their timeout passes.

use std::time::Instant;

use super::*;

impl Master {
    /// Answers the waiters whose timeout has passed: the entry stays in the
    /// log and is still replicated, so the answer says where it is.
    pub(super) fn expire_waiters(&mut self, now: Instant, out: &mut Vec<MasterAction>) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(waiter) = self.waiters.remove(&id) {
                let stored_on = self.stored_on(waiter.seq);
                out.push(MasterAction::Reply {
                    client: waiter.client,
                    req: waiter.req,
                    result: Err(AppendError::TimedOut {
                        seq: waiter.seq,
                        stored_on,
                    }),
                });
            }
        }
    }
}

impl Master {
    /// How many nodes hold `seq`, master included (0 if the master does not).
    pub(super) fn stored_on(&self, seq: Seq) -> u32 {
        let master = u32::from(self.stored >= seq);
        master + self.peers.iter().filter(|p| p.acked >= seq).count() as u32
    }

    /// Answers every waiter whose entry has reached its write concern.
    pub(super) fn release(&mut self, out: &mut Vec<MasterAction>) {
        // Still runs once the log is broken: `stored` no longer moves then,
        // so what completes is only what was stored before the failure.
        let mut acked: Vec<Seq> = self.peers.iter().map(|p| p.acked).collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        // On a majority: the master and majority-1 secondaries.
        let majority = super::super::quorum::majority(self.nodes()) as usize;
        let on_majority = if majority == 1 {
            self.stored
        } else {
            self.stored.min(acked[majority - 2])
        };
        if on_majority >= self.commit_floor {
            self.committed = self.committed.max(on_majority);
        }
        for w in 1..=self.nodes() {
            // The master must hold it, and w-1 secondaries.
            let done_upto = if w == 1 {
                self.stored
            } else {
                self.stored.min(acked[w - 2])
            };
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
                            result: Ok(waiter.seq),
                        });
                    }
                }
            }
        }
    }
}
