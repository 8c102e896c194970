//! Small statistics for reports, all pure: mean and sample standard deviation; Student's t
//! quantiles (exact for the integer degrees of freedom a sample has, no table); the t interval
//! for a mean; the paired interval for the mean difference of two variants run on the same seeds
//! (Student t for 3–9 shared seeds, percentile bootstrap from 10, none below 3); and the Wilson
//! score interval for a proportion such as a divergence rate.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The confidence level of every interval in the reports.
pub const LEVEL: f64 = 0.95;

/// The standard normal's 0.975 quantile: the z of a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Fewest shared seeds for which a paired interval is computed at all.
pub const PAIRED_MIN_N: usize = 3;

/// Fewest shared seeds from which the paired interval is a bootstrap instead of Student t.
pub const BOOTSTRAP_MIN_N: usize = 10;

/// Resamples of the paired bootstrap.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// Arithmetic mean; NaN for an empty slice.
pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample standard deviation (divisor n − 1); None below 2 values, where it is undefined.
pub fn sample_std(x: &[f64]) -> Option<f64> {
    if x.len() < 2 {
        return None;
    }
    let m = mean(x);
    Some((x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt())
}

/// P(|T| ≤ t) for Student's t with `df` ≥ 1 degrees of freedom and t ≥ 0. Exact finite sums in
/// θ = atan(t/√df) (Abramowitz & Stegun 26.7.3 for odd df, 26.7.4 for even df).
pub fn t_central_prob(t: f64, df: u64) -> f64 {
    assert!(df >= 1, "Student t needs at least one degree of freedom");
    let theta = (t / (df as f64).sqrt()).atan();
    let (sin, cos) = theta.sin_cos();
    let c2 = cos * cos;
    if df % 2 == 1 {
        // 2/π · (θ + sinθ·cosθ·(1 + 2/3·cos²θ + 2·4/(3·5)·cos⁴θ + … + cos^(df−3)θ term))
        let mut sum = 0.0;
        if df > 1 {
            let (mut term, mut k) = (1.0, 1u64);
            sum = 1.0;
            while 2 * k < df - 1 {
                term *= (2 * k) as f64 / (2 * k + 1) as f64 * c2;
                sum += term;
                k += 1;
            }
        }
        std::f64::consts::FRAC_2_PI * (theta + sin * cos * sum)
    } else {
        // sinθ · (1 + 1/2·cos²θ + 1·3/(2·4)·cos⁴θ + … + cos^(df−2)θ term)
        let (mut term, mut sum, mut k) = (1.0, 1.0, 1u64);
        while 2 * k < df {
            term *= (2 * k - 1) as f64 / (2 * k) as f64 * c2;
            sum += term;
            k += 1;
        }
        sin * sum
    }
}

/// The `p` quantile (0.5 < p < 1) of Student's t with `df` degrees of freedom: the t with
/// P(T ≤ t) = p, found by bisection on [`t_central_prob`] to full double precision.
pub fn t_quantile(p: f64, df: u64) -> f64 {
    assert!(p > 0.5 && p < 1.0, "t_quantile wants 0.5 < p < 1, got {p}");
    let target = 2.0 * p - 1.0;
    let (mut lo, mut hi) = (0.0_f64, 2.0_f64);
    while t_central_prob(hi, df) < target {
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if t_central_prob(mid, df) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// How an interval was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// mean ± t(1 − α/2, n − 1) · s / √n.
    #[serde(rename = "t")]
    StudentT,
    /// Percentile bootstrap of the mean over resampled seed pairs.
    Bootstrap,
    /// Wilson score interval of a proportion.
    Wilson,
}

impl Method {
    /// As serialized: "t", "bootstrap", "wilson".
    pub fn name(self) -> &'static str {
        match self {
            Method::StudentT => "t",
            Method::Bootstrap => "bootstrap",
            Method::Wilson => "wilson",
        }
    }
}

/// A two-sided confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
    pub method: Method,
}

/// Mean, sample standard deviation and Student-t interval of a sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeanStats {
    pub n: usize,
    /// None for an empty sample.
    pub mean: Option<f64>,
    /// None below 2 values.
    pub std: Option<f64>,
    /// mean ± t(0.975, n − 1)·s/√n; None below 2 values. Zero width when all values are equal.
    pub ci: Option<Interval>,
}

/// The t interval of the mean at `level`; None below two values or with a non-finite value.
pub fn t_interval(x: &[f64], level: f64) -> Option<Interval> {
    let s = sample_std(x)?;
    if !s.is_finite() {
        return None;
    }
    let m = mean(x);
    let half = t_quantile(0.5 + level / 2.0, x.len() as u64 - 1) * s / (x.len() as f64).sqrt();
    Some(Interval {
        low: m - half,
        high: m + half,
        level,
        method: Method::StudentT,
    })
}

/// n, mean, std and the 95 % t interval of `x`.
pub fn mean_stats(x: &[f64]) -> MeanStats {
    MeanStats {
        n: x.len(),
        mean: (!x.is_empty()).then(|| mean(x)),
        std: sample_std(x),
        ci: t_interval(x, LEVEL),
    }
}

impl MeanStats {
    /// The same statistics of a quantity that cannot leave [lo, hi] (an accuracy: [0, 1]),
    /// with the interval cut to it: with few seeds the t interval can reach past the bounds
    /// (n = 2 multiplies the standard error by 12.7), and a bound no value can cross says
    /// nothing. NaN bounds stay NaN.
    pub fn within(mut self, lo: f64, hi: f64) -> MeanStats {
        if let Some(ci) = &mut self.ci {
            if ci.low < lo {
                ci.low = lo;
            }
            if ci.high > hi {
                ci.high = hi;
            }
        }
        self
    }
}

/// k successes out of n trials with the Wilson score interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Proportion {
    pub k: usize,
    pub n: usize,
    /// None when n = 0.
    pub interval: Option<Interval>,
}

/// The Wilson score interval for k of n at the normal quantile `z` (two-sided): with p = k/n,
/// (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n). Exactly 0 below for k = 0 and 1 above for
/// k = n. None when n = 0.
pub fn wilson(k: usize, n: usize, z: f64, level: f64) -> Option<Interval> {
    assert!(k <= n, "wilson: {k} successes of {n} trials");
    if n == 0 {
        return None;
    }
    let (nf, p, z2) = (n as f64, k as f64 / n as f64, z * z);
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    Some(Interval {
        low: if k == 0 {
            0.0
        } else {
            // Rounding can put the bound a hair outside [0, 1]; the operands are finite here.
            (center - half).clamp(0.0, 1.0)
        },
        high: if k == n {
            1.0
        } else {
            (center + half).clamp(0.0, 1.0)
        },
        level,
        method: Method::Wilson,
    })
}

/// k of n with its 95 % Wilson interval.
pub fn proportion(k: usize, n: usize) -> Proportion {
    Proportion {
        k,
        n,
        interval: wilson(k, n, Z95, LEVEL),
    }
}

/// A paired comparison: the mean of (a − b) over the shared seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairedDiff {
    /// Shared seeds.
    pub n: usize,
    pub mean_diff: f64,
    /// Sample standard deviation of the differences; None below 2 pairs.
    pub std_diff: Option<f64>,
    /// None below [`PAIRED_MIN_N`] pairs: with one or two pairs an interval says nothing.
    /// Student t below [`BOOTSTRAP_MIN_N`] pairs, percentile bootstrap from there. When every
    /// pair differs by the same amount the interval has zero width: that is what the data say.
    pub interval: Option<Interval>,
}

/// The paired difference of a and b (same seeds, same order) at 95 %: see [`PairedDiff`].
/// None when there is no pair or some value is not finite.
pub fn paired_diff(a: &[f64], b: &[f64]) -> Option<PairedDiff> {
    assert_eq!(a.len(), b.len(), "paired samples");
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    if d.is_empty() || d.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let interval = if d.len() < PAIRED_MIN_N {
        None
    } else if d.len() < BOOTSTRAP_MIN_N {
        t_interval(&d, LEVEL)
    } else {
        Some(bootstrap_interval(&d, LEVEL, BOOTSTRAP_RESAMPLES))
    };
    Some(PairedDiff {
        n: d.len(),
        mean_diff: mean(&d),
        std_diff: sample_std(&d),
        interval,
    })
}

/// Percentile bootstrap interval of the mean of `d`: resamples `d` with replacement
/// `resamples` times (fixed RNG seed, so reports are reproducible).
pub fn bootstrap_interval(d: &[f64], level: f64, resamples: usize) -> Interval {
    assert!(!d.is_empty() && resamples > 0, "bootstrap of nothing");
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            (0..d.len())
                .map(|_| d[rng.gen_range(0..d.len())])
                .sum::<f64>()
                / d.len() as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let q = |p: f64| means[((p * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    let tail = (1.0 - level) / 2.0;
    Interval {
        low: q(tail),
        high: q(1.0 - tail),
        level,
        method: Method::Bootstrap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b} (tolerance {tol})");
    }

    #[test]
    fn mean_and_sample_std() {
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
        close(sample_std(&[1.0, 2.0, 3.0]).unwrap(), 1.0, 1e-12);
        assert_eq!(sample_std(&[5.0]), None, "undefined for one value");
        assert_eq!(sample_std(&[]), None);
        assert_eq!(sample_std(&[0.9, 0.9, 0.9]), Some(0.0));
    }

    /// 0.975 quantiles from mpmath (30 digits), inverting the regularized incomplete beta:
    /// `python3 -c "import mpmath as mp; mp.mp.dps=30;
    ///  cdf=lambda t,v: 1-mp.betainc(v/2,0.5,0,v/(v+t*t),regularized=True)/2;
    ///  print(mp.findroot(lambda t: cdf(t,v)-mp.mpf('0.975'), 2))"` for each v
    /// (df 1 is tan(0.475π)). They agree with printed tables (12.7062, 4.3027, 3.1824, 2.2622,
    /// 2.0423).
    #[test]
    fn t_quantiles_match_known_values() {
        for (df, t) in [
            (1, 12.706_204_736_174_7),
            (2, 4.302_652_729_749_46),
            (3, 3.182_446_305_283_71),
            (4, 2.776_445_105_197_79),
            (9, 2.262_157_162_798_21),
            (29, 2.045_229_642_132_7),
            (30, 2.042_272_456_301_24),
            (100, 1.983_971_518_523_55),
            (1000, 1.962_339_080_826_41),
        ] {
            close(t_quantile(0.975, df), t, 1e-9);
        }
        // Other levels: df 1 has the closed form tan(π(p − ½)); df 2 has t = (2p−1)√(2/(1−(2p−1)²)).
        close(
            t_quantile(0.995, 1),
            (std::f64::consts::PI * 0.495).tan(),
            1e-7,
        );
        let a: f64 = 2.0 * 0.9 - 1.0;
        close(t_quantile(0.9, 2), a * (2.0 / (1.0 - a * a)).sqrt(), 1e-12);
        // Large df approaches the normal quantile.
        close(t_quantile(0.975, 100_000), Z95, 1e-4);
    }

    #[test]
    fn t_central_prob_closed_forms() {
        // df 1: P(|T| ≤ 1) = 2·atan(1)/π = 1/2; df 2: P(|T| ≤ t) = t/√(2 + t²).
        close(t_central_prob(1.0, 1), 0.5, 1e-15);
        close(t_central_prob(1.5, 2), 1.5 / (2.0_f64 + 2.25).sqrt(), 1e-15);
        assert_eq!(t_central_prob(0.0, 7), 0.0);
    }

    /// Expected values: python3 with mpmath, mean ± t·s/√n using the quantiles above, e.g. for
    /// n = 2: m = 0.905, s = 0.01/√2, half = 12.7062047361747·s/√2 = 0.0635310236808735.
    #[test]
    fn mean_intervals_for_1_2_3_and_10_values() {
        let one = mean_stats(&[0.9]);
        assert_eq!(
            (one.n, one.mean, one.std, one.ci),
            (1, Some(0.9), None, None)
        );
        let none = mean_stats(&[]);
        assert_eq!((none.n, none.mean, none.ci), (0, None, None));

        let two = mean_stats(&[0.90, 0.91]);
        close(two.mean.unwrap(), 0.905, 1e-12);
        close(two.std.unwrap(), 0.007_071_067_811_865_48, 1e-12);
        let ci = two.ci.unwrap();
        close(ci.low, 0.841_468_976_319_126, 1e-9);
        close(ci.high, 0.968_531_023_680_873, 1e-9);
        assert_eq!((ci.level, ci.method), (0.95, Method::StudentT));

        // s = 0.01, half = 4.30265272974946 · 0.01 / √3 = 0.0248413771175033
        let ci = mean_stats(&[0.95, 0.96, 0.94]).ci.unwrap();
        close(ci.low, 0.925_158_622_882_497, 1e-9);
        close(ci.high, 0.974_841_377_117_503, 1e-9);

        // m = 0.955, s = 0.0158113883008419, half = 2.26215716279821 · s / √10 = 0.011310785813991
        let ten = [0.97, 0.95, 0.96, 0.94, 0.98, 0.93, 0.96, 0.95, 0.97, 0.94];
        let st = mean_stats(&ten);
        assert_eq!(st.n, 10);
        close(st.std.unwrap(), 0.015_811_388_300_841_9, 1e-12);
        let ci = st.ci.unwrap();
        close(ci.low, 0.943_689_214_186_009, 1e-9);
        close(ci.high, 0.966_310_785_813_991, 1e-9);
    }

    #[test]
    fn identical_values_give_a_zero_width_interval() {
        // Two accuracies far apart: the t interval reaches past [0, 1] and is cut to it.
        let wide = mean_stats(&[0.2, 0.95]);
        let raw = wide.ci.unwrap();
        assert!(raw.low < 0.0 && raw.high > 1.0, "{raw:?}");
        let cut = wide.clone().within(0.0, 1.0);
        assert_eq!((cut.ci.unwrap().low, cut.ci.unwrap().high), (0.0, 1.0));
        assert_eq!((cut.n, cut.mean, cut.std), (wide.n, wide.mean, wide.std));
        let inside = mean_stats(&[0.9, 0.91, 0.92]);
        assert_eq!(inside.clone().within(0.0, 1.0), inside);
        let nan_ci = Interval {
            low: f64::NAN,
            high: f64::NAN,
            level: LEVEL,
            method: Method::StudentT,
        };
        let nan = MeanStats {
            n: 2,
            mean: Some(f64::NAN),
            std: Some(f64::NAN),
            ci: Some(nan_ci),
        }
        .within(0.0, 1.0);
        assert!(nan.ci.unwrap().low.is_nan() && nan.ci.unwrap().high.is_nan());
        let st = mean_stats(&[0.5, 0.5, 0.5]);
        assert_eq!(st.std, Some(0.0));
        let ci = st.ci.unwrap();
        assert_eq!((ci.low, ci.high), (0.5, 0.5));
    }

    /// Expected values: python3 with mpmath, z = 1.959963984540054:
    /// p = k/n, d = 1 + z²/n, (p + z²/2n ± z·√(p(1−p)/n + z²/4n²))/d.
    /// k = 0, n = 5: high = z²/(n + z²) = 0.434482464783175;
    /// k = n = 5: low = n/(n + z²) = 0.565517535216825;
    /// k = 2, n = 5: 0.117620774232648 .. 0.769275718723987.
    #[test]
    fn wilson_intervals() {
        let w = wilson(0, 5, Z95, LEVEL).unwrap();
        assert_eq!(w.low, 0.0);
        close(w.high, 0.434_482_464_783_175, 1e-12);
        let w = wilson(5, 5, Z95, LEVEL).unwrap();
        close(w.low, 0.565_517_535_216_825, 1e-12);
        assert_eq!(w.high, 1.0);
        let w = wilson(2, 5, Z95, LEVEL).unwrap();
        close(w.low, 0.117_620_774_232_648, 1e-12);
        close(w.high, 0.769_275_718_723_987, 1e-12);
        assert_eq!(w.method, Method::Wilson);
        // 1 of 3: 0.0614919447203962 .. 0.792340399197952
        let p = proportion(1, 3);
        assert_eq!((p.k, p.n), (1, 3));
        close(p.interval.unwrap().low, 0.061_491_944_720_396_2, 1e-12);
        close(p.interval.unwrap().high, 0.792_340_399_197_952, 1e-12);
        assert_eq!(proportion(0, 0).interval, None);
    }

    #[test]
    fn paired_difference_needs_three_pairs() {
        // One or two pairs: the mean difference, no interval.
        let d = paired_diff(&[0.95, 0.94], &[0.90, 0.91]).unwrap();
        assert_eq!(d.n, 2);
        close(d.mean_diff, 0.04, 1e-12);
        assert_eq!(d.interval, None);
        let d = paired_diff(&[0.95], &[0.90]).unwrap();
        assert_eq!((d.n, d.std_diff, d.interval), (1, None, None));
        assert_eq!(paired_diff(&[], &[]), None);
        assert!(paired_diff(&[f64::NAN, 1.0, 1.0], &[0.1, 0.1, 0.1]).is_none());
    }

    /// Differences 0.05, 0.04, 0.03, 0.04, 0.05: mean 0.042, s = √(70e-6) = 0.00836660026534076,
    /// half = 2.77644510519779 · s / √5 = 0.0103885063368357 (python3).
    #[test]
    fn paired_t_interval() {
        let a = [0.95, 0.96, 0.94, 0.97, 0.95];
        let b = [0.90, 0.92, 0.91, 0.93, 0.90];
        let d = paired_diff(&a, &b).unwrap();
        assert_eq!(d.n, 5);
        close(d.mean_diff, 0.042, 1e-12);
        close(d.std_diff.unwrap(), 0.008_366_600_265_340_76, 1e-12);
        let ci = d.interval.unwrap();
        assert_eq!(ci.method, Method::StudentT);
        close(ci.low, 0.042 - 0.010_388_506_336_835_7, 1e-9);
        close(ci.high, 0.042 + 0.010_388_506_336_835_7, 1e-9);
    }

    /// Every pair differs by exactly 0.5 (binary fractions, so the differences are exact): s = 0
    /// and the t interval is the point [0.5, 0.5], reported as such.
    #[test]
    fn constant_paired_difference_has_zero_width() {
        let d = paired_diff(&[1.0, 0.75, 0.5], &[0.5, 0.25, 0.0]).unwrap();
        assert_eq!((d.n, d.mean_diff, d.std_diff), (3, 0.5, Some(0.0)));
        let ci = d.interval.unwrap();
        assert_eq!((ci.low, ci.high, ci.method), (0.5, 0.5, Method::StudentT));
    }

    #[test]
    fn bootstrap_from_ten_pairs_brackets_the_difference_and_is_reproducible() {
        let a: Vec<f64> = (0..12).map(|i| 0.95 + 0.002 * (i % 5) as f64).collect();
        let b: Vec<f64> = (0..12).map(|i| 0.90 + 0.003 * (i % 4) as f64).collect();
        let d = paired_diff(&a, &b).unwrap();
        let ci = d.interval.unwrap();
        assert_eq!(ci.method, Method::Bootstrap);
        assert!(
            ci.low > 0.0 && ci.low <= d.mean_diff && d.mean_diff <= ci.high,
            "{d:?}"
        );
        assert_eq!(paired_diff(&a, &b).unwrap(), d);
        let nine = paired_diff(&a[..9], &b[..9]).unwrap();
        assert_eq!(nine.interval.unwrap().method, Method::StudentT);
    }
}
