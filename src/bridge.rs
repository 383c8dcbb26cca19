//! [`Bridge`]: adapters plus routes, from a config file or a builder;
//! [`BridgeHandle`]: the running bridge, with `publish`, `subscribe` and
//! graceful `shutdown`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard_model::{
    Adapter, AdapterContext, AddressBook, AddressPattern, Endpoint, Ingress, Message, ModelError,
    Subscription, validate_adapter_name,
};
use switchboard_router::{RouteError, RouteSpec, Router, SlotSpec};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{self, BridgeSettings, ConfigErrors};

/// Errors starting, using or stopping a bridge.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The config file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Routes do not fit the adapters.
    #[error("invalid routes: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Routes(Vec<RouteError>),
    /// Two adapters with one name, or a bad name.
    #[error("adapter `{0}`: {1}")]
    Adapter(String, String),
    /// An adapter failed to start.
    #[error("adapter `{name}` failed to start: {source}")]
    Start {
        /// The adapter.
        name: String,
        /// Why.
        #[source]
        source: switchboard_model::AdapterError,
    },
    /// A bad address or pattern.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The message names an adapter that does not exist.
    #[error("no adapter named `{0}`")]
    NoAdapter(String),
    /// The bridge has stopped.
    #[error("the bridge has stopped")]
    Stopped,
}

/// An adapter with its instance name and kind.
type NamedAdapter = (Arc<str>, String, Box<dyn Adapter>);

/// A bridge that is configured but not yet started.
pub struct Bridge {
    settings: BridgeSettings,
    adapters: Vec<NamedAdapter>,
    routes: Vec<RouteSpec>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("settings", &self.settings)
            .field(
                "adapters",
                &self.adapters.iter().map(|a| &a.0).collect::<Vec<_>>(),
            )
            .field("routes", &self.routes)
            .finish()
    }
}

impl Bridge {
    /// Reads and validates a TOML config file.
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Bridge, BridgeError> {
        let path = path.as_ref();
        let src = std::fs::read_to_string(path).map_err(|source| BridgeError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&src, Some(path))
    }

    /// Validates a TOML config held in a string.
    pub fn from_toml_str(src: &str) -> Result<Bridge, BridgeError> {
        Self::parse(src, None)
    }

    fn parse(src: &str, path: Option<&Path>) -> Result<Bridge, BridgeError> {
        let p = config::parse(src, path)?;
        Ok(Bridge {
            settings: p.settings,
            adapters: p
                .adapters
                .into_iter()
                .map(|a| (a.name, a.kind, a.adapter))
                .collect(),
            routes: p.routes,
        })
    }

    /// `[bridge] worker_threads` from the config: the worker threads the
    /// runtime running this bridge should have (`None`: one per core). The
    /// bridge binary builds its runtime with it.
    pub fn worker_threads(&self) -> Option<usize> {
        self.settings
            .worker_threads
            .map(std::num::NonZeroUsize::get)
    }

    /// A builder for a bridge set up in code.
    pub fn builder() -> BridgeBuilder {
        BridgeBuilder::default()
    }

    /// Adds an adapter of your own (or a built-in one made in code).
    pub fn with_adapter(
        mut self,
        name: &str,
        adapter: impl Adapter,
    ) -> Result<Bridge, BridgeError> {
        validate_adapter_name(name)
            .map_err(|e| BridgeError::Adapter(name.into(), e.to_string()))?;
        if self.adapters.iter().any(|a| &*a.0 == name) {
            return Err(BridgeError::Adapter(name.into(), "defined twice".into()));
        }
        let kind = adapter.kind().to_owned();
        self.adapters
            .push((Arc::from(name), kind, Box::new(adapter)));
        Ok(self)
    }

    /// Adds a route.
    pub fn with_route(mut self, route: RouteSpec) -> Bridge {
        self.routes.push(route);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &BridgeSettings {
        &self.settings
    }

    /// Starts every adapter (binding their sockets) and the router. If an
    /// adapter fails to start, the ones already started are stopped.
    pub async fn start(self) -> Result<BridgeHandle, BridgeError> {
        let s = self.settings;
        let book = Arc::new(AddressBook::new(s.max_topics));
        let slots = self
            .adapters
            .iter()
            .map(|(n, k, _)| SlotSpec {
                name: n.clone(),
                kind: k.clone(),
                queue_capacity: s.queue_capacity,
            })
            .collect();
        let router = Arc::new(
            Router::new(slots, &self.routes, book.clone(), s.max_hops)
                .map_err(BridgeError::Routes)?,
        );
        let (tx, rx) = mpsc::channel(s.channel_capacity.max(1));
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut endpoints = Vec::new();
        // HTTP adapters start first: they own the listeners other adapters
        // (WebSocket, MQTT over WebSocket) may share, with their TLS settings.
        let mut order: Vec<(usize, NamedAdapter)> = self.adapters.into_iter().enumerate().collect();
        order.sort_by_key(|(i, (_, kind, _))| (kind != "http", *i));
        for (i, (name, _kind, adapter)) in order {
            let slot = &router.slots()[i];
            let ctx = AdapterContext {
                name: name.clone(),
                ingress: Ingress::new(name.clone(), tx.clone(), book.clone(), slot.metrics.clone())
                    .with_dispatch(router.clone()),
                deliveries: slot.queue.clone(),
                interest: slot.interest_rx(),
                book: book.clone(),
                shutdown: shutdown.child_token(),
                health: slot.health.clone(),
                metrics: slot.metrics.clone(),
                bridge: router.clone(),
            };
            let running = match adapter.start(ctx).await {
                Ok(r) => r,
                Err(source) => {
                    shutdown.cancel();
                    for q in router.slots() {
                        q.queue.close();
                    }
                    let _ = tokio::time::timeout(s.shutdown_timeout.0, async {
                        while tasks.join_next().await.is_some() {}
                    })
                    .await;
                    return Err(BridgeError::Start {
                        name: name.to_string(),
                        source,
                    });
                }
            };
            for e in &running.endpoints {
                tracing::info!(adapter = %name, service = %e.service, addr = %e.addr, "Listening.");
                endpoints.push((name.to_string(), e.clone()));
            }
            *slot.endpoints.lock().unwrap_or_else(|e| e.into_inner()) = running.endpoints.clone();
            let queue = slot.queue.clone();
            let health = slot.health.clone();
            let task = running.task;
            tasks.spawn(async move {
                let r = task.await;
                // A stopped adapter takes no more deliveries (the router must
                // never wait on its queue).
                queue.close();
                match r {
                    Ok(()) => health.down("stopped"),
                    Err(e) => {
                        tracing::error!(adapter = %name, error = %e, "Adapter failed.");
                        health.down(format!("failed: {e}"));
                    }
                }
            });
        }
        let router_task = tokio::spawn(switchboard_router::run(
            router.clone(),
            rx,
            shutdown.clone(),
        ));
        Ok(BridgeHandle {
            router,
            tx,
            shutdown,
            tasks,
            router_task: Some(router_task),
            endpoints,
            shutdown_timeout: s.shutdown_timeout.0,
        })
    }
}

/// Builds a [`Bridge`] in code.
#[derive(Default)]
pub struct BridgeBuilder {
    settings: BridgeSettings,
    adapters: Vec<(String, Box<dyn Adapter>)>,
    routes: Vec<RouteSpec>,
}

impl std::fmt::Debug for BridgeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeBuilder")
            .field("routes", &self.routes)
            .finish()
    }
}

impl BridgeBuilder {
    /// Adds an adapter instance.
    pub fn adapter(mut self, name: &str, adapter: impl Adapter) -> Self {
        self.adapters.push((name.to_owned(), Box::new(adapter)));
        self
    }

    /// Adds a route from `from` to the `to` templates.
    pub fn route(mut self, from: &str, to: &[&str]) -> Self {
        self.routes.push(RouteSpec::new(from, to.iter().copied()));
        self
    }

    /// Adds a route with overrides.
    pub fn route_spec(mut self, spec: RouteSpec) -> Self {
        self.routes.push(spec);
        self
    }

    /// Sets the bridge settings.
    pub fn settings(mut self, settings: BridgeSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<Bridge, BridgeError> {
        let mut b = Bridge {
            settings: self.settings,
            adapters: Vec::new(),
            routes: self.routes,
        };
        for (name, a) in self.adapters {
            validate_adapter_name(&name)
                .map_err(|e| BridgeError::Adapter(name.clone(), e.to_string()))?;
            if b.adapters.iter().any(|x| *x.0 == *name) {
                return Err(BridgeError::Adapter(name, "defined twice".into()));
            }
            let kind = a.kind().to_owned();
            b.adapters.push((Arc::from(name.as_str()), kind, a));
        }
        let names: Vec<Arc<str>> = b.adapters.iter().map(|a| a.0.clone()).collect();
        switchboard_router::RouteTable::compile(&b.routes, &names).map_err(BridgeError::Routes)?;
        Ok(b)
    }
}

/// A running bridge.
pub struct BridgeHandle {
    router: Arc<Router>,
    tx: mpsc::Sender<Message>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    router_task: Option<tokio::task::JoinHandle<()>>,
    endpoints: Vec<(String, Endpoint)>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for BridgeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeHandle")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl BridgeHandle {
    /// Publishes a message at its address (`Message::json("mqtt:cmd/lamp", ..)`)
    /// as a local client of that adapter would: the adapter delivers it to its
    /// own clients, it becomes the address's last value, and routes apply.
    pub async fn publish(&self, msg: Message) -> Result<(), BridgeError> {
        let slot = self
            .router
            .slot_of(&msg.origin.adapter)
            .ok_or_else(|| BridgeError::NoAdapter(msg.origin.adapter.to_string()))?;
        let local = self.router.inject_local(&msg).ok_or(BridgeError::Stopped)?;
        if let Some(q) = self.router.queue(slot) {
            q.push(local).await;
        }
        self.router.slots()[slot].metrics.inc_received();
        self.tx.send(msg).await.map_err(|_| BridgeError::Stopped)
    }

    /// A stream of every message at an address matching `pattern`
    /// (`ADAPTER:FILTER` or `*:FILTER`): published there or routed there. A
    /// subscriber more than 1024 messages behind misses messages (counted in
    /// `switchboard_subscriber_drops_total`).
    pub fn subscribe(&self, pattern: &str) -> Result<Subscription, BridgeError> {
        let p = AddressPattern::parse(pattern)?;
        Ok(self.router.book().subscribe(p, 1024))
    }

    /// The sockets the adapters bound: (adapter, endpoint).
    pub fn endpoints(&self) -> &[(String, Endpoint)] {
        &self.endpoints
    }

    /// The bound address of `service` (e.g. `http`) of adapter `adapter`.
    pub fn endpoint(&self, adapter: &str, service: &str) -> Option<std::net::SocketAddr> {
        self.endpoints
            .iter()
            .find(|(a, e)| a == adapter && e.service == service)
            .map(|(_, e)| e.addr)
    }

    /// Replaces the routes while running.
    pub fn swap_routes(&self, routes: &[RouteSpec]) -> Result<(), BridgeError> {
        self.router.swap_routes(routes).map_err(BridgeError::Routes)
    }

    /// The router (introspection: routes, counters, the address book).
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// Stops ingress, lets queues drain for up to the configured
    /// `shutdown_timeout`, then stops everything.
    pub async fn shutdown(mut self) -> Result<(), BridgeError> {
        self.stop().await;
        Ok(())
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        if let Some(rt) = self.router_task.take() {
            let _ = tokio::time::timeout_at(deadline, rt).await;
        }
        for s in self.router.slots() {
            s.queue.close();
        }
        let drained = tokio::time::timeout_at(deadline, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("Shutdown timeout reached; stopping adapters that are still draining.");
            self.tasks.abort_all();
        }
    }
}

impl Drop for BridgeHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
