//! `rnnsweep data fetch | verify | show`: getting the MNIST files, checking them, and looking
//! at a digit as the sequence of rows the network reads.

use std::path::{Path, PathBuf};

use crate::commands::progress::FetchProgress;
use crate::data::{self, fetch, Mnist};
use crate::error::DataError;

/// Loads MNIST from `dir`, downloading missing files first (with progress unless `quiet`).
pub fn load(dir: &Path, quiet: bool) -> Result<Mnist, DataError> {
    let progress = FetchProgress::new(quiet);
    let result = Mnist::load_or_fetch(dir, &fetch::mirrors(&[]), &|e| progress.event(e));
    progress.finish();
    result
}

/// Downloads whatever is missing, then verifies all four files. Returns a report.
pub fn fetch_cmd(dir: &Path, mirrors: &[String], quiet: bool) -> Result<String, DataError> {
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
pub fn verify_cmd(dir: &Path) -> Result<String, DataError> {
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
pub fn show_cmd(dir: &Path, index: usize, train: bool, quiet: bool) -> Result<String, DataError> {
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
    Ok(format!(
        "{name} image {index}, label {}: read as 28 time steps (rows) of 28 pixels\n{}",
        split.labels[index],
        data::render_rows(split.image(index))
    ))
}
