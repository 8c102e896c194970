//! `rnnsweep data fetch | verify | show`: getting the MNIST files, checking them, and looking
//! at a digit as the sequence of rows the network reads. Also [`load`], how the other commands
//! get the data (downloading what is missing, with progress).

use std::path::{Path, PathBuf};

use super::Outcome;
use crate::commands::progress::FetchProgress;
use crate::data::sequence::{InputMode, Reading};
use crate::data::{self, fetch, Mnist};
use crate::error::DataError;

/// Options of `rnnsweep data`.
#[derive(Clone, Debug)]
pub struct DataOptions {
    /// The MNIST folder [default: see `data::resolve_dir`].
    pub data_dir: Option<PathBuf>,
    pub quiet: bool,
    pub action: DataAction,
}

/// What `rnnsweep data` does.
#[derive(Clone, Debug)]
pub enum DataAction {
    /// Download the missing files (from these mirrors, else the default ones), verify all four.
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

/// Runs `rnnsweep data`: resolves the folder, does the action and prints its report.
pub fn data_cmd(o: &DataOptions) -> anyhow::Result<Outcome> {
    let dir = data::resolve_dir(o.data_dir.as_deref())?;
    let text = match &o.action {
        DataAction::Fetch { mirrors } => fetch_report(&dir, mirrors, o.quiet)?,
        DataAction::Verify => verify_report(&dir)?,
        DataAction::Show {
            index,
            train,
            input,
            permutation_seed,
        } => show_image(
            &dir,
            *index,
            *train,
            &Reading::new(*input, *permutation_seed),
            o.quiet,
        )?,
    };
    print!("{text}");
    Ok(Outcome::Ok)
}

/// Loads MNIST from `dir`, downloading missing files first (with progress unless `quiet`).
pub fn load(dir: &Path, quiet: bool) -> Result<Mnist, DataError> {
    let progress = FetchProgress::new(quiet);
    let result = Mnist::load_or_fetch(dir, &fetch::mirrors(&[]), &|e| progress.event(e));
    progress.finish();
    result
}

/// Downloads whatever is missing, then verifies all four files. Returns a report.
pub fn fetch_report(dir: &Path, mirrors: &[String], quiet: bool) -> Result<String, DataError> {
    let progress = FetchProgress::new(quiet);
    let fetched = fetch::fetch_missing(dir, &fetch::mirrors(mirrors), &|e| progress.event(e));
    progress.finish();
    let fetched = fetched?;
    let paths = data::verify_dir(dir)?;
    Ok(format!(
        "{} file(s) downloaded; all 4 MNIST files present and verified in {}\n{}",
        fetched.len(),
        dir.display(),
        list(&paths)
    ))
}

/// Verifies the four files in `dir` (SHA-256 and IDX structure).
pub fn verify_report(dir: &Path) -> Result<String, DataError> {
    let paths = data::verify_dir(dir)?;
    let m = Mnist::load(dir)?;
    Ok(format!(
        "OK: {} training and {} test images in {}\n{}",
        m.train.len(),
        m.test.len(),
        dir.display(),
        list(&paths)
    ))
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("  {}\n", p.display()))
        .collect()
}

/// Image `index` of the test (or training) set as 28 rows, with its label.
pub fn show_image(
    dir: &Path,
    index: usize,
    train: bool,
    reading: &Reading,
    quiet: bool,
) -> Result<String, DataError> {
    let m = load(dir, quiet)?;
    let (split, name) = if train {
        (&m.train, "training")
    } else {
        (&m.test, "test")
    };
    if index >= split.len() {
        return Err(DataError::IndexOutOfRange {
            index,
            split: if train { "training" } else { "test" },
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
    Ok(format!(
        "{name} image {index}, label {}: read as {how}\n{}",
        split.labels[index],
        data::render_reading(split.image(index), reading)
    ))
}
