//! Credentials from the controller's own environment (`--ambient-credentials`), for a location
//! whose credentials Secret does not exist: what Velero's AWS plugin does when it is installed
//! without one (`velero install --no-secret`), where its SDK's default chain finds IAM Roles for
//! Service Accounts, EKS Pod Identity or the instance metadata service.
//!
//! Only `aws` locations use them: a `gcp` or `azure` location still needs its Secret.

use std::collections::HashMap;

use object_store::aws::{AmazonS3ConfigKey, AwsCredentialProvider};

/// The AWS variables read, and the object_store setting each becomes. Everything else in the
/// environment (endpoints, regions, buckets) is ignored: the BackupStorageLocation says where.
/// Where two name one setting, the first present wins.
const AWS_VARIABLES: &[(&str, AmazonS3ConfigKey)] = &[
    // Static keys, e.g. from a Secret given to the controller with extraEnv.
    ("AWS_ACCESS_KEY_ID", AmazonS3ConfigKey::AccessKeyId),
    ("AWS_SECRET_ACCESS_KEY", AmazonS3ConfigKey::SecretAccessKey),
    ("AWS_SESSION_TOKEN", AmazonS3ConfigKey::Token),
    // IAM Roles for Service Accounts (EKS's webhook sets these from the ServiceAccount's
    // eks.amazonaws.com/role-arn annotation).
    (
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        AmazonS3ConfigKey::WebIdentityTokenFile,
    ),
    ("AWS_ROLE_ARN", AmazonS3ConfigKey::RoleArn),
    ("AWS_ROLE_SESSION_NAME", AmazonS3ConfigKey::RoleSessionName),
    ("AWS_ENDPOINT_URL_STS", AmazonS3ConfigKey::StsEndpoint),
    // ECS task roles and EKS Pod Identity.
    (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        AmazonS3ConfigKey::ContainerCredentialsFullUri,
    ),
    (
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        AmazonS3ConfigKey::ContainerAuthorizationTokenFile,
    ),
    // The instance metadata service (the node's role, kube2iam, kiam): the AWS SDKs' name for
    // its address first, then object_store's.
    (
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        AmazonS3ConfigKey::MetadataEndpoint,
    ),
    ("AWS_METADATA_ENDPOINT", AmazonS3ConfigKey::MetadataEndpoint),
];

/// The credentials settings found in the environment; with none, object_store asks the
/// instance metadata service at its default address (unless `AWS_EC2_METADATA_DISABLED`).
#[derive(Clone, Default)]
pub struct AmbientCredentials {
    aws: Vec<(AmazonS3ConfigKey, String)>,
    /// `AWS_EC2_METADATA_DISABLED=true`: the instance metadata service is not asked.
    metadata_disabled: bool,
}

impl std::fmt::Debug for AmbientCredentials {
    // The values include secret keys and tokens: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmbientCredentials")
            .field("aws", &self.aws.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("metadata_disabled", &self.metadata_disabled)
            .finish()
    }
}

impl AmbientCredentials {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// From `NAME=value` pairs; empty values count as unset.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: HashMap<String, String> =
            vars.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let mut aws: Vec<(AmazonS3ConfigKey, String)> = Vec::new();
        for (name, key) in AWS_VARIABLES {
            let Some(value) = vars.get(*name) else {
                continue;
            };
            if aws.iter().any(|(k, _)| k == key) {
                continue;
            }
            let value = match key {
                // object_store appends `/latest/…` to the address as given.
                AmazonS3ConfigKey::MetadataEndpoint => value.trim_end_matches('/').to_string(),
                _ => value.clone(),
            };
            aws.push((*key, value));
        }
        let metadata_disabled = vars
            .get("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        AmbientCredentials {
            aws,
            metadata_disabled,
        }
    }

    /// The object_store settings for an `aws` location.
    pub(super) fn aws(&self) -> &[(AmazonS3ConfigKey, String)] {
        &self.aws
    }

    /// The identity object_store's chain will use (its own order: static keys, web identity,
    /// the ECS endpoint, EKS Pod Identity, instance metadata); `None` when it would reach the
    /// instance metadata service and that is disabled.
    pub fn aws_source(&self) -> Option<&'static str> {
        use AmazonS3ConfigKey as K;
        let has = |k: K| self.aws.iter().any(|(key, _)| *key == k);
        if has(K::AccessKeyId) || has(K::SecretAccessKey) {
            Some("static keys from the environment")
        } else if has(K::WebIdentityTokenFile) && has(K::RoleArn) {
            Some("web identity (IAM Roles for Service Accounts)")
        } else if has(K::ContainerCredentialsRelativeUri) {
            Some("the ECS container credentials endpoint")
        } else if has(K::ContainerCredentialsFullUri) && has(K::ContainerAuthorizationTokenFile) {
            Some("EKS Pod Identity")
        } else if self.metadata_disabled {
            None
        } else {
            Some("the instance metadata service")
        }
    }
}

/// The controller's own identity an `aws` store signs with.
#[derive(Clone)]
pub struct Identity {
    /// Which identity, in words (from [`AmbientCredentials::aws_source`]).
    pub source: &'static str,
    provider: AwsCredentialProvider,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("source", &self.source)
            .finish()
    }
}

impl Identity {
    pub(super) fn new(source: &'static str, provider: AwsCredentialProvider) -> Self {
        Identity { source, provider }
    }

    /// Obtains the identity's credentials (object_store caches them for the store's requests),
    /// so that failing to get them is told apart from the store refusing them.
    pub async fn check(&self) -> object_store::Result<()> {
        self.provider.get_credential().await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> AmbientCredentials {
        AmbientCredentials::from_vars(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }

    #[test]
    fn reads_only_the_credential_variables() {
        let a = vars(&[
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/guard"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/token"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://elsewhere"),
            ("AWS_SESSION_TOKEN", ""),
            ("PATH", "/bin"),
        ]);
        assert_eq!(
            a.aws(),
            [
                (
                    AmazonS3ConfigKey::WebIdentityTokenFile,
                    "/var/run/secrets/token".into()
                ),
                (
                    AmazonS3ConfigKey::RoleArn,
                    "arn:aws:iam::1:role/guard".into()
                ),
            ]
        );
        assert_eq!(
            a.aws_source(),
            Some("web identity (IAM Roles for Service Accounts)")
        );
    }

    #[test]
    fn never_shows_the_values() {
        let a = vars(&[
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
        ]);
        let shown = format!("{a:?}");
        assert!(shown.contains("SecretAccessKey"), "{shown}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("AKIAEXAMPLE"),
            "{shown}"
        );
    }

    #[test]
    fn the_sdks_metadata_address_wins_and_loses_its_trailing_slash() {
        let a = vars(&[
            ("AWS_METADATA_ENDPOINT", "http://object-store-name"),
            (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                "http://169.254.169.254/",
            ),
        ]);
        assert_eq!(
            a.aws(),
            [(
                AmazonS3ConfigKey::MetadataEndpoint,
                "http://169.254.169.254".into()
            )]
        );
    }

    /// In object_store's order (aws/builder.rs, `build`), so the identity named is the one used.
    #[test]
    fn names_the_identity_the_chain_uses() {
        let metadata = Some("the instance metadata service");
        assert_eq!(vars(&[]).aws_source(), metadata);
        assert_eq!(
            vars(&[("AWS_EC2_METADATA_DISABLED", "true")]).aws_source(),
            None
        );
        // A role ARN without its token file is not web identity.
        assert_eq!(vars(&[("AWS_ROLE_ARN", "arn")]).aws_source(), metadata);
        // Nor is a full URI without its token file EKS Pod Identity.
        let uri = (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/v1/credentials",
        );
        assert_eq!(vars(&[uri]).aws_source(), metadata);
        let token = (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "/var/run/secrets/pods",
        );
        assert_eq!(vars(&[uri, token]).aws_source(), Some("EKS Pod Identity"));
        let ecs = (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/x",
        );
        assert_eq!(
            vars(&[ecs, uri, token]).aws_source(),
            Some("the ECS container credentials endpoint")
        );
        let web = [
            ("AWS_ROLE_ARN", "arn"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ];
        assert_eq!(
            vars(&[web[0], web[1], ecs]).aws_source(),
            Some("web identity (IAM Roles for Service Accounts)")
        );
        // Either static key takes the static branch (object_store then refuses half a pair).
        let keys = ("AWS_SECRET_ACCESS_KEY", "s");
        assert_eq!(
            vars(&[keys, web[0], web[1]]).aws_source(),
            Some("static keys from the environment")
        );
    }
}
