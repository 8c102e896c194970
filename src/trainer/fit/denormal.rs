//! Subnormal floats on the CPU: the `flush_denormal` setting of a run, PyTorch's
//! `torch.set_flush_denormal(True)`.
//!
//! Without it (the default, as in PyTorch) the CPU computes with subnormal numbers (magnitude
//! below 1.18e-38 in f32) exactly as IEEE 754 says. Back-propagating through many time steps
//! (784 for pixel-by-pixel MNIST) shrinks most gradients into that range, and x86 CPUs handle
//! subnormal operands and results in microcode, many times slower than normal ones: measured
//! here, the backward pass of an LSTM h128 over 784 steps runs about four times slower than
//! with flushing. With it, the thread's MXCSR gets torch's two bits: FTZ (subnormal results
//! become ±0) and DAZ (subnormal inputs are read as ±0), exactly what `set_flush_denormal(True)`
//! sets (aten/src/ATen/cpu/FlushDenormal.cpp). The results then differ from the default only
//! where a value below 1.18e-38 was involved.
//!
//! The setting is the calling thread's and every thread of the current rayon pool (the
//! matmul threads), for as long as the [`FloatMode`] guard lives, and is restored when it is
//! dropped (also on panic). GPU kernels are not affected, as in PyTorch. Other architectures
//! than x86-64 refuse `flush_denormal = true` instead of silently ignoring it (PyTorch
//! returns `False` there and computes with subnormals).

use crate::error::ConfigError;

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = 0x8040;

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stmxcsr stores the 4-byte MXCSR register at the given address, a live u32.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags));
    }
    v
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(v: u32) {
    // SAFETY: ldmxcsr loads MXCSR from a live u32; callers only change the FTZ and DAZ bits of
    // a value read from the register, so no reserved bit is set (which would fault).
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly, preserves_flags));
    }
}

/// Sets (or clears) FTZ and DAZ on the current thread; returns the previous MXCSR.
#[cfg(target_arch = "x86_64")]
fn set_this_thread(flush: bool) -> u32 {
    let old = read_mxcsr();
    let new = if flush { old | FTZ_DAZ } else { old & !FTZ_DAZ };
    if new != old {
        write_mxcsr(new);
    }
    old
}

/// Whether the current thread flushes subnormals now.
pub fn flushing() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        read_mxcsr() & FTZ_DAZ == FTZ_DAZ
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The subnormal mode of a run, in force while this guard lives.
#[must_use = "the mode is restored when the guard is dropped"]
pub struct FloatMode {
    /// The previous FTZ/DAZ state of the pool's threads, restored on drop (`None`: unchanged).
    #[cfg(target_arch = "x86_64")]
    restore: Option<bool>,
}

impl FloatMode {
    /// Puts the calling thread and the current rayon pool's threads in the mode `flush` asks
    /// for: torch's flush-to-zero when true, IEEE subnormals (PyTorch's default) when false,
    /// whatever a previous run on these threads left.
    pub fn enter(flush: bool) -> Result<FloatMode, ConfigError> {
        #[cfg(target_arch = "x86_64")]
        {
            let before = set_this_thread(flush) & FTZ_DAZ == FTZ_DAZ;
            rayon::broadcast(|_| set_this_thread(flush));
            Ok(FloatMode {
                restore: (before != flush).then_some(before),
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            if flush {
                return Err(ConfigError::new(
                    "flush_denormal",
                    true,
                    "flushing subnormal numbers is supported on x86-64 CPUs only; remove the key",
                ));
            }
            Ok(FloatMode {})
        }
    }
}

impl Drop for FloatMode {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if let Some(before) = self.restore {
            set_this_thread(before);
            rayon::broadcast(|_| set_this_thread(before));
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// The smallest positive normal f32 halved: a subnormal.
    const SUB: f32 = f32::MIN_POSITIVE / 2.0;

    #[test]
    fn flush_sets_torch_semantics_on_the_pool_and_restores_them() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            assert!(!flushing(), "threads start with IEEE subnormals");
            // IEEE: a subnormal survives arithmetic (PyTorch's default).
            assert_eq!(black_box(SUB) * black_box(1.0f32), SUB);
            assert_eq!(black_box(f32::MIN_POSITIVE) * black_box(0.5f32), SUB);
            {
                let _mode = FloatMode::enter(true).unwrap();
                assert!(flushing());
                // DAZ: a subnormal input reads as zero; FTZ: a subnormal result becomes zero.
                assert_eq!(black_box(SUB) * black_box(1.0f32), 0.0);
                assert_eq!(black_box(f32::MIN_POSITIVE) * black_box(0.5f32), 0.0);
                assert_eq!(black_box(-f32::MIN_POSITIVE) * black_box(0.5f32), -0.0);
                // Normal numbers, NaN and infinities are untouched.
                assert_eq!(
                    black_box(f32::MIN_POSITIVE) * black_box(1.0f32),
                    f32::MIN_POSITIVE
                );
                assert!((black_box(f32::NAN) * black_box(0.0f32)).is_nan());
                assert_eq!(black_box(f32::INFINITY) * black_box(2.0f32), f32::INFINITY);
                // Every thread of the pool flushes, not only this one.
                let all = rayon::broadcast(|_| flushing());
                assert_eq!(all, vec![true, true]);
                let sums = rayon::broadcast(|_| black_box(SUB) + black_box(0.0f32));
                assert_eq!(sums, vec![0.0, 0.0]);
            }
            assert!(!flushing(), "restored when the guard drops");
            assert_eq!(rayon::broadcast(|_| flushing()), vec![false, false]);
            assert_eq!(black_box(SUB) * black_box(1.0f32), SUB);
        });
    }

    #[test]
    fn off_clears_a_mode_left_behind_and_puts_it_back() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| {
            let outer = FloatMode::enter(true).unwrap();
            {
                let _inner = FloatMode::enter(false).unwrap();
                assert!(!flushing());
                assert_eq!(black_box(SUB) * black_box(1.0f32), SUB);
            }
            assert!(flushing());
            drop(outer);
            assert!(!flushing());
        });
    }

    #[test]
    fn the_mode_is_restored_after_a_panic() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| {
            let r = std::panic::catch_unwind(|| {
                let _mode = FloatMode::enter(true).unwrap();
                panic!("a run panics");
            });
            assert!(r.is_err());
            assert!(!flushing());
        });
    }
}
