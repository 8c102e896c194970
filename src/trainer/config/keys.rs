//! The one table of settings: every key a grid, `train` or `describe` can set, written once in
//! [`KEYS`] with its type and allowed range, its default (PyTorch's where PyTorch has one), a
//! one-line doc, what it applies to, and how its value is read from and written into a
//! [`TrainConfig`]. Everything else is derived from the table: the grid's key checks and its
//! located errors (`grid`), the `train`/`describe` flags (`cli.rs`), the run columns of
//! `summarize`, `effects` and `export` (the value in force, null where the key does not apply),
//! the fake trainer's conditions, the README's table of keys (`rnnsweep keys`), and the checks
//! that a key is set only where it applies ([`check_applies`]).
//!
//! A key is added by adding its row (and its field to the config, and its use where it acts):
//! nothing else names it.

use std::fmt;

use serde::de::{value::StrDeserializer, Deserialize, IntoDeserializer};

use super::{
    Activation, Budget, Dataset, EvalEvery, InitScheme, InputMode, LayerKind, LrSchedule,
    OptimConfig, OptimKind, ScheduleKind, TrainConfig, MAX_HIDDEN, MAX_LAYERS,
};
use crate::error::ConfigError;

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

impl fmt::Display for Kind {
    /// The allowed values, as the table of keys shows them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Word(words) => f.write_str(&words.join(", ")),
            Kind::Int(lo, hi) => write!(f, "integer {lo}..={hi}"),
            Kind::Float(r) => write!(f, "{r}"),
            Kind::EvalEvery => f.write_str("\"epoch\" or steps ≥ 1"),
            Kind::Bool => f.write_str("true, false"),
        }
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

impl Value {
    /// The value as a run column shows it: words and numbers as written, `eval_every` as
    /// `epoch` or its number of steps.
    pub fn text(&self) -> String {
        match self {
            Value::Every(EvalEvery::Epoch) => "epoch".into(),
            Value::Every(EvalEvery::Iterations(k)) => k.to_string(),
            other => other.to_string(),
        }
    }

    /// The value as a grid would write it.
    fn to_toml(&self) -> toml::Value {
        match self {
            Value::Word(w) => toml::Value::String(w.clone()),
            Value::Int(i) => toml::Value::Integer(i64::try_from(*i).unwrap_or(i64::MAX)),
            Value::Float(x) => toml::Value::Float(*x),
            Value::Bool(b) => toml::Value::Boolean(*b),
            Value::Every(EvalEvery::Epoch) => toml::Value::String("epoch".into()),
            Value::Every(EvalEvery::Iterations(k)) => {
                toml::Value::Integer(i64::try_from(*k).unwrap_or(i64::MAX))
            }
        }
    }

    fn word(&self) -> &str {
        match self {
            Value::Word(w) => w,
            other => unreachable!("a checked word, got {other:?}"),
        }
    }
    fn int(&self) -> u64 {
        match self {
            Value::Int(i) => *i,
            other => unreachable!("a checked integer, got {other:?}"),
        }
    }
    fn float(&self) -> f64 {
        match self {
            Value::Float(x) => *x,
            other => unreachable!("a checked number, got {other:?}"),
        }
    }
    fn bool(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            other => unreachable!("a checked boolean, got {other:?}"),
        }
    }
    /// The enum named by a checked word (its serde name).
    fn parse<T: for<'de> Deserialize<'de>>(&self) -> T {
        let de: StrDeserializer<'_, serde::de::value::Error> = self.word().into_deserializer();
        T::deserialize(de).expect("a checked word names a variant")
    }
}

fn word(s: impl fmt::Display) -> Option<Value> {
    Some(Value::Word(s.to_string()))
}

/// What a TOML value is, for errors.
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

/// " (did you mean `x`?)" when a known word is close to `word`, else "".
pub fn did_you_mean(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// "\"lsmt\" is not allowed; use one of: rnn, lstm, gru (did you mean `lstm`?)": a word that
/// is none of `words` (`lower`: as compared), for the grid's values and every enum flag.
pub fn not_one_of(word: &str, lower: &str, words: &[&str]) -> String {
    format!(
        "{word:?} is not allowed; use one of: {}{}",
        words.join(", "),
        did_you_mean(lower, words)
    )
}

/// Checks a TOML value against `kind`; the error says what is allowed. A grid's values and
/// the command line's (through [`parse_text`]) are checked here, so both get the same words.
pub fn check(kind: Kind, v: &toml::Value) -> Result<Value, String> {
    match (kind, v) {
        (Kind::Word(words), toml::Value::String(s)) => {
            let lower = s.to_ascii_lowercase();
            if words.contains(&lower.as_str()) {
                Ok(Value::Word(lower))
            } else {
                Err(not_one_of(s, &lower, words))
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
        (Kind::EvalEvery, toml::Value::String(s)) if s.eq_ignore_ascii_case("epoch") => {
            Ok(Value::Every(EvalEvery::Epoch))
        }
        // A number of steps written as a string (`eval_every = "500"`), as grids always could.
        (Kind::EvalEvery, toml::Value::String(s)) if s.parse::<u64>().is_ok_and(|k| k >= 1) => Ok(
            Value::Every(EvalEvery::Iterations(s.parse().expect("checked"))),
        ),
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

/// Checks a value written on the command line (`--hidden 64`, `--eval-every epoch`) as the
/// grid's TOML value of the same key would be checked: integers, numbers and `true`/`false` as
/// TOML reads them, anything else as a word.
pub fn parse_text(kind: Kind, text: &str) -> Result<Value, String> {
    let t = text.trim();
    let toml = if let Ok(i) = t.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(x) = t.parse::<f64>() {
        toml::Value::Float(x)
    } else if let Ok(b) = t.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(t.to_string())
    };
    check(kind, &toml)
}

/// The part of the program a key belongs to (the sections of `--help` and of the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Model,
    Optimizer,
    Schedule,
    Training,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Model => "Model",
            Section::Optimizer => "Optimizer",
            Section::Schedule => "Learning-rate schedule",
            Section::Training => "Training and evaluation",
        }
    }
}

/// Which runs a key applies to. Set on a run it does not apply to, a key is an error; in the
/// run columns it is null there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Applies {
    All,
    Cells(&'static [LayerKind]),
    Optimizers(&'static [OptimKind]),
    Schedule(ScheduleKind),
    Init(InitScheme),
    Input(InputMode),
    /// Two or more layers (between stacked layers).
    Stacked,
}

impl Applies {
    pub fn holds(self, c: &TrainConfig) -> bool {
        match self {
            Applies::All => true,
            Applies::Cells(k) => k.contains(&c.model.cell),
            Applies::Optimizers(k) => k.contains(&c.optim.kind),
            Applies::Schedule(k) => c.optim.lr_schedule.kind() == k,
            Applies::Init(i) => c.model.init == i,
            Applies::Input(i) => c.model.input == i,
            Applies::Stacked => c.model.layers >= 2,
        }
    }

    /// The condition, e.g. `optimizer = adam or adamw`; None for every run.
    pub fn condition(self) -> Option<String> {
        let or = |words: Vec<&str>| words.join(" or ");
        Some(match self {
            Applies::All => return None,
            Applies::Cells(k) => format!("cell = {}", or(k.iter().map(|k| k.as_str()).collect())),
            Applies::Optimizers(k) => {
                format!("optimizer = {}", or(k.iter().map(|k| k.as_str()).collect()))
            }
            Applies::Schedule(k) => format!("lr_schedule = {k}"),
            Applies::Init(i) => format!("init = {i}"),
            Applies::Input(i) => format!("input = {i}"),
            Applies::Stacked => "layers ≥ 2".into(),
        })
    }

    /// What the run has instead, e.g. `optimizer = sgd`.
    fn actual(self, c: &TrainConfig) -> String {
        match self {
            Applies::All => String::new(),
            Applies::Cells(_) => format!("cell = {}", c.model.cell),
            Applies::Optimizers(_) => format!("optimizer = {}", c.optim.kind),
            Applies::Schedule(_) => format!("lr_schedule = {}", c.optim.lr_schedule.kind()),
            Applies::Init(_) => format!("init = {}", c.model.init),
            Applies::Input(_) => format!("input = {}", c.model.input),
            Applies::Stacked => format!("layers = {}", c.model.layers),
        }
    }
}

/// One setting: everything the program knows about a key.
pub struct Key {
    /// The grid key; the flag is `--` and the name with `-` for `_`.
    pub name: &'static str,
    pub section: Section,
    pub kind: Kind,
    /// The value when the key is left out (PyTorch's where it has one), as the docs say it.
    pub default: &'static str,
    pub doc: &'static str,
    pub applies: Applies,
    /// A grid must set it (or the key it excludes).
    pub required: bool,
    /// The key that may not be set with this one.
    pub excludes: Option<&'static str>,
    /// The value the config holds, None where it is left out.
    pub get: fn(&TrainConfig) -> Option<Value>,
    /// The value in force when the config leaves the key out (the default, whatever the
    /// config holds); None where that means off.
    pub fallback: fn(&TrainConfig) -> Option<Value>,
    /// Writes a checked value into the config.
    pub set: fn(&mut TrainConfig, &Value),
}

impl Key {
    /// The value in force for a run with config `c`, None where the key does not apply to it
    /// (or is off).
    pub fn in_force(&self, c: &TrainConfig) -> Option<Value> {
        if !self.applies.holds(c) {
            return None;
        }
        (self.get)(c).or_else(|| (self.fallback)(c))
    }

    /// The command-line flag's long name, e.g. `clip-grad-norm`.
    pub fn flag_name(&self) -> String {
        self.name.replace('_', "-")
    }

    /// The command-line flag, e.g. `--clip-grad-norm`.
    pub fn flag(&self) -> String {
        format!("--{}", self.flag_name())
    }
}

fn none(_: &TrainConfig) -> Option<Value> {
    None
}

/// Every key, in the order of the docs, the flags and the run columns. Keys are applied in
/// this order too: `cell` before `activation` (a new cell drops the old one's activation),
/// `optimizer` before `lr` (a new optimizer starts at its default rate), `lr_schedule` before
/// the schedule's keys.
/// What a row leaves out: a key for every run, not required, excluding nothing, off when left
/// out (the rows below name only what differs).
const BASE: Key = Key {
    name: "",
    section: Section::Training,
    kind: Kind::Bool,
    default: "",
    doc: "",
    applies: Applies::All,
    required: false,
    excludes: None,
    get: none,
    fallback: none,
    set: |_, _| {},
};

pub const KEYS: &[Key] = &[
    Key {
        name: "cell",
        section: Section::Model,
        kind: Kind::Word(LayerKind::ALL),
        default: "required",
        doc: "recurrent cell",
        required: true,
        get: |c| word(c.model.cell),
        set: |c, v| {
            let cell: LayerKind = v.parse();
            if cell != c.model.cell {
                c.model.activation = None;
            }
            c.model.cell = cell;
        },
        ..BASE
    },
    Key {
        name: "activation",
        section: Section::Model,
        kind: Kind::Word(Activation::ALL),
        default: "tanh",
        doc: "the rnn cell's nonlinearity",
        applies: Applies::Cells(&[LayerKind::Rnn]),
        get: |c| c.model.activation.and_then(word),
        fallback: |_| word(Activation::Tanh),
        set: |c, v| c.model.activation = Some(v.parse()),
        ..BASE
    },
    Key {
        name: "hidden",
        section: Section::Model,
        kind: Kind::Int(1, MAX_HIDDEN as u64),
        default: "required",
        doc: "hidden units per layer",
        required: true,
        get: |c| Some(Value::Int(c.model.hidden as u64)),
        set: |c, v| c.model.hidden = v.int() as usize,
        ..BASE
    },
    Key {
        name: "layers",
        section: Section::Model,
        kind: Kind::Int(1, MAX_LAYERS as u64),
        default: "1",
        doc: "stacked recurrent layers",
        get: |c| Some(Value::Int(c.model.layers as u64)),
        set: |c, v| c.model.layers = v.int() as usize,
        ..BASE
    },
    Key {
        name: "init",
        section: Section::Model,
        kind: Kind::Word(InitScheme::ALL),
        default: "pytorch",
        doc: "recurrent weights: pytorch, orthogonal (each gate block of W_hh), identity (IRNN: rnn only, W_hh = init_scale·I, zero biases)",
        get: |c| (c.model.init != InitScheme::Pytorch).then(|| word(c.model.init)).flatten(),
        fallback: |_| word(InitScheme::Pytorch),
        set: |c, v| c.model.init = v.parse(),
        ..BASE
    },
    Key {
        name: "init_scale",
        section: Section::Model,
        kind: positive("init_scale", true),
        default: "1",
        doc: "the identity init's scale of W_hh",
        applies: Applies::Init(InitScheme::Identity),
        get: |c| c.model.init_scale.map(Value::Float),
        fallback: |_| Some(Value::Float(1.0)),
        set: |c, v| c.model.init_scale = Some(v.float()),
        ..BASE
    },
    Key {
        name: "input",
        section: Section::Model,
        kind: Kind::Word(InputMode::ALL),
        default: "rows",
        doc: "how an image is read: rows (28 steps of 28 pixels), columns, pixels (784 steps of one pixel), permuted (784 pixels in a fixed random order)",
        get: |c| (c.model.input != InputMode::Rows).then(|| word(c.model.input.as_str())).flatten(),
        fallback: |_| word(InputMode::Rows.as_str()),
        set: |c, v| c.model.input = v.parse(),
        ..BASE
    },
    Key {
        name: "permutation_seed",
        section: Section::Model,
        kind: Kind::Int(0, 1 << 53),
        default: "0",
        doc: "the seed of the permuted pixel order",
        applies: Applies::Input(InputMode::Permuted),
        get: |c| c.model.permutation_seed.map(Value::Int),
        fallback: |_| Some(Value::Int(0)),
        set: |c, v| c.model.permutation_seed = Some(v.int()),
        ..BASE
    },
    Key {
        name: "dropout",
        section: Section::Model,
        kind: Kind::Float(FloatRange::new("dropout", 0.0, false, 1.0, true)),
        default: "0",
        doc: "dropout probability between stacked layers, in training (nn.RNN's dropout)",
        applies: Applies::Stacked,
        get: |c| c.model.dropout.filter(|p| *p != 0.0).map(Value::Float),
        fallback: |_| Some(Value::Float(0.0)),
        set: |c, v| c.model.dropout = Some(v.float()),
        ..BASE
    },
    Key {
        name: "forget_bias",
        section: Section::Model,
        kind: Kind::Float(FloatRange::new(
            "forget_bias",
            f64::NEG_INFINITY,
            true,
            f64::INFINITY,
            true,
        )),
        default: "PyTorch's init",
        doc: "the forget gate's initial bias (in bias_ih; its bias_hh slice starts at 0)",
        applies: Applies::Cells(&[LayerKind::Lstm]),
        get: |c| c.model.forget_bias.map(Value::Float),
        set: |c, v| c.model.forget_bias = Some(v.float()),
        ..BASE
    },
    Key {
        name: "optimizer",
        section: Section::Optimizer,
        kind: Kind::Word(OptimKind::ALL),
        default: "required",
        doc: "optimizer, with PyTorch's semantics (a new optimizer starts at its default lr)",
        required: true,
        get: |c| word(c.optim.kind),
        set: |c, v| {
            let kind: OptimKind = v.parse();
            if kind != c.optim.kind {
                c.optim.lr = OptimConfig::default_lr(kind);
            }
            c.optim.kind = kind;
        },
        ..BASE
    },
    Key {
        name: "lr",
        section: Section::Optimizer,
        kind: LR,
        default: "required",
        doc: "learning rate (without a grid: 0.1 for sgd, 0.001 for adam and adamw, 0.01 for rmsprop)",
        required: true,
        get: |c| Some(Value::Float(c.optim.lr)),
        set: |c, v| c.optim.lr = v.float(),
        ..BASE
    },
    Key {
        name: "momentum",
        section: Section::Optimizer,
        kind: unit("momentum"),
        default: "0",
        doc: "SGD momentum",
        applies: Applies::Optimizers(&[OptimKind::Sgd]),
        get: |c| (c.optim.momentum != 0.0).then_some(Value::Float(c.optim.momentum)),
        fallback: |_| Some(Value::Float(0.0)),
        set: |c, v| c.optim.momentum = v.float(),
        ..BASE
    },
    Key {
        name: "nesterov",
        section: Section::Optimizer,
        kind: Kind::Bool,
        default: "false",
        doc: "SGD Nesterov momentum (needs momentum > 0)",
        applies: Applies::Optimizers(&[OptimKind::Sgd]),
        get: |c| c.optim.nesterov.then_some(Value::Bool(true)),
        fallback: |_| Some(Value::Bool(false)),
        set: |c, v| c.optim.nesterov = v.bool(),
        ..BASE
    },
    Key {
        name: "weight_decay",
        section: Section::Optimizer,
        kind: positive("the weight decay", false),
        default: "0 (adamw 0.01)",
        doc: "L2 penalty: coupled for sgd, adam and rmsprop, decoupled for adamw",
        get: |c| c.optim.weight_decay.map(Value::Float),
        fallback: |c| {
            Some(Value::Float(match c.optim.kind {
                OptimKind::Adamw => OptimConfig::ADAMW_WEIGHT_DECAY,
                _ => 0.0,
            }))
        },
        set: |c, v| c.optim.weight_decay = Some(v.float()),
        ..BASE
    },
    Key {
        name: "beta1",
        section: Section::Optimizer,
        kind: unit("beta1"),
        default: "0.9",
        doc: "Adam's β1",
        applies: Applies::Optimizers(&[OptimKind::Adam, OptimKind::Adamw]),
        get: |c| c.optim.betas.map(|b| Value::Float(b.0)),
        fallback: |_| Some(Value::Float(OptimConfig::ADAM_BETAS.0)),
        set: |c, v| c.optim.betas = Some((v.float(), c.optim.betas().1)),
        ..BASE
    },
    Key {
        name: "beta2",
        section: Section::Optimizer,
        kind: unit("beta2"),
        default: "0.999",
        doc: "Adam's β2",
        applies: Applies::Optimizers(&[OptimKind::Adam, OptimKind::Adamw]),
        get: |c| c.optim.betas.map(|b| Value::Float(b.1)),
        fallback: |_| Some(Value::Float(OptimConfig::ADAM_BETAS.1)),
        set: |c, v| c.optim.betas = Some((c.optim.betas().0, v.float())),
        ..BASE
    },
    Key {
        name: "amsgrad",
        section: Section::Optimizer,
        kind: Kind::Bool,
        default: "false",
        doc: "AMSGrad: Adam divides by the running maximum of its second moment",
        applies: Applies::Optimizers(&[OptimKind::Adam, OptimKind::Adamw]),
        get: |c| c.optim.amsgrad.then_some(Value::Bool(true)),
        fallback: |_| Some(Value::Bool(false)),
        set: |c, v| c.optim.amsgrad = v.bool(),
        ..BASE
    },
    Key {
        name: "eps",
        section: Section::Optimizer,
        kind: positive("eps", false),
        default: "1e-8",
        doc: "Adam's and RMSprop's ε",
        applies: Applies::Optimizers(&[OptimKind::Adam, OptimKind::Adamw, OptimKind::Rmsprop]),
        get: |c| c.optim.eps.map(Value::Float),
        fallback: |c| {
            Some(Value::Float(match c.optim.kind {
                OptimKind::Rmsprop => OptimConfig::RMSPROP_EPS,
                _ => OptimConfig::ADAM_EPS,
            }))
        },
        set: |c, v| c.optim.eps = Some(v.float()),
        ..BASE
    },
    Key {
        name: "alpha",
        section: Section::Optimizer,
        kind: Kind::Float(FloatRange::new("alpha", 0.0, false, 1.0, false)),
        default: "0.99",
        doc: "RMSprop's smoothing constant",
        applies: Applies::Optimizers(&[OptimKind::Rmsprop]),
        get: |c| c.optim.alpha.map(Value::Float),
        fallback: |_| Some(Value::Float(OptimConfig::RMSPROP_ALPHA)),
        set: |c, v| c.optim.alpha = Some(v.float()),
        ..BASE
    },
    Key {
        name: "clip_grad_norm",
        section: Section::Optimizer,
        kind: positive("clip_grad_norm", true),
        default: "off",
        doc: "clip the total gradient 2-norm to this before every step (clip_grad_norm_)",
        excludes: Some("clip_grad_value"),
        get: |c| c.optim.clip_grad_norm.map(Value::Float),
        set: |c, v| c.optim.clip_grad_norm = Some(v.float()),
        ..BASE
    },
    Key {
        name: "clip_grad_value",
        section: Section::Optimizer,
        kind: positive("clip_grad_value", true),
        default: "off",
        doc: "clamp every gradient value to ±this before every step (clip_grad_value_)",
        excludes: Some("clip_grad_norm"),
        get: |c| c.optim.clip_grad_value.map(Value::Float),
        set: |c, v| c.optim.clip_grad_value = Some(v.float()),
        ..BASE
    },
    Key {
        name: "lr_schedule",
        section: Section::Schedule,
        kind: Kind::Word(ScheduleKind::ALL),
        default: "constant",
        doc: "constant, step (StepLR, per epoch) or cosine (CosineAnnealingLR over the run, per step)",
        get: |c| (!c.optim.lr_schedule.is_constant()).then(|| word(c.optim.lr_schedule.kind())).flatten(),
        fallback: |_| word(ScheduleKind::Constant),
        set: |c, v| {
            let kind: ScheduleKind = v.parse();
            if kind != c.optim.lr_schedule.kind() {
                c.optim.lr_schedule = match kind {
                    ScheduleKind::Constant => LrSchedule::Constant,
                    // step_size 0: not set yet (validation asks for it).
                    ScheduleKind::Step => LrSchedule::Step {
                        step_size: 0,
                        gamma: LrSchedule::STEP_GAMMA,
                    },
                    ScheduleKind::Cosine => LrSchedule::Cosine { eta_min: 0.0 },
                };
            }
        },
        ..BASE
    },
    Key {
        name: "step_size",
        section: Section::Schedule,
        kind: Kind::Int(1, 10_000),
        default: "required by step",
        doc: "the step schedule's epochs between decays",
        applies: Applies::Schedule(ScheduleKind::Step),
        get: |c| match c.optim.lr_schedule {
            LrSchedule::Step { step_size, .. } if step_size > 0 => Some(Value::Int(step_size)),
            _ => None,
        },
        set: |c, v| {
            if let LrSchedule::Step { step_size, .. } = &mut c.optim.lr_schedule {
                *step_size = v.int();
            }
        },
        ..BASE
    },
    Key {
        name: "gamma",
        section: Section::Schedule,
        kind: Kind::Float(FloatRange::new("gamma", 0.0, true, 1.0, false)),
        default: "0.1",
        doc: "the step schedule's decay factor",
        applies: Applies::Schedule(ScheduleKind::Step),
        get: |c| match c.optim.lr_schedule {
            LrSchedule::Step { gamma, .. } => Some(Value::Float(gamma)),
            _ => None,
        },
        set: |c, v| {
            if let LrSchedule::Step { gamma, .. } = &mut c.optim.lr_schedule {
                *gamma = v.float();
            }
        },
        ..BASE
    },
    Key {
        name: "eta_min",
        section: Section::Schedule,
        kind: positive("eta_min", false),
        default: "0",
        doc: "the cosine schedule's final rate",
        applies: Applies::Schedule(ScheduleKind::Cosine),
        get: |c| match c.optim.lr_schedule {
            LrSchedule::Cosine { eta_min } => Some(Value::Float(eta_min)),
            _ => None,
        },
        set: |c, v| {
            if let LrSchedule::Cosine { eta_min } = &mut c.optim.lr_schedule {
                *eta_min = v.float();
            }
        },
        ..BASE
    },
    Key {
        name: "warmup",
        section: Section::Schedule,
        kind: Kind::Int(2, 100_000_000),
        default: "off",
        doc: "linear warmup over the first N steps (multiplies the schedule)",
        get: |c| c.optim.warmup.map(Value::Int),
        set: |c, v| c.optim.warmup = Some(v.int()),
        ..BASE
    },
    Key {
        name: "batch",
        section: Section::Training,
        kind: Kind::Int(1, 60_000),
        default: "required",
        doc: "mini-batch size",
        required: true,
        get: |c| Some(Value::Int(c.batch_size as u64)),
        set: |c, v| c.batch_size = v.int() as usize,
        ..BASE
    },
    Key {
        name: "epochs",
        section: Section::Training,
        kind: Kind::Int(1, 10_000),
        default: "required",
        doc: "epochs to train",
        required: true,
        excludes: Some("iterations"),
        get: |c| match c.budget {
            Budget::Epochs(e) => Some(Value::Int(e as u64)),
            Budget::Iterations(_) => None,
        },
        set: |c, v| c.budget = Budget::Epochs(v.int() as u32),
        ..BASE
    },
    Key {
        name: "iterations",
        section: Section::Training,
        kind: Kind::Int(1, 100_000_000),
        default: "or epochs",
        doc: "optimizer steps to train (instead of epochs)",
        excludes: Some("epochs"),
        get: |c| match c.budget {
            Budget::Iterations(n) => Some(Value::Int(n)),
            Budget::Epochs(_) => None,
        },
        set: |c, v| c.budget = Budget::Iterations(v.int()),
        ..BASE
    },
    Key {
        name: "train_limit",
        section: Section::Training,
        kind: Kind::Int(1, 60_000),
        default: "all",
        doc: "train on the first N training images",
        get: |c| c.train_limit.map(|n| Value::Int(n as u64)),
        set: |c, v| c.train_limit = Some(v.int() as usize),
        ..BASE
    },
    Key {
        name: "test_limit",
        section: Section::Training,
        kind: Kind::Int(1, 10_000),
        default: "all",
        doc: "evaluate on the first N test images",
        get: |c| c.eval.test_limit.map(|n| Value::Int(n as u64)),
        set: |c, v| c.eval.test_limit = Some(v.int() as usize),
        ..BASE
    },
    Key {
        name: "dataset",
        section: Section::Training,
        kind: Kind::Word(Dataset::ALL),
        default: "mnist",
        doc: "data set: mnist or fashion-mnist (same shapes, 10 classes)",
        get: |c| (!c.dataset.is_mnist()).then(|| word(c.dataset)).flatten(),
        fallback: |_| word(Dataset::Mnist),
        set: |c, v| c.dataset = v.parse(),
        ..BASE
    },
    Key {
        name: "eval_every",
        section: Section::Training,
        kind: Kind::EvalEvery,
        default: "epoch",
        doc: "evaluate on the test set every epoch, or every K steps",
        get: |c| Some(Value::Every(c.eval.every)),
        set: |c, v| {
            if let Value::Every(e) = v {
                c.eval.every = *e;
            }
        },
        ..BASE
    },
    Key {
        name: "eval_before",
        section: Section::Training,
        kind: Kind::Bool,
        default: "false",
        doc: "also evaluate the untrained model (epoch 0)",
        get: |c| c.eval.before_training.then_some(Value::Bool(true)),
        fallback: |_| Some(Value::Bool(false)),
        set: |c, v| c.eval.before_training = v.bool(),
        ..BASE
    },
    Key {
        name: "flush_denormal",
        section: Section::Training,
        kind: Kind::Bool,
        default: "false",
        doc: "flush subnormal floats to zero on the CPU (torch.set_flush_denormal(True)): much faster 784-step sequences",
        get: |c| c.flush_denormal.then_some(Value::Bool(true)),
        fallback: |_| Some(Value::Bool(false)),
        set: |c, v| c.flush_denormal = v.bool(),
        ..BASE
    },
];

/// The key named `name`.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Names of all keys, for suggestions.
pub fn key_names() -> Vec<&'static str> {
    KEYS.iter().map(|k| k.name).collect()
}

/// Every value of `c` in its key's range, each key set only where it applies: the same words
/// for a grid, `train` and `describe`.
pub fn check_values(c: &TrainConfig) -> Result<(), ConfigError> {
    for k in KEYS {
        if let Some(v) = (k.get)(c) {
            check(k.kind, &v.to_toml()).map_err(|why| ConfigError::new(k.name, &v, why))?;
        }
    }
    check_applies(c)
}

/// Every key set in `c` where it does not apply is an error naming it.
pub fn check_applies(c: &TrainConfig) -> Result<(), ConfigError> {
    KEYS.iter()
        .filter_map(|k| (k.get)(c).map(|v| (k, v)))
        .find(|(k, _)| !k.applies.holds(c))
        .map_or(Ok(()), |(k, v)| Err(not_applicable(k, &v, c)))
}

/// "momentum applies only where optimizer = sgd; this run has optimizer = adam".
fn not_applicable(k: &Key, v: &Value, c: &TrainConfig) -> ConfigError {
    ConfigError::new(
        k.name,
        v,
        format!(
            "{} applies only where {}; this run has {}",
            k.name,
            k.applies.condition().unwrap_or_default(),
            k.applies.actual(c)
        ),
    )
}

/// Why settings cannot be applied: a key left out that must be set, two keys that exclude each
/// other, or the resulting config's first problem.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("`{0}` is not set{1}")]
    Missing(&'static str, String),
    #[error("both `{0}` and `{1}` are set; keep one")]
    Both(&'static str, &'static str),
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

impl ApplyError {
    /// The key to blame.
    pub fn key(&self) -> &'static str {
        match self {
            ApplyError::Missing(k, _) => k,
            ApplyError::Both(_, k) => k,
            ApplyError::Invalid(e) => e.key,
        }
    }
}

/// `base` with the settings `given` (key name → checked value) written into it, in the order
/// of [`KEYS`], then validated and put in canonical form. With `require`, every required key
/// must be among `given` (a grid's cell, whose base is only a template).
pub fn apply(
    mut base: TrainConfig,
    given: &dyn Fn(&str) -> Option<Value>,
    require: bool,
) -> Result<TrainConfig, ApplyError> {
    for k in KEYS {
        let v = given(k.name);
        if let (Some(_), Some(other)) = (&v, k.excludes) {
            if given(other).is_some() && k.name < other {
                return Err(ApplyError::Both(k.name, other));
            }
        }
        if require && k.required && v.is_none() && k.excludes.and_then(given).is_none() {
            let hint = match k.kind {
                Kind::Word(words) => format!(" ({})", words.join(", ")),
                _ => String::new(),
            };
            let or = k.excludes.map_or(String::new(), |o| format!(" (or `{o}`)"));
            return Err(ApplyError::Missing(k.name, format!("{hint}{or}")));
        }
        if let Some(v) = v {
            (k.set)(&mut base, &v);
        }
    }
    // A key given where it does not apply is named here, before `validate` could blame a
    // sibling it set (`beta2` sets the betas, which `beta1` reads too) or find no trace of it
    // (`gamma` without the step schedule): unless it left nothing set and is the default (an
    // explicit `dropout = 0` on one layer, `momentum = 0` with Adam).
    for k in KEYS {
        let default = (k.fallback)(&base);
        let set = (k.get)(&base).is_some();
        let ignored = |v: &Value| !k.applies.holds(&base) && (set || Some(v) != default.as_ref());
        if let Some(v) = given(k.name).filter(ignored) {
            return Err(not_applicable(k, &v, &base).into());
        }
    }
    base.validate()?;
    Ok(base.normalized())
}

/// Settings given by name, e.g. a command line's flags (`train --hidden 64 --amsgrad`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Given(pub Vec<(&'static str, Value)>);

impl Given {
    /// The value given for `name` (the last one, if given twice).
    pub fn get(&self, name: &str) -> Option<Value> {
        self.0
            .iter()
            .rev()
            .find(|s| s.0 == name)
            .map(|s| s.1.clone())
    }

    /// `base` with these settings (see [`apply`]); no key is required.
    pub fn apply_to(&self, base: TrainConfig) -> Result<TrainConfig, ApplyError> {
        apply(base, &|k| self.get(k), false)
    }
}

/// The table of keys as Markdown (the README's, printed by `rnnsweep keys`).
pub fn markdown_table() -> String {
    let mut out = String::new();
    for section in [
        Section::Model,
        Section::Optimizer,
        Section::Schedule,
        Section::Training,
    ] {
        out.push_str(&format!(
            "\n**{}**\n\n| key | values | default | applies to | what it does |\n|---|---|---|---|---|\n",
            section.title()
        ));
        for k in KEYS.iter().filter(|k| k.section == section) {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                k.name,
                k.kind.to_string().replace('|', "\\|"),
                k.default,
                k.applies.condition().unwrap_or_else(|| "all".into()),
                k.doc
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::presets::{default_config, preset};

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
            check(Kind::EvalEvery, &v("\"Epoch\"")).unwrap(),
            Value::Every(EvalEvery::Epoch)
        );
        assert!(check(Kind::EvalEvery, &v("0")).is_err());
        assert_eq!(
            check(Kind::EvalEvery, &v("\"250\"")).unwrap(),
            Value::Every(EvalEvery::Iterations(250))
        );
        assert!(check(Kind::EvalEvery, &v("\"0\"")).is_err());
        assert!(check(Kind::Bool, &v("\"yes\""))
            .unwrap_err()
            .contains("expected true or false"));
    }

    #[test]
    fn command_line_text_is_checked_as_the_grid_value() {
        for k in KEYS {
            for text in ["1", "0.5", "epoch", "lstm", "true", "-3"] {
                let toml = toml::from_str::<toml::Table>(&format!("x = {text}"))
                    .map(|t| t["x"].clone())
                    .unwrap_or(toml::Value::String(text.into()));
                assert_eq!(
                    parse_text(k.kind, text),
                    check(k.kind, &toml),
                    "{} {text}",
                    k.name
                );
            }
        }
        assert_eq!(
            parse_text(Kind::Word(LayerKind::ALL), "GRU").unwrap(),
            Value::Word("gru".into())
        );
    }

    #[test]
    fn every_word_names_its_enum_variant() {
        for k in KEYS {
            if let Kind::Word(words) = k.kind {
                for w in words {
                    let mut c = default_config();
                    (k.set)(&mut c, &Value::Word(w.to_string()));
                    let read = (k.get)(&c).or_else(|| (k.fallback)(&c));
                    assert_eq!(read, Some(Value::Word(w.to_string())), "{}", k.name);
                }
            }
        }
    }

    #[test]
    fn keys_are_unique_and_documented() {
        let mut names = key_names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KEYS.len());
        for k in KEYS {
            assert!(!k.doc.is_empty() && !k.default.is_empty(), "{}", k.name);
            if let Some(o) = k.excludes {
                assert_eq!(key(o).unwrap().excludes, Some(k.name), "{}", k.name);
            }
        }
    }

    #[test]
    fn a_key_set_where_it_does_not_apply_is_named() {
        let mut c = preset("lstm_h64").unwrap();
        c.optim.momentum = 0.9;
        let e = check_applies(&c).unwrap_err().to_string();
        assert!(
            e.contains(
                "momentum applies only where optimizer = sgd; this run has optimizer = adam"
            ),
            "{e}"
        );
        let mut c = preset("lstm_h64").unwrap();
        c.model.activation = Some(Activation::Relu);
        assert!(check_applies(&c)
            .unwrap_err()
            .to_string()
            .contains("activation applies only where cell = rnn; this run has cell = lstm"));
    }

    #[test]
    fn apply_writes_in_table_order_and_checks() {
        let given = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|p| p.0 == name)
                    .map(|p| parse_text(key(name).unwrap().kind, p.1).unwrap())
            }
        };
        // A new optimizer starts at its default rate unless lr is given too.
        let c = apply(
            preset("rnnimc").unwrap(),
            &given(&[("optimizer", "sgd")]),
            false,
        )
        .unwrap();
        assert_eq!((c.optim.kind, c.optim.lr), (OptimKind::Sgd, 0.1));
        let c = apply(
            preset("rnnimc").unwrap(),
            &given(&[("lr", "0.05"), ("optimizer", "sgd")]),
            false,
        )
        .unwrap();
        assert_eq!(c.optim.lr, 0.05);
        // A new cell drops the recipe's activation.
        let c = apply(
            preset("model_a").unwrap(),
            &given(&[("cell", "gru")]),
            false,
        )
        .unwrap();
        assert_eq!(c.model.activation, None);
        // Required keys, exclusive keys, the step schedule's step size.
        let e = apply(default_config(), &given(&[("cell", "gru")]), true).unwrap_err();
        assert_eq!(e.key(), "hidden");
        let e = apply(
            default_config(),
            &given(&[("epochs", "1"), ("iterations", "5")]),
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "both `epochs` and `iterations` are set; keep one"
        );
        let e = apply(default_config(), &given(&[("lr_schedule", "step")]), false).unwrap_err();
        assert_eq!(e.key(), "lr_schedule", "{e}");
        // A default value set where it does not apply is blamed itself, not the sibling it set.
        let e = apply(
            default_config(),
            &given(&[("optimizer", "sgd"), ("beta2", "0.999")]),
            false,
        )
        .unwrap_err();
        assert_eq!(e.key(), "beta2", "{e}");
        let e = apply(default_config(), &given(&[("gamma", "0.5")]), false).unwrap_err();
        assert!(
            e.to_string().contains(
                "gamma applies only where lr_schedule = step; this run has lr_schedule = constant"
            ),
            "{e}"
        );
    }

    #[test]
    fn in_force_is_null_where_a_key_does_not_apply() {
        let adam = preset("lstm_h64").unwrap();
        let f = |c: &TrainConfig, k: &str| key(k).unwrap().in_force(c);
        assert_eq!(f(&adam, "momentum"), None);
        assert_eq!(f(&adam, "eps"), Some(Value::Float(1e-8)));
        assert_eq!(f(&adam, "beta2"), Some(Value::Float(0.999)));
        assert_eq!(f(&adam, "amsgrad"), Some(Value::Bool(false)));
        assert_eq!(f(&adam, "activation"), None);
        assert_eq!(f(&adam, "dropout"), None);
        assert_eq!(f(&adam, "clip_grad_norm"), None);
        let mut adamw = adam.clone();
        adamw.optim.kind = OptimKind::Adamw;
        assert_eq!(f(&adamw, "weight_decay"), Some(Value::Float(0.01)));
        let sgd = preset("model_a").unwrap();
        assert_eq!(f(&sgd, "activation"), Some(Value::Word("relu".into())));
        assert_eq!(f(&sgd, "beta1"), None);
        assert_eq!(f(&sgd, "momentum"), Some(Value::Float(0.0)));
    }

    #[test]
    fn the_table_lists_every_key() {
        let t = markdown_table();
        for k in KEYS {
            assert!(t.contains(&format!("| `{}` |", k.name)), "{}", k.name);
        }
    }
}
