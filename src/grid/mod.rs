//! Grid files (TOML): the serde mirror of the file, checked key by key into a `Grid` with every
//! value's location, so that each problem is reported as `file:line:column: key: what is wrong,
//! what is allowed`. Nothing downstream sees raw TOML.
//!
//! ```toml
//! [sweep]
//! name = "activation"            # results go to results/<name>/
//! description = "relu vs tanh vs gates"
//! seeds = 3                      # or a list: [0, 1, 2]
//!
//! [defaults]                     # any hyperparameter key (see `rnnsweep keys`)
//! optimizer = "sgd"
//! lr = 0.1
//!
//! [[variant]]                    # named settings; each is crossed with the grid
//! name = "Model A"
//! cell = "rnn"
//! activation = "relu"
//!
//! [grid]                         # axes: lists or ranges, crossed with each other
//! hidden = [64, 128]
//! lr = { start = 1e-3, stop = 1e-1, num = 3, scale = "log" }
//! ```

pub mod axis;
pub mod error;
pub mod params;
pub mod prune;
pub mod search;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use error::did_you_mean;
pub use error::GridError;
use params::{check, key_names, Setting, Settings, Value};
use prune::Prune;
use search::{Dist, Method};

/// Largest number of cells a grid may expand to.
pub const MAX_CELLS: usize = 10_000;

type SpannedTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// The serde mirror of a grid file; tables keep each key's and value's span.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    sweep: Option<Spanned<SpannedTable>>,
    defaults: Option<Spanned<SpannedTable>>,
    #[serde(default)]
    variant: Vec<Spanned<SpannedTable>>,
    grid: Option<Spanned<SpannedTable>>,
    search: Option<Spanned<SpannedTable>>,
    prune: Option<Spanned<SpannedTable>>,
}

/// A named set of settings.
#[derive(Clone, Debug)]
pub struct Variant {
    pub name: String,
    pub settings: Settings,
    pub span: Range<usize>,
}

/// One grid axis, in file order.
#[derive(Clone, Debug)]
pub struct Axis {
    pub key: &'static str,
    pub values: AxisValues,
    pub span: Range<usize>,
}

/// What an axis sets its key to.
#[derive(Clone, Debug, PartialEq)]
pub enum AxisValues {
    /// A list or range: each value crossed with the other axes.
    List(Vec<Value>),
    /// A random search's distribution (see `search`), drawn once per trial.
    Dist(Dist),
    /// `hidden = { params = N }` (or a list of N): for each cell, the hidden size whose
    /// parameter count is closest to N for its cell kind, layers and input (see `plan`).
    Params(Vec<u64>),
}

impl Axis {
    /// Values this axis crosses the others with: a distribution gives one per trial.
    pub fn crossings(&self) -> usize {
        match &self.values {
            AxisValues::List(v) => v.len(),
            AxisValues::Dist(_) => 1,
            AxisValues::Params(t) => t.len(),
        }
    }

    /// Whether a random search draws this axis.
    pub fn is_drawn(&self) -> bool {
        matches!(self.values, AxisValues::Dist(_))
    }
}

/// A checked grid file.
#[derive(Clone, Debug)]
pub struct Grid {
    pub path: PathBuf,
    pub text: String,
    pub name: String,
    pub description: String,
    pub seeds: Vec<u64>,
    pub defaults: Settings,
    /// At least one (an implicit `default` variant when the file has none).
    pub variants: Vec<Variant>,
    pub axes: Vec<Axis>,
    /// Every combination of the axes, or random draws from their distributions.
    pub method: Method,
    /// Early stopping by successive halving (`[prune]`), if any, and where the table is.
    pub prune: Option<Prune>,
    pub prune_span: Option<Range<usize>>,
}

impl Grid {
    /// Reads and checks a grid file.
    pub fn load(path: &Path) -> Result<Grid, GridError> {
        let text = std::fs::read_to_string(path).map_err(|e| GridError {
            path: path.to_owned(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the grid file: {e}"),
            snippet: None,
        })?;
        Grid::parse(path, &text)
    }

    /// Checks grid `text` (`path` is used in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Grid, GridError> {
        let src = Source { path, text };
        let raw = parse_raw(src)?;
        let sweep = raw.sweep.as_ref().ok_or_else(|| {
            src.err(
                Some(0..0),
                "sweep",
                "missing [sweep] table with at least `name = \"...\"`".into(),
            )
        })?;
        let SweepTable {
            name,
            description,
            seeds,
        } = parse_sweep(src, sweep)?;
        let method = parse_search(src, raw.search.as_ref())?;
        let prune = raw
            .prune
            .as_ref()
            .map(|t| prune::parse_prune(&plain(t)).map_err(|(k, m)| table_error(src, t, k, m)))
            .transpose()?;
        let axes = parse_axes(src, raw.grid.as_ref(), method, raw.search.as_ref())?;
        let defaults = match &raw.defaults {
            Some(d) => parse_settings(src, d.get_ref(), "defaults", &axes)?,
            None => Settings::new(),
        };
        let variants = parse_variants(src, &raw.variant, &axes)?;
        check_size(src, &raw, sweep, &variants, &seeds, &axes, method)?;
        Ok(Grid {
            path: path.to_owned(),
            text: text.to_owned(),
            name,
            description,
            seeds,
            defaults,
            variants,
            axes,
            method,
            prune,
            prune_span: raw.prune.as_ref().map(|t| t.span()),
        })
    }
}

/// The grid file being checked, to locate its errors.
#[derive(Clone, Copy)]
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    /// An error at `span` of this file, under `key`.
    fn err(&self, span: Option<Range<usize>>, key: &str, msg: String) -> GridError {
        GridError::at(self.path, self.text, span, key, msg)
    }
}

/// The file as TOML in [`RawGrid`]'s shape; an unknown table lists the four there are.
fn parse_raw(src: Source) -> Result<RawGrid, GridError> {
    toml::from_str(src.text).map_err(|e| {
        let mut msg = e.message().trim().to_string();
        if let Some(field) = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
            msg = format!(
                "unknown table [{field}]{}; a grid file has [sweep], [defaults], [[variant]], [grid], [search] and [prune]",
                did_you_mean(field, &["sweep", "defaults", "variant", "grid", "search", "prune"])
            );
        }
        src.err(e.span(), "", msg)
    })
}

/// The checked [sweep] table.
struct SweepTable {
    name: String,
    description: String,
    seeds: Vec<u64>,
}

/// Checks [sweep]: `name` (required, a folder name), `description`, `seeds` (a count or a
/// list; default one seed, 0).
fn parse_sweep(src: Source, sweep: &Spanned<SpannedTable>) -> Result<SweepTable, GridError> {
    let err = |span, key: &str, msg| src.err(Some(span), key, msg);
    let mut name = None;
    let mut description = String::new();
    let mut seeds = vec![0];
    for (k, v) in sweep.get_ref() {
        let key = format!("sweep.{}", k.get_ref());
        match (k.get_ref().as_str(), v.get_ref()) {
            ("name", toml::Value::String(s)) => {
                let ok = !s.is_empty()
                    && s.len() <= 64
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    && !s.starts_with('.');
                if !ok {
                    return Err(err(v.span(), &key, format!(
                        "{s:?} cannot name a results folder; use 1-64 letters, digits, '-', '_' or '.'"
                    )));
                }
                name = Some(s.clone());
            }
            ("description", toml::Value::String(s)) => description = s.clone(),
            ("seeds", toml::Value::Integer(n)) if (1..=1000).contains(n) => seeds = (0..*n as u64).collect(),
            ("seeds", toml::Value::Array(a)) if !a.is_empty() => {
                seeds = Vec::with_capacity(a.len());
                for s in a {
                    match s {
                        toml::Value::Integer(i) if *i >= 0 && !seeds.contains(&(*i as u64)) => seeds.push(*i as u64),
                        other => {
                            return Err(err(v.span(), &key, format!(
                                "seeds must be distinct integers ≥ 0; {other} is not allowed"
                            )))
                        }
                    }
                }
            }
            ("name" | "description", other) => {
                return Err(err(v.span(), &key, format!("expected a string, got {other}")))
            }
            ("seeds", other) => {
                return Err(err(v.span(), &key, format!(
                    "expected a count 1..=1000 (seeds 0..n) or a non-empty list of seeds, got {other}"
                )))
            }
            (other, _) => {
                return Err(err(k.span(), &key, format!(
                    "unknown key `{other}`{}; [sweep] takes name, description and seeds",
                    did_you_mean(other, &["name", "description", "seeds"])
                )))
            }
        }
    }
    let name = name.ok_or_else(|| {
        err(
            sweep.span(),
            "sweep.name",
            "missing `name = \"...\"` (the results folder)".into(),
        )
    })?;
    Ok(SweepTable {
        name,
        description,
        seeds,
    })
}

/// Checks [search] (see `search`): the method, and a random search's trials and seed.
fn parse_search(src: Source, t: Option<&Spanned<SpannedTable>>) -> Result<Method, GridError> {
    let Some(t) = t else {
        return Ok(Method::Grid);
    };
    search::parse_method(&plain(t)).map_err(|(key, msg)| table_error(src, t, key, msg))
}

/// A table without its spans.
fn plain(t: &Spanned<SpannedTable>) -> toml::Table {
    t.get_ref()
        .iter()
        .map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone()))
        .collect()
}

/// The error `msg` about `key` (`table.name`) of table `t`: at the key when it is unknown, at
/// its value when the value is wrong, at the table when the key is missing.
fn table_error(src: Source, t: &Spanned<SpannedTable>, key: String, msg: String) -> GridError {
    let name = key.split_once('.').map_or(key.as_str(), |(_, n)| n);
    let span = t
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == name)
        .map_or(t.span(), |(k, v)| {
            if msg.starts_with("unknown") {
                k.span()
            } else {
                v.span()
            }
        });
    src.err(Some(span), &key, msg)
}

/// Checks [grid]: each key a known one, each value a list or range of its kind, or with a
/// random search a distribution; the axes in file order.
fn parse_axes(
    src: Source,
    grid: Option<&Spanned<SpannedTable>>,
    method: Method,
    search: Option<&Spanned<SpannedTable>>,
) -> Result<Vec<Axis>, GridError> {
    let mut axes = Vec::new();
    if let Some(grid) = grid {
        for (k, v) in grid.get_ref() {
            let key = checked_key(src.path, src.text, k, "grid")?;
            let kind = params::key(key).expect("checked key").kind;
            let at = |m| src.err(Some(v.span()), &format!("grid.{key}"), m);
            let values = match v.get_ref() {
                toml::Value::Table(t) if search::is_dist(t) => {
                    if method == Method::Grid {
                        return Err(at(
                            "a distribution is drawn by a random search: add [search] with method = \"random\" and trials = N, or list the values".into(),
                        ));
                    }
                    AxisValues::Dist(search::parse_dist(kind, t).map_err(at)?)
                }
                toml::Value::Table(t) if t.contains_key("params") => {
                    AxisValues::Params(axis::param_targets(key, t).map_err(at)?)
                }
                other => AxisValues::List(axis::expand(kind, other).map_err(at)?),
            };
            axes.push(Axis {
                key,
                values,
                span: v.span(),
            });
        }
        axes.sort_by_key(|a| a.span.start);
    }
    if let (Method::Random { .. }, false) = (method, axes.iter().any(Axis::is_drawn)) {
        let span = search.map(|s| s.span());
        return Err(src.err(
            span,
            "search.method",
            "a random search draws from distributions: write an axis in [grid] as one, e.g. `lr = { dist = \"loguniform\", low = 1e-4, high = 1e-1 }`".into(),
        ));
    }
    Ok(axes)
}

/// Checks the settings of [defaults] or a [[variant]] (`section`, its `name` skipped): known
/// keys, valid values, none that is also a grid axis.
fn parse_settings(
    src: Source,
    table: &SpannedTable,
    section: &str,
    axes: &[Axis],
) -> Result<Settings, GridError> {
    let axis_span = |key: &str| axes.iter().find(|a| a.key == key).map(|a| a.span.clone());
    let mut out = Settings::new();
    for (k, v) in table {
        if section.starts_with("variant") && k.get_ref() == "name" {
            continue;
        }
        let key = checked_key(src.path, src.text, k, section)?;
        if let Some(a) = axis_span(key) {
            let line = GridError::at(src.path, src.text, Some(a), "", "").line;
            return Err(src.err(
                Some(k.span()),
                &format!("{section}.{key}"),
                format!("`{key}` is also a grid axis (line {line}); set it in one place only"),
            ));
        }
        let value = check(params::key(key).expect("checked key").kind, v.get_ref())
            .map_err(|m| src.err(Some(v.span()), &format!("{section}.{key}"), m))?;
        out.insert(
            key,
            Setting {
                value,
                span: v.span(),
                origin: format!("{section}.{key}"),
            },
        );
    }
    Ok(out)
}

/// Checks the [[variant]] tables: each with a unique non-empty `name` and valid settings. No
/// table makes one implicit variant, `default`, without settings.
fn parse_variants(
    src: Source,
    tables: &[Spanned<SpannedTable>],
    axes: &[Axis],
) -> Result<Vec<Variant>, GridError> {
    let mut variants: Vec<Variant> = Vec::new();
    for (i, v) in tables.iter().enumerate() {
        let section = format!("variant[{i}]");
        let name_key = v.get_ref().iter().find(|(k, _)| k.get_ref() == "name");
        let vname = match name_key.map(|(_, val)| val) {
            Some(val) => match val.get_ref() {
                toml::Value::String(s) if !s.trim().is_empty() => s.clone(),
                other => {
                    return Err(src.err(
                        Some(val.span()),
                        &format!("{section}.name"),
                        format!("expected a non-empty string, got {other}"),
                    ))
                }
            },
            None => {
                return Err(src.err(
                    Some(v.span()),
                    &section,
                    "each [[variant]] needs a `name = \"...\"`".into(),
                ))
            }
        };
        if variants.iter().any(|o| o.name == vname) {
            return Err(src.err(
                Some(name_key.expect("has name").1.span()),
                &format!("{section}.name"),
                format!("the variant name {vname:?} is used twice; names must be unique"),
            ));
        }
        variants.push(Variant {
            name: vname,
            settings: parse_settings(src, v.get_ref(), &section, axes)?,
            span: v.span(),
        });
    }
    if variants.is_empty() {
        variants.push(Variant {
            name: "default".into(),
            settings: Settings::new(),
            span: 0..0,
        });
    }
    Ok(variants)
}

/// Refuses a grid of more than [`MAX_CELLS`] cells (variants × seeds × axis values).
fn check_size(
    src: Source,
    raw: &RawGrid,
    sweep: &Spanned<SpannedTable>,
    variants: &[Variant],
    seeds: &[u64],
    axes: &[Axis],
    method: Method,
) -> Result<(), GridError> {
    let start = variants
        .len()
        .saturating_mul(seeds.len())
        .saturating_mul(method.trials());
    let cells = axes
        .iter()
        .fold(start, |n, a| n.saturating_mul(a.crossings()));
    if cells > MAX_CELLS {
        let span = raw.grid.as_ref().map(|g| g.span()).or(Some(sweep.span()));
        return Err(src.err(span, "grid", format!(
            "this grid expands to {cells} cells ({} variants × {} seeds{} × axes {}); at most {MAX_CELLS}: narrow an axis or split the study",
            variants.len(),
            seeds.len(),
            match method {
                Method::Grid => String::new(),
                Method::Random { trials, .. } => format!(" × {trials} trials"),
            },
            axes.iter().map(|a| format!("{}={}", a.key, a.crossings())).collect::<Vec<_>>().join(" × ")
        )));
    }
    Ok(())
}

/// Maps a table key to a known hyperparameter key, or explains the mistake.
fn checked_key(
    path: &Path,
    text: &str,
    k: &Spanned<String>,
    section: &str,
) -> Result<&'static str, GridError> {
    let name = k.get_ref().as_str();
    if let Some(known) = params::key(name) {
        return Ok(known.name);
    }
    let msg = match name {
        "seed" | "seeds" => {
            "seeds are set once, in [sweep]: `seeds = 3` (0, 1, 2) or `seeds = [0, 7]`".to_string()
        }
        "name" => "`name` belongs in [sweep] or in a [[variant]]".to_string(),
        _ => format!(
            "unknown key `{name}`{}; known keys: {}",
            did_you_mean(name, &key_names()),
            key_names().join(", ")
        ),
    };
    Err(GridError::at(
        path,
        text,
        Some(k.span()),
        format!("{section}.{name}"),
        msg,
    ))
}
