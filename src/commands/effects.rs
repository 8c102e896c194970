//! `rnnsweep results effects`: a metric as a function of each setting that varies (or the one
//! named by `--axis`): the tables on stdout (table, markdown, csv or json; see
//! `report::effects::export`), and for each setting a chart as SVG and PNG, plus a heatmap when
//! exactly two settings vary, in the output folder (paths on stderr). Also the effect charts of
//! the HTML report ([`report_figures`]). Reads the disk only.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::results::resolve_sweeps;
use super::{write_chart, Outcome};
use crate::report::chart::{to_svg, ChartFormat};
use crate::report::effects::export::{effects_note, render, EffectsReport};
use crate::report::effects::{
    dims, effect, frame, heatmap, Dim, Effect, EffectMetric, Heatmap, RunObs,
};
use crate::report::export::Format;
use crate::report::html::EffectFigure;
use crate::report::load::{load, Loaded};
use crate::store::Layout;

/// The target accuracy of `time_to_target` when `--target` is not given.
pub const DEFAULT_TARGET: f64 = 0.9;

/// Options of `rnnsweep results effects`.
#[derive(Clone, Debug)]
pub struct EffectsOptions {
    pub results: PathBuf,
    pub sweeps: Vec<String>,
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

/// The runs and the settings that vary among them.
pub struct EffectsData {
    pub runs: Vec<RunObs>,
    pub dims: Vec<Dim>,
}

impl EffectsData {
    pub fn new(loaded: &Loaded, dirs: &[PathBuf]) -> anyhow::Result<EffectsData> {
        let candidates = frame::candidates(loaded, dirs)?;
        let runs = frame::runs(loaded).context("reading the runs for effects")?;
        let dims = dims(&candidates, &runs);
        Ok(EffectsData { runs, dims })
    }
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

/// "Final test accuracy vs lr — learning_rate".
fn effect_title(e: &Effect, target: f64, name: &str) -> String {
    format!("{} vs {} — {name}", e.metric.title(target), e.axis)
}

fn heatmap_title(h: &Heatmap, target: f64, name: &str) -> String {
    format!("{}: {} × {} — {name}", h.metric.title(target), h.y, h.x)
}

/// The sweeps' folder names joined by " + ", for titles.
fn sweeps_name(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| {
            d.file_name().map_or_else(
                || d.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            )
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// What varies, for messages: "hidden, lr" or "nothing".
fn dim_names(d: &[Dim]) -> String {
    if d.is_empty() {
        return "nothing".into();
    }
    d.iter()
        .map(|d| d.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `results effects`.
pub fn effects_cmd(o: &EffectsOptions) -> anyhow::Result<Outcome> {
    let target = check_target(o.metric, o.target)?;
    let dirs = resolve_sweeps(&o.results, &o.sweeps)?;
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
    let name = sweeps_name(&dirs);
    let out = match &o.out {
        Some(out) => out.clone(),
        None if dirs.len() == 1 => Layout::at(&dirs[0]).effects_dir(),
        None => Layout::at(&o.results).effects_dir(),
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

/// The report's effect charts: for every setting that varies, final test accuracy and training
/// samples/s against it; with exactly two settings varying, the heatmap of final test accuracy.
/// Empty when nothing but the seed varies.
pub fn report_figures(loaded: &Loaded, dirs: &[PathBuf]) -> anyhow::Result<Vec<EffectFigure>> {
    let data = EffectsData::new(loaded, dirs)?;
    let name = sweeps_name(dirs);
    let mut figs = Vec::new();
    // Which runs are in each point, as the tables say it (samples/s counts diverged and
    // collapsed runs, the accuracies do not).
    let rule = |metric| effects_note(metric).join(" ");
    for d in &data.dims {
        for metric in [EffectMetric::FinalTestAcc, EffectMetric::SamplesPerSec] {
            let e = effect(&data.dims, &d.name, &data.runs, metric, DEFAULT_TARGET);
            let title = effect_title(&e, DEFAULT_TARGET, &name);
            let lines = if e.series.len() == 1 {
                String::new()
            } else {
                format!(
                    "; one line per setting of {}",
                    dim_names(
                        &data
                            .dims
                            .iter()
                            .filter(|o| o.name != d.name)
                            .cloned()
                            .collect::<Vec<_>>()
                    )
                )
            };
            figs.push(EffectFigure {
                id: format!("effect-{}-{}", d.name, metric),
                svg: to_svg(&e, &title)?,
                caption: format!(
                    "{title} ({} scale){lines}. {}.",
                    e.scale.name(),
                    rule(metric)
                ),
                title,
            });
        }
    }
    if let Some(h) = heatmap(
        &data.dims,
        &data.runs,
        EffectMetric::FinalTestAcc,
        DEFAULT_TARGET,
    ) {
        let title = heatmap_title(&h, DEFAULT_TARGET, &name);
        figs.push(EffectFigure {
            id: format!("heatmap-{}-{}", h.y, h.x),
            svg: to_svg(&h, &title)?,
            caption: format!(
                "{title}: each cell the mean and n, the runs in it; {}.",
                rule(EffectMetric::FinalTestAcc)
            ),
            title,
        });
    }
    Ok(figs)
}
