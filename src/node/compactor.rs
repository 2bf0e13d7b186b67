//! The compactor: frees the disk space of deleted logs' messages, one old
//! segment at a time, off the node loop (see `storage::compaction`).
//!
//! Which segment, and which logs' messages go, is the storage's answer
//! from the committed mark the core publishes: only logs deleted by a
//! committed entry lose theirs, so a failover that cuts a deletion finds
//! the log whole. The copy is made on a blocking thread; the node loop puts
//! it in place.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{info, warn};

use super::shared::{Input, Shared};

/// How often the compactor looks for work when it found none.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How long it waits after a compaction failed (a full disk, say) before
/// it tries again.
const AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Runs until the node shuts down.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut wait = LOOK_EVERY;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = match compact_one(&shared).await {
            Ok(true) => Duration::ZERO,
            Ok(false) => LOOK_EVERY,
            Err(e) => {
                warn!(error = %e, "compacting a segment of deleted logs failed; will try again in {}s", AFTER_FAILURE.as_secs());
                AFTER_FAILURE
            }
        };
    }
}

/// Compacts the oldest segment there is something to free in: whether
/// there was one.
async fn compact_one(shared: &Arc<Shared>) -> anyhow::Result<bool> {
    let committed = *shared.committed.borrow();
    let reader = shared.clone();
    let made = tokio::task::spawn_blocking(move || {
        let job = reader.log.read().compaction_job(committed);
        job.map(|(job, logs)| job.run(&|id| !logs.exists(id)))
            .transpose()
    })
    .await??;
    let Some(copy) = made else {
        return Ok(false);
    };
    let (tx, rx) = oneshot::channel();
    let input = Input::Compacted {
        copy: Box::new(copy),
        tx,
    };
    if shared.control.send(input).await.is_err() {
        return Ok(false);
    }
    let Ok(freed) = rx.await else {
        return Ok(false);
    };
    let freed = freed?;
    if freed > 0 {
        info!(
            bytes = freed,
            "compaction freed the messages of deleted logs in a segment"
        );
    }
    Ok(true)
}
