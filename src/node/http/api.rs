//! What every handler of the HTTP API reaches and shares: the node, the
//! session with its loop and the way to the master; the request's token,
//! an append (forwarded from a node that is not the master), the health
//! reports and a request body under its limits.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use bytes::Bytes;
use tokio::sync::oneshot;

use super::super::shared::{Input, Shared};
use super::problem::Problem;
use super::{forward, session};
use crate::auth::Access;
use crate::entry::Seq;
use crate::wire::{AppendError, AppendItem, HealthReport};

/// What every handler of the API reaches.
pub(crate) struct Api {
    pub(super) shared: Arc<Shared>,
    pub(super) session: Arc<session::Session>,
    pub(super) forward: forward::Forwarder,
    /// What encoded answers may hold at once.
    pub(super) budget: super::budget::Budget,
}

impl Api {
    /// What the request's `Authorization: Bearer` token allows; 401 for a
    /// token missing where reads need one, 403 for one that matches none.
    pub(super) fn access(&self, headers: &HeaderMap) -> Result<Access, Problem> {
        let cfg = &self.shared.cfg;
        let token = bearer(headers);
        crate::auth::client_access(
            token,
            cfg.client_token.as_deref(),
            cfg.read_token.as_deref(),
            &cfg.id,
        )
        .map_err(|refusal| {
            let status = match refusal {
                crate::auth::TokenRefusal::Required { .. } => StatusCode::UNAUTHORIZED,
                _ => StatusCode::FORBIDDEN,
            };
            Problem::new(
                status,
                "unauthorized",
                format!("{refusal}; over HTTP, give it as the header Authorization: Bearer TOKEN"),
            )
        })
    }

    /// The access of a request that appends: 401 without a token, 403 with
    /// one that may only read.
    pub(super) fn may_append(&self, headers: &HeaderMap) -> Result<(), Problem> {
        if self.access(headers)?.append {
            return Ok(());
        }
        let (status, what) = match bearer(headers) {
            None => (StatusCode::UNAUTHORIZED, "requires the client token to append: give it as the header Authorization: Bearer TOKEN"),
            Some(_) => (StatusCode::FORBIDDEN, "takes appends only with the client token, and this token may only read"),
        };
        Err(Problem::new(
            status,
            "unauthorized",
            format!("node {} {what}; nothing was appended", self.shared.cfg.id),
        ))
    }

    /// Appends `item` to `log` (its id, and its name unless it is the
    /// default log) and waits for its write concern: handed to the node
    /// loop, and on a node that is not the master, forwarded to the master
    /// with the same key.
    pub(super) async fn append(
        &self,
        item: AppendItem,
        (log, name): (crate::entry::LogId, Option<String>),
    ) -> Result<Seq, Problem> {
        let key = item.key.clone().unwrap_or_default();
        let answer = match self.session.append(item.clone(), log).await {
            Ok(answer) => answer,
            Err(session::Stopping::NotHanded) => return Err(Problem::stopping()),
            Err(session::Stopping::Unanswered) => return Err(Problem::unanswered(&key)),
        };
        match answer {
            Ok(seq) => Ok(seq),
            Err(AppendError::NotMaster { master_addr }) if !master_addr.is_empty() => self
                .forward
                .append(&master_addr, item, name.as_deref())
                .await
                .map_err(|e| Problem::forwarded(e, &key)),
            // Named as the client named it (the core knows ids).
            Err(AppendError::NoSuchLog { .. }) if name.is_some() => Err(Problem::append(
                AppendError::NoSuchLog {
                    log: name.unwrap_or_default(),
                },
                &key,
            )),
            Err(e) => Err(Problem::append(e, &key)),
        }
    }

    /// This node's health report, and on a node that follows a master the
    /// master's report (`None` if it cannot be had).
    pub(super) async fn health(&self) -> Result<(HealthReport, Option<HealthReport>), Problem> {
        let (tx, rx) = oneshot::channel();
        if !super::super::requests::to_node(&self.shared, Input::Health { tx }).await {
            return Err(Problem::stopping());
        }
        let own = rx.await.map_err(|_| Problem::stopping())?;
        let master = if own.role.follows() && !own.master_addr.is_empty() {
            let asking = self.forward.health(&own.master_addr);
            tokio::time::timeout(Duration::from_secs(2), asking)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        Ok((own, master))
    }

    /// The request body, at most `limit` bytes, read within the head
    /// timeout: 413 past the limit, 408 if it does not all come in time.
    pub(super) async fn body(
        &self,
        body: axum::body::Body,
        limit: usize,
    ) -> Result<Bytes, Problem> {
        let max = self.shared.cfg.max_message_bytes;
        let too_large = || {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the message is over this node's limit of {max} bytes (--max-message-bytes); nothing was appended"),
            )
            .with("max_message_bytes", max)
        };
        // Said to be too large (Content-Length): refused before waiting.
        if axum::body::HttpBody::size_hint(&body).lower() > limit as u64 {
            return Err(too_large());
        }
        let wait = self.shared.cfg.limits.hello_timeout;
        match tokio::time::timeout(wait, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) if is_length_limit(&e) => Err(too_large()),
            Ok(Err(e)) => Err(Problem::bad_request(format!(
                "the request body could not be read ({e})"
            ))),
            Err(_) => Err(Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} (--hello-timeout); nothing was appended",
                    humantime::format_duration(wait)
                ),
            )),
        }
    }
}

/// The token of an `Authorization: Bearer` header, if there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?;
    // Another scheme (Basic, from a proxy in front) carries no token of
    // ours: as if none were given, which a node with tokens refuses with
    // a sentence that says how to give one.
    let value = value.to_str().unwrap_or_default();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
        _ => None,
    }
}

/// Whether reading a body failed for its length.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Whether the cluster takes appends, as the master sees it (`master`, or
/// this node's own report if it is the master or the master cannot be
/// asked).
pub(super) fn accepting_appends(own: &HealthReport, master: Option<&HealthReport>) -> bool {
    let view = master.unwrap_or(own);
    view.role == crate::wire::NodeRole::Master && !view.read_only && view.reachable >= view.needed
}
