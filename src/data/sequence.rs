//! How a 28×28 image becomes the sequence a recurrent network reads ([`InputMode`]): its 28
//! rows of 28 pixels (the tutorials), its 28 columns, its 784 pixels one at a time (sequential
//! MNIST) or those 784 pixels in one fixed random order (permuted MNIST, the order drawn from a
//! seed and the same for training and test images). [`Reading`] writes a batch of images as a
//! time-major matrix: rows `t·batch .. (t+1)·batch` hold step `t` of every image.

use std::fmt;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{PIXELS, SIDE};

/// The order in which a network reads an image's pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputMode {
    /// 28 steps, each an image row of 28 pixels (top to bottom).
    #[default]
    Rows,
    /// 28 steps, each an image column of 28 pixels (left to right).
    Columns,
    /// 784 steps of one pixel, row by row (sequential MNIST).
    Pixels,
    /// 784 steps of one pixel in a fixed random order (permuted MNIST).
    Permuted,
}

impl InputMode {
    /// Every accepted spelling.
    pub const ALL: &'static [&'static str] = &["rows", "columns", "pixels", "permuted"];

    pub fn as_str(self) -> &'static str {
        match self {
            InputMode::Rows => "rows",
            InputMode::Columns => "columns",
            InputMode::Pixels => "pixels",
            InputMode::Permuted => "permuted",
        }
    }

    /// Time steps per image.
    pub fn steps(self) -> usize {
        match self {
            InputMode::Rows | InputMode::Columns => SIDE,
            InputMode::Pixels | InputMode::Permuted => PIXELS,
        }
    }

    /// Input features per step.
    pub fn features(self) -> usize {
        PIXELS / self.steps()
    }

    pub fn is_rows(&self) -> bool {
        *self == InputMode::Rows
    }
}

impl fmt::Display for InputMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pixel order of permuted MNIST for `seed`: a shuffle of 0..784 by ChaCha8.
pub fn permutation(seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..PIXELS).collect();
    p.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    p
}

/// One way of reading images: for each step and feature, the pixel it reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub mode: InputMode,
    /// `order[t * features + f]`: the index (row-major) of the pixel read at step t, feature f.
    order: Vec<usize>,
}

impl Reading {
    /// `mode` (with `permutation_seed` for `permuted`; ignored otherwise).
    pub fn new(mode: InputMode, permutation_seed: u64) -> Reading {
        let order = match mode {
            InputMode::Rows | InputMode::Pixels => (0..PIXELS).collect(),
            InputMode::Columns => (0..SIDE)
                .flat_map(|col| (0..SIDE).map(move |row| row * SIDE + col))
                .collect(),
            InputMode::Permuted => permutation(permutation_seed),
        };
        Reading { mode, order }
    }

    /// The pixel indices in reading order (step-major, then feature).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Writes image `img` (784 bytes) as sample `b` of a batch of `n` into the time-major
    /// matrix `x` ((steps·n) × features), scaling pixels to [0, 1] (`v / 255`, looked up).
    pub fn write(&self, img: &[u8], b: usize, n: usize, x: &mut [f32]) {
        let f = self.mode.features();
        for t in 0..self.mode.steps() {
            let dst = &mut x[(t * n + b) * f..(t * n + b + 1) * f];
            for (d, &pixel) in dst.iter_mut().zip(&self.order[t * f..(t + 1) * f]) {
                *d = SCALED[img[pixel] as usize];
            }
        }
    }
}

/// `v as f32 / 255.0` for every byte v, computed at compile time (the same IEEE division): a
/// lookup instead of a division per pixel in every batch (1.4 % of an LSTM h64 step, perf).
const SCALED: [f32; 256] = {
    let mut t = [0.0; 256];
    let mut v = 0;
    while v < 256 {
        t[v] = v as f32 / 255.0;
        v += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Vec<u8> {
        (0..PIXELS).map(|i| (i % 251) as u8).collect()
    }

    fn read(mode: InputMode, seed: u64, img: &[u8]) -> Vec<f32> {
        let mut x = vec![0.0; PIXELS];
        Reading::new(mode, seed).write(img, 0, 1, &mut x);
        x
    }

    #[test]
    fn every_byte_scales_as_the_division_does() {
        for v in 0..=255u8 {
            let want = std::hint::black_box(v as f32) / std::hint::black_box(255.0f32);
            assert_eq!(SCALED[v as usize].to_bits(), want.to_bits(), "{v}");
        }
    }

    #[test]
    fn each_mode_reads_every_pixel_once_in_its_order() {
        let img = image();
        let px = |i: usize| img[i] as f32 / 255.0;
        let rows = read(InputMode::Rows, 0, &img);
        assert_eq!(rows, (0..PIXELS).map(px).collect::<Vec<_>>());
        let pixels = read(InputMode::Pixels, 0, &img);
        assert_eq!(pixels, rows, "pixels: the rows' order, one per step");
        let cols = read(InputMode::Columns, 0, &img);
        // Step 1 (the second column), feature 2 (the third row): pixel (2, 1).
        assert_eq!(cols[SIDE + 2], px(2 * SIDE + 1));
        for mode in [InputMode::Columns, InputMode::Permuted] {
            let mut order = Reading::new(mode, 5).order().to_vec();
            order.sort();
            assert_eq!(order, (0..PIXELS).collect::<Vec<_>>(), "{mode}");
        }
        assert_eq!(
            (InputMode::Pixels.steps(), InputMode::Pixels.features()),
            (784, 1)
        );
        assert_eq!(
            (InputMode::Columns.steps(), InputMode::Columns.features()),
            (28, 28)
        );
    }

    #[test]
    fn the_permutation_is_fixed_by_its_seed() {
        assert_eq!(permutation(3), permutation(3));
        assert_ne!(permutation(3), permutation(4));
        assert_ne!(permutation(0), (0..PIXELS).collect::<Vec<_>>());
        let img = image();
        let p = permutation(3);
        let x = read(InputMode::Permuted, 3, &img);
        assert!(x.iter().zip(&p).all(|(v, &i)| *v == img[i] as f32 / 255.0));
    }

    #[test]
    fn batches_are_time_major() {
        let (a, b): (Vec<u8>, Vec<u8>) = (vec![255; PIXELS], vec![0; PIXELS]);
        let r = Reading::new(InputMode::Pixels, 0);
        let mut x = vec![0.5; 2 * PIXELS];
        r.write(&a, 0, 2, &mut x);
        r.write(&b, 1, 2, &mut x);
        // Step t: row 2t is image a (1.0), row 2t + 1 image b (0.0).
        assert!((0..PIXELS).all(|t| x[2 * t] == 1.0 && x[2 * t + 1] == 0.0));
        for m in [
            InputMode::Rows,
            InputMode::Columns,
            InputMode::Pixels,
            InputMode::Permuted,
        ] {
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.as_str())
            );
            assert!(InputMode::ALL.contains(&m.as_str()));
        }
    }
}
