//! `rnnsweep results …` and `rnnsweep predict` through the binary, on a real tiny sweep (the
//! one end-to-end sweep that trains for real); errors of `results` and a damaged result counted
//! as corrupt by `results` as by `status` (on a fake-trainer sweep).

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
    assert_eq!(
        v["curves"]["points"].as_array().unwrap().len(),
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
    // Two effect charts (the variants vary: final test accuracy and samples/s), four curves.
    assert_eq!(html.matches("<svg").count(), 6);
    assert!(html.contains("Content-Security-Policy"));
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "nothing to fetch"
    );

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
