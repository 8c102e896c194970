//! Which instruction set the gate loops run with, and the dispatch that picks it at run time.
//!
//! The gate loops (`forward_impl`, `backward_impl`) are generic functions marked
//! `#[inline(always)]`. That attribute is what makes the dispatch work: `target_feature` applies
//! only to the function it is written on, so the loops get AVX2/AVX-512 code only when they are
//! inlined into the `v3`/`v4` wrappers below. Without it LLVM may keep them as separate functions
//! compiled for the baseline, and every instruction set would silently run the baseline code.
//! The test `gate_loops_are_inlined_into_the_dispatch` in `mod.rs` fails if a standalone copy
//! of either loop appears in the binary.

use super::*;

use super::bptt::backward_impl;
use super::forward::forward_impl;

/// The instruction set the gate loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isa {
    /// Plain x86-64 (SSE2) or any other architecture.
    Baseline,
    Avx2,
    Avx512,
}

impl Isa {
    pub(super) fn supported(self) -> bool {
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
    pub(super) fn best(kind: Kind) -> Isa {
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
        pub(super) fn $name<E: Real>(isa: Isa, $kind: Kind $(, $arg: $ty)*) -> $ret {
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

simd_dispatch! {
    /// Backpropagation through time, given the gradient of every hidden state.
    fn backward => backward_impl(
        kind: Kind,
        d: Dims,
        p: &Params<E>,
        s: Saved<E>,
        dhs: &[E],
        need_dx: bool
    ) -> Grads<E>
}
