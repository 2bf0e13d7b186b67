//! What the local log reports: entries stored, writes that did not
//! happen, failed syncs, and failures that cannot be undone.

use super::*;

impl Master {
    /// One handler per fact; `Written` and `Synced` count as far as this
    /// core's durability rule says.
    pub(super) fn on_storage(&mut self, report: StorageReport, out: &mut Vec<MasterAction>) {
        if let Some(upto) = self.cfg.durability.stored_upto(&report) {
            return self.on_stored(upto, out);
        }
        match report {
            StorageReport::Written { .. } | StorageReport::Synced { .. } => {}
            StorageReport::Unwritten { after, reason } => self.on_unwritten(after, reason, out),
            StorageReport::SyncFailed { reason } => self.on_sync_failed(reason, out),
            StorageReport::Failed { reason } => self.on_storage_failed(reason, out),
            StorageReport::Numbers { pairs, .. } => self.numbers.set_last(pairs),
        }
    }

    /// The log has stored everything up to `upto` under its policy.
    fn on_stored(&mut self, upto: Seq, out: &mut Vec<MasterAction>) {
        if self.broken.is_some() {
            return;
        }
        if upto.min(self.last) > self.stored {
            self.storage_trouble = None;
        }
        self.stored = self.stored.max(upto.min(self.last));
        self.release(out);
    }

    /// A sync failed: under `--fsync always` what was not yet stored may be
    /// gone, so the log is cut back to what is durable.
    fn on_sync_failed(&mut self, reason: String, out: &mut Vec<MasterAction>) {
        if self.cfg.durability == Durability::Synced {
            // None of the rest was acknowledged (the master counts only
            // what it synced); secondaries may hold some of it, which
            // `on_unwritten` deals with.
            let after = self.stored;
            out.push(MasterAction::CutLog { after });
            self.on_unwritten(after, reason, out);
        } else {
            // Already acknowledged on being written: they stay.
            self.storage_trouble = Some(reason);
        }
    }

    /// The log failed for good: nothing past what is already stored will
    /// ever count, so everyone still waiting on it is failed.
    fn on_storage_failed(&mut self, reason: String, out: &mut Vec<MasterAction>) {
        self.broken = Some(reason.clone());
        let ids: Vec<u64> = self.waiters.keys().copied().collect();
        for id in ids {
            let waiter = &self.waiters[&id];
            if waiter.seq > self.stored {
                let w = self.waiters.remove(&id).expect("present");
                out.push(MasterAction::Reply {
                    client: w.client,
                    req: w.req,
                    result: Err(self.lost_entry(w.seq, reason.clone())),
                });
            }
        }
    }

    /// The answer to an append whose entry at `seq` this log lost (cut, or
    /// never to be synced). Definite, not stored, unless it had been sent
    /// and elections may make a secondary that holds it master: then it
    /// may or may not survive (`ShuttingDown` without a sequence number,
    /// since this log no longer holds it and the next master may give the
    /// number to another entry).
    fn lost_entry(&self, seq: Seq, why: String) -> AppendError {
        if self.cfg.failover && seq <= self.replicated {
            AppendError::ShuttingDown { seq: None }
        } else {
            AppendError::Storage(why)
        }
    }

    /// The log holds nothing after `after`: every append waiting on a later
    /// entry is answered, their keys are forgotten, and the next append
    /// takes `after + 1`.
    ///
    /// If some cut entries had been sent (entries go out while the
    /// master's sync runs), secondaries may hold them, and this epoch is
    /// spent ([`Master::epoch_spent`]): a static master goes on in a new
    /// epoch, whose handshakes cut them everywhere; with elections the
    /// master steps down, and a secondary holding them may be elected and
    /// keep them (`lost_entry` says what each waiter is told).
    fn on_unwritten(&mut self, after: Seq, reason: String, out: &mut Vec<MasterAction>) {
        self.storage_trouble = Some(reason.clone());
        if after > self.last {
            // The log holds entries this core never assigned: a bug, and
            // nothing it could acknowledge from here on can be trusted.
            let reason = format!(
                "{reason}; the log holds seq {after} but only {} were assigned",
                self.last
            );
            return self.on_storage_failed(reason, out);
        }
        if after == self.last {
            return;
        }
        let mut gone: Vec<(Seq, u64)> = self
            .waiters
            .iter()
            .filter(|(_, w)| w.seq > after)
            .map(|(id, w)| (w.seq, *id))
            .collect();
        gone.sort_unstable();
        for (_, id) in gone {
            let w = self.waiters.remove(&id).expect("present");
            let why = format!("{reason}; the message was not stored");
            out.push(MasterAction::Reply {
                client: w.client,
                req: w.req,
                result: Err(self.lost_entry(w.seq, why)),
            });
        }
        if self.replicated > after {
            self.epoch_spent = true;
            self.replicated = after;
        }
        // A configuration entry it wrote is gone: the members it acts on
        // (its peers' standing, their links) are no longer its log's. It
        // does not undo them: the epoch is spent, and the master built
        // next acts on what the log holds.
        if self.cfg.config_seq > after {
            self.epoch_spent = true;
            self.change = None;
        }
        self.cfg.configs.retain(|(s, _)| *s <= after);
        // No secondary counts for an entry this log no longer holds: the
        // next entry at that seq is another one.
        for p in &mut self.peers {
            p.acked = p.acked.min(after);
            p.sent = p.sent.min(after);
            p.max_sent = p.max_sent.min(after);
            p.in_flight.retain(|to| *to <= after);
        }
        // Stale ids left in `by_w` and `deadlines` find no waiter and are
        // skipped.
        self.keys.truncate_after(after);
        // The numbers of the messages cut are taken back: the runtime
        // reports the log's as the cut left them, and appends wait for it.
        self.numbers.forget();
        self.epochs.retain(|(_, first)| *first <= after);
        self.last = after;
        self.stored = self.stored.min(after);
        if self.commit_floor > after {
            // The epoch's first entry is gone, and waiters on older entries
            // wait for it: the next entry of this epoch takes its place (a
            // marker at the next tick, or an append before that).
            self.commit_floor = after + 1;
            self.marker_due = true;
        }
    }
}
