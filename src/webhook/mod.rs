//! The webhook's HTTP side: decode, ask the core, encode.

pub mod review;

pub use review::{answer, Answered, Webhook};
