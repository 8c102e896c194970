//! Terminal progress for training steps: a bar on stderr (hidden when stderr is not a
//! terminal; the download bar is `data::FetchProgress`). Lines printed while a bar is shown go
//! through `suspend`, so they never interleave with it.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting steps, with a message slot; hidden in quiet mode or when stderr is not a tty.
pub fn step_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(5));
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps (eta {eta}) {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Prints a line to stderr without tearing the bar.
pub fn line(pb: &ProgressBar, text: &str) {
    pb.suspend(|| eprintln!("{text}"));
}
