//! Group commit: `fdatasync` off the node loop, on a thread of its own.
//!
//! After every write the loop records `(generation, written up to, sync
//! point)` in a [`SyncQueue`]: one slot, not a queue, since a sync of a file
//! covers every write before it. The syncer takes what is there, syncs each
//! distinct file once (first finishing the segment roll that started it,
//! if that is still pending: `storage/roll.rs`), and reports the highest
//! sequence number covered. While one sync runs, further writes merge into
//! the slot and are covered together by the next: throughput grows with
//! load, and what waits for the syncer is bounded whatever the load (the
//! loop never waits on it, but for a roll that a second roll, a cut or
//! retention must finish while the syncer is at it).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::shared::Input;
use crate::entry::Seq;
use crate::replication::storage::StorageReport;
use crate::storage::roll::SyncPoint;

/// Shortest time between two syncs under `--fsync batch`.
const BATCH_INTERVAL: Duration = Duration::from_millis(5);

/// How often an idle syncer checks that the node loop still holds its
/// queue.
const ORPHAN_CHECK: Duration = Duration::from_millis(500);

/// What is written and not yet synced.
#[derive(Debug)]
struct Job {
    /// Log generation of the newest write (see `StorageReport::Synced`).
    gen: u64,
    /// Last sequence number written in that generation.
    upto: Seq,
    /// The files written to (more than one only across a segment roll,
    /// whose own syncs the newer file's point carries).
    points: Vec<SyncPoint>,
}

/// The slot's contents.
#[derive(Debug, Default)]
struct Slot {
    job: Option<Job>,
    /// Set at shutdown: the syncer syncs what is left and stops.
    closed: bool,
}

/// The slot between the node loop and the syncer thread.
#[derive(Debug, Default)]
pub(super) struct SyncQueue {
    /// Held only to merge or take, never across a sync.
    slot: Mutex<Slot>,
    /// Wakes the syncer thread.
    ready: Condvar,
}

impl SyncQueue {
    /// Records a write of everything up to `upto` in generation `gen`, to
    /// be made durable by syncing `point`. Only the newest generation's
    /// position is reported; a sync of everything also covers what older
    /// generations wrote.
    pub(super) fn push(&self, gen: u64, upto: Seq, point: SyncPoint) {
        let mut slot = self.slot.lock().expect("sync slot");
        match slot.job.as_mut() {
            None => {
                slot.job = Some(Job {
                    gen,
                    upto,
                    points: vec![point],
                })
            }
            Some(job) => {
                if job.gen != gen {
                    job.gen = gen;
                    job.upto = upto;
                } else {
                    job.upto = job.upto.max(upto);
                }
                if !job.points.iter().any(|p| p.same_file(&point)) {
                    job.points.push(point);
                }
            }
        }
        drop(slot);
        self.ready.notify_one();
    }

    /// Asks the syncer to sync what is left and stop.
    pub(super) fn close(&self) {
        self.slot.lock().expect("sync slot").closed = true;
        self.ready.notify_one();
    }

    fn closed(&self) -> bool {
        self.slot.lock().expect("sync slot").closed
    }

    /// The next job, waiting for one; `None` once closed and empty, or
    /// once nobody else holds the queue (the node loop is gone without
    /// closing it, a panic say: the thread must not keep the runtime from
    /// shutting down).
    fn next(self: &Arc<Self>) -> Option<Job> {
        let mut slot = self.slot.lock().expect("sync slot");
        loop {
            if let Some(job) = slot.job.take() {
                return Some(job);
            }
            if slot.closed || Arc::strong_count(self) == 1 {
                return None;
            }
            slot = (self.ready)
                .wait_timeout(slot, ORPHAN_CHECK)
                .expect("sync slot")
                .0;
        }
    }
}

/// The syncer: a thread of its own (run it with `spawn_blocking`), so that
/// a write reaches `fdatasync` with one wake-up and its result reaches the
/// node loop with one more, instead of hopping through an async task and
/// a blocking task for every sync. Runs until the queue is closed and
/// drained. Tells the loop what became durable; the core decides what that
/// means. With `gather` (`--fsync batch`), it lets writes gather between
/// syncs, which bounds what a power cut loses rather than what an ack waits
/// for.
pub(super) fn run(
    queue: Arc<SyncQueue>,
    inputs: mpsc::Sender<Input>,
    gather: bool,
    fault: Option<std::path::PathBuf>,
    metrics: Arc<super::metrics::Metrics>,
) {
    use crate::storage::files::{injected_fault, FaultOp};
    loop {
        if gather && !queue.closed() {
            // Let writes gather: one sync per interval at most.
            std::thread::sleep(BATCH_INTERVAL);
        }
        let Some(job) = queue.next() else {
            return;
        };
        let Job { gen, upto, points } = job;
        let synced =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> std::io::Result<()> {
                if let Some(err) = injected_fault(fault.as_deref(), FaultOp::Sync) {
                    return Err(err);
                }
                // In write order: a roll's point finishes the roll (the full
                // segment synced, the new one named) before its own sync.
                for point in points {
                    let started = std::time::Instant::now();
                    if point.finish_roll()? {
                        metrics.roll_sync(started.elapsed().as_secs_f64());
                    }
                    let started = std::time::Instant::now();
                    point.sync_file()?;
                    metrics.fsync(started.elapsed().as_secs_f64());
                }
                Ok(())
            }));
        let input = match synced {
            Ok(Ok(())) => StorageReport::Synced { gen, upto },
            Ok(Err(e)) => StorageReport::SyncFailed {
                reason: format!("fdatasync failed: {e}"),
            },
            Err(_) => StorageReport::Failed {
                reason: "fdatasync panicked".into(),
            },
        };
        let input = Input::Storage(input);
        if inputs.blocking_send(input).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_syncer_stops_once_closed_or_once_nobody_else_holds_its_queue() {
        let (tx, _rx) = mpsc::channel(4);
        let metrics = Arc::new(super::super::metrics::Metrics::new(1));
        // Closed: it returns.
        let queue = Arc::new(SyncQueue::default());
        queue.close();
        run(queue, tx.clone(), false, None, metrics.clone());
        // Orphaned (the loop dropped its handle without closing): it
        // returns too, instead of keeping the runtime from shutting down.
        let queue = Arc::new(SyncQueue::default());
        let theirs = queue.clone();
        let thread = std::thread::spawn(move || run(theirs, tx, false, None, metrics));
        drop(queue);
        thread.join().unwrap();
    }

    #[test]
    fn a_sync_reports_the_newest_generations_position() {
        let (tx, mut rx) = mpsc::channel(4);
        let metrics = Arc::new(super::super::metrics::Metrics::new(1));
        let point = SyncPoint::of_file(Arc::new(tempfile::tempfile().unwrap()));
        let queue = Arc::new(SyncQueue::default());
        queue.push(1, 5, point.clone());
        queue.push(2, 3, point);
        queue.close();
        run(queue, tx, false, None, metrics);
        match rx.try_recv() {
            Ok(Input::Storage(StorageReport::Synced { gen, upto })) => {
                assert_eq!((gen, upto), (2, 3))
            }
            other => panic!("{other:?}"),
        }
    }
}
