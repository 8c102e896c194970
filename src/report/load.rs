//! Reading sweeps back from disk, and nothing else: the plan and each cell's record (serde, in
//! parallel), turned into two polars frames: one row per run, and every metric row in long
//! format. The metric rows come from `result.json`, which holds exactly what `metrics.csv` holds
//! for a finished cell, so each file is read once (scanning 10,000 small CSV files separately
//! costs seconds). Counts say how many cells were loaded, diverged (with where and what went
//! non-finite), collapsed, failed, corrupt or are missing, so nothing disappears silently and
//! nothing is counted as something else.
//!
//! The runs table has a column for every grid key (`hyper`: the value in force, null where the
//! key does not apply), named as the grid names it, so grouping by a grid axis and showing it
//! use the name the user wrote; the text columns `axis_<key>` keep each cell's coordinates as
//! the plan wrote them. A cell's state is the store's own
//! (`RunStore::inspect`, as `rnnsweep status` shows it): a `result.json` that cannot be read, is of
//! another format version or belongs to another cell is `corrupt`, never `missing`.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use super::hyper;
use crate::store::state::CellState;
use crate::store::{Layout, RunStore};
use crate::trainer::config::keys::KEYS;
use crate::trainer::config::{Budget, TrainConfig};
use crate::trainer::record::{MetricSplit, RunStatus};

/// A diverged run: where training stopped and what went non-finite first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DivergedRun {
    pub sweep: String,
    pub index: usize,
    pub variant: String,
    pub seed: u64,
    pub epoch: u64,
    /// The step (counted from the start of training) whose values were not finite.
    pub iteration: u64,
    /// "loss", a gradient ("rnn.weight_hh_l0.grad") or a parameter after the update
    /// ("rnn.weight_hh_l0"); None in records written before it was recorded.
    pub non_finite: Option<String>,
}

/// A collapsed run: completed, but predicting one class for nearly every test image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CollapsedRun {
    pub sweep: String,
    pub index: usize,
    pub variant: String,
    pub seed: u64,
    /// The class predicted and its share of the evaluated test images, when recorded.
    pub class: Option<u8>,
    pub share: Option<f64>,
}

/// What was found on disk. Every cell of the plans is in exactly one of: completed, diverged,
/// pruned, failed, corrupt, missing (collapsed runs are a subset of completed).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Cells in the plans.
    pub cells: usize,
    /// Trained to the end (collapsed ones included).
    pub completed: usize,
    pub diverged: usize,
    /// Stopped at a rung by successive halving (`[prune]`).
    pub pruned: usize,
    /// Training samples of the finished runs (completed, diverged, pruned), and what they would
    /// have been without pruning (each pruned run trained to its full budget).
    pub samples: u64,
    pub samples_unpruned: u64,
    /// Completed runs whose final test predictions are one class for ≥ 99 % of the images.
    pub collapsed: usize,
    /// (sweep, cell index, first line of error.txt)
    pub failed: Vec<(String, usize, String)>,
    /// (sweep, cell index, why): a result.json that exists but cannot be used (not a record,
    /// another format version, another cell's record). Not loaded; a sweep runs the cell again.
    pub corrupt: Vec<(String, usize, String)>,
    /// Not finished and nothing wrong on disk: never run, or interrupted / still running.
    pub missing: usize,
    /// Every diverged run, in plan order.
    pub diverged_runs: Vec<DivergedRun>,
    /// Every collapsed run, in plan order.
    pub collapsed_runs: Vec<CollapsedRun>,
}

impl Counts {
    /// "46/48 runs loaded (3 diverged, 1 collapsed), 1 failed, 1 corrupt, 1 missing (not run
    /// yet or interrupted)"
    pub fn line(&self) -> String {
        let loaded = self.completed + self.diverged + self.pruned;
        let mut s = format!("{loaded}/{} runs loaded", self.cells);
        let mut outcomes = Vec::new();
        if self.diverged > 0 {
            outcomes.push(format!("{} diverged", self.diverged));
        }
        if self.pruned > 0 {
            outcomes.push(format!("{} pruned", self.pruned));
        }
        if self.collapsed > 0 {
            outcomes.push(format!("{} collapsed", self.collapsed));
        }
        if !outcomes.is_empty() {
            s.push_str(&format!(" ({})", outcomes.join(", ")));
        }
        if !self.failed.is_empty() {
            s.push_str(&format!(", {} failed", self.failed.len()));
        }
        if !self.corrupt.is_empty() {
            s.push_str(&format!(", {} corrupt", self.corrupt.len()));
        }
        if self.missing > 0 {
            s.push_str(&format!(
                ", {} missing (not run yet or interrupted)",
                self.missing
            ));
        }
        if self.pruned > 0 {
            s.push_str(&format!(
                "; {}",
                compute_text(self.samples, self.samples_unpruned)
            ));
        }
        s
    }

    /// One line per failed or corrupt cell, all of them: "failed: sweep[index] message",
    /// "corrupt: sweep[index] why".
    pub fn failure_lines(&self) -> Vec<String> {
        let failed = self
            .failed
            .iter()
            .map(|(sw, i, m)| format!("failed: {sw}[{i}] {m}"));
        let corrupt = self
            .corrupt
            .iter()
            .map(|(sw, i, m)| format!("corrupt: {sw}[{i}] {m}"));
        failed.chain(corrupt).collect()
    }

    /// One line per diverged run, then one per collapsed run, at most `max` of each (then a
    /// line saying how many more).
    pub fn outcome_lines(&self, max: usize) -> Vec<String> {
        let mut out = self.diverged_lines(max);
        out.extend(self.collapsed_lines(max));
        out
    }

    /// "diverged: sweep[index] variant seed S at epoch E step I (rnn.weight_hh_l0.grad)", at
    /// most `max`, then "… and N more diverged runs".
    pub fn diverged_lines(&self, max: usize) -> Vec<String> {
        let mut out: Vec<String> = self
            .diverged_runs
            .iter()
            .take(max)
            .map(|r| {
                let what = r
                    .non_finite
                    .as_ref()
                    .map_or(String::new(), |t| format!(" ({t})"));
                format!(
                    "diverged: {}[{}] {} seed {} at epoch {} step {}{what}",
                    r.sweep, r.index, r.variant, r.seed, r.epoch, r.iteration
                )
            })
            .collect();
        and_more(&mut out, self.diverged_runs.len(), max, "diverged");
        out
    }

    /// "collapsed: sweep[index] variant seed S predicts class 1 for 99.6% of test images", at
    /// most `max`, then "… and N more collapsed runs".
    pub fn collapsed_lines(&self, max: usize) -> Vec<String> {
        let mut out: Vec<String> = self
            .collapsed_runs
            .iter()
            .take(max)
            .map(|r| {
                let what = match (r.class, r.share) {
                    (Some(c), Some(s)) => {
                        format!(" predicts class {c} for {:.1}% of test images", 100.0 * s)
                    }
                    _ => " predicts one class for nearly every test image".into(),
                };
                format!(
                    "collapsed: {}[{}] {} seed {}{what}",
                    r.sweep, r.index, r.variant, r.seed
                )
            })
            .collect();
        and_more(&mut out, self.collapsed_runs.len(), max, "collapsed");
        out
    }
}

/// Appends "… and N more <what> runs" when `total` lines were cut to `max`.
/// "compute: 1.21M training samples, 31% of the 3.90M these runs take without pruning".
pub fn compute_text(samples: u64, without_pruning: u64) -> String {
    format!(
        "compute: {} training samples, {:.0}% of the {} these runs take without pruning",
        si(samples),
        100.0 * samples as f64 / without_pruning.max(1) as f64,
        si(without_pruning)
    )
}

/// A count with an SI suffix: 950, 12.3k, 4.56M, 1.2G.
fn si(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

fn and_more(out: &mut Vec<String>, total: usize, max: usize, what: &str) {
    if total > max {
        let more = total - max;
        out.push(format!("… and {more} more {what} {}", runs_word(more)));
    }
}

/// "run" or "runs".
pub fn runs_word(n: usize) -> &'static str {
    if n == 1 {
        "run"
    } else {
        "runs"
    }
}

/// The loaded sweeps.
pub struct Loaded {
    /// One row per finished cell (completed or diverged): identity, hyperparameters (a column
    /// per grid key, see the module doc), outcome (`status`, `collapsed`), steps_per_epoch.
    pub runs: DataFrame,
    /// Long format: one row per (cell, evaluation point, split), with the cell's `id`: epoch,
    /// iteration, split, loss, acc, samples, seconds (training time so far), and where recorded
    /// samples_per_sec, grad_norm, grad_norm_max and lr (train rows; lr on test rows too).
    pub metrics: LazyFrame,
    pub counts: Counts,
    /// Each loaded run's training config, by run id (the networks the report draws).
    pub configs: std::collections::HashMap<String, TrainConfig>,
    /// Grid axes of the plans (union, in order of first appearance).
    pub axes: Vec<String>,
    pub sweeps: Vec<String>,
}

/// Errors while reading results.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0} is not a sweep results folder (no plan.json); run `rnnsweep sweep GRID` first or pass results/<sweep>")]
    NotASweep(PathBuf),
    #[error("cannot read {path}: {why}")]
    Read { path: PathBuf, why: String },
    #[error("no sweeps found in {0}")]
    NoSweeps(PathBuf),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Polars(#[from] PolarsError),
}

/// The sweep folders under a results root (those holding a plan.json), sorted by name.
pub fn sweeps_in(root: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let rd = std::fs::read_dir(root).map_err(|e| LoadError::Read {
        path: root.to_owned(),
        why: e.to_string(),
    })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| Layout::is_sweep(p))
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(LoadError::NoSweeps(root.to_owned()));
    }
    Ok(v)
}

/// Column vectors of the runs table.
#[derive(Default)]
struct RunCols {
    sweep: Vec<String>,
    index: Vec<u32>,
    id: Vec<String>,
    variant: Vec<String>,
    seed: Vec<u64>,
    status: Vec<String>,
    collapsed: Vec<bool>,
    budget: Vec<String>,
    final_test_acc: Vec<Option<f64>>,
    final_test_loss: Vec<Option<f64>>,
    final_train_acc: Vec<Option<f64>>,
    parameters: Vec<u64>,
    train_seconds: Vec<f64>,
    seconds_per_epoch: Vec<f64>,
    samples_per_sec: Vec<f64>,
    coords: Vec<std::collections::BTreeMap<String, String>>,
    steps_per_epoch: Vec<u64>,
    configs: Vec<TrainConfig>,
}

/// Column vectors of the metrics table.
#[derive(Default)]
struct MetricCols {
    id: Vec<String>,
    epoch: Vec<i64>,
    iteration: Vec<i64>,
    split: Vec<&'static str>,
    loss: Vec<f64>,
    acc: Vec<f64>,
    samples: Vec<u64>,
    seconds: Vec<f64>,
    samples_per_sec: Vec<Option<f64>>,
    grad_norm: Vec<Option<f64>>,
    grad_norm_max: Vec<Option<f64>>,
    lr: Vec<Option<f64>>,
}

/// Loads one or more sweep folders (each with plan.json).
pub fn load(dirs: &[PathBuf]) -> Result<Loaded, LoadError> {
    let mut c = RunCols::default();
    let mut counts = Counts::default();
    let mut axes: Vec<String> = Vec::new();
    let mut sweeps = Vec::new();
    let mut mc = MetricCols::default();
    for dir in dirs {
        let store = RunStore::at(dir);
        if !store.layout.plan_json().is_file() {
            return Err(LoadError::NotASweep(dir.clone()));
        }
        let plan = store.load_plan()?;
        for a in &plan.axes {
            if !axes.contains(a) {
                axes.push(a.clone());
            }
        }
        sweeps.push(plan.name.clone());
        counts.cells += plan.cells.len();
        let inspected: Vec<_> = plan
            .cells
            .par_iter()
            .map(|cell| store.cell_state(cell, None))
            .collect();
        for (cell, (state, result)) in plan.cells.iter().zip(inspected) {
            let result = match (state, result) {
                (s, Some(r)) if s.finished() => r,
                (CellState::Failed(msg), _) => {
                    counts.failed.push((plan.name.clone(), cell.index, msg));
                    continue;
                }
                (CellState::Corrupt(why), _) => {
                    counts.corrupt.push((plan.name.clone(), cell.index, why));
                    continue;
                }
                // New, Partial (started: running, killed or interrupted).
                _ => {
                    counts.missing += 1;
                    continue;
                }
            };
            let r = &result.record;
            let cfg = &cell.config;
            counts.samples += r.samples();
            counts.samples_unpruned += r.samples_without_pruning();
            let completed = r.status == RunStatus::Completed;
            let collapsed = completed && r.collapsed;
            match &r.status {
                RunStatus::Diverged {
                    epoch,
                    iteration,
                    non_finite,
                } => {
                    counts.diverged += 1;
                    counts.diverged_runs.push(DivergedRun {
                        sweep: plan.name.clone(),
                        index: cell.index,
                        variant: cell.variant.clone(),
                        seed: cfg.seed,
                        epoch: *epoch,
                        iteration: *iteration,
                        non_finite: non_finite.as_ref().map(|n| n.to_string()),
                    });
                }
                RunStatus::Completed => counts.completed += 1,
                RunStatus::Pruned { .. } => counts.pruned += 1,
                // Not reached: `CellState` already counts a cell whose record says interrupted
                // as unfinished (missing above). Kept so the match stays exhaustive.
                RunStatus::Interrupted { .. } => {
                    counts.missing += 1;
                    continue;
                }
            }
            if collapsed {
                counts.collapsed += 1;
                counts.collapsed_runs.push(CollapsedRun {
                    sweep: plan.name.clone(),
                    index: cell.index,
                    variant: cell.variant.clone(),
                    seed: cfg.seed,
                    class: r.top_class.map(|t| t.class),
                    share: r.top_class.map(|t| t.share),
                });
            }
            let last_train = r
                .metrics
                .iter()
                .rev()
                .find(|m| m.split == MetricSplit::Train);
            let epochs = r.epochs.len().max(1) as f64;
            c.sweep.push(plan.name.clone());
            c.index.push(cell.index as u32);
            c.id.push(cell.id.clone());
            c.variant.push(cell.variant.clone());
            c.seed.push(cfg.seed);
            c.status.push(r.status.name().to_string());
            c.collapsed.push(collapsed);
            c.budget.push(match cfg.budget {
                Budget::Epochs(e) => format!("{e} epochs"),
                Budget::Iterations(n) => format!("{n} steps"),
            });
            c.final_test_acc
                .push(if completed { r.final_test_acc } else { None });
            c.final_test_loss
                .push(if completed { r.final_test_loss } else { None });
            c.final_train_acc.push(if completed {
                last_train.map(|m| m.acc)
            } else {
                None
            });
            c.parameters.push(r.parameters as u64);
            c.train_seconds.push(r.train_seconds);
            c.seconds_per_epoch
                .push(r.epochs.iter().map(|e| e.seconds).sum::<f64>() / epochs);
            c.samples_per_sec.push(r.samples_per_sec);
            c.coords.push(cell.coords.clone());
            c.steps_per_epoch.push(cfg.batches_per_epoch());
            c.configs.push(cfg.clone());
            for m in &r.metrics {
                mc.id.push(cell.id.clone());
                mc.epoch.push(m.epoch as i64);
                mc.iteration.push(m.iteration as i64);
                mc.split.push(match m.split {
                    MetricSplit::Train => "train",
                    MetricSplit::Test => "test",
                });
                mc.loss.push(m.loss);
                mc.acc.push(m.acc);
                mc.samples.push(m.samples);
                mc.seconds.push(m.seconds);
                mc.samples_per_sec.push(m.samples_per_sec);
                mc.grad_norm.push(m.grad_norm);
                mc.grad_norm_max.push(m.grad_norm_max);
                mc.lr.push(m.lr);
            }
        }
    }
    let configs =
        c.id.iter()
            .cloned()
            .zip(c.configs.iter().cloned())
            .collect();
    let mut cols = vec![
        Column::new("sweep".into(), c.sweep),
        Column::new("index".into(), c.index),
        Column::new("id".into(), c.id),
        Column::new("variant".into(), c.variant),
        Column::new("seed".into(), c.seed),
        Column::new("status".into(), c.status),
        Column::new("collapsed".into(), c.collapsed),
        Column::new("budget".into(), c.budget),
        Column::new("final_test_acc".into(), c.final_test_acc),
        Column::new("final_test_loss".into(), c.final_test_loss),
        Column::new("final_train_acc".into(), c.final_train_acc),
        Column::new("parameters".into(), c.parameters),
        Column::new("train_seconds".into(), c.train_seconds),
        Column::new("seconds_per_epoch".into(), c.seconds_per_epoch),
        Column::new("samples_per_sec".into(), c.samples_per_sec),
        Column::new("steps_per_epoch".into(), c.steps_per_epoch),
    ];
    // Every key, typed, in the order of the table (`hyper`).
    cols.extend(KEYS.iter().map(|key| hyper::column(key, &c.configs)));
    // Grid axis values as text columns `axis_<key>` (what the grid varied, for grouping).
    for a in &axes {
        let v: Vec<Option<String>> = c.coords.iter().map(|m| m.get(a).cloned()).collect();
        cols.push(Column::new(format!("axis_{a}").into(), v));
    }
    let runs = DataFrame::new_infer_height(cols)?;
    let metrics = DataFrame::new_infer_height(vec![
        Column::new("id".into(), mc.id),
        Column::new("epoch".into(), mc.epoch),
        Column::new("iteration".into(), mc.iteration),
        Column::new("split".into(), mc.split),
        Column::new("loss".into(), mc.loss),
        Column::new("acc".into(), mc.acc),
        // Training wall time so far (evaluation excluded), for time-to-target.
        Column::new("samples".into(), mc.samples),
        Column::new("seconds".into(), mc.seconds),
        Column::new("samples_per_sec".into(), mc.samples_per_sec),
        Column::new("grad_norm".into(), mc.grad_norm),
        Column::new("grad_norm_max".into(), mc.grad_norm_max),
        Column::new("lr".into(), mc.lr),
    ])?
    .lazy();
    Ok(Loaded {
        runs,
        metrics,
        counts,
        configs,
        axes,
        sweeps,
    })
}
