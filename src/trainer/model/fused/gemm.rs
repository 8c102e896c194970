//! Matmuls of the fused layers: strided views over host buffers, multiplied by the `gemm`
//! crate on the current rayon pool's threads (AVX-512 kernels where the CPU has them).
//!
//! Under an `RNNSWEEP_ISA` cap ([`Isa::limit`]) the `gemm` crate's own dispatch, which picks
//! the CPU's widest set and cannot be told otherwise, is bypassed: [`Real::gemm_at`] calls its
//! generic driver (`gemm_common::gemm::gemm_basic_generic`) with the microkernels of the
//! allowed set (`gemm_f32`/`gemm_f64`'s `fma` or `scalar` modules), exactly as the crate's
//! dispatch does for that set. Without a cap the crate's dispatch runs unchanged.

use super::*;

/// A strided matrix view: element (r, c) at `r*rs + c*cs`.
#[derive(Clone, Copy)]
pub(super) struct View {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

impl View {
    pub(super) fn row_major(rows: usize, cols: usize) -> View {
        View {
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    pub(super) fn t(self) -> View {
        View {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    /// One past the largest index touched.
    pub(super) fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// c (m×n) = [c +] a (m×k) · b (k×n), bounds-checked, on the current rayon pool's threads, at
/// the instruction set [`Isa::for_matmul`] allows.
pub(super) fn matmul<E: Real>(
    c: &mut [E],
    cv: View,
    accumulate: bool,
    a: &[E],
    av: View,
    b: &[E],
    bv: View,
) {
    matmul_at(Isa::for_matmul(), c, cv, accumulate, a, av, b, bv)
}

/// [`matmul`] without accumulating, for sums of many terms (the weight gradients: one term per
/// row of every step): the same bits, computed one of `gemm`'s blocks of terms (its `kc`, from
/// [`Real::gemm_depth`]) at a time, each block's operands first fetched into the level-2 cache.
///
/// `gemm` sums a product's terms in blocks: one chain of FMAs per block from zero, added to the
/// destination block after block. Calling it on each block in turn, accumulating from the
/// second on, is therefore the same computation. What changes is memory: `gemm` reads `a`
/// unpacked where its rows are contiguous (the gate gradients, transposed), one column per term
/// at a stride of the gates' width, which the hardware prefetchers do not fetch ahead when the
/// operand comes from beyond the level-2 cache (784-step sequences: 51 MiB of gate gradients
/// for an LSTM h64). Measured alone, one thread, AVX-512: 256×64 over 50,112 terms at 77
/// GFLOP/s whole, 112 by blocks fetched first (160 where the operands are already in cache).
/// From [`BEYOND_CACHE_BYTES`] of operands; below, one call.
pub(super) fn matmul_long<E: Real>(c: &mut [E], cv: View, a: &[E], av: View, b: &[E], bv: View) {
    matmul_long_at(Isa::for_matmul(), BEYOND_CACHE_BYTES, c, cv, a, av, b, bv)
}

/// [`matmul_long`] at instruction set `isa` (which the CPU must support), by blocks from
/// `min_bytes` of operands.
#[allow(clippy::too_many_arguments)]
fn matmul_long_at<E: Real>(
    isa: Isa,
    min_bytes: usize,
    c: &mut [E],
    cv: View,
    a: &[E],
    av: View,
    b: &[E],
    bv: View,
) {
    let (m, n, k) = (cv.rows, cv.cols, av.cols);
    let Some(kc) = long_sum_block_at::<E>(isa, min_bytes, m, n, k) else {
        return matmul_at(isa, c, cv, false, a, av, b, bv);
    };
    let mut at = 0;
    while at < k {
        let len = kc.min(k - at);
        let (a_at, b_at) = (&a[at * av.cs..], &b[at * bv.rs..]);
        let (av_at, bv_at) = (View { cols: len, ..av }, View { rows: len, ..bv });
        prefetch_l2(&a_at[..av_at.extent()]);
        prefetch_l2(&b_at[..bv_at.extent()]);
        matmul_at(isa, c, cv, at > 0, a_at, av_at, b_at, bv_at);
        at += len;
    }
}

/// The terms per block where [`matmul_long`] would go by blocks for an m×n product of k terms
/// (the operands large enough, and every block `gemm`'s general path in one block), else None.
pub(super) fn long_sum_block<E: Real>(m: usize, n: usize, k: usize) -> Option<usize> {
    long_sum_block_at::<E>(Isa::for_matmul(), BEYOND_CACHE_BYTES, m, n, k)
}

pub(super) fn long_sum_block_at<E: Real>(
    isa: Isa,
    min_bytes: usize,
    m: usize,
    n: usize,
    k: usize,
) -> Option<usize> {
    if (m + n) * k * std::mem::size_of::<E>() < min_bytes {
        return None;
    }
    let kc = E::gemm_depth()(isa, m, n, k).filter(|&kc| kc < k)?;
    // Each call must sum its block as one chain: `gemm`'s general path, in one block. A last
    // block of two terms or fewer would take another path.
    let last = k - (k - 1) / kc * kc;
    let one_block = |len: usize| E::gemm_depth()(isa, m, n, len) == Some(len);
    (one_block(kc) && one_block(last)).then_some(kc)
}

/// For a layer reading one feature per step (pixels): W_ih's gradient dᵀ·x (g values) and the
/// bias's, the column sums of d (n×g), in one pass over d where [`matmul`] and a sum read it
/// twice (51 MiB for an LSTM h64 over 784 steps). The bits are `gemm`'s matrix-vector path
/// (`gemm_common::gemv::mixed_gemv_colmajor`: per value, the first row's product, then one FMA
/// per row down the rows) and those of adding the rows in turn to zeros. None where `gemm`
/// would take another path (≤ 2 rows, g = 1) or compute without FMA ([`fma_kernels`]).
#[inline(always)]
pub(super) fn one_feature_grads<E: Real>(
    isa: Isa,
    d: &[E],
    x: &[E],
    g: usize,
) -> Option<(Vec<E>, Vec<E>)> {
    let n = x.len();
    assert_eq!(d.len(), n * g, "one row of gradients per feature");
    if !fma_kernels(isa) || n <= 2 || g < 2 {
        return None;
    }
    let (first, rest) = d.split_at(g);
    let mut w: Vec<E> = first.iter().map(|&dv| dv * x[0]).collect();
    let mut bias: Vec<E> = first.iter().map(|&dv| E::zero() + dv).collect();
    for (row, &xv) in rest.chunks_exact(g).zip(&x[1..]) {
        for ((wj, bj), &dv) in w.iter_mut().zip(bias.iter_mut()).zip(row) {
            *wj = dv.mul_add(xv, *wj);
            *bj += dv;
        }
    }
    Some((w, bias))
}

/// The microkernels [`at_isa`] calls at an instruction set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kernels {
    Avx512,
    /// AVX2 + FMA, where `gemm`'s x86-64-v3 set is detected.
    Fma,
    /// Scalar code, without FMA.
    Scalar,
}

/// The kernels at `isa`, chosen as [`at_isa`] chooses them: AVX2 falls back to scalar code
/// where `gemm`'s x86-64-v3 check fails (the same check for f32 and f64).
fn kernels(isa: Isa) -> Kernels {
    #[cfg(target_arch = "x86_64")]
    {
        use gemm_common::simd::MixedSimd;
        match isa {
            Isa::Avx512 => Kernels::Avx512,
            Isa::Avx2
                if <gemm_common::simd::V3 as MixedSimd<f32, f32, f32, f32>>::try_new()
                    .is_some() =>
            {
                Kernels::Fma
            }
            _ => Kernels::Scalar,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        Kernels::Scalar
    }
}

/// Whether [`at_isa`] computes with FMA at `isa`.
fn fma_kernels(isa: Isa) -> bool {
    kernels(isa) != Kernels::Scalar
}

/// [`matmul`] at instruction set `isa` (which the CPU must support).
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_at<E: Real>(
    isa: Isa,
    c: &mut [E],
    cv: View,
    accumulate: bool,
    a: &[E],
    av: View,
    b: &[E],
    bv: View,
) {
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
        ::gemm::Parallelism::Rayon(threads)
    } else {
        ::gemm::Parallelism::None
    };
    // SAFETY: the views were checked to lie inside the slices; gemm reads a and b and writes c
    // only at the strided positions of those views, and c does not overlap a or b (distinct
    // borrows).
    unsafe {
        E::gemm_at()(
            isa,
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
            par,
        )
    };
}

/// Defines the matmul at an instruction set for one element type: `c = [c +] a·b`. AVX-512 (no
/// cap) is the `gemm` crate's own dispatch; AVX2 + FMA and scalar call its driver with that set's
/// microkernels, the body of the crate's per-set entry points (`gemm_common::__inject_mod!`),
/// which are private.
macro_rules! gemm_at {
    ($t:ident, $kernels:ident) => {
        /// # Safety
        /// As `gemm::gemm`: the strided views lie inside live buffers and `dst` overlaps neither
        /// operand.
        #[allow(clippy::too_many_arguments)]
        pub(in crate::trainer::model::fused) unsafe fn $t(
            isa: Isa,
            m: usize,
            n: usize,
            k: usize,
            dst: *mut $t,
            dst_cs: isize,
            dst_rs: isize,
            read_dst: bool,
            lhs: *const $t,
            lhs_cs: isize,
            lhs_rs: isize,
            rhs: *const $t,
            rhs_cs: isize,
            rhs_rs: isize,
            par: ::gemm::Parallelism,
        ) {
            use gemm_common::simd::MixedSimd;
            if isa == Isa::Avx512 {
                return ::gemm::gemm(
                    m, n, k, dst, dst_cs, dst_rs, read_dst, lhs, lhs_cs, lhs_rs, rhs, rhs_cs,
                    rhs_rs, 1.0, 1.0, false, false, false, par,
                );
            }
            macro_rules! call {
                ($simd:expr, $ukr:path, $n:expr) => {{
                    use $ukr as k_;
                    gemm_common::gemm::gemm_basic_generic::<
                        _,
                        $t,
                        { $n },
                        { k_::MR_DIV_N * $n },
                        { k_::NR },
                        { k_::MR_DIV_N },
                        { k_::H_M },
                        { k_::H_N },
                    >(
                        $simd,
                        m,
                        n,
                        k,
                        dst,
                        dst_cs,
                        dst_rs,
                        read_dst,
                        lhs,
                        lhs_cs,
                        lhs_rs,
                        rhs,
                        rhs_cs,
                        rhs_rs,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        |a, b, c| a * b + c,
                        &k_::UKR,
                        &k_::H_UKR,
                        false,
                        par,
                    )
                }};
            }
            #[cfg(target_arch = "x86_64")]
            if isa == Isa::Avx2 {
                if let Some(simd) = <gemm_common::simd::V3 as MixedSimd<$t, $t, $t, $t>>::try_new()
                {
                    // 256-bit vectors: 8 f32 or 4 f64 lanes, as the crate's `fma` module.
                    return call!(
                        simd,
                        $kernels::microkernel::fma::$t,
                        32 / std::mem::size_of::<$t>()
                    );
                }
            }
            let _ = isa;
            call!(
                gemm_common::simd::Scalar,
                $kernels::microkernel::scalar::$t,
                1
            )
        }
    };
}

/// Defines, for one element type, the number of terms `gemm` sums in one chain (its `kc`) for an
/// m×n product of k terms at an instruction set, or None where it takes another path than its
/// general one (k ≤ 2, a vector, or m·n ≤ 256, where a small-product path may apply): the
/// computation of `gemm_common::gemm::gemm_basic_generic`, with the microkernel sizes of the
/// set's kernels (the ones [`at_isa`] calls).
macro_rules! depth_at {
    ($t:ident, $kernels:ident) => {
        pub(in crate::trainer::model::fused) fn $t(
            isa: Isa,
            m: usize,
            n: usize,
            k: usize,
        ) -> Option<usize> {
            if k <= 2 || m <= 1 || n <= 1 || m * n <= 256 {
                return None;
            }
            if m <= 64 && n <= 64 {
                return Some(k.min(512));
            }
            // The microkernels' sizes ([`kernels`]).
            let size = std::mem::size_of::<$t>();
            let (mr, nr) = match super::kernels(isa) {
                #[cfg(target_arch = "x86_64")]
                super::Kernels::Avx512 => {
                    use $kernels::microkernel::avx512f::$t as k_;
                    (k_::MR_DIV_N * 64 / size, k_::NR)
                }
                #[cfg(target_arch = "x86_64")]
                super::Kernels::Fma => {
                    use $kernels::microkernel::fma::$t as k_;
                    (k_::MR_DIV_N * 32 / size, k_::NR)
                }
                _ => {
                    use $kernels::microkernel::scalar::$t as k_;
                    (k_::MR_DIV_N, k_::NR)
                }
            };
            Some(gemm_common::cache::kernel_params(m, n, k, mr, nr, size).kc)
        }
    };
}

/// [`depth_of`]'s functions: `isa`, m, n, k.
pub(super) type DepthAt = fn(Isa, usize, usize, usize) -> Option<usize>;

/// `gemm`'s blocks of terms, per element type (see [`Real::gemm_depth`]).
pub(super) mod depth_of {
    use super::Isa;
    depth_at!(f32, gemm_f32);
    depth_at!(f64, gemm_f64);
}

/// [`at_isa`]'s functions: `isa`, m, n, k, then `gemm::gemm`'s pointers and strides, and the
/// parallelism.
pub(super) type GemmAt<T> = unsafe fn(
    Isa,
    usize,
    usize,
    usize,
    *mut T,
    isize,
    isize,
    bool,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    ::gemm::Parallelism,
);

/// The matmuls at an instruction set, per element type (see [`Real::gemm_at`]).
pub(super) mod at_isa {
    use super::Isa;
    gemm_at!(f32, gemm_f32);
    gemm_at!(f64, gemm_f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matmul at every supported instruction set computes the same product as a naive loop,
    /// for strided and transposed views, with and without accumulation, in f32 and f64; and the
    /// capped AVX2 kernels give the same bits as the `gemm` crate's own dispatch where that is
    /// AVX2.
    fn check<E: Real + std::fmt::Debug>(tol: f64) {
        let (m, k, n) = (13, 37, 29);
        let mut next = super::test_values::<E>(7);
        let a: Vec<E> = (0..m * k).map(|_| next()).collect();
        let b: Vec<E> = (0..n * k).map(|_| next()).collect();
        let c0: Vec<E> = (0..m * n).map(|_| next()).collect();
        // a row-major m×k; b stored n×k and read transposed (k×n), as W_hhᵀ is.
        let (av, bv, cv) = (
            View::row_major(m, k),
            View::row_major(n, k).t(),
            View::row_major(m, n),
        );
        for accumulate in [false, true] {
            let want: Vec<f64> = (0..m * n)
                .map(|idx| {
                    let (r, col) = (idx / n, idx % n);
                    let dot: f64 = (0..k)
                        .map(|j| a[r * k + j].to_f64().unwrap() * b[col * k + j].to_f64().unwrap())
                        .sum();
                    dot + if accumulate {
                        c0[idx].to_f64().unwrap()
                    } else {
                        0.0
                    }
                })
                .collect();
            for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                let mut c = c0.clone();
                matmul_at(isa, &mut c, cv, accumulate, &a, av, &b, bv);
                for (idx, (got, w)) in c.iter().zip(&want).enumerate() {
                    let got = got.to_f64().unwrap();
                    assert!(
                        (got - w).abs() <= tol,
                        "{isa:?} acc {accumulate} [{idx}]: {got} vs {w}"
                    );
                }
                if isa == Isa::Avx2 && !Isa::Avx512.supported() {
                    let mut d = c0.clone();
                    matmul(&mut d, cv, accumulate, &a, av, &b, bv);
                    assert_eq!(d, c, "capped AVX2 = the crate's AVX2 dispatch");
                }
            }
        }
    }

    #[test]
    fn every_instruction_set_multiplies_correctly() {
        check::<f32>(1e-5);
        check::<f64>(1e-12);
    }

    /// The weight gradients by blocks of terms ([`matmul_long`]) give the bits of one `gemm`
    /// call, at every supported instruction set, in f32 and f64, NaN and ±inf included: shapes
    /// of the recipes' gradients (some taking `gemm`'s small-matrix blocks of 512), ones it
    /// computes whole (a vector, a tiny product), and one whose last block would be one term.
    #[test]
    fn long_sums_by_blocks_give_the_bits_of_one_call() {
        fn check<E: Real + std::fmt::Debug>() {
            // (m, n, k): the gates·hidden × input gradient over k rows, dgatesᵀ · v.
            let blocked = [
                (256, 64, 3000),
                (100, 100, 2700),
                (80, 20, 2700),
                (128, 28, 2800),
            ];
            let small = [(64, 64, 1500), (40, 30, 1100)];
            let whole = [(128, 1, 3000), (7, 9, 2000), (64, 64, 1025)];
            let mut next = super::super::test_values::<E>(11);
            for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                let mut split = 0;
                for (m, n, k) in blocked.into_iter().chain(small).chain(whole) {
                    let mut a: Vec<E> = (0..k * m).map(|_| next()).collect();
                    let b: Vec<E> = (0..k * n).map(|_| next()).collect();
                    a[5] = E::nan();
                    a[k * m / 2] = E::infinity();
                    a[k * m - 3] = E::neg_infinity();
                    let (cv, av, bv) = (
                        View::row_major(m, n),
                        View::row_major(k, m).t(),
                        View::row_major(k, n),
                    );
                    let mut want = vec![E::zero(); m * n];
                    matmul_at(isa, &mut want, cv, false, &a, av, &b, bv);
                    let mut got = vec![E::one(); m * n];
                    matmul_long_at(isa, 0, &mut got, cv, &a, av, &b, bv);
                    let same = got.iter().zip(&want).all(|(x, y)| {
                        x.to_f64().unwrap().to_bits() == y.to_f64().unwrap().to_bits()
                    });
                    assert!(same, "{isa:?} {m}×{n} over {k}: not gemm's bits");
                    assert!(want.iter().any(|v| v.is_nan()), "NaN propagates");
                    if E::gemm_depth()(isa, m, n, k).is_some_and(|kc| kc < k) {
                        split += 1;
                    }
                }
                // Every `blocked` and `small` shape (and the last `whole` one, which falls back
                // for its one-term last block) sums in several blocks: the test compares the
                // blocked computation, not one call with itself.
                assert_eq!(split, blocked.len() + small.len() + 1, "{isa:?}");
            }
        }
        check::<f32>();
        check::<f64>();
    }

    /// The one-feature gradients in one pass give the bits of the matmul and the row sums, at
    /// every supported instruction set with FMA, in f32 and f64, for widths with and without a
    /// partial vector, with NaN, ±inf and -0 among the values.
    #[test]
    fn one_feature_gradients_give_the_matmuls_bits() {
        fn check<E: Real + std::fmt::Debug>() {
            let mut next = super::super::test_values::<E>(5);
            let mut tried = 0;
            for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
                for (n, g) in [(3000, 256), (700, 60), (50, 17), (3, 3), (2, 40)] {
                    let mut d: Vec<E> = (0..n * g).map(|_| next()).collect();
                    let mut x: Vec<E> = (0..n).map(|_| next()).collect();
                    d[0] = -E::zero();
                    d[g / 2] = E::nan();
                    d[n * g - 1] = E::infinity();
                    x[n / 2] = E::neg_infinity();
                    let mut w = vec![E::zero(); g];
                    let (wv, dv, xv) = (
                        View::row_major(g, 1),
                        View::row_major(n, g).t(),
                        View::row_major(n, 1),
                    );
                    matmul_at(isa, &mut w, wv, false, &d, dv, &x, xv);
                    let mut bias = vec![E::zero(); g];
                    for row in d.chunks_exact(g) {
                        super::super::add_into(&mut bias, row);
                    }
                    let Some((got_w, got_b)) = one_feature_grads(isa, &d, &x, g) else {
                        assert!(!fma_kernels(isa) || n <= 2, "{isa:?} {n}×{g}");
                        continue;
                    };
                    let bits = |v: &[E]| -> Vec<u64> {
                        v.iter().map(|e| e.to_f64().unwrap().to_bits()).collect()
                    };
                    assert_eq!(bits(&got_w), bits(&w), "{isa:?} {n}×{g}: W_ih's gradient");
                    assert_eq!(bits(&got_b), bits(&bias), "{isa:?} {n}×{g}: the bias's");
                    tried += 1;
                }
            }
            assert!(tried >= 4, "at least one set with FMA");
        }
        check::<f32>();
        check::<f64>();
    }
}
