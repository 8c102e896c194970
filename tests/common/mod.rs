//! Shared test helpers: where the MNIST files are for tests (RNNSWEEP_DATA, else the project's
//! ../shared/data/mnist), loaded once per test binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use rnnsweep::data::Mnist;

pub fn data_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("RNNSWEEP_DATA").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist")
}

pub fn mnist() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = data_dir();
        Mnist::load(&dir).unwrap_or_else(|e| {
            panic!("tests need the MNIST files: set RNNSWEEP_DATA or provide {}: {e}", dir.display())
        })
    })
}
