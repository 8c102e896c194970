//! This machine's measured training speed, for `plan`'s time estimates. A probe trains a cell's
//! model (its cell, sizes, input, batch, optimizer and float mode) for a few steps on synthetic
//! images on the calling thread, on the CPU, and times training and evaluation. Rates are kept
//! per kind of cell in the user's cache folder (`speed.json`) for this machine and this binary,
//! so each kind is probed once; another CPU, another `RNNSWEEP_ISA` or a rebuilt program starts
//! afresh.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dfdx::prelude::Cpu;
use serde::{Deserialize, Serialize};

use crate::data::{Split, CLASSES, PIXELS};
use crate::trainer::config::TrainConfig;
use crate::trainer::fit::denormal::FloatMode;
use crate::trainer::fit::{evaluate, train_step};
use crate::trainer::model::fused::{cpu_model, Isa};
use crate::trainer::model::Model;
use crate::trainer::optim::Optimizer;

/// Samples per second of one kind of cell on one core.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub train: f64,
    pub eval: f64,
}

/// What a cell's speed depends on, as text: the model's label (cell, activation, sizes, input),
/// batch, optimizer and float mode. Two configs with the same key train at the same speed
/// (learning rate, seed, budget and the like do not matter).
pub fn kind_key(cfg: &TrainConfig) -> String {
    format!(
        "{} b{} {}{}{}",
        cfg.model.label(),
        cfg.batch_size,
        cfg.optim.kind,
        if cfg.optim.amsgrad { " amsgrad" } else { "" },
        if cfg.flush_denormal { " flush" } else { "" },
    )
}

/// How long a probe trains (after two untimed steps), and how many test images it evaluates.
const TRAIN_TIME: Duration = Duration::from_millis(250);
const EVAL_IMAGES: usize = 1000;

/// Measures `cfg`'s kind of cell on `images` (at least [`EVAL_IMAGES`] and a batch; see
/// [`probe_images`]): training steps for about [`TRAIN_TIME`] (at least 3), then the second of
/// two evaluations of [`EVAL_IMAGES`] images. Run it in a one-thread rayon pool, as cells run.
pub fn probe(cfg: &TrainConfig, images: &Split) -> anyhow::Result<Rate> {
    let _mode = FloatMode::enter(cfg.flush_denormal)?;
    let dev = Cpu::default();
    let b = cfg.batch_size;
    let own;
    let split = if images.len() >= b.max(EVAL_IMAGES) {
        images
    } else {
        own = synthetic(b.max(EVAL_IMAGES));
        &own
    };
    let mut model = Model::<f32, Cpu>::init(&cfg.model, cfg.seed, &dev);
    let mut opt = Optimizer::<f32, Cpu>::new(&cfg.optim, model.params.len());
    let batches = split.len() / b;
    let mut step = |k: usize| {
        let idx: Vec<usize> = ((k % batches) * b..(k % batches + 1) * b).collect();
        train_step(&mut model, &mut opt, &dev, split, &idx);
    };
    step(0);
    step(1);
    let t = Instant::now();
    let mut steps = 0;
    while steps < 3 || t.elapsed() < TRAIN_TIME {
        step(steps);
        steps += 1;
    }
    let train = (steps * b) as f64 / t.elapsed().as_secs_f64();
    // The first evaluation touches new buffers (page faults); a run's later ones reuse them.
    evaluate(&model, &dev, split, EVAL_IMAGES);
    let t = Instant::now();
    evaluate(&model, &dev, split, EVAL_IMAGES);
    let eval = EVAL_IMAGES as f64 / t.elapsed().as_secs_f64();
    Ok(Rate { train, eval })
}

/// The images probes train on: the first of MNIST's training images where they are on disk
/// (`data_dir` as `--data-dir` takes it; nothing is downloaded), else synthetic ones. Real images
/// matter: model_c (a 2-layer tanh RNN) probed 25 % slower on the synthetic pixels than on
/// MNIST's (13.6k against 18.2k samples/s; why was not investigated).
pub fn probe_images(data_dir: Option<&std::path::Path>) -> Split {
    crate::data::resolve_dir(data_dir, crate::data::Dataset::Mnist)
        .ok()
        .and_then(|dir| crate::data::Mnist::load(&dir).ok())
        .map(|m| m.train.truncated(PROBE_IMAGES))
        .unwrap_or_else(|| synthetic(PROBE_IMAGES))
}

const PROBE_IMAGES: usize = 2 * EVAL_IMAGES;

/// `n` images of pseudo-random pixels (about a fifth lit, like MNIST's strokes) and labels.
fn synthetic(n: usize) -> Split {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let images = (0..n * PIXELS)
        .map(|_| {
            let r = next();
            if r % 5 == 0 {
                (r >> 8) as u8
            } else {
                0
            }
        })
        .collect();
    let labels = (0..n).map(|_| (next() % CLASSES as u64) as u8).collect();
    Split { images, labels }
}

/// The rates measured on this machine by this binary, read from and saved to the cache file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Speeds {
    /// The machine and binary the rates belong to ([`machine_id`]).
    machine: String,
    rates: BTreeMap<String, Rate>,
    #[serde(skip)]
    path: Option<PathBuf>,
    #[serde(skip)]
    changed: bool,
}

impl Speeds {
    /// The cached rates (none when the file is missing, unreadable or of another machine or
    /// binary).
    pub fn load() -> Speeds {
        let mut s = Speeds::fresh();
        let cached = s
            .path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<Speeds>(&b).ok())
            .filter(|c| c.machine == s.machine);
        s.rates = cached.map(|c| c.rates).unwrap_or_default();
        s
    }

    /// No rates yet (what is measured replaces the cache file when saved).
    pub fn fresh() -> Speeds {
        Speeds {
            machine: machine_id(),
            rates: BTreeMap::new(),
            path: crate::fsutil::user_cache_root().map(|d| d.join("speed.json")),
            changed: false,
        }
    }

    /// The kinds of `configs` not measured yet (one config each).
    pub fn missing<'a>(
        &self,
        configs: impl Iterator<Item = &'a TrainConfig>,
    ) -> Vec<&'a TrainConfig> {
        let mut seen = std::collections::BTreeSet::new();
        configs
            .filter(|c| !self.rates.contains_key(&kind_key(c)) && seen.insert(kind_key(c)))
            .collect()
    }

    /// Probes `cfg`'s kind on `images` and keeps the rate.
    pub fn measure(&mut self, cfg: &TrainConfig, images: &Split) -> anyhow::Result<Rate> {
        let rate = probe(cfg, images)?;
        self.rates.insert(kind_key(cfg), rate);
        self.changed = true;
        Ok(rate)
    }

    pub fn get(&self, cfg: &TrainConfig) -> Option<Rate> {
        self.rates.get(&kind_key(cfg)).copied()
    }

    /// Writes new rates to the cache file (best effort: estimates are not worth an error).
    pub fn save(&self) {
        if let (true, Some(path)) = (self.changed, &self.path) {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Ok(text) = serde_json::to_string_pretty(self) {
                let _ = crate::fsutil::write_atomic(path, text.as_bytes());
            }
        }
    }
}

/// This machine and binary: the CPU's model name, the instruction set in use and the
/// executable's size and modification time.
fn machine_id() -> String {
    let cpu = cpu_model();
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}-{t}", m.len())
        })
        .unwrap_or_default();
    format!("{cpu}; {}; {exe}", Isa::for_matmul().name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::presets::preset;

    #[test]
    fn kinds_ignore_what_does_not_change_the_speed() {
        let a = preset("lstm_h64").unwrap();
        let mut b = a.clone();
        b.optim.lr = 0.5;
        b.seed = 3;
        assert_eq!(kind_key(&a), kind_key(&b));
        b.model.hidden = 65;
        assert_ne!(kind_key(&a), kind_key(&b));
        let mut c = a.clone();
        c.flush_denormal = true;
        assert_ne!(kind_key(&a), kind_key(&c));
    }

    #[test]
    fn a_probe_measures_training_and_evaluation() {
        let mut cfg = preset("lstm_h20").unwrap();
        cfg.batch_size = 16;
        let r = probe(&cfg, &synthetic(10)).unwrap();
        assert!(r.train > 0.0 && r.eval > 0.0, "{r:?}");
    }
}
