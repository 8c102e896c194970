//! MNIST as the rest of the program sees it: where the four files live (`--data-dir`,
//! `RNNSWEEP_DATA`, or a per-user cache directory), verifying them by SHA-256, loading them into
//! memory, and rendering a digit as its 28 rows (the sequence a recurrent network reads).

pub mod fetch;
pub mod idx;
pub mod sequence;

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{DataError, IoError};
use idx::IdxKind;

/// Environment variable naming the data directory (overridden by `--data-dir`).
pub const DATA_ENV: &str = "RNNSWEEP_DATA";

/// Pixels per image row, rows per image: one row is one time step.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// Number of classes.
pub const CLASSES: usize = 10;

/// One of the four standard MNIST files with its known checksums.
#[derive(Clone, Copy, Debug)]
pub struct MnistFile {
    /// Base name without `.gz`.
    pub name: &'static str,
    pub kind: IdxKind,
    pub count: usize,
    /// SHA-256 of the distributed `.gz` file.
    pub gz_sha256: &'static str,
    /// SHA-256 of the decompressed file (accepted when the user stored it un-gzipped).
    pub raw_sha256: &'static str,
}

impl MnistFile {
    pub fn gz_name(&self) -> String {
        format!("{}.gz", self.name)
    }
}

pub const TRAIN_IMAGES: MnistFile = MnistFile {
    name: "train-images-idx3-ubyte",
    kind: IdxKind::Images,
    count: 60_000,
    gz_sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    raw_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
};
pub const TRAIN_LABELS: MnistFile = MnistFile {
    name: "train-labels-idx1-ubyte",
    kind: IdxKind::Labels,
    count: 60_000,
    gz_sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    raw_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
};
pub const TEST_IMAGES: MnistFile = MnistFile {
    name: "t10k-images-idx3-ubyte",
    kind: IdxKind::Images,
    count: 10_000,
    gz_sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    raw_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
};
pub const TEST_LABELS: MnistFile = MnistFile {
    name: "t10k-labels-idx1-ubyte",
    kind: IdxKind::Labels,
    count: 10_000,
    gz_sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    raw_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
};

/// The four files, in the order they are fetched and verified.
pub const FILES: [MnistFile; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Resolves the data directory: the flag, else `RNNSWEEP_DATA`, else `<cache dir>/rnnsweep/mnist`.
pub fn resolve_dir(flag: Option<&Path>) -> Result<PathBuf, DataError> {
    if let Some(p) = flag {
        return Ok(p.to_owned());
    }
    if let Some(p) = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    dirs::cache_dir()
        .map(|c| c.join("rnnsweep").join("mnist"))
        .ok_or(DataError::NoDataDir)
}

/// Where a file is present in `dir`: the `.gz` file, else the decompressed one.
pub fn locate(dir: &Path, file: &MnistFile) -> Option<PathBuf> {
    [dir.join(file.gz_name()), dir.join(file.name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Reads a present file and checks its SHA-256 against the known sums; returns its bytes.
pub fn read_verified(path: &Path, file: &MnistFile) -> Result<Vec<u8>, DataError> {
    let bytes = fs::read(path).map_err(IoError::at("read", path))?;
    let actual = hex(&Sha256::digest(&bytes));
    let expected = if bytes.starts_with(&[0x1f, 0x8b]) {
        file.gz_sha256
    } else {
        file.raw_sha256
    };
    if actual != expected {
        return Err(DataError::Checksum {
            path: path.to_owned(),
            expected: expected.into(),
            actual,
        });
    }
    Ok(bytes)
}

/// Verifies all four files in `dir`; returns the path of each (error on the first missing or bad one).
pub fn verify_dir(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    FILES
        .iter()
        .map(|f| {
            let path = locate(dir, f).ok_or_else(|| DataError::Missing {
                file: f.gz_name(),
                dir: dir.to_owned(),
            })?;
            read_verified(&path, f).map(|_| path)
        })
        .collect()
}

/// Identifies the data set (the four files' known checksums); part of every cell id, so that
/// results are never mixed across data.
pub fn fingerprint() -> String {
    let mut h = Sha256::new();
    for f in &FILES {
        h.update(f.gz_sha256.as_bytes());
    }
    format!("mnist-{}", &hex(&h.finalize())[..16])
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

/// The full data set: 60,000 training and 10,000 test images.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train: Split,
    pub test: Split,
}

impl Mnist {
    /// Loads and verifies the four files from `dir` (each `.gz` or decompressed).
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        let mut payloads = Vec::with_capacity(4);
        for f in &FILES {
            let path = locate(dir, f).ok_or_else(|| DataError::Missing {
                file: f.gz_name(),
                dir: dir.to_owned(),
            })?;
            let bytes = idx::maybe_gunzip(&path, read_verified(&path, f)?)?;
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
        dir: &Path,
        mirrors: &[String],
        progress: &dyn Fn(fetch::FetchEvent),
    ) -> Result<Mnist, DataError> {
        fetch::fetch_missing(dir, mirrors, progress)?;
        Mnist::load(dir)
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
    fn resolve_dir_prefers_the_flag() {
        let p = resolve_dir(Some(Path::new("/x/y"))).unwrap();
        assert_eq!(p, PathBuf::from("/x/y"));
    }
}
