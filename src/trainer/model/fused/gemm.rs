//! Matmuls of the fused layers: strided views over host buffers, multiplied by the `gemm`
//! crate on the current rayon pool's threads (AVX-512 kernels where the CPU has them).

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

/// c (m×n) = [c +] a (m×k) · b (k×n), bounds-checked, on the current rayon pool's threads.
pub(super) fn matmul<E: Real>(
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
        ::gemm::gemm(
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

/// dst (b×g) += h_prev (b×h) · W_hhᵀ: the recurrent term of one step.
pub(super) fn add_recurrent<E: Real>(dst: &mut [E], h_prev: &[E], w_hh: &[E], d: Dims) {
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
