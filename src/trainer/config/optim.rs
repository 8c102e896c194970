//! The optimizer part of a training config: `OptimConfig` (kind, learning rate, PyTorch's
//! optimizer settings, gradient clipping) and the learning-rate schedule (`LrSchedule`), with
//! their defaults, canonical form and validation.

use serde::{Deserialize, Serialize};

use super::{OptimKind, ScheduleKind};
use crate::error::ConfigError;

/// The optimizer, its hyperparameters and gradient clipping, as PyTorch's `torch.optim` and
/// `torch.nn.utils.clip_grad_*_` take them. A setting left out (`None`, `false`) is PyTorch's
/// default, and is not written to JSON: configs (and so cell ids) written before a setting
/// existed are unchanged, and [`OptimConfig::normalized`] turns an explicit default back into
/// `None` so that both spellings are one cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    pub kind: OptimKind,
    pub lr: f64,
    /// SGD momentum (0 = plain SGD); must be 0 for the others.
    #[serde(default)]
    pub momentum: f64,
    /// SGD's Nesterov momentum (needs momentum > 0, as in PyTorch).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nesterov: bool,
    /// L2 penalty: added to the gradient (`g + wd·p`) for sgd, adam and rmsprop; decoupled
    /// (`p ← p·(1 − lr·wd)` before the step) for adamw. Default 0, and 0.01 for adamw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// Adam/AdamW (β1, β2). Default (0.9, 0.999).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub betas: Option<(f64, f64)>,
    /// Adam/AdamW: AMSGrad (`amsgrad=True`), dividing by the running maximum of the second
    /// moment estimate instead of the estimate itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub amsgrad: bool,
    /// Adam/AdamW/RMSprop ε. Default 1e-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    /// RMSprop smoothing constant α. Default 0.99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// `clip_grad_norm_(params, X)` before every step: when the total 2-norm of all gradients
    /// exceeds X, every gradient is scaled by X / (norm + 1e-6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// `clip_grad_value_(params, X)` before every step: every gradient value clamped to [−X, X].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_value: Option<f64>,
    /// How the learning rate changes over the run (default: constant).
    #[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
    pub lr_schedule: LrSchedule,
    /// A linear warmup over the first N steps, multiplying the schedule's rate: step t
    /// (0-based) uses (t + 1)/N of it (torch: `LinearLR(start_factor=1/N, total_iters=N-1)`,
    /// chained with the schedule by `ChainedScheduler`, stepped per iteration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<u64>,
}

/// The learning-rate schedule, as PyTorch's schedulers compute it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LrSchedule {
    /// The rate stays `lr`.
    #[default]
    Constant,
    /// `StepLR(step_size, gamma)` stepped once per epoch: during epoch e (1-based) the rate
    /// is lr · gamma^⌊(e − 1) / step_size⌋.
    Step { step_size: u64, gamma: f64 },
    /// `CosineAnnealingLR(T_max = the run's steps, eta_min)` stepped once per iteration: step t
    /// (0-based) uses eta_min + (lr − eta_min)·(1 + cos(π·t / T_max))/2 (the closed form; torch's
    /// recursive update agrees to rounding).
    Cosine { eta_min: f64 },
}

impl LrSchedule {
    /// StepLR's default gamma.
    pub const STEP_GAMMA: f64 = 0.1;

    pub fn is_constant(&self) -> bool {
        *self == LrSchedule::Constant
    }

    pub fn kind(&self) -> ScheduleKind {
        match self {
            LrSchedule::Constant => ScheduleKind::Constant,
            LrSchedule::Step { .. } => ScheduleKind::Step,
            LrSchedule::Cosine { .. } => ScheduleKind::Cosine,
        }
    }
}

impl OptimConfig {
    pub const ADAM_BETAS: (f64, f64) = (0.9, 0.999);
    pub const ADAM_EPS: f64 = 1e-8;
    pub const RMSPROP_ALPHA: f64 = 0.99;
    pub const RMSPROP_EPS: f64 = 1e-8;
    /// torch.optim.AdamW's default weight decay (the others' is 0).
    pub const ADAMW_WEIGHT_DECAY: f64 = 0.01;
    /// The 1e-6 that `clip_grad_norm_` adds to the norm before dividing.
    pub const CLIP_NORM_EPS: f64 = 1e-6;

    /// `kind` at learning rate `lr`, everything else PyTorch's default.
    pub fn new(kind: OptimKind, lr: f64) -> Self {
        OptimConfig {
            kind,
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: None,
            betas: None,
            amsgrad: false,
            eps: None,
            alpha: None,
            clip_grad_norm: None,
            clip_grad_value: None,
            lr_schedule: LrSchedule::Constant,
            warmup: None,
        }
    }

    /// The learning rate of the step that follows `steps_done` steps, taken in epoch `epoch`
    /// (1-based) of a run of `total_steps` steps: the schedule's rate times the warmup factor.
    pub fn lr_at(&self, steps_done: u64, epoch: u64, total_steps: u64) -> f64 {
        let base = match self.lr_schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Step { step_size, gamma } => {
                self.lr * gamma.powi(((epoch.max(1) - 1) / step_size) as i32)
            }
            LrSchedule::Cosine { eta_min } => {
                let t = steps_done.min(total_steps) as f64 / total_steps.max(1) as f64;
                eta_min + (self.lr - eta_min) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
            }
        };
        match self.warmup {
            Some(n) if steps_done < n => base * (steps_done + 1) as f64 / n as f64,
            _ => base,
        }
    }

    /// The weight decay in force.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay.unwrap_or(match self.kind {
            OptimKind::Adamw => Self::ADAMW_WEIGHT_DECAY,
            _ => 0.0,
        })
    }

    /// Adam/AdamW's betas in force.
    pub fn betas(&self) -> (f64, f64) {
        self.betas.unwrap_or(Self::ADAM_BETAS)
    }

    /// ε in force (Adam, AdamW, RMSprop).
    pub fn eps(&self) -> f64 {
        self.eps.unwrap_or(match self.kind {
            OptimKind::Rmsprop => Self::RMSPROP_EPS,
            _ => Self::ADAM_EPS,
        })
    }

    /// RMSprop's α in force.
    pub fn alpha(&self) -> f64 {
        self.alpha.unwrap_or(Self::RMSPROP_ALPHA)
    }

    /// Canonical form: a setting equal to its default is left out.
    pub fn normalized(mut self) -> Self {
        let defaults = OptimConfig::new(self.kind, self.lr);
        if self.weight_decay == Some(defaults.weight_decay()) {
            self.weight_decay = None;
        }
        if self.betas == Some(defaults.betas()) {
            self.betas = None;
        }
        if self.eps == Some(defaults.eps()) {
            self.eps = None;
        }
        if self.alpha == Some(defaults.alpha()) {
            self.alpha = None;
        }
        self
    }

    /// The rules between settings that no key's range or scope says (those are checked from
    /// the table of keys, `keys::check_values`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nesterov && self.momentum == 0.0 {
            return Err(ConfigError::new(
                "nesterov",
                true,
                "Nesterov momentum needs a momentum > 0 (as in PyTorch)",
            ));
        }
        match self.lr_schedule {
            LrSchedule::Step { step_size: 0, .. } => {
                return Err(ConfigError::new(
                    "lr_schedule",
                    "step",
                    "lr_schedule = step needs step_size (epochs between decays)",
                ))
            }
            LrSchedule::Cosine { eta_min } if eta_min >= self.lr => {
                return Err(ConfigError::new(
                    "eta_min",
                    eta_min,
                    format!("eta_min must be below the learning rate {}", self.lr),
                ))
            }
            _ => {}
        }
        if let (Some(_), Some(v)) = (self.clip_grad_norm, self.clip_grad_value) {
            return Err(ConfigError::new(
                "clip_grad_value",
                v,
                "set one of clip_grad_norm and clip_grad_value, not both",
            ));
        }
        Ok(())
    }

    /// The optimizer's part of a config's slug (`TrainConfig::slug`): its settings that are
    /// not at their defaults.
    pub(super) fn slug_tail(&self) -> String {
        let mut s = String::new();
        if self.nesterov {
            s.push_str("-nesterov");
        }
        if let Some(wd) = self.weight_decay {
            s.push_str(&format!("-wd{wd}"));
        }
        if let Some((b1, b2)) = self.betas {
            s.push_str(&format!("-betas{b1}_{b2}"));
        }
        if self.amsgrad {
            s.push_str("-amsgrad");
        }
        if let Some(eps) = self.eps {
            s.push_str(&format!("-eps{eps}"));
        }
        if let Some(alpha) = self.alpha {
            s.push_str(&format!("-alpha{alpha}"));
        }
        if let Some(x) = self.clip_grad_norm {
            s.push_str(&format!("-clipnorm{x}"));
        }
        if let Some(x) = self.clip_grad_value {
            s.push_str(&format!("-clipvalue{x}"));
        }
        match self.lr_schedule {
            LrSchedule::Constant => {}
            LrSchedule::Step { step_size, gamma } => {
                s.push_str(&format!("-step{step_size}x{gamma}"))
            }
            LrSchedule::Cosine { eta_min } => s.push_str(&format!("-cosine{eta_min}")),
        }
        if let Some(n) = self.warmup {
            s.push_str(&format!("-warmup{n}"));
        }
        s
    }

    /// The learning rate of `kind` when none is given (`train --optimizer K` without `--lr`):
    /// 0.1 for sgd, 0.001 for adam and adamw (PyTorch's defaults), 0.01 for rmsprop.
    pub fn default_lr(kind: OptimKind) -> f64 {
        match kind {
            OptimKind::Sgd => 0.1,
            OptimKind::Adam | OptimKind::Adamw => 1e-3,
            OptimKind::Rmsprop => 1e-2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_by_hand() {
        let mut o = OptimConfig::new(OptimKind::Sgd, 1.0);
        assert_eq!(o.lr_at(7, 3, 10), 1.0);
        o.lr_schedule = LrSchedule::Step {
            step_size: 2,
            gamma: 0.5,
        };
        // Epochs 1-2 at 1, 3-4 at 0.5, 5 at 0.25, whatever the step.
        let by_epoch: Vec<f64> = (1..=5).map(|e| o.lr_at(0, e, 10)).collect();
        assert_eq!(by_epoch, vec![1.0, 1.0, 0.5, 0.5, 0.25]);
        o.lr_schedule = LrSchedule::Cosine { eta_min: 0.2 };
        assert_eq!(o.lr_at(0, 1, 10), 1.0);
        assert!(
            (o.lr_at(5, 1, 10) - 0.6).abs() < 1e-15,
            "half way: (1 + 0.2)/2"
        );
        assert!((o.lr_at(10, 1, 10) - 0.2).abs() < 1e-15);
        // A warmup of 4 steps multiplies by 1/4, 2/4, 3/4, then 1.
        o.lr_schedule = LrSchedule::Constant;
        o.warmup = Some(4);
        let w: Vec<f64> = (0..6).map(|t| o.lr_at(t, 1, 10)).collect();
        assert_eq!(w, vec![0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn rules_between_settings_are_checked() {
        let check = |o: OptimConfig, want: &str| {
            let e = o.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        };
        let mut sgd = OptimConfig::new(OptimKind::Sgd, 0.1);
        sgd.nesterov = true;
        check(sgd.clone(), "needs a momentum > 0");
        sgd.momentum = 0.9;
        sgd.validate().unwrap();
        let mut o = sgd.clone();
        o.clip_grad_norm = Some(1.0);
        o.clip_grad_value = Some(1.0);
        check(o, "not both");
        let mut o = sgd.clone();
        o.lr_schedule = LrSchedule::Step {
            step_size: 0,
            gamma: 0.5,
        };
        check(o, "lr_schedule = step needs step_size");
        let mut o = sgd;
        o.lr_schedule = LrSchedule::Cosine { eta_min: 1.0 };
        check(o, "eta_min must be below the learning rate 0.1");
    }
}
