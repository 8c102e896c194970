//! The forward pass of a fused layer: the input projection of every step as one matmul, then
//! each step's `h·W_hhᵀ` accumulated into it and the gate loops.

use super::*;

use super::stepmm::{add_recurrent, all_rows_product, recurrent_weights};

#[inline(always)]
pub(super) fn forward_impl<E: Real>(kind: Kind, d: Dims, p: &Params<E>, x: Vec<E>) -> Saved<E> {
    let Dims { n, b, i, h, g } = d;
    let steps = n / b;
    let bias: Vec<E> = if kind == Kind::Gru {
        p.b_ih.clone()
    } else {
        p.b_ih.iter().zip(&p.b_hh).map(|(&a, &c)| a + c).collect()
    };
    // Input projection: xw = x · W_ihᵀ + bias. With several features, every step's at once;
    // with one, each step's just before the step reads it ([`project_step`]).
    let mut xw = pool::overwritten(n * g);
    if i > 1 {
        all_rows_product(&mut xw, false, &x, &p.w_ih, true, (n, i, g));
        for row in xw.chunks_exact_mut(g) {
            add_into(row, &bias);
        }
    }
    // Beyond the caches, each row of the LSTM's and GRU's gate loops first asks for the same
    // row of the next step's buffers, which it writes (see `BEYOND_CACHE_BYTES`): a store to a
    // line not in cache waits for it, and the loop runs while the lines come.
    let ahead = n * g * std::mem::size_of::<E>() >= BEYOND_CACHE_BYTES;
    let w_hh_t = recurrent_weights(&p.w_hh, d);
    let mut hs = pool::overwritten(n * h);
    let mut saved = Saved {
        x: Vec::new(),
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
                if i == 1 {
                    project_step(pre, &x[t * b..(t + 1) * b], &p.w_ih, &bias);
                }
                if t > 0 {
                    add_recurrent(pre, &done[(t - 1) * b * h..t * b * h], &w_hh_t, d);
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
            // The backward pass reads the states alone: the pre-activations' buffer serves the
            // next buffer of their size (the backward pass's gate gradients).
            pool::recycle(xw);
        }
        Kind::Lstm => {
            let mut c = pool::overwritten(n * h);
            let mut tc = pool::overwritten(n * h);
            for t in 0..steps {
                let (done, rest) = hs.split_at_mut(t * b * h);
                let (gates, later) = xw[t * b * g..].split_at_mut(b * g);
                if i == 1 {
                    project_step(gates, &x[t * b..(t + 1) * b], &p.w_ih, &bias);
                }
                if t > 0 {
                    add_recurrent(gates, &done[(t - 1) * b * h..t * b * h], &w_hh_t, d);
                }
                for (r, gr) in gates.chunks_exact_mut(g).enumerate() {
                    if ahead && t + 1 < steps {
                        let at = (t + 1) * b * h + r * h;
                        prefetch_for_write(&later[r * g..(r + 1) * g]);
                        prefetch_for_write(&c[at..at + h]);
                        prefetch_for_write(&tc[at..at + h]);
                        prefetch_for_write(&rest[b * h + r * h..b * h + (r + 1) * h]);
                    }
                    let (ifg, o) = gr.split_at_mut(3 * h);
                    let (if_, gg) = ifg.split_at_mut(2 * h);
                    // Blocks of fixed sizes in local arrays (see `fixed_blocks!`): LLVM left a
                    // loop's remainder scalar.
                    fixed_blocks!(2 * h, |k, N| {
                        let mut v = block::<E, N>(if_, k);
                        for x in v.iter_mut() {
                            *x = x.sigmoid_();
                        }
                        if_[k..k + N].copy_from_slice(&v);
                    });
                    fixed_blocks!(h, |k, N| {
                        let (mut vg, mut vo) = (block::<E, N>(gg, k), block::<E, N>(o, k));
                        for u in 0..N {
                            vg[u] = vg[u].tanh_();
                            vo[u] = vo[u].sigmoid_();
                        }
                        gg[k..k + N].copy_from_slice(&vg);
                        o[k..k + N].copy_from_slice(&vo);
                    });
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
                    let cp: &[E] = if t > 0 {
                        &c_done[(t - 1) * b * h + r * h..(t - 1) * b * h + (r + 1) * h]
                    } else {
                        &[]
                    };
                    fixed_blocks!(h, |k, N| {
                        let (ig, fg) = (block::<E, N>(ig, k), block::<E, N>(fg, k));
                        let (gg, og) = (block::<E, N>(gg, k), block::<E, N>(og, k));
                        let mut c = [E::zero(); N];
                        if t > 0 {
                            let cp = block::<E, N>(cp, k);
                            for u in 0..N {
                                c[u] = fg[u] * cp[u] + ig[u] * gg[u];
                            }
                        } else {
                            for u in 0..N {
                                c[u] = ig[u] * gg[u];
                            }
                        }
                        let (mut tcv, mut hv) = ([E::zero(); N], [E::zero(); N]);
                        for u in 0..N {
                            tcv[u] = c[u].tanh_();
                            hv[u] = og[u] * tcv[u];
                        }
                        cr[k..k + N].copy_from_slice(&c);
                        tr[k..k + N].copy_from_slice(&tcv);
                        hr[k..k + N].copy_from_slice(&hv);
                    });
                }
            }
            saved.act = xw;
            saved.c = c;
            saved.tc = tc;
        }
        Kind::Gru => {
            let mut ghn = pool::overwritten(n * h);
            let mut gh = vec![E::zero(); b * g];
            let zeros = vec![E::zero(); h]; // h before the first step
            for t in 0..steps {
                let (done, rest) = hs.split_at_mut(t * b * h);
                let (xs, later) = xw[t * b * g..].split_at_mut(b * g);
                if i == 1 {
                    project_step(xs, &x[t * b..(t + 1) * b], &p.w_ih, &bias);
                }
                // gh = h_prev · W_hhᵀ + b_hh (h_prev = 0 at t = 0).
                for row in gh.chunks_exact_mut(g) {
                    row.copy_from_slice(&p.b_hh);
                }
                if t > 0 {
                    add_recurrent(&mut gh, &done[(t - 1) * b * h..t * b * h], &w_hh_t, d);
                }
                let (out, next_out) = rest.split_at_mut(b * h);
                let (ghn_t, next_ghn) = ghn[t * b * h..].split_at_mut(b * h);
                for r in 0..b {
                    if ahead && t + 1 < steps {
                        prefetch_for_write(&later[r * g..(r + 1) * g]);
                        prefetch_for_write(&next_ghn[r * h..(r + 1) * h]);
                        prefetch_for_write(&next_out[r * h..(r + 1) * h]);
                    }
                    // Slices cut to their exact lengths: no bounds checks, so the loops
                    // vectorize.
                    let xr = &mut xs[r * g..(r + 1) * g][..3 * h];
                    let gr = &gh[r * g..(r + 1) * g][..3 * h];
                    for k in 0..2 * h {
                        xr[k] = (xr[k] + gr[k]).sigmoid_();
                    }
                    let (rz, nn) = xr.split_at_mut(2 * h);
                    let (rz, nn, hn) = (&rz[..2 * h], &mut nn[..h], &gr[2 * h..3 * h]);
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
                    let (z, hp, hr) = (&rz[h..2 * h], &hp[..h], &mut hr[..h]);
                    for k in 0..h {
                        hr[k] = nn[k] + z[k] * (hp[k] - nn[k]);
                    }
                }
            }
            saved.act = xw;
            saved.ghn = ghn;
        }
    }
    pool::recycle(w_hh_t);
    saved.hs = hs;
    saved.x = x;
    saved
}

/// One step's input projection where each step reads one feature (pixels, permuted): an outer
/// product, which a matmul with an inner dimension of 1 computes several times slower. Each
/// value is x·w rounded, then the bias added: the same bits as the matmul followed by the
/// bias. Done step by step, just before the step reads it, the step's values are still in
/// cache (all 784 steps' at once went out to the last-level cache and back).
#[inline(always)]
fn project_step<E: Real>(xw_t: &mut [E], x_t: &[E], w_ih: &[E], bias: &[E]) {
    let g = bias.len();
    for (row, &xv) in xw_t.chunks_exact_mut(g).zip(x_t) {
        for ((o, &w), &bv) in row.iter_mut().zip(w_ih).zip(bias) {
            *o = xv * w + bv;
        }
    }
}
