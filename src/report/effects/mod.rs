//! Effects: a metric *as a function of* one setting, the picture a researcher draws (reached
//! accuracy or speed against the hidden size, the learning rate, the batch size…). Pure: plain
//! runs in ([`RunObs`], built from the loaded frames by [`frame`]), plain values out.
//!
//! The settings that vary are the [`Dim`]s: the grid axes with at least two values, the variant
//! when a sweep has several (the presets `optimizer`, `cell`, `activation` vary only variants),
//! and the sweep when several are loaded. For one dim on x, every combination of the *other*
//! dims is a line ([`EffectSeries`]); each point holds the runs of that setting over the seeds:
//! how many were loaded, diverged and collapsed, and the metric's n, mean, std and Student-t
//! 95 % interval (`stats::mean_stats`) over the runs that count. For the accuracies, diverged and
//! collapsed runs never count in the mean (a collapsed run is a constant predictor, a diverged one
//! has no final accuracy), nor do completed runs without a value (`no_value`: a NaN final
//! accuracy stored as null, no test evaluation): they are counted at their point instead, and
//! charts mark them there, so `runs = n + diverged + collapsed + no_value`. `samples_per_sec`
//! counts every run with a throughput, diverged and collapsed ones included (their speed is
//! valid): there `runs = n + no_value`. A NaN mean stays NaN (the JSON writes it as "NaN").
//!
//! `time_to_target`: per run, the first test evaluation whose accuracy reaches the target, in
//! epochs (fractional: steps / steps per epoch) and in training seconds (evaluation excluded);
//! the mean is over the runs that reached it, and the point says "k/n reached" (n: the completed,
//! not collapsed runs; diverged and collapsed runs are left out of k and n, counted in their own
//! columns; a run without test evaluations did not reach it). With exactly two dims varying,
//! [`heatmap`] crosses them.
//!
//! A run without a grid coordinate for a dim (its sweep did not vary it) takes its value from its
//! configuration ([`frame`] fills it in); a run with no value at all is left out and counted in
//! `not_shown`.
//!
//! Axis scales: categorical for `cell`, `optimizer`, `activation`, `variant`, `sweep` and any
//! axis with a non-numeric value; log for `lr` and for axes written as log ranges in the grid
//! (`scale = "log"`); linear otherwise. A point's `pos` is its place on the chart's x axis:
//! the value, its log10, or the category's index.

pub mod export;
pub mod frame;

use std::collections::BTreeMap;

use serde::Serialize;

use super::stats::{mean_stats, MeanStats};

/// The target accuracy of `time_to_target` when none is given (`results effects --target`, the
/// HTML report).
pub const DEFAULT_TARGET: f64 = 0.9;

/// What an effect chart shows on y.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectMetric {
    /// Test accuracy at the last evaluation.
    FinalTestAcc,
    /// Highest test accuracy over the run's evaluations.
    BestTestAcc,
    /// Training samples per second over the whole run (evaluation excluded).
    SamplesPerSec,
    /// Epochs (and training seconds) until test accuracy first reaches the target.
    TimeToTarget,
}

impl EffectMetric {
    /// Every accepted spelling, in declaration order.
    pub const ALL: &'static [&'static str] = &[
        "final_test_acc",
        "best_test_acc",
        "samples_per_sec",
        "time_to_target",
    ];

    pub fn name(self) -> &'static str {
        match self {
            EffectMetric::FinalTestAcc => "final_test_acc",
            EffectMetric::BestTestAcc => "best_test_acc",
            EffectMetric::SamplesPerSec => "samples_per_sec",
            EffectMetric::TimeToTarget => "time_to_target",
        }
    }

    /// The y axis label: "Final test accuracy", "Epochs to test accuracy 0.9", ...
    pub fn title(self, target: f64) -> String {
        match self {
            EffectMetric::FinalTestAcc => "Final test accuracy".into(),
            EffectMetric::BestTestAcc => "Best test accuracy".into(),
            EffectMetric::SamplesPerSec => "Training samples/s".into(),
            EffectMetric::TimeToTarget => format!("Epochs to test accuracy {target}"),
        }
    }

    /// Whether values are accuracies (in [0, 1]).
    pub fn is_accuracy(self) -> bool {
        matches!(self, EffectMetric::FinalTestAcc | EffectMetric::BestTestAcc)
    }

    /// Decimals shown in tables.
    pub fn decimals(self) -> usize {
        match self {
            EffectMetric::FinalTestAcc | EffectMetric::BestTestAcc => 4,
            EffectMetric::SamplesPerSec => 0,
            EffectMetric::TimeToTarget => 2,
        }
    }
}

impl std::fmt::Display for EffectMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a dim's values are placed on the x axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    Linear,
    Log,
    Categorical,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Scale::Linear => "linear",
            Scale::Log => "log",
            Scale::Categorical => "categorical",
        }
    }
}

/// Settings that are words, never numbers on an axis.
pub const CATEGORICAL: &[&str] = &["cell", "optimizer", "activation", "variant", "sweep"];

/// The scale of a dim named `name` (as written in the grid) with these values; `log_range`:
/// the grid wrote it as `{ …, scale = "log" }`. A log scale needs every value > 0.
pub fn scale_of(name: &str, values: &[String], log_range: bool) -> Scale {
    let nums: Option<Vec<f64>> = values
        .iter()
        .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect();
    match nums {
        _ if CATEGORICAL.contains(&name) => Scale::Categorical,
        None => Scale::Categorical,
        Some(n) if (name == "lr" || log_range) && n.iter().all(|&x| x > 0.0) => Scale::Log,
        Some(_) => Scale::Linear,
    }
}

/// A setting that varies: its name as the user wrote it, its scale and its values in axis
/// order (numeric order for numbers, order of first appearance for words).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dim {
    pub name: String,
    pub scale: Scale,
    pub values: Vec<String>,
}

impl Dim {
    /// Where `value` sits on this dim's x axis; None for a value the dim does not have.
    pub fn pos(&self, value: &str) -> Option<f64> {
        match self.scale {
            Scale::Categorical => self
                .values
                .iter()
                .position(|v| v == value)
                .map(|i| i as f64),
            Scale::Linear => value.parse().ok(),
            Scale::Log => value.parse::<f64>().ok().map(f64::log10),
        }
    }
}

/// What varies, for messages: "hidden, lr" or "nothing".
pub fn dim_names(d: &[Dim]) -> String {
    if d.is_empty() {
        return "nothing".into();
    }
    d.iter()
        .map(|d| d.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The dims that vary among `runs`: each candidate (name, whether the grid wrote it as a log
/// range) in the given order, kept when the runs hold at least two values of it.
pub fn dims(candidates: &[(String, bool)], runs: &[RunObs]) -> Vec<Dim> {
    candidates
        .iter()
        .filter_map(|(name, log_range)| {
            let mut values: Vec<String> = Vec::new();
            for r in runs {
                if let Some(v) = r.coords.get(name) {
                    if !values.contains(v) {
                        values.push(v.clone());
                    }
                }
            }
            if values.len() < 2 {
                return None;
            }
            let scale = scale_of(name, &values, *log_range);
            if scale != Scale::Categorical {
                values.sort_by(|a, b| {
                    let (x, y): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
                    x.total_cmp(&y)
                });
            }
            Some(Dim {
                name: name.clone(),
                scale,
                values,
            })
        })
        .collect()
}

/// How a loaded run ended, as far as effects are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Completed,
    /// Completed, but predicting one class for nearly every test image.
    Collapsed,
    Diverged,
}

/// One test evaluation of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestEval {
    /// Epochs trained: steps / steps per epoch.
    pub epochs: f64,
    /// Training wall time so far, evaluation excluded.
    pub seconds: f64,
    pub acc: f64,
}

/// One loaded run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunObs {
    /// The run's value of every candidate dim, by name.
    pub coords: BTreeMap<String, String>,
    pub seed: u64,
    pub outcome: Outcome,
    pub final_test_acc: Option<f64>,
    pub samples_per_sec: f64,
    /// Test evaluations in training order.
    pub test_evals: Vec<TestEval>,
}

/// The first evaluation whose accuracy reaches `target` (≥): (epochs, seconds). None when none
/// does; a NaN accuracy never reaches anything.
pub fn time_to_target(evals: &[TestEval], target: f64) -> Option<(f64, f64)> {
    evals
        .iter()
        .find(|e| e.acc >= target)
        .map(|e| (e.epochs, e.seconds))
}

/// The highest test accuracy of a run; NaN if any evaluation is NaN (never silently dropped);
/// None without evaluations.
pub fn best_acc(evals: &[TestEval]) -> Option<f64> {
    let mut best: Option<f64> = None;
    for e in evals {
        best = Some(match best {
            None => e.acc,
            Some(b) if b.is_nan() || e.acc.is_nan() => f64::NAN,
            Some(b) if e.acc > b => e.acc,
            Some(b) => b,
        });
    }
    best
}

/// Of the runs that count, how many reached the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Reached {
    pub k: usize,
    pub n: usize,
}

/// One setting: the runs of one x value in one line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EffectPoint {
    /// The value as written in the grid (the variant's name for `variant`).
    pub x: String,
    /// Place on the x axis (see the module doc).
    pub pos: f64,
    /// Runs loaded (completed, collapsed and diverged).
    pub runs: usize,
    pub diverged: usize,
    pub collapsed: usize,
    /// Runs that would count but have no value of the metric (a NaN or missing final accuracy,
    /// no test evaluation, no throughput); 0 for `time_to_target` (no evaluation: not reached).
    pub no_value: usize,
    /// The metric over the runs that count (accuracies: completed, not collapsed, with a value;
    /// samples_per_sec: every run with a value); for `time_to_target`, epochs over those that
    /// reached the target. Non-finite numbers are written as "NaN", "inf", "-inf" in JSON.
    #[serde(serialize_with = "ser_stats")]
    pub stats: MeanStats,
    /// `time_to_target` only: k of the n runs that count reached the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reached: Option<Reached>,
    /// `time_to_target` only: training seconds to the target over the runs that reached it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_stats"
    )]
    pub seconds: Option<MeanStats>,
}

/// A number for JSON: finite as a number, else the string "NaN", "inf" or "-inf" (JSON has no
/// such numbers, and null would read as "no value").
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            x if x.is_finite() => s.serialize_f64(x),
            x if x.is_nan() => s.serialize_str("NaN"),
            x if x > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }
}

/// [`MeanStats`] with non-finite mean and std as strings (see [`Num`]).
#[derive(Serialize)]
struct StatsOut<'a> {
    n: usize,
    mean: Option<Num>,
    std: Option<Num>,
    ci: &'a Option<super::stats::Interval>,
}

fn stats_out(m: &MeanStats) -> StatsOut<'_> {
    StatsOut {
        n: m.n,
        mean: m.mean.map(Num),
        std: m.std.map(Num),
        ci: &m.ci,
    }
}

fn ser_stats<S: serde::Serializer>(m: &MeanStats, s: S) -> Result<S::Ok, S::Error> {
    stats_out(m).serialize(s)
}

fn ser_opt_stats<S: serde::Serializer>(m: &Option<MeanStats>, s: S) -> Result<S::Ok, S::Error> {
    m.as_ref().map(stats_out).serialize(s)
}

/// The point of `runs` (one setting, any number of seeds).
pub fn point(
    x: &str,
    pos: f64,
    runs: &[&RunObs],
    metric: EffectMetric,
    target: f64,
) -> EffectPoint {
    let counted: Vec<&RunObs> = runs
        .iter()
        .copied()
        .filter(|r| r.outcome == Outcome::Completed)
        .collect();
    let count = |o: Outcome| runs.iter().filter(|r| r.outcome == o).count();
    let (mut reached, mut seconds) = (None, None);
    // The values of the runs that count; a run that counts without a value is `no_value`.
    let mut no_value = 0;
    let mut present = |v: Vec<Option<f64>>| -> Vec<f64> {
        no_value = v.iter().filter(|x| x.is_none()).count();
        v.into_iter().flatten().collect()
    };
    let values: Vec<f64> = match metric {
        EffectMetric::FinalTestAcc => present(counted.iter().map(|r| r.final_test_acc).collect()),
        EffectMetric::BestTestAcc => {
            present(counted.iter().map(|r| best_acc(&r.test_evals)).collect())
        }
        // Throughput is valid whatever the accuracy did: every run counts (NaN: none stored).
        EffectMetric::SamplesPerSec => present(
            runs.iter()
                .map(|r| Some(r.samples_per_sec).filter(|x| !x.is_nan()))
                .collect(),
        ),
        EffectMetric::TimeToTarget => {
            let hits: Vec<(f64, f64)> = counted
                .iter()
                .filter_map(|r| time_to_target(&r.test_evals, target))
                .collect();
            reached = Some(Reached {
                k: hits.len(),
                n: counted.len(),
            });
            seconds = Some(mean_stats(&hits.iter().map(|h| h.1).collect::<Vec<_>>()));
            hits.iter().map(|h| h.0).collect()
        }
    };
    EffectPoint {
        x: x.to_string(),
        pos,
        runs: runs.len(),
        diverged: count(Outcome::Diverged),
        collapsed: count(Outcome::Collapsed),
        no_value,
        stats: match metric {
            EffectMetric::FinalTestAcc | EffectMetric::BestTestAcc => {
                mean_stats(&values).within(0.0, 1.0)
            }
            _ => mean_stats(&values),
        },
        reached,
        seconds,
    }
}

/// One line of an effect chart: the runs that share the other dims' values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EffectSeries {
    /// "all runs" when nothing else varies; else e.g. "LSTM, hidden=64".
    pub label: String,
    /// The other dims' values.
    pub key: BTreeMap<String, String>,
    /// In axis order; a value without runs in this line has no point.
    pub points: Vec<EffectPoint>,
}

/// A metric against one dim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Effect {
    pub axis: String,
    pub scale: Scale,
    pub metric: EffectMetric,
    /// `time_to_target` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// The axis values, in order.
    pub values: Vec<String>,
    pub series: Vec<EffectSeries>,
    /// Runs left out: no value of the axis, neither a grid coordinate nor a configuration value.
    pub not_shown: usize,
}

impl Effect {
    /// The x dim of this effect.
    pub fn dim(&self) -> Dim {
        Dim {
            name: self.axis.clone(),
            scale: self.scale,
            values: self.values.clone(),
        }
    }
}

/// The value shown for a dim a run does not have (its sweep's grid has no such axis).
pub const NOT_SET: &str = "-";

/// A line's label from the other dims' values: the variant by its name, others as name=value.
pub fn label(key: &[(&str, &str)]) -> String {
    if key.is_empty() {
        return "all runs".into();
    }
    key.iter()
        .map(|(k, v)| {
            if *k == "variant" {
                v.to_string()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `metric` against the dim named `axis` (one of `dims`), one line per combination of the other
/// dims, lines in the other dims' value order. Runs without a value of `axis` are not on the
/// chart; runs without a value of another dim get [`NOT_SET`] there (sweeps of other grids).
pub fn effect(
    dims: &[Dim],
    axis: &str,
    runs: &[RunObs],
    metric: EffectMetric,
    target: f64,
) -> Effect {
    let x = dims
        .iter()
        .find(|d| d.name == axis)
        .unwrap_or_else(|| panic!("effect: {axis:?} is not a varying dim"));
    let others: Vec<&Dim> = dims.iter().filter(|d| d.name != axis).collect();
    // Line key: the other dims' value indices (their order), then the x value index.
    let mut cells: BTreeMap<Vec<usize>, BTreeMap<usize, Vec<&RunObs>>> = BTreeMap::new();
    let mut not_shown = 0;
    for r in runs {
        let idx = |d: &Dim| {
            r.coords
                .get(&d.name)
                .and_then(|v| d.values.iter().position(|w| w == v))
        };
        let Some(xi) = idx(x) else {
            not_shown += 1;
            continue;
        };
        // A run without a value of another dim (its sweep has no such axis) is a line of its
        // own, after the dim's values, shown as "-".
        let key: Vec<usize> = others
            .iter()
            .map(|d| idx(d).unwrap_or(d.values.len()))
            .collect();
        cells.entry(key).or_default().entry(xi).or_default().push(r);
    }
    let series = cells
        .into_iter()
        .map(|(key, by_x)| {
            let pairs: Vec<(&str, &str)> = others
                .iter()
                .zip(&key)
                .map(|(d, &i)| {
                    (
                        d.name.as_str(),
                        d.values.get(i).map_or(NOT_SET, |v| v.as_str()),
                    )
                })
                .collect();
            EffectSeries {
                label: label(&pairs),
                key: pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                points: by_x
                    .into_iter()
                    .map(|(xi, rs)| {
                        let v = &x.values[xi];
                        let pos = x.pos(v).expect("the dim's own value");
                        point(v, pos, &rs, metric, target)
                    })
                    .collect(),
            }
        })
        .collect();
    Effect {
        axis: x.name.clone(),
        scale: x.scale,
        metric,
        target: (metric == EffectMetric::TimeToTarget).then_some(target),
        values: x.values.clone(),
        series,
        not_shown,
    }
}

/// Two dims crossed: one cell per pair of values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Heatmap {
    pub metric: EffectMetric,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Columns.
    pub x: String,
    pub xs: Vec<String>,
    /// Rows.
    pub y: String,
    pub ys: Vec<String>,
    /// cells[row][column]; None where no shown run has that pair.
    pub cells: Vec<Vec<Option<EffectPoint>>>,
    /// Runs left out: no value of x or of y.
    pub not_shown: usize,
}

/// The heatmap of `metric` when exactly two dims vary (None otherwise). Columns: the numeric
/// dim when only one of the two is numeric, else the first; rows: the other.
pub fn heatmap(
    dims: &[Dim],
    runs: &[RunObs],
    metric: EffectMetric,
    target: f64,
) -> Option<Heatmap> {
    let [a, b] = dims else { return None };
    let (x, y) = if a.scale == Scale::Categorical && b.scale != Scale::Categorical {
        (b, a)
    } else {
        (a, b)
    };
    let not_shown = runs
        .iter()
        .filter(|r| {
            !(x.values.iter().any(|v| r.coords.get(&x.name) == Some(v))
                && y.values.iter().any(|v| r.coords.get(&y.name) == Some(v)))
        })
        .count();
    let cells = y
        .values
        .iter()
        .map(|yv| {
            x.values
                .iter()
                .enumerate()
                .map(|(xi, xv)| {
                    let rs: Vec<&RunObs> = runs
                        .iter()
                        .filter(|r| {
                            r.coords.get(&x.name) == Some(xv) && r.coords.get(&y.name) == Some(yv)
                        })
                        .collect();
                    (!rs.is_empty()).then(|| point(xv, xi as f64, &rs, metric, target))
                })
                .collect()
        })
        .collect();
    Some(Heatmap {
        metric,
        target: (metric == EffectMetric::TimeToTarget).then_some(target),
        x: x.name.clone(),
        xs: x.values.clone(),
        y: y.name.clone(),
        ys: y.values.clone(),
        cells,
        not_shown,
    })
}

/// The y range of an effect chart: the points' interval ends (or means) padded by 8 %; for
/// accuracies kept within [0, 1], for other metrics from 0. [0, 1] when there is no point.
pub fn y_range(e: &Effect) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for p in e.series.iter().flat_map(|s| &s.points) {
        let (Some(m), ci) = (p.stats.mean, p.stats.ci) else {
            continue;
        };
        let (a, b) = ci.map_or((m, m), |c| (c.low, c.high));
        for v in [a, b] {
            if v.is_finite() {
                lo = if v < lo { v } else { lo };
                hi = if v > hi { v } else { hi };
            }
        }
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.08 * (hi - lo)
    } else {
        0.05 * hi.abs().max(0.01)
    };
    let (mut lo, mut hi) = (lo - pad, hi + pad);
    if e.metric.is_accuracy() {
        lo = lo.clamp(0.0, 1.0);
        hi = hi.clamp(0.0, 1.0);
    } else {
        lo = 0.0;
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    (lo, hi)
}

/// The x range of an effect chart: the first to the last value's position, padded by 6 % of
/// the width (half a category for categorical axes).
pub fn x_range(e: &Effect) -> (f64, f64) {
    if e.scale == Scale::Categorical || e.values.is_empty() {
        return (-0.5, e.values.len().max(1) as f64 - 0.5);
    }
    let d = e.dim();
    let pos = |v: &String| d.pos(v).unwrap_or(0.0);
    let (first, last) = (pos(&e.values[0]), pos(&e.values[e.values.len() - 1]));
    let pad = 0.06 * (last - first).abs().max(1e-9);
    (first - pad, last + pad)
}

#[cfg(test)]
pub(crate) mod tests;
