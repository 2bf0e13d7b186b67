//! Delivery to each secondary: where it agrees with this log, heartbeats,
//! silence, retries with backoff, what to send next within the window, and
//! when the next of these is due.

use std::time::Instant;

use super::*;

impl Master {
    /// The next instant at which a `Tick` has something to do (a heartbeat
    /// due, a silence to detect, a backoff ending, an append timing out, the
    /// start-up period ending for appends held on it), if any. The runtime
    /// sleeps until then instead of ticking at a fixed rate.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let timing = self.cfg.timing;
        // Comparisons with the silence deadlines are strict (`>`).
        let just_after = std::time::Duration::from_millis(1);
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for p in &self.peers {
            if p.conn.is_none() {
                continue;
            }
            let heard = p.last_heard.or(p.connected_at).unwrap_or(now);
            at(heard + timing.unhealthy_after + just_after);
            at(p.last_ping.map_or(now, |t| t + timing.heartbeat_interval));
            if let Some(t) = p.retry_at {
                at(t);
            }
        }
        if let Some(&(deadline, _)) = self.deadlines.first() {
            at(deadline);
        }
        if !self.held.is_empty() {
            at(self.started + timing.unhealthy_after + just_after);
            for h in &self.held {
                if let Some(d) = h.deadline {
                    at(d);
                }
            }
        }
        next
    }

    pub(super) fn tick(&mut self, now: Instant, out: &mut Vec<MasterAction>) {
        let timing = self.cfg.timing;
        if self.marker_due && self.broken.is_none() {
            self.write_marker(out);
        }
        for (i, p) in self.peers.iter_mut().enumerate() {
            let Some(conn) = p.conn else { continue };
            let heard = p.last_heard.or(p.connected_at).unwrap_or(now);
            if now.saturating_duration_since(heard) > timing.unhealthy_after {
                // Silent: no error, no bytes. Do not trust this connection.
                p.conn = None;
                p.connected_at = None;
                out.push(MasterAction::Reconnect { peer: i, conn });
                continue;
            }
            let due = p
                .last_ping
                .is_none_or(|t| now.saturating_duration_since(t) >= timing.heartbeat_interval);
            if due {
                p.last_ping = Some(now);
                out.push(MasterAction::Send {
                    peer: i,
                    conn,
                    frame: Frame::Heartbeat {
                        committed: self.committed,
                    },
                });
            }
            if p.retry_at.is_some_and(|t| t <= now) {
                p.retry_at = None;
            }
        }
        self.expire_waiters(now, out);
    }

    /// Sends whatever each connected secondary is missing, up to the window.
    /// The runtime calls this after each batch of events, so entries that
    /// arrived together travel together.
    ///
    /// Entries are sent once written, while the master's own sync runs
    /// (parallel replication): a `w >= 2` append waits for the slowest of
    /// the syncs, not for the master's and then a secondary's. Each node
    /// counts only once it has synced the entry itself, the master
    /// included, so nothing is acknowledged that a crash of the master
    /// could take back. What a secondary may then hold beyond the
    /// master's durable log is cut by the handshake after the master's
    /// restart (a new epoch), or after a failed sync here, which spends
    /// this epoch (see `on_unwritten`).
    pub fn flush(&mut self, now: Instant, out: &mut Vec<MasterAction>) {
        // A failed log's unsynced writes cannot be trusted: only what it
        // stored before the failure still goes out.
        let written = if self.broken.is_some() {
            self.stored
        } else {
            self.last
        };
        let mut replicated = self.replicated;
        for (i, p) in self.peers.iter_mut().enumerate() {
            let Some(conn) = p.conn else { continue };
            if p.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            p.retry_at = None;
            // Up to what is written and fits in the window, in batches. An
            // iterator over a range, not a loop on a condition: whatever
            // the arithmetic, it ends.
            let end = written.min(p.acked.saturating_add(self.cfg.window));
            let batch = self.cfg.batch.max(1);
            let step = usize::try_from(batch).unwrap_or(usize::MAX);
            for from in (p.sent + 1..=end).step_by(step) {
                if p.in_flight.len() >= super::super::FRAMES_IN_FLIGHT {
                    break; // the next ack lets the rest go, batched
                }
                let to = end.min(from.saturating_add(batch - 1));
                out.push(MasterAction::SendEntries {
                    peer: i,
                    conn,
                    from,
                    to,
                });
                p.sent = to;
                p.max_sent = p.max_sent.max(to);
                p.in_flight.push_back(to);
                replicated = replicated.max(to);
            }
        }
        self.replicated = replicated;
    }
}
