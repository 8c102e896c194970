//! The `rnnsweep` binary: parse the command line, run it, print any error with its causes, and
//! map the outcome to an exit code (0 ok; 1 `train`'s run diverged, or some of `sweep`'s cells
//! failed — diverged cells are outcomes and exit 0; 2 bad input or harness error; 130
//! interrupted). Ctrl-C, SIGTERM and SIGUSR1 (Slurm's warning before the time limit) all
//! stop running cells at their next step; a second Ctrl-C leaves at once.

mod cli;
#[cfg(feature = "cuda")]
mod cuda_shim;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

static STOP: AtomicBool = AtomicBool::new(false);
/// The last of SIGTERM / SIGUSR1 received (0: none).
#[cfg(unix)]
static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// SIGTERM and SIGUSR1 set the stop flag (no output in the handler: only atomics are safe).
#[cfg(unix)]
fn stop_on_signals() {
    use signal_hook::consts::{SIGTERM, SIGUSR1};
    for sig in [SIGTERM, SIGUSR1] {
        // SAFETY: the handler only stores to atomics, which is async-signal-safe.
        let _ = unsafe {
            signal_hook::low_level::register(sig, move || {
                SIGNALLED.store(sig, Ordering::SeqCst);
                STOP.store(true, Ordering::SeqCst);
            })
        };
    }
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // A bad RNNSWEEP_ISA is refused before any work (the fused layers read it when they run).
    if let Err(e) = rnnsweep::trainer::model::fused::Isa::limit() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    // First Ctrl-C: stop at the next step and save; second: leave at once.
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after the current step (Ctrl-C again to quit now)");
    });
    #[cfg(unix)]
    stop_on_signals();
    let result = cli::run(cli, &STOP);
    #[cfg(unix)]
    match SIGNALLED.load(Ordering::SeqCst) {
        signal_hook::consts::SIGTERM => eprintln!("stopped by SIGTERM"),
        signal_hook::consts::SIGUSR1 => eprintln!("stopped by SIGUSR1"),
        _ => {}
    }
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
