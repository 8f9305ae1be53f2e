//! Entry point: parse the command line and run it.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: a guarded request allocates a few dozen small strings and maps; glibc's malloc and
/// free were a seventh of its instructions, mimalloc's are a third of that (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
