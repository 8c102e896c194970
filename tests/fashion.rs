//! `dataset = "fashion-mnist"` through the pipeline: the grid key (in `[defaults]`, a variant or
//! as an axis), plan and describe showing it, `config.json` holding it, cell ids (MNIST's
//! unchanged, written or not), and `sweep`/`train` runs with the fake trainer. With the real
//! trainer, a sweep loads only the data sets of its cells: an MNIST-only sweep never touches
//! Fashion-MNIST, and a sweep that needs Fashion-MNIST files it cannot get stops before training.
//! (Downloading, verifying and loading Fashion-MNIST itself: tests/fetch.rs.)

mod common;

use std::path::Path;

use rnnsweep::grid::Grid;
use rnnsweep::plan::Plan;
use rnnsweep::trainer::config::{Dataset, TrainConfig};

const GRID: &str = r#"
[sweep]
name = "fashion"
seeds = 2
[defaults]
cell = "lstm"
hidden = 8
optimizer = "adam"
lr = 0.01
batch = 10
iterations = 4
train_limit = 20
test_limit = 10
eval_every = 2
"#;

fn plan_of(text: &str) -> Plan {
    let g = Grid::parse(Path::new("fashion.toml"), text).unwrap();
    Plan::expand(&g).unwrap()
}

fn ids(p: &Plan) -> Vec<String> {
    p.cells.iter().map(|c| c.id.clone()).collect()
}

fn write_grid(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("fashion.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_key_works_in_defaults_variants_and_axes() {
    let mnist = plan_of(GRID);
    // In [defaults]: every cell on Fashion-MNIST, each a new cell.
    let fashion = plan_of(&GRID.replace("[defaults]", "[defaults]\ndataset = \"fashion-mnist\""));
    assert!(fashion
        .cells
        .iter()
        .all(|c| c.config.dataset == Dataset::FashionMnist));
    assert!(ids(&mnist).iter().zip(ids(&fashion)).all(|(a, b)| *a != b));
    assert!(
        fashion.cells[0].id.contains("-s0-n20-fashion-mnist-"),
        "{}",
        fashion.cells[0].id
    );
    // Written out as the default: the same cells as before the key existed.
    let explicit = plan_of(&GRID.replace("[defaults]", "[defaults]\ndataset = \"mnist\""));
    assert_eq!(ids(&explicit), ids(&mnist));
    assert!(explicit
        .cells
        .iter()
        .all(|c| c.config.dataset == Dataset::Mnist));
    // As an axis: the MNIST cells are the MNIST grid's, the others Fashion-MNIST's.
    let axis = plan_of(&format!(
        "{GRID}[grid]\ndataset = [\"mnist\", \"fashion-mnist\"]\n"
    ));
    assert_eq!(axis.axes, ["dataset"]);
    assert_eq!(axis.cells.len(), 4);
    let of = |d: &str| -> Vec<String> {
        axis.cells
            .iter()
            .filter(|c| c.coords["dataset"] == d)
            .map(|c| c.id.clone())
            .collect()
    };
    assert_eq!(of("mnist"), ids(&mnist));
    assert_eq!(of("fashion-mnist"), ids(&fashion));
    // In a variant.
    let variants = plan_of(&format!(
        "{GRID}[[variant]]\nname = \"digits\"\n[[variant]]\nname = \"clothes\"\ndataset = \"Fashion-MNIST\"\n"
    ));
    assert_eq!(variants.cells.len(), 4);
    assert_eq!(ids(&variants)[..2], ids(&mnist)[..]);
    assert_eq!(ids(&variants)[2..], ids(&fashion)[..]);
}

#[test]
fn the_config_names_the_data_set_only_when_it_is_not_mnist() {
    let fashion = plan_of(&GRID.replace("[defaults]", "[defaults]\ndataset = \"fashion-mnist\""));
    let json = serde_json::to_value(&fashion.cells[0].config).unwrap();
    assert_eq!(json["dataset"], "fashion-mnist");
    let mnist = plan_of(GRID);
    let json = serde_json::to_value(&mnist.cells[0].config).unwrap();
    assert!(json.get("dataset").is_none(), "{json}");
}

#[test]
fn plan_and_describe_show_the_data_set() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = write_grid(
        tmp.path(),
        &format!("{GRID}[grid]\ndataset = [\"mnist\", \"fashion-mnist\"]\n"),
    );
    let out = common::fake_bin("")
        .args(["plan", "--results"])
        .arg(tmp.path().join("results"))
        .arg(&grid)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\ndata: MNIST (2 cells), Fashion-MNIST (2 cells)\n"),
        "{text}"
    );
    assert!(text.contains("dataset=fashion-mnist"), "{text}");
    let out = common::fake_bin("")
        .args(["plan", "--json", "--results"])
        .arg(tmp.path().join("results"))
        .arg(&grid)
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let datasets: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["config"]["dataset"]
                .as_str()
                .unwrap_or("(mnist: left out)")
        })
        .collect();
    assert_eq!(
        datasets,
        [
            "(mnist: left out)",
            "(mnist: left out)",
            "fashion-mnist",
            "fashion-mnist"
        ]
    );

    let out = common::fake_bin("")
        .args(["describe", "--cell", "gru", "--dataset", "fashion-mnist"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("data: Fashion-MNIST (fashion-mnist; 28x28 images, 10 classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot)"),
        "{text}"
    );
    let out = common::fake_bin("")
        .args(["describe", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dataset"], "mnist");
    let out = common::fake_bin("")
        .args(["describe", "--dataset", "fashion"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use one of: mnist, fashion-mnist"));
}

#[test]
fn a_fake_sweep_and_train_on_fashion_mnist_record_it() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = write_grid(
        tmp.path(),
        &GRID.replace("[defaults]", "[defaults]\ndataset = \"fashion-mnist\""),
    );
    let results = tmp.path().join("results");
    let out = common::fake_sweep(&grid, &results, &["--jobs", "1"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (plan, store) = common::plan_and_store(&grid, &results);
    for c in &plan.cells {
        let text = std::fs::read_to_string(store.layout.config_json(&c.id)).unwrap();
        let cfg: TrainConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(cfg.dataset, Dataset::FashionMnist, "{text}");
        assert!(store.layout.result_json(&c.id).is_file());
    }

    let out_dir = tmp.path().join("train");
    let out = common::fake_bin("")
        .args([
            "train",
            "--dataset",
            "fashion-mnist",
            "--iterations",
            "3",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg: TrainConfig =
        serde_json::from_slice(&std::fs::read(out_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg.dataset, Dataset::FashionMnist);
    assert!(String::from_utf8_lossy(&out.stdout).contains("on Fashion-MNIST with adam"));
}

/// With the real trainer, a sweep loads the data sets of its cells and no others. The data
/// folder is a root whose mnist/ is the shared MNIST and whose fashion-mnist/ does not exist,
/// and no Fashion-MNIST mirror answers: the MNIST-only sweep trains, and one with a
/// Fashion-MNIST cell stops before training anything, saying which files it could not get.
#[cfg(unix)]
#[test]
fn a_real_sweep_loads_only_the_data_sets_it_uses() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    std::fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(
        std::fs::canonicalize(common::data_dir()).unwrap(),
        root.join("mnist"),
    )
    .unwrap();
    let run = |grid_text: &str, results: &str| {
        let grid = write_grid(tmp.path(), grid_text);
        assert_cmd::Command::cargo_bin("rnnsweep")
            .unwrap()
            .args(["sweep", "--jobs", "1", "--device", "cpu", "--results"])
            .arg(tmp.path().join(results))
            .arg(&grid)
            .env("RNNSWEEP_DATA", &root)
            .env("RNNSWEEP_MNIST_MIRRORS", common::NO_MIRROR)
            .env("RNNSWEEP_FASHION_MNIST_MIRRORS", common::NO_MIRROR)
            .env_remove("RNNSWEEP_FAKE_TRAINER")
            .output()
            .unwrap()
    };
    let out = run(GRID, "mnist-only");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!root.join("fashion-mnist").exists());

    let mixed = format!("{GRID}[grid]\ndataset = [\"mnist\", \"fashion-mnist\"]\n");
    let out = run(&mixed, "mixed");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("could not download train-images-idx3-ubyte.gz from any mirror"),
        "{err}"
    );
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(!root.join("fashion-mnist").exists());
    // Nothing trained: no cell of the mixed sweep has a result.
    let (plan, store) =
        common::plan_and_store(&write_grid(tmp.path(), &mixed), &tmp.path().join("mixed"));
    assert!(plan
        .cells
        .iter()
        .all(|c| !store.layout.result_json(&c.id).exists()));
}
