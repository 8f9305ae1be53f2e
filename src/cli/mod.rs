//! The command line: one binary, `backup-guard` (also usable as `kubectl backup-guard`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod admin;
mod controller;
mod offline;
pub mod serve;

/// backup-guard: make every destruction of Velero backup data explicit.
#[derive(Debug, Parser)]
#[command(name = "backup-guard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate one AdmissionReview offline, as the webhook would, and print the response.
    Review(ReviewArgs),
    /// Serve the admission webhook (HTTPS /validate and /mutate; metrics, /livez, /readyz).
    Webhook(serve::ServeArgs),
    /// Create a CA and a serving certificate (ca.crt, tls.crt, tls.key).
    Certs(serve::CertsArgs),
    /// Clean up sanctioned backups (leader-elected; metrics and probes on --metrics-listen).
    Controller(controller::ControllerArgs),
    /// Run the webhook and the controller in one process.
    Run(controller::ControllerArgs),
    /// Ask for a backup's deletion (sets backup-guard.io/delete-request; the webhook stamps it).
    RequestDelete(admin::RequestDeleteArgs),
    /// Approve a requested deletion (sets backup-guard.io/delete-approval).
    Approve(admin::ApproveArgs),
    /// Put a backup on legal hold (label backup-guard.io/hold=true).
    Hold(admin::Target),
    /// Release a legal hold (hold managers only).
    Release(admin::Target),
    /// Table of backups: protected, requested, sanctioned, held or cleaning.
    Status(admin::StatusArgs),
    /// Policy file tools.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file: exit 0 if it would take effect, 1 with the error otherwise.
    Check {
        /// The policy file (`policy.yaml`).
        file: PathBuf,
    },
}

/// Arguments of `review`.
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// Policy file (default: the default policy).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Objects to seed the index with, as `kubectl get -o yaml|json` prints them (repeatable).
    #[arg(long = "objects")]
    pub objects: Vec<PathBuf>,
    /// The time to decide at (RFC 3339; default: now).
    #[arg(long)]
    pub now: Option<String>,
    /// Signing key file (its bytes are the key); without it the key is empty, so no stamp the
    /// guard wrote verifies.
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Answer as the mutating webhook instead of the validating one.
    #[arg(long)]
    pub mutate: bool,
    /// The AdmissionReview JSON file, or `-` for standard input.
    #[arg(default_value = "-")]
    pub file: PathBuf,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Review(args) => offline::review(&args),
        Command::Webhook(args) => serve::webhook(&args),
        Command::Certs(args) => serve::certs(&args),
        Command::Controller(args) => controller::controller(&args),
        Command::Run(args) => controller::run(&args),
        Command::RequestDelete(args) => admin::request_delete(&args),
        Command::Approve(args) => admin::approve(&args),
        Command::Hold(target) => admin::hold(&target),
        Command::Release(target) => admin::release(&target),
        Command::Status(args) => admin::status(&args),
        Command::Policy {
            command: PolicyCommand::Check { file },
        } => offline::policy_check(&file),
    }
}
