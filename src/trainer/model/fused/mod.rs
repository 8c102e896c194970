//! Fused recurrent layers for the CPU: one tape op per layer instead of a dozen dfdx ops per
//! time step. The forward pass runs all steps on host buffers (one input-projection matmul for
//! every step, or per step for one feature, one `h·W_hhᵀ` matmul per step accumulated in
//! place, gates in tight loops); the backward pass is hand-written backpropagation through time
//! with the weight gradients as large matmuls (for long sequences W_hh's block by block during
//! the pass, in `gemm`'s own blocks of terms).
//!
//! - `mod.rs` (here): the element types, the CPU's [`LayerKernel`], and the buffers both passes
//!   share;
//! - `gemm.rs`: strided matmuls through the `gemm` crate (a newer version than dfdx's, for its
//!   AVX-512 kernels), its blocks of terms (to split long sums with its bits), and one-feature
//!   layers' weight and bias gradients in one pass;
//! - `stepmm.rs`: the per-step products (`h·W_hhᵀ`, `dgates·W_hh`, and W_hhᵀ for them) in
//!   register-blocked AVX2 and AVX-512 kernels, bit for bit what `gemm` computes, without its
//!   per-call packing (`gemm` where the kernels do not apply), with AVX2 the input projection
//!   and the input's gradient too, and the weight gradients where the kernels are faster;
//! - `simd.rs`: the instruction set the layers run with (`Isa`, capped by `RNNSWEEP_ISA`) and
//!   the gate loops' dispatch;
//! - `peak.rs`: the core's measured FMA peak at a given instruction set (`bench`'s % of peak);
//! - `forward.rs` and `bptt.rs`: the gate loops of the forward and backward passes;
//! - `pool.rs`: the large buffers of one step kept for the next on the same thread.
//!
//! The math is PyTorch's (see `model/mod.rs`); `tests/model_correctness.rs` checks this path
//! against the naive equations, against finite differences and against the dfdx-ops path
//! (`model/ops.rs`), which other devices use; `tests/pytorch_fixtures.rs` against PyTorch.

/// Runs `$body` over `0..$len` in blocks whose size is fixed at compile time: `$n` is 64 while
/// 64 remain, then 16, then 4, then 1, and `$k` the block's first index. The gate loops copy a
/// block's values into local arrays ([`block`]), compute, and copy the results back: with a
/// constant length and no slice that may overlap another, every block compiles to vector
/// operations. LLVM's own loops over a row's units left the remainder scalar where h is not a
/// multiple of 16 (LSTM h20: 4 of 20 units, half of the backward loop's time), and how well they
/// vectorized changed with unrelated edits to the same function (a change to the RNN arm of
/// `backward_impl` made the LSTM's loop 13 % slower).
macro_rules! fixed_blocks {
    ($len:expr, |$k:ident, $n:ident| $body:block) => {{
        let len: usize = $len;
        let mut $k = 0usize;
        while $k < len {
            if len - $k >= 64 {
                const $n: usize = 64;
                $body
                $k += $n;
            } else if len - $k >= 16 {
                const $n: usize = 16;
                $body
                $k += $n;
            } else if len - $k >= 4 {
                const $n: usize = 4;
                $body
                $k += $n;
            } else {
                const $n: usize = 1;
                $body
                $k += $n;
            }
        }
    }};
}

/// The size of a layer's buffers (or a product's operands) from which the fused layers treat
/// them as beyond the caches (784-step sequences: 51 MiB of gates for an LSTM h64; the tutorial
/// recipes' 28 steps: at most 2.2 MiB): `gemm::matmul_long` goes by blocks, W_hh's gradient is
/// computed during the backward pass, and the forward pass fetches the next step's buffers
/// ahead. Below it each of these was slower end to end on the recipes (2–5 %, Intel Xeon); at
/// 784 steps each was faster.
const BEYOND_CACHE_BYTES: usize = 8 << 20;

/// Asks the CPU to bring `s` into its level-2 cache: a hint, without effect on any value
/// (nothing on other architectures than x86-64).
fn prefetch_l2<E>(s: &[E]) {
    prefetch(s, false);
}

/// [`prefetch_l2`] for writing (PREFETCHW): a store to a line not in cache waits for it.
#[inline(always)]
fn prefetch_for_write<E>(s: &[E]) {
    prefetch(s, true);
}

#[inline(always)]
fn prefetch<E>(s: &[E], write: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET1, _MM_HINT_T1};
        let p = s.as_ptr() as *const i8;
        for at in (0..std::mem::size_of_val(s)).step_by(64) {
            // SAFETY: a prefetch reads nothing into the program and cannot fault; the address
            // lies inside `s`.
            unsafe {
                if write {
                    _mm_prefetch::<_MM_HINT_ET1>(p.add(at));
                } else {
                    _mm_prefetch::<_MM_HINT_T1>(p.add(at));
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (s, write);
}

/// `N` values of `s` from `k`, as an array (a block of [`fixed_blocks!`]).
#[inline(always)]
pub(super) fn block<E: Copy, const N: usize>(s: &[E], k: usize) -> [E; N] {
    s[k..k + N].try_into().expect("a block inside the slice")
}

mod bptt;
mod forward;
mod gemm;
mod peak;
mod pool;
mod simd;
mod stepmm;

use dfdx::prelude::*;

use super::kernel::{LayerKernel, LayerParams};
use super::tape::{Mat, TapeThread};
use crate::trainer::config::{Activation, LayerKind};
#[cfg(test)]
use gemm::{matmul, View};
use simd::{backward, forward};

pub use peak::{cpu_model, fma_peak, Peak};
pub use simd::{Isa, Vectorized, ISA_ENV};

/// Element types of the fused kernels. f32 uses fast rational approximations of tanh (Eigen's,
/// within a few ulp) that vectorize; f64 (gradient checks) uses the standard library.
pub trait Real: Dtype + num_traits::Float + 'static {
    fn tanh_(self) -> Self;
    /// This thread's kept buffers of this type (see `pool.rs`).
    fn pool() -> &'static std::thread::LocalKey<pool::Pool<Self>>;
    /// The matmul at an instruction set, for this type (see `gemm.rs`).
    fn gemm_at() -> gemm::GemmAt<Self>;
    /// The terms `gemm` sums in one chain, for this type (see `gemm.rs`).
    fn gemm_depth() -> gemm::DepthAt;
    #[inline(always)]
    fn sigmoid_(self) -> Self {
        let half = Self::from(0.5).unwrap();
        half * (self * half).tanh_() + half
    }
}

thread_local! {
    static POOL_F32: pool::Pool<f32> = const { std::cell::RefCell::new(Vec::new()) };
    static POOL_F64: pool::Pool<f64> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Real for f64 {
    fn pool() -> &'static std::thread::LocalKey<pool::Pool<f64>> {
        &POOL_F64
    }
    fn gemm_at() -> gemm::GemmAt<f64> {
        gemm::at_isa::f64
    }
    fn gemm_depth() -> gemm::DepthAt {
        gemm::depth_of::f64
    }
    #[inline(always)]
    fn tanh_(self) -> f64 {
        self.tanh()
    }
    #[inline(always)]
    fn sigmoid_(self) -> f64 {
        1.0 / (1.0 + (-self).exp())
    }
}

impl Real for f32 {
    fn pool() -> &'static std::thread::LocalKey<pool::Pool<f32>> {
        &POOL_F32
    }
    fn gemm_at() -> gemm::GemmAt<f32> {
        gemm::at_isa::f32
    }
    fn gemm_depth() -> gemm::DepthAt {
        gemm::depth_of::f32
    }
    /// Eigen's `generic_fast_tanh_float`: a 13/6 rational approximation on [-7.9, 7.9] (tanh is
    /// ±1 in f32 beyond), branch-free so loops over it vectorize.
    #[inline(always)]
    fn tanh_(self) -> f32 {
        const C: f32 = 7.905_311;
        let x = self.clamp(-C, C);
        let x2 = x * x;
        let mut p = x2 * -2.760_768_5e-16 + 2.000_188e-13;
        p = x2 * p + -8.604_672e-11;
        p = x2 * p + 5.122_297e-8;
        p = x2 * p + 1.485_722_4e-5;
        p = x2 * p + 6.372_619_3e-4;
        p = x2 * p + 4.893_524_6e-3;
        p *= x;
        let mut q = x2 * 1.198_258_4e-6 + 1.185_347e-4;
        q = x2 * q + 2.268_434_6e-3;
        q = x2 * q + 4.893_525e-3;
        p / q
    }
}

/// relu as PyTorch computes it: 0 where `x <= 0`, else `x`, so NaN and +inf pass through
/// (Rust's `max(0)` would map NaN to 0).
#[inline(always)]
fn relu<E: Real>(x: E) -> E {
    if x <= E::zero() {
        E::zero()
    } else {
        x
    }
}

/// relu's backward as PyTorch's `threshold_backward(grad, output, 0)`: the gradient is dropped
/// where the output is `<= 0` and passed on everywhere else, a NaN output included.
#[inline(always)]
fn relu_grad<E: Real>(out: E, grad: E) -> E {
    if out <= E::zero() {
        E::zero()
    } else {
        grad
    }
}

/// The CPU kernel, written once per element type: dfdx's gradient buffers are concrete vectors
/// only for a concrete `E`.
macro_rules! cpu_layer_kernel {
    ($e:ty) => {
        impl LayerKernel<$e> for Cpu {
            fn recurrent_layer<T: Tape<$e, Self> + Merge<NoneTape>>(
                lp: &LayerParams<'_, $e, Self>,
                x: Mat<$e, Self>,
                batch: usize,
                tp: &mut TapeThread<T>,
            ) -> Mat<$e, Self> {
                let (n, input) = *x.shape();
                let dims = Dims {
                    n,
                    b: batch,
                    i: input,
                    h: lp.hidden,
                    g: lp.gate_rows(),
                };
                let kind = Kind::of(lp.cell, lp.activation);
                let p = Params {
                    w_ih: host_copy(lp.w_ih),
                    w_hh: host_copy(lp.w_hh),
                    b_ih: host_copy(lp.b_ih),
                    b_hh: host_copy(lp.b_hh),
                };
                let isa = Isa::best(kind);
                // The input into a kept buffer: it returns to the pool with the saved values.
                let mut xv = pool::overwritten(n * input);
                x.copy_into(&mut xv);
                let saved = forward(isa, kind, dims, &p, xv);
                // The top layer gives the last step's states alone (the model reads no other).
                let first = if lp.top { n - batch } else { 0 };
                let out: Mat<$e, Cpu> = x.device().tensor_from_vec(
                    saved.hs[first * dims.h..].to_vec(),
                    (n - first, dims.h),
                );
                if T::OWNS_TAPE {
                    let ghosts = [lp.w_ih.ghost(), lp.w_hh.ghost(), lp.b_ih.ghost(), lp.b_hh.ghost()];
                    let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
                    // The first layer's input is the data, which needs no gradient.
                    let x_needs_grad = lp.layer > 0;
                    tp.tape_mut().add_backward_op(move |grads| {
                        // Read in place: the output's gradient is not copied.
                        let dhs = grads.get_or_alloc_mut(&out_ghost)?;
                        let mut g = backward(isa, kind, dims, &p, saved, dhs, x_needs_grad);
                        for (ghost, d) in ghosts.iter().zip([&g.w_ih, &g.w_hh, &g.b_ih, &g.b_hh]) {
                            add_into(grads.get_or_alloc_mut(ghost)?, d);
                        }
                        if x_needs_grad {
                            g.add_input_grad(dims, &p.w_ih, grads.get_or_alloc_mut(&x_ghost)?);
                        }
                        Ok(())
                    });
                } else {
                    // No backward pass (evaluation): the buffers serve the next forward pass.
                    saved.recycle();
                }
                out
            }
        }
    };
}

cpu_layer_kernel!(f32);
cpu_layer_kernel!(f64);

/// A host copy of `t`, one of the tensors a fused layer reads: its parameters (1-D) and its
/// input, made by `tensor_from_vec` or by elementwise ops (dropout), so stored contiguously in
/// its logical order. One `memcpy` (`copy_into`), where dfdx's `as_vec` walks the strides value
/// by value (4 % of a 2-layer RNN's step, perf). dfdx panics if the stored buffer is not
/// exactly the tensor's size (a broadcast); the fused-vs-ops tests would catch a permuted input.
fn host_copy<S: Shape, E: Real, T>(t: &Tensor<S, E, Cpu, T>) -> Vec<E> {
    let mut v = vec![E::zero(); t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// Test values in [-0.5, 0.5) from a fixed seed (a linear congruential generator), for the
/// kernels' tests.
#[cfg(test)]
fn test_values<E: Real>(seed: u64) -> impl FnMut() -> E {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        E::from(((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5).unwrap()
    }
}

fn add_into<E: Real>(acc: &mut [E], d: &[E]) {
    for (a, &b) in acc.iter_mut().zip(d) {
        *a += b;
    }
}

/// Sizes: rows (28·batch), batch, input features, hidden, gate rows (gates·hidden).
#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    b: usize,
    i: usize,
    h: usize,
    g: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Relu,
    Tanh,
    Lstm,
    Gru,
}

impl Kind {
    fn of(cell: LayerKind, act: Activation) -> Kind {
        match (cell, act) {
            (LayerKind::Rnn, Activation::Relu) => Kind::Relu,
            (LayerKind::Rnn, Activation::Tanh) => Kind::Tanh,
            (LayerKind::Lstm, _) => Kind::Lstm,
            (LayerKind::Gru, _) => Kind::Gru,
        }
    }
}

/// One layer's parameters on the host, PyTorch layouts (row-major [out, in]).
struct Params<E> {
    w_ih: Vec<E>,
    w_hh: Vec<E>,
    b_ih: Vec<E>,
    b_hh: Vec<E>,
}

/// Values one layer of the fused CPU path keeps per sample and time step for its backward
/// pass (the buffers of [`Saved`]): its input (`i`) and hidden state (`h`), and for an LSTM the
/// four activated gates, the cell state and its tanh, for a GRU the three gates and the hidden
/// part of the new gate. Memory grows linearly with the sequence: 784 steps keep 28 times what
/// 28 steps keep, and nothing else grows with it.
pub fn saved_values_per_step(cell: LayerKind, i: usize, h: usize) -> usize {
    match cell {
        LayerKind::Rnn => i + h,
        LayerKind::Lstm => i + h + 4 * h + 2 * h,
        LayerKind::Gru => i + h + 3 * h + h,
    }
}

/// What the backward pass needs from the forward pass.
struct Saved<E> {
    x: Vec<E>,
    /// Hidden states, (n, h).
    hs: Vec<E>,
    /// LSTM: activated gates i, f, g, o; GRU: r, z, n. (n, g).
    act: Vec<E>,
    /// LSTM: cell states and their tanh, (n, h) each.
    c: Vec<E>,
    tc: Vec<E>,
    /// GRU: the hidden part of the new-gate pre-activation, h·W_hnᵀ + b_hn, (n, h).
    ghn: Vec<E>,
}

impl<E: Real> Saved<E> {
    /// Hands the large buffers to this thread's pool for the next pass.
    fn recycle(self) {
        for v in [self.x, self.hs, self.act, self.c, self.tc, self.ghn] {
            pool::recycle(v);
        }
    }
}

/// A sample's state at step t−1 (`h` values from `at`), or zeros before the first step. Sliced
/// outside the element loops, so they have no branch and vectorize.
fn previous<'a, E>(states: &'a [E], t: usize, at: usize, h: usize, zeros: &'a [E]) -> &'a [E] {
    if t > 0 {
        &states[at..at + h]
    } else {
        &zeros[..h]
    }
}

/// Gradients of one layer.
struct Grads<E> {
    w_ih: Vec<E>,
    w_hh: Vec<E>,
    b_ih: Vec<E>,
    b_hh: Vec<E>,
    /// The gradients of the gate pre-activations, (n, g), kept where the input needs a gradient
    /// ([`Grads::add_input_grad`] turns them into it).
    dgates: Option<Vec<E>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_tanh_is_close_to_tanh() {
        let mut worst = 0.0f64;
        let mut x = -12.0f32;
        while x <= 12.0 {
            let e = (x.tanh_() as f64 - (x as f64).tanh()).abs();
            worst = worst.max(e);
            x += 0.001;
        }
        assert!(worst < 5e-7, "max error {worst}"); // a few f32 ulp near ±1
        let s = (0.3f32).sigmoid_() as f64;
        assert!((s - 1.0 / (1.0 + (-0.3f64).exp())).abs() < 2e-7);
    }

    #[test]
    fn strided_matmul_matches_naive() {
        // c (2×3) = a (2×4) · bᵀ where b is (3×4) row-major.
        let a: Vec<f64> = (0..8).map(|v| v as f64).collect();
        let b: Vec<f64> = (0..12).map(|v| (v as f64) * 0.5 - 1.0).collect();
        let mut c = vec![1.0; 6];
        matmul(
            &mut c,
            View::row_major(2, 3),
            true,
            &a,
            View::row_major(2, 4),
            &b,
            View::row_major(3, 4).t(),
        );
        for r in 0..2 {
            for col in 0..3 {
                let want: f64 = 1.0 + (0..4).map(|k| a[r * 4 + k] * b[col * 4 + k]).sum::<f64>();
                assert!((c[r * 3 + col] - want).abs() < 1e-12);
            }
        }
    }

    /// Every instruction set the CPU supports gives the same bits as the baseline build of the
    /// gate loops, forward and backward, for every cell kind, in f32 and f64.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        fn check<E: Real + std::fmt::Debug>() {
            let mut state = 0x2545_f491_4f6c_dd1du64;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                E::from_f64((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5).unwrap()
            };
            // Sizes that leave remainders at every vector width.
            let (b, i, h, steps) = (5, 7, 37, 4);
            for (cell, act) in [
                (LayerKind::Rnn, Activation::Relu),
                (LayerKind::Rnn, Activation::Tanh),
                (LayerKind::Lstm, Activation::Tanh),
                (LayerKind::Gru, Activation::Tanh),
            ] {
                let (kind, gates) = (Kind::of(cell, act), cell.gates());
                let d = Dims {
                    n: steps * b,
                    b,
                    i,
                    h,
                    g: gates * h,
                };
                let mut vec = |len: usize| (0..len).map(|_| next()).collect::<Vec<E>>();
                let p = Params {
                    w_ih: vec(d.g * i),
                    w_hh: vec(d.g * h),
                    b_ih: vec(d.g),
                    b_hh: vec(d.g),
                };
                let x = vec(d.n * i);
                let dhs = vec(d.n * h);
                let run = |isa: Isa| {
                    let s = forward(isa, kind, d, &p, x.clone());
                    let mut all = s.hs.clone();
                    let mut g = backward(isa, kind, d, &p, s, &dhs, true);
                    let mut dx = vec![E::zero(); d.n * i];
                    g.add_input_grad(d, &p.w_ih, &mut dx);
                    for v in [&g.w_ih, &g.w_hh, &g.b_ih, &g.b_hh, &dx] {
                        all.extend_from_slice(v);
                    }
                    all
                };
                let s = forward(Isa::Baseline, kind, d, &p, x.clone());
                let kept: usize = [&s.x, &s.hs, &s.act, &s.c, &s.tc, &s.ghn]
                    .iter()
                    .map(|v| v.len())
                    .sum();
                assert_eq!(kept, d.n * saved_values_per_step(cell, i, h), "{cell}");
                let base = run(Isa::Baseline);
                for isa in [Isa::Avx2, Isa::Avx512] {
                    if !isa.supported() {
                        eprintln!("{isa:?} not supported here: not compared");
                        continue;
                    }
                    let got = run(isa);
                    assert_eq!(got.len(), base.len());
                    for (k, (a, b)) in got.iter().zip(&base).enumerate() {
                        assert!(
                            a.to_f64().unwrap().to_bits() == b.to_f64().unwrap().to_bits(),
                            "{kind:?} {isa:?}: value {k} is {a:?}, baseline {b:?}"
                        );
                    }
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }

    /// The one-feature input projection (pixels) gives the bits of the matmul followed by the
    /// bias, which it replaces: special values included.
    #[test]
    fn one_feature_projection_matches_the_matmul_bit_for_bit() {
        let (b, h) = (3, 37);
        let d = Dims {
            n: b,
            b,
            i: 1,
            h,
            g: h,
        };
        let w_ih: Vec<f32> = (0..h).map(|k| (k as f32 - 18.0) * 0.37).collect();
        let mut b_ih: Vec<f32> = (0..h).map(|k| (k as f32) * 0.011 - 0.2).collect();
        b_ih[3] = f32::NAN;
        b_ih[4] = f32::INFINITY;
        let b_hh: Vec<f32> = (0..h).map(|k| 0.5 - (k as f32) * 0.013).collect();
        let x = vec![0.7f32, 0.0, -1.3e-3];
        let p = Params {
            w_ih: w_ih.clone(),
            w_hh: vec![0.0; h * h],
            b_ih: b_ih.clone(),
            b_hh: b_hh.clone(),
        };
        let mut want = vec![0.0f32; b * h];
        matmul(
            &mut want,
            View::row_major(b, h),
            false,
            &x,
            View::row_major(b, 1),
            &w_ih,
            View::row_major(h, 1).t(),
        );
        for row in want.chunks_exact_mut(h) {
            for k in 0..h {
                row[k] += b_ih[k] + b_hh[k];
            }
        }
        for isa in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
            if !isa.supported() {
                continue;
            }
            // One step of a relu RNN: h = relu(x·W_ihᵀ + b).
            let s = forward(isa, Kind::Relu, d, &p, x.clone());
            for (k, (&got, &w)) in s.hs.iter().zip(&want).enumerate() {
                let w = relu(w);
                assert!(
                    got.to_bits() == w.to_bits() || (got.is_nan() && w.is_nan()),
                    "{isa:?} {k}: {got} vs {w}"
                );
            }
        }
    }

    /// PyTorch's relu on special values, through a whole relu layer for every instruction set
    /// this CPU supports, at a width (37) that leaves remainders at every vector width:
    /// relu(NaN) = NaN, relu(+inf) = +inf, relu(-inf) = 0, relu(x ≤ 0) = 0; its backward passes
    /// the gradient where the output is NaN or > 0 (torch's `threshold_backward`).
    #[test]
    fn relu_layer_has_torch_nan_semantics_on_every_instruction_set() {
        fn check<E: Real + std::fmt::Debug>() {
            let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, 2.5];
            let (b, h) = (5, 37);
            let d = Dims {
                n: b,
                b,
                i: 1,
                h,
                g: h,
            };
            let e = |v: f64| E::from_f64(v).unwrap();
            // x = 0 and w_ih = 1, so each unit's pre-activation is its bias.
            let bias: Vec<E> = (0..h).map(|k| e(specials[k % specials.len()])).collect();
            let p = Params {
                w_ih: vec![e(1.0); h],
                w_hh: vec![e(0.0); h * h],
                b_ih: bias.clone(),
                b_hh: vec![e(0.0); h],
            };
            for isa in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
                if !isa.supported() {
                    continue;
                }
                let s = forward(isa, Kind::Relu, d, &p, vec![e(0.0); b]);
                let hs = s.hs.clone();
                let dhs = vec![e(1.0); b * h];
                let g = backward(isa, Kind::Relu, d, &p, s, &dhs, false);
                for k in 0..h {
                    let v = specials[k % specials.len()];
                    let want = if v.is_nan() {
                        f64::NAN
                    } else if v <= 0.0 {
                        0.0
                    } else {
                        v
                    };
                    let want_grad = if v <= 0.0 { 0.0 } else { b as f64 };
                    for r in 0..b {
                        let got = hs[r * h + k].to_f64().unwrap();
                        assert!(
                            got == want || (got.is_nan() && want.is_nan()),
                            "{isa:?}: relu({v}) = {got}, torch gives {want}"
                        );
                    }
                    let got = g.b_ih[k].to_f64().unwrap();
                    assert_eq!(got, want_grad, "{isa:?}: bias grad of relu({v})");
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }

    /// tanh and sigmoid of special values as in torch: NaN stays NaN, ±inf saturates.
    #[test]
    fn tanh_and_sigmoid_of_special_values_match_torch() {
        fn check<E: Real + std::fmt::Debug>() {
            let e = |v: f64| E::from_f64(v).unwrap();
            let f = |v: E| v.to_f64().unwrap();
            assert!(f(e(f64::NAN).tanh_()).is_nan());
            assert!(f(e(f64::NAN).sigmoid_()).is_nan());
            assert_eq!(f(e(f64::INFINITY).tanh_()), 1.0);
            assert_eq!(f(e(f64::NEG_INFINITY).tanh_()), -1.0);
            assert_eq!(f(e(f64::INFINITY).sigmoid_()), 1.0);
            assert_eq!(f(e(f64::NEG_INFINITY).sigmoid_()), 0.0);
        }
        check::<f32>();
        check::<f64>();
    }

    /// A NaN pre-activation in a tanh RNN, an LSTM and a GRU reaches the layer's output on
    /// every instruction set (no clamp or max swallows it).
    #[test]
    fn nan_propagates_through_every_cell_kind() {
        let (b, h) = (3, 37);
        for (cell, act) in [
            (LayerKind::Rnn, Activation::Tanh),
            (LayerKind::Lstm, Activation::Tanh),
            (LayerKind::Gru, Activation::Tanh),
        ] {
            let kind = Kind::of(cell, act);
            let g = cell.gates() * h;
            let d = Dims {
                n: 2 * b,
                b,
                i: 1,
                h,
                g,
            };
            let mut b_ih = vec![0.1f32; g];
            for k in (0..g).step_by(h) {
                b_ih[k + 5] = f32::NAN; // unit 5 of every gate
            }
            let p = Params {
                w_ih: vec![1.0; g],
                w_hh: vec![0.0; g * h],
                b_ih,
                b_hh: vec![0.0; g],
            };
            for isa in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
                if !isa.supported() {
                    continue;
                }
                let s = forward(isa, kind, d, &p, vec![0.0; 2 * b]);
                for r in 0..2 * b {
                    assert!(s.hs[r * h + 5].is_nan(), "{kind:?} {isa:?} row {r}");
                }
                // At the first step only unit 5 is NaN (later, 0·NaN in h·W_hhᵀ spreads it).
                for r in 0..b {
                    assert!(s.hs[r * h + 4].is_finite(), "{kind:?} {isa:?} row {r}");
                }
            }
        }
    }

    /// The gate loops must be inlined into the dispatch wrappers, or `target_feature` does not
    /// reach them and every instruction set runs baseline code (see `simd.rs`). A standalone
    /// copy of either loop in this test binary's symbol table means that happened.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn gate_loops_are_inlined_into_the_dispatch() {
        use object::{Object, ObjectSymbol};
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        let names: Vec<String> = file
            .symbols()
            .filter_map(|s| s.name().ok().map(str::to_owned))
            .collect();
        // The symbol table is readable: the AVX2 wrappers of both passes are in it.
        let wrappers = names
            .iter()
            .filter(|n| n.contains("fused4simd") && n.contains("2v3"))
            .count();
        assert!(
            wrappers >= 2,
            "no dispatch wrappers among {} symbols",
            names.len()
        );
        let standalone: Vec<&String> = names
            .iter()
            .filter(|n| n.contains("forward_impl") || n.contains("backward_impl"))
            .collect();
        assert!(
            standalone.is_empty(),
            "gate loops compiled outside the dispatch (lost #[inline(always)]?): {standalone:?}"
        );
    }
}
