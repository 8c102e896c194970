//! The six tutorial recipes of RECIPES.md as training configs (`--preset`, `bench`, the
//! experiment grids' comments): what "Model A" or "lstm_h64" means, in one place. Also the
//! config `train` and `describe` start from without a recipe (their flags are settings of the
//! table of keys, written onto it by `config::keys::apply`).

use super::{
    Activation, Budget, Dataset, EvalConfig, EvalEvery, LayerKind, ModelConfig, OptimConfig,
    OptimKind, TrainConfig,
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

/// The recipe `id`, or [`default_config`] without one: what `train` and `describe` start from.
pub fn preset_or_default(id: Option<&str>) -> Result<TrainConfig, ConfigError> {
    match id {
        Some(id) => preset(id),
        None => Ok(default_config()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::keys;

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
            assert_eq!(
                keys::apply(base.clone(), &|_| None, false).unwrap(),
                base,
                "{id}"
            );
        }
        assert_eq!(preset_or_default(None).unwrap(), default_config());
        assert_eq!(
            preset_or_default(Some("lstm_h20")).unwrap(),
            preset("lstm_h20").unwrap()
        );
        assert!(preset_or_default(Some("model_d")).is_err());
    }

    #[test]
    fn settings_override_the_preset_one_by_one() {
        let given = |name: &str| {
            let text = match name {
                "hidden" => "64",
                "momentum" => "0.9",
                "batch" => "32",
                "train_limit" => "1000",
                "test_limit" => "500",
                "eval_every" => "epoch",
                "eval_before" | "flush_denormal" => "true",
                "dataset" => "fashion-mnist",
                _ => return None,
            };
            Some(keys::parse_text(keys::key(name).unwrap().kind, text).unwrap())
        };
        let c = keys::apply(preset("model_b").unwrap(), &given, false).unwrap();
        let mut want = preset("model_b").unwrap();
        want.model.hidden = 64;
        want.optim.momentum = 0.9;
        want.batch_size = 32;
        want.train_limit = Some(1000);
        want.eval.test_limit = Some(500);
        want.eval.every = EvalEvery::Epoch;
        want.eval.before_training = true;
        want.flush_denormal = true;
        want.dataset = Dataset::FashionMnist;
        assert_eq!(c, want);
    }
}
