//! The loop that takes the router's deliveries to the local hub.

use std::sync::Arc;

use crate::service::Shared;

/// Takes deliveries from the router to the local hub (SSE streams) until the
/// queue is closed at shutdown.
pub(crate) async fn deliver(shared: Arc<Shared>) {
    while let Some(d) = shared.ctx.deliveries.recv().await {
        // Last values were recorded by the router; SSE clients that lag miss
        // messages (counted), a hub without clients simply has no receivers.
        if shared.events.receiver_count() > 0 {
            let _ = shared.events.send(crate::sse::Event::new(d.message));
        }
        shared.ctx.metrics.inc_sent();
        d.ack.done();
    }
}
