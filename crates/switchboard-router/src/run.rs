//! The async driver around [`Router::route`]: reads the ingress channel,
//! pushes deliveries into the destination queues (waiting on a full queue for
//! QoS >= 1, which back-pressures the ingress channel and so the sources), and
//! on shutdown drains what is already queued, then closes every delivery queue
//! so adapters finish.

use std::sync::Arc;

use switchboard_model::{DropReason, Message};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::router::{Planned, Router};

/// How many messages the driver takes from the channel at once.
const BATCH: usize = 128;

/// Runs the router until `shutdown` fires (or every ingress sender is gone),
/// then routes what is left in the channel and closes the delivery queues.
pub async fn run(
    router: Arc<Router>,
    mut rx: mpsc::Receiver<Message>,
    shutdown: CancellationToken,
) {
    let mut batch: Vec<Message> = Vec::with_capacity(BATCH);
    let mut out: Vec<Planned> = Vec::with_capacity(BATCH);
    // One shutdown future for all turns (a fresh one per turn registers
    // with the token under its lock each time).
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break;
                }
                dispatch(&router, &mut batch, &mut out).await;
            }
            () = &mut cancelled => {
                while let Ok(m) = rx.try_recv() {
                    batch.push(m);
                    if batch.len() == BATCH {
                        dispatch(&router, &mut batch, &mut out).await;
                    }
                }
                dispatch(&router, &mut batch, &mut out).await;
                break;
            }
        }
    }
    router.stop();
    for s in router.slots() {
        s.queue.close();
    }
    tracing::debug!("Router stopped.");
}

async fn dispatch(router: &Router, batch: &mut Vec<Message>, out: &mut Vec<Planned>) {
    // Checked for a swap per message, for one atomic load.
    let mut tables = router.tables();
    for msg in batch.drain(..) {
        router.route_in(tables.current(), &msg, out);
        for (slot, d) in out.drain(..) {
            let Some(q) = router.queue(slot) else {
                d.ack.dropped(DropReason::NoAdapter);
                continue;
            };
            if let Err(d) = q.try_push(d) {
                // QoS >= 1 into a full queue: wait for room (back-pressure).
                q.push(*d).await;
            }
        }
    }
}
