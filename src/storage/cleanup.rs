//! Delete one backup's or one restore's files: list all first, check every key, then bulk delete.

use std::borrow::Cow;

use futures::{stream, StreamExt};
use object_store::path::Path;
use thiserror::Error;

use super::layout::{may_delete, LayoutError, Scope};
use super::location::{Identity, Location};

/// What a cleanup removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Keys that are gone now (deleted by us, or already gone when deleted).
    pub keys: usize,
}

/// Why a cleanup failed.
#[derive(Debug, Error)]
pub enum CleanupError {
    /// The name or the location's prefix cannot form a scope.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Listing the directory failed; nothing was deleted.
    #[error("listing {dir} in bucket {bucket:?} failed, nothing was deleted; {hint}: {source}")]
    List {
        /// The bucket.
        bucket: String,
        /// What to do about it.
        hint: Cow<'static, str>,
        /// The directory listed.
        dir: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The listing returned a key outside the scope; nothing was deleted.
    #[error(
        "the store listed {key:?} for {dir}, which is outside that directory; refusing to delete \
         anything (is the bucket's listing broken?)"
    )]
    OutsideScope {
        /// The directory listed.
        dir: String,
        /// The foreign key.
        key: String,
    },
    /// Some deletions failed; the others went through and a retry resumes.
    #[error(
        "deleting under {dir} in bucket {bucket:?}: {failed} of {listed} keys failed ({deleted} \
         deleted); {hint}, then retry the cleanup to resume: {source}"
    )]
    Delete {
        /// The bucket.
        bucket: String,
        /// What to do about it.
        hint: Cow<'static, str>,
        /// The directory.
        dir: String,
        /// Keys listed.
        listed: usize,
        /// Keys deleted.
        deleted: usize,
        /// Keys that failed.
        failed: usize,
        /// The first failure.
        #[source]
        source: Box<object_store::Error>,
    },
}

/// One scope's keys, listed completely and each accepted by [`may_delete`]: the only thing
/// [`delete_keys`] deletes, so a caller may look again (at a hold, say) between the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    scope: Scope,
    keys: Vec<Path>,
}

impl Listing {
    /// The keys that would be deleted.
    pub fn keys(&self) -> &[Path] {
        &self.keys
    }

    /// True when there is nothing to delete.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Delete every key under `<prefix>/backups/<backup>/`.
pub async fn delete_backup_files(
    location: &Location,
    backup: &str,
) -> Result<Deleted, CleanupError> {
    delete_keys(location, list_backup_files(location, backup).await?).await
}

/// Delete every key under `<prefix>/restores/<restore>/`.
pub async fn delete_restore_files(
    location: &Location,
    restore: &str,
) -> Result<Deleted, CleanupError> {
    delete_keys(location, list_restore_files(location, restore).await?).await
}

/// List every key under `<prefix>/backups/<backup>/`, for [`delete_keys`]; deletes nothing.
pub async fn list_backup_files(location: &Location, backup: &str) -> Result<Listing, CleanupError> {
    list_scope(location, &Scope::backup(&location.prefix, backup)?).await
}

/// List every key under `<prefix>/restores/<restore>/`, for [`delete_keys`]; deletes nothing.
pub async fn list_restore_files(
    location: &Location,
    restore: &str,
) -> Result<Listing, CleanupError> {
    list_scope(location, &Scope::restore(&location.prefix, restore)?).await
}

/// List the scope's directory completely, check each key with [`may_delete`], then delete in bulk.
pub async fn delete_scope(location: &Location, scope: &Scope) -> Result<Deleted, CleanupError> {
    delete_keys(location, list_scope(location, scope).await?).await
}

/// List the scope's directory completely and check each key with [`may_delete`]; deletes nothing.
pub async fn list_scope(location: &Location, scope: &Scope) -> Result<Listing, CleanupError> {
    let keys = plan_deletion(scope, list_keys(location, scope).await?)?;
    Ok(Listing {
        scope: scope.clone(),
        keys,
    })
}

/// Accept a complete listing only if every key passes [`may_delete`]; one foreign key rejects all.
///
/// A folder marker (the key `<dir>/` itself, which object_store lists without its slash) is
/// dropped: it holds no data and object_store cannot address it.
pub fn plan_deletion(scope: &Scope, listed: Vec<Path>) -> Result<Vec<Path>, CleanupError> {
    let marker = scope.list_path();
    let keys: Vec<Path> = listed.into_iter().filter(|k| *k != marker).collect();
    match keys.iter().find(|k| !may_delete(scope, k)) {
        Some(foreign) => Err(CleanupError::OutsideScope {
            dir: scope.dir().into(),
            key: foreign.to_string(),
        }),
        None => Ok(keys),
    }
}

/// Lists the scope level by level (`/`-delimited), descending into every sub-"directory":
/// one request for Velero's flat backup directory, whatever else the bucket holds. A recursive
/// prefixed listing asks for the same keys, but a filesystem-backed server (s3s-fs, and S3
/// gateways over a filesystem) answers it by walking the whole bucket, so cleaning N backups cost
/// it O(N × bucket) (docs/performance.md); a delimited listing reads one directory.
async fn list_keys(location: &Location, scope: &Scope) -> Result<Vec<Path>, CleanupError> {
    let fail = |source: object_store::Error| CleanupError::List {
        bucket: location.bucket.clone(),
        dir: scope.dir().into(),
        hint: hint(&source, location),
        source: Box::new(source),
    };
    // Credentials first: not getting them is told apart from the store refusing them.
    if let Some(identity) = &location.identity {
        identity
            .check()
            .await
            .map_err(|source| CleanupError::List {
                bucket: location.bucket.clone(),
                dir: scope.dir().into(),
                hint: identity_hint(identity).into(),
                source: Box::new(source),
            })?;
    }
    let mut keys = Vec::new();
    let mut dirs = vec![scope.list_path()];
    while let Some(dir) = dirs.pop() {
        // No NotFound shortcut: an absent prefix lists as empty, so NotFound means the bucket is
        // gone or misnamed, and reporting success then would leave the data behind.
        let level = location
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(fail)?;
        keys.extend(level.objects.into_iter().map(|meta| meta.location));
        // Only deeper levels: a server answering with the directory itself must not loop us.
        dirs.extend(
            level
                .common_prefixes
                .into_iter()
                .filter(|p| p.as_ref().len() > dir.as_ref().len() && p.prefix_matches(&dir)),
        );
    }
    Ok(keys)
}

/// What to do about a failed request, from the error's kind or the HTTP status in its text.
fn hint(err: &object_store::Error, location: &Location) -> Cow<'static, str> {
    use object_store::Error as E;
    let text = err.to_string();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    let rejected = matches!(err, E::PermissionDenied { .. } | E::Unauthenticated { .. })
        || has(&["401 Unauthorized", "403 Forbidden"]);
    if let (true, Some(identity)) = (rejected, &location.identity) {
        return format!(
            "the store rejected the controller's own AWS identity ({}, --ambient-credentials): \
             allow its role to list and delete in the bucket, or give the location a credentials \
             Secret",
            identity.source
        )
        .into();
    }
    if let Some(key) = unaddressable_key(err) {
        return format!(
            "the store holds {key:?} (or keys under it), which is not a key object_store can \
             address (an empty, \".\" or \"..\" segment, or a control character), so it can be \
             neither checked nor deleted: remove it by hand with the provider's own tool (aws s3 \
             rm, az storage blob delete, gcloud storage rm), then retry the cleanup"
        )
        .into();
    }
    let hint = match err {
        _ if rejected => CREDENTIALS_HINT,
        E::NotFound { .. } => BUCKET_HINT,
        _ if has(&["404 Not Found", "NoSuchBucket", "ContainerNotFound"]) => BUCKET_HINT,
        _ if has(&["error sending request", "timed out", "dns error", "connect"]) => {
            "the endpoint cannot be reached: check s3Url / storageAccountURI / gcs_base_url, DNS and network policy"
        }
        _ => "check the endpoint, the credentials and that the bucket exists",
    };
    hint.into()
}

/// The key (or "directory" prefix) a listing returned that object_store cannot parse into a path.
fn unaddressable_key(err: &object_store::Error) -> Option<&str> {
    use object_store::path::Error as P;
    use object_store::Error::InvalidPath;
    match err {
        InvalidPath {
            source:
                P::EmptySegment { path } | P::BadSegment { path, .. } | P::NonUnicode { path, .. },
        } => Some(path),
        _ => None,
    }
}

/// What to do when the controller's own identity cannot be obtained.
fn identity_hint(identity: &Identity) -> String {
    format!(
        "the controller could not get its own AWS identity ({}, --ambient-credentials): check the \
         ServiceAccount's eks.amazonaws.com/role-arn annotation, the pod identity association or \
         the node's instance role, and that the pod reaches STS or the credentials endpoint; or \
         give the location a credentials Secret",
        identity.source
    )
}

const CREDENTIALS_HINT: &str = "the store rejected the credentials: fix the Secret named by \
    spec.credential (default cloud-credentials, key cloud) or the account's permissions";
const BUCKET_HINT: &str =
    "the bucket or container does not exist: check spec.objectStorage.bucket and the endpoint";

/// Delete exactly the keys of `listing`, in bulk (no request when there are none); a key already
/// gone counts as deleted. Only [`list_scope`] makes a [`Listing`], so every key here passed
/// [`may_delete`].
pub async fn delete_keys(location: &Location, listing: Listing) -> Result<Deleted, CleanupError> {
    let Listing { scope, keys } = listing;
    if keys.is_empty() {
        return Ok(Deleted::default());
    }
    let listed = keys.len();
    let results: Vec<object_store::Result<Path>> = location
        .store
        .delete_stream(stream::iter(keys.into_iter().map(Ok)).boxed())
        .collect()
        .await;
    let mut deleted = 0;
    let mut first_error = None;
    for result in results {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
            // One error may stand for a whole failed batch, so failures are counted from `deleted`.
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(Deleted { keys: deleted }),
        Some(source) => Err(CleanupError::Delete {
            bucket: location.bucket.clone(),
            dir: scope.dir().into(),
            listed,
            deleted,
            failed: listed.saturating_sub(deleted),
            hint: hint(&source, location),
            source: Box::new(source),
        }),
    }
}

#[cfg(test)]
#[path = "cleanup_tests.rs"]
mod tests;
