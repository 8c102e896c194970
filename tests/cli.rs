//! The `rnnsweep` binary end to end: outputs a person and a program can read, clear errors for
//! bad input (exit 2), a diverged run (exit 1), Ctrl-C (exit 130 with the files written). The
//! `train` runs use the fake trainer (no MNIST): what is tested here is the command, not the
//! learning (tests/training.rs and tests/results_cli.rs train for real).

mod common;

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use rnnsweep::trainer::record::{RunRecord, RunStatus};

fn rnnsweep(args: &[&str]) -> Output {
    Command::cargo_bin("rnnsweep")
        .unwrap()
        .args(args)
        .env("RNNSWEEP_DATA", common::data_dir())
        .env("RNNSWEEP_MNIST_MIRRORS", "http://127.0.0.1:9/")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn describe_prints_pytorch_shapes_and_totals() {
    let o = rnnsweep(&[
        "describe", "--cell", "rnn", "--hidden", "100", "--layers", "2",
    ]);
    assert!(o.status.success());
    let s = stdout(&o);
    assert!(
        s.contains("total: 10 parameter tensors, 34,210 parameters"),
        "{s}"
    );
    assert!(
        s.contains("RNN(28, 100, num_layers=2, nonlinearity='tanh', batch_first=True)"),
        "{s}"
    );
    let o = rnnsweep(&["describe", "--preset", "lstm_h20", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // 4*20*28 + 4*20*20 + 2*4*20 + 10*20 + 10
    assert_eq!(v["total_parameters"], 2240 + 1600 + 160 + 210);
    assert_eq!(v["tensors"].as_array().unwrap().len(), 6);
}

/// `describe --svg/--png` draw the network (the same picture as `report::network`); `--run DIR`
/// describes a run folder's own model; a picture that cannot be written names its path.
#[test]
fn describe_draws_the_network_and_reads_a_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (svg, png) = (tmp.path().join("b.svg"), tmp.path().join("b.png"));
    let o = rnnsweep(&[
        "describe",
        "--preset",
        "model_b",
        "--svg",
        svg.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("34,210 parameters"),
        "the text as before"
    );
    assert!(stderr(&o).contains(&format!("wrote {}", svg.display())));
    let cfg = rnnsweep::trainer::config::presets::preset("model_b").unwrap();
    let want = rnnsweep::report::network::Diagram::of(&cfg.model, cfg.dataset);
    assert_eq!(std::fs::read_to_string(&svg).unwrap(), want.svg().unwrap());
    let img = image::load_from_memory(&std::fs::read(&png).unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), want.size());

    // A run folder: its config.json says what to draw (a Fashion-MNIST GRU here).
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let mut cfg = rnnsweep::trainer::config::presets::preset("lstm_h64").unwrap();
    cfg.model.cell = rnnsweep::trainer::config::LayerKind::Gru;
    cfg.dataset = rnnsweep::trainer::config::Dataset::FashionMnist;
    std::fs::write(run.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let out = tmp.path().join("run.svg");
    let o = rnnsweep(&[
        "describe",
        "--run",
        run.to_str().unwrap(),
        "--svg",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("GRU(28, 64, batch_first=True)"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("data: Fashion-MNIST"), "{}", stdout(&o));
    let drawn = std::fs::read_to_string(&out).unwrap();
    assert!(drawn.contains("GRU layer 0: 28 → 64") && drawn.contains("Fashion-MNIST"));

    // Errors name what is wrong: the path that cannot be written, the folder that is no run,
    // model flags beside --run.
    let bad = tmp.path().join("no/such/folder/n.svg");
    let o = rnnsweep(&["describe", "--svg", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!(
            "cannot write the network SVG to {}",
            bad.display()
        )),
        "{}",
        stderr(&o)
    );
    let o = rnnsweep(&["describe", "--run", tmp.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("config.json (is "), "{}", stderr(&o));
    let o = rnnsweep(&["describe", "--run", run.to_str().unwrap(), "--hidden", "8"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("leave out --preset and the model flags"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_input_is_a_clear_error_with_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["train", "--cell", "lsmt"],
            "use one of: rnn, lstm, gru (did you mean `lstm`?)",
        ),
        (
            &["train", "--hidden", "0"],
            "0 is out of range; allowed: 1..=8192",
        ),
        (
            &["train", "--cell", "lstm", "--activation", "relu"],
            "activation applies only where cell = rnn; this run has cell = lstm",
        ),
        (
            &["train", "--lr", "-1"],
            "-1 is not allowed; the learning rate must be in (0, 100]",
        ),
        (
            &["train", "--optimizer", "adam", "--momentum", "0.9"],
            "momentum applies only where optimizer = sgd",
        ),
        (
            &["train", "--epochs", "1", "--iterations", "5"],
            "cannot be used with",
        ),
        (
            &["train", "--eval-every", "sometimes"],
            "expected \"epoch\" or a number of steps ≥ 1",
        ),
        (&["train", "--preset", "model_d"], "known presets: rnnimc"),
        (&["train", "--device", "tpu"], "use one of: auto, cpu, cuda"),
        (
            &["train", "--batch", "500", "--train-limit", "100"],
            "must not exceed the 100 training images",
        ),
        (
            &["data", "show", "10000"],
            "out of range: the test set has 10000 images",
        ),
        (&["bench", "--recipe", "nope"], "known presets"),
        (
            &["train", "--clip-grad-norm", "0"],
            "clip_grad_norm must be a number > 0",
        ),
        (
            &["train", "--optimizer", "adam", "--nesterov"],
            "nesterov applies only where optimizer = sgd; this run has optimizer = adam",
        ),
        (
            &["train", "--optimizer", "sgd", "--alpha", "0.9"],
            "alpha applies only where optimizer = rmsprop; this run has optimizer = sgd",
        ),
        (
            &["train", "--clip-grad-norm", "1", "--clip-grad-value", "1"],
            "cannot be used with",
        ),
    ];
    for (args, want) in cases {
        let o = rnnsweep(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(want),
            "{args:?}: {:?} lacks {want:?}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"), "{args:?} panicked");
    }
}

/// `--device cuda` that cannot be had (this build has no CUDA; a cuda build without a GPU says
/// why the same way) is refused before any output or files, by `train` and by `sweep`: one
/// line, exit 2, no panic message or backtrace. (A cuda build on a GPU machine trains instead.)
#[test]
fn an_unavailable_cuda_device_is_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let results = tmp.path().join("results");
    let train = Command::cargo_bin("rnnsweep")
        .unwrap()
        .args(["train", "--preset", "lstm_h20", "--iterations", "5"])
        .args(["--device", "cuda", "--out"])
        .arg(&out)
        .env("RNNSWEEP_DATA", common::data_dir())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let mut sweep = common::cmd(&common::grid("tiny.toml"), &results, &["--device", "cuda"]);
    let sweep = sweep.env("RUST_BACKTRACE", "1").output().unwrap();
    for (what, o, folder) in [("train", train, &out), ("sweep", sweep, &results)] {
        if o.status.success() {
            continue;
        }
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert_eq!(stdout(&o), "", "{what}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.starts_with("error: device error: "), "{what}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{what}: {err}"
        );
        assert!(!folder.exists(), "{what} made {}", folder.display());
    }
}

#[test]
fn missing_data_without_network_names_the_file_and_the_mirrors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let o = rnnsweep(&["train", "--iterations", "1", "--data-dir", dir, "-q"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("could not download train-images-idx3-ubyte.gz from any mirror"),
        "{e}"
    );
    assert!(e.contains("http://127.0.0.1:9/"), "{e}");
}

fn read_record(dir: &Path) -> RunRecord {
    serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap()
}

/// `rnnsweep ARGS…` with the fake trainer following `rules`.
fn fake(rules: &str, args: &[&str]) -> Output {
    common::fake_bin(rules).args(args).output().unwrap()
}

#[test]
fn train_writes_config_metrics_and_result_and_prints_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = fake(
        "",
        &[
            "train",
            "--cell",
            "gru",
            "--hidden",
            "8",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--batch",
            "20",
            "--iterations",
            "30",
            "--train-limit",
            "200",
            "--test-limit",
            "100",
            "--eval-every",
            "10",
            "--eval-before",
            "--clip-grad-norm",
            "1",
            "--weight-decay",
            "0.001",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rec: RunRecord =
        serde_json::from_slice(&o.stdout).expect("stdout is exactly the JSON record");
    assert_eq!(rec.status, RunStatus::Completed);
    assert_eq!(rec.iterations, 30);
    assert_eq!(rec.device, "fake");
    assert_eq!(rec, read_record(&out));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,iteration,split,loss,acc,samples,seconds,samples_per_sec,grad_norm,grad_norm_max,lr"
    );
    // Train rows carry the pre-clip gradient norm (last step, largest in the window).
    let train_row: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(train_row[2], "train");
    assert!(train_row[8].parse::<f64>().unwrap() > 0.0, "{}", lines[2]);
    assert!(train_row[9].parse::<f64>().unwrap() >= train_row[8].parse::<f64>().unwrap());
    assert_eq!(rec.config.optim.clip_grad_norm, Some(1.0));
    assert_eq!(rec.config.optim.weight_decay, Some(0.001));
    // before training: test only; then 3 points with train + test rows.
    assert_eq!(lines.len(), 1 + 1 + 3 * 2);
    assert!(lines[1].starts_with("0,0,test,"));
    assert!(out.join("config.json").is_file());
    // The human table went to stderr, leaving stdout parseable.
    assert!(stderr(&o).contains("train loss"), "{}", stderr(&o));
    assert!(out.join("weights.safetensors").is_file());
}

#[test]
fn a_diverged_run_exits_1_and_records_where() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("weights.safetensors"), b"from an earlier run").unwrap();
    let o = fake(
        "diverge_at=70",
        &[
            "train",
            "--preset",
            "model_a",
            "--iterations",
            "100",
            "--train-limit",
            "1000",
            "--test-limit",
            "100",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("loss became NaN/inf at epoch 7, step 70: the run diverged"),
        "{}",
        stderr(&o)
    );
    assert!(matches!(
        read_record(&out).status,
        RunStatus::Diverged {
            epoch: 7,
            iteration: 70,
            ..
        }
    ));
    assert!(
        !out.join("weights.safetensors").exists(),
        "a diverged run leaves no weights, not even an earlier run's"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_with_files_written() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut child = common::fake_bin("delay_ms=5")
        .args([
            "train",
            "--preset",
            "lstm_h64",
            "--epochs",
            "50",
            "--eval-every",
            "20",
            "--test-limit",
            "100",
            "-q",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training has produced its first metrics, then interrupt.
    common::wait_for("metrics", Duration::from_secs(60), || {
        out.join("metrics.csv").exists()
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t1 = Instant::now();
    let code = child.wait().unwrap().code();
    assert!(
        t1.elapsed() < Duration::from_secs(10),
        "took {:?} to stop",
        t1.elapsed()
    );
    assert_eq!(code, Some(130));
    let rec = read_record(&out);
    assert!(matches!(rec.status, RunStatus::Interrupted { iteration, .. } if iteration >= 20));
    assert!(!rec.metrics.is_empty());
}
