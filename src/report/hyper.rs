//! A run's hyperparameters as the grid names them: one value per grid key
//! (`grid::params::KEYS`), read back from the cell's config, for the runs table, grouping and
//! the tidy export. A key holds the value in force wherever it applies to the run, also when the
//! grid left it at PyTorch's default (Adam's `eps` is 1e-8, `weight_decay` 0, AdamW's 0.01), and
//! nothing where it does not apply (`beta1` of an SGD run, `step_size` without a step schedule,
//! `activation` of an LSTM) or where leaving it out means "off" rather than a number
//! (`clip_grad_norm`, `warmup`, `forget_bias`, `train_limit`).

use crate::grid::params::{Kind, KEYS};
use crate::trainer::config::{
    Budget, EvalEvery, InitScheme, InputMode, LayerKind, LrSchedule, OptimKind, TrainConfig,
};

/// The column type of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HyperKind {
    Text,
    Int,
    Float,
    Bool,
}

/// One key's value for one run.
#[derive(Clone, Debug, PartialEq)]
pub enum HyperValue {
    Text(String),
    Int(u64),
    Float(f64),
    Bool(bool),
}

/// Every grid key, in the order of `KEYS` (the order of `rnnsweep describe`).
pub fn keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.0)
}

/// The column type of grid key `key`; None for a name that is not a grid key.
pub fn kind(key: &str) -> Option<HyperKind> {
    let (_, k, _) = KEYS.iter().find(|k| k.0 == key)?;
    Some(match k {
        Kind::Word(_) | Kind::EvalEvery => HyperKind::Text,
        Kind::Int(..) => HyperKind::Int,
        Kind::Float(_) => HyperKind::Float,
        Kind::Bool => HyperKind::Bool,
    })
}

/// The value of grid key `key` for a run with config `cfg` (see the module doc for when it is
/// None). A name that is not a grid key is None too.
pub fn value(cfg: &TrainConfig, key: &str) -> Option<HyperValue> {
    use HyperValue::{Bool, Float, Int, Text};
    let (m, o) = (&cfg.model, &cfg.optim);
    let adam = matches!(o.kind, OptimKind::Adam | OptimKind::Adamw);
    let word = |s: &str| Some(Text(s.to_string()));
    match key {
        "cell" => word(m.cell.as_str()),
        "activation" => (m.cell == LayerKind::Rnn).then(|| Text(m.rnn_activation().to_string())),
        "hidden" => Some(Int(m.hidden as u64)),
        "layers" => Some(Int(m.layers as u64)),
        "init" => word(m.init.as_str()),
        "init_scale" => {
            (m.init == InitScheme::Identity).then(|| Float(m.init_scale.unwrap_or(1.0)))
        }
        "input" => word(m.input.as_str()),
        "permutation_seed" => {
            (m.input == InputMode::Permuted).then(|| Int(m.permutation_seed.unwrap_or(0)))
        }
        // nn.RNN's dropout acts between stacked layers only.
        "dropout" => (m.layers >= 2).then(|| Float(m.dropout.unwrap_or(0.0))),
        "forget_bias" => m.forget_bias.map(Float),
        "optimizer" => word(o.kind.as_str()),
        "lr" => Some(Float(o.lr)),
        "momentum" => (o.kind == OptimKind::Sgd).then_some(Float(o.momentum)),
        "nesterov" => (o.kind == OptimKind::Sgd).then_some(Bool(o.nesterov)),
        "weight_decay" => Some(Float(o.weight_decay())),
        "beta1" => adam.then(|| Float(o.betas().0)),
        "beta2" => adam.then(|| Float(o.betas().1)),
        "eps" => (adam || o.kind == OptimKind::Rmsprop).then(|| Float(o.eps())),
        "alpha" => (o.kind == OptimKind::Rmsprop).then(|| Float(o.alpha())),
        "clip_grad_norm" => o.clip_grad_norm.map(Float),
        "clip_grad_value" => o.clip_grad_value.map(Float),
        "lr_schedule" => word(o.lr_schedule.kind().as_str()),
        "step_size" => match o.lr_schedule {
            LrSchedule::Step { step_size, .. } => Some(Int(step_size)),
            _ => None,
        },
        "gamma" => match o.lr_schedule {
            LrSchedule::Step { gamma, .. } => Some(Float(gamma)),
            _ => None,
        },
        "eta_min" => match o.lr_schedule {
            LrSchedule::Cosine { eta_min } => Some(Float(eta_min)),
            _ => None,
        },
        "warmup" => o.warmup.map(Int),
        "batch" => Some(Int(cfg.batch_size as u64)),
        "epochs" => match cfg.budget {
            Budget::Epochs(e) => Some(Int(e as u64)),
            Budget::Iterations(_) => None,
        },
        "iterations" => match cfg.budget {
            Budget::Iterations(n) => Some(Int(n)),
            Budget::Epochs(_) => None,
        },
        "train_limit" => cfg.train_limit.map(|n| Int(n as u64)),
        "test_limit" => cfg.eval.test_limit.map(|n| Int(n as u64)),
        "eval_every" => Some(Text(match cfg.eval.every {
            EvalEvery::Epoch => "epoch".to_string(),
            EvalEvery::Iterations(k) => k.to_string(),
        })),
        "eval_before" => Some(Bool(cfg.eval.before_training)),
        "dataset" => word(cfg.dataset.as_str()),
        "flush_denormal" => Some(Bool(cfg.flush_denormal)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::presets::preset;

    /// Configs that between them use every key: a key that no config has a value for was
    /// forgotten in `value` (or is new).
    fn configs() -> Vec<TrainConfig> {
        let mut sgd = preset("lstm_h64").unwrap();
        sgd.optim.kind = OptimKind::Sgd;
        sgd.optim.momentum = 0.9;
        sgd.optim.lr_schedule = LrSchedule::Step {
            step_size: 2,
            gamma: 0.5,
        };
        sgd.optim.warmup = Some(10);
        sgd.optim.clip_grad_norm = Some(1.0);
        sgd.optim.clip_grad_value = Some(0.5);
        sgd.model.forget_bias = Some(1.0);
        sgd.model.layers = 2;
        sgd.train_limit = Some(1000);
        sgd.eval.test_limit = Some(100);
        let mut irnn = preset("lstm_h64").unwrap();
        irnn.model.cell = LayerKind::Rnn;
        irnn.model.init = InitScheme::Identity;
        irnn.model.input = InputMode::Permuted;
        irnn.optim.kind = OptimKind::Rmsprop;
        irnn.optim.lr_schedule = LrSchedule::Cosine { eta_min: 0.0 };
        irnn.budget = Budget::Iterations(100);
        let mut adam = preset("lstm_h64").unwrap();
        adam.optim.kind = OptimKind::Adam;
        adam.budget = Budget::Epochs(2);
        vec![sgd, irnn, adam]
    }

    #[test]
    fn every_grid_key_has_a_value_of_its_kind_somewhere() {
        let cfgs = configs();
        for key in keys() {
            let k = kind(key).unwrap();
            let values: Vec<HyperValue> = cfgs.iter().filter_map(|c| value(c, key)).collect();
            assert!(!values.is_empty(), "no config has a value for {key:?}");
            for v in values {
                let got = match v {
                    HyperValue::Text(_) => HyperKind::Text,
                    HyperValue::Int(_) => HyperKind::Int,
                    HyperValue::Float(_) => HyperKind::Float,
                    HyperValue::Bool(_) => HyperKind::Bool,
                };
                assert_eq!(got, k, "{key}");
            }
        }
        assert_eq!(kind("axis_hidden"), None);
        assert_eq!(value(&cfgs[0], "seed"), None);
    }

    #[test]
    fn defaults_in_force_and_keys_that_do_not_apply() {
        let cfgs = configs();
        let (sgd, irnn, adam) = (&cfgs[0], &cfgs[1], &cfgs[2]);
        assert_eq!(value(adam, "eps"), Some(HyperValue::Float(1e-8)));
        assert_eq!(value(adam, "beta2"), Some(HyperValue::Float(0.999)));
        assert_eq!(value(adam, "momentum"), None);
        assert_eq!(value(sgd, "beta1"), None);
        assert_eq!(
            value(sgd, "activation"),
            None,
            "an LSTM has no activation key"
        );
        assert_eq!(
            value(irnn, "activation"),
            Some(HyperValue::Text("tanh".into()))
        );
        assert_eq!(value(irnn, "init_scale"), Some(HyperValue::Float(1.0)));
        assert_eq!(value(irnn, "permutation_seed"), Some(HyperValue::Int(0)));
        assert_eq!(
            value(adam, "dropout"),
            None,
            "one layer: no dropout between layers"
        );
        assert_eq!(value(sgd, "dropout"), Some(HyperValue::Float(0.0)));
        assert_eq!(value(adam, "epochs"), Some(HyperValue::Int(2)));
        assert_eq!(value(adam, "iterations"), None);
        assert_eq!(
            value(irnn, "eval_every"),
            Some(HyperValue::Text("50".into()))
        );
        assert_eq!(value(irnn, "eval_before"), Some(HyperValue::Bool(false)));
    }
}
