//! The per-step matmuls of the fused layers (`h·W_hhᵀ` forward, `dgates·W_hh` backward): small
//! products of row-major matrices, computed by register-blocked AVX-512/AVX2 kernels that read
//! the weights in place. With AVX2 the same kernels also compute the products over all steps'
//! rows whose sums are at most 512 terms (the input projection, the input's gradient), where
//! they beat `gemm` ([`all_rows_product`]); and, at both sets, most weight gradients, in
//! `gemm`'s blocks of terms ([`weight_grad`]).
//!
//! Per call `gemm` decides its blocking, may copy the weights into its packed layout, and
//! handles a row-major product as its transpose. Here each tile of R rows × V vectors of the
//! product keeps its sums in registers while it walks k, loading a row of B and broadcasting A's
//! values. Alone on one thread (a Xeon; 64×64×256 to 100×100×100) they ran at 170–220 GFLOP/s
//! with AVX-512 (150–200 on a later day, at a lower clock), where `gemm` got 170–195, and at
//! 110–120 with AVX2. They always run on the calling thread: with more matmul threads
//! (`--threads`) the large products still use them.
//!
//! **Same bits as `gemm`.** Every product value is one chain of fused multiply-adds over k in
//! order, starting from +0, then added to the destination (`fma(1, acc, dst)` in `gemm`, the same
//! rounding as `acc + dst`) or stored. `gemm`'s microkernels do exactly that as long as they do
//! not split k, which they do only beyond 512 (`kc = k.min(512)` for small products, at least
//! 512 from `kernel_params` otherwise), so this kernel takes products with 3 ≤ k ≤ 512 and at
//! least two rows and columns (`gemm` has other code for vectors and k ≤ 2), in f32, at AVX2 or
//! AVX-512; everything else goes to `gemm`. A test compares the two bit for bit.

use super::*;

use super::gemm::{matmul, View};

/// Products with k beyond this go to `gemm` (which splits k there).
const MAX_K: usize = 512;

/// c (m×n) = [c +] a (m×k) · b (k×n), row-major, c and a contiguous, b's rows `ldb` values
/// apart (see [`row_stride`]): by this module's kernel where it takes the product (see the
/// module doc), else by `gemm`; the same bits either way.
pub(super) fn product<E: Real>(
    c: &mut [E],
    accumulate: bool,
    a: &[E],
    b: &[E],
    ldb: usize,
    (m, k, n): (usize, usize, usize),
) {
    if !try_kernel(c, accumulate, a, b, ldb, (m, k, n)) {
        let bv = View {
            rows: k,
            cols: n,
            rs: ldb,
            cs: 1,
        };
        matmul(
            c,
            View::row_major(m, n),
            accumulate,
            a,
            View::row_major(m, k),
            b,
            bv,
        );
    }
}

/// The row stride of a weight matrix with rows of `n` values that the kernels keep and read
/// row after row: n, or one cache line more where n values are a multiple of 512 bytes. Rows a
/// power of two apart share few L1 sets, and a block of them does not stay in L1: W_hhᵀ of an
/// LSTM h64 (rows of 256 f32, 1 KiB) was read at 147 GFLOP/s, at 193 with rows of 272 values
/// (64×64×256, accumulating, alone on one thread).
pub(super) fn row_stride<E: Real>(n: usize) -> usize {
    let size = std::mem::size_of::<E>();
    if (n * size).is_multiple_of(512) {
        n + 64 / size
    } else {
        n
    }
}

/// `w` (rows × cols, contiguous) with its rows [`row_stride`] apart, for the kernels (the padding
/// is zeros and never read).
pub(super) fn strided_rows<E: Real>(w: &[E], rows: usize, cols: usize) -> Vec<E> {
    let ld = row_stride::<E>(cols);
    let mut out = vec![E::zero(); rows * ld];
    for (dst, src) in out.chunks_exact_mut(ld).zip(w.chunks_exact(cols)) {
        dst[..cols].copy_from_slice(src);
    }
    out
}

/// c (m×n) = [c +] a (m×k) · B for the products over all steps' rows (m in the thousands, the
/// input projection x·W_ihᵀ and the input's gradient dgates·W_ih), B the weight `w` (k×n,
/// row-major) or with `transpose` its transpose (`w` n×k). With AVX2 by this module's kernel
/// (from a copy of B laid out for it), which beats `gemm` there: `gemm`'s packing took about 9 %
/// of an AVX2 step of model_b, and side by side the kernel made lstm_h64 12 % faster, model_b
/// 4.7 %, rnnimc 6.5 %. With AVX-512 `gemm` stays (the kernel made lstm_h64 3.7 % slower), and
/// with more than one matmul thread (the kernel runs on the calling thread only). The same
/// bits either way.
pub(super) fn all_rows_product<E: Real>(
    c: &mut [E],
    accumulate: bool,
    a: &[E],
    w: &[E],
    transpose: bool,
    dims: (usize, usize, usize),
) {
    all_rows_at(Isa::for_matmul(), c, accumulate, a, w, transpose, dims)
}

/// [`all_rows_product`] as at instruction set `isa` (the kernel's, where it is AVX2).
fn all_rows_at<E: Real>(
    isa: Isa,
    c: &mut [E],
    accumulate: bool,
    a: &[E],
    w: &[E],
    transpose: bool,
    (m, k, n): (usize, usize, usize),
) {
    if isa == Isa::Avx2 && rayon::current_num_threads() == 1 {
        let b = if transpose {
            transposed(w, n, k)
        } else {
            strided_rows(w, k, n)
        };
        product(c, accumulate, a, &b, row_stride::<E>(n), (m, k, n));
        pool::recycle(b);
    } else {
        let bv = if transpose {
            View::row_major(n, k).t()
        } else {
            View::row_major(k, n)
        };
        matmul(
            c,
            View::row_major(m, n),
            accumulate,
            a,
            View::row_major(m, k),
            w,
            bv,
        );
    }
}

/// W_hhᵀ (h×g, rows [`row_stride`] apart) of W_hh (g×h), for [`add_recurrent`].
///
/// Given W_hh itself, `gemm` copies it into its packed layout in every step's call (its
/// microkernel wants the g rows contiguous for each k: a strided, scalar gather of the whole
/// matrix); this module's kernel wants B row-major. Given this transposed copy, made once per
/// pass, both read the weights in place. The products are the same bits: packing only moves
/// values, and `gemm`'s blocking depends on the shapes alone.
pub(super) fn recurrent_weights<E: Real>(w_hh: &[E], d: Dims) -> Vec<E> {
    transposed(w_hh, d.g, d.h)
}

/// Wᵀ (cols×rows) of W (rows×cols, contiguous), its rows [`row_stride`] apart, for the kernels'
/// B: W_hhᵀ per step, W_ihᵀ for the input projection.
pub(super) fn transposed<E: Real>(w: &[E], rows: usize, cols: usize) -> Vec<E> {
    let ld = row_stride::<E>(rows);
    let mut t = pool::overwritten(cols * ld);
    // In blocks of 16 rows of W: each output row gets 16 contiguous values at a time, where a
    // row-by-row walk wrote every value to another cache line.
    for r0 in (0..rows).step_by(16) {
        let block = r0..(r0 + 16).min(rows);
        for k in 0..cols {
            for r in block.clone() {
                t[k * ld + r] = w[r * cols + k];
            }
        }
    }
    t
}

/// dst (b×g) += h_prev (b×h) · W_hhᵀ: the recurrent term of one step, given W_hhᵀ from
/// [`recurrent_weights`].
pub(super) fn add_recurrent<E: Real>(dst: &mut [E], h_prev: &[E], w_hh_t: &[E], d: Dims) {
    product(
        dst,
        true,
        h_prev,
        w_hh_t,
        row_stride::<E>(d.g),
        (d.b, d.h, d.g),
    );
}

/// c (m×n) = aᵀ·b for a weight gradient, a (k×m) and b (k×n) row-major: the gate gradients
/// and the layer's input or previous states, one term per row of every step (k in the
/// thousands). By this module's kernel, reading a's rows in place as columns, one call per
/// block of terms `gemm` would sum in one chain (its `kc`, [`Real::gemm_depth`]), the first
/// stored and the others added: exactly `gemm`'s computation, so its bits. False (c untouched)
/// where `gemm` should compute it: not f32, no kernel at this set, more than one matmul thread,
/// a product `gemm` computes another way (`gemm_depth` is None), operands beyond the caches
/// (`gemm::matmul_long` fetches those block by block), or a shape [`wins_over_gemm`] leaves to
/// it.
pub(super) fn weight_grad<E: Real>(
    c: &mut [E],
    a: &[E],
    b: &[E],
    (m, k, n): (usize, usize, usize),
) -> bool {
    let isa = Isa::for_matmul();
    wins_over_gemm(isa, m, n) && weight_grad_by_kernel(isa, c, a, b, (m, k, n))
}

/// [`weight_grad`] at instruction set `isa`, whatever the shape's speed ([`wins_over_gemm`]).
fn weight_grad_by_kernel<E: Real>(
    isa: Isa,
    c: &mut [E],
    a: &[E],
    b: &[E],
    (m, k, n): (usize, usize, usize),
) -> bool {
    if !isa.supported()
        || isa == Isa::Baseline
        || rayon::current_num_threads() != 1
        || (m + n) * k * std::mem::size_of::<E>() >= BEYOND_CACHE_BYTES
    {
        return false;
    }
    let Some((c, a, b)) = as_f32(c, a, b) else {
        return false;
    };
    let Some(kc) = f32::gemm_depth()(isa, m, n, k) else {
        return false;
    };
    assert!(c.len() >= m * n && a.len() >= k * m && b.len() >= k * n);
    let mut at = 0;
    while at < k {
        let len = kc.min(k - at);
        let took = kernel(
            isa,
            c,
            at > 0,
            &a[at * m..],
            true,
            &b[at * n..],
            n,
            (m, len, n),
        );
        assert!(took, "a kernel at {isa:?}");
        at += len;
    }
    true
}

/// Whether the kernel computes an m×n weight gradient faster than `gemm` at `isa`, as measured
/// alone on one thread (AMD EPYC Zen 5, the recipes' and other layers' shapes, k 1,728 to
/// 2,800). With AVX-512 it was faster or within 2 % on every shape (100×28 +17 %, 256×28
/// +16 %, 80×20 +17 %, 100×100 +3 to +5 %, 256×64 +4 %, 192×64 +6 %; 128×128 −1.5 %, 400×100
/// −1.8 %). With AVX2, `gemm`'s microkernel covers 16 rows at a time: where m is a multiple
/// of 16 and n narrow (the input's 28 features, h 20) `gemm` was faster (256×28 −19 %, 128×28
/// −11 %, 80×28 −11 %, 80×20 −20 %), as where m is large (400×100 −7 %); elsewhere the kernel
/// (100×100 +12 %, 100×28 +17 %, 256×64 +10 %, 192×64 +13 %; 128×128 −1 %).
fn wins_over_gemm(isa: Isa, m: usize, n: usize) -> bool {
    match isa {
        Isa::Avx512 => true,
        Isa::Avx2 => m <= 256 && (n >= 64 || !m.is_multiple_of(16)),
        Isa::Baseline => false,
    }
}

/// c (m×n) = [c +] a (m×k) · b (k×n) by the kernel of the widest allowed instruction set; false
/// (c untouched) when the kernel does not take the product, for [`product`] to use `gemm`.
fn try_kernel<E: Real>(
    c: &mut [E],
    accumulate: bool,
    a: &[E],
    b: &[E],
    ldb: usize,
    (m, k, n): (usize, usize, usize),
) -> bool {
    if !(3..=MAX_K).contains(&k) || m < 2 || n < 2 {
        return false;
    }
    let Some((c, a, b)) = as_f32(c, a, b) else {
        return false;
    };
    kernel(
        Isa::for_matmul(),
        c,
        accumulate,
        a,
        false,
        b,
        ldb,
        (m, k, n),
    )
}

/// The product's slices as f32 slices, the kernels' type; None where E is another type.
fn as_f32<'a, E: Real>(
    c: &'a mut [E],
    a: &'a [E],
    b: &'a [E],
) -> Option<(&'a mut [f32], &'a [f32], &'a [f32])> {
    if std::any::TypeId::of::<E>() != std::any::TypeId::of::<f32>() {
        return None;
    }
    // SAFETY: E is f32 (checked above), so the slices are the same memory as f32 slices.
    Some(unsafe {
        (
            &mut *(c as *mut [E] as *mut [f32]),
            &*(a as *const [E] as *const [f32]),
            &*(b as *const [E] as *const [f32]),
        )
    })
}

/// [`try_kernel`] in f32 at `isa`, a m×k row-major, or with `a_t` k×m row-major and read
/// transposed; false where there is no kernel for it (the baseline).
#[allow(clippy::too_many_arguments)]
fn kernel(
    isa: Isa,
    c: &mut [f32],
    accumulate: bool,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    ldb: usize,
    (m, k, n): (usize, usize, usize),
) -> bool {
    assert!(ldb >= n && c.len() >= m * n && a.len() >= m * k && b.len() >= (k - 1) * ldb + n);
    #[cfg(target_arch = "x86_64")]
    {
        type Driver =
            unsafe fn(*mut f32, bool, *const f32, bool, *const f32, usize, (usize, usize, usize));
        let driver: Option<Driver> = match isa {
            Isa::Avx512 if isa.supported() => Some(x86::avx512),
            Isa::Avx2 if isa.supported() => Some(x86::avx2),
            _ => None,
        };
        if let Some(run) = driver {
            // SAFETY: the CPU has the driver's instruction set (`supported`); the slices hold
            // the matrices (asserted above) and c overlaps neither a nor b (distinct borrows).
            unsafe {
                run(
                    c.as_mut_ptr(),
                    accumulate,
                    a.as_ptr(),
                    a_t,
                    b.as_ptr(),
                    ldb,
                    (m, k, n),
                )
            };
            return true;
        }
    }
    let _ = (isa, c, accumulate, a, a_t, b, ldb, m, k, n);
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// One tile: rows `R` × vectors `V` of the product at `c`; with `MASKED` the last vector
    /// holds only the lanes of `mask`. The vector type, its lanes and its operations are given
    /// as expressions over names the caller picks (closures would not inherit the target
    /// features). `MASKED` is a constant so that full tiles test nothing inside the k loop and
    /// keep every register for sums (a runtime test there spilled a sum to the stack).
    macro_rules! tile_fn {
        ($name:ident, $feat:literal, $vec:ty, $mask:ty, $lanes:expr, zero = $zero:expr,
         load($lp:ident) = $load:expr, load_masked($mp:ident, $mm:ident) = $load_masked:expr,
         bcast($bp:ident) = $bcast:expr, fma($x:ident, $y:ident, $z:ident) = $fma:expr,
         add($ax:ident, $ay:ident) = $add:expr, store($sp:ident, $sv:ident) = $store:expr,
         store_masked($tp:ident, $tm:ident, $tv:ident) = $store_masked:expr) => {
            #[target_feature(enable = $feat)]
            #[allow(clippy::too_many_arguments)]
            #[inline]
            unsafe fn $name<const R: usize, const V: usize, const MASKED: bool, const AT: bool>(
                c: *mut f32,
                ldc: usize,
                accumulate: bool,
                a: *const f32,
                lda: usize,
                b: *const f32,
                ldb: usize,
                k: usize,
                mask: $mask,
            ) {
                let masked = |v: usize| MASKED && v + 1 == V;
                let mut acc: [[$vec; V]; R] = [[$zero; V]; R];
                for kk in 0..k {
                    let row = b.add(kk * ldb);
                    let mut bv: [$vec; V] = [$zero; V];
                    for (v, slot) in bv.iter_mut().enumerate() {
                        *slot = if masked(v) {
                            let ($mp, $mm) = (row.add(v * $lanes), mask);
                            $load_masked
                        } else {
                            let $lp = row.add(v * $lanes);
                            $load
                        };
                    }
                    for (r, sums) in acc.iter_mut().enumerate() {
                        let av = {
                            let $bp = if AT {
                                a.add(kk * lda + r)
                            } else {
                                a.add(r * lda + kk)
                            };
                            $bcast
                        };
                        for (s, &bvv) in sums.iter_mut().zip(&bv) {
                            let ($x, $y, $z) = (av, bvv, *s);
                            *s = $fma;
                        }
                    }
                }
                for (r, sums) in acc.iter().enumerate() {
                    for (v, &sum) in sums.iter().enumerate() {
                        let p = c.add(r * ldc + v * $lanes);
                        let out = if accumulate {
                            let old = if masked(v) {
                                let ($mp, $mm) = (p as *const f32, mask);
                                $load_masked
                            } else {
                                let $lp = p as *const f32;
                                $load
                            };
                            let ($ax, $ay) = (sum, old);
                            $add
                        } else {
                            sum
                        };
                        if masked(v) {
                            let ($tp, $tm, $tv) = (p, mask, out);
                            $store_masked;
                        } else {
                            let ($sp, $sv) = (p, out);
                            $store;
                        }
                    }
                }
            }
        };
    }

    tile_fn!(
        tile512,
        "avx512f",
        __m512,
        u16,
        16,
        zero = _mm512_setzero_ps(),
        load(p) = _mm512_loadu_ps(p),
        load_masked(p, m) = _mm512_maskz_loadu_ps(m, p),
        bcast(p) = _mm512_set1_ps(*p),
        fma(x, y, z) = _mm512_fmadd_ps(x, y, z),
        add(x, y) = _mm512_add_ps(x, y),
        store(p, v) = _mm512_storeu_ps(p, v),
        store_masked(p, m, v) = _mm512_mask_storeu_ps(p, m, v)
    );

    tile_fn!(
        tile256,
        "avx2,fma",
        __m256,
        __m256i,
        8,
        zero = _mm256_setzero_ps(),
        load(p) = _mm256_loadu_ps(p),
        load_masked(p, m) = _mm256_maskload_ps(p, m),
        bcast(p) = _mm256_broadcast_ss(&*p),
        fma(x, y, z) = _mm256_fmadd_ps(x, y, z),
        add(x, y) = _mm256_add_ps(x, y),
        store(p, v) = _mm256_storeu_ps(p, v),
        store_masked(p, m, v) = _mm256_maskstore_ps(p, m, v)
    );

    /// The AVX-512 mask of the first `n` lanes.
    #[inline(always)]
    fn mask512(n: usize) -> u16 {
        ((1u32 << n) - 1) as u16
    }

    /// The AVX2 mask of the first `n` lanes, as `maskload`/`maskstore` take it.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn mask256(n: usize) -> __m256i {
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx)
    }

    /// The bytes of A's rows that one panel of [`driver!`] keeps for all column blocks, where A
    /// is larger than [`ONE_PANEL_BYTES`].
    const PANEL_BYTES: usize = 16 << 10;

    /// Up to this size A is one panel: the per-step products (a batch of states, at most 64
    /// KiB for 128 rows of 128) keep their order of tiles; the products over all steps' rows
    /// (thousands of rows, from 200 KiB) go by panels.
    const ONE_PANEL_BYTES: usize = 64 << 10;

    /// The rows of A (m×k) in one panel of [`driver!`]: all of them up to [`ONE_PANEL_BYTES`],
    /// else [`PANEL_BYTES`] of them in whole tiles of `rmax` rows.
    #[inline(always)]
    fn panel_rows(m: usize, k: usize, rmax: usize) -> usize {
        if m * k * 4 <= ONE_PANEL_BYTES {
            m
        } else {
            (PANEL_BYTES / (k * 4) / rmax).max(1) * rmax
        }
    }

    /// The product tile by tile: panels of A's rows ([`panel_rows`]), in each column blocks of
    /// up to `VMAX` vectors, and in each row blocks of up to `RMAX` rows (the block of B stays
    /// in L1 across them, and the panel of A across the column blocks). Without panels a
    /// product over all steps' rows read A from beyond L1 once per column block: by panels,
    /// alone on one thread (AMD EPYC Zen 3, 32 KiB of L1, AVX2, best of 200 calls each,
    /// alternating), 2800×100×100 ran 6.4 % faster, 2800×28×100 7.5 %, 1792×128×128 5.5 %,
    /// 1792×28×256 4.3 %, 2800×100×28 1.7 %, 1792×64×28 0.7 %.
    macro_rules! driver {
        ($name:ident, $feat:literal, $tile:ident, $maskfn:ident, $lanes:expr, $rmax:expr,
         $vmax:expr, [$($r:literal),*], [$($v:literal),*]) => {
            #[target_feature(enable = $feat)]
            pub(super) unsafe fn $name(
                c: *mut f32,
                accumulate: bool,
                a: *const f32,
                a_t: bool,
                b: *const f32,
                ldb: usize,
                (m, k, n): (usize, usize, usize),
            ) {
                let panel = if a_t { m } else { panel_rows(m, k, $rmax) };
                let mut i0 = 0;
                while i0 < m {
                    let end = (i0 + panel).min(m);
                    let mut j = 0;
                    while j < n {
                        let w = ($vmax * $lanes).min(n - j);
                        let vecs = w.div_ceil($lanes);
                        let rem = w - (vecs - 1) * $lanes;
                        let masked = rem != $lanes;
                        let mask = $maskfn(rem);
                        let mut i = i0;
                        while i < end {
                            let rows = ($rmax).min(end - i);
                            let (cp, bp) = (c.add(i * n + j), b.add(j));
                            let (ap, lda) = if a_t { (a.add(i), m) } else { (a.add(i * k), k) };
                            macro_rules! go {
                                ($rr:literal, $vv:literal) => {
                                    match (masked, a_t) {
                                        (true, false) => $tile::<$rr, $vv, true, false>(
                                            cp, n, accumulate, ap, lda, bp, ldb, k, mask,
                                        ),
                                        (false, false) => $tile::<$rr, $vv, false, false>(
                                            cp, n, accumulate, ap, lda, bp, ldb, k, mask,
                                        ),
                                        (true, true) => $tile::<$rr, $vv, true, true>(
                                            cp, n, accumulate, ap, lda, bp, ldb, k, mask,
                                        ),
                                        (false, true) => $tile::<$rr, $vv, false, true>(
                                            cp, n, accumulate, ap, lda, bp, ldb, k, mask,
                                        ),
                                    }
                                };
                            }
                            macro_rules! by_v {
                                ($rr:literal) => {
                                    match vecs {
                                        $($v => go!($rr, $v),)*
                                        _ => unreachable!("at most {} vectors", $vmax),
                                    }
                                };
                            }
                            match rows {
                                $($r => by_v!($r),)*
                                _ => unreachable!("at most {} rows", $rmax),
                            }
                            i += rows;
                        }
                        j += w;
                    }
                    i0 = end;
                }
            }
        };
    }

    // AVX-512: 6 rows × 4 vectors of 16 = 24 sums in registers, plus 4 of B and 1 of A (of 32).
    driver!(
        avx512,
        "avx512f",
        tile512,
        mask512,
        16,
        6,
        4,
        [1, 2, 3, 4, 5, 6],
        [1, 2, 3, 4]
    );
    // AVX2: 6 rows × 2 vectors of 8 = 12 sums, plus 2 of B and 1 of A (of 16). 4 rows × 3
    // vectors needs the same 12 sums and one register more than there are: LLVM kept a sum on
    // the stack, and the kernel ran at 64 % of the peak.
    driver!(
        avx2,
        "avx2,fma",
        tile256,
        mask256,
        8,
        6,
        2,
        [1, 2, 3, 4, 5, 6],
        [1, 2]
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` test values from `next`.
    fn values(next: &mut impl FnMut() -> f32, len: usize) -> Vec<f32> {
        (0..len).map(|_| next()).collect()
    }

    /// Equal bit for bit, value by value.
    fn same_bits(got: &[f32], want: &[f32]) -> bool {
        got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(x, y)| x.to_bits() == y.to_bits())
    }

    /// Bit for bit the product `gemm` computes, at every instruction set with a kernel, for
    /// shapes that leave remainders of rows, vectors and lanes, with and without accumulation;
    /// NaN and ±inf propagate as there.
    #[test]
    fn the_kernels_give_gemms_bits() {
        let mut next = super::test_values::<f32>(3);
        let mut shapes = vec![(64, 64, 256), (64, 256, 64), (100, 20, 80), (100, 80, 20)];
        for m in [2, 5, 7, 13] {
            for n in [2, 9, 17, 31, 65, 100] {
                for k in [3, 37, 512] {
                    shapes.push((m, k, n));
                }
            }
        }
        let mut tried = 0;
        for (case, &(m, k, n)) in shapes.iter().enumerate() {
            let mut a = values(&mut next, m * k);
            let b = values(&mut next, k * n);
            let c0 = values(&mut next, m * n);
            let mut padded = vec![f32::NAN; k * (n + 16)];
            for (row, src) in padded.chunks_exact_mut(n + 16).zip(b.chunks_exact(n)) {
                row[..n].copy_from_slice(src);
            }
            if case % 7 == 3 {
                a[k + 1] = f32::NAN;
                a[0] = f32::INFINITY;
            }
            for accumulate in [false, true] {
                let mut want = c0.clone();
                matmul(
                    &mut want,
                    View::row_major(m, n),
                    accumulate,
                    &a,
                    View::row_major(m, k),
                    &b,
                    View::row_major(k, n),
                );
                for isa in [Isa::Avx2, Isa::Avx512] {
                    // B contiguous, and with its rows one cache line further apart.
                    for (b, ldb) in [(b.clone(), n), (padded.clone(), n + 16)] {
                        let mut got = c0.clone();
                        if !kernel(isa, &mut got, accumulate, &a, false, &b, ldb, (m, k, n)) {
                            continue;
                        }
                        tried += 1;
                        for (idx, (x, w)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                x.to_bits() == w.to_bits() || (x.is_nan() && w.is_nan()),
                                "{isa:?} {m}×{k}×{n} ldb {ldb} acc {accumulate} [{idx}]: \
                                 {x} vs gemm {w}"
                            );
                        }
                    }
                }
            }
        }
        if Isa::Avx2.supported() {
            assert!(tried >= 4 * shapes.len(), "the kernels ran");
        }
    }

    /// What the kernel does not take goes back to the caller: f64, k beyond 512 or below 3,
    /// a single row or column.
    #[test]
    fn gemm_keeps_the_other_products() {
        let (a, b) = (vec![1.0f32; 2 * 600], vec![1.0f32; 600 * 2]);
        let mut c = vec![0.0f32; 4];
        assert!(!try_kernel(&mut c, false, &a, &b, 2, (2, 600, 2)));
        assert!(!try_kernel(&mut c, false, &a, &b, 2, (2, 2, 2)));
        assert!(!try_kernel(&mut c, false, &a, &b, 2, (1, 3, 2)));
        assert!(!try_kernel(&mut c, false, &a, &b, 1, (2, 3, 1)));
        let mut c64 = vec![0.0f64; 4];
        assert!(!try_kernel(
            &mut c64,
            false,
            &[1.0; 6],
            &[1.0; 6],
            2,
            (2, 3, 2)
        ));
        assert_eq!(c, vec![0.0; 4]);
        let took = try_kernel(&mut c, false, &a, &b, 2, (2, 3, 2));
        assert_eq!(took, Isa::for_matmul() >= Isa::Avx2);
        if took {
            assert_eq!(c, vec![3.0; 4]);
        }
    }

    /// The products over all steps' rows give `gemm`'s bits both ways (the kernel from a copy of
    /// the weight laid out for it, and `gemm` reading the weight), for B = W and B = Wᵀ, with
    /// and without accumulation, rows of a power-of-two length (padded copies) and k beyond 512
    /// (`gemm` either way). On one matmul thread, where the kernel takes them.
    #[test]
    fn all_rows_products_give_gemms_bits() {
        on_one_thread(all_rows_products_give_gemms_bits_here);
    }

    /// Runs `f` on a pool of one matmul thread, where the kernels take the products over all
    /// steps' rows (they run on the calling thread only).
    fn on_one_thread(f: impl FnOnce() + Send) {
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        one.install(f);
    }

    fn all_rows_products_give_gemms_bits_here() {
        let mut next = test_values::<f32>(13);
        for (m, k, n) in [
            (300, 28, 100),
            (300, 100, 100),
            (130, 64, 256),
            (70, 600, 64),
            // By panels of A's rows (`panel_rows`), the last one partial.
            (2000, 28, 100),
            (1000, 100, 37),
        ] {
            let a = values(&mut next, m * k);
            let w = values(&mut next, k * n);
            let c0 = values(&mut next, m * n);
            for (transpose, bv) in [
                (false, View::row_major(k, n)),
                (true, View::row_major(n, k).t()),
            ] {
                for accumulate in [false, true] {
                    let mut want = c0.clone();
                    let cv = View::row_major(m, n);
                    matmul(&mut want, cv, accumulate, &a, View::row_major(m, k), &w, bv);
                    for isa in [Isa::Avx2, Isa::Avx512] {
                        if !isa.supported() || !isa.allowed() {
                            continue;
                        }
                        let mut got = c0.clone();
                        all_rows_at(isa, &mut got, accumulate, &a, &w, transpose, (m, k, n));
                        assert!(
                            same_bits(&got, &want),
                            "{isa:?} {m}×{k}×{n} transpose {transpose} acc {accumulate}"
                        );
                    }
                }
            }
        }
    }

    /// The weight gradients by the kernel, block by block, give the bits of one `gemm` call at
    /// the same instruction set (whose blocks of terms differ between sets), for shapes with
    /// several blocks and a partial last one, remainders of rows, vectors and lanes, NaN and
    /// ±inf; and leave to `gemm` what it computes another way.
    #[test]
    fn weight_gradients_give_gemms_bits() {
        on_one_thread(weight_gradients_give_gemms_bits_here);
    }

    fn weight_gradients_give_gemms_bits_here() {
        use super::super::gemm::matmul_at;
        let mut next = test_values::<f32>(17);
        for (m, k, n) in [
            (100, 2700, 100),
            (100, 2800, 28),
            (256, 1728, 64),
            (80, 2700, 20),
            (37, 1001, 19),
            (6, 700, 70),
        ] {
            let mut a = values(&mut next, k * m);
            let mut b = values(&mut next, k * n);
            a[5 * m + 3] = f32::NAN;
            b[7 * n + 1] = f32::INFINITY;
            if k > 900 {
                a[900 * m + 2] = f32::NEG_INFINITY;
            }
            let (cv, av, bv) = (
                View::row_major(m, n),
                View::row_major(k, m).t(),
                View::row_major(k, n),
            );
            for isa in [Isa::Avx2, Isa::Avx512] {
                if !isa.supported() || !isa.allowed() {
                    continue;
                }
                let mut want = values(&mut next, m * n);
                matmul_at(isa, &mut want, cv, false, &a, av, &b, bv);
                let mut got = values(&mut next, m * n);
                assert!(weight_grad_by_kernel(isa, &mut got, &a, &b, (m, k, n)));
                assert!(
                    same_bits(&got, &want),
                    "{isa:?} {m}×{n} over {k}: {:?}",
                    got.iter()
                        .zip(&want)
                        .position(|(x, y)| x.to_bits() != y.to_bits())
                );
                assert!(got[3 * n..4 * n].iter().all(|x| x.is_nan()));
            }
        }
        // gemm's small-product path (m·n ≤ 256) stays with gemm.
        let mut c = vec![0f32; 10 * 20];
        let (a, b) = (vec![1f32; 500 * 10], vec![1f32; 500 * 20]);
        assert!(!weight_grad_by_kernel(
            Isa::for_matmul(),
            &mut c,
            &a,
            &b,
            (10, 500, 20)
        ));
    }

    /// The step's recurrent term from the transposed copy of W_hh gives the same bits as the
    /// matmul reading W_hh itself (which `gemm` packs), at sizes that leave remainders.
    #[test]
    fn transposed_recurrent_weights_give_the_same_bits() {
        let mut next = test_values::<f32>(11);
        for (b, h, gates) in [
            (5, 37, 4),
            (64, 64, 4),
            (100, 20, 3),
            (64, 128, 1),
            (3, 200, 4),
        ] {
            let d = Dims {
                n: b,
                b,
                i: 1,
                h,
                g: gates * h,
            };
            let h_prev = values(&mut next, b * h);
            let w_hh = values(&mut next, d.g * h);
            let c0 = values(&mut next, b * d.g);
            let t = recurrent_weights(&w_hh, d);
            let ld = row_stride::<f32>(d.g);
            for k in 0..h {
                for r in 0..d.g {
                    assert_eq!(t[k * ld + r], w_hh[r * h + k]);
                }
            }
            let mut want = c0.clone();
            matmul(
                &mut want,
                View::row_major(b, d.g),
                true,
                &h_prev,
                View::row_major(b, h),
                &w_hh,
                View::row_major(d.g, h).t(),
            );
            let mut got = c0.clone();
            add_recurrent(&mut got, &h_prev, &t, d);
            assert!(same_bits(&got, &want), "b {b} h {h} gates {gates}");
        }
    }
}
