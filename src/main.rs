//! The `rnnsweep` binary: parse the command line, run it, print any error with its causes, and
//! map the outcome to an exit code (0 ok, 1 a run diverged, 2 bad input or harness error,
//! 130 interrupted).

mod cli;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // First Ctrl-C: stop at the next step and save; second: leave at once.
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after the current step (Ctrl-C again to quit now)");
    });
    match cli::run(cli, &STOP) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
