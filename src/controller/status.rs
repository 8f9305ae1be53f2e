//! What the guard makes of each backup, for `backup-guard status`: protected, requested,
//! sanctioned, held or cleaning, computed with the webhook's own functions.

use crate::policy::request::Object;
use crate::policy::stamps::{
    is_held, sanction, sign, SanctionFacts, Stamp, CLEANUP_FINALIZER, DELETE_REQUEST, SIGNATURE,
};
use crate::policy::Policy;

/// What the guard makes of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Protected,
    Requested,
    Sanctioned,
    Held,
    Cleaning,
}

impl State {
    /// The word in the STATE column.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Protected => "protected",
            State::Requested => "requested",
            State::Sanctioned => "sanctioned",
            State::Held => "held",
            State::Cleaning => "cleaning",
        }
    }
}

/// One line of `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub namespace: String,
    pub name: String,
    pub state: State,
    pub requested_by: String,
    pub approved_by: String,
    pub expires: String,
}

/// The backup's state under `policy` at `now`, by the webhook's own functions. Without the key,
/// signed stamps are taken at their word (re-signed with a throwaway key) and marked `*`.
pub fn row(backup: &Object, policy: &Policy, key: Option<&[u8]>, now: i64) -> Row {
    let meta = &backup.metadata;
    let facts = match key {
        Some(key) => SanctionFacts::of(meta, key),
        None => {
            let mut trusted = meta.clone();
            if trusted.annotations.contains_key(SIGNATURE) {
                let sig = sign(b"unverified", &trusted);
                trusted.annotations.insert(SIGNATURE.into(), sig);
            }
            SanctionFacts::of(&trusted, b"unverified")
        }
    };
    let mark = if key.is_none() { "*" } else { "" };
    let verdict = sanction(&facts, policy, now);
    let state = if is_held(meta) {
        State::Held
    } else if meta.finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
        State::Cleaning
    } else if verdict.is_ok() {
        State::Sanctioned
    } else if backup.annotation(DELETE_REQUEST).is_some() {
        State::Requested
    } else {
        State::Protected
    };
    let by = |s: &Option<Stamp>| {
        s.as_ref()
            .map_or_else(|| "-".to_string(), |s| format!("{}{mark}", s.by))
    };
    let oldest = [&facts.request, &facts.approval]
        .into_iter()
        .flatten()
        .map(|s| s.at)
        .min();
    Row {
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        state,
        requested_by: by(&facts.request),
        approved_by: by(&facts.approval),
        expires: oldest.map_or_else(|| "-".into(), |at| until(at + policy.request.ttl.0 - now)),
    }
}

/// `23h5m`, `12m`, or `stale` once past.
fn until(secs: i64) -> String {
    if secs <= 0 {
        return "stale".into();
    }
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{}m", m.max(1)),
        (0, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// The table, with NAMESPACE first when listing every namespace.
pub fn table(rows: &[Row], all: bool) -> String {
    let mut lines: Vec<Vec<&str>> = vec![];
    let head = [
        "NAMESPACE",
        "NAME",
        "STATE",
        "REQUESTED-BY",
        "APPROVED-BY",
        "EXPIRES",
    ];
    lines.push(head.to_vec());
    for r in rows {
        lines.push(vec![
            &r.namespace,
            &r.name,
            r.state.as_str(),
            &r.requested_by,
            &r.approved_by,
            &r.expires,
        ]);
    }
    let skip = usize::from(!all);
    let widths: Vec<usize> = (0..head.len())
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = (skip..head.len())
            .map(|i| format!("{:w$}", line[i], w = widths[i]))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::request::Meta;
    use crate::policy::stamps::{
        APPROVED_AT, APPROVED_BY, DELETE_APPROVAL, HOLD, REQUESTED_AT, REQUESTED_BY,
    };

    const KEY: &[u8] = b"a signing key of 32 bytes length";
    const AT: i64 = 1_795_000_000; // the stamps' time

    fn backup(annotations: &[(&str, &str)], signed: bool) -> Object {
        let mut meta = Meta {
            name: "daily-1".into(),
            namespace: "velero".into(),
            uid: "uid-1".into(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        if signed {
            let sig = sign(KEY, &meta);
            meta.annotations.insert(SIGNATURE.into(), sig);
        }
        Object {
            metadata: meta,
            ..Default::default()
        }
    }

    fn ts(secs: i64) -> String {
        jiff::Timestamp::from_second(secs)
            .expect("valid")
            .to_string()
    }

    fn requested() -> Vec<(&'static str, String)> {
        vec![
            (DELETE_REQUEST, "obsolete".into()),
            (REQUESTED_BY, "alice".into()),
            (REQUESTED_AT, ts(AT)),
        ]
    }

    fn make(pairs: &[(&'static str, String)], signed: bool) -> Object {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        backup(&refs, signed)
    }

    #[test]
    fn a_backup_without_words_is_protected() {
        let r = row(&backup(&[], false), &Policy::default(), Some(KEY), AT);
        assert_eq!(
            (r.state, r.requested_by.as_str(), r.expires.as_str()),
            (State::Protected, "-", "-")
        );
    }

    #[test]
    fn a_signed_request_is_sanctioned_until_it_goes_stale() {
        let b = make(&requested(), true);
        let r = row(&b, &Policy::default(), Some(KEY), AT + 3600);
        assert_eq!(r.state, State::Sanctioned);
        assert_eq!(r.requested_by, "alice");
        assert_eq!(r.expires, "23h0m");
        let r = row(&b, &Policy::default(), Some(KEY), AT + 86_401);
        assert_eq!((r.state, r.expires.as_str()), (State::Requested, "stale"));
    }

    #[test]
    fn forged_stamps_are_only_requested_and_unverified_ones_are_marked() {
        let forged = make(&requested(), false);
        let r = row(&forged, &Policy::default(), Some(KEY), AT);
        assert_eq!((r.state, r.requested_by.as_str()), (State::Requested, "-"));
        let signed = make(&requested(), true);
        let r = row(&signed, &Policy::default(), None, AT);
        assert_eq!(
            (r.state, r.requested_by.as_str()),
            (State::Sanctioned, "alice*")
        );
    }

    #[test]
    fn approval_holds_and_cleanup_show_in_that_order() {
        let mut policy = Policy::default();
        policy.approval.required = true;
        let r = row(&make(&requested(), true), &policy, Some(KEY), AT);
        assert_eq!(r.state, State::Requested);
        let mut pairs = requested();
        pairs.extend([
            (DELETE_APPROVAL, "ok".to_string()),
            (APPROVED_BY, "bob".to_string()),
            (APPROVED_AT, ts(AT + 60)),
        ]);
        let mut b = make(&pairs, true);
        let r = row(&b, &policy, Some(KEY), AT + 120);
        assert_eq!(
            (r.state, r.approved_by.as_str()),
            (State::Sanctioned, "bob")
        );
        b.metadata.finalizers.push(CLEANUP_FINALIZER.into());
        assert_eq!(row(&b, &policy, Some(KEY), AT).state, State::Cleaning);
        b.metadata.labels.insert(HOLD.into(), "true".into());
        assert_eq!(row(&b, &policy, Some(KEY), AT).state, State::Held);
    }

    #[test]
    fn the_table_aligns_columns_and_names_namespaces_only_with_all() {
        let r = row(&make(&requested(), true), &Policy::default(), Some(KEY), AT);
        let text = table(std::slice::from_ref(&r), false);
        assert_eq!(
            text,
            "NAME      STATE        REQUESTED-BY   APPROVED-BY   EXPIRES\n\
             daily-1   sanctioned   alice          -             1d0h\n"
        );
        assert!(table(&[r], true).starts_with("NAMESPACE   NAME"));
    }
}
