//! systemd integration: readiness, watchdog and stopping notifications.
//! Every call is a no-op when not started by systemd (no `NOTIFY_SOCKET`).

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::node::Probe;
use tracing::warn;

/// Tells systemd the node is ready: listener bound, log open.
pub fn ready() {
    notify(&[NotifyState::Ready]);
}

/// Tells systemd the node is stopping.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

fn notify(state: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(state) {
        warn!(error = %e, "cannot notify systemd");
    }
}

/// Watchdog pings at half the period systemd asked for.
#[derive(Debug, Clone, Copy)]
pub struct Watchdog {
    /// Time between pings.
    every: Duration,
}

impl Watchdog {
    /// The watchdog systemd asked for with `WATCHDOG_USEC`, if any.
    pub fn from_env() -> Option<Watchdog> {
        sd_notify::watchdog_enabled()
            .filter(|period| !period.is_zero())
            .map(|period| Watchdog { every: period / 2 })
    }

    /// Pings while the node loop makes progress: if the loop (or the whole
    /// runtime) stalls, pings stop and systemd restarts the daemon.
    pub fn spawn(self, probe: Probe, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.every);
            let mut last = probe.rounds();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let now = probe.rounds();
                if now != last {
                    notify(&[NotifyState::Watchdog]);
                } else {
                    warn!(
                        "the node loop made no progress for {:?}; not pinging the watchdog",
                        self.every
                    );
                }
                last = now;
            }
        });
    }
}
