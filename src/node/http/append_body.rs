//! What an append's request says, whatever its route: the message from a
//! JSON body (`message` or `message_base64`, with `w` and `timeout`) or
//! from raw bytes, the request key from `Idempotency-Key` (one is made up
//! if none is given), and the values of `w` and `timeout` as text.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

use super::api::Api;
use super::problem::Problem;
use crate::wire::{AppendItem, WriteConcern};

/// Bytes of JSON around a message, beyond twice its size (base64 costs a
/// third more; `w`, `timeout` and the field names a little).
const JSON_OVERHEAD: usize = 4096;

/// An append's item from a JSON body: `message` (text) or `message_base64`,
/// `w` and `timeout` if given. The seed's `POST /messages` and `/v1` read the same.
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
    // A field given as null counts as absent, as for `w` and `timeout`.
    let field = |name| value.get(name).filter(|v| !v.is_null());
    let message = match (field("message"), field("message_base64")) {
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
        (Some(_), None) => {
            return Err(Problem::bad_request(
                "\"message\" must be a string (use \"message_base64\" for bytes)",
            ))
        }
        (None, Some(_)) => {
            return Err(Problem::bad_request(
                "\"message_base64\" must be a string of base64",
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
    item.w = w_of(&value)?;
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
pub(super) fn new_item(headers: &HeaderMap, message: Bytes) -> Result<AppendItem, Problem> {
    let key = match headers.get("idempotency-key") {
        Some(k) => k
            .to_str()
            .map_err(|_| {
                Problem::bad_request(
                    "the Idempotency-Key header must be printable ASCII (encode other text, as hex for example)",
                )
            })?
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
pub(super) fn timeout_ms(text: &str) -> Result<u64, Problem> {
    humantime::parse_duration(text)
        .map(|d: Duration| d.as_millis().min(u128::from(u64::MAX)) as u64)
        .map_err(|e| {
            Problem::bad_request(format!(
                "timeout '{text}' is not a duration ({e}): give one such as 5s or 500ms"
            ))
        })
}

/// Whether the body says it is JSON.
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            let t = t.split(';').next().unwrap_or_default().trim();
            t.eq_ignore_ascii_case("application/json") || t.ends_with("+json")
        })
}

/// The write concern of a JSON body's `w`, 1 if absent.
fn w_of(body: &Value) -> Result<WriteConcern, Problem> {
    match body.get("w") {
        None | Some(Value::Null) => Ok(WriteConcern::Nodes(1)),
        Some(w) => write_concern(w),
    }
}

/// A write concern as JSON gives it: a number, `"majority"` or `"all"`.
fn write_concern(value: &serde_json::Value) -> Result<WriteConcern, Problem> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(WriteConcern::Nodes)
            .ok_or_else(|| Problem::bad_request(format!("\"w\": {n} is not a number of nodes"))),
        serde_json::Value::String(s) => s.parse().map_err(Problem::bad_request),
        other => Err(Problem::bad_request(format!(
            "\"w\": {other} is not a write concern: give a number of nodes, \"majority\" or \"all\""
        ))),
    }
}
