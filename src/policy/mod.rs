//! The decision core: pure functions from a request, a policy, an index snapshot, `now` and the
//! signing key to a [`Decision`]. No I/O, no clock, no async.

pub mod config;
pub mod decision;
pub mod deletion;
pub mod duration;
pub mod expiry;
pub mod extension;
pub mod locations;
pub mod messages;
pub mod modes;
pub mod mutate;
pub mod request;
pub mod rules;
pub mod snapshots;
pub mod stamps;
pub mod words;

pub use config::{Mode, Policy, PolicyError};
pub use decision::{Actor, Class, Context, Decision, Outcome, Reason, NAMESPACE_CONTROLLER};
pub use mutate::mutate;
pub use request::{DecodeError, Object, Operation, Request, Resource};
pub use rules::validate;
