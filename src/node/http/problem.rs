//! Every HTTP answer that is not a success: one status per outcome, and one
//! JSON object that names the outcome (`error`), says in a sentence what
//! happened and what to do (`message`), and carries the facts a program
//! needs (`seq`, `stored_on`, `settled`, `key`). The statuses follow the
//! CLI's exit codes and docs/guarantees.md:
//!
//! | status | outcome | settled |
//! |---|---|---|
//! | 400 | bad request, nothing appended | yes |
//! | 401 / 403 | token missing / not allowed | yes |
//! | 404 | no such route or entry | — |
//! | 408 | the body did not arrive in time | yes |
//! | 409 | the key names another message | yes |
//! | 413 | over `--max-message-bytes` | yes |
//! | 503 | read-only, no master, disk failed (with `Retry-After`) | yes |
//! | 504 | stored short of `w`, or not known either way | see `settled` |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::client::ClientError;
use crate::wire::AppendError;

/// One failed request, as answered.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    body: Map<String, Value>,
    retry_after: Option<u32>,
}

impl Problem {
    /// A problem named `error` with `message` as its sentence.
    pub(crate) fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Problem {
        let mut body = Map::new();
        body.insert("error".into(), error.into());
        body.insert("message".into(), message.into().into());
        Problem {
            status,
            body,
            retry_after: None,
        }
    }

    /// 400: what was wrong with the request; nothing was done.
    pub(crate) fn bad_request(why: impl std::fmt::Display) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("bad request: {why}; nothing was appended"),
        )
    }

    /// Adds a fact to the body.
    pub(crate) fn with(mut self, name: &str, value: impl Into<Value>) -> Problem {
        self.body.insert(name.into(), value.into());
        self
    }

    /// Asks the client to come back in `secs` seconds.
    pub(crate) fn retry_after(mut self, secs: u32) -> Problem {
        self.retry_after = Some(secs);
        self
    }

    /// `other()` in place of this problem if this is a 413.
    pub(crate) fn if_too_large(self, other: impl FnOnce() -> Problem) -> Problem {
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            other()
        } else {
            self
        }
    }

    /// The status this answers with.
    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// A failed append, as the core (or the master, forwarded) said, with
    /// the key it was sent with.
    pub(crate) fn append(error: AppendError, key: &str) -> Problem {
        let retry = format!("retry with the same message and the header Idempotency-Key: {key}");
        let p = match error {
            AppendError::BadRequest(why) => Problem::bad_request(why),
            AppendError::KeyReused { seq } => Problem::new(
                StatusCode::CONFLICT,
                "key_reused",
                format!("the Idempotency-Key {key} was already used for another message, now at sequence number {seq}; nothing was appended: give each message its own key (a retry must send the same message)"),
            )
            .with("seq", seq),
            AppendError::NoSuchLog { log } => Problem::new(
                StatusCode::NOT_FOUND,
                "no_such_log",
                format!("there is no log named {log}; nothing was appended"),
            ),
            AppendError::LogExists { log } => Problem::new(
                StatusCode::CONFLICT,
                "log_exists",
                format!("a log named {log} exists already"),
            ),
            AppendError::NoSuchGroup { group } => Problem::new(
                StatusCode::NOT_FOUND,
                "no_such_group",
                format!("no consumer group named {group} has a position; nothing was done"),
            ),
            AppendError::Unauthorized(why) => Problem::new(
                StatusCode::FORBIDDEN,
                "unauthorized",
                format!("this token may not append ({why})"),
            ),
            AppendError::Refused { reachable, needed } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "read_only",
                format!("only {reachable} of the cluster's nodes are reachable and {needed} are needed for a quorum, so the master is read-only and nothing was appended; retry once a node is back"),
            )
            .with("reachable", reachable)
            .with("needed", needed)
            .retry_after(1),
            AppendError::NotMaster { .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_master",
                "no master is known yet (an election may be under way); nothing was appended: retry shortly",
            )
            .retry_after(1),
            AppendError::Storage(why) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage",
                format!("the master could not store the message ({why}); nothing was appended. A full disk recovers by itself once there is room (retry then); any other failure needs the disk fixed and the node restarted"),
            )
            .retry_after(5),
            AppendError::TimedOut { seq, stored_on } => short_of_w(seq, stored_on, "timed_out", format!(
                "timed out: the message is stored as sequence number {seq} where no failover can cut it ({stored_on} node(s) had stored it), and will still be replicated to the others; do not append it again"
            )),
            AppendError::Deleted { seq, stored_on } => short_of_w(seq, stored_on, "deleted", format!(
                "stored as sequence number {seq} on {stored_on} node(s), a majority (it survives any failover), but retention deleted it from the master's log before it reached the write concern, which it never will now; do not append it again"
            )),
            AppendError::ShuttingDown { seq: Some(seq) } => short_of_w(seq, 0, "shutting_down", format!(
                "the master shut down or stepped down before the write concern was confirmed; the message is stored as sequence number {seq} where no failover can cut it, and will still be replicated; do not append it again"
            ))
            .with("stored_on", Value::Null),
            AppendError::ShuttingDown { seq: None } => unsettled(None, "shutting_down", format!(
                "the master shut down or stepped down (a failover); the message may or may not have been stored: {retry}"
            )),
            AppendError::Uncommitted { seq, stored_on, timed_out } => unsettled(Some(seq), "uncommitted", format!(
                "{}: the message is in the master's log as sequence number {seq} and {stored_on} node(s) had stored it, but it was not yet known to be on a majority, so a failover may still cut it: {retry}, which waits for this entry if it is kept and appends the message again if it was cut",
                if timed_out { "timed out" } else { "the master shut down or stepped down" }
            ))
            .with("stored_on", stored_on),
        };
        p.with("key", key)
    }

    /// A forwarded append that failed on the way to the master or there.
    pub(crate) fn forwarded(error: ClientError, key: &str) -> Problem {
        match error {
            ClientError::Append(e) => Problem::append(e, key),
            // Nothing was sent.
            ClientError::Unreachable { .. } | ClientError::Refused { .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "master_unreachable",
                format!("this node cannot reach the master to hand it the message ({error}); nothing was appended: retry shortly"),
            )
            .retry_after(1)
            .with("key", key),
            ClientError::Unauthorized { .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "forwarding_refused",
                format!("the master refused this node's client token when it forwarded the message ({error}); nothing was appended: give every node the same --token-file, or send appends to the master"),
            )
            .with("key", key),
            other => unsettled(None, "unknown_outcome", format!(
                "the message was handed to the master, but no answer came back ({other}); it may or may not have been stored: retry with the same message and the header Idempotency-Key: {key}"
            ))
            .with("key", key),
        }
    }

    /// 504: the node stopped after the append was handed to its loop and
    /// before the answer: it may or may not be stored.
    pub(crate) fn unanswered(key: &str) -> Problem {
        unsettled(None, "unknown_outcome", format!(
            "this node stopped before the append was answered; the message may or may not have been stored: retry with the same message and the header Idempotency-Key: {key}, on another node"
        ))
        .with("key", key)
    }

    /// 400 for a request that appends nothing (a read).
    pub(crate) fn bad_query(why: impl std::fmt::Display) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("bad request: {why}"),
        )
    }

    /// 503: the node is stopping.
    pub(crate) fn stopping() -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "this node is stopping; send the request to another node",
        )
        .retry_after(1)
    }
}

/// 504, settled: stored where no failover cuts it, short of `w`.
fn short_of_w(seq: u64, stored_on: u32, error: &str, message: String) -> Problem {
    Problem::new(StatusCode::GATEWAY_TIMEOUT, error, message)
        .with("settled", true)
        .with("seq", seq)
        .with("stored_on", stored_on)
}

/// 504, not settled: it may or may not be (or stay) in the log.
fn unsettled(seq: Option<u64>, error: &str, message: String) -> Problem {
    Problem::new(StatusCode::GATEWAY_TIMEOUT, error, message)
        .with("settled", false)
        .with("seq", seq)
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(Value::Object(self.body))).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"replog\""),
            );
        }
        response
    }
}

/// A JSON answer of `status`.
pub(crate) fn json_answer(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(value)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status, `settled` and `seq` of a failed append's answer.
    fn answer(e: AppendError) -> (u16, Option<bool>, Option<u64>, String) {
        let p = Problem::append(e, "k1");
        assert_eq!(p.body["key"], "k1", "every failed append names its key");
        (
            p.status().as_u16(),
            p.body.get("settled").and_then(Value::as_bool),
            p.body.get("seq").and_then(Value::as_u64),
            p.body["error"].as_str().unwrap_or_default().to_string(),
        )
    }

    #[test]
    fn each_append_outcome_has_the_status_the_cli_exit_code_matches() {
        use AppendError::*;
        let cases = [
            (BadRequest("w".into()), (400, None, None, "bad_request")),
            (KeyReused { seq: 4 }, (409, None, Some(4), "key_reused")),
            (Unauthorized("no".into()), (403, None, None, "unauthorized")),
            (
                Refused {
                    reachable: 1,
                    needed: 2,
                },
                (503, None, None, "read_only"),
            ),
            (
                NotMaster {
                    master_addr: String::new(),
                },
                (503, None, None, "no_master"),
            ),
            (Storage("full".into()), (503, None, None, "storage")),
            (
                TimedOut {
                    seq: 7,
                    stored_on: 2,
                },
                (504, Some(true), Some(7), "timed_out"),
            ),
            (
                Deleted {
                    seq: 7,
                    stored_on: 2,
                },
                (504, Some(true), Some(7), "deleted"),
            ),
            (
                ShuttingDown { seq: Some(7) },
                (504, Some(true), Some(7), "shutting_down"),
            ),
            (
                ShuttingDown { seq: None },
                (504, Some(false), None, "shutting_down"),
            ),
            (
                Uncommitted {
                    seq: 7,
                    stored_on: 1,
                    timed_out: true,
                },
                (504, Some(false), Some(7), "uncommitted"),
            ),
        ];
        for (error, (status, settled, seq, kind)) in cases {
            let what = format!("{error:?}");
            assert_eq!(
                answer(error),
                (status, settled, seq, kind.to_string()),
                "{what}"
            );
        }
    }

    #[test]
    fn definite_refusals_ask_to_come_back_and_unsettled_ones_name_the_key_to_retry() {
        let read_only = Problem::append(
            AppendError::Refused {
                reachable: 1,
                needed: 2,
            },
            "k",
        );
        assert_eq!(read_only.retry_after, Some(1));
        let unsettled = Problem::append(AppendError::ShuttingDown { seq: None }, "k9");
        let message = unsettled.body["message"].as_str().unwrap_or_default();
        assert!(message.contains("Idempotency-Key: k9"), "{message}");
    }

    #[test]
    fn a_forwarded_append_that_never_left_is_definite_and_one_without_answer_is_not() {
        let unreachable = ClientError::Unreachable {
            addr: "m".into(),
            reason: "down".into(),
        };
        let p = Problem::forwarded(unreachable, "k");
        assert_eq!((p.status().as_u16(), p.retry_after), (503, Some(1)));
        let lost = Problem::forwarded(ClientError::Lost { addr: "m".into() }, "k");
        assert_eq!(lost.status().as_u16(), 504);
        assert_eq!(lost.body["settled"], false);
    }

    #[test]
    fn a_401_says_how_to_authenticate() {
        let p = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "no token");
        let r = p.into_response();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"replog\""
        );
    }
}
