//! The plan: a grid expanded into cells in a fixed order (variants × axes in file order × seeds),
//! each with a stable id = readable slug + 8 hex digits of blake3 over the canonical config,
//! the data fingerprint and the result-format version. Renaming a variant or reordering the
//! file keeps ids; changing any hyperparameter makes a new one. `estimate.rs`: a cell's rough
//! training time, for `rnnsweep plan`; `rungs.rs`: the rungs and configurations of a pruned
//! plan; `halving.rs`: successive halving's decisions over them.

pub mod estimate;
pub mod halving;
pub mod rungs;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::grid::params::{build, Setting, Settings, Value};
use crate::grid::prune::Prune;
use crate::grid::search::Method;
use crate::grid::{Axis, AxisValues, Grid, GridError};
use crate::trainer::config::{ModelConfig, TrainConfig, MAX_HIDDEN};
use crate::trainer::model::layout::param_count;
use crate::trainer::record::FORMAT_VERSION;

/// One run of the sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Position in plan order (tables sort by it).
    pub index: usize,
    pub id: String,
    pub variant: String,
    /// The grid axis values and the seed of this cell, as text.
    pub coords: BTreeMap<String, String>,
    pub config: TrainConfig,
}

/// The expanded grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub description: String,
    /// Names of the grid axes, in file order.
    pub axes: Vec<String>,
    pub cells: Vec<Cell>,
    /// A random search's draws left out because an earlier trial drew the same configuration.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicate_draws: usize,
    /// Successive halving over the plan's configurations (see `rungs`), if the grid prunes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<Prune>,
}

impl Plan {
    /// The rungs and configurations of a pruned plan (None without `[prune]`), or why this plan
    /// cannot be pruned as its grid says (checked when the grid is expanded).
    pub fn ladder(&self) -> Result<Option<rungs::Ladder>, String> {
        self.prune
            .as_ref()
            .map(|p| rungs::Ladder::of(self, p))
            .transpose()
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The cell id for a config: slug + hash of (config, data fingerprint, format version). The
/// fingerprint is that of the config's data set (`DataSource::fingerprint`: its expected sums);
/// for MNIST it is the one every id was made with before data sets were a key.
pub fn cell_id(cfg: &TrainConfig) -> String {
    #[derive(Serialize)]
    struct Identity<'a> {
        config: &'a TrainConfig,
        data: &'a str,
        format_version: u32,
    }
    let canonical = serde_json::to_vec(&Identity {
        config: cfg,
        data: &cfg.dataset.source().fingerprint(),
        format_version: FORMAT_VERSION,
    })
    .expect("configs serialize");
    let hash = blake3::hash(&canonical).to_hex();
    format!("{}-{}", cfg.slug(), &hash[..8])
}

/// The setting an axis gives a cell, located at the axis.
fn axis_setting(axis: &Axis, value: Value) -> Setting {
    Setting {
        value,
        span: axis.span.clone(),
        origin: format!("grid.{}", axis.key),
    }
}

/// The hidden size whose parameter count (recurrent layers and head, for this model's cell
/// kind, layers and input) is closest to `target`; the smaller one on a tie.
pub fn matched_hidden(model: &ModelConfig, target: u64) -> usize {
    let count = |hidden| {
        param_count(&ModelConfig {
            hidden,
            ..model.clone()
        }) as u64
    };
    // The count grows with the hidden size: the first size reaching the target, or the one
    // before it.
    let (mut lo, mut hi) = (1, MAX_HIDDEN);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if count(mid) >= target {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if lo > 1 && target - count(lo - 1).min(target) <= count(lo).saturating_sub(target) {
        lo - 1
    } else {
        lo
    }
}

impl Plan {
    /// Expands a checked grid; a cell whose settings do not form a valid config is an error
    /// located at the setting to blame.
    pub fn expand(grid: &Grid) -> Result<Plan, GridError> {
        let mut cells: Vec<Cell> = Vec::new();
        let n_combos: usize = grid.axes.iter().map(|a| a.crossings()).product();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut duplicate_draws = 0;
        let (trials, search_seed) = match grid.method {
            Method::Grid => (1, 0),
            Method::Random { trials, seed } => (trials, seed),
        };
        for variant in &grid.variants {
            for (trial, combo) in (0..trials).flat_map(|t| (0..n_combos).map(move |c| (t, c))) {
                // Odometer over the list axes (the last one varies fastest); a distribution
                // axis draws this trial's value.
                let mut settings: Settings = grid.defaults.clone();
                settings.extend(variant.settings.clone());
                let mut coords = BTreeMap::new();
                let mut rest = combo;
                let mut matched = None;
                for axis in grid.axes.iter().rev() {
                    let n = axis.crossings();
                    let v = match &axis.values {
                        AxisValues::Dist(d) => d.draw(search_seed, trial, axis.key),
                        AxisValues::List(values) => values[rest % n].clone(),
                        AxisValues::Params(targets) => {
                            // Placeholder until the other settings say what the cell is.
                            matched = Some((axis, targets[rest % n]));
                            Value::Int(1)
                        }
                    };
                    rest /= n;
                    coords.insert(axis.key.to_string(), v.to_string());
                    settings.insert(axis.key, axis_setting(axis, v));
                }
                if let Some((axis, target)) = matched {
                    let hidden = build(&settings, 0)
                        .map(|cfg| matched_hidden(&cfg.model, target))
                        .unwrap_or(1);
                    let v = Value::Int(hidden as u64);
                    coords.insert(axis.key.to_string(), v.to_string());
                    settings.insert(axis.key, axis_setting(axis, v));
                }
                let mut drawn = Vec::with_capacity(grid.seeds.len());
                for &seed in &grid.seeds {
                    let config = build(&settings, seed).map_err(|e| {
                        let (span, key) = match &e.blame {
                            Some(s) => (Some(s.span.clone()), s.origin.clone()),
                            None => (Some(variant.span.clone()), String::new()),
                        };
                        let mut at = format!("variant {:?}", variant.name);
                        if !coords.is_empty() {
                            at.push_str(&format!(
                                " with {}",
                                coords
                                    .iter()
                                    .map(|(k, v)| format!("{k} = {v}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                        GridError::at(
                            &grid.path,
                            &grid.text,
                            span,
                            key,
                            format!("{}: {}", at, e.message),
                        )
                    })?;
                    drawn.push((seed, cell_id(&config), config));
                }
                // A random trial that drew a configuration of this variant already drawn is
                // left out (counted); any other repeat is a mistake in the file.
                let repeat = drawn.iter().find_map(|(_, id, _)| seen.get(id).copied());
                if let Some(other) = repeat {
                    let o = &cells[other];
                    if trials > 1 && o.variant == variant.name {
                        duplicate_draws += 1;
                        continue;
                    }
                    return Err(GridError::at(&grid.path, &grid.text, Some(variant.span.clone()), "", format!(
                        "cell {} (variant {:?}) has the same configuration as cell {other} (variant {:?}); remove the duplicate",
                        cells.len(), variant.name, o.variant
                    )));
                }
                for (seed, id, config) in drawn {
                    let index = cells.len();
                    seen.insert(id.clone(), index);
                    let mut coords = coords.clone();
                    coords.insert("seed".into(), seed.to_string());
                    cells.push(Cell {
                        index,
                        id,
                        variant: variant.name.clone(),
                        coords,
                        config,
                    });
                }
            }
        }
        let plan = Plan {
            name: grid.name.clone(),
            description: grid.description.clone(),
            axes: grid.axes.iter().map(|a| a.key.to_string()).collect(),
            cells,
            duplicate_draws,
            prune: grid.prune,
        };
        if let Err(msg) = plan.ladder() {
            let span = grid.prune_span.clone();
            return Err(GridError::at(&grid.path, &grid.text, span, "prune", msg));
        }
        Ok(plan)
    }
}
