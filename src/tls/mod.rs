//! Serving certificates: a rustls resolver over an `ArcSwap`, so a renewed certificate is
//! served without a restart, and a poller that watches the *directory* (the kubelet swaps a
//! `..data` symlink when a mounted Secret changes) and validates before swapping.

pub mod certs;

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use thiserror::Error;

/// A certificate pair that cannot be served.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("{0} holds no PEM private key")]
    NoKey(PathBuf),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot build the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A loaded, validated pair, and what it was loaded from.
#[derive(Debug)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// Not-after of the leaf, unix seconds.
    pub not_after: i64,
    fingerprint: (Vec<u8>, Vec<u8>),
}

/// The crypto provider the whole process uses (aws-lc-rs, as kube and object_store do).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads `tls.crt` and `tls.key` from `dir` and checks that they belong together.
pub fn load_dir(dir: &Path) -> Result<Loaded, TlsError> {
    let (crt_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    let (crt_pem, key_pem) = (read(&crt_path)?, read(&key_path)?);
    load_pem(&crt_pem, &key_pem, &crt_path, &key_path)
}

fn load_pem(
    crt_pem: &[u8],
    key_pem: &[u8],
    crt_path: &Path,
    key_path: &Path,
) -> Result<Loaded, TlsError> {
    let invalid = |path: &Path, message: String| TlsError::Invalid {
        path: path.to_owned(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut BufReader::new(crt_pem))
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(crt_path, e.to_string()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| TlsError::NoCertificate(crt_path.to_owned()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut BufReader::new(key_pem))
        .map_err(|e| invalid(key_path, e.to_string()))?
        .ok_or_else(|| TlsError::NoKey(key_path.to_owned()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| invalid(crt_path, format!("not an X.509 certificate: {e}")))?;
    let not_after = parsed.validity().not_after.timestamp();
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| invalid(key_path, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|e| invalid(key_path, format!("key does not match the certificate: {e}")))?;
    Ok(Loaded {
        key: Arc::new(certified),
        not_after,
        fingerprint: (crt_pem.to_vec(), key_pem.to_vec()),
    })
}

/// Serves whatever certificate is current.
#[derive(Debug)]
pub struct Resolver {
    current: ArcSwap<CertifiedKey>,
}

impl Resolver {
    /// Starts with a loaded pair.
    pub fn new(initial: &Loaded) -> Arc<Resolver> {
        Arc::new(Resolver {
            current: ArcSwap::new(initial.key.clone()),
        })
    }

    /// Replaces the served pair; connections already open keep theirs.
    pub fn swap(&self, next: &Loaded) {
        self.current.store(next.key.clone());
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A rustls server configuration (TLS 1.2+, ALPN `http/1.1` only) around the resolver.
///
/// kube-apiserver pins its webhook clients to HTTP/1.1; offering h2 would only open the HTTP/2
/// attack surface (rapid reset, CVE-2023-44487) to anyone who can reach the port.
pub fn server_config(resolver: Arc<Resolver>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Polls `dir` and swaps in a changed pair once it validates; an invalid pair keeps the old one.
pub async fn watch_dir(
    dir: PathBuf,
    resolver: Arc<Resolver>,
    mut last: Loaded,
    every: Duration,
    on_swap: impl Fn(&Loaded),
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let (crt, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        let (Ok(crt_pem), Ok(key_pem)) = (std::fs::read(&crt), std::fs::read(&key)) else {
            continue;
        };
        if (crt_pem.as_slice(), key_pem.as_slice())
            == (last.fingerprint.0.as_slice(), last.fingerprint.1.as_slice())
        {
            continue;
        }
        match load_pem(&crt_pem, &key_pem, &crt, &key) {
            Ok(next) => {
                resolver.swap(&next);
                tracing::info!(dir = %dir.display(), not_after = next.not_after, "serving a new certificate");
                on_swap(&next);
                last = next;
            }
            Err(e) => {
                tracing::warn!(error = %e, "new certificate files are invalid; still serving the previous one")
            }
        }
    }
}
