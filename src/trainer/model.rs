//! The recurrent classifier: `layers` stacked RNN/LSTM/GRU cells read the 28 image rows as time
//! steps, and a linear head maps the top layer's last hidden state to 10 logits.
//!
//! dfdx 0.13 has no recurrent layers, so the cells are written with tensor ops on dfdx's tape.
//! Parameters are flat 1-D tensors with runtime sizes, in PyTorch's order, shapes and
//! initialisation (`rnn.weight_ih_l0`, `rnn.weight_hh_l0`, `rnn.bias_ih_l0`, `rnn.bias_hh_l0`, …,
//! `fc.weight`, `fc.bias`); the forward pass views them as matrices (reshape, permute and
//! broadcast keep the tensor id, so gradients land on the flat parameter).
//!
//! One tape is threaded through the whole forward pass by [`TapeThread`]: a tape that is dropped
//! silently loses its gradients, so every op runs inside `TapeThread::run`, which always takes
//! the tape back.

use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::config::{Activation, CellKind, ModelConfig};
use super::fused::LayerKernel;
use crate::data::{CLASSES, SIDE};

/// A 2-D tensor with runtime sizes and no tape.
pub type Mat<E, D> = Tensor<(usize, usize), E, D>;
/// A flat parameter tensor.
pub type Flat<E, D> = Tensor<(usize,), E, D>;

/// Name and PyTorch shape of one parameter tensor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Vec<usize>,
}

impl ParamInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Parameter names and shapes for a config, in PyTorch's `named_parameters()` order
/// (4 per layer, then the head's weight and bias).
pub fn param_layout(cfg: &ModelConfig) -> Vec<ParamInfo> {
    let g = cfg.cell.gates() * cfg.hidden;
    let h = cfg.hidden;
    let mut v = Vec::with_capacity(4 * cfg.layers + 2);
    let p = |name: String, shape: Vec<usize>| ParamInfo { name, shape };
    for l in 0..cfg.layers {
        let input = if l == 0 { SIDE } else { h };
        v.push(p(format!("rnn.weight_ih_l{l}"), vec![g, input]));
        v.push(p(format!("rnn.weight_hh_l{l}"), vec![g, h]));
        v.push(p(format!("rnn.bias_ih_l{l}"), vec![g]));
        v.push(p(format!("rnn.bias_hh_l{l}"), vec![g]));
    }
    v.push(p("fc.weight".into(), vec![CLASSES, h]));
    v.push(p("fc.bias".into(), vec![CLASSES]));
    v
}

/// Total number of trainable scalars.
pub fn param_count(cfg: &ModelConfig) -> usize {
    param_layout(cfg).iter().map(ParamInfo::numel).sum()
}

/// PyTorch's module repr of the network, e.g. `LSTM(28, 64, batch_first=True)` + `Linear(64, 10)`.
pub fn torch_repr(cfg: &ModelConfig) -> String {
    let name = match cfg.cell {
        CellKind::Rnn => "RNN",
        CellKind::Lstm => "LSTM",
        CellKind::Gru => "GRU",
    };
    let mut args = format!("{SIDE}, {}", cfg.hidden);
    if cfg.layers > 1 {
        args.push_str(&format!(", num_layers={}", cfg.layers));
    }
    if cfg.cell == CellKind::Rnn {
        args.push_str(&format!(", nonlinearity='{}'", cfg.rnn_activation()));
    }
    format!(
        "Classifier(\n  (rnn): {name}({args}, batch_first=True)\n  (fc): Linear(in_features={}, out_features={CLASSES}, bias=True)\n)",
        cfg.hidden
    )
}

/// Moves one tape through a chain of ops so that none is lost (see the module doc).
pub struct TapeThread<T>(T);

impl<T> TapeThread<T> {
    pub fn new(tape: T) -> Self {
        TapeThread(tape)
    }
    pub fn into_tape(self) -> T {
        self.0
    }
    /// The tape itself, for ops that record their own backward pass (see `fused`).
    pub fn tape_mut(&mut self) -> &mut T {
        &mut self.0
    }
    /// Puts the tape on `t`, applies `f`, and takes the tape back from the result.
    pub fn run<S1: Shape, S2: Shape, E: Dtype, D: Device<E>>(
        &mut self,
        t: Tensor<S1, E, D>,
        f: impl FnOnce(Tensor<S1, E, D, T>) -> Tensor<S2, E, D, T>,
    ) -> Tensor<S2, E, D>
    where
        T: Tape<E, D>,
    {
        let out = f(t.put_tape(std::mem::take(&mut self.0)));
        let (out, tape) = out.split_tape();
        self.0 = tape;
        out
    }
}

/// The network's parameters on device `D` with element type `E` (f32 for training, f64 in
/// gradient checks).
#[derive(Clone, Debug)]
pub struct Model<E: Dtype, D: Device<E>> {
    pub config: ModelConfig,
    pub params: Vec<Flat<E, D>>,
    pub layout: Vec<ParamInfo>,
}

impl<E: Dtype, D: Device<E>> Model<E, D> {
    /// PyTorch's initialisation: U(-1/√hidden, 1/√hidden) for every recurrent weight and bias,
    /// U(-1/√in, 1/√in) for the head (in = hidden). Values are drawn on the host from a ChaCha8
    /// stream seeded by `seed`, so they do not depend on the device.
    pub fn init(config: &ModelConfig, seed: u64, dev: &D) -> Self {
        let config = config.clone().normalized();
        let layout = param_layout(&config);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        let k = 1.0 / (config.hidden as f64).sqrt();
        let params = layout
            .iter()
            .map(|p| {
                let v: Vec<E> = (0..p.numel())
                    .map(|_| E::from_f64(rng.gen_range(-k..k)).unwrap())
                    .collect();
                dev.tensor_from_vec(v, (p.numel(),))
            })
            .collect();
        Model {
            config,
            params,
            layout,
        }
    }

    /// Builds a model from given parameter values (PyTorch order and shapes).
    pub fn from_values(config: &ModelConfig, values: &[Vec<E>], dev: &D) -> Result<Self, String> {
        let config = config.clone().normalized();
        let layout = param_layout(&config);
        if values.len() != layout.len() {
            return Err(format!(
                "expected {} parameter tensors, got {}",
                layout.len(),
                values.len()
            ));
        }
        let mut params = Vec::with_capacity(layout.len());
        for (p, v) in layout.iter().zip(values) {
            if v.len() != p.numel() {
                return Err(format!(
                    "{} has {} values, expected {}",
                    p.name,
                    v.len(),
                    p.numel()
                ));
            }
            params.push(dev.tensor_from_vec(v.clone(), (v.len(),)));
        }
        Ok(Model {
            config,
            params,
            layout,
        })
    }

    /// Parameter values copied to the host, in layout order.
    pub fn values(&self) -> Vec<Vec<E>> {
        self.params.iter().map(|p| p.as_vec()).collect()
    }

    /// The weights worth keeping after a run: those of a completed run whose every parameter is
    /// finite (training stops at the first non-finite one, so a completed run's are; this is
    /// the last guard), as [`Model::to_safetensors`]. None for every other run.
    pub fn final_weights(&self, status: &super::record::RunStatus) -> Option<Vec<u8>> {
        let finite = || {
            self.values()
                .iter()
                .flatten()
                .all(|x| x.to_f64().is_some_and(f64::is_finite))
        };
        (*status == super::record::RunStatus::Completed && finite()).then(|| self.to_safetensors())
    }

    /// The parameters as a safetensors file (f32, little-endian) with PyTorch's names and
    /// shapes, so `model.load_state_dict(safetensors.torch.load_file(...))` accepts it. The model
    /// config is stored in the metadata under `rnnsweep.model`.
    pub fn to_safetensors(&self) -> Vec<u8> {
        let bufs: Vec<Vec<u8>> = self
            .values()
            .iter()
            .map(|v| {
                v.iter()
                    .flat_map(|x| (x.to_f32().expect("finite or not, an f32")).to_le_bytes())
                    .collect()
            })
            .collect();
        let views = self.layout.iter().zip(&bufs).map(|(p, b)| {
            (
                p.name.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, p.shape.clone(), b)
                    .expect("sizes match"),
            )
        });
        let meta = std::collections::HashMap::from([(
            "rnnsweep.model".to_string(),
            serde_json::to_string(&self.config).expect("configs serialize"),
        )]);
        safetensors::serialize(views, Some(meta)).expect("serializing in memory")
    }

    /// Reads parameters written by [`Model::to_safetensors`] (or by PyTorch with the same names).
    pub fn from_safetensors(config: &ModelConfig, bytes: &[u8], dev: &D) -> Result<Self, String> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| format!("not a safetensors file: {e}"))?;
        let layout = param_layout(&config.clone().normalized());
        let mut values = Vec::with_capacity(layout.len());
        for p in &layout {
            let t = st
                .tensor(&p.name)
                .map_err(|_| format!("missing tensor {}", p.name))?;
            if t.dtype() != safetensors::Dtype::F32 || t.shape() != p.shape.as_slice() {
                return Err(format!(
                    "{} is {:?} {:?}, expected F32 {:?}",
                    p.name,
                    t.dtype(),
                    t.shape(),
                    p.shape
                ));
            }
            values.push(
                t.data()
                    .chunks_exact(4)
                    .map(|c| {
                        E::from_f32(f32::from_le_bytes(c.try_into().expect("4 bytes")))
                            .expect("f32 fits")
                    })
                    .collect(),
            );
        }
        Model::from_values(config, &values, dev)
    }

    /// Parameter `i` viewed as a (rows, cols) matrix (no copy, same tensor id).
    fn mat(&self, i: usize) -> Mat<E, D> {
        let s = &self.layout[i].shape;
        self.params[i].clone().reshape_like(&(s[0], s[1]))
    }

    /// Parameter `i` (a weight of shape [out, in]) viewed transposed as (in, out), for `x · Wᵀ`.
    fn mat_t(&self, i: usize) -> Mat<E, D> {
        self.mat(i).permute::<_, Axes2<1, 0>>()
    }

    /// Logits for a batch computed with dfdx tensor ops only (one op per gate and step). Every
    /// device can run it; the CPU uses the fused layers of [`Model::forward`] instead, and the
    /// tests check that both agree. Arguments and result as for `forward`.
    pub fn forward_ops<T: Tape<E, D> + Merge<NoneTape>>(
        &self,
        x: Mat<E, D>,
        batch: usize,
        tape: T,
    ) -> (Mat<E, D>, T) {
        assert_eq!(x.shape().0, SIDE * batch, "input must be (28*batch, 28)");
        let mut tp = TapeThread::new(tape);
        let top = self.config.layers - 1;
        let mut input = x;
        for l in 0..top {
            input = self.layer_ops_stacked(l, input, batch, &mut tp);
        }
        let h = self
            .layer(top, input, batch, &mut tp)
            .pop()
            .expect("28 steps");
        let logits = self.head(h, &mut tp);
        (logits, tp.into_tape())
    }

    /// The linear head on the top layer's last hidden state, (batch, hidden) -> (batch, 10).
    fn head<T: Tape<E, D> + Merge<NoneTape>>(
        &self,
        h: Mat<E, D>,
        tp: &mut TapeThread<T>,
    ) -> Mat<E, D> {
        let n = self.layout.len();
        let w = self.mat_t(n - 2);
        let b = self.params[n - 1].clone();
        tp.run(h, |h| {
            let out = h.matmul(w);
            let shape = *out.shape();
            out + b.broadcast_like::<_, Axis<0>>(&shape)
        })
    }

    /// Layer `l` with dfdx ops, its step outputs stacked time-major, (28·batch, hidden).
    pub(crate) fn layer_ops_stacked<T: Tape<E, D> + Merge<NoneTape>>(
        &self,
        l: usize,
        input: Mat<E, D>,
        batch: usize,
        tp: &mut TapeThread<T>,
    ) -> Mat<E, D> {
        let outs = self.layer(l, input, batch, tp);
        stack_steps(outs, batch, self.config.hidden, tp)
    }

    /// Runs layer `l` over all 28 steps; returns the hidden state after each step, (batch, hidden).
    fn layer<T: Tape<E, D> + Merge<NoneTape>>(
        &self,
        l: usize,
        input: Mat<E, D>,
        batch: usize,
        tp: &mut TapeThread<T>,
    ) -> Vec<Mat<E, D>> {
        let cfg = &self.config;
        let (h, g) = (cfg.hidden, cfg.cell.gates() * cfg.hidden);
        let base = 4 * l;
        let w_hh_t = self.mat_t(base + 1);
        let b_ih = self.params[base + 2].clone();
        let b_hh = self.params[base + 3].clone();
        let gru = cfg.cell == CellKind::Gru;
        let bias = tp.run(b_ih, |b| {
            let b = if gru { b } else { b + b_hh.clone() };
            b.reshape_like(&(g, 1))
        });
        let w_ih = self.mat(base);
        let w_aug = tp.run(w_ih, |w| {
            (w, bias)
                .concat_along(Axis::<1>)
                .permute::<_, Axes2<1, 0>>()
        });
        let rows = input.shape().0;
        let ones: Mat<E, D> = input.device().ones_like(&(rows, 1));
        let xw = tp.run(input, |x| (x, ones).concat_along(Axis::<1>).matmul(w_aug));
        let step_input = |t: usize, tp: &mut TapeThread<T>| {
            tp.run(xw.clone(), |x| x.slice((t * batch..(t + 1) * batch, ..)))
        };
        let cols = |m: &Mat<E, D>, a: usize, b: usize, tp: &mut TapeThread<T>| {
            tp.run(m.clone(), |m| m.slice((.., a..b)))
        };
        let mut outs: Vec<Mat<E, D>> = Vec::with_capacity(SIDE);
        match cfg.cell {
            CellKind::Rnn => {
                let act = cfg.rnn_activation();
                for t in 0..SIDE {
                    let xs = step_input(t, tp);
                    let pre = match outs.last() {
                        None => xs, // h0 = 0
                        Some(hp) => tp.run(hp.clone(), |hp| hp.matmul(w_hh_t.clone()) + xs),
                    };
                    let hn = tp.run(pre, |p| match act {
                        Activation::Relu => relu(p),
                        Activation::Tanh => p.tanh(),
                    });
                    outs.push(hn);
                }
            }
            CellKind::Lstm => {
                let mut c: Option<Mat<E, D>> = None;
                for t in 0..SIDE {
                    let xs = step_input(t, tp);
                    let gates = match outs.last() {
                        None => xs,
                        Some(hp) => tp.run(hp.clone(), |hp| hp.matmul(w_hh_t.clone()) + xs),
                    };
                    // PyTorch gate order: input, forget, cell (g), output.
                    let i = cols(&gates, 0, h, tp);
                    let i = tp.run(i, |i| i.sigmoid());
                    let gg = cols(&gates, 2 * h, 3 * h, tp);
                    let gg = tp.run(gg, |g| g.tanh());
                    let o = cols(&gates, 3 * h, 4 * h, tp);
                    let o = tp.run(o, |o| o.sigmoid());
                    let ig = tp.run(i, |i| i * gg);
                    let cn = match c.take() {
                        None => ig,
                        Some(cp) => {
                            let f = cols(&gates, h, 2 * h, tp);
                            tp.run(f, |f| f.sigmoid() * cp + ig)
                        }
                    };
                    let hn = tp.run(cn.clone(), |c| c.tanh() * o);
                    c = Some(cn);
                    outs.push(hn);
                }
            }
            CellKind::Gru => {
                // PyTorch gate order: reset, update, new.
                // r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r ⊙ h_n), h' = n + z ⊙ (h − n)
                // where h_* = h·W_hh*ᵀ + b_hh*. The GRU starts from an explicit zero h0.
                let bhh = b_hh.broadcast_like::<_, Axis<0>>(&(batch, g));
                let mut hp: Mat<E, D> = self.params[0].device().zeros_like(&(batch, h));
                for t in 0..SIDE {
                    let xs = step_input(t, tp);
                    let gh = tp.run(hp.clone(), |hp| hp.matmul(w_hh_t.clone()) + bhh.clone());
                    let x_rz = cols(&xs, 0, 2 * h, tp);
                    let h_rz = cols(&gh, 0, 2 * h, tp);
                    let rz = tp.run(x_rz, |x| (x + h_rz).sigmoid());
                    let r = cols(&rz, 0, h, tp);
                    let z = cols(&rz, h, 2 * h, tp);
                    let x_n = cols(&xs, 2 * h, 3 * h, tp);
                    let h_n = cols(&gh, 2 * h, 3 * h, tp);
                    let n = tp.run(r, |r| (r * h_n + x_n).tanh());
                    hp = tp.run(hp, |hp| (hp - n.clone()) * z + n);
                    outs.push(hp.clone());
                }
            }
        }
        outs
    }
}

impl<E: Dtype, D: LayerKernel<E>> Model<E, D> {
    /// Logits for a batch. `x` is time-major: rows `t*batch .. (t+1)*batch` hold time step `t`
    /// (image row t) of every sample, 28 features each, so `x` is (28·batch, 28).
    /// Returns (batch, 10) logits and the tape (with every op recorded when `T` is `OwnedTape`).
    /// Each layer runs as one op of the device's [`LayerKernel`] (fused on the CPU).
    pub fn forward<T: Tape<E, D> + Merge<NoneTape>>(
        &self,
        x: Mat<E, D>,
        batch: usize,
        tape: T,
    ) -> (Mat<E, D>, T) {
        assert_eq!(x.shape().0, SIDE * batch, "input must be (28*batch, 28)");
        let mut tp = TapeThread::new(tape);
        let mut input = x;
        for l in 0..self.config.layers {
            input = D::recurrent_layer(self, l, input, batch, &mut tp);
        }
        let rows = input.shape().0;
        let last = tp.run(input, |hs| hs.slice((rows - batch..rows, ..)));
        let logits = self.head(last, &mut tp);
        (logits, tp.into_tape())
    }
}

/// relu with PyTorch's semantics, from dfdx ops: `x` where `!(x <= 0)` (NaN and +inf pass
/// through), else 0; the gradient flows where the output is kept, NaN included, as torch's
/// `threshold_backward`. dfdx's own relu is `x.max(0)`, which maps NaN to 0 and hides a
/// blown-up network.
pub(crate) fn relu<E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<(usize, usize), E, D, T>,
) -> Tensor<(usize, usize), E, D, T> {
    let keep = !x.le(E::default());
    let zeros: Mat<E, D> = x.device().zeros_like(x.shape());
    keep.choose(x, zeros)
}

/// Stacks the per-step outputs of a layer into the next layer's time-major input (28·batch, hidden).
fn stack_steps<E: Dtype, D: Device<E>, T: Tape<E, D> + Merge<NoneTape>>(
    outs: Vec<Mat<E, D>>,
    batch: usize,
    hidden: usize,
    tp: &mut TapeThread<T>,
) -> Mat<E, D> {
    let first = outs[0].clone();
    let rest: Vec<Tensor<(usize, usize), E, D, T>> =
        outs[1..].iter().map(|o| o.retaped::<T>()).collect();
    tp.run(first, move |first| {
        let mut all = Vec::with_capacity(rest.len() + 1);
        all.push(first);
        all.extend(rest);
        all.stack().reshape_like(&(SIDE * batch, hidden))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ops-path relu against torch on special values, forward and backward, in f32 and
    /// f64: relu(NaN) = NaN, relu(±inf) = inf / 0, and the gradient passes where the output is
    /// NaN or > 0.
    #[test]
    fn ops_relu_has_torch_nan_semantics() {
        fn check<E: Dtype + num_traits::Float + std::fmt::Debug>()
        where
            Cpu: Device<E>,
        {
            let dev = Cpu::default();
            let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, 2.5];
            let v: Vec<E> = specials.iter().map(|&x| E::from(x).unwrap()).collect();
            let x: Mat<E, Cpu> = dev.tensor_from_vec(v, (2, 3));
            let y = relu(x.leaky_trace());
            let out: Vec<f64> = y.as_vec().iter().map(|v| v.to_f64().unwrap()).collect();
            let grads = y.sum().backward();
            let g: Vec<f64> = grads
                .get(&x)
                .as_vec()
                .iter()
                .map(|v| v.to_f64().unwrap())
                .collect();
            for (k, &s) in specials.iter().enumerate() {
                let want = if s.is_nan() {
                    f64::NAN
                } else if s <= 0.0 {
                    0.0
                } else {
                    s
                };
                assert!(
                    out[k] == want || (out[k].is_nan() && want.is_nan()),
                    "relu({s}) = {}, torch gives {want}",
                    out[k]
                );
                let want_grad = if s <= 0.0 { 0.0 } else { 1.0 };
                assert_eq!(g[k], want_grad, "relu'({s})");
            }
        }
        check::<f32>();
        check::<f64>();
    }

    /// Cross-entropy of NaN or +inf logits is NaN, as torch's
    /// `F.cross_entropy(torch.tensor([[nan, 0.]]), …)` and `[[inf, 0.]]` are.
    #[test]
    fn cross_entropy_of_non_finite_logits_is_nan() {
        let dev = Cpu::default();
        for bad in [f32::NAN, f32::INFINITY] {
            let logits: Tensor<(usize, usize), f32, Cpu> =
                dev.tensor_from_vec(vec![bad, 0.0, 1.0, 0.0], (2, 2));
            let target: Tensor<(usize, usize), f32, Cpu> =
                dev.tensor_from_vec(vec![1.0, 0.0, 0.0, 1.0], (2, 2));
            let loss = cross_entropy_with_logits_loss(logits, target);
            assert!(loss.as_vec()[0].is_nan(), "loss with a {bad} logit");
        }
    }
}
