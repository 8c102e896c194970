//! Small statistics for reports: mean, sample standard deviation, and a paired bootstrap
//! confidence interval for the mean difference of two variants run on the same seeds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample standard deviation (n − 1); 0 for a single value.
pub fn std(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// A paired comparison: mean of (a − b) over the shared seeds with a bootstrap interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairedDiff {
    pub n: usize,
    pub mean_diff: f64,
    pub low: f64,
    pub high: f64,
    pub level: f64,
}

/// Paired percentile bootstrap of the mean difference: resamples the seed pairs with
/// replacement `resamples` times (fixed RNG seed, so reports are reproducible).
pub fn paired_bootstrap(a: &[f64], b: &[f64], level: f64, resamples: usize) -> Option<PairedDiff> {
    assert_eq!(a.len(), b.len(), "paired samples");
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    if d.is_empty() || d.iter().any(|v| !v.is_finite()) {
        return None;
    }
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
    Some(PairedDiff {
        n: d.len(),
        mean_diff: mean(&d),
        low: q(tail),
        high: q(1.0 - tail),
        level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
        assert!((std(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        assert_eq!(std(&[5.0]), 0.0);
    }

    #[test]
    fn bootstrap_brackets_the_difference_and_is_reproducible() {
        let a = [0.95, 0.96, 0.94, 0.97, 0.95];
        let b = [0.90, 0.92, 0.91, 0.93, 0.90];
        let r = paired_bootstrap(&a, &b, 0.95, 10_000).unwrap();
        assert!((r.mean_diff - 0.042).abs() < 1e-9);
        assert!(
            r.low > 0.0 && r.low <= r.mean_diff && r.mean_diff <= r.high,
            "{r:?}"
        );
        assert_eq!(paired_bootstrap(&a, &b, 0.95, 10_000).unwrap(), r);
        // A constant difference has a zero-width interval.
        let c = paired_bootstrap(&[1.0, 2.0], &[0.5, 1.5], 0.95, 1000).unwrap();
        assert_eq!((c.low, c.high), (0.5, 0.5));
        assert!(paired_bootstrap(&[f64::NAN], &[0.1], 0.95, 100).is_none());
    }
}
