//! The data sets rnnsweep knows (`dataset = "mnist" | "fashion-mnist"`) and, for each, its
//! source as a value: the four IDX files with their published SHA-256 sums, the download mirrors,
//! the class names and the data fingerprint that goes into every cell id. Fetching, verifying
//! and loading take a [`DataSource`], so tests can pass a source of their own (files they
//! generate, served from 127.0.0.1); the shipped binary only ever uses the sources written here.
//!
//! Both data sets are 60,000 training and 10,000 test images of 28 × 28 grey pixels in 10
//! classes, in the same IDX format with the same four file names, so the networks, limits and
//! loader are the same; only the bytes (and so the sums) differ. Because the names are the
//! same, each data set needs its own folder (see `data::dataset_dir`).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::hex;
use super::idx::IdxKind;

/// A data set, as the grid key `dataset`, the `--dataset` flags and `config.json` name it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Dataset {
    /// LeCun, Cortes & Burges' handwritten digits (the default).
    #[default]
    #[serde(rename = "mnist")]
    Mnist,
    /// Zalando's Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): ten kinds of clothing.
    #[serde(rename = "fashion-mnist")]
    FashionMnist,
}

/// Fashion-MNIST's class names, by label (Zalando's README; torchvision's `FashionMNIST.classes`).
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

impl Dataset {
    /// Every data set, in the order of [`Dataset::ALL`].
    pub const VALUES: [Dataset; 2] = [Dataset::Mnist, Dataset::FashionMnist];
    /// Every accepted spelling (also each data set's folder name under a data root).
    pub const ALL: &'static [&'static str] = &["mnist", "fashion-mnist"];

    /// The key: `mnist` or `fashion-mnist` (also its folder name and its fingerprint's prefix).
    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
        }
    }

    /// The name people write: `MNIST`, `Fashion-MNIST`.
    pub fn title(self) -> &'static str {
        match self {
            Dataset::Mnist => "MNIST",
            Dataset::FashionMnist => "Fashion-MNIST",
        }
    }

    /// For `skip_serializing_if`: MNIST is the default and is left out of configs, so the ids
    /// of cells made before the key existed do not change.
    pub fn is_mnist(&self) -> bool {
        *self == Dataset::Mnist
    }

    /// What label `l` means: the digit for MNIST, the class name for Fashion-MNIST.
    pub fn class_name(self, label: u8) -> Cow<'static, str> {
        match self {
            Dataset::Mnist => Cow::Owned(label.to_string()),
            Dataset::FashionMnist => Cow::Borrowed(FASHION_CLASSES[label as usize % 10]),
        }
    }

    /// The ten classes in one line, for `describe` and `data verify`.
    pub fn classes_text(self) -> String {
        match self {
            Dataset::Mnist => "the digits 0-9".into(),
            Dataset::FashionMnist => FASHION_CLASSES
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{i} {c}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Environment variable with comma-separated mirror base URLs, tried instead of the
    /// built-in ones (`RNNSWEEP_MNIST_MIRRORS`, `RNNSWEEP_FASHION_MNIST_MIRRORS`).
    pub fn mirrors_env(self) -> &'static str {
        match self {
            Dataset::Mnist => "RNNSWEEP_MNIST_MIRRORS",
            Dataset::FashionMnist => "RNNSWEEP_FASHION_MNIST_MIRRORS",
        }
    }

    /// The command that downloads this data set.
    pub fn fetch_command(self) -> String {
        match self {
            Dataset::Mnist => "rnnsweep data fetch".into(),
            other => format!("rnnsweep data fetch --dataset {other}"),
        }
    }

    /// The shipped source: files, published sums and mirrors.
    pub fn source(self) -> DataSource {
        match self {
            Dataset::Mnist => DataSource {
                dataset: self,
                files: MNIST_FILES,
                mirrors: MNIST_MIRRORS.iter().map(|s| s.to_string()).collect(),
            },
            Dataset::FashionMnist => DataSource {
                dataset: self,
                files: FASHION_FILES,
                mirrors: FASHION_MIRRORS.iter().map(|s| s.to_string()).collect(),
            },
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of a data set's four IDX files with its checksums.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxFile {
    /// Base name without `.gz`.
    pub name: Cow<'static, str>,
    pub kind: IdxKind,
    /// Items the file holds.
    pub count: usize,
    /// SHA-256 of the distributed `.gz` file.
    pub gz_sha256: Cow<'static, str>,
    /// SHA-256 of the decompressed file, when known: then a file stored un-gzipped is accepted.
    /// When unknown (Fashion-MNIST), an un-gzipped file cannot be verified and is refused
    /// (see [`DataSource::read_verified`](super::DataSource::read_verified)).
    pub raw_sha256: Option<Cow<'static, str>>,
}

impl IdxFile {
    pub fn gz_name(&self) -> String {
        format!("{}.gz", self.name)
    }
}

const fn file(
    name: &'static str,
    kind: IdxKind,
    count: usize,
    gz_sha256: &'static str,
    raw_sha256: Option<&'static str>,
) -> IdxFile {
    IdxFile {
        name: Cow::Borrowed(name),
        kind,
        count,
        gz_sha256: Cow::Borrowed(gz_sha256),
        raw_sha256: match raw_sha256 {
            Some(s) => Some(Cow::Borrowed(s)),
            None => None,
        },
    }
}

pub const TRAIN_IMAGES: IdxFile = file(
    "train-images-idx3-ubyte",
    IdxKind::Images,
    60_000,
    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    Some("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
);
pub const TRAIN_LABELS: IdxFile = file(
    "train-labels-idx1-ubyte",
    IdxKind::Labels,
    60_000,
    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    Some("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
);
pub const TEST_IMAGES: IdxFile = file(
    "t10k-images-idx3-ubyte",
    IdxKind::Images,
    10_000,
    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    Some("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
);
pub const TEST_LABELS: IdxFile = file(
    "t10k-labels-idx1-ubyte",
    IdxKind::Labels,
    10_000,
    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    Some("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
);

/// MNIST's four files, in the order they are fetched, verified and loaded.
const MNIST_FILES: [IdxFile; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Public mirrors of the original MNIST files (each serves `<base>/<name>.gz`).
const MNIST_MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
];

/// Fashion-MNIST's four files. Zalando publishes MD5 sums only; the SHA-256 sums (and sizes:
/// 26,421,880 / 29,515 / 4,422,102 / 5,148 bytes) of the `.gz` files are those recorded by
/// TensorFlow Datasets in `tensorflow_datasets/url_checksums/fashion_mnist.txt`
/// (github.com/tensorflow/datasets) for the same URLs as the mirror below. No published source
/// gives the decompressed files' SHA-256, and they cannot be computed here without the data,
/// so `raw_sha256` is `None`: Fashion-MNIST is accepted only as the `.gz` files.
const FASHION_FILES: [IdxFile; 4] = [
    file(
        "train-images-idx3-ubyte",
        IdxKind::Images,
        60_000,
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        None,
    ),
    file(
        "train-labels-idx1-ubyte",
        IdxKind::Labels,
        60_000,
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        None,
    ),
    file(
        "t10k-images-idx3-ubyte",
        IdxKind::Images,
        10_000,
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        None,
    ),
    file(
        "t10k-labels-idx1-ubyte",
        IdxKind::Labels,
        10_000,
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        None,
    ),
];

/// The mirror torchvision's `FashionMNIST.mirrors` lists (Zalando's own S3 bucket), then the
/// files in Zalando's GitHub repository (`data/fashion/` of zalandoresearch/fashion-mnist). More can be
/// given with `--mirror` or `RNNSWEEP_FASHION_MNIST_MIRRORS`; every download is checked
/// against the sums above whatever its source.
const FASHION_MIRRORS: &[&str] = &[
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
];

/// Everything needed to fetch, verify and load one data set: which one it is (for names,
/// classes and messages), its four files with their sums, and its built-in mirrors.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSource {
    pub dataset: Dataset,
    /// Training images, training labels, test images, test labels.
    pub files: [IdxFile; 4],
    /// Built-in mirror base URLs, tried in turn (see [`DataSource::mirrors`]).
    pub mirrors: Vec<String>,
}

impl DataSource {
    /// Identifies the data (the four `.gz` files' expected sums, hashed, after the data set's
    /// key), e.g. `mnist-0123456789abcdef`. Part of every cell id, so results are never mixed
    /// across data sets; a different file list or sum is different data.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for f in &self.files {
            h.update(f.gz_sha256.as_bytes());
        }
        format!("{}-{}", self.dataset, &hex(&h.finalize())[..16])
    }

    /// The mirrors to use: the given ones, else the data set's environment variable
    /// ([`Dataset::mirrors_env`]), else the source's own.
    pub fn mirrors(&self, explicit: &[String]) -> Vec<String> {
        if !explicit.is_empty() {
            return explicit.to_vec();
        }
        if let Ok(v) = std::env::var(self.dataset.mirrors_env()) {
            let list: Vec<String> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if !list.is_empty() {
                return list;
            }
        }
        self.mirrors.clone()
    }

    /// The data set whose file has the SHA-256 `sum` (another data set's file in this one's
    /// folder is the likely mistake when the names are the same).
    pub(crate) fn other_dataset_with(&self, sum: &str) -> Option<(Dataset, String)> {
        Dataset::VALUES
            .into_iter()
            .filter(|d| *d != self.dataset)
            .find_map(|d| {
                d.source().files.into_iter().find_map(|f| {
                    (f.gz_sha256 == sum || f.raw_sha256.as_deref() == Some(sum))
                        .then(|| (d, f.name.into_owned()))
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        for d in Dataset::VALUES {
            assert!(Dataset::ALL.contains(&d.as_str()));
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{d}\""));
        }
    }

    #[test]
    fn fingerprints_name_the_data_set_and_differ() {
        let m = Dataset::Mnist.source().fingerprint();
        let f = Dataset::FashionMnist.source().fingerprint();
        // MNIST's is the one every existing cell id was made with (tests/plan.rs pins ids).
        assert_eq!(m, "mnist-1380708c276834e0");
        assert!(f.starts_with("fashion-mnist-") && f.len() == "fashion-mnist-".len() + 16);
        // A source with another sum is other data.
        let mut source = Dataset::FashionMnist.source();
        source.files[3].gz_sha256 = Cow::Owned("0".repeat(64));
        assert_ne!(source.fingerprint(), f);
    }

    #[test]
    fn the_two_data_sets_share_names_and_shapes_but_no_sums() {
        let (m, f) = (Dataset::Mnist.source(), Dataset::FashionMnist.source());
        for (a, b) in m.files.iter().zip(&f.files) {
            assert_eq!((&a.name, a.kind, a.count), (&b.name, b.kind, b.count));
            assert_ne!(a.gz_sha256, b.gz_sha256);
            assert!(a.raw_sha256.is_some() && b.raw_sha256.is_none());
        }
        assert_eq!(
            f.other_dataset_with(&m.files[2].gz_sha256),
            Some((Dataset::Mnist, "t10k-images-idx3-ubyte".into()))
        );
        assert_eq!(f.other_dataset_with(&f.files[2].gz_sha256), None);
    }

    #[test]
    fn fashion_labels_are_named() {
        assert_eq!(Dataset::FashionMnist.class_name(9), "Ankle boot");
        assert_eq!(Dataset::FashionMnist.class_name(0), "T-shirt/top");
        assert_eq!(Dataset::Mnist.class_name(7), "7");
        assert!(Dataset::FashionMnist
            .classes_text()
            .starts_with("0 T-shirt/top, 1 Trouser, 2 Pullover"));
    }
}
