//! Consumer groups over HTTP, `/v1/groups/...`:
//! - `GET /v1/groups`: every group's position in each log it reads, as this
//!   node knows them, with each log's last visible message and the lag;
//! - `GET /v1/groups/{group}`: one group's (404 `no_such_group` if none);
//! - `PUT /v1/groups/{group}/logs/{log}` with `{"position": N}`: the group
//!   has read the log up to N (a consumer's commit, or a reset of it);
//! - `DELETE /v1/groups/{group}`: the group and its positions go.
//!
//! Setting a position and deleting a group are made by the master (a node
//! that is not hands them on, as it does appends) and answered once a
//! majority holds them. Reading as a group is `GET .../messages?group=G`
//! (`v1`): it starts after the group's position on this node.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use serde_json::{json, Value};

use super::api::Api;
use super::problem::{json_answer, Problem};
use super::session::Stopping;
use crate::client::ClientError;
use crate::entry::Seq;
use crate::replication::catalog::check_name;
use crate::replication::role::GroupRequest;
use crate::wire::{AppendError, GroupChangeRequest, GroupStatus};

/// The routes of consumer groups.
pub(super) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/v1/groups", get(list))
        .route("/v1/groups/{group}", get(show).delete(delete))
        .route("/v1/groups/{group}/logs/{log}", put(set))
}

/// `GET /v1/groups`.
async fn list(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    answer(positions(&api, &headers, None).await.map(|groups| {
        let rows: Vec<Value> = groups.iter().map(row).collect();
        json!({ "groups": rows })
    }))
}

/// `GET /v1/groups/{group}`.
async fn show(
    State(api): State<Arc<Api>>,
    Path(group): Path<String>,
    headers: HeaderMap,
) -> Response {
    let shown = async {
        checked(&group)?;
        let groups = positions(&api, &headers, Some(group.clone())).await?;
        if groups.is_empty() {
            return Err(problem(AppendError::NoSuchGroup { group }));
        }
        let logs: Vec<Value> = groups.iter().map(row).collect();
        Ok(json!({ "group": group, "logs": logs }))
    };
    answer(shown.await)
}

/// `PUT /v1/groups/{group}/logs/{log}`, body `{"position": N}`.
async fn set(
    State(api): State<Arc<Api>>,
    Path((group, log)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let set = async {
        // A consumer commits with the token it reads with.
        api.access(&headers)?;
        checked(&group)?;
        check_name(&log).map_err(|e| Problem::bad_query(format!("log name: {e}")))?;
        let body = api.body(body, 1024).await?;
        let bad = || {
            Problem::bad_query(
                "the body must be JSON {\"position\": N}, or {\"position\": N, \"expect\": E}, N and E whole numbers",
            )
        };
        let body: Value = serde_json::from_slice(&body).map_err(|_| bad())?;
        let position = body
            .get("position")
            .and_then(Value::as_u64)
            .ok_or_else(bad)?;
        let expect = match body.get("expect") {
            None => None,
            Some(e) => Some(e.as_u64().ok_or_else(bad)?),
        };
        let change = GroupChangeRequest::Set {
            group: group.clone(),
            log: log.clone(),
            number: position,
            expect,
        };
        let request = GroupRequest::Set {
            group: group.clone(),
            log: log.clone(),
            number: position,
            expect,
        };
        let seq = made(&api, request, change).await?;
        Ok(json!({ "group": group, "log": log, "position": position, "seq": seq }))
    };
    answer(set.await)
}

/// `DELETE /v1/groups/{group}`.
async fn delete(
    State(api): State<Arc<Api>>,
    Path(group): Path<String>,
    headers: HeaderMap,
) -> Response {
    let deleted = async {
        api.may_append(&headers)?;
        checked(&group)?;
        let change = GroupChangeRequest::Delete {
            group: group.clone(),
        };
        let seq = made(&api, GroupRequest::Delete(group.clone()), change).await?;
        Ok(json!({ "group": group, "deleted": true, "seq": seq }))
    };
    answer(deleted.await)
}

/// The group's position in log `log` (by name) as this node knows it: 0
/// for a group with none there. For a listing as a group.
pub(super) async fn position_of(api: &Api, group: &str, log: &str) -> Result<Seq, Problem> {
    checked(group)?;
    let listed = super::super::groups::list_groups(&api.shared, Some(group.to_string())).await;
    let groups = listed.ok_or_else(Problem::stopping)?.map_err(problem)?;
    Ok((groups.iter())
        .find(|g| g.log == log)
        .map_or(0, |g| g.position))
}

/// The positions this node knows, of `group` or of all.
async fn positions(
    api: &Api,
    headers: &HeaderMap,
    group: Option<String>,
) -> Result<Vec<GroupStatus>, Problem> {
    api.access(headers)?;
    let listed = super::super::groups::list_groups(&api.shared, group).await;
    listed.ok_or_else(Problem::stopping)?.map_err(problem)
}

/// Makes `request` on this node if it is the master, else hands `change`
/// on to the master; the group entry's position once a majority holds it.
async fn made(
    api: &Api,
    request: GroupRequest,
    change: GroupChangeRequest,
) -> Result<Seq, Problem> {
    let answer = match api.session.change_groups(request).await {
        Ok(answer) => answer,
        Err(Stopping::NotHanded) => return Err(Problem::stopping()),
        Err(Stopping::Unanswered) => return Err(problem(AppendError::ShuttingDown { seq: None })),
    };
    match answer {
        Err(AppendError::NotMaster { master_addr }) if !master_addr.is_empty() => {
            match api.forward.change_groups(&master_addr, change).await {
                Ok(seq) => Ok(seq),
                Err(ClientError::Append(e)) => Err(problem(e)),
                Err(e @ (ClientError::Unreachable { .. } | ClientError::Refused { .. })) => {
                    Err(Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "master_unreachable",
                        format!("this node cannot reach the master to hand it the change ({e}); nothing was changed: retry shortly"),
                    )
                    .retry_after(1))
                }
                Err(e) => Err(problem_unsettled(&e.to_string())),
            }
        }
        other => other.map_err(problem),
    }
}

/// A group's name a group can have; 400 otherwise.
fn checked(group: &str) -> Result<(), Problem> {
    check_name(group).map_err(|e| Problem::bad_query(format!("group name: {e}")))
}

/// One position as JSON.
fn row(g: &GroupStatus) -> Value {
    let lag = g.last.saturating_sub(g.position);
    json!({"group": g.group, "log": g.log, "position": g.position, "last": g.last, "lag": lag})
}

/// 200 with `value`, or the problem.
fn answer(result: Result<Value, Problem>) -> Response {
    match result {
        Ok(value) => json_answer(StatusCode::OK, value),
        Err(p) => p.into_response(),
    }
}

/// A group's request refused, or not known to be made.
fn problem(error: AppendError) -> Problem {
    match error {
        AppendError::BadRequest(why) => Problem::bad_query(format!("{why}; nothing was changed")),
        AppendError::NoSuchLog { log } => Problem::new(
            StatusCode::NOT_FOUND,
            "no_such_log",
            format!("there is no log named {log}; nothing was changed"),
        ),
        AppendError::NoSuchGroup { group } => Problem::new(
            StatusCode::NOT_FOUND,
            "no_such_group",
            format!("no consumer group named {group} has a position; nothing was changed"),
        ),
        AppendError::Unauthorized(why) => {
            Problem::new(StatusCode::FORBIDDEN, "unauthorized", why)
        }
        AppendError::NotMaster { .. } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_master",
            "no master is known yet (an election may be under way); nothing was changed: retry shortly",
        )
        .retry_after(1),
        AppendError::Refused { reachable, needed } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "read_only",
            format!("only {reachable} of the cluster's nodes are reachable and {needed} are needed for a quorum; nothing was changed: retry once a node is back"),
        )
        .retry_after(1),
        AppendError::Storage(why) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage",
            format!("{why}; nothing was changed"),
        )
        .retry_after(1),
        other => problem_unsettled(&format!("{other:?}")),
    }
}

/// 504: the change may or may not be made (setting a position again is
/// the same as setting it once).
fn problem_unsettled(why: &str) -> Problem {
    Problem::new(
        StatusCode::GATEWAY_TIMEOUT,
        "unknown_outcome",
        format!("the change was handed to the master, but it is not known to be on a majority ({why}); it may or may not be made: send it again"),
    )
    .with("settled", false)
}
