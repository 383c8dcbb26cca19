//! TLS material from PEM files (rustls with the ring provider), shared by
//! every adapter with a TLS listener or a TLS client: `tls_cert` (PEM chain)
//! and `tls_key` (PEM private key) for listeners, CA and client certificates
//! for clients. Feature `tls`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::units::ConfigIssue;

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
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Every certificate of a PEM file (at least one).
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut read(path)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: path.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty(format!(
            "no certificate in {}",
            path.display()
        )));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut read(path)?.as_slice())
        .map_err(|source| TlsError::Read {
            path: path.display().to_string(),
            source,
        })?
        .ok_or_else(|| TlsError::Empty(format!("no private key in {}", path.display())))
}

/// The crypto provider every switchboard TLS configuration uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration from a PEM certificate chain and key.
pub fn server_config(cert: &Path, key_file: &Path) -> Result<rustls::ServerConfig, TlsError> {
    Ok(rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs(cert)?, key(key_file)?)?)
}

/// Config checks of a listener's `tls_cert` / `tls_key`: both or neither,
/// and they load.
pub fn validate(cert: Option<&Path>, key: Option<&Path>) -> Vec<ConfigIssue> {
    match (cert, key) {
        (None, None) => Vec::new(),
        (Some(_), None) => vec![ConfigIssue::new("tls_key", "tls_cert needs tls_key")],
        (None, Some(_)) => vec![ConfigIssue::new("tls_cert", "tls_key needs tls_cert")],
        (Some(c), Some(k)) => match server_config(c, k) {
            Ok(_) => Vec::new(),
            Err(e) => vec![ConfigIssue::new("tls_cert", e.to_string())],
        },
    }
}
