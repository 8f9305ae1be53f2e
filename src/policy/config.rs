//! The policy file (`policy.yaml` in ConfigMap `backup-guard-policy`): schema, defaults, validation.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

use super::duration::parse_go_duration;

/// A policy that cannot take effect, with where in the file it went wrong.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PolicyError {
    /// YAML syntax, unknown keys, wrong types, bad durations or modes (serde names the path and line).
    #[error("{0}")]
    Syntax(String),
    /// A value that parses but cannot work.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// What the webhook does with an unsanctioned deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny, with the command that would sanction it.
    #[default]
    Enforce,
    /// Let the shadow go, keep the record: close every path that touches storage.
    Neuter,
    /// Allow everything; report what enforce would deny.
    Audit,
    /// Allow everything; record nothing.
    Off,
}

impl Mode {
    /// The name users write in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Neuter => "neuter",
            Mode::Audit => "audit",
            Mode::Off => "off",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A length of time written in Go syntax (`24h`), held in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub i64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_go_duration(&text)
            .map(Seconds)
            .map_err(serde::de::Error::custom)
    }
}

/// Users and groups named in the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Subjects {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl Subjects {
    /// Whether the user, or one of its groups, is named here.
    pub fn contains(&self, user: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u == user) || groups.iter().any(|g| self.groups.contains(g))
    }

    /// Whether nobody is named.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }
}

/// `request:` — how long a delete request stays valid.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestPolicy {
    pub ttl: Seconds,
}

impl Default for RequestPolicy {
    fn default() -> Self {
        Self {
            ttl: Seconds(24 * 3600),
        }
    }
}

/// `approval:` — the two-person rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalPolicy {
    pub required: bool,
    pub approvers: Subjects,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            required: false,
            approvers: backup_admins(),
        }
    }
}

/// `hold:` — who may release a legal hold.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoldPolicy {
    pub managers: Subjects,
}

impl Default for HoldPolicy {
    fn default() -> Self {
        Self {
            managers: backup_admins(),
        }
    }
}

fn backup_admins() -> Subjects {
    Subjects {
        users: vec![],
        groups: vec!["backup-admins".into()],
    }
}

/// `expiry:` — whether Velero's TTL collector may delete expired backups.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpiryPolicy {
    pub allow: bool,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self { allow: true }
    }
}

/// `velero:` — where Velero runs and as whom.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct VeleroPolicy {
    pub namespace: String,
    pub service_account: String,
}

impl Default for VeleroPolicy {
    fn default() -> Self {
        Self {
            namespace: "velero".into(),
            service_account: "system:serviceaccount:velero:velero".into(),
        }
    }
}

/// A Kubernetes label selector (`matchLabels`, `matchExpressions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: SelectorOperator,
    #[serde(default)]
    pub values: Vec<String>,
}

/// Operators of a label selector requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// Whether the labels satisfy every term.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator {
                    SelectorOperator::In => value.is_some_and(|v| r.values.contains(v)),
                    SelectorOperator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                    SelectorOperator::Exists => value.is_some(),
                    SelectorOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}

/// `rules[]` — a mode override for some namespaces and/or labels.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub selector: Option<Selector>,
    pub mode: Mode,
}

impl Rule {
    /// Whether an object in `namespace` with `labels` falls under this rule.
    pub fn applies(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace))
            && self.selector.as_ref().is_none_or(|s| s.matches(labels))
    }
}

/// `snapshots:` — CSI snapshot handling.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SnapshotPolicy {
    pub retain_contents: bool,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            retain_contents: true,
        }
    }
}

/// How the controller performs a sanctioned cleanup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The controller deletes files and snapshots itself.
    #[default]
    Native,
    /// The controller files a DeleteBackupRequest and follows it.
    Velero,
    /// Per backup: `velero` for a backup holding what only Velero can delete (volume snapshots
    /// taken by its snapshotter plugins, file-system backups, data moved by its data mover),
    /// `native` for the rest.
    Auto,
}

/// `cleanup:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanupPolicy {
    pub engine: Engine,
}

/// The whole policy; every key optional, defaults as in the contract.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub mode: Mode,
    pub request: RequestPolicy,
    pub approval: ApprovalPolicy,
    pub hold: HoldPolicy,
    pub expiry: ExpiryPolicy,
    pub velero: VeleroPolicy,
    pub exempt: Subjects,
    pub rules: Vec<Rule>,
    pub snapshots: SnapshotPolicy,
    pub cleanup: CleanupPolicy,
}

impl Policy {
    /// In force while the configured policy is invalid and no valid one was seen since start:
    /// the default policy with nothing sanctionable, so no path to storage opens on a guess —
    /// `enforce`, approval required from nobody (no request sanctions anything), no deletions by
    /// Velero's TTL collector, no hold managers (no hold is released), nobody exempt, no rules.
    pub fn lockdown() -> Policy {
        Policy {
            mode: Mode::Enforce,
            approval: ApprovalPolicy {
                required: true,
                approvers: Subjects::default(),
            },
            hold: HoldPolicy {
                managers: Subjects::default(),
            },
            expiry: ExpiryPolicy { allow: false },
            exempt: Subjects::default(),
            rules: vec![],
            ..Policy::default()
        }
    }

    /// Parses and validates a policy file; an empty file is the default policy.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let blank = text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        });
        if blank {
            return Ok(Policy::default());
        }
        let policy: Policy =
            serde_yaml::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |path: &str, message: &str| {
            Err(PolicyError::Invalid {
                path: path.into(),
                message: message.into(),
            })
        };
        if self.request.ttl.0 <= 0 {
            return invalid("request.ttl", "must be longer than zero");
        }
        if self.approval.required && self.approval.approvers.is_empty() {
            return invalid(
                "approval.approvers",
                "approval.required is true but no users or groups may approve; name at least one",
            );
        }
        if !self
            .velero
            .service_account
            .starts_with("system:serviceaccount:")
        {
            return invalid(
                "velero.serviceAccount",
                "must be a service account username, system:serviceaccount:<namespace>:<name>",
            );
        }
        if self.velero.namespace.is_empty() {
            return invalid("velero.namespace", "must not be empty");
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.namespaces.is_empty() && rule.selector.is_none() {
                return invalid(
                    &format!("rules[{i}]"),
                    "names neither namespaces nor a selector; set mode at the top level instead",
                );
            }
            for (j, req) in rule
                .selector
                .iter()
                .flat_map(|s| s.match_expressions.iter())
                .enumerate()
            {
                let needs_values =
                    matches!(req.operator, SelectorOperator::In | SelectorOperator::NotIn);
                if needs_values == req.values.is_empty() {
                    return invalid(
                        &format!("rules[{i}].selector.matchExpressions[{j}]"),
                        "In and NotIn need values; Exists and DoesNotExist take none",
                    );
                }
            }
        }
        Ok(())
    }

    /// The mode for an object, after per-namespace / per-label overrides (first match wins).
    pub fn mode_for(&self, namespace: &str, labels: &BTreeMap<String, String>) -> Mode {
        self.rules
            .iter()
            .find(|r| r.applies(namespace, labels))
            .map_or(self.mode, |r| r.mode)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
