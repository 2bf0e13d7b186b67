//! A client's requests about consumer groups: a position set or a group
//! deleted, which the core checks and the master writes; the positions
//! this node knows, read from its core and named with its logs.

use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::warn;

use super::requests::to_node;
use super::shared::{Input, Shared};
use crate::auth::Access;
use crate::net::Outbox;
use crate::replication::role::GroupRequest;
use crate::replication::ClientId;
use crate::wire::{AppendError, Frame, GroupChangeRequest, GroupStatus};

/// A position set or a group deleted: handed to the core if this
/// connection may ask for it (a consumer commits with the token it reads
/// with; deleting a group takes one that may append), refused with the
/// reason otherwise. False if the node stops.
pub(super) async fn change_groups(
    shared: &Shared,
    outbox: &Outbox,
    (client, access): (ClientId, Access),
    req: u64,
    change: GroupChangeRequest,
) -> bool {
    let refuse = |error| {
        outbox.offer(Frame::AppendFailed { req, error });
        true
    };
    let request = match change {
        GroupChangeRequest::Set { .. } if !access.read => {
            return refuse(AppendError::Unauthorized(format!(
                "node {} sets a group's position only for a client that may read: give the client or read token with --token-file; nothing was changed",
                shared.cfg.id
            )));
        }
        GroupChangeRequest::Delete { .. } if !access.append => {
            return refuse(AppendError::Unauthorized(format!(
                "node {} deletes groups only for a client that may append: give the client token with --token-file; nothing was changed",
                shared.cfg.id
            )));
        }
        GroupChangeRequest::Set {
            group,
            log,
            number,
            expect,
        } => GroupRequest::Set {
            group,
            log,
            number,
            expect,
        },
        GroupChangeRequest::Delete { group } => GroupRequest::Delete(group),
    };
    to_node(
        shared,
        Input::ChangeGroups {
            client,
            req,
            request,
        },
    )
    .await
}

/// The positions this node knows, of `group` or of every group, by group
/// then log, each with its log's last visible message number; positions
/// in logs deleted since are left out. `None` if the node stops.
pub(super) async fn list_groups(
    shared: &Arc<Shared>,
    group: Option<String>,
) -> Option<Result<Vec<GroupStatus>, AppendError>> {
    let (tx, rx) = oneshot::channel();
    if !to_node(shared, Input::Groups { group, tx }).await {
        return None;
    }
    let Some(positions) = rx.await.ok()? else {
        let why = format!(
            "node {} is reading its groups' positions again after a cut of its log: try again",
            shared.cfg.id
        );
        return Some(Err(AppendError::Storage(why)));
    };
    let logs = shared.logs();
    let upto = *shared.visible.borrow();
    let read = shared
        .read_log(move |l| {
            (positions.into_iter())
                .filter_map(|(group, id, position)| Some((group, id, logs.name_of(id)?, position)))
                .map(|(group, id, log, position)| {
                    Ok(GroupStatus {
                        group,
                        log,
                        position,
                        last: l.number_at(id, upto)?,
                    })
                })
                .collect::<std::io::Result<Vec<_>>>()
        })
        .await;
    Some(read.map_err(|e| {
        warn!(error = %e, "cannot read the log for a list of groups");
        AppendError::Storage(format!("node {} cannot read its log: {e}", shared.cfg.id))
    }))
}
