//! Optional HTTPS with rustls, from PEM files named in the settings.

use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ServerSettings;

/// Builds the TLS configuration, or returns `None` when neither path is set.
pub fn server_config(settings: &ServerSettings) -> anyhow::Result<Option<rustls::ServerConfig>> {
    let cert_path = &settings.tls_cert_path;
    let key_path = &settings.tls_key_path;
    match (
        cert_path.as_os_str().is_empty(),
        key_path.as_os_str().is_empty(),
    ) {
        (true, true) => return Ok(None),
        (false, false) => {}
        _ => anyhow::bail!(
            "TLS needs both server.tls_cert_path and server.tls_key_path; only one is set"
        ),
    }

    let certificates = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("failed to read certificates from {}", cert_path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "no certificate in {}",
        cert_path.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_path)
        .with_context(|| format!("failed to read a private key from {}", key_path.display()))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the ring provider supports the default TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .context("the certificate does not match the private key or is invalid")?;
    log::info!("TLS: enabled with the certificate {}", cert_path.display());
    Ok(Some(config))
}
