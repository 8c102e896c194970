//! `rnnsweep bench`: single-thread training throughput of the six tutorial recipes' model
//! configs on real MNIST. Each recipe trains `warmup` steps untimed, then `steps` timed steps
//! (forward, backward, optimizer update, as in `fit`); the median over `repeats` timed windows
//! is reported as samples/s and GFLOP/s (`trainer::model::flops`), with the fraction of the
//! core's measured FMA peak at the instruction set in use (`fused::peak`; `RNNSWEEP_ISA` caps
//! it), beside PyTorch's figure for the same recipe: measured now by `bench/pytorch/bench.py`
//! (`--pytorch-spec`, `--pytorch FILE`: `pytorch.rs`), else a reference figure.
//! `--save FILE` keeps the rows as JSON and `--compare FILE` prints them against such a saved
//! baseline. `--report RUNS` instead times `results summarize` (`report.rs`).

mod pytorch;
mod report;

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
use crate::trainer::model::flops::train_flops_per_sample;
use crate::trainer::model::fused::{cpu_model, fma_peak, Isa, Peak, ISA_ENV};
use crate::trainer::model::{saved_bytes_per_sample, Model};
use crate::trainer::optim::Optimizer;
use pytorch::{Measured, Spec, SpecRecipe, SPEC_VERSION};
use report::report_bench_cmd;

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
    /// Instead of training: print what `bench/pytorch/bench.py` needs, as JSON.
    pub pytorch_spec: bool,
    /// PyTorch's figures measured by `bench/pytorch/bench.py`, shown instead of the reference.
    pub pytorch: Option<PathBuf>,
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
    let recipes = configs(o)?;
    // Read the files first: a bad one should not cost a benchmark run.
    let baseline = o.compare.as_deref().map(load_baseline).transpose()?;
    let measured = o.pytorch.as_deref().map(Measured::load).transpose()?;
    let torch: Option<Vec<Option<f64>>> = measured
        .as_ref()
        .map(|m| {
            recipes
                .iter()
                .map(|(id, cfg)| m.for_recipe(id, cfg))
                .collect::<anyhow::Result<_>>()
        })
        .transpose()?;
    let data = crate::data::load(o.data_dir.as_deref(), crate::data::Dataset::Mnist, o.quiet)?;
    if o.pytorch_spec {
        println!("{}", serde_json::to_string_pretty(&spec(o, recipes)?)?);
        return Ok(Outcome::Ok);
    }
    let verbose = !o.json && !o.quiet;
    let isa = Isa::for_matmul();
    let peak = fma_peak(isa);
    if verbose {
        eprintln!(
            "training throughput, {} thread(s), {} timed steps x {} windows after {} warm-up steps",
            o.threads, o.steps, o.repeats, o.warmup
        );
    }
    let mut rows = with_threads(o.threads, || {
        recipes
            .iter()
            .map(|(id, cfg)| {
                let row = measure(id, cfg, &data, o, &peak)?;
                if verbose {
                    eprintln!(
                        "  {}: {:.0} samples/s, {:.1} GFLOP/s",
                        row.recipe, row.samples_per_sec, row.gflops
                    );
                }
                Ok(row)
            })
            .collect::<anyhow::Result<Vec<BenchRow>>>()
    })??;
    // Measured figures, else the reference one for a recipe left as it is.
    for (k, row) in rows.iter_mut().enumerate() {
        row.pytorch_samples_per_sec = match &torch {
            Some(t) => t[k],
            None => reference(&row.recipe).filter(|_| !row.changed),
        };
    }
    if let Some(path) = &o.save {
        crate::fsutil::write_atomic(path, serde_json::to_string_pretty(&rows)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if o.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{}", machine_line(&peak));
        print!("{}", table(&rows, measured.as_ref()));
        if let Some(base) = &baseline {
            println!();
            print!("{}", compare_table(&rows, base));
        }
    }
    Ok(Outcome::Ok)
}

/// The recipes to measure, by id, as bench runs them (`--input`, `--hidden`, `--flush-denormal`
/// applied).
fn configs(o: &BenchOptions) -> anyhow::Result<Vec<(String, TrainConfig)>> {
    let ids: Vec<String> = if o.recipes.is_empty() {
        PRESETS.iter().map(|s| s.to_string()).collect()
    } else {
        o.recipes.clone()
    };
    ids.into_iter()
        .map(|id| {
            let mut cfg = preset(&id)?;
            if let Some(input) = o.input {
                cfg.model.input = input;
            }
            if let Some(h) = o.hidden {
                cfg.model.hidden = h;
            }
            cfg.flush_denormal |= o.flush_denormal;
            cfg.model = cfg.model.normalized();
            cfg.validate()?;
            Ok((id, cfg))
        })
        .collect()
}

/// `--pytorch-spec`: the recipes and where the (just loaded and verified) MNIST files are.
fn spec(o: &BenchOptions, recipes: Vec<(String, TrainConfig)>) -> anyhow::Result<Spec> {
    use crate::data::{locate, resolve_dir, TRAIN_IMAGES, TRAIN_LABELS};
    let dir = resolve_dir(o.data_dir.as_deref(), crate::data::Dataset::Mnist)?;
    let file = |f| locate(&dir, f).with_context(|| format!("no {} in {}", f.name, dir.display()));
    Ok(Spec {
        format_version: SPEC_VERSION,
        warmup: o.warmup,
        steps: o.steps,
        repeats: o.repeats,
        threads: o.threads,
        isa_cap: std::env::var(ISA_ENV).ok().filter(|v| !v.trim().is_empty()),
        train_images: file(&TRAIN_IMAGES)?,
        train_labels: file(&TRAIN_LABELS)?,
        recipes: recipes
            .into_iter()
            .map(|(recipe, config)| SpecRecipe { recipe, config })
            .collect(),
    })
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
    /// The recipe was changed by `--input`, `--hidden` or `--flush-denormal`.
    #[serde(default)]
    pub changed: bool,
    /// Subnormal floats were flushed to zero (`--flush-denormal`).
    #[serde(default)]
    pub flush_denormal: bool,
    /// Matmul FLOPs of one training sample (`trainer::model::flops`; 0 in older baselines).
    #[serde(default)]
    pub flops_per_sample: f64,
    /// Median GFLOP/s: `flops_per_sample` × samples/s / 10⁹.
    #[serde(default)]
    pub gflops: f64,
    /// The instruction set of the matmuls, and the core's measured FMA peak at it.
    #[serde(default)]
    pub isa: String,
    #[serde(default)]
    pub peak_gflops: f64,
    /// `gflops / peak_gflops`.
    #[serde(default)]
    pub peak_fraction: f64,
    /// The instruction set of the gate loops (AVX2 for vanilla RNNs even where AVX-512 is).
    #[serde(default)]
    pub gate_isa: String,
    /// PyTorch's samples/s for the same config: measured (`--pytorch`) or the reference figure.
    #[serde(default)]
    pub pytorch_samples_per_sec: Option<f64>,
}

impl BenchRow {
    /// This program's speed over PyTorch's.
    pub fn ratio(&self) -> Option<f64> {
        self.pytorch_samples_per_sec
            .map(|t| self.samples_per_sec / t)
    }
}

/// Benchmarks one recipe on the CPU in the current rayon pool (run it in a 1-thread pool).
fn measure(
    id: &str,
    cfg: &TrainConfig,
    data: &Mnist,
    opts: &BenchOptions,
    peak: &Peak,
) -> anyhow::Result<BenchRow> {
    let rates = {
        let _float_mode = FloatMode::enter(cfg.flush_denormal)?;
        timed_windows(cfg, data, opts)
    };
    let flops_per_sample = train_flops_per_sample(&cfg.model);
    let median = rates[rates.len() / 2];
    let gflops = flops_per_sample * median / 1e9;
    Ok(BenchRow {
        recipe: id.to_string(),
        model: cfg.model.label(),
        optimizer: format!("{} {}", cfg.optim.kind, cfg.optim.lr),
        batch: cfg.batch_size,
        steps: opts.steps,
        samples_per_sec: median,
        min_samples_per_sec: rates[0],
        max_samples_per_sec: rates[rates.len() - 1],
        saved_bytes_per_sample: saved_bytes_per_sample(&cfg.model, std::mem::size_of::<f32>()),
        changed: *cfg != preset(id)?,
        flush_denormal: cfg.flush_denormal,
        flops_per_sample,
        gflops,
        isa: peak.isa.name().to_string(),
        peak_gflops: peak.gflops,
        peak_fraction: gflops / peak.gflops,
        gate_isa: Isa::for_gates(cfg.model.cell, cfg.model.rnn_activation())
            .name()
            .to_string(),
        pytorch_samples_per_sec: None,
    })
}

/// Samples/s of each timed window (sorted): `warmup` untimed steps, then `repeats` windows of
/// `steps` training steps over consecutive batches of the training images.
fn timed_windows(cfg: &TrainConfig, data: &Mnist, opts: &BenchOptions) -> Vec<f64> {
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
    rates
}

/// PyTorch 2.15 (CPU wheel, one thread) training samples/s on real MNIST for each recipe, as
/// given in the speed issue for an AMD EPYC Zen 3: a reference when nothing was measured here
/// (`just bench-vs-pytorch` measures it on this machine).
pub const PYTORCH: [(&str, f64); 6] = [
    ("rnnimc", 14_600.0),
    ("model_a", 21_900.0),
    ("model_b", 9_400.0),
    ("model_c", 8_000.0),
    ("lstm_h20", 45_100.0),
    ("lstm_h64", 14_700.0),
];

fn reference(recipe: &str) -> Option<f64> {
    PYTORCH.iter().find(|(r, _)| *r == recipe).map(|(_, v)| *v)
}

/// The CPU (`/proc/cpuinfo`'s model name, where there is one) and the instruction set in use.
fn machine_line(peak: &Peak) -> String {
    let cpu = cpu_model();
    let cap = match std::env::var(ISA_ENV) {
        Ok(v) if !v.trim().is_empty() => format!("{ISA_ENV}={v}"),
        _ => format!("the CPU's widest; {ISA_ENV} unset"),
    };
    format!(
        "CPU: {cpu}\ninstruction set: {} ({cap})\n{}",
        peak.isa.name(),
        peak.describe()
    )
}

/// A fixed-width table of the rows, with PyTorch's figure and the ratio to it.
pub fn table(rows: &[BenchRow], measured: Option<&Measured>) -> String {
    let mut s = format!(
        "{:<10} {:<24} {:<14} {:>5} {:>10} {:>14} {:>8} {:>6} {:>9} {:>7} {:>8} {:>11}\n",
        "recipe",
        "model",
        "optimizer",
        "batch",
        "samples/s",
        "min..max",
        "GFLOP/s",
        "%peak",
        "PyTorch",
        "GFLOP/s",
        "ratio",
        "BPTT KiB/s."
    );
    for r in rows {
        let torch = r.pytorch_samples_per_sec;
        s.push_str(&format!(
            "{:<10} {:<24} {:<14} {:>5} {:>10.0} {:>14} {:>8.1} {:>5.0}% {:>9} {:>7} {:>8} {:>11.1}\n",
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
            r.gflops,
            100.0 * r.peak_fraction,
            torch.map_or("-".into(), |t| format!("{t:.0}")),
            torch.map_or("-".into(), |t| format!("{:.1}", t * r.flops_per_sample / 1e9)),
            r.ratio().map_or("-".into(), |x| format!("{x:.2}x")),
            r.saved_bytes_per_sample as f64 / 1024.0,
        ));
    }
    s.push_str("GFLOP/s: matmul FLOPs of forward + backward per sample (see `trainer/model/flops.rs`) x samples/s; %peak: of the FMA peak above\n");
    s.push_str("BPTT KiB/s.: activations the fused layers keep per sample for the backward pass\n");
    if rows.iter().any(|r| r.flush_denormal) {
        s.push_str("flush: subnormal floats flushed to zero (torch.set_flush_denormal(True))\n");
    }
    match measured {
        Some(m) => s.push_str(&format!("{}\n", m.describe())),
        None => s.push_str("PyTorch: 2.15 CPU wheel, one thread, on an AMD EPYC Zen 3 (reference figures from the speed issue, not measured here: `just bench-vs-pytorch` measures them; none for a recipe changed by --input, --hidden or --flush-denormal)\n"),
    }
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
            flops_per_sample: 1e6,
            gflops: median * 1e6 / 1e9,
            isa: "avx2".into(),
            peak_gflops: 100.0,
            peak_fraction: median * 1e6 / 1e9 / 100.0,
            gate_isa: "avx2".into(),
            pytorch_samples_per_sec: None,
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
    fn table_shows_the_ratio_to_pytorch_and_the_share_of_the_peak() {
        let mut r = row("lstm_h64", 22_050.0, 5.0);
        r.pytorch_samples_per_sec = reference("lstm_h64");
        let t = table(&[r], None);
        let line = t.lines().find(|l| l.starts_with("lstm_h64")).unwrap();
        // 22050 samples/s x 1 MFLOP = 22.1 GFLOP/s, 22 % of 100; PyTorch 14700 -> 14.7 GFLOP/s.
        for want in ["22.1", "22%", "14700", "14.7", "1.50x"] {
            assert!(line.contains(want), "{want} in {line}");
        }
        assert!(t.contains("reference figures"), "{t}");
    }
}
