//! When a master dials a secondary again after its link went down.
//!
//! The link reports why (never reached, refused, or a connection that
//! closed) and waits; the master's core answers with a delay drawn here.
//! Exponential backoff with jitter, with two refinements learnt the hard
//! way:
//! - Until the secondary has ever answered, it is most likely just not
//!   listening yet (a cluster starting): the delay stays at the base, so it
//!   is reached promptly once it listens.
//! - The backoff starts over only after a connection that lasted
//!   `unhealthy_after`: one dropped at once (a secondary that refuses to be
//!   replicated to, a flapping link) keeps backing off instead of being
//!   redialled many times a second.

use std::time::{Duration, Instant};

use rand::Rng;

use super::{backoff, Timing};

/// Why a link to a secondary is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkDown {
    /// The dial or the handshake failed: nothing answered.
    Unreachable,
    /// It answered and refused the hello (or this master refused it).
    Refused,
    /// An open replication connection closed.
    Closed,
}

/// One secondary's redial state, kept by the master's core.
#[derive(Debug, Clone, Default)]
pub struct Redial {
    /// Redials since the backoff last started over.
    attempt: u32,
    /// It has answered at least once (connected or refused).
    reached: bool,
    /// When the open connection opened, if one is.
    opened: Option<Instant>,
}

impl Redial {
    /// A connection to it opened at `now`.
    pub fn opened(&mut self, now: Instant) {
        self.reached = true;
        self.opened = Some(now);
    }

    /// The link went down at `now`: how long to wait before dialling again.
    pub fn next(
        &mut self,
        now: Instant,
        down: LinkDown,
        timing: &Timing,
        rng: &mut impl Rng,
    ) -> Duration {
        match down {
            LinkDown::Unreachable => {}
            LinkDown::Refused => self.reached = true,
            LinkDown::Closed => {
                // Connected, even if this master then refused it (a
                // diverged secondary): reached.
                self.reached = true;
                let opened = self.opened.take();
                if opened.is_some_and(|at| now.duration_since(at) >= timing.unhealthy_after) {
                    self.attempt = 0;
                }
            }
        }
        let cap = if self.reached {
            timing.retry_max
        } else {
            timing.retry_base
        };
        let delay = backoff(timing.retry_base, cap, self.attempt, rng);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    use super::*;

    fn timing() -> Timing {
        Timing {
            retry_base: Duration::from_millis(10),
            retry_max: Duration::from_millis(1000),
            unhealthy_after: Duration::from_millis(500),
            ..Timing::default()
        }
    }

    #[test]
    fn a_secondary_never_reached_is_dialled_again_at_the_base_delay() {
        let (t, mut rng, now) = (timing(), SmallRng::seed_from_u64(1), Instant::now());
        let mut r = Redial::default();
        for _ in 0..20 {
            assert_eq!(
                r.next(now, LinkDown::Unreachable, &t, &mut rng),
                t.retry_base
            );
        }
    }

    #[test]
    fn once_reached_the_delay_grows_to_the_cap_and_starts_over_after_a_lasting_connection() {
        let (t, mut rng, now) = (timing(), SmallRng::seed_from_u64(2), Instant::now());
        let mut r = Redial::default();
        // Refused: it answered, so the backoff grows from here on.
        let delays: Vec<Duration> = (0..12)
            .map(|_| r.next(now, LinkDown::Refused, &t, &mut rng))
            .collect();
        assert!(delays
            .iter()
            .all(|d| *d >= t.retry_base && *d <= t.retry_max));
        assert!(
            delays[8..].iter().any(|d| *d > 10 * t.retry_base),
            "{delays:?}"
        );
        // A connection dropped at once keeps the backoff where it was.
        r.opened(now);
        let short = now + Duration::from_millis(100);
        let kept: Vec<Duration> = (0..8)
            .map(|_| {
                r.opened(now);
                r.next(short, LinkDown::Closed, &t, &mut rng)
            })
            .collect();
        assert!(kept.iter().any(|d| *d > 10 * t.retry_base), "{kept:?}");
        // One that lasted starts it over: the first delay is the base's
        // (attempt 0 draws between base and base).
        r.opened(now);
        let lasted = now + t.unhealthy_after;
        assert_eq!(r.next(lasted, LinkDown::Closed, &t, &mut rng), t.retry_base);
    }
}
