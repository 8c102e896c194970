//! `rnnsweep describe`: the network as PyTorch would print it, with every parameter tensor's
//! name, shape and size, as text or JSON, and the data set it reads (`--dataset`; the shapes
//! are the same for every data set). The model is a recipe's (or the default) with the model
//! flags applied, as `train` builds it.

use anyhow::Context;
use serde::Serialize;

use super::Outcome;
use crate::trainer::config::keys::Given;
use crate::trainer::config::presets::preset_or_default;
use crate::trainer::config::{Dataset, InitScheme, ModelConfig};
use crate::trainer::model::layout::{param_count, param_layout, ParamInfo};
use crate::trainer::model::torch_repr;

/// Options of `rnnsweep describe`.
#[derive(Clone, Debug)]
pub struct DescribeOptions {
    /// Describe this tutorial recipe's model instead of the default one.
    pub preset: Option<String>,
    /// The model and data set flags, written onto the recipe's or default config.
    pub settings: Given,
    /// Print JSON instead of text.
    pub json: bool,
}

/// Runs `rnnsweep describe`: builds and validates the model config, prints its description.
pub fn describe_cmd(o: &DescribeOptions) -> anyhow::Result<Outcome> {
    let cfg = o
        .settings
        .apply_to(preset_or_default(o.preset.as_deref())?)
        .context("check the model flags (rnnsweep describe --help)")?;
    let d = describe(&cfg.model, cfg.dataset);
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

/// Groups digits in threes: 34210 → "34,210".
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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
