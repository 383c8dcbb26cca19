//! The CoAP adapter of switchboard: a sans-IO exchange core over coap-lite
//! packets ([`Core`]) with a thin tokio UDP loop around it ([`CoapAdapter`]).
//!
//! Every bridge topic is a resource at `coap://HOST/TOPIC`: GET returns the
//! last value (with Content-Format, ETag and Max-Age), GET with Observe
//! registers, PUT/POST publish `coap:TOPIC`, DELETE forgets; block-wise
//! transfers (RFC 7959) and `/.well-known/core` (RFC 6690) are served.
//! Remote devices are mounted under topic prefixes (`[[adapter.coap.mount]]`).
//!
//! The core is driven without sockets: datagrams in, datagrams and events out,
//! time passed in.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use switchboard_coap::{Config, Core, Event, fuzzing::MemStore};
//!
//! let mut core = Core::new(&Config::default(), 1, Instant::now());
//! let store = MemStore::default();
//! let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
//! // CON PUT /t, token 0x01, Content-Format 0 (text), payload "hi".
//! let put = [0x41, 0x03, 0x00, 0x07, 0x01, 0xb1, b't', 0x10, 0xff, b'h', b'i'];
//! core.handle_datagram(peer, &put, &store, Instant::now());
//! let ack: Vec<_> = core.drain_transmits().collect();
//! assert_eq!(ack[0].bytes[..4], [0x61, 0x44, 0x00, 0x07]); // ACK 2.04, same message id
//! assert!(matches!(core.poll_event(), Some(Event::Publish { .. })));
//! ```
//!
//! Configuration (`[adapter.coap]`, every key optional): `listen`
//! (`127.0.0.1:5683`), `max_payload` (1 MiB), `block_size` (1024),
//! `max_observers_per_resource` (64), `max_observers` (1024),
//! `dedup_capacity` (16384), `max_uploads` (64), `max_age` (60 s),
//! `ack_timeout` (2 s), `max_retransmit` (4), and `[[adapter.coap.mount]]`
//! tables with `prefix`, `url`, `observe`. See [`Config`].

mod adapter;
mod client;
mod config;
mod core;
mod dedup;
mod fetch;
pub mod mapping;
mod observe;
mod server;
mod upload;
mod wire;

pub mod fuzzing;

pub use crate::adapter::CoapAdapter;
pub use crate::config::{Config, Mount};
pub use crate::core::{Core, Event, Stats, Store};
pub use crate::server::RESOURCE_TYPE;
pub use crate::wire::Transmit;

#[cfg(test)]
mod tests;
