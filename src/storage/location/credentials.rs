//! Parsers for the credential files Velero's plugins read: AWS INI profiles and Azure env files.
//!
//! Errors name the line and the key, never a value: these files hold secrets.

use std::collections::BTreeMap;

use thiserror::Error;

/// Why a credentials file could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CredentialsError {
    /// The bytes are not UTF-8 text.
    #[error(
        "the credentials are not UTF-8 text; store the file itself (not a binary) in the Secret"
    )]
    NotText,
    /// A line is neither a comment, a `[section]` nor `key = value`.
    #[error("line {line} of the credentials file is not `[profile]`, `key = value` or a comment")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// A key appears before any `[section]` header.
    #[error("line {line} of the AWS credentials file sets a key before any `[profile]` header; add `[default]` above it")]
    KeyOutsideSection {
        /// 1-based line number.
        line: usize,
    },
    /// The requested profile is not in the file.
    #[error("the AWS credentials file has no [{profile}] profile (found: {found}); fix spec.config.profile or the Secret")]
    MissingProfile {
        /// The profile asked for.
        profile: String,
        /// The profiles present, comma separated.
        found: String,
    },
    /// A required key is missing or empty.
    #[error("the credentials file has no {key}{context}; add it to the Secret")]
    MissingKey {
        /// The missing key.
        key: String,
        /// Where it was looked for, e.g. ` in profile [default]`.
        context: String,
    },
}

/// Static AWS keys from one profile of an AWS shared-credentials (INI) file.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    /// `aws_access_key_id`
    pub access_key_id: String,
    /// `aws_secret_access_key`
    pub secret_access_key: String,
    /// `aws_session_token`, if present.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

fn text(bytes: &[u8]) -> Result<&str, CredentialsError> {
    let s = std::str::from_utf8(bytes).map_err(|_| CredentialsError::NotText)?;
    Ok(s.strip_prefix('\u{feff}').unwrap_or(s))
}

fn is_comment(line: &str) -> bool {
    line.is_empty() || line.starts_with('#') || line.starts_with(';')
}

/// Parse an INI file into `section -> key -> value`; `[profile x]` is read as `x`.
pub fn parse_ini(
    bytes: &[u8],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, CredentialsError> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (idx, raw) in text(bytes)?.lines().enumerate() {
        let line = raw.trim();
        if is_comment(line) {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let name = inner
                .strip_suffix(']')
                .ok_or(CredentialsError::MalformedLine { line: idx + 1 })?
                .trim();
            let name = name.strip_prefix("profile ").unwrap_or(name).trim();
            if name.is_empty() {
                return Err(CredentialsError::MalformedLine { line: idx + 1 });
            }
            sections.entry(name.to_string()).or_default();
            current = Some(name.to_string());
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or(CredentialsError::MalformedLine { line: idx + 1 })?;
        let section = current
            .as_ref()
            .ok_or(CredentialsError::KeyOutsideSection { line: idx + 1 })?;
        let key = k.trim();
        if key.is_empty() {
            return Err(CredentialsError::MalformedLine { line: idx + 1 });
        }
        sections
            .entry(section.clone())
            .or_default()
            .insert(key.to_ascii_lowercase(), v.trim().to_string());
    }
    Ok(sections)
}

/// Read the static keys of `profile` from an AWS shared-credentials file.
pub fn aws_keys(bytes: &[u8], profile: &str) -> Result<AwsKeys, CredentialsError> {
    let sections = parse_ini(bytes)?;
    let Some(section) = sections.get(profile) else {
        return Err(CredentialsError::MissingProfile {
            profile: profile.to_string(),
            found: sections.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    };
    let get = |key: &str| section.get(key).filter(|v| !v.is_empty()).cloned();
    let require = |key: &str| {
        get(key).ok_or_else(|| CredentialsError::MissingKey {
            key: key.to_string(),
            context: format!(" in profile [{profile}] (only static keys are supported)"),
        })
    };
    Ok(AwsKeys {
        access_key_id: require("aws_access_key_id")?,
        secret_access_key: require("aws_secret_access_key")?,
        session_token: get("aws_session_token"),
    })
}

/// Parse a `KEY=VALUE` env file (Velero's Azure format); quotes around values are removed.
pub fn parse_env(bytes: &[u8]) -> Result<BTreeMap<String, String>, CredentialsError> {
    let mut out = BTreeMap::new();
    for (idx, raw) in text(bytes)?.lines().enumerate() {
        let line = raw.trim();
        if is_comment(line) {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .ok_or(CredentialsError::MalformedLine { line: idx + 1 })?;
        let key = k.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(CredentialsError::MalformedLine { line: idx + 1 });
        }
        out.insert(key.to_string(), unquote(v.trim()).to_string());
    }
    Ok(out)
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const INI: &str = "# velero\n[default]\naws_access_key_id = AKIA1\naws_secret_access_key=SECRET1\n\n[profile other]\nAWS_ACCESS_KEY_ID = AKIA2\naws_secret_access_key = SECRET2\naws_session_token = TOK\n";

    #[test]
    fn reads_default_and_named_profiles() {
        let d = aws_keys(INI.as_bytes(), "default").unwrap();
        assert_eq!(d.access_key_id, "AKIA1");
        assert_eq!(d.secret_access_key, "SECRET1");
        assert_eq!(d.session_token, None);
        let o = aws_keys(INI.as_bytes(), "other").unwrap();
        assert_eq!(o.access_key_id, "AKIA2");
        assert_eq!(o.session_token.as_deref(), Some("TOK"));
    }

    #[test]
    fn missing_profile_names_the_profiles_found() {
        let err = aws_keys(INI.as_bytes(), "prod").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("[prod]") && msg.contains("default, other"),
            "{msg}"
        );
    }

    #[test]
    fn missing_secret_names_the_key_not_the_values() {
        let err = aws_keys(b"[default]\naws_access_key_id=AKIA1\n", "default").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("aws_secret_access_key"), "{msg}");
        assert!(!msg.contains("AKIA1"), "{msg}");
    }

    #[test]
    fn malformed_lines_are_reported_by_number() {
        assert_eq!(
            parse_ini(b"[default]\njunk\n").unwrap_err(),
            CredentialsError::MalformedLine { line: 2 }
        );
        assert_eq!(
            parse_ini(b"[default\n").unwrap_err(),
            CredentialsError::MalformedLine { line: 1 }
        );
        assert_eq!(
            parse_ini(b"aws_access_key_id=x\n").unwrap_err(),
            CredentialsError::KeyOutsideSection { line: 1 }
        );
        assert_eq!(
            parse_ini(&[0xff, 0xfe]).unwrap_err(),
            CredentialsError::NotText
        );
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let d = aws_keys(INI.as_bytes(), "default").unwrap();
        assert!(!format!("{d:?}").contains("SECRET1"));
    }

    #[test]
    fn env_file_values_and_quotes() {
        let env = parse_env(b"AZURE_STORAGE_ACCOUNT_ACCESS_KEY=\"a2V5\"\n# c\nexport AZURE_CLOUD_NAME=AzurePublicCloud\r\nX=a=b\n").unwrap();
        assert_eq!(env["AZURE_STORAGE_ACCOUNT_ACCESS_KEY"], "a2V5");
        assert_eq!(env["AZURE_CLOUD_NAME"], "AzurePublicCloud");
        assert_eq!(env["X"], "a=b");
        assert_eq!(
            parse_env(b"K=v\nnot a pair\n").unwrap_err(),
            CredentialsError::MalformedLine { line: 2 }
        );
    }
}
