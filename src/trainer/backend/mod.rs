//! What trains a configuration: the real [`super::Trainer`] ([`DfdxTrainer`]: the networks of
//! this crate on the config's data set, on the device `device.rs` picks) and the choice between
//! it and the fake trainer of `fake.rs` ([`TrainerChoice`], made once on the command line, and
//! [`Backend`]). The runner and the `train` command only see the trait.

#[cfg(unix)]
pub mod cudalib;
pub mod device;
pub mod fake;

use std::sync::atomic::AtomicBool;

use crate::data::{DataSets, Mnist};
use crate::error::TrainError;
use crate::trainer::config::TrainConfig;
use crate::trainer::fit::checkpoint::Span;
use crate::trainer::fit::{fit, Observer};
use crate::trainer::model::kernel::LayerKernel;
use crate::trainer::{Trained, Trainer};

use device::{dispatch, DeviceJob, DeviceRequest};
use fake::{FakeRules, FakeRulesError, FakeTrainer};

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
    span: Span<'a>,
}

impl DeviceJob for FitJob<'_> {
    type Output = Result<Trained, TrainError>;
    fn run<D: LayerKernel<f32>>(self, dev: D, name: &str, note: Option<&str>) -> Self::Output {
        self.obs.started(name, note);
        let (record, model) = fit(
            &dev, name, self.cfg, self.data, self.obs, self.stop, self.span,
        )?;
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
        span: Span<'_>,
    ) -> Result<Trained, TrainError> {
        let job = FitJob {
            cfg,
            data: self.data.get(cfg.dataset)?,
            obs,
            stop,
            span,
        };
        // The device's error and the training's are both `TrainError`s.
        dispatch(self.device, job).and_then(|trained| trained)
    }
}

/// Which trainer the commands use: the real one, or the fake one following its rules (tests;
/// the hidden `--trainer fake:RULES`, by default from [`fake::FAKE_ENV`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum TrainerChoice {
    #[default]
    Real,
    Fake(FakeRules),
}

impl TrainerChoice {
    /// `real`, `fake` or `fake:RULES` (the rules of [`fake`]).
    pub fn parse(text: &str) -> Result<Self, FakeRulesError> {
        match text.split_once(':') {
            None if text == "real" => Ok(TrainerChoice::Real),
            None if text == "fake" => Ok(TrainerChoice::Fake(FakeRules::default())),
            Some(("fake", rules)) => Ok(TrainerChoice::Fake(rules.parse()?)),
            _ => Err(FakeRulesError::not_a_choice(text)),
        }
    }

    /// The trainer on `device` (which the fake one ignores).
    pub fn backend(&self, device: DeviceRequest) -> Backend {
        match self {
            TrainerChoice::Real => Backend::Dfdx(device),
            TrainerChoice::Fake(spec) => Backend::Fake(spec.clone()),
        }
    }
}

/// The trainer a command uses: the real one on a device, or the fake one.
#[derive(Clone, Debug, PartialEq)]
pub enum Backend {
    Dfdx(DeviceRequest),
    Fake(FakeRules),
}

impl Backend {
    /// Refuses a device that cannot be had (`--device cuda` without a usable GPU) before any
    /// work or output; the fake trainer needs no device.
    pub fn check_device(&self) -> Result<(), TrainError> {
        match self {
            Backend::Dfdx(device) => device::check(*device),
            Backend::Fake(_) => Ok(()),
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
            Backend::Fake(rules) => f(&FakeTrainer {
                rules: rules.clone(),
            }),
        }
    }
}
