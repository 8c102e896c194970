//! Terminal progress for long work: a bar for training steps (on stderr; hidden when stderr is
//! not a terminal) and one for downloads. Lines printed while a bar is shown go through
//! `suspend`, so they never interleave with it.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::data::fetch::FetchEvent;

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

/// Shows download progress for `data fetch` and the automatic fetch on first use.
pub struct FetchProgress {
    bar: ProgressBar,
}

impl FetchProgress {
    pub fn new(quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{msg} {bytes}/{total_bytes} ({bytes_per_sec})")
                    .expect("valid template"),
            );
            b
        };
        FetchProgress { bar }
    }

    pub fn event(&self, e: FetchEvent) {
        match e {
            FetchEvent::Start { file, url, total } => {
                self.bar.reset();
                if let Some(t) = total {
                    self.bar.set_length(t);
                }
                self.bar
                    .set_message(format!("downloading {file} from {url}"));
            }
            FetchEvent::Progress { done, .. } => self.bar.set_position(done),
            FetchEvent::Failed { file, url, error } => line(
                &self.bar,
                &format!("warning: {file} from {url} failed: {error}"),
            ),
            FetchEvent::Done { file, path } => line(
                &self.bar,
                &format!("fetched {file} -> {} (SHA-256 verified)", path.display()),
            ),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
