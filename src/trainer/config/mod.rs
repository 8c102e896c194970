//! The typed description of one training run (`TrainConfig`: model, optimizer, budget, data,
//! evaluation schedule and seed) and its validation; the optimizer's part is in `optim.rs`, the
//! table of settings in `keys.rs`, the tutorial recipes in `presets.rs`. Everything downstream
//! (plan, store, report) serializes exactly this.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::data::sequence::InputMode;
use crate::data::sequence::Reading;
pub use crate::data::Dataset;
use crate::error::ConfigError;

pub mod keys;
mod optim;
pub mod presets;
pub use optim::{LrSchedule, OptimConfig};

/// Largest accepted hidden size and layer count (guards against typos like 1280000).
pub const MAX_HIDDEN: usize = 8192;
pub const MAX_LAYERS: usize = 16;

macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident, { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every accepted spelling, in declaration order.
            pub const ALL: &'static [&'static str] = &[$($word),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

word_enum!(
    /// The kind of recurrent layer (the grid key and config field are `cell`, as in the
    /// tutorials; in the code "cell" means a grid cell, `plan::Cell`).
    LayerKind, { Rnn => "rnn", Lstm => "lstm", Gru => "gru" }
);
word_enum!(
    /// The nonlinearity of a vanilla RNN cell (LSTM and GRU have fixed gate functions).
    Activation, { Relu => "relu", Tanh => "tanh" }
);
word_enum!(
    /// How the recurrent weights W_hh start. `pytorch`: every parameter U(−1/√H, 1/√H), as
    /// nn.RNN/LSTM/GRU do. `orthogonal`: then each gate block (H × H) of every W_hh is replaced
    /// by a random orthogonal matrix (torch.nn.init.orthogonal_ on the block: QR of a Gaussian
    /// matrix, signs fixed by R's diagonal). `identity` (rnn only; IRNN, Le, Jaitly & Hinton
    /// 2015): W_hh = init_scale · I and every recurrent bias 0; W_ih keeps PyTorch's init.
    InitScheme, { Pytorch => "pytorch", Orthogonal => "orthogonal", Identity => "identity" }
);

// The variants come from `word_enum!`, which cannot mark one `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for InitScheme {
    fn default() -> Self {
        InitScheme::Pytorch
    }
}

impl InitScheme {
    pub fn is_pytorch(&self) -> bool {
        *self == InitScheme::Pytorch
    }
}

word_enum!(
    /// The kind of learning-rate schedule (see [`LrSchedule`]).
    ScheduleKind, { Constant => "constant", Step => "step", Cosine => "cosine" }
);
word_enum!(
    /// The optimizer, with PyTorch semantics.
    OptimKind, { Sgd => "sgd", Adam => "adam", Adamw => "adamw", Rmsprop => "rmsprop" }
);

impl LayerKind {
    /// Gate blocks stacked in the weight matrices (PyTorch layout).
    pub fn gates(self) -> usize {
        match self {
            LayerKind::Rnn => 1,
            LayerKind::Lstm => 4,
            LayerKind::Gru => 3,
        }
    }
}

/// Shape of the network: `layers` stacked cells of `hidden` units, then a linear head (10 classes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub cell: LayerKind,
    pub hidden: usize,
    pub layers: usize,
    /// Only for `rnn` (default tanh, as in PyTorch); must be absent for lstm and gru.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    /// How the recurrent weights start (default PyTorch's uniform init of every parameter).
    #[serde(default, skip_serializing_if = "InitScheme::is_pytorch")]
    pub init: InitScheme,
    /// `init = "identity"`: W_hh = init_scale · I (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_scale: Option<f64>,
    /// LSTM only: the forget gate's bias starts at this value, all in `bias_ih` (its slice of
    /// `bias_hh` starts at 0), so the gate's total bias is exactly this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forget_bias: Option<f64>,
    /// Dropout probability on every layer's output but the last, in training (the `dropout`
    /// argument of nn.RNN/LSTM/GRU; see `trainer::model::dropout`). Needs 2 or more layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// How the network reads an image (see `data::sequence`): rows (default), columns, pixels
    /// or permuted pixels.
    #[serde(default, skip_serializing_if = "InputMode::is_rows")]
    pub input: InputMode,
    /// `input = "permuted"`: the seed of the pixel order (the same for training and test
    /// images; written into the config, default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permutation_seed: Option<u64>,
}

/// The model of `train` and `describe` without flags: a tanh RNN h128, one layer.
impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            cell: LayerKind::Rnn,
            hidden: 128,
            layers: 1,
            activation: None,
            init: InitScheme::Pytorch,
            init_scale: None,
            forget_bias: None,
            dropout: None,
            input: InputMode::Rows,
            permutation_seed: None,
        }
    }
}

impl ModelConfig {
    /// The RNN nonlinearity in effect (tanh when unset, PyTorch's default).
    pub fn rnn_activation(&self) -> Activation {
        self.activation.unwrap_or(Activation::Tanh)
    }

    /// Canonical form: an rnn always names its activation.
    pub fn normalized(mut self) -> Self {
        if self.cell == LayerKind::Rnn {
            self.activation = Some(self.rnn_activation());
        }
        if self.init_scale == Some(1.0) && self.init == InitScheme::Identity {
            self.init_scale = None;
        }
        if self.dropout == Some(0.0) {
            self.dropout = None;
        }
        if self.input == InputMode::Permuted && self.permutation_seed.is_none() {
            self.permutation_seed = Some(0);
        }
        self
    }

    /// The model's rule that no key's range or scope says (those are checked from the table
    /// of keys, [`keys::check_values`]): the identity init is for rnn cells.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.init == InitScheme::Identity && self.cell != LayerKind::Rnn {
            return Err(ConfigError::new(
                "init",
                "identity",
                format!(
                    "the identity init (IRNN) is for rnn cells; {} gates need their own \
                     recurrent weights (try orthogonal)",
                    self.cell
                ),
            ));
        }
        Ok(())
    }

    /// How this model reads an image.
    pub fn reading(&self) -> Reading {
        Reading::new(self.input, self.permutation_seed.unwrap_or(0))
    }

    /// A short human label, e.g. `rnn-relu h100 L2` or `lstm h64`.
    pub fn label(&self) -> String {
        let cell = match self.cell {
            LayerKind::Rnn => format!("rnn-{}", self.rnn_activation()),
            c => c.to_string(),
        };
        let base = if self.layers == 1 {
            format!("{cell} h{}", self.hidden)
        } else {
            format!("{cell} h{} L{}", self.hidden, self.layers)
        };
        match self.input {
            InputMode::Rows => base,
            other => format!("{base} {other}"),
        }
    }
}

/// How long to train: whole epochs, or a number of optimizer steps (iterations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Budget {
    Epochs(u32),
    Iterations(u64),
}

/// When to evaluate on the test set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalEvery {
    /// After every epoch.
    Epoch,
    /// After every K optimizer steps.
    Iterations(u64),
}

impl fmt::Display for EvalEvery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalEvery::Epoch => f.write_str("epoch"),
            EvalEvery::Iterations(k) => write!(f, "{k} iterations"),
        }
    }
}

/// The evaluation schedule. The final model is always evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    pub every: EvalEvery,
    /// Also evaluate the untrained model (epoch 0).
    #[serde(default)]
    pub before_training: bool,
    /// Evaluate on the first N test images only (None = all 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
}

/// Everything that determines one training run; same config + same data ⇒ same result on CPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub optim: OptimConfig,
    pub batch_size: usize,
    pub budget: Budget,
    pub seed: u64,
    /// Train on the first N training images only (None = all 60,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    pub eval: EvalConfig,
    /// Flush subnormal floats to zero on the CPU (`torch.set_flush_denormal(True)`, see
    /// `trainer::fit::denormal`); off by default, as in PyTorch, and then absent from the config.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flush_denormal: bool,
    /// The data set trained and evaluated on. MNIST (the default) is left out of the JSON, so
    /// configs and cell ids from before the key existed are unchanged; another data set is
    /// written out and, with its data fingerprint, makes other cell ids (`plan::cell_id`).
    #[serde(default, skip_serializing_if = "Dataset::is_mnist")]
    pub dataset: Dataset,
}

impl TrainConfig {
    /// Every setting in its range and set only where it applies (from the table of keys), then
    /// the rules between settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        keys::check_values(self)?;
        self.model.validate()?;
        self.optim.validate()?;
        if let Some(n) = self.train_limit {
            if self.batch_size > n {
                return Err(ConfigError::new(
                    "batch",
                    self.batch_size,
                    format!("batch size must not exceed the {n} training images in use"),
                ));
            }
        }
        Ok(())
    }

    /// Canonical form: a setting equal to its default is left out (so both spellings are one
    /// cell), an rnn names its activation.
    pub fn normalized(self) -> Self {
        TrainConfig {
            model: self.model.normalized(),
            optim: self.optim.normalized(),
            ..self
        }
    }

    /// Training images in use.
    pub fn train_size(&self) -> usize {
        self.train_limit.unwrap_or(60_000)
    }

    /// Optimizer steps in one epoch (the last batch may be smaller, as in PyTorch's DataLoader).
    pub fn batches_per_epoch(&self) -> u64 {
        self.train_size().div_ceil(self.batch_size) as u64
    }

    /// Training samples of the whole budget (every epoch's last batch may be smaller).
    pub fn total_samples(&self) -> u64 {
        let (n, per_epoch) = (self.train_size() as u64, self.batches_per_epoch());
        let steps = self.total_iterations();
        (steps / per_epoch) * n + (steps % per_epoch) * self.batch_size as u64
    }

    /// Total optimizer steps of the run.
    pub fn total_iterations(&self) -> u64 {
        match self.budget {
            Budget::Epochs(e) => e as u64 * self.batches_per_epoch(),
            Budget::Iterations(n) => n,
        }
    }

    /// A file-name-safe summary of the config, e.g. `rnn-relu-h100-l1-sgd-lr0.1-b100-it3000-s0`.
    pub fn slug(&self) -> String {
        let m = &self.model;
        let cell = match m.cell {
            LayerKind::Rnn => format!("rnn-{}", m.rnn_activation()),
            c => c.to_string(),
        };
        let budget = match self.budget {
            Budget::Epochs(e) => format!("ep{e}"),
            Budget::Iterations(n) => format!("it{n}"),
        };
        let mut s = format!(
            "{cell}-h{}-l{}-{}-lr{}-b{}-{budget}-s{}",
            m.hidden, m.layers, self.optim.kind, self.optim.lr, self.batch_size, self.seed
        );
        if self.optim.momentum != 0.0 {
            s.push_str(&format!("-m{}", self.optim.momentum));
        }
        match m.init {
            InitScheme::Pytorch => {}
            InitScheme::Orthogonal => s.push_str("-orth"),
            InitScheme::Identity => s.push_str(&format!("-irnn{}", m.init_scale.unwrap_or(1.0))),
        }
        if let Some(b) = m.forget_bias {
            s.push_str(&format!("-fb{b}"));
        }
        if let Some(p) = m.dropout {
            s.push_str(&format!("-drop{p}"));
        }
        match m.input {
            InputMode::Rows => {}
            InputMode::Permuted => {
                s.push_str(&format!("-permuted{}", m.permutation_seed.unwrap_or(0)))
            }
            other => s.push_str(&format!("-{other}")),
        }
        s.push_str(&self.optim.slug_tail());
        if let Some(n) = self.train_limit {
            s.push_str(&format!("-n{n}"));
        }
        if !self.dataset.is_mnist() {
            s.push_str(&format!("-{}", self.dataset));
        }
        if self.flush_denormal {
            s.push_str("-ftz");
        }
        s
    }

    /// Number of (possibly partial) epochs the run touches.
    pub fn total_epochs(&self) -> u64 {
        self.total_iterations().div_ceil(self.batches_per_epoch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presets::preset;

    #[test]
    fn validation_names_the_setting_and_what_is_allowed() {
        let base = preset("model_c").unwrap();
        let check = |f: &dyn Fn(&mut TrainConfig), want: &str| {
            let mut c = base.clone();
            f(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        };
        check(&|c| c.model.hidden = 0, "invalid hidden = 0");
        check(&|c| c.model.layers = 0, "invalid layers = 0");
        check(&|c| c.optim.lr = 0.0, "invalid lr = 0");
        check(&|c| c.optim.lr = f64::NAN, "invalid lr = NaN");
        check(&|c| c.batch_size = 0, "invalid batch = 0");
        check(&|c| c.budget = Budget::Epochs(0), "invalid epochs = 0");
        check(&|c| c.eval.test_limit = Some(20_000), "invalid test_limit");
        check(
            &|c| {
                c.train_limit = Some(50);
            },
            "must not exceed the 50 training images",
        );
        check(
            &|c| {
                c.model.cell = LayerKind::Lstm;
            },
            "activation applies only where cell = rnn; this run has cell = lstm",
        );
        check(
            &|c| {
                c.optim.kind = OptimKind::Adam;
                c.optim.momentum = 0.9;
            },
            "momentum applies only where optimizer = sgd",
        );
    }

    #[test]
    fn config_round_trips_through_json_and_rejects_unknown_keys() {
        let c = preset("lstm_h64").unwrap();
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&j).unwrap(), c);
        let bad = j.replace("\"seed\"", "\"sead\"");
        assert!(serde_json::from_str::<TrainConfig>(&bad).is_err());
    }

    #[test]
    fn the_dataset_is_written_only_when_not_mnist() {
        let mut c = preset("lstm_h64").unwrap();
        let mnist = serde_json::to_string(&c).unwrap();
        assert!(!mnist.contains("dataset"), "{mnist}");
        c.dataset = Dataset::FashionMnist;
        let fashion = serde_json::to_string(&c).unwrap();
        assert!(
            fashion.contains("\"dataset\":\"fashion-mnist\""),
            "{fashion}"
        );
        assert_eq!(serde_json::from_str::<TrainConfig>(&fashion).unwrap(), c);
        assert!(c.slug().ends_with("-s0-fashion-mnist"), "{}", c.slug());
        let bad = fashion.replace("fashion-mnist", "kmnist");
        let e = serde_json::from_str::<TrainConfig>(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("kmnist"), "{e}");
    }
}
