//! How the flags become each command's options: [`flags!`], which declares a command's flags
//! and their conversion field by field; the global flags resolved once ([`Globals`], where the
//! trainer is chosen); enum flags read through serde ([`word`]); and the conversions of the
//! flattened flag groups.

use std::path::PathBuf;

use serde::de::{DeserializeOwned, IntoDeserializer};

use super::{CompareSweepsArgs, DataCmd, GlobalArgs, GroupingArgs, SweepsArgs};
use rnnsweep::commands::{data, SweepSelection};
use rnnsweep::trainer::backend::fake::FAKE_ENV;
use rnnsweep::trainer::backend::TrainerChoice;
use rnnsweep::trainer::config::keys::not_one_of;

/// Declares a command's flags (a clap `Args` struct) and `options(self, &Globals)`, which makes
/// the command's options struct `$target` from them: each field goes to the field of the same
/// name (through `From`, for the flattened groups), and the global fields named in
/// `globals(…)` come from the [`Globals`].
macro_rules! flags {
    (
        $(#[$m:meta])*
        struct $name:ident => $target:path {
            $($(#[$fm:meta])* $field:ident: $ty:ty,)*
        } $(globals($($g:ident),*))?
    ) => {
        $(#[$m])*
        #[derive(Args, Debug)]
        struct $name {
            $($(#[$fm])* $field: $ty,)*
        }

        impl $name {
            #[allow(unused_variables)]
            fn options(self, g: &Globals) -> $target {
                $target {
                    $($field: self.$field.into(),)*
                    $($($g: g.$g.clone(),)*)?
                }
            }
        }
    };
}

/// A word naming a variant of `T` by its serde name, in any case: how every enum flag is read,
/// with the grid's words for a word that names none.
pub(super) fn word<T: DeserializeOwned>(text: &str) -> Result<T, WordError> {
    T::deserialize(text.to_ascii_lowercase().into_deserializer())
}

/// A flag's word that names no variant: "\"acc\" is not allowed; use one of: …".
#[derive(Debug)]
pub(super) struct WordError(String);

impl std::fmt::Display for WordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WordError {}

impl serde::de::Error for WordError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        WordError(msg.to_string())
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        WordError(not_one_of(variant, variant, expected))
    }
}

pub(super) use flags;

/// The global flags, resolved once for every command.
pub(super) struct Globals {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) quiet: bool,
    pub(super) trainer: TrainerChoice,
}

impl GlobalArgs {
    /// The trainer is `--trainer`, else the fake trainer when its environment variable is
    /// set, else the real one: the one place the choice is made.
    pub(super) fn resolve(self) -> anyhow::Result<Globals> {
        let trainer = match (self.trainer, std::env::var(FAKE_ENV)) {
            (Some(t), _) => t,
            (None, Ok(rules)) => TrainerChoice::Fake(rules.parse()?),
            (None, Err(_)) => TrainerChoice::Real,
        };
        Ok(Globals {
            data_dir: self.data_dir,
            quiet: self.quiet,
            trainer,
        })
    }
}

impl From<SweepsArgs> for SweepSelection {
    fn from(a: SweepsArgs) -> Self {
        SweepSelection {
            results: a.results,
            sweeps: a.sweeps,
        }
    }
}

impl From<CompareSweepsArgs> for SweepSelection {
    fn from(a: CompareSweepsArgs) -> Self {
        SweepsArgs {
            results: a.results,
            sweeps: a.sweeps,
        }
        .into()
    }
}

impl From<GroupingArgs> for Option<Vec<String>> {
    fn from(a: GroupingArgs) -> Self {
        a.by
    }
}

impl DataCmd {
    pub(super) fn options(self, g: &Globals) -> data::DataOptions {
        let (dataset, action) = match self {
            DataCmd::Fetch { dataset, mirror } => {
                (dataset, data::DataAction::Fetch { mirrors: mirror })
            }
            DataCmd::Verify { dataset } => (dataset, data::DataAction::Verify),
            DataCmd::Show {
                dataset,
                index,
                train,
                input,
                permutation_seed,
            } => (
                dataset,
                data::DataAction::Show {
                    index,
                    train,
                    input,
                    permutation_seed,
                },
            ),
        };
        data::DataOptions {
            data_dir: g.data_dir.clone(),
            dataset: dataset.dataset,
            quiet: g.quiet,
            action,
        }
    }
}
