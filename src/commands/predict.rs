//! `rnnsweep predict RUN`: loads a run's saved weights (a sweep cell's folder or a `train`
//! output folder) and prints the predictions for the first test images beside their labels.

use std::path::Path;

use anyhow::Context;
use dfdx::prelude::Cpu;
use serde::Serialize;

use crate::data::Mnist;
use crate::trainer::config::TrainConfig;
use crate::trainer::fit::predict;
use crate::trainer::model::Model;

#[derive(Debug, Serialize)]
pub struct Predictions {
    pub run: String,
    pub model: String,
    pub labels: Vec<u8>,
    pub predicted: Vec<usize>,
    pub correct: usize,
}

/// Predicts the first `n` test images with the weights in `run_dir`.
pub fn predict_cmd(run_dir: &Path, data: &Mnist, n: usize) -> anyhow::Result<Predictions> {
    let cfg_path = run_dir.join("config.json");
    let cfg: TrainConfig =
        serde_json::from_slice(&std::fs::read(&cfg_path).with_context(|| {
            format!(
                "cannot read {} (is {} a run folder?)",
                cfg_path.display(),
                run_dir.display()
            )
        })?)
        .with_context(|| format!("{} is not a training config", cfg_path.display()))?;
    let w_path = run_dir.join("weights.safetensors");
    let bytes = std::fs::read(&w_path).with_context(|| {
        format!("cannot read {}: only completed runs save weights (a diverged or unfinished run has none)", w_path.display())
    })?;
    let dev = Cpu::default();
    let model = Model::<f32, Cpu>::from_safetensors(&cfg.model, &bytes, &dev)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{} does not match {}", w_path.display(), cfg_path.display()))?;
    let n = n.clamp(1, data.test.len());
    let predicted = predict(&model, &dev, &data.test, n);
    let labels = data.test.labels[..n].to_vec();
    let correct = predicted
        .iter()
        .zip(&labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    Ok(Predictions {
        run: run_dir.display().to_string(),
        model: cfg.model.label(),
        labels,
        predicted,
        correct,
    })
}

impl Predictions {
    pub fn text(&self) -> String {
        let mut s = format!("{} ({})\nimage  label  predicted\n", self.run, self.model);
        for (i, (l, p)) in self.labels.iter().zip(&self.predicted).enumerate() {
            s.push_str(&format!(
                "{i:>5}  {l:>5}  {p:>9}{}\n",
                if *l as usize == *p { "" } else { "   <- wrong" }
            ));
        }
        s.push_str(&format!("{}/{} correct\n", self.correct, self.labels.len()));
        s
    }
}
