//! `aws` / `velero.io/aws`: Amazon S3 and S3-compatible stores, configured as Velero's AWS plugin.

use std::net::IpAddr;
use std::sync::Arc;

use object_store::aws::{resolve_bucket_region, AmazonS3Builder};
use object_store::{ClientOptions, ObjectStore};

use super::credentials::aws_keys;
use super::{
    connector, parse_http_url, BslSpec, ClientSettings, Identity, LocationError, Provider,
};

/// Region object_store signs with when an S3-compatible `s3Url` is given without a region.
const DEFAULT_REGION: &str = "us-east-1";

/// Where requests go and how the bucket is addressed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Endpoint {
    /// Base URL for object_store, `None` for AWS's own endpoints.
    pub url: Option<String>,
    /// `bucket.host` addressing instead of `host/bucket`.
    pub virtual_hosted: bool,
    /// The endpoint is plain http.
    pub allow_http: bool,
}

/// The store, and which identity of the controller's own it uses when it has no Secret.
pub(super) async fn build(
    spec: &BslSpec,
    bucket: &str,
    credentials: Option<&[u8]>,
    mut options: ClientOptions,
    settings: &ClientSettings,
) -> Result<(Arc<dyn ObjectStore>, Option<Identity>), LocationError> {
    let profile = spec.config("profile").unwrap_or("default");
    let keys = credentials
        .map(|creds| aws_keys(creds, profile))
        .transpose()
        .map_err(|source| LocationError::Credentials {
            provider: Provider::Aws,
            source,
        })?;
    // Without a Secret, the controller's own identity when allowed. A Secret named by
    // spec.credential that is missing is a mistake, not a request for that identity.
    let ambient = match (&keys, &settings.ambient) {
        (Some(_), _) => None,
        (None, Some(ambient)) if spec.credential.is_none() => {
            let source = ambient
                .aws_source()
                .ok_or(LocationError::NoAmbientIdentity)?;
            Some((ambient, source))
        }
        (None, _) => return Err(LocationError::MissingCredentials(Provider::Aws)),
    };
    let endpoint = endpoint(spec, bucket)?;
    if spec.config_bool("insecureSkipTLSVerify")? {
        options = options.with_allow_invalid_certificates(true);
    }
    let region = region(spec, bucket, &endpoint, &options).await?;

    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_virtual_hosted_style_request(endpoint.virtual_hosted)
        .with_retry(settings.retry.clone())
        // Client options replace the builder's own, so allow_http must be set on them.
        .with_client_options(options.with_allow_http(endpoint.allow_http));
    if let Some(keys) = keys {
        builder = builder
            .with_access_key_id(keys.access_key_id)
            .with_secret_access_key(keys.secret_access_key);
        if let Some(token) = keys.session_token {
            builder = builder.with_token(token);
        }
    }
    for (key, value) in ambient.map(|(a, _)| a.aws()).unwrap_or_default() {
        builder = builder.with_config(*key, value);
    }
    if let Some(url) = endpoint.url {
        builder = builder.with_endpoint(url);
    }
    if let Some(c) = connector(settings) {
        builder = builder.with_http_connector(c);
    }
    let store = builder.build().map_err(|source| LocationError::Build {
        provider: Provider::Aws,
        bucket: bucket.into(),
        source,
    })?;
    let identity = ambient.map(|(_, source)| Identity::new(source, store.credentials().clone()));
    Ok((Arc::new(store), identity))
}

/// Velero's addressing: path style when `s3ForcePathStyle` is true or the host cannot carry a bucket label.
pub(super) fn endpoint(spec: &BslSpec, bucket: &str) -> Result<Endpoint, LocationError> {
    let force_path = spec.config_bool("s3ForcePathStyle")?;
    let Some(raw) = spec.config("s3Url") else {
        // AWS itself: virtual-hosted, except dotted buckets, which its wildcard certificate does not cover.
        return Ok(Endpoint {
            url: None,
            virtual_hosted: !force_path && !bucket.contains('.'),
            allow_http: false,
        });
    };
    let (mut url, allow_http) = parse_http_url("spec.config.s3Url", raw)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let literal_host =
        host == "localhost" || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok();
    if force_path || literal_host {
        return Ok(Endpoint {
            url: Some(url.as_str().trim_end_matches('/').to_string()),
            virtual_hosted: false,
            allow_http,
        });
    }
    url.set_host(Some(&format!("{bucket}.{host}")))
        .map_err(|e| LocationError::BadUrl {
            field: "spec.config.s3Url",
            value: raw.into(),
            reason: format!(
                "bucket {bucket:?} cannot be a host label ({e}); set s3ForcePathStyle: \"true\""
            ),
        })?;
    Ok(Endpoint {
        url: Some(url.as_str().trim_end_matches('/').to_string()),
        virtual_hosted: true,
        allow_http,
    })
}

async fn region(
    spec: &BslSpec,
    bucket: &str,
    endpoint: &Endpoint,
    options: &ClientOptions,
) -> Result<String, LocationError> {
    if let Some(region) = spec.config("region") {
        return Ok(region.to_string());
    }
    if endpoint.url.is_some() {
        return Ok(DEFAULT_REGION.to_string());
    }
    // Velero's AWS plugin asks S3 for the bucket's region when none is configured.
    resolve_bucket_region(bucket, options)
        .await
        .map_err(|source| LocationError::Build {
            provider: Provider::Aws,
            bucket: format!(
                "{bucket} (looking up its region; set spec.config.region to skip this)"
            ),
            source,
        })
}
