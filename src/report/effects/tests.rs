//! Hand-computed examples for the effects: scales and log positions, dims, points with missing
//! seeds, diverged and collapsed runs, intervals, time to target, heatmaps and ranges.

use super::*;

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
}

fn ev(epochs: f64, seconds: f64, acc: f64) -> TestEval {
    TestEval {
        epochs,
        seconds,
        acc,
    }
}

fn run(
    hidden: u32,
    lr: &str,
    seed: u64,
    outcome: Outcome,
    acc: f64,
    evals: Vec<TestEval>,
) -> RunObs {
    RunObs {
        coords: [
            ("variant".to_string(), "default".to_string()),
            ("hidden".to_string(), hidden.to_string()),
            ("lr".to_string(), lr.to_string()),
        ]
        .into_iter()
        .collect(),
        seed,
        outcome,
        final_test_acc: (outcome != Outcome::Diverged).then_some(acc),
        samples_per_sec: 1000.0 / hidden as f64 + seed as f64,
        test_evals: evals,
    }
}

/// The candidate dims of [`sample_runs`]: variant (one value), hidden, lr.
pub(crate) fn candidates() -> Vec<(String, bool)> {
    vec![
        ("variant".to_string(), false),
        ("hidden".to_string(), false),
        ("lr".to_string(), false),
    ]
}

/// hidden {32, 64, 128} × lr {0.001, 0.01, 0.1} × seeds {0, 1}, not all there:
///
/// | hidden \ lr | 0.001       | 0.01                  | 0.1                      |
/// |-------------|-------------|-----------------------|--------------------------|
/// | 32          | 0.90, 0.91  | 0.95, 0.96            | diverged, 0.50           |
/// | 64          | 0.92 (seed 1 missing) | 0.97, collapsed 0.1135 | diverged, diverged |
/// | 128         | no runs     | 0.98 (one seed)       | no runs                  |
pub(crate) fn sample_runs() -> Vec<RunObs> {
    use Outcome::*;
    vec![
        run(
            32,
            "0.001",
            0,
            Completed,
            0.90,
            vec![ev(0.5, 10.0, 0.85), ev(1.0, 20.0, 0.90)],
        ),
        run(
            32,
            "0.001",
            1,
            Completed,
            0.91,
            vec![ev(0.5, 11.0, 0.91), ev(1.0, 22.0, 0.91)],
        ),
        run(
            32,
            "0.01",
            0,
            Completed,
            0.95,
            vec![ev(0.5, 9.0, 0.93), ev(1.0, 18.0, 0.95)],
        ),
        run(
            32,
            "0.01",
            1,
            Completed,
            0.96,
            vec![ev(0.5, 10.0, 0.94), ev(1.0, 20.0, 0.96)],
        ),
        // Diverged after an evaluation that reached the target: never counted.
        run(32, "0.1", 0, Diverged, 0.0, vec![ev(0.5, 10.0, 0.95)]),
        run(
            32,
            "0.1",
            1,
            Completed,
            0.50,
            vec![ev(0.5, 10.0, 0.30), ev(1.0, 20.0, 0.50)],
        ),
        run(64, "0.001", 0, Completed, 0.92, vec![ev(1.0, 30.0, 0.92)]),
        run(64, "0.01", 0, Completed, 0.97, vec![ev(1.0, 30.0, 0.97)]),
        run(
            64,
            "0.01",
            1,
            Collapsed,
            0.1135,
            vec![ev(1.0, 30.0, 0.1135)],
        ),
        run(64, "0.1", 0, Diverged, 0.0, vec![]),
        run(64, "0.1", 1, Diverged, 0.0, vec![]),
        run(128, "0.01", 0, Completed, 0.98, vec![ev(1.0, 60.0, 0.98)]),
    ]
}

#[test]
fn scales_follow_the_name_the_grid_and_the_values() {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(scale_of("lr", &v(&["0.001", "0.1"]), false), Scale::Log);
    assert_eq!(scale_of("hidden", &v(&["16", "256"]), true), Scale::Log);
    assert_eq!(scale_of("hidden", &v(&["16", "256"]), false), Scale::Linear);
    assert_eq!(
        scale_of("cell", &v(&["rnn", "lstm"]), false),
        Scale::Categorical
    );
    assert_eq!(
        scale_of("optimizer", &v(&["1", "2"]), false),
        Scale::Categorical
    );
    assert_eq!(
        scale_of("eval_every", &v(&["100", "epoch"]), false),
        Scale::Categorical
    );
    // A log scale cannot show 0: linear then.
    assert_eq!(scale_of("momentum", &v(&["0", "0.9"]), true), Scale::Linear);
    assert_eq!(scale_of("lr", &v(&["0", "0.1"]), false), Scale::Linear);
}

#[test]
fn log_positions_are_log10_and_categories_are_indices() {
    let lr = Dim {
        name: "lr".into(),
        scale: Scale::Log,
        values: vec!["0.001".into(), "0.1".into()],
    };
    close(lr.pos("0.001").unwrap(), -3.0);
    close(lr.pos("0.1").unwrap(), -1.0);
    let cell = Dim {
        name: "variant".into(),
        scale: Scale::Categorical,
        values: vec!["GRU".into(), "LSTM".into()],
    };
    assert_eq!((cell.pos("LSTM"), cell.pos("RNN")), (Some(1.0), None));
}

#[test]
fn dims_keep_what_varies_in_numeric_or_first_seen_order() {
    let d = dims(&candidates(), &sample_runs());
    let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["hidden", "lr"], "one variant does not vary");
    assert_eq!(
        d[0].values,
        ["32", "64", "128"],
        "numeric order, not text order"
    );
    assert_eq!((d[0].scale, d[1].scale), (Scale::Linear, Scale::Log));
    // Words keep the order of first appearance.
    let mut runs = sample_runs();
    runs[0].coords.insert("variant".into(), "Zeta".into());
    let d = dims(&candidates(), &runs);
    assert_eq!(d[0].name, "variant");
    assert_eq!(d[0].values, ["Zeta", "default"]);
    assert_eq!(d[0].scale, Scale::Categorical);
}

#[test]
fn points_count_diverged_and_collapsed_runs_outside_the_mean() {
    let runs = sample_runs();
    let d = dims(&candidates(), &runs);
    let e = effect(&d, "lr", &runs, EffectMetric::FinalTestAcc, 0.9);
    assert_eq!(
        (e.axis.as_str(), e.scale, e.target),
        ("lr", Scale::Log, None)
    );
    let labels: Vec<&str> = e.series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["hidden=32", "hidden=64", "hidden=128"]);

    let h32 = &e.series[0].points;
    assert_eq!(h32.len(), 3);
    // 0.90, 0.91: mean 0.905, t interval 0.905 ± 12.7062047361747·0.01/2 (see stats.rs).
    let p = &h32[0];
    assert_eq!(
        (p.x.as_str(), p.runs, p.diverged, p.collapsed, p.stats.n),
        ("0.001", 2, 0, 0, 2)
    );
    close(p.pos, -3.0);
    close(p.stats.mean.unwrap(), 0.905);
    let ci = p.stats.ci.unwrap();
    close(ci.low, 0.841_468_976_319_126);
    close(ci.high, 0.968_531_023_680_873);
    // One diverged, one completed at 0.50: mean of the one, no interval.
    let p = &h32[2];
    assert_eq!(
        (p.runs, p.diverged, p.stats.n, p.stats.mean, p.stats.ci),
        (2, 1, 1, Some(0.5), None)
    );

    let h64 = &e.series[1].points;
    // Seed 1 missing: a point of one run.
    assert_eq!(
        (h64[0].runs, h64[0].stats.n, h64[0].stats.mean),
        (1, 1, Some(0.92))
    );
    // A collapsed run is counted, not averaged.
    assert_eq!(
        (
            h64[1].runs,
            h64[1].collapsed,
            h64[1].stats.n,
            h64[1].stats.mean
        ),
        (2, 1, 1, Some(0.97))
    );
    // Every run diverged: the point stays, with nothing to average.
    assert_eq!(
        (
            h64[2].runs,
            h64[2].diverged,
            h64[2].stats.n,
            h64[2].stats.mean
        ),
        (2, 2, 0, None)
    );

    // hidden=128 has only lr=0.01: one point, at its own x.
    let h128 = &e.series[2].points;
    assert_eq!(h128.len(), 1);
    assert_eq!(h128[0].x, "0.01");
    close(h128[0].pos, -2.0);
}

#[test]
fn lines_are_the_other_settings_and_samples_per_sec_is_averaged() {
    let runs = sample_runs();
    let d = dims(&candidates(), &runs);
    let e = effect(&d, "hidden", &runs, EffectMetric::SamplesPerSec, 0.9);
    let labels: Vec<&str> = e.series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["lr=0.001", "lr=0.01", "lr=0.1"]);
    // lr=0.01, hidden=32: 1000/32 + 0 and 1000/32 + 1.
    let p = &e.series[1].points[0];
    close(p.stats.mean.unwrap(), 31.25 + 0.5);
    assert_eq!(e.series[1].key["lr"], "0.01");
}

#[test]
fn labels_name_variants_by_name_and_others_by_key() {
    assert_eq!(label(&[]), "all runs");
    assert_eq!(
        label(&[("variant", "LSTM"), ("hidden", "64")]),
        "LSTM, hidden=64"
    );
    assert_eq!(label(&[("sweep", "lr")]), "sweep=lr");
}

#[test]
fn time_to_target_is_the_first_evaluation_reaching_it() {
    let e = [
        ev(0.5, 10.0, 0.85),
        ev(1.0, 20.0, 0.90),
        ev(1.5, 30.0, 0.95),
    ];
    assert_eq!(time_to_target(&e, 0.9), Some((1.0, 20.0)));
    assert_eq!(time_to_target(&e, 0.8), Some((0.5, 10.0)));
    assert_eq!(time_to_target(&e, 0.99), None);
    assert_eq!(
        time_to_target(&[ev(1.0, 1.0, f64::NAN)], 0.0),
        None,
        "NaN reaches nothing"
    );
    assert_eq!(time_to_target(&[], 0.5), None);
}

#[test]
fn time_to_target_points_average_the_runs_that_reached_it() {
    let runs = sample_runs();
    let d = dims(&candidates(), &runs);
    let e = effect(&d, "lr", &runs, EffectMetric::TimeToTarget, 0.9);
    assert_eq!(e.target, Some(0.9));
    let h32 = &e.series[0].points;
    // Seed 0 at (1.0 epoch, 20 s), seed 1 at (0.5, 11): means 0.75 epochs, 15.5 s.
    let p = &h32[0];
    assert_eq!(p.reached, Some(Reached { k: 2, n: 2 }));
    close(p.stats.mean.unwrap(), 0.75);
    close(p.seconds.as_ref().unwrap().mean.unwrap(), 15.5);
    // Both at 0.5 epochs: a zero-width interval.
    let ci = h32[1].stats.ci.unwrap();
    assert_eq!((ci.low, ci.high), (0.5, 0.5));
    // The diverged run reached 0.95 before diverging: not counted; the other never reached.
    let p = &h32[2];
    assert_eq!(
        (p.reached, p.stats.n, p.stats.mean),
        (Some(Reached { k: 0, n: 1 }), 0, None)
    );
    // Other metrics carry no reached count.
    let f = effect(&d, "lr", &runs, EffectMetric::FinalTestAcc, 0.9);
    assert_eq!(
        (
            f.series[0].points[0].reached,
            &f.series[0].points[0].seconds
        ),
        (None, &None)
    );
}

#[test]
fn best_accuracy_propagates_nan() {
    assert_eq!(
        best_acc(&[ev(1.0, 1.0, 0.5), ev(2.0, 2.0, 0.7), ev(3.0, 3.0, 0.6)]),
        Some(0.7)
    );
    assert!(
        best_acc(&[ev(1.0, 1.0, 0.5), ev(2.0, 2.0, f64::NAN), ev(3.0, 3.0, 0.6)])
            .unwrap()
            .is_nan()
    );
    assert!(best_acc(&[ev(1.0, 1.0, f64::NAN), ev(2.0, 2.0, 0.9)])
        .unwrap()
        .is_nan());
    assert_eq!(best_acc(&[]), None);
    let runs = sample_runs();
    let d = dims(&candidates(), &runs);
    let e = effect(&d, "lr", &runs, EffectMetric::BestTestAcc, 0.9);
    // hidden=32 lr=0.001: bests 0.90 and 0.91.
    close(e.series[0].points[0].stats.mean.unwrap(), 0.905);
}

#[test]
fn heatmaps_cross_exactly_two_dims() {
    let runs = sample_runs();
    let d = dims(&candidates(), &runs);
    let h = heatmap(&d, &runs, EffectMetric::FinalTestAcc, 0.9).unwrap();
    assert_eq!((h.x.as_str(), h.y.as_str()), ("hidden", "lr"));
    assert_eq!(h.xs, ["32", "64", "128"]);
    assert_eq!(h.ys, ["0.001", "0.01", "0.1"]);
    // Row lr=0.001: 0.905 (n 2), 0.92 (n 1), no runs.
    let row = &h.cells[0];
    close(row[0].as_ref().unwrap().stats.mean.unwrap(), 0.905);
    assert_eq!(row[1].as_ref().unwrap().stats.n, 1);
    assert!(row[2].is_none());
    assert_eq!(h.cells[2][1].as_ref().unwrap().diverged, 2);
    assert_eq!(h.not_shown, 0);
    // One dim, or three: no heatmap.
    assert!(heatmap(&d[..1], &runs, EffectMetric::FinalTestAcc, 0.9).is_none());
    // A word dim goes on the rows.
    let words = vec![
        Dim {
            name: "variant".into(),
            scale: Scale::Categorical,
            values: vec!["default".into()],
        },
        d[0].clone(),
    ];
    let h = heatmap(&words, &runs, EffectMetric::FinalTestAcc, 0.9).unwrap();
    assert_eq!((h.x.as_str(), h.y.as_str()), ("hidden", "variant"));
}

#[test]
fn ranges_pad_the_intervals_and_keep_accuracies_in_0_1() {
    let runs = sample_runs();
    let d = dims(&candidates(), &runs);
    let e = effect(&d, "lr", &runs, EffectMetric::FinalTestAcc, 0.9);
    // Lowest end: 0.5 (a single run, no interval); highest: the top of the (0.95, 0.96) point's
    // t interval, 0.955 + 0.0635310… = 1.0185…, cut to 1 (an accuracy), padded and clamped.
    let (lo, hi) = y_range(&e);
    let top = 1.0;
    close(lo, 0.5 - 0.08 * (top - 0.5));
    assert_eq!(hi, 1.0, "clamped to 1");
    // Log axis: log10 0.001 = −3 to log10 0.1 = −1, padded by 6 % of 2.
    let (x0, x1) = x_range(&e);
    close(x0, -3.12);
    close(x1, -0.88);
    // Speeds start at 0.
    let s = effect(&d, "hidden", &runs, EffectMetric::SamplesPerSec, 0.9);
    assert_eq!(y_range(&s).0, 0.0);
    // No point at all: [0, 1].
    let empty = Effect {
        series: vec![],
        ..e.clone()
    };
    assert_eq!(y_range(&empty), (0.0, 1.0));
    // Categories: half a slot either side.
    let c = Effect {
        scale: Scale::Categorical,
        values: vec!["a".into(), "b".into(), "c".into()],
        ..e
    };
    assert_eq!(x_range(&c), (-0.5, 2.5));
}

#[test]
fn metrics_parse_and_print() {
    for w in EffectMetric::ALL {
        let m: EffectMetric = serde_json::from_str(&format!("\"{w}\"")).unwrap();
        assert_eq!(m.to_string(), *w);
    }
    assert!(serde_json::from_str::<EffectMetric>("\"acc\"").is_err());
    assert_eq!(
        EffectMetric::TimeToTarget.title(0.9),
        "Epochs to test accuracy 0.9"
    );
}

#[test]
fn runs_of_a_grid_without_the_axis_are_left_out_or_a_line_of_their_own() {
    let mut runs = sample_runs();
    // A run from another sweep whose grid has no lr axis.
    let mut other = runs[0].clone();
    other.coords.remove("lr");
    other.final_test_acc = Some(0.5);
    runs.push(other);
    let d = dims(&candidates(), &runs);
    let by_lr = effect(&d, "lr", &runs, EffectMetric::FinalTestAcc, 0.9);
    let n: usize = by_lr
        .series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.runs)
        .sum();
    assert_eq!(n, 12, "no lr: not on the lr chart");
    assert_eq!(by_lr.not_shown, 1, "and said to be left out");
    assert_eq!(
        heatmap(&d, &runs, EffectMetric::FinalTestAcc, 0.9)
            .unwrap()
            .not_shown,
        1
    );
    let by_hidden = effect(&d, "hidden", &runs, EffectMetric::FinalTestAcc, 0.9);
    let last = by_hidden.series.last().unwrap();
    assert_eq!(last.label, "lr=-");
    assert_eq!(last.points.len(), 1);
    assert_eq!(last.points[0].stats.mean, Some(0.5));
}

/// Every point of a final or best accuracy effect accounts for all its runs.
fn assert_every_run_is_counted(e: &Effect) {
    for s in &e.series {
        for p in &s.points {
            assert_eq!(
                p.runs,
                p.stats.n + p.diverged + p.collapsed + p.no_value,
                "{} at {}: {p:?}",
                s.label,
                p.x
            );
        }
    }
}

#[test]
fn runs_without_a_value_are_counted_at_their_point() {
    let mut runs = sample_runs();
    // hidden=128 lr=0.01: a completed run whose final accuracy was NaN (stored as null) and
    // that has no test evaluation.
    let mut nan = runs[11].clone();
    nan.seed = 1;
    nan.final_test_acc = None;
    nan.test_evals = vec![];
    runs.push(nan);
    let d = dims(&candidates(), &runs);
    for metric in [EffectMetric::FinalTestAcc, EffectMetric::BestTestAcc] {
        let e = effect(&d, "lr", &runs, metric, 0.9);
        assert_every_run_is_counted(&e);
        let p = &e.series[2].points[0];
        assert_eq!(
            (p.runs, p.no_value, p.stats.n, p.stats.mean),
            (2, 1, 1, Some(0.98)),
            "{metric}"
        );
        let h = heatmap(&d, &runs, metric, 0.9).unwrap();
        assert_eq!(h.cells[1][2].as_ref().unwrap().no_value, 1);
    }
}

#[test]
fn samples_per_sec_counts_diverged_and_collapsed_runs() {
    let runs = sample_runs();
    let d = dims(&candidates(), &runs);
    let e = effect(&d, "lr", &runs, EffectMetric::SamplesPerSec, 0.9);
    // hidden=32 lr=0.1: seed 0 diverged (1000/32 + 0), seed 1 completed (1000/32 + 1).
    let p = &e.series[0].points[2];
    assert_eq!((p.runs, p.diverged, p.stats.n), (2, 1, 2));
    close(p.stats.mean.unwrap(), 31.75);
    // hidden=64 lr=0.01: one collapsed, counted; lr=0.1: both diverged, both counted.
    let h64 = &e.series[1].points;
    assert_eq!((h64[1].collapsed, h64[1].stats.n), (1, 2));
    assert_eq!((h64[2].diverged, h64[2].stats.n), (2, 2));
    for p in e.series.iter().flat_map(|s| &s.points) {
        assert_eq!(p.runs, p.stats.n + p.no_value);
    }
    // A run without a stored throughput (NaN) is no value, not a NaN mean.
    let mut runs = sample_runs();
    runs[0].samples_per_sec = f64::NAN;
    let e = effect(&d, "lr", &runs, EffectMetric::SamplesPerSec, 0.9);
    let p = &e.series[0].points[0];
    assert_eq!((p.runs, p.no_value, p.stats.n), (2, 1, 1));
    close(p.stats.mean.unwrap(), 1000.0 / 32.0 + 1.0);
}

#[test]
fn a_nan_mean_is_written_as_nan_in_json() {
    let mut runs = sample_runs();
    runs[0].final_test_acc = Some(f64::NAN);
    let d = dims(&candidates(), &runs);
    let e = effect(&d, "lr", &runs, EffectMetric::FinalTestAcc, 0.9);
    let p = &e.series[0].points[0];
    assert!(p.stats.mean.unwrap().is_nan());
    assert_eq!(p.no_value, 0, "a NaN is a value, it propagates");
    let v = serde_json::to_value(p).unwrap();
    assert_eq!(v["stats"]["mean"], "NaN", "{v}");
    assert_eq!(v["stats"]["n"], 2);
    // Finite numbers stay numbers.
    let v = serde_json::to_value(&e.series[0].points[1]).unwrap();
    assert!(v["stats"]["mean"].is_f64(), "{v}");
}
