//! The cleanup controller against a real API server (`$KUBECONFIG`, required) and real storage:
//! the `file` provider in a temporary directory, and s3s-fs for credentials.
//! Run: `cargo test --features e2e --test controller_cluster` on a cluster without the guard's
//! webhook (this suite signs the stamps itself, as the webhook would).

mod auto;
mod engines;
mod fixtures;
mod harness;
mod lease;
mod native;
mod policy;
mod refusals;
mod storage_hook;
#[path = "../support/storage_scenario.rs"]
mod storage_scenario;
#[path = "../support/storage_servers.rs"]
mod storage_servers;
mod velero;
