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

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum RunStatus {
    /// The whole budget was trained.
    Completed,
    /// The loss became NaN or infinite at this step; training stopped there.
    Diverged { epoch: u64, iteration: u64 },
    /// Stopped on request (Ctrl-C) after this many steps.
    Interrupted { epoch: u64, iteration: u64 },
}

impl RunStatus {
    pub fn name(&self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Diverged { .. } => "diverged",
            RunStatus::Interrupted { .. } => "interrupted",
        }
    }
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
    /// The process that trained it (host, pid, Slurm job and array task); set by the sweep
    /// runner, absent for `train` and in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<crate::cluster::Origin>,
}

impl RunRecord {
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
        };
        let back: MetricRow = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
        assert!(back.loss.is_nan());
        assert_eq!(back.acc, 0.1);
        let csv = String::from_utf8(RunRecord::metrics_csv(&[row])).unwrap();
        assert_eq!(csv, "epoch,iteration,split,loss,acc,samples,seconds,samples_per_sec\n1,5,test,inf,0.1,10,0.5,\n");
    }
}
