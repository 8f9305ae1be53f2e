//! Entry point: parse the command line and run it.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = backup_guard::cli::Cli::parse();
    match backup_guard::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backup-guard: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
