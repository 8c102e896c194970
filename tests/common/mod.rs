//! Shared test helpers: where the MNIST files are for tests, loaded once per test binary.
//! Order: RNNSWEEP_DATA; the project's ../shared/data/mnist; else the per-user cache directory,
//! downloading the files there on first use (a developer's machine with internet).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use rnnsweep::data::{self, fetch, Mnist};

pub fn data_dir() -> PathBuf {
    // Once per test binary: tests run in parallel threads and must not download side by side.
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(p) = std::env::var_os(data::DATA_ENV).filter(|v| !v.is_empty()) {
            return PathBuf::from(p);
        }
        let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
        if shared.is_dir() {
            return shared;
        }
        let dir = data::resolve_dir(None).expect("a per-user cache directory for the MNIST files");
        fetch::fetch_missing(&dir, &fetch::mirrors(&[]), &|_| {}).unwrap_or_else(|e| {
            panic!("tests need the MNIST files and could not download them: {e}")
        });
        dir
    })
    .clone()
}

pub fn mnist() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = data_dir();
        Mnist::load(&dir).unwrap_or_else(|e| {
            panic!(
                "tests need the MNIST files: set RNNSWEEP_DATA or provide {}: {e}",
                dir.display()
            )
        })
    })
}
