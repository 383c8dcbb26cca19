//! TLS for the HTTP/WebSocket listener (rustls with the ring provider):
//! `tls_cert` (PEM chain) and `tls_key` (PEM private key).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use switchboard_model::units::ConfigIssue;
use tokio_rustls::TlsAcceptor;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No certificate or key found in a file.
    #[error("{0}")]
    Empty(String),
    /// rustls refused the certificate/key pair.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// A TLS acceptor from PEM files.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: cert.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty(format!(
            "no certificate in {}",
            cert.display()
        )));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|source| TlsError::Read {
            path: key.display().to_string(),
            source,
        })?
        .ok_or_else(|| TlsError::Empty(format!("no private key in {}", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Config checks: both files or neither, and they load.
pub(crate) fn validate(cert: Option<&Path>, key: Option<&Path>) -> Vec<ConfigIssue> {
    match (cert, key) {
        (None, None) => Vec::new(),
        (Some(_), None) => vec![ConfigIssue::new("tls_key", "tls_cert needs tls_key")],
        (None, Some(_)) => vec![ConfigIssue::new("tls_cert", "tls_key needs tls_cert")],
        (Some(c), Some(k)) => match acceptor(c, k) {
            Ok(_) => Vec::new(),
            Err(e) => vec![ConfigIssue::new("tls_cert", e.to_string())],
        },
    }
}
