//! Membership changes on the master: one member added (as a learner),
//! promoted or removed at a time, each a configuration entry the master
//! acts on as soon as it is written (see `replication::membership`).
//!
//! A change is written only once the one before it is committed, and once
//! an entry of this master's own epoch is: a master elected over a log
//! whose last configuration entry another master wrote but never
//! committed could otherwise write a second change next to it, and two
//! configurations two changes apart need not share a majority (the bug
//! found in Raft's single-server changes). Until then a change waits
//! (`Master::change`), written at the first moment it may be.
//!
//! A learner is promoted by the master itself, with a configuration entry,
//! once it holds everything committed when it was first seen connected
//! (the mark of that moment, kept: under a steady load the newest mark is
//! always a little ahead of a secondary's acks, and a learner that had to
//! catch up with the newest might never be promoted; a voter that lags a
//! little is any Raft voter). The answer to the client that
//! asked for a change comes once its entry is on a majority of the new
//! voters, like an append with `w = majority`.

use super::*;
use crate::replication::membership::{Membership, Standing};

/// A change asked for and not yet written.
#[derive(Debug, Clone)]
pub(super) struct Change {
    /// Who asked, to be answered (none for a promotion).
    pub(super) asked_by: Option<(ClientId, u64)>,
    /// The membership it makes.
    pub(super) next: Membership,
}

impl Peer {
    /// Whether it counts toward `w`, a majority and the commit mark.
    pub(super) fn counts(&self) -> bool {
        self.voter && !self.gone
    }
}

impl Master {
    /// Whether the master itself votes (it stops being master once a
    /// change that removed it is committed).
    pub(super) fn me_voter(&self) -> bool {
        self.cfg.members.is_voter(&self.cfg.me.0)
    }

    /// The members this master acts on.
    pub fn members(&self) -> &Membership {
        &self.cfg.members
    }

    /// Whether a change that removed this master is committed: it must
    /// step down.
    pub fn removed_and_committed(&self) -> bool {
        !self.me_voter() && self.committed >= self.cfg.config_seq
    }

    /// A client asks for the membership `next`, one change from the
    /// current one. Refused at once if another change is asked for or not
    /// yet committed; otherwise written now or as soon as it may be.
    pub fn change(
        &mut self,
        (client, req): (ClientId, u64),
        next: Membership,
        out: &mut Vec<MasterAction>,
    ) {
        let busy = self.change.is_some() || self.committed < self.cfg.config_seq;
        if busy || self.broken.is_some() || !self.cfg.failover {
            let why = match &self.broken {
                Some(reason) => AppendError::Storage(reason.clone()),
                None if !self.cfg.failover => AppendError::BadRequest(
                    "membership changes need elections (--failover on): a static master's cluster keeps its --cluster list".into(),
                ),
                None => AppendError::BadRequest(
                    "another membership change is under way: try again once it is committed (replog member list shows it)".into(),
                ),
            };
            return out.push(MasterAction::Reply {
                client,
                req,
                result: Err(why),
            });
        }
        self.change = Some(Change {
            asked_by: Some((client, req)),
            next,
        });
        self.write_change(out);
    }

    /// Writes the change waiting, if it may be written now; otherwise
    /// promotes a learner that holds everything committed, if one does.
    /// Called after every event.
    pub(super) fn write_change(&mut self, out: &mut Vec<MasterAction>) {
        self.drop_departed(out);
        if self.broken.is_some() || self.epoch_spent || self.committed < self.cfg.config_seq {
            return;
        }
        if self.change.is_none() {
            self.change = self.promotion();
        }
        if self.change.is_none() {
            return;
        }
        // An entry of this epoch, committed: a marker if there is none yet
        // (a master elected over a log known committed writes none).
        match self.epochs.last() {
            Some(&(epoch, first)) if epoch == self.epoch => {
                if self.committed < first {
                    return;
                }
            }
            _ => return self.write_marker(out),
        }
        let Some(change) = self.change.take() else {
            return;
        };
        let seq = self.next_seq((0, 0), Some(crate::entry::CONFIG_KEY), &[]);
        out.push(MasterAction::Persist(change.next.entry(self.epoch, seq)));
        self.adopt(change.next, seq, out);
        if let Some((client, req)) = change.asked_by {
            let w = super::super::quorum::majority(self.nodes());
            self.wait_for(client, req, seq, w);
        }
    }

    /// Closes the links of members whose removal is now committed.
    fn drop_departed(&mut self, out: &mut Vec<MasterAction>) {
        let committed = self.committed;
        for (peer, p) in self.peers.iter_mut().enumerate() {
            if p.leaving.is_some_and(|seq| seq <= committed) {
                p.leaving = None;
                p.gone = true;
                if let Some(conn) = p.conn.take() {
                    out.push(MasterAction::Reconnect { peer, conn });
                }
                out.push(MasterAction::StopLink { peer });
            }
        }
    }

    /// A learner member that holds everything committed when it was first
    /// seen connected, made a voter.
    fn promotion(&mut self) -> Option<Change> {
        let committed = self.committed;
        let learners = (self.peers.iter_mut())
            .filter(|p| !p.voter && !p.gone && p.leaving.is_none() && p.conn.is_some());
        let mut ready = None;
        for p in learners {
            let mark = *p.promote_at.get_or_insert(committed);
            if p.acked >= mark && ready.is_none() {
                ready = Some(p.id.clone());
            }
        }
        let ready = self.peers.iter().find(|p| Some(&p.id) == ready.as_ref())?;
        Some(Change {
            asked_by: None,
            next: self.cfg.members.promoted(&ready.id).ok()?,
        })
    }

    /// Acts on membership `next`, recorded at `seq`: a new member gets a
    /// link, a removed one loses its link and stops counting, a promoted
    /// one starts counting.
    fn adopt(&mut self, next: Membership, seq: Seq, out: &mut Vec<MasterAction>) {
        for p in self.peers.iter_mut() {
            match next.get(&p.id) {
                Some(m) => p.voter = m.standing == Standing::Voter,
                // Removed: counts for nothing now, sent the log until the
                // removal is committed (`drop_departed`).
                None if !p.gone && p.leaving.is_none() => {
                    p.voter = false;
                    p.leaving = Some(seq);
                }
                None => {}
            }
        }
        for m in next.members() {
            let known = self.peers.iter().any(|p| p.id == m.id && !p.gone);
            if m.id == self.cfg.me.0 || known {
                continue;
            }
            // A node added back takes its old slot (and link index): the
            // peers stay as many as the ids ever members in this epoch.
            let fresh = Peer::new(&m.id, &m.addr, m.standing == Standing::Voter);
            let peer = match self.peers.iter().position(|p| p.id == m.id) {
                Some(i) => {
                    self.peers[i] = fresh;
                    i
                }
                None => {
                    self.peers.push(fresh);
                    self.peers.len() - 1
                }
            };
            out.push(MasterAction::StartLink {
                peer,
                id: m.id.clone(),
                addr: m.addr.clone(),
            });
        }
        self.cfg.configs.push((seq, next.clone()));
        self.cfg.members = next;
        self.cfg.config_seq = seq;
        let n = self.nodes().max(1);
        if self.by_w.len() < n {
            self.by_w.resize(n, BTreeMap::new());
        }
        // Waiters for more nodes than now vote can never be answered Ok.
        let stranded: Vec<u64> = (self.by_w[n..].iter_mut())
            .flat_map(|q| std::mem::take(q).into_values().flatten())
            .collect();
        for id in stranded {
            if let Some(w) = self.waiters.remove(&id) {
                out.push(MasterAction::Reply {
                    client: w.client,
                    req: w.req,
                    result: Err(self.unsettled((w.seq, w.shown), false)),
                });
            }
        }
        // A voter promoted may complete what waited for one more.
        self.release(out);
    }

    /// Registers a waiter for entry `seq` reaching `w` voters.
    pub(super) fn wait_for(&mut self, client: ClientId, req: u64, seq: Seq, w: u32) {
        let id = self.next_waiter;
        self.next_waiter += 1;
        self.waiters.insert(
            id,
            Waiter {
                client,
                req,
                seq,
                shown: seq,
                w,
                told: None,
            },
        );
        let wait_for = seq.max(self.commit_floor);
        self.by_w[w as usize - 1]
            .entry(wait_for)
            .or_default()
            .push(id);
    }
}

impl Peer {
    /// A secondary not yet connected.
    pub(super) fn new(id: &str, addr: &str, voter: bool) -> Peer {
        Peer {
            id: id.to_string(),
            addr: addr.to_string(),
            conn: None,
            version: 0,
            connected_at: None,
            acked: 0,
            sent: 0,
            max_sent: 0,
            in_flight: VecDeque::new(),
            last_heard: None,
            last_ping: None,
            retry_at: None,
            attempt: 0,
            refused: None,
            learner: false,
            voter,
            gone: false,
            leaving: None,
            promote_at: None,
            redial: Redial::default(),
            link: 0,
        }
    }
}
