//! The JSON shapes the CLI prints and the HTTP API answers with, kept in
//! one place so that `replog list --json` and `GET /v1/messages` agree.

use std::collections::HashMap;

use crate::wire::HealthReport;

/// One entry as `list --json` prints it: `message` when the bytes are UTF-8,
/// `message_base64` (standard alphabet, padded) when they are not.
pub fn entry_json(seq: u64, message: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(message) {
        Ok(text) => serde_json::json!({"seq": seq, "message": text}),
        Err(_) => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(message);
            serde_json::json!({"seq": seq, "message_base64": b64})
        }
    }
}

/// Appends [`entry_json`]'s text for an entry to `out`, the same bytes as
/// `entry_json(seq, message).to_string()`, without building the value (a
/// large message is copied once, escaped, instead of three times).
pub fn write_entry_json(out: &mut Vec<u8>, seq: u64, message: &[u8]) {
    match std::str::from_utf8(message) {
        Ok(text) => {
            out.extend_from_slice(b"{\"message\":");
            // Writing into a Vec cannot fail, nor can a str's encoding.
            let _ = serde_json::to_writer(&mut *out, text);
        }
        Err(_) => {
            use base64::Engine;
            out.extend_from_slice(b"{\"message_base64\":\"");
            let start = out.len();
            let len = base64::encoded_len(message.len(), true).unwrap_or(0);
            out.resize(start + len, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(message, &mut out[start..])
                .unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        }
    }
    out.extend_from_slice(format!(",\"seq\":{seq}}}").as_bytes());
}

/// Each node's first and last sequence number, by id, as each node says
/// of itself (a node not asked, or that did not answer, is left out).
pub type LogRanges = HashMap<String, (u64, u64)>;

/// A log in detail as `replog log list --json` and `GET /v1/logs` print it:
/// `{"name", "first", "last", "bytes", "retention_bytes",
/// "retention_age_secs"}`, the last two `null` for a log without a retention
/// of its own.
pub fn log_json(l: &crate::wire::LogDetail) -> serde_json::Value {
    serde_json::json!({
        "name": l.name,
        "first": l.first,
        "last": l.last,
        "bytes": l.bytes,
        "retention_bytes": l.retention_bytes,
        "retention_age_secs": l.retention_age_secs,
    })
}

/// The health report as the JSON object `health --json` prints and `GET
/// /v1/health` answers (`ranges` may be empty: a node left out has no
/// `first` and `last`).
pub fn health_json(r: &HealthReport, ranges: &LogRanges) -> serde_json::Value {
    serde_json::json!({
        "node": r.node,
        "role": r.role.to_string(),
        "epoch": r.epoch,
        "stored": r.stored,
        "master": r.master_addr,
        "read_only": r.read_only,
        "reachable": r.reachable,
        "needed": r.needed,
        "authenticated": r.authenticated,
        "encrypted": r.encrypted,
        "nodes": r.nodes.iter().map(|n| serde_json::json!({
            "id": n.id,
            "addr": n.addr,
            "role": n.role.to_string(),
            "status": n.status.to_string(),
            "acked": n.acked,
            "lag": n.lag,
            "last_heard_ms": n.last_heard_ms,
            "detail": n.detail,
            "first": ranges.get(&n.id).map(|r| r.0),
            "last": ranges.get(&n.id).map(|r| r.1),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_written_directly_is_the_text_of_its_value() {
        for message in [
            &b"hello"[..],
            b"",
            b"\0\x01quote\"\\",
            &[0xff, 0, 1],
            "héllo".as_bytes(),
        ] {
            let mut out = Vec::new();
            write_entry_json(&mut out, 42, message);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text, entry_json(42, message).to_string(), "{message:?}");
        }
    }
}
