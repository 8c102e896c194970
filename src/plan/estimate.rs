//! A cell's time estimate for `rnnsweep plan`'s table: its training and test samples at the
//! rates measured on this machine for its kind of cell (`trainer::speed`). And the note `plan`
//! and `sweep` print when long sequences run in IEEE mode, where subnormal floats slow them
//! down.

use crate::trainer::config::{EvalEvery, TrainConfig};
use crate::trainer::speed::Rate;

/// Single-thread seconds for a cell: its training samples (steps × batch) at `rate.train` and
/// the test images of its evaluations at `rate.eval`. Leaves out loading the data, writing
/// checkpoints and other cells sharing the machine's memory bandwidth.
pub fn estimate_seconds(cfg: &TrainConfig, rate: Rate) -> f64 {
    let samples = (cfg.total_iterations() * cfg.batch_size as u64) as f64;
    let evals = match cfg.eval.every {
        EvalEvery::Epoch => cfg.total_epochs() as f64,
        EvalEvery::Iterations(k) => (cfg.total_iterations() / k) as f64 + 1.0,
    } + cfg.eval.before_training as u8 as f64;
    let test = cfg.eval.test_limit.unwrap_or(10_000) as f64;
    samples / rate.train + evals * test / rate.eval
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
