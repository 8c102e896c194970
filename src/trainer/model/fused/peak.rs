//! The core's floating-point peak at an instruction set, measured on this machine: what
//! `bench`'s "% of peak" divides by; and whether it divides 16 lanes faster than 8
//! ([`wide_division_pays`], which picks the tanh RNN's gate loops).
//!
//! Two short calibration loops on the calling thread (about 0.2 s in all):
//! - **clock**: a chain of dependent integer adds, one per cycle on every x86-64 core of the last
//!   fifteen years, so adds per second are cycles per second;
//! - **FMA throughput**: independent f32 accumulators updated by fused multiply-adds from
//!   registers (24 for AVX-512, 12 for AVX2: more than FMA latency × FMA units on current cores,
//!   so the loop is bound by the units alone). One FMA is 2 FLOPs per lane (16 lanes for
//!   AVX-512, 8 for AVX2). The baseline (SSE2) has no FMA: a multiply and an add, 2 FLOPs per
//!   lane of 4, which is what scalar matmul code can do.
//!
//! The peak is the FMA loop's FLOP/s (the best of three windows of ~25 ms). FLOP per cycle and
//! the FMA units follow from it and the clock (units = FLOP per cycle / (2 × lanes), rounded).
//! Taking the measured loop, not clock × lanes × 2 × units, makes the peak what the core sustains
//! at that width: some Xeons lower the clock for AVX-512 code.

use std::time::Instant;

use super::Isa;

/// The measured peak of one core at one instruction set.
#[derive(Clone, Copy, Debug)]
pub struct Peak {
    pub isa: Isa,
    /// f32 lanes of one vector.
    pub lanes: usize,
    /// FLOP/s of the FMA loop, in units of 10⁹.
    pub gflops: f64,
    /// The dependent-add loop's rate (x86-64 only).
    pub ghz: Option<f64>,
}

impl Peak {
    /// FLOP per cycle reached by the FMA loop.
    pub fn flops_per_cycle(&self) -> Option<f64> {
        self.ghz.map(|g| self.gflops / g)
    }

    /// Vector FMA units implied by the FLOP per cycle (multiply + add pairs for the baseline).
    pub fn units(&self) -> Option<f64> {
        self.flops_per_cycle()
            .map(|f| (f / (2.0 * self.lanes as f64)).round())
    }

    /// One line for people: "avx512 FMA peak 1 core: 150.2 GFLOP/s (2 units × 16 lanes × 2 at
    /// 2.35 GHz)".
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} FMA peak, one core: {:.1} GFLOP/s",
            self.isa.name(),
            self.gflops
        );
        if let (Some(ghz), Some(units)) = (self.ghz, self.units()) {
            s.push_str(&format!(
                " ({:.1} FLOP/cycle ≈ {units:.0} unit(s) × {} lanes × 2 at {ghz:.2} GHz)",
                self.gflops / ghz,
                self.lanes
            ));
        }
        s
    }
}

/// This CPU's name (`/proc/cpuinfo`'s model name), else the architecture's.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Measures the peak at `isa` (which must be supported by the CPU; an unsupported one is
/// measured at the baseline and says so by its `isa`).
pub fn fma_peak(isa: Isa) -> Peak {
    let isa = if isa.supported() { isa } else { Isa::Baseline };
    let (lanes, flops_per_iter) = loop_shape(isa);
    let gflops = best_rate(|iters| run_fma(isa, iters), flops_per_iter) / 1e9;
    Peak {
        isa,
        lanes,
        gflops,
        ghz: clock_ghz(),
    }
}

/// Whether this core divides f32 vectors of 16 lanes (AVX-512) at least [`WIDE_DIVISION_GAIN`]
/// times as many values per second as vectors of 8 (AVX2), measured once per process (two
/// loops of independent divisions, about 30 ms): where it does, the tanh RNN's gate loops run
/// at AVX-512 ([`Isa::best`]), their one activation being bound by its division. On an AMD
/// EPYC Zen 5 the ratio was 1.9 (a vector of 16 divided about as fast as a vector of 8), and
/// model_c ran 3–5 % faster with AVX-512 gate loops; cores that divide 512 bits in two halves
/// (Intel's AVX-512 cores, Zen 4) gain nothing from the wider loops, which ran vanilla RNNs 0–4 %
/// slower on an Intel Xeon. False where AVX-512 is not allowed.
pub(super) fn wide_division_pays() -> bool {
    static PAYS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PAYS.get_or_init(|| {
        Isa::Avx512.allowed()
            && Isa::Avx2.allowed()
            && division_rate(Isa::Avx512) >= WIDE_DIVISION_GAIN * division_rate(Isa::Avx2)
    })
}

/// See [`wide_division_pays`].
const WIDE_DIVISION_GAIN: f64 = 1.5;

/// f32 divisions per second at `isa` (AVX-512 or AVX2, which the CPU must support; 0 for the
/// baseline and off x86-64).
fn division_rate(isa: Isa) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        let div: unsafe fn(u64) -> f32 = match isa {
            Isa::Avx512 => x86::div_avx512,
            Isa::Avx2 => x86::div_avx2,
            Isa::Baseline => return 0.0,
        };
        let (lanes, _) = loop_shape(isa);
        // SAFETY: the caller checked that the CPU supports `isa`; each loop only enables that set.
        best_rate_in(
            |iters| unsafe { div(iters) },
            (DIVISION_ACC * lanes) as f64,
            0.003,
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        0.0
    }
}

/// Independent divisions per iteration of [`division_rate`]'s loops: more than the division's
/// latency over its throughput on current cores.
const DIVISION_ACC: usize = 12;

/// Lanes and FLOPs of one iteration of the FMA loop at `isa`.
fn loop_shape(isa: Isa) -> (usize, f64) {
    match isa {
        Isa::Avx512 => (16, (AVX512_ACC * 16 * 2) as f64),
        Isa::Avx2 => (8, (NARROW_ACC * 8 * 2) as f64),
        Isa::Baseline => (4, (NARROW_ACC * 4 * 2) as f64),
    }
}

const AVX512_ACC: usize = 24;
const NARROW_ACC: usize = 12;

/// The best of three timed windows of about 25 ms of `f(iters)`, in units of work per second
/// (`per_iter` units per iteration).
fn best_rate(f: impl Fn(u64) -> f32, per_iter: f64) -> f64 {
    best_rate_in(f, per_iter, 0.025)
}

/// [`best_rate`] with windows of about `window` seconds.
fn best_rate_in(f: impl Fn(u64) -> f32, per_iter: f64, window: f64) -> f64 {
    // Size the window: grow the count until one run takes at least a fifth of it.
    let mut iters = 1u64 << 10;
    let secs = loop {
        let t = Instant::now();
        std::hint::black_box(f(iters));
        let s = t.elapsed().as_secs_f64();
        if s > window / 5.0 || iters > 1 << 40 {
            break s;
        }
        iters *= 4;
    };
    let iters = ((iters as f64) * window / secs).max(1.0) as u64;
    (0..3)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f(iters));
            iters as f64 * per_iter / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn run_fma(isa: Isa, iters: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `fma_peak` checked that the CPU supports `isa`; each loop only enables that set.
    unsafe {
        match isa {
            Isa::Avx512 => x86::fma_avx512(iters),
            Isa::Avx2 => x86::fma_avx2(iters),
            Isa::Baseline => x86::mul_add_sse(iters),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        portable_mul_add(iters)
    }
}

/// Plain multiply-add on 16 accumulators (what the compiler makes of it), off x86-64.
#[cfg(not(target_arch = "x86_64"))]
fn portable_mul_add(iters: u64) -> f32 {
    let mut acc = [1.0f32; 16];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = *v * 0.5 + 0.5;
        }
    }
    acc.iter().sum()
}

/// The dependent-add loop's adds per second, in units of 10⁹ (x86-64 only).
fn clock_ghz() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        Some(best_rate(|iters| x86::dependent_adds(iters) as f32, 16.0) / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{AVX512_ACC, DIVISION_ACC, NARROW_ACC};

    // Every accumulator starts at 1 and stays there (v·0.5 + 0.5): no subnormals, no overflow.
    // The constants pass through `black_box`, or the compiler proves the fixed point and
    // deletes the loop.

    fn half() -> f32 {
        std::hint::black_box(0.5)
    }

    /// The sum of every lane of the accumulators (the loops return it, so none is dead code).
    #[target_feature(enable = "avx512f")]
    unsafe fn sum512(acc: &[__m512]) -> f32 {
        let sum = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, v| _mm512_add_ps(s, *v));
        _mm512_reduce_add_ps(sum)
    }

    /// [`sum512`] for 8 lanes.
    #[target_feature(enable = "avx")]
    unsafe fn sum256(acc: &[__m256]) -> f32 {
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, v| _mm256_add_ps(s, *v));
        let lanes: [f32; 8] = std::mem::transmute(sum);
        lanes.iter().sum()
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma_avx512(iters: u64) -> f32 {
        let (a, b) = (_mm512_set1_ps(half()), _mm512_set1_ps(half()));
        let mut acc = [_mm512_set1_ps(2.0 * half()); AVX512_ACC];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        sum512(&acc)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma_avx2(iters: u64) -> f32 {
        let (a, b) = (_mm256_set1_ps(half()), _mm256_set1_ps(half()));
        let mut acc = [_mm256_set1_ps(2.0 * half()); NARROW_ACC];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        sum256(&acc)
    }

    /// Every accumulator starts at 1 and is divided by 1 + 2⁻²³ per iteration: after 10⁸
    /// iterations it is still above 10⁻⁶ (no subnormals).
    fn divisor() -> f32 {
        std::hint::black_box(1.0 + f32::EPSILON)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn div_avx512(iters: u64) -> f32 {
        let d = _mm512_set1_ps(divisor());
        let mut acc = [_mm512_set1_ps(2.0 * half()); DIVISION_ACC];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_div_ps(*v, d);
            }
        }
        sum512(&acc)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn div_avx2(iters: u64) -> f32 {
        let d = _mm256_set1_ps(divisor());
        let mut acc = [_mm256_set1_ps(2.0 * half()); DIVISION_ACC];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_div_ps(*v, d);
            }
        }
        sum256(&acc)
    }

    pub(super) unsafe fn mul_add_sse(iters: u64) -> f32 {
        let (a, b) = (_mm_set1_ps(half()), _mm_set1_ps(half()));
        let mut acc = [_mm_set1_ps(2.0 * half()); NARROW_ACC];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm_add_ps(_mm_mul_ps(*v, a), b);
            }
        }
        let sum = acc.iter().fold(_mm_setzero_ps(), |s, v| _mm_add_ps(s, *v));
        let lanes: [f32; 4] = std::mem::transmute(sum);
        lanes.iter().sum()
    }

    /// 16 dependent adds per iteration: 16 cycles. Register + register: newer Intel cores
    /// (Golden Cove) execute small `add reg, imm` in the renamer, at no latency.
    pub(super) fn dependent_adds(iters: u64) -> u64 {
        let mut x = 0u64;
        let y = std::hint::black_box(1u64);
        for _ in 0..iters {
            // SAFETY: register arithmetic only.
            unsafe {
                std::arch::asm!(
                    "add {x}, {y}", "add {x}, {y}", "add {x}, {y}", "add {x}, {y}",
                    "add {x}, {y}", "add {x}, {y}", "add {x}, {y}", "add {x}, {y}",
                    "add {x}, {y}", "add {x}, {y}", "add {x}, {y}", "add {x}, {y}",
                    "add {x}, {y}", "add {x}, {y}", "add {x}, {y}", "add {x}, {y}",
                    x = inout(reg) x,
                    y = in(reg) y,
                    options(nomem, nostack),
                );
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Division is measured at both wide sets where the CPU has them, and the answer follows
    /// from the rates (only where AVX-512 is allowed).
    #[test]
    fn division_rates_are_measured_and_decide_the_wide_tanh_loops() {
        for isa in [Isa::Avx2, Isa::Avx512] {
            if isa.supported() {
                let rate = division_rate(isa);
                assert!(rate > 1e8 && rate.is_finite(), "{isa:?}: {rate}");
            }
        }
        assert_eq!(division_rate(Isa::Baseline), 0.0);
        let pays = wide_division_pays();
        if !Isa::Avx512.allowed() {
            assert!(!pays);
        }
        assert_eq!(
            Isa::best(super::super::Kind::Tanh),
            if pays {
                Isa::Avx512
            } else {
                Isa::for_matmul().min(Isa::Avx2)
            }
        );
    }

    #[test]
    fn the_peak_is_measured_at_every_supported_set() {
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            let p = fma_peak(isa);
            assert_eq!(p.isa, isa);
            // Loose bounds: tests share the cores, so only absurd values are wrong.
            assert!(p.gflops > 0.05 && p.gflops < 2000.0, "{p:?}");
            if let Some(ghz) = p.ghz {
                assert!(ghz > 0.05 && ghz < 10.0, "{p:?}");
            }
        }
    }

    #[test]
    fn units_follow_from_the_rate_and_the_clock() {
        let p = Peak {
            isa: Isa::Avx512,
            lanes: 16,
            gflops: 150.4,
            ghz: Some(2.35),
        };
        assert_eq!(p.units(), Some(2.0));
        assert!(
            p.describe()
                .contains("150.4 GFLOP/s (64.0 FLOP/cycle ≈ 2 unit(s) × 16 lanes × 2 at 2.35 GHz)"),
            "{}",
            p.describe()
        );
    }
}
