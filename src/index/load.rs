//! Reading objects as `kubectl get -o yaml|json` prints them (a List, or single objects, one
//! or more YAML documents) to seed an index.

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use super::Index;
use crate::policy::request::{Object, Resource};

/// Objects text that cannot be read.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("not YAML or JSON: {0}")]
    Syntax(#[from] serde_yaml::Error),
    #[error("item {index}: {source}")]
    Object {
        index: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("item {0}: not a Kubernetes object (no apiVersion/kind)")]
    NotAnObject(usize),
}

/// Every object in the text, flattened out of Lists, with its resource.
pub fn objects_from_text(text: &str) -> Result<Vec<(Resource, Object)>, LoadError> {
    let mut values = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)?;
        flatten(value, &mut values);
    }
    let mut out = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        let (Some(api_version), Some(kind)) = (
            value.get("apiVersion").and_then(Value::as_str),
            value.get("kind").and_then(Value::as_str),
        ) else {
            return Err(LoadError::NotAnObject(index));
        };
        let resource = Resource::from_api_version_kind(api_version, kind);
        let object =
            serde_json::from_value(value).map_err(|source| LoadError::Object { index, source })?;
        out.push((resource, object));
    }
    Ok(out)
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Null => {}
        Value::Object(mut map)
            if map
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List")) =>
        {
            if let Some(Value::Array(items)) = map.remove("items") {
                for item in items {
                    flatten(item, out);
                }
            }
        }
        other => out.push(other),
    }
}

impl Index {
    /// Applies every object of `text` (see [`objects_from_text`]).
    pub fn load_text(&mut self, text: &str, key: &[u8]) -> Result<usize, LoadError> {
        let objects = objects_from_text(text)?;
        for (resource, object) in &objects {
            self.apply(*resource, object, key);
        }
        Ok(objects.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_and_multiple_documents() {
        let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: velero.io/v1
  kind: Backup
  metadata: {name: a, namespace: velero}
  spec: {storageLocation: default}
---
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: default, namespace: velero}
"#;
        let mut idx = Index::new();
        assert_eq!(idx.load_text(text, b"k").expect("loads"), 2);
        assert_eq!(idx.count(Resource::Backup), 1);
        assert_eq!(idx.count(Resource::BackupStorageLocation), 1);
        assert_eq!(idx.backups_at_location("velero", "default"), 1);
    }

    #[test]
    fn json_and_garbage() {
        let mut idx = Index::new();
        let json = r#"{"apiVersion":"velero.io/v1","kind":"Backup","metadata":{"name":"b","namespace":"velero"}}"#;
        assert_eq!(idx.load_text(json, b"k").expect("loads"), 1);
        assert!(idx.load_text("{{{", b"k").is_err());
        assert!(idx.load_text("- 1\n- 2\n", b"k").is_err());
    }
}
