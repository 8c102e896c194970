//! The six tutorial recipes of RECIPES.md as training configs (`--preset`, `bench`, the
//! experiment grids' comments): what "Model A" or "lstm_h64" means, in one place. Also the
//! config `train` and `describe` start from without a recipe, and the rules by which their
//! flags override a recipe or that default ([`ModelOverrides`], [`TrainOverrides`]).

use super::config::{
    Activation, Budget, Dataset, EvalConfig, EvalEvery, InitScheme, InputMode, LayerKind,
    LrSchedule, ModelConfig, OptimConfig, OptimKind, ScheduleKind, TrainConfig,
};
use crate::error::ConfigError;

/// The six tutorial recipes of RECIPES.md, by id.
pub const PRESETS: &[&str] = &[
    "rnnimc", "model_a", "model_b", "model_c", "lstm_h20", "lstm_h64",
];

/// The training config of a tutorial recipe (seed 0).
pub fn preset(id: &str) -> Result<TrainConfig, ConfigError> {
    let rnn = |hidden, layers, act| ModelConfig {
        cell: LayerKind::Rnn,
        hidden,
        layers,
        activation: Some(act),
        ..ModelConfig::default()
    };
    let lstm = |hidden| ModelConfig {
        cell: LayerKind::Lstm,
        hidden,
        layers: 1,
        activation: None,
        ..ModelConfig::default()
    };
    let opt = OptimConfig::new;
    let eval = |every, before_training, test_limit| EvalConfig {
        every,
        before_training,
        test_limit,
    };
    let tutorial_sgd = |model| TrainConfig {
        model,
        optim: opt(OptimKind::Sgd, 0.1),
        batch_size: 100,
        budget: Budget::Iterations(3000),
        seed: 0,
        train_limit: None,
        eval: eval(EvalEvery::Iterations(500), false, None),
        flush_denormal: false,
        dataset: Dataset::Mnist,
    };
    Ok(match id {
        "rnnimc" => TrainConfig {
            model: rnn(128, 1, Activation::Relu),
            optim: opt(OptimKind::Rmsprop, 3e-4),
            batch_size: 64,
            budget: Budget::Epochs(30),
            seed: 0,
            train_limit: None,
            eval: eval(EvalEvery::Epoch, false, None),
            flush_denormal: false,
            dataset: Dataset::Mnist,
        },
        "model_a" => tutorial_sgd(rnn(100, 1, Activation::Relu)),
        "model_b" => tutorial_sgd(rnn(100, 2, Activation::Relu)),
        "model_c" => tutorial_sgd(rnn(100, 2, Activation::Tanh)),
        "lstm_h20" => TrainConfig {
            model: lstm(20),
            optim: opt(OptimKind::Sgd, 0.1),
            batch_size: 100,
            budget: Budget::Epochs(10),
            seed: 0,
            train_limit: None,
            eval: eval(EvalEvery::Epoch, true, None),
            flush_denormal: false,
            dataset: Dataset::Mnist,
        },
        "lstm_h64" => TrainConfig {
            model: lstm(64),
            optim: opt(OptimKind::Adam, 0.01),
            batch_size: 64,
            budget: Budget::Epochs(1),
            seed: 0,
            train_limit: None,
            eval: eval(EvalEvery::Iterations(50), false, Some(2000)),
            flush_denormal: false,
            dataset: Dataset::Mnist,
        },
        other => {
            return Err(ConfigError::new(
                "preset",
                other,
                format!("known presets: {}", PRESETS.join(", ")),
            ))
        }
    })
}

/// The config `train` and `describe` start from without `--preset`: a tanh RNN h128 with Adam
/// at lr 0.001, batch 64, one epoch, seed 0, evaluated after every epoch.
pub fn default_config() -> TrainConfig {
    TrainConfig {
        model: ModelConfig {
            cell: LayerKind::Rnn,
            hidden: 128,
            layers: 1,
            activation: None,
            ..ModelConfig::default()
        },
        optim: OptimConfig::new(OptimKind::Adam, 1e-3),
        batch_size: 64,
        budget: Budget::Epochs(1),
        seed: 0,
        train_limit: None,
        eval: EvalConfig {
            every: EvalEvery::Epoch,
            before_training: false,
            test_limit: None,
        },
        flush_denormal: false,
        dataset: Dataset::Mnist,
    }
}

/// The learning rate `train --optimizer K` uses unless `--lr` is given: 0.1 for sgd, 0.001
/// for adam and adamw (PyTorch's defaults), 0.01 for rmsprop.
pub fn default_lr(kind: OptimKind) -> f64 {
    match kind {
        OptimKind::Sgd => 0.1,
        OptimKind::Adam | OptimKind::Adamw => 1e-3,
        OptimKind::Rmsprop => 1e-2,
    }
}

/// The recipe `id`, or [`default_config`] without one: what `train` and `describe` start from.
pub fn preset_or_default(id: Option<&str>) -> Result<TrainConfig, ConfigError> {
    match id {
        Some(id) => preset(id),
        None => Ok(default_config()),
    }
}

/// Changes to a model config, each `None` keeping the base's value (`train` and `describe`'s
/// `--cell`, `--activation`, `--hidden`, `--layers`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelOverrides {
    pub cell: Option<LayerKind>,
    pub activation: Option<Activation>,
    pub hidden: Option<usize>,
    pub layers: Option<usize>,
    pub init: Option<InitScheme>,
    pub init_scale: Option<f64>,
    pub forget_bias: Option<f64>,
    pub dropout: Option<f64>,
    pub input: Option<InputMode>,
    pub permutation_seed: Option<u64>,
}

impl ModelOverrides {
    /// `base` (a recipe's model or the default) with these changes. Changing the cell kind
    /// drops the base's activation: a recipe's rnn activation does not carry over to lstm/gru.
    pub fn apply(&self, mut base: ModelConfig) -> ModelConfig {
        if let Some(c) = self.cell {
            if c != base.cell {
                base.activation = None;
            }
            base.cell = c;
        }
        if let Some(a) = self.activation {
            base.activation = Some(a);
        }
        if let Some(h) = self.hidden {
            base.hidden = h;
        }
        if let Some(l) = self.layers {
            base.layers = l;
        }
        if let Some(i) = self.init {
            base.init = i;
        }
        if self.init_scale.is_some() {
            base.init_scale = self.init_scale;
        }
        if self.forget_bias.is_some() {
            base.forget_bias = self.forget_bias;
        }
        if self.dropout.is_some() {
            base.dropout = self.dropout;
        }
        if let Some(i) = self.input {
            base.input = i;
        }
        if self.permutation_seed.is_some() {
            base.permutation_seed = self.permutation_seed;
        }
        base.normalized()
    }
}

/// Changes to a training config (`train`'s flags), each `None` (or `false`) keeping the base's
/// value. The result is not validated: the caller does that, saying where the values came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainOverrides {
    pub model: ModelOverrides,
    /// A different optimizer also resets the learning rate to its [`default_lr`], unless
    /// `lr` is given too.
    pub optimizer: Option<OptimKind>,
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub knobs: OptimKnobs,
    pub batch_size: Option<usize>,
    /// Whole epochs; `iterations` wins if both are given (the command line allows only one).
    pub epochs: Option<u32>,
    pub iterations: Option<u64>,
    pub seed: Option<u64>,
    pub train_limit: Option<usize>,
    pub test_limit: Option<usize>,
    pub eval_every: Option<EvalEvery>,
    /// `true`: also evaluate the untrained model; `false` keeps the base's setting.
    pub eval_before: bool,
    /// `true`: flush subnormal floats to zero; `false` keeps the base's setting.
    pub flush_denormal: bool,
    /// Train and evaluate on this data set instead of the base's (MNIST for every recipe).
    pub dataset: Option<Dataset>,
}

/// Optimizer and clipping settings beyond kind, lr and momentum (see [`OptimConfig`]); `None`
/// and `false` keep the base's setting.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimKnobs {
    pub nesterov: bool,
    pub weight_decay: Option<f64>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub eps: Option<f64>,
    pub alpha: Option<f64>,
    pub clip_grad_norm: Option<f64>,
    pub clip_grad_value: Option<f64>,
    /// `constant`, `step` or `cosine`; `step_size` and `gamma` go with step, `eta_min` with
    /// cosine (see [`OptimKnobs::check`]).
    pub lr_schedule: Option<ScheduleKind>,
    pub step_size: Option<u64>,
    pub gamma: Option<f64>,
    pub eta_min: Option<f64>,
    pub warmup: Option<u64>,
}

impl OptimKnobs {
    /// Schedule settings that belong to the schedule chosen (a `gamma` without
    /// `lr_schedule = step` would otherwise be ignored).
    pub fn check(&self) -> Result<(), ConfigError> {
        let kind = self.lr_schedule;
        for (key, value, owner) in [
            (
                "step_size",
                self.step_size.map(|v| v.to_string()),
                ScheduleKind::Step,
            ),
            (
                "gamma",
                self.gamma.map(|v| v.to_string()),
                ScheduleKind::Step,
            ),
            (
                "eta_min",
                self.eta_min.map(|v| v.to_string()),
                ScheduleKind::Cosine,
            ),
        ] {
            if let Some(v) = value.filter(|_| kind != Some(owner)) {
                return Err(ConfigError::new(
                    key,
                    v,
                    format!("{key} goes with lr_schedule {owner}"),
                ));
            }
        }
        if kind == Some(ScheduleKind::Step) && self.step_size.is_none() {
            return Err(ConfigError::new(
                "lr_schedule",
                "step",
                "the step schedule needs a step size in epochs",
            ));
        }
        Ok(())
    }

    /// `o` with these settings, in canonical form (an explicit default is left out).
    pub fn apply(&self, mut o: OptimConfig) -> OptimConfig {
        o.nesterov |= self.nesterov;
        if self.weight_decay.is_some() {
            o.weight_decay = self.weight_decay;
        }
        if self.beta1.is_some() || self.beta2.is_some() {
            let (b1, b2) = o.betas();
            o.betas = Some((self.beta1.unwrap_or(b1), self.beta2.unwrap_or(b2)));
        }
        if let Some(kind) = self.lr_schedule {
            o.lr_schedule = match kind {
                ScheduleKind::Constant => LrSchedule::Constant,
                ScheduleKind::Step => LrSchedule::Step {
                    step_size: self.step_size.unwrap_or(1),
                    gamma: self.gamma.unwrap_or(LrSchedule::STEP_GAMMA),
                },
                ScheduleKind::Cosine => LrSchedule::Cosine {
                    eta_min: self.eta_min.unwrap_or(0.0),
                },
            };
        }
        if self.warmup.is_some() {
            o.warmup = self.warmup;
        }
        for (field, value) in [
            (&mut o.eps, self.eps),
            (&mut o.alpha, self.alpha),
            (&mut o.clip_grad_norm, self.clip_grad_norm),
            (&mut o.clip_grad_value, self.clip_grad_value),
        ] {
            if value.is_some() {
                *field = value;
            }
        }
        o.normalized()
    }
}

impl TrainOverrides {
    /// `base` (a recipe or [`default_config`]) with these changes.
    pub fn apply(&self, mut c: TrainConfig) -> TrainConfig {
        c.model = self.model.apply(c.model);
        if let Some(k) = self.optimizer {
            if k != c.optim.kind && self.lr.is_none() {
                c.optim.lr = default_lr(k);
            }
            c.optim.kind = k;
        }
        if let Some(lr) = self.lr {
            c.optim.lr = lr;
        }
        if let Some(m) = self.momentum {
            c.optim.momentum = m;
        }
        c.optim = self.knobs.apply(c.optim);
        if let Some(b) = self.batch_size {
            c.batch_size = b;
        }
        if let Some(e) = self.epochs {
            c.budget = Budget::Epochs(e);
        }
        if let Some(n) = self.iterations {
            c.budget = Budget::Iterations(n);
        }
        if let Some(s) = self.seed {
            c.seed = s;
        }
        if self.train_limit.is_some() {
            c.train_limit = self.train_limit;
        }
        if self.test_limit.is_some() {
            c.eval.test_limit = self.test_limit;
        }
        if let Some(e) = self.eval_every {
            c.eval.every = e;
        }
        if self.eval_before {
            c.eval.before_training = true;
        }
        c.flush_denormal |= self.flush_denormal;
        if let Some(d) = self.dataset {
            c.dataset = d;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_match_the_recipes() {
        for id in PRESETS {
            preset(id).unwrap().validate().unwrap();
        }
        let a = preset("model_a").unwrap();
        assert_eq!(a.total_iterations(), 3000);
        assert_eq!(a.total_epochs(), 5);
        let imc = preset("rnnimc").unwrap();
        assert_eq!(imc.batches_per_epoch(), 938); // 60000/64 = 937.5, last batch has 32
        assert!(preset("model_d")
            .unwrap_err()
            .to_string()
            .contains("known presets"));
    }

    #[test]
    fn no_overrides_keep_the_base() {
        for id in PRESETS {
            let base = preset(id).unwrap();
            assert_eq!(TrainOverrides::default().apply(base.clone()), base, "{id}");
        }
        assert_eq!(preset_or_default(None).unwrap(), default_config());
        assert_eq!(
            preset_or_default(Some("lstm_h20")).unwrap(),
            preset("lstm_h20").unwrap()
        );
        assert!(preset_or_default(Some("model_d")).is_err());
    }

    #[test]
    fn flags_override_the_preset_one_by_one() {
        let o = TrainOverrides {
            model: ModelOverrides {
                hidden: Some(64),
                ..Default::default()
            },
            momentum: Some(0.9),
            batch_size: Some(32),
            seed: Some(3),
            train_limit: Some(1000),
            test_limit: Some(500),
            eval_every: Some(EvalEvery::Epoch),
            eval_before: true,
            flush_denormal: true,
            dataset: Some(Dataset::FashionMnist),
            ..Default::default()
        };
        let c = o.apply(preset("model_b").unwrap());
        let mut want = preset("model_b").unwrap();
        want.model.hidden = 64;
        want.optim.momentum = 0.9;
        want.batch_size = 32;
        want.seed = 3;
        want.train_limit = Some(1000);
        want.eval.test_limit = Some(500);
        want.eval.every = EvalEvery::Epoch;
        want.eval.before_training = true;
        want.flush_denormal = true;
        want.dataset = Dataset::FashionMnist;
        assert_eq!(c, want);
        // eval_before false does not switch off a recipe's evaluation before training.
        assert!(
            TrainOverrides::default()
                .apply(preset("lstm_h20").unwrap())
                .eval
                .before_training
        );
    }

    #[test]
    fn budget_flags_replace_the_budget() {
        let epochs = TrainOverrides {
            epochs: Some(2),
            ..Default::default()
        };
        assert_eq!(
            epochs.apply(preset("model_a").unwrap()).budget,
            Budget::Epochs(2)
        );
        let steps = TrainOverrides {
            iterations: Some(40),
            ..Default::default()
        };
        assert_eq!(steps.apply(default_config()).budget, Budget::Iterations(40));
    }

    #[test]
    fn changing_the_cell_drops_the_presets_activation() {
        let lstm = ModelOverrides {
            cell: Some(LayerKind::Lstm),
            ..Default::default()
        };
        let m = lstm.apply(preset("model_a").unwrap().model);
        assert_eq!((m.cell, m.activation), (LayerKind::Lstm, None));
        // The same cell keeps it; an explicit activation is applied after the cell.
        let rnn = ModelOverrides {
            cell: Some(LayerKind::Rnn),
            ..Default::default()
        };
        assert_eq!(
            rnn.apply(preset("model_a").unwrap().model).activation,
            Some(Activation::Relu)
        );
        let gru_tanh = ModelOverrides {
            cell: Some(LayerKind::Gru),
            activation: Some(Activation::Tanh),
            hidden: Some(20),
            layers: Some(3),
            ..ModelOverrides::default()
        };
        let m = gru_tanh.apply(preset("model_a").unwrap().model);
        assert_eq!(
            (m.cell, m.activation, m.hidden, m.layers),
            (LayerKind::Gru, Some(Activation::Tanh), 20, 3)
        );
    }

    #[test]
    fn a_new_optimizer_resets_the_lr_unless_lr_is_given() {
        let to = |kind, lr| TrainOverrides {
            optimizer: Some(kind),
            lr,
            ..Default::default()
        };
        // rnnimc: rmsprop at 3e-4.
        let imc = || preset("rnnimc").unwrap();
        let c = to(OptimKind::Sgd, None).apply(imc());
        assert_eq!(
            (c.optim.kind, c.optim.lr),
            (OptimKind::Sgd, default_lr(OptimKind::Sgd))
        );
        let c = to(OptimKind::Adam, None).apply(imc());
        assert_eq!((c.optim.kind, c.optim.lr), (OptimKind::Adam, 1e-3));
        let c = to(OptimKind::Sgd, Some(0.05)).apply(imc());
        assert_eq!((c.optim.kind, c.optim.lr), (OptimKind::Sgd, 0.05));
        // The same optimizer keeps the recipe's lr.
        let c = to(OptimKind::Rmsprop, None).apply(imc());
        assert_eq!((c.optim.kind, c.optim.lr), (OptimKind::Rmsprop, 3e-4));
        // --lr alone changes only the lr.
        let c = TrainOverrides {
            lr: Some(0.2),
            ..Default::default()
        }
        .apply(imc());
        assert_eq!((c.optim.kind, c.optim.lr), (OptimKind::Rmsprop, 0.2));
    }
}
