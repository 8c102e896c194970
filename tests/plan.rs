//! Plans: every preset grid expands; tutorial.toml is exactly the six recipes; fashion.toml
//! runs each tutorial model on MNIST and Fashion-MNIST alike; cell ids are stable across key
//! order, variant names and runs, and change with any hyperparameter.

mod common;

use std::path::Path;

use rnnsweep::grid::Grid;
use rnnsweep::plan::Plan;
use rnnsweep::trainer::config::presets::{preset, PRESETS};

fn plan_of(text: &str) -> Plan {
    Plan::expand(&Grid::parse(Path::new("t.toml"), text).unwrap()).unwrap()
}

#[test]
fn every_preset_grid_expands_and_says_what_it_asks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let grid = Grid::load(&p).unwrap_or_else(|e| panic!("{e}"));
        let plan = Plan::expand(&grid).unwrap_or_else(|e| panic!("{e}"));
        assert!(!plan.cells.is_empty());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("# "),
            "{} should open with a comment saying its question",
            p.display()
        );
        assert_eq!(
            grid.name,
            p.file_stem().unwrap().to_str().unwrap(),
            "sweep name = file name"
        );
        n += 1;
    }
    assert!(n >= 9);
}

#[test]
fn tutorial_grid_is_exactly_the_six_recipes() {
    let grid = Grid::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/tutorial.toml"))
        .unwrap();
    let plan = Plan::expand(&grid).unwrap();
    assert_eq!(plan.cells.len(), PRESETS.len());
    for (cell, id) in plan.cells.iter().zip(PRESETS) {
        let mut want = preset(id).unwrap();
        want.model = want.model.normalized();
        assert_eq!(
            cell.config, want,
            "variant {} should be recipe {id}",
            cell.variant
        );
    }
}

/// fashion.toml runs the tutorial models on MNIST and on Fashion-MNIST with the same settings:
/// Models A/B/C exactly as their recipes, the gated cells on the lstm_h64 recipe evaluated on
/// the full test set; the data set is the only difference between a model's two cells.
#[test]
fn fashion_grid_runs_each_tutorial_model_on_both_data_sets() {
    use rnnsweep::trainer::config::{Dataset, EvalEvery, LayerKind};
    let grid = Grid::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/fashion.toml"))
        .unwrap();
    let plan = Plan::expand(&grid).unwrap();
    assert_eq!(plan.axes, ["dataset"]);
    assert_eq!(plan.cells.len(), 5 * 2 * 3);
    let on = |variant: &str, dataset: Dataset, seed: u64| {
        let cells: Vec<_> = plan
            .cells
            .iter()
            .filter(|c| {
                c.variant == variant && c.config.dataset == dataset && c.config.seed == seed
            })
            .collect();
        assert_eq!(cells.len(), 1, "{variant} on {dataset} seed {seed}");
        cells[0].config.clone()
    };
    for (variant, recipe) in [
        ("Model A", "model_a"),
        ("Model B", "model_b"),
        ("Model C", "model_c"),
        ("LSTM h64", "lstm_h64"),
        ("GRU h64", "lstm_h64"),
    ] {
        let mut want = preset(recipe).unwrap();
        if recipe == "lstm_h64" {
            want.eval.every = EvalEvery::Iterations(200);
            want.eval.test_limit = None;
        }
        if variant == "GRU h64" {
            want.model.cell = LayerKind::Gru;
        }
        want.model = want.model.normalized();
        for seed in 0..3 {
            want.seed = seed;
            want.dataset = Dataset::Mnist;
            assert_eq!(on(variant, Dataset::Mnist, seed), want, "{variant}");
            want.dataset = Dataset::FashionMnist;
            assert_eq!(on(variant, Dataset::FashionMnist, seed), want, "{variant}");
        }
    }
}

const GRID: &str = r#"
[sweep]
name = "ids"
seeds = [0, 5]
[defaults]
cell = "lstm"
optimizer = "adam"
batch = 32
epochs = 1
[[variant]]
name = "small"
hidden = 8
[[variant]]
name = "big"
hidden = 16
[grid]
lr = [0.01, 0.001]
layers = [1, 2]
"#;

#[test]
fn order_is_variants_then_axes_in_file_order_then_seeds() {
    let plan = plan_of(GRID);
    assert_eq!(plan.cells.len(), 2 * 2 * 2 * 2);
    assert_eq!(plan.axes, vec!["lr", "layers"]);
    let key = |i: usize| {
        let c = &plan.cells[i];
        (
            c.variant.clone(),
            c.coords["lr"].clone(),
            c.coords["layers"].clone(),
            c.coords["seed"].clone(),
        )
    };
    assert_eq!(
        key(0),
        ("small".into(), "0.01".into(), "1".into(), "0".into())
    );
    assert_eq!(
        key(1),
        ("small".into(), "0.01".into(), "1".into(), "5".into())
    );
    assert_eq!(
        key(2),
        ("small".into(), "0.01".into(), "2".into(), "0".into())
    );
    assert_eq!(
        key(4),
        ("small".into(), "0.001".into(), "1".into(), "0".into())
    );
    assert_eq!(key(8).0, "big");
    assert!(plan.cells.iter().enumerate().all(|(i, c)| c.index == i));
}

#[test]
fn ids_are_stable_and_sensitive() {
    let a = plan_of(GRID);
    // Same grid with keys reordered and a variant renamed: same ids.
    let reordered = GRID
        .replace(
            "cell = \"lstm\"\noptimizer = \"adam\"",
            "optimizer = \"adam\"\ncell = \"lstm\"",
        )
        .replace("name = \"small\"", "name = \"tiny\"");
    let b = plan_of(&reordered);
    let ids = |p: &Plan| p.cells.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    // A changed hyperparameter: every id changes.
    let c = plan_of(&GRID.replace("batch = 32", "batch = 33"));
    assert!(ids(&a).iter().zip(ids(&c)).all(|(x, y)| *x != y));
    // Pinned: the id scheme (slug + blake3 of config, data fingerprint, format version) must not drift.
    assert_eq!(
        a.cells[0].id,
        "lstm-h8-l1-adam-lr0.01-b32-ep1-s0-".to_string() + &a.cells[0].id[34..]
    );
    let smoke =
        Grid::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/smoke.toml")).unwrap();
    assert_eq!(
        Plan::expand(&smoke).unwrap().cells[0].id,
        "rnn-relu-h16-l1-adam-lr0.01-b25-it40-s0-n1000-6d8dc01c"
    );
}

/// A new key at its default, written out or left out, is the same cell as before the key
/// existed; any other value is another cell.
#[test]
fn study_space_keys_at_their_defaults_keep_the_id() {
    let ids = |p: &Plan| p.cells.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    let base = ids(&plan_of(GRID));
    for explicit in [
        "weight_decay = 0.0",
        "beta1 = 0.9",
        "beta2 = 0.999",
        "eps = 1e-8",
        "nesterov = false",
        "init = \"pytorch\"",
        "lr_schedule = \"constant\"",
        "dropout = 0.0",
        "input = \"rows\"",
        "flush_denormal = false",
        "dataset = \"mnist\"",
    ] {
        let g = GRID.replace("epochs = 1", &format!("epochs = 1\n{explicit}"));
        assert_eq!(ids(&plan_of(&g)), base, "{explicit}");
    }
    for changed in [
        "weight_decay = 0.001",
        "beta1 = 0.8",
        "eps = 1e-7",
        "clip_grad_norm = 1.0",
        "clip_grad_value = 1.0",
        "init = \"orthogonal\"",
        "forget_bias = 1.0",
        "lr_schedule = \"cosine\"",
        "warmup = 10",
        "input = \"pixels\"",
        "input = \"permuted\"",
        "flush_denormal = true",
        "dataset = \"fashion-mnist\"",
    ] {
        let g = GRID.replace("epochs = 1", &format!("epochs = 1\n{changed}"));
        let other = ids(&plan_of(&g));
        assert!(base.iter().zip(&other).all(|(a, b)| a != b), "{changed}");
    }
    // adamw: its default weight decay is 0.01, written or not.
    let adamw = GRID.replace("optimizer = \"adam\"", "optimizer = \"adamw\"");
    let with_default = adamw.replace("epochs = 1", "epochs = 1\nweight_decay = 0.01");
    assert_eq!(ids(&plan_of(&adamw)), ids(&plan_of(&with_default)));
    assert_ne!(ids(&plan_of(&adamw)), base);
    let c = &plan_of(&GRID.replace("epochs = 1", "epochs = 1\nflush_denormal = true")).cells[0];
    assert!(
        c.id.starts_with("lstm-h8-l1-adam-lr0.01-b32-ep1-s0-ftz-"),
        "{}",
        c.id
    );
    assert!(c.config.flush_denormal);
    let c = &plan_of(&GRID.replace("epochs = 1", "epochs = 1\nclip_grad_norm = 1.0")).cells[0];
    assert!(
        c.id.starts_with("lstm-h8-l1-adam-lr0.01-b32-ep1-s0-clipnorm1-"),
        "{}",
        c.id
    );
}

/// Users' finished results stay valid: the grids of 2026-11-29 (text and cell ids frozen in
/// tests/fixtures/cell_ids.json, written by `rnnsweep plan --json` before the study-space keys
/// existed) still expand to exactly the same cell ids, in the same order.
#[test]
fn cell_ids_of_existing_grids_never_change() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cell_ids.json");
    let fixture: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let grids = fixture["grids"].as_object().unwrap();
    assert!(grids.len() >= 10);
    let mut n = 0;
    for (name, g) in grids {
        let plan =
            Plan::expand(&Grid::parse(Path::new(name), g["grid"].as_str().unwrap()).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ids: Vec<&str> = plan.cells.iter().map(|c| c.id.as_str()).collect();
        let want: Vec<&str> = g["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ids, want, "{name}");
        n += ids.len();
    }
    assert!(n > 100, "{n} cells");
}

const RANDOM: &str = r#"
[sweep]
name = "rs"
seeds = 2

[search]
method = "random"
trials = 12
seed = 5

[defaults]
cell = "lstm"
hidden = 8
optimizer = "sgd"
batch = 10
iterations = 5

[[variant]]
name = "plain"

[[variant]]
name = "clipped"
clip_grad_norm = 1.0

[grid]
lr = { dist = "loguniform", low = 1e-3, high = 1.0 }
momentum = { dist = "uniform", low = 0.0, high = 0.9 }
layers = [1, 2]
"#;

/// A random search: variants × list axes × trials × seeds, the same draws every time (and for
/// every variant: trial t is one setting), each in its distribution's range, and a grid with
/// an extra distribution axis keeps the other axes' draws.
#[test]
fn a_random_search_draws_the_same_trials_every_time() {
    let plan = plan_of(RANDOM);
    assert_eq!(plan.cells.len(), 2 * 12 * 2 * 2);
    assert_eq!(plan.duplicate_draws, 0);
    assert_eq!(plan.axes, ["lr", "momentum", "layers"]);
    let again = plan_of(RANDOM);
    let ids = |p: &Plan| p.cells.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&plan), ids(&again));
    let draws = |variant: &str| {
        plan.cells
            .iter()
            .filter(|c| c.variant == variant)
            .map(|c| (c.config.optim.lr, c.config.optim.momentum))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        draws("plain"),
        draws("clipped"),
        "trial t draws the same for every variant"
    );
    let mut lrs: Vec<f64> = plan.cells.iter().map(|c| c.config.optim.lr).collect();
    assert!(lrs.iter().all(|x| (1e-3..=1.0).contains(x)));
    assert!(plan
        .cells
        .iter()
        .all(|c| (0.0..=0.9).contains(&c.config.optim.momentum)));
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    assert_eq!(lrs.len(), 12, "12 trials, 12 learning rates");
    assert_eq!(
        plan.cells[0].coords["lr"],
        plan.cells[0].config.optim.lr.to_string()
    );
    // A new distribution axis leaves the others' draws as they were.
    let wider = RANDOM.replace(
        "layers = [1, 2]",
        "layers = [1, 2]\nweight_decay = { dist = \"loguniform\", low = 1e-6, high = 1e-3 }",
    );
    let w = plan_of(&wider);
    let lr_of = |p: &Plan| {
        p.cells
            .iter()
            .map(|c| c.config.optim.lr)
            .collect::<Vec<_>>()
    };
    assert_eq!(lr_of(&w), lr_of(&plan));
    // Another seed draws other trials.
    let other = plan_of(&RANDOM.replace("seed = 5", "seed = 6"));
    assert_ne!(lr_of(&other), lr_of(&plan));
}

/// A choice-only search over few values repeats itself: the repeats are left out and counted.
#[test]
fn repeated_draws_are_left_out_and_counted() {
    let text = r#"
[sweep]
name = "rs"
seeds = 2

[search]
method = "random"
trials = 10

[defaults]
hidden = 8
optimizer = "sgd"
lr = 0.1
batch = 10
iterations = 5

[[variant]]
name = "plain"

[[variant]]
name = "clipped"
clip_grad_norm = 1.0

[grid]
cell = { choice = ["lstm", "gru"] }
"#;
    let plan = plan_of(text);
    // 2 variants × 2 distinct cells × 2 seeds; the other 8 draws of each variant repeat.
    assert_eq!(plan.cells.len(), 2 * 2 * 2);
    assert_eq!(plan.duplicate_draws, 2 * 8);
}

/// `hidden = { params = N }`: each cell kind gets the hidden size whose parameter count is
/// closest to N (checked against every size), crossed like a list axis.
#[test]
fn a_parameter_matched_axis_picks_the_closest_hidden_size_per_cell() {
    use rnnsweep::trainer::model::layout::param_count;
    let plan = plan_of(
        r#"
[sweep]
name = "pm"
[defaults]
optimizer = "adam"
lr = 0.001
batch = 64
epochs = 1
[[variant]]
name = "RNN"
cell = "rnn"
[[variant]]
name = "LSTM"
cell = "lstm"
[[variant]]
name = "GRU"
cell = "gru"
[grid]
layers = [1, 2]
hidden = { params = [20000, 50000] }
"#,
    );
    assert_eq!(plan.cells.len(), 3 * 2 * 2);
    let mut hidden_by_kind = Vec::new();
    for c in &plan.cells {
        let m = &c.config.model;
        let target: u64 = if c.index % 2 == 0 { 20000 } else { 50000 };
        let dist = |h: usize| {
            let n = param_count(&rnnsweep::trainer::config::ModelConfig {
                hidden: h,
                ..m.clone()
            }) as i64;
            (n - target as i64).abs()
        };
        let best = (1..=2000).map(dist).min().unwrap();
        assert_eq!(
            dist(m.hidden),
            best,
            "{} L{} for {target}",
            m.cell,
            m.layers
        );
        assert_eq!(c.coords["hidden"], m.hidden.to_string());
        hidden_by_kind.push((m.cell, m.layers, target, m.hidden));
    }
    // At one parameter count, an LSTM is narrower than a GRU, which is narrower than an RNN.
    let h = |cell: &str, layers: usize, target: u64| {
        hidden_by_kind
            .iter()
            .find(|x| x.0.as_str() == cell && x.1 == layers && x.2 == target)
            .unwrap()
            .3
    };
    assert!(h("lstm", 1, 20000) < h("gru", 1, 20000) && h("gru", 1, 20000) < h("rnn", 1, 20000));
    assert!(h("lstm", 2, 50000) < h("lstm", 1, 50000));
}

/// `plan` says when cells read 784-step sequences with flush_denormal off (what it costs and
/// what the key does), and says nothing when every such cell flushes or reads rows.
#[test]
fn plan_names_long_sequences_in_ieee_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = |flush: &str| {
        format!(
            "[sweep]\nname = \"seq\"\nseeds = 2\n[defaults]\ncell = \"lstm\"\nhidden = 16\noptimizer = \"adam\"\nlr = 0.01\nbatch = 64\n\
             iterations = 10\n{flush}\n[grid]\ninput = [\"rows\", \"pixels\", \"permuted\"]\n"
        )
    };
    let plan_text = |text: String| {
        let g = tmp.path().join("seq.toml");
        std::fs::write(&g, text).unwrap();
        let o = common::fake_bin("").arg("plan").arg(&g).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let text = plan_text(grid(""));
    assert!(
        text.contains("note: 4 cell(s) read 784-step sequences with flush_denormal off"),
        "{text}"
    );
    assert!(
        text.contains("20 samples/s against 78 with flush_denormal = true"),
        "{text}"
    );
    let text = plan_text(grid("flush_denormal = true"));
    assert!(!text.contains("flush_denormal off"), "{text}");
}
