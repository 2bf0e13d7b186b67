//! The API of the service replog grew from, shapes unchanged, on every
//! node:
//! - `POST /messages` `{"message": "...", "w": 3}` → 201 `{"seq": N}`, once
//!   `w` nodes store it (`w` 1 unless given; `"majority"` and `"all"` too);
//!   a node that is not the master hands it to the master itself;
//! - `GET /messages` → `{"messages": ["Msg1", ...]}`, this node's
//!   contiguous prefix of visible messages;
//! - `GET /health` → every node with its status (healthy, suspected,
//!   unhealthy...), the master, the epoch and whether appends are taken.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::api::{accepting_appends, Api};
use super::listing::{self, Format, Range};
use super::problem::{json_answer, Problem};
use crate::wire::HealthReport;

/// The seed's routes.
pub(super) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/messages", get(list).post(append))
        .route("/health", get(health))
}

/// `POST /messages`.
async fn append(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Response {
    match append_json(&api, &headers, body).await {
        Ok(seq) => json_answer(StatusCode::CREATED, json!({ "seq": seq })),
        Err(p) => p.into_response(),
    }
}

/// Reads the JSON body, appends it, and gives its sequence number.
async fn append_json(api: &Api, headers: &HeaderMap, body: Body) -> Result<u64, Problem> {
    api.may_append(headers)?;
    let item = super::append_body::json_item(api, headers, body).await?;
    api.append(item, (crate::entry::DEFAULT_LOG, None)).await
}

/// `GET /messages`: everything visible, streamed a page at a time.
async fn list(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Err(p) = api.access(&headers) {
        return p.into_response();
    }
    let range = Range {
        log: crate::entry::DEFAULT_LOG,
        from: 1,
        to: None,
        max: None,
        committed: false,
        follow: false,
    };
    let body = listing::body(api.shared.clone(), api.budget.clone(), range, Format::Seed);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /health`.
async fn health(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Err(p) = api.access(&headers) {
        return p.into_response();
    }
    match api.health().await {
        Ok((own, master)) => json_answer(StatusCode::OK, seed_health(&own, master.as_ref())),
        Err(p) => p.into_response(),
    }
}

/// The seed's health: the cluster as the master sees it (this node's own
/// view if it is the master, or if the master cannot be asked).
fn seed_health(own: &HealthReport, master: Option<&HealthReport>) -> Value {
    let view = master.unwrap_or(own);
    let is_master = view.role == crate::wire::NodeRole::Master;
    let accepting = accepting_appends(own, master);
    json!({
        "node": own.node,
        "role": own.role.to_string(),
        "epoch": view.epoch.max(own.epoch),
        "master": if is_master { Value::from(view.node.clone()) } else { Value::Null },
        "master_addr": if own.master_addr.is_empty() { Value::Null } else { Value::from(own.master_addr.clone()) },
        "accepting_appends": accepting,
        "nodes": view.nodes.iter().map(|n| json!({
            "id": n.id,
            "addr": n.addr,
            "role": n.role.to_string(),
            "status": n.status.to_string(),
        })).collect::<Vec<_>>(),
    })
}
