//! The controller's own AWS identity (`--ambient-credentials`) against real servers: moto's
//! instance metadata service, s3s-fs checking signatures, and identities out of reach.
//!
//! Servers come from `hack/storage/install.sh`; a missing one fails the test (never a silent skip).

#[path = "support/storage_backend.rs"]
mod storage_backend;
#[path = "support/storage_http.rs"]
mod storage_http;
#[path = "support/storage_scenario.rs"]
mod storage_scenario;
#[path = "support/storage_servers.rs"]
mod storage_servers;

use backup_guard::storage::{delete_backup_files, resolve, AmbientCredentials, ClientSettings};
use storage_backend::*;
use storage_http::{raw_request, Counter, Seen};
use storage_scenario::*;
use storage_servers::*;

/// `--ambient-credentials` with the instance metadata service at `url`.
fn ambient_settings(counter: Option<&Counter>, metadata_url: String) -> ClientSettings {
    let vars = [("AWS_METADATA_ENDPOINT".to_string(), metadata_url)];
    ClientSettings {
        ambient: Some(AmbientCredentials::from_vars(vars)),
        ..settings(counter)
    }
}

/// The access key moto's instance metadata service hands out (IMDS: role list, then its keys).
async fn moto_instance_key(port: u16) -> String {
    const CREDENTIALS: &str = "/latest/meta-data/iam/security-credentials/";
    let body = |text: String| {
        text.split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let (status, text) = raw_request(port, "GET", CREDENTIALS, &[], b"").await;
    assert_eq!(status, 200, "moto IMDS role: {text}");
    let role = body(text).trim().to_string();
    let (status, text) = raw_request(port, "GET", &format!("{CREDENTIALS}{role}"), &[], b"").await;
    assert_eq!(status, 200, "moto IMDS credentials: {text}");
    let creds: serde_json::Value = serde_json::from_str(&body(text)).expect("IMDS JSON");
    creds["AccessKeyId"]
        .as_str()
        .expect("AccessKeyId")
        .to_string()
}

/// `velero install --no-secret`: no credentials Secret. With --ambient-credentials the controller
/// signs with its own identity, here the role moto's instance metadata service hands out.
#[tokio::test]
async fn moto_without_a_secret_cleans_with_the_controllers_own_identity() {
    let objects = velero_layout();
    let b = moto_backend(&objects).await;
    let moto = b.server.as_ref().expect("moto runs");
    let counter = Counter::default();
    let loc = resolve(&b.spec, None, &ambient_settings(Some(&counter), moto.url()))
        .await
        .expect("an aws location without a Secret resolves with --ambient-credentials");
    assert_eq!(
        loc.identity.as_ref().map(|i| i.source),
        Some("the instance metadata service")
    );

    let deleted = delete_backup_files(&loc, "daily-1")
        .await
        .expect("cleanup with the controller's own identity");
    assert_eq!(deleted.keys, 12);
    assert_remaining(
        b.plain.store.as_ref(),
        &objects,
        &backup_files(PREFIX, "daily-1"),
    )
    .await;

    let seen = counter.take();
    let (imds, s3): (Vec<&Seen>, Vec<&Seen>) =
        seen.iter().partition(|r| r.target.starts_with("/latest/"));
    // IMDSv2: a session token, the role's name, the role's keys.
    assert!(
        imds.iter()
            .any(|r| r.method == "PUT" && r.target == "/latest/api/token"),
        "{imds:?}"
    );
    assert!(
        imds.iter().any(|r| r
            .target
            .starts_with("/latest/meta-data/iam/security-credentials/")),
        "{imds:?}"
    );
    let key = moto_instance_key(moto.port).await;
    assert_eq!(s3.len(), 2, "one list, one bulk delete: {s3:?}");
    assert!(
        s3.iter().all(|r| r.signer.as_deref() == Some(key.as_str())),
        "S3 requests signed with the instance key {key}: {s3:?}"
    );
}

/// Keys in the controller's environment (a Secret of your own given with extraEnv), against a
/// server that checks signatures: wrong ones are refused naming the controller's identity,
/// right ones clean.
#[tokio::test]
async fn s3s_fs_checks_the_keys_of_the_controllers_environment() {
    let objects = velero_layout();
    let b = s3s_fs_backend(&objects).await;
    let ambient = |secret: &str| ClientSettings {
        ambient: Some(AmbientCredentials::from_vars([
            ("AWS_ACCESS_KEY_ID".to_string(), S3_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), secret.to_string()),
        ])),
        ..settings(None)
    };
    let wrong = resolve(&b.spec, None, &ambient("wrong-secret"))
        .await
        .expect("resolve");
    assert_eq!(
        wrong.identity.as_ref().map(|i| i.source),
        Some("static keys from the environment")
    );
    let msg = delete_backup_files(&wrong, "daily-1")
        .await
        .expect_err("wrong keys must fail")
        .to_string();
    assert!(
        msg.contains("nothing was deleted")
            && msg.contains("rejected the controller's own AWS identity (static keys"),
        "{msg}"
    );
    assert_remaining(b.plain.store.as_ref(), &objects, &[]).await;

    let right = resolve(&b.spec, None, &ambient(S3_SECRET))
        .await
        .expect("resolve");
    let deleted = delete_backup_files(&right, "daily-1")
        .await
        .expect("cleanup with the environment's keys");
    assert_eq!(deleted.keys, 12);
    let gone = backup_files(PREFIX, "daily-1");
    assert_remaining(b.plain.store.as_ref(), &objects, &gone).await;
}

#[tokio::test]
async fn without_ambient_credentials_a_location_without_a_secret_is_refused() {
    let spec = aws_spec("http://127.0.0.1:9");
    let err = resolve(&spec, None, &settings(None))
        .await
        .expect_err("no Secret and no --ambient-credentials");
    let msg = err.to_string();
    assert!(
        msg.contains("cloud-credentials") && msg.contains("--ambient-credentials"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_unreachable_identity_fails_naming_it_and_deletes_nothing() {
    let objects = velero_layout();
    let b = moto_backend(&objects).await;
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let quick = give_up_quickly(ambient_settings(None, nowhere));
    let loc = resolve(&b.spec, None, &quick).await.expect("resolve");
    let err = delete_backup_files(&loc, "daily-1")
        .await
        .expect_err("no identity, no cleanup");
    let msg = err.to_string();
    eprintln!("unreachable identity: {msg}");
    assert!(
        msg.contains("instance metadata service") && msg.contains("--ambient-credentials"),
        "{msg}"
    );
    assert_remaining(b.plain.store.as_ref(), &objects, &[]).await;
}

/// IAM Roles for Service Accounts with STS out of reach: told as the identity, not the store.
#[tokio::test]
async fn an_unreachable_sts_fails_naming_the_web_identity_and_deletes_nothing() {
    let objects = velero_layout();
    let b = moto_backend(&objects).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln").expect("write token");
    let vars = [
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::111122223333:role/backup-guard".to_string(),
        ),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
        (
            "AWS_ENDPOINT_URL_STS",
            format!("https://127.0.0.1:{}", free_port()),
        ),
    ];
    let quick = give_up_quickly(ClientSettings {
        ambient: Some(AmbientCredentials::from_vars(
            vars.into_iter().map(|(n, v)| (n.to_string(), v)),
        )),
        ..settings(None)
    });
    let loc = resolve(&b.spec, None, &quick).await.expect("resolve");
    let msg = delete_backup_files(&loc, "daily-1")
        .await
        .expect_err("no identity, no cleanup")
        .to_string();
    eprintln!("unreachable STS: {msg}");
    assert!(
        msg.contains(
            "could not get its own AWS identity (web identity (IAM Roles for Service Accounts)"
        ),
        "{msg}"
    );
    assert_remaining(b.plain.store.as_ref(), &objects, &[]).await;
}
