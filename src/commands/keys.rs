//! `rnnsweep keys`: the table of settings (every key a grid, `train` or `describe` can set, with
//! its values, default, scope and meaning), as Markdown (the README's table) or JSON.

use serde::Serialize;

use super::Outcome;
use crate::trainer::config::keys::{markdown_table, KEYS};

/// One key as `keys --json` prints it.
#[derive(Serialize)]
struct KeyDoc {
    name: &'static str,
    section: &'static str,
    values: String,
    default: &'static str,
    applies_to: Option<String>,
    doc: &'static str,
    flag: String,
}

/// Prints the table of keys.
pub fn keys_cmd(json: bool) -> anyhow::Result<Outcome> {
    if json {
        let docs: Vec<KeyDoc> = KEYS
            .iter()
            .map(|k| KeyDoc {
                name: k.name,
                section: k.section.title(),
                values: k.kind.to_string(),
                default: k.default,
                applies_to: k.applies.condition(),
                doc: k.doc,
                flag: k.flag(),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&docs)?);
    } else {
        print!("{}", markdown_table());
    }
    Ok(Outcome::Ok)
}
