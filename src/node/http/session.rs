//! The HTTP front end's client of the node loop: one client id, registered
//! like a binary connection, whose answers a task routes to the request
//! waiting for each. Appends are handed to the loop exactly as a binary
//! connection hands them (`requests::to_node`), and answered by the core.
//!
//! Bounds: at most `max` appends in flight. A request whose HTTP client
//! went away keeps its place until the core answers it, so clients that
//! hang up cannot pile appends on the loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::super::requests::to_node;
use super::super::shared::{timeout_from_ms, Input, Shared};
use crate::entry::Seq;
use crate::net::Outbox;
use crate::replication::{AppendRequest, ClientId};
use crate::wire::{AppendError, AppendItem, Frame, PROTOCOL_VERSION};

/// Requests waiting for the core, by request id: the waiter (`None` once
/// it went away) and its place.
type Pending = Mutex<HashMap<u64, (Option<oneshot::Sender<Answer>>, OwnedSemaphorePermit)>>;

/// The core's answer to one append.
pub(crate) type Answer = Result<Seq, AppendError>;

/// The front end's client of the node loop.
pub(crate) struct Session {
    shared: Arc<Shared>,
    client: ClientId,
    pending: Arc<Pending>,
    next_req: AtomicU64,
    places: Arc<Semaphore>,
}

/// Why an append got no answer from the core: the node stops.
#[derive(Debug)]
pub(crate) enum Stopping {
    /// Before the append was handed to the node loop: nothing was done.
    NotHanded,
    /// After: it may or may not be stored.
    Unanswered,
}

impl Session {
    /// Registers a client with the node loop and starts routing its answers;
    /// `None` if the node is stopping.
    pub(crate) async fn open(shared: Arc<Shared>, max: usize) -> Option<Arc<Session>> {
        let client = shared.next_id();
        // Room for every answer the places allow: the loop's `offer` never
        // finds it full.
        let (outbox, mut answers) = Outbox::new(max + 4);
        let opened = Input::ClientOpened {
            client,
            tx: outbox,
            version: PROTOCOL_VERSION,
        };
        if !to_node(&shared, opened).await {
            return None;
        }
        let pending: Arc<Pending> = Arc::default();
        let routed = pending.clone();
        shared.tracker.spawn(async move {
            while let Some(frame) = answers.recv().await {
                // Progress is never asked for: only answers come.
                let answers = match frame {
                    Frame::Answers { answers } => answers,
                    other => other.into_append_answer().into_iter().collect(),
                };
                for answer in answers {
                    let waiter = routed.lock().expect("pending lock").remove(&answer.req);
                    if let Some((Some(tx), _place)) = waiter {
                        let _ = tx.send(answer.result);
                    }
                }
            }
            // Every waiter learns the node is stopping.
            routed.lock().expect("pending lock").clear();
        });
        Some(Arc::new(Session {
            shared,
            client,
            pending,
            next_req: AtomicU64::new(1),
            places: Arc::new(Semaphore::new(max)),
        }))
    }

    /// Hands one append to the node loop and waits for the core's answer
    /// (its sequence number or why not).
    pub(crate) async fn append(
        &self,
        item: AppendItem,
        log: crate::entry::LogId,
    ) -> Result<Answer, Stopping> {
        self.ask(|client, req| {
            Input::Appends(vec![AppendRequest {
                client,
                req,
                log,
                key: item.key,
                w: item.w,
                timeout: timeout_from_ms(item.timeout_ms),
                message: item.message,
                progress: false,
            }])
        })
        .await
    }

    /// Hands a consumer group's request to the node loop and waits for the
    /// core's answer (the group entry's position, or why not).
    pub(crate) async fn change_groups(
        &self,
        request: crate::replication::role::GroupRequest,
    ) -> Result<Answer, Stopping> {
        self.ask(|client, req| Input::ChangeGroups {
            client,
            req,
            request,
        })
        .await
    }

    /// Hands the request `input` makes (for this client, with a request id
    /// of its own) to the node loop and waits for the core's answer.
    async fn ask(&self, input: impl FnOnce(ClientId, u64) -> Input) -> Result<Answer, Stopping> {
        let place = tokio::select! {
            _ = self.shared.shutdown.cancelled() => return Err(Stopping::NotHanded),
            p = self.places.clone().acquire_owned() => p.map_err(|_| Stopping::NotHanded)?,
        };
        let req = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(req, (Some(tx), place));
        // Dropped with this future (the client went away): the place stays
        // taken until the core answers.
        let _abandon = Abandon {
            pending: &self.pending,
            req,
        };
        if !to_node(&self.shared, input(self.client, req)).await {
            return Err(Stopping::NotHanded);
        }
        rx.await.map_err(|_| Stopping::Unanswered)
    }
}

/// Forgets the waiter of a request whose future was dropped.
struct Abandon<'a> {
    pending: &'a Pending,
    req: u64,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if let Some(entry) = self
            .pending
            .lock()
            .expect("pending lock")
            .get_mut(&self.req)
        {
            entry.0 = None;
        }
    }
}
