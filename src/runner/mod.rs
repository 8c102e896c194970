//! Running a plan's pending cells in parallel. `jobs` worker threads take cells in plan order;
//! each trains its cell inside its own rayon pool of `threads_per_job` threads (dfdx's matmul
//! uses the current rayon pool). A plain outer `par_iter` is avoided on purpose: a rayon worker
//! blocked in another pool's `install` steals more outer work, which would run more cells at
//! once than `jobs`. One failing or diverging cell never stops the others; a set stop flag
//! (Ctrl-C, SIGTERM, SIGUSR1) makes running cells stop at their next step, and they are not
//! marked finished. Every cell writes a checkpoint at each evaluation point and when stopped
//! (`store::checkpoint`); a cell that has one continues from it, bit-identical to a run that
//! was never stopped, and its checkpoints are removed when it finishes (unless kept with
//! `keep_checkpoints`). Before training a cell a worker claims its lease (see `store::lease`), so other
//! processes on the same results folder skip it; a stale lease is taken over. A cell's failure
//! is kept as text (error.txt, the event log, [`CellOutcome::Failed`]; a failure to write
//! error.txt is added to the message, never dropped); [`RunnerError`] is only for what stops the
//! whole run before any cell starts.

pub mod schedule;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::cluster::Origin;
use crate::error::chain;
use crate::plan::Cell;
use crate::store::checkpoint::CheckpointFiles;
use crate::store::lease::{Claim, Leases};
use crate::store::{MetricsLog, RunStore, StoreError};
use crate::trainer::fit::checkpoint::{Checkpoint, Progress, Span};
use crate::trainer::fit::{Observer, StepInfo};
use crate::trainer::record::{MetricRow, RunRecord, RunStatus};
use crate::trainer::{Trained, Trainer};

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub jobs: usize,
    pub threads_per_job: usize,
    /// A lease whose heartbeat is older than this is stale (see `store::lease`).
    pub lease_ttl: std::time::Duration,
    pub rerun_failed: bool,
    /// Keep a finished cell's checkpoints (by default they are removed).
    pub keep_checkpoints: bool,
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
    /// Stopped by the stop flag; nothing marks it finished. The next run continues it from
    /// the checkpoint written when it stopped, after `checkpoint` steps (None: nothing was
    /// trained yet, or the checkpoint could not be written; it starts again).
    Interrupted { checkpoint: Option<u64> },
    /// Not run here: another process holds its lease, or finished it meanwhile.
    Skipped(String),
    /// Trained to its rung (`[prune]`) and paused there with a checkpoint, after `iteration`
    /// steps: it waits for the rung's decision.
    Paused { rung: usize, iteration: u64 },
}

/// A cell to train, and the rung to pause it at (its index and step), if any.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    pub cell: &'a Cell,
    pub pause: Option<(usize, u64)>,
}

/// What a worker does next.
pub enum Next<'a> {
    Train(Job<'a>),
    /// Nothing to train now, but there may be soon (a running cell may promote others): ask
    /// again a little later.
    Wait,
    Done,
}

/// Where workers take their jobs: a fixed list of cells ([`run`]), or successive halving's
/// scheduler (`schedule`).
pub trait JobSource<'a>: Sync {
    /// The next job for `worker`.
    fn next(&self, worker: usize) -> Next<'a>;
    /// A job handed out by `next` ended so.
    fn done(&self, _job: &Job<'a>, _outcome: &CellOutcome) {}
}

/// The cells of a list, in order, each trained to its end.
struct List<'a, 'b> {
    cells: &'b [&'a Cell],
    next: AtomicUsize,
}

impl<'a> JobSource<'a> for List<'a, '_> {
    fn next(&self, _worker: usize) -> Next<'a> {
        match self.cells.get(self.next.fetch_add(1, Ordering::SeqCst)) {
            Some(cell) => Next::Train(Job { cell, pause: None }),
            None => Next::Done,
        }
    }
}

/// Hooks for progress display; all default to nothing. Called from worker threads.
pub trait SweepObserver: Sync {
    /// A cell starts: from the beginning, or from a checkpoint's `progress`.
    fn cell_started(&self, _worker: usize, _cell: &Cell, _resumed: Option<&Progress>) {}
    fn cell_step(&self, _worker: usize, _cell: &Cell, _info: &StepInfo) {}
    fn cell_eval(&self, _worker: usize, _cell: &Cell, _rows: &[MetricRow]) {}
    fn cell_finished(&self, _worker: usize, _cell: &Cell, _outcome: &CellOutcome) {}
}

/// Forwards the trainer's hooks to the sweep observer, keeps metrics.csv current and writes
/// the checkpoints.
struct CellObserver<'a> {
    worker: usize,
    cell: &'a Cell,
    sweep: &'a dyn SweepObserver,
    store: &'a RunStore,
    metrics: MetricsLog,
    checkpoints: CheckpointFiles,
    /// Steps of the last checkpoint written.
    saved: Mutex<Option<u64>>,
}

impl Observer for CellObserver<'_> {
    fn step(&self, info: &StepInfo) {
        self.sweep.cell_step(self.worker, self.cell, info);
    }
    fn eval(&self, rows: &[MetricRow]) {
        self.metrics.append(rows);
        self.sweep.cell_eval(self.worker, self.cell, rows);
    }
    fn wants_checkpoints(&self) -> bool {
        true
    }
    /// A checkpoint that cannot be written does not stop training (the cell can only lose
    /// progress): the event log says why, and the previous checkpoint stays.
    fn checkpoint(&self, ckpt: Checkpoint) {
        let steps = ckpt.progress.iteration;
        match self.checkpoints.save(steps, &ckpt.to_bytes()) {
            Ok(_) => *self.saved.lock().expect("saved lock") = Some(steps),
            Err(e) => self.store.log_event(
                "checkpoint_failed",
                Some(self.cell),
                serde_json::json!({ "iteration": steps, "error": chain(&e) }),
            ),
        }
    }
}

/// The newest usable checkpoint of `cell`, if any; files skipped on the way are logged.
fn checkpoint_to_resume(store: &RunStore, cell: &Cell) -> Result<Option<Checkpoint>, StoreError> {
    let files = store.layout.checkpoints(&cell.id);
    let found = files
        .newest(|bytes| Checkpoint::from_bytes(bytes, &cell.config).map_err(|e| e.to_string()))?;
    let had_unusable = !found.ignored.is_empty();
    for skipped in found.ignored {
        store.log_event(
            "checkpoint_ignored",
            Some(cell),
            serde_json::json!({ "path": skipped.path, "why": skipped.why }),
        );
    }
    if found.newest.is_none() && had_unusable {
        // Nothing usable: the cell starts again, and the unusable files would only take the
        // places of the checkpoints it is about to write.
        files.remove_all()?;
    }
    Ok(found.newest.map(|(_, ckpt)| ckpt))
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
fn claim_and_run(worker: usize, job: Job, pool: &rayon::ThreadPool, sh: &Shared) -> CellOutcome {
    let (store, cell) = (sh.store, job.cell);
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
    let outcome = run_cell(worker, job, pool, sh);
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

/// Trains one cell (to its end, or to the job's rung) and records it in the store.
fn run_cell(worker: usize, job: Job, pool: &rayon::ThreadPool, sh: &Shared) -> CellOutcome {
    let cell = job.cell;
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
    let resume = match checkpoint_to_resume(store, cell) {
        Ok(r) => r,
        Err(e) => return fail(chain(&e)),
    };
    if let Err(e) = store.start(cell, resume.is_some()) {
        return fail(chain(&e));
    }
    let metrics_csv = store.layout.metrics_csv(&cell.id);
    let metrics = match &resume {
        Some(ckpt) => {
            let p = &ckpt.progress;
            store.log_event(
                "resume",
                Some(cell),
                serde_json::json!({ "iteration": p.iteration, "epoch": p.epoch() }),
            );
            MetricsLog::resumed(metrics_csv, &p.metrics)
        }
        None => {
            store.log_event("start", Some(cell), serde_json::json!({}));
            MetricsLog::new(metrics_csv)
        }
    };
    sweep.cell_started(worker, cell, resume.as_ref().map(|c| &c.progress));
    let obs = CellObserver {
        worker,
        cell,
        sweep,
        store,
        metrics,
        checkpoints: store.layout.checkpoints(&cell.id),
        saved: Mutex::new(None),
    };
    let trained = catch_unwind(AssertUnwindSafe(|| {
        let span = Span {
            from: resume.as_ref(),
            pause_at: job.pause.map(|(_, steps)| steps),
        };
        pool.install(|| trainer.train(&cell.config, &obs, stop, span))
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
        // The checkpoint of the stop, when one was written at this step.
        let saved = *obs.saved.lock().expect("saved lock");
        if let Some((rung, steps)) = job.pause {
            // Reached its rung: paused there (whether or not a stop came meanwhile); or was
            // there already (its checkpoint at or past the rung), and nothing was trained.
            let already = resume
                .as_ref()
                .is_some_and(|c| c.progress.iteration >= steps);
            if (record.iterations == steps && saved == Some(steps)) || already {
                store.log_event(
                    "paused",
                    Some(cell),
                    serde_json::json!({ "rung": rung, "iteration": steps }),
                );
                return CellOutcome::Paused {
                    rung,
                    iteration: steps,
                };
            }
            if record.iterations == steps && !stop.load(Ordering::Relaxed) {
                // At the rung but its checkpoint could not be written: training it again would
                // only end here again.
                return fail(format!(
                    "reached rung {rung} (step {steps}) but could not write its checkpoint \
                     there; see the checkpoint_failed events"
                ));
            }
        }
        let checkpoint = saved.filter(|&s| s == record.iterations);
        store.log_event(
            "interrupted",
            Some(cell),
            serde_json::json!({ "iteration": record.iterations, "checkpoint": checkpoint }),
        );
        return CellOutcome::Interrupted { checkpoint };
    }
    record.origin = Some(sh.origin.clone());
    if let Err(e) = store.record_finished(cell, &record, weights.as_deref()) {
        return fail(chain(&e));
    }
    if !sh.opts.keep_checkpoints {
        // The cell is finished; a checkpoint left behind only costs disk.
        if let Err(e) = obs.checkpoints.remove_all() {
            store.log_event(
                "checkpoint_failed",
                Some(cell),
                serde_json::json!({ "error": chain(&e) }),
            );
        }
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
    let list = List {
        cells,
        next: AtomicUsize::new(0),
    };
    let workers = opts.jobs.clamp(1, cells.len().max(1));
    run_jobs(&list, workers, store, trainer, opts, stop, sweep)
}

/// How long a worker told to wait sleeps before asking for a job again.
const WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs the jobs of `source` on `workers` workers, as [`run`] does; a cell may have several
/// outcomes (paused at rungs, then finished), in the order they happened.
pub fn run_jobs<'a>(
    source: &dyn JobSource<'a>,
    workers: usize,
    store: &RunStore,
    trainer: &dyn Trainer,
    opts: &RunOptions,
    stop: &AtomicBool,
    sweep: &dyn SweepObserver,
) -> Result<Vec<(usize, CellOutcome)>, RunnerError> {
    let outcomes = Mutex::new(Vec::new());
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
            let (outcomes, shared) = (&outcomes, &shared);
            s.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let job = match source.next(w) {
                    Next::Train(job) => job,
                    Next::Wait => {
                        std::thread::sleep(WAIT);
                        continue;
                    }
                    Next::Done => break,
                };
                let outcome = claim_and_run(w, job, pool, shared);
                source.done(&job, &outcome);
                sweep.cell_finished(w, job.cell, &outcome);
                outcomes
                    .lock()
                    .expect("outcomes lock")
                    .push((job.cell.index, outcome));
            });
        }
    });
    let mut v = outcomes.into_inner().expect("outcomes lock");
    v.sort_by_key(|(i, _)| *i);
    Ok(v)
}
