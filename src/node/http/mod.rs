//! The node's HTTP ports, on one HTTP stack (hyper, with axum's router):
//! `--metrics-listen` (`metrics_page`) and `--http-listen`, the API that
//! lets any language and curl use replog without the binary protocol.
//!
//! - `server`: the accept loop, TLS and the bounds of every port;
//! - `seed`: the original service's API, shapes unchanged (`POST
//!   /messages`, `GET /messages`, `GET /health`);
//! - `v1`: the versioned API (`/v1/messages`, `/v1/health`, `/v1/members`);
//! - `api`: what every handler reaches (the node, the session, the
//!   forwarder) and shares (tokens, appends, health, bodies);
//! - `append_body`: what an append's body and headers say (JSON or raw
//!   bytes, the key, `w`, `timeout`);
//! - `session`: appends handed to the node loop as a binary connection's
//!   are, and their answers routed back;
//! - `forward`: what a node that is not the master asks the master;
//! - `listing`: a listing of the log as a body, a page at a time;
//! - `budget`: the encoded bytes all HTTP answers hold at once;
//! - `problem`: every error as one status and one JSON object.
//!
//! A request calls what the binary protocol's handlers call
//! (`node::requests`, the core through the node loop): there is no second
//! copy of what an append or a list does.

mod api;
mod append_body;
mod budget;
mod forward;
mod groups;
mod listing;
pub(super) mod metrics_page;
mod problem;
mod seed;
mod server;
mod session;
mod v1;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Router;
use tokio::net::TcpListener;

use super::shared::Shared;
use problem::Problem;

/// Largest request head: request line and headers.
const MAX_HEAD_BYTES: usize = 16 * 1024;

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
    let api = Arc::new(api::Api {
        forward: forward::Forwarder::new(&shared.cfg),
        shared: shared.clone(),
        session,
        budget: budget::Budget::new(),
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
