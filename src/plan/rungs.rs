//! The rungs of a pruned sweep (`[prune]`, see `grid::prune`) and its configurations. A
//! configuration is a plan's cells that differ only in their seed; its seeds go up the rungs
//! together and are judged together (`halving`). Rungs are at r, rη, rη², … below the
//! full budget R (r = min_resource, η = reduction_factor), in the budget's unit: epochs when the
//! budget is `epochs`, steps when it is `iterations`; the last rung is R itself (trained to the
//! end). Every rung must be an evaluation point of every cell, so the rung's result is a test
//! evaluation the cell records anyway.

use serde::Serialize;

use super::{Cell, Plan};
use crate::grid::prune::Prune;
use crate::trainer::config::{Budget, EvalEvery, TrainConfig};

/// The budget's unit, which the rungs count in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Epochs,
    Steps,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Epochs => "epochs",
            Unit::Steps => "steps",
        }
    }
}

/// The rungs and configurations of a pruned plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ladder {
    pub prune: Prune,
    pub unit: Unit,
    /// Rung resources in `unit`, ascending; the last is the full budget.
    pub rungs: Vec<u64>,
    /// The configurations in plan order, each the plan indices of its cells (one per seed).
    pub configs: Vec<Vec<usize>>,
}

impl Ladder {
    /// The ladder of `plan` under `prune`, or why the plan cannot be pruned so.
    pub fn of(plan: &Plan, prune: &Prune) -> Result<Ladder, String> {
        let first = plan.cells.first().ok_or("the plan has no cells")?;
        let (unit, full) = unit_and_budget(&first.config);
        for c in &plan.cells {
            if c.config.budget != first.config.budget {
                let (u, n) = unit_and_budget(&c.config);
                return Err(format!(
                    "pruning needs one budget for every cell: cell {} (variant {:?}) trains {n} \
                     {}, cell 0 trains {full} {}; set one `epochs` (or `iterations`) for all",
                    c.index,
                    c.variant,
                    u.name(),
                    unit.name()
                ));
            }
        }
        if let Some(max) = prune.max_resource {
            if max != full {
                return Err(format!(
                    "max_resource = {max} differs from the cells' budget ({full} {}); leave it \
                     out or make the budget {max} {}",
                    unit.name(),
                    unit.name()
                ));
            }
        }
        if prune.min_resource >= full {
            return Err(format!(
                "min_resource = {} leaves no rung before the end of the budget ({full} {})",
                prune.min_resource,
                unit.name()
            ));
        }
        let mut rungs = Vec::new();
        let mut r = prune.min_resource;
        while r < full {
            rungs.push(r);
            r = r.saturating_mul(prune.reduction_factor);
        }
        rungs.push(full);
        let ladder = Ladder {
            prune: *prune,
            unit,
            rungs,
            configs: configurations(&plan.cells),
        };
        for c in &plan.cells {
            for k in 0..ladder.paused_rungs() {
                let steps = ladder.steps(&c.config, k);
                if !is_eval_point(&c.config, steps) {
                    return Err(format!(
                        "the rung at {} {} (step {steps}) is not an evaluation point of cell {} \
                         (variant {:?}, eval_every = {}); choose min_resource and \
                         reduction_factor so that every rung is one, or evaluate more often",
                        ladder.rungs[k],
                        unit.name(),
                        c.index,
                        c.variant,
                        match c.config.eval.every {
                            EvalEvery::Epoch => "\"epoch\"".to_string(),
                            EvalEvery::Iterations(k) => k.to_string(),
                        }
                    ));
                }
            }
        }
        Ok(ladder)
    }

    /// The rungs a cell pauses at (all but the last, which is the end of its budget).
    pub fn paused_rungs(&self) -> usize {
        self.rungs.len() - 1
    }

    /// Optimizer steps of `cfg` at rung `k`.
    pub fn steps(&self, cfg: &TrainConfig, k: usize) -> u64 {
        match self.unit {
            Unit::Epochs => self.rungs[k] * cfg.batches_per_epoch(),
            Unit::Steps => self.rungs[k],
        }
    }

    /// The order in which ASHA counts the configurations' results at the first rung, and in
    /// which a pruned sweep trains them: by the BLAKE3 hash of their first cell's id, a
    /// pseudo-random order that does not follow the grid's (see `halving`).
    pub fn arrival(&self, plan: &Plan) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.configs.len()).collect();
        order.sort_by_key(|&c| {
            *blake3::hash(plan.cells[self.configs[c][0]].id.as_bytes()).as_bytes()
        });
        order
    }

    /// The configuration (index into `configs`) of each plan cell.
    pub fn config_of(&self, n_cells: usize) -> Vec<usize> {
        let mut of = vec![0; n_cells];
        for (c, cells) in self.configs.iter().enumerate() {
            for &i in cells {
                of[i] = c;
            }
        }
        of
    }

    /// "1 epoch", "3 epochs", "500 steps".
    pub fn amount(&self, n: u64) -> String {
        let unit = self.unit.name();
        match n {
            1 => format!("1 {}", unit.trim_end_matches('s')),
            _ => format!("{n} {unit}"),
        }
    }

    /// "rungs at 1, 3, 9 and 27 epochs (the full budget)".
    pub fn describe(&self) -> String {
        let n = self.rungs.len();
        let list: Vec<String> = self.rungs.iter().map(u64::to_string).collect();
        format!(
            "rungs at {} and {} {} (the full budget)",
            list[..n - 1].join(", "),
            list[n - 1],
            self.unit.name()
        )
    }
}

/// The budget's unit and size.
fn unit_and_budget(cfg: &TrainConfig) -> (Unit, u64) {
    match cfg.budget {
        Budget::Epochs(e) => (Unit::Epochs, e as u64),
        Budget::Iterations(n) => (Unit::Steps, n),
    }
}

/// Whether the training loop evaluates after `steps` steps of `cfg`.
fn is_eval_point(cfg: &TrainConfig, steps: u64) -> bool {
    match cfg.eval.every {
        EvalEvery::Epoch => steps.is_multiple_of(cfg.batches_per_epoch()),
        EvalEvery::Iterations(k) => steps.is_multiple_of(k),
    }
}

/// Groups cells that differ only in their seed, in order of their first cell.
fn configurations(cells: &[Cell]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: std::collections::BTreeMap<String, usize> = Default::default();
    for c in cells {
        let mut key = c.coords.clone();
        key.remove("seed");
        let key = format!("{}\u{0}{key:?}", c.variant);
        match index.get(&key) {
            Some(&g) => groups[g].push(c.index),
            None => {
                index.insert(key, groups.len());
                groups.push(vec![c.index]);
            }
        }
    }
    groups
}
