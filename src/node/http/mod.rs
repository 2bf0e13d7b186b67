//! The node's HTTP ports, on one HTTP stack (hyper, with axum's router):
//! `--metrics-listen` (`metrics_page`) and `--http-listen`, the API that
//! lets any language and curl use replog without the binary protocol.
//!
//! - `server`: the accept loop, TLS and the bounds of every port;
//! - `seed`: the original service's API, shapes unchanged (`POST
//!   /messages`, `GET /messages`, `GET /health`);
//! - `v1`: the versioned API (`/v1/messages`, `/v1/health`, `/v1/members`);
//! - `session`: appends handed to the node loop as a binary connection's
//!   are, and their answers routed back;
//! - `forward`: what a node that is not the master asks the master;
//! - `listing`: a listing of the log as a body, a page at a time;
//! - `problem`: every error as one status and one JSON object.
//!
//! A request calls what the binary protocol's handlers call
//! (`node::requests`, the core through the node loop): there is no second
//! copy of what an append or a list does.

mod forward;
mod listing;
pub(super) mod metrics_page;
mod problem;
mod seed;
mod server;
mod session;
mod v1;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::shared::{Input, Shared};
use crate::auth::Access;
use crate::entry::Seq;
use crate::wire::{AppendError, AppendItem, HealthReport};
use problem::Problem;

/// Largest request head: request line and headers.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What every handler of the API reaches.
pub(crate) struct Api {
    shared: Arc<Shared>,
    session: Arc<session::Session>,
    forward: forward::Forwarder,
}

/// Serves the API on `listener` until the node stops.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let limits = server::ServeLimits {
        name: "HTTP API",
        max_connections: shared.cfg.limits.max_connections,
        max_head_bytes: MAX_HEAD_BYTES,
        head_timeout: shared.cfg.limits.hello_timeout,
        keep_alive: true,
        max_life: None,
        tls: true,
    };
    // Each connection has at most one request at a time (HTTP/1): as many
    // appends as connections can wait at once.
    let Some(session) = session::Session::open(shared.clone(), limits.max_connections).await else {
        return;
    };
    let api = Arc::new(Api {
        forward: forward::Forwarder::new(&shared.cfg),
        shared: shared.clone(),
        session,
    });
    let router = Router::new()
        .merge(seed::routes())
        .merge(v1::routes())
        .fallback(|| async {
            Problem::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such resource: see docs/http.md for the API (/messages, /health, /v1/...)",
            )
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this resource does not take that method: see docs/http.md",
            )
        })
        .with_state(api);
    server::serve(listener, shared, router, limits).await
}

impl Api {
    /// What the request's `Authorization: Bearer` token allows; 401 for a
    /// token missing where reads need one, 403 for one that matches none.
    fn access(&self, headers: &HeaderMap) -> Result<Access, Problem> {
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
    fn may_append(&self, headers: &HeaderMap) -> Result<(), Problem> {
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

    /// Appends `item` and waits for its write concern: handed to the node
    /// loop, and on a node that is not the master, forwarded to the master
    /// with the same key.
    async fn append(&self, item: AppendItem) -> Result<Seq, Problem> {
        let key = item.key.clone().unwrap_or_default();
        let answer = match self.session.append(item.clone()).await {
            Ok(answer) => answer,
            Err(session::Stopping::NotHanded) => return Err(Problem::stopping()),
            Err(session::Stopping::Unanswered) => return Err(Problem::unanswered(&key)),
        };
        match answer {
            Ok(seq) => Ok(seq),
            Err(AppendError::NotMaster { master_addr }) if !master_addr.is_empty() => self
                .forward
                .append(&master_addr, item)
                .await
                .map_err(|e| Problem::forwarded(e, &key)),
            Err(e) => Err(Problem::append(e, &key)),
        }
    }

    /// This node's health report, and on a node that follows a master the
    /// master's report (`None` if it cannot be had).
    async fn health(&self) -> Result<(HealthReport, Option<HealthReport>), Problem> {
        let (tx, rx) = oneshot::channel();
        if !super::requests::to_node(&self.shared, Input::Health { tx }).await {
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
    async fn body(&self, body: axum::body::Body, limit: usize) -> Result<Bytes, Problem> {
        let max = self.shared.cfg.max_message_bytes;
        let too_large = || {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the message is over this node's limit of {max} bytes (--max-message-bytes); nothing was appended"),
            )
            .with("max_message_bytes", max)
        };
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

/// A write concern as JSON gives it: a number, `"majority"` or `"all"`.
fn write_concern(value: &serde_json::Value) -> Result<crate::wire::WriteConcern, Problem> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(crate::wire::WriteConcern::Nodes)
            .ok_or_else(|| Problem::bad_request(format!("\"w\": {n} is not a number of nodes"))),
        serde_json::Value::String(s) => s.parse().map_err(Problem::bad_request),
        other => Err(Problem::bad_request(format!(
            "\"w\": {other} is not a write concern: give a number of nodes, \"majority\" or \"all\""
        ))),
    }
}
