//! The backward pass of a fused layer: backpropagation through time over the saved states,
//! step by step through the gates, with the weight gradients as two large matmuls after the loop.

use super::*;

use super::gemm::{matmul, View};

#[inline(always)]
pub(super) fn backward_impl<E: Real>(
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
