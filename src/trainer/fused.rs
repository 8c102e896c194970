//! Fused recurrent layers for the CPU: one tape op per layer instead of a dozen dfdx ops per
//! time step. The forward pass runs all 28 steps on host buffers (one input-projection matmul
//! for every step, one `h·W_hhᵀ` matmul per step accumulated in place, gates in tight loops);
//! the backward pass is hand-written backpropagation through time with the weight gradients as
//! two large matmuls after the loop. Matmuls go to the `gemm` crate (a newer version than
//! dfdx's, for its AVX-512 kernels); the gate loops are compiled for the widest instruction set
//! that helps (`Isa`).
//!
//! The math is PyTorch's (see `model.rs`); `tests/model_correctness.rs` checks this path
//! against the naive equations, against finite differences and against the dfdx-ops path
//! (`Model::forward_ops`), which other devices use.

use dfdx::prelude::*;

use super::config::{Activation, CellKind};
use super::model::{Mat, Model, TapeThread};

/// Element types of the fused kernels. f32 uses fast rational approximations of tanh (Eigen's,
/// within a few ulp) that vectorize; f64 (gradient checks) uses the standard library.
pub trait Real: Dtype + num_traits::Float + 'static {
    fn tanh_(self) -> Self;
    #[inline(always)]
    fn sigmoid_(self) -> Self {
        let half = Self::from(0.5).unwrap();
        half * (self * half).tanh_() + half
    }
}

impl Real for f64 {
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

/// Devices that can run one recurrent layer over a whole sequence.
pub trait LayerKernel<E: Dtype>: Device<E> {
    /// Layer `l` over all 28 steps: `x` is (28·batch, in) time-major; returns every step's
    /// hidden state, (28·batch, hidden) time-major, with its backward recorded on `tp`'s tape.
    fn recurrent_layer<T: Tape<E, Self> + Merge<NoneTape>>(
        model: &Model<E, Self>,
        l: usize,
        x: Mat<E, Self>,
        batch: usize,
        tp: &mut TapeThread<T>,
    ) -> Mat<E, Self>;
}

/// The CPU kernel, written once per element type: dfdx's gradient buffers are concrete vectors
/// only for a concrete `E`.
macro_rules! cpu_layer_kernel {
    ($e:ty) => {
        impl LayerKernel<$e> for Cpu {
            fn recurrent_layer<T: Tape<$e, Self> + Merge<NoneTape>>(
                model: &Model<$e, Self>,
                l: usize,
                x: Mat<$e, Self>,
                batch: usize,
                tp: &mut TapeThread<T>,
            ) -> Mat<$e, Self> {
                let cfg = &model.config;
                let (n, input) = *x.shape();
                let dims = Dims {
                    n,
                    b: batch,
                    i: input,
                    h: cfg.hidden,
                    g: cfg.cell.gates() * cfg.hidden,
                };
                let kind = Kind::of(cfg.cell, cfg.rnn_activation());
                let base = 4 * l;
                let p = Params {
                    w_ih: model.params[base].as_vec(),
                    w_hh: model.params[base + 1].as_vec(),
                    b_ih: model.params[base + 2].as_vec(),
                    b_hh: model.params[base + 3].as_vec(),
                };
                let isa = Isa::best(kind);
                let saved = forward(isa, kind, dims, &p, x.as_vec());
                let out: Mat<$e, Cpu> = x.device().tensor_from_vec(saved.hs.clone(), (n, dims.h));
                if T::OWNS_TAPE {
                    let ghosts: Vec<_> = (0..4).map(|k| model.params[base + k].ghost()).collect();
                    let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
                    // The first layer's input is the data, which needs no gradient.
                    let x_needs_grad = l > 0;
                    tp.tape_mut().add_backward_op(move |grads| {
                        let dhs: Vec<$e> = grads.get_or_alloc_mut(&out_ghost)?.to_vec();
                        let g = backward(isa, kind, dims, &p, &saved, &dhs, x_needs_grad);
                        for (ghost, d) in ghosts.iter().zip([&g.w_ih, &g.w_hh, &g.b_ih, &g.b_hh]) {
                            add_into(grads.get_or_alloc_mut(ghost)?, d);
                        }
                        if let Some(dx) = &g.x {
                            add_into(grads.get_or_alloc_mut(&x_ghost)?, dx);
                        }
                        Ok(())
                    });
                }
                out
            }
        }
    };
}

cpu_layer_kernel!(f32);
cpu_layer_kernel!(f64);

#[cfg(feature = "cuda")]
impl<E: Dtype> LayerKernel<E> for Cuda
where
    Cuda: Device<E>,
{
    fn recurrent_layer<T: Tape<E, Self> + Merge<NoneTape>>(
        model: &Model<E, Self>,
        l: usize,
        x: Mat<E, Self>,
        batch: usize,
        tp: &mut TapeThread<T>,
    ) -> Mat<E, Self> {
        model.layer_ops_stacked(l, x, batch, tp)
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
    fn of(cell: CellKind, act: Activation) -> Kind {
        match (cell, act) {
            (CellKind::Rnn, Activation::Relu) => Kind::Relu,
            (CellKind::Rnn, Activation::Tanh) => Kind::Tanh,
            (CellKind::Lstm, _) => Kind::Lstm,
            (CellKind::Gru, _) => Kind::Gru,
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

/// A strided matrix view: element (r, c) at `r*rs + c*cs`.
#[derive(Clone, Copy)]
struct View {
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl View {
    fn row_major(rows: usize, cols: usize) -> View {
        View {
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    fn t(self) -> View {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    /// One past the largest index touched.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// c (m×n) = [c +] a (m×k) · b (k×n), bounds-checked, on the current rayon pool's threads.
fn matmul<E: Real>(c: &mut [E], cv: View, accumulate: bool, a: &[E], av: View, b: &[E], bv: View) {
    assert!(
        av.rows == cv.rows && bv.cols == cv.cols && av.cols == bv.rows,
        "matmul shapes"
    );
    assert!(cv.extent() <= c.len() && av.extent() <= a.len() && bv.extent() <= b.len());
    if cv.rows == 0 || cv.cols == 0 {
        return;
    }
    if av.cols == 0 {
        if !accumulate {
            for r in 0..cv.rows {
                for col in 0..cv.cols {
                    c[r * cv.rs + col * cv.cs] = E::zero();
                }
            }
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the views were checked to lie inside the slices; gemm reads a and b and writes c
    // only at the strided positions of those views, and c does not overlap a or b (distinct
    // borrows).
    unsafe {
        gemm::gemm(
            cv.rows,
            cv.cols,
            av.cols,
            c.as_mut_ptr(),
            cv.cs as isize,
            cv.rs as isize,
            accumulate,
            a.as_ptr(),
            av.cs as isize,
            av.rs as isize,
            b.as_ptr(),
            bv.cs as isize,
            bv.rs as isize,
            E::one(),
            E::one(),
            false,
            false,
            false,
            par,
        );
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

/// dst (b×g) += h_prev (b×h) · W_hhᵀ: the recurrent term of one step.
fn add_recurrent<E: Real>(dst: &mut [E], h_prev: &[E], w_hh: &[E], d: Dims) {
    matmul(
        dst,
        View::row_major(d.b, d.g),
        true,
        h_prev,
        View::row_major(d.b, d.h),
        w_hh,
        View::row_major(d.g, d.h).t(),
    );
}

/// The instruction set the gate loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    /// Plain x86-64 (SSE2) or any other architecture.
    Baseline,
    Avx2,
    Avx512,
}

impl Isa {
    fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma");
            match self {
                Isa::Baseline => true,
                Isa::Avx2 => avx2,
                Isa::Avx512 => {
                    avx2 && has!("avx512f")
                        && has!("avx512bw")
                        && has!("avx512dq")
                        && has!("avx512vl")
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Baseline
        }
    }

    /// The fastest supported choice for this cell kind. Measured with `rnnsweep bench`:
    /// AVX-512 gate loops made LSTM about 9 % faster than AVX2, but vanilla RNNs (one activation
    /// per unit) 0–4 % slower, so those stay on AVX2.
    fn best(kind: Kind) -> Isa {
        let gated = matches!(kind, Kind::Lstm | Kind::Gru);
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .filter(|isa| gated || *isa != Isa::Avx512)
            .find(|isa| isa.supported())
            .unwrap_or(Isa::Baseline)
    }
}

/// Defines `$name(isa, kind, …)`, which runs `$imp` compiled for `isa` (or for the baseline when
/// the CPU lacks it). The elementwise math is the same IEEE operations at any width (Rust does no
/// FMA contraction and LLVM does not reorder float sums), so every choice gives the same bits;
/// a test checks this.
macro_rules! simd_dispatch {
    ($(#[$doc:meta])* fn $name:ident => $imp:ident ($kind:ident: Kind $(, $arg:ident: $ty:ty)*) -> $ret:ty) => {
        $(#[$doc])*
        fn $name<E: Real>(isa: Isa, $kind: Kind $(, $arg: $ty)*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                unsafe fn v4<E: Real>($kind: Kind $(, $arg: $ty)*) -> $ret {
                    $imp($kind $(, $arg)*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3<E: Real>($kind: Kind $(, $arg: $ty)*) -> $ret {
                    $imp($kind $(, $arg)*)
                }
                match isa {
                    // SAFETY: `supported` checked that the CPU has every feature v4 enables.
                    Isa::Avx512 if isa.supported() => return unsafe { v4($kind $(, $arg)*) },
                    // SAFETY: `supported` checked that the CPU has AVX2 and FMA.
                    Isa::Avx2 if isa.supported() => return unsafe { v3($kind $(, $arg)*) },
                    _ => {}
                }
            }
            let _ = isa;
            $imp($kind $(, $arg)*)
        }
    };
}

simd_dispatch! {
    /// Runs the layer forward and keeps what backward needs.
    fn forward => forward_impl(kind: Kind, d: Dims, p: &Params<E>, x: Vec<E>) -> Saved<E>
}

#[inline(always)]
fn forward_impl<E: Real>(kind: Kind, d: Dims, p: &Params<E>, x: Vec<E>) -> Saved<E> {
    let Dims { n, b, i, h, g } = d;
    let steps = n / b;
    // Input projection of every step at once: xw = x · W_ihᵀ + bias.
    let mut xw = vec![E::zero(); n * g];
    matmul(
        &mut xw,
        View::row_major(n, g),
        false,
        &x,
        View::row_major(n, i),
        &p.w_ih,
        View::row_major(g, i).t(),
    );
    let bias: Vec<E> = if kind == Kind::Gru {
        p.b_ih.clone()
    } else {
        p.b_ih.iter().zip(&p.b_hh).map(|(&a, &c)| a + c).collect()
    };
    for row in xw.chunks_exact_mut(g) {
        add_into(row, &bias);
    }
    let mut hs = vec![E::zero(); n * h];
    let mut saved = Saved {
        x,
        hs: Vec::new(),
        act: Vec::new(),
        c: Vec::new(),
        tc: Vec::new(),
        ghn: Vec::new(),
    };
    match kind {
        Kind::Relu | Kind::Tanh => {
            for t in 0..steps {
                let (done, rest) = hs.split_at_mut(t * b * h);
                let pre = &mut xw[t * b * g..(t + 1) * b * g];
                if t > 0 {
                    add_recurrent(pre, &done[(t - 1) * b * h..t * b * h], &p.w_hh, d);
                }
                let out = &mut rest[..b * h];
                if kind == Kind::Relu {
                    for (o, &v) in out.iter_mut().zip(pre.iter()) {
                        *o = relu(v);
                    }
                } else {
                    for (o, &v) in out.iter_mut().zip(pre.iter()) {
                        *o = v.tanh_();
                    }
                }
            }
        }
        Kind::Lstm => {
            let mut c = vec![E::zero(); n * h];
            let mut tc = vec![E::zero(); n * h];
            for t in 0..steps {
                let (done, rest) = hs.split_at_mut(t * b * h);
                let gates = &mut xw[t * b * g..(t + 1) * b * g];
                if t > 0 {
                    add_recurrent(gates, &done[(t - 1) * b * h..t * b * h], &p.w_hh, d);
                }
                for gr in gates.chunks_exact_mut(g) {
                    let (ifg, o) = gr.split_at_mut(3 * h);
                    let (if_, gg) = ifg.split_at_mut(2 * h);
                    for v in if_.iter_mut() {
                        *v = v.sigmoid_();
                    }
                    for v in gg.iter_mut() {
                        *v = v.tanh_();
                    }
                    for v in o.iter_mut() {
                        *v = v.sigmoid_();
                    }
                }
                let (c_done, c_rest) = c.split_at_mut(t * b * h);
                let out = &mut rest[..b * h];
                let ct = &mut c_rest[..b * h];
                let tct = &mut tc[t * b * h..(t + 1) * b * h];
                for r in 0..b {
                    let gr = &gates[r * g..(r + 1) * g];
                    let (ig, fg, gg, og) =
                        (&gr[..h], &gr[h..2 * h], &gr[2 * h..3 * h], &gr[3 * h..]);
                    let row = r * h..(r + 1) * h;
                    let (cr, tr, hr) = (
                        &mut ct[row.clone()],
                        &mut tct[row.clone()],
                        &mut out[row.clone()],
                    );
                    if t > 0 {
                        let cp = &c_done[(t - 1) * b * h + r * h..(t - 1) * b * h + (r + 1) * h];
                        for k in 0..h {
                            cr[k] = fg[k] * cp[k] + ig[k] * gg[k];
                        }
                    } else {
                        for k in 0..h {
                            cr[k] = ig[k] * gg[k];
                        }
                    }
                    for k in 0..h {
                        tr[k] = cr[k].tanh_();
                        hr[k] = og[k] * tr[k];
                    }
                }
            }
            saved.act = xw;
            saved.c = c;
            saved.tc = tc;
        }
        Kind::Gru => {
            let mut ghn = vec![E::zero(); n * h];
            let mut gh = vec![E::zero(); b * g];
            let zeros = vec![E::zero(); h]; // h before the first step
            for t in 0..steps {
                let (done, rest) = hs.split_at_mut(t * b * h);
                let xs = &mut xw[t * b * g..(t + 1) * b * g];
                // gh = h_prev · W_hhᵀ + b_hh (h_prev = 0 at t = 0).
                for row in gh.chunks_exact_mut(g) {
                    row.copy_from_slice(&p.b_hh);
                }
                if t > 0 {
                    add_recurrent(&mut gh, &done[(t - 1) * b * h..t * b * h], &p.w_hh, d);
                }
                let out = &mut rest[..b * h];
                let ghn_t = &mut ghn[t * b * h..(t + 1) * b * h];
                for r in 0..b {
                    let xr = &mut xs[r * g..(r + 1) * g];
                    let gr = &gh[r * g..(r + 1) * g];
                    for k in 0..2 * h {
                        xr[k] = (xr[k] + gr[k]).sigmoid_();
                    }
                    let (rz, nn) = xr.split_at_mut(2 * h);
                    let hn = &gr[2 * h..];
                    ghn_t[r * h..(r + 1) * h].copy_from_slice(hn);
                    for k in 0..h {
                        nn[k] = (nn[k] + rz[k] * hn[k]).tanh_();
                    }
                    let hr = &mut out[r * h..(r + 1) * h];
                    let hp: &[E] = if t > 0 {
                        &done[(t - 1) * b * h + r * h..(t - 1) * b * h + (r + 1) * h]
                    } else {
                        &zeros[..h]
                    };
                    let z = &rz[h..];
                    for k in 0..h {
                        hr[k] = nn[k] + z[k] * (hp[k] - nn[k]);
                    }
                }
            }
            saved.act = xw;
            saved.ghn = ghn;
        }
    }
    saved.hs = hs;
    saved
}

/// Gradients of one layer.
struct Grads<E> {
    w_ih: Vec<E>,
    w_hh: Vec<E>,
    b_ih: Vec<E>,
    b_hh: Vec<E>,
    x: Option<Vec<E>>,
}

simd_dispatch! {
    /// Backpropagation through time, given the gradient of every hidden state.
    fn backward => backward_impl(
        kind: Kind,
        d: Dims,
        p: &Params<E>,
        s: &Saved<E>,
        dhs: &[E],
        need_dx: bool
    ) -> Grads<E>
}

#[inline(always)]
fn backward_impl<E: Real>(
    kind: Kind,
    d: Dims,
    p: &Params<E>,
    s: &Saved<E>,
    dhs: &[E],
    need_dx: bool,
) -> Grads<E> {
    let Dims { n, b, i, h, g } = d;
    let steps = n / b;
    let one = E::one();
    // Gradient of each step's gate pre-activations (= of xw), and for the GRU of gh.
    let mut dxw = vec![E::zero(); n * g];
    let mut dgh = if kind == Kind::Gru {
        vec![E::zero(); n * g]
    } else {
        Vec::new()
    };
    let mut dh = vec![E::zero(); b * h]; // from step t+1
    let mut dc = vec![E::zero(); b * h]; // LSTM: cell gradient from step t+1
    let zeros = vec![E::zero(); h]; // the state before the first step
    let w_hh = View::row_major(g, h);
    for t in (0..steps).rev() {
        let rows = t * b * h..(t + 1) * b * h;
        for (a, &v) in dh.iter_mut().zip(&dhs[rows.clone()]) {
            *a += v;
        }
        let dpre = &mut dxw[t * b * g..(t + 1) * b * g];
        match kind {
            Kind::Relu | Kind::Tanh => {
                let ht = &s.hs[rows.clone()];
                if kind == Kind::Relu {
                    for ((o, &dv), &hv) in dpre.iter_mut().zip(&dh).zip(ht) {
                        *o = relu_grad(hv, dv);
                    }
                } else {
                    for ((o, &dv), &hv) in dpre.iter_mut().zip(&dh).zip(ht) {
                        *o = dv * (one - hv * hv);
                    }
                }
            }
            Kind::Lstm => {
                for r in 0..b {
                    let gr = &s.act[t * b * g + r * g..t * b * g + (r + 1) * g];
                    let (ig, fg, gg, og) =
                        (&gr[..h], &gr[h..2 * h], &gr[2 * h..3 * h], &gr[3 * h..]);
                    let off = t * b * h + r * h;
                    let tc = &s.tc[off..off + h];
                    let dr = &mut dpre[r * g..(r + 1) * g];
                    let dhr = &dh[r * h..(r + 1) * h];
                    let dcr = &mut dc[r * h..(r + 1) * h];
                    let cp = previous(&s.c, t, off.saturating_sub(b * h), h, &zeros);
                    let (di, rest) = dr.split_at_mut(h);
                    let (df, rest) = rest.split_at_mut(h);
                    let (dg, do_) = rest.split_at_mut(h);
                    for k in 0..h {
                        let c = dcr[k] + dhr[k] * og[k] * (one - tc[k] * tc[k]);
                        di[k] = c * gg[k] * ig[k] * (one - ig[k]);
                        df[k] = c * cp[k] * fg[k] * (one - fg[k]);
                        dg[k] = c * ig[k] * (one - gg[k] * gg[k]);
                        do_[k] = dhr[k] * tc[k] * og[k] * (one - og[k]);
                        dcr[k] = c * fg[k];
                    }
                }
            }
            Kind::Gru => {
                let dghs = &mut dgh[t * b * g..(t + 1) * b * g];
                for r in 0..b {
                    let gr = &s.act[t * b * g + r * g..t * b * g + (r + 1) * g];
                    let (rg, zg, ng) = (&gr[..h], &gr[h..2 * h], &gr[2 * h..]);
                    let off = t * b * h + r * h;
                    let ghn = &s.ghn[off..off + h];
                    let dr = &mut dpre[r * g..(r + 1) * g];
                    let dgr = &mut dghs[r * g..(r + 1) * g];
                    let dhr = &mut dh[r * h..(r + 1) * h];
                    let hp = previous(&s.hs, t, off.saturating_sub(b * h), h, &zeros);
                    let (dxr, rest) = dr.split_at_mut(h);
                    let (dxz, dxn) = rest.split_at_mut(h);
                    let (dhr_, rest) = dgr.split_at_mut(h);
                    let (dhz, dhn) = rest.split_at_mut(h);
                    for k in 0..h {
                        let dn = dhr[k] * (one - zg[k]) * (one - ng[k] * ng[k]);
                        let dz = dhr[k] * (hp[k] - ng[k]) * zg[k] * (one - zg[k]);
                        let drr = dn * ghn[k] * rg[k] * (one - rg[k]);
                        dxr[k] = drr;
                        dxz[k] = dz;
                        dxn[k] = dn;
                        dhr_[k] = drr;
                        dhz[k] = dz;
                        dhn[k] = dn * rg[k];
                        // What reaches h_prev directly (h' = n + z ⊙ (h_prev − n)).
                        dhr[k] *= zg[k];
                    }
                }
            }
        }
        // dh for step t-1: through W_hh (the GRU keeps its direct part in dh).
        if t > 0 {
            let src: &[E] = if kind == Kind::Gru {
                &dgh[t * b * g..(t + 1) * b * g]
            } else {
                &dxw[t * b * g..(t + 1) * b * g]
            };
            let accumulate = kind == Kind::Gru;
            matmul(
                &mut dh,
                View::row_major(b, h),
                accumulate,
                src,
                View::row_major(b, g),
                &p.w_hh,
                w_hh,
            );
        }
    }
    // Weight gradients as single large matmuls over all steps.
    let dgates_h: &[E] = if kind == Kind::Gru { &dgh } else { &dxw };
    let mut w_hh_grad = vec![E::zero(); g * h];
    if steps > 1 {
        // Σ_t dgates_tᵀ · h_{t-1}, t = 1..steps (h_{-1} = 0).
        matmul(
            &mut w_hh_grad,
            View::row_major(g, h),
            false,
            &dgates_h[b * g..],
            View::row_major(n - b, g).t(),
            &s.hs[..(n - b) * h],
            View::row_major(n - b, h),
        );
    }
    let mut w_ih_grad = vec![E::zero(); g * i];
    matmul(
        &mut w_ih_grad,
        View::row_major(g, i),
        false,
        &dxw,
        View::row_major(n, g).t(),
        &s.x,
        View::row_major(n, i),
    );
    let colsum = |m: &[E]| {
        let mut acc = vec![E::zero(); g];
        for row in m.chunks_exact(g) {
            add_into(&mut acc, row);
        }
        acc
    };
    let b_ih = colsum(&dxw);
    let b_hh = if kind == Kind::Gru {
        colsum(&dgh)
    } else {
        b_ih.clone()
    };
    let x = need_dx.then(|| {
        let mut dx = vec![E::zero(); n * i];
        matmul(
            &mut dx,
            View::row_major(n, i),
            false,
            &dxw,
            View::row_major(n, g),
            &p.w_ih,
            View::row_major(g, i),
        );
        dx
    });
    Grads {
        w_ih: w_ih_grad,
        w_hh: w_hh_grad,
        b_ih,
        b_hh,
        x,
    }
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
                (CellKind::Rnn, Activation::Relu),
                (CellKind::Rnn, Activation::Tanh),
                (CellKind::Lstm, Activation::Tanh),
                (CellKind::Gru, Activation::Tanh),
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
                    let g = backward(isa, kind, d, &p, &s, &dhs, true);
                    let mut all = s.hs.clone();
                    for v in [&g.w_ih, &g.w_hh, &g.b_ih, &g.b_hh, g.x.as_ref().unwrap()] {
                        all.extend_from_slice(v);
                    }
                    all
                };
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
                let dhs = vec![e(1.0); b * h];
                let g = backward(isa, Kind::Relu, d, &p, &s, &dhs, false);
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
                        let got = s.hs[r * h + k].to_f64().unwrap();
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
            (CellKind::Rnn, Activation::Tanh),
            (CellKind::Lstm, Activation::Tanh),
            (CellKind::Gru, Activation::Tanh),
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
}
