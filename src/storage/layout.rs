//! Velero's object-storage layout in one place, and the one rule deciding which keys may go.
//!
//! `<prefix>/` holds `backups/ restores/ kopia/ restic/ metadata/ plugins/`
//! (`pkg/persistence/object_store_layout.go`). A cleanup may only ever remove
//! keys under `<prefix>/backups/<backup>/` or `<prefix>/restores/<restore>/`.

use object_store::path::Path;
use thiserror::Error;

/// Why a prefix or an object name cannot be turned into a deletion scope.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LayoutError {
    /// The backup or restore name is not a Kubernetes object name.
    #[error(
        "{kind} name {name:?} is not a valid Kubernetes object name (lowercase letters, digits, \
         '-' and '.', starting and ending with a letter or digit, at most 253 characters); \
         refusing to compute a storage prefix for it"
    )]
    InvalidName {
        /// `backup` or `restore`.
        kind: &'static str,
        /// The rejected name.
        name: String,
    },
    /// The BackupStorageLocation prefix has an empty, `.` or `..` segment or needs escaping.
    #[error(
        "spec.objectStorage.prefix {prefix:?} is not a plain object path ({reason}); \
         fix the BackupStorageLocation's prefix"
    )]
    InvalidPrefix {
        /// The rejected prefix.
        prefix: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// What a cleanup is allowed to remove: one backup's or one restore's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    kind: ScopeKind,
    name: String,
    dir: String,
}

/// Which Velero directory a [`Scope`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    /// `<prefix>/backups/<name>/`
    Backup,
    /// `<prefix>/restores/<name>/`
    Restore,
}

impl ScopeKind {
    fn label(self) -> &'static str {
        match self {
            ScopeKind::Backup => "backup",
            ScopeKind::Restore => "restore",
        }
    }

    fn dir_name(self) -> &'static str {
        match self {
            ScopeKind::Backup => "backups",
            ScopeKind::Restore => "restores",
        }
    }
}

impl Scope {
    /// The files of backup `name` under the location prefix `prefix`.
    pub fn backup(prefix: &str, name: &str) -> Result<Self, LayoutError> {
        Self::new(ScopeKind::Backup, prefix, name)
    }

    /// The files of restore `name` under the location prefix `prefix`.
    pub fn restore(prefix: &str, name: &str) -> Result<Self, LayoutError> {
        Self::new(ScopeKind::Restore, prefix, name)
    }

    fn new(kind: ScopeKind, prefix: &str, name: &str) -> Result<Self, LayoutError> {
        let prefix = normalize_prefix(prefix)?;
        if !is_object_name(name) {
            return Err(LayoutError::InvalidName {
                kind: kind.label(),
                name: name.to_string(),
            });
        }
        let dir = format!("{}{}/{name}/", join_base(&prefix), kind.dir_name());
        Ok(Self {
            kind,
            name: name.to_string(),
            dir,
        })
    }

    /// Backup or restore.
    pub fn kind(&self) -> ScopeKind {
        self.kind
    }

    /// The backup or restore name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory, with a trailing `/` and no leading `/`, e.g. `cluster-a/backups/daily-1/`.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The directory as an object-store path to list (object_store adds the trailing `/`).
    pub fn list_path(&self) -> Path {
        Path::from_iter(self.dir.split('/').filter(|s| !s.is_empty()))
    }
}

/// `<prefix>/backups/<name>/`, without a leading `/` when the prefix is empty.
pub fn backup_prefix(prefix: &str, name: &str) -> Result<String, LayoutError> {
    Scope::backup(prefix, name).map(|s| s.dir)
}

/// `<prefix>/restores/<name>/`, without a leading `/` when the prefix is empty.
pub fn restore_prefix(prefix: &str, name: &str) -> Result<String, LayoutError> {
    Scope::restore(prefix, name).map(|s| s.dir)
}

/// The only gate for deletion: true iff `key` is a file inside the scope's own directory.
pub fn may_delete(scope: &Scope, key: &Path) -> bool {
    let Some(rest) = key.as_ref().strip_prefix(scope.dir.as_str()) else {
        return false;
    };
    !rest.is_empty()
        && rest
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// Strip the slashes Velero tolerates around a prefix and reject anything that is not a plain path.
pub fn normalize_prefix(prefix: &str) -> Result<String, LayoutError> {
    let trimmed = prefix.trim_matches('/');
    let bad = |reason| LayoutError::InvalidPrefix {
        prefix: prefix.to_string(),
        reason,
    };
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for seg in trimmed.split('/') {
        match seg {
            "" => return Err(bad("empty segment")),
            "." | ".." => return Err(bad("'.' or '..' segment")),
            _ => {}
        }
    }
    // Path::from escapes what object_store cannot carry verbatim; a prefix must survive unchanged.
    if Path::from(trimmed).as_ref() != trimmed {
        return Err(bad("characters that object stores escape"));
    }
    Ok(trimmed.to_string())
}

/// `prefix/` or the empty string.
fn join_base(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

/// A Kubernetes DNS-1123 subdomain: what Backup and Restore names must be.
fn is_object_name(name: &str) -> bool {
    name.len() <= 253 && !name.is_empty() && name.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
