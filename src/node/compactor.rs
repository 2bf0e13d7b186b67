//! The compactor: frees the disk space of deleted logs' messages, and of
//! those a log's own retention trimmed, one old segment at a time, off the
//! node loop (see `storage::compaction`).
//!
//! Which segment, and which messages go, is the storage's answer from the
//! committed mark the core publishes: only a deletion or trim by a
//! committed entry frees anything, so a failover that cuts one finds the
//! messages whole. The copy is made on a blocking thread; the node loop puts
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
                warn!(error = %e, "compacting a segment failed; will try again in {}s", AFTER_FAILURE.as_secs());
                AFTER_FAILURE
            }
        };
    }
}

/// Compacts the oldest segment there is something to free in: whether
/// there was one.
async fn compact_one(shared: &Arc<Shared>) -> anyhow::Result<bool> {
    let reader = shared.clone();
    let made = tokio::task::spawn_blocking(move || {
        // The mark read with the lock held: what it covers is in the log.
        let log = reader.log.read();
        let committed = *reader.committed.borrow();
        let (job, logs) = match log.compaction_job(committed) {
            Ok(found) => found,
            Err(e) => anyhow::bail!("a catalog entry cannot be read ({e}): nothing is compacted"),
        };
        drop(log);
        // Readers skip what committed trims deleted from now on.
        let trims = logs.trims();
        if **reader.floors.read().expect("floors lock") != trims {
            *reader.floors.write().expect("floors lock") = Arc::new(trims);
        }
        let Some(job) = job else { return Ok(None) };
        let dir = job.dir();
        let copy = job.run(&|id, n| logs.deleted_or_trimmed(id, n))?;
        Ok(Some((copy, dir)))
    })
    .await??;
    let Some((copy, dir)) = made else {
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
    tokio::task::spawn_blocking(move || crate::storage::compaction::settle(&dir)).await??;
    if freed > 0 {
        info!(
            bytes = freed,
            "compaction freed the messages of deleted logs, and those trimmed, in a segment"
        );
    }
    Ok(true)
}
