//! The fake trainer, for tests of everything around training (runner, store, leases, signals,
//! shards, Slurm, reports): it runs the real training loop of `trainer::fit` (same shuffling,
//! budget, evaluation schedule, divergence and interruption rules, same metric rows) with a
//! stand-in for the network whose accuracy and loss follow a smooth curve computed from the
//! config and seed, so a step takes microseconds and needs no MNIST files. Everything is
//! deterministic except the measured seconds.
//!
//! Contributors select it with the hidden option `--trainer fake:RULES` of every command, whose
//! default is the environment variable [`FAKE_ENV`] (`RNNSWEEP_FAKE_TRAINER=RULES`, which the
//! jobs of a Slurm array inherit); `cli.rs` makes the choice (`backend::TrainerChoice`) once.
//! The rules are a list separated by `;`, each an action with optional conditions on the config:
//!
//! ```text
//! RNNSWEEP_FAKE_TRAINER="delay_ms=20; diverge_at=15 if seed=1; collapse if cell=gru; fail if seed=2 and cell=lstm"
//! ```
//!
//! | action         | effect                                                                 |
//! |----------------|------------------------------------------------------------------------|
//! | `delay_ms=N`   | every optimizer step takes N ms (the last matching rule wins)           |
//! | `diverge_at=N` | the loss of step N is NaN: the run is recorded as diverged there        |
//! | `collapse`     | every test image is predicted as class 1 (a collapsed run)              |
//! | `fail`         | training returns an error before the first step (a failed cell)        |
//! | `panic`        | training panics at the first step (a failed cell, via the runner)      |
//!
//! A condition is `KEY=VALUE` with any key of the table of keys (`rnnsweep keys`) or `seed`,
//! compared with the run's value in force (numbers compare as numbers; a key that does not
//! apply to the run matches nothing). An empty value, `1` or `on` selects the fake trainer with
//! no rules.

use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use dfdx::prelude::Cpu;

use crate::data::{CLASSES, TEST_IMAGES, TRAIN_IMAGES};
use crate::error::TrainError;
use crate::trainer::config::{keys, TrainConfig};
use crate::trainer::fit::checkpoint::{CheckpointError, LearnerState, Span};
use crate::trainer::fit::{run_loop, Evaluation, Learner, Observer, Step};
use crate::trainer::model::Model;
use crate::trainer::record::NonFiniteKind;
use crate::trainer::{Trained, Trainer};

/// The environment variable that selects the fake trainer (see the module's documentation).
pub const FAKE_ENV: &str = "RNNSWEEP_FAKE_TRAINER";

/// The device name the fake trainer records.
pub const FAKE_DEVICE: &str = "fake";

/// What a rule does to the runs it matches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FakeAction {
    Delay(Duration),
    DivergeAt(u64),
    Collapse,
    Fail,
    Panic,
}

/// One rule: an action and the conditions (all must hold) on the run's config.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeRule {
    pub action: FakeAction,
    pub when: Vec<(String, String)>,
}

/// The parsed value of [`FAKE_ENV`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FakeRules {
    pub rules: Vec<FakeRule>,
}

/// Malformed rules (or a `--trainer` value that is neither `real` nor `fake[:RULES]`).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("the fake trainer's rules ({FAKE_ENV}, --trainer fake:RULES): cannot read {rule:?}: {why}")]
pub struct FakeRulesError {
    rule: String,
    why: String,
}

impl FakeRulesError {
    /// A `--trainer` value that names no trainer.
    pub fn not_a_choice(text: &str) -> Self {
        FakeRulesError {
            rule: text.to_string(),
            why: "expected real, fake or fake:RULES".into(),
        }
    }
}

/// The value of `key` (a key of the table of keys, or `seed`) in `cfg` as text: the value in
/// force, None where the key does not apply; Err for a name that is neither.
fn config_value(cfg: &TrainConfig, key: &str) -> Result<Option<String>, ()> {
    if key == "seed" {
        return Ok(Some(cfg.seed.to_string()));
    }
    let k = keys::key(key).ok_or(())?;
    Ok(k.in_force(cfg).map(|v| v.text()))
}

/// Numbers compare as numbers (`0.010` matches `0.01`), anything else as words.
fn same_value(actual: &str, wanted: &str) -> bool {
    match (actual.parse::<f64>(), wanted.parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => actual.eq_ignore_ascii_case(wanted),
    }
}

impl FakeRule {
    fn matches(&self, cfg: &TrainConfig) -> bool {
        self.when.iter().all(
            |(k, v)| matches!(config_value(cfg, k), Ok(Some(actual)) if same_value(&actual, v)),
        )
    }
}

impl FromStr for FakeRules {
    type Err = FakeRulesError;
    fn from_str(s: &str) -> Result<Self, FakeRulesError> {
        let trimmed = s.trim();
        if trimmed.is_empty() || trimmed == "1" || trimmed.eq_ignore_ascii_case("on") {
            return Ok(FakeRules::default());
        }
        let rules = trimmed
            .split(';')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                parse_rule(r).map_err(|why| FakeRulesError {
                    rule: r.to_string(),
                    why,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(FakeRules { rules })
    }
}

fn parse_rule(rule: &str) -> Result<FakeRule, String> {
    let (action, conditions) = match rule.split_once(" if ") {
        Some((a, c)) => (a.trim(), Some(c)),
        None => (rule, None),
    };
    let number = |v: Option<&str>, what: &str| -> Result<u64, String> {
        v.ok_or(format!("{what} needs a value, e.g. {what}=10"))?
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{what} takes a whole number"))
    };
    let (name, value) = match action.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v)),
        None => (action.trim(), None),
    };
    let action = match name {
        "delay_ms" => FakeAction::Delay(Duration::from_millis(number(value, name)?)),
        "diverge_at" => match number(value, name)? {
            0 => return Err("diverge_at counts steps from 1".into()),
            n => FakeAction::DivergeAt(n),
        },
        "collapse" | "fail" | "panic" if value.is_some() => {
            return Err(format!("{name} takes no value"))
        }
        "collapse" => FakeAction::Collapse,
        "fail" => FakeAction::Fail,
        "panic" => FakeAction::Panic,
        _ => {
            return Err(format!(
                "unknown action {name:?}; known: delay_ms=N, diverge_at=N, collapse, fail, panic"
            ))
        }
    };
    let mut when = Vec::new();
    for c in conditions.into_iter().flat_map(|c| c.split(" and ")) {
        let (k, v) = c
            .split_once('=')
            .ok_or(format!("condition {:?} is not KEY=VALUE", c.trim()))?;
        let k = k.trim();
        if k != "seed" && keys::key(k).is_none() {
            return Err(format!(
                "unknown key {k:?}; known: seed, {}",
                keys::key_names().join(", ")
            ));
        }
        when.push((k.to_string(), v.trim().to_string()));
    }
    Ok(FakeRule { action, when })
}

/// What the rules say for one run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Behaviour {
    delay: Duration,
    diverge_at: Option<u64>,
    collapse: bool,
    fail: bool,
    panic: bool,
}

impl FakeRules {
    fn behaviour(&self, cfg: &TrainConfig) -> Behaviour {
        let mut b = Behaviour::default();
        for r in self.rules.iter().filter(|r| r.matches(cfg)) {
            match r.action {
                FakeAction::Delay(d) => b.delay = d,
                FakeAction::DivergeAt(n) => b.diverge_at = Some(n),
                FakeAction::Collapse => b.collapse = true,
                FakeAction::Fail => b.fail = true,
                FakeAction::Panic => b.panic = true,
            }
        }
        b
    }
}

/// FNV-1a of `s`: a stable hash (std's is not guaranteed stable across releases).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The accuracy curve of one run: from chance (0.1) towards `ceiling`, reaching half way
/// after `half_samples` training samples. Bigger networks reach higher; a learning rate
/// nearer its optimizer's usual value learns faster; the seed moves both a little.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FakeCurve {
    pub ceiling: f64,
    pub half_samples: f64,
}

impl FakeCurve {
    pub fn of(cfg: &TrainConfig) -> FakeCurve {
        // A number in [-1, 1) fixed by the whole config (seed included).
        let jitter = (fnv1a(&cfg.slug()) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let h = cfg.model.hidden as f64;
        let ceiling = (0.80 + 0.18 * h / (h + 16.0) + 0.01 * jitter).min(0.995);
        let usual = crate::trainer::config::OptimConfig::default_lr(cfg.optim.kind);
        let off = (cfg.optim.lr / usual).log10().abs();
        let half_samples = 3000.0 * (1.0 + off) * (1.0 + 0.1 * jitter);
        FakeCurve {
            ceiling,
            half_samples,
        }
    }

    /// Test accuracy after `samples` training samples.
    pub fn acc(&self, samples: u64) -> f64 {
        let progress = 1.0 - 0.5f64.powf(samples as f64 / self.half_samples);
        0.1 + (self.ceiling - 0.1) * progress
    }

    /// A gradient norm that shrinks as training goes on (from 5.1 towards 0.1).
    pub fn grad_norm(&self, samples: u64) -> f64 {
        0.1 + 5.0 * 0.5f64.powf(samples as f64 / self.half_samples)
    }

    /// A cross-entropy that falls as the accuracy rises: ln 10 at chance.
    pub fn loss(acc: f64) -> f64 {
        -(0.9 * acc.clamp(0.0, 1.0) + 0.01).ln()
    }
}

/// The stand-in network: counts the samples it has seen and answers from its curve.
struct FakeLearner {
    curve: FakeCurve,
    behaviour: Behaviour,
    samples: u64,
    steps: u64,
}

impl Learner for FakeLearner {
    fn step(&mut self, idx: &[usize]) -> Step {
        if self.behaviour.panic {
            panic!("fake trainer: a `panic` rule matched this run");
        }
        if !self.behaviour.delay.is_zero() {
            std::thread::sleep(self.behaviour.delay);
        }
        self.steps += 1;
        self.samples += idx.len() as u64;
        if self.behaviour.diverge_at == Some(self.steps) {
            return Step {
                loss: f64::NAN,
                correct: 0,
                grad_norm: f64::NAN,
                non_finite: Some((NonFiniteKind::Loss, None)),
            };
        }
        // Training accuracy runs a little ahead of the test accuracy.
        let acc = (self.curve.acc(self.samples) + 0.01).min(1.0);
        Step {
            loss: FakeCurve::loss(acc),
            correct: (acc * idx.len() as f64).round() as u64,
            grad_norm: self.curve.grad_norm(self.samples),
            non_finite: None,
        }
    }

    fn evaluate(&mut self, n: usize) -> Evaluation {
        let mut predicted = [0u64; CLASSES];
        let acc = if self.behaviour.collapse {
            predicted[1] = n as u64;
            0.1135
        } else {
            // Spread the predictions evenly over the classes, the remainder from class 0.
            for (c, p) in predicted.iter_mut().enumerate() {
                *p = (n / CLASSES + usize::from(c < n % CLASSES)) as u64;
            }
            self.curve.acc(self.samples)
        };
        let correct = (acc * n as f64).round();
        Evaluation {
            loss: FakeCurve::loss(acc),
            acc: correct / n.max(1) as f64,
            predicted,
        }
    }

    fn param_name(&self, i: usize) -> String {
        format!("parameter {i}")
    }
    fn set_lr(&mut self, _lr: f64) {}
    fn save(&self) -> LearnerState {
        LearnerState::Fake {
            steps: self.steps,
            samples: self.samples,
        }
    }
    fn restore(&mut self, state: &LearnerState) -> Result<(), CheckpointError> {
        match *state {
            LearnerState::Fake { steps, samples } => {
                (self.steps, self.samples) = (steps, samples);
                Ok(())
            }
            LearnerState::Network { .. } => Err(CheckpointError::Shape(
                "written by the real trainer, not the fake one".into(),
            )),
        }
    }
}

/// The fake trainer (see the module's documentation).
#[derive(Clone, Debug, Default)]
pub struct FakeTrainer {
    pub rules: FakeRules,
}

impl Trainer for FakeTrainer {
    fn train(
        &self,
        cfg: &TrainConfig,
        obs: &dyn Observer,
        stop: &AtomicBool,
        span: Span<'_>,
    ) -> Result<Trained, TrainError> {
        cfg.validate()?;
        let behaviour = self.rules.behaviour(cfg);
        if behaviour.fail {
            return Err(TrainError::Injected(
                "fake trainer: a `fail` rule matched this run".into(),
            ));
        }
        obs.started(FAKE_DEVICE, Some("RNNSWEEP_FAKE_TRAINER is set"));
        let mut learner = FakeLearner {
            curve: FakeCurve::of(cfg),
            behaviour,
            samples: 0,
            steps: 0,
        };
        if let Some(ckpt) = span.from {
            ckpt.belongs_to(cfg).map_err(TrainError::Resume)?;
            learner.restore(&ckpt.learner).map_err(TrainError::Resume)?;
        }
        let progress = span.from.map(|c| c.progress.clone());
        let sizes = (TRAIN_IMAGES.count, TEST_IMAGES.count);
        let record = run_loop(
            &mut learner,
            FAKE_DEVICE,
            cfg,
            sizes,
            obs,
            stop,
            (progress, span.pause_at),
        );
        // Real weights of the right shapes (the initial ones), so `predict` and anything
        // reading weights.safetensors work on a fake run too.
        let weights = Model::<f32, Cpu>::init(&cfg.model, cfg.seed, &Cpu::default())
            .final_weights(&record.status);
        Ok(Trained { record, weights })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::presets::preset;
    use crate::trainer::fit::Silent;
    use crate::trainer::record::RunStatus;

    fn tiny() -> TrainConfig {
        let mut c = preset("lstm_h20").unwrap();
        c.budget = crate::trainer::config::Budget::Iterations(40);
        c.batch_size = 10;
        c.train_limit = Some(100);
        c.eval.every = crate::trainer::config::EvalEvery::Iterations(10);
        c.eval.test_limit = Some(50);
        c
    }

    fn train(spec: &str, cfg: &TrainConfig) -> Result<Trained, TrainError> {
        let t = FakeTrainer {
            rules: spec.parse().unwrap(),
        };
        t.train(cfg, &Silent, &AtomicBool::new(false), Span::whole())
    }

    #[test]
    fn rules_are_read_with_conditions() {
        let s: FakeRules = "delay_ms=20; diverge_at=15 if seed=1; fail if seed=2 and cell=lstm"
            .parse()
            .unwrap();
        assert_eq!(s.rules.len(), 3);
        assert_eq!(
            s.rules[0].action,
            FakeAction::Delay(Duration::from_millis(20))
        );
        assert_eq!(s.rules[1].action, FakeAction::DivergeAt(15));
        assert_eq!(
            s.rules[2].when,
            vec![
                ("seed".to_string(), "2".to_string()),
                ("cell".to_string(), "lstm".to_string())
            ]
        );
        assert_eq!("".parse::<FakeRules>().unwrap(), FakeRules::default());
        assert_eq!("1".parse::<FakeRules>().unwrap(), FakeRules::default());
        for (bad, why) in [
            ("explode", "unknown action \"explode\""),
            ("diverge_at", "diverge_at needs a value"),
            ("diverge_at=0", "counts steps from 1"),
            ("delay_ms=fast", "whole number"),
            ("fail if colour=red", "unknown key \"colour\""),
            ("fail if seed", "is not KEY=VALUE"),
            ("collapse=1", "takes no value"),
        ] {
            let e = bad.parse::<FakeRules>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(FAKE_ENV), "{bad}: {e}");
        }
    }

    #[test]
    fn conditions_select_runs_by_config() {
        let s: FakeRules = "collapse if lr=0.0010 and cell=LSTM; fail if seed=3"
            .parse()
            .unwrap();
        let mut c = tiny();
        c.optim.lr = 0.001;
        assert!(s.behaviour(&c).collapse && !s.behaviour(&c).fail);
        c.seed = 3;
        assert!(s.behaviour(&c).fail);
        c.optim.lr = 0.01;
        assert!(!s.behaviour(&c).collapse);
    }

    #[test]
    fn curves_are_deterministic_and_follow_the_real_schedule() {
        let c = tiny();
        let a = train("", &c).unwrap();
        let b = train("", &c).unwrap();
        let strip = |t: &Trained| {
            t.record
                .metrics
                .iter()
                .map(|r| (r.epoch, r.iteration, r.split, r.loss, r.acc, r.samples))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&a), strip(&b));
        assert_eq!(a.record.status, RunStatus::Completed);
        assert_eq!(a.record.iterations, 40);
        assert_eq!(a.record.device, FAKE_DEVICE);
        // The untrained model (test only, at chance), then steps 10, 20, 30, 40 (train window
        // and test each).
        let iters: Vec<u64> = a.record.metrics.iter().map(|r| r.iteration).collect();
        assert_eq!(iters, vec![0, 10, 10, 20, 20, 30, 30, 40, 40]);
        // Accuracy rises from chance, loss falls, and another seed gives another curve.
        let test: Vec<(f64, f64)> = a
            .record
            .metrics
            .iter()
            .filter(|r| r.split == crate::trainer::record::MetricSplit::Test)
            .map(|r| (r.acc, r.loss))
            .collect();
        assert_eq!(test[0].0, 0.1);
        assert!((test[0].1 - 10f64.ln()).abs() < 1e-12);
        assert!(
            test.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 > w[1].1),
            "{test:?}"
        );
        let losses: Vec<f64> = a.record.metrics.iter().map(|r| r.loss).collect();
        assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0));
        let mut other = c.clone();
        other.seed = 7;
        assert_ne!(FakeCurve::of(&other), FakeCurve::of(&c));
        assert!(a.weights.is_some());
        assert!(!a.record.collapsed);
    }

    #[test]
    fn divergence_collapse_failure_and_panic_are_injected() {
        let c = tiny();
        let d = train("diverge_at=15", &c).unwrap();
        assert!(matches!(
            d.record.status,
            RunStatus::Diverged {
                iteration: 15,
                epoch: 2,
                ..
            }
        ));
        assert!(d.weights.is_none());
        let k = train("collapse", &c).unwrap();
        assert!(k.record.collapsed);
        assert_eq!(k.record.top_class.unwrap().class, 1);
        let e = train("fail", &c).unwrap_err().to_string();
        assert!(e.contains("`fail` rule"), "{e}");
        let p = std::panic::catch_unwind(|| train("panic", &c));
        assert!(p.is_err());
    }

    /// Every metric row carries the learning rate in force, as the schedule sets it before
    /// every step: here a step schedule halving each epoch after a 5-step warmup.
    #[test]
    fn metric_rows_carry_the_scheduled_learning_rate() {
        let mut c = tiny(); // 10 steps per epoch, 40 steps, evaluations every 10
        c.optim.lr_schedule = crate::trainer::config::LrSchedule::Step {
            step_size: 1,
            gamma: 0.5,
        };
        c.optim.warmup = Some(5);
        let lr = c.optim.lr;
        let t = train("", &c).unwrap();
        let rows: Vec<(u64, Option<f64>)> = t
            .record
            .metrics
            .iter()
            .map(|r| (r.iteration, r.lr))
            .collect();
        // Before training: the first step's rate (warmup 1/5); then the rate of the last step
        // of epochs 1..4: lr, lr/2, lr/4, lr/8.
        let want = [
            (0, lr / 5.0),
            (10, lr),
            (10, lr),
            (20, lr / 2.0),
            (20, lr / 2.0),
            (30, lr / 4.0),
            (30, lr / 4.0),
            (40, lr / 8.0),
            (40, lr / 8.0),
        ];
        assert_eq!(rows.len(), want.len());
        for ((it, got), (wit, w)) in rows.iter().zip(want) {
            assert_eq!(*it, wit);
            assert!(
                (got.unwrap() - w).abs() < 1e-15,
                "step {it}: {got:?} vs {w}"
            );
        }
        // Train rows report the pre-clip gradient norm of their window.
        let train_rows = t.record.metrics.iter().filter(|r| r.grad_norm.is_some());
        assert_eq!(train_rows.count(), 4);
    }

    #[test]
    fn a_set_stop_flag_interrupts_before_the_first_step() {
        let t = FakeTrainer::default();
        let r = t
            .train(&tiny(), &Silent, &AtomicBool::new(true), Span::whole())
            .unwrap();
        assert!(matches!(
            r.record.status,
            RunStatus::Interrupted { iteration: 0, .. }
        ));
    }
}
