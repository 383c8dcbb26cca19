//! Upgraded connections (WebSocket) outlive hyper's connection task, so the
//! listener's own wait at shutdown does not cover them. Whoever upgrades
//! spawns them here and, at shutdown, waits (bounded) for them to end, so
//! each peer gets its close (a WebSocket 1001, an MQTT DISCONNECT) before
//! the process exits.

use std::future::Future;
use std::time::Duration;

use tokio_util::task::TaskTracker;

/// How long shutdown waits for upgraded connections to close.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// The upgraded connections of one mount.
#[derive(Clone, Debug, Default)]
pub(crate) struct Upgrades(TaskTracker);

impl Upgrades {
    /// Runs one upgraded connection.
    pub(crate) fn spawn(&self, f: impl Future<Output = ()> + Send + 'static) {
        self.0.spawn(f);
    }

    /// Shutdown: waits at most `CLOSE_WAIT` for every connection to end.
    pub(crate) async fn drain(&self, what: &str) {
        self.0.close();
        if tokio::time::timeout(CLOSE_WAIT, self.0.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                what,
                open = self.0.len(),
                "Upgraded connections still open after the close wait."
            );
        }
    }
}
