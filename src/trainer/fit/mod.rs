//! The training loop: seeded per-epoch shuffling, mini-batches (the last one may be smaller),
//! cross-entropy, backward, optimizer step; evaluation on the schedule; divergence and
//! cancellation detection; checkpoints at every evaluation point and when stopped, and the
//! resumption from one (`checkpoint.rs`). Reports progress through the `Observer` hooks.

pub mod checkpoint;
pub mod denormal;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use dfdx::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::sequence::{InputMode, Reading};
use crate::data::{Mnist, Split, CLASSES, PIXELS};
use crate::error::TrainError;
use crate::trainer::config::{EvalEvery, TrainConfig};
use crate::trainer::model::dropout::Dropout;
use crate::trainer::model::kernel::LayerKernel;
use crate::trainer::model::layout::param_count;
use crate::trainer::model::tape::Mat;
use crate::trainer::model::Model;
use crate::trainer::optim::Optimizer;
use crate::trainer::record::{
    EpochStats, MetricRow, MetricSplit, NonFinite, NonFiniteKind, RunRecord, RunStatus, TopClass,
    COLLAPSE_SHARE, FORMAT_VERSION,
};

use checkpoint::{Checkpoint, CheckpointError, LearnerState, Progress, Span, CHECKPOINT_VERSION};
use denormal::FloatMode;

/// Test images scored together: the loss is summed per group of this many, in order, and the
/// groups' sums added, so the recorded loss does not depend on [`EVAL_BATCH`].
pub const EVAL_CHUNK: usize = 1000;

/// Test images per forward pass in evaluation: few enough that a layer's activations of every
/// step stay in the core's caches. Against 1000 per pass, evaluation time of the tutorial
/// recipes' runs fell 8–36 % (lstm_h64 1.1 s → 0.7 s of a 3.7 s run; release build, one
/// thread, Intel Xeon). Each sample's logits are the same bits at any batch size (a test checks
/// this), so the recorded curves are unchanged.
pub const EVAL_BATCH: usize = 128;

/// Where training is, after each optimizer step.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo {
    pub epoch: u64,
    pub iteration: u64,
    pub total_iterations: u64,
    pub batch_in_epoch: u64,
    pub batches_per_epoch: u64,
    pub loss: f64,
}

/// Hooks called by the loop; all default to nothing.
pub trait Observer {
    /// Training starts on `device` (e.g. `cpu`); `note` says why that device was chosen.
    fn started(&self, _device: &str, _note: Option<&str>) {}
    fn step(&self, _info: &StepInfo) {}
    /// Rows of one evaluation point (train window and/or test).
    fn eval(&self, _rows: &[MetricRow]) {}
    fn epoch_done(&self, _stats: &EpochStats) {}
    /// Whether to make checkpoints for [`Observer::checkpoint`] (copying the state costs time).
    fn wants_checkpoints(&self) -> bool {
        false
    }
    /// A checkpoint: after every evaluation point, and when the stop flag stopped the run
    /// (never before the first step or after the last: a fresh start or the record does).
    fn checkpoint(&self, _ckpt: Checkpoint) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// Builds a time-major batch (28·n, 28) of image rows scaled to [0, 1] and its one-hot
/// targets: the tutorials' reading (see [`make_batch_read`] for the others).
pub fn make_batch(split: &Split, idx: &[usize]) -> (Vec<f32>, Vec<f32>) {
    make_batch_read(split, idx, &Reading::new(InputMode::Rows, 0))
}

/// Builds a time-major batch ((steps·n) × features, pixels scaled to [0, 1]) of the images
/// `idx` as `reading` reads them, and its one-hot targets.
pub fn make_batch_read(split: &Split, idx: &[usize], reading: &Reading) -> (Vec<f32>, Vec<f32>) {
    let n = idx.len();
    let mut x = vec![0f32; n * PIXELS];
    let mut y = vec![0f32; n * CLASSES];
    for (b, &i) in idx.iter().enumerate() {
        reading.write(&split.images[i * PIXELS..(i + 1) * PIXELS], b, n, &mut x);
        y[b * CLASSES + split.labels[i] as usize] = 1.0;
    }
    (x, y)
}

/// The batch tensor of `x` for `model`: (steps·n, features).
fn batch_tensor<D: LayerKernel<f32>>(
    model: &Model<f32, D>,
    dev: &D,
    x: Vec<f32>,
    n: usize,
) -> Mat<f32, D> {
    let input = model.config.input;
    dev.tensor_from_vec(x, (input.steps() * n, input.features()))
}

/// The predicted class of one row of logits, as `torch.argmax`: the first maximum, where NaN
/// counts as larger than everything (so a row with a NaN predicts its first NaN's class).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v.is_nan() {
            return i;
        }
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Cross-entropy summed over the batch, correct predictions, and the predictions per class,
/// from logits, computed in f64 on the host. Any NaN logit in a row makes that row's loss NaN,
/// and +inf gives NaN (inf − inf), as in PyTorch's log-softmax.
fn score(logits: &[f32], labels: impl Iterator<Item = u8>) -> (f64, u64, [u64; CLASSES]) {
    let mut loss = 0.0;
    let mut correct = 0;
    let mut predicted = [0u64; CLASSES];
    for (row, label) in logits.chunks(CLASSES).zip(labels) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let lse = max
            + row
                .iter()
                .map(|&v| (v as f64 - max).exp())
                .sum::<f64>()
                .ln();
        loss += lse - row[label as usize] as f64;
        let class = argmax(row);
        predicted[class] += 1;
        correct += (class == label as usize) as u64;
    }
    (loss, correct, predicted)
}

/// One evaluation of a model on a split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub loss: f64,
    pub acc: f64,
    /// How many images were predicted as each class.
    pub predicted: [u64; CLASSES],
}

impl Evaluation {
    /// The most frequent predicted class and its share of the evaluated images.
    pub fn top_class(&self) -> Option<TopClass> {
        let n: u64 = self.predicted.iter().sum();
        if n == 0 {
            return None;
        }
        let class = argmax_u64(&self.predicted);
        Some(TopClass {
            class: class as u8,
            share: self.predicted[class] as f64 / n as f64,
        })
    }
}

fn argmax_u64(v: &[u64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

/// Mean loss, accuracy and predictions per class of `model` on the first `n` images of `split`.
pub fn evaluate<D: LayerKernel<f32>>(
    model: &Model<f32, D>,
    dev: &D,
    split: &Split,
    n: usize,
) -> Evaluation {
    let n = n.min(split.len());
    let (mut loss, mut correct, mut predicted) = (0.0, 0, [0u64; CLASSES]);
    let mut start = 0;
    while start < n {
        let end = (start + EVAL_CHUNK).min(n);
        let logits = logits_of(model, dev, split, start..end);
        let (l, c, p) = score(&logits, split.labels[start..end].iter().copied());
        loss += l;
        correct += c;
        for (a, b) in predicted.iter_mut().zip(p) {
            *a += b;
        }
        start = end;
    }
    Evaluation {
        loss: loss / n as f64,
        acc: correct as f64 / n as f64,
        predicted,
    }
}

/// Predicted class of each of the first `n` images of `split`.
pub fn predict<D: LayerKernel<f32>>(
    model: &Model<f32, D>,
    dev: &D,
    split: &Split,
    n: usize,
) -> Vec<usize> {
    logits_of(model, dev, split, 0..n.min(split.len()))
        .chunks(CLASSES)
        .map(argmax)
        .collect()
}

/// The logits of images `range` of `split`, [`EVAL_BATCH`] images per forward pass, without a
/// tape: (range.len(), 10), row-major.
fn logits_of<D: LayerKernel<f32>>(
    model: &Model<f32, D>,
    dev: &D,
    split: &Split,
    range: std::ops::Range<usize>,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(range.len() * CLASSES);
    let mut start = range.start;
    while start < range.end {
        let end = (start + EVAL_BATCH).min(range.end);
        let idx: Vec<usize> = (start..end).collect();
        let (x, _) = make_batch_read(split, &idx, model.reading());
        let xt = batch_tensor(model, dev, x, idx.len());
        let (logits, _) = model.forward(xt, idx.len(), NoneTape);
        out.extend(logits.as_vec());
        start = end;
    }
    out
}

/// What one optimizer step did.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The batch's mean cross-entropy.
    pub loss: f64,
    /// Correct predictions in the batch.
    pub correct: u64,
    /// The total 2-norm of the gradients before clipping (NaN when the loss was not finite,
    /// so no backward pass ran).
    pub grad_norm: f64,
    /// The first non-finite quantity of the step (loss, then gradients, then updated
    /// parameters), with the parameter's index in the model's layout.
    pub non_finite: Option<(NonFiniteKind, Option<usize>)>,
}

/// One optimizer step on the images `idx` of `split`: forward, cross-entropy (batch mean),
/// backward, update. When the loss or a gradient is not finite the parameters are left
/// untouched; the step says what went non-finite first.
pub fn train_step<D: LayerKernel<f32>>(
    model: &mut Model<f32, D>,
    opt: &mut Optimizer<f32, D>,
    dev: &D,
    split: &Split,
    idx: &[usize],
) -> Step {
    train_step_with(model, opt, dev, split, idx, None)
}

/// [`train_step`] with the model's dropout (masks drawn from `dropout` for this step).
pub fn train_step_with<D: LayerKernel<f32>>(
    model: &mut Model<f32, D>,
    opt: &mut Optimizer<f32, D>,
    dev: &D,
    split: &Split,
    idx: &[usize],
    dropout: Option<&mut Dropout>,
) -> Step {
    let (x, y) = make_batch_read(split, idx, model.reading());
    let n = idx.len();
    let xt = batch_tensor(model, dev, x, n);
    let yt = dev.tensor_from_vec(y, (n, CLASSES));
    let masks: Vec<Vec<f32>> = dropout.map_or_else(Vec::new, |d| {
        d.masks(model.config.input.steps(), n)
            .into_iter()
            .map(|m| m.into_iter().map(|v| v as f32).collect())
            .collect()
    });
    let (logits, tape) = model.forward_masked(xt, n, OwnedTape::default(), &masks);
    let host_logits = logits.as_vec();
    let loss = cross_entropy_with_logits_loss(logits.put_tape(tape), yt);
    let loss_value = loss.as_vec()[0] as f64;
    let (_, correct, _) = score(&host_logits, idx.iter().map(|&i| split.labels[i]));
    if !loss_value.is_finite() {
        return Step {
            loss: loss_value,
            correct,
            grad_norm: f64::NAN,
            non_finite: Some((NonFiniteKind::Loss, None)),
        };
    }
    let grads = loss.backward();
    let update = opt.update(&mut model.params, &grads);
    Step {
        loss: loss_value,
        correct,
        grad_norm: update.grad_norm,
        non_finite: update.non_finite.map(|(kind, i)| (kind, Some(i))),
    }
}

/// Running sums of the training metrics since the last evaluation point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    loss: f64,
    correct: u64,
    samples: u64,
    seconds: f64,
    /// Pre-clip gradient norm of the last step, and the largest in the window.
    grad_norm: Option<f64>,
    grad_norm_max: Option<f64>,
}

impl Window {
    fn add(&mut self, step: &Step, n: usize, seconds: f64) {
        self.loss += step.loss * n as f64;
        self.correct += step.correct;
        self.samples += n as u64;
        self.seconds += seconds;
        self.grad_norm = Some(step.grad_norm);
        self.grad_norm_max = Some(
            self.grad_norm_max
                .map_or(step.grad_norm, |m| m.max(step.grad_norm)),
        );
    }
}

/// What the training loop drives: one optimizer step on some training images, and an
/// evaluation on the first test images. [`ModelLearner`] is the real network; the fake
/// trainer (`trainer::backend::fake`) is another, so both share every rule of the loop
/// (shuffling, budget, evaluation schedule, divergence, interruption).
pub(crate) trait Learner {
    /// One optimizer step on the training images `idx`.
    fn step(&mut self, idx: &[usize]) -> Step;
    /// Loss, accuracy and predictions per class on the first `n` test images.
    fn evaluate(&mut self, n: usize) -> Evaluation;
    /// PyTorch's name of parameter `i` (to say which tensor went non-finite).
    fn param_name(&self, i: usize) -> String;
    /// The learning rate of the next steps (the schedule's, set before every step).
    fn set_lr(&mut self, lr: f64);
    /// Everything the next steps depend on (see [`LearnerState`]).
    fn save(&self) -> LearnerState;
    /// Continues from a [`Learner::save`] of the same configuration.
    fn restore(&mut self, state: &LearnerState) -> Result<(), CheckpointError>;
}

/// A dfdx model with its optimizer, on `dev`, trained on `data`.
struct ModelLearner<'a, D: LayerKernel<f32>> {
    model: Model<f32, D>,
    opt: Optimizer<f32, D>,
    dropout: Option<Dropout>,
    dev: &'a D,
    data: &'a Mnist,
}

impl<D: LayerKernel<f32>> Learner for ModelLearner<'_, D> {
    fn step(&mut self, idx: &[usize]) -> Step {
        train_step_with(
            &mut self.model,
            &mut self.opt,
            self.dev,
            &self.data.train,
            idx,
            self.dropout.as_mut(),
        )
    }
    fn evaluate(&mut self, n: usize) -> Evaluation {
        evaluate(&self.model, self.dev, &self.data.test, n)
    }
    fn param_name(&self, i: usize) -> String {
        self.model.layout[i].name.clone()
    }
    fn set_lr(&mut self, lr: f64) {
        self.opt.set_lr(lr);
    }
    fn save(&self) -> LearnerState {
        let params = self.model.values();
        LearnerState::Network {
            params,
            optimizer: self.opt.state(),
            dropout: self.dropout.as_ref().map(Dropout::position),
        }
    }
    fn restore(&mut self, state: &LearnerState) -> Result<(), CheckpointError> {
        let LearnerState::Network {
            params,
            optimizer,
            dropout,
        } = state
        else {
            return Err(CheckpointError::Shape("written by the fake trainer".into()));
        };
        let model = Model::from_values(&self.model.config, params, self.dev)
            .map_err(|e| CheckpointError::Shape(e.to_string()))?;
        let sizes: Vec<usize> = params.iter().map(Vec::len).collect();
        self.opt
            .restore(optimizer, &sizes, self.dev)
            .map_err(CheckpointError::Shape)?;
        match (self.dropout.as_mut(), dropout) {
            (Some(d), Some(at)) => d.seek(*at),
            (None, None) => {}
            _ => return Err(CheckpointError::Shape("dropout differs".into())),
        }
        self.model = model;
        Ok(())
    }
}

/// Collects the metric rows (the training window since the last evaluation, and test
/// evaluations) into the loop's [`Progress`], and makes the checkpoints.
struct Recorder<'a> {
    n_test: usize,
    obs: &'a dyn Observer,
    cfg: &'a TrainConfig,
    device: &'a str,
    p: Progress,
}

impl Recorder<'_> {
    /// Evaluates the test split, closes the current training window, and reports both rows.
    fn eval_point(&mut self, epoch: u64, learner: &mut dyn Learner) {
        let t0 = Instant::now();
        let ev = learner.evaluate(self.n_test);
        let (loss, acc) = (ev.loss, ev.acc);
        let p = &mut self.p;
        let (iteration, train_seconds) = (p.iteration, p.train_seconds);
        p.last_eval = Some(ev);
        p.eval_seconds += t0.elapsed().as_secs_f64();
        let w = std::mem::take(&mut p.window);
        let mut rows = Vec::with_capacity(2);
        if w.samples > 0 {
            rows.push(MetricRow {
                epoch,
                iteration,
                split: MetricSplit::Train,
                loss: w.loss / w.samples as f64,
                acc: w.correct as f64 / w.samples as f64,
                samples: w.samples,
                seconds: train_seconds,
                samples_per_sec: Some(w.samples as f64 / w.seconds.max(1e-12)),
                grad_norm: w.grad_norm,
                grad_norm_max: w.grad_norm_max,
                lr: Some(p.lr),
            });
        }
        rows.push(MetricRow {
            epoch,
            iteration,
            split: MetricSplit::Test,
            loss,
            acc,
            samples: self.n_test as u64,
            seconds: train_seconds,
            samples_per_sec: None,
            grad_norm: None,
            grad_norm_max: None,
            lr: Some(p.lr),
        });
        self.obs.eval(&rows);
        p.metrics.extend(rows);
        p.last_eval_iteration = Some(iteration);
    }

    /// Hands the observer a checkpoint of this point (`current`: the epoch in progress, if the
    /// point is inside one), unless nothing was trained yet or the budget is spent.
    fn checkpoint(&self, learner: &dyn Learner, current: Option<&EpochStats>) {
        let done = self.p.iteration;
        if !self.obs.wants_checkpoints() || done == 0 || done >= self.cfg.total_iterations() {
            return;
        }
        self.obs.checkpoint(Checkpoint {
            version: CHECKPOINT_VERSION,
            config: self.cfg.clone(),
            device: self.device.to_string(),
            progress: Progress {
                current: current.cloned(),
                ..self.p.clone()
            },
            learner: learner.save(),
        });
    }
}

/// Trains a model as `cfg` says, on `dev`, over `span`: a fresh one or the one of a checkpoint
/// from where it was taken, to the end or to a pause point. Returns the record (whatever the
/// outcome) and the trained model. `stop` is polled before every step (set it from a Ctrl-C
/// handler).
pub fn fit<D: LayerKernel<f32>>(
    dev: &D,
    device_name: &str,
    cfg: &TrainConfig,
    data: &Mnist,
    obs: &dyn Observer,
    stop: &AtomicBool,
    span: Span<'_>,
) -> Result<(RunRecord, Model<f32, D>), TrainError> {
    cfg.validate()?;
    // Training and evaluation alike, on this thread and the matmul threads; restored on return.
    let _float_mode = FloatMode::enter(cfg.flush_denormal)?;
    let model = Model::<f32, D>::init(&cfg.model, cfg.seed, dev);
    let opt = Optimizer::<f32, D>::new(&cfg.optim, model.params.len());
    let mut learner = ModelLearner {
        model,
        opt,
        dropout: Dropout::of(&cfg.model, cfg.seed),
        dev,
        data,
    };
    let progress = match span.from {
        Some(ckpt) => {
            ckpt.belongs_to(cfg).map_err(TrainError::Resume)?;
            learner.restore(&ckpt.learner).map_err(TrainError::Resume)?;
            Some(ckpt.progress.clone())
        }
        None => None,
    };
    let sizes = (data.train.len(), data.test.len());
    let record = run_loop(
        &mut learner,
        device_name,
        cfg,
        sizes,
        obs,
        stop,
        (progress, span.pause_at),
    );
    Ok((record, learner.model))
}

/// The loop itself, for any [`Learner`]: `sizes` are the training and test images available
/// (the config's limits cut them further). `cfg` must be valid. With `resume` (a checkpoint's
/// progress, the learner already restored from it) it continues from there: the data order of
/// the epoch in progress is replayed from the seed and its trained batches skipped. With
/// `pause_at` it stops after the evaluation at that step (status `Interrupted`), having handed
/// out the checkpoint of that point.
pub(crate) fn run_loop(
    learner: &mut dyn Learner,
    device_name: &str,
    cfg: &TrainConfig,
    (train_len, test_len): (usize, usize),
    obs: &dyn Observer,
    stop: &AtomicBool,
    (resume, pause_at): (Option<Progress>, Option<u64>),
) -> RunRecord {
    let n_train = cfg.train_size().min(train_len);
    let n_test = cfg.eval.test_limit.unwrap_or(test_len).min(test_len);
    let mut shuffle_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    shuffle_rng.set_stream(1);

    let total = cfg.total_iterations();
    let per_epoch = cfg.batches_per_epoch();
    let mut status = RunStatus::Completed;
    let fresh = resume.is_none();
    let mut rec = Recorder {
        n_test,
        obs,
        cfg,
        device: device_name,
        p: resume.unwrap_or_else(|| Progress {
            lr: cfg.optim.lr_at(0, 1, total),
            ..Progress::default()
        }),
    };
    if fresh && cfg.eval.before_training {
        rec.eval_point(0, learner);
    }
    // Where to go on: inside the epoch in progress, or at the next one.
    let mut resumed_epoch = rec.p.current.take();
    let first_epoch = match &resumed_epoch {
        Some(ep) => ep.epoch,
        None => rec.p.epochs.last().map_or(1, |e| e.epoch + 1),
    };

    let mut order: Vec<usize> = (0..n_train).collect();
    for _ in 1..first_epoch {
        order.shuffle(&mut shuffle_rng);
    }
    // Already at (or past) the pause point: nothing to train.
    let last_epoch = match pause_at {
        Some(at) if rec.p.iteration >= at => {
            rec.p.current = resumed_epoch.take();
            status = RunStatus::Interrupted {
                epoch: rec.p.epoch(),
                iteration: rec.p.iteration,
            };
            0
        }
        _ => cfg.total_epochs(),
    };
    'epochs: for epoch in first_epoch..=last_epoch {
        order.shuffle(&mut shuffle_rng);
        let mut ep = resumed_epoch.take().unwrap_or(EpochStats {
            epoch,
            iterations: 0,
            samples: 0,
            seconds: 0.0,
            samples_per_sec: 0.0,
        });
        let trained = ep.iterations as usize;
        for (b, idx) in order.chunks(cfg.batch_size).enumerate().skip(trained) {
            if rec.p.iteration >= total {
                break;
            }
            if stop.load(Ordering::Relaxed) {
                status = RunStatus::Interrupted {
                    epoch,
                    iteration: rec.p.iteration,
                };
                rec.checkpoint(learner, Some(&ep));
                rec.p.epochs.push(ep);
                break 'epochs;
            }
            rec.p.lr = cfg.optim.lr_at(rec.p.iteration, epoch, total);
            learner.set_lr(rec.p.lr);
            let t0 = Instant::now();
            let step = learner.step(idx);
            let loss_value = step.loss;
            rec.p.iteration += 1;
            let iteration = rec.p.iteration;
            if let Some((kind, tensor)) = step.non_finite {
                status = RunStatus::Diverged {
                    epoch,
                    iteration,
                    non_finite: Some(NonFinite {
                        kind,
                        tensor: tensor.map(|i| learner.param_name(i)),
                    }),
                };
                rec.p.epochs.push(ep);
                break 'epochs;
            }
            let secs = t0.elapsed().as_secs_f64();
            rec.p.train_seconds += secs;
            rec.p.window.add(&step, idx.len(), secs);
            ep.iterations += 1;
            ep.samples += idx.len() as u64;
            ep.seconds += secs;
            obs.step(&StepInfo {
                epoch,
                iteration,
                total_iterations: total,
                batch_in_epoch: b as u64 + 1,
                batches_per_epoch: per_epoch,
                loss: loss_value,
            });
            if let EvalEvery::Iterations(k) = cfg.eval.every {
                if iteration.is_multiple_of(k) {
                    rec.eval_point(epoch, learner);
                    rec.checkpoint(learner, Some(&ep));
                    if pause_at == Some(iteration) {
                        status = RunStatus::Interrupted { epoch, iteration };
                        rec.p.epochs.push(ep);
                        break 'epochs;
                    }
                }
            }
            if iteration == total {
                break;
            }
        }
        ep.samples_per_sec = ep.samples as f64 / ep.seconds.max(1e-12);
        obs.epoch_done(&ep);
        rec.p.epochs.push(ep);
        if cfg.eval.every == EvalEvery::Epoch && rec.p.last_eval_iteration != Some(rec.p.iteration)
        {
            rec.eval_point(epoch, learner);
            rec.checkpoint(learner, None);
        }
        if pause_at == Some(rec.p.iteration) && rec.p.last_eval_iteration == pause_at {
            status = RunStatus::Interrupted {
                epoch,
                iteration: rec.p.iteration,
            };
            break;
        }
    }
    let iteration = rec.p.iteration;
    if status == RunStatus::Completed && rec.p.last_eval_iteration != Some(iteration) {
        let epoch = rec.p.epochs.last().map_or(0, |e| e.epoch);
        rec.eval_point(epoch, learner);
    }
    rec.p.into_record(cfg, status, device_name)
}

impl Progress {
    /// The record of a run that ended here with `status` (the epoch in progress, if any,
    /// counted as a partial epoch).
    pub fn into_record(self, cfg: &TrainConfig, status: RunStatus, device: &str) -> RunRecord {
        let mut p = self;
        if let Some(mut ep) = p.current.take() {
            ep.samples_per_sec = ep.samples as f64 / ep.seconds.max(1e-12);
            p.epochs.push(ep);
        }
        let last_test = p
            .metrics
            .iter()
            .rev()
            .find(|r| r.split == MetricSplit::Test);
        let samples: u64 = p.epochs.iter().map(|e| e.samples).sum();
        let top_class = p.last_eval.as_ref().and_then(Evaluation::top_class);
        let collapsed =
            status == RunStatus::Completed && top_class.is_some_and(|t| t.share >= COLLAPSE_SHARE);
        RunRecord {
            format_version: FORMAT_VERSION,
            config: TrainConfig {
                model: cfg.model.clone().normalized(),
                ..cfg.clone()
            },
            status,
            device: device.to_string(),
            parameters: param_count(&cfg.model),
            iterations: p.iteration,
            train_seconds: p.train_seconds,
            eval_seconds: p.eval_seconds,
            samples_per_sec: samples as f64 / p.train_seconds.max(1e-12),
            final_test_acc: last_test.map(|r| r.acc),
            final_test_loss: last_test.map(|r| r.loss),
            epochs: p.epochs,
            metrics: p.metrics,
            collapsed,
            top_class,
            origin: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `torch.argmax`: the first maximum, NaN counting as the largest value.
    #[test]
    fn argmax_follows_torch() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, 1.0]), 1);
        assert_eq!(argmax(&[0.0, f32::NAN, 5.0, f32::NAN]), 1);
        assert_eq!(argmax(&[f32::NAN; 10]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::INFINITY, 1.0]), 1);
    }

    #[test]
    fn host_score_of_nan_logits_is_nan_and_predicts_class_0() {
        let mut logits = vec![0f32; 2 * CLASSES];
        logits[3] = 4.0; // row 0 predicts 3
        logits[CLASSES..].fill(f32::NAN); // row 1 is all NaN
        let (loss, correct, predicted) = score(&logits, [3u8, 0].into_iter());
        assert!(loss.is_nan());
        assert_eq!(correct, 2);
        assert_eq!(predicted[3], 1);
        assert_eq!(predicted[0], 1);
    }

    /// Evaluating in passes of [`EVAL_BATCH`] gives every image's logits the same bits as one
    /// pass over all of them (the recorded curves do not depend on the batch size), for every
    /// kind of layer, stacked layers and 784-step input.
    #[test]
    fn logits_are_the_same_bits_at_any_batch_size() {
        use crate::trainer::config::{Activation, InputMode, LayerKind, ModelConfig};
        let n = 2 * EVAL_BATCH + 37;
        let mut s = 12345u64;
        let mut next = move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            (s >> 33) as u8
        };
        let split = Split {
            images: (0..n * PIXELS).map(|_| next()).collect(),
            labels: (0..n).map(|_| next() % 10).collect(),
        };
        let dev = Cpu::default();
        let models = [
            (LayerKind::Rnn, Some(Activation::Relu), 1, InputMode::Rows),
            (
                LayerKind::Rnn,
                Some(Activation::Tanh),
                2,
                InputMode::Columns,
            ),
            (LayerKind::Lstm, None, 1, InputMode::Rows),
            (LayerKind::Gru, None, 2, InputMode::Rows),
            (LayerKind::Lstm, None, 1, InputMode::Pixels),
        ];
        for (cell, activation, layers, input) in models {
            let cfg = ModelConfig {
                cell,
                hidden: 24,
                layers,
                activation,
                input,
                ..ModelConfig::default()
            };
            let model = Model::<f32, Cpu>::init(&cfg, 3, &dev);
            let idx: Vec<usize> = (0..n).collect();
            let (x, _) = make_batch_read(&split, &idx, model.reading());
            let (whole, _) = model.forward(batch_tensor(&model, &dev, x, n), n, NoneTape);
            let whole = whole.as_vec();
            let parts = logits_of(&model, &dev, &split, 0..n);
            assert_eq!(parts.len(), whole.len());
            for (k, (a, b)) in parts.iter().zip(&whole).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{cfg:?}: logit {k}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn top_class_is_the_most_predicted_and_its_share() {
        let mut predicted = [0u64; CLASSES];
        predicted[1] = 99;
        predicted[7] = 1;
        let ev = Evaluation {
            loss: 2.3,
            acc: 0.11,
            predicted,
        };
        assert_eq!(
            ev.top_class(),
            Some(TopClass {
                class: 1,
                share: 0.99
            })
        );
        let none = Evaluation {
            predicted: [0; CLASSES],
            ..ev
        };
        assert_eq!(none.top_class(), None);
    }
}
