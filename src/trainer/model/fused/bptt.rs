//! The backward pass of a fused layer: backpropagation through time over the saved states,
//! step by step through the gates, with the weight gradients as large matmuls after the loop (for
//! long sequences W_hh's block by block during it, and W_ih's of one feature in one pass).
//!
//! It consumes the forward pass's [`Saved`] values: the gate activations of step t are needed
//! only at step t, so the gradients of the gate pre-activations overwrite them in place. That
//! saves one (steps·batch × gates·hidden) buffer, the largest of the pass (98 MiB for an LSTM
//! h128 reading 784 pixels in batches of 64), and the page faults of filling a fresh one.

use super::*;

use super::gemm::{long_sum_block, matmul, matmul_long, one_feature_grads, View};
use super::pool;
use super::stepmm::{all_rows_product, product, row_stride, strided_rows, weight_grad};

/// The gradients that reach W_hh: the GRU's of its hidden side's gates (`dgh`), which differ
/// from its input side's by the reset gate on the candidate; for the other cells the gates'
/// (`dxw`).
#[inline(always)]
fn through_w_hh<'a, E>(kind: Kind, dgh: &'a [E], dxw: &'a [E]) -> &'a [E] {
    if kind == Kind::Gru {
        dgh
    } else {
        dxw
    }
}

#[inline(always)]
pub(super) fn backward_impl<E: Real>(
    kind: Kind,
    d: Dims,
    p: &Params<E>,
    mut s: Saved<E>,
    dhs: &[E],
    need_dx: bool,
) -> Grads<E> {
    let Dims { n, b, i, h, g } = d;
    let steps = n / b;
    let one = E::one();
    // Gradient of each step's gate pre-activations (= of xw), and for the GRU of gh. The LSTM
    // and GRU write it over their activated gates, each step's after reading them.
    // Every value of both is written (step t's rows at step t) before it is read.
    let mut dxw = if s.act.is_empty() {
        pool::overwritten(n * g)
    } else {
        std::mem::take(&mut s.act)
    };
    let mut dgh = if kind == Kind::Gru {
        pool::overwritten(n * g)
    } else {
        Vec::new()
    };
    let mut dh = vec![E::zero(); b * h]; // from step t+1
    let mut dc = vec![E::zero(); b * h]; // LSTM: cell gradient from step t+1
    let zeros = vec![E::zero(); h]; // the state before the first step

    // W_hh for dh, its rows padded (rows a power of two apart are slow: `row_stride`).
    let w_hh = strided_rows(&p.w_hh, g, h);
    // dhs holds the gradients of the last steps' states (of the last step alone for the top
    // layer); the earlier steps' are zero, and adding +0 changes no value here: dh is never -0
    // (it starts at +0 and every product's sum starts from +0).
    let given = dhs.len() / (b * h);
    assert_eq!(dhs.len(), given * b * h, "whole steps of state gradients");
    let first_given = steps - given;
    let mut hh_grad = long_sum_block::<E>(g, h, n - b).map(|kc| HhGrad::new(kc, g, h, n - b));
    for t in (0..steps).rev() {
        let rows = t * b * h..(t + 1) * b * h;
        if t >= first_given {
            let off = (t - first_given) * b * h;
            add_into(&mut dh, &dhs[off..off + b * h]);
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
                    // The activated gates i, f, g, o of this row, replaced by their gradients.
                    let (gi, rest) = dpre[r * g..(r + 1) * g].split_at_mut(h);
                    let (gf, rest) = rest.split_at_mut(h);
                    let (gg, go) = rest.split_at_mut(h);
                    let off = t * b * h + r * h;
                    let tc = &s.tc[off..off + h];
                    let dhr = &dh[r * h..(r + 1) * h];
                    let dcr = &mut dc[r * h..(r + 1) * h];
                    let cp = previous(&s.c, t, off.saturating_sub(b * h), h, &zeros);
                    fixed_blocks!(h, |k, N| {
                        // The block's values into local arrays first: stores into one gate's
                        // slice cannot then alias another's loads, and LLVM vectorizes even a
                        // block of 4 (as slices it left that block scalar).
                        let (ig, fg) = (block::<E, N>(gi, k), block::<E, N>(gf, k));
                        let (gv, og) = (block::<E, N>(gg, k), block::<E, N>(go, k));
                        let (tc, dh_) = (block::<E, N>(tc, k), block::<E, N>(dhr, k));
                        let (dc_, cp) = (block::<E, N>(dcr, k), block::<E, N>(cp, k));
                        let mut out = [[E::zero(); N]; 5];
                        for u in 0..N {
                            let c = dc_[u] + dh_[u] * og[u] * (one - tc[u] * tc[u]);
                            out[0][u] = c * gv[u] * ig[u] * (one - ig[u]);
                            out[1][u] = c * cp[u] * fg[u] * (one - fg[u]);
                            out[2][u] = c * ig[u] * (one - gv[u] * gv[u]);
                            out[3][u] = dh_[u] * tc[u] * og[u] * (one - og[u]);
                            out[4][u] = c * fg[u];
                        }
                        gi[k..k + N].copy_from_slice(&out[0]);
                        gf[k..k + N].copy_from_slice(&out[1]);
                        gg[k..k + N].copy_from_slice(&out[2]);
                        go[k..k + N].copy_from_slice(&out[3]);
                        dcr[k..k + N].copy_from_slice(&out[4]);
                    });
                }
            }
            Kind::Gru => {
                let dghs = &mut dgh[t * b * g..(t + 1) * b * g];
                for r in 0..b {
                    // The activated gates r, z, n of this row, replaced by the gradients of
                    // their input parts.
                    let (gr, rest) = dpre[r * g..(r + 1) * g].split_at_mut(h);
                    let (gz, gn) = rest.split_at_mut(h);
                    let off = t * b * h + r * h;
                    let ghn = &s.ghn[off..off + h];
                    let dgr = &mut dghs[r * g..(r + 1) * g];
                    let dhr = &mut dh[r * h..(r + 1) * h];
                    let hp = previous(&s.hs, t, off.saturating_sub(b * h), h, &zeros);
                    let (dhr_, rest) = dgr.split_at_mut(h);
                    let (dhz, dhn) = rest.split_at_mut(h);
                    fixed_blocks!(h, |k, N| {
                        // Local arrays, as in the LSTM's loop above.
                        let (rg, zg, ng) = (
                            block::<E, N>(gr, k),
                            block::<E, N>(gz, k),
                            block::<E, N>(gn, k),
                        );
                        let (ghn, hp, dh_) = (
                            block::<E, N>(ghn, k),
                            block::<E, N>(hp, k),
                            block::<E, N>(dhr, k),
                        );
                        let mut out = [[E::zero(); N]; 5];
                        for u in 0..N {
                            let dn = dh_[u] * (one - zg[u]) * (one - ng[u] * ng[u]);
                            let dz = dh_[u] * (hp[u] - ng[u]) * zg[u] * (one - zg[u]);
                            out[0][u] = dn * ghn[u] * rg[u] * (one - rg[u]);
                            out[1][u] = dz;
                            out[2][u] = dn;
                            out[3][u] = dn * rg[u];
                            // What reaches h_prev directly (h' = n + z ⊙ (h_prev − n)).
                            out[4][u] = dh_[u] * zg[u];
                        }
                        // The gradients of the gates' input parts, and of their hidden parts
                        // (the same for r and z; n's hidden part is scaled by r).
                        gr[k..k + N].copy_from_slice(&out[0]);
                        gz[k..k + N].copy_from_slice(&out[1]);
                        gn[k..k + N].copy_from_slice(&out[2]);
                        dhr_[k..k + N].copy_from_slice(&out[0]);
                        dhz[k..k + N].copy_from_slice(&out[1]);
                        dhn[k..k + N].copy_from_slice(&out[3]);
                        dhr[k..k + N].copy_from_slice(&out[4]);
                    });
                }
            }
        }
        // dh for step t-1: through W_hh (the GRU keeps its direct part in dh).
        if t > 0 {
            let src = &through_w_hh(kind, &dgh, &dxw)[t * b * g..(t + 1) * b * g];
            let accumulate = kind == Kind::Gru;
            product(
                &mut dh,
                accumulate,
                src,
                &w_hh,
                row_stride::<E>(h),
                (b, g, h),
            );
        }
        if let Some(hh) = hh_grad.as_mut() {
            hh.step_done(t, b, through_w_hh(kind, &dgh, &dxw), &s.hs);
        }
    }
    // The weight gradients: sums over all steps. W_hh's, Σ_t dgates_tᵀ · h_{t-1} for t = 1..steps
    // (h_{-1} = 0), was computed block by block above for long sequences (`long_sum_block`),
    // else here by the per-step kernels (`weight_grad`, `gemm`'s bits) or one matmul.
    let w_hh_grad = match hh_grad {
        Some(hh) => hh.finish(),
        None => {
            let dgates_h = through_w_hh(kind, &dgh, &dxw);
            let mut w_hh_grad = vec![E::zero(); g * h];
            let (rows, later) = (n - b, &dgates_h[b * g..]);
            if steps > 1 && !weight_grad(&mut w_hh_grad, later, &s.hs[..rows * h], (g, rows, h)) {
                matmul(
                    &mut w_hh_grad,
                    View::row_major(g, h),
                    false,
                    later,
                    View::row_major(rows, g).t(),
                    &s.hs[..rows * h],
                    View::row_major(rows, h),
                );
            }
            w_hh_grad
        }
    };
    // W_ih's gradient and the biases': with one feature per step (pixels) in one pass over dxw
    // (`one_feature_grads`), else a matmul and the column sums, written out here (a closure was
    // compiled apart from the dispatch in release builds, as baseline code).
    let fused = if i == 1 {
        one_feature_grads(Isa::for_matmul(), &dxw, &s.x, g)
    } else {
        None
    };
    let (w_ih_grad, b_ih) = match fused {
        Some(both) => both,
        None => {
            let mut w_ih_grad = vec![E::zero(); g * i];
            if !weight_grad(&mut w_ih_grad, &dxw, &s.x, (g, n, i)) {
                matmul_long(
                    &mut w_ih_grad,
                    View::row_major(g, i),
                    &dxw,
                    View::row_major(n, g).t(),
                    &s.x,
                    View::row_major(n, i),
                );
            }
            let mut b_ih = vec![E::zero(); g];
            for row in dxw.chunks_exact(g) {
                add_into(&mut b_ih, row);
            }
            (w_ih_grad, b_ih)
        }
    };
    let b_hh = if kind == Kind::Gru {
        let mut acc = vec![E::zero(); g];
        for row in dgh.chunks_exact(g) {
            add_into(&mut acc, row);
        }
        acc
    } else {
        b_ih.clone()
    };
    // The buffers serve the next forward pass on this thread; dxw waits for the input's
    // gradient where there is one (`Grads::add_input_grad`).
    s.recycle();
    pool::recycle(dgh);
    let dgates = if need_dx {
        Some(dxw)
    } else {
        pool::recycle(dxw);
        None
    };
    Grads {
        w_ih: w_ih_grad,
        w_hh: w_hh_grad,
        b_ih,
        b_hh,
        dgates,
    }
}

/// W_hh's gradient over many steps, Σ_t dgates_tᵀ · h_{t-1}, computed during the backward pass:
/// each of `gemm`'s blocks of terms (see `matmul_long`) as soon as the pass has written its
/// gate gradients, still in cache, its sum kept; the sums are added in `gemm`'s order at the
/// end, which gives the bits of one call.
struct HhGrad<E> {
    /// Terms per block; the terms (rows after the first step's), and gates, hidden.
    kc: usize,
    k: usize,
    g: usize,
    h: usize,
    /// Blocks not computed yet: 0..pending.
    pending: usize,
    /// Block j's sum at j.
    sums: Vec<Vec<E>>,
}

impl<E: Real> HhGrad<E> {
    /// For k terms in `gemm`'s blocks of kc ([`long_sum_block`]).
    fn new(kc: usize, g: usize, h: usize, k: usize) -> HhGrad<E> {
        let blocks = k.div_ceil(kc);
        HhGrad {
            kc,
            k,
            g,
            h,
            pending: blocks,
            sums: (0..blocks).map(|_| Vec::new()).collect(),
        }
    }

    /// Computes the blocks whose gate gradients are all written once step t's are (the
    /// gradients of rows b·t on; term r is row b + r's gradients and state row r).
    fn step_done(&mut self, t: usize, b: usize, dgates: &[E], hs: &[E]) {
        let (g, h) = (self.g, self.h);
        while self.pending > 0 && t * b <= b + (self.pending - 1) * self.kc {
            let j = self.pending - 1;
            let start = j * self.kc;
            let len = self.kc.min(self.k - start);
            let mut sum = vec![E::zero(); g * h];
            matmul(
                &mut sum,
                View::row_major(g, h),
                false,
                &dgates[(b + start) * g..(b + start + len) * g],
                View::row_major(len, g).t(),
                &hs[start * h..(start + len) * h],
                View::row_major(len, h),
            );
            self.sums[j] = sum;
            self.pending = j;
        }
    }

    fn finish(self) -> Vec<E> {
        assert_eq!(self.pending, 0, "every block computed");
        let mut sums = self.sums.into_iter();
        let mut total = sums.next().expect("one block at least");
        for sum in sums {
            add_into(&mut total, &sum);
        }
        total
    }
}

impl<E: Real> Grads<E> {
    /// Adds the input's gradient, dx = dgates · W_ih (n×i), into `dst` by one matmul that
    /// accumulates in place, without an (n×i) buffer and a pass adding it. The bits are those of
    /// computing dx and adding it: `dst + Σ` with Σ one chain of FMAs for gates·hidden ≤ 512,
    /// and for longer sums too where `dst` holds zeros (a layer's input has no other reader, so
    /// its gradient is fresh). Does nothing where `backward` was told the input needs none.
    pub(super) fn add_input_grad(&mut self, d: Dims, w_ih: &[E], dst: &mut [E]) {
        let Some(dxw) = self.dgates.take() else {
            return;
        };
        let Dims { n, i, g, .. } = d;
        all_rows_product(dst, true, &dxw, w_ih, false, (n, g, i));
        pool::recycle(dxw);
    }
}

#[cfg(test)]
mod tests {
    use super::super::gemm::long_sum_block_at;
    use super::*;

    /// W_hh's gradient block by block during the backward pass gives the bits of one matmul
    /// after it: blocks that end inside a step (256×64 over 29 steps of 64 rows, in blocks of
    /// 464 with AVX-512) and `gemm`'s blocks of 512 for small matrices (60×20, steps of 100).
    #[test]
    fn w_hh_gradient_by_blocks_during_the_pass_gives_one_matmuls_bits() {
        let isa = Isa::for_matmul();
        for (g, h, b, steps) in [(256, 64, 64, 30), (60, 20, 100, 25)] {
            let n = b * steps;
            let mut next = super::super::test_values::<f32>(9);
            let dgates: Vec<f32> = (0..n * g).map(|_| next()).collect();
            let hs: Vec<f32> = (0..n * h).map(|_| next()).collect();
            let k = n - b;
            let Some(kc) = long_sum_block_at::<f32>(isa, 0, g, h, k) else {
                assert_eq!(isa, Isa::Baseline, "blocks with {isa:?}");
                continue;
            };
            let mut hh = HhGrad::new(kc, g, h, k);
            for t in (0..steps).rev() {
                hh.step_done(t, b, &dgates, &hs);
            }
            let got = hh.finish();
            let mut want = vec![0f32; g * h];
            matmul(
                &mut want,
                View::row_major(g, h),
                false,
                &dgates[b * g..],
                View::row_major(k, g).t(),
                &hs[..k * h],
                View::row_major(k, h),
            );
            assert!(kc % b != 0 || g <= 64, "a block ends inside a step");
            let same = got
                .iter()
                .zip(&want)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{g}×{h}, {steps} steps of {b}: not one matmul's bits");
        }
    }
}
