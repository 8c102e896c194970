//! How a cell's settings become a `TrainConfig`: the keys a grid sets, each located in the file
//! (`Setting`), written onto the template config by the table of keys
//! (`trainer::config::keys`), whose errors are located at the setting to blame. Every key can
//! appear in `[defaults]`, in a `[[variant]]`, or as a `[grid]` axis.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::trainer::config::keys::{self, ApplyError};
pub use crate::trainer::config::keys::{check, key, key_names, Kind, Value};
use crate::trainer::config::presets::default_config;
use crate::trainer::config::TrainConfig;

/// One key set somewhere in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub value: Value,
    /// Byte range of the value in the file.
    pub span: Range<usize>,
    /// Where it was set, e.g. `defaults.lr`, `variant[1].hidden`, `grid.lr`.
    pub origin: String,
}

/// The settings of one cell, by key; later layers (variant, axis) replace earlier ones (defaults).
pub type Settings = BTreeMap<&'static str, Setting>;

/// Why a cell's settings do not make a valid config, and which setting is to blame.
#[derive(Debug)]
pub struct BuildError {
    pub message: String,
    pub blame: Option<Setting>,
}

/// Builds and validates the training config of one cell: its settings written onto the
/// template (`train`'s default config), every required key set.
pub fn build(s: &Settings, seed: u64) -> Result<TrainConfig, BuildError> {
    let template = TrainConfig {
        seed,
        ..default_config()
    };
    keys::apply(template, &|k| s.get(k).map(|x| x.value.clone()), true).map_err(|e| {
        let message = match &e {
            ApplyError::Missing(k, hint) => format!(
                "`{k}` is not set for this cell; set it in [defaults], in the variant, or as a \
                 grid axis{hint}"
            ),
            other => other.to_string(),
        };
        BuildError {
            message,
            blame: s.get(e.key()).cloned(),
        }
    })
}
