//! Turn a Velero BackupStorageLocation and its credentials into an [`ObjectStore`] handle.

mod ambient;
mod aws;
mod azure;
mod client;
pub mod credentials;
mod gcp;

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use serde::Deserialize;
use thiserror::Error;

pub use self::ambient::{AmbientCredentials, Identity};
pub use self::client::ClientSettings;
use self::client::{client_options, connector};
pub use self::credentials::CredentialsError;
use super::layout::{normalize_prefix, LayoutError};

/// Default Secret name Velero reads credentials from when `spec.credential` is unset.
pub const DEFAULT_CREDENTIALS_SECRET: &str = "cloud-credentials";
/// Default key in that Secret.
pub const DEFAULT_CREDENTIALS_KEY: &str = "cloud";
/// Where Velero's Helm chart keeps the default credentials (its release `velero`), tried when
/// `cloud-credentials` (what `velero install` writes) does not exist.
pub const HELM_CREDENTIALS_SECRET: &str = "velero";

/// How an `aws` location without any Secret can still be cleaned.
const AWS_AMBIENT_NOTE: &str = "; or, for a location without spec.credential and without \
    those Secrets (`velero install --no-secret`), run the controller with --ambient-credentials \
    (chart value ambientCredentials: true) to use its own AWS identity: IAM Roles for Service \
    Accounts, EKS Pod Identity or the instance metadata service";

/// Why a BackupStorageLocation could not be turned into a storage client.
#[derive(Debug, Error)]
pub enum LocationError {
    /// The object is not a BackupStorageLocation we can read.
    #[error("not a usable BackupStorageLocation: {0}")]
    Malformed(String),
    /// `spec.provider` names no provider we support.
    #[error(
        "spec.provider {0:?} is not supported; use aws (or velero.io/aws, also for S3-compatible \
         stores), gcp, azure, or file"
    )]
    UnknownProvider(String),
    /// A required `spec.config` key is missing or empty.
    #[error("spec.config.{key} is required for provider {provider}; set it on the BackupStorageLocation")]
    MissingConfig {
        /// The config key.
        key: &'static str,
        /// The provider.
        provider: Provider,
    },
    /// A `spec.config` or `spec.objectStorage` value is invalid.
    #[error("{field} = {value:?} is invalid: {reason}")]
    BadConfig {
        /// Field path, e.g. `spec.config.s3ForcePathStyle`.
        field: String,
        /// The value given (never a secret).
        value: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A URL in the config or credentials cannot be used.
    #[error("{field} = {value:?} is not a usable URL: {reason}")]
    BadUrl {
        /// Where the URL came from.
        field: &'static str,
        /// The URL.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The provider needs credentials and none were passed.
    #[error(
        "provider {0} needs credentials: put the credentials file into the Secret named by \
         spec.credential (without it: Secret {DEFAULT_CREDENTIALS_SECRET}, as `velero install` \
         writes it, else {HELM_CREDENTIALS_SECRET}, as Velero's Helm chart does; key \
         {DEFAULT_CREDENTIALS_KEY}){note}",
        note = if *.0 == Provider::Aws { AWS_AMBIENT_NOTE } else { "" }
    )]
    MissingCredentials(Provider),
    /// `--ambient-credentials`, but the environment offers no AWS identity.
    #[error(
        "the location has no credentials Secret and the controller's environment offers no AWS \
         identity: AWS_EC2_METADATA_DISABLED is set and there are no keys, no web identity \
         (IAM Roles for Service Accounts) and no container credentials; give the location a \
         credentials Secret, or the guard's pods one of those identities"
    )]
    NoAmbientIdentity,
    /// The credentials file could not be read.
    #[error("credentials for provider {provider}: {source}")]
    Credentials {
        /// The provider.
        provider: Provider,
        /// What is wrong with the file.
        #[source]
        source: CredentialsError,
    },
    /// The credentials are of a kind we cannot use.
    #[error("credentials for provider {provider}: {reason}")]
    UnsupportedCredentials {
        /// The provider.
        provider: Provider,
        /// What is wrong and what to use instead.
        reason: String,
    },
    /// `spec.objectStorage.prefix` or the bucket is not a plain path.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The object_store client could not be built.
    #[error("cannot build the {provider} storage client for bucket {bucket:?}: {source}")]
    Build {
        /// The provider.
        provider: Provider,
        /// The bucket.
        bucket: String,
        /// The client's error.
        #[source]
        source: object_store::Error,
    },
}

/// The storage provider behind a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Amazon S3 and S3-compatible stores (`aws`, `velero.io/aws`).
    Aws,
    /// Google Cloud Storage (`gcp`, `velero.io/gcp`).
    Gcp,
    /// Azure Blob Storage (`azure`, `velero.io/azure`).
    Azure,
    /// A local directory (`file`; not a Velero provider, for local use and tests).
    File,
}

impl Provider {
    /// Parse `spec.provider`.
    pub fn parse(s: &str) -> Result<Self, LocationError> {
        match s.trim().strip_prefix("velero.io/").unwrap_or(s.trim()) {
            "aws" => Ok(Provider::Aws),
            "gcp" => Ok(Provider::Gcp),
            "azure" => Ok(Provider::Azure),
            "file" if s.trim() == "file" => Ok(Provider::File),
            _ => Err(LocationError::UnknownProvider(s.to_string())),
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Azure => "azure",
            Provider::File => "file",
        })
    }
}

/// The fields of a BackupStorageLocation's `spec` that storage access needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BslSpec {
    /// `spec.provider`
    pub provider: String,
    /// `spec.objectStorage`
    pub object_storage: ObjectStorage,
    /// `spec.config`
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// `spec.credential`
    #[serde(default)]
    pub credential: Option<SecretKeyRef>,
    /// `spec.accessMode`: `ReadWrite` (Velero's default) or `ReadOnly`.
    #[serde(default)]
    pub access_mode: Option<String>,
}

/// `spec.objectStorage`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStorage {
    /// Bucket (or container, or directory under `config.root` for `file`).
    pub bucket: String,
    /// Prefix inside the bucket; may be empty.
    #[serde(default)]
    pub prefix: String,
    /// Base64 of a PEM CA bundle to trust (Go `[]byte`).
    #[serde(default)]
    pub ca_cert: Option<String>,
}

/// `spec.credential`: a key of a Secret in Velero's namespace.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key inside the Secret.
    pub key: String,
}

impl BslSpec {
    /// Read the spec from a BackupStorageLocation object as the API server returns it.
    pub fn from_object(object: &serde_json::Value) -> Result<Self, LocationError> {
        let spec = object
            .get("spec")
            .ok_or_else(|| LocationError::Malformed("the object has no spec".into()))?;
        Self::deserialize(spec).map_err(|e| LocationError::Malformed(format!("spec: {e}")))
    }

    /// The Secret and key holding the credentials (Velero's defaults when `spec.credential` is unset).
    pub fn credential_ref(&self) -> SecretKeyRef {
        self.credential.clone().unwrap_or_else(|| SecretKeyRef {
            name: DEFAULT_CREDENTIALS_SECRET.into(),
            key: DEFAULT_CREDENTIALS_KEY.into(),
        })
    }

    /// Whether the location is `ReadOnly`: Velero neither writes nor deletes there.
    pub fn read_only(&self) -> bool {
        self.access_mode.as_deref().map(str::trim) == Some("ReadOnly")
    }

    fn config(&self, key: &str) -> Option<&str> {
        self.config
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn config_bool(&self, key: &str) -> Result<bool, LocationError> {
        self.config(key)
            .map_or(Ok(false), |v| parse_go_bool(key, v))
    }
}

/// A resolved storage location: where a Velero BSL's objects live and a client to reach them.
#[derive(Clone)]
pub struct Location {
    /// Client for the bucket (keys are relative to the bucket).
    pub store: Arc<dyn ObjectStore>,
    /// Bucket, container or directory name.
    pub bucket: String,
    /// Normalized prefix: no leading or trailing `/`, may be empty.
    pub prefix: String,
    /// The provider.
    pub provider: Provider,
    /// The controller's own identity the store signs with, when the location has no credentials
    /// Secret and `--ambient-credentials` is on; `None`: the Secret's credentials, or none needed.
    pub identity: Option<Identity>,
}

impl std::fmt::Debug for Location {
    // The stores' own Debug output may include credentials; Display names only the bucket.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location")
            .field("store", &self.store.to_string())
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("provider", &self.provider)
            .finish()
    }
}

/// Build a [`Location`] from a BSL spec and the (base64-decoded) credentials file.
pub async fn resolve(
    spec: &BslSpec,
    credentials: Option<&[u8]>,
    settings: &ClientSettings,
) -> Result<Location, LocationError> {
    let provider = Provider::parse(&spec.provider)?;
    let prefix = normalize_prefix(&spec.object_storage.prefix)?;
    // Velero trims slashes around the bucket, then refuses one in the middle.
    let bucket = spec
        .object_storage
        .bucket
        .trim()
        .trim_matches('/')
        .to_string();
    check_bucket(&bucket)?;
    let options = client_options(spec, settings)?;
    let (store, identity): (Arc<dyn ObjectStore>, _) = match provider {
        Provider::Aws => aws::build(spec, &bucket, credentials, options, settings).await?,
        Provider::Gcp => (gcp::build(&bucket, credentials, options, settings)?, None),
        Provider::Azure => (
            azure::build(spec, &bucket, credentials, options, settings)?,
            None,
        ),
        Provider::File => (file_store(spec, &bucket)?, None),
    };
    Ok(Location {
        store,
        bucket,
        prefix,
        provider,
        identity,
    })
}

fn check_bucket(bucket: &str) -> Result<(), LocationError> {
    let bad = bucket.is_empty() || bucket.contains('/') || bucket == "." || bucket == "..";
    if bad {
        return Err(LocationError::BadConfig {
            field: "spec.objectStorage.bucket".into(),
            value: bucket.into(),
            reason: "a bucket is one non-empty name without '/'; put sub-paths into spec.objectStorage.prefix".into(),
        });
    }
    Ok(())
}

fn file_store(spec: &BslSpec, bucket: &str) -> Result<Arc<dyn ObjectStore>, LocationError> {
    let root = spec.config("root").ok_or(LocationError::MissingConfig {
        key: "root",
        provider: Provider::File,
    })?;
    let dir = std::path::Path::new(root).join(bucket);
    if !dir.is_absolute() || !dir.is_dir() {
        return Err(LocationError::BadConfig {
            field: "spec.config.root".into(),
            value: root.into(),
            reason: format!(
                "{} must be an existing directory given by an absolute path; create it or fix root/bucket",
                dir.display()
            ),
        });
    }
    let store = LocalFileSystem::new_with_prefix(&dir)
        .map_err(|source| LocationError::Build {
            provider: Provider::File,
            bucket: bucket.into(),
            source,
        })?
        .with_automatic_cleanup(true);
    Ok(Arc::new(store))
}

/// Go's `strconv.ParseBool`, which Velero's plugins use for boolean config.
fn parse_go_bool(key: &str, value: &str) -> Result<bool, LocationError> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(LocationError::BadConfig {
            field: format!("spec.config.{key}"),
            value: value.into(),
            reason: "expected true or false".into(),
        }),
    }
}

/// Parse a URL and check its scheme; returns it and whether it is plain http.
fn parse_http_url(field: &'static str, value: &str) -> Result<(url::Url, bool), LocationError> {
    let bad = |reason: String| LocationError::BadUrl {
        field,
        value: value.into(),
        reason,
    };
    let url = url::Url::parse(value.trim()).map_err(|e| bad(e.to_string()))?;
    let http = match url.scheme() {
        "http" => true,
        "https" => false,
        other => return Err(bad(format!("scheme {other:?}; use http:// or https://"))),
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("remove the query or fragment".into()));
    }
    Ok((url, http))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
