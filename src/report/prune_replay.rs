//! The pruning audit (`results prune-replay`): on a sweep trained without pruning, replays
//! successive halving (SHA or ASHA, `plan::halving`) from the stored curves, as if the sweep had
//! had a `[prune]` table, and reports which configurations it would have kept at each rung,
//! whether the full grid's best configuration would have survived, and the compute it would
//! have used. Short rungs can mis-rank settings that learn late (IRNNs, small learning rates):
//! this shows it on the user's own study. Reads only the disk.

use serde::Serialize;

use crate::grid::prune::Prune;
use crate::plan::halving::{config_score, decide_in, record_score, Score};
use crate::plan::rungs::Ladder;
use crate::plan::Plan;
use crate::store::RunStore;
use crate::trainer::record::{MetricSplit, RunRecord, RunStatus};

/// One configuration in the replay.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayConfig {
    /// Variant and grid values, e.g. `default lr=0.001 hidden=32`.
    pub label: String,
    pub seeds: usize,
    /// Its result at each paused rung (the mean over its seeds; NaN when one diverged before).
    pub rung_scores: Vec<Option<f64>>,
    /// The mean over its seeds of the metric at the end of the budget (None when a seed did
    /// not complete).
    pub final_score: Option<f64>,
    /// The rung it would have been pruned at (None: kept to the end).
    pub pruned_at: Option<usize>,
    /// Training samples it took in the sweep, and would have taken with pruning.
    pub samples: u64,
    pub samples_replayed: u64,
}

/// The whole audit.
#[derive(Clone, Debug, Serialize)]
pub struct Replay {
    pub sweep: String,
    pub ladder: Ladder,
    pub configs: Vec<ReplayConfig>,
    /// The configurations promoted at each paused rung, in order.
    pub promoted: Vec<Vec<usize>>,
    /// The full grid's best configuration by its final result, and the best of those kept to
    /// the end.
    pub best: Option<usize>,
    pub best_kept: Option<usize>,
}

/// Why a sweep cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Plan(String),
    #[error(
        "cell {index} ({variant}) is {state}: the replay needs every run finished without pruning \
         (run the sweep to the end first)"
    )]
    Unfinished {
        index: usize,
        variant: String,
        state: String,
    },
}

/// Replays `prune` on the finished sweep in `dir`.
pub fn replay(dir: &std::path::Path, prune: &Prune) -> Result<Replay, ReplayError> {
    let store = RunStore::at(dir);
    let plan = store.load_plan()?;
    let ladder = Ladder::of(&plan, prune).map_err(ReplayError::Plan)?;
    let records = records(&store, &plan)?;
    let metric = prune.metric;
    let paused = ladder.paused_rungs();
    let mut configs = Vec::with_capacity(ladder.configs.len());
    let mut scores: Vec<Vec<Score>> = Vec::with_capacity(ladder.configs.len());
    for cells in &ladder.configs {
        let cell_scores: Vec<Vec<Score>> = cells
            .iter()
            .map(|&i| {
                let cfg = &plan.cells[i].config;
                (0..paused)
                    .map(|k| record_score(&records[i], ladder.steps(cfg, k), metric))
                    .collect()
            })
            .collect();
        let rung_scores: Vec<Score> = (0..paused)
            .map(|k| config_score(&cell_scores.iter().map(|s| s[k]).collect::<Vec<_>>()))
            .collect();
        let finals: Vec<Score> = cells
            .iter()
            .map(|&i| final_score(&records[i], metric))
            .collect();
        let first = &plan.cells[cells[0]];
        let mut label = first.variant.clone();
        for axis in &plan.axes {
            if let Some(v) = first.coords.get(axis) {
                label.push_str(&format!(" {axis}={v}"));
            }
        }
        configs.push(ReplayConfig {
            label,
            seeds: cells.len(),
            rung_scores: rung_scores.clone(),
            final_score: config_score(&finals).filter(|s| !s.is_nan()),
            pruned_at: None,
            samples: cells.iter().map(|&i| records[i].samples()).sum(),
            samples_replayed: 0,
        });
        scores.push(rung_scores);
    }
    let d = decide_in(
        prune.method,
        metric.higher_is_better(),
        prune.reduction_factor,
        &scores,
        &ladder.arrival(&plan),
    );
    for (c, conf) in configs.iter_mut().enumerate() {
        conf.pruned_at = d.pruned[c];
        conf.samples_replayed = ladder.configs[c]
            .iter()
            .map(|&i| {
                let r = &records[i];
                match d.pruned[c] {
                    // Trained to its rung, or to where it diverged if that came first.
                    Some(k) => samples_to(r, ladder.steps(&plan.cells[i].config, k)),
                    None => r.samples(),
                }
            })
            .sum();
    }
    let better = |a: usize, b: usize| {
        let (x, y) = (configs[a].final_score, configs[b].final_score);
        match (x, y) {
            (Some(x), Some(y)) if metric.higher_is_better() => x > y,
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            _ => false,
        }
    };
    let pick = |pool: &mut dyn Iterator<Item = usize>| {
        pool.filter(|&c| configs[c].final_score.is_some())
            .fold(None, |best: Option<usize>, c| match best {
                Some(b) if !better(c, b) => Some(b),
                _ => Some(c),
            })
    };
    let best = pick(&mut (0..configs.len()));
    let best_kept = pick(&mut (0..configs.len()).filter(|&c| d.pruned[c].is_none()));
    Ok(Replay {
        sweep: plan.name.clone(),
        ladder,
        configs,
        promoted: d.rungs.iter().map(|r| r.promoted.clone()).collect(),
        best,
        best_kept,
    })
}

/// Every cell's record; every cell must be finished (completed or diverged), not pruned.
fn records(store: &RunStore, plan: &Plan) -> Result<Vec<RunRecord>, ReplayError> {
    plan.cells
        .iter()
        .map(|c| {
            let unfinished = |state: &str| ReplayError::Unfinished {
                index: c.index,
                variant: c.variant.clone(),
                state: state.to_string(),
            };
            let (state, result) = store.cell_state(c, None);
            let r = result.ok_or_else(|| unfinished(state.name()))?.record;
            match r.status {
                RunStatus::Completed | RunStatus::Diverged { .. } => Ok(r),
                _ => Err(unfinished(r.status.name())),
            }
        })
        .collect()
}

/// A run's metric at its last test evaluation, if it completed (NaN-free configurations only
/// have a final result).
fn final_score(r: &RunRecord, metric: crate::grid::prune::RungMetric) -> Score {
    if r.status != RunStatus::Completed {
        return Some(f64::NAN);
    }
    let last = r
        .metrics
        .iter()
        .rev()
        .find(|m| m.split == MetricSplit::Test)?;
    record_score(r, last.iteration, metric)
}

/// The training samples of `r` up to step `steps` (all of them if it stopped before).
fn samples_to(r: &RunRecord, steps: u64) -> u64 {
    let per_step = r.config.batch_size as u64;
    let per_epoch = r.config.batches_per_epoch();
    let n = r.config.train_size() as u64;
    let (full, rest) = (steps / per_epoch, steps % per_epoch);
    (full * n + rest * per_step).min(r.samples())
}

impl Replay {
    /// The text report.
    pub fn render(&self) -> String {
        let l = &self.ladder;
        let p = &l.prune;
        let mut o = format!(
            "prune replay of {:?}: {} on {} configurations × {} seed(s), {}, η = {}, by the mean \
             {}\n",
            self.sweep,
            match p.method {
                crate::grid::prune::Halving::Sha => "SHA",
                crate::grid::prune::Halving::Asha => "ASHA (results counted in a fixed order)",
            },
            self.configs.len(),
            self.configs.first().map_or(0, |c| c.seeds),
            l.describe(),
            p.reduction_factor,
            p.metric.name()
        );
        let fmt = |s: Option<f64>| match s {
            Some(x) if x.is_nan() => "diverged".to_string(),
            Some(x) => format!("{x:.4}"),
            None => "-".to_string(),
        };
        let mut entrants: Vec<usize> = (0..self.configs.len()).collect();
        for (k, promoted) in self.promoted.iter().enumerate() {
            o.push_str(&format!(
                "rung {k} ({}): {} configurations, {} kept:\n",
                l.amount(l.rungs[k]),
                entrants.len(),
                promoted.len()
            ));
            for &c in promoted {
                let conf = &self.configs[c];
                o.push_str(&format!(
                    "  {:<40} {}\n",
                    conf.label,
                    fmt(conf.rung_scores[k])
                ));
            }
            entrants = promoted.clone();
        }
        let name = |c: Option<usize>| {
            c.map_or("none".to_string(), |c| {
                format!(
                    "{} ({} {} at the end)",
                    self.configs[c].label,
                    p.metric.name(),
                    fmt(self.configs[c].final_score)
                )
            })
        };
        o.push_str(&format!("the full grid's best: {}\n", name(self.best)));
        if let Some(b) = self.best {
            match self.configs[b].pruned_at {
                None => o.push_str("  it survives every rung\n"),
                Some(k) => {
                    let rank = self.rank_at(b, k);
                    o.push_str(&format!(
                        "  it would have been PRUNED at rung {k} ({}), ranked {rank} of {} \
                         there with {}\n",
                        l.amount(l.rungs[k]),
                        self.entrants_at(k).len(),
                        fmt(self.configs[b].rung_scores[k])
                    ));
                }
            }
        }
        o.push_str(&format!(
            "the best kept to the end: {}\n",
            name(self.best_kept)
        ));
        if let (Some(b), Some(k)) = (self.best, self.best_kept) {
            if let (Some(x), Some(y)) = (self.configs[b].final_score, self.configs[k].final_score) {
                o.push_str(&format!(
                    "  {:+.2} percentage points from the full grid's best\n",
                    100.0 * (y - x)
                ));
            }
        }
        let (full, replayed): (u64, u64) = self
            .configs
            .iter()
            .fold((0, 0), |(f, r), c| (f + c.samples, r + c.samples_replayed));
        o.push_str(&format!(
            "compute: {} of the full grid's {} training samples ({:.0}%)\n",
            replayed,
            full,
            100.0 * replayed as f64 / full.max(1) as f64
        ));
        o
    }

    /// The configurations that entered rung `k`.
    fn entrants_at(&self, k: usize) -> Vec<usize> {
        match k {
            0 => (0..self.configs.len()).collect(),
            _ => self.promoted[k - 1].clone(),
        }
    }

    /// Configuration `c`'s place (1 = best) among the entrants of rung `k`.
    fn rank_at(&self, c: usize, k: usize) -> usize {
        let higher = self.ladder.prune.metric.higher_is_better();
        let me = self.configs[c].rung_scores[k].unwrap_or(f64::NAN);
        1 + self
            .entrants_at(k)
            .iter()
            .filter(|&&o| {
                let s = self.configs[o].rung_scores[k].unwrap_or(f64::NAN);
                !s.is_nan() && (me.is_nan() || if higher { s > me } else { s < me })
            })
            .count()
    }
}
