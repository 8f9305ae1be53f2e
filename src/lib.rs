//! backup-guard: an admission webhook and controller that make every destruction of Velero
//! backup data explicit.

pub mod cli;
pub mod controller;
pub mod index;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod server;
pub mod storage;
pub mod tls;
pub mod webhook;

/// mimalloc for every binary built on this crate — `backup-guard`, `bg-bench` (so the servers the
/// bench measures are the guard's), the benches and tests: a guarded request allocates a few dozen
/// small strings and maps; glibc's malloc and free were a seventh of its instructions, mimalloc's
/// are a third of that (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
