//! TLS for the HTTP/WebSocket listener: `tls_cert` (PEM chain) and `tls_key`
//! (PEM private key), loaded by [`switchboard_model::tls`].

use std::path::Path;
use std::sync::Arc;

pub use switchboard_model::tls::TlsError;
pub(crate) use switchboard_model::tls::validate;
use tokio_rustls::TlsAcceptor;

/// A TLS acceptor from PEM files.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let config = switchboard_model::tls::server_config(cert, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
