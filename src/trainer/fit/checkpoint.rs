//! What a mid-run checkpoint holds, and its encoding. The training loop writes one at every
//! evaluation point and when it is stopped; a run given one continues where it was taken and
//! ends bit-identical to a run that was never stopped (every metric row but the measured
//! seconds, and the final weights). It holds everything the rest of the run depends on:
//!
//! - the loop's [`Progress`]: steps taken, the epochs so far and the one in progress, the
//!   training window since the last evaluation, the metric rows, the learning rate in force;
//! - the learner's state ([`LearnerState`]): the parameters, the optimizer's buffers and step
//!   count, the position of the dropout mask stream;
//! - the config it belongs to (a checkpoint of another config is refused).
//!
//! The data order is not stored: each epoch's order is a shuffle from the run's seed, replayed
//! up to the epoch in progress. The learning-rate schedule is a function of the step and the
//! epoch, so it needs nothing else. Encoded as CBOR (`ciborium`), which keeps every f64 exactly,
//! NaN and infinities included (JSON would turn them into null). Files and their integrity are
//! the store's (`store::checkpoint`).

use serde::{Deserialize, Serialize};

use crate::trainer::config::TrainConfig;
use crate::trainer::optim::OptimizerState;
use crate::trainer::record::{EpochStats, MetricRow};

use super::{Evaluation, Window};

/// Version of the encoding; a checkpoint of another version is not used (the cell restarts).
pub const CHECKPOINT_VERSION: u32 = 1;

/// A run's state at one point (see the module's documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub config: TrainConfig,
    /// The device it trained on (for the record of a run that ends at the checkpoint).
    pub device: String,
    pub progress: Progress,
    pub learner: LearnerState,
}

/// Where the training loop is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Optimizer steps taken.
    pub iteration: u64,
    /// Finished epochs.
    pub epochs: Vec<EpochStats>,
    /// The epoch in progress, when the checkpoint fell inside one (its `iterations` is the
    /// number of batches of its order already trained).
    pub current: Option<EpochStats>,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    /// The training metrics since the last evaluation point.
    pub window: Window,
    pub metrics: Vec<MetricRow>,
    pub last_eval_iteration: Option<u64>,
    /// The latest test evaluation (for the collapse check at the end).
    pub last_eval: Option<Evaluation>,
    /// The learning rate in force (of the last step taken, or of the first before training).
    pub lr: f64,
}

impl Progress {
    /// The epoch a checkpoint was taken in (the last finished one when between epochs).
    pub fn epoch(&self) -> u64 {
        self.current
            .as_ref()
            .map(|e| e.epoch)
            .or_else(|| self.epochs.last().map(|e| e.epoch))
            .unwrap_or(0)
    }
}

/// Which stretch of a run to train: from a checkpoint (or the start) to a pause point (or the
/// end of the budget).
#[derive(Clone, Copy, Debug, Default)]
pub struct Span<'a> {
    pub from: Option<&'a Checkpoint>,
    /// Stop after the evaluation at this step (which must be an evaluation point), with a
    /// checkpoint there; the record's status is then `Interrupted` at that step.
    pub pause_at: Option<u64>,
}

impl Span<'_> {
    /// The whole run, from the start.
    pub fn whole() -> Span<'static> {
        Span::default()
    }
}

/// What the learner needs to continue: the real network's values, or the fake trainer's
/// position on its curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LearnerState {
    Network {
        /// Parameter values in layout order.
        params: Vec<Vec<f32>>,
        optimizer: OptimizerState,
        /// The dropout mask stream's position (none without dropout).
        dropout: Option<u128>,
    },
    Fake {
        steps: u64,
        samples: u64,
    },
}

/// Why a checkpoint's bytes cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot decode it: {0}")]
    Decode(String),
    #[error(
        "written by checkpoint format {found}; this rnnsweep reads format {CHECKPOINT_VERSION}"
    )]
    Version { found: u32 },
    #[error("it belongs to another configuration")]
    OtherConfig,
    #[error("it does not fit the model: {0}")]
    Shape(String),
}

impl Checkpoint {
    /// The encoded checkpoint (CBOR).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("a checkpoint encodes to memory");
        out
    }

    /// Decodes [`Checkpoint::to_bytes`] and checks it was written for `config`.
    pub fn from_bytes(bytes: &[u8], config: &TrainConfig) -> Result<Checkpoint, CheckpointError> {
        #[derive(Deserialize)]
        struct Probe {
            version: u32,
        }
        let probe: Probe =
            ciborium::from_reader(bytes).map_err(|e| CheckpointError::Decode(e.to_string()))?;
        if probe.version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Version {
                found: probe.version,
            });
        }
        let ckpt: Checkpoint =
            ciborium::from_reader(bytes).map_err(|e| CheckpointError::Decode(e.to_string()))?;
        ckpt.belongs_to(config)?;
        Ok(ckpt)
    }

    /// Whether this checkpoint was taken in a run of `config` (no other can continue from it).
    pub fn belongs_to(&self, config: &TrainConfig) -> Result<(), CheckpointError> {
        if self.config == *config {
            Ok(())
        } else {
            Err(CheckpointError::OtherConfig)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::optim::SlotState;
    use crate::trainer::record::MetricSplit;

    /// CBOR keeps every float bit for bit, NaN and infinities included, and a u128 position.
    #[test]
    fn encoding_keeps_every_value() {
        let config = crate::trainer::config::presets::preset("rnnimc").unwrap();
        let row = MetricRow {
            epoch: 1,
            iteration: 3,
            split: MetricSplit::Test,
            loss: f64::INFINITY,
            acc: 0.1 + 0.2,
            samples: 10,
            seconds: 1e-300,
            samples_per_sec: None,
            grad_norm: Some(f64::NAN),
            grad_norm_max: Some(-0.0),
            lr: Some(1.0 / 3.0),
        };
        let ckpt = Checkpoint {
            version: CHECKPOINT_VERSION,
            config: config.clone(),
            device: "cpu".into(),
            progress: Progress {
                iteration: 3,
                metrics: vec![row],
                lr: 0.1,
                ..Progress::default()
            },
            learner: LearnerState::Network {
                params: vec![vec![1.5, f32::MIN_POSITIVE / 4.0, -0.0, f32::NEG_INFINITY]],
                optimizer: OptimizerState {
                    steps: 3,
                    slots: vec![SlotState::Host(vec![0.1, 1e-320], vec![], vec![])],
                },
                dropout: Some(u128::MAX - 5),
            },
        };
        let back = Checkpoint::from_bytes(&ckpt.to_bytes(), &config).unwrap();
        let bits = |c: &Checkpoint| {
            let r = &c.progress.metrics[0];
            (
                r.loss.to_bits(),
                r.acc.to_bits(),
                r.seconds.to_bits(),
                r.grad_norm.unwrap().is_nan(),
                r.grad_norm_max.unwrap().to_bits(),
                r.lr.unwrap().to_bits(),
            )
        };
        assert_eq!(bits(&back), bits(&ckpt));
        let LearnerState::Network {
            params,
            optimizer,
            dropout,
        } = &back.learner
        else {
            panic!("network state expected")
        };
        let want: Vec<u32> = [1.5f32, f32::MIN_POSITIVE / 4.0, -0.0, f32::NEG_INFINITY]
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(
            params[0].iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want
        );
        assert_eq!(
            optimizer.slots[0],
            SlotState::Host(vec![0.1, 1e-320], vec![], vec![])
        );
        assert_eq!(*dropout, Some(u128::MAX - 5));

        // Another config, another version, or garbage: refused with the reason.
        let other = TrainConfig {
            seed: config.seed + 1,
            ..config.clone()
        };
        let e = Checkpoint::from_bytes(&ckpt.to_bytes(), &other).unwrap_err();
        assert!(matches!(e, CheckpointError::OtherConfig), "{e}");
        let old = Checkpoint {
            version: 0,
            ..ckpt.clone()
        };
        let e = Checkpoint::from_bytes(&old.to_bytes(), &config).unwrap_err();
        assert!(e.to_string().contains("format 0"), "{e}");
        assert!(Checkpoint::from_bytes(b"\xff\x00junk", &config).is_err());
    }
}
