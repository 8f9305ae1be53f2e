//! One decision in the core, on AdmissionReviews captured from a real API server.
//! `hack/bench/run.sh` reads the estimates and prints `BENCH decision_ns …`.

use std::hint::black_box;

use backup_guard::index::Index;
use backup_guard::policy::{validate, Context, Policy, Request};
use backup_guard::webhook::review::{answer, Webhook};
use criterion::{criterion_group, criterion_main, Criterion};

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{rel}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture exists")
}

fn bench(c: &mut Criterion) {
    let key = b"bench-signing-key-0123456789abcdef";
    let mut index = Index::new();
    let objects = String::from_utf8(fixture("objects/velero-namespace.yaml")).expect("utf-8");
    index.load_text(&objects, key).expect("objects load");
    let policy = Policy::default();
    let ctx = Context {
        policy: &policy,
        index: &index,
        now: 1_795_467_600,
        key,
    };
    let body = fixture("admission/delete-backup-by-user.json");
    let request = Request::from_review_json(&body).expect("decodes");
    let namespace = Request::from_review_json(&fixture("admission/delete-namespace-velero.json"))
        .expect("decodes");

    c.bench_function("decision", |b| {
        b.iter(|| validate(black_box(&request), black_box(&ctx)))
    });
    c.bench_function("decision_namespace", |b| {
        b.iter(|| validate(black_box(&namespace), black_box(&ctx)))
    });
    c.bench_function("review_decode_decide_encode", |b| {
        b.iter(|| {
            let a = answer(black_box(&body), Webhook::Validate, &ctx).expect("answers");
            serde_json::to_vec(&a.review).expect("encodes")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
