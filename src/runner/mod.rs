//! Running a plan's pending cells in parallel. `jobs` worker threads take cells in plan order;
//! each trains its cell inside its own rayon pool of `threads_per_job` threads (dfdx's matmul
//! uses the current rayon pool). A plain outer `par_iter` is avoided on purpose: a rayon worker
//! blocked in another pool's `install` steals more outer work, which would run more cells at
//! once than `jobs`. One failing or diverging cell never stops the others; a set stop flag
//! (Ctrl-C, SIGTERM, SIGUSR1) makes running cells stop at their next step, and they are not
//! marked finished. Before training a cell a worker claims its lease (see `store::lease`), so other
//! processes on the same results folder skip it; a stale lease is taken over. A cell's failure
//! is kept as text (error.txt, the event log, [`CellOutcome::Failed`]; a failure to write
//! error.txt is added to the message, never dropped); [`RunnerError`] is only for what stops the
//! whole run before any cell starts.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::cluster::Origin;
use crate::error::chain;
use crate::plan::Cell;
use crate::store::lease::{Claim, Leases};
use crate::store::{CellResult, MetricsLog, RunStore};
use crate::trainer::fit::{Observer, StepInfo};
use crate::trainer::record::{MetricRow, RunRecord, RunStatus, FORMAT_VERSION};
use crate::trainer::{Trained, Trainer};

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub jobs: usize,
    pub threads_per_job: usize,
    /// A lease whose heartbeat is older than this is stale (see `store::lease`).
    pub lease_ttl: std::time::Duration,
    pub rerun_failed: bool,
}

/// What stops [`run`] as a whole (a cell's own failure is a [`CellOutcome::Failed`] instead).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(
        "cannot start a thread pool of {threads} threads for a worker (lower --jobs or \
         --threads-per-job)"
    )]
    ThreadPool {
        threads: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
}

/// How one cell ended in this run.
#[derive(Clone, Debug)]
pub enum CellOutcome {
    /// Finished: trained to the end of its budget, or diverged (both recorded in result.json;
    /// see `CellState::finished`).
    Finished(Box<RunRecord>),
    /// An error with its causes, or a panic's message (also in error.txt).
    Failed(String),
    /// Stopped by the stop flag; nothing marks it finished, so the next run starts it again.
    Interrupted,
    /// Not run here: another process holds its lease, or finished it meanwhile.
    Skipped(String),
}

/// Hooks for progress display; all default to nothing. Called from worker threads.
pub trait SweepObserver: Sync {
    fn cell_started(&self, _worker: usize, _cell: &Cell) {}
    fn cell_step(&self, _worker: usize, _cell: &Cell, _info: &StepInfo) {}
    fn cell_eval(&self, _worker: usize, _cell: &Cell, _rows: &[MetricRow]) {}
    fn cell_finished(&self, _worker: usize, _cell: &Cell, _outcome: &CellOutcome) {}
}

/// Forwards the trainer's hooks to the sweep observer and keeps metrics.csv current.
struct CellObserver<'a> {
    worker: usize,
    cell: &'a Cell,
    sweep: &'a dyn SweepObserver,
    metrics: MetricsLog,
}

impl Observer for CellObserver<'_> {
    fn step(&self, info: &StepInfo) {
        self.sweep.cell_step(self.worker, self.cell, info);
    }
    fn eval(&self, rows: &[MetricRow]) {
        self.metrics.append(rows);
        self.sweep.cell_eval(self.worker, self.cell, rows);
    }
}

/// What every worker shares.
struct Shared<'a> {
    store: &'a RunStore,
    leases: Leases,
    origin: Origin,
    trainer: &'a dyn Trainer,
    opts: &'a RunOptions,
    stop: &'a AtomicBool,
    sweep: &'a dyn SweepObserver,
}

/// Claims a cell's lease, then trains it if it still needs it.
fn claim_and_run(worker: usize, cell: &Cell, pool: &rayon::ThreadPool, sh: &Shared) -> CellOutcome {
    let store = sh.store;
    let lease = match sh.leases.claim(&cell.id, &sh.origin) {
        Err(e) => {
            let msg = format!("cannot claim the cell: {}", chain(&e));
            store.log_event("failed", Some(cell), serde_json::json!({ "error": msg }));
            return CellOutcome::Failed(msg);
        }
        Ok(Claim::Held(info)) => {
            return CellOutcome::Skipped(format!("leased by {}", info.owner.describe()))
        }
        Ok(Claim::Acquired(lease)) => lease,
        Ok(Claim::TookOver(lease, old, why)) => {
            store.log_event(
                "takeover",
                Some(cell),
                serde_json::json!({ "previous_owner": old.owner, "why": why }),
            );
            lease
        }
    };
    // The lease is ours; the cell may have been finished since the plan was read.
    let (state, _) = store.cell_state(cell, None);
    if !state.needs_run(sh.opts.rerun_failed) {
        return CellOutcome::Skipped(format!("{} meanwhile", state.name()));
    }
    let outcome = run_cell(worker, cell, pool, sh);
    if lease.lost() {
        // Our heartbeat stalled past the time-to-live and another worker took the cell over;
        // both may have finished it, and result.json (written atomically) holds one of them.
        store.log_event(
            "lease_lost",
            Some(cell),
            serde_json::json!({ "ttl_seconds": sh.leases.ttl.as_secs_f64() }),
        );
    }
    outcome
}

/// Trains one cell and records it in the store.
fn run_cell(worker: usize, cell: &Cell, pool: &rayon::ThreadPool, sh: &Shared) -> CellOutcome {
    let Shared {
        store,
        trainer,
        stop,
        sweep,
        ..
    } = *sh;
    let fail = |msg: String| {
        // error.txt is what `status` and the next sweep read. Should it not be written, the
        // cell fails all the same, and its message (printed, and in the event log) says why.
        let msg = match store.fail(&cell.id, &msg) {
            Ok(()) => msg,
            Err(e) => format!("{msg}; and error.txt was not kept: {}", chain(&e)),
        };
        store.log_event("failed", Some(cell), serde_json::json!({ "error": msg }));
        CellOutcome::Failed(msg)
    };
    if let Err(e) = store.start(cell) {
        return fail(chain(&e));
    }
    store.log_event("start", Some(cell), serde_json::json!({}));
    sweep.cell_started(worker, cell);
    let obs = CellObserver {
        worker,
        cell,
        sweep,
        metrics: MetricsLog::new(store.layout.metrics_csv(&cell.id)),
    };
    let trained = catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| trainer.train(&cell.config, &obs, stop))
    }));
    let Trained {
        mut record,
        weights,
    } = match trained {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return fail(chain(&e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            return fail(format!("training panicked: {what}"));
        }
    };
    if let Some(e) = obs.metrics.take_error() {
        return fail(e);
    }
    if let RunStatus::Interrupted { .. } = record.status {
        store.log_event(
            "interrupted",
            Some(cell),
            serde_json::json!({ "iteration": record.iterations }),
        );
        return CellOutcome::Interrupted;
    }
    record.origin = Some(sh.origin.clone());
    let finish = || -> Result<(), crate::store::StoreError> {
        store.write_metrics(&cell.id, &record.metrics)?;
        if let Some(w) = &weights {
            store.write_weights(&cell.id, w)?;
        }
        store.finish(&CellResult {
            format_version: FORMAT_VERSION,
            cell_id: cell.id.clone(),
            index: cell.index,
            variant: cell.variant.clone(),
            coords: cell.coords.clone(),
            record: record.clone(),
        })
    };
    if let Err(e) = finish() {
        return fail(chain(&e));
    }
    // The event of a finished cell is called "done" in events.jsonl.
    store.log_event(
        "done",
        Some(cell),
        serde_json::json!({ "status": record.status.name(), "test_acc": record.final_test_acc }),
    );
    CellOutcome::Finished(Box::new(record))
}

/// Runs `cells` (already filtered to those that need running) with `trainer` and returns each
/// outcome with its plan index, sorted by index. Cells not started because of the stop flag are
/// left out.
pub fn run(
    cells: &[&Cell],
    store: &RunStore,
    trainer: &dyn Trainer,
    opts: &RunOptions,
    stop: &AtomicBool,
    sweep: &dyn SweepObserver,
) -> Result<Vec<(usize, CellOutcome)>, RunnerError> {
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::with_capacity(cells.len()));
    let workers = opts.jobs.clamp(1, cells.len().max(1));
    let threads = opts.threads_per_job.max(1);
    let pools = (0..workers)
        .map(|_| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|source| RunnerError::ThreadPool { threads, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Shared {
        store,
        leases: Leases::new(store.layout.leases(), opts.lease_ttl),
        origin: Origin::current(),
        trainer,
        opts,
        stop,
        sweep,
    };
    std::thread::scope(|s| {
        for (w, pool) in pools.iter().enumerate() {
            let (next, outcomes, shared) = (&next, &outcomes, &shared);
            s.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(cell) = cells.get(i) else { break };
                let outcome = claim_and_run(w, cell, pool, shared);
                sweep.cell_finished(w, cell, &outcome);
                outcomes
                    .lock()
                    .expect("outcomes lock")
                    .push((cell.index, outcome));
            });
        }
    });
    let mut v = outcomes.into_inner().expect("outcomes lock");
    v.sort_by_key(|(i, _)| *i);
    Ok(v)
}
