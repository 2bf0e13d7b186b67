//! Admission of appends: the checks, held appends while quorum is still
//! unknown, sequence numbers and request keys.

use std::time::Instant;

use super::*;
use crate::replication::keys::Known;

impl Master {
    pub(super) fn append(
        &mut self,
        now: Instant,
        request: AppendRequest,
        out: &mut Vec<MasterAction>,
    ) {
        let AppendRequest {
            client,
            req,
            log: _,
            ref key,
            w,
            timeout,
            ref message,
            progress: _,
        } = request;
        let reply = |out: &mut Vec<MasterAction>, result| {
            out.push(MasterAction::Reply {
                client,
                req,
                result,
            })
        };
        let n = self.nodes();
        let w = crate::replication::quorum::nodes_for(w, n);
        if w < 1 || w as usize > n {
            let msg = format!(
                "write concern w={w} is impossible in a cluster of {n} node(s); use 1 to {n}, 'majority' or 'all'"
            );
            return reply(out, Err(AppendError::BadRequest(msg)));
        }
        if message.len() > self.cfg.max_message_bytes {
            let msg = format!(
                "the message is {} bytes, over the {} byte limit (--max-message-bytes)",
                message.len(),
                self.cfg.max_message_bytes
            );
            return reply(out, Err(AppendError::BadRequest(msg)));
        }
        if key.as_ref().is_some_and(|k| k.is_empty()) {
            // Most likely an unset variable in a script; and the empty key
            // marks an epoch's first entry (`Entry::marker`).
            let msg = "the request key is empty: give a non-empty key, or none".to_string();
            return reply(out, Err(AppendError::BadRequest(msg)));
        }
        if key.as_ref().is_some_and(|k| k.starts_with('\0')) {
            // Such keys are the log's own (`Entry::config`).
            let msg = "the request key starts with a NUL byte, which is reserved: give another key"
                .to_string();
            return reply(out, Err(AppendError::BadRequest(msg)));
        }
        if key.as_ref().is_some_and(|k| k.len() > MAX_KEY_BYTES) {
            let msg = format!("the request key is over {MAX_KEY_BYTES} bytes");
            return reply(out, Err(AppendError::BadRequest(msg)));
        }
        if let Some(reason) = &self.broken {
            return reply(out, Err(AppendError::Storage(reason.clone())));
        }
        let held = Held {
            deadline: timeout.map(|t| now + t),
            w,
            request,
        };
        // Behind appends already held, to keep arrival order.
        if self.held.is_empty() {
            self.admit(now, held, out);
        } else {
            self.held.push_back(held);
        }
    }

    /// Assigns a sequence number and a message number (or finds the
    /// original ones for a known key), holds the append while quorum is
    /// unknown, or refuses it.
    pub(super) fn admit(&mut self, now: Instant, a: Held, out: &mut Vec<MasterAction>) {
        let known = (a.request.key.as_deref())
            .and_then(|k| self.keys.lookup(a.request.log, k, &a.request.message));
        // What the client is told of an entry already in the log: its
        // number (the key window keeps them with the keys).
        let shown = |seq| self.keys.number(seq).unwrap_or(seq);
        let (seq, shown) = match known {
            // A retry of an entry retention deleted: it is on a majority;
            // whether it reached `w` was answered the first time, and it
            // never will now if it had not (a node reset past it does not
            // hold it).
            Some(Known::Same(seq)) if seq <= self.base.seq => {
                let majority = crate::replication::quorum::majority(self.nodes());
                let result = if a.w <= majority {
                    Ok(shown(seq))
                } else {
                    Err(AppendError::Deleted {
                        seq: shown(seq),
                        stored_on: majority,
                    })
                };
                return out.push(MasterAction::Reply {
                    client: a.request.client,
                    req: a.request.req,
                    result,
                });
            }
            // A retry: answer with the original entry once it reaches `w`.
            Some(Known::Same(seq)) => (seq, shown(seq)),
            // The key names another message's entry: appending this one
            // would lose it, answering with that entry would lie.
            Some(Known::Different(seq)) => {
                return out.push(MasterAction::Reply {
                    client: a.request.client,
                    req: a.request.req,
                    result: Err(AppendError::KeyReused { seq: shown(seq) }),
                })
            }
            None => match self.quorum(now) {
                // Numbers a cut took back are reported by the runtime.
                Quorum::Known if !self.numbers.is_known() => return self.held.push_back(a),
                Quorum::Known => {
                    let log = a.request.log;
                    let number = self.numbers.assign(log);
                    let key = a.request.key.as_deref();
                    let seq = self.next_seq((log, number), key, &a.request.message);
                    let entry = Entry::message(
                        (self.epoch, seq),
                        (log, number),
                        a.request.key.clone(),
                        a.request.message.clone(),
                    );
                    out.push(MasterAction::Persist(entry));
                    (seq, number)
                }
                Quorum::Unknown => return self.held.push_back(a),
                Quorum::Lost => return out.push(self.refusal(now, &a)),
            },
        };
        let id = self.next_waiter;
        self.next_waiter += 1;
        let progress = a.request.progress && self.progress.len() < MAX_PROGRESS_WAITERS;
        self.waiters.insert(
            id,
            Waiter {
                client: a.request.client,
                req: a.request.req,
                seq,
                shown,
                w: a.w,
                told: None,
            },
        );
        if progress {
            self.progress.insert(id);
        }
        // A retry of an older epoch's entry waits for this epoch's marker
        // to reach `w` nodes too: see `commit_floor`.
        let wait_for = seq.max(self.commit_floor);
        self.by_w[a.w as usize - 1]
            .entry(wait_for)
            .or_default()
            .push(id);
        // The client's clock started when the append arrived.
        if let Some(deadline) = a.deadline {
            self.deadlines.insert((deadline, id));
        }
        if known.is_some() {
            self.release(out);
        } else {
            self.tell_progress(out);
        }
    }

    pub(super) fn refusal(&self, now: Instant, a: &Held) -> MasterAction {
        MasterAction::Reply {
            client: a.request.client,
            req: a.request.req,
            result: Err(AppendError::Refused {
                reachable: self.reachable(now),
                needed: self.needed(),
            }),
        }
    }

    /// Admits held appends in order once quorum is known, refuses them once
    /// it is lost, and refuses those whose client timeout passed while
    /// waiting (nothing was appended for them).
    pub(super) fn admit_held(&mut self, now: Instant, out: &mut Vec<MasterAction>) {
        if self.held.is_empty() {
            return;
        }
        if let Some(reason) = &self.broken {
            let reason = reason.clone();
            for a in self.held.drain(..) {
                out.push(MasterAction::Reply {
                    client: a.request.client,
                    req: a.request.req,
                    result: Err(AppendError::Storage(reason.clone())),
                });
            }
            return;
        }
        // Whose client stopped waiting before quorum was known: nothing was
        // appended for them, and nothing will be.
        let (expired, waiting): (Vec<Held>, Vec<Held>) = self
            .held
            .drain(..)
            .partition(|a| a.deadline.is_some_and(|d| d <= now));
        self.held = waiting.into();
        for a in expired {
            out.push(self.refusal(now, &a));
        }
        match self.quorum(now) {
            Quorum::Unknown => {}
            Quorum::Known | Quorum::Lost => {
                let held = std::mem::take(&mut self.held);
                for a in held {
                    self.admit(now, a, out);
                }
            }
        }
    }
}
