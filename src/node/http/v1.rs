//! The versioned API, `/v1/...`:
//! - `POST /v1/messages`: the body is the message (`application/octet-stream`,
//!   or any type but JSON), or JSON `{"message": "..."}` /
//!   `{"message_base64": "..."}` as `list --json` prints them; `w` and
//!   `timeout` as query parameters (or JSON fields), the request key as the
//!   `Idempotency-Key` header (one is made up if none is given, and every
//!   answer that may need a retry names it) → 201 `{"seq": N}`;
//! - `GET /v1/messages?from=&after=&to=&max=&committed=&follow=`: entries as
//!   a JSON object, or one per line (`Accept: application/x-ndjson`), or as
//!   server-sent events (`Accept: text/event-stream`, resumed after
//!   `Last-Event-ID`); `follow=true` waits for new ones;
//! - `GET /v1/messages/{seq}`: one entry (the raw bytes for `Accept:
//!   application/octet-stream`);
//! - `GET /v1/health`: the node's report as `replog health --json` prints
//!   it, with the master's when this node follows one;
//! - `GET /v1/members`: the members as the master sees them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::listing::{self, Format, Range};
use super::problem::{json_answer, Problem};
use super::Api;
use crate::json::{entry_json, health_json, LogRanges};
use crate::wire::{AppendItem, WriteConcern};

/// Bytes of JSON around a message, beyond twice its size (base64 costs a
/// third more; `w`, `timeout` and the field names a little).
const JSON_OVERHEAD: usize = 4096;

/// The versioned routes.
pub(super) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/v1/messages", get(list).post(append))
        .route("/v1/messages/{seq}", get(get_one))
        .route("/v1/health", get(health))
        .route("/v1/members", get(members))
}

/// Query parameters of an append.
#[derive(Debug, Default, Deserialize)]
struct AppendParams {
    w: Option<String>,
    timeout: Option<String>,
}

/// `POST /v1/messages`.
async fn append(
    State(api): State<Arc<Api>>,
    params: Result<Query<AppendParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let appended = async {
        api.may_append(&headers)?;
        let Query(params) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
        let mut item = if is_json(&headers) {
            json_item(&api, &headers, body).await?
        } else {
            let max = api.shared.cfg.max_message_bytes;
            let message = api.body(body, max).await?;
            new_item(&headers, message)?
        };
        if let Some(w) = &params.w {
            item.w = w.parse().map_err(Problem::bad_request)?;
        }
        if let Some(t) = &params.timeout {
            item.timeout_ms = Some(timeout_ms(t)?);
        }
        let seq = api.append(item).await?;
        Ok::<_, Problem>(seq)
    };
    match appended.await {
        Ok(seq) => {
            let mut r = json_answer(StatusCode::CREATED, json!({ "seq": seq }));
            if let Ok(location) = format!("/v1/messages/{seq}").parse() {
                r.headers_mut().insert(header::LOCATION, location);
            }
            r
        }
        Err(p) => p.into_response(),
    }
}

/// An append's item from a JSON body: `message` (text) or `message_base64`,
/// `w` and `timeout` if given. The seed's `POST /messages` reads the same.
pub(super) async fn json_item(
    api: &Api,
    headers: &HeaderMap,
    body: Body,
) -> Result<AppendItem, Problem> {
    // Twice the message: room for base64 and ordinary escaping, while a
    // connection still holds at most a few times --max-message-bytes. A
    // text escaped beyond that (control characters) is told to come as
    // raw bytes: its own size is not what is refused.
    let limit = api.shared.cfg.max_message_bytes * 2 + JSON_OVERHEAD;
    let bytes = api.body(body, limit).await.map_err(|p| p.if_too_large(|| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the JSON body is over {limit} bytes, more than a message of --max-message-bytes ({}) needs even as base64; nothing was appended: send a large message as raw bytes (Content-Type: application/octet-stream)", api.shared.cfg.max_message_bytes),
        )
        .with("max_message_bytes", api.shared.cfg.max_message_bytes)
    }))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("the body is not JSON ({e})")))?;
    if !value.is_object() {
        return Err(Problem::bad_request(
            "the body must be a JSON object such as {\"message\": \"...\", \"w\": 2}",
        ));
    }
    let message = match (value.get("message"), value.get("message_base64")) {
        (Some(Value::String(text)), None) => Bytes::from(text.clone()),
        (None, Some(Value::String(b64))) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(Bytes::from)
            .map_err(|e| Problem::bad_request(format!("\"message_base64\" is not base64 ({e})")))?,
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request(
                "give \"message\" or \"message_base64\", not both",
            ))
        }
        (None, None) => {
            return Err(Problem::bad_request(
                "the body has no \"message\": send {\"message\": \"...\"}",
            ))
        }
        _ => {
            return Err(Problem::bad_request(
                "\"message\" must be a string (use \"message_base64\" for bytes)",
            ))
        }
    };
    let max = api.shared.cfg.max_message_bytes;
    if message.len() > max {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the message is {} bytes, over this node's limit of {max} bytes (--max-message-bytes); nothing was appended", message.len()),
        )
        .with("max_message_bytes", max));
    }
    let mut item = new_item(headers, message)?;
    item.w = super::seed::w_of(&value)?;
    match value.get("timeout") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => item.timeout_ms = Some(timeout_ms(t)?),
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "\"timeout\": {other} is not a duration: give one such as \"5s\" or \"500ms\""
            )))
        }
    }
    Ok(item)
}

/// An item of `message`, w=1, keyed by the `Idempotency-Key` header or a
/// key made up here, so that every append can be retried safely.
fn new_item(headers: &HeaderMap, message: Bytes) -> Result<AppendItem, Problem> {
    let key = match headers.get("idempotency-key") {
        Some(k) => k
            .to_str()
            .map_err(|_| Problem::bad_request("the Idempotency-Key header is not text"))?
            .to_string(),
        None => crate::client::new_key(),
    };
    Ok(AppendItem {
        req: 0,
        key: Some(key),
        w: WriteConcern::Nodes(1),
        timeout_ms: None,
        message,
        progress: false,
    })
}

/// A timeout as `--timeout` takes it (`5s`, `500ms`), in milliseconds.
fn timeout_ms(text: &str) -> Result<u64, Problem> {
    humantime::parse_duration(text)
        .map(|d: Duration| d.as_millis().min(u128::from(u64::MAX)) as u64)
        .map_err(|e| {
            Problem::bad_request(format!(
                "timeout '{text}' is not a duration ({e}): give one such as 5s or 500ms"
            ))
        })
}

/// Whether the body says it is JSON.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            let t = t.split(';').next().unwrap_or_default().trim();
            t.eq_ignore_ascii_case("application/json") || t.ends_with("+json")
        })
}

/// Query parameters of a listing.
#[derive(Debug, Default, Deserialize)]
struct ListParams {
    from: Option<u64>,
    after: Option<u64>,
    to: Option<u64>,
    max: Option<u64>,
    committed: Option<bool>,
    follow: Option<bool>,
}

/// `GET /v1/messages`.
async fn list(
    State(api): State<Arc<Api>>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    if let Err(p) = api.access(&headers) {
        return p.into_response();
    }
    let Query(p) = match params {
        Ok(p) => p,
        Err(e) => return Problem::bad_query(e.body_text()).into_response(),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (format, content_type) = if accept.contains("text/event-stream") {
        (Format::Events, "text/event-stream")
    } else if accept.contains("application/x-ndjson") || p.follow == Some(true) {
        (Format::Ndjson, "application/x-ndjson")
    } else {
        (Format::Object, "application/json")
    };
    // Resumed after the last seq the client had: `after`, or an event
    // stream's Last-Event-ID.
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // An event stream reconnects to the URL it opened with: the id it
    // had reached wins over that URL's from or after.
    let from = match (last_event, p.after, p.from) {
        (Some(last), _, _) => last.saturating_add(1),
        (None, Some(_), Some(_)) => {
            return Problem::bad_query("give from or after, not both").into_response()
        }
        (None, Some(after), None) => after.saturating_add(1),
        (None, None, from) => from.unwrap_or(1),
    };
    let range = Range {
        from,
        to: p.to,
        max: p.max,
        committed: p.committed.unwrap_or(false),
        follow: p.follow.unwrap_or(false),
    };
    let body = listing::body(api.shared.clone(), range, format);
    let mut r = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if format == Format::Events {
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-cache"),
        );
    }
    r
}

/// `GET /v1/messages/{seq}`.
async fn get_one(
    State(api): State<Arc<Api>>,
    seq: Result<Path<u64>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
) -> Response {
    if let Err(p) = api.access(&headers) {
        return p.into_response();
    }
    let Ok(Path(seq)) = seq else {
        return Problem::bad_query("the sequence number must be a whole number").into_response();
    };
    let mark = api.shared.visible.clone();
    let read = super::super::requests::read_page(&api.shared, &mark, seq, seq, 1).await;
    let entry = match read {
        Ok((_, entries)) => entries.into_iter().find(|e| e.seq == seq),
        Err(e) => {
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage",
                format!("this node cannot read its log ({e})"),
            )
            .into_response()
        }
    };
    let base = api.shared.log.ends().base.seq;
    match entry {
        Some(e) if !e.is_control() => {
            let raw = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("application/octet-stream"));
            if raw {
                let kind = [(header::CONTENT_TYPE, "application/octet-stream")];
                (kind, e.message).into_response()
            } else {
                json_answer(StatusCode::OK, entry_json(e.seq, &e.message))
            }
        }
        Some(_) => Problem::new(
            StatusCode::NOT_FOUND,
            "not_a_message",
            format!("sequence number {seq} holds an epoch marker, not a message"),
        )
        .into_response(),
        None if seq <= base && seq > 0 => Problem::new(
            StatusCode::NOT_FOUND,
            "deleted",
            format!("sequence number {seq} was deleted by retention; this node's log starts at {}", base + 1),
        )
        .into_response(),
        None => Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no message at sequence number {seq} on this node (yet): it holds up to {}", *api.shared.visible.borrow()),
        )
        .into_response(),
    }
}

/// `GET /v1/health`.
async fn health(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Err(p) = api.access(&headers) {
        return p.into_response();
    }
    let (own, master) = match api.health().await {
        Ok(h) => h,
        Err(p) => return p.into_response(),
    };
    let ends = api.shared.log.ends();
    let ranges: LogRanges = [(own.node.clone(), (ends.base.seq + 1, ends.last.seq))].into();
    let mut value = health_json(&own, &ranges);
    value["accepting_appends"] =
        super::seed::seed_health(&own, master.as_ref())["accepting_appends"].clone();
    if own.role.follows() {
        value["master_report"] = master
            .as_ref()
            .map_or(Value::Null, |m| health_json(m, &LogRanges::new()));
    }
    json_answer(StatusCode::OK, value)
}

/// `GET /v1/members`.
async fn members(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Err(p) = api.access(&headers) {
        return p.into_response();
    }
    let (own, master) = match api.health().await {
        Ok(h) => h,
        Err(p) => return p.into_response(),
    };
    let view = master.as_ref().unwrap_or(&own);
    let members: Vec<Value> = view
        .nodes
        .iter()
        .map(|n| json!({"id": n.id, "addr": n.addr, "role": n.role.to_string()}))
        .collect();
    json_answer(
        StatusCode::OK,
        json!({ "members": members, "as_seen_by": view.node }),
    )
}
