//! What a training run produces: metric rows in long format (one per evaluation point and
//! split), per-epoch timing, and the final `RunRecord` with its outcome.

use serde::{Deserialize, Serialize};

use super::config::TrainConfig;

/// Version of the record format; bumped whenever a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricSplit {
    Train,
    Test,
}

/// One evaluation point of one split. For `train`, loss and accuracy are the sample-weighted
/// means over the batches since the previous evaluation point (the whole epoch when evaluating
/// every epoch); for `test`, over the evaluated test images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    /// Epoch in progress (1-based); 0 = before training.
    pub epoch: u64,
    /// Optimizer steps taken so far.
    pub iteration: u64,
    pub split: MetricSplit,
    /// May be NaN or infinite when a model blew up; JSON stores that as null, read back as NaN.
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f64,
    pub acc: f64,
    /// Samples the numbers are averaged over.
    pub samples: u64,
    /// Training wall time so far (evaluation excluded), seconds.
    pub seconds: f64,
    /// Training throughput since the previous evaluation point (train rows only; empty in CSV
    /// and null in JSON for test rows, so every CSV row has the same columns).
    #[serde(default)]
    pub samples_per_sec: Option<f64>,
    /// Train rows: the total gradient 2-norm before clipping at the last step of the window
    /// (what `clip_grad_norm_` returns), and its largest value over the window: what one looks
    /// at when a run explodes. Empty for test rows and in records written before they existed.
    #[serde(default)]
    pub grad_norm: Option<f64>,
    #[serde(default)]
    pub grad_norm_max: Option<f64>,
    /// The learning rate in force: of the window's last step (train rows), or at the
    /// evaluation (test rows). Empty in records written before it existed.
    #[serde(default)]
    pub lr: Option<f64>,
}

/// JSON has no NaN or infinity (serde_json writes them as null): read null back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Timing of one (possibly partial) epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: u64,
    pub iterations: u64,
    pub samples: u64,
    pub seconds: f64,
    pub samples_per_sec: f64,
}

/// Which quantity of a step went non-finite first: checked in this order after every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NonFiniteKind {
    /// The batch loss (before backward).
    Loss,
    /// A parameter's gradient.
    Gradient,
    /// A parameter right after the optimizer's update.
    Parameter,
}

/// What went non-finite first in a diverged run: the loss, or the named tensor (PyTorch's
/// parameter name, e.g. `rnn.weight_hh_l1`) whose gradient or updated value held NaN or ±inf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonFinite {
    pub kind: NonFiniteKind,
    /// The parameter's name; absent for the loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor: Option<String>,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.kind, &self.tensor) {
            (NonFiniteKind::Loss, _) | (_, None) => write!(f, "loss"),
            (NonFiniteKind::Gradient, Some(t)) => write!(f, "{t}.grad"),
            (NonFiniteKind::Parameter, Some(t)) => write!(f, "{t}"),
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum RunStatus {
    /// The whole budget was trained.
    Completed,
    /// The loss, a gradient or a parameter after the update became NaN or infinite at this step
    /// (the first one found is `non_finite`; absent in records written before it existed);
    /// training stopped there.
    Diverged {
        epoch: u64,
        iteration: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        non_finite: Option<NonFinite>,
    },
    /// Stopped on request (Ctrl-C), or paused at a rung, after this many steps.
    Interrupted { epoch: u64, iteration: u64 },
    /// Stopped for good by successive halving (`[prune]`) at rung `rung` (0 = the first), the
    /// evaluation after this many steps: its configuration was not promoted. The metric rows
    /// are the partial curve up to there.
    Pruned {
        epoch: u64,
        iteration: u64,
        rung: usize,
    },
}

impl RunStatus {
    pub fn name(&self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Diverged { .. } => "diverged",
            RunStatus::Interrupted { .. } => "interrupted",
            RunStatus::Pruned { .. } => "pruned",
        }
    }
}

/// The share of final test predictions in one class from which a completed run is `collapsed`.
pub const COLLAPSE_SHARE: f64 = 0.99;

/// The most frequent predicted class of an evaluation and the share of images predicted so.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopClass {
    pub class: u8,
    pub share: f64,
}

/// The complete result of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format_version: u32,
    pub config: TrainConfig,
    #[serde(flatten)]
    pub status: RunStatus,
    /// Device the run trained on, e.g. `cpu` or `cuda:0`.
    pub device: String,
    pub parameters: usize,
    pub iterations: u64,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    /// Training samples per second over the whole run (evaluation excluded).
    pub samples_per_sec: f64,
    /// Last test evaluation (accuracy, loss), if any.
    pub final_test_acc: Option<f64>,
    pub final_test_loss: Option<f64>,
    pub metrics: Vec<MetricRow>,
    pub epochs: Vec<EpochStats>,
    /// A completed run whose final test predictions are one class for at least
    /// [`COLLAPSE_SHARE`] of the evaluated images: a constant predictor (e.g. dead relu units),
    /// whatever its weights. False in records written before it existed.
    #[serde(default)]
    pub collapsed: bool,
    /// The most frequent predicted class at the final test evaluation and its share of the
    /// evaluated images (absent when there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_class: Option<TopClass>,
    /// The process that trained it (host, pid, Slurm job and array task); set by the sweep
    /// runner, absent for `train` and in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<crate::cluster::Origin>,
}

impl RunRecord {
    /// Training samples processed (every epoch, partial ones included).
    pub fn samples(&self) -> u64 {
        self.epochs.iter().map(|e| e.samples).sum()
    }

    /// What [`RunRecord::samples`] would have been without pruning: a pruned run's full
    /// budget, any other run's own count.
    pub fn samples_without_pruning(&self) -> u64 {
        match self.status {
            RunStatus::Pruned { .. } => self.config.total_samples(),
            _ => self.samples(),
        }
    }

    /// The metric rows as CSV (header + one line per row).
    pub fn metrics_csv(rows: &[MetricRow]) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in rows {
            w.serialize(r).expect("metric rows serialize");
        }
        w.into_inner().expect("writing to memory")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_losses_survive_json_and_csv() {
        let row = MetricRow {
            epoch: 1,
            iteration: 5,
            split: MetricSplit::Test,
            loss: f64::INFINITY,
            acc: 0.1,
            samples: 10,
            seconds: 0.5,
            samples_per_sec: None,
            grad_norm: None,
            grad_norm_max: None,
            lr: None,
        };
        let back: MetricRow = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
        assert!(back.loss.is_nan());
        assert_eq!(back.acc, 0.1);
        let csv = String::from_utf8(RunRecord::metrics_csv(&[row])).unwrap();
        assert_eq!(csv, "epoch,iteration,split,loss,acc,samples,seconds,samples_per_sec,grad_norm,grad_norm_max,lr\n1,5,test,inf,0.1,10,0.5,,,,\n");
    }
}
