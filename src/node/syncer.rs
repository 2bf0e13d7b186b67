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

/// Runs until the loop drops its sender. With `report`, tells the loop what
/// became durable (`--fsync always`); without, only syncs (`batch`, where the
/// loop acknowledges after the write and this bounds what a power cut loses).
pub(super) async fn run(
    mut rx: mpsc::UnboundedReceiver<(Seq, Arc<File>)>,
    inputs: mpsc::UnboundedSender<Input>,
    report: bool,
) {
    while let Some((mut upto, file)) = rx.recv().await {
        if !report {
            tokio::time::sleep(BATCH_INTERVAL).await;
        }
        let mut files = vec![file];
        while let Ok((seq, file)) = rx.try_recv() {
            upto = upto.max(seq);
            if !files.iter().any(|f| Arc::ptr_eq(f, &file)) {
                files.push(file);
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
            Ok(Ok(())) if report => Input::Stored(upto),
            Ok(Ok(())) => continue,
            Ok(Err(e)) => Input::StorageFailed(format!("fdatasync failed: {e}")),
            Err(e) => Input::StorageFailed(format!("fdatasync panicked: {e}")),
        };
        if inputs.send(input).is_err() {
            return;
        }
    }
}
