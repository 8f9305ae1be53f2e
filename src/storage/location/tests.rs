use serde_json::json;

use super::*;

const AWS_INI: &[u8] = b"[default]\naws_access_key_id=AKIA\naws_secret_access_key=SECRET\n";

fn spec(value: serde_json::Value) -> BslSpec {
    BslSpec::from_object(
        &json!({ "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation", "spec": value }),
    )
    .expect("test spec parses")
}

fn aws(config: serde_json::Value) -> BslSpec {
    spec(
        json!({"provider": "aws", "objectStorage": {"bucket": "b", "prefix": "p"}, "config": config}),
    )
}

async fn err(spec: &BslSpec, creds: Option<&[u8]>) -> String {
    match resolve(spec, creds, &ClientSettings::default()).await {
        Ok(loc) => panic!("expected an error, got {loc:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn providers_parse_with_and_without_plugin_prefix() {
    assert_eq!(Provider::parse("aws").unwrap(), Provider::Aws);
    assert_eq!(Provider::parse("velero.io/aws").unwrap(), Provider::Aws);
    assert_eq!(Provider::parse("velero.io/gcp").unwrap(), Provider::Gcp);
    assert_eq!(Provider::parse("azure").unwrap(), Provider::Azure);
    assert_eq!(Provider::parse("file").unwrap(), Provider::File);
    let e = Provider::parse("community.openshift.io/foo").unwrap_err();
    assert!(e.to_string().contains("not supported"), "{e}");
    assert!(Provider::parse("velero.io/file").is_err());
}

#[test]
fn credential_ref_defaults_to_velero_secret() {
    let s = aws(json!({}));
    assert_eq!(
        s.credential_ref(),
        SecretKeyRef {
            name: "cloud-credentials".into(),
            key: "cloud".into()
        }
    );
    let s = spec(
        json!({"provider": "aws", "objectStorage": {"bucket": "b"}, "credential": {"name": "s", "key": "k"}}),
    );
    assert_eq!(s.credential_ref().name, "s");
}

#[test]
fn malformed_objects_are_explained() {
    let e = BslSpec::from_object(&json!({"kind": "x"})).unwrap_err();
    assert!(e.to_string().contains("no spec"), "{e}");
    let e = BslSpec::from_object(&json!({"spec": {"provider": "aws"}})).unwrap_err();
    assert!(e.to_string().contains("objectStorage"), "{e}");
}

#[test]
fn s3_endpoints_follow_velero_addressing() {
    let e = aws::endpoint(&aws(json!({"s3Url": "http://127.0.0.1:9000/"})), "b").unwrap();
    assert_eq!(e.url.as_deref(), Some("http://127.0.0.1:9000"));
    assert!(!e.virtual_hosted && e.allow_http);

    let e = aws::endpoint(
        &aws(json!({"s3Url": "https://minio.example.com", "s3ForcePathStyle": "true"})),
        "b",
    )
    .unwrap();
    assert_eq!(e.url.as_deref(), Some("https://minio.example.com"));
    assert!(!e.virtual_hosted && !e.allow_http);

    let e = aws::endpoint(
        &aws(json!({"s3Url": "https://minio.example.com:9000"})),
        "b",
    )
    .unwrap();
    assert_eq!(e.url.as_deref(), Some("https://b.minio.example.com:9000"));
    assert!(e.virtual_hosted);

    let e = aws::endpoint(&aws(json!({})), "b").unwrap();
    assert_eq!(e.url, None);
    assert!(e.virtual_hosted);
    assert!(
        !aws::endpoint(&aws(json!({})), "my.bucket")
            .unwrap()
            .virtual_hosted
    );
}

#[tokio::test]
async fn s3_errors_say_what_to_fix() {
    let m = err(&aws(json!({"s3Url": "ftp://x"})), Some(AWS_INI)).await;
    assert!(m.contains("s3Url") && m.contains("http://"), "{m}");
    let m = err(&aws(json!({"s3Url": "not a url"})), Some(AWS_INI)).await;
    assert!(m.contains("s3Url"), "{m}");
    let m = err(
        &aws(json!({"s3ForcePathStyle": "yes", "region": "r"})),
        Some(AWS_INI),
    )
    .await;
    assert!(
        m.contains("s3ForcePathStyle") && m.contains("true or false"),
        "{m}"
    );
    let m = err(&aws(json!({"region": "r"})), None).await;
    assert!(m.contains("cloud-credentials"), "{m}");
    let m = err(
        &aws(json!({"region": "r", "profile": "prod"})),
        Some(AWS_INI),
    )
    .await;
    assert!(m.contains("[prod]"), "{m}");
    let m = err(
        &aws(json!({"region": "r"})),
        Some(b"[default]\nbroken line\n"),
    )
    .await;
    assert!(m.contains("line 2"), "{m}");
    assert!(!m.contains("SECRET"));
}

#[tokio::test]
async fn s3_location_resolves_with_normalized_prefix() {
    let s = spec(
        json!({"provider": "velero.io/aws", "objectStorage": {"bucket": "b", "prefix": "/cluster-a/"},
        "config": {"region": "eu-west-1", "s3Url": "http://127.0.0.1:1", "insecureSkipTLSVerify": "true"}}),
    );
    let loc = resolve(&s, Some(AWS_INI), &ClientSettings::default())
        .await
        .unwrap();
    assert_eq!(loc.prefix, "cluster-a");
    assert_eq!(loc.bucket, "b");
    assert_eq!(loc.provider, Provider::Aws);
    let debug = format!("{loc:?}");
    assert!(
        !debug.contains("SECRET") && debug.contains("cluster-a"),
        "{debug}"
    );
}

#[tokio::test]
async fn bad_bucket_and_prefix_are_rejected() {
    let s = spec(json!({"provider": "aws", "objectStorage": {"bucket": "b/c"}}));
    assert!(err(&s, Some(AWS_INI))
        .await
        .contains("spec.objectStorage.bucket"));
    let s = spec(json!({"provider": "aws", "objectStorage": {"bucket": "/"}}));
    assert!(err(&s, Some(AWS_INI))
        .await
        .contains("spec.objectStorage.bucket"));
    let s = spec(
        json!({"provider": "aws", "objectStorage": {"bucket": "/b/"}, "config": {"region": "r"}}),
    );
    let loc = resolve(&s, Some(AWS_INI), &ClientSettings::default())
        .await
        .unwrap();
    assert_eq!(loc.bucket, "b");
    let s = spec(json!({"provider": "aws", "objectStorage": {"bucket": "b", "prefix": "a/../b"}}));
    assert!(err(&s, Some(AWS_INI)).await.contains("prefix"));
}

#[tokio::test]
async fn bad_ca_cert_is_explained() {
    let s = spec(
        json!({"provider": "aws", "objectStorage": {"bucket": "b", "caCert": "!!"},
        "config": {"region": "r"}}),
    );
    let m = err(&s, Some(AWS_INI)).await;
    assert!(m.contains("caCert") && m.contains("base64"), "{m}");
}

fn azure(config: serde_json::Value) -> BslSpec {
    spec(json!({"provider": "azure", "objectStorage": {"bucket": "c"}, "config": config}))
}

#[tokio::test]
async fn azure_needs_account_and_key() {
    let m = err(
        &azure(json!({})),
        Some(b"AZURE_STORAGE_ACCOUNT_ACCESS_KEY=a2V5\n"),
    )
    .await;
    assert!(m.contains("storageAccount"), "{m}");
    let m = err(
        &azure(json!({"storageAccount": "acct"})),
        Some(b"AZURE_CLOUD_NAME=AzurePublicCloud\n"),
    )
    .await;
    assert!(m.contains("AZURE_STORAGE_ACCOUNT_ACCESS_KEY"), "{m}");
    let m = err(
        &azure(json!({"storageAccount": "acct", "storageAccountKeyEnvVar": "MY_KEY"})),
        Some(b"AZURE_STORAGE_ACCOUNT_ACCESS_KEY=a2V5\n"),
    )
    .await;
    assert!(m.contains("MY_KEY"), "{m}");
    let m = err(
        &azure(json!({"storageAccount": "acct"})),
        Some(b"AZURE_STORAGE_ACCOUNT_ACCESS_KEY=not base64!\n"),
    )
    .await;
    assert!(m.contains("not base64"), "{m}");
    let m = err(
        &azure(json!({"storageAccount": "acct"})),
        Some(b"AZURE_STORAGE_ACCOUNT_ACCESS_KEY=a2V5\nAZURE_CLOUD_NAME=Mars\n"),
    )
    .await;
    assert!(m.contains("Mars"), "{m}");
}

#[tokio::test]
async fn azure_resolves_with_key_or_service_principal() {
    let settings = ClientSettings::default();
    let s =
        azure(json!({"storageAccount": "acct", "storageAccountURI": "http://127.0.0.1:1/acct"}));
    let key = b"AZURE_STORAGE_ACCOUNT_ACCESS_KEY=c2VjcmV0LWtleQ==\n";
    let loc = resolve(&s, Some(key), &settings).await.unwrap();
    assert!(!format!("{loc:?}").contains("c2VjcmV0LWtleQ"), "{loc:?}");
    let sp = b"AZURE_TENANT_ID=t\nAZURE_CLIENT_ID=c\nAZURE_CLIENT_SECRET=s\n";
    resolve(
        &azure(json!({"storageAccount": "acct"})),
        Some(sp),
        &settings,
    )
    .await
    .unwrap();
}

fn gcp() -> BslSpec {
    spec(json!({"provider": "gcp", "objectStorage": {"bucket": "g"}}))
}

#[tokio::test]
async fn gcp_credentials_are_checked() {
    let m = err(&gcp(), Some(b"{not json")).await;
    assert!(m.contains("service-account JSON"), "{m}");
    let m = err(&gcp(), Some(br#"{"type":"external_account"}"#)).await;
    assert!(m.contains("external_account"), "{m}");
    let m = err(
        &gcp(),
        Some(br#"{"type":"service_account","client_email":"a@b"}"#),
    )
    .await;
    assert!(m.contains("private_key"), "{m}");
    let fake = br#"{"gcs_base_url":"http://127.0.0.1:1","disable_oauth":true,"client_email":"","private_key":"","private_key_id":""}"#;
    resolve(&gcp(), Some(fake), &ClientSettings::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn file_provider_needs_an_existing_root() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(json!({"provider": "file", "objectStorage": {"bucket": "bk"}}));
    assert!(err(&s, None).await.contains("spec.config.root"));
    let root = dir.path().to_str().unwrap();
    let s = spec(
        json!({"provider": "file", "objectStorage": {"bucket": "bk"}, "config": {"root": root}}),
    );
    assert!(err(&s, None).await.contains("existing directory"));
    std::fs::create_dir(dir.path().join("bk")).unwrap();
    let loc = resolve(&s, None, &ClientSettings::default()).await.unwrap();
    assert_eq!(loc.provider, Provider::File);
}

#[tokio::test]
async fn the_controllers_own_identity_stands_in_only_for_a_secret_nobody_named() {
    let ambient = ClientSettings {
        ambient: Some(AmbientCredentials::default()),
        ..ClientSettings::default()
    };
    let unnamed = aws(json!({"region": "r"}));
    let loc = resolve(&unnamed, None, &ambient)
        .await
        .expect("no spec.credential: the controller's identity");
    assert_eq!(
        loc.identity.as_ref().map(|i| i.source),
        Some("the instance metadata service")
    );
    // A Secret that exists wins over the controller's identity.
    let loc = resolve(&unnamed, Some(AWS_INI), &ambient)
        .await
        .expect("the Secret's keys");
    assert_eq!(loc.identity.as_ref().map(|i| i.source), None);
    // spec.credential names a Secret that is missing: a mistake to fix, not a fallback.
    let named = spec(json!({"provider": "aws", "objectStorage": {"bucket": "b"},
        "config": {"region": "r"}, "credential": {"name": "s", "key": "k"}}));
    let e = resolve(&named, None, &ambient).await.unwrap_err();
    assert!(
        matches!(e, LocationError::MissingCredentials(Provider::Aws)),
        "{e}"
    );
    // Nothing in the environment and the metadata service disabled: no identity to use.
    let disabled = ClientSettings {
        ambient: Some(AmbientCredentials::from_vars([(
            "AWS_EC2_METADATA_DISABLED".to_string(),
            "true".to_string(),
        )])),
        ..ClientSettings::default()
    };
    let e = resolve(&unnamed, None, &disabled).await.unwrap_err();
    assert!(matches!(e, LocationError::NoAmbientIdentity), "{e}");
    // Other providers still need their Secret, and their message does not offer the flag.
    let gcp = spec(json!({"provider": "gcp", "objectStorage": {"bucket": "b"}}));
    let e = resolve(&gcp, None, &ambient).await.unwrap_err().to_string();
    assert!(
        e.contains("cloud-credentials") && !e.contains("ambient"),
        "{e}"
    );
}
