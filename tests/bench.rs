//! `rnnsweep bench` end to end on real MNIST, a few steps each: GFLOP/s and the share of the
//! measured FMA peak in the JSON, the `RNNSWEEP_ISA` cap (what it caps, what it refuses), and
//! the PyTorch side (`--pytorch-spec`, then figures read back with `--pytorch`, stale ones
//! refused). Speed itself is measured by `bench`, never asserted here.

mod common;

use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

fn bench(isa: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::cargo_bin("rnnsweep").unwrap();
    c.arg("bench")
        .args(["--warmup", "1", "--steps", "2", "--repeats", "1"])
        .args(args)
        .env("RNNSWEEP_DATA", common::data_dir())
        .env("RNNSWEEP_MNIST_MIRRORS", "http://127.0.0.1:9/")
        .env_remove("RNNSWEEP_ISA");
    if let Some(isa) = isa {
        c.env("RNNSWEEP_ISA", isa);
    }
    c.output().unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn cpu_has(flag: &str) -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| t.split_whitespace().any(|w| w == flag))
        .unwrap_or(false)
}

#[test]
fn rows_carry_gflops_and_the_share_of_the_peak_under_each_cap() {
    // lstm_h20: G = 80, I = 28, H = 20, T = 28: per step 4·80·48 + 2·80·20 = 18560;
    // × 28 = 519680; head 6·20·10 = 1200.
    let mut caps = vec![None, Some("baseline")];
    if cpu_has("avx2") && cpu_has("fma") {
        caps.push(Some("avx2"));
    }
    for cap in caps {
        let v = json(&bench(cap, &["--recipe", "lstm_h20", "--json"]));
        let row = &v[0];
        assert_eq!(row["flops_per_sample"], 520_880.0, "{row}");
        let (sps, gflops, peak) = (
            row["samples_per_sec"].as_f64().unwrap(),
            row["gflops"].as_f64().unwrap(),
            row["peak_gflops"].as_f64().unwrap(),
        );
        assert!(sps > 0.0 && peak > 0.0, "{row}");
        assert!(
            (gflops - 520_880.0 * sps / 1e9).abs() < 1e-9 * gflops.max(1.0),
            "{row}"
        );
        assert!((row["peak_fraction"].as_f64().unwrap() - gflops / peak).abs() < 1e-12);
        if let Some(cap) = cap {
            assert_eq!(row["isa"], cap, "the matmuls obey the cap: {row}");
            assert_eq!(row["gate_isa"], cap, "the gate loops obey the cap: {row}");
        }
        assert!(
            row["pytorch_samples_per_sec"].as_f64().is_some(),
            "reference figure: {row}"
        );
    }
    // The table says which set and peak it used.
    let o = bench(Some("baseline"), &["--recipe", "lstm_h20", "-q"]);
    let t = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        t.contains("instruction set: baseline (RNNSWEEP_ISA=baseline)"),
        "{t}"
    );
    assert!(t.contains("baseline FMA peak, one core:"), "{t}");
}

#[test]
fn a_bad_cap_is_refused_before_any_work() {
    let o = bench(Some("avx3"), &["--recipe", "lstm_h20"]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        e.contains("RNNSWEEP_ISA=\"avx3\" is not an instruction set"),
        "{e}"
    );
    if !cpu_has("avx512f") {
        let o = bench(Some("avx512"), &["--recipe", "lstm_h20"]);
        assert_eq!(o.status.code(), Some(2));
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(e.contains("this CPU lacks it"), "{e}");
    }
}

#[test]
fn pytorch_figures_round_trip_through_the_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = json(&bench(
        None,
        &["--recipe", "model_a", "--input", "pixels", "--pytorch-spec"],
    ));
    assert_eq!(spec["format_version"], 1);
    let recipe = &spec["recipes"][0];
    assert_eq!(recipe["recipe"], "model_a");
    assert_eq!(recipe["config"]["model"]["input"], "pixels", "{recipe}");
    assert!(std::path::Path::new(spec["train_images"].as_str().unwrap()).is_file());
    // What bench/pytorch/bench.py writes, with a made-up figure.
    let measured = |config: &Value| {
        serde_json::json!({
            "torch": "2.15.0", "capability": "AVX2", "threads": 1,
            "rows": [{
                "recipe": "model_a", "config": config, "samples_per_sec": 100.0,
                "min_samples_per_sec": 90.0, "max_samples_per_sec": 110.0,
            }],
        })
    };
    let file = tmp.path().join("torch.json");
    std::fs::write(&file, measured(&recipe["config"]).to_string()).unwrap();
    let f = file.to_str().unwrap();
    let args = ["--recipe", "model_a", "--input", "pixels", "--pytorch", f];
    let v = json(&bench(None, &[&args[..], &["--json"]].concat()));
    assert_eq!(v[0]["pytorch_samples_per_sec"], 100.0);
    let o = bench(None, &args);
    let t = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        t.contains("measured now by bench/pytorch/bench.py (torch 2.15.0, AVX2 kernels"),
        "{t}"
    );
    // Figures measured for another config are refused, not compared.
    let mut stale = recipe["config"].clone();
    stale["model"]["input"] = "rows".into();
    std::fs::write(&file, measured(&stale).to_string()).unwrap();
    let o = bench(None, &args);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(e.contains("measured for another config"), "{e}");
}
