//! TLS for the three listeners: one certificate and key (PEM files) that
//! the OTLP/gRPC, OTLP/HTTP and API listeners present, each listener
//! opting in, so a sidecar can keep plain HTTP on loopback while ingest
//! from other hosts is encrypted.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// A listener that can serve TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listener {
    Grpc,
    Http,
    Api,
}

/// The `tls:` section of the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; TLS is on when this and `key` are set.
    pub cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    pub key: Option<PathBuf>,
    /// The listeners that serve TLS (the others stay plain).
    pub listeners: Vec<Listener>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            listeners: vec![Listener::Grpc, Listener::Http, Listener::Api],
        }
    }
}

/// The certificate loaded for each kind of server.
#[derive(Clone)]
pub struct Loaded {
    /// For tonic: the PEM bytes as they are.
    pub pem: (Vec<u8>, Vec<u8>),
    /// For the HTTP listeners.
    pub rustls: axum_server::tls_rustls::RustlsConfig,
    listeners: Vec<Listener>,
}

impl Loaded {
    pub fn serves(&self, listener: Listener) -> bool {
        self.listeners.contains(&listener)
    }
}

impl TlsConfig {
    /// Reads and checks the certificate and key; `None` when TLS is off.
    /// A bad file stops the start with the reason: serving plain text
    /// instead of the TLS the operator asked for would be worse.
    pub fn load(&self) -> anyhow::Result<Option<Loaded>> {
        let (cert_path, key_path) = match (&self.cert, &self.key) {
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            _ => anyhow::bail!("tls.cert and tls.key must be set together"),
        };
        let cert = std::fs::read(cert_path)
            .with_context(|| format!("reading tls.cert {}", cert_path.display()))?;
        let key = std::fs::read(key_path)
            .with_context(|| format!("reading tls.key {}", key_path.display()))?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
            .collect::<Result<_, _>>()
            .with_context(|| format!("parsing tls.cert {}", cert_path.display()))?;
        anyhow::ensure!(
            !chain.is_empty(),
            "tls.cert {} holds no certificate",
            cert_path.display()
        );
        let private = PrivateKeyDer::from_pem_slice(&key)
            .with_context(|| format!("parsing tls.key {}", key_path.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .context("tls.cert and tls.key do not make a usable certificate")?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Loaded {
            pem: (cert, key),
            rustls: axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server)),
            listeners: self.listeners.clone(),
        }))
    }
}
