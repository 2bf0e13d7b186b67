//! Group commit: `fdatasync` off the node loop.
//!
//! After every write the loop records `(generation, written up to, file)` in
//! a [`SyncQueue`]: one slot, not a queue, since a sync of a file covers
//! every write before it. The syncer takes what is there, syncs each
//! distinct file once, and reports the highest sequence number covered.
//! While one sync runs, further writes merge into the slot and are covered
//! together by the next: throughput grows with load, and what waits for the
//! syncer is bounded whatever the load (the loop never waits on it).

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};

use super::Input;
use crate::entry::Seq;

/// Shortest time between two syncs under `--fsync batch`.
const BATCH_INTERVAL: Duration = Duration::from_millis(5);

/// What is written and not yet synced.
#[derive(Debug)]
struct Job {
    /// Log generation of the newest write (see `Input::Stored`).
    gen: u64,
    /// Last sequence number written in that generation.
    upto: Seq,
    /// The files written to (more than one only across a segment roll).
    files: Vec<Arc<File>>,
}

/// The slot between the node loop and the syncer.
#[derive(Debug, Default)]
pub(super) struct SyncQueue {
    /// A std mutex: held only to merge or take, never across an await.
    job: Mutex<Option<Job>>,
    /// Wakes the syncer.
    notify: Notify,
    /// Set at shutdown: the syncer syncs what is left and stops.
    closed: AtomicBool,
}

impl SyncQueue {
    /// Records a write of everything up to `upto` in generation `gen` to
    /// `file`. Only the newest generation's position is reported; a sync of
    /// everything also covers what older generations wrote.
    pub(super) fn push(&self, gen: u64, upto: Seq, file: Arc<File>) {
        let mut slot = self.job.lock().expect("sync slot");
        match slot.as_mut() {
            None => {
                *slot = Some(Job {
                    gen,
                    upto,
                    files: vec![file],
                })
            }
            Some(job) => {
                if job.gen != gen {
                    job.gen = gen;
                    job.upto = upto;
                } else {
                    job.upto = job.upto.max(upto);
                }
                if !job.files.iter().any(|f| Arc::ptr_eq(f, &file)) {
                    job.files.push(file);
                }
            }
        }
        drop(slot);
        self.notify.notify_one();
    }

    /// Asks the syncer to sync what is left and stop.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// The next job, waiting for one; `None` once closed and empty.
    async fn next(&self) -> Option<Job> {
        loop {
            if let Some(job) = self.job.lock().expect("sync slot").take() {
                return Some(job);
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            self.notify.notified().await;
        }
    }
}

/// Runs until the queue is closed and drained. With `report`, tells the
/// loop what became durable (`--fsync always`); without, only syncs
/// (`batch`, where the loop acknowledges after the write and this bounds
/// what a power cut loses).
pub(super) async fn run(
    queue: Arc<SyncQueue>,
    inputs: mpsc::Sender<Input>,
    report: bool,
    fault: Option<std::path::PathBuf>,
    metrics: Arc<super::metrics::Metrics>,
) {
    loop {
        if !report && !queue.closed.load(Ordering::Acquire) {
            // Let writes gather: one sync per interval at most.
            tokio::time::sleep(BATCH_INTERVAL).await;
        }
        let Some(job) = queue.next().await else {
            return;
        };
        let Job { gen, upto, files } = job;
        let fault = fault.clone();
        let metrics = metrics.clone();
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use crate::storage::disk::{injected_fault, FaultOp};
            if let Some(err) = injected_fault(fault.as_deref(), FaultOp::Sync) {
                return Err(err);
            }
            for f in files {
                let started = std::time::Instant::now();
                f.sync_data()?;
                metrics.fsync(started.elapsed().as_secs_f64());
            }
            Ok(())
        })
        .await;
        let input = match result {
            Ok(Ok(())) if report => Input::Stored { gen, upto },
            Ok(Ok(())) => continue,
            Ok(Err(e)) => Input::SyncFailed {
                reason: format!("fdatasync failed: {e}"),
            },
            Err(e) => Input::StorageFailed(format!("fdatasync panicked: {e}")),
        };
        if inputs.send(input).await.is_err() {
            return;
        }
    }
}
