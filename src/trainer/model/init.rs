//! A model's initial parameter values, on the host, in PyTorch's order (see `layout.rs`):
//! PyTorch's default uniform init from a ChaCha8 stream of the seed, then the config's init
//! scheme on the recurrent weights (orthogonal gate blocks, or IRNN's scaled identity with zero
//! biases) and the LSTM forget-gate bias. The schemes draw from a second stream of the seed, so
//! the default values (and every run made before the schemes existed) are unchanged.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::layout::{param_layout, PER_LAYER};
use crate::trainer::config::{InitScheme, LayerKind, ModelConfig};

/// Every parameter's initial values for `config` (normalized) and `seed`.
pub fn initial_values(config: &ModelConfig, seed: u64) -> Vec<Vec<f64>> {
    let layout = param_layout(config);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(0);
    let k = 1.0 / (config.hidden as f64).sqrt();
    let mut values: Vec<Vec<f64>> = layout
        .iter()
        .map(|p| (0..p.numel()).map(|_| rng.gen_range(-k..k)).collect())
        .collect();
    let h = config.hidden;
    let gates = config.cell.gates();
    let mut scheme_rng = ChaCha8Rng::seed_from_u64(seed);
    scheme_rng.set_stream(2);
    for l in 0..config.layers {
        let (w_hh, b_ih, b_hh) = (PER_LAYER * l + 1, PER_LAYER * l + 2, PER_LAYER * l + 3);
        match config.init {
            InitScheme::Pytorch => {}
            InitScheme::Orthogonal => {
                for g in 0..gates {
                    let block = orthogonal(h, &mut scheme_rng);
                    values[w_hh][g * h * h..(g + 1) * h * h].copy_from_slice(&block);
                }
            }
            InitScheme::Identity => {
                let scale = config.init_scale.unwrap_or(1.0);
                let w = &mut values[w_hh];
                w.fill(0.0);
                for i in 0..h {
                    w[i * h + i] = scale;
                }
                values[b_ih].fill(0.0);
                values[b_hh].fill(0.0);
            }
        }
        if let (LayerKind::Lstm, Some(f)) = (config.cell, config.forget_bias) {
            // PyTorch's gate order is i, f, g, o: the forget gate is the second block.
            values[b_ih][h..2 * h].fill(f);
            values[b_hh][h..2 * h].fill(0.0);
        }
    }
    values
}

/// A standard normal value (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A random n × n orthogonal matrix, row-major, distributed as `torch.nn.init.orthogonal_`
/// makes it: the Q of the QR decomposition of a matrix of standard normals, with Q's columns
/// signed so that R's diagonal is positive (Gram–Schmidt gives that sign by construction;
/// orthogonalizing twice keeps Q orthogonal to rounding).
pub fn orthogonal(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    // Columns of the Gaussian matrix, orthonormalized in turn.
    let mut cols: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..n).map(|_| normal(rng)).collect())
        .collect();
    for j in 0..n {
        let (done, rest) = cols.split_at_mut(j);
        let c = &mut rest[0];
        for _ in 0..2 {
            for q in done.iter() {
                let dot: f64 = q.iter().zip(c.iter()).map(|(a, b)| a * b).sum();
                for (x, qi) in c.iter_mut().zip(q) {
                    *x -= dot * qi;
                }
            }
        }
        let norm = c.iter().map(|x| x * x).sum::<f64>().sqrt();
        for x in c.iter_mut() {
            *x /= norm;
        }
    }
    let mut m = vec![0.0; n * n];
    for (j, c) in cols.iter().enumerate() {
        for (i, x) in c.iter().enumerate() {
            m[i * n + j] = *x;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::Activation;

    fn cfg(cell: LayerKind, layers: usize, init: InitScheme) -> ModelConfig {
        ModelConfig {
            cell,
            hidden: 6,
            layers,
            activation: (cell == LayerKind::Rnn).then_some(Activation::Relu),
            init,
            ..ModelConfig::default()
        }
        .normalized()
    }

    /// ‖Q Qᵀ − I‖∞ of a row-major n × n block.
    fn off_identity(q: &[f64], n: usize) -> f64 {
        let mut worst: f64 = 0.0;
        for i in 0..n {
            for j in 0..n {
                let dot: f64 = (0..n).map(|k| q[i * n + k] * q[j * n + k]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                worst = worst.max((dot - want).abs());
            }
        }
        worst
    }

    #[test]
    fn orthogonal_blocks_are_orthogonal_and_the_rest_is_pytorchs_init() {
        for cell in [LayerKind::Rnn, LayerKind::Lstm, LayerKind::Gru] {
            let base = initial_values(&cfg(cell, 2, InitScheme::Pytorch), 3);
            let orth = initial_values(&cfg(cell, 2, InitScheme::Orthogonal), 3);
            let (h, gates) = (6, cell.gates());
            for (i, (a, b)) in base.iter().zip(&orth).enumerate() {
                if i < 2 * PER_LAYER && i % PER_LAYER == 1 {
                    for g in 0..gates {
                        let block = &b[g * h * h..(g + 1) * h * h];
                        assert!(off_identity(block, h) < 1e-12, "{cell} W_hh {i} block {g}");
                    }
                    assert_ne!(a, b);
                } else {
                    assert_eq!(a, b, "{cell}: tensor {i} keeps PyTorch's init");
                }
            }
            // Another seed, other matrices; the same seed, the same.
            assert_ne!(
                orth,
                initial_values(&cfg(cell, 2, InitScheme::Orthogonal), 4)
            );
            assert_eq!(
                orth,
                initial_values(&cfg(cell, 2, InitScheme::Orthogonal), 3)
            );
        }
    }

    #[test]
    fn identity_init_is_scaled_identity_with_zero_biases() {
        let mut c = cfg(LayerKind::Rnn, 2, InitScheme::Identity);
        c.init_scale = Some(0.5);
        let v = initial_values(&c, 0);
        let base = initial_values(&cfg(LayerKind::Rnn, 2, InitScheme::Pytorch), 0);
        for l in 0..2 {
            let w = &v[PER_LAYER * l + 1];
            for i in 0..6 {
                for j in 0..6 {
                    assert_eq!(w[i * 6 + j], if i == j { 0.5 } else { 0.0 });
                }
            }
            assert!(v[PER_LAYER * l + 2].iter().all(|&b| b == 0.0));
            assert!(v[PER_LAYER * l + 3].iter().all(|&b| b == 0.0));
            assert_eq!(
                v[PER_LAYER * l],
                base[PER_LAYER * l],
                "W_ih keeps PyTorch's init"
            );
        }
        assert_eq!(v[2 * PER_LAYER], base[2 * PER_LAYER], "fc.weight");
    }

    #[test]
    fn forget_bias_sits_in_bias_ih_and_only_the_forget_slice_changes() {
        let mut c = cfg(LayerKind::Lstm, 1, InitScheme::Pytorch);
        c.forget_bias = Some(1.0);
        let v = initial_values(&c, 1);
        let base = initial_values(&cfg(LayerKind::Lstm, 1, InitScheme::Pytorch), 1);
        let (b_ih, b_hh) = (&v[2], &v[3]);
        for k in 0..24 {
            let forget = (6..12).contains(&k);
            assert_eq!(b_ih[k], if forget { 1.0 } else { base[2][k] }, "b_ih[{k}]");
            assert_eq!(b_hh[k], if forget { 0.0 } else { base[3][k] }, "b_hh[{k}]");
        }
    }

    #[test]
    fn normals_have_mean_0_and_variance_1() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let xs: Vec<f64> = (0..200_000).map(|_| normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.01,
            "{mean} {var}"
        );
    }
}
