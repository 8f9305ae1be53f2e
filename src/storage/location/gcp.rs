//! `gcp` / `velero.io/gcp`: Google Cloud Storage with a service-account JSON key.
//!
//! The key may carry `gcs_base_url` (and `disable_oauth`) to point at an emulator,
//! as object_store reads them from service-account files.

use std::sync::Arc;

use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::{ClientOptions, ObjectStore};
use serde::Deserialize;

use super::{connector, parse_http_url, ClientSettings, LocationError, Provider};

/// The parts of a credentials JSON file we check before handing it to object_store.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    private_key: String,
    gcs_base_url: Option<String>,
    #[serde(default)]
    disable_oauth: bool,
}

pub(super) fn build(
    bucket: &str,
    credentials: Option<&[u8]>,
    mut options: ClientOptions,
    settings: &ClientSettings,
) -> Result<Arc<dyn ObjectStore>, LocationError> {
    let creds = credentials.ok_or(LocationError::MissingCredentials(Provider::Gcp))?;
    let text = std::str::from_utf8(creds)
        .map_err(|_| unsupported("the credentials are not UTF-8 JSON".into()))?;
    let key: KeyFile = serde_json::from_str(text).map_err(|e| {
        unsupported(format!(
            "not a service-account JSON key (line {}, column {}); put the key file downloaded from \
             Google Cloud into the Secret",
            e.line(),
            e.column()
        ))
    })?;
    check_key(&key)?;
    if let Some(base) = key.gcs_base_url.as_deref() {
        let (_, http) = parse_http_url("gcs_base_url (in the credentials JSON)", base)?;
        options = options.with_allow_http(http);
    }
    let mut builder = GoogleCloudStorageBuilder::new()
        .with_bucket_name(bucket)
        .with_service_account_key(text)
        .with_retry(settings.retry.clone())
        .with_client_options(options);
    if let Some(c) = connector(settings) {
        builder = builder.with_http_connector(c);
    }
    let store = builder.build().map_err(|source| LocationError::Build {
        provider: Provider::Gcp,
        bucket: bucket.into(),
        source,
    })?;
    Ok(Arc::new(store))
}

fn check_key(key: &KeyFile) -> Result<(), LocationError> {
    if let Some(kind) = key.kind.as_deref().filter(|k| *k != "service_account") {
        return Err(unsupported(format!(
            "credentials of type {kind:?} are not supported; use a service-account key (type \"service_account\")"
        )));
    }
    if key.disable_oauth {
        return Ok(());
    }
    for (field, value) in [
        ("client_email", &key.client_email),
        ("private_key", &key.private_key),
    ] {
        if value.trim().is_empty() {
            return Err(unsupported(format!(
                "the service-account key has no {field}; use the complete key file"
            )));
        }
    }
    Ok(())
}

fn unsupported(reason: String) -> LocationError {
    LocationError::UnsupportedCredentials {
        provider: Provider::Gcp,
        reason,
    }
}
