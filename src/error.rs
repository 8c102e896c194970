//! Typed errors of each stage (data, configuration, training), and [`chain`] for errors kept as
//! text. Library code returns these (other modules define their own: `StoreError`, `RunnerError`,
//! `ChartError`, `ExportError`, ...); only the command layer turns them into an `anyhow` chain for
//! printing. Every I/O error names its path.

use std::path::PathBuf;

/// A failed file operation: what was being done, to which path, and the system's reason.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {path}")]
pub struct IoError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// For `map_err`: `fs::read(&p).map_err(IoError::at("read", &p))`.
    pub fn at<'a>(
        op: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> IoError + 'a {
        move |source| IoError {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

/// Errors while locating, downloading, verifying or parsing a data set's files.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path}: not a valid IDX file: {why}")]
    Format { path: PathBuf, why: String },
    #[error("{path}: SHA-256 is {actual}, expected {expected}; {advice}")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
        /// What to do: fetch again, or (another data set's file) use one folder per data set.
        advice: String,
    },
    #[error(
        "{title} file {file} is missing from {dir} (run `{fetch}`; or, to use the files from \
         elsewhere, point --data-dir / RNNSWEEP_DATA at their folder, named `{key}`, or at \
         its parent)"
    )]
    Missing {
        title: &'static str,
        key: &'static str,
        file: String,
        dir: PathBuf,
        fetch: String,
    },
    #[error(
        "{path}: an un-gzipped {title} file cannot be verified (only the .gz files' SHA-256 \
         sums are published): delete it and run `{fetch}`, which downloads the .gz file"
    )]
    Unverifiable {
        path: PathBuf,
        title: &'static str,
        fetch: String,
    },
    #[error("the {dataset} data was not loaded for this run (the command loads the data sets of the cells it trains)")]
    NotLoaded { dataset: String },
    #[error("could not download {file} from any mirror:\n{attempts}{hint}")]
    Download {
        file: String,
        attempts: String,
        /// What to do next (empty when the caller has no better advice).
        hint: String,
    },
    #[error("no data directory: give --data-dir or set RNNSWEEP_DATA (no per-user cache directory is known on this system)")]
    NoDataDir,
    #[error("image index {index} is out of range: the {split} set has {len} images (0..{len})")]
    IndexOutOfRange {
        index: usize,
        split: &'static str,
        len: usize,
    },
}

/// An invalid training or model configuration; the message names the setting and what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("invalid {key} = {value}: {allowed}")]
pub struct ConfigError {
    pub key: &'static str,
    pub value: String,
    pub allowed: String,
}

impl ConfigError {
    pub fn new(key: &'static str, value: impl ToString, allowed: impl Into<String>) -> Self {
        Self {
            key,
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

/// Errors that stop a training run (divergence is an outcome, not an error).
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("device error: {0}")]
    Device(String),
    /// A checkpoint handed to the trainer does not fit the run.
    #[error("cannot resume from the checkpoint")]
    Resume(#[source] crate::trainer::fit::checkpoint::CheckpointError),
    /// A failure the fake trainer was told to produce (tests only).
    #[error("{0}")]
    Injected(String),
    #[error("cannot write {path}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `e` followed by each of its causes, joined by ": " (as `main` prints an error chain), for
/// errors kept as text: a failed cell's error.txt and its event.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_lists_every_cause() {
        let e = IoError::at("read", std::path::Path::new("/x/y"))(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "gone",
        ));
        assert_eq!(chain(&e), "cannot read /x/y: gone");
        assert_eq!(
            chain(&ConfigError::new("hidden", 0, "1..")),
            "invalid hidden = 0: 1.."
        );
    }
}
