//! A rough time estimate for a cell, for `rnnsweep plan`'s table: counted multiply-adds at a
//! measured rate. For planning only. And the note `plan` and `sweep` print when long sequences
//! run in IEEE mode, where subnormal floats slow them down.

use crate::trainer::config::{EvalEvery, LayerKind, TrainConfig};

/// A rough single-thread time estimate for a cell, in seconds: multiply-adds of the forward and
/// backward passes at a rate fitted to `rnnsweep bench` on a 2-core x86 machine (≈30 GFLOP/s),
/// plus the evaluations. Good to a factor of two; for planning only.
pub fn estimate_seconds(cfg: &TrainConfig) -> f64 {
    let m = &cfg.model;
    let g = (m.cell.gates() * m.hidden) as f64;
    let h = m.hidden as f64;
    let (steps, features) = (m.input.steps() as f64, m.input.features() as f64);
    let per_step: f64 = (0..m.layers)
        .map(|l| g * (if l == 0 { features } else { h } + h + 1.0))
        .sum::<f64>();
    let forward = 2.0 * steps * per_step + 2.0 * 10.0 * h;
    let samples = (cfg.total_iterations() * cfg.batch_size as u64) as f64;
    let evals = match cfg.eval.every {
        EvalEvery::Epoch => cfg.total_epochs() as f64,
        EvalEvery::Iterations(k) => (cfg.total_iterations() / k) as f64 + 1.0,
    } + cfg.eval.before_training as u8 as f64;
    let test = cfg.eval.test_limit.unwrap_or(10_000) as f64;
    let overhead = if m.cell == LayerKind::Rnn { 1.0 } else { 1.6 };
    (3.0 * forward * samples + forward * test * evals) * overhead / 30e9
}

/// Sequences at least this long make back-propagated gradients subnormal (README, "Long
/// sequences are slow"): pixel and permuted MNIST (784 steps).
pub const LONG_SEQUENCE: usize = 784;

/// When some cells read long sequences in IEEE mode (`flush_denormal` off, the default, as in
/// PyTorch): what that costs on x86 CPUs and what the key does. None otherwise.
pub fn denormal_note<'a>(configs: impl Iterator<Item = &'a TrainConfig>) -> Option<String> {
    let slow = configs
        .filter(|c| c.model.input.steps() >= LONG_SEQUENCE && !c.flush_denormal)
        .count();
    (slow > 0).then(|| {
        format!(
            "note: {slow} cell(s) read {LONG_SEQUENCE}-step sequences with flush_denormal off \
             (PyTorch's default): their back-propagated gradients become subnormal floats, \
             which x86 CPUs compute slowly; measured on an Intel Xeon (LSTM h128, one core) \
             20 samples/s against 78 with flush_denormal = true, which flushes them to zero as \
             torch.set_flush_denormal(True) does (results differ only where a value below \
             1.2e-38 was involved; a new cell id). See the README, \"Long sequences are slow\"."
        )
    })
}
