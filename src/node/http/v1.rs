//! The versioned API, `/v1/...`:
//! - `POST /v1/messages` (its body read in `append_body`): the body is the message (`application/octet-stream`,
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
//! - `GET /v1/members`: the members as the master sees them;
//! - `GET /v1/logs`: the named logs, with the first and last message each
//!   holds; `/v1/logs/{log}/messages` and `/v1/logs/{log}/messages/{seq}`:
//!   the three requests above on log `{log}` (`/v1/messages` is the log
//!   named `default`'s); a listing with `group=G` starts after consumer
//!   group G's position and reads committed messages only;
//! - `/v1/groups/...`: consumer groups (`groups`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{accepting_appends, Api};
use super::append_body;
use super::budget::{json_bound, Budget};
use super::listing::{self, Format, Range};
use super::problem::{json_answer, Problem};
use crate::entry::{LogId, DEFAULT_LOG};
use crate::json::{health_json, LogRanges};
use crate::replication::catalog::{check_name, DEFAULT_NAME};
use crate::wire::AppendError;

/// The versioned routes.
pub(super) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/v1/messages", get(list).post(append))
        .route("/v1/messages/{seq}", get(get_one))
        .route("/v1/health", get(health))
        .route("/v1/members", get(members))
        .route("/v1/logs", get(logs))
        .route("/v1/logs/{log}/messages", get(list_log).post(append_log))
        .route("/v1/logs/{log}/messages/{seq}", get(get_one_log))
        .merge(super::groups::routes())
}

/// The log a request names: its id and name (the default log's for the
/// routes that name none), or the problem to answer.
fn named(api: &Api, name: Option<String>) -> Result<(LogId, Option<String>), Problem> {
    let Some(name) = name else {
        return Ok((DEFAULT_LOG, None));
    };
    check_name(&name).map_err(|e| Problem::bad_request(format!("log name: {e}")))?;
    match api.shared.log_id(&name) {
        Some(id) => Ok((id, Some(name))),
        None => Err(Problem::append(AppendError::NoSuchLog { log: name }, "")),
    }
}

/// `GET /v1/logs`.
async fn logs(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Err(p) = api.access(&headers) {
        return p.into_response();
    }
    let logs = match super::super::requests::list_logs(&api.shared).await {
        Ok(logs) => logs,
        Err(AppendError::Storage(why)) => {
            return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "storage", why).into_response()
        }
        Err(e) => return Problem::append(e, "").into_response(),
    };
    let logs: Vec<Value> = logs.iter().map(crate::json::log_json).collect();
    json_answer(StatusCode::OK, json!({ "logs": logs }))
}

/// `POST /v1/logs/{log}/messages`.
async fn append_log(
    State(api): State<Arc<Api>>,
    Path(log): Path<String>,
    params: Result<Query<AppendParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    append_to(api, Some(log), params, headers, body).await
}

/// `GET /v1/logs/{log}/messages`.
async fn list_log(
    State(api): State<Arc<Api>>,
    Path(log): Path<String>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    list_of(api, Some(log), params, headers).await
}

/// `GET /v1/logs/{log}/messages/{seq}`.
async fn get_one_log(
    State(api): State<Arc<Api>>,
    path: Result<Path<(String, u64)>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path((log, seq))) = path else {
        return Problem::bad_query("the sequence number must be a whole number").into_response();
    };
    get_one_of(api, Some(log), seq, headers).await
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
    append_to(api, None, params, headers, body).await
}

/// An append to log `log` (the default log for `None`).
async fn append_to(
    api: Arc<Api>,
    log: Option<String>,
    params: Result<Query<AppendParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = match &log {
        Some(name) => format!("/v1/logs/{name}/messages"),
        None => "/v1/messages".to_string(),
    };
    let appended = async {
        api.may_append(&headers)?;
        // A node still catching up may not know yet of a log just created:
        // its core then hands the append on to the master, which decides.
        let log = match named(&api, log.clone()) {
            Err(_) if log.as_deref().is_some_and(|n| check_name(n).is_ok()) => (LogId::MAX, log),
            resolved => resolved?,
        };
        let Query(params) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
        let mut item = if append_body::is_json(&headers) {
            append_body::json_item(&api, &headers, body).await?
        } else {
            let max = api.shared.cfg.max_message_bytes;
            let message = api.body(body, max).await?;
            append_body::new_item(&headers, message)?
        };
        if let Some(w) = &params.w {
            item.w = w.parse().map_err(Problem::bad_request)?;
        }
        if let Some(t) = &params.timeout {
            item.timeout_ms = Some(append_body::timeout_ms(t)?);
        }
        let seq = api.append(item, log).await?;
        Ok::<_, Problem>(seq)
    };
    match appended.await {
        Ok(seq) => {
            let mut r = json_answer(StatusCode::CREATED, json!({ "seq": seq }));
            if let Ok(location) = format!("{path}/{seq}").parse() {
                r.headers_mut().insert(header::LOCATION, location);
            }
            r
        }
        Err(p) => p.into_response(),
    }
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
    group: Option<String>,
}

/// `GET /v1/messages`.
async fn list(
    State(api): State<Arc<Api>>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    list_of(api, None, params, headers).await
}

/// A listing of log `log` (the default log for `None`).
async fn list_of(
    api: Arc<Api>,
    log: Option<String>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    if let Err(p) = api.access(&headers) {
        return p.into_response();
    }
    let (log, name) = match named(&api, log) {
        Ok(named) => named,
        Err(p) => return p.into_response(),
    };
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
    // An event stream resumes after the last id it had: a reconnecting
    // EventSource sends the URL it first opened, and the id wins over that
    // URL's from or after. Other listings go by the URL alone.
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|_| format == Format::Events);
    let after = |seq: u64| {
        seq.checked_add(1).ok_or_else(|| {
            Problem::bad_query(format!("after={seq}: no sequence number follows it"))
        })
    };
    let from = match (last_event, p.after, p.from, &p.group) {
        (Some(last), _, _, _) => after(last),
        (None, Some(_), Some(_), _) => Err(Problem::bad_query("give from or after, not both")),
        (None, None, None, Some(group)) => {
            // As the group: after its position, as this node knows it.
            let log_name = name.as_deref().unwrap_or(DEFAULT_NAME);
            match super::groups::position_of(&api, group, log_name).await {
                Ok(position) => after(position),
                Err(p) => Err(p),
            }
        }
        (None, _, _, Some(_)) => Err(Problem::bad_query(
            "give group, or from or after, not both: a group starts after its position",
        )),
        (None, Some(seq), None, None) => after(seq),
        (None, None, from, None) => Ok(from.unwrap_or(1)),
    };
    let from = match from {
        Ok(from) => from,
        Err(p) => return p.into_response(),
    };
    let range = Range {
        log,
        from,
        to: p.to,
        max: p.max,
        // A group reads what no failover cuts.
        committed: p.committed.unwrap_or(false) || p.group.is_some(),
        follow: p.follow.unwrap_or(false),
    };
    let body = listing::body(api.shared.clone(), api.budget.clone(), range, format);
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
    let Ok(Path(seq)) = seq else {
        return Problem::bad_query("the sequence number must be a whole number").into_response();
    };
    get_one_of(api, None, seq, headers).await
}

/// Message `seq` of log `log` (the default log for `None`).
async fn get_one_of(api: Arc<Api>, log: Option<String>, seq: u64, headers: HeaderMap) -> Response {
    if let Err(p) = api.access(&headers) {
        return p.into_response();
    }
    let log = match named(&api, log) {
        Ok((id, _)) => id,
        Err(p) => return p.into_response(),
    };
    let mark = api.shared.visible.clone();
    let read = super::super::requests::read_page(&api.shared, log, &mark, seq, 1).await;
    let (entry, visible) = match read {
        Ok((visible, entries)) => (entries.into_iter().find(|e| e.number == seq), visible),
        Err(e) => {
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage",
                format!("this node cannot read its log ({e})"),
            )
            .into_response()
        }
    };
    let first = (api.shared.read_log(move |l| Ok(l.first_number(log))).await).unwrap_or_default();
    match entry {
        Some(e) => {
            let raw = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("application/octet-stream"));
            if raw {
                let kind = [(header::CONTENT_TYPE, "application/octet-stream")];
                (kind, e.message).into_response()
            } else {
                entry_answer(&api, e.number, e.message).await
            }
        }
        None if seq < first && seq > 0 => Problem::new(
            StatusCode::NOT_FOUND,
            "deleted",
            format!("sequence number {seq} was deleted by retention; this node's log starts at {first}"),
        )
        .into_response(),
        None => Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no message at sequence number {seq} on this node (yet): it holds up to {visible}"),
        )
        .into_response(),
    }
}

/// One entry as JSON, encoded off the runtime's thread under the budget
/// (a large message may be megabytes of JSON).
async fn entry_answer(api: &Api, seq: u64, message: bytes::Bytes) -> Response {
    let Some(share) = api.budget.reserve(json_bound(message.len())).await else {
        return Problem::stopping().into_response();
    };
    let encoding = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        crate::json::write_entry_json(&mut out, seq, &message);
        out
    });
    match encoding.await {
        Ok(out) => {
            let kind = [(header::CONTENT_TYPE, "application/json")];
            (kind, Budget::hold(share, out)).into_response()
        }
        Err(_) => Problem::stopping().into_response(),
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
    value["accepting_appends"] = accepting_appends(&own, master.as_ref()).into();
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
