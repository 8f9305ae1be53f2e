//! Test backends: a BSL spec, credentials and two resolved locations per real server.

#![allow(dead_code)]

use std::time::Duration;

use backup_guard::storage::{resolve, BslSpec, ClientSettings, Location};
use object_store::RetryConfig;
use serde_json::json;

use crate::storage_http::{azurite_create_container, moto_create_bucket, Counter};
use crate::storage_scenario::{seed, seed_dir, Objects, PREFIX};
use crate::storage_servers::*;

pub const BUCKET: &str = "velero";

/// A resolved BSL twice: once counting requests (for cleanup), once plain (to seed and verify).
pub struct Backend {
    /// Server name, for messages.
    pub name: &'static str,
    /// Requests made through `loc`.
    pub counter: Counter,
    /// Location whose requests are counted.
    pub loc: Location,
    /// Location for seeding and checking.
    pub plain: Location,
    /// The BSL spec both were resolved from.
    pub spec: BslSpec,
    /// The credentials file.
    pub creds: Option<Vec<u8>>,
    /// The running server, if any.
    pub server: Option<Server>,
    /// Scratch directory (local root or fake-gcs seed).
    pub dir: Option<tempfile::TempDir>,
}

pub fn bsl(spec: serde_json::Value) -> BslSpec {
    let object = json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": "velero"}, "spec": spec});
    BslSpec::from_object(&object).expect("test BSL parses")
}

pub fn settings(counter: Option<&Counter>) -> ClientSettings {
    ClientSettings {
        retry: RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(5),
            ..RetryConfig::default()
        },
        timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
        connector: counter.map(|c| std::sync::Arc::new(c.clone()) as _),
        ambient: None,
    }
}

/// `settings` with one retry and short timeouts, for servers that are not there.
pub fn give_up_quickly(settings: ClientSettings) -> ClientSettings {
    ClientSettings {
        retry: RetryConfig {
            max_retries: 1,
            retry_timeout: Duration::from_secs(2),
            ..RetryConfig::default()
        },
        timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        ..settings
    }
}

impl Backend {
    /// Resolve `spec` twice (counting and plain) around a running server or directory.
    pub async fn new(
        name: &'static str,
        spec: BslSpec,
        creds: Option<Vec<u8>>,
        server: Option<Server>,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        let counter = Counter::default();
        let loc = resolve(&spec, creds.as_deref(), &settings(Some(&counter)))
            .await
            .expect("resolve counting location");
        let plain = resolve(&spec, creds.as_deref(), &settings(None))
            .await
            .expect("resolve plain location");
        Backend {
            name,
            counter,
            loc,
            plain,
            spec,
            creds,
            server,
            dir,
        }
    }

    /// `http://127.0.0.1:<port>` of the server.
    pub fn url(&self) -> String {
        self.server.as_ref().expect("backend has a server").url()
    }
}

pub fn aws_spec(url: &str) -> BslSpec {
    bsl(
        json!({"provider": "aws", "objectStorage": {"bucket": BUCKET, "prefix": PREFIX},
        "config": {"region": "us-east-1", "s3Url": url, "s3ForcePathStyle": "true"}}),
    )
}

pub fn aws_creds(key: &str, secret: &str) -> Vec<u8> {
    format!("[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n").into_bytes()
}

pub fn azure_spec(url: &str) -> BslSpec {
    bsl(
        json!({"provider": "azure", "objectStorage": {"bucket": BUCKET, "prefix": format!("{PREFIX}/")},
        "config": {"storageAccount": AZURITE_ACCOUNT, "resourceGroup": "rg",
                   "storageAccountURI": format!("{url}/{AZURITE_ACCOUNT}")}}),
    )
}

pub fn azure_creds(key: &str) -> Vec<u8> {
    format!("AZURE_STORAGE_ACCOUNT_ACCESS_KEY={key}\nAZURE_CLOUD_NAME=AzurePublicCloud\n")
        .into_bytes()
}

pub fn gcs_spec() -> BslSpec {
    bsl(json!({"provider": "velero.io/gcp", "objectStorage": {"bucket": BUCKET, "prefix": PREFIX}}))
}

pub fn gcs_creds(url: &str) -> Vec<u8> {
    json!({"gcs_base_url": url, "disable_oauth": true, "client_email": "", "private_key": "",
        "private_key_id": ""})
    .to_string()
    .into_bytes()
}

pub async fn s3s_fs_backend(objects: &Objects) -> Backend {
    let server = s3s_fs(BUCKET);
    let spec = aws_spec(&server.url());
    let creds = aws_creds(S3_KEY, S3_SECRET);
    let b = Backend::new("s3s-fs", spec, Some(creds), Some(server), None).await;
    seed(b.plain.store.as_ref(), objects).await;
    b
}

pub async fn moto_backend(objects: &Objects) -> Backend {
    let server = moto();
    moto_create_bucket(server.port, BUCKET).await;
    let spec = aws_spec(&server.url());
    let b = Backend::new(
        "moto",
        spec,
        Some(aws_creds("any", "any")),
        Some(server),
        None,
    )
    .await;
    seed(b.plain.store.as_ref(), objects).await;
    b
}

pub async fn azurite_backend(objects: &Objects) -> Backend {
    let server = azurite();
    azurite_create_container(server.port, AZURITE_ACCOUNT, AZURITE_KEY, BUCKET).await;
    let spec = azure_spec(&server.url());
    let creds = azure_creds(AZURITE_KEY);
    let b = Backend::new("azurite", spec, Some(creds), Some(server), None).await;
    seed(b.plain.store.as_ref(), objects).await;
    b
}

pub async fn fake_gcs_backend(objects: &Objects) -> Backend {
    // object_store's GCS puts do not work against fake-gcs-server; it loads the seed itself.
    let seed_root = tempfile::tempdir().expect("tempdir");
    seed_dir(seed_root.path(), BUCKET, objects);
    let server = fake_gcs(seed_root.path());
    let creds = gcs_creds(&server.url());
    Backend::new(
        "fake-gcs-server",
        gcs_spec(),
        Some(creds),
        Some(server),
        Some(seed_root),
    )
    .await
}

pub async fn local_backend(objects: &Objects) -> Backend {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(root.path().join(BUCKET)).expect("mkdir bucket");
    let spec = bsl(
        json!({"provider": "file", "objectStorage": {"bucket": BUCKET, "prefix": PREFIX},
        "config": {"root": root.path().to_str().expect("utf-8 tempdir")}}),
    );
    let b = Backend::new("local", spec, None, None, Some(root)).await;
    seed(b.plain.store.as_ref(), objects).await;
    b
}
