//! Every guarded path of the contract, decided from AdmissionReviews captured from a real
//! kube-apiserver 1.20.2 (tests/fixtures/admission/README.md says how each was made).

#[path = "../support/mod.rs"]
mod support;

mod deletions;
mod extended;
mod holds;
mod locations;
mod sanctions;
mod scope;
mod tampering;

use backup_guard::policy::{Mode, Policy};
use support::fixtures::policy;

const MODES: [Mode; 4] = [Mode::Enforce, Mode::Neuter, Mode::Audit, Mode::Off];

fn in_mode(mode: Mode) -> Policy {
    policy(&format!("mode: {mode}\n"))
}
