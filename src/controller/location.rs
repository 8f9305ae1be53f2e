//! The storage a backup's files live in: its BackupStorageLocation and that location's credentials.

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::Client;

use super::error::Error;
use super::kinds::Kind;
use crate::storage::{self, BslSpec, ClientSettings, Location, Provider};

/// Resolves BackupStorageLocation `namespace/name` and its credentials Secret, which Velero keeps
/// in its own namespace (`velero_namespace`): `spec.credential`, else `cloud-credentials`/`cloud`.
/// The `file` provider needs no credentials; a missing Secret is left for [`storage::resolve`] to
/// report for the providers that do.
pub async fn resolve(
    client: &Client,
    namespace: &str,
    name: &str,
    velero_namespace: &str,
    settings: &ClientSettings,
) -> Result<Location, Error> {
    let located = |source| Error::Location {
        namespace: namespace.into(),
        name: name.into(),
        source,
    };
    let bsl = Kind::BackupStorageLocation
        .api(client, Some(namespace))
        .get_opt(name)
        .await
        .map_err(|e| {
            Error::kube(
                format!("reading BackupStorageLocation {namespace}/{name}"),
                e,
            )
        })?
        .ok_or_else(|| Error::LocationMissing {
            namespace: namespace.into(),
            name: name.into(),
        })?;
    let object = serde_json::to_value(&bsl)
        .map_err(|e| located(storage::LocationError::Malformed(e.to_string())))?;
    let spec = BslSpec::from_object(&object).map_err(located)?;
    if spec.read_only() {
        return Err(Error::LocationReadOnly {
            namespace: namespace.into(),
            name: name.into(),
        });
    }
    let provider = Provider::parse(&spec.provider).map_err(located)?;
    let credentials = if provider == Provider::File && spec.credential.is_none() {
        None
    } else {
        credentials(client, &spec, velero_namespace).await?
    };
    storage::resolve(&spec, credentials.as_deref(), settings)
        .await
        .map_err(located)
}

async fn credentials(
    client: &Client,
    spec: &BslSpec,
    namespace: &str,
) -> Result<Option<Vec<u8>>, Error> {
    let mut reference = spec.credential_ref();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = |name: String| {
        let secrets = secrets.clone();
        async move {
            secrets.get_opt(&name).await.map_err(|e| {
                Error::kube(
                    format!(
                        "reading credentials Secret {namespace}/{name} (grant the guard `get` on \
                         Secrets in Velero's namespace)"
                    ),
                    e,
                )
            })
        }
    };
    let mut secret = read(reference.name.clone()).await?;
    // No spec.credential: Velero uses the file mounted into its pod, from `cloud-credentials`
    // when `velero install` set it up, from `velero` when its Helm chart did.
    if secret.is_none() && spec.credential.is_none() {
        secret = read(storage::HELM_CREDENTIALS_SECRET.into()).await?;
        if secret.is_some() {
            reference.name = storage::HELM_CREDENTIALS_SECRET.into();
        }
    }
    let Some(secret) = secret else {
        return Ok(None);
    };
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .map(|b| b.0.clone());
    match value {
        Some(bytes) => Ok(Some(bytes)),
        None => Err(Error::SecretKeyMissing {
            namespace: namespace.into(),
            name: reference.name,
            key: reference.key,
        }),
    }
}
