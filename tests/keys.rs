//! The table of settings (`trainer::config::keys`) against every output that shows a setting:
//! for every key, on a fake sweep whose variants set it and leave it out, `plan --json`, each
//! run's `config.json`, the summary's run columns (`summarize --by`) and `results export` give
//! the same value, null where the key does not apply. And the README's table of keys is the
//! table `rnnsweep keys` prints.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use rnnsweep::trainer::config::keys::KEYS;
use rnnsweep::trainer::config::TrainConfig;

/// For each key, the settings of a variant that sets it to something other than its default
/// (with what it needs to apply). A new key must be added here: the test fails on a key
/// without a variant.
fn variant_of(key: &str) -> Option<&'static str> {
    Some(match key {
        "cell" => "cell = \"gru\"",
        "activation" => "cell = \"rnn\"\nactivation = \"relu\"",
        "hidden" => "hidden = 6",
        "layers" => "layers = 2",
        "init" => "init = \"orthogonal\"",
        "init_scale" => "cell = \"rnn\"\ninit = \"identity\"\ninit_scale = 0.5",
        "input" => "input = \"columns\"",
        "permutation_seed" => "input = \"permuted\"\npermutation_seed = 3",
        "dropout" => "layers = 2\ndropout = 0.25",
        "forget_bias" => "forget_bias = 1.5",
        "optimizer" => "optimizer = \"rmsprop\"",
        "lr" => "lr = 0.05",
        "momentum" => "momentum = 0.9",
        "nesterov" => "momentum = 0.5\nnesterov = true",
        "weight_decay" => "weight_decay = 0.001",
        "beta1" => "optimizer = \"adam\"\nbeta1 = 0.8",
        "beta2" => "optimizer = \"adamw\"\nbeta2 = 0.99",
        "amsgrad" => "optimizer = \"adam\"\namsgrad = true",
        "eps" => "optimizer = \"adam\"\neps = 1e-6",
        "alpha" => "optimizer = \"rmsprop\"\nalpha = 0.9",
        "clip_grad_norm" => "clip_grad_norm = 2.5",
        "clip_grad_value" => "clip_grad_value = 0.5",
        "lr_schedule" => "lr_schedule = \"cosine\"",
        "step_size" => "lr_schedule = \"step\"\nstep_size = 2",
        "gamma" => "lr_schedule = \"step\"\nstep_size = 1\ngamma = 0.5",
        "eta_min" => "lr_schedule = \"cosine\"\neta_min = 0.01",
        "warmup" => "warmup = 3",
        "batch" => "batch = 5",
        "epochs" => "epochs = 1",
        "iterations" => "iterations = 6",
        "train_limit" => "train_limit = 40",
        "test_limit" => "test_limit = 15",
        "dataset" => "dataset = \"fashion-mnist\"",
        "eval_every" => "eval_every = 2",
        "eval_before" => "eval_before = true",
        "flush_denormal" => "flush_denormal = true",
        _ => return None,
    })
}

/// The grid: a variant leaving every optional key out, and one per key. The budget is set
/// per variant, as `epochs` and `iterations` exclude each other.
fn grid() -> String {
    let mut g = String::from(
        "[sweep]\nname = \"keys\"\nseeds = 1\n\n[defaults]\ncell = \"lstm\"\nhidden = 4\n\
         optimizer = \"sgd\"\nlr = 0.1\nbatch = 10\ntrain_limit = 50\ntest_limit = 20\n\n\
         [[variant]]\nname = \"defaults\"\niterations = 4\n",
    );
    for k in KEYS {
        let body = variant_of(k.name).unwrap_or_else(|| {
            panic!(
                "key {:?} has no variant in tests/keys.rs: add one that sets it",
                k.name
            )
        });
        let budget = if body.contains("epochs") || body.contains("iterations") {
            ""
        } else {
            "iterations = 4\n"
        };
        g.push_str(&format!(
            "\n[[variant]]\nname = \"{}\"\n{body}\n{budget}",
            k.name
        ));
    }
    g
}

/// A value as text, None for null; numbers compare as numbers.
#[derive(Debug)]
struct Text(Option<String>);

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x == y,
                _ => a == b,
            },
            (None, None) => true,
            _ => false,
        }
    }
}

fn null_if(s: &str, nulls: &[&str]) -> Text {
    Text((!nulls.contains(&s)).then(|| s.to_string()))
}

/// Every key's value in force for a config, as the table gives it.
fn from_config(cfg: &TrainConfig) -> BTreeMap<&'static str, Text> {
    KEYS.iter()
        .map(|k| (k.name, Text(k.in_force(cfg).map(|v| v.text()))))
        .collect()
}

fn run(args: &[&str]) -> String {
    let o = common::fake_bin("").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn every_output_gives_every_keys_value_in_force() {
    let tmp = tempfile::tempdir().unwrap();
    let grid_path = tmp.path().join("keys.toml");
    std::fs::write(&grid_path, grid()).unwrap();
    let results = tmp.path().join("results");
    let results_s = results.to_str().unwrap();
    let grid_s = grid_path.to_str().unwrap();

    // plan --json: each cell's config.
    let plan: serde_json::Value = serde_json::from_str(&run(&["plan", grid_s, "--json"])).unwrap();
    let cells = plan.as_array().unwrap();
    assert_eq!(cells.len(), KEYS.len() + 1);
    let mut planned: BTreeMap<String, (String, BTreeMap<&str, Text>)> = BTreeMap::new();
    for c in cells {
        let cfg: TrainConfig = serde_json::from_value(c["config"].clone()).unwrap();
        let variant = c["variant"].as_str().unwrap().to_string();
        planned.insert(
            c["id"].as_str().unwrap().into(),
            (variant, from_config(&cfg)),
        );
    }
    // Each variant's own key is set to a value, and differs from the defaults variant.
    let by_variant: BTreeMap<&str, &BTreeMap<&str, Text>> =
        planned.values().map(|(v, m)| (v.as_str(), m)).collect();
    for k in KEYS {
        let own = &by_variant[k.name][k.name];
        assert!(own.0.is_some(), "variant {} leaves {} null", k.name, k.name);
        assert_ne!(
            own, &by_variant["defaults"][k.name],
            "variant {} does not change {}",
            k.name, k.name
        );
    }

    let o = common::fake_sweep(&grid_path, &results, &["-q"], "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // config.json of every run.
    for (id, (variant, want)) in &planned {
        let path = results.join("keys/runs").join(id).join("config.json");
        let cfg: TrainConfig =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(&from_config(&cfg), want, "config.json of {variant}");
    }

    // The summary's run columns: grouped by every key, each group is one variant.
    let mut by = vec!["variant".to_string()];
    by.extend(KEYS.iter().map(|k| k.name.to_string()));
    let summary: serde_json::Value = serde_json::from_str(&run(&[
        "results",
        "summarize",
        "keys",
        "--results",
        results_s,
        "--format",
        "json",
        "--table",
        "summary",
        "--by",
        &by.join(","),
    ]))
    .unwrap();
    let groups = summary["groups"]
        .as_array()
        .or_else(|| summary.as_array())
        .unwrap_or_else(|| panic!("groups in {summary}"));
    assert_eq!(groups.len(), planned.len());
    for g in groups {
        let variant = g["key"]["variant"].as_str().unwrap();
        let want = by_variant[variant];
        for k in KEYS {
            let got = null_if(g["key"][k.name].as_str().unwrap(), &["-"]);
            assert_eq!(&got, &want[k.name], "summary of {variant}: {}", k.name);
        }
    }

    // results export (CSV): every row of a run has its values.
    let csv = run(&["results", "export", "keys", "--results", results_s]);
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let id_col = col("cell_id").expect("a cell_id column");
    let mut seen = 0;
    for row in rd.records() {
        let row = row.unwrap();
        let (variant, want) = &planned[&row[id_col]];
        for k in KEYS {
            let i = col(k.name).unwrap_or_else(|| panic!("export has no column {}", k.name));
            assert_eq!(
                &null_if(&row[i], &[""]),
                &want[k.name],
                "export of {variant}: {}",
                k.name
            );
        }
        seen += 1;
    }
    assert!(seen >= planned.len(), "{seen} rows");
}

/// The README's table of keys is `rnnsweep keys`' (run `rnnsweep keys` and paste it between
/// the markers when a key changes).
#[test]
fn the_readme_documents_every_key() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let (start, end) = ("<!-- keys:start -->\n", "<!-- keys:end -->");
    let from = readme.find(start).expect("README has <!-- keys:start -->") + start.len();
    let to = readme.find(end).expect("README has <!-- keys:end -->");
    let want = run(&["keys"]);
    assert_eq!(
        readme[from..to].trim(),
        want.trim(),
        "README's table of keys is out of date: paste `rnnsweep keys` between the markers"
    );
}
