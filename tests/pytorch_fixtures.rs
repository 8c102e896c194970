//! rnnsweep against PyTorch itself: golden fixtures written by `tools/pytorch_fixtures.py`
//! (torch on a developer's machine; the JSON is committed, so no test needs torch).
//!
//! For every cell (rnn relu, rnn tanh, lstm, gru) × layers (1, 2), from the fixture's initial
//! weights and its batch of 4 real MNIST images: the logits, the loss and every parameter's
//! gradient, and the parameters after 3 steps of SGD, SGD with momentum, Adam and RMSprop,
//! in f32 (the training path) and f64. The optimizer knobs of the study space (weight decay,
//! AdamW, betas, eps, alpha, Nesterov, AMSGrad, gradient clipping by norm and by value) on an LSTM, with
//! the pre-clip gradient norm of every step. And two runs that blow up: the step and the tensor
//! that went non-finite first must be PyTorch's.

// The C functions cudarc calls, defined here as in the binary (src/cuda_shim/): without them the
// CUDA build of this test does not link (its cudarc has only empty stub libraries to link).
#[cfg(feature = "cuda")]
#[path = "../src/cuda_shim/mod.rs"]
mod cuda_shim;

use std::path::PathBuf;

use dfdx::prelude::*;
use rnnsweep::data::{Split, CLASSES, SIDE};
use rnnsweep::trainer::config::{Activation, LayerKind, ModelConfig, OptimConfig, OptimKind};
use rnnsweep::trainer::fit::{make_batch, train_step};
use rnnsweep::trainer::model::kernel::LayerKernel;
use rnnsweep::trainer::model::Model;
use rnnsweep::trainer::optim::Optimizer;
use rnnsweep::trainer::record::NonFiniteKind;
use serde::Deserialize;

/// The fixtures folder: under `CARGO_MANIFEST_DIR` as set when the test runs (cargo sets it;
/// `scripts/gpu-check.sh` sets it for test executables built on another machine), else as it
/// was when the test was built.
fn dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("tests/fixtures/pytorch")
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Deserialize)]
struct Batch {
    labels: Vec<u8>,
    pixels: Vec<Vec<u8>>,
}

fn batch() -> Split {
    let b: Batch = load("batch.json");
    Split {
        images: b.pixels.concat(),
        labels: b.labels,
    }
}

#[derive(Deserialize)]
struct FixtureModel {
    cell: LayerKind,
    activation: Option<Activation>,
    hidden: usize,
    layers: usize,
}

impl FixtureModel {
    fn config(&self) -> ModelConfig {
        ModelConfig {
            cell: self.cell,
            hidden: self.hidden,
            layers: self.layers,
            activation: self.activation,
            ..ModelConfig::default()
        }
    }
}

#[derive(Deserialize)]
struct FixtureOptim {
    kind: OptimKind,
    lr: f64,
    momentum: f64,
}

impl FixtureOptim {
    fn config(&self) -> OptimConfig {
        OptimConfig {
            momentum: self.momentum,
            ..OptimConfig::new(self.kind, self.lr)
        }
    }
}

#[derive(Deserialize)]
struct Outputs {
    logits: Vec<f64>,
    loss: f64,
    grads: Vec<Vec<f64>>,
    after: std::collections::BTreeMap<String, Vec<Vec<f64>>>,
}

#[derive(Deserialize)]
struct Fixture {
    model: FixtureModel,
    optimizers: std::collections::BTreeMap<String, FixtureOptim>,
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    init: Vec<Vec<f64>>,
    f32: Outputs,
    f64: Outputs,
}

const FIXTURES: [&str; 8] = [
    "rnn_relu_l1.json",
    "rnn_relu_l2.json",
    "rnn_tanh_l1.json",
    "rnn_tanh_l2.json",
    "lstm_l1.json",
    "lstm_l2.json",
    "gru_l1.json",
    "gru_l2.json",
];

/// A model of `cfg` on `dev` holding the fixture's initial weights.
fn model_with<E: Dtype + num_traits::Float, D: LayerKernel<E>>(
    dev: &D,
    cfg: &ModelConfig,
    init: &[Vec<f64>],
) -> Model<E, D> {
    let mut m = Model::<E, D>::init(cfg, 0, dev);
    assert_eq!(m.params.len(), init.len(), "parameter tensors");
    for (p, v) in m.params.iter_mut().zip(init) {
        let vals: Vec<E> = v.iter().map(|&x| E::from(x).unwrap()).collect();
        assert_eq!(p.shape().0, vals.len());
        p.copy_from(&vals);
    }
    m
}

/// Forward, mean cross-entropy and backward on the whole batch.
fn loss_and_grads<E: Dtype + num_traits::Float, D: LayerKernel<E>>(
    dev: &D,
    m: &Model<E, D>,
    split: &Split,
) -> (Vec<f64>, f64, Gradients<E, D>) {
    let idx: Vec<usize> = (0..split.len()).collect();
    let (x, y) = make_batch(split, &idx);
    let n = idx.len();
    let conv = |v: Vec<f32>| {
        v.into_iter()
            .map(|a| E::from(a).unwrap())
            .collect::<Vec<E>>()
    };
    let xt = dev.tensor_from_vec(conv(x), (SIDE * n, SIDE));
    let yt = dev.tensor_from_vec(conv(y), (n, CLASSES));
    let (logits, tape) = m.forward(xt, n, OwnedTape::default());
    let host: Vec<f64> = logits
        .as_vec()
        .iter()
        .map(|v| v.to_f64().unwrap())
        .collect();
    let loss = cross_entropy_with_logits_loss(logits.put_tape(tape), yt);
    let value = loss.as_vec()[0].to_f64().unwrap();
    (host, value, loss.backward())
}

/// Every value within `rtol·|want| + atol·max|want|` of torch's: relative to the value, plus
/// relative to the tensor's largest value, since values near zero carry the rounding of a
/// different summation order (which Adam and RMSprop, dividing by √v, pass on to the update).
fn close(what: &str, got: &[f64], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    let atol = atol * scale;
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{k}]: rnnsweep {g:e}, torch {w:e} (diff {:e})",
            (g - w).abs()
        );
    }
}

/// `atol_adaptive` is the scale tolerance for the parameters after Adam and RMSprop steps:
/// they divide by √v + ε, so a near-zero gradient's last-bit rounding (summation order, and in
/// f32 the fast tanh) moves its update by far more than its own size.
fn check<E: Dtype + num_traits::Float, D: LayerKernel<E>>(
    dev: &D,
    f: &Fixture,
    want: &Outputs,
    rtol: f64,
    atol: f64,
    atol_adaptive: f64,
    tag: &str,
) {
    let cfg = f.model.config();
    let split = batch();
    let m = model_with::<E, D>(dev, &cfg, &f.init);
    for (info, (name, shape)) in m.layout.iter().zip(f.names.iter().zip(&f.shapes)) {
        assert_eq!(
            (&info.name, &info.shape),
            (name, shape),
            "PyTorch's names and shapes"
        );
    }
    let (logits, loss, grads) = loss_and_grads(dev, &m, &split);
    let label = format!("{} {tag}", cfg.label());
    close(
        &format!("{label} logits"),
        &logits,
        &want.logits,
        rtol,
        atol,
    );
    close(&format!("{label} loss"), &[loss], &[want.loss], rtol, atol);
    for (k, p) in m.params.iter().enumerate() {
        let g: Vec<f64> = grads
            .get(p)
            .as_vec()
            .iter()
            .map(|v| v.to_f64().unwrap())
            .collect();
        close(
            &format!("{label} grad {}", f.names[k]),
            &g,
            &want.grads[k],
            rtol,
            atol,
        );
    }
    for (key, spec) in &f.optimizers {
        let mut m = model_with::<E, D>(dev, &cfg, &f.init);
        let mut opt = Optimizer::<E, D>::new(&spec.config(), m.params.len());
        for _ in 0..3 {
            let (_, _, grads) = loss_and_grads(dev, &m, &split);
            assert_eq!(opt.update(&mut m.params, &grads).non_finite, None);
        }
        let atol = match spec.config().kind {
            OptimKind::Sgd => atol,
            _ => atol_adaptive,
        };
        for (k, p) in m.params.iter().enumerate() {
            let v: Vec<f64> = p.as_vec().iter().map(|v| v.to_f64().unwrap()).collect();
            close(
                &format!("{label} {key} after 3 steps: {}", f.names[k]),
                &v,
                &want.after[key][k],
                rtol,
                atol,
            );
        }
    }
}

/// f32, the training path: 1e-5 relative to each value and to its tensor's largest value;
/// after Adam/RMSprop steps 3e-5 of the largest value. Measured worst cases: 1.2e-6 of scale
/// for logits, loss, gradients and SGD; 1.5e-5 for LSTM RMSprop on `rnn.weight_ih_l0`, whose
/// gradients reach 1e-7 next to ε = 1e-8 (5.6e-6 with exact f32 tanh and sigmoid in place of
/// the fast tanh).
#[test]
fn f32_path_matches_pytorch_float32() {
    for name in FIXTURES {
        let f: Fixture = load(name);
        check::<f32, Cpu>(&Cpu::default(), &f, &f.f32, 1e-5, 1e-5, 3e-5, "f32");
    }
}

/// The f32 fixtures on the first CUDA GPU, through the dfdx-ops path (cuBLAS matmuls, dfdx's
/// kernels): the CPU's f32 tolerances (1e-5 relative to each value and to its tensor's largest
/// value; 3e-5 of the largest after Adam/RMSprop steps). Ignored by `cargo test`, which runs on
/// machines without a GPU; `scripts/gpu-check.sh` runs it with `--ignored`.
#[cfg(feature = "cuda")]
#[test]
#[ignore = "needs a CUDA GPU: scripts/gpu-check.sh runs it"]
fn f32_on_cuda_matches_pytorch_float32() {
    let dev = Cuda::default();
    for name in FIXTURES {
        let f: Fixture = load(name);
        check::<f32, Cuda>(&dev, &f, &f.f32, 1e-5, 1e-5, 3e-5, "f32 cuda");
    }
}

/// f64: the same math to 1e-9.
#[test]
fn f64_path_matches_pytorch_float64() {
    for name in FIXTURES {
        let f: Fixture = load(name);
        check::<f64, Cpu>(&Cpu::default(), &f, &f.f64, 1e-9, 1e-9, 1e-9, "f64");
    }
}

#[derive(Deserialize)]
struct FirstNonFinite {
    kind: String,
    tensor: Option<String>,
    step: u64,
}

#[derive(Deserialize)]
struct Divergence {
    model: FixtureModel,
    optimizer: FixtureOptim,
    init: Vec<Vec<f64>>,
    torch_loss_non_finite_step: u64,
    first_non_finite: FirstNonFinite,
}

#[derive(Deserialize)]
struct Divergences {
    cases: Vec<Divergence>,
}

/// Runs blown up on purpose: the training step (`train_step`, as `fit` calls it) reports the
/// same first non-finite quantity at the same step as PyTorch, and the loss of the step after
/// is non-finite at PyTorch's step too.
#[test]
fn divergence_is_found_at_pytorchs_step_and_tensor() {
    let d: Divergences = load("divergence.json");
    assert!(d.cases.len() >= 2);
    let split = batch();
    let idx: Vec<usize> = (0..split.len()).collect();
    let dev = Cpu::default();
    for case in &d.cases {
        let cfg = case.model.config();
        let mut m = model_with::<f32, Cpu>(&dev, &cfg, &case.init);
        let mut opt = Optimizer::<f32, Cpu>::new(&case.optimizer.config(), m.params.len());
        let want = &case.first_non_finite;
        let mut found = None;
        for step in 1..=case.torch_loss_non_finite_step {
            let s = train_step(&mut m, &mut opt, &dev, &split, &idx);
            if found.is_none() {
                if let Some((kind, tensor)) = s.non_finite {
                    found = Some((step, kind, tensor.map(|i| m.layout[i].name.clone())));
                }
            }
            if step == case.torch_loss_non_finite_step {
                assert!(
                    !s.loss.is_finite(),
                    "torch's loss is non-finite at step {step}"
                );
            } else {
                assert!(s.loss.is_finite(), "torch's loss is finite at step {step}");
            }
        }
        let (step, kind, tensor) = found.expect("a non-finite quantity was found");
        let kind = match kind {
            NonFiniteKind::Loss => "loss",
            NonFiniteKind::Gradient => "gradient",
            NonFiniteKind::Parameter => "parameter",
        };
        assert_eq!(
            (step, kind, tensor.as_deref()),
            (want.step, want.kind.as_str(), want.tensor.as_deref()),
            "first non-finite (step, kind, tensor)"
        );
    }
}

#[derive(Deserialize)]
struct KnobRun {
    after: Vec<Vec<f64>>,
    grad_norms: Vec<f64>,
}

#[derive(Deserialize)]
struct Knobs {
    model: FixtureModel,
    /// Each spec is written exactly as rnnsweep's `optim` config.
    optimizers: std::collections::BTreeMap<String, OptimConfig>,
    init: Vec<Vec<f64>>,
    f32: std::collections::BTreeMap<String, KnobRun>,
    f64: std::collections::BTreeMap<String, KnobRun>,
}

/// Weight decay (coupled and AdamW's decoupled), betas, eps, alpha, Nesterov, clip_grad_norm
/// and clip_grad_value: the parameters after 3 steps and the pre-clip gradient norm of every
/// step, as PyTorch computes them.
fn check_knobs<E: Dtype + num_traits::Float>(
    k: &Knobs,
    runs: &std::collections::BTreeMap<String, KnobRun>,
    tol: f64,
    tol_adaptive: f64,
) where
    Cpu: rnnsweep::trainer::model::kernel::LayerKernel<E>,
{
    let cfg = k.model.config();
    let split = batch();
    assert_eq!(runs.len(), k.optimizers.len());
    for (key, spec) in &k.optimizers {
        spec.validate().unwrap_or_else(|e| panic!("{key}: {e}"));
        let want = &runs[key];
        let dev = Cpu::default();
        let mut m = model_with::<E, Cpu>(&dev, &cfg, &k.init);
        let mut opt = Optimizer::<E, Cpu>::new(spec, m.params.len());
        for (step, want_norm) in want.grad_norms.iter().enumerate() {
            let (_, _, grads) = loss_and_grads(&dev, &m, &split);
            let u = opt.update(&mut m.params, &grads);
            assert_eq!(u.non_finite, None, "{key}");
            close(
                &format!("{key} step {} pre-clip gradient norm", step + 1),
                &[u.grad_norm],
                &[*want_norm],
                tol,
                0.0,
            );
        }
        let atol = match spec.kind {
            OptimKind::Sgd => tol,
            _ => tol_adaptive,
        };
        for (i, p) in m.params.iter().enumerate() {
            let v: Vec<f64> = p.as_vec().iter().map(|v| v.to_f64().unwrap()).collect();
            close(
                &format!("{key} after 3 steps: {}", m.layout[i].name),
                &v,
                &want.after[i],
                tol,
                atol,
            );
        }
    }
}

#[test]
fn optimizer_knobs_and_clipping_match_pytorch() {
    let k: Knobs = load("optimizers.json");
    assert!(k.optimizers.len() >= 11);
    assert!(k.optimizers.values().filter(|o| o.amsgrad).count() >= 2);
    check_knobs::<f64>(&k, &k.f64, 1e-9, 1e-9);
    check_knobs::<f32>(&k, &k.f32, 1e-5, 3e-5);
}

#[derive(Deserialize)]
struct Schedules {
    epochs: u64,
    batches_per_epoch: u64,
    specs: std::collections::BTreeMap<String, OptimConfig>,
    lrs: std::collections::BTreeMap<String, Vec<f64>>,
}

/// The learning rate of every step, against PyTorch's StepLR (per epoch), CosineAnnealingLR
/// and LinearLR warmup (per iteration, chained).
#[test]
fn learning_rate_schedules_match_pytorchs_schedulers() {
    let s: Schedules = load("schedules.json");
    assert!(s.specs.len() >= 6);
    let total = s.epochs * s.batches_per_epoch;
    for (key, spec) in &s.specs {
        spec.validate().unwrap_or_else(|e| panic!("{key}: {e}"));
        let want = &s.lrs[key];
        assert_eq!(want.len() as u64, total);
        let got: Vec<f64> = (0..total)
            .map(|t| spec.lr_at(t, t / s.batches_per_epoch + 1, total))
            .collect();
        close(&format!("{key} learning rates"), &got, want, 1e-12, 0.0);
    }
}
