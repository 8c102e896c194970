//! `rnnsweep results …` and `rnnsweep predict` through the binary, on a real tiny sweep (the
//! one end-to-end sweep that trains for real); errors of `results` and a damaged result counted
//! as corrupt by `results` as by `status` (on a fake-trainer sweep); on two fake-trainer sweeps
//! with long names, one evaluated every epoch and one every 3 steps: labels that stay distinct
//! in every format, one curve table per schedule, grid axes named as written, and the tidy
//! export (CSV and Parquet read back, a CSV snapshot).

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str], results: &Path) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("rnnsweep"))
        .args(args)
        .arg("--results")
        .arg(results)
        .env("RNNSWEEP_DATA", common::data_dir())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn summarize_compare_and_predict_a_real_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grids/tiny.toml");
    let o = run(&["sweep", grid.to_str().unwrap(), "-q"], tmp.path());
    assert!(o.status.success(), "{}", text(&o.stderr));

    let o = run(
        &["results", "summarize", "tiny", "--format", "json"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["counts"]["completed"].as_u64().unwrap() + v["counts"]["diverged"].as_u64().unwrap(),
        6
    );
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    assert!(groups.iter().all(|g| g["runs"] == 2));
    for g in groups {
        let done = g["test_acc_n"].as_u64().unwrap();
        assert_eq!(done + g["diverged"].as_u64().unwrap(), 2, "{g}");
        assert_eq!(g["divergence"]["interval"]["method"], "wilson", "{g}");
        // Two completed seeds give a t interval; two shared seeds give no paired interval.
        if done == 2 {
            assert_eq!(g["test_acc_ci"]["method"], "t", "{g}");
        }
        assert!(
            g["vs_best"].is_null() || g["vs_best"]["interval"].is_null(),
            "{g}"
        );
    }
    assert_eq!(v["curves"]["tables"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["curves"]["tables"][0]["points"].as_array().unwrap().len(),
        3,
        "evaluations at steps 10, 20, 30"
    );

    // The default table, every sweep under --results.
    let o = run(&["results", "summarize"], tmp.path());
    let t = text(&o.stdout);
    assert!(t.starts_with("6/6 runs loaded"), "{t}");
    assert!(t.contains("95% CI (t)") && t.contains("n<3"), "{t}");
    assert!(t.contains("test_acc (mean over seeds)"), "{t}");
    assert!(t.lines().all(|l| l.chars().count() <= 100));

    let o = run(
        &[
            "results",
            "summarize",
            "--by",
            "cell",
            "--format",
            "csv",
            "--out",
            tmp.path().join("s.csv").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let csv = std::fs::read_to_string(tmp.path().join("s.csv")).unwrap();
    assert!(csv.starts_with("cell,label,runs,diverged,"), "{csv}");
    assert!(
        csv.lines().next().unwrap().contains(",vs_best_method"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4);

    let o = run(&["results", "compare", "LSTM", "GRU"], tmp.path());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let t = text(&o.stdout);
    assert!(t.contains("over 2 shared seeds; no interval: n<3"), "{t}");
    assert!(
        t.contains("LSTM: final test acc ") && t.contains("95% Wilson"),
        "{t}"
    );
    let o = run(&["results", "compare", "LSTM", "GRU", "--json"], tmp.path());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["diff"]["n"], 2);
    assert!(v["diff"]["interval"].is_null());
    assert_eq!(v["a_group"]["label"], "LSTM");

    // Charts: four metrics, SVG and PNG, in the sweep's folder by default.
    let o = run(&["results", "curves", "tiny"], tmp.path());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let listed: Vec<String> = text(&o.stdout).lines().map(str::to_string).collect();
    assert_eq!(listed.len(), 8, "{listed:?}");
    for m in ["test_acc", "train_acc", "test_loss", "train_loss"] {
        let svg = std::fs::read_to_string(tmp.path().join(format!("tiny/curves/{m}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("epoch"), "{m}");
        assert_eq!(
            svg.matches("<polygon").count(),
            3,
            "{m}: one seed band per variant"
        );
        let png = std::fs::read(tmp.path().join(format!("tiny/curves/{m}.png"))).unwrap();
        assert_eq!(&png[..4], b"\x89PNG", "{m}");
    }
    let out = tmp.path().join("charts");
    let o = run(
        &[
            "results",
            "curves",
            "--format",
            "svg",
            "--out",
            out.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4, "svg only");

    // The HTML report: self-contained, with the charts inline.
    let page = tmp.path().join("r.html");
    let o = run(
        &["results", "report", "--out", page.to_str().unwrap()],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    // Three networks (one per cell kind), two effect charts (the variants vary: final test
    // accuracy and samples/s), four curves.
    assert_eq!(html.matches("<svg").count(), 9);
    assert!(html.contains("Content-Security-Policy"));
    // Links only within the page (a variant's parameter count to its network).
    assert!(
        !html.contains("src=") && html.matches("href=").count() == html.matches("href=\"#").count(),
        "nothing to fetch"
    );
    assert_eq!(html.matches("href=\"#network-").count(), 3);

    // Effects of the variant on a real sweep: every run is in a point, time to a low target.
    let o = run(
        &[
            "results",
            "effects",
            "--metric",
            "time_to_target",
            "--target",
            "0.05",
            "--format",
            "json",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let e = &v["effects"][0];
    assert_eq!(
        (e["axis"].as_str(), e["scale"].as_str()),
        (Some("variant"), Some("categorical"))
    );
    let points = e["series"][0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 3, "RNN, LSTM, GRU");
    let runs: u64 = points.iter().map(|p| p["runs"].as_u64().unwrap()).sum();
    assert_eq!(runs, 6);
    for p in points {
        let (k, n) = (
            p["reached"]["k"].as_u64().unwrap(),
            p["reached"]["n"].as_u64().unwrap(),
        );
        assert!(
            k <= n && n + p["diverged"].as_u64().unwrap() + p["collapsed"].as_u64().unwrap() == 2,
            "{p}"
        );
    }
    assert!(tmp
        .path()
        .join("tiny/effects/effect_variant_time_to_target.png")
        .is_file());

    // predict on one finished cell
    let runs = tmp.path().join("tiny/runs");
    let first = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let o = Command::new(assert_cmd::cargo::cargo_bin("rnnsweep"))
        .args(["predict", first.to_str().unwrap(), "--n", "10", "--json"])
        .env("RNNSWEEP_DATA", common::data_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        p["labels"],
        serde_json::json!([7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    );
    assert_eq!(p["predicted"].as_array().unwrap().len(), 10);
}

#[test]
fn results_errors_name_what_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&["results", "summarize"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no sweeps found in"),
        "{}",
        text(&o.stderr)
    );
    let grid = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grids/tiny.toml");
    let o = common::fake_sweep(&grid, tmp.path(), &["-q"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(&["results", "summarize", "tinny"], tmp.path());
    assert!(
        text(&o.stderr).contains("no sweep \"tinny\"") && text(&o.stderr).contains("sweeps in"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["results", "summarize", "--by", "colour"], tmp.path());
    assert!(
        text(&o.stderr).contains("cannot group by \"colour\"; allowed:"),
        "{}",
        text(&o.stderr)
    );
    // Damaged results: one unreadable, one from a future format version. `results` counts them
    // as corrupt and names them, as `status` does; they are not "missing".
    let runs = tmp.path().join("tiny/runs");
    let mut results: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path().join("result.json"))
        .collect();
    results.sort();
    std::fs::write(&results[0], "garbage").unwrap();
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results[1]).unwrap()).unwrap();
    v["format_version"] = serde_json::json!(v["format_version"].as_u64().unwrap() + 1);
    std::fs::write(&results[1], serde_json::to_vec(&v).unwrap()).unwrap();
    let o = run(
        &["results", "summarize", "--format", "markdown"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let t = text(&o.stdout);
    assert!(t.starts_with("4/6 runs loaded"), "{t}");
    assert!(t.contains(", 2 corrupt") && !t.contains("missing"), "{t}");
    assert_eq!(t.matches("- corrupt: tiny[").count(), 2, "{t}");
    assert!(t.contains("format version"), "{t}");
    let o = run(&["status", "tiny", "--json"], tmp.path());
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st[0]["counts"]["corrupt"], 2, "{st}");
    let o = run(
        &[
            "results",
            "report",
            "--out",
            tmp.path().join("r.html").to_str().unwrap(),
        ],
        tmp.path(),
    );
    let e = text(&o.stderr);
    assert!(
        o.status.success() && e.contains("4/6 runs loaded, 2 corrupt"),
        "{e}"
    );
    assert_eq!(e.matches("corrupt: tiny[").count(), 2, "{e}");

    let o = run(&["results", "compare", "LSTM", "Transformer"], tmp.path());
    assert!(
        text(&o.stderr).contains("no variant \"Transformer\"; variants:"),
        "{}",
        text(&o.stderr)
    );
    let o = common::fake_bin("")
        .args(["predict", tmp.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("a run folder?") && text(&o.stderr).contains("config.json"),
        "{}",
        text(&o.stderr)
    );
}

/// Sweep A: LSTM h20 and LSTM h64 (Adam), evaluated after every epoch (4 steps each), 2 epochs.
const SWEEP_A: &str = r#"
[sweep]
name = "lstm_hidden_size_comparison_long_name"
seeds = 2

[defaults]
cell = "lstm"
optimizer = "adam"
lr = 0.01
batch = 50
epochs = 2
train_limit = 200
test_limit = 100
eval_every = "epoch"

[[variant]]
name = "LSTM h20"
hidden = 20

[[variant]]
name = "LSTM h64"
hidden = 64
"#;

/// Sweep B: the same variant names (SGD), evaluated every 3 steps, 9 steps (2.25 epochs).
const SWEEP_B: &str = r#"
[sweep]
name = "lstm_hidden_size_comparison_long_name_sgd"
seeds = 2

[defaults]
cell = "lstm"
optimizer = "sgd"
lr = 0.1
batch = 50
iterations = 9
train_limit = 200
test_limit = 100
eval_every = 3

[[variant]]
name = "LSTM h20"
hidden = 20

[[variant]]
name = "LSTM h64"
hidden = 64
"#;

/// Both sweeps, run with the fake trainer into a new results folder.
fn two_sweeps() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (file, grid) in [("a.toml", SWEEP_A), ("b.toml", SWEEP_B)] {
        let path = tmp.path().join(file);
        std::fs::write(&path, grid).unwrap();
        let o = common::fake_sweep(&path, &tmp.path().join("results"), &["-q"], "");
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    tmp
}

const LABELS: [&str; 4] = [
    "lstm_hidden_size_comparison_long_name/LSTM h20",
    "lstm_hidden_size_comparison_long_name/LSTM h64",
    "lstm_hidden_size_comparison_long_name_sgd/LSTM h20",
    "lstm_hidden_size_comparison_long_name_sgd/LSTM h64",
];

/// Issue 15: over two sweeps, `summarize` cut LSTM h20 and LSTM h64 to one label
/// ("<sweep> LSTM h…") and the curve columns to "<sweep>…", and merged the two evaluation
/// schedules into one table ordered by step. Every format must show four distinct, whole
/// labels and one curve table per schedule.
#[test]
fn two_sweeps_keep_labels_distinct_and_schedules_apart() {
    let tmp = two_sweeps();
    let results = tmp.path().join("results");
    let summarize = |format: &str, table: &str| {
        let o = run(
            &["results", "summarize", "--format", format, "--table", table],
            &results,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };

    // Terminal table: labels do not fit 16 (or 9) columns, so every table shows keys A-D and
    // a legend with the whole labels; nothing is cut.
    let t = summarize("table", "both");
    assert!(t.starts_with("8/8 runs loaded"), "{t}");
    assert!(!t.contains('…'), "nothing is cut:\n{t}");
    assert!(t.lines().all(|l| l.chars().count() <= 100), "{t}");
    let rows: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.starts_with("variant"))
        .skip(1)
        .take(4)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let mut keys = rows.clone();
    keys.sort();
    assert_eq!(keys, ["A", "B", "C", "D"], "{t}");
    // Each whole label once in the summary's legend and once in its curve table's, under the
    // same key; four labels, four keys.
    let mut legend_keys = Vec::new();
    for l in LABELS {
        let lines: Vec<&str> = t
            .lines()
            .filter(|x| x.len() == l.len() + 3 && x.ends_with(l))
            .collect();
        assert_eq!(lines.len(), 2, "{l}:\n{t}");
        assert_eq!(lines[0], lines[1]);
        legend_keys.push(lines[0][..1].to_string());
    }
    legend_keys.sort();
    assert_eq!(legend_keys, ["A", "B", "C", "D"]);
    // One table per schedule: epochs 1, 2 (steps 4, 8); steps 3, 6, 9 (epochs 1, 2, 3).
    let epoch_table = t
        .split("test_acc (mean over seeds), evaluated every epoch\n")
        .nth(1)
        .expect("an every-epoch table");
    let step_table = t
        .split("test_acc (mean over seeds), evaluated every 3 steps\n")
        .nth(1)
        .expect("an every-3-steps table");
    let first_cols = |table: &str| -> Vec<(String, String)> {
        table
            .lines()
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(|l| {
                let mut w = l.split_whitespace();
                (w.next().unwrap().into(), w.next().unwrap().into())
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        first_cols(epoch_table),
        pairs(&[("1", "4"), ("2", "8")]),
        "{t}"
    );
    assert_eq!(
        first_cols(step_table),
        pairs(&[("1", "3"), ("2", "6"), ("3", "9")]),
        "{t}"
    );
    assert_eq!(t.matches("evaluated every").count(), 2, "{t}");

    // Markdown: whole labels, four distinct rows; two curve tables.
    let md = summarize("markdown", "both");
    for l in LABELS {
        assert_eq!(md.matches(&format!("| {l} | 2 |")).count(), 1, "{l}:\n{md}");
    }
    assert!(!md.contains('…'));
    assert!(
        md.contains("evaluated every epoch\n\n| epoch | step | "),
        "{md}"
    );
    assert!(
        md.contains("evaluated every 3 steps\n\n| epoch | step | "),
        "{md}"
    );

    // CSV: never cut; the curves carry their schedule.
    let csv = summarize("csv", "summary");
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let h = r.headers().unwrap().clone();
    assert_eq!(
        h.iter().take(3).collect::<Vec<_>>(),
        ["sweep", "variant", "label"]
    );
    let mut labels: Vec<String> = r.records().map(|x| x.unwrap()[2].to_string()).collect();
    labels.sort();
    assert_eq!(labels, LABELS);
    let csv = summarize("csv", "curves");
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        r.headers().unwrap(),
        vec!["label", "eval_every", "epoch", "iteration", "test_acc"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(
        rows.len(),
        2 * 2 + 2 * 3,
        "2 groups × 2 epochs + 2 groups × 3 evaluations"
    );
    for row in &rows {
        let sgd = row[0].contains("_sgd/");
        assert_eq!(&row[1], if sgd { "3" } else { "epoch" }, "{row:?}");
    }

    // JSON: the same labels, two tables, grouping named plainly.
    let v: serde_json::Value = serde_json::from_str(&summarize("json", "both")).unwrap();
    let mut labels: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["label"].as_str().unwrap())
        .collect();
    labels.sort();
    assert_eq!(labels, LABELS);
    assert_eq!(v["by"], serde_json::json!(["sweep", "variant"]));
    let tables = v["curves"]["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 2);
    assert_eq!(
        (
            tables[0]["eval_every"].as_str(),
            tables[1]["eval_every"].as_str()
        ),
        (Some("epoch"), Some("3"))
    );
    assert_eq!(tables[0]["labels"].as_array().unwrap().len(), 2);

    // `compare` finds a variant by its whole label.
    let o = run(&["results", "compare", LABELS[1], LABELS[3]], &results);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// Grid axes are columns named as the grid writes them: no `axis_` in any table or the report.
#[test]
fn grid_axes_are_named_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = tmp.path().join("axes.toml");
    std::fs::write(
        &grid,
        SWEEP_A
            .replace("lr = 0.01\n", "")
            .replace("[[variant]]\nname = \"LSTM h20\"\nhidden = 20\n", "")
            .replace("[[variant]]\nname = \"LSTM h64\"\nhidden = 64\n", "")
            + "[grid]\nhidden = [20, 64]\nlr = [0.01, 1e-3]\n",
    )
    .unwrap();
    let results = tmp.path().join("results");
    let o = common::fake_sweep(&grid, &results, &["-q"], "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    for format in ["table", "markdown", "csv", "json"] {
        let o = run(&["results", "summarize", "--format", format], &results);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let t = text(&o.stdout);
        assert!(!t.contains("axis_"), "{format}:\n{t}");
        assert!(
            t.contains("hidden=64 lr=0.001") || format == "csv",
            "{format}:\n{t}"
        );
    }
    let o = run(&["results", "summarize", "--format", "json"], &results);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["by"], serde_json::json!(["variant", "hidden", "lr"]));
    assert_eq!(v["groups"].as_array().unwrap().len(), 4);
    let page = tmp.path().join("r.html");
    let o = run(
        &["results", "report", "--out", page.to_str().unwrap()],
        &results,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Grouped by variant, hidden, lr;"), "{html}");
    assert!(!html.contains("axis_"));
    let o = run(&["results", "summarize", "--by", "colour"], &results);
    let e = text(&o.stderr);
    assert!(e.contains("allowed:") && !e.contains("axis_"), "{e}");
    let o = run(
        &[
            "results",
            "summarize",
            "--by",
            "clip_grad_norm",
            "--format",
            "json",
        ],
        &results,
    );
    assert!(
        o.status.success(),
        "any grid key groups: {}",
        text(&o.stderr)
    );
}

/// Runs `results export` into `file` and returns stderr.
fn export(results: &Path, extra: &[&str]) -> String {
    let mut args = vec!["results", "export"];
    args.extend(extra);
    let o = run(&args, results);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stderr)
}

/// The tidy export: one row per run × evaluation point × split; the Parquet file reads back
/// with polars with the right schema and row count, the CSV holds the same values.
#[test]
fn export_writes_one_tidy_table_as_csv_and_parquet() {
    use polars::prelude::*;
    use polars_io::parquet::read::ParquetReader;
    use polars_io::SerReader;

    let tmp = two_sweeps();
    let results = tmp.path().join("results");
    let (csv_path, pq_path) = (tmp.path().join("runs.csv"), tmp.path().join("runs.parquet"));
    let e = export(&results, &["--out", csv_path.to_str().unwrap()]);
    // 8 runs: sweep A 2 evaluations, sweep B 3, each a train and a test row.
    assert!(
        e.contains("8/8 runs loaded; wrote") && e.contains("(40 rows × "),
        "{e}"
    );
    export(&results, &["--out", pq_path.to_str().unwrap()]);

    let df = ParquetReader::new(std::fs::File::open(&pq_path).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), 40);
    let schema = df.schema();
    let dtype = |c: &str| {
        schema
            .get(c)
            .unwrap_or_else(|| panic!("no column {c}"))
            .clone()
    };
    for (c, t) in [
        ("sweep", DataType::String),
        ("cell_id", DataType::String),
        ("cell_index", DataType::UInt32),
        ("variant", DataType::String),
        ("status", DataType::String),
        ("collapsed", DataType::Boolean),
        ("seed", DataType::UInt64),
        ("cell", DataType::String),
        ("hidden", DataType::UInt64),
        ("lr", DataType::Float64),
        ("beta1", DataType::Float64),
        ("nesterov", DataType::Boolean),
        ("epochs", DataType::UInt64),
        ("iterations", DataType::UInt64),
        ("eval_every", DataType::String),
        ("epoch", DataType::Float64),
        ("step", DataType::Int64),
        ("split", DataType::String),
        ("loss", DataType::Float64),
        ("accuracy", DataType::Float64),
        ("elapsed_seconds", DataType::Float64),
        ("lr_in_force", DataType::Float64),
        ("grad_norm", DataType::Float64),
    ] {
        assert_eq!(dtype(c), t, "{c}");
    }
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        names[..7],
        [
            "sweep",
            "cell_id",
            "cell_index",
            "variant",
            "status",
            "collapsed",
            "seed"
        ]
    );
    // No grid key that no run has a value for (no clipping, no dropout in these sweeps).
    assert!(
        !names
            .iter()
            .any(|n| n == "clip_grad_norm" || n == "dropout"),
        "{names:?}"
    );
    // Union over the sweeps: Adam's beta1 is null for the SGD sweep, momentum the other way.
    let sweep = df.column("sweep").unwrap().str().unwrap().clone();
    let beta1 = df.column("beta1").unwrap().f64().unwrap().clone();
    for i in 0..df.height() {
        let sgd = sweep.get(i).unwrap().ends_with("_sgd");
        assert_eq!(beta1.get(i), (!sgd).then_some(0.9), "row {i}");
    }
    // Fractional epochs: every 3 steps at 4 steps per epoch.
    let steps = df.column("step").unwrap().i64().unwrap().clone();
    let epochs = df.column("epoch").unwrap().f64().unwrap().clone();
    for i in 0..df.height() {
        assert_eq!(epochs.get(i).unwrap(), steps.get(i).unwrap() as f64 / 4.0);
    }
    let splits = df.column("split").unwrap().str().unwrap().clone();
    assert_eq!(splits.iter().filter(|s| *s == Some("train")).count(), 20);

    // The CSV holds the same table: same header, and every field reads back to the Parquet value.
    let mut r = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), names);
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), df.height());
    for (c, col) in df.columns().iter().enumerate() {
        for (i, row) in rows.iter().enumerate() {
            let want = col.get(i).unwrap();
            let got = &row[c];
            match want {
                AnyValue::Null => assert_eq!(got, "", "{} row {i}", col.name()),
                AnyValue::Float64(x) => {
                    assert_eq!(
                        got.parse::<f64>().unwrap().to_bits(),
                        x.to_bits(),
                        "{}",
                        col.name()
                    )
                }
                AnyValue::String(s) => assert_eq!(got, s),
                other => assert_eq!(got, other.to_string(), "{} row {i}", col.name()),
            }
        }
    }

    // One sweep to stdout: the snapshot, with the measured seconds masked.
    let o = run(
        &[
            "results",
            "export",
            "lstm_hidden_size_comparison_long_name_sgd",
        ],
        &results,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut r = csv::Reader::from_reader(&o.stdout[..]);
    let header = r.headers().unwrap().clone();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    for row in r.records() {
        let row = row.unwrap();
        let masked: Vec<&str> = header
            .iter()
            .zip(row.iter())
            .map(|(h, v)| match h {
                "elapsed_seconds" | "samples_per_sec" if !v.is_empty() => "<measured>",
                _ => v,
            })
            .collect();
        w.write_record(&masked).unwrap();
    }
    insta::assert_snapshot!(
        "export_csv",
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    );

    // Errors: a name that says no format; Parquet to stdout.
    let o = run(&["results", "export", "--out", "runs.txt"], &results);
    assert!(
        text(&o.stderr).contains("give --format csv or --format parquet"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["results", "export", "--format", "parquet"], &results);
    assert!(
        text(&o.stderr).contains("give --out FILE.parquet"),
        "{}",
        text(&o.stderr)
    );
}
