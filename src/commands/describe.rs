//! `rnnsweep describe`: the network as PyTorch would print it, with every parameter tensor's
//! name, shape and size, as text or JSON, and the data set it reads (`--dataset`; the shapes
//! are the same for every data set). The model is a recipe's (or the default) with the model
//! flags applied, as `train` builds it, or a finished run's own (`--run DIR`, from its
//! `config.json`). `--svg FILE` / `--png FILE` also draw it as a diagram (`report::network`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::predict::read_run_config;
use super::Outcome;
use crate::fsutil::write_atomic;
use crate::report::network::thousands;
use crate::report::network::Diagram;
use crate::trainer::config::keys::Given;
use crate::trainer::config::presets::preset_or_default;
use crate::trainer::config::{Dataset, InitScheme, ModelConfig, TrainConfig};
use crate::trainer::model::layout::{param_count, param_layout, ParamInfo};
use crate::trainer::model::torch_repr;

/// Options of `rnnsweep describe`.
#[derive(Clone, Debug)]
pub struct DescribeOptions {
    /// Describe this tutorial recipe's model instead of the default one.
    pub preset: Option<String>,
    /// The model and data set flags, written onto the recipe's or default config.
    pub settings: Given,
    /// Describe this finished run's model (its folder's `config.json`) instead; no preset or
    /// model flags then.
    pub run: Option<PathBuf>,
    /// Also draw the network as an SVG file here.
    pub svg: Option<PathBuf>,
    /// Also draw the network as a PNG file here.
    pub png: Option<PathBuf>,
    /// Print JSON instead of text.
    pub json: bool,
}

/// The config `describe` shows: the run's, or the recipe's (or default) with the flags.
fn config_of(o: &DescribeOptions) -> anyhow::Result<TrainConfig> {
    match &o.run {
        Some(dir) => {
            if o.preset.is_some() || !o.settings.0.is_empty() {
                anyhow::bail!(
                    "--run describes the model {} was trained with; leave out --preset and the \
                     model flags",
                    dir.display()
                );
            }
            read_run_config(dir)
        }
        None => Ok(o
            .settings
            .apply_to(preset_or_default(o.preset.as_deref())?)
            .context("check the model flags (rnnsweep describe --help)")?),
    }
}

/// Writes `bytes` to `path`, saying which picture could not be written where.
fn write_picture(path: &Path, what: &str, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, bytes)
        .with_context(|| format!("cannot write the network {what} to {}", path.display()))
}

/// Runs `rnnsweep describe`: builds and validates the model config, prints its description and
/// writes the pictures asked for (their paths on stderr).
pub fn describe_cmd(o: &DescribeOptions) -> anyhow::Result<Outcome> {
    let cfg = config_of(o)?;
    let d = describe(&cfg.model, cfg.dataset);
    if o.svg.is_some() || o.png.is_some() {
        let diagram = Diagram::of(&cfg.model, cfg.dataset);
        if let Some(path) = &o.svg {
            write_picture(path, "SVG", diagram.svg()?.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        if let Some(path) = &o.png {
            write_picture(path, "PNG", &diagram.png()?)?;
            eprintln!("wrote {}", path.display());
        }
    }
    if o.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", d.text());
    }
    Ok(Outcome::Ok)
}

#[derive(Serialize)]
pub struct Description {
    pub dataset: Dataset,
    pub model: ModelConfig,
    pub repr: String,
    pub tensors: Vec<ParamInfo>,
    pub total_parameters: usize,
}

pub fn describe(cfg: &ModelConfig, dataset: Dataset) -> Description {
    let cfg = cfg.clone().normalized();
    Description {
        dataset,
        repr: torch_repr(&cfg),
        tensors: param_layout(&cfg),
        total_parameters: param_count(&cfg),
        model: cfg,
    }
}

/// How the model starts, when it is not PyTorch's default: e.g. `orthogonal W_hh blocks,
/// forget-gate bias 1 (in bias_ih)`.
fn init_note(m: &ModelConfig) -> Option<String> {
    let mut parts = Vec::new();
    match m.init {
        InitScheme::Pytorch => {}
        InitScheme::Orthogonal => parts.push("orthogonal W_hh gate blocks".to_string()),
        InitScheme::Identity => parts.push(format!(
            "identity (IRNN): W_hh = {}·I, recurrent biases 0",
            m.init_scale.unwrap_or(1.0)
        )),
    }
    if let Some(b) = m.forget_bias {
        parts.push(format!(
            "forget-gate bias {b} (in bias_ih; bias_hh's slice 0)"
        ));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

impl Description {
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.repr);
        if let Some(init) = init_note(&self.model) {
            out.push_str(&format!("init: {init}\n"));
        }
        out.push_str(&format!(
            "data: {} ({}; 28x28 images, 10 classes: {})\n",
            self.dataset.title(),
            self.dataset,
            self.dataset.classes_text()
        ));
        out.push('\n');
        let w = self
            .tensors
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(4)
            .max(9);
        out.push_str(&format!(
            "{:<w$}  {:<12}  {:>10}\n",
            "parameter", "shape", "count"
        ));
        for t in &self.tensors {
            let shape = format!("{:?}", t.shape);
            out.push_str(&format!(
                "{:<w$}  {:<12}  {:>10}\n",
                t.name,
                shape,
                thousands(t.numel())
            ));
        }
        out.push_str(&format!(
            "total: {} parameter tensors, {} parameters\n",
            self.tensors.len(),
            thousands(self.total_parameters)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::{Activation, LayerKind};

    #[test]
    fn describes_model_b_like_pytorch() {
        let d = describe(
            &ModelConfig {
                cell: LayerKind::Rnn,
                hidden: 100,
                layers: 2,
                activation: Some(Activation::Relu),
                ..ModelConfig::default()
            },
            Dataset::Mnist,
        );
        let t = d.text();
        assert!(
            t.contains("RNN(28, 100, num_layers=2, nonlinearity='relu', batch_first=True)"),
            "{t}"
        );
        assert!(
            t.contains("rnn.weight_hh_l1  [100, 100]        10,000\n"),
            "{t}"
        );
        assert!(
            t.ends_with("total: 10 parameter tensors, 34,210 parameters\n"),
            "{t}"
        );
        assert!(!t.contains("init:"), "PyTorch's init needs no note: {t}");
        assert!(
            t.contains("data: MNIST (mnist; 28x28 images, 10 classes: the digits 0-9)\n"),
            "{t}"
        );
        // Dropout in PyTorch's repr; the init schemes in a note under it.
        let d = describe(
            &ModelConfig {
                cell: LayerKind::Lstm,
                hidden: 64,
                layers: 2,
                dropout: Some(0.3),
                init: crate::trainer::config::InitScheme::Orthogonal,
                forget_bias: Some(1.0),
                ..ModelConfig::default()
            },
            Dataset::FashionMnist,
        );
        let t = d.text();
        assert!(
            t.contains("LSTM(28, 64, num_layers=2, batch_first=True, dropout=0.3)\n"),
            "{t}"
        );
        assert!(
            t.contains("init: orthogonal W_hh gate blocks, forget-gate bias 1 (in bias_ih"),
            "{t}"
        );
        assert!(
            t.contains(
                "data: Fashion-MNIST (fashion-mnist; 28x28 images, 10 classes: 0 T-shirt/top, \
                 1 Trouser,"
            ),
            "{t}"
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["dataset"], "fashion-mnist");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
