//! backup-guard: an admission webhook and controller that make every destruction of Velero
//! backup data explicit.

pub mod index;
pub mod policy;
pub mod cli;
pub mod webhook;
