//! How the commands get their data: each data set from its folder under the data folder (see
//! `dataset_dir`), downloading what is missing first, with a download bar on stderr
//! ([`FetchProgress`]); [`load_sets`] loads only the data sets a command's cells use, each once.

use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::fetch::FetchEvent;
use super::{resolve_dir, DataSets, DataSource, Dataset, Mnist};
use crate::error::DataError;

/// Shows download progress for `data fetch` and the automatic fetch on first use.
pub struct FetchProgress {
    bar: ProgressBar,
    /// The mirrors that failed for the file being fetched ("url: why"): named once, as a
    /// warning when a later mirror serves the file, else by the download error itself.
    failed: std::sync::Mutex<Vec<String>>,
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
        FetchProgress {
            bar,
            failed: Default::default(),
        }
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
            FetchEvent::Failed { url, error, .. } => self
                .failed
                .lock()
                .expect("not poisoned")
                .push(format!("{url}: {error}")),
            FetchEvent::Done { file, path } => {
                let failed = std::mem::take(&mut *self.failed.lock().expect("not poisoned"));
                for f in failed {
                    self.line(&format!(
                        "warning: mirror failed, the next one was used: {f}"
                    ));
                }
                self.line(&format!(
                    "fetched {file} -> {} (SHA-256 verified)",
                    path.display()
                ))
            }
        }
    }

    /// Prints a line to stderr without tearing the bar.
    fn line(&self, text: &str) {
        self.bar.suspend(|| eprintln!("{text}"));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Loads `spec`'s data from `dir`, downloading missing files first (with progress unless
/// `quiet`) from the mirrors of [`DataSource::mirrors`].
pub fn load_from(dir: &Path, source: &DataSource, quiet: bool) -> Result<Mnist, DataError> {
    let progress = FetchProgress::new(quiet);
    let result = source.load_or_fetch(dir, &source.mirrors(&[]), &|e| progress.event(e));
    progress.finish();
    result
}

/// Loads `dataset` from its folder under the data folder `data_dir` (the flag as given; see
/// `resolve_dir`), downloading missing files first.
pub fn load(data_dir: Option<&Path>, dataset: Dataset, quiet: bool) -> Result<Mnist, DataError> {
    load_from(&resolve_dir(data_dir, dataset)?, &dataset.source(), quiet)
}

/// Loads each of `datasets` once (see [`load`]): only the data sets a command's cells use, so
/// an MNIST-only sweep never needs the Fashion-MNIST files. All are loaded before any training
/// starts, so a missing download stops the command at once instead of failing cells.
pub fn load_sets(
    data_dir: Option<&Path>,
    datasets: impl IntoIterator<Item = Dataset>,
    quiet: bool,
) -> Result<DataSets, DataError> {
    let mut sets = DataSets::default();
    for d in datasets {
        if sets.get(d).is_err() {
            sets.insert(d, load(data_dir, d, quiet)?);
        }
    }
    Ok(sets)
}
