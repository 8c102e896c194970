//! The data sets as the rest of the program sees them: where each one's four files live
//! (`--data-dir`, `RNNSWEEP_DATA`, or a per-user cache directory; one folder per data set),
//! verifying them by SHA-256 against their [`DataSource`], loading them into memory, and rendering
//! an image as the sequence a recurrent network reads. `dataset.rs` holds the sources (files,
//! sums, mirrors, class names) of MNIST and Fashion-MNIST; `loading.rs` is how the commands get
//! the data sets they use (downloading what is missing, with a download bar).

mod dataset;
pub mod fetch;
pub mod idx;
mod loading;
pub mod sequence;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{DataError, IoError};
pub use dataset::{
    DataSource, Dataset, IdxFile, FASHION_CLASSES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES,
    TRAIN_LABELS,
};
pub use loading::{load, load_from, load_sets, FetchProgress};

/// Environment variable naming the data folder (overridden by `--data-dir`); see [`dataset_dir`].
pub const DATA_ENV: &str = "RNNSWEEP_DATA";

/// Pixels per image row, rows per image: one row is one time step.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// Number of classes.
pub const CLASSES: usize = 10;

/// The data folder as given: `--data-dir`, else `RNNSWEEP_DATA`, else `<cache dir>/rnnsweep`
/// (a root: MNIST in `<cache dir>/rnnsweep/mnist`, as before data sets were a key). Which
/// folder each data set is in follows from it by [`dataset_dir`].
pub fn resolve_base(flag: Option<&Path>) -> Result<PathBuf, DataError> {
    if let Some(p) = flag {
        return Ok(p.to_owned());
    }
    if let Some(p) = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    crate::fsutil::user_cache_root().ok_or(DataError::NoDataDir)
}

/// The folder of `dataset`'s files, given the data folder `base` ([`resolve_base`]). The rule:
/// a folder named after a data set (`mnist`, `fashion-mnist`, exactly) is that data set's
/// folder, and the other data sets sit beside it (`/data/mnist` → `/data/fashion-mnist`); any
/// other folder is a root holding one folder per data set (`/data` → `/data/mnist`,
/// `/data/fashion-mnist`). The four file names are the same in every data set, so two data
/// sets can never share a folder.
///
/// One exception keeps the data folders of earlier versions working: a root that holds IDX
/// files itself, and no `mnist` folder, is MNIST's folder (before Fashion-MNIST, `--data-dir`
/// and `RNNSWEEP_DATA` named MNIST's folder, whatever its name); Fashion-MNIST then goes in
/// its `fashion-mnist` subfolder.
pub fn dataset_dir(base: &Path, dataset: Dataset) -> Result<PathBuf, DataError> {
    let named = base
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| Dataset::VALUES.into_iter().find(|d| d.as_str() == n));
    match named {
        Some(d) if d == dataset => Ok(base.to_owned()),
        Some(_) => Ok(base.with_file_name(dataset.as_str())),
        None => {
            let dir = base.join(dataset.as_str());
            let loose = || {
                dataset
                    .source()
                    .files
                    .iter()
                    .any(|f| locate(base, f).is_some())
            };
            if dataset.is_mnist() && !dir.exists() && loose() {
                return Ok(base.to_owned());
            }
            Ok(dir)
        }
    }
}

/// [`dataset_dir`] of [`resolve_base`]: where `dataset` is read from and fetched into.
pub fn resolve_dir(flag: Option<&Path>, dataset: Dataset) -> Result<PathBuf, DataError> {
    dataset_dir(&resolve_base(flag)?, dataset)
}

/// Where a file is present in `dir`: the `.gz` file, else the decompressed one.
pub fn locate(dir: &Path, file: &IdxFile) -> Option<PathBuf> {
    [dir.join(file.gz_name()), dir.join(&*file.name)]
        .into_iter()
        .find(|p| p.is_file())
}

impl DataSource {
    /// Where `file` is present in `dir` in a form that can be verified: the `.gz` file, else
    /// the decompressed one when its sum is known. `None` means it must be downloaded.
    pub fn verifiable(&self, dir: &Path, file: &IdxFile) -> Option<PathBuf> {
        let gz = dir.join(file.gz_name());
        if gz.is_file() {
            return Some(gz);
        }
        let raw = dir.join(&*file.name);
        (file.raw_sha256.is_some() && raw.is_file()).then_some(raw)
    }

    /// Reads a present file and checks its SHA-256 against the source's sums; returns its bytes.
    /// A decompressed file whose sum the source does not know (Fashion-MNIST's) is refused.
    pub fn read_verified(&self, path: &Path, file: &IdxFile) -> Result<Vec<u8>, DataError> {
        let bytes = fs::read(path).map_err(IoError::at("read", path))?;
        let expected = if bytes.starts_with(&[0x1f, 0x8b]) {
            &file.gz_sha256
        } else {
            file.raw_sha256
                .as_ref()
                .ok_or_else(|| DataError::Unverifiable {
                    path: path.to_owned(),
                    title: self.dataset.title(),
                    fetch: self.dataset.fetch_command(),
                })?
        };
        let actual = hex(&Sha256::digest(&bytes));
        if actual != **expected {
            let advice = match self.other_dataset_with(&actual) {
                Some((other, name)) => format!(
                    "it is {}'s {name}, not {}'s: each data set needs its own folder \
                     (see --data-dir in `rnnsweep --help`)",
                    other.title(),
                    self.dataset.title()
                ),
                None => format!(
                    "the file is corrupt or not the standard {} file (delete it and run `{}`)",
                    self.dataset.title(),
                    self.dataset.fetch_command()
                ),
            };
            return Err(DataError::Checksum {
                path: path.to_owned(),
                expected: expected.to_string(),
                actual,
                advice,
            });
        }
        Ok(bytes)
    }

    /// Where `file` is in `dir`, or the error that it is missing.
    fn present(&self, dir: &Path, file: &IdxFile) -> Result<PathBuf, DataError> {
        locate(dir, file).ok_or_else(|| DataError::Missing {
            title: self.dataset.title(),
            key: self.dataset.as_str(),
            file: file.gz_name(),
            dir: dir.to_owned(),
            fetch: self.dataset.fetch_command(),
        })
    }

    /// Verifies all four files in `dir`; returns the path of each (error on the first missing
    /// or bad one).
    pub fn verify_dir(&self, dir: &Path) -> Result<Vec<PathBuf>, DataError> {
        self.files
            .iter()
            .map(|f| {
                let path = self.present(dir, f)?;
                self.read_verified(&path, f).map(|_| path)
            })
            .collect()
    }

    /// Loads and verifies the four files from `dir` (each `.gz`, or decompressed when the source
    /// knows that form's sum).
    pub fn load(&self, dir: &Path) -> Result<Mnist, DataError> {
        let mut payloads = Vec::with_capacity(4);
        for f in &self.files {
            let path = self.present(dir, f)?;
            let bytes = idx::maybe_gunzip(&path, self.read_verified(&path, f)?)?;
            payloads.push(idx::parse(&path, &bytes, f.kind, f.count)?);
        }
        let mut it = payloads.into_iter();
        let mut next = || it.next().expect("four payloads");
        Ok(Mnist {
            train: Split {
                images: next(),
                labels: next(),
            },
            test: Split {
                images: next(),
                labels: next(),
            },
        })
    }

    /// Loads from `dir`, first downloading whatever is missing (see [`fetch::fetch_missing`]).
    pub fn load_or_fetch(
        &self,
        dir: &Path,
        mirrors: &[String],
        progress: &dyn Fn(fetch::FetchEvent),
    ) -> Result<Mnist, DataError> {
        fetch::fetch_missing(dir, self, mirrors, progress)?;
        self.load(dir)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One split of the data set in memory: `images` holds `len()*784` bytes, row-major per image.
#[derive(Clone, Debug)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The 784 pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }
    /// The first `n` items (all of them when `n` is larger).
    pub fn truncated(&self, n: usize) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images[..n * PIXELS].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }
}

/// A data set in MNIST's format in memory (MNIST or Fashion-MNIST: 60,000 training and 10,000
/// test images; fewer for a test's own source).
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train: Split,
    pub test: Split,
}

impl Mnist {
    /// Loads and verifies MNIST's four files from `dir` (short for
    /// `Dataset::Mnist.source().load(dir)`).
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        Dataset::Mnist.source().load(dir)
    }
}

/// The data sets a command loaded, each once, for the trainer to pick from by a config's
/// `dataset` (see `trainer::backend`).
#[derive(Clone, Debug, Default)]
pub struct DataSets {
    sets: BTreeMap<Dataset, Mnist>,
}

impl DataSets {
    pub fn insert(&mut self, dataset: Dataset, data: Mnist) {
        self.sets.insert(dataset, data);
    }

    /// The loaded data of `dataset`, or an error naming it when it was not loaded.
    pub fn get(&self, dataset: Dataset) -> Result<&Mnist, DataError> {
        self.sets.get(&dataset).ok_or(DataError::NotLoaded {
            dataset: dataset.to_string(),
        })
    }

    /// The data sets held, in key order.
    pub fn datasets(&self) -> Vec<Dataset> {
        self.sets.keys().copied().collect()
    }
}

/// Renders an image as 28 text rows, one per time step, darker characters for more ink.
pub fn render_rows(pixels: &[u8]) -> String {
    render_lines(pixels, "t")
}

/// An image as `reading` feeds it to a network: its pixels in reading order, 28 to a line. For
/// rows and columns a line is one time step; for pixels and permuted, 28 consecutive steps
/// (the line's label is its first step).
pub fn render_reading(pixels: &[u8], reading: &sequence::Reading) -> String {
    let ordered: Vec<u8> = reading.order().iter().map(|&i| pixels[i]).collect();
    match reading.mode.features() {
        1 => {
            let mut out = String::new();
            for (line, chunk) in render_lines(&ordered, "t").lines().enumerate() {
                let rest = chunk.split_once(' ').map_or("", |(_, r)| r);
                out.push_str(&format!("t={:03} {rest}\n", line * SIDE));
            }
            out
        }
        _ => render_lines(&ordered, "t"),
    }
}

/// Pixels 28 to a line, as ASCII shades doubled for squareness, each line labelled.
fn render_lines(pixels: &[u8], label: &str) -> String {
    const RAMP: &[u8] = b" .:-=+*#%@";
    let mut out = String::new();
    for (t, row) in pixels.chunks(SIDE).enumerate() {
        let line: String = row
            .iter()
            .map(|&p| RAMP[(p as usize * RAMP.len()) / 256] as char)
            .flat_map(|c| [c, c])
            .collect();
        out.push_str(&format!("{label}={t:02} |{line}|\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_rows_has_28_lines_and_uses_the_ramp() {
        let mut px = vec![0u8; PIXELS];
        px[0] = 255;
        px[29] = 128;
        let s = render_rows(&px);
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(lines.len(), 28);
        assert!(lines[0].starts_with("t=00 |@@  "));
        assert!(lines[1].starts_with("t=01 |  ++"));
    }

    #[test]
    fn resolve_base_prefers_the_flag() {
        let p = resolve_base(Some(Path::new("/x/y"))).unwrap();
        assert_eq!(p, PathBuf::from("/x/y"));
    }

    #[test]
    fn a_folder_named_after_a_data_set_is_its_folder_and_others_are_roots() {
        use Dataset::{FashionMnist as F, Mnist as M};
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let dir = |base: &Path, d| dataset_dir(base, d).unwrap();
        // Named after a data set: that data set's folder, the others beside it.
        assert_eq!(dir(&t.join("mnist"), M), t.join("mnist"));
        assert_eq!(dir(&t.join("mnist"), F), t.join("fashion-mnist"));
        assert_eq!(dir(&t.join("fashion-mnist"), F), t.join("fashion-mnist"));
        assert_eq!(dir(&t.join("fashion-mnist/"), M), t.join("mnist"));
        assert_eq!(dir(Path::new("mnist"), F), PathBuf::from("fashion-mnist"));
        // Anything else is a root; names are matched exactly (torchvision's MNIST/ is a root).
        assert_eq!(dir(t, M), t.join("mnist"));
        assert_eq!(dir(t, F), t.join("fashion-mnist"));
        assert_eq!(dir(&t.join("MNIST"), M), t.join("MNIST/mnist"));
        // A root holding IDX files itself (an earlier version's MNIST folder, any name) stays
        // MNIST's folder; Fashion-MNIST goes in its subfolder.
        let old = t.join("MNIST").join("raw");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("t10k-labels-idx1-ubyte.gz"), b"x").unwrap();
        assert_eq!(dir(&old, M), old);
        assert_eq!(dir(&old, F), old.join("fashion-mnist"));
        // An mnist folder in it wins over the loose files.
        std::fs::create_dir(old.join("mnist")).unwrap();
        assert_eq!(dir(&old, M), old.join("mnist"));
    }
}
