//! Training one network on MNIST with dfdx: configuration, model, optimizers, the fit loop and
//! device selection. Knows nothing of sweeps, stores or reports: a [`Trainer`] takes a
//! `TrainConfig` and returns a `RunRecord` ([`Trained`]). The real trainer and the choice
//! between it and the fake one (for tests) are in `backend`, the fake one in `fake`.

use std::sync::atomic::AtomicBool;

pub mod backend;
pub mod config;
pub mod denormal;
pub mod device;
pub mod dropout;
pub mod fake;
pub mod fit;
pub mod fused;
pub mod init;
pub mod kernel;
pub mod model;
pub mod ops;
pub mod optim;
pub mod presets;
pub mod record;
pub mod tape;

/// What one training run produced.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The record, whatever the outcome.
    pub record: record::RunRecord,
    /// For a completed run with finite weights: the weights as safetensors bytes.
    pub weights: Option<Vec<u8>>,
}

/// Trains one configuration. Called from several worker threads at once (each inside its own
/// rayon pool, which the dfdx matmuls use). `stop` is polled before every step.
pub trait Trainer: Sync {
    fn train(
        &self,
        cfg: &config::TrainConfig,
        obs: &dyn fit::Observer,
        stop: &AtomicBool,
    ) -> Result<Trained, crate::error::TrainError>;
}
