//! The six tutorial recipes of RECIPES.md as training configs (`--preset`, `bench`, the
//! experiment grids' comments): what "Model A" or "lstm_h64" means, in one place.

use super::config::{
    Activation, Budget, EvalConfig, EvalEvery, LayerKind, ModelConfig, OptimConfig, OptimKind,
    TrainConfig,
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
    };
    let lstm = |hidden| ModelConfig {
        cell: LayerKind::Lstm,
        hidden,
        layers: 1,
        activation: None,
    };
    let opt = |kind, lr| OptimConfig {
        kind,
        lr,
        momentum: 0.0,
    };
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
        },
        "lstm_h64" => TrainConfig {
            model: lstm(64),
            optim: opt(OptimKind::Adam, 0.01),
            batch_size: 64,
            budget: Budget::Epochs(1),
            seed: 0,
            train_limit: None,
            eval: eval(EvalEvery::Iterations(50), false, Some(2000)),
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
        },
        optim: OptimConfig {
            kind: OptimKind::Adam,
            lr: 1e-3,
            momentum: 0.0,
        },
        batch_size: 64,
        budget: Budget::Epochs(1),
        seed: 0,
        train_limit: None,
        eval: EvalConfig {
            every: EvalEvery::Epoch,
            before_training: false,
            test_limit: None,
        },
    }
}

/// The learning rate `train --optimizer K` uses unless `--lr` is given: 0.1 for sgd, 0.001
/// for adam, 0.01 for rmsprop.
pub fn default_lr(kind: OptimKind) -> f64 {
    match kind {
        OptimKind::Sgd => 0.1,
        OptimKind::Adam => 1e-3,
        OptimKind::Rmsprop => 1e-2,
    }
}
