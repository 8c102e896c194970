//! What trains a configuration: the [`Trainer`] trait, its real implementation
//! ([`DfdxTrainer`]: the networks of this crate on the config's data set, on the chosen device)
//! and the choice
//! between it and the fake trainer of `trainer::fake` ([`Backend`]). The runner and the `train`
//! command only see the trait.

use std::sync::atomic::AtomicBool;

use super::config::TrainConfig;
use super::device::{dispatch, DeviceJob, DeviceRequest};
use super::fake::{FakeSpec, FakeTrainer};
use super::fit::{fit, Observer};
use super::kernel::LayerKernel;
use super::record::RunRecord;
use crate::data::{DataSets, Mnist};
use crate::error::TrainError;

/// What one training run produced.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The record, whatever the outcome.
    pub record: RunRecord,
    /// For a completed run with finite weights: the weights as safetensors bytes.
    pub weights: Option<Vec<u8>>,
}

/// Trains one configuration. Called from several worker threads at once (each inside its own
/// rayon pool, which the dfdx matmuls use). `stop` is polled before every step.
pub trait Trainer: Sync {
    fn train(
        &self,
        cfg: &TrainConfig,
        obs: &dyn Observer,
        stop: &AtomicBool,
    ) -> Result<Trained, TrainError>;
}

/// The real networks of this crate, trained with dfdx on the data set each config names
/// (taken from `data`, which the command loaded once per data set its cells use), on the
/// requested device.
pub struct DfdxTrainer<'a> {
    pub data: &'a DataSets,
    pub device: DeviceRequest,
}

struct FitJob<'a> {
    cfg: &'a TrainConfig,
    data: &'a Mnist,
    obs: &'a dyn Observer,
    stop: &'a AtomicBool,
}

impl DeviceJob for FitJob<'_> {
    type Output = Result<Trained, TrainError>;
    fn run<D: LayerKernel<f32>>(self, dev: D, name: &str, note: Option<&str>) -> Self::Output {
        self.obs.started(name, note);
        let (record, model) = fit(&dev, name, self.cfg, self.data, self.obs, self.stop)?;
        let weights = model.final_weights(&record.status);
        Ok(Trained { record, weights })
    }
}

impl Trainer for DfdxTrainer<'_> {
    fn train(
        &self,
        cfg: &TrainConfig,
        obs: &dyn Observer,
        stop: &AtomicBool,
    ) -> Result<Trained, TrainError> {
        let job = FitJob {
            cfg,
            data: self.data.get(cfg.dataset)?,
            obs,
            stop,
        };
        // The device's error and the training's are both `TrainError`s.
        dispatch(self.device, job).and_then(|trained| trained)
    }
}

/// Which trainer a command uses: the real one on a device, or the fake one (for tests, chosen
/// with [`super::fake::FAKE_ENV`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Backend {
    Dfdx(DeviceRequest),
    Fake(FakeSpec),
}

impl Backend {
    /// The fake trainer when [`super::fake::FAKE_ENV`] is set (`get` reads the environment),
    /// else the real one on `device`.
    pub fn from_env(
        device: DeviceRequest,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, super::fake::FakeSpecError> {
        match get(super::fake::FAKE_ENV) {
            Some(spec) => Ok(Backend::Fake(spec.parse()?)),
            None => Ok(Backend::Dfdx(device)),
        }
    }

    /// Whether this backend reads the data files.
    pub fn needs_data(&self) -> bool {
        matches!(self, Backend::Dfdx(_))
    }

    /// Runs `f` with this backend's trainer; `data` is loaded only when the backend needs it
    /// (see [`Backend::needs_data`]).
    pub fn with_trainer<R>(&self, data: Option<&DataSets>, f: impl FnOnce(&dyn Trainer) -> R) -> R {
        match self {
            Backend::Dfdx(device) => f(&DfdxTrainer {
                data: data.expect("the real trainer needs the data"),
                device: *device,
            }),
            Backend::Fake(spec) => f(&FakeTrainer { spec: spec.clone() }),
        }
    }
}
