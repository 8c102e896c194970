//! `rnnsweep data fetch | verify | show [--dataset D]`: getting a data set's files, checking
//! them, and looking at an image as the sequence the network reads.

use std::path::{Path, PathBuf};

use super::Outcome;
use crate::data::sequence::{InputMode, Reading};
use crate::data::{self, fetch, load_from, DataSource, Dataset, FetchProgress, Mnist};
use crate::error::DataError;

/// Options of `rnnsweep data`.
#[derive(Clone, Debug)]
pub struct DataOptions {
    /// The data folder as given [default: see `data::resolve_base`].
    pub data_dir: Option<PathBuf>,
    /// The data set to fetch, verify or show.
    pub dataset: Dataset,
    pub quiet: bool,
    pub action: DataAction,
}

/// What `rnnsweep data` does.
#[derive(Clone, Debug)]
pub enum DataAction {
    /// Download the missing files (from these mirrors, else the data set's default ones),
    /// verify all four.
    Fetch { mirrors: Vec<String> },
    /// Check the four files' checksums and structure.
    Verify,
    /// Print test image `index` (or training image, with `train`) as a network with `input`
    /// reads it.
    Show {
        index: usize,
        train: bool,
        input: InputMode,
        permutation_seed: u64,
    },
}

/// Runs `rnnsweep data`: resolves the data set's folder, does the action and prints its report.
pub fn data_cmd(o: &DataOptions) -> anyhow::Result<Outcome> {
    let dir = data::resolve_dir(o.data_dir.as_deref(), o.dataset)?;
    let source = o.dataset.source();
    let text = match &o.action {
        DataAction::Fetch { mirrors } => fetch_report(&dir, &source, mirrors, o.quiet)?,
        DataAction::Verify => verify_report(&dir, &source)?,
        DataAction::Show {
            index,
            train,
            input,
            permutation_seed,
        } => show_image(
            &load_from(&dir, &source, o.quiet)?,
            o.dataset,
            *index,
            *train,
            &Reading::new(*input, *permutation_seed),
        )?,
    };
    print!("{text}");
    Ok(Outcome::Ok)
}

/// Downloads whatever is missing, then verifies all four files. Returns a report.
pub fn fetch_report(
    dir: &Path,
    source: &DataSource,
    mirrors: &[String],
    quiet: bool,
) -> Result<String, DataError> {
    let progress = FetchProgress::new(quiet);
    let fetched = fetch::fetch_missing(dir, source, &source.mirrors(mirrors), &|e| {
        progress.event(e)
    });
    progress.finish();
    let fetched = fetched?;
    let paths = source.verify_dir(dir)?;
    Ok(format!(
        "{} file(s) downloaded; all 4 {} files present and verified in {}\n{}",
        fetched.len(),
        source.dataset.title(),
        dir.display(),
        list(&paths)
    ))
}

/// Verifies the four files in `dir` (SHA-256 and IDX structure).
pub fn verify_report(dir: &Path, source: &DataSource) -> Result<String, DataError> {
    let paths = source.verify_dir(dir)?;
    let m = source.load(dir)?;
    Ok(format!(
        "OK: {} training and {} test images in {} ({}, fingerprint {})\n{}",
        m.train.len(),
        m.test.len(),
        dir.display(),
        source.dataset.title(),
        source.fingerprint(),
        list(&paths)
    ))
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("  {}\n", p.display()))
        .collect()
}

/// Image `index` of the test (or training) set of `data` (a `dataset`) as the rows a network
/// reading it `reading` sees, with its label (and, for Fashion-MNIST, the label's class name).
pub fn show_image(
    data: &Mnist,
    dataset: Dataset,
    index: usize,
    train: bool,
    reading: &Reading,
) -> Result<String, DataError> {
    let (split, name) = if train {
        (&data.train, "training")
    } else {
        (&data.test, "test")
    };
    if index >= split.len() {
        return Err(DataError::IndexOutOfRange {
            index,
            split: name,
            len: split.len(),
        });
    }
    let how = match reading.mode {
        InputMode::Rows => "28 time steps (rows) of 28 pixels".to_string(),
        InputMode::Columns => "28 time steps (columns, left to right) of 28 pixels".to_string(),
        mode => format!(
            "784 time steps of 1 pixel ({}), 28 steps to a line",
            if mode == InputMode::Pixels {
                "row by row"
            } else {
                "in the fixed permuted order"
            }
        ),
    };
    let label = split.labels[index];
    let class = match dataset {
        Dataset::Mnist => String::new(),
        d => format!(" ({})", d.class_name(label)),
    };
    let set = match dataset {
        Dataset::Mnist => String::new(),
        d => format!("{} ", d.title()),
    };
    Ok(format!(
        "{set}{name} image {index}, label {label}{class}: read as {how}\n{}",
        data::render_reading(split.image(index), reading)
    ))
}
