//! Shared test helpers: where the MNIST files are for tests, loaded once per test binary
//! (order: RNNSWEEP_DATA; the project's ../shared/data/mnist; else the per-user cache directory,
//! downloading the files there on first use: a developer's machine with internet), and the
//! binary run with the fake trainer (`RNNSWEEP_FAKE_TRAINER`, see
//! `src/trainer/backend/fake.rs`) for tests of everything around training, which then need no
//! MNIST files.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use rnnsweep::data::{self, fetch, Mnist};
use rnnsweep::grid::Grid;
use rnnsweep::plan::Plan;
use rnnsweep::store::RunStore;
use rnnsweep::trainer::record::RunRecord;

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
        let dir = data::resolve_dir(None, data::Dataset::Mnist)
            .expect("a per-user cache directory for the MNIST files");
        let source = data::Dataset::Mnist.source();
        fetch::fetch_missing(&dir, &source, &source.mirrors(&[]), &|_| {}).unwrap_or_else(|e| {
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

/// A grid file under tests/grids.
pub fn grid(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/grids")
        .join(name)
}

/// `rnnsweep sweep GRID --results RESULTS EXTRA…` with the test data.
pub fn cmd(grid: &Path, results: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("rnnsweep"));
    c.arg("sweep")
        .arg(grid)
        .arg("--results")
        .arg(results)
        .args(extra)
        .env("RNNSWEEP_DATA", data_dir());
    c
}

pub fn sweep(grid: &Path, results: &Path, extra: &[&str]) -> Output {
    cmd(grid, results, extra).output().unwrap()
}

/// A data folder that does not exist, and a mirror nothing answers on: a command run with
/// [`fake_env`] fails if it tries to read or download MNIST.
pub const NO_DATA: &str = "/nonexistent/rnnsweep-tests-use-no-mnist";
pub const NO_MIRROR: &str = "http://127.0.0.1:9/";

/// Makes `c` train with the fake trainer following `rules` (e.g. `delay_ms=5; fail if seed=1`),
/// without any MNIST files.
pub fn fake_env<'a>(c: &'a mut Command, rules: &str) -> &'a mut Command {
    c.env("RNNSWEEP_FAKE_TRAINER", rules)
        .env("RNNSWEEP_DATA", NO_DATA)
        .env("RNNSWEEP_MNIST_MIRRORS", NO_MIRROR)
        .env("RNNSWEEP_FASHION_MNIST_MIRRORS", NO_MIRROR)
}

/// The binary with the fake trainer following `rules`.
pub fn fake_bin(rules: &str) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("rnnsweep"));
    fake_env(&mut c, rules);
    c
}

/// `rnnsweep sweep GRID --results RESULTS EXTRA…` with the fake trainer following `rules`.
pub fn fake_cmd(grid: &Path, results: &Path, extra: &[&str], rules: &str) -> Command {
    let mut c = fake_bin(rules);
    c.arg("sweep")
        .arg(grid)
        .arg("--results")
        .arg(results)
        .args(extra);
    c
}

pub fn fake_sweep(grid: &Path, results: &Path, extra: &[&str], rules: &str) -> Output {
    fake_cmd(grid, results, extra, rules).output().unwrap()
}

/// Polls `ok` every 10 ms until it holds; fails the test after `limit` naming `what`. The
/// limit is only a safety net for a hung test, never a tuned duration.
pub fn wait_for(what: &str, limit: std::time::Duration, mut ok: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

pub fn plan_and_store(grid: &Path, results: &Path) -> (Plan, RunStore) {
    let plan = Plan::expand(&Grid::load(grid).unwrap()).unwrap();
    let store = RunStore::open(results, &plan.name);
    (plan, store)
}

/// Events of one kind per cell id, from events.jsonl.
pub fn event_counts(store: &RunStore, kind: &str) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(store.layout.events()).unwrap_or_default();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).expect("every event line is complete JSON");
        if v["event"] == kind {
            *m.entry(v["cell"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    m
}

/// A record with what differs between two runs of the same config zeroed: the measured
/// seconds and speeds, and who trained it. Floats are compared by their bits (NaN equals NaN),
/// through the debug text of the record with every float written as its bits.
pub fn without_timing(mut r: RunRecord) -> String {
    r.train_seconds = 0.0;
    r.eval_seconds = 0.0;
    r.samples_per_sec = 0.0;
    r.origin = None;
    for m in &mut r.metrics {
        m.seconds = 0.0;
        m.samples_per_sec = m.samples_per_sec.map(|_| 0.0);
    }
    for e in &mut r.epochs {
        e.seconds = 0.0;
        e.samples_per_sec = 0.0;
    }
    let bits = |x: f64| format!("{:016x}", x.to_bits());
    let rows: Vec<String> = r
        .metrics
        .iter()
        .map(|m| {
            let opt = |x: Option<f64>| x.map(bits).unwrap_or_default();
            format!(
                "{} {} {:?} {} {} {} {} {} {}",
                m.epoch,
                m.iteration,
                m.split,
                bits(m.loss),
                bits(m.acc),
                m.samples,
                opt(m.grad_norm),
                opt(m.grad_norm_max),
                opt(m.lr)
            )
        })
        .collect();
    format!("{r:?}\n{}", rows.join("\n"))
}
