//! Credentials: wrong ones leave the backup alone, the Secrets Velero's installers write, and the
//! controller's own identity. The velero engine: velero.rs.

use backup_guard::controller::kinds::Kind;
use backup_guard::policy::stamps::CLEANUP_FINALIZER;
use backup_guard::storage::{resolve, AmbientCredentials, BslSpec, ClientSettings, Location};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};

use crate::fixtures::*;
use crate::harness::*;
use crate::storage_scenario::*;
use crate::storage_servers::{s3s_fs, S3_KEY, S3_SECRET};

pub fn credentials(key: &str, secret: &str) -> Value {
    let file = format!("[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n");
    json!({"cloud": base64::engine::general_purpose::STANDARD.encode(file)})
}

pub async fn put_secret(c: &Client, ns: &str, data: Value) {
    put_named_secret(c, ns, "cloud-credentials", data).await;
}

async fn put_named_secret(c: &Client, ns: &str, name: &str, data: Value) {
    let api: Api<Secret> = Api::namespaced(c.clone(), ns);
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}, "data": data}))
            .expect("secret");
    match api.get_opt(name).await.expect("get secret") {
        None => drop(
            api.create(&PostParams::default(), &secret)
                .await
                .expect("create"),
        ),
        Some(_) => patch_secret(&api, data).await,
    }
}

async fn patch_secret(api: &Api<Secret>, data: Value) {
    api.patch(
        "cloud-credentials",
        &Default::default(),
        &kube::api::Patch::Merge(json!({ "data": data })),
    )
    .await
    .expect("patch secret");
}

/// BackupStorageLocation `default` on s3s-fs at `url`; returns a location with good keys.
pub async fn s3_location(c: &Client, ns: &str, url: &str) -> Location {
    let spec = json!({"provider": "aws", "objectStorage": {"bucket": BUCKET, "prefix": PREFIX},
        "config": {"region": "us-east-1", "s3Url": url, "s3ForcePathStyle": "true"}});
    let bsl = json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": ns}, "spec": spec});
    create(c, Kind::BackupStorageLocation, bsl.clone()).await;
    let good =
        format!("[default]\naws_access_key_id = {S3_KEY}\naws_secret_access_key = {S3_SECRET}\n");
    let spec = BslSpec::from_object(&bsl).expect("spec");
    resolve(&spec, Some(good.as_bytes()), &ClientSettings::default())
        .await
        .expect("location")
}

#[tokio::test]
async fn wrong_credentials_fail_with_an_event_and_leave_everything_until_they_are_fixed() {
    let c = cluster().await;
    let n = Names::new(&namespace(&c, "ctl-creds").await);
    let server = s3s_fs(BUCKET);
    let loc = s3_location(&c, &n.ns, &server.url()).await;
    let seeded = layout(&n);
    seed(loc.store.as_ref(), &seeded).await;
    put_secret(&c, &n.ns, credentials(S3_KEY, "not-the-secret")).await;
    objects(&n).await;

    let running = start(&c, &n.ns, policy_state(velero_in(&n.ns), KEY));
    let rejected = "rejected the credentials";
    eventually(
        60,
        "a CleanupFailed Event naming the credentials",
        || async { has_event(&c, &n.ns, &n.gone, "CleanupFailed", rejected).await },
    )
    .await;
    assert_remaining(loc.store.as_ref(), &seeded, &[]).await;
    assert!(exists(Kind::Restore, Some(&n.ns), &n.restore()).await);
    assert_eq!(
        finalizers(&c, Kind::Backup, Some(&n.ns), &n.gone).await,
        vec![CLEANUP_FINALIZER.to_string()]
    );
    assert!(running.metric("cleanups", &["native", "failure"]) >= 1);

    put_secret(&c, &n.ns, credentials(S3_KEY, S3_SECRET)).await;
    touch(&c, &n.ns, &n.gone).await;
    eventually(
        60,
        "the cleanup to finish with good credentials",
        || async { !exists(Kind::Backup, Some(&n.ns), &n.gone).await },
    )
    .await;
    assert_cleaned(&n, &loc, &seeded).await;
    assert_eq!(running.metric("objects", &["aws"]), 16);
    running.stop().await;
    drop_namespace(&c, &n.ns).await;
}

#[tokio::test]
async fn without_spec_credential_the_secret_veleros_helm_chart_writes_is_used() {
    let c = cluster().await;
    let n = Names::new(&namespace(&c, "ctl-helm").await);
    let server = s3s_fs(BUCKET);
    let loc = s3_location(&c, &n.ns, &server.url()).await;
    let seeded = layout(&n);
    seed(loc.store.as_ref(), &seeded).await;
    // Velero installed by its Helm chart (release `velero`): no cloud-credentials Secret.
    put_named_secret(&c, &n.ns, "velero", credentials(S3_KEY, S3_SECRET)).await;
    objects(&n).await;
    let running = start(&c, &n.ns, policy_state(velero_in(&n.ns), KEY));
    cleaned_up(
        &n,
        &loc,
        &seeded,
        "the cleanup with the Helm chart's Secret",
    )
    .await;
    running.stop().await;
    drop_namespace(&c, &n.ns).await;
}

/// `velero install --no-secret`: no credentials Secret at all. Refused (naming the flag) until
/// the controller runs with --ambient-credentials; then it signs with the keys of its own
/// environment, which s3s-fs checks.
#[tokio::test]
async fn without_any_secret_the_controllers_own_identity_cleans_only_when_allowed() {
    let c = cluster().await;
    let n = Names::new(&namespace(&c, "ctl-ambient").await);
    let server = s3s_fs(BUCKET);
    let loc = s3_location(&c, &n.ns, &server.url()).await;
    let seeded = layout(&n);
    seed(loc.store.as_ref(), &seeded).await;
    objects(&n).await;

    let running = start(&c, &n.ns, policy_state(velero_in(&n.ns), KEY));
    eventually(
        60,
        "a CleanupFailed Event offering --ambient-credentials",
        || async { has_event(&c, &n.ns, &n.gone, "CleanupFailed", "--ambient-credentials").await },
    )
    .await;
    assert_remaining(loc.store.as_ref(), &seeded, &[]).await;
    running.stop().await;

    let environment = [
        ("AWS_ACCESS_KEY_ID".to_string(), S3_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), S3_SECRET.to_string()),
    ];
    let ambient = AmbientCredentials::from_vars(environment);
    let state = policy_state(velero_in(&n.ns), KEY);
    let running = start_with(&c, &n.ns, state, |cfg| cfg.storage.ambient = Some(ambient));
    touch(&c, &n.ns, &n.gone).await;
    cleaned_up(
        &n,
        &loc,
        &seeded,
        "the cleanup with the controller's own identity",
    )
    .await;
    running.stop().await;
    drop_namespace(&c, &n.ns).await;
}
