//! `rnnsweep bench`: single-thread training throughput (samples/s) of the six tutorial recipes'
//! model configs on real MNIST. Each recipe trains `warmup` steps untimed, then `steps` timed
//! steps (forward, backward, optimizer update, as in `fit`). The median over `repeats`
//! timed windows is reported.

use std::time::Instant;

use dfdx::prelude::Cpu;
use serde::{Deserialize, Serialize};

use crate::data::Mnist;
use crate::trainer::config::{preset, TrainConfig, PRESETS};
use crate::trainer::fit::train_step;
use crate::trainer::model::Model;
use crate::trainer::optim::Optimizer;

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub recipes: Vec<String>,
    pub warmup: usize,
    pub steps: usize,
    pub repeats: usize,
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
        let cfg = preset(&id)?;
        let row = bench_one(&id, &cfg, data, opts);
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
    }
}

/// A fixed-width table of the rows.
pub fn table(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<10} {:<18} {:<14} {:>5} {:>12} {:>18}\n",
        "recipe", "model", "optimizer", "batch", "samples/s", "min..max"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<10} {:<18} {:<14} {:>5} {:>12.0} {:>18}\n",
            r.recipe,
            r.model,
            r.optimizer,
            r.batch,
            r.samples_per_sec,
            format!("{:.0}..{:.0}", r.min_samples_per_sec, r.max_samples_per_sec)
        ));
    }
    s
}
