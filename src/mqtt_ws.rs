//! MQTT over WebSocket for the embedded broker: the facade glues the MQTT
//! adapter's broker handle to a WebSocket byte-stream mount (`/mqtt`,
//! subprotocol `mqtt`) on the HTTP listeners, so neither adapter crate knows
//! the other.

use std::net::SocketAddr;
use std::sync::Arc;

use switchboard_http::{ByteStreamMount, Listeners, ServerLimits, StreamHandler};
use switchboard_model::{Adapter, AdapterContext, AdapterError, BoxFuture, Endpoint, Running};
use switchboard_mqtt::MqttAdapter;

/// The MQTT adapter, plus MQTT over WebSocket at `ws` when set.
pub(crate) struct MqttWithWs {
    pub(crate) inner: MqttAdapter,
    pub(crate) ws: Option<SocketAddr>,
    pub(crate) listeners: Listeners,
    pub(crate) max_frame: usize,
}

impl Adapter for MqttWithWs {
    fn kind(&self) -> &str {
        "mqtt"
    }

    fn start(
        self: Box<Self>,
        ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<Running, AdapterError>> {
        Box::pin(async move {
            let handle = self.inner.broker_handle();
            let mut running = Box::new(self.inner).start(ctx.clone()).await?;
            let Some(addr) = self.ws else {
                return Ok(running);
            };
            let handler: StreamHandler = Arc::new(move |stream, peer| {
                let handle = handle.clone();
                Box::pin(async move {
                    if handle.serve(stream, &format!("ws:{peer}")).await.is_err() {
                        tracing::debug!(peer = %peer, "MQTT over WebSocket before the broker started.");
                    }
                })
            });
            let mount = Arc::new(ByteStreamMount::new(
                &["mqtt", "mqttv3.1"],
                self.max_frame,
                handler,
            ));
            let limits = ServerLimits {
                max_connections: 10_240,
                tls: None,
                refused: ctx.metrics.counter(
                    "mqtt_ws_connections_refused_total",
                    "MQTT-over-WebSocket connections refused at the listener's limit.",
                ),
            };
            let attached = self
                .listeners
                .attach(addr, "/mqtt", mount.clone(), limits, ctx.shutdown.clone())
                .await?;
            running.endpoints.push(Endpoint {
                service: "mqtt-ws".into(),
                addr: attached.addr,
            });
            let task = running.task;
            let serve = attached.serve;
            running.task = Box::pin(async move {
                let r = match serve {
                    Some(serve) => tokio::join!(task, serve).0,
                    None => task.await,
                };
                // The broker has said goodbye to each WebSocket client
                // (DISCONNECT); let those streams end before the process does.
                mount.close_wait().await;
                r
            });
            Ok(running)
        })
    }
}
