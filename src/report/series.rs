//! Chart series: the numbers behind each curve, computed before anything is drawn. For one
//! metric and the summary's groups, every evaluation point becomes (x in epochs, mean over
//! seeds, min and max over seeds, seeds counted). `aggregate` is the pure core (plain values in,
//! plain values out); `panel` feeds it from the loaded frames.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use super::load::Loaded;
use super::summarize::{group_key, Metric, Summary};

/// Images in an MNIST training set when no `train_limit` is set.
pub const MNIST_TRAIN: u64 = 60_000;

/// Loss curves are cut at twice the loss of a uniform guess over 10 classes (2 ln 10 ≈ 4.6):
/// above it a model has blown up, and one blown-up run must not flatten every other curve.
pub const LOSS_CAP: f64 = 2.0 * std::f64::consts::LN_10;

/// One evaluation of one run, already assigned to a group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Obs {
    /// Index into the group labels.
    pub group: usize,
    /// Optimizer steps taken; points of one group are matched on it.
    pub iteration: i64,
    /// Position on the x axis, in epochs.
    pub x: f64,
    pub value: f64,
}

/// One point of a curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Point {
    pub x: f64,
    pub iteration: i64,
    /// Mean over the seeds with a finite value here.
    pub mean: f64,
    /// Smallest and largest seed value: the band drawn around the line.
    pub lo: f64,
    pub hi: f64,
    /// Seeds with a finite value here (diverged runs drop out).
    pub n: usize,
}

/// One curve: a group's points in x order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
}

/// Everything one chart needs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Panel {
    pub metric: Metric,
    pub series: Vec<Series>,
    /// y axis range.
    pub y: (f64, f64),
    /// Some band or mean lies above the range (loss charts only).
    pub clipped: bool,
}

impl Panel {
    /// x axis range: from 0 to the last point of any series (at least 1 epoch).
    pub fn x_range(&self) -> (f64, f64) {
        let last = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.x))
            .fold(0.0_f64, f64::max);
        (0.0, if last > 0.0 { last } else { 1.0 })
    }
}

/// Steps in one epoch: the last, smaller batch counts as a step.
pub fn steps_per_epoch(train_images: u64, batch: u64) -> u64 {
    train_images.div_ceil(batch.max(1)).max(1)
}

/// Groups observations into one series per label: per group and iteration the mean, min and
/// max of the finite values and how many there were. Non-finite values (a diverged run) are left
/// out; a point with no finite value is left out. Also picks the y range: [0, 1] for
/// accuracies, and for losses [0, largest band top] capped at `LOSS_CAP`.
pub fn aggregate(metric: Metric, labels: &[String], obs: &[Obs]) -> Panel {
    let mut acc: BTreeMap<(usize, i64), (f64, Vec<f64>)> = BTreeMap::new();
    for o in obs.iter().filter(|o| o.value.is_finite()) {
        acc.entry((o.group, o.iteration))
            .or_insert_with(|| (o.x, Vec::new()))
            .1
            .push(o.value);
    }
    let mut series: Vec<Series> = labels
        .iter()
        .map(|l| Series {
            label: l.clone(),
            points: Vec::new(),
        })
        .collect();
    for ((g, iteration), (x, v)) in acc {
        let Some(s) = series.get_mut(g) else { continue };
        let n = v.len();
        s.points.push(Point {
            x,
            iteration,
            mean: v.iter().sum::<f64>() / n as f64,
            lo: v.iter().copied().fold(f64::INFINITY, f64::min),
            hi: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            n,
        });
    }
    let (y, clipped) = if metric.higher_is_better() {
        ((0.0, 1.0), false)
    } else {
        let top = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.hi))
            .fold(0.0_f64, f64::max);
        let top = if top > 0.0 { top } else { 1.0 };
        ((0.0, top.min(LOSS_CAP)), top > LOSS_CAP)
    };
    Panel {
        metric,
        series,
        y,
        clipped,
    }
}

/// The panel of one metric for the summary's groups (same labels and order as the tables).
pub fn panel(loaded: &Loaded, summary: &Summary, metric: Metric) -> PolarsResult<Panel> {
    let labels: Vec<String> = summary.groups.iter().map(|g| g.label.clone()).collect();
    let group_of: BTreeMap<&BTreeMap<String, String>, usize> = summary
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (&g.key, i))
        .collect();
    // Per run: its group and the length of its epoch in steps.
    let runs = &loaded.runs;
    let ids = runs.column("id")?.str()?;
    let steps = runs.column("steps_per_epoch")?.u64()?;
    let mut run_info: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for r in 0..runs.height() {
        let key = group_key(runs, &summary.by, r)?;
        let (Some(id), Some(&g)) = (ids.get(r), group_of.get(&key)) else {
            continue;
        };
        run_info.insert(id.to_string(), (g, steps.get(r).unwrap_or(1).max(1) as f64));
    }
    let (split, value) = (metric.split(), metric.column());
    let rows = loaded
        .metrics
        .clone()
        .filter(col("split").eq(lit(split)))
        .select([col("id"), col("iteration"), col(value)])
        .collect()?;
    let (id, it, v) = (
        rows.column("id")?.str()?,
        rows.column("iteration")?.i64()?,
        rows.column(value)?.f64()?,
    );
    let mut obs = Vec::with_capacity(rows.height());
    for r in 0..rows.height() {
        let (Some(id), Some(iteration), Some(value)) = (id.get(r), it.get(r), v.get(r)) else {
            continue;
        };
        if let Some(&(group, steps)) = run_info.get(id) {
            obs.push(Obs {
                group,
                iteration,
                x: iteration as f64 / steps,
                value,
            });
        }
    }
    Ok(aggregate(metric, &labels, &obs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(group: usize, iteration: i64, value: f64) -> Obs {
        Obs {
            group,
            iteration,
            x: iteration as f64 / 10.0,
            value,
        }
    }

    #[test]
    fn mean_band_and_count_per_point() {
        let labels = vec!["A".to_string(), "B".to_string()];
        let obs = [
            o(0, 10, 0.5),
            o(0, 10, 0.7),
            o(0, 10, 0.6),
            o(0, 0, 0.1),
            o(1, 20, 0.9),
        ];
        let p = aggregate(Metric::TestAcc, &labels, &obs);
        assert_eq!(p.y, (0.0, 1.0));
        assert!(!p.clipped);
        let a = &p.series[0];
        assert_eq!(a.label, "A");
        assert_eq!(a.points.len(), 2);
        // Sorted by iteration, whatever the input order.
        assert_eq!(a.points[0].iteration, 0);
        assert_eq!(a.points[0].n, 1);
        assert_eq!((a.points[0].lo, a.points[0].hi), (0.1, 0.1));
        let q = a.points[1];
        assert_eq!((q.x, q.n, q.lo, q.hi), (1.0, 3, 0.5, 0.7));
        assert!((q.mean - 0.6).abs() < 1e-12);
        assert_eq!(p.series[1].points.len(), 1);
        assert_eq!(p.x_range(), (0.0, 2.0));
    }

    #[test]
    fn diverged_values_drop_out_of_the_point() {
        let labels = vec!["A".to_string()];
        let obs = [o(0, 5, 0.4), o(0, 5, f64::NAN), o(0, 6, f64::INFINITY)];
        let p = aggregate(Metric::TestAcc, &labels, &obs);
        let pts = &p.series[0].points;
        assert_eq!(pts.len(), 1, "a point with no finite value is left out");
        assert_eq!((pts[0].n, pts[0].mean), (1, 0.4));
    }

    #[test]
    fn loss_range_follows_the_data_and_is_capped() {
        let labels = vec!["A".to_string()];
        let calm = aggregate(Metric::TrainLoss, &labels, &[o(0, 0, 2.3), o(0, 1, 0.2)]);
        assert_eq!(calm.y, (0.0, 2.3));
        assert!(!calm.clipped);
        let wild = aggregate(Metric::TestLoss, &labels, &[o(0, 0, 2.3), o(0, 1, 337.0)]);
        assert_eq!(wild.y, (0.0, LOSS_CAP));
        assert!(wild.clipped);
    }

    #[test]
    fn groups_without_points_keep_their_place() {
        let labels = vec!["A".to_string(), "B".to_string()];
        let p = aggregate(Metric::TestAcc, &labels, &[o(1, 3, 0.5)]);
        assert_eq!(p.series.len(), 2);
        assert!(p.series[0].points.is_empty());
        assert_eq!(p.series[1].label, "B");
        assert_eq!(p.x_range(), (0.0, 0.3));
    }

    #[test]
    fn epoch_length_counts_the_last_partial_batch() {
        assert_eq!(steps_per_epoch(60_000, 64), 938);
        assert_eq!(steps_per_epoch(60_000, 100), 600);
        assert_eq!(steps_per_epoch(10, 0), 10);
    }
}
