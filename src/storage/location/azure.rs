//! `azure` / `velero.io/azure`: Azure Blob Storage, configured as Velero's Azure plugin.
//!
//! Config keys follow Velero (`pkg/util/azure/storage.go`): `storageAccount`,
//! `storageAccountKeyEnvVar`, `storageAccountURI` (custom endpoint, e.g. Azurite),
//! `useAAD`, `activeDirectoryAuthorityURI`; the credentials file is `KEY=VALUE` lines.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::{ClientOptions, ObjectStore};

use super::credentials::parse_env;
use super::{connector, parse_http_url, BslSpec, ClientSettings, LocationError, Provider};

/// Credentials key Velero reads the shared key from when `storageAccountKeyEnvVar` is unset.
const ACCESS_KEY: &str = "AZURE_STORAGE_ACCOUNT_ACCESS_KEY";

/// How the client authenticates.
enum Auth {
    SharedKey(String),
    ServicePrincipal {
        tenant: String,
        client: String,
        secret: String,
    },
}

pub(super) fn build(
    spec: &BslSpec,
    container: &str,
    credentials: Option<&[u8]>,
    options: ClientOptions,
    settings: &ClientSettings,
) -> Result<Arc<dyn ObjectStore>, LocationError> {
    let account = spec
        .config("storageAccount")
        .ok_or(LocationError::MissingConfig {
            key: "storageAccount",
            provider: Provider::Azure,
        })?;
    let creds = credentials.ok_or(LocationError::MissingCredentials(Provider::Azure))?;
    let env = parse_env(creds).map_err(|source| LocationError::Credentials {
        provider: Provider::Azure,
        source,
    })?;
    let (endpoint, allow_http) = endpoint(spec, account, &env)?;

    let mut builder = MicrosoftAzureBuilder::new()
        .with_account(account)
        .with_container_name(container)
        .with_endpoint(endpoint)
        .with_retry(settings.retry.clone())
        // Client options replace the builder's own, so allow_http must be set on them.
        .with_client_options(options.with_allow_http(allow_http));
    builder = match auth(spec, &env)? {
        Auth::SharedKey(key) => builder.with_access_key(key),
        Auth::ServicePrincipal {
            tenant,
            client,
            secret,
        } => builder.with_client_secret_authorization(client, secret, tenant),
    };
    if let Some(authority) = spec.config("activeDirectoryAuthorityURI") {
        builder = builder.with_authority_host(authority);
    }
    if let Some(c) = connector(settings) {
        builder = builder.with_http_connector(c);
    }
    let store = builder.build().map_err(|source| LocationError::Build {
        provider: Provider::Azure,
        bucket: container.into(),
        source,
    })?;
    Ok(Arc::new(store))
}

/// The blob service URL: `storageAccountURI`, else derived from `AZURE_CLOUD_NAME`.
fn endpoint(
    spec: &BslSpec,
    account: &str,
    env: &BTreeMap<String, String>,
) -> Result<(String, bool), LocationError> {
    if let Some(uri) = spec.config("storageAccountURI") {
        let (url, http) = parse_http_url("spec.config.storageAccountURI", uri)?;
        return Ok((url.as_str().trim_end_matches('/').to_string(), http));
    }
    let cloud = env
        .get("AZURE_CLOUD_NAME")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty());
    let suffix = match cloud.map(str::to_ascii_uppercase).as_deref() {
        None | Some("AZUREPUBLICCLOUD") => "blob.core.windows.net",
        Some("AZUREUSGOVERNMENTCLOUD") => "blob.core.usgovcloudapi.net",
        Some("AZURECHINACLOUD") => "blob.core.chinacloudapi.cn",
        Some("AZUREGERMANCLOUD") => "blob.core.cloudapi.de",
        Some(_) => {
            return Err(LocationError::UnsupportedCredentials {
                provider: Provider::Azure,
                reason: format!(
                "AZURE_CLOUD_NAME {:?} is unknown; use AzurePublicCloud, AzureUSGovernmentCloud, \
                     AzureChinaCloud, or set spec.config.storageAccountURI",
                cloud.unwrap_or_default()
            ),
            })
        }
    };
    Ok((format!("https://{account}.{suffix}"), false))
}

fn auth(spec: &BslSpec, env: &BTreeMap<String, String>) -> Result<Auth, LocationError> {
    let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let key_name = spec.config("storageAccountKeyEnvVar");
    if let Some(key) = get(key_name.unwrap_or(ACCESS_KEY)) {
        if base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_err()
        {
            return Err(unsupported(format!(
                "{} is not base64; copy the storage account key exactly as Azure shows it",
                key_name.unwrap_or(ACCESS_KEY)
            )));
        }
        return Ok(Auth::SharedKey(key.to_string()));
    }
    if let Some(name) = key_name {
        return Err(unsupported(format!(
            "spec.config.storageAccountKeyEnvVar names {name}, but the credentials file has no {name}"
        )));
    }
    match (
        get("AZURE_TENANT_ID"),
        get("AZURE_CLIENT_ID"),
        get("AZURE_CLIENT_SECRET"),
    ) {
        (Some(tenant), Some(client), Some(secret)) => Ok(Auth::ServicePrincipal {
            tenant: tenant.into(),
            client: client.into(),
            secret: secret.into(),
        }),
        _ => Err(unsupported(format!(
            "found neither {ACCESS_KEY} nor AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET; \
             backup-guard does not exchange keys through the Azure management API: add {ACCESS_KEY} \
             (and set spec.config.storageAccountKeyEnvVar if you use another name)"
        ))),
    }
}

fn unsupported(reason: String) -> LocationError {
    LocationError::UnsupportedCredentials {
        provider: Provider::Azure,
        reason,
    }
}
