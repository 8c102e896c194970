//! Reading sweeps back from disk, and nothing else: the plan and each cell's record (serde, in
//! parallel), turned into two polars frames: one row per run, and every metric row in long
//! format. The metric rows come from `result.json`, which holds exactly what `metrics.csv` holds
//! for a finished cell, so each file is read once (scanning 10,000 small CSV files separately
//! costs seconds). Counts say how many cells were loaded, diverged, failed or are missing, so
//! nothing disappears silently.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;

use crate::store::{CellStatus, Layout, RunStore};
use crate::trainer::config::Budget;
use crate::trainer::record::{MetricSplit, RunStatus};

/// What was found on disk.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    /// Cells in the plans.
    pub cells: usize,
    pub completed: usize,
    pub diverged: usize,
    /// (sweep, cell index, first line of error.txt)
    pub failed: Vec<(String, usize, String)>,
    /// Not finished: never run, interrupted, or with an unreadable result.
    pub missing: usize,
}

impl Counts {
    /// "46/48 runs loaded (3 diverged), 1 failed, 1 missing (not run yet or interrupted)"
    pub fn line(&self) -> String {
        let loaded = self.completed + self.diverged;
        let mut s = format!("{loaded}/{} runs loaded", self.cells);
        if self.diverged > 0 {
            s.push_str(&format!(" ({} diverged)", self.diverged));
        }
        if !self.failed.is_empty() {
            s.push_str(&format!(", {} failed", self.failed.len()));
        }
        if self.missing > 0 {
            s.push_str(&format!(
                ", {} missing (not run yet or interrupted)",
                self.missing
            ));
        }
        s
    }

    /// One line per failed cell: "failed: sweep[index] message".
    pub fn failure_lines(&self) -> Vec<String> {
        self.failed
            .iter()
            .map(|(sw, i, m)| format!("failed: {sw}[{i}] {m}"))
            .collect()
    }
}

/// The loaded sweeps.
pub struct Loaded {
    /// One row per finished cell (completed or diverged): identity, hyperparameters, outcome.
    pub runs: DataFrame,
    /// Long format: one row per (cell, evaluation point, split), with the cell's `id`.
    pub metrics: LazyFrame,
    pub counts: Counts,
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
        .filter(|p| p.join("plan.json").is_file())
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
    cell: Vec<String>,
    activation: Vec<Option<String>>,
    hidden: Vec<u32>,
    layers: Vec<u32>,
    optimizer: Vec<String>,
    lr: Vec<f64>,
    momentum: Vec<f64>,
    batch: Vec<u32>,
    budget: Vec<String>,
    train_limit: Vec<Option<u32>>,
    test_limit: Vec<Option<u32>>,
    final_test_acc: Vec<Option<f64>>,
    final_test_loss: Vec<Option<f64>>,
    final_train_acc: Vec<Option<f64>>,
    parameters: Vec<u64>,
    train_seconds: Vec<f64>,
    seconds_per_epoch: Vec<f64>,
    samples_per_sec: Vec<f64>,
    coords: Vec<std::collections::BTreeMap<String, String>>,
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
}

/// Loads one or more sweep folders (each with plan.json).
pub fn load(dirs: &[PathBuf]) -> Result<Loaded, LoadError> {
    let mut c = RunCols::default();
    let mut counts = Counts::default();
    let mut axes: Vec<String> = Vec::new();
    let mut sweeps = Vec::new();
    let mut mc = MetricCols::default();
    for dir in dirs {
        let store = RunStore {
            layout: Layout::at(dir),
        };
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
            .map(|cell| store.inspect(cell))
            .collect();
        for (cell, (status, result)) in plan.cells.iter().zip(inspected) {
            let result = match (status, result) {
                (CellStatus::Done(_), Some(r)) => r,
                (CellStatus::Failed(msg), _) => {
                    counts.failed.push((plan.name.clone(), cell.index, msg));
                    continue;
                }
                _ => {
                    counts.missing += 1;
                    continue;
                }
            };
            let r = &result.record;
            match r.status {
                RunStatus::Diverged { .. } => counts.diverged += 1,
                _ => counts.completed += 1,
            }
            let cfg = &cell.config;
            let completed = r.status == RunStatus::Completed;
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
            c.cell.push(cfg.model.cell.to_string());
            c.activation
                .push(cfg.model.activation.map(|a| a.to_string()));
            c.hidden.push(cfg.model.hidden as u32);
            c.layers.push(cfg.model.layers as u32);
            c.optimizer.push(cfg.optim.kind.to_string());
            c.lr.push(cfg.optim.lr);
            c.momentum.push(cfg.optim.momentum);
            c.batch.push(cfg.batch_size as u32);
            c.budget.push(match cfg.budget {
                Budget::Epochs(e) => format!("{e} epochs"),
                Budget::Iterations(n) => format!("{n} steps"),
            });
            c.train_limit.push(cfg.train_limit.map(|n| n as u32));
            c.test_limit.push(cfg.eval.test_limit.map(|n| n as u32));
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
            }
        }
    }
    let mut cols = vec![
        Column::new("sweep".into(), c.sweep),
        Column::new("index".into(), c.index),
        Column::new("id".into(), c.id),
        Column::new("variant".into(), c.variant),
        Column::new("seed".into(), c.seed),
        Column::new("status".into(), c.status),
        Column::new("cell".into(), c.cell),
        Column::new("activation".into(), c.activation),
        Column::new("hidden".into(), c.hidden),
        Column::new("layers".into(), c.layers),
        Column::new("optimizer".into(), c.optimizer),
        Column::new("lr".into(), c.lr),
        Column::new("momentum".into(), c.momentum),
        Column::new("batch".into(), c.batch),
        Column::new("budget".into(), c.budget),
        Column::new("train_limit".into(), c.train_limit),
        Column::new("test_limit".into(), c.test_limit),
        Column::new("final_test_acc".into(), c.final_test_acc),
        Column::new("final_test_loss".into(), c.final_test_loss),
        Column::new("final_train_acc".into(), c.final_train_acc),
        Column::new("parameters".into(), c.parameters),
        Column::new("train_seconds".into(), c.train_seconds),
        Column::new("seconds_per_epoch".into(), c.seconds_per_epoch),
        Column::new("samples_per_sec".into(), c.samples_per_sec),
    ];
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
    ])?
    .lazy();
    Ok(Loaded {
        runs,
        metrics,
        counts,
        axes,
        sweeps,
    })
}
