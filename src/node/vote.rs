//! A candidate's request for one node's vote: dial it as a candidate, prove
//! the cluster key like any node, send the `VoteRequest`, hand the answer
//! to the node loop. One short connection per request; an answer that does
//! not come within the election timeout is no vote (the core asks again in
//! its next election).

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tracing::{debug, warn};

use super::link::{connect, HandshakeError};
use super::shared::{Input, Shared};
use crate::net::Net;
use crate::replication::role::VoteAnswer;
use crate::wire::{Frame, Role};

/// Asks node `id` at `addr` with `request` (a `Frame::VoteRequest`).
pub(super) async fn ask<N: Net>(shared: Arc<Shared>, (id, addr): (String, String), request: Frame) {
    let timeout = shared.cfg.timing.election_timeout;
    let role = Role::Candidate {
        id: shared.cfg.id.clone(),
    };
    let answer = tokio::time::timeout(timeout, async {
        let ((mut reader, mut writer), _, _) =
            connect::<N>(&shared, &id, &addr, role, timeout).await?;
        writer
            .send(request)
            .await
            .map_err(|e| HandshakeError::Failed(e.to_string()))?;
        match reader.next().await {
            Some(Ok(frame)) => Ok(frame),
            Some(Err(e)) => Err(HandshakeError::Failed(e.to_string())),
            None => Err(HandshakeError::Failed("closed without answering".into())),
        }
    })
    .await;
    let input = match answer {
        Ok(Ok(Frame::VoteReply {
            epoch,
            term,
            granted,
            pre,
        })) => Input::VoteAnswered(VoteAnswer {
            voter: id,
            epoch,
            term,
            granted,
            pre,
            learner: false,
        }),
        Ok(Ok(Frame::LearnerVote { epoch, term, pre })) => Input::VoteAnswered(VoteAnswer {
            voter: id,
            epoch,
            term,
            granted: true,
            pre,
            learner: true,
        }),
        Ok(Err(HandshakeError::Stale { epoch, .. })) => Input::NewerEpoch { epoch },
        Ok(Ok(other)) => {
            debug!(node = %shared.cfg.id, voter = %id, "unexpected answer to a vote request: {}", other.name());
            return;
        }
        Ok(Err(HandshakeError::Refused(reason) | HandshakeError::Mismatch(reason))) => {
            // Another configuration, a wrong key: worth saying, once in a
            // while (elections repeat).
            if let Some(more) = shared.throttle.allow("vote-refused") {
                warn!(node = %shared.cfg.id, voter = %id, %reason, suppressed = more, "a node refused this node's request for votes");
            }
            return;
        }
        Ok(Err(e)) => {
            debug!(node = %shared.cfg.id, voter = %id, error = ?e, "no vote");
            return;
        }
        Err(_) => {
            debug!(node = %shared.cfg.id, voter = %id, "no answer to a vote request in time");
            return;
        }
    };
    let _ = shared.control.send(input).await;
}
