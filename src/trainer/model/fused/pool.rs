//! Reuse of the fused layers' large buffers between training steps on one thread.
//!
//! A layer's forward pass fills buffers of (steps·batch × gates·hidden) values, 98 MiB for an
//! LSTM h128 reading 784 pixels in batches of 64. Allocations that large are fresh memory maps
//! every time, and the kernel's page faults on first touch cost about 7 % of such a step (perf).
//! The backward pass hands its buffers back here, and the next step's forward pass takes them
//! again, as they were: only for buffers whose every value is written before it is read
//! ([`overwritten`]), which saves zeroing them. Buffers under 256 KiB are left to the allocator. Keeping buffers from 256 KiB (not only from 4 MiB) and
//! not zeroing the overwritten ones made the tutorial recipes 2–9 % faster (`bench --compare`).

use std::cell::RefCell;
use std::mem::size_of;

use super::Real;

/// Buffers below this size are not kept.
const MIN_BYTES: usize = 256 << 10;
/// At most this many buffers are kept per thread and element type: a step of a 2-layer LSTM or
/// GRU uses about 10.
const MAX_KEPT: usize = 16;

/// The kept buffers of one element type on one thread.
pub type Pool<E> = RefCell<Vec<Vec<E>>>;

/// `len` values to be overwritten: a kept buffer as it was left (stale values of an earlier
/// step, never uninitialized memory) when there is one, else zeros. Only for buffers whose every
/// value is written before it is read; it saves zeroing them (memset took 5–7 % of a training
/// step of the tutorial recipes, perf).
pub(super) fn overwritten<E: Real>(len: usize) -> Vec<E> {
    match kept(len) {
        Some(mut v) => {
            v.truncate(len);
            v.resize(len, E::zero());
            v
        }
        None => vec![E::zero(); len],
    }
}

/// The kept buffer of the smallest capacity of at least `len`, taken out of the pool.
fn kept<E: Real>(len: usize) -> Option<Vec<E>> {
    if len * size_of::<E>() < MIN_BYTES {
        return None;
    }
    E::pool().with(|p| {
        let mut p = p.borrow_mut();
        let best = (0..p.len())
            .filter(|&k| p[k].capacity() >= len)
            .min_by_key(|&k| p[k].capacity());
        best.map(|k| p.swap_remove(k))
    })
}

/// Keeps `v` for a later [`overwritten`] on this thread; the smallest kept buffer is freed when more
/// than [`MAX_KEPT`] are kept.
pub(super) fn recycle<E: Real>(v: Vec<E>) {
    if v.capacity() * size_of::<E>() < MIN_BYTES {
        return;
    }
    E::pool().with(|p| {
        let mut p = p.borrow_mut();
        p.push(v);
        if p.len() > MAX_KEPT {
            let smallest = (0..p.len()).min_by_key(|&k| p[k].capacity());
            if let Some(k) = smallest {
                p.swap_remove(k);
            }
        }
    });
}

/// How many buffers this thread keeps for `E` (tests).
#[cfg(test)]
pub(super) fn kept_count<E: Real>() -> usize {
    E::pool().with(|p| p.borrow().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_comes_back_and_small_ones_are_not_kept() {
        let big = (MIN_BYTES / 4) + 10;
        let mut v: Vec<f32> = overwritten(big);
        assert!(v.iter().all(|&x| x == 0.0), "a new buffer is zeros");
        v.iter_mut().for_each(|x| *x = 7.0);
        let ptr = v.as_ptr();
        recycle(v);
        assert_eq!(kept_count::<f32>(), 1);
        let mut w: Vec<f32> = overwritten(big - 5);
        assert_eq!(w.as_ptr(), ptr, "the same memory, reused");
        assert_eq!(w.len(), big - 5);
        assert!(w.iter().all(|&x| x == 7.0), "as it was left, not zeroed");
        assert_eq!(kept_count::<f32>(), 0);
        recycle(vec![1.0f32; 16]);
        assert_eq!(
            kept_count::<f32>(),
            0,
            "small buffers are left to the allocator"
        );
        // Grown back to its capacity: the values past the shorter length are zeros, never
        // uninitialized memory.
        w.truncate(big - 10);
        recycle(w);
        let y: Vec<f32> = overwritten(big);
        assert_eq!(y.as_ptr(), ptr);
        assert!(y[..big - 10].iter().all(|&x| x == 7.0));
        assert!(y[big - 10..].iter().all(|&x| x == 0.0));
        // A request larger than every kept buffer is a new allocation.
        recycle(y);
        let x: Vec<f32> = overwritten(big + 1);
        assert_eq!(x.len(), big + 1);
        assert_ne!(x.as_ptr(), ptr);
        assert_eq!(kept_count::<f32>(), 1);
        for _ in 0..MAX_KEPT + 3 {
            recycle(vec![0.0f32; big]);
        }
        assert_eq!(kept_count::<f32>(), MAX_KEPT);
    }
}
