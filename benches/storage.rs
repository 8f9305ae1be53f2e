//! Storage figures for `make bench`, against a real local S3 server (s3s-fs, from
//! `hack/storage/install.sh`), through the project's own cleanup (`storage::delete_backup_files`):
//!
//! - `s3_requests_per_backup`: requests sent to clean one Velero backup (12 files), counted by
//!   the same connector as tests/storage_backends.rs.
//! - `cleanup_10k_backups_s`: the storage phase of cleaning N sanctioned backups (12 files each,
//!   written straight into s3s-fs's data directory), as many at once as the controller's default
//!   concurrency (4). `BG_BENCH_BACKUPS` sets N (default 10000); the scale is printed.
//!
//! Run by hack/bench/run.sh: `cargo bench --bench storage`.

#[path = "../tests/support/storage_backend.rs"]
mod storage_backend;
#[path = "../tests/support/storage_http.rs"]
mod storage_http;
#[path = "../tests/support/storage_scenario.rs"]
mod storage_scenario;
#[path = "../tests/support/storage_servers.rs"]
mod storage_servers;

use std::time::Instant;

use backup_guard::storage::delete_backup_files;
use futures::{stream, StreamExt};
use storage_backend::*;
use storage_scenario::*;
use storage_servers::*;

/// The controller's default `--concurrency`.
const CONCURRENCY: usize = 4;

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let backups: usize = std::env::var("BG_BENCH_BACKUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        requests_per_backup().await;
        cleanup_many(backups).await;
    });
}

async fn requests_per_backup() {
    let b = s3s_fs_backend(&velero_layout()).await;
    b.counter.take();
    let deleted = delete_backup_files(&b.loc, "daily-1")
        .await
        .expect("delete daily-1");
    assert_eq!(deleted.keys, 12, "daily-1 has Velero's 12 files");
    let seen = b.counter.take();
    eprintln!("s3s-fs, one backup: {seen:?}");
    println!("BENCH s3_requests_per_backup {} requests", seen.len());
}

async fn cleanup_many(n: usize) {
    let names: Vec<String> = (0..n).map(|i| format!("nightly-{i:06}")).collect();
    let server = s3s_fs(BUCKET);
    let data = server.dir.path().join("data");
    let seeded = Instant::now();
    let mut objects = Objects::new();
    for name in &names {
        for key in backup_files(PREFIX, name) {
            objects.insert(key, b"velero".to_vec());
        }
    }
    // Straight onto s3s-fs's disk: 12 x N uploads would time the seeding, not the cleanup.
    seed_dir(&data, BUCKET, &objects);
    eprintln!(
        "seeded {} keys for {n} backups in {:?}",
        objects.len(),
        seeded.elapsed()
    );
    let b = Backend::new(
        "s3s-fs",
        aws_spec(&server.url()),
        Some(aws_creds(S3_KEY, S3_SECRET)),
        Some(server),
        None,
    )
    .await;
    b.counter.take();
    let started = Instant::now();
    let keys: usize = stream::iter(&names)
        .map(|name| {
            let loc = &b.loc;
            async move {
                delete_backup_files(loc, name)
                    .await
                    .unwrap_or_else(|e| panic!("cleaning {name}: {e}"))
                    .keys
            }
        })
        .buffer_unordered(CONCURRENCY)
        .fold(0, |sum, k| async move { sum + k })
        .await;
    let took = started.elapsed().as_secs_f64();
    let requests = b.counter.take().len();
    assert_eq!(keys, 12 * n, "every seeded key deleted");
    println!("BENCH_INFO cleanup_scale {n} backups ({keys} keys, {requests} requests, {CONCURRENCY} at once)");
    println!("BENCH cleanup_10k_backups_s {took:.1} s");
}
