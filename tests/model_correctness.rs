//! The recurrent cells against (1) a naive f64 implementation of PyTorch's equations and
//! (2) finite differences of the loss, for every cell type with 1 and 2 layers.

// The C functions cudarc calls, defined here as in the binary (src/cuda_shim/): without them the
// CUDA build of this test does not link (its cudarc has only empty stub libraries to link).
#[cfg(feature = "cuda")]
#[path = "../src/cuda_shim/mod.rs"]
mod cuda_shim;

use dfdx::prelude::*;
use rnnsweep::trainer::config::{Activation, LayerKind, ModelConfig};
use rnnsweep::trainer::model::{Model, ModelLoadError};

const T: usize = 28;
const F: usize = 28;

fn configs() -> Vec<ModelConfig> {
    let mut v = vec![];
    for layers in [1, 2] {
        for (cell, act) in [
            (LayerKind::Rnn, Some(Activation::Relu)),
            (LayerKind::Rnn, Some(Activation::Tanh)),
            (LayerKind::Lstm, None),
            (LayerKind::Gru, None),
        ] {
            v.push(ModelConfig {
                cell,
                hidden: 4,
                layers,
                activation: act,
                ..ModelConfig::default()
            });
        }
    }
    v
}

/// LSTM and GRU of hidden 87 and 32. The fused gate loops run a row's units in blocks of 64,
/// 16, 4 and 1 (`fixed_blocks!`): 87 = 64 + 16 + 4 + 3 takes every size, 32 only blocks of 16.
fn block_configs() -> Vec<ModelConfig> {
    let mut v = vec![];
    for hidden in [87, 32] {
        for cell in [LayerKind::Lstm, LayerKind::Gru] {
            v.push(ModelConfig {
                cell,
                hidden,
                layers: 1,
                activation: None,
                ..ModelConfig::default()
            });
        }
    }
    v
}

/// Deterministic pseudo-random inputs in [0, 1), batch-major: x[b][t][f].
fn inputs(batch: usize) -> Vec<Vec<Vec<f64>>> {
    let mut s = 12345u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..batch)
        .map(|_| (0..T).map(|_| (0..F).map(|_| next()).collect()).collect())
        .collect()
}

fn time_major(x: &[Vec<Vec<f64>>]) -> Vec<f64> {
    let b = x.len();
    let mut v = vec![0.0; T * b * F];
    for (bi, seq) in x.iter().enumerate() {
        for t in 0..T {
            v[(t * b + bi) * F..(t * b + bi + 1) * F].copy_from_slice(&seq[t]);
        }
    }
    v
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// y = W x + b for W stored row-major [out, in].
fn affine(w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    let n_in = x.len();
    (0..b.len())
        .map(|o| b[o] + (0..n_in).map(|i| w[o * n_in + i] * x[i]).sum::<f64>())
        .collect()
}

/// PyTorch's equations, written out per sample with plain loops.
fn naive_logits(cfg: &ModelConfig, p: &[Vec<f64>], seq: &[Vec<f64>]) -> Vec<f64> {
    let h = cfg.hidden;
    let mut layer_in: Vec<Vec<f64>> = seq.to_vec();
    for l in 0..cfg.layers {
        let (wih, whh, bih, bhh) = (&p[4 * l], &p[4 * l + 1], &p[4 * l + 2], &p[4 * l + 3]);
        let mut hs = vec![0.0; h];
        let mut cs = vec![0.0; h];
        let mut outs = vec![];
        for x in &layer_in {
            let gi = affine(wih, bih, x);
            let gh = affine(whh, bhh, &hs);
            match cfg.cell {
                LayerKind::Rnn => {
                    hs = (0..h)
                        .map(|j| {
                            let v = gi[j] + gh[j];
                            match cfg.activation.unwrap() {
                                Activation::Relu => v.max(0.0),
                                Activation::Tanh => v.tanh(),
                            }
                        })
                        .collect();
                }
                LayerKind::Lstm => {
                    for j in 0..h {
                        let i = sigmoid(gi[j] + gh[j]);
                        let f = sigmoid(gi[h + j] + gh[h + j]);
                        let g = (gi[2 * h + j] + gh[2 * h + j]).tanh();
                        let o = sigmoid(gi[3 * h + j] + gh[3 * h + j]);
                        cs[j] = f * cs[j] + i * g;
                        hs[j] = o * cs[j].tanh();
                    }
                }
                LayerKind::Gru => {
                    let mut hn = vec![0.0; h];
                    for j in 0..h {
                        let r = sigmoid(gi[j] + gh[j]);
                        let z = sigmoid(gi[h + j] + gh[h + j]);
                        let n = (gi[2 * h + j] + r * gh[2 * h + j]).tanh();
                        hn[j] = (1.0 - z) * n + z * hs[j];
                    }
                    hs = hn;
                }
            }
            outs.push(hs.clone());
        }
        layer_in = outs;
    }
    let n = p.len();
    affine(&p[n - 2], &p[n - 1], layer_in.last().unwrap())
}

fn model(cfg: &ModelConfig, seed: u64) -> (Cpu, Model<f64, Cpu>) {
    let dev = Cpu::default();
    let m = Model::<f64, Cpu>::init(cfg, seed, &dev);
    (dev, m)
}

#[test]
fn forward_matches_naive_pytorch_equations() {
    let batch = 3;
    let x = inputs(batch);
    for cfg in configs() {
        let (dev, m) = model(&cfg, 7);
        let xt = dev.tensor_from_vec(time_major(&x), (T * batch, F));
        let (logits, _) = m.forward(xt, batch, NoneTape);
        let got = logits.as_vec();
        let p = m.values();
        for (b, seq) in x.iter().enumerate() {
            let want = naive_logits(&cfg, &p, seq);
            for k in 0..10 {
                let (g, w) = (got[b * 10 + k], want[k]);
                assert!(
                    (g - w).abs() < 1e-10,
                    "{}: sample {b} logit {k}: {g} vs {w}",
                    cfg.label()
                );
            }
        }
    }
}

fn loss_of(
    m: &Model<f64, Cpu>,
    dev: &Cpu,
    x: &[f64],
    batch: usize,
    targets: &Tensor<(usize, usize), f64, Cpu>,
) -> f64 {
    let (logits, _) = m.forward(
        dev.tensor_from_vec(x.to_vec(), (T * batch, F)),
        batch,
        NoneTape,
    );
    cross_entropy_with_logits_loss(logits, targets.clone()).array()
}

/// Every parameter's backward gradient (`grads`) against central finite differences of
/// `loss` (ε = 1e-6, tolerance 1e-6 + 1e-4 of the larger); returns how many were checked.
fn assert_finite_differences(
    cfg: &ModelConfig,
    m: &Model<f64, Cpu>,
    dev: &Cpu,
    grads: &Gradients<f64, Cpu>,
    loss: impl Fn(&Model<f64, Cpu>) -> f64,
) -> usize {
    let values = m.values();
    let eps = 1e-6;
    let mut checked = 0;
    for (pi, info) in m.layout.iter().enumerate() {
        let analytic = grads.get(&m.params[pi]).as_vec();
        for k in 0..info.numel() {
            let mut plus = values.clone();
            plus[pi][k] += eps;
            let mut minus = values.clone();
            minus[pi][k] -= eps;
            let lp = loss(&Model::from_values(cfg, &plus, dev).unwrap());
            let lm = loss(&Model::from_values(cfg, &minus, dev).unwrap());
            let numeric = (lp - lm) / (2.0 * eps);
            let a = analytic[k];
            let tol = 1e-6 + 1e-4 * a.abs().max(numeric.abs());
            assert!(
                (a - numeric).abs() <= tol,
                "{}: d loss / d {}[{k}]: backward {a:e}, finite difference {numeric:e}",
                cfg.label(),
                info.name
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn gradients_match_finite_differences() {
    let batch = 2;
    let x = time_major(&inputs(batch));
    for cfg in configs() {
        let (dev, m) = model(&cfg, 11);
        let mut onehot = vec![0.0; batch * 10];
        onehot[3] = 1.0;
        onehot[10 + 8] = 1.0;
        let targets = dev.tensor_from_vec(onehot, (batch, 10));
        let (logits, tape) = m.forward(
            dev.tensor_from_vec(x.clone(), (T * batch, F)),
            batch,
            OwnedTape::default(),
        );
        let loss = cross_entropy_with_logits_loss(logits.put_tape(tape), targets.clone());
        let grads = loss.backward();
        for (pi, info) in m.layout.iter().enumerate() {
            assert!(
                grads.get(&m.params[pi]).as_vec().iter().any(|g| *g != 0.0),
                "{}: {} has an all-zero gradient",
                cfg.label(),
                info.name
            );
        }
        let checked = assert_finite_differences(&cfg, &m, &dev, &grads, |m| {
            loss_of(m, &dev, &x, batch, &targets)
        });
        assert_eq!(checked, rnnsweep::trainer::model::layout::param_count(&cfg));
    }
}

/// The CPU's fused layers (`forward`) and the dfdx-ops path other devices use (`forward_ops`)
/// give the same logits and the same gradient for every parameter, in f64 and in f32 (where the
/// fused path uses a fast tanh, so agreement is to f32 precision).
#[test]
fn fused_layers_match_the_dfdx_ops_path() {
    fn check<E: Dtype + Into<f64>>(tol: f64)
    where
        Cpu: rnnsweep::trainer::model::kernel::LayerKernel<E>,
    {
        let batch = 3;
        let x: Vec<E> = time_major(&inputs(batch))
            .into_iter()
            .map(|v| E::from_f64(v).unwrap())
            .collect();
        for cfg in configs().into_iter().chain(block_configs()) {
            let dev = Cpu::seed_from_u64(0);
            let m: Model<E, Cpu> = Model::init(&cfg, 5, &dev);
            let mut onehot = vec![E::default(); batch * 10];
            for (r, class) in [1usize, 7, 4].iter().enumerate() {
                onehot[r * 10 + class] = E::from_f64(1.0).unwrap();
            }
            let targets = dev.tensor_from_vec(onehot, (batch, 10));
            let xt = || dev.tensor_from_vec(x.clone(), (T * batch, F));
            let (lf, tf) = m.forward(xt(), batch, OwnedTape::default());
            let (lo, to) = m.forward_ops(xt(), batch, OwnedTape::default());
            let close = |a: &[E], b: &[E], what: &str| {
                for (k, (a, b)) in a.iter().zip(b).enumerate() {
                    let (a, b): (f64, f64) = ((*a).into(), (*b).into());
                    assert!(
                        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs())),
                        "{}: {what}[{k}]: fused {a:e}, ops {b:e}",
                        cfg.label()
                    );
                }
            };
            close(&lf.as_vec(), &lo.as_vec(), "logits");
            let gf = cross_entropy_with_logits_loss(lf.put_tape(tf), targets.clone()).backward();
            let go = cross_entropy_with_logits_loss(lo.put_tape(to), targets.clone()).backward();
            for (pi, info) in m.layout.iter().enumerate() {
                close(
                    &gf.get(&m.params[pi]).as_vec(),
                    &go.get(&m.params[pi]).as_vec(),
                    &info.name,
                );
            }
        }
    }
    check::<f64>(1e-12);
    check::<f32>(2e-5);
}

/// The CPU's fused layers against the dfdx-ops path on the first CUDA GPU (cuBLAS matmuls,
/// dfdx's kernels): the same weights and inputs give logits and every gradient within 2e-5
/// relative (the CPU's f32 fused-vs-ops tolerance). Ignored by `cargo test`, which runs on
/// machines without a GPU; `scripts/gpu-check.sh` runs it with `--ignored`.
#[cfg(feature = "cuda")]
#[test]
#[ignore = "needs a CUDA GPU: scripts/gpu-check.sh runs it"]
fn fused_cpu_layers_match_the_ops_path_on_cuda() {
    let (batch, tol) = (3, 2e-5);
    let x: Vec<f32> = time_major(&inputs(batch))
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let mut onehot = vec![0f32; batch * 10];
    for (r, class) in [1usize, 7, 4].iter().enumerate() {
        onehot[r * 10 + class] = 1.0;
    }
    let cuda = Cuda::default();
    for cfg in configs() {
        let cpu = Cpu::seed_from_u64(0);
        let m: Model<f32, Cpu> = Model::init(&cfg, 5, &cpu);
        let mut g: Model<f32, Cuda> = Model::init(&cfg, 5, &cuda);
        for (dst, src) in g.params.iter_mut().zip(&m.params) {
            dst.copy_from(&src.as_vec());
        }
        let (lf, tf) = m.forward(
            cpu.tensor_from_vec(x.clone(), (T * batch, F)),
            batch,
            OwnedTape::default(),
        );
        let (lg, tg) = g.forward(
            cuda.tensor_from_vec(x.clone(), (T * batch, F)),
            batch,
            OwnedTape::default(),
        );
        let close = |a: &[f32], b: &[f32], what: &str| {
            for (k, (a, b)) in a.iter().zip(b).enumerate() {
                let (a, b) = (*a as f64, *b as f64);
                assert!(
                    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs())),
                    "{}: {what}[{k}]: fused cpu {a:e}, cuda ops {b:e}",
                    cfg.label()
                );
            }
        };
        close(&lf.as_vec(), &lg.as_vec(), "logits");
        let tc = cpu.tensor_from_vec(onehot.clone(), (batch, 10));
        let tg_ = cuda.tensor_from_vec(onehot.clone(), (batch, 10));
        let gf = cross_entropy_with_logits_loss(lf.put_tape(tf), tc).backward();
        let gg = cross_entropy_with_logits_loss(lg.put_tape(tg), tg_).backward();
        for (pi, info) in m.layout.iter().enumerate() {
            close(
                &gf.get(&m.params[pi]).as_vec(),
                &gg.get(&g.params[pi]).as_vec(),
                &info.name,
            );
        }
    }
}

#[test]
fn parameter_layout_matches_pytorch() {
    use rnnsweep::trainer::model::layout::{param_count, param_layout};
    let cfg = ModelConfig {
        cell: LayerKind::Rnn,
        hidden: 100,
        layers: 2,
        activation: Some(Activation::Relu),
        ..ModelConfig::default()
    };
    let shapes: Vec<Vec<usize>> = param_layout(&cfg).into_iter().map(|p| p.shape).collect();
    let want: Vec<Vec<usize>> = vec![
        vec![100, 28],
        vec![100, 100],
        vec![100],
        vec![100],
        vec![100, 100],
        vec![100, 100],
        vec![100],
        vec![100],
        vec![10, 100],
        vec![10],
    ];
    assert_eq!(shapes, want);
    assert_eq!(param_count(&cfg), 34_210);
    let lstm = ModelConfig {
        cell: LayerKind::Lstm,
        hidden: 64,
        layers: 1,
        activation: None,
        ..ModelConfig::default()
    };
    // 4*64*28 + 4*64*64 + 2*4*64 + 64*10 + 10
    assert_eq!(param_count(&lstm), 7168 + 16384 + 512 + 650);
    let gru = ModelConfig {
        cell: LayerKind::Gru,
        hidden: 20,
        layers: 1,
        activation: None,
        ..ModelConfig::default()
    };
    assert_eq!(param_layout(&gru)[0].shape, vec![60, 28]);
}

#[test]
fn init_is_pytorch_uniform_and_seeded() {
    let cfg = ModelConfig {
        cell: LayerKind::Lstm,
        hidden: 64,
        layers: 1,
        activation: None,
        ..ModelConfig::default()
    };
    let (_, a) = model(&cfg, 5);
    let (_, b) = model(&cfg, 5);
    let (_, c) = model(&cfg, 6);
    assert_eq!(a.values(), b.values());
    assert_ne!(a.values(), c.values());
    let k = 1.0 / 8.0;
    for v in a.values() {
        assert!(v.iter().all(|x| x.abs() < k));
        let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(max > 0.8 * k || v.len() < 20, "values should fill U(-k, k)");
    }
}

#[test]
fn weights_round_trip_through_safetensors_with_pytorch_names() {
    let cfg = ModelConfig {
        cell: LayerKind::Gru,
        hidden: 5,
        layers: 2,
        activation: None,
        ..ModelConfig::default()
    };
    let dev = Cpu::default();
    let m = Model::<f32, Cpu>::init(&cfg, 3, &dev);
    let bytes = m.to_safetensors();
    let back = Model::<f32, Cpu>::from_safetensors(&cfg, &bytes, &dev).unwrap();
    assert_eq!(back.values(), m.values());
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("rnn.weight_hh_l1").unwrap().shape(), &[15, 5]);
    assert_eq!(st.tensor("fc.bias").unwrap().shape(), &[10]);
    let other = ModelConfig { hidden: 6, ..cfg };
    let err = Model::<f32, Cpu>::from_safetensors(&other, &bytes, &dev).unwrap_err();
    assert!(
        matches!(&err, ModelLoadError::WrongTensor { name, .. } if name == "rnn.weight_ih_l0"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "rnn.weight_ih_l0 is F32 [15, 28], expected F32 [18, 28]"
    );
    assert!(matches!(
        Model::<f32, Cpu>::from_safetensors(&cfg, b"not weights", &dev),
        Err(ModelLoadError::NotSafetensors(_))
    ));
}

/// A forward pass's logits with its tape.
type Forward = (Tensor<(usize, usize), f64, Cpu>, OwnedTape<f64, Cpu>);

/// The fused path's logits and gradients (`fused`) against the dfdx-ops path's (`ops`), to
/// 1e-12 in f64; returns the fused gradients.
fn assert_fused_matches_ops(
    m: &Model<f64, Cpu>,
    fused: Forward,
    ops: Forward,
    targets: &Tensor<(usize, usize), f64, Cpu>,
) -> Gradients<f64, Cpu> {
    let label = m.config.label();
    for (a, b) in fused.0.as_vec().iter().zip(ops.0.as_vec()) {
        assert!((a - b).abs() < 1e-12, "{label}: logits fused {a} ops {b}");
    }
    let loss =
        |(l, t): Forward| cross_entropy_with_logits_loss(l.put_tape(t), targets.clone()).backward();
    let (gf, go) = (loss(fused), loss(ops));
    for (pi, info) in m.layout.iter().enumerate() {
        let (f, o) = (
            gf.get(&m.params[pi]).as_vec(),
            go.get(&m.params[pi]).as_vec(),
        );
        for (a, b) in f.iter().zip(o) {
            assert!(
                (a - b).abs() < 1e-12,
                "{label} {}: fused {a} ops {b}",
                info.name
            );
        }
    }
    gf
}

/// Dropout between layers with a fixed mask: the fused and the ops paths agree, the gradient
/// matches finite differences of the loss under that same mask, and a mask of ones is no
/// dropout.
#[test]
fn dropout_with_a_fixed_mask_matches_the_ops_path_and_finite_differences() {
    let batch = 2;
    let x = time_major(&inputs(batch));
    for cell in [LayerKind::Rnn, LayerKind::Lstm, LayerKind::Gru] {
        let cfg = ModelConfig {
            cell,
            hidden: 3,
            layers: 2,
            activation: (cell == LayerKind::Rnn).then_some(Activation::Tanh),
            dropout: Some(0.5),
            ..ModelConfig::default()
        };
        let (dev, m) = model(&cfg, 4);
        let mut d = rnnsweep::trainer::model::dropout::Dropout::of(&cfg, 9).unwrap();
        let masks = d.masks(T, batch);
        assert_eq!(masks.len(), 1);
        assert!(masks[0].contains(&0.0) && masks[0].contains(&2.0));
        let mut onehot = vec![0.0; batch * 10];
        onehot[3] = 1.0;
        onehot[10 + 8] = 1.0;
        let targets = dev.tensor_from_vec(onehot, (batch, 10));
        let xt = || dev.tensor_from_vec(x.clone(), (T * batch, F));
        let masked_loss = |m: &Model<f64, Cpu>| {
            let (l, _) = m.forward_masked(xt(), batch, NoneTape, &masks);
            cross_entropy_with_logits_loss(l, targets.clone()).array()
        };
        let (lf, tf) = m.forward_masked(xt(), batch, OwnedTape::default(), &masks);
        let (lo, to) = m.forward_ops_masked(xt(), batch, OwnedTape::default(), &masks);
        let (plain, _) = m.forward(xt(), batch, NoneTape);
        let ones = vec![vec![1.0; masks[0].len()]];
        let (unmasked, _) = m.forward_masked(xt(), batch, NoneTape, &ones);
        assert_eq!(
            plain.as_vec(),
            unmasked.as_vec(),
            "a mask of ones is no dropout"
        );
        assert_ne!(plain.as_vec(), lf.as_vec(), "the mask changes the logits");
        let gf = assert_fused_matches_ops(&m, (lf, tf), (lo, to), &targets);
        assert_finite_differences(&cfg, &m, &dev, &gf, masked_loss);
    }
}

/// Sequential MNIST's 784 steps of one pixel: the fused layers agree with the dfdx-ops path
/// (logits and every gradient) and the gradient matches finite differences through all 784
/// steps, for every cell type, on a tiny hidden size.
#[test]
fn a_784_step_sequence_of_one_pixel_matches_ops_and_finite_differences() {
    use rnnsweep::trainer::config::InputMode;
    let batch = 2;
    let steps = 784;
    // Pixel-like inputs in [0, 1), time-major (784·batch, 1).
    let x: Vec<f64> = (0..steps * batch)
        .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
        .collect();
    for (cell, act) in [
        (LayerKind::Rnn, Some(Activation::Tanh)),
        (LayerKind::Lstm, None),
        (LayerKind::Gru, None),
    ] {
        let cfg = ModelConfig {
            cell,
            hidden: 2,
            layers: 1,
            activation: act,
            input: InputMode::Pixels,
            ..ModelConfig::default()
        };
        let (dev, m) = model(&cfg, 21);
        assert_eq!(
            m.layout[0].shape,
            vec![cell.gates() * 2, 1],
            "W_ih reads 1 feature"
        );
        let mut onehot = vec![0.0; batch * 10];
        onehot[5] = 1.0;
        onehot[10 + 2] = 1.0;
        let targets = dev.tensor_from_vec(onehot, (batch, 10));
        let xt = || dev.tensor_from_vec(x.clone(), (steps * batch, 1));
        let (lf, tf) = m.forward(xt(), batch, OwnedTape::default());
        let (lo, to) = m.forward_ops(xt(), batch, OwnedTape::default());
        let gf = assert_fused_matches_ops(&m, (lf, tf), (lo, to), &targets);
        let checked = assert_finite_differences(&cfg, &m, &dev, &gf, |m| {
            let (l, _) = m.forward(xt(), batch, NoneTape);
            cross_entropy_with_logits_loss(l, targets.clone()).array()
        });
        assert_eq!(checked, rnnsweep::trainer::model::layout::param_count(&cfg));
    }
}
