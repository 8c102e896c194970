//! Downloading MNIST against a local HTTP server on 127.0.0.1: success with checksum
//! verification, fallback to the next mirror, and rejection of corrupt files without leftovers.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread;

use rnnsweep::data::{fetch, Mnist, FILES, TEST_LABELS};

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
    FILES
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
    let got = fetch::fetch_missing(&dir, &mirrors, &|e| {
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
    let mut want: Vec<String> = FILES.iter().map(|f| f.gz_name()).collect();
    want.sort();
    assert_eq!(dir_names(&dir), want);
    // A second fetch downloads nothing.
    assert!(fetch::fetch_missing(&dir, &mirrors, &|_| {})
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
    assert_eq!(dir_names(tmp.path()).len(), 4);
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
