//! Training one network on MNIST with dfdx. Knows nothing of sweeps, stores or reports: a
//! [`Trainer`] takes a `TrainConfig` and returns a `RunRecord` ([`Trained`]). Here: the trait;
//! the rest is in these rooms and files:
//!
//! - [`config`]: what to train: `TrainConfig` and its validation, the table of settings
//!   (`keys.rs`), the tutorial recipes (`presets.rs`);
//! - [`backend`]: which trainer trains it (the real one, on the device `device.rs` picks, or the
//!   fake one of `fake.rs` for tests);
//! - [`fit`]: the training loop, its `Observer` hooks, and a run's float mode (`denormal.rs`);
//! - [`model`]: the network (parameters, initial values, forward pass, dropout, safetensors) and
//!   the kernels that run one layer on a device (fused on the CPU, dfdx ops elsewhere);
//! - [`optim`]: PyTorch's optimizers and gradient clipping;
//! - [`record`]: what a run produces (metric rows, `RunRecord`), read by store, runner and report;
//! - [`speed`]: this machine's measured speed per kind of cell, for `plan`'s estimates.
//!
//! Dependencies point one way: `backend` uses `fit`, which uses `model` and `optim`; all of them
//! use `config` and `record`, which use nothing else of the trainer.

use std::sync::atomic::AtomicBool;

pub mod backend;
pub mod config;
pub mod fit;
pub mod model;
pub mod optim;
pub mod record;
pub mod speed;

/// What one training run produced.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The record, whatever the outcome.
    pub record: record::RunRecord,
    /// For a completed run with finite weights: the weights as safetensors bytes.
    pub weights: Option<Vec<u8>>,
}

/// Trains one configuration over `span`: from the start or from a checkpoint of the same
/// configuration (which `obs` received in an earlier run), to the end of its budget or to a
/// pause point. Called from several worker threads
/// at once (each inside its own rayon pool, which the dfdx matmuls use). `stop` is polled
/// before every step.
pub trait Trainer: Sync {
    fn train(
        &self,
        cfg: &config::TrainConfig,
        obs: &dyn fit::Observer,
        stop: &AtomicBool,
        span: fit::checkpoint::Span<'_>,
    ) -> Result<Trained, crate::error::TrainError>;
}
