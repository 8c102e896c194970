//! The hyperparameter keys a grid may set, what values each accepts, and how a cell's settings
//! become a `TrainConfig`. Every key can appear in `[defaults]`, in a `[[variant]]`, or as a
//! `[grid]` axis.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use crate::trainer::config::*;

/// The type of values a key takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// One of the listed words.
    Word(&'static [&'static str]),
    /// An integer in the inclusive range.
    Int(u64, u64),
    /// A number in the range.
    Float(FloatRange),
    /// `"epoch"` or an integer ≥ 1.
    EvalEvery,
    Bool,
}

/// Where a number must lie: from `lo` to `hi` (unbounded above when `hi` is infinite), each
/// end included or not; `noun` names the key in errors ("the learning rate").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloatRange {
    pub lo: f64,
    pub lo_open: bool,
    pub hi: f64,
    pub hi_open: bool,
    pub noun: &'static str,
}

impl FloatRange {
    const fn new(noun: &'static str, lo: f64, lo_open: bool, hi: f64, hi_open: bool) -> Self {
        FloatRange {
            lo,
            lo_open,
            hi,
            hi_open,
            noun,
        }
    }

    pub fn contains(&self, x: f64) -> bool {
        let above = if self.lo_open {
            x > self.lo
        } else {
            x >= self.lo
        };
        let below = if self.hi_open {
            x < self.hi
        } else {
            x <= self.hi
        };
        x.is_finite() && above && below
    }
}

impl fmt::Display for FloatRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo.is_infinite() && self.hi.is_infinite() {
            return f.write_str("a finite number");
        }
        if self.hi.is_infinite() {
            let op = if self.lo_open { ">" } else { "≥" };
            return write!(f, "a number {op} {}", self.lo);
        }
        write!(
            f,
            "in {}{}, {}{}",
            if self.lo_open { "(" } else { "[" },
            self.lo,
            self.hi,
            if self.hi_open { ")" } else { "]" }
        )
    }
}

/// The learning rate's range.
pub const LR: Kind = Kind::Float(FloatRange::new(
    "the learning rate",
    0.0,
    true,
    100.0,
    false,
));
/// A momentum or beta: [0, 1).
const fn unit(noun: &'static str) -> Kind {
    Kind::Float(FloatRange::new(noun, 0.0, false, 1.0, true))
}
/// A number > 0 (`open`) or ≥ 0.
const fn positive(noun: &'static str, open: bool) -> Kind {
    Kind::Float(FloatRange::new(noun, 0.0, open, f64::INFINITY, true))
}

/// Every key, with its kind and a one-line description.
pub const KEYS: &[(&str, Kind, &str)] = &[
    ("cell", Kind::Word(LayerKind::ALL), "recurrent cell"),
    (
        "activation",
        Kind::Word(Activation::ALL),
        "rnn nonlinearity (rnn only)",
    ),
    (
        "hidden",
        Kind::Int(1, MAX_HIDDEN as u64),
        "hidden units per layer",
    ),
    ("layers", Kind::Int(1, MAX_LAYERS as u64), "stacked layers"),
    (
        "init",
        Kind::Word(InitScheme::ALL),
        "recurrent weights: pytorch (default), orthogonal, identity (IRNN, rnn only)",
    ),
    (
        "init_scale",
        positive("init_scale", true),
        "init = \"identity\": W_hh = init_scale · I (default 1)",
    ),
    (
        "input",
        Kind::Word(InputMode::ALL),
        "how an image is read: rows (default), columns, pixels (784 steps), permuted",
    ),
    (
        "permutation_seed",
        Kind::Int(0, 1 << 53),
        "input = \"permuted\": the seed of the pixel order (default 0)",
    ),
    (
        "dropout",
        Kind::Float(FloatRange::new("dropout", 0.0, false, 1.0, true)),
        "dropout between stacked layers, in training (nn.RNN's dropout; needs layers ≥ 2)",
    ),
    (
        "forget_bias",
        Kind::Float(FloatRange::new(
            "forget_bias",
            f64::NEG_INFINITY,
            true,
            f64::INFINITY,
            true,
        )),
        "lstm: the forget gate's initial bias (in bias_ih)",
    ),
    (
        "optimizer",
        Kind::Word(OptimKind::ALL),
        "optimizer (PyTorch semantics)",
    ),
    ("lr", LR, "learning rate"),
    ("momentum", unit("momentum"), "sgd momentum"),
    (
        "nesterov",
        Kind::Bool,
        "sgd Nesterov momentum (needs momentum > 0)",
    ),
    (
        "weight_decay",
        positive("the weight decay", false),
        "L2 penalty (coupled for sgd/adam/rmsprop, decoupled for adamw; default 0, adamw 0.01)",
    ),
    ("beta1", unit("beta1"), "adam/adamw β1 (default 0.9)"),
    ("beta2", unit("beta2"), "adam/adamw β2 (default 0.999)"),
    (
        "eps",
        positive("eps", false),
        "adam/adamw/rmsprop ε (default 1e-8)",
    ),
    (
        "alpha",
        Kind::Float(FloatRange::new("alpha", 0.0, false, 1.0, false)),
        "rmsprop smoothing constant (default 0.99)",
    ),
    (
        "clip_grad_norm",
        positive("clip_grad_norm", true),
        "clip the total gradient 2-norm to this (torch.nn.utils.clip_grad_norm_)",
    ),
    (
        "clip_grad_value",
        positive("clip_grad_value", true),
        "clamp every gradient value to ±this (torch.nn.utils.clip_grad_value_)",
    ),
    (
        "lr_schedule",
        Kind::Word(ScheduleKind::ALL),
        "constant (default), step (StepLR per epoch) or cosine (CosineAnnealingLR per step)",
    ),
    (
        "step_size",
        Kind::Int(1, 10_000),
        "lr_schedule = \"step\": epochs between decays",
    ),
    (
        "gamma",
        Kind::Float(FloatRange::new("gamma", 0.0, true, 1.0, false)),
        "lr_schedule = \"step\": decay factor (default 0.1)",
    ),
    (
        "eta_min",
        positive("eta_min", false),
        "lr_schedule = \"cosine\": the final rate (default 0)",
    ),
    (
        "warmup",
        Kind::Int(2, 100_000_000),
        "linear warmup over the first N steps (multiplies the schedule)",
    ),
    ("batch", Kind::Int(1, 60_000), "mini-batch size"),
    ("epochs", Kind::Int(1, 10_000), "epochs to train"),
    (
        "iterations",
        Kind::Int(1, 100_000_000),
        "optimizer steps to train (instead of epochs)",
    ),
    (
        "train_limit",
        Kind::Int(1, 60_000),
        "train on the first N images",
    ),
    (
        "test_limit",
        Kind::Int(1, 10_000),
        "evaluate on the first N test images",
    ),
    (
        "dataset",
        Kind::Word(Dataset::ALL),
        "data set: mnist (default) or fashion-mnist (same shapes, 10 classes)",
    ),
    ("eval_every", Kind::EvalEvery, "\"epoch\" or every K steps"),
    ("eval_before", Kind::Bool, "also evaluate before training"),
    (
        "flush_denormal",
        Kind::Bool,
        "flush subnormal floats to zero on the CPU (torch.set_flush_denormal(True); default false)",
    ),
];

/// Names of all keys, for suggestions.
pub fn key_names() -> Vec<&'static str> {
    KEYS.iter().map(|k| k.0).collect()
}

pub fn kind_of(key: &str) -> Option<Kind> {
    KEYS.iter().find(|k| k.0 == key).map(|k| k.1)
}

/// A checked value of one key.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Word(String),
    Int(u64),
    Float(f64),
    Bool(bool),
    Every(EvalEvery),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Word(w) => f.write_str(w),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Every(e) => write!(f, "{e}"),
        }
    }
}

fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => format!("the integer {i}"),
        toml::Value::Float(x) => format!("the number {x}"),
        toml::Value::Boolean(b) => format!("{b}"),
        toml::Value::Datetime(d) => format!("the date {d}"),
        toml::Value::Array(_) => "a list".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

/// Checks a TOML value against `kind`; the error says what is allowed.
pub fn check(kind: Kind, v: &toml::Value) -> Result<Value, String> {
    match (kind, v) {
        (Kind::Word(words), toml::Value::String(s)) => {
            let lower = s.to_ascii_lowercase();
            if words.contains(&lower.as_str()) {
                Ok(Value::Word(lower))
            } else {
                Err(format!(
                    "{s:?} is not allowed; use one of: {}{}",
                    words.join(", "),
                    super::error::did_you_mean(&lower, words)
                ))
            }
        }
        (Kind::Word(words), other) => Err(format!(
            "expected one of the words {}, got {}",
            words.join(", "),
            describe(other)
        )),
        (Kind::Int(lo, hi), toml::Value::Integer(i)) => {
            if *i >= lo as i64 && (*i as u64) <= hi {
                Ok(Value::Int(*i as u64))
            } else {
                Err(format!("{i} is out of range; allowed: {lo}..={hi}"))
            }
        }
        (Kind::Int(lo, hi), other) => Err(format!(
            "expected an integer in {lo}..={hi}, got {}",
            describe(other)
        )),
        (Kind::Float(_), toml::Value::Integer(i)) => check(kind, &toml::Value::Float(*i as f64)),
        (Kind::Float(range), toml::Value::Float(x)) => {
            if range.contains(*x) {
                Ok(Value::Float(*x))
            } else {
                Err(format!(
                    "{x} is not allowed; {} must be {range}",
                    range.noun
                ))
            }
        }
        (Kind::Float(_), other) => Err(format!("expected a number, got {}", describe(other))),
        (Kind::EvalEvery, toml::Value::String(s)) => s
            .parse::<EvalEvery>()
            .map(Value::Every)
            .map_err(|_| format!("expected \"epoch\" or a number of steps ≥ 1, got {s:?}")),
        (Kind::EvalEvery, toml::Value::Integer(i)) if *i >= 1 => {
            Ok(Value::Every(EvalEvery::Iterations(*i as u64)))
        }
        (Kind::EvalEvery, other) => Err(format!(
            "expected \"epoch\" or a number of steps ≥ 1, got {}",
            describe(other)
        )),
        (Kind::Bool, toml::Value::Boolean(b)) => Ok(Value::Bool(*b)),
        (Kind::Bool, other) => Err(format!("expected true or false, got {}", describe(other))),
    }
}

/// One key set somewhere in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub value: Value,
    /// Byte range of the value in the file.
    pub span: Range<usize>,
    /// Where it was set, e.g. `defaults.lr`, `variant[1].hidden`, `grid.lr`.
    pub origin: String,
}

/// The settings of one cell, by key; later layers (variant, axis) replace earlier ones (defaults).
pub type Settings = BTreeMap<&'static str, Setting>;

/// Why a cell's settings do not make a valid config, and which setting is to blame.
#[derive(Debug)]
pub struct BuildError {
    pub message: String,
    pub blame: Option<Setting>,
}

fn word<'a>(s: &'a Settings, k: &str) -> Option<&'a str> {
    match s.get(k).map(|x| &x.value) {
        Some(Value::Word(w)) => Some(w),
        _ => None,
    }
}
fn int(s: &Settings, k: &str) -> Option<u64> {
    match s.get(k).map(|x| &x.value) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}
fn float(s: &Settings, k: &str) -> Option<f64> {
    match s.get(k).map(|x| &x.value) {
        Some(Value::Float(x)) => Some(*x),
        _ => None,
    }
}

/// The learning-rate schedule of a cell: `lr_schedule` and the keys of that schedule; a key
/// of another schedule is an error located at it.
fn schedule(s: &Settings) -> Result<LrSchedule, BuildError> {
    let kind = word(s, "lr_schedule").unwrap_or("constant");
    let belongs = |key: &str| match key {
        "step_size" | "gamma" => kind == "step",
        _ => kind == "cosine",
    };
    for key in ["step_size", "gamma", "eta_min"] {
        if let Some(setting) = s.get(key).filter(|_| !belongs(key)) {
            let owner = if key == "eta_min" { "cosine" } else { "step" };
            return Err(BuildError {
                message: format!(
                    "`{key}` belongs to lr_schedule = \"{owner}\", but this cell's schedule is \"{kind}\""
                ),
                blame: Some(setting.clone()),
            });
        }
    }
    Ok(match kind {
        "step" => LrSchedule::Step {
            step_size: int(s, "step_size").ok_or_else(|| BuildError {
                message: "lr_schedule = \"step\" needs `step_size` (epochs between decays)".into(),
                blame: s.get("lr_schedule").cloned(),
            })?,
            gamma: float(s, "gamma").unwrap_or(LrSchedule::STEP_GAMMA),
        },
        "cosine" => LrSchedule::Cosine {
            eta_min: float(s, "eta_min").unwrap_or(0.0),
        },
        _ => LrSchedule::Constant,
    })
}

/// Builds and validates the training config of one cell.
pub fn build(s: &Settings, seed: u64) -> Result<TrainConfig, BuildError> {
    let missing = |k: &str, hint: &str| {
        BuildError {
        message: format!("`{k}` is not set for this cell; set it in [defaults], in the variant, or as a grid axis{hint}"),
        blame: None,
    }
    };
    let cell: LayerKind = word(s, "cell")
        .ok_or_else(|| missing("cell", " (rnn, lstm or gru)"))?
        .parse()
        .expect("checked");
    let optimizer: OptimKind = word(s, "optimizer")
        .ok_or_else(|| missing("optimizer", " (sgd, adam or rmsprop)"))?
        .parse()
        .expect("checked");
    let budget = match (int(s, "epochs"), int(s, "iterations")) {
        (Some(_), Some(_)) => {
            return Err(BuildError {
                message: "both `epochs` and `iterations` are set for this cell; keep one".into(),
                blame: s.get("iterations").cloned(),
            })
        }
        (Some(e), None) => Budget::Epochs(e as u32),
        (None, Some(n)) => Budget::Iterations(n),
        (None, None) => return Err(missing("epochs", " (or `iterations`)")),
    };
    let cfg = TrainConfig {
        model: ModelConfig {
            cell,
            hidden: int(s, "hidden").ok_or_else(|| missing("hidden", ""))? as usize,
            layers: int(s, "layers").unwrap_or(1) as usize,
            activation: word(s, "activation").map(|a| a.parse().expect("checked")),
            init: word(s, "init").map_or(InitScheme::Pytorch, |w| w.parse().expect("checked")),
            init_scale: float(s, "init_scale"),
            forget_bias: float(s, "forget_bias"),
            dropout: float(s, "dropout"),
            input: word(s, "input").map_or(InputMode::Rows, |w| w.parse().expect("checked")),
            permutation_seed: int(s, "permutation_seed"),
        },
        optim: OptimConfig {
            momentum: float(s, "momentum").unwrap_or(0.0),
            nesterov: matches!(s.get("nesterov").map(|x| &x.value), Some(Value::Bool(true))),
            weight_decay: float(s, "weight_decay"),
            betas: match (float(s, "beta1"), float(s, "beta2")) {
                (None, None) => None,
                (b1, b2) => Some((
                    b1.unwrap_or(OptimConfig::ADAM_BETAS.0),
                    b2.unwrap_or(OptimConfig::ADAM_BETAS.1),
                )),
            },
            eps: float(s, "eps"),
            alpha: float(s, "alpha"),
            clip_grad_norm: float(s, "clip_grad_norm"),
            clip_grad_value: float(s, "clip_grad_value"),
            lr_schedule: schedule(s)?,
            warmup: int(s, "warmup"),
            ..OptimConfig::new(optimizer, float(s, "lr").ok_or_else(|| missing("lr", ""))?)
        },
        batch_size: int(s, "batch").ok_or_else(|| missing("batch", ""))? as usize,
        budget,
        seed,
        train_limit: int(s, "train_limit").map(|n| n as usize),
        eval: EvalConfig {
            every: match s.get("eval_every").map(|x| &x.value) {
                Some(Value::Every(e)) => *e,
                _ => EvalEvery::Epoch,
            },
            before_training: matches!(
                s.get("eval_before").map(|x| &x.value),
                Some(Value::Bool(true))
            ),
            test_limit: int(s, "test_limit").map(|n| n as usize),
        },
        flush_denormal: matches!(
            s.get("flush_denormal").map(|x| &x.value),
            Some(Value::Bool(true))
        ),
        dataset: word(s, "dataset").map_or(Dataset::Mnist, |w| w.parse().expect("checked")),
    };
    cfg.validate().map_err(|e| BuildError {
        // The betas are one setting of the config but two keys: blame whichever is set.
        blame: match e.key {
            "betas" => s.get("beta1").or_else(|| s.get("beta2")),
            key => s.get(key),
        }
        .cloned(),
        message: e.to_string(),
    })?;
    Ok(TrainConfig {
        model: cfg.model.normalized(),
        optim: cfg.optim.normalized(),
        ..cfg
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> toml::Value {
        toml::from_str::<toml::Table>(&format!("x = {s}")).unwrap()["x"].clone()
    }

    #[test]
    fn checks_each_kind() {
        assert_eq!(
            check(Kind::Word(LayerKind::ALL), &v("\"LSTM\"")).unwrap(),
            Value::Word("lstm".into())
        );
        assert!(check(Kind::Word(LayerKind::ALL), &v("\"lsmt\""))
            .unwrap_err()
            .contains("did you mean `lstm`"));
        assert!(check(Kind::Int(1, 10), &v("0"))
            .unwrap_err()
            .contains("out of range; allowed: 1..=10"));
        assert!(check(Kind::Int(1, 10), &v("2.5"))
            .unwrap_err()
            .contains("expected an integer"));
        assert_eq!(check(LR, &v("1")).unwrap(), Value::Float(1.0));
        assert!(check(LR, &v("-0.1"))
            .unwrap_err()
            .contains("the learning rate must be in (0, 100]"));
        assert!(check(unit("momentum"), &v("1.0"))
            .unwrap_err()
            .contains("momentum must be in [0, 1)"));
        assert!(check(positive("the weight decay", false), &v("-1"))
            .unwrap_err()
            .contains("the weight decay must be a number ≥ 0"));
        assert_eq!(
            check(positive("the weight decay", false), &v("0")).unwrap(),
            Value::Float(0.0)
        );
        assert!(check(positive("clip_grad_norm", true), &v("0"))
            .unwrap_err()
            .contains("clip_grad_norm must be a number > 0"));
        assert!(check(positive("eps", false), &v("inf"))
            .unwrap_err()
            .contains("eps must be a number ≥ 0"));
        assert_eq!(
            check(Kind::EvalEvery, &v("500")).unwrap(),
            Value::Every(EvalEvery::Iterations(500))
        );
        assert_eq!(
            check(Kind::EvalEvery, &v("\"epoch\"")).unwrap(),
            Value::Every(EvalEvery::Epoch)
        );
        assert!(check(Kind::Bool, &v("\"yes\""))
            .unwrap_err()
            .contains("expected true or false"));
    }
}
