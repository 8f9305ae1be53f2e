//! Tests of `config.rs`.
use super::*;

const CONTRACT_EXAMPLE: &str = r#"
mode: enforce
request:
  ttl: 24h
approval:
  required: false
  approvers: {users: [], groups: [backup-admins]}
hold:
  managers: {users: [], groups: [backup-admins]}
expiry:
  allow: true
velero:
  namespace: velero
  serviceAccount: system:serviceaccount:velero:velero
exempt: {users: [], groups: []}
rules:
- namespaces: [velero-staging]
  selector: {matchLabels: {tier: scratch}}
  mode: audit
snapshots:
  retainContents: true
cleanup:
  engine: native
"#;

#[test]
fn contract_example_is_the_default_plus_its_rule() {
    let p = Policy::parse(CONTRACT_EXAMPLE).expect("contract example parses");
    let expected = Policy {
        rules: p.rules.clone(),
        ..Default::default()
    };
    assert_eq!(p, expected);
    assert_eq!(p.rules.len(), 1);
    assert_eq!(p.request.ttl, Seconds(86_400));
}

#[test]
fn empty_file_is_the_default_policy() {
    assert_eq!(Policy::parse(""), Ok(Policy::default()));
    assert_eq!(Policy::parse("# nothing\n---\n"), Ok(Policy::default()));
}

#[test]
fn unknown_key_names_its_location() {
    let err = Policy::parse("approval:\n  requird: true\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("approval"), "{text}");
    assert!(text.contains("unknown field `requird`"), "{text}");
    assert!(text.contains("line 2"), "{text}");
}

#[test]
fn bad_mode_and_bad_duration_are_errors() {
    let err = Policy::parse("mode: enforced\n").unwrap_err().to_string();
    assert!(err.contains("unknown variant `enforced`"), "{err}");
    let err = Policy::parse("request:\n  ttl: 1d\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("request") && err.contains("invalid duration"),
        "{err}"
    );
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn the_cleanup_engine_is_native_velero_or_auto() {
    for (text, engine) in [
        ("native", Engine::Native),
        ("velero", Engine::Velero),
        ("auto", Engine::Auto),
    ] {
        let p = Policy::parse(&format!("cleanup:\n  engine: {text}\n")).expect(text);
        assert_eq!(p.cleanup.engine, engine);
    }
    let err = Policy::parse("cleanup:\n  engine: kopia\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `kopia`"), "{err}");
    assert!(err.contains("auto"), "the valid values are named: {err}");
}

#[test]
fn required_approval_without_approvers_is_rejected() {
    let err =
        Policy::parse("approval:\n  required: true\n  approvers: {groups: []}\n").unwrap_err();
    assert!(matches!(err, PolicyError::Invalid { ref path, .. } if path == "approval.approvers"));
}

#[test]
fn rules_override_mode_first_match_wins() {
    let p = Policy::parse(CONTRACT_EXAMPLE).expect("parses");
    let scratch = BTreeMap::from([("tier".to_string(), "scratch".to_string())]);
    assert_eq!(p.mode_for("velero-staging", &scratch), Mode::Audit);
    assert_eq!(
        p.mode_for("velero-staging", &BTreeMap::new()),
        Mode::Enforce
    );
    assert_eq!(p.mode_for("velero", &scratch), Mode::Enforce);
}

#[test]
fn selector_expressions_match_like_kubernetes() {
    let p = Policy::parse(
        "rules:\n- selector:\n    matchExpressions:\n    - {key: env, operator: NotIn, values: [prod]}\n  mode: off\n",
    )
    .expect("parses");
    let prod = BTreeMap::from([("env".to_string(), "prod".to_string())]);
    assert_eq!(p.mode_for("x", &prod), Mode::Enforce);
    assert_eq!(p.mode_for("x", &BTreeMap::new()), Mode::Off);
    let bad = Policy::parse("rules:\n- selector:\n    matchExpressions:\n    - {key: env, operator: Exists, values: [a]}\n  mode: off\n");
    assert!(bad.is_err());
}
