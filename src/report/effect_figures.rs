//! The HTML report's effect charts ([`report_figures`]), and what `results effects` shares with
//! them: the runs and the settings that vary among them ([`EffectsData`]) and the charts'
//! titles. Reads the loaded frames and each sweep's spec.toml; draws SVG, writes no file.

use std::path::PathBuf;

use polars::prelude::PolarsError;

use super::chart::{sweep_names, to_svg, ChartError};
use super::effects::export::effects_note;
use super::effects::{
    dim_names, dims, effect, frame, heatmap, Dim, Effect, EffectMetric, Heatmap, RunObs,
    DEFAULT_TARGET,
};
use super::html::EffectFigure;
use super::load::{LoadError, Loaded};

/// What reading the runs for effects or drawing their charts can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EffectsError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("reading the runs for effects")]
    Runs(#[source] PolarsError),
    #[error(transparent)]
    Chart(#[from] ChartError),
}

/// The runs and the settings that vary among them.
pub struct EffectsData {
    pub runs: Vec<RunObs>,
    pub dims: Vec<Dim>,
}

impl EffectsData {
    pub fn new(loaded: &Loaded, dirs: &[PathBuf]) -> Result<EffectsData, EffectsError> {
        let candidates = frame::candidates(loaded, dirs)?;
        let runs = frame::runs(loaded).map_err(EffectsError::Runs)?;
        let dims = dims(&candidates, &runs);
        Ok(EffectsData { runs, dims })
    }
}

/// "Final test accuracy vs lr — learning_rate".
pub fn effect_title(e: &Effect, target: f64, name: &str) -> String {
    format!("{} vs {} — {name}", e.metric.title(target), e.axis)
}

pub fn heatmap_title(h: &Heatmap, target: f64, name: &str) -> String {
    format!("{}: {} × {} — {name}", h.metric.title(target), h.y, h.x)
}

/// The report's effect charts: for every setting that varies, final test accuracy and training
/// samples/s against it; with exactly two settings varying, the heatmap of final test accuracy.
/// Empty when nothing but the seed varies.
pub fn report_figures(
    loaded: &Loaded,
    dirs: &[PathBuf],
) -> Result<Vec<EffectFigure>, EffectsError> {
    let data = EffectsData::new(loaded, dirs)?;
    let name = sweep_names(dirs).join(" + ");
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
