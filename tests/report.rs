//! Reports on a results folder built by the test with fixed numbers: every cell state is there
//! (completed, collapsed, diverged, failed, missing, and corrupt in its own test) and is counted
//! as what it is; the statistics are checked against hand-computed values; every export format
//! is snapshot-tested.

use std::collections::BTreeMap;
use std::path::Path;

use rnnsweep::plan::{cell_id, Cell, Plan};
use rnnsweep::report::export::{diff_line, exporter_for, group_line, Format, Tables};
use rnnsweep::report::load::load;
use rnnsweep::report::stats::Method;
use rnnsweep::report::summarize::{compare, default_by, summarize, CurvePoint, Metric, Summary};
use rnnsweep::store::{CellResult, RunStore};
use rnnsweep::trainer::config::presets::preset;
use rnnsweep::trainer::record::*;

/// A variant of the fixture: name, hidden size and each seed's final test accuracy (None: the
/// seed diverged in epoch 2, after a test accuracy of 0.6 at epoch 1).
type Variant = (&'static str, usize, [Option<f64>; 3]);

/// Three variants × 3 seeds (fixed accuracies): LSTM h20's seed 1 diverged (a gradient went
/// non-finite), LSTM h32's seed 1 collapsed (predicts class 1 everywhere: 0.1135); then one
/// failed and one missing cell.
const VARIANTS: [Variant; 3] = [
    ("LSTM h64", 64, [Some(0.95), Some(0.96), Some(0.94)]),
    ("LSTM h20", 20, [Some(0.90), None, Some(0.91)]),
    ("LSTM h32", 32, [Some(0.93), Some(0.1135), Some(0.92)]),
];

fn fixture(root: &Path) -> std::path::PathBuf {
    fixture_of(root, &VARIANTS)
}

/// The results of `variants` (LSTM h32's seed 1 collapsed when it is there), then one failed
/// and one missing cell.
fn fixture_of(root: &Path, variants: &[Variant]) -> std::path::PathBuf {
    let mut cells = Vec::new();
    let mut finals = Vec::new();
    for &(variant, hidden, accs) in variants {
        for (seed, acc) in accs.into_iter().enumerate() {
            let mut cfg = preset("lstm_h64").unwrap();
            cfg.model.hidden = hidden;
            cfg.model = cfg.model.normalized();
            cfg.seed = seed as u64;
            cfg.budget = rnnsweep::trainer::config::Budget::Epochs(2);
            cfg.eval.every = rnnsweep::trainer::config::EvalEvery::Epoch;
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
        duplicate_draws: 0,
        prune: None,
    };
    let store = RunStore::open(root, "fx");
    store.init("# fixture\n", &plan).unwrap();
    for (cell, acc) in plan.cells.iter().zip(&finals) {
        store.start(cell, false).unwrap();
        let collapsed = cell.variant == "LSTM h32" && cell.config.seed == 1;
        let row = |epoch: u64, split, acc: f64| MetricRow {
            epoch,
            iteration: epoch * 938,
            split,
            loss: 1.0 - acc,
            acc,
            samples: 60_000,
            seconds: epoch as f64 * 10.0,
            samples_per_sec: (split == MetricSplit::Train).then_some(6000.0),
            grad_norm: (split == MetricSplit::Train).then_some(1.5),
            grad_norm_max: (split == MetricSplit::Train).then_some(3.0),
            lr: Some(0.1),
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
                    non_finite: Some(NonFinite {
                        kind: NonFiniteKind::Gradient,
                        tensor: Some("rnn.weight_hh_l0".into()),
                    }),
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
            parameters: rnnsweep::trainer::model::layout::param_count(&cell.config.model),
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
            collapsed,
            top_class: acc.map(|_| TopClass {
                class: 1,
                share: if collapsed { 0.996 } else { 0.12 },
            }),
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
    let failed = &plan.cells[finals.len()];
    store.start(failed, false).unwrap();
    store.fail(&failed.id, "training panicked: boom").unwrap();
    store.layout.root().to_owned()
}

fn summary(metric: Metric) -> Summary {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture(tmp.path());
    let loaded = load(&[dir]).unwrap();
    summarize(&loaded, &default_by(&loaded), metric).unwrap()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
}

#[test]
fn counts_say_what_was_loaded_failed_and_missing() {
    let s = summary(Metric::TestAcc);
    assert_eq!(s.counts.cells, 11);
    assert_eq!(
        s.counts.completed, 8,
        "the collapsed run is a completed run"
    );
    assert_eq!(s.counts.diverged, 1);
    assert_eq!(s.counts.collapsed, 1);
    assert_eq!(s.counts.missing, 1);
    assert!(s.counts.corrupt.is_empty());
    assert_eq!(
        s.counts.failed,
        vec![("fx".to_string(), 9, "training panicked: boom".to_string())]
    );
    assert_eq!(
        s.counts.line(),
        "9/11 runs loaded (1 diverged, 1 collapsed), 1 failed, 1 missing (not run yet or interrupted)"
    );
    assert_eq!(
        s.counts.failure_lines(),
        vec!["failed: fx[9] training panicked: boom"]
    );
    assert_eq!(
        s.counts.outcome_lines(10),
        vec![
            "diverged: fx[4] LSTM h20 seed 1 at epoch 2 step 1000 (rnn.weight_hh_l0.grad)",
            "collapsed: fx[7] LSTM h32 seed 1 predicts class 1 for 99.6% of test images",
        ]
    );
    assert_eq!(
        s.counts.outcome_lines(0),
        vec!["… and 1 more diverged run", "… and 1 more collapsed run"]
    );
}

/// Expected numbers: python3 with mpmath, mean ± t(0.975, n−1)·s/√n with t(·,1) =
/// 12.7062047361747, t(·,2) = 4.30265272974946; Wilson with z = 1.959963984540054.
#[test]
fn groups_aggregate_over_seeds_and_compare_paired() {
    let s = summary(Metric::TestAcc);
    let labels: Vec<&str> = s.groups.iter().map(|g| g.label.as_str()).collect();
    assert_eq!(labels, ["LSTM h64", "LSTM h20", "LSTM h32"]);
    let (a, b, c) = (&s.groups[0], &s.groups[1], &s.groups[2]);
    assert_eq!((a.runs, a.diverged, b.runs, b.diverged), (3, 0, 3, 1));
    assert_eq!((a.collapsed, b.collapsed, c.collapsed), (0, 0, 1));

    // LSTM h64: 0.95, 0.96, 0.94 → s = 0.01, half = 4.30265272974946·0.01/√3.
    assert_eq!(a.test_acc_n, 3);
    close(a.test_acc_mean.unwrap(), 0.95);
    close(a.test_acc_std.unwrap(), 0.01);
    let ci = a.test_acc_ci.unwrap();
    close(ci.low, 0.925_158_622_882_497);
    close(ci.high, 0.974_841_377_117_503);
    // 0 of 3 diverged: Wilson 0 .. z²/(3 + z²) = 0.561497031755045.
    let w = a.divergence.interval.unwrap();
    assert_eq!((a.divergence.k, a.divergence.n, w.low), (0, 3, 0.0));
    close(w.high, 0.561_497_031_755_045);

    // LSTM h20: the diverged seed is not in the final accuracy: 0.90, 0.91 (n = 2).
    assert_eq!(b.test_acc_n, 2);
    close(b.test_acc_mean.unwrap(), 0.905);
    let ci = b.test_acc_ci.unwrap();
    close(ci.low, 0.841_468_976_319_126);
    close(ci.high, 0.968_531_023_680_873);
    // 1 of 3 diverged: Wilson 0.0614919447203962 .. 0.792340399197952.
    let w = b.divergence.interval.unwrap();
    close(w.low, 0.061_491_944_720_396_2);
    close(w.high, 0.792_340_399_197_952);

    // LSTM h32: the collapsed seed (0.1135) stays in the statistics: 0.93, 0.1135, 0.92,
    // mean 0.6545, s = 0.468546422459931, half = 1.16393383773842: the t interval
    // −0.5094…1.8184 is cut to [0, 1], where an accuracy lies.
    assert_eq!(c.test_acc_n, 3);
    close(c.test_acc_mean.unwrap(), 0.6545);
    close(c.test_acc_std.unwrap(), 0.468_546_422_459_931);
    let ci = c.test_acc_ci.unwrap();
    assert_eq!((ci.low, ci.high), (0.0, 1.0));

    // h20 vs the best: paired on seeds 0 and 2 only (seed 1 diverged): differences −0.05 and
    // −0.03; two pairs give the mean difference but no interval.
    let d = b.vs_best.as_ref().unwrap();
    assert_eq!((d.n, d.interval), (2, None));
    close(d.mean_diff, -0.04);
    assert_eq!(compare(a, b).unwrap().n, 2);
    // h32 vs the best: three pairs −0.02, −0.8465, −0.02 → mean −0.2955, s = 0.477179997485226,
    // half = 4.30265272974946·s/√3 = 1.18538082704598.
    let d = c.vs_best.as_ref().unwrap();
    assert_eq!(d.n, 3);
    close(d.mean_diff, -0.2955);
    close(d.std_diff.unwrap(), 0.477_179_997_485_226);
    let ci = d.interval.unwrap();
    assert_eq!(ci.method, Method::StudentT);
    close(ci.low, -1.480_880_827_045_98);
    close(ci.high, 0.889_880_827_045_976);
    assert!(a.vs_best.is_none(), "the best has no difference to itself");

    // Curve: one schedule (every epoch); epoch-1 mean of h20 includes the diverged seed's
    // evaluation (0.6).
    assert_eq!(s.curves.tables.len(), 1);
    let t = &s.curves.tables[0];
    assert_eq!((t.eval_every.as_str(), t.x), ("epoch", "epoch"));
    assert_eq!(t.groups, [0, 1, 2]);
    let at = |e, i| CurvePoint {
        epoch: Some(e),
        iteration: Some(i),
    };
    assert_eq!(t.points, vec![at(1, 938), at(2, 1876)]);
    let h20_e1 = t.values[0][1].unwrap();
    assert!(
        (h20_e1 - (0.86 + 0.6 + 0.87) / 3.0).abs() < 1e-12,
        "{h20_e1}"
    );
    assert_eq!(t.values[1][1], Some(0.905));
}

#[test]
fn compare_lines_say_n_and_whether_there_is_an_interval() {
    let s = summary(Metric::TestAcc);
    let (a, b, c) = (&s.groups[0], &s.groups[1], &s.groups[2]);
    assert_eq!(
        group_line(b),
        "LSTM h20: final test acc 0.9050 ± 0.0071 (n=2, 95% t CI 0.8415–0.9685); \
         diverged 1/3 (95% Wilson 6.1–79.2%); 0 collapsed"
    );
    assert_eq!(
        diff_line(b, a, compare(b, a).as_ref()),
        "LSTM h20 − LSTM h64: -4.00 pp final test accuracy over 2 shared seeds; \
         no interval: n<3 (fewer than 3 shared seeds)"
    );
    assert_eq!(
        diff_line(c, a, compare(c, a).as_ref()),
        "LSTM h32 − LSTM h64: -29.55 pp final test accuracy over 3 shared seeds \
         (95% paired t interval -148.09 .. +88.99 pp)"
    );
}

/// One unreadable result.json and one of a future format version: both are `corrupt` (as
/// `rnnsweep status` says), named with the reason, and neither is `missing` nor loaded.
#[test]
fn corrupt_results_are_counted_and_named_not_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture(tmp.path());
    let store = RunStore::at(&dir);
    let plan = store.load_plan().unwrap();
    let (first, second) = (&plan.cells[0], &plan.cells[3]);
    std::fs::write(store.layout.result_json(&first.id), b"{ not json").unwrap();
    let reload = || load(std::slice::from_ref(&dir)).unwrap().counts;
    let counts = reload();
    assert_eq!(counts.corrupt.len(), 1);
    assert_eq!(counts.missing, 1, "only the cell never run");
    assert!(
        counts.line().starts_with("8/11 runs loaded")
            && counts.line().contains(", 1 corrupt, 1 missing"),
        "{}",
        counts.line()
    );

    let path = store.layout.result_json(&second.id);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
    v["record"]["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let counts = reload();
    assert_eq!(counts.missing, 1);
    assert_eq!((counts.completed, counts.diverged), (6, 1));
    assert_eq!(
        counts.line(),
        "7/11 runs loaded (1 diverged, 1 collapsed), 1 failed, 2 corrupt, 1 missing (not run yet or interrupted)"
    );
    let lines = counts.failure_lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[1].starts_with("corrupt: fx[0] ")
            && lines[1].contains("is not a valid result record"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("corrupt: fx[3] ")
            && lines[2].contains(&format!("format version {};", FORMAT_VERSION + 1)),
        "{lines:?}"
    );
    // The store says the same.
    assert_eq!(store.cell_state(first, None).0.name(), "corrupt");
    assert_eq!(store.cell_state(second, None).0.name(), "corrupt");
    // And so does every format that prints counts.
    let loaded = load(std::slice::from_ref(&dir)).unwrap();
    let s = summarize(&loaded, &default_by(&loaded), Metric::TestAcc).unwrap();
    let md = String::from_utf8(
        exporter_for(Format::Markdown)
            .render(&s, Tables::Summary)
            .unwrap(),
    )
    .unwrap();
    assert!(
        md.contains("2 corrupt") && md.contains("- corrupt: fx[3] "),
        "{md}"
    );
    let json: serde_json::Value = serde_json::from_slice(
        &exporter_for(Format::Json)
            .render(&s, Tables::Summary)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["counts"]["corrupt"].as_array().unwrap().len(), 2);
    assert_eq!(json["counts"]["missing"], 1);
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
        .to_string()
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

/// A variant whose every run diverged has no final accuracy, and its best is from before the
/// divergence: every format labels it so (and says what it means), never as a plain best
/// beside the others'.
#[test]
fn a_best_from_before_divergence_is_labelled_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_of(
        tmp.path(),
        &[VARIANTS[0], ("LSTM diverging", 20, [None, None, None])],
    );
    let loaded = load(&[dir]).unwrap();
    let s = summarize(&loaded, &default_by(&loaded), Metric::TestAcc).unwrap();
    let (a, d) = (&s.groups[0], &s.groups[1]);
    assert_eq!(
        (d.label.as_str(), d.runs, d.diverged),
        ("LSTM diverging", 3, 3)
    );
    assert!(d.best_before_divergence && !a.best_before_divergence);
    assert_eq!(d.test_acc_mean, None);
    // The three seeds' test accuracy at epoch 1, before they diverged in epoch 2.
    close(d.best.unwrap(), 0.6);
    assert_eq!((d.best_epoch, d.best_iteration), (Some(1), Some(938)));

    let render =
        |f| String::from_utf8(exporter_for(f).render(&s, Tables::Summary).unwrap()).unwrap();
    let table = render(Format::Table);
    let row = table
        .lines()
        .find(|l| l.starts_with("LSTM diverging"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(" 0.6000† e1 it938"), "{row}");
    assert!(
        !table.contains("0.9500†"),
        "only the diverged variant is marked: {table}"
    );
    assert!(
        table.contains("†: before divergence: every run of the variant"),
        "{table}"
    );
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
    // The header and the rows stay aligned: the best column ends where its header does.
    let header = table.lines().find(|l| l.starts_with("variant")).unwrap();
    let end_of = |l: &str, pat: &str| l.find(pat).map(|i| l[..i + pat.len()].chars().count());
    assert_eq!(end_of(header, "best"), end_of(row, "0.6000†"), "{table}");

    let md = render(Format::Markdown);
    assert!(
        md.contains("| 0.6000 (before divergence) | e1 it938 |"),
        "{md}"
    );
    assert!(
        md.contains("before divergence: every run of the variant diverged"),
        "{md}"
    );
    let csv = render(Format::Csv);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .contains(",best_iteration,best_before_divergence,"));
    assert!(
        csv.lines().nth(2).unwrap().contains(",1,938,true,"),
        "{csv}"
    );
    let json: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
    assert_eq!(json["groups"][1]["best_before_divergence"], true);
    assert_eq!(json["groups"][0]["best_before_divergence"], false);

    let page = rnnsweep::report::html::page("fx", &["fx".to_string()], &s, &[], &[], &[]);
    assert!(
        page.contains("<td class=\"n\">0.6000 <span class=\"mark\">before divergence</span></td>"),
        "{page}"
    );
    assert!(page.contains("before divergence: every run of the variant diverged"));
    // Without such a variant there is no mark and no note.
    let plain = summary(Metric::TestAcc);
    let md = String::from_utf8(
        exporter_for(Format::Markdown)
            .render(&plain, Tables::Summary)
            .unwrap(),
    )
    .unwrap();
    assert!(!md.contains("before divergence"), "{md}");
}

/// The report draws each distinct network once, from the runs' configs on disk, captioned with
/// the variants that train it; each variant's parameter count links to its picture.
#[test]
fn report_shows_each_variants_network() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture(tmp.path());
    let loaded = load(&[dir]).unwrap();
    let s = summarize(&loaded, &default_by(&loaded), Metric::TestAcc).unwrap();
    let nets = rnnsweep::report::network::report_networks(&loaded, &s).unwrap();
    let got: Vec<(&str, &str, Vec<usize>, usize)> = nets
        .iter()
        .map(|n| {
            (
                n.id.as_str(),
                n.title.as_str(),
                n.groups.clone(),
                n.parameters,
            )
        })
        .collect();
    // Summary order: h64, h20, h32; LSTM parameters 4h(28 + h + 2) + 10h + 10.
    assert_eq!(
        got,
        [
            ("network-0", "LSTM, hidden 64 on MNIST", vec![0], 24_714),
            ("network-1", "LSTM, hidden 20 on MNIST", vec![1], 4_210),
            ("network-2", "LSTM, hidden 32 on MNIST", vec![2], 8_266),
        ]
    );
    for (n, g) in nets.iter().zip(&s.groups) {
        assert_eq!(n.parameters as u64, g.parameters, "the runs' own count");
    }
    // Grouped coarser (all in one group), one group has three networks and no link.
    let all = summarize(&loaded, &["sweep".to_string()], Metric::TestAcc).unwrap();
    let nets_all = rnnsweep::report::network::report_networks(&loaded, &all).unwrap();
    assert_eq!(nets_all.len(), 3);
    assert!(nets_all.iter().all(|n| n.groups == [0]));
    let page = rnnsweep::report::html::page("fx", &["fx".to_string()], &all, &nets_all, &[], &[]);
    assert!(
        !page.contains("<a href=\"#network-"),
        "no single picture to link to"
    );

    let page = rnnsweep::report::html::page("fx", &["fx".to_string()], &s, &nets, &[], &[]);
    assert!(page.contains("<details id=\"networks\" open><summary>3 networks as configured"));
    assert!(
        page.contains("<td class=\"n\"><a href=\"#network-1\">4210</a></td>"),
        "{page}"
    );
    assert!(page.contains(
        "<figcaption>LSTM h20: LSTM, hidden 20 on MNIST (4,210 parameters)</figcaption>"
    ));
    assert_eq!(page.matches("<figure class=\"network\"").count(), 3);
    assert!(
        page.find("id=\"summary\"") < page.find("id=\"networks\"")
            && page.find("id=\"networks\"") < page.find("id=\"effects\""),
        "under the variant table, before the effects"
    );
}

/// The network picture of Model B, as `describe --svg` writes it and the report embeds it.
#[test]
fn network_picture_renders_stably() {
    let cfg = preset("model_b").unwrap();
    let d = rnnsweep::report::network::Diagram::of(&cfg.model, cfg.dataset);
    insta::assert_snapshot!("network_model_b_svg", d.svg().unwrap());
}

#[test]
fn train_loss_metric_changes_the_curve() {
    let s = summary(Metric::TrainLoss);
    assert_eq!(s.curves.metric, Metric::TrainLoss);
    // h64 epoch 1 train acc = a - 0.05 → loss 1 - (a - 0.05), mean over 0.95/0.96/0.94 = 0.10
    assert!((s.curves.tables[0].values[0][0].unwrap() - 0.10).abs() < 1e-12);
    // Lower loss is better: best is the last point.
    assert_eq!(s.groups[0].best_iteration, Some(1876));
}

#[test]
fn html_report_marks_collapsed_variants_and_lists_outcomes() {
    let s = summary(Metric::TestAcc);
    let page = rnnsweep::report::html::page("fx", &["fx".to_string()], &s, &[], &[], &[]);
    assert!(page.contains(
        "<span id=\"counts\">9/11 runs loaded (1 diverged, 1 collapsed), 1 failed, 1 missing"
    ));
    // Only LSTM h32 has a collapsed run: its row is marked and names the count.
    assert_eq!(page.matches("<tr class=\"collapsed\">").count(), 1);
    assert!(
        page.contains(
            "<tr class=\"collapsed\"><td>LSTM h32 <span class=\"mark\">1 collapsed</span></td>"
        ),
        "{page}"
    );
    for needle in [
        "<th>diverged (95% Wilson)</th><th>collapsed</th>",
        "<th>n</th><th>95% CI (t)</th>",
        "<td class=\"n\">1/3 (6.1–79.2%)</td>",
        "<td class=\"n\">0.8415–0.9685</td>",
        "<td class=\"n\">n&lt;3</td>",
        "-29.55 [-148.09,+88.99] (t, n=3)",
        "<details id=\"diverged-runs\"><summary>1 diverged run</summary>",
        "<li>diverged: fx[4] LSTM h20 seed 1 at epoch 2 step 1000 (rnn.weight_hh_l0.grad)</li>",
        "<li>collapsed: fx[7] LSTM h32 seed 1 predicts class 1 for 99.6% of test images</li>",
        "<li>failed: fx[9] training panicked: boom</li>",
        "t(0.975, n−1)",
    ] {
        assert!(page.contains(needle), "missing {needle:?}");
    }
}
