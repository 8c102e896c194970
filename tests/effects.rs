//! `rnnsweep results effects` and the report's Effects section: the effect tables of hand-made
//! runs in every format (insta snapshots, so the numbers are the pure functions' and nothing
//! measured), the command on a fake-trainer sweep (axes as written in the grid, log scale,
//! diverged and collapsed runs counted, charts written, time to target, heatmap, errors), and
//! every preset the issue names answering with an effect chart of its setting in the report.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use rnnsweep::report::effects::export::{render, EffectsReport};
use rnnsweep::report::effects::{dims, effect, heatmap, EffectMetric, Outcome, RunObs, TestEval};
use rnnsweep::report::export::Format;
use rnnsweep::report::load::Counts;
use rnnsweep::store::Layout;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// variant {LSTM, GRU} × hidden {32, 64} × seeds {0, 1, 2}; LSTM h64 seed 2 missing, GRU h32
/// seed 1 diverged, GRU h64 seed 0 collapsed.
fn hand_runs() -> Vec<RunObs> {
    let mut v = Vec::new();
    for (variant, base) in [("LSTM", 0.95), ("GRU", 0.93)] {
        for (hidden, plus) in [("32", 0.0), ("64", 0.01)] {
            for seed in 0..3u64 {
                if variant == "LSTM" && hidden == "64" && seed == 2 {
                    continue;
                }
                let outcome = match (variant, hidden, seed) {
                    ("GRU", "32", 1) => Outcome::Diverged,
                    ("GRU", "64", 0) => Outcome::Collapsed,
                    _ => Outcome::Completed,
                };
                let acc = base + plus + 0.005 * seed as f64;
                v.push(RunObs {
                    coords: BTreeMap::from([
                        ("variant".to_string(), variant.to_string()),
                        ("hidden".to_string(), hidden.to_string()),
                    ]),
                    seed,
                    outcome,
                    final_test_acc: (outcome != Outcome::Diverged).then_some(acc),
                    samples_per_sec: 1000.0 - 100.0 * seed as f64,
                    test_evals: vec![
                        TestEval {
                            epochs: 0.5,
                            seconds: 10.0 + seed as f64,
                            acc: acc - 0.05 + 0.03 * seed as f64,
                        },
                        TestEval {
                            epochs: 1.0,
                            seconds: 20.0 + seed as f64,
                            acc,
                        },
                    ],
                });
            }
        }
    }
    v
}

fn hand_report(metric: EffectMetric) -> EffectsReport {
    let runs = hand_runs();
    let cands = vec![
        ("variant".to_string(), false),
        ("hidden".to_string(), false),
    ];
    let d = dims(&cands, &runs);
    let effects = d
        .iter()
        .map(|x| effect(&d, &x.name, &runs, metric, 0.94))
        .collect();
    EffectsReport {
        counts: Counts {
            cells: 12,
            completed: 10,
            diverged: 1,
            collapsed: 1,
            missing: 1,
            ..Counts::default()
        },
        metric,
        target: (metric == EffectMetric::TimeToTarget).then_some(0.94),
        effects,
        heatmap: heatmap(&d, &runs, metric, 0.94),
    }
}

fn rendered(r: &EffectsReport, f: Format) -> String {
    text(&render(r, f).unwrap())
}

#[test]
fn effect_tables_in_every_format() {
    let r = hand_report(EffectMetric::FinalTestAcc);
    insta::assert_snapshot!("effects_table", rendered(&r, Format::Table));
    insta::assert_snapshot!("effects_markdown", rendered(&r, Format::Markdown));
    insta::assert_snapshot!("effects_csv", rendered(&r, Format::Csv));
    insta::assert_snapshot!("effects_json", rendered(&r, Format::Json));
    assert!(rendered(&r, Format::Table)
        .lines()
        .all(|l| l.chars().count() <= 100));
}

#[test]
fn time_to_target_tables_in_every_format() {
    let r = hand_report(EffectMetric::TimeToTarget);
    insta::assert_snapshot!("effects_ttt_table", rendered(&r, Format::Table));
    insta::assert_snapshot!("effects_ttt_markdown", rendered(&r, Format::Markdown));
    insta::assert_snapshot!("effects_ttt_csv", rendered(&r, Format::Csv));
    insta::assert_snapshot!("effects_ttt_json", rendered(&r, Format::Json));
}

/// `rnnsweep results effects ARGS… --results RESULTS` with the fake trainer's environment.
fn effects_cmd(results: &Path, args: &[&str]) -> Output {
    common::fake_bin("")
        .args(["results", "effects"])
        .args(args)
        .arg("--results")
        .arg(results)
        .output()
        .unwrap()
}

/// The effects grid swept with the fake trainer: lr 0.1 seed 1 diverges, batch 20 at lr 0.001
/// seed 0 collapses.
fn swept() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let o = common::fake_sweep(
        &common::grid("effects.toml"),
        &tmp.path().join("results"),
        &["-q"],
        "diverge_at=5 if lr=0.1 and seed=1; collapse if lr=0.001 and batch=20 and seed=0",
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    tmp
}

#[test]
fn effects_command_on_a_fake_sweep() {
    let tmp = swept();
    let results = tmp.path().join("results");
    let charts = tmp.path().join("charts");
    let o = effects_cmd(
        &results,
        &["--format", "json", "--out", charts.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["metric"], "final_test_acc");
    assert_eq!(v["counts"]["cells"], 12);
    let effects = v["effects"].as_array().unwrap();
    let axes: Vec<&str> = effects
        .iter()
        .map(|e| e["axis"].as_str().unwrap())
        .collect();
    assert_eq!(axes, ["lr", "batch"], "axis names as written in the grid");
    assert_eq!(effects[0]["scale"], "log");
    assert_eq!(effects[1]["scale"], "linear");
    assert_eq!(
        effects[0]["values"],
        serde_json::json!(["0.001", "0.01", "0.1"])
    );
    // lr on x, one line per batch.
    let lines: Vec<&str> = effects[0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["batch=10", "batch=20"]);
    let point = |line: usize, x: usize| effects[0]["series"][line]["points"][x].clone();
    // lr 0.1, batch 10: one seed diverged, counted, not in the mean.
    let p = point(0, 2);
    assert_eq!(
        (
            p["runs"].as_u64(),
            p["diverged"].as_u64(),
            p["stats"]["n"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    // lr 0.001, batch 20: one collapsed.
    let p = point(1, 0);
    assert_eq!(
        (p["collapsed"].as_u64(), p["stats"]["n"].as_u64()),
        (Some(1), Some(1))
    );
    // Both seeds completed: a t interval.
    assert_eq!(point(0, 1)["stats"]["ci"]["method"], "t");
    // Two settings vary: the heatmap, rows batch, columns lr.
    assert_eq!(v["heatmap"]["x"], "lr");
    assert_eq!(v["heatmap"]["y"], "batch");
    for f in [
        "effect_lr_final_test_acc.svg",
        "effect_lr_final_test_acc.png",
        "effect_batch_final_test_acc.svg",
        "effect_batch_final_test_acc.png",
        "heatmap_batch_lr_final_test_acc.svg",
        "heatmap_batch_lr_final_test_acc.png",
    ] {
        let p = charts.join(f);
        assert!(p.is_file(), "missing {f}");
    }
    let svg = std::fs::read_to_string(charts.join("effect_lr_final_test_acc.svg")).unwrap();
    assert!(
        svg.contains("lr (log scale)") && svg.contains("1 div"),
        "{svg}"
    );
    let heat = std::fs::read_to_string(charts.join("heatmap_batch_lr_final_test_acc.svg")).unwrap();
    assert!(heat.contains("n=2") && heat.contains("1 col"));
    assert!(text(&o.stderr).contains("wrote "));

    // One axis, time to target, the default chart folder.
    let o = effects_cmd(
        &results,
        &[
            "--axis",
            "batch",
            "--metric",
            "time_to_target",
            "--target",
            "0.2",
            "--format",
            "csv",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let csv = text(&o.stdout);
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("metric,target,axis,scale,line,value,runs"),
        "{header}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 6, "3 lines (lr) × 2 batches: {csv}");
    assert!(
        rows.iter()
            .all(|r| r.starts_with("time_to_target,0.2,batch,linear,lr=")),
        "{csv}"
    );
    // The default chart folder is the sweep's effects folder (the layout names it).
    let default_out = Layout::at(&results.join("effects")).effects_dir();
    assert_eq!(default_out, results.join("effects/effects"));
    assert!(default_out
        .join("effect_batch_time_to_target.svg")
        .is_file());
    assert!(
        !default_out
            .join("heatmap_batch_lr_time_to_target.svg")
            .exists(),
        "one axis: no heatmap"
    );
    assert!(
        text(&o.stderr).starts_with("12/12 runs loaded"),
        "{}",
        text(&o.stderr)
    );

    // The text table.
    let o = effects_cmd(&results, &["--metric", "samples_per_sec"]);
    let t = text(&o.stdout);
    assert!(
        t.starts_with("12/12 runs loaded (2 diverged, 1 collapsed)"),
        "{t}"
    );
    assert!(t.contains("samples_per_sec by lr (log scale)"), "{t}");
}

#[test]
fn effects_errors_say_what_to_do() {
    let tmp = swept();
    let results = tmp.path().join("results");
    let o = effects_cmd(&results, &["--axis", "hidden"]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("--axis hidden: not a setting that varies here; settings with at least two values: lr, batch"), "{e}");
    let o = effects_cmd(&results, &["--target", "0.9"]);
    assert!(
        text(&o.stderr).contains("--target applies to --metric time_to_target only"),
        "{}",
        text(&o.stderr)
    );
    let o = effects_cmd(&results, &["--metric", "time_to_target", "--target", "90"]);
    assert!(
        text(&o.stderr).contains("between 0 (excluded) and 1"),
        "{}",
        text(&o.stderr)
    );
    let o = effects_cmd(&results, &["--metric", "acc"]);
    assert!(
        text(&o.stderr)
            .contains("use one of: final_test_acc, best_test_acc, samples_per_sec, time_to_target"),
        "{}",
        text(&o.stderr)
    );
    // A sweep where only the seed varies.
    let tmp2 = tempfile::tempdir().unwrap();
    let grid = tmp2.path().join("one.toml");
    std::fs::write(
        &grid,
        "[sweep]\nname = \"one\"\nseeds = 2\n[defaults]\ncell = \"gru\"\noptimizer = \"adam\"\nlr = 0.01\nhidden = 8\nbatch = 10\niterations = 10\ntrain_limit = 100\ntest_limit = 50\neval_every = 10\n",
    )
    .unwrap();
    let r2 = tmp2.path().join("results");
    assert!(common::fake_sweep(&grid, &r2, &["-q"], "").status.success());
    let o = effects_cmd(&r2, &[]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("no setting varies between the loaded runs (only the seed)"),
        "{}",
        text(&o.stderr)
    );
}

/// Each preset of the issue, swept with the fake trainer, answers with an effect chart of its
/// setting in the report's Effects section (before the curves).
#[test]
fn presets_show_their_answer_as_an_effect_chart() {
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for (preset, expected) in [
        ("hidden_size", &["effect-hidden-final_test_acc"][..]),
        ("learning_rate", &["effect-lr-final_test_acc"]),
        ("batch_size", &["effect-batch-samples_per_sec"]),
        ("epochs", &["effect-epochs-final_test_acc"]),
        ("optimizer", &["effect-variant-final_test_acc"]),
        ("activation", &["effect-variant-final_test_acc"]),
        (
            "cell",
            &[
                "effect-variant-final_test_acc",
                "effect-hidden-final_test_acc",
                "heatmap-variant-hidden",
            ],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let results = tmp.path().join("results");
        let grid = experiments.join(format!("{preset}.toml"));
        let o = common::fake_sweep(&grid, &results, &["-q"], "");
        assert!(o.status.success(), "{preset}: {}", text(&o.stderr));
        let page_path = tmp.path().join("report.html");
        let o = common::fake_bin("")
            .args(["results", "report", "--results"])
            .arg(&results)
            .arg("--out")
            .arg(&page_path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{preset}: {}", text(&o.stderr));
        let page = std::fs::read_to_string(&page_path).unwrap();
        let effects_at = page
            .find("<h2 id=\"effects\">Effects</h2>")
            .expect("an Effects section");
        let curves_at = page.find("<h2>Curves</h2>").unwrap();
        assert!(
            effects_at < curves_at,
            "{preset}: effects before the curves"
        );
        for id in expected {
            let at = page
                .find(&format!("id=\"{id}\""))
                .unwrap_or_else(|| panic!("{preset}: no {id}"));
            assert!(
                at > effects_at && at < curves_at,
                "{preset}: {id} in the Effects section"
            );
        }
    }
}

/// Four settings vary and the lines' labels share a long prefix: the table gives each line a
/// key with a legend (never two identical labels), the chart legend wraps labels whole.
#[test]
fn long_line_labels_stay_distinct() {
    let mut runs = Vec::new();
    for variant in ["an_lstm_with_a_long_name_x", "an_lstm_with_a_long_name_y"] {
        for hidden in ["32", "64"] {
            for lr in ["0.01", "0.1"] {
                for batch in ["16", "32"] {
                    runs.push(RunObs {
                        coords: BTreeMap::from([
                            ("variant".to_string(), variant.to_string()),
                            ("hidden".to_string(), hidden.to_string()),
                            ("lr".to_string(), lr.to_string()),
                            ("batch".to_string(), batch.to_string()),
                        ]),
                        seed: 0,
                        outcome: Outcome::Completed,
                        final_test_acc: Some(0.9),
                        samples_per_sec: 100.0,
                        test_evals: vec![],
                    });
                }
            }
        }
    }
    let cands: Vec<(String, bool)> = ["variant", "hidden", "lr", "batch"]
        .iter()
        .map(|s| (s.to_string(), false))
        .collect();
    let d = dims(&cands, &runs);
    assert_eq!(d.len(), 4);
    let effects: Vec<_> = d
        .iter()
        .map(|x| effect(&d, &x.name, &runs, EffectMetric::FinalTestAcc, 0.9))
        .collect();
    let r = EffectsReport {
        counts: Counts {
            cells: 16,
            completed: 16,
            ..Counts::default()
        },
        metric: EffectMetric::FinalTestAcc,
        target: None,
        effects: effects.clone(),
        heatmap: None,
    };
    let t = rendered(&r, Format::Table);
    assert!(t.lines().all(|l| l.chars().count() <= 100), "{t}");
    for (e, section) in effects.iter().zip(t.split("\n\n").skip(1)) {
        assert_eq!(e.series.len(), 8);
        // The line column of each row: the label itself, or a key whose legend line below the
        // table gives the label; never the same for two lines.
        let lines: Vec<&str> = section.lines().collect();
        let lw = lines[1].find("value").unwrap();
        let rows = &lines[2..18];
        let line_col: Vec<&str> = rows.iter().map(|l| l[..lw].trim()).collect();
        for (s, pair) in e.series.iter().zip(line_col.chunks(2)) {
            assert_eq!(pair[0], pair[1], "{section}");
            assert!(
                pair[0] == s.label
                    || lines
                        .iter()
                        .any(|l| *l == format!("  {}: {}", pair[0], s.label)),
                "line {:?} shown as {:?}: {section}",
                s.label,
                pair[0]
            );
        }
        let mut distinct = line_col.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 8, "{section}");
        // Rows of one line differ in their value (the variant names get keys "a", "b").
        let values: Vec<&str> = rows
            .iter()
            .map(|l| l[lw..].split_whitespace().next().unwrap())
            .collect();
        for pair in values.chunks(2) {
            assert_ne!(pair[0], pair[1], "{section}");
        }
        // The chart legend: every label, wrapped, in full.
        let svg = rnnsweep::report::chart::to_svg(e, "long").unwrap();
        for s in &e.series {
            for part in rnnsweep::report::effect_chart::wrap(&s.label, 30) {
                assert!(svg.contains(&format!("\n{part}\n")), "{part:?}");
            }
        }
    }
}

/// A NaN final accuracy makes a NaN mean, written as "NaN", never null or "-"; a run without
/// a final accuracy is counted as no value.
#[test]
fn nan_and_missing_values_are_shown() {
    let mut runs = hand_runs();
    runs[0].final_test_acc = Some(f64::NAN);
    runs[1].final_test_acc = None;
    let cands = vec![
        ("variant".to_string(), false),
        ("hidden".to_string(), false),
    ];
    let d = dims(&cands, &runs);
    let e = effect(&d, "hidden", &runs, EffectMetric::FinalTestAcc, 0.9);
    for p in e.series.iter().flat_map(|s| &s.points) {
        assert_eq!(p.runs, p.stats.n + p.diverged + p.collapsed + p.no_value);
    }
    let r = EffectsReport {
        counts: Counts::default(),
        metric: EffectMetric::FinalTestAcc,
        target: None,
        effects: vec![e],
        heatmap: heatmap(&d, &runs, EffectMetric::FinalTestAcc, 0.9),
    };
    let j: serde_json::Value = serde_json::from_str(&rendered(&r, Format::Json)).unwrap();
    let p = &j["effects"][0]["series"][0]["points"][0];
    assert_eq!(
        (&p["stats"]["mean"], &p["no_value"]),
        (&"NaN".into(), &1.into()),
        "{p}"
    );
    let t = rendered(&r, Format::Table);
    assert!(
        t.contains("LSTM 32       3   0   0   1   2       NaN      NaN -"),
        "{t}"
    );
    assert!(t.contains("NaN n2 nv1"), "{t}");
    assert!(rendered(&r, Format::Csv).contains(",3,0,0,1,2,NaN,"));
}

/// Two sweeps, one with an lr axis, one with lr fixed in its defaults: the second sweep's runs
/// are on the lr chart at their configured lr, not dropped.
#[test]
fn runs_without_a_grid_coordinate_use_their_config_value() {
    let tmp = swept();
    let results = tmp.path().join("results");
    let grid = tmp.path().join("fixed_lr.toml");
    let text_of = std::fs::read_to_string(common::grid("effects.toml")).unwrap();
    let fixed = text_of
        .replace("name = \"effects\"", "name = \"fixed_lr\"")
        .replace(
            "lr = { start = 0.001, stop = 0.1, num = 3, scale = \"log\" }\n",
            "",
        )
        .replace("[defaults]\n", "[defaults]\nlr = 0.01\n");
    std::fs::write(&grid, fixed).unwrap();
    let o = common::fake_sweep(&grid, &results, &["-q"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = effects_cmd(
        &results,
        &["effects", "fixed_lr", "--axis", "lr", "--format", "json"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let e = &v["effects"][0];
    assert_eq!(e["axis"], "lr");
    assert_eq!(e["not_shown"], 0, "{e}");
    let runs: u64 = e["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["points"].as_array().unwrap())
        .map(|p| p["runs"].as_u64().unwrap())
        .sum();
    assert_eq!(runs, 16, "12 runs of effects + 4 of fixed_lr: {e}");
    let lines: Vec<&str> = e["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert!(lines.contains(&"sweep=fixed_lr, batch=10"), "{lines:?}");
    let fixed_line = e["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "sweep=fixed_lr, batch=10")
        .unwrap();
    assert_eq!(fixed_line["points"][0]["x"], "0.01", "the grid's spelling");
}

/// Runs with no value of the axis are said to be left out, and a heatmap cell whose runs were
/// left out never says "no runs".
#[test]
fn runs_without_a_value_of_the_axis_are_said_to_be_left_out() {
    let mut runs = hand_runs();
    for r in runs.iter_mut() {
        if r.coords["variant"] == "LSTM" && r.coords["hidden"] == "64" {
            r.coords.remove("hidden");
        }
    }
    let cands = vec![
        ("variant".to_string(), false),
        ("hidden".to_string(), false),
    ];
    let d = dims(&cands, &runs);
    let r = EffectsReport {
        counts: Counts::default(),
        metric: EffectMetric::FinalTestAcc,
        target: None,
        effects: d
            .iter()
            .map(|x| effect(&d, &x.name, &runs, EffectMetric::FinalTestAcc, 0.9))
            .collect(),
        heatmap: heatmap(&d, &runs, EffectMetric::FinalTestAcc, 0.9),
    };
    for f in [Format::Table, Format::Markdown] {
        let t = rendered(&r, f);
        assert!(t.contains("2 runs not shown (no value of hidden)"), "{t}");
        assert!(
            t.contains("2 runs not shown (no value of hidden or variant)"),
            "{t}"
        );
        assert!(t.contains("none shown") && !t.contains("no runs"), "{t}");
    }
    let j: serde_json::Value = serde_json::from_str(&rendered(&r, Format::Json)).unwrap();
    assert_eq!(j["effects"][1]["not_shown"], 2);
    assert_eq!(j["heatmap"]["not_shown"], 2);
}
