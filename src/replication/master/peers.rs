//! What the secondaries' connections report: a connection opened (and
//! where the secondary's log agrees with this one), refused or closed, and
//! acks, nacks and heartbeat replies.

use std::time::Instant;

use super::*;

impl Master {
    /// A replication connection finished its handshake.
    pub(super) fn on_peer_connected(
        &mut self,
        now: Instant,
        peer: usize,
        conn: ConnId,
        (last, epochs, version): (Position, &[(Epoch, Seq)], u32),
        stored: Seq,
        out: &mut Vec<MasterAction>,
    ) {
        // Entries of this master's epoch (or a later one) that this master
        // does not have cannot exist unless its own data directory was lost
        // or replaced. Cutting the secondary back would destroy data, and
        // keeping it would let the logs diverge: refuse to replicate to it
        // and say so.
        if last.epoch > self.epoch || (last.epoch == self.epoch && last.seq > self.last) {
            let reason = format!(
                "secondary {} holds entries up to seq {} of epoch {}, which this master (epoch {}, last seq {}) never wrote: this master's data directory was lost or replaced. Refusing to replicate to it so that nothing is cut; restore the master's data directory (for example from this secondary) and restart it",
                self.peers[peer].id, last.seq, last.epoch, self.epoch, self.last
            );
            // Heard from, and refused: Unhealthy, not Connecting.
            self.peers[peer].last_heard = Some(now);
            return out.push(MasterAction::Diverged { peer, conn, reason });
        }
        // An older node reads entries otherwise (without their log and
        // number, or without following consumer groups): what it would
        // store or act on is not this log.
        if version < crate::wire::OLDEST_REPLICATION_VERSION {
            let reason = format!(
                "secondary {} runs an older replog (node protocol {version}), which does not replicate what this one does (each log's numbers, consumer groups): this master (node protocol {}) does not replicate to it; upgrade it",
                self.peers[peer].id,
                crate::wire::NODE_PROTOCOL_VERSION
            );
            self.peers[peer].last_heard = Some(now);
            return out.push(MasterAction::Diverged { peer, conn, reason });
        }
        let mut agree = super::super::common_prefix(&self.epochs, self.last, epochs, last.seq);
        let truncate_after = (agree < last.seq).then_some(agree);
        let mut frame = Frame::Sync { truncate_after };
        if agree < self.base.seq {
            // It lacks entries (or holds others) where retention deleted
            // this log's: it cannot be caught up entry by entry. Everything
            // up to the base is committed: it starts again after it.
            let base = self.base;
            let epochs = (self.epochs.iter())
                .filter(|(_, first)| *first <= base.seq)
                .copied()
                .collect();
            frame = self.reset(base, epochs);
            agree = base.seq;
        }
        let reset = matches!(frame, Frame::Reset { .. } | Frame::ResetMembers(_));
        let stored = if agree == self.base.seq && reset {
            agree
        } else {
            stored
        };
        let p = &mut self.peers[peer];
        p.conn = Some(conn);
        p.version = version;
        p.connected_at = Some(now);
        p.redial.opened(now);
        p.last_heard = Some(now);
        // A heartbeat at the next tick: the committed mark at once, which a
        // learner needs to know when it holds everything committed.
        p.last_ping = None;
        p.acked = stored.min(agree);
        p.sent = agree;
        p.max_sent = agree;
        p.in_flight.clear();
        p.retry_at = None;
        p.attempt = 0;
        p.refused = None;
        out.push(MasterAction::Send { peer, conn, frame });
        self.release(out);
    }

    /// The frame that starts a secondary again after `base`: with the
    /// members in force there, since it can no longer be sent the entry
    /// that records them, and each log's last number there.
    fn reset(&self, base: Position, epochs: Vec<(Epoch, Seq)>) -> Frame {
        let configs = (self.cfg.configs.iter().rev())
            .find(|(s, _)| *s <= base.seq)
            .map(|(s, m)| (*s, m.encode()))
            .into_iter()
            .collect();
        Frame::ResetMembers(Box::new(crate::wire::ResetAtBase {
            base,
            epochs,
            configs,
            numbers: self.numbers.at_base().to_vec(),
            logs: self.logs_at_base.clone(),
            groups: self.groups_at_base.clone(),
        }))
    }

    /// A secondary refused the hello (or its proof of the key, or its
    /// certificate, did not hold): Refused at once, not Connecting, until a
    /// connection succeeds.
    pub(super) fn on_peer_refused(
        &mut self,
        now: Instant,
        peer: usize,
        reason: String,
        mismatch: bool,
    ) {
        let p = &mut self.peers[peer];
        if p.conn.is_none() {
            p.last_heard = Some(now);
            p.refused = Some((reason, mismatch));
        }
    }

    /// Its link is down and waits: how long is the redial policy's to say
    /// (`redial.rs`). A member removed meanwhile is not dialled again (its
    /// link is being stopped).
    pub(super) fn on_link_down(
        &mut self,
        now: Instant,
        (peer, link): (usize, u64),
        down: LinkDown,
        out: &mut Vec<MasterAction>,
    ) {
        let Some(p) = self.peers.get_mut(peer).filter(|p| !p.gone) else {
            return;
        };
        if link < p.link {
            return; // a stopped link's: its redial state is not this one's
        }
        p.link = link;
        let after = p.redial.next(now, down, &self.cfg.timing, &mut self.rng);
        out.push(MasterAction::Redial { peer, link, after });
    }

    /// A replication connection closed or failed.
    pub(super) fn on_peer_disconnected(&mut self, peer: usize, conn: ConnId) {
        let p = &mut self.peers[peer];
        if p.conn == Some(conn) {
            p.conn = None;
            p.connected_at = None;
        }
    }

    /// A cumulative acknowledgement.
    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        peer: usize,
        conn: ConnId,
        stored: Seq,
        out: &mut Vec<MasterAction>,
    ) {
        if self.heard(peer, conn, now, stored) {
            self.peers[peer].attempt = 0;
            self.release(out);
        }
    }

    /// The secondary could not take what was sent after `stored`: rewind to
    /// what it holds and pause; `flush` resends once the backoff has passed.
    pub(super) fn on_nack(
        &mut self,
        now: Instant,
        peer: usize,
        conn: ConnId,
        stored: Seq,
        out: &mut Vec<MasterAction>,
    ) {
        if self.heard(peer, conn, now, stored) {
            let delay = backoff(
                self.cfg.timing.retry_base,
                self.cfg.timing.retry_max,
                self.peers[peer].attempt,
                &mut self.rng,
            );
            let p = &mut self.peers[peer];
            p.sent = p.acked;
            p.in_flight.clear();
            p.attempt = p.attempt.saturating_add(1);
            p.retry_at = Some(now + delay);
            self.release(out);
        }
    }

    /// A live secondary: resume delivery now rather than at the end of the
    /// backoff. Not after repeated failures, though: a secondary that keeps
    /// failing (a broken disk) still answers heartbeats, and resending
    /// everything at every heartbeat would defeat the backoff.
    pub(super) fn on_heartbeat_reply(
        &mut self,
        now: Instant,
        (peer, conn): (usize, ConnId),
        (stored, learner): (Seq, bool),
        out: &mut Vec<MasterAction>,
    ) {
        if self.heard(peer, conn, now, stored) {
            let p = &mut self.peers[peer];
            p.learner = learner;
            if p.attempt < RESUME_ON_HEARTBEAT_MAX_ATTEMPTS {
                p.retry_at = None;
            }
            self.release(out);
        }
    }
}
