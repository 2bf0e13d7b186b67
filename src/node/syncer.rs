//! Group commit: `fdatasync` off the node loop.
//!
//! The loop sends `(written up to, file)` after every write. The syncer
//! takes everything queued, syncs each distinct file once, and reports the
//! highest sequence number covered. While one sync runs, further writes
//! queue up and are covered together by the next: throughput grows with load
//! instead of being capped at one entry per sync.

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Input;
use crate::entry::Seq;

/// Shortest time between two syncs under `--fsync batch`.
const BATCH_INTERVAL: Duration = Duration::from_millis(5);

/// One write to make durable.
#[derive(Debug)]
pub(super) struct Job {
    /// Log generation of the write (see `Input::Stored`).
    pub gen: u64,
    /// Last sequence number written.
    pub upto: Seq,
    /// The file it was written to.
    pub file: Arc<File>,
}

/// Runs until the loop drops its sender. With `report`, tells the loop what
/// became durable (`--fsync always`); without, only syncs (`batch`, where the
/// loop acknowledges after the write and this bounds what a power cut loses).
pub(super) async fn run(
    mut rx: mpsc::UnboundedReceiver<Job>,
    inputs: mpsc::UnboundedSender<Input>,
    report: bool,
) {
    while let Some(first) = rx.recv().await {
        if !report {
            tokio::time::sleep(BATCH_INTERVAL).await;
        }
        let (mut gen, mut upto) = (first.gen, first.upto);
        let mut files = vec![first.file];
        while let Ok(job) = rx.try_recv() {
            // Only the newest generation's position is reported; a sync of
            // everything also covers what older generations wrote.
            if job.gen != gen {
                gen = job.gen;
                upto = job.upto;
            } else {
                upto = upto.max(job.upto);
            }
            if !files.iter().any(|f| Arc::ptr_eq(f, &job.file)) {
                files.push(job.file);
            }
        }
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            for f in files {
                f.sync_data()?;
            }
            Ok(())
        })
        .await;
        let input = match result {
            Ok(Ok(())) if report => Input::Stored { gen, upto },
            Ok(Ok(())) => continue,
            Ok(Err(e)) => Input::StorageFailed(format!("fdatasync failed: {e}")),
            Err(e) => Input::StorageFailed(format!("fdatasync panicked: {e}")),
        };
        if inputs.send(input).is_err() {
            return;
        }
    }
}
