//! `rnnsweep predict RUN`: loads a run's saved weights (a sweep cell's folder or a `train`
//! output folder) and prints the predictions for the first test images of the run's data set
//! beside their labels (with Fashion-MNIST's class names).

use std::path::{Path, PathBuf};

use anyhow::Context;
use dfdx::prelude::Cpu;
use serde::Serialize;

use super::Outcome;
use crate::data::{Dataset, Mnist};
use crate::store::RunDir;
use crate::trainer::config::TrainConfig;
use crate::trainer::fit::predict;
use crate::trainer::model::Model;

/// Options of `rnnsweep predict`.
#[derive(Clone, Debug)]
pub struct PredictOptions {
    /// A run folder: a sweep cell's or a `train` output folder.
    pub run: PathBuf,
    /// How many test images, from the first (at least 1).
    pub n: usize,
    /// Print JSON instead of the text table.
    pub json: bool,
    /// The data folder as given [default: see `data::resolve_base`]; the run's data set is
    /// read from its folder there.
    pub data_dir: Option<PathBuf>,
    pub quiet: bool,
}

/// Runs `rnnsweep predict`: checks `n`, loads the run before the data (a wrong folder fails
/// fast), predicts and prints the table or JSON on stdout.
pub fn predict_cmd(o: &PredictOptions) -> anyhow::Result<Outcome> {
    if o.n == 0 {
        anyhow::bail!("--n must be at least 1");
    }
    let run = load_run(&o.run)?;
    let data = crate::data::load(o.data_dir.as_deref(), run.config.dataset, o.quiet)?;
    let p = predict_first(&run, &data, o.n);
    if o.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", p.text());
    }
    Ok(Outcome::Ok)
}

#[derive(Debug, Serialize)]
pub struct Predictions {
    pub run: String,
    pub model: String,
    pub dataset: Dataset,
    pub labels: Vec<u8>,
    pub predicted: Vec<usize>,
    pub correct: usize,
}

/// A run folder's config and weights, read and checked before any data is loaded.
pub struct SavedRun {
    pub dir: std::path::PathBuf,
    pub config: TrainConfig,
    pub model: Model<f32, Cpu>,
}

/// Reads a run folder's `config.json` (a sweep cell's folder or a `train` output folder).
pub fn read_run_config(run_dir: &Path) -> anyhow::Result<TrainConfig> {
    let cfg_path = RunDir::at(run_dir).config_json();
    serde_json::from_slice(&std::fs::read(&cfg_path).with_context(|| {
        format!(
            "cannot read {} (is {} a run folder?)",
            cfg_path.display(),
            run_dir.display()
        )
    })?)
    .with_context(|| format!("{} is not a training config", cfg_path.display()))
}

/// Reads `run_dir/config.json` and `run_dir/weights.safetensors` and checks they match.
pub fn load_run(run_dir: &Path) -> anyhow::Result<SavedRun> {
    let run = RunDir::at(run_dir);
    let cfg_path = run.config_json();
    let cfg = read_run_config(run_dir)?;
    let w_path = run.weights();
    let bytes = std::fs::read(&w_path).with_context(|| {
        format!("cannot read {}: only completed runs save weights (a diverged or unfinished run has none)", w_path.display())
    })?;
    let model = Model::<f32, Cpu>::from_safetensors(&cfg.model, &bytes, &Cpu::default())
        .with_context(|| format!("{} does not match {}", w_path.display(), cfg_path.display()))?;
    Ok(SavedRun {
        dir: run_dir.to_owned(),
        config: cfg,
        model,
    })
}

/// Predicts the first `n` test images with a saved run.
pub fn predict_first(run: &SavedRun, data: &Mnist, n: usize) -> Predictions {
    let n = n.clamp(1, data.test.len());
    let predicted = predict(&run.model, &Cpu::default(), &data.test, n);
    let labels = data.test.labels[..n].to_vec();
    let correct = predicted
        .iter()
        .zip(&labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    Predictions {
        run: run.dir.display().to_string(),
        model: run.config.model.label(),
        dataset: run.config.dataset,
        labels,
        predicted,
        correct,
    }
}

impl Predictions {
    pub fn text(&self) -> String {
        let d = self.dataset;
        let on = match d {
            Dataset::Mnist => String::new(),
            d => format!(", {}", d.title()),
        };
        let mut s = format!(
            "{} ({}{on})\nimage  label  predicted\n",
            self.run, self.model
        );
        for (i, (l, p)) in self.labels.iter().zip(&self.predicted).enumerate() {
            // Fashion-MNIST's labels are clothes: name them.
            let names = match d {
                Dataset::Mnist => String::new(),
                d => format!("  {} -> {}", d.class_name(*l), d.class_name(*p as u8)),
            };
            s.push_str(&format!(
                "{i:>5}  {l:>5}  {p:>9}{names}{}\n",
                if *l as usize == *p { "" } else { "   <- wrong" }
            ));
        }
        s.push_str(&format!("{}/{} correct\n", self.correct, self.labels.len()));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fashion_predictions_name_the_classes_and_mnist_ones_stay_digits() {
        let mut p = Predictions {
            run: "runs/x".into(),
            model: "lstm h8".into(),
            dataset: Dataset::FashionMnist,
            labels: vec![9, 2],
            predicted: vec![9, 7],
            correct: 1,
        };
        assert_eq!(
            p.text(),
            "runs/x (lstm h8, Fashion-MNIST)\nimage  label  predicted\n    0      9          9  \
             Ankle boot -> Ankle boot\n    1      2          7  Pullover -> Sneaker   <- wrong\n1/2 correct\n"
        );
        p.dataset = Dataset::Mnist;
        assert_eq!(
            p.text(),
            "runs/x (lstm h8)\nimage  label  predicted\n    0      9          9\n    1      2          7   <- wrong\n1/2 correct\n"
        );
    }
}
