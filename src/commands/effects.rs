//! `rnnsweep results effects`: a metric as a function of each setting that varies (or the one
//! named by `--axis`): the tables on stdout (table, markdown, csv or json; see
//! `report::effects::export`), and for each setting a chart as SVG and PNG, plus a heatmap when
//! exactly two settings vary, in the output folder (paths on stderr). Reads the disk only; the
//! HTML report's effect charts are `report::effect_figures`.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::{write_chart, Outcome, SweepSelection};
use crate::report::chart::{sweep_names, ChartFormat};
use crate::report::effect_figures::{effect_title, heatmap_title, EffectsData};
use crate::report::effects::export::{render, EffectsReport};
use crate::report::effects::{
    dim_names, effect, heatmap, Dim, Effect, EffectMetric, DEFAULT_TARGET,
};
use crate::report::export::Format;
use crate::report::load::load;
use crate::store::Layout;

/// Options of `rnnsweep results effects`.
#[derive(Clone, Debug)]
pub struct EffectsOptions {
    /// The sweeps read.
    pub sweeps: SweepSelection,
    /// Only this setting (a grid axis as written in the grid, `variant` or `sweep`).
    pub axis: Option<String>,
    pub metric: EffectMetric,
    /// Test accuracy to reach, for `time_to_target` only [default: 0.9].
    pub target: Option<f64>,
    pub format: Format,
    /// Folder for the charts [default: <results>/<sweep>/effects, or <results>/effects for
    /// several sweeps].
    pub out: Option<PathBuf>,
}

/// Checks `--target` against the metric: only `time_to_target` takes one, in (0, 1].
pub fn check_target(metric: EffectMetric, target: Option<f64>) -> anyhow::Result<f64> {
    match (metric, target) {
        (EffectMetric::TimeToTarget, None) => Ok(DEFAULT_TARGET),
        (EffectMetric::TimeToTarget, Some(t)) if t > 0.0 && t <= 1.0 => Ok(t),
        (EffectMetric::TimeToTarget, Some(t)) => {
            bail!("--target {t}: a test accuracy between 0 (excluded) and 1, e.g. --target 0.9")
        }
        (m, Some(_)) => bail!(
            "--target applies to --metric time_to_target only (not {m}); drop --target or add --metric time_to_target"
        ),
        (_, None) => Ok(DEFAULT_TARGET),
    }
}

/// `results effects`.
pub fn effects_cmd(o: &EffectsOptions) -> anyhow::Result<Outcome> {
    let target = check_target(o.metric, o.target)?;
    let dirs = o.sweeps.dirs()?;
    let loaded = load(&dirs)?;
    let data = EffectsData::new(&loaded, &dirs)?;
    if data.dims.is_empty() {
        bail!(
            "{}: no setting varies between the loaded runs (only the seed); effects need a grid axis with at least two values or several variants",
            loaded.counts.line()
        );
    }
    let chosen: Vec<&Dim> = match &o.axis {
        None => data.dims.iter().collect(),
        Some(a) => {
            let name = a.strip_prefix("axis_").unwrap_or(a);
            match data.dims.iter().find(|d| d.name == name) {
                Some(d) => vec![d],
                None => bail!(
                    "--axis {a}: not a setting that varies here; settings with at least two values: {}",
                    dim_names(&data.dims)
                ),
            }
        }
    };
    let effects: Vec<Effect> = chosen
        .iter()
        .map(|d| effect(&data.dims, &d.name, &data.runs, o.metric, target))
        .collect();
    let heat = heatmap(&data.dims, &data.runs, o.metric, target)
        .filter(|_| chosen.len() > 1 || o.axis.is_none());
    let name = sweep_names(&dirs).join(" + ");
    let out = match &o.out {
        Some(out) => out.clone(),
        None if dirs.len() == 1 => Layout::at(&dirs[0]).effects_dir(),
        None => Layout::at(&o.sweeps.results).effects_dir(),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = Vec::new();
    for e in &effects {
        let title = effect_title(e, target, &name);
        let stem = format!("effect_{}_{}", e.axis, e.metric);
        written.extend(write_chart(&out, &stem, e, &title, ChartFormat::Both)?);
    }
    if let Some(h) = &heat {
        let title = heatmap_title(h, target, &name);
        let stem = format!("heatmap_{}_{}_{}", h.y, h.x, h.metric);
        written.extend(write_chart(&out, &stem, h, &title, ChartFormat::Both)?);
    }
    let report = EffectsReport {
        counts: loaded.counts.clone(),
        metric: o.metric,
        target: (o.metric == EffectMetric::TimeToTarget).then_some(target),
        effects,
        heatmap: heat,
    };
    let bytes = render(&report, o.format)?;
    {
        use std::io::Write;
        std::io::stdout()
            .write_all(&bytes)
            .context("writing to stdout")?;
    }
    if o.format == Format::Csv {
        // The other formats carry the counts themselves.
        eprintln!("{}", loaded.counts.line());
    }
    for l in loaded.counts.failure_lines() {
        eprintln!("{l}");
    }
    for p in written {
        eprintln!("wrote {}", p.display());
    }
    Ok(Outcome::Ok)
}
