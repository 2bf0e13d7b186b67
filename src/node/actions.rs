//! How the node loop carries out the core's actions, one method per kind
//! of action: the runtime does what it is told and decides nothing.

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::event_loop::NodeLoop;
use super::link;
use super::shared::{Input, LINK_QUEUE};
use crate::replication::role::Action;
use crate::replication::storage::StorageReport;
use crate::wire::Frame;

impl NodeLoop {
    /// Carries out an action about the epoch and vote recorded before anything that relies on them, vote requests sent, candidates answered.
    pub(super) fn election_action(&mut self, action: Action, unrecorded: &mut bool) {
        match action {
            Action::RecordEpoch(epoch) => {
                if let Err(e) = self.record_epoch(epoch, None) {
                    self.report(StorageReport::Failed {
                        reason: format!("cannot record epoch {epoch}: {e}"),
                    });
                    *unrecorded = true;
                }
            }
            // Synchronously: nothing that follows (an answer to the
            // candidate, a request for votes) may go out before it, and
            // none of it does if it fails. The core decides the rest.
            Action::RecordVote { epoch, vote } => {
                if let Err(e) = self.record_epoch(epoch, vote.as_deref()) {
                    if let Some(more) = self.shared.throttle.allow("vote-unrecorded") {
                        error!(node = %self.shared.cfg.id, epoch, error = %e, suppressed = more,
                               "cannot record the epoch and vote: no vote is given or asked for until it can");
                    }
                    let reason = e.to_string();
                    self.requeue
                        .push_back(Input::VoteUnrecorded { epoch, reason });
                    *unrecorded = true;
                }
            }
            Action::RequestVotes { .. } | Action::AnswerVote { .. } if *unrecorded => {}
            Action::RequestVotes {
                epoch,
                pre,
                last,
                peers,
            } => {
                info!(node = %self.shared.cfg.id, epoch, pre, "asking for votes");
                for peer in peers {
                    (self.spawn_vote)(peer, Frame::VoteRequest { epoch, last, pre });
                }
            }
            Action::AnswerVote { conn, frame } => {
                if let Some((c, tx, version)) = self.voter.take() {
                    if c == conn {
                        tx.offer(frame.for_node_version(version));
                        tx.close();
                    }
                }
            }
            Action::RefuseCandidate { conn, reason } => {
                if let Some((c, tx, _)) = self.voter.take() {
                    if c == conn {
                        if let Some(more) = self.shared.throttle.allow("refused-vote") {
                            warn!(node = %self.shared.cfg.id, %reason, suppressed = more, "refusing a vote request");
                        }
                        tx.offer(Frame::Refused { reason });
                        tx.close();
                    }
                }
            }
            _ => unreachable!("dispatched by run_actions"),
        }
    }

    /// Carries out an action about the master's links to its secondaries: started, stopped, sent entries and frames, redialled.
    pub(super) fn link_action(&mut self, action: Action) {
        match action {
            Action::StartLinks { epoch, peers } => {
                self.links.clear();
                self.link_epoch = epoch;
                for (peer, secondary) in peers.into_iter().enumerate() {
                    let (tx, rx) = mpsc::channel(LINK_QUEUE);
                    self.links.push((secondary.0.clone(), tx));
                    (self.spawn_link)(peer, secondary, epoch, rx);
                }
            }
            // Closing its queue ends a link.
            Action::StopLinks => self.links.clear(),
            Action::StartLink { peer, secondary } => {
                let (tx, rx) = mpsc::channel(LINK_QUEUE);
                info!(node = %self.shared.cfg.id, peer = %secondary.0, addr = %secondary.1, "a member was added: dialling it");
                let entry = (secondary.0.clone(), tx);
                match self.links.get_mut(peer) {
                    Some(slot) => *slot = entry,
                    None => self.links.push(entry),
                }
                (self.spawn_link)(peer, secondary, self.link_epoch, rx);
            }
            Action::StopLink { peer } => {
                if let Some((id, tx)) = self.links.get_mut(peer) {
                    info!(node = %self.shared.cfg.id, peer = %id, "a member was removed: closing its link");
                    // A sender whose receiver is gone: the link's own
                    // queue closes, which ends it.
                    *tx = mpsc::channel(1).0;
                }
            }
            Action::SendEntries {
                peer,
                conn,
                from,
                to,
            } => {
                // Entries come from the tail or the log, which writing
                // fills: write this round's first.
                self.write_pending();
                self.send_entries(peer, conn, from, to);
            }
            Action::ToPeer { peer, conn, frame } => {
                self.to_link(peer, link::LinkCmd::Send(conn, frame));
            }
            Action::Reconnect { peer, conn } => {
                warn!(node = %self.shared.cfg.id, peer = %self.peer_id(peer), "reconnecting to the secondary: silent past --unhealthy-after, or behind what retention just deleted");
                self.to_link(peer, link::LinkCmd::Reconnect(conn));
            }
            Action::Redial { peer, link, after } => {
                self.to_link(peer, link::LinkCmd::Redial(link, after));
            }
            Action::Diverged { peer, conn, reason } => {
                error!(node = %self.shared.cfg.id, peer = %self.peer_id(peer), "{reason}");
                self.to_link(peer, link::LinkCmd::Reconnect(conn));
            }
            _ => unreachable!("dispatched by run_actions"),
        }
    }

    /// Carries out an action about the local log: entries to write, a cut, a reset after the master's retention.
    pub(super) fn log_action(&mut self, action: Action) {
        match action {
            Action::Persist(entries) => {
                // A batch (a secondary's) is taken as it is; single
                // appends go into the buffer kept from round to round,
                // so that it is not given up for a one-entry vector.
                if self.pending.is_empty() && entries.len() >= self.pending.capacity() {
                    self.pending = entries;
                } else {
                    self.pending.extend(entries);
                }
            }
            Action::ResetLog {
                base,
                epochs,
                configs,
                numbers,
                logs,
                groups,
            } => {
                warn!(
                    node = %self.shared.cfg.id,
                    base = base.seq,
                    "this node lacks entries its master has deleted by retention (--retention-bytes, --retention-age): emptying its log, which starts again after sequence number {}; entries up to it are on a majority",
                    base.seq
                );
                self.pending.clear();
                self.shared.tail().restart(numbers.iter().copied());
                self.shared_sends.clear();
                let mut log = self.shared.log.write();
                let result = log.reset(
                    base,
                    &epochs,
                    configs.as_deref(),
                    (&numbers, &logs, &groups),
                );
                self.visible_tx.send_if_modified(|v| {
                    let changed = *v != base.seq;
                    *v = base.seq;
                    changed
                });
                drop(log);
                if let Err(e) = result {
                    self.report(StorageReport::Failed {
                        reason: format!("emptying the log to start after {} failed: {e}", base.seq),
                    });
                }
            }
            Action::CutLog { after, why, save } => {
                warn!(node = %self.shared.cfg.id, after, "{why}");
                self.pending.retain(|e| e.seq <= after);
                if save {
                    self.write_pending();
                    self.save_rollback(after);
                }
                if let Err(e) = self.cut_log(after) {
                    self.report(StorageReport::Failed {
                        reason: format!("{why} failed: {e}"),
                    });
                }
                self.report(StorageReport::Numbers {
                    pairs: Vec::new(),
                    groups: Default::default(),
                });
            }
            _ => unreachable!("dispatched by run_actions"),
        }
    }

    /// Carries out an action about the master's connection, on a secondary: welcomed, answered, refused.
    pub(super) fn master_action(&mut self, action: Action) {
        match action {
            Action::RefuseStale {
                conn,
                epoch,
                reason,
            } => {
                if let Some((_, tx, _)) = self.take_master_conn(conn) {
                    warn!(node = %self.shared.cfg.id, %reason, "refusing a stale master");
                    tx.offer(Frame::NewerEpoch { epoch, reason });
                    tx.close();
                }
            }
            Action::ToMaster { conn, frame } => {
                if self.opening.as_ref().is_some_and(|(c, _, _)| *c == conn) {
                    // Welcomed: this is the master's connection now. An
                    // older one is closed, so that its master (deposed,
                    // or reconnecting) hears it at once.
                    if let Some((_, old, _)) =
                        std::mem::replace(&mut self.master, self.opening.take())
                    {
                        old.close();
                    }
                    self.settle(self.opening_cluster);
                }
                if let Some((c, tx, version)) = &self.master {
                    if *c == conn {
                        // A master of node version 8 or later is told
                        // this node's before its welcome.
                        if matches!(frame, Frame::Welcome(_)) && *version >= 8 {
                            tx.offer(Frame::NodeVersion {
                                version: crate::wire::NODE_PROTOCOL_VERSION,
                            });
                        }
                        tx.offer(frame.for_node_version(*version));
                    }
                }
            }
            Action::RefuseMaster { conn, reason } => {
                if let Some((_, tx, _)) = self.take_master_conn(conn) {
                    if let Some(more) = self.shared.throttle.allow("refused-master-conn") {
                        warn!(node = %self.shared.cfg.id, %reason, suppressed = more, "refusing a master connection");
                    }
                    tx.offer(Frame::Refused { reason });
                    tx.close();
                }
            }
            _ => unreachable!("dispatched by run_actions"),
        }
    }

    /// Carries out an action about answers and progress to clients, and the append metrics.
    pub(super) fn client_action(&mut self, action: Action) {
        match action {
            Action::Progress {
                client,
                req,
                seq,
                needed,
                missing,
            } => {
                if let Some((tx, _)) = self.clients.get(&client) {
                    tx.offer_spare(Frame::Progress {
                        req,
                        seq,
                        needed,
                        missing,
                    });
                }
            }
            Action::Reply {
                client,
                req,
                result,
            } => {
                if let Some((arrived, w)) = self.appends.remove(&(client, req)) {
                    let seconds = arrived.elapsed().as_secs_f64();
                    let outcome = super::metrics::outcome_label(&result);
                    self.shared.metrics.append(w, outcome, seconds);
                }
                if let Some((tx, version)) = self.clients.get(&client) {
                    let frame = match result {
                        Ok(seq) => Frame::Appended { req, seq },
                        Err(error) => Frame::AppendFailed {
                            req,
                            error: error.for_version(*version),
                        },
                    };
                    tx.offer(frame);
                }
            }
            _ => unreachable!("dispatched by run_actions"),
        }
    }

    /// Carries out an action about what is only said: a disregarded frame, a node that votes again, one that left.
    pub(super) fn note_action(&mut self, action: Action) {
        match action {
            Action::Disregard { reason } => {
                if let Some(more) = self.shared.throttle.allow("disregarded") {
                    warn!(node = %self.shared.cfg.id, %reason, suppressed = more, "disregarded");
                }
            }
            // Should recording fail, the node votes now and is a
            // learner again after a restart: the safe way round.
            Action::Promoted => match self.identity.promote() {
                Ok(()) => {
                    info!(node = %self.shared.cfg.id, "this node holds everything committed: it votes again")
                }
                Err(e) => {
                    error!(node = %self.shared.cfg.id, error = %e, "cannot record that this node votes again; it will be a learner again after a restart")
                }
            },
            Action::LeftCluster { reason } => warn!(node = %self.shared.cfg.id, "{reason}"),
            _ => unreachable!("dispatched by run_actions"),
        }
    }
}
