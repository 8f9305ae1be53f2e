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
