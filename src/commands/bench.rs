//! `rnnsweep bench`: single-thread training throughput (samples/s) of the six tutorial recipes'
//! model configs on real MNIST. Each recipe trains `warmup` steps untimed, then `steps` timed
//! steps (forward, backward, optimizer update, as in `fit`). The median over `repeats`
//! timed windows is reported, beside PyTorch's figure for the same recipe. `--save FILE` keeps
//! the rows as JSON and `--compare FILE` prints them against such a saved baseline.
//! `--report RUNS` instead times `results summarize` on a synthetic sweep in a temporary folder.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use dfdx::prelude::Cpu;
use serde::{Deserialize, Serialize};

use super::{with_threads, Outcome};
use crate::data::Mnist;
use crate::trainer::config::presets::{preset, PRESETS};
use crate::trainer::config::{InputMode, TrainConfig};
use crate::trainer::fit::denormal::FloatMode;
use crate::trainer::fit::train_step;
use crate::trainer::model::{saved_bytes_per_sample, Model};
use crate::trainer::optim::Optimizer;

/// Options of `rnnsweep bench`.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Recipe ids (empty: all six).
    pub recipes: Vec<String>,
    /// Untimed steps before measuring.
    pub warmup: usize,
    /// Timed steps per window (at least 1).
    pub steps: usize,
    /// Timed windows; the median is reported (at least 1).
    pub repeats: usize,
    /// Threads for matrix products (at least 1).
    pub threads: usize,
    /// Print JSON instead of tables.
    pub json: bool,
    /// Instead of training: time `results summarize` on a synthetic sweep of this many runs.
    pub report: Option<usize>,
    /// Also write the rows as JSON to this file (a baseline for `compare`).
    pub save: Option<PathBuf>,
    /// Print the rows against the baseline in this file.
    pub compare: Option<PathBuf>,
    /// Read the images this way instead of the recipes' rows (`--input`).
    pub input: Option<InputMode>,
    /// This hidden size instead of the recipes' (`--hidden`).
    pub hidden: Option<usize>,
    /// Flush subnormal floats to zero, the runs' `flush_denormal` (`--flush-denormal`).
    pub flush_denormal: bool,
    /// The MNIST folder [default: see `data::resolve_dir`].
    /// The data folder as given [default: see `data::resolve_base`]; bench trains on MNIST.
    pub data_dir: Option<PathBuf>,
    pub quiet: bool,
}

/// Runs `rnnsweep bench`: checks the options, then measures the recipes (progress on stderr,
/// the table or JSON on stdout) or, with `report`, the summary of a synthetic sweep.
pub fn bench_cmd(o: &BenchOptions) -> anyhow::Result<Outcome> {
    if o.threads == 0 || o.steps == 0 || o.repeats == 0 {
        anyhow::bail!("--threads, --steps and --repeats must be at least 1");
    }
    if let Some(runs) = o.report {
        return report_bench_cmd(runs, o.json);
    }
    for r in &o.recipes {
        preset(r)?;
    }
    // Read the baseline first: a bad file should not cost a benchmark run.
    let baseline = o.compare.as_deref().map(load_baseline).transpose()?;
    let data = crate::data::load(o.data_dir.as_deref(), crate::data::Dataset::Mnist, o.quiet)?;
    let verbose = !o.json && !o.quiet;
    if verbose {
        eprintln!(
            "training throughput, {} thread(s), {} timed steps x {} windows after {} warm-up steps",
            o.threads, o.steps, o.repeats, o.warmup
        );
    }
    let rows = with_threads(o.threads, || {
        run(o, &data, |r| {
            if verbose {
                eprintln!("  {}: {:.0} samples/s", r.recipe, r.samples_per_sec);
            }
        })
    })??;
    if let Some(path) = &o.save {
        crate::fsutil::write_atomic(path, serde_json::to_string_pretty(&rows)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if o.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows));
        if let Some(base) = &baseline {
            println!();
            print!("{}", compare_table(&rows, base));
        }
    }
    Ok(Outcome::Ok)
}

/// `bench --report RUNS`: [`report_bench`] in a temporary folder (removed afterwards), printed.
fn report_bench_cmd(runs: usize, json: bool) -> anyhow::Result<Outcome> {
    if runs == 0 {
        anyhow::bail!("--report needs at least 1 run");
    }
    let tmp = std::env::temp_dir().join(format!("rnnsweep-report-bench-{}", std::process::id()));
    let r = report_bench(&tmp, runs, 30);
    let _ = std::fs::remove_dir_all(&tmp);
    let r = r?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "results summarize on {} runs x {} epochs ({} metric rows): load {:.2}s, summarize {:.2}s, render {:.3}s, total {:.2}s (writing the synthetic sweep took {:.1}s)",
            r.runs, r.epochs, r.metric_rows, r.load_seconds, r.summarize_seconds, r.render_seconds,
            r.load_seconds + r.summarize_seconds + r.render_seconds, r.write_seconds
        );
    }
    Ok(Outcome::Ok)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchRow {
    pub recipe: String,
    pub model: String,
    pub optimizer: String,
    pub batch: usize,
    pub steps: usize,
    /// Median samples/s over the timed windows.
    pub samples_per_sec: f64,
    pub min_samples_per_sec: f64,
    pub max_samples_per_sec: f64,
    /// Bytes the fused layers keep per sample for back-propagation (0 in older baselines).
    #[serde(default)]
    pub saved_bytes_per_sample: usize,
    /// The recipe was changed by `--input`, `--hidden` or `--flush-denormal` (no PyTorch
    /// reference then).
    #[serde(default)]
    pub changed: bool,
    /// Subnormal floats were flushed to zero (`--flush-denormal`).
    #[serde(default)]
    pub flush_denormal: bool,
}

/// Benchmarks each recipe on the CPU in the current rayon pool (run it in a 1-thread pool).
pub fn run(
    opts: &BenchOptions,
    data: &Mnist,
    mut report: impl FnMut(&BenchRow),
) -> anyhow::Result<Vec<BenchRow>> {
    let ids: Vec<String> = if opts.recipes.is_empty() {
        PRESETS.iter().map(|s| s.to_string()).collect()
    } else {
        opts.recipes.clone()
    };
    let mut rows = Vec::new();
    for id in ids {
        let mut cfg = preset(&id)?;
        if let Some(input) = opts.input {
            cfg.model.input = input;
        }
        if let Some(h) = opts.hidden {
            cfg.model.hidden = h;
        }
        cfg.flush_denormal = opts.flush_denormal;
        cfg.model = cfg.model.normalized();
        cfg.validate()?;
        let mut row = {
            let _float_mode = FloatMode::enter(cfg.flush_denormal)?;
            bench_one(&id, &cfg, data, opts)
        };
        row.changed = opts.input.is_some_and(|i| !i.is_rows())
            || opts.hidden.is_some()
            || opts.flush_denormal;
        report(&row);
        rows.push(row);
    }
    Ok(rows)
}

fn bench_one(id: &str, cfg: &TrainConfig, data: &Mnist, opts: &BenchOptions) -> BenchRow {
    let dev = Cpu::default();
    let mut model = Model::<f32, Cpu>::init(&cfg.model, cfg.seed, &dev);
    let mut opt = Optimizer::<f32, Cpu>::new(&cfg.optim, model.params.len());
    let b = cfg.batch_size;
    let n_batches = data.train.len() / b;
    let mut next = 0usize;
    let mut step = |model: &mut Model<f32, Cpu>, opt: &mut Optimizer<f32, Cpu>| {
        let start = (next % n_batches) * b;
        let idx: Vec<usize> = (start..start + b).collect();
        next += 1;
        train_step(model, opt, &dev, &data.train, &idx);
    };
    for _ in 0..opts.warmup {
        step(&mut model, &mut opt);
    }
    let mut rates: Vec<f64> = (0..opts.repeats.max(1))
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..opts.steps.max(1) {
                step(&mut model, &mut opt);
            }
            (opts.steps.max(1) * b) as f64 / t0.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(|a, b| a.total_cmp(b));
    BenchRow {
        recipe: id.to_string(),
        model: cfg.model.label(),
        optimizer: format!("{} {}", cfg.optim.kind, cfg.optim.lr),
        batch: b,
        steps: opts.steps,
        samples_per_sec: rates[rates.len() / 2],
        min_samples_per_sec: rates[0],
        max_samples_per_sec: rates[rates.len() - 1],
        saved_bytes_per_sample: saved_bytes_per_sample(&cfg.model, std::mem::size_of::<f32>()),
        changed: false,
        flush_denormal: cfg.flush_denormal,
    }
}

/// PyTorch 2.15 (CPU wheel, one thread) training samples/s on real MNIST for each recipe, as
/// measured on this machine class and given in the speed issue. A reference, not a measurement
/// of this program.
pub const PYTORCH: [(&str, f64); 6] = [
    ("rnnimc", 14_600.0),
    ("model_a", 21_900.0),
    ("model_b", 9_400.0),
    ("model_c", 8_000.0),
    ("lstm_h20", 45_100.0),
    ("lstm_h64", 14_700.0),
];

fn pytorch(recipe: &str) -> Option<f64> {
    PYTORCH.iter().find(|(r, _)| *r == recipe).map(|(_, v)| *v)
}

/// A fixed-width table of the rows, with PyTorch's figure and the ratio to it.
pub fn table(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<10} {:<22} {:<14} {:>5} {:>10} {:>14} {:>11} {:>8} {:>7}\n",
        "recipe",
        "model",
        "optimizer",
        "batch",
        "samples/s",
        "min..max",
        "BPTT KiB/s.",
        "PyTorch",
        "ratio"
    );
    for r in rows {
        let torch = pytorch(&r.recipe).filter(|_| !r.changed);
        s.push_str(&format!(
            "{:<10} {:<22} {:<14} {:>5} {:>10.0} {:>14} {:>11.1} {:>8} {:>7}\n",
            r.recipe,
            if r.flush_denormal {
                format!("{} flush", r.model)
            } else {
                r.model.clone()
            },
            r.optimizer,
            r.batch,
            r.samples_per_sec,
            format!("{:.0}..{:.0}", r.min_samples_per_sec, r.max_samples_per_sec),
            r.saved_bytes_per_sample as f64 / 1024.0,
            torch.map_or("-".into(), |t| format!("{t:.0}")),
            torch.map_or("-".into(), |t| format!("{:.2}x", r.samples_per_sec / t)),
        ));
    }
    s.push_str("BPTT KiB/s.: activations the fused layers keep per sample for the backward pass\n");
    if rows.iter().any(|r| r.flush_denormal) {
        s.push_str("flush: subnormal floats flushed to zero (torch.set_flush_denormal(True))\n");
    }
    s.push_str("PyTorch: 2.15 CPU wheel, one thread, same recipes (reference figures, not measured here; none for a recipe changed by --input, --hidden or --flush-denormal)\n");
    s
}

/// Reads rows saved by `bench --save` (or printed by `bench --json`).
pub fn load_baseline(path: &std::path::Path) -> anyhow::Result<Vec<BenchRow>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read baseline {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a bench baseline (write one with `rnnsweep bench --save FILE`)",
            path.display()
        )
    })
}

/// Current rows against a baseline: the change of the median, and a verdict. Runs whose
/// min..max ranges overlap are "within noise"; otherwise "faster" or "SLOWER".
pub fn compare_table(now: &[BenchRow], base: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<10} {:>14} {:>10} {:>8}  {}\n",
        "recipe", "baseline", "now", "change", "verdict"
    );
    for r in now {
        let Some(b) = base.iter().find(|b| b.recipe == r.recipe) else {
            s.push_str(&format!(
                "{:<10} {:>14} {:>10.0} {:>8}  not in the baseline\n",
                r.recipe, "-", r.samples_per_sec, "-"
            ));
            continue;
        };
        let change = r.samples_per_sec / b.samples_per_sec - 1.0;
        let verdict = if r.min_samples_per_sec > b.max_samples_per_sec {
            "faster"
        } else if r.max_samples_per_sec < b.min_samples_per_sec {
            "SLOWER"
        } else {
            "within noise"
        };
        s.push_str(&format!(
            "{:<10} {:>14.0} {:>10.0} {:>+7.1}%  {verdict}\n",
            r.recipe,
            b.samples_per_sec,
            r.samples_per_sec,
            100.0 * change
        ));
    }
    s
}

/// Timings of `results summarize` on a synthetic sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportBench {
    pub runs: usize,
    pub epochs: usize,
    pub metric_rows: usize,
    pub write_seconds: f64,
    pub load_seconds: f64,
    pub summarize_seconds: f64,
    pub render_seconds: f64,
}

/// Writes a sweep of `runs` completed cells × `epochs` evaluations (train + test rows each)
/// under `dir` with the store's own writers, then times loading, summarizing (100 variants ×
/// runs/100 seeds) and rendering the terminal table.
pub fn report_bench(
    dir: &std::path::Path,
    runs: usize,
    epochs: usize,
) -> anyhow::Result<ReportBench> {
    use crate::plan::{cell_id, Cell, Plan};
    use crate::report::{export, load, summarize};
    use crate::store::{CellResult, RunStore};
    use crate::trainer::record::*;
    let t0 = Instant::now();
    let variants = 100.min(runs.max(1));
    let mut cells = Vec::with_capacity(runs);
    for i in 0..runs {
        let mut cfg = preset("lstm_h64")?;
        cfg.model.hidden = 8 + i % variants;
        cfg.seed = (i / variants) as u64;
        cfg.budget = crate::trainer::config::Budget::Epochs(epochs as u32);
        cfg.model = cfg.model.normalized();
        let coords = [("seed".to_string(), cfg.seed.to_string())]
            .into_iter()
            .collect();
        cells.push(Cell {
            index: i,
            id: cell_id(&cfg),
            variant: format!("h{}", cfg.model.hidden),
            coords,
            config: cfg,
        });
    }
    let plan = Plan {
        name: "bench".into(),
        description: String::new(),
        axes: vec![],
        cells,
        duplicate_draws: 0,
        prune: None,
    };
    let store = RunStore::open(dir, "bench");
    store.init("# synthetic\n", &plan)?;
    for (i, cell) in plan.cells.iter().enumerate() {
        std::fs::create_dir_all(store.layout.run_dir(&cell.id))?;
        let acc =
            |e: usize| 0.5 + 0.45 * (e as f64 / epochs as f64) + 0.001 * ((i * 7919 % 13) as f64);
        let metrics: Vec<MetricRow> = (1..=epochs)
            .flat_map(|e| {
                [MetricSplit::Train, MetricSplit::Test].map(|split| MetricRow {
                    epoch: e as u64,
                    iteration: (e * 938) as u64,
                    split,
                    loss: 1.0 - acc(e),
                    acc: acc(e),
                    samples: 60_000,
                    seconds: e as f64 * 10.0,
                    samples_per_sec: (split == MetricSplit::Train).then_some(6000.0),
                    grad_norm: (split == MetricSplit::Train).then_some(1.0),
                    grad_norm_max: (split == MetricSplit::Train).then_some(2.0),
                    lr: Some(0.1),
                })
            })
            .collect();
        store.write_metrics(&cell.id, &metrics)?;
        let record = RunRecord {
            format_version: FORMAT_VERSION,
            config: cell.config.clone(),
            status: RunStatus::Completed,
            device: "cpu".into(),
            parameters: crate::trainer::model::layout::param_count(&cell.config.model),
            iterations: (epochs * 938) as u64,
            train_seconds: 10.0 * epochs as f64,
            eval_seconds: 1.0,
            samples_per_sec: 6000.0,
            final_test_acc: Some(acc(epochs)),
            final_test_loss: Some(1.0 - acc(epochs)),
            metrics,
            epochs: (1..=epochs as u64)
                .map(|e| EpochStats {
                    epoch: e,
                    iterations: 938,
                    samples: 60_000,
                    seconds: 10.0,
                    samples_per_sec: 6000.0,
                })
                .collect(),
            collapsed: false,
            top_class: None,
            origin: None,
        };
        let result = CellResult {
            format_version: FORMAT_VERSION,
            cell_id: cell.id.clone(),
            index: i,
            variant: cell.variant.clone(),
            coords: cell.coords.clone(),
            record,
        };
        std::fs::write(
            store.layout.result_json(&cell.id),
            serde_json::to_vec(&result)?,
        )?;
    }
    let write_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let loaded = load::load(&[store.layout.root().to_owned()])?;
    let load_seconds = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let s = summarize::summarize(
        &loaded,
        &summarize::default_by(&loaded),
        summarize::Metric::TestAcc,
    )?;
    let summarize_seconds = t2.elapsed().as_secs_f64();
    let t3 = Instant::now();
    let bytes = export::exporter_for(export::Format::Table).render(&s, export::Tables::Both)?;
    let render_seconds = t3.elapsed().as_secs_f64();
    anyhow::ensure!(
        s.counts.completed == runs && !bytes.is_empty(),
        "the synthetic sweep did not load completely"
    );
    Ok(ReportBench {
        runs,
        epochs,
        metric_rows: runs * epochs * 2,
        write_seconds,
        load_seconds,
        summarize_seconds,
        render_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(recipe: &str, median: f64, spread: f64) -> BenchRow {
        BenchRow {
            recipe: recipe.into(),
            model: "m".into(),
            optimizer: "sgd 0.1".into(),
            batch: 64,
            steps: 100,
            samples_per_sec: median,
            min_samples_per_sec: median - spread,
            max_samples_per_sec: median + spread,
            saved_bytes_per_sample: 0,
            changed: false,
            flush_denormal: false,
        }
    }

    #[test]
    fn comparison_names_regressions_and_noise() {
        let base = [
            row("a", 1000.0, 10.0),
            row("b", 1000.0, 10.0),
            row("c", 1000.0, 10.0),
        ];
        let now = [
            row("a", 1500.0, 10.0),
            row("b", 800.0, 10.0),
            row("c", 1005.0, 10.0),
            row("d", 1.0, 0.0),
        ];
        let t = compare_table(&now, &base);
        let line = |r: &str| t.lines().find(|l| l.starts_with(r)).unwrap().to_string();
        assert!(
            line("a").contains("+50.0%") && line("a").ends_with("faster"),
            "{t}"
        );
        assert!(
            line("b").contains("-20.0%") && line("b").ends_with("SLOWER"),
            "{t}"
        );
        assert!(line("c").ends_with("within noise"), "{t}");
        assert!(line("d").ends_with("not in the baseline"), "{t}");
    }

    #[test]
    fn table_shows_the_ratio_to_pytorch() {
        let t = table(&[row("lstm_h64", 22_050.0, 5.0)]);
        assert!(t.contains("14700") && t.contains("1.50x"), "{t}");
    }
}
