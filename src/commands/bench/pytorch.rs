//! The PyTorch side of `bench`. `bench --pytorch-spec` prints what `bench/pytorch/bench.py`
//! needs to time the same work in PyTorch: each recipe's training config exactly as `bench`
//! would run it (after `--input`, `--hidden`, `--flush-denormal`), the MNIST files, the step
//! counts and any `RNNSWEEP_ISA` cap. The script answers with [`Measured`], which
//! `bench --pytorch FILE` shows beside this program's figures after checking that every row
//! was measured for the config `bench` runs now.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::trainer::config::TrainConfig;

/// What `bench/pytorch/bench.py` reads.
#[derive(Clone, Debug, Serialize)]
pub struct Spec {
    pub format_version: u32,
    pub warmup: usize,
    pub steps: usize,
    pub repeats: usize,
    pub threads: usize,
    /// The `RNNSWEEP_ISA` cap in force (`None`: none); the script runs PyTorch with the same
    /// kernels (`ATEN_CPU_CAPABILITY`).
    pub isa_cap: Option<String>,
    pub train_images: PathBuf,
    pub train_labels: PathBuf,
    pub recipes: Vec<SpecRecipe>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SpecRecipe {
    pub recipe: String,
    pub config: TrainConfig,
}

pub const SPEC_VERSION: u32 = 1;

/// What the script writes: PyTorch's samples/s per recipe.
#[derive(Clone, Debug, Deserialize)]
pub struct Measured {
    /// `torch.__version__`.
    pub torch: String,
    /// `torch.backends.cpu.get_cpu_capability()`: the kernels PyTorch ran.
    pub capability: String,
    pub threads: usize,
    pub rows: Vec<MeasuredRow>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MeasuredRow {
    pub recipe: String,
    /// The config it was measured for (copied from the spec).
    pub config: TrainConfig,
    pub samples_per_sec: f64,
    pub min_samples_per_sec: f64,
    pub max_samples_per_sec: f64,
}

impl Measured {
    /// Reads the script's output.
    pub fn load(path: &Path) -> anyhow::Result<Measured> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read PyTorch figures {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not bench/pytorch/bench.py's output (run `just bench-vs-pytorch`)",
                path.display()
            )
        })
    }

    /// PyTorch's samples/s for `recipe` run as `config`; an error when the file has the recipe
    /// measured for another config (stale figures must not be compared).
    pub fn for_recipe(&self, recipe: &str, config: &TrainConfig) -> anyhow::Result<Option<f64>> {
        let Some(row) = self.rows.iter().find(|r| r.recipe == recipe) else {
            return Ok(None);
        };
        anyhow::ensure!(
            row.config == *config,
            "the PyTorch figure for {recipe} was measured for another config than bench runs \
             now (different --input, --hidden or --flush-denormal?): measure again with the \
             same options"
        );
        Ok(Some(row.samples_per_sec))
    }

    /// The footnote naming where the figures come from.
    pub fn describe(&self) -> String {
        format!(
            "PyTorch: measured now by bench/pytorch/bench.py (torch {}, {} kernels, {} thread(s))",
            self.torch, self.capability, self.threads
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::presets::preset;

    #[test]
    fn stale_figures_are_refused() {
        let cfg = preset("lstm_h64").unwrap();
        let row = serde_json::json!({
            "recipe": "lstm_h64",
            "config": cfg,
            "samples_per_sec": 15000.0,
            "min_samples_per_sec": 14000.0,
            "max_samples_per_sec": 16000.0,
        });
        let m: Measured = serde_json::from_value(serde_json::json!({
            "torch": "2.15.0", "capability": "AVX512", "threads": 1, "rows": [row],
        }))
        .unwrap();
        assert_eq!(m.for_recipe("lstm_h64", &cfg).unwrap(), Some(15000.0));
        assert_eq!(
            m.for_recipe("model_a", &preset("model_a").unwrap())
                .unwrap(),
            None
        );
        let mut other = cfg.clone();
        other.model.hidden = 128;
        let e = m.for_recipe("lstm_h64", &other).unwrap_err().to_string();
        assert!(e.contains("another config"), "{e}");
    }
}
