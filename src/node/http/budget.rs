//! The bytes of encoded answers (listings, entries) the node's HTTP
//! connections hold at once, bounded across all of them. A page of the log
//! may grow several times over as JSON (a NUL byte is six: `\u0000`), so
//! one page per connection is not bound enough: each encoded chunk holds
//! its share of the budget until hyper has written it and dropped it, and a
//! reader waits for room before it encodes the next.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Encoded bytes held at once by every HTTP answer of a node.
pub(crate) const ENCODED_BYTES: usize = 64 << 20;

/// What an entry may cost as JSON, at most: six bytes per message byte
/// (`\u0000`), and its sequence number, field names and separators.
pub(crate) fn json_bound(message_len: usize) -> usize {
    message_len.saturating_mul(6).saturating_add(64)
}

/// The budget.
#[derive(Clone)]
pub(crate) struct Budget(Arc<Semaphore>);

/// Bytes that hold their share of the budget until dropped.
struct Held {
    bytes: Vec<u8>,
    _share: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Budget {
    /// A budget of [`ENCODED_BYTES`].
    pub(crate) fn new() -> Budget {
        Budget(Arc::new(Semaphore::new(ENCODED_BYTES)))
    }

    /// Room for up to `bound` bytes (at most the whole budget), once there
    /// is; `None` if the budget is closed (never, today).
    pub(crate) async fn reserve(&self, bound: usize) -> Option<OwnedSemaphorePermit> {
        let n = bound.clamp(1, ENCODED_BYTES) as u32;
        self.0.clone().acquire_many_owned(n).await.ok()
    }

    /// `encoded` as bytes that hold `share`, given back down to their size.
    pub(crate) fn hold(mut share: OwnedSemaphorePermit, encoded: Vec<u8>) -> Bytes {
        let keep = encoded.len().clamp(1, share.num_permits());
        drop(share.split(share.num_permits() - keep));
        Bytes::from_owner(Held {
            bytes: encoded,
            _share: share,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_chunk_holds_its_size_of_the_budget_until_it_is_dropped() {
        let budget = Budget::new();
        let share = budget.reserve(json_bound(1000)).await.unwrap();
        assert_eq!(budget.0.available_permits(), ENCODED_BYTES - 6064);
        let chunk = Budget::hold(share, vec![b'x'; 100]);
        assert_eq!(budget.0.available_permits(), ENCODED_BYTES - 100);
        drop(chunk);
        assert_eq!(budget.0.available_permits(), ENCODED_BYTES);
    }

    #[tokio::test]
    async fn more_than_the_budget_waits_for_room() {
        let budget = Budget::new();
        let all = budget.reserve(usize::MAX).await.unwrap();
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), budget.reserve(10));
        assert!(waiting.await.is_err(), "no room while the budget is held");
        drop(all);
        assert!(budget.reserve(10).await.is_some());
    }
}
