//! The setting flags of `train` and `describe`, generated from the table of keys
//! (`trainer::config::keys::KEYS`): one flag per key, named as the key with `-` for `_`, its
//! help from the key's doc, scope and default, its value checked as the grid's value of the key
//! is (`keys::parse_text`), grouped under the key's section in `--help`.

use clap::Args;

use rnnsweep::trainer::config::keys::{self, Given, Key, Kind, Section, Value, KEYS};

/// The setting flags, one per key of the table of keys (`trainer::config::keys`): every key
/// for `train`, the model's keys and `dataset` for `describe` (`MODEL`). A key's flag is its
/// name with `-` for `_`; its value is checked as the grid's value of the key is.
#[derive(Clone, Debug, Default)]
pub struct SettingArgs<const MODEL: bool>(Given);

impl<const MODEL: bool> SettingArgs<MODEL> {
    fn keys() -> impl Iterator<Item = &'static Key> {
        KEYS.iter()
            .filter(|k| !MODEL || k.section == Section::Model || k.name == "dataset")
    }
}

impl<const MODEL: bool> clap::FromArgMatches for SettingArgs<MODEL> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let given = Self::keys().filter_map(|k| match k.kind {
            Kind::Bool => m.get_flag(k.name).then_some((k.name, Value::Bool(true))),
            _ => m.get_one::<Value>(k.name).map(|v| (k.name, v.clone())),
        });
        Ok(SettingArgs(Given(given.collect())))
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl<const MODEL: bool> Args for SettingArgs<MODEL> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(Self::keys().map(|k| {
            let mut help = k.doc.to_string();
            if let Kind::Word(_) | Kind::EvalEvery = k.kind {
                help.push_str(&format!(": {}", k.kind));
            }
            if let Some(c) = k.applies.condition() {
                help.push_str(&format!("; only where {c}"));
            }
            if k.default != "required" {
                help.push_str(&format!(" [default: {}]", k.default));
            }
            let arg = clap::Arg::new(k.name)
                .long(k.flag_name())
                .help(help)
                .help_heading(k.section.title());
            let arg = match k.excludes {
                Some(other) => arg.conflicts_with(other),
                None => arg,
            };
            match k.kind {
                Kind::Bool => arg.action(clap::ArgAction::SetTrue),
                kind => arg
                    .value_name(k.name.to_ascii_uppercase())
                    .allow_negative_numbers(true)
                    .value_parser(move |s: &str| keys::parse_text(kind, s)),
            }
        }))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl<const MODEL: bool> From<SettingArgs<MODEL>> for Given {
    fn from(a: SettingArgs<MODEL>) -> Given {
        a.0
    }
}
