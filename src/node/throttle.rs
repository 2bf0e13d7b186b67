//! Rate-limited warnings: a peer that misbehaves a thousand times gets one
//! log line per interval, with a count, not a thousand lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shortest time between two lines of one kind.
const INTERVAL: Duration = Duration::from_secs(10);

/// Per kind of warning: when it was last logged and how many were held back
/// since.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// Kind -> (last logged, suppressed since).
    kinds: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl Throttle {
    /// Whether a warning of `kind` may be logged now; if so, how many of
    /// that kind were suppressed since the last one (to log with it).
    /// A std mutex: nothing is awaited while it is held.
    pub(crate) fn allow(&self, kind: &'static str) -> Option<u64> {
        let now = Instant::now();
        let mut kinds = self.kinds.lock().expect("throttle lock");
        match kinds.get_mut(kind) {
            Some((last, suppressed)) if now.duration_since(*last) < INTERVAL => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                let held = *suppressed;
                *last = now;
                *suppressed = 0;
                Some(held)
            }
            None => {
                kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_per_kind_with_the_count_held_back() {
        let t = Throttle::default();
        assert_eq!(t.allow("a"), Some(0));
        assert_eq!(t.allow("a"), None);
        assert_eq!(t.allow("a"), None);
        assert_eq!(t.allow("b"), Some(0), "kinds are independent");
        // Pretend the interval passed.
        t.kinds.lock().unwrap().get_mut("a").unwrap().0 -= INTERVAL;
        assert_eq!(t.allow("a"), Some(2));
        assert_eq!(t.allow("a"), None);
    }
}
