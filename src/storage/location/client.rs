//! HTTP client settings shared by the cloud providers: retries, timeouts, CA bundle, connector.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use object_store::client::{HttpClient, HttpConnector};
use object_store::{Certificate, ClientOptions, RetryConfig};

use super::{AmbientCredentials, BslSpec, LocationError};

/// How storage clients talk HTTP: retries, timeouts and an optional custom connector.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Retries of transient errors.
    pub retry: RetryConfig,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Replaces the default reqwest connector (e.g. to count or trace requests).
    pub connector: Option<Arc<dyn HttpConnector>>,
    /// Credentials of the controller's own environment for a location without a credentials
    /// Secret (`--ambient-credentials`); `None`: such a location is an error.
    pub ambient: Option<AmbientCredentials>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            retry: RetryConfig {
                max_retries: 4,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            },
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            connector: None,
            ambient: None,
        }
    }
}

pub(super) fn client_options(
    spec: &BslSpec,
    settings: &ClientSettings,
) -> Result<ClientOptions, LocationError> {
    let mut options = ClientOptions::new()
        .with_timeout(settings.timeout)
        .with_connect_timeout(settings.connect_timeout);
    if let Some(encoded) = spec.object_storage.ca_cert.as_deref() {
        for cert in ca_bundle(encoded)? {
            options = options.with_root_certificate(cert);
        }
    }
    Ok(options)
}

fn ca_bundle(encoded: &str) -> Result<Vec<Certificate>, LocationError> {
    let bad = |reason: String| LocationError::BadConfig {
        field: "spec.objectStorage.caCert".into(),
        value: "<certificate>".into(),
        reason,
    };
    let pem = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| {
            bad(format!(
                "not base64 ({e}); it must be the base64 of a PEM bundle"
            ))
        })?;
    let certs = Certificate::from_pem_bundle(&pem)
        .map_err(|e| bad(format!("not a PEM certificate bundle: {e}")))?;
    if certs.is_empty() {
        return Err(bad("the PEM bundle holds no certificate".into()));
    }
    Ok(certs)
}

/// Lets a shared connector be handed to builders that take one by value.
#[derive(Debug)]
pub(super) struct SharedConnector(Arc<dyn HttpConnector>);

impl HttpConnector for SharedConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        self.0.connect(options)
    }
}

pub(super) fn connector(settings: &ClientSettings) -> Option<SharedConnector> {
    settings.connector.clone().map(SharedConnector)
}
