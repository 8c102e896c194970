//! The results store: one directory per sweep, one per cell (see `layout`). Files are written
//! atomically; `result.json` is written last and is the only "finished" marker, so a crash at any
//! point leaves either a finished cell or one that runs again. Records carry a format version,
//! checked on read.

pub mod checkpoint;
pub mod layout;
pub mod lease;
pub mod state;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::IoError;
use crate::fsutil::write_atomic;
use crate::plan::{Cell, Plan};
use crate::trainer::record::{MetricRow, RunRecord, RunStatus, FORMAT_VERSION};
pub use layout::{Layout, RunDir};

/// An I/O or format problem with the store, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path} is not a valid {what}: {why}")]
    Corrupt {
        path: PathBuf,
        /// "result record", "plan".
        what: &'static str,
        why: String,
    },
    /// A claim renamed another worker's fresh lease aside and could not put it back; the lease
    /// is kept at `aside` (see `lease`).
    #[error("cannot put another worker's lease back at {path}; it is kept at {aside}")]
    LeaseAside {
        path: PathBuf,
        aside: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |e| IoError::at(op, path)(e).into()
}

/// What `result.json` holds: the cell's identity and its run record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub format_version: u32,
    pub cell_id: String,
    pub index: usize,
    pub variant: String,
    pub coords: std::collections::BTreeMap<String, String>,
    pub record: RunRecord,
}

/// What a cell's files say (see `state::CellState` for the state every command shows, which
/// also reads the lease and the record).
#[derive(Clone, Debug, PartialEq)]
pub enum CellStatus {
    /// Nothing written yet.
    New,
    /// Started (config written) but not finished: crashed, killed or interrupted.
    Partial,
    /// result.json holds a record with this status: finished (completed or diverged, both
    /// outcomes), or interrupted (`train` writes those; a sweep runs the cell again).
    Recorded(RunStatus),
    /// Training raised an error; the message is in error.txt.
    Failed(String),
    /// result.json exists but cannot be read (it is ignored and the cell runs again).
    Corrupt(String),
}

/// A run's `metrics.csv`, kept current while it trains: rows accumulate and the file is
/// rewritten atomically after every evaluation. A failed write does not stop training; the
/// first error is kept for the end of the run.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    rows: std::sync::Mutex<Vec<MetricRow>>,
    error: std::sync::Mutex<Option<String>>,
}

impl MetricsLog {
    pub fn new(path: PathBuf) -> Self {
        MetricsLog {
            path,
            rows: Default::default(),
            error: Default::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A log that continues from `rows` (a resumed run's rows so far), written at once.
    pub fn resumed(path: PathBuf, rows: &[MetricRow]) -> Self {
        let log = MetricsLog::new(path);
        log.append(rows);
        log
    }

    /// Adds the rows of one evaluation point and rewrites the file.
    pub fn append(&self, rows: &[MetricRow]) {
        let mut all = self.rows.lock().expect("metrics lock");
        all.extend_from_slice(rows);
        if let Err(e) = write_atomic(&self.path, &RunRecord::metrics_csv(&all)) {
            self.error
                .lock()
                .expect("error lock")
                .get_or_insert(format!("cannot write {}: {e}", self.path.display()));
        }
    }

    /// The first write error, if any.
    pub fn take_error(&self) -> Option<String> {
        self.error.lock().expect("error lock").take()
    }
}

/// A sweep's results directory.
#[derive(Clone, Debug)]
pub struct RunStore {
    pub layout: Layout,
    /// Event-log lines that could not be written (shared by clones), for the end of a sweep.
    event_failures: std::sync::Arc<EventFailures>,
}

/// How many event-log writes failed, and the first error.
#[derive(Debug, Default)]
struct EventFailures {
    count: std::sync::atomic::AtomicUsize,
    first: std::sync::Mutex<Option<String>>,
}

impl RunStore {
    /// The store of an existing sweep folder (as `results/<sweep>`), e.g. found by listing.
    pub fn at(dir: &Path) -> RunStore {
        RunStore {
            layout: Layout::at(dir),
            event_failures: Default::default(),
        }
    }

    /// Opens (creating if needed) `results_root/<plan name>` without writing anything else.
    pub fn open(results_root: &Path, plan_name: &str) -> RunStore {
        RunStore {
            layout: Layout::new(results_root, plan_name),
            event_failures: Default::default(),
        }
    }

    /// Creates the directories and writes the grid copy and the plan (atomically).
    pub fn init(&self, spec_text: &str, plan: &Plan) -> Result<(), StoreError> {
        let runs = self.layout.runs();
        fs::create_dir_all(&runs).map_err(io("create", &runs))?;
        let p = self.layout.spec_toml();
        write_atomic(&p, spec_text.as_bytes()).map_err(io("write", &p))?;
        let p = self.layout.plan_json();
        let json = serde_json::to_vec_pretty(plan).expect("plans serialize");
        write_atomic(&p, &json).map_err(io("write", &p))
    }

    /// Reads the plan that `init` wrote.
    pub fn load_plan(&self) -> Result<Plan, StoreError> {
        let path = self.layout.plan_json();
        let bytes = fs::read(&path).map_err(io("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path,
            what: "plan",
            why: e.to_string(),
        })
    }

    /// Reads a finished cell's record, checking the format version.
    pub fn load_result(&self, id: &str) -> Result<CellResult, StoreError> {
        let path = self.layout.result_json(id);
        let bytes = fs::read(&path).map_err(io("read", &path))?;
        let probe: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                what: "result record",
                path: path.clone(),
                why: e.to_string(),
            })?;
        let version = probe.get("format_version").and_then(|v| v.as_u64());
        if version != Some(FORMAT_VERSION as u64) {
            return Err(StoreError::Corrupt {
                what: "result record",
                path,
                why: match version {
                    Some(v) => {
                        format!("format version {v}; this rnnsweep reads version {FORMAT_VERSION}")
                    }
                    None => {
                        format!("no format_version; this rnnsweep reads version {FORMAT_VERSION}")
                    }
                },
            });
        }
        serde_json::from_value(probe).map_err(|e| StoreError::Corrupt {
            what: "result record",
            path,
            why: e.to_string(),
        })
    }

    /// The cell's status and, when result.json holds one, its record (read once).
    pub fn inspect(&self, cell: &Cell) -> (CellStatus, Option<CellResult>) {
        let id = &cell.id;
        if self.layout.result_json(id).exists() {
            return match self.load_result(id) {
                Ok(r) if r.cell_id == *id => {
                    (CellStatus::Recorded(r.record.status.clone()), Some(r))
                }
                Ok(r) => (
                    CellStatus::Corrupt(format!("result.json belongs to cell {}", r.cell_id)),
                    None,
                ),
                Err(e) => (CellStatus::Corrupt(e.to_string()), None),
            };
        }
        let status = if let Ok(msg) = fs::read_to_string(self.layout.error_txt(id)) {
            CellStatus::Failed(msg.lines().next().unwrap_or("").to_string())
        } else if self.layout.run_dir(id).exists() {
            CellStatus::Partial
        } else {
            CellStatus::New
        };
        (status, None)
    }

    /// Starts a cell: clears what an earlier attempt left, writes config.json. A cell that
    /// continues from a checkpoint (`resuming`) keeps its metrics.csv, which the run rewrites
    /// from the checkpoint's rows (atomically: other processes reading it never find it gone).
    pub fn start(&self, cell: &Cell, resuming: bool) -> Result<(), StoreError> {
        let dir = self.layout.run_dir(&cell.id);
        let metrics = self.layout.metrics_csv(&cell.id);
        let mut clear = vec![
            self.layout.result_json(&cell.id),
            self.layout.error_txt(&cell.id),
        ];
        if !resuming {
            clear.push(metrics);
        }
        for p in clear {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("remove", &p)(e))
                }
                _ => {}
            }
        }
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let p = self.layout.config_json(&cell.id);
        write_atomic(
            &p,
            &serde_json::to_vec_pretty(&cell.config).expect("configs serialize"),
        )
        .map_err(io("write", &p))
    }

    pub fn write_metrics(&self, id: &str, rows: &[MetricRow]) -> Result<(), StoreError> {
        let p = self.layout.metrics_csv(id);
        write_atomic(&p, &RunRecord::metrics_csv(rows)).map_err(io("write", &p))
    }

    pub fn write_weights(&self, id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let p = self.layout.weights(id);
        write_atomic(&p, bytes).map_err(io("write", &p))
    }

    /// Writes result.json: the cell is finished from this moment on.
    pub fn finish(&self, result: &CellResult) -> Result<(), StoreError> {
        let p = self.layout.result_json(&result.cell_id);
        write_atomic(
            &p,
            &serde_json::to_vec_pretty(result).expect("records serialize"),
        )
        .map_err(io("write", &p))
    }

    /// Records `cell` as finished with `record`: its metrics.csv, its weights (if any), then
    /// result.json, the "finished" marker, last.
    pub fn record_finished(
        &self,
        cell: &Cell,
        record: &RunRecord,
        weights: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.write_metrics(&cell.id, &record.metrics)?;
        if let Some(w) = weights {
            self.write_weights(&cell.id, w)?;
        }
        self.finish(&CellResult {
            format_version: FORMAT_VERSION,
            cell_id: cell.id.clone(),
            index: cell.index,
            variant: cell.variant.clone(),
            coords: cell.coords.clone(),
            record: record.clone(),
        })
    }

    pub fn fail(&self, id: &str, message: &str) -> Result<(), StoreError> {
        let p = self.layout.error_txt(id);
        write_atomic(&p, message.as_bytes()).map_err(io("write", &p))
    }

    /// Appends one event to events.jsonl like [`RunStore::event`], but a failed write is
    /// counted instead of returned: the log is a journal, and a sweep does not stop for it, but
    /// [`RunStore::event_failures`] tells at the end how many lines are missing and why.
    pub fn log_event(&self, event: &str, cell: Option<&Cell>, extra: serde_json::Value) {
        if let Err(e) = self.event(event, cell, extra) {
            let f = &self.event_failures;
            f.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f.first
                .lock()
                .expect("event failure lock")
                .get_or_insert_with(|| format!("{e:#}"));
        }
    }

    /// How many [`RunStore::log_event`] writes failed so far, and the first error.
    pub fn event_failures(&self) -> (usize, Option<String>) {
        let f = &self.event_failures;
        (
            f.count.load(std::sync::atomic::Ordering::Relaxed),
            f.first.lock().expect("event failure lock").clone(),
        )
    }

    /// Appends one JSON line to events.jsonl (a single write, so lines from concurrent
    /// workers do not interleave).
    pub fn event(
        &self,
        event: &str,
        cell: Option<&Cell>,
        extra: serde_json::Value,
    ) -> Result<(), StoreError> {
        let p = self.layout.events();
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut line =
            serde_json::json!({ "time": time, "event": event, "pid": std::process::id() });
        if let Some(c) = cell {
            line["cell"] = c.id.clone().into();
            line["index"] = c.index.into();
        }
        if let serde_json::Value::Object(m) = extra {
            for (k, v) in m {
                line[k] = v;
            }
        }
        let mut text = line.to_string();
        text.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io("open", &p))?;
        f.write_all(text.as_bytes()).map_err(io("append to", &p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event log that cannot be written is counted, with the first error naming the file;
    /// clones of the store share the count (the runner's workers hold clones or references).
    #[test]
    fn failed_event_writes_are_counted_not_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let store = RunStore::open(tmp.path(), "s");
        fs::create_dir_all(store.layout.root()).unwrap();
        store.log_event("start", None, serde_json::json!({}));
        assert_eq!(store.event_failures(), (0, None));
        let text = fs::read_to_string(store.layout.events()).unwrap();
        assert!(text.contains("\"event\":\"start\""), "{text}");

        // A folder where the log should be: every append fails.
        fs::remove_file(store.layout.events()).unwrap();
        fs::create_dir(store.layout.events()).unwrap();
        let clone = store.clone();
        store.log_event("done", None, serde_json::json!({}));
        clone.log_event("done", None, serde_json::json!({}));
        let (n, first) = store.event_failures();
        assert_eq!(n, 2);
        let first = first.unwrap();
        assert!(first.contains("events.jsonl"), "{first}");
    }
}
