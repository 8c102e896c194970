//! Summaries: pure functions from the loaded frames to plain values. Groups are "variants":
//! every run that shares the grouping columns (by default sweep, variant and the grid axes, so
//! all hyperparameters but the seed). Per group: runs loaded; diverged as k/n with a Wilson 95 %
//! interval; collapsed runs (kept in the accuracy statistics, but counted); final test accuracy
//! over completed runs as n, mean, std and a Student-t 95 % interval; the best seed-mean of the
//! metric and where it was reached; final train accuracy; parameters, seconds per epoch,
//! samples/s; and the paired difference against the best group on the seeds both completed (an
//! interval only from 3 shared seeds, see `stats::paired_diff`). The curve table holds the
//! seed-mean of one metric at every evaluation point. A `--by` name that is not a grouping
//! column is a [`GroupByError`]; `Metric` parses with a text error for clap.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use super::load::{Counts, Loaded};
use super::stats::{mean_stats, paired_diff, proportion, Interval, PairedDiff, Proportion};

/// Which metric the curve table (and the best-point column) uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    TestAcc,
    TestLoss,
    TrainAcc,
    TrainLoss,
}

/// For clap's `--metric`: the text is what clap prints after "invalid value".
impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "test_acc" => Metric::TestAcc,
            "test_loss" => Metric::TestLoss,
            "train_acc" => Metric::TrainAcc,
            "train_loss" => Metric::TrainLoss,
            _ => {
                return Err(format!(
                    "unknown metric {s:?}; allowed: test_acc, test_loss, train_acc, train_loss"
                ))
            }
        })
    }
}

impl Metric {
    pub(crate) fn split(self) -> &'static str {
        match self {
            Metric::TestAcc | Metric::TestLoss => "test",
            Metric::TrainAcc | Metric::TrainLoss => "train",
        }
    }
    pub(crate) fn column(self) -> &'static str {
        match self {
            Metric::TestAcc | Metric::TrainAcc => "acc",
            Metric::TestLoss | Metric::TrainLoss => "loss",
        }
    }
    /// Whether larger is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::TestAcc | Metric::TrainAcc)
    }
    pub fn name(self) -> &'static str {
        match self {
            Metric::TestAcc => "test_acc",
            Metric::TestLoss => "test_loss",
            Metric::TrainAcc => "train_acc",
            Metric::TrainLoss => "train_loss",
        }
    }
}

/// One group of runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupRow {
    /// e.g. "LSTM h64" or "activation/Model A lr=0.01".
    pub label: String,
    /// The grouping columns' values.
    pub key: BTreeMap<String, String>,
    /// Runs loaded (completed + diverged).
    pub runs: usize,
    pub diverged: usize,
    /// `diverged` of `runs`, with its 95 % Wilson score interval.
    pub divergence: Proportion,
    /// Completed runs predicting one class for ≥ 99 % of the test images. They are in the
    /// accuracy statistics below (they are what the recipe produced), and counted here.
    pub collapsed: usize,
    /// Final test accuracy over completed runs: how many, mean, sample std (None below 2) and
    /// the Student-t 95 % interval of the mean (None below 2).
    pub test_acc_n: usize,
    pub test_acc_mean: Option<f64>,
    pub test_acc_std: Option<f64>,
    pub test_acc_ci: Option<Interval>,
    pub train_acc_mean: Option<f64>,
    /// Best seed-mean of the metric over evaluation points, with its epoch and iteration.
    pub best: Option<f64>,
    pub best_epoch: Option<i64>,
    pub best_iteration: Option<i64>,
    pub parameters: u64,
    pub seconds_per_epoch: f64,
    pub samples_per_sec: f64,
    /// Final test accuracy minus the best group's, on the seeds both completed; None for the
    /// best group itself and when no seed is shared.
    pub vs_best: Option<PairedDiff>,
    /// Final test accuracy per seed (completed runs; the mean when the grouping puts several
    /// runs of one seed in the group).
    #[serde(skip)]
    pub by_seed: BTreeMap<u64, f64>,
}

/// The curve table: seed-mean metric per evaluation point (rows) and group (columns).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Curves {
    pub metric: Metric,
    /// (epoch, iteration) of each row.
    pub points: Vec<(i64, i64)>,
    /// Group labels, in summary order.
    pub labels: Vec<String>,
    /// values[row][column]; None where a group has no evaluation at that point.
    pub values: Vec<Vec<Option<f64>>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub counts: Counts,
    pub by: Vec<String>,
    pub metric: Metric,
    /// Sorted by final test accuracy, best first (groups without one last).
    pub groups: Vec<GroupRow>,
    pub curves: Curves,
}

/// The default grouping: sweep (when several), variant, and the grid axes.
pub fn default_by(loaded: &Loaded) -> Vec<String> {
    let mut by = Vec::new();
    if loaded.sweeps.len() > 1 {
        by.push("sweep".to_string());
    }
    by.push("variant".to_string());
    by.extend(loaded.axes.iter().map(|a| format!("axis_{a}")));
    by
}

/// A `--by` name that is not a column runs can be grouped by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot group by {name:?}; allowed: {}", allowed.join(", "))]
pub struct GroupByError {
    /// As given.
    pub name: String,
    /// The names `--by` accepts (grid axes without their `axis_` prefix).
    pub allowed: Vec<String>,
}

/// Checks `--by` names against the runs table's columns.
pub fn check_by(loaded: &Loaded, by: &[String]) -> Result<Vec<String>, GroupByError> {
    let names: Vec<String> = loaded
        .runs
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let allowed: Vec<&String> = names
        .iter()
        .filter(|n| {
            !["id", "index", "seed", "status", "collapsed"].contains(&n.as_str())
                && !n.starts_with("final_")
                && !n.ends_with("_sec")
                && !n.ends_with("seconds")
                && *n != "seconds_per_epoch"
                && *n != "parameters"
        })
        .collect();
    by.iter()
        .map(|b| {
            let name = if names.contains(b) {
                b.clone()
            } else {
                format!("axis_{b}")
            };
            if allowed.contains(&&name) {
                Ok(name)
            } else {
                Err(GroupByError {
                    name: b.clone(),
                    allowed: allowed
                        .iter()
                        .map(|s| s.trim_start_matches("axis_").to_string())
                        .collect(),
                })
            }
        })
        .collect()
}

/// Row `i`'s values of the grouping columns `by`, as text: the key that names its group.
pub(crate) fn group_key(
    df: &DataFrame,
    by: &[String],
    i: usize,
) -> PolarsResult<BTreeMap<String, String>> {
    by.iter()
        .map(|b| Ok((b.clone(), text_of(df.column(b)?.get(i)?))))
        .collect()
}

fn text_of(v: AnyValue) -> String {
    match v {
        AnyValue::Null => "-".into(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn label_of(by: &[String], key: &BTreeMap<String, String>) -> String {
    let mut parts = Vec::new();
    for b in by {
        let v = &key[b];
        match b.as_str() {
            "variant" | "sweep" => parts.push(v.clone()),
            _ => parts.push(format!("{}={v}", b.trim_start_matches("axis_"))),
        }
    }
    let label = parts.join(" ");
    if label.is_empty() {
        "all".into()
    } else {
        label.replace("default ", "")
    }
}

/// Summarizes loaded runs grouped by `by` (column names of the runs table).
pub fn summarize(loaded: &Loaded, by: &[String], metric: Metric) -> PolarsResult<Summary> {
    let by_exprs: Vec<Expr> = by
        .iter()
        .map(|b| col(b.as_str()).cast(DataType::String))
        .collect();
    let completed = col("status").eq(lit("completed"));
    let agg = loaded
        .runs
        .clone()
        .lazy()
        .group_by_stable(by_exprs.clone())
        .agg([
            len().alias("runs"),
            col("status")
                .eq(lit("diverged"))
                .cast(DataType::UInt32)
                .sum()
                .alias("diverged"),
            col("collapsed")
                .cast(DataType::UInt32)
                .sum()
                .alias("collapsed"),
            col("final_train_acc")
                .filter(completed)
                .mean()
                .alias("train_mean"),
            col("parameters").first().alias("parameters"),
            col("seconds_per_epoch").mean().alias("sec_epoch"),
            col("samples_per_sec").mean().alias("sps"),
        ])
        .collect()?;

    // Seed-mean curve of the metric per group and evaluation point.
    let runs_keys = loaded.runs.clone().lazy().select(
        std::iter::once(col("id"))
            .chain(by.iter().map(|b| col(b.as_str()).cast(DataType::String)))
            .collect::<Vec<_>>(),
    );
    let mut group_and_point: Vec<Expr> = by.iter().map(|b| col(b.as_str())).collect();
    group_and_point.push(col("epoch"));
    group_and_point.push(col("iteration"));
    let curve = loaded
        .metrics
        .clone()
        .filter(col("split").eq(lit(metric.split())))
        .join(
            runs_keys,
            [col("id")],
            [col("id")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by(group_and_point)
        .agg([col(metric.column()).mean().alias("value")])
        .sort(["iteration"], SortMultipleOptions::default())
        .collect()?;

    // Per-seed final accuracies for the paired comparisons.
    let mut groups: Vec<GroupRow> = Vec::with_capacity(agg.height());
    let key_of = |df: &DataFrame, i: usize| group_key(df, by, i);
    let f = |name: &str, i: usize| -> PolarsResult<Option<f64>> {
        Ok(
            match agg.column(name)?.cast(&DataType::Float64)?.f64()?.get(i) {
                Some(x) if x.is_finite() => Some(x),
                _ => None,
            },
        )
    };
    for i in 0..agg.height() {
        let key = key_of(&agg, i)?;
        let runs = f("runs", i)?.unwrap_or(0.0) as usize;
        let diverged = f("diverged", i)?.unwrap_or(0.0) as usize;
        groups.push(GroupRow {
            label: label_of(by, &key),
            key,
            runs,
            diverged,
            divergence: proportion(diverged, runs),
            collapsed: f("collapsed", i)?.unwrap_or(0.0) as usize,
            test_acc_n: 0,
            test_acc_mean: None,
            test_acc_std: None,
            test_acc_ci: None,
            train_acc_mean: f("train_mean", i)?,
            best: None,
            best_epoch: None,
            best_iteration: None,
            parameters: f("parameters", i)?.unwrap_or(0.0) as u64,
            seconds_per_epoch: f("sec_epoch", i)?.unwrap_or(0.0),
            samples_per_sec: f("sps", i)?.unwrap_or(0.0),
            vs_best: None,
            by_seed: BTreeMap::new(),
        });
    }
    let index_of: BTreeMap<BTreeMap<String, String>, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.key.clone(), i))
        .collect();
    // Final test accuracies of completed runs, per group and per (group, seed).
    let runs = &loaded.runs;
    let (seeds, accs, statuses) = (
        runs.column("seed")?.u64()?,
        runs.column("final_test_acc")?.f64()?,
        runs.column("status")?.str()?,
    );
    let mut finals: Vec<Vec<f64>> = vec![Vec::new(); groups.len()];
    let mut per_seed: Vec<BTreeMap<u64, (f64, usize)>> = vec![BTreeMap::new(); groups.len()];
    for r in 0..runs.height() {
        let key = group_key(runs, by, r)?;
        if let (Some(&g), Some("completed"), Some(seed), Some(acc)) = (
            index_of.get(&key),
            statuses.get(r),
            seeds.get(r),
            accs.get(r),
        ) {
            if acc.is_finite() {
                finals[g].push(acc);
                let e = per_seed[g].entry(seed).or_insert((0.0, 0));
                *e = (e.0 + acc, e.1 + 1);
            }
        }
    }
    for (g, (x, seeds)) in groups.iter_mut().zip(finals.iter().zip(per_seed)) {
        let st = mean_stats(x);
        g.test_acc_n = st.n;
        g.test_acc_mean = st.mean;
        g.test_acc_std = st.std;
        g.test_acc_ci = st.ci;
        g.by_seed = seeds
            .into_iter()
            .map(|(seed, (sum, n))| (seed, sum / n as f64))
            .collect();
    }

    // Curves: rows are the union of evaluation points; best point per group.
    let mut points: Vec<(i64, i64)> = Vec::new();
    let mut cells: BTreeMap<(usize, (i64, i64)), f64> = BTreeMap::new();
    let (ep, it, val) = (
        curve.column("epoch")?.cast(&DataType::Int64)?,
        curve.column("iteration")?.cast(&DataType::Int64)?,
        curve.column("value")?.cast(&DataType::Float64)?,
    );
    let (ep, it, val) = (ep.i64()?, it.i64()?, val.f64()?);
    for r in 0..curve.height() {
        let key = key_of(&curve, r)?;
        let (Some(e), Some(i), Some(v)) = (ep.get(r), it.get(r), val.get(r)) else {
            continue;
        };
        let Some(&g) = index_of.get(&key) else {
            continue;
        };
        if !points.contains(&(e, i)) {
            points.push((e, i));
        }
        cells.insert((g, (e, i)), v);
        let better = |old: Option<f64>| {
            old.is_none_or(|o| {
                if metric.higher_is_better() {
                    v > o
                } else {
                    v < o
                }
            })
        };
        if v.is_finite() && better(groups[g].best) {
            groups[g].best = Some(v);
            groups[g].best_epoch = Some(e);
            groups[g].best_iteration = Some(i);
        }
    }
    points.sort_by_key(|p| (p.1, p.0));

    // Sort by final test accuracy (best first), then compare every group with the best.
    let order: Vec<usize> = {
        let mut o: Vec<usize> = (0..groups.len()).collect();
        o.sort_by(|&a, &b| {
            let (x, y) = (groups[a].test_acc_mean, groups[b].test_acc_mean);
            y.unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&x.unwrap_or(f64::NEG_INFINITY))
                .then(a.cmp(&b))
        });
        o
    };
    let values: Vec<Vec<Option<f64>>> = points
        .iter()
        .map(|p| {
            order
                .iter()
                .map(|&g| cells.get(&(g, *p)).copied())
                .collect()
        })
        .collect();
    let mut groups: Vec<GroupRow> = order.iter().map(|&g| groups[g].clone()).collect();
    if let Some(best) = groups
        .first()
        .filter(|g| g.test_acc_mean.is_some())
        .cloned()
    {
        for g in groups.iter_mut().skip(1) {
            g.vs_best = compare(g, &best);
        }
    }
    let labels = groups.iter().map(|g| g.label.clone()).collect();
    Ok(Summary {
        counts: loaded.counts.clone(),
        by: by.to_vec(),
        metric,
        groups,
        curves: Curves {
            metric,
            points,
            labels,
            values,
        },
    })
}

/// a's final test accuracy minus b's, paired on the seeds both completed
/// ([`paired_diff`]: a 95 % interval only from 3 shared seeds; Student t below 10, bootstrap
/// from 10); None when they share no seed.
pub fn compare(a: &GroupRow, b: &GroupRow) -> Option<PairedDiff> {
    let shared: Vec<u64> = a
        .by_seed
        .keys()
        .filter(|s| b.by_seed.contains_key(s))
        .copied()
        .collect();
    let xa: Vec<f64> = shared.iter().map(|s| a.by_seed[s]).collect();
    let xb: Vec<f64> = shared.iter().map(|s| b.by_seed[s]).collect();
    paired_diff(&xa, &xb)
}
