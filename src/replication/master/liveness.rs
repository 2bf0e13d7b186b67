//! How the master sees each secondary (healthy, suspected, unhealthy,
//! connecting, refused) and what that makes of its quorum.

use std::time::Instant;

use super::*;

impl Master {
    /// Status of one secondary at `now`. A secondary without a live
    /// connection is Unhealthy: a closed connection is proof enough, and
    /// waiting for the deadline would keep the master writable on a
    /// minority for seconds. The exception is a secondary never heard from
    /// since this master started: during the first `unhealthy_after` it is
    /// Connecting (it may simply not be listening yet), not Unhealthy.
    pub(super) fn status(&self, peer: &Peer, now: Instant) -> PeerStatus {
        match (peer.conn, peer.last_heard) {
            (Some(_), Some(heard)) => {
                let silent = now.saturating_duration_since(heard);
                if silent > self.cfg.timing.unhealthy_after {
                    PeerStatus::Unhealthy
                } else if silent > self.cfg.timing.suspect_after {
                    PeerStatus::Suspected
                } else {
                    PeerStatus::Healthy
                }
            }
            (None, _) if peer.refused.is_some() => match peer.refused {
                Some((_, true)) => PeerStatus::Mismatch,
                _ => PeerStatus::Refused,
            },
            (None, None)
                if now.saturating_duration_since(self.started)
                    <= self.cfg.timing.unhealthy_after =>
            {
                PeerStatus::Connecting
            }
            _ => PeerStatus::Unhealthy,
        }
    }

    /// Nodes (master included) known to be reachable: neither Unhealthy nor
    /// still Connecting.
    pub fn reachable(&self, now: Instant) -> u32 {
        u32::from(self.me_voter())
            + self
                .peers
                .iter()
                .filter(|p| p.counts())
                .filter(|p| {
                    !matches!(
                        self.status(p, now),
                        PeerStatus::Unhealthy
                            | PeerStatus::Connecting
                            | PeerStatus::Refused
                            | PeerStatus::Mismatch
                    )
                })
                .count() as u32
    }

    /// Nodes (master included) heard from within `within`: whether the
    /// master still speaks for a majority (CheckQuorum).
    pub fn heard_within(&self, now: Instant, within: std::time::Duration) -> u32 {
        u32::from(self.me_voter())
            + self
                .peers
                .iter()
                .filter(|p| p.counts())
                // Only over a live connection: a node that refuses this master
                // is heard from, but does not follow it.
                .filter(|p| {
                    p.conn.is_some()
                        && p.last_heard
                            .is_some_and(|h| now.saturating_duration_since(h) < within)
                })
                .count() as u32
    }

    /// Secondaries still Connecting.
    pub(super) fn connecting(&self, now: Instant) -> u32 {
        self.peers
            .iter()
            .filter(|p| p.counts() && self.status(p, now) == PeerStatus::Connecting)
            .count() as u32
    }

    pub(super) fn quorum(&self, now: Instant) -> Quorum {
        let reachable = self.reachable(now);
        if reachable >= self.needed() {
            Quorum::Known
        } else if reachable + self.connecting(now) >= self.needed() {
            Quorum::Unknown
        } else {
            Quorum::Lost
        }
    }

    /// Whether new appends are refused: no quorum can be had now (while it
    /// is still unknown they wait instead), or the local log failed.
    pub fn read_only(&self, now: Instant) -> bool {
        self.broken.is_some() || self.quorum(now) == Quorum::Lost
    }

    /// Every node as the master sees it, itself first.
    pub fn health(&self, now: Instant) -> Vec<NodeHealth> {
        let mut nodes = vec![NodeHealth {
            id: self.cfg.me.0.clone(),
            addr: self.cfg.me.1.clone(),
            role: NodeRole::Master,
            status: if self.broken.is_some() || self.storage_trouble.is_some() {
                PeerStatus::Unhealthy
            } else {
                PeerStatus::Healthy
            },
            acked: self.stored,
            lag: self.last - self.stored,
            last_heard_ms: Some(0),
            detail: self.broken.clone().or_else(|| self.storage_trouble.clone()),
        }];
        for p in self.peers.iter().filter(|p| !p.gone) {
            nodes.push(NodeHealth {
                id: p.id.clone(),
                addr: p.addr.clone(),
                role: if p.learner || !p.voter {
                    NodeRole::Learner
                } else {
                    NodeRole::Secondary
                },
                status: self.status(p, now),
                acked: p.acked,
                lag: self.last.saturating_sub(p.acked),
                last_heard_ms: p
                    .last_heard
                    .map(|h| now.saturating_duration_since(h).as_millis() as u64),
                detail: p.refused.as_ref().map(|(reason, _)| reason.clone()),
            });
        }
        nodes
    }

    /// Records that `peer` spoke on `conn` and holds `stored`. Returns false
    /// for a stale connection.
    pub(super) fn heard(&mut self, peer: usize, conn: ConnId, now: Instant, stored: Seq) -> bool {
        let p = &mut self.peers[peer];
        if p.conn != Some(conn) {
            return false;
        }
        p.last_heard = Some(now);
        p.acked = p.acked.max(stored.min(p.max_sent));
        // Cumulative acks can overtake a rewind after a nack.
        p.sent = p.sent.max(p.acked);
        while p.in_flight.front().is_some_and(|to| *to <= p.acked) {
            p.in_flight.pop_front();
        }
        true
    }
}
