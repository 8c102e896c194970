//! The typed description of one training run (`TrainConfig`: model, optimizer, budget, data,
//! evaluation schedule and seed), its validation, and the six tutorial recipes as presets.
//! Everything downstream (plan, store, report) serializes exactly this.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Largest accepted hidden size and layer count (guards against typos like 1280000).
pub const MAX_HIDDEN: usize = 8192;
pub const MAX_LAYERS: usize = 16;

macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, { $($variant:ident => $word:literal),+ $(,)? }) => {
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
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.to_ascii_lowercase().as_str() {
                    $($word => Ok($name::$variant),)+
                    _ => Err(format!("unknown {} {s:?}; allowed: {}", $what, Self::ALL.join(", "))),
                }
            }
        }
    };
}

word_enum!(
    /// The kind of recurrent layer (the grid key and config field are `cell`, as in the
    /// tutorials; in the code "cell" means a grid cell, `plan::Cell`).
    LayerKind, "cell", { Rnn => "rnn", Lstm => "lstm", Gru => "gru" }
);
word_enum!(
    /// The nonlinearity of a vanilla RNN cell (LSTM and GRU have fixed gate functions).
    Activation, "activation", { Relu => "relu", Tanh => "tanh" }
);
word_enum!(
    /// How the recurrent weights W_hh start. `pytorch`: every parameter U(−1/√H, 1/√H), as
    /// nn.RNN/LSTM/GRU do. `orthogonal`: then each gate block (H × H) of every W_hh is replaced
    /// by a random orthogonal matrix (torch.nn.init.orthogonal_ on the block: QR of a Gaussian
    /// matrix, signs fixed by R's diagonal). `identity` (rnn only; IRNN, Le, Jaitly & Hinton
    /// 2015): W_hh = init_scale · I and every recurrent bias 0; W_ih keeps PyTorch's init.
    InitScheme, "init", { Pytorch => "pytorch", Orthogonal => "orthogonal", Identity => "identity" }
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
    ScheduleKind, "lr_schedule", { Constant => "constant", Step => "step", Cosine => "cosine" }
);
word_enum!(
    /// The optimizer, with PyTorch semantics.
    OptimKind, "optimizer", { Sgd => "sgd", Adam => "adam", Adamw => "adamw", Rmsprop => "rmsprop" }
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
    /// argument of nn.RNN/LSTM/GRU; see `trainer::dropout`). Needs 2 or more layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
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
        self
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.hidden == 0 || self.hidden > MAX_HIDDEN {
            return Err(ConfigError::new(
                "hidden",
                self.hidden,
                format!("hidden size must be 1..={MAX_HIDDEN}"),
            ));
        }
        if self.layers == 0 || self.layers > MAX_LAYERS {
            return Err(ConfigError::new(
                "layers",
                self.layers,
                format!("layers must be 1..={MAX_LAYERS}"),
            ));
        }
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
        if let Some(x) = self.init_scale {
            if self.init != InitScheme::Identity {
                return Err(ConfigError::new(
                    "init_scale",
                    x,
                    "init_scale goes with init = \"identity\"",
                ));
            }
            if !(x.is_finite() && x > 0.0) {
                return Err(ConfigError::new(
                    "init_scale",
                    x,
                    "init_scale must be a number > 0",
                ));
            }
        }
        if let Some(p) = self.dropout {
            if !(0.0..1.0).contains(&p) {
                return Err(ConfigError::new("dropout", p, "dropout must be in [0, 1)"));
            }
            if p > 0.0 && self.layers < 2 {
                return Err(ConfigError::new(
                    "dropout",
                    p,
                    "dropout acts between stacked layers: set layers ≥ 2 (PyTorch would \
                     ignore it on 1 layer)",
                ));
            }
        }
        if let Some(b) = self.forget_bias {
            if self.cell != LayerKind::Lstm {
                return Err(ConfigError::new(
                    "forget_bias",
                    b,
                    format!("forget_bias is for lstm cells, not {}", self.cell),
                ));
            }
            if !b.is_finite() {
                return Err(ConfigError::new(
                    "forget_bias",
                    b,
                    "forget_bias must be a number",
                ));
            }
        }
        if let (LayerKind::Lstm | LayerKind::Gru, Some(a)) = (self.cell, self.activation) {
            return Err(ConfigError::new(
                "activation",
                a,
                format!(
                    "{} cells have fixed gate functions; set activation only for cell = rnn",
                    self.cell
                ),
            ));
        }
        Ok(())
    }

    /// A short human label, e.g. `rnn-relu h100 L2` or `lstm h64`.
    pub fn label(&self) -> String {
        let cell = match self.cell {
            LayerKind::Rnn => format!("rnn-{}", self.rnn_activation()),
            c => c.to_string(),
        };
        if self.layers == 1 {
            format!("{cell} h{}", self.hidden)
        } else {
            format!("{cell} h{} L{}", self.hidden, self.layers)
        }
    }
}

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

    pub fn validate(&self) -> Result<(), ConfigError> {
        let kind = self.kind;
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 100.0) {
            return Err(ConfigError::new(
                "lr",
                self.lr,
                "the learning rate must be a number in (0, 100]",
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(ConfigError::new(
                "momentum",
                self.momentum,
                "momentum must be in [0, 1)",
            ));
        }
        let only = |key: &'static str, value: String, which: &[OptimKind]| {
            if which.contains(&kind) {
                return Ok(());
            }
            let names: Vec<&str> = which.iter().map(|k| k.as_str()).collect();
            Err(ConfigError::new(
                key,
                value,
                format!(
                    "{key} {} to {} only, not {kind}",
                    if key == "betas" { "apply" } else { "applies" },
                    names.join(" and ")
                ),
            ))
        };
        if self.momentum != 0.0 {
            only("momentum", self.momentum.to_string(), &[OptimKind::Sgd])?;
        }
        if self.nesterov {
            only("nesterov", "true".into(), &[OptimKind::Sgd])?;
            if self.momentum == 0.0 {
                return Err(ConfigError::new(
                    "nesterov",
                    true,
                    "Nesterov momentum needs a momentum > 0 (as in PyTorch)",
                ));
            }
        }
        if let Some(wd) = self.weight_decay {
            if !(wd.is_finite() && wd >= 0.0) {
                return Err(ConfigError::new(
                    "weight_decay",
                    wd,
                    "the weight decay must be a number ≥ 0",
                ));
            }
        }
        if let Some((b1, b2)) = self.betas {
            let adam = [OptimKind::Adam, OptimKind::Adamw];
            only("betas", format!("({b1}, {b2})"), &adam)?;
            for (key, b) in [("beta1", b1), ("beta2", b2)] {
                if !(0.0..1.0).contains(&b) {
                    return Err(ConfigError::new(key, b, format!("{key} must be in [0, 1)")));
                }
            }
        }
        if let Some(eps) = self.eps {
            only(
                "eps",
                eps.to_string(),
                &[OptimKind::Adam, OptimKind::Adamw, OptimKind::Rmsprop],
            )?;
            if !(eps.is_finite() && eps >= 0.0) {
                return Err(ConfigError::new("eps", eps, "eps must be a number ≥ 0"));
            }
        }
        if let Some(alpha) = self.alpha {
            only("alpha", alpha.to_string(), &[OptimKind::Rmsprop])?;
            if !(0.0..=1.0).contains(&alpha) {
                return Err(ConfigError::new("alpha", alpha, "alpha must be in [0, 1]"));
            }
        }
        for (key, v) in [
            ("clip_grad_norm", self.clip_grad_norm),
            ("clip_grad_value", self.clip_grad_value),
        ] {
            if let Some(x) = v {
                if !(x.is_finite() && x > 0.0) {
                    return Err(ConfigError::new(
                        key,
                        x,
                        format!("{key} must be a number > 0 (leave it out for no clipping)"),
                    ));
                }
            }
        }
        match self.lr_schedule {
            LrSchedule::Constant => {}
            LrSchedule::Step { step_size, gamma } => {
                if step_size == 0 {
                    return Err(ConfigError::new(
                        "step_size",
                        0,
                        "step_size counts epochs: ≥ 1",
                    ));
                }
                if !(gamma.is_finite() && gamma > 0.0 && gamma <= 1.0) {
                    return Err(ConfigError::new("gamma", gamma, "gamma must be in (0, 1]"));
                }
            }
            LrSchedule::Cosine { eta_min } => {
                if !(eta_min.is_finite() && eta_min >= 0.0 && eta_min < self.lr) {
                    return Err(ConfigError::new(
                        "eta_min",
                        eta_min,
                        format!(
                            "eta_min must be ≥ 0 and below the learning rate {}",
                            self.lr
                        ),
                    ));
                }
            }
        }
        if let Some(n) = self.warmup {
            if n < 2 {
                return Err(ConfigError::new(
                    "warmup",
                    n,
                    "a warmup lasts at least 2 steps (leave it out for none)",
                ));
            }
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

impl FromStr for EvalEvery {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("epoch") {
            return Ok(EvalEvery::Epoch);
        }
        match s.parse::<u64>() {
            Ok(k) if k > 0 => Ok(EvalEvery::Iterations(k)),
            _ => Err(format!(
                "expected `epoch` or a number of iterations ≥ 1, got {s:?}"
            )),
        }
    }
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
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.model.validate()?;
        self.optim.validate()?;
        if self.batch_size == 0 || self.batch_size > 60_000 {
            return Err(ConfigError::new(
                "batch",
                self.batch_size,
                "batch size must be 1..=60000",
            ));
        }
        match self.budget {
            Budget::Epochs(0) => {
                return Err(ConfigError::new("epochs", 0, "train for at least 1 epoch"))
            }
            Budget::Iterations(0) => {
                return Err(ConfigError::new(
                    "iterations",
                    0,
                    "train for at least 1 iteration",
                ))
            }
            Budget::Epochs(e) if e > 10_000 => {
                return Err(ConfigError::new("epochs", e, "at most 10000 epochs"))
            }
            _ => {}
        }
        if let EvalEvery::Iterations(0) = self.eval.every {
            return Err(ConfigError::new(
                "eval_every",
                0,
                "evaluate every ≥ 1 iterations, or every epoch",
            ));
        }
        if let Some(n) = self.train_limit {
            if n == 0 || n > 60_000 {
                return Err(ConfigError::new(
                    "train_limit",
                    n,
                    "the training subset must hold 1..=60000 images",
                ));
            }
            if self.batch_size > n {
                return Err(ConfigError::new(
                    "batch",
                    self.batch_size,
                    format!("batch size must not exceed the {n} training images in use"),
                ));
            }
        }
        if let Some(n) = self.eval.test_limit {
            if n == 0 || n > 10_000 {
                return Err(ConfigError::new(
                    "test_limit",
                    n,
                    "the test subset must hold 1..=10000 images",
                ));
            }
        }
        Ok(())
    }

    /// Training images in use.
    pub fn train_size(&self) -> usize {
        self.train_limit.unwrap_or(60_000)
    }

    /// Optimizer steps in one epoch (the last batch may be smaller, as in PyTorch's DataLoader).
    pub fn batches_per_epoch(&self) -> u64 {
        self.train_size().div_ceil(self.batch_size) as u64
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
        let o = &self.optim;
        if o.nesterov {
            s.push_str("-nesterov");
        }
        if let Some(wd) = o.weight_decay {
            s.push_str(&format!("-wd{wd}"));
        }
        if let Some((b1, b2)) = o.betas {
            s.push_str(&format!("-betas{b1}_{b2}"));
        }
        if let Some(eps) = o.eps {
            s.push_str(&format!("-eps{eps}"));
        }
        if let Some(alpha) = o.alpha {
            s.push_str(&format!("-alpha{alpha}"));
        }
        if let Some(x) = o.clip_grad_norm {
            s.push_str(&format!("-clipnorm{x}"));
        }
        if let Some(x) = o.clip_grad_value {
            s.push_str(&format!("-clipvalue{x}"));
        }
        match o.lr_schedule {
            LrSchedule::Constant => {}
            LrSchedule::Step { step_size, gamma } => {
                s.push_str(&format!("-step{step_size}x{gamma}"))
            }
            LrSchedule::Cosine { eta_min } => s.push_str(&format!("-cosine{eta_min}")),
        }
        if let Some(n) = o.warmup {
            s.push_str(&format!("-warmup{n}"));
        }
        if let Some(n) = self.train_limit {
            s.push_str(&format!("-n{n}"));
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
    use crate::trainer::presets::preset;

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
            "set activation only for cell = rnn",
        );
        check(
            &|c| {
                c.optim.kind = OptimKind::Adam;
                c.optim.momentum = 0.9;
            },
            "momentum applies to sgd only",
        );
    }

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
    fn study_space_settings_are_checked() {
        let base = OptimConfig::new(OptimKind::Rmsprop, 0.01);
        let check = |f: &dyn Fn(&mut OptimConfig), want: &str| {
            let mut o = base.clone();
            f(&mut o);
            let e = o.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        };
        check(
            &|o| o.nesterov = true,
            "nesterov applies to sgd only, not rmsprop",
        );
        check(
            &|o| o.betas = Some((0.9, 0.99)),
            "betas apply to adam and adamw only",
        );
        check(
            &|o| o.weight_decay = Some(-1.0),
            "weight decay must be a number ≥ 0",
        );
        check(&|o| o.alpha = Some(1.5), "alpha must be in [0, 1]");
        check(&|o| o.eps = Some(f64::NAN), "eps must be a number ≥ 0");
        check(
            &|o| o.clip_grad_norm = Some(0.0),
            "clip_grad_norm must be a number > 0",
        );
        check(
            &|o| {
                o.clip_grad_norm = Some(1.0);
                o.clip_grad_value = Some(1.0);
            },
            "not both",
        );
        check(
            &|o| {
                o.lr_schedule = LrSchedule::Step {
                    step_size: 0,
                    gamma: 0.5,
                }
            },
            "step_size counts epochs",
        );
        check(
            &|o| {
                o.lr_schedule = LrSchedule::Step {
                    step_size: 1,
                    gamma: 1.5,
                }
            },
            "gamma must be in (0, 1]",
        );
        check(
            &|o| o.lr_schedule = LrSchedule::Cosine { eta_min: 1.0 },
            "eta_min must be ≥ 0 and below the learning rate",
        );
        check(&|o| o.warmup = Some(1), "at least 2 steps");
        let mut sgd = OptimConfig::new(OptimKind::Sgd, 0.1);
        sgd.nesterov = true;
        assert!(sgd
            .validate()
            .unwrap_err()
            .to_string()
            .contains("needs a momentum > 0"));
        sgd.momentum = 0.9;
        sgd.validate().unwrap();
    }

    #[test]
    fn words_parse_case_insensitively_and_list_alternatives() {
        assert_eq!("LSTM".parse::<LayerKind>().unwrap(), LayerKind::Lstm);
        let e = "lstmm".parse::<LayerKind>().unwrap_err();
        assert!(e.contains("allowed: rnn, lstm, gru"), "{e}");
        assert_eq!("epoch".parse::<EvalEvery>().unwrap(), EvalEvery::Epoch);
        assert_eq!(
            "500".parse::<EvalEvery>().unwrap(),
            EvalEvery::Iterations(500)
        );
        assert!("0".parse::<EvalEvery>().is_err());
    }

    #[test]
    fn config_round_trips_through_json_and_rejects_unknown_keys() {
        let c = preset("lstm_h64").unwrap();
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<TrainConfig>(&j).unwrap(), c);
        let bad = j.replace("\"seed\"", "\"sead\"");
        assert!(serde_json::from_str::<TrainConfig>(&bad).is_err());
    }
}
