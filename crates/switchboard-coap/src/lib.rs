//! The CoAP adapter of switchboard: a sans-IO exchange core over coap-lite
//! packets ([`Core`]) with a thin tokio UDP loop around it ([`CoapAdapter`]).
//!
//! Every bridge topic is a resource at `coap://HOST/TOPIC`: GET returns the
//! last value (with Content-Format, ETag and Max-Age), GET with Observe
//! registers, PUT/POST publish `coap:TOPIC`, DELETE forgets; block-wise
//! transfers (RFC 7959) and `/.well-known/core` (RFC 6690) are served.
//! Remote devices are mounted under topic prefixes (`[[adapter.coap.mount]]`).

mod adapter;
mod client;
mod config;
mod core;
mod dedup;
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
