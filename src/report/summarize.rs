//! Summaries: pure functions from the loaded frames to plain values. Groups are "variants":
//! every run that shares the grouping columns (by default sweep, variant and the grid axes, so
//! all hyperparameters but the seed). Per group: runs loaded; diverged as k/n with a Wilson 95 %
//! interval; collapsed runs (kept in the accuracy statistics, but counted); final test accuracy
//! over completed runs as n, mean, std and a Student-t 95 % interval; the best seed-mean of the
//! metric and where it was reached (marked as before divergence when every run diverged); final
//! train accuracy; parameters, seconds per epoch,
//! samples/s; and the paired difference against the best group on the seeds both completed (an
//! interval only from 3 shared seeds, see `stats::paired_diff`). The curve tables hold the
//! seed-mean of one metric at every evaluation point, one table per evaluation schedule (see
//! [`CurveTable`]). A `--by` name that is not a grouping column is a [`GroupByError`]; `Metric`
//! parses with a text error for clap.
//!
//! Grouping columns are named as the grid names them (`hidden`, `lr`: the runs table has a
//! column per grid key), and every label is unique (see [`unique_labels`]): a table never
//! shows two groups under one name.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use super::load::{Counts, Loaded};
use super::stats::{mean_stats, paired_diff, proportion, Interval, PairedDiff, Proportion};

/// Which metric the curve table (and the best-point column) uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    TestAcc,
    TestLoss,
    TrainAcc,
    TrainLoss,
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
    /// Every run of the group diverged: `best` is the best point before the runs diverged
    /// (a mean over the seeds still running there), not comparable with the bests of groups
    /// that trained to the end. The tables label it "before divergence".
    pub best_before_divergence: bool,
    /// Runs stopped at a rung by successive halving (`[prune]`).
    pub pruned: usize,
    /// No run of the group trained to the end and at least one was pruned: `best` is over the
    /// partial curves up to the rungs, not comparable with the bests of groups that trained to
    /// the end. The tables label it "before pruning".
    pub best_before_pruning: bool,
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

/// One evaluation point of a curve table. A schedule's own unit is always there (the epoch of
/// an `eval_every = "epoch"` table, the step of an every-K-steps table); the other is None where
/// the table's runs differ in it (e.g. batch sizes with different steps per epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CurvePoint {
    pub epoch: Option<i64>,
    pub iteration: Option<i64>,
}

/// The curve table of the groups evaluated on one schedule: seed-mean metric per evaluation
/// point (rows) and group (columns).
///
/// Why one table per schedule, not one table with fractional epochs as rows: runs evaluated
/// after every epoch and runs evaluated every K steps share almost no evaluation point, so one
/// table of either kind is mostly empty cells, with rows that alternate between the schedules
/// (keyed by iteration, "epoch 3 at step 1800" even came before "epoch 2 at step 1876"). A
/// table per schedule is dense, each keyed by the unit the grid chose (`eval_every`), and its
/// rows are in training order. The charts (`series`) put every run on one axis, fractional
/// epochs, since a line needs no shared points.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurveTable {
    /// The schedule, as the grid writes `eval_every`: "epoch" or a number of steps.
    pub eval_every: String,
    /// What a row is: "epoch" or "step".
    pub x: &'static str,
    pub points: Vec<CurvePoint>,
    /// Group labels, in summary order (only groups with runs on this schedule).
    pub labels: Vec<String>,
    /// Each column's index into `Summary::groups`.
    pub groups: Vec<usize>,
    /// values[row][column]; None where a group has no evaluation at that point.
    pub values: Vec<Vec<Option<f64>>>,
}

impl CurveTable {
    /// "every epoch" or "every 500 steps".
    pub fn schedule(&self) -> String {
        if self.x == "epoch" {
            "every epoch".into()
        } else {
            format!("every {} steps", self.eval_every)
        }
    }
}

/// The curve tables of one metric, one per evaluation schedule: "epoch" first, then by steps.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Curves {
    pub metric: Metric,
    pub tables: Vec<CurveTable>,
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
    let has = |c: &str| loaded.runs.column(c).is_ok();
    for a in &loaded.axes {
        // Every grid key is a column of the runs table; `axis_` is only for a plan whose axis
        // is no key of this version.
        by.push(if has(a) {
            a.clone()
        } else {
            format!("axis_{a}")
        });
    }
    by
}

/// A `--by` name that is not a column runs can be grouped by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot group by {name:?}; allowed: {}", allowed.join(", "))]
pub struct GroupByError {
    /// As given.
    pub name: String,
    /// The names `--by` accepts: grid keys as the grid writes them and the other run columns
    /// (the `axis_` copies of grid axes are accepted but not listed).
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
    let groupable = |n: &&String| {
        ![
            "id",
            "index",
            "seed",
            "status",
            "collapsed",
            "steps_per_epoch",
        ]
        .contains(&n.as_str())
            && !n.starts_with("final_")
            && !n.ends_with("_sec")
            && !n.ends_with("seconds")
            && *n != "seconds_per_epoch"
            && *n != "parameters"
    };
    let allowed: Vec<&String> = names.iter().filter(groupable).collect();
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
                    // The `axis_` copies are accepted but not offered: the grid key is a column.
                    allowed: allowed
                        .iter()
                        .filter(|s| !s.starts_with("axis_"))
                        .map(|s| s.to_string())
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

/// A grouping value as text: numbers as Rust writes them (as the plan writes the grid's values:
/// 0.001, not 1e-3), null as "-".
fn text_of(v: AnyValue) -> String {
    match v {
        AnyValue::Null => "-".into(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Float64(x) => x.to_string(),
        AnyValue::Float32(x) => x.to_string(),
        other => other.to_string(),
    }
}

/// `df` with each grouping column replaced by its text ([`text_of`]), so that the groups and
/// every look-up of a run's group ([`group_key`] on the loaded frame) agree.
fn with_text_keys(df: &DataFrame, by: &[String]) -> PolarsResult<DataFrame> {
    let mut out = df.clone();
    for b in by {
        let c = df.column(b)?;
        let texts = (0..df.height())
            .map(|i| Ok(text_of(c.get(i)?)))
            .collect::<PolarsResult<Vec<String>>>()?;
        out.with_column(Column::new(b.as_str().into(), texts))?;
    }
    Ok(out)
}

/// A group's label: "sweep/variant key=value …" (the sweep only when grouped by it; the
/// implicit variant `default` left out when something else names the group). `explicit`
/// writes every part as key=value.
fn label_of(by: &[String], key: &BTreeMap<String, String>, explicit: bool) -> String {
    let mut sweep = None;
    let mut parts = Vec::new();
    for b in by {
        let v = &key[b];
        let name = b.trim_start_matches("axis_");
        match b.as_str() {
            _ if explicit => parts.push(format!("{name}={v}")),
            "sweep" => sweep = Some(v.clone()),
            "variant" if v == "default" && by.len() > 1 => {}
            "variant" => parts.push(v.clone()),
            _ => parts.push(format!("{name}={v}")),
        }
    }
    let rest = parts.join(" ");
    match sweep {
        Some(sw) if rest.is_empty() => sw,
        Some(sw) => format!("{sw}/{rest}"),
        None if rest.is_empty() => "all".into(),
        None => rest,
    }
}

/// Labels for the groups' keys, never two alike: the short form where it names one group; for
/// groups that share it, every part as key=value; a label still shared (values whose text is
/// equal) gets " #2", " #3" … in group order.
pub fn unique_labels(by: &[String], keys: &[BTreeMap<String, String>]) -> Vec<String> {
    let short: Vec<String> = keys.iter().map(|k| label_of(by, k, false)).collect();
    let shared = |l: &String| short.iter().filter(|x| *x == l).count() > 1;
    let labels: Vec<String> = short
        .iter()
        .zip(keys)
        .map(|(l, k)| {
            if shared(l) {
                label_of(by, k, true)
            } else {
                l.clone()
            }
        })
        .collect();
    let mut taken: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    labels
        .into_iter()
        .map(|l| {
            let mut out = l.clone();
            let mut n = 1;
            while taken.contains(&out) {
                n += 1;
                out = format!("{l} #{n}");
            }
            taken.insert(out.clone());
            out
        })
        .collect()
}

/// A coordinate that several runs share at an evaluation point, or not.
#[derive(Clone, Copy, Debug, Default)]
enum Shared {
    #[default]
    Unset,
    One(i64),
    Differs,
}

impl Shared {
    fn add(&mut self, v: i64) {
        *self = match *self {
            Shared::Unset => Shared::One(v),
            Shared::One(x) if x == v => Shared::One(x),
            _ => Shared::Differs,
        }
    }
    fn merge(&mut self, o: Shared) {
        match o {
            Shared::Unset => {}
            Shared::One(v) => self.add(v),
            Shared::Differs => *self = Shared::Differs,
        }
    }
    fn get(self) -> Option<i64> {
        match self {
            Shared::One(x) => Some(x),
            _ => None,
        }
    }
}

/// Sum and count of a metric at one (schedule, group, point), and the other coordinate.
#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    sum: f64,
    n: usize,
    other: Shared,
}

/// Schedules in table order: "epoch", then every K steps by K.
fn schedule_order(every: &str) -> Schedule {
    match every.parse::<u64>() {
        _ if every == "epoch" => (0, 0, String::new()),
        Ok(k) => (1, k, String::new()),
        Err(_) => (2, 0, every.to_string()),
    }
}

/// Summarizes loaded runs grouped by `by` (column names of the runs table).
pub fn summarize(loaded: &Loaded, by: &[String], metric: Metric) -> PolarsResult<Summary> {
    let keyed = with_text_keys(&loaded.runs, by)?;
    let mut groups = group_rows(&keyed, by)?;
    let group_of = groups_of_runs(&keyed, by, &groups)?;
    add_final_test_accs(&mut groups, &keyed, &group_of)?;
    let scheds = schedules(keyed.column("eval_every")?.str()?);
    let places = run_places(&keyed, &group_of, &scheds)?;
    let cells = curve_cells(loaded, metric, &places, &scheds)?;
    set_best_points(&mut groups, &cells, &scheds, metric);
    let (groups, order) = rank_groups(groups);
    let tables = curve_tables(&cells, &scheds, &order, &groups);
    Ok(Summary {
        counts: loaded.counts.clone(),
        by: by.to_vec(),
        metric,
        groups,
        curves: Curves { metric, tables },
    })
}

/// An evaluation schedule as [`schedule_order`] sorts it.
type Schedule = (u8, u64, String);

/// Each run's group and schedule (indexes into the groups and the schedules), by run id.
type RunPlaces<'a> = std::collections::HashMap<&'a str, (usize, usize)>;

/// The curve cells by (schedule, group, point in the schedule's unit).
type Cells = BTreeMap<(usize, usize, i64), Cell>;

/// One row per group of the runs table `keyed` (grouping columns as text), in order of first
/// appearance, with the per-group aggregates; the final test accuracy statistics, the best
/// point and the comparison with the best group are filled in later.
fn group_rows(keyed: &DataFrame, by: &[String]) -> PolarsResult<Vec<GroupRow>> {
    let by_exprs: Vec<Expr> = by.iter().map(|b| col(b.as_str())).collect();
    let completed = col("status").eq(lit("completed"));
    let agg = keyed
        .clone()
        .lazy()
        .group_by_stable(by_exprs)
        .agg([
            len().alias("runs"),
            col("status")
                .eq(lit("diverged"))
                .cast(DataType::UInt32)
                .sum()
                .alias("diverged"),
            col("status")
                .eq(lit("pruned"))
                .cast(DataType::UInt32)
                .sum()
                .alias("pruned"),
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

    let f = |name: &str, i: usize| -> PolarsResult<Option<f64>> {
        Ok(
            match agg.column(name)?.cast(&DataType::Float64)?.f64()?.get(i) {
                Some(x) if x.is_finite() => Some(x),
                _ => None,
            },
        )
    };
    let keys = (0..agg.height())
        .map(|i| group_key(&agg, by, i))
        .collect::<PolarsResult<Vec<_>>>()?;
    let labels = unique_labels(by, &keys);
    let mut groups: Vec<GroupRow> = Vec::with_capacity(agg.height());
    for (i, (key, label)) in keys.into_iter().zip(labels).enumerate() {
        let runs = f("runs", i)?.unwrap_or(0.0) as usize;
        let diverged = f("diverged", i)?.unwrap_or(0.0) as usize;
        let pruned = f("pruned", i)?.unwrap_or(0.0) as usize;
        groups.push(GroupRow {
            label,
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
            best_before_divergence: runs > 0 && diverged == runs,
            pruned,
            best_before_pruning: pruned > 0 && pruned + diverged == runs,
            parameters: f("parameters", i)?.unwrap_or(0.0) as u64,
            seconds_per_epoch: f("sec_epoch", i)?.unwrap_or(0.0),
            samples_per_sec: f("sps", i)?.unwrap_or(0.0),
            vs_best: None,
            by_seed: BTreeMap::new(),
        });
    }
    Ok(groups)
}

/// Each run's group (an index into `groups`), in the rows' order of `keyed`.
fn groups_of_runs(
    keyed: &DataFrame,
    by: &[String],
    groups: &[GroupRow],
) -> PolarsResult<Vec<Option<usize>>> {
    let index_of: BTreeMap<&BTreeMap<String, String>, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (&g.key, i))
        .collect();
    (0..keyed.height())
        .map(|r| Ok(index_of.get(&group_key(keyed, by, r)?).copied()))
        .collect()
}

/// Fills in each group's final test accuracy statistics and per-seed values, over its
/// completed runs with a finite final test accuracy.
fn add_final_test_accs(
    groups: &mut [GroupRow],
    keyed: &DataFrame,
    group_of: &[Option<usize>],
) -> PolarsResult<()> {
    let (seeds, accs, statuses) = (
        keyed.column("seed")?.u64()?,
        keyed.column("final_test_acc")?.f64()?,
        keyed.column("status")?.str()?,
    );
    let mut finals: Vec<Vec<f64>> = vec![Vec::new(); groups.len()];
    let mut per_seed: Vec<BTreeMap<u64, (f64, usize)>> = vec![BTreeMap::new(); groups.len()];
    for (r, g) in group_of.iter().enumerate() {
        let Some(g) = *g else {
            continue;
        };
        if let (Some("completed"), Some(seed), Some(acc)) =
            (statuses.get(r), seeds.get(r), accs.get(r))
        {
            if acc.is_finite() {
                finals[g].push(acc);
                let e = per_seed[g].entry(seed).or_insert((0.0, 0));
                *e = (e.0 + acc, e.1 + 1);
            }
        }
    }
    for (g, (x, seeds)) in groups.iter_mut().zip(finals.iter().zip(per_seed)) {
        let st = mean_stats(x).within(0.0, 1.0);
        g.test_acc_n = st.n;
        g.test_acc_mean = st.mean;
        g.test_acc_std = st.std;
        g.test_acc_ci = st.ci;
        g.by_seed = seeds
            .into_iter()
            .map(|(seed, (sum, n))| (seed, sum / n as f64))
            .collect();
    }
    Ok(())
}

/// The runs' evaluation schedules (`eval_every`, none read as "epoch"), in table order.
fn schedules(every: &StringChunked) -> Vec<Schedule> {
    let mut scheds: Vec<Schedule> = every
        .iter()
        .map(|e| schedule_order(e.unwrap_or("epoch")))
        .collect();
    scheds.sort();
    scheds.dedup();
    scheds
}

/// Each grouped run's group and schedule, by id.
fn run_places<'a>(
    keyed: &'a DataFrame,
    group_of: &[Option<usize>],
    scheds: &[Schedule],
) -> PolarsResult<RunPlaces<'a>> {
    let (ids, every) = (
        keyed.column("id")?.str()?,
        keyed.column("eval_every")?.str()?,
    );
    let sched_of: std::collections::HashMap<&str, usize> = every
        .iter()
        .flatten()
        .map(|e| {
            let o = schedule_order(e);
            (e, scheds.binary_search(&o).expect("listed"))
        })
        .collect();
    let epoch_sched = scheds.binary_search(&schedule_order("epoch")).ok();
    let mut run_of = RunPlaces::new();
    for (r, g) in group_of.iter().enumerate() {
        let (Some(g), Some(id)) = (*g, ids.get(r)) else {
            continue;
        };
        let sched = match every.get(r) {
            Some(e) => sched_of[e],
            None => epoch_sched.expect("a run without eval_every is listed as \"epoch\""),
        };
        run_of.insert(id, (g, sched));
    }
    Ok(run_of)
}

/// Curves: per schedule, group and point (the schedule's unit) the sum and count of `metric`
/// over the runs (a non-finite value stays in the mean, as in PyTorch); the other coordinate
/// where shared.
fn curve_cells(
    loaded: &Loaded,
    metric: Metric,
    places: &RunPlaces,
    scheds: &[Schedule],
) -> PolarsResult<Cells> {
    let rows = loaded
        .metrics
        .clone()
        .filter(col("split").eq(lit(metric.split())))
        .select([
            col("id"),
            col("epoch"),
            col("iteration"),
            col(metric.column()),
        ])
        .collect()?;
    let (id, ep, it, val) = (
        rows.column("id")?.str()?,
        rows.column("epoch")?.i64()?,
        rows.column("iteration")?.i64()?,
        rows.column(metric.column())?.f64()?,
    );
    let mut cells = Cells::new();
    for r in 0..rows.height() {
        let (Some(id), Some(e), Some(i), Some(v)) = (id.get(r), ep.get(r), it.get(r), val.get(r))
        else {
            continue;
        };
        let Some(&(g, sched)) = places.get(id) else {
            continue;
        };
        let (x, other) = if scheds[sched].0 == 0 { (e, i) } else { (i, e) };
        let c = cells.entry((sched, g, x)).or_default();
        c.sum += v;
        c.n += 1;
        c.other.add(other);
    }
    Ok(cells)
}

/// The evaluation point `x` of a table on `sched`, with the other coordinate where shared.
fn point(sched: &Schedule, x: i64, other: Shared) -> CurvePoint {
    if sched.0 == 0 {
        CurvePoint {
            epoch: Some(x),
            iteration: other.get(),
        }
    } else {
        CurvePoint {
            epoch: other.get(),
            iteration: Some(x),
        }
    }
}

/// Each group's best seed-mean of `metric` over its finite curve points, and where it was.
fn set_best_points(groups: &mut [GroupRow], cells: &Cells, scheds: &[Schedule], metric: Metric) {
    for (&(sched, g, x), c) in cells {
        let v = c.sum / c.n as f64;
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
            let p = point(&scheds[sched], x, c.other);
            groups[g].best = Some(v);
            groups[g].best_epoch = p.epoch;
            groups[g].best_iteration = p.iteration;
        }
    }
}

/// The groups sorted by final test accuracy (best first; ties in their first order), each
/// compared with the best; and for each place in that order the group's former index.
fn rank_groups(groups: Vec<GroupRow>) -> (Vec<GroupRow>, Vec<usize>) {
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
    (groups, order)
}

/// One table per schedule: its groups in summary order (`groups`, sorted; `order` maps a place
/// to the group's index in `cells`), its points in training order.
fn curve_tables(
    cells: &Cells,
    scheds: &[Schedule],
    order: &[usize],
    groups: &[GroupRow],
) -> Vec<CurveTable> {
    let rank: BTreeMap<usize, usize> = order.iter().enumerate().map(|(r, &g)| (g, r)).collect();
    let mut tables = Vec::new();
    let schedules: std::collections::BTreeSet<usize> = cells.keys().map(|k| k.0).collect();
    for sched in schedules {
        let every = &scheds[sched];
        let mut cols: Vec<usize> = cells
            .keys()
            .filter(|k| k.0 == sched)
            .map(|k| rank[&k.1])
            .collect();
        cols.sort_unstable();
        cols.dedup();
        let mut xs: BTreeMap<i64, Shared> = BTreeMap::new();
        for ((_, _, x), c) in cells.iter().filter(|(k, _)| k.0 == sched) {
            xs.entry(*x).or_default().merge(c.other);
        }
        let values = xs
            .keys()
            .map(|x| {
                cols.iter()
                    .map(|&r| {
                        cells
                            .get(&(sched, order[r], *x))
                            .map(|c| c.sum / c.n as f64)
                    })
                    .collect()
            })
            .collect();
        tables.push(CurveTable {
            eval_every: match every.0 {
                0 => "epoch".to_string(),
                1 => every.1.to_string(),
                _ => every.2.clone(),
            },
            x: if every.0 == 0 { "epoch" } else { "step" },
            points: xs.iter().map(|(x, o)| point(every, *x, *o)).collect(),
            labels: cols.iter().map(|&r| groups[r].label.clone()).collect(),
            groups: cols,
            values,
        });
    }
    tables
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_name_the_sweep_variant_and_axes_as_written() {
        let by: Vec<String> = ["sweep", "variant", "hidden", "axis_clip"]
            .map(String::from)
            .to_vec();
        let k = key(&[
            ("sweep", "cell"),
            ("variant", "LSTM"),
            ("hidden", "64"),
            ("axis_clip", "1"),
        ]);
        assert_eq!(label_of(&by, &k, false), "cell/LSTM hidden=64 clip=1");
        assert_eq!(
            label_of(&by, &k, true),
            "sweep=cell variant=LSTM hidden=64 clip=1"
        );
        let by: Vec<String> = ["variant", "lr"].map(String::from).to_vec();
        let k = key(&[("variant", "default"), ("lr", "0.01")]);
        assert_eq!(label_of(&by, &k, false), "lr=0.01", "the implicit variant");
        assert_eq!(label_of(&by[..1], &k, false), "default");
        assert_eq!(label_of(&[], &k, false), "all");
    }

    /// Sweep "a" with variant "b/c" and sweep "a/b" with variant "c" both read "a/b/c": the
    /// shared short label falls back to key=value; identical text from different values gets a
    /// number.
    #[test]
    fn labels_are_never_identical() {
        let by: Vec<String> = ["sweep", "variant"].map(String::from).to_vec();
        let keys = [
            key(&[("sweep", "a"), ("variant", "b/c")]),
            key(&[("sweep", "a/b"), ("variant", "c")]),
            key(&[("sweep", "x"), ("variant", "y")]),
        ];
        assert_eq!(
            unique_labels(&by, &keys),
            ["sweep=a variant=b/c", "sweep=a/b variant=c", "x/y"]
        );
        let by: Vec<String> = vec!["variant".into()];
        let keys = [key(&[("variant", "v")]), key(&[("variant", "v")])];
        assert_eq!(unique_labels(&by, &keys), ["variant=v", "variant=v #2"]);
    }

    #[test]
    fn group_values_read_as_the_grid_writes_them() {
        assert_eq!(text_of(AnyValue::Float64(0.001)), "0.001");
        assert_eq!(text_of(AnyValue::Float64(1e-5)), "0.00001");
        assert_eq!(text_of(AnyValue::UInt32(64)), "64");
        assert_eq!(text_of(AnyValue::Null), "-");
        assert_eq!(schedule_order("epoch").0, 0);
        assert!(schedule_order("50") < schedule_order("500"));
    }
}
