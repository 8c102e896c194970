//! A run's settings as columns of the runs table: one column per key of the table of keys
//! (`trainer::config::keys::KEYS`), named as the grid names it, typed by the key's kind, and
//! holding the key's value in force ([`Key::in_force`]): also where the grid left it at its
//! default (Adam's `eps` is 1e-8, AdamW's `weight_decay` 0.01), and null where the key does not
//! apply (`momentum` of an Adam run, `step_size` without a step schedule, `activation` of an
//! LSTM) or where leaving it out means "off" rather than a number (`clip_grad_norm`, `warmup`,
//! `forget_bias`, `train_limit`). `summarize`, `effects` and `export` all read these columns.

use polars::prelude::*;

use crate::trainer::config::keys::{Key, Kind, Value, KEYS};
use crate::trainer::config::TrainConfig;

/// Every key, in the order of the table.
pub fn keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name)
}

/// The column of `key` over the runs' configs.
pub fn column(key: &Key, configs: &[TrainConfig]) -> Column {
    // The value in force of each run, as `pick` takes it (None: null).
    fn values<T>(
        key: &Key,
        configs: &[TrainConfig],
        pick: fn(Value) -> Option<T>,
    ) -> Vec<Option<T>> {
        configs
            .iter()
            .map(|c| key.in_force(c).and_then(pick))
            .collect()
    }
    let name = key.name.into();
    match key.kind {
        Kind::Word(_) | Kind::EvalEvery => {
            Column::new(name, values(key, configs, |v| Some(v.text())))
        }
        Kind::Int(..) => Column::new(
            name,
            values(key, configs, |v| match v {
                Value::Int(i) => Some(i),
                _ => None,
            }),
        ),
        Kind::Float(_) => Column::new(
            name,
            values(key, configs, |v| match v {
                Value::Float(x) => Some(x),
                _ => None,
            }),
        ),
        Kind::Bool => Column::new(
            name,
            values(key, configs, |v| match v {
                Value::Bool(b) => Some(b),
                _ => None,
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::presets::preset;
    use crate::trainer::config::{Budget, InitScheme, InputMode, LayerKind, LrSchedule, OptimKind};

    /// Configs that between them use every key: a key that no config has a value for was
    /// forgotten in the table (or is new: add it to a config here).
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
        irnn.optim.clip_grad_value = Some(0.5);
        irnn.budget = Budget::Iterations(100);
        let mut adam = preset("lstm_h64").unwrap();
        adam.optim.kind = OptimKind::Adam;
        adam.budget = Budget::Epochs(2);
        vec![sgd, irnn, adam]
    }

    #[test]
    fn every_key_has_a_value_of_its_kind_somewhere() {
        let cfgs = configs();
        for key in KEYS {
            let col = column(key, &cfgs);
            assert!(
                col.null_count() < col.len(),
                "no config has a value for {:?}",
                key.name
            );
        }
        let irnn = &cfgs[1];
        let eval_every = KEYS.iter().find(|k| k.name == "eval_every").unwrap();
        assert_eq!(
            column(eval_every, std::slice::from_ref(irnn))
                .str()
                .unwrap()
                .get(0),
            Some("50")
        );
    }
}
