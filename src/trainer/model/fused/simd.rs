//! Which instruction set the fused layers run with: the CPU's, capped by `RNNSWEEP_ISA`
//! ([`Isa::limit`]), for the gate loops (the dispatch below) and the matmuls (`gemm.rs`); and
//! [`Isa::run`], which compiles other elementwise loops (the optimizer's) for that set.
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

/// The environment variable that caps the instruction set: `baseline`, `avx2` or `avx512`, so
/// that an AVX-512 machine can report what an AVX2-only one gets (`bench`). Unset: the CPU's
/// widest.
pub const ISA_ENV: &str = "RNNSWEEP_ISA";

/// An instruction set the fused layers are compiled for, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain x86-64 (SSE2) or any other architecture.
    Baseline,
    Avx2,
    Avx512,
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    /// The word `RNNSWEEP_ISA` takes and `bench` prints.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The widest set this process may use: `RNNSWEEP_ISA`'s, else AVX-512 (no cap). Read once;
    /// an unknown word, or a set this CPU lacks, is an error naming what it has.
    pub fn limit() -> Result<Isa, String> {
        static LIMIT: std::sync::OnceLock<Result<Isa, String>> = std::sync::OnceLock::new();
        LIMIT
            .get_or_init(|| Isa::parse_limit(std::env::var(ISA_ENV).ok().as_deref()))
            .clone()
    }

    /// [`Isa::limit`] of a value of `RNNSWEEP_ISA` (`None`: unset).
    fn parse_limit(value: Option<&str>) -> Result<Isa, String> {
        let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Isa::Avx512);
        };
        let widest = Isa::ALL.into_iter().rev().find(|i| i.supported());
        let isa = Isa::ALL
            .into_iter()
            .find(|i| i.name() == text.to_ascii_lowercase())
            .ok_or_else(|| {
                format!(
                    "{ISA_ENV}={text:?} is not an instruction set: use baseline, avx2 or avx512 \
                     (or leave it unset for the CPU's widest)"
                )
            })?;
        if !isa.supported() {
            return Err(format!(
                "{ISA_ENV}={text}: this CPU lacks it (the widest it has is {}); use a narrower set",
                widest.unwrap_or(Isa::Baseline).name()
            ));
        }
        Ok(isa)
    }

    /// Supported by the CPU and within [`Isa::limit`] (an invalid `RNNSWEEP_ISA`, which `main`
    /// refuses before any work, allows only the baseline).
    pub fn allowed(self) -> bool {
        self.supported() && self <= Isa::limit().unwrap_or(Isa::Baseline)
    }

    /// The set the matmuls use: the widest allowed. With no cap this is what the `gemm` crate's
    /// own dispatch picks (AVX-512 where the CPU has it, else AVX2 + FMA, else its scalar code).
    /// Decided once per process: every matmul asks.
    pub fn for_matmul() -> Isa {
        static WIDEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *WIDEST.get_or_init(|| {
            Isa::ALL
                .into_iter()
                .rev()
                .find(|i| i.allowed())
                .unwrap_or(Isa::Baseline)
        })
    }

    pub fn supported(self) -> bool {
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

    /// The fastest allowed choice for the gate loops of this cell kind. Measured with
    /// `rnnsweep bench`: AVX-512 gate loops made LSTM about 9 % faster than AVX2, but vanilla
    /// RNNs (one activation per unit) 0–4 % slower on an Intel Xeon, so those stay on AVX2;
    /// except the tanh RNN where the core divides 16 lanes markedly faster than 8
    /// ([`super::peak::wide_division_pays`]: AMD EPYC Zen 5, model_c 3–5 % faster).
    pub(super) fn best(kind: Kind) -> Isa {
        let wide = match kind {
            Kind::Lstm | Kind::Gru => true,
            Kind::Tanh => super::peak::wide_division_pays(),
            Kind::Relu => false,
        };
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .filter(|isa| wide || *isa != Isa::Avx512)
            .find(|isa| isa.allowed())
            .unwrap_or(Isa::Baseline)
    }

    /// [`Isa::best`] for a layer of `cell` (`bench` prints it).
    pub fn for_gates(cell: LayerKind, activation: Activation) -> Isa {
        Isa::best(Kind::of(cell, activation))
    }
}

/// Elementwise work compiled for the instruction set it runs at ([`Isa::run`]): the optimizer's
/// update loops. `run` must be `#[inline(always)]`, for the reason the gate loops are (module
/// doc).
pub trait Vectorized {
    type Out;
    fn run(self) -> Self::Out;
}

impl Isa {
    /// Runs `work` compiled for this set, or for the baseline where the CPU lacks it. The same
    /// IEEE operations at any width (no FMA contraction, no reordered sums), so the same bits.
    pub fn run<W: Vectorized>(self, work: W) -> W::Out {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
            unsafe fn v4<W: Vectorized>(work: W) -> W::Out {
                work.run()
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn v3<W: Vectorized>(work: W) -> W::Out {
                work.run()
            }
            match self {
                // SAFETY: `supported` checked that the CPU has every feature v4 enables.
                Isa::Avx512 if self.supported() => return unsafe { v4(work) },
                // SAFETY: `supported` checked that the CPU has AVX2 and FMA.
                Isa::Avx2 if self.supported() => return unsafe { v3(work) },
                _ => {}
            }
        }
        work.run()
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
    /// Backpropagation through time, given the gradients of the hidden states of the last
    /// `dhs.len() / (batch·hidden)` steps (the others' are zero).
    fn backward => backward_impl(
        kind: Kind,
        d: Dims,
        p: &Params<E>,
        s: Saved<E>,
        dhs: &[E],
        need_dx: bool
    ) -> Grads<E>
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_read_from_a_word_and_refuses_what_the_cpu_lacks() {
        assert_eq!(Isa::parse_limit(None), Ok(Isa::Avx512));
        assert_eq!(Isa::parse_limit(Some(" ")), Ok(Isa::Avx512));
        assert_eq!(Isa::parse_limit(Some("baseline")), Ok(Isa::Baseline));
        let e = Isa::parse_limit(Some("avx3")).unwrap_err();
        assert!(
            e.contains("RNNSWEEP_ISA=\"avx3\"") && e.contains("baseline, avx2 or avx512"),
            "{e}"
        );
        for isa in [Isa::Avx2, Isa::Avx512] {
            let got = Isa::parse_limit(Some(&isa.name().to_uppercase()));
            if isa.supported() {
                assert_eq!(got, Ok(isa));
            } else {
                let e = got.unwrap_err();
                assert!(e.contains("this CPU lacks it"), "{e}");
            }
        }
    }

    #[test]
    fn without_a_cap_the_widest_supported_set_is_used() {
        // The tests run without RNNSWEEP_ISA (the CLI tests set it in child processes).
        if std::env::var(ISA_ENV).is_ok() {
            return;
        }
        let widest = Isa::ALL.into_iter().rev().find(|i| i.supported()).unwrap();
        assert_eq!(Isa::for_matmul(), widest);
        assert_eq!(
            Isa::best(Kind::Lstm),
            widest,
            "gated cells take the widest set"
        );
        assert_eq!(Isa::best(Kind::Relu), widest.min(Isa::Avx2));
    }
}
