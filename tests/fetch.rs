//! Downloading MNIST against a local HTTP server on 127.0.0.1: success with checksum
//! verification, fallback to the next mirror, and rejection of corrupt files without leftovers.
//! (Fashion-MNIST, from a generated fixture: tests/fashion.rs.)

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread;

use rnnsweep::data::{fetch, Dataset, Mnist, TEST_LABELS};

/// Serves `files` (name → bytes) under `/good/`, 404 under `/missing/`, and under `/corrupt/`
/// the same files with one byte flipped. Returns the base URL; the server thread ends with the test.
fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = server.server_addr().to_ip().unwrap().port();
    let files = Arc::new(files);
    thread::spawn(move || {
        for req in server.incoming_requests() {
            let url = req.url().to_string();
            let (dir, name) = url
                .trim_start_matches('/')
                .split_once('/')
                .unwrap_or(("", ""));
            let body = match (dir, files.get(name)) {
                ("good", Some(b)) => Some(b.clone()),
                ("corrupt", Some(b)) => {
                    let mut b = b.clone();
                    let mid = b.len() / 2;
                    b[mid] ^= 0xff;
                    Some(b)
                }
                _ => None,
            };
            let _ = match body {
                Some(b) => req.respond(tiny_http::Response::from_data(b)),
                None => req.respond(tiny_http::Response::empty(404)),
            };
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn real_files() -> HashMap<String, Vec<u8>> {
    let dir = common::data_dir();
    Dataset::Mnist
        .source()
        .files
        .iter()
        .map(|f| {
            (
                f.gz_name(),
                std::fs::read(dir.join(f.gz_name())).expect("shared MNIST .gz files"),
            )
        })
        .collect()
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn fetches_all_files_falling_back_to_the_next_mirror() {
    let base = serve(real_files());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    let mirrors = vec![format!("{base}/missing/"), format!("{base}/good")];
    let events = std::sync::Mutex::new(Vec::new());
    let source = Dataset::Mnist.source();
    let got = fetch::fetch_missing(&dir, &source, &mirrors, &|e| {
        events.lock().unwrap().push(format!("{e:?}"))
    })
    .unwrap();
    assert_eq!(got.len(), 4);
    let events = events.into_inner().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.contains("Failed") && e.contains("HTTP 404")),
        "{events:?}"
    );
    let m = Mnist::load(&dir).unwrap();
    assert_eq!(&m.test.labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    assert_eq!(m.train.len(), 60_000);
    // Nothing else (no temp files) in the directory.
    let mut want: Vec<String> = source.files.iter().map(|f| f.gz_name()).collect();
    want.sort();
    assert_eq!(dir_names(&dir), want);
    // A second fetch downloads nothing.
    assert!(fetch::fetch_missing(&dir, &source, &mirrors, &|_| {})
        .unwrap()
        .is_empty());
}

#[test]
fn corrupt_download_is_rejected_and_nothing_is_left_behind() {
    let base = serve(real_files());
    let tmp = tempfile::tempdir().unwrap();
    let err = fetch::fetch_one(
        tmp.path(),
        &TEST_LABELS,
        &[format!("{base}/corrupt")],
        &|_| {},
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte.gz"), "{msg}");
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(
        dir_names(tmp.path()).is_empty(),
        "left behind: {:?}",
        dir_names(tmp.path())
    );
}

#[test]
fn unreachable_mirrors_give_one_error_listing_every_attempt() {
    let base = serve(HashMap::new());
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = vec![format!("{base}/missing"), "http://127.0.0.1:9/".to_string()];
    let msg = fetch::fetch_one(tmp.path(), &TEST_LABELS, &mirrors, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("could not download t10k-labels-idx1-ubyte.gz from any mirror"),
        "{msg}"
    );
    assert!(
        msg.contains("HTTP 404") && msg.contains("127.0.0.1:9"),
        "{msg}"
    );
    // Each mirror once, its error once (the transport error's text does not repeat the URL).
    for m in &mirrors {
        let url = format!("{}/t10k-labels-idx1-ubyte.gz", m.trim_end_matches('/'));
        assert_eq!(msg.matches(&url).count(), 1, "{url} in {msg}");
    }
    assert!(dir_names(tmp.path()).is_empty());
}

#[test]
fn cli_fetches_on_first_use_from_the_mirror_env() {
    let base = serve(real_files());
    let tmp = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("rnnsweep")
        .unwrap()
        .args(["data", "show", "0", "--data-dir"])
        .arg(tmp.path())
        .env("RNNSWEEP_MNIST_MIRRORS", format!("{base}/good"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("test image 0, label 7"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("t=")).count(), 28);
    // The folder is a data root (not named after a data set): MNIST goes into its mnist/.
    assert_eq!(dir_names(tmp.path()), ["mnist"]);
    assert_eq!(dir_names(&tmp.path().join("mnist")).len(), 4);
    // And `data verify` agrees.
    let v = assert_cmd::Command::cargo_bin("rnnsweep")
        .unwrap()
        .args(["data", "verify", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(v.status.success());
    assert!(
        String::from_utf8_lossy(&v.stdout).starts_with("OK: 60000 training and 10000 test images")
    );
}

#[test]
fn a_tampered_local_file_fails_verification_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, mut bytes) in real_files() {
        if name.starts_with("t10k-labels") {
            let n = bytes.len();
            bytes[n - 20] ^= 1;
        }
        std::fs::write(tmp.path().join(name), bytes).unwrap();
    }
    let msg = Mnist::load(tmp.path()).unwrap_err().to_string();
    assert!(
        msg.contains("t10k-labels-idx1-ubyte.gz: SHA-256 is"),
        "{msg}"
    );
    assert!(msg.contains("rnnsweep data fetch"), "{msg}");
}

// ---- Fashion-MNIST, from a generated fixture ----
//
// This machine has no copy of Fashion-MNIST, and generated files cannot match its published
// sums: these tests build a tiny valid IDX set (20 training and 10 test images), gzip it, and
// pass a source of their own (same data set, same file names, the fixture's sums and counts) to
// the same fetch, verify and load code the shipped sources go through. The shipped source itself
// is tested by rejecting the fixture.

mod fashion_fixture {
    use std::borrow::Cow;
    use std::collections::HashMap;
    use std::io::Write;

    use rnnsweep::data::idx::IdxKind;
    use rnnsweep::data::{DataSource, Dataset, IdxFile};
    use sha2::{Digest, Sha256};

    pub const TRAIN: usize = 20;
    pub const TEST: usize = 10;

    /// The fixture: its `.gz` files by name, the source that accepts them, and its contents.
    pub struct Fixture {
        pub files: HashMap<String, Vec<u8>>,
        pub source: DataSource,
        pub train_images: Vec<u8>,
        pub train_labels: Vec<u8>,
        pub test_images: Vec<u8>,
        pub test_labels: Vec<u8>,
    }

    fn idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn images(n: usize, salt: usize) -> Vec<u8> {
        (0..n * 784)
            .map(|p| ((p / 784 * 31 + p % 784 * 7 + salt) % 256) as u8)
            .collect()
    }

    pub fn fixture() -> Fixture {
        let train_images = images(TRAIN, 0);
        let test_images = images(TEST, 101);
        let train_labels: Vec<u8> = (0..TRAIN).map(|i| (i % 10) as u8).collect();
        let test_labels: Vec<u8> = (0..TEST).map(|i| (i * 3 % 10) as u8).collect();
        let parts = [
            ("train-images-idx3-ubyte", IdxKind::Images, TRAIN, {
                idx(2051, &[TRAIN as u32, 28, 28], &train_images)
            }),
            ("train-labels-idx1-ubyte", IdxKind::Labels, TRAIN, {
                idx(2049, &[TRAIN as u32], &train_labels)
            }),
            ("t10k-images-idx3-ubyte", IdxKind::Images, TEST, {
                idx(2051, &[TEST as u32, 28, 28], &test_images)
            }),
            ("t10k-labels-idx1-ubyte", IdxKind::Labels, TEST, {
                idx(2049, &[TEST as u32], &test_labels)
            }),
        ];
        let mut files = HashMap::new();
        let sources: Vec<IdxFile> = parts
            .into_iter()
            .map(|(name, kind, count, raw)| {
                let gz = gzip(&raw);
                let sum: String = Sha256::digest(&gz)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                files.insert(format!("{name}.gz"), gz);
                IdxFile {
                    name: Cow::Borrowed(name),
                    kind,
                    count,
                    gz_sha256: Cow::Owned(sum),
                    raw_sha256: None,
                }
            })
            .collect();
        Fixture {
            files,
            source: DataSource {
                dataset: Dataset::FashionMnist,
                files: sources.try_into().unwrap(),
                mirrors: vec![],
            },
            train_images,
            train_labels,
            test_images,
            test_labels,
        }
    }
}

use fashion_fixture::fixture;
use rnnsweep::data::{dataset_dir, DataSets};
use rnnsweep::trainer::fit::checkpoint::Span;

#[test]
fn fashion_fetch_verify_load_end_to_end_from_a_local_mirror() {
    let fx = fixture();
    let base = serve(fx.files.clone());
    let tmp = tempfile::tempdir().unwrap();
    // The data root's fashion-mnist/ folder, as every command finds it.
    let dir = dataset_dir(tmp.path(), Dataset::FashionMnist).unwrap();
    assert_eq!(dir, tmp.path().join("fashion-mnist"));
    let source = rnnsweep::data::DataSource {
        mirrors: vec![format!("{base}/missing"), format!("{base}/good/")],
        ..fx.source.clone()
    };
    // The source's own mirrors, unless some are given.
    let mirrors = source.mirrors(&[]);
    assert_eq!(mirrors, source.mirrors);
    let got = fetch::fetch_missing(&dir, &source, &mirrors, &|_| {}).unwrap();
    assert_eq!(got.len(), 4);
    let mut want: Vec<String> = fx.files.keys().cloned().collect();
    want.sort();
    assert_eq!(dir_names(&dir), want);
    assert_eq!(source.verify_dir(&dir).unwrap().len(), 4);
    let m = source.load(&dir).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (20, 10));
    assert_eq!(m.train.images, fx.train_images);
    assert_eq!(m.train.labels, fx.train_labels);
    assert_eq!(m.test.images, fx.test_images);
    assert_eq!(m.test.labels, fx.test_labels);
    // Present files are not fetched again.
    assert!(fetch::fetch_missing(&dir, &source, &mirrors, &|_| {})
        .unwrap()
        .is_empty());
    // `data show`'s text names the class.
    let shown = rnnsweep::commands::data::show_image(
        &m,
        Dataset::FashionMnist,
        3,
        false,
        &rnnsweep::data::sequence::Reading::new(rnnsweep::data::sequence::InputMode::Rows, 0),
    )
    .unwrap();
    assert!(
        shown
            .starts_with("Fashion-MNIST test image 3, label 9 (Ankle boot): read as 28 time steps"),
        "{shown}"
    );
    assert_eq!(shown.lines().filter(|l| l.starts_with("t=")).count(), 28);
}

#[test]
fn a_corrupt_fashion_download_is_rejected_and_nothing_is_left_behind() {
    let fx = fixture();
    let base = serve(fx.files.clone());
    let tmp = tempfile::tempdir().unwrap();
    // Parents that did not exist either: the failed fetch removes every folder it made.
    let dir = tmp.path().join("data/new/fashion-mnist");
    let msg = fetch::fetch_missing(&dir, &fx.source, &[format!("{base}/corrupt")], &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("could not download train-images-idx3-ubyte.gz from any mirror"),
        "{msg}"
    );
    assert!(
        msg.contains("checksum mismatch") && msg.contains("(file rejected)"),
        "{msg}"
    );
    // What to do next: another mirror, or the files copied by hand.
    assert!(
        msg.contains("--mirror URL (or set RNNSWEEP_FASHION_MNIST_MIRRORS)")
            && msg.contains(&format!("copy the four .gz files into {}", dir.display())),
        "{msg}"
    );
    assert!(
        dir_names(tmp.path()).is_empty(),
        "left behind: {:?}",
        dir_names(tmp.path())
    );
}

/// Fashion-MNIST's decompressed files have no published sums: such a file is refused with a
/// clear error, and fetching puts the verifiable .gz beside it (which is then what is read).
#[test]
fn an_ungzipped_fashion_file_is_refused_and_its_gz_fetched() {
    let fx = fixture();
    let base = serve(fx.files.clone());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fashion-mnist");
    std::fs::create_dir(&dir).unwrap();
    let mut raw = Vec::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&fx.files["t10k-labels-idx1-ubyte.gz"][..])
        .read_to_end(&mut raw)
        .unwrap();
    for (name, gz) in &fx.files {
        if name.starts_with("t10k-labels") {
            std::fs::write(dir.join("t10k-labels-idx1-ubyte"), &raw).unwrap();
        } else {
            std::fs::write(dir.join(name), gz).unwrap();
        }
    }
    let msg = fx.source.verify_dir(&dir).unwrap_err().to_string();
    assert!(
        msg.contains("t10k-labels-idx1-ubyte: an un-gzipped Fashion-MNIST file cannot be verified"),
        "{msg}"
    );
    assert!(
        msg.contains("rnnsweep data fetch --dataset fashion-mnist"),
        "{msg}"
    );
    let got = fetch::fetch_missing(&dir, &fx.source, &[format!("{base}/good")], &|_| {}).unwrap();
    assert_eq!(got, [dir.join("t10k-labels-idx1-ubyte.gz")]);
    assert_eq!(fx.source.load(&dir).unwrap().test.labels, fx.test_labels);
}

/// Each data set needs its own folder (the file names are the same): MNIST's files where
/// Fashion-MNIST's should be are named as such.
#[test]
fn mnist_files_in_the_fashion_folder_are_named_as_mnist() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fashion-mnist");
    std::fs::create_dir(&dir).unwrap();
    for (name, bytes) in real_files() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let msg = Dataset::FashionMnist
        .source()
        .load(&dir)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(
            "train-images-idx3-ubyte.gz: SHA-256 is 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609, \
             expected 3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84; it is \
             MNIST's train-images-idx3-ubyte, not Fashion-MNIST's: each data set needs its own folder"
        ),
        "{msg}"
    );
    // And a missing Fashion-MNIST file says how to fetch it.
    let empty = tmp.path().join("empty");
    let msg = Dataset::FashionMnist
        .source()
        .verify_dir(&empty)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("Fashion-MNIST file train-images-idx3-ubyte.gz is missing from"),
        "{msg}"
    );
    assert!(
        msg.contains("run `rnnsweep data fetch --dataset fashion-mnist`"),
        "{msg}"
    );
}

/// The shipped binary checks downloads against the published sums: the fixture, served as
/// Fashion-MNIST, is rejected by `data fetch` (with --mirror) and by `data show` (fetching on
/// first use from RNNSWEEP_FASHION_MNIST_MIRRORS), and nothing is kept.
#[test]
fn cli_rejects_files_that_are_not_the_published_fashion_mnist() {
    let fx = fixture();
    let base = serve(fx.files.clone());
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("rnnsweep")
            .unwrap()
            .args(args)
            .arg("--data-dir")
            .arg(tmp.path())
            .env("RNNSWEEP_FASHION_MNIST_MIRRORS", format!("{base}/good"))
            .env("RNNSWEEP_MNIST_MIRRORS", "http://127.0.0.1:9/")
            .output()
            .unwrap()
    };
    let mirror = format!("{base}/good");
    for args in [
        &[
            "data",
            "fetch",
            "--dataset",
            "fashion-mnist",
            "--mirror",
            &mirror,
        ][..],
        &["data", "show", "0", "--dataset", "fashion-mnist"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("could not download train-images-idx3-ubyte.gz from any mirror"),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "{base}/good/train-images-idx3-ubyte.gz: checksum mismatch"
            )),
            "{err}"
        );
        // Named once: in the error, not also as a warning before it.
        let url = format!("{base}/good/train-images-idx3-ubyte.gz");
        assert_eq!(err.matches(&url).count(), 1, "{err}");
        assert!(
            err.contains(
                "expected 3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
            ),
            "{err}"
        );
        assert!(dir_names(&tmp.path().join("fashion-mnist")).is_empty());
        // MNIST's folder is not touched.
        assert!(!tmp.path().join("mnist").exists());
    }
    let out = run(&["data", "verify", "--dataset", "fashion-mnist"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Fashion-MNIST file train-images-idx3-ubyte.gz is missing from"),
        "{err}"
    );
    let out = run(&["data", "verify", "--dataset", "kmnist"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("use one of: mnist, fashion-mnist"), "{err}");
}

/// The real trainer trains on the data set a config names, from the data sets loaded: here
/// the fixture as Fashion-MNIST (20 training images, 10 test images). A data set that was not
/// loaded is an error naming it.
#[test]
fn the_trainer_trains_on_the_configs_data_set() {
    use std::sync::atomic::AtomicBool;

    use rnnsweep::trainer::backend::device::DeviceRequest;
    use rnnsweep::trainer::backend::DfdxTrainer;
    use rnnsweep::trainer::config::presets::preset;
    use rnnsweep::trainer::config::{Budget, EvalEvery};
    use rnnsweep::trainer::fit::Silent;
    use rnnsweep::trainer::record::{MetricSplit, RunStatus};
    use rnnsweep::trainer::Trainer;

    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    for (name, gz) in &fx.files {
        std::fs::write(tmp.path().join(name), gz).unwrap();
    }
    let mut sets = DataSets::default();
    sets.insert(Dataset::FashionMnist, fx.source.load(tmp.path()).unwrap());
    let mut cfg = preset("lstm_h20").unwrap();
    cfg.dataset = Dataset::FashionMnist;
    cfg.model.hidden = 8;
    cfg.batch_size = 10;
    cfg.budget = Budget::Iterations(4);
    cfg.train_limit = Some(20);
    cfg.eval.every = EvalEvery::Iterations(2);
    cfg.eval.before_training = false;
    let trainer = DfdxTrainer {
        data: &sets,
        device: DeviceRequest::Cpu,
    };
    let stop = AtomicBool::new(false);
    let t = trainer.train(&cfg, &Silent, &stop, Span::whole()).unwrap();
    assert_eq!(t.record.status, RunStatus::Completed);
    assert_eq!(t.record.config.dataset, Dataset::FashionMnist);
    // Evaluated on the fixture's 10 test images (the config allows 10,000).
    let tests: Vec<_> = t
        .record
        .metrics
        .iter()
        .filter(|r| r.split == MetricSplit::Test)
        .collect();
    assert_eq!(tests.len(), 2);
    assert!(tests.iter().all(|r| r.samples == 10));
    // MNIST was not loaded: an MNIST config is refused, naming it.
    cfg.dataset = Dataset::Mnist;
    let e = trainer
        .train(&cfg, &Silent, &stop, Span::whole())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("the mnist data was not loaded"), "{e}");
}
