//! Credentials from the controller's own environment (`--ambient-credentials`), for a location
//! whose credentials Secret does not exist: what Velero's AWS plugin does when it is installed
//! without one (`velero install --no-secret`), where its SDK's default chain finds IAM Roles for
//! Service Accounts, EKS Pod Identity or the instance metadata service.
//!
//! Only `aws` locations use them: a `gcp` or `azure` location still needs its Secret.

use object_store::aws::AmazonS3ConfigKey;

/// The AWS variables read, and the object_store setting each becomes. Everything else in the
/// environment (endpoints, regions, buckets) is ignored: the BackupStorageLocation says where.
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
    // EKS Pod Identity and ECS task roles.
    (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        AmazonS3ConfigKey::ContainerCredentialsFullUri,
    ),
    (
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        AmazonS3ConfigKey::ContainerAuthorizationTokenFile,
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
    ),
    // The instance metadata service (the node's role, kube2iam, kiam): the AWS SDKs' name for
    // its address, and object_store's.
    (
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        AmazonS3ConfigKey::MetadataEndpoint,
    ),
    ("AWS_METADATA_ENDPOINT", AmazonS3ConfigKey::MetadataEndpoint),
];

/// The credentials settings found in the environment; empty is still a chain (object_store then
/// asks the instance metadata service at its default address).
#[derive(Debug, Clone, Default)]
pub struct AmbientCredentials {
    aws: Vec<(AmazonS3ConfigKey, String)>,
}

impl AmbientCredentials {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// From `NAME=value` pairs; empty values count as unset.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut aws = Vec::new();
        for (name, value) in vars {
            if value.is_empty() {
                continue;
            }
            if let Some((_, key)) = AWS_VARIABLES.iter().find(|(n, _)| *n == name) {
                aws.push((*key, value));
            }
        }
        AmbientCredentials { aws }
    }

    /// The object_store settings for an `aws` location.
    pub(super) fn aws(&self) -> &[(AmazonS3ConfigKey, String)] {
        &self.aws
    }

    /// Which kind of identity the chain will use first, for logs and messages.
    pub fn aws_source(&self) -> &'static str {
        let has = |k: AmazonS3ConfigKey| self.aws.iter().any(|(key, _)| *key == k);
        if has(AmazonS3ConfigKey::AccessKeyId) {
            "static keys from the environment"
        } else if has(AmazonS3ConfigKey::WebIdentityTokenFile) && has(AmazonS3ConfigKey::RoleArn) {
            "web identity (IAM Roles for Service Accounts)"
        } else if has(AmazonS3ConfigKey::ContainerCredentialsRelativeUri)
            || has(AmazonS3ConfigKey::ContainerCredentialsFullUri)
        {
            "the container credentials endpoint (EKS Pod Identity, ECS)"
        } else {
            "the instance metadata service"
        }
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
                    AmazonS3ConfigKey::RoleArn,
                    "arn:aws:iam::1:role/guard".into()
                ),
                (
                    AmazonS3ConfigKey::WebIdentityTokenFile,
                    "/var/run/secrets/token".into()
                ),
            ]
        );
        assert_eq!(
            a.aws_source(),
            "web identity (IAM Roles for Service Accounts)"
        );
    }

    #[test]
    fn names_the_identity_the_chain_uses_first() {
        assert_eq!(vars(&[]).aws_source(), "the instance metadata service");
        assert_eq!(
            vars(&[("AWS_METADATA_ENDPOINT", "http://127.0.0.1:1")]).aws_source(),
            "the instance metadata service"
        );
        let pod_identity = vars(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "/var/run/secrets/pods",
            ),
        ]);
        assert_eq!(
            pod_identity.aws_source(),
            "the container credentials endpoint (EKS Pod Identity, ECS)"
        );
        // A role ARN without its token file is not web identity.
        assert_eq!(
            vars(&[("AWS_ROLE_ARN", "arn")]).aws_source(),
            "the instance metadata service"
        );
        let keys = vars(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ROLE_ARN", "arn"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ]);
        assert_eq!(keys.aws_source(), "static keys from the environment");
    }
}
