//! Reports on a results folder built by the test with fixed numbers: every cell state is there
//! (completed, diverged, failed, missing) and is counted; every export format is snapshot-tested.

use std::collections::BTreeMap;
use std::path::Path;

use rnnsweep::plan::{cell_id, Cell, Plan};
use rnnsweep::report::export::{exporter_for, Format, Tables};
use rnnsweep::report::load::load;
use rnnsweep::report::summarize::{compare, default_by, summarize, Metric, Summary};
use rnnsweep::store::{CellResult, RunStore};
use rnnsweep::trainer::config::preset;
use rnnsweep::trainer::record::*;

/// Two variants × 3 seeds (fixed accuracies), a diverged seed, one failed and one missing cell.
fn fixture(root: &Path) -> std::path::PathBuf {
    let mut cells = Vec::new();
    let mut finals = Vec::new();
    for (variant, hidden, accs) in [
        ("LSTM h64", 64, [Some(0.95), Some(0.96), Some(0.94)]),
        ("LSTM h20", 20, [Some(0.90), None, Some(0.91)]),
    ] {
        for (seed, acc) in accs.into_iter().enumerate() {
            let mut cfg = preset("lstm_h64").unwrap();
            cfg.model.hidden = hidden;
            cfg.model = cfg.model.normalized();
            cfg.seed = seed as u64;
            cfg.budget = rnnsweep::trainer::config::Budget::Epochs(2);
            let mut coords = BTreeMap::new();
            coords.insert("seed".to_string(), seed.to_string());
            cells.push(Cell {
                index: cells.len(),
                id: cell_id(&cfg),
                variant: variant.into(),
                coords,
                config: cfg,
            });
            finals.push(acc);
        }
    }
    for (seed, variant) in [(7u64, "failed"), (8, "missing")] {
        let mut cfg = preset("lstm_h64").unwrap();
        cfg.seed = seed;
        cells.push(Cell {
            index: cells.len(),
            id: cell_id(&cfg),
            variant: variant.into(),
            coords: BTreeMap::new(),
            config: cfg,
        });
    }
    let plan = Plan {
        name: "fx".into(),
        description: String::new(),
        axes: vec![],
        cells,
    };
    let store = RunStore::open(root, "fx");
    store.init("# fixture\n", &plan).unwrap();
    for (cell, acc) in plan.cells.iter().zip(&finals) {
        store.start(cell).unwrap();
        let row = |epoch: u64, split, acc: f64| MetricRow {
            epoch,
            iteration: epoch * 938,
            split,
            loss: 1.0 - acc,
            acc,
            samples: 60_000,
            seconds: epoch as f64 * 10.0,
            samples_per_sec: (split == MetricSplit::Train).then_some(6000.0),
        };
        let (status, metrics, final_acc) = match acc {
            Some(a) => (
                RunStatus::Completed,
                vec![
                    row(1, MetricSplit::Train, a - 0.05),
                    row(1, MetricSplit::Test, a - 0.04),
                    row(2, MetricSplit::Train, a - 0.01),
                    row(2, MetricSplit::Test, *a),
                ],
                Some(*a),
            ),
            None => (
                RunStatus::Diverged {
                    epoch: 2,
                    iteration: 1000,
                },
                vec![
                    row(1, MetricSplit::Train, 0.5),
                    row(1, MetricSplit::Test, 0.6),
                ],
                Some(0.6),
            ),
        };
        store.write_metrics(&cell.id, &metrics).unwrap();
        let record = RunRecord {
            format_version: FORMAT_VERSION,
            config: cell.config.clone(),
            status,
            device: "cpu".into(),
            parameters: rnnsweep::trainer::model::param_count(&cell.config.model),
            iterations: 1876,
            train_seconds: 20.0,
            eval_seconds: 1.0,
            samples_per_sec: 6000.0,
            final_test_acc: final_acc,
            final_test_loss: final_acc.map(|a| 1.0 - a),
            metrics,
            epochs: (1..=2)
                .map(|e| EpochStats {
                    epoch: e,
                    iterations: 938,
                    samples: 60_000,
                    seconds: 10.0,
                    samples_per_sec: 6000.0,
                })
                .collect(),
            origin: None,
        };
        store
            .finish(&CellResult {
                format_version: FORMAT_VERSION,
                cell_id: cell.id.clone(),
                index: cell.index,
                variant: cell.variant.clone(),
                coords: cell.coords.clone(),
                record,
            })
            .unwrap();
    }
    let failed = &plan.cells[6];
    store.start(failed).unwrap();
    store.fail(&failed.id, "training panicked: boom").unwrap();
    store.layout.root().to_owned()
}

fn summary(metric: Metric) -> Summary {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture(tmp.path());
    let loaded = load(&[dir]).unwrap();
    summarize(&loaded, &default_by(&loaded), metric).unwrap()
}

#[test]
fn counts_say_what_was_loaded_failed_and_missing() {
    let s = summary(Metric::TestAcc);
    assert_eq!(s.counts.cells, 8);
    assert_eq!(s.counts.completed, 5);
    assert_eq!(s.counts.diverged, 1);
    assert_eq!(s.counts.missing, 1);
    assert_eq!(
        s.counts.failed,
        vec![("fx".to_string(), 6, "training panicked: boom".to_string())]
    );
    assert_eq!(
        s.counts.line(),
        "6/8 runs loaded (1 diverged), 1 failed, 1 missing (not run yet or interrupted)"
    );
    assert_eq!(
        s.counts.failure_lines(),
        vec!["failed: fx[6] training panicked: boom"]
    );
}

#[test]
fn groups_aggregate_over_seeds_and_compare_paired() {
    let s = summary(Metric::TestAcc);
    let labels: Vec<&str> = s.groups.iter().map(|g| g.label.as_str()).collect();
    assert_eq!(labels, ["LSTM h64", "LSTM h20"]);
    let (a, b) = (&s.groups[0], &s.groups[1]);
    assert_eq!((a.runs, a.diverged, b.runs, b.diverged), (3, 0, 3, 1));
    assert!((a.test_acc_mean.unwrap() - 0.95).abs() < 1e-12);
    assert!((a.test_acc_std.unwrap() - 0.01).abs() < 1e-12);
    assert!(
        (b.test_acc_mean.unwrap() - 0.905).abs() < 1e-12,
        "diverged runs are not in the final mean"
    );
    // Paired on seeds 0 and 2 only (seed 1 of h20 diverged): differences 0.05 and 0.03.
    let d = compare(a, b).unwrap();
    assert_eq!(d.n, 2);
    assert!((d.mean_diff - 0.04).abs() < 1e-12);
    assert_eq!(b.vs_best.as_ref().unwrap(), &compare(b, a).unwrap());
    // Curve: epoch-1 mean of h20 includes the diverged seed's evaluation (0.6).
    assert_eq!(s.curves.points, vec![(1, 938), (2, 1876)]);
    let h20_e1 = s.curves.values[0][1].unwrap();
    assert!(
        (h20_e1 - (0.86 + 0.6 + 0.87) / 3.0).abs() < 1e-12,
        "{h20_e1}"
    );
    assert_eq!(s.curves.values[1][1], Some(0.905));
}

#[test]
fn every_format_renders_stably() {
    let s = summary(Metric::TestAcc);
    for (name, f, t) in [
        ("table", Format::Table, Tables::Both),
        ("markdown", Format::Markdown, Tables::Both),
        ("csv_summary", Format::Csv, Tables::Summary),
        ("csv_curves", Format::Csv, Tables::Curves),
        ("json", Format::Json, Tables::Both),
    ] {
        let bytes = exporter_for(f).render(&s, t).unwrap();
        insta::assert_snapshot!(name, String::from_utf8(bytes).unwrap());
    }
    assert!(exporter_for(Format::Csv)
        .render(&s, Tables::Both)
        .unwrap_err()
        .contains("choose --table"));
    let table = String::from_utf8(
        exporter_for(Format::Table)
            .render(&s, Tables::Both)
            .unwrap(),
    )
    .unwrap();
    assert!(
        table.lines().all(|l| l.chars().count() <= 100),
        "terminal tables fit 100 columns"
    );
}

#[test]
fn train_loss_metric_changes_the_curve() {
    let s = summary(Metric::TrainLoss);
    assert_eq!(s.curves.metric, Metric::TrainLoss);
    // h64 epoch 1 train acc = a - 0.05 → loss 1 - (a - 0.05), mean over 0.95/0.96/0.94 = 0.10
    assert!((s.curves.values[0][0].unwrap() - 0.10).abs() < 1e-12);
    // Lower loss is better: best is the last point.
    assert_eq!(s.groups[0].best_iteration, Some(1876));
}
