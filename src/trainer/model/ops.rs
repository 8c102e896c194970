//! A recurrent layer written with dfdx tensor ops only (one op per gate and step): the path of
//! devices without a fused kernel (CUDA), and the reference the fused CPU layers are tested
//! against. PyTorch's equations and gate orders; relu with PyTorch's NaN semantics.

use dfdx::prelude::*;

use super::kernel::LayerParams;
use super::tape::{Mat, TapeThread};
use crate::trainer::config::{Activation, LayerKind};

/// The layer with dfdx ops, its step outputs stacked time-major, (28·batch, hidden).
pub fn layer_stacked<E: Dtype, D: Device<E>, T: Tape<E, D> + Merge<NoneTape>>(
    p: &LayerParams<'_, E, D>,
    input: Mat<E, D>,
    batch: usize,
    tp: &mut TapeThread<T>,
) -> Mat<E, D> {
    let outs = layer(p, input, batch, tp);
    stack_steps(outs, batch, p.hidden, tp)
}

/// Runs the layer over all 28 steps; returns the hidden state after each step, (batch, hidden).
pub fn layer<E: Dtype, D: Device<E>, T: Tape<E, D> + Merge<NoneTape>>(
    p: &LayerParams<'_, E, D>,
    input: Mat<E, D>,
    batch: usize,
    tp: &mut TapeThread<T>,
) -> Vec<Mat<E, D>> {
    let (h, g) = (p.hidden, p.gate_rows());
    let w_hh_t = p.w_hh_mat().permute::<_, Axes2<1, 0>>();
    let b_ih = p.b_ih.clone();
    let b_hh = p.b_hh.clone();
    let gru = p.cell == LayerKind::Gru;
    let bias = tp.run(b_ih, |b| {
        let b = if gru { b } else { b + b_hh.clone() };
        b.reshape_like(&(g, 1))
    });
    let w_ih = p.w_ih_mat();
    let w_aug = tp.run(w_ih, |w| {
        (w, bias)
            .concat_along(Axis::<1>)
            .permute::<_, Axes2<1, 0>>()
    });
    let rows = input.shape().0;
    let steps = rows / batch;
    let ones: Mat<E, D> = input.device().ones_like(&(rows, 1));
    let xw = tp.run(input, |x| (x, ones).concat_along(Axis::<1>).matmul(w_aug));
    let step_input = |t: usize, tp: &mut TapeThread<T>| {
        tp.run(xw.clone(), |x| x.slice((t * batch..(t + 1) * batch, ..)))
    };
    let cols = |m: &Mat<E, D>, a: usize, b: usize, tp: &mut TapeThread<T>| {
        tp.run(m.clone(), |m| m.slice((.., a..b)))
    };
    let mut outs: Vec<Mat<E, D>> = Vec::with_capacity(steps);
    match p.cell {
        LayerKind::Rnn => {
            let act = p.activation;
            for t in 0..steps {
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
        LayerKind::Lstm => {
            let mut c: Option<Mat<E, D>> = None;
            for t in 0..steps {
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
        LayerKind::Gru => {
            // PyTorch gate order: reset, update, new.
            // r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r ⊙ h_n), h' = n + z ⊙ (h − n)
            // where h_* = h·W_hh*ᵀ + b_hh*. The GRU starts from an explicit zero h0.
            let bhh = b_hh.broadcast_like::<_, Axis<0>>(&(batch, g));
            let mut hp: Mat<E, D> = p.w_ih.device().zeros_like(&(batch, h));
            for t in 0..steps {
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

/// Stacks the per-step outputs of a layer into the next layer's time-major input
/// (steps·batch, hidden).
fn stack_steps<E: Dtype, D: Device<E>, T: Tape<E, D> + Merge<NoneTape>>(
    outs: Vec<Mat<E, D>>,
    batch: usize,
    hidden: usize,
    tp: &mut TapeThread<T>,
) -> Mat<E, D> {
    let steps = outs.len();
    let first = outs[0].clone();
    let rest: Vec<Tensor<(usize, usize), E, D, T>> =
        outs[1..].iter().map(|o| o.retaped::<T>()).collect();
    tp.run(first, move |first| {
        let mut all = Vec::with_capacity(rest.len() + 1);
        all.push(first);
        all.extend(rest);
        all.stack().reshape_like(&(steps * batch, hidden))
    })
}

#[cfg(feature = "cuda")]
impl<E: Dtype> super::kernel::LayerKernel<E> for Cuda
where
    Cuda: Device<E>,
{
    fn recurrent_layer<T: Tape<E, Self> + Merge<NoneTape>>(
        p: &LayerParams<'_, E, Self>,
        x: Mat<E, Self>,
        batch: usize,
        tp: &mut TapeThread<T>,
    ) -> Mat<E, Self> {
        if p.top {
            layer(p, x, batch, tp)
                .pop()
                .expect("a layer returns one state per step, and there is at least one step")
        } else {
            layer_stacked(p, x, batch, tp)
        }
    }
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
