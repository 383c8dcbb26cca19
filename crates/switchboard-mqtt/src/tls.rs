//! rustls configurations (ring provider) from PEM files: the broker's TLS
//! listener and the client's TLS/mTLS connection.

use std::path::Path;
use switchboard_model::tls::provider;
pub use switchboard_model::tls::{TlsError, certs, key, server_config};

/// The client configuration: trust `ca_file` (or the system roots), present
/// `client_cert` + `client_key` when given.
pub fn client_config(
    ca_file: Option<&Path>,
    client_auth: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(ca) => {
            for c in certs(ca)? {
                roots.add(c)?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for c in native.certs {
                let _ = roots.add(c);
            }
        }
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match client_auth {
        Some((cert, k)) => b.with_client_auth_cert(certs(cert)?, key(k)?)?,
        None => b.with_no_client_auth(),
    })
}
