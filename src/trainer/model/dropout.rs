//! Dropout between stacked recurrent layers, as the `dropout` argument of nn.RNN/LSTM/GRU: on
//! every layer's output sequence except the last layer's, in training only, each value kept
//! with probability 1 − p and scaled by 1/(1 − p) (inverted dropout), dropped otherwise. The
//! masks come from their own ChaCha8 stream of the run's seed, drawn on the host in a fixed
//! order (step by step, layer by layer, row-major), so a rerun draws the same masks on any
//! device and its metrics are bit-identical. A checkpoint keeps the stream's position
//! ([`Dropout::position`]), so a resumed run draws the masks the uninterrupted one would.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::trainer::config::ModelConfig;

/// The mask source of one training run.
#[derive(Clone, Debug)]
pub struct Dropout {
    p: f64,
    layers: usize,
    hidden: usize,
    rng: ChaCha8Rng,
}

impl Dropout {
    /// The dropout of `model` for the run with `seed`; `None` when the model has none.
    pub fn of(model: &ModelConfig, seed: u64) -> Option<Dropout> {
        let p = model.dropout.filter(|&p| p > 0.0)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(3);
        Some(Dropout {
            p,
            layers: model.layers,
            hidden: model.hidden,
            rng,
        })
    }

    /// How far the mask stream has been read (ChaCha8's word position).
    pub fn position(&self) -> u128 {
        self.rng.get_word_pos()
    }

    /// Continues the stream from a [`Dropout::position`] of the same run.
    pub fn seek(&mut self, position: u128) {
        self.rng.set_word_pos(position);
    }

    /// One mask per layer but the last, each (`steps`·`batch`) × hidden values of 0 or
    /// 1/(1 − p), for the next training step.
    pub fn masks(&mut self, steps: usize, batch: usize) -> Vec<Vec<f64>> {
        let keep = 1.0 - self.p;
        let scale = 1.0 / keep;
        let n = steps * batch * self.hidden;
        (1..self.layers)
            .map(|_| {
                (0..n)
                    .map(|_| {
                        if self.rng.gen::<f64>() < keep {
                            scale
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::LayerKind;

    fn model(p: Option<f64>, layers: usize) -> ModelConfig {
        ModelConfig {
            cell: LayerKind::Lstm,
            hidden: 16,
            layers,
            dropout: p,
            ..ModelConfig::default()
        }
    }

    #[test]
    fn masks_keep_1_minus_p_scaled_and_repeat_with_the_seed() {
        assert!(Dropout::of(&model(None, 2), 0).is_none());
        assert!(Dropout::of(&model(Some(0.0), 2), 0).is_none());
        let mut d = Dropout::of(&model(Some(0.25), 3), 7).unwrap();
        let m = d.masks(28, 100);
        assert_eq!(m.len(), 2, "one mask per layer but the last");
        assert_eq!(m[0].len(), 28 * 100 * 16);
        let kept = m[0].iter().filter(|&&v| v != 0.0).count() as f64 / m[0].len() as f64;
        assert!((kept - 0.75).abs() < 0.01, "kept {kept}");
        assert!(m[0].iter().all(|&v| v == 0.0 || v == 1.0 / 0.75));
        assert_ne!(m[0], m[1]);
        // The next step draws new masks; the same seed draws the same sequence.
        let next = d.masks(28, 100);
        assert_ne!(next, m);
        let mut again = Dropout::of(&model(Some(0.25), 3), 7).unwrap();
        assert_eq!(again.masks(28, 100), m);
        assert_eq!(again.masks(28, 100), next);
        // From a saved position, the same masks as without the stop.
        let mut d = Dropout::of(&model(Some(0.25), 3), 7).unwrap();
        d.masks(28, 100);
        let at = d.position();
        let mut resumed = Dropout::of(&model(Some(0.25), 3), 7).unwrap();
        resumed.seek(at);
        assert_eq!(resumed.masks(28, 100), next);
    }
}
