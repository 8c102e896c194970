//! `rnnsweep train`: one training run with a progress bar, a metrics table as it goes, and its
//! files in an output directory: `config.json` (first), `metrics.csv` (rewritten atomically after
//! every evaluation, so a crash loses at most the current window), `weights.safetensors` (for a
//! completed run) and `result.json` (last). The run's config is a recipe or the default with
//! the flags applied (`trainer::config::presets`), checked here along with `--threads`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use indicatif::ProgressBar;

use super::{progress, with_threads, Outcome};
use crate::fsutil::write_atomic;
use crate::store::{MetricsLog, RunDir};
use crate::trainer::backend::device::DeviceRequest;
use crate::trainer::backend::TrainerChoice;
use crate::trainer::config::keys::Given;
use crate::trainer::config::presets::preset_or_default;
use crate::trainer::config::TrainConfig;
use crate::trainer::fit::checkpoint::Span;
use crate::trainer::fit::{Observer, StepInfo};
use crate::trainer::record::{MetricRow, MetricSplit, RunRecord, RunStatus};
use crate::trainer::Trained;

/// Everything `rnnsweep train` needs, as given on the command line.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Start from this tutorial recipe (see `trainer::config::presets`) instead of the default
    /// config.
    pub preset: Option<String>,
    /// The seed instead of the recipe's (or the default's 0).
    pub seed: Option<u64>,
    /// The settings given as flags, written onto the recipe or default.
    pub settings: Given,
    /// The real trainer or the fake one (tests).
    pub trainer: TrainerChoice,
    /// The device of the real trainer.
    pub device: DeviceRequest,
    /// CPU threads for matrix products (at least 1).
    pub threads: usize,
    /// The data folder as given [default: see `data::resolve_base`]; the config's data set is
    /// read from its folder there (`data::dataset_dir`).
    pub data_dir: Option<PathBuf>,
    /// Output directory (default `results/train/<config slug>`).
    pub out: Option<PathBuf>,
    /// Print the final record as JSON on stdout (tables go to stderr).
    pub json: bool,
    pub quiet: bool,
}

/// The config `train` runs: the recipe (or the default) with the flags applied, validated.
pub fn config(
    preset: Option<&str>,
    seed: Option<u64>,
    settings: &Given,
) -> anyhow::Result<TrainConfig> {
    let mut base = preset_or_default(preset)?;
    base.seed = seed.unwrap_or(base.seed);
    settings
        .apply_to(base)
        .context("check the training flags (rnnsweep train --help)")
}

/// Progress bar + metric table + incremental CSV.
struct TrainObserver {
    bar: ProgressBar,
    metrics: MetricsLog,
    json: bool,
    quiet: bool,
}

const HEADER: &str = "epoch      iter  train loss  train acc   test loss   test acc   samples/s";

impl TrainObserver {
    fn print(&self, text: &str) {
        if self.quiet {
            return;
        }
        if self.json {
            progress::line(&self.bar, text);
        } else {
            self.bar.suspend(|| println!("{text}"));
        }
    }
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.prec$}"))
}

impl Observer for TrainObserver {
    fn started(&self, device: &str, note: Option<&str>) {
        self.print(&format!(
            "device: {device}{}",
            note.map(|n| format!(" ({n})")).unwrap_or_default()
        ));
        self.print(HEADER);
    }

    fn step(&self, info: &StepInfo) {
        self.bar.set_position(info.iteration);
        if info.batch_in_epoch == 1 || info.iteration.is_multiple_of(20) {
            self.bar
                .set_message(format!("epoch {} loss {:.4}", info.epoch, info.loss));
        }
    }

    fn eval(&self, rows: &[MetricRow]) {
        let train = rows.iter().find(|r| r.split == MetricSplit::Train);
        let test = rows.iter().find(|r| r.split == MetricSplit::Test);
        let any = train.or(test).expect("an evaluation point has rows");
        self.print(&format!(
            "{:>5} {:>9} {:>11} {:>10} {:>11} {:>10} {:>11}",
            any.epoch,
            any.iteration,
            fmt_opt(train.map(|r| r.loss), 4),
            fmt_opt(train.map(|r| r.acc), 4),
            fmt_opt(test.map(|r| r.loss), 4),
            fmt_opt(test.map(|r| r.acc), 4),
            fmt_opt(train.and_then(|r| r.samples_per_sec), 0),
        ));
        self.metrics.append(rows);
    }
}

/// Runs `rnnsweep train`. `stop` is set by the Ctrl-C handler.
pub fn train_cmd(opts: &TrainOptions, stop: &AtomicBool) -> anyhow::Result<Outcome> {
    if opts.threads == 0 {
        anyhow::bail!("--threads must be at least 1");
    }
    let cfg = &config(opts.preset.as_deref(), opts.seed, &opts.settings)?;
    let backend = opts.trainer.backend(opts.device);
    backend.check_device()?;
    let data = match backend.needs_data() {
        true => Some(crate::data::load_sets(
            opts.data_dir.as_deref(),
            [cfg.dataset],
            opts.quiet,
        )?),
        false => None,
    };
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join("train").join(cfg.slug()));
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    let run = RunDir::at(&out);
    let config_path = run.config_json();
    write_atomic(&config_path, &serde_json::to_vec_pretty(cfg)?)
        .with_context(|| format!("cannot write {}", config_path.display()))?;

    let obs = TrainObserver {
        bar: progress::step_bar(cfg.total_iterations(), opts.quiet),
        metrics: MetricsLog::new(run.metrics_csv()),
        json: opts.json,
        quiet: opts.quiet,
    };
    obs.print(&format!(
        "training {} on {} with {} lr {} batch {} for {} steps ({} per epoch), seed {}",
        cfg.model.label(),
        cfg.dataset.title(),
        cfg.optim.kind,
        cfg.optim.lr,
        cfg.batch_size,
        cfg.total_iterations(),
        cfg.batches_per_epoch(),
        cfg.seed
    ));
    let Trained { record, weights } = with_threads(opts.threads, || {
        backend.with_trainer(data.as_ref(), |t| t.train(cfg, &obs, stop, Span::whole()))
    })??;
    obs.bar.finish_and_clear();
    if let Some(e) = obs.metrics.take_error() {
        anyhow::bail!(e);
    }
    // Final files: the CSV again (it may hold no rows yet, e.g. interrupted before any eval),
    // then the result record last.
    write_atomic(obs.metrics.path(), &RunRecord::metrics_csv(&record.metrics))
        .with_context(|| format!("cannot write {}", obs.metrics.path().display()))?;
    let weights_path = run.weights();
    match &weights {
        Some(w) => write_atomic(&weights_path, w)
            .with_context(|| format!("cannot write {}", weights_path.display()))?,
        None => match std::fs::remove_file(&weights_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot remove stale {}", weights_path.display())))
            }
            _ => {}
        },
    }
    let result_path = run.result_json();
    write_atomic(&result_path, &serde_json::to_vec_pretty(&record)?)
        .with_context(|| format!("cannot write {}", result_path.display()))?;

    let summary = format!(
        "{} after {} steps on {}: final test accuracy {}{}, {:.0} samples/s, {:.1}s training\nwrote {}",
        record.status.name(),
        record.iterations,
        record.device,
        fmt_opt(record.final_test_acc, 4),
        super::sweep::collapse_note(&record),
        record.samples_per_sec,
        record.train_seconds,
        out.display()
    );
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    }
    if !opts.quiet {
        eprintln!("{summary}");
    }
    Ok(match record.status {
        RunStatus::Completed => Outcome::Ok,
        RunStatus::Diverged {
            epoch,
            iteration,
            non_finite,
        } => {
            let what = non_finite.map_or("the loss".into(), |n| n.to_string());
            eprintln!("{what} became NaN/inf at epoch {epoch}, step {iteration}: the run diverged");
            Outcome::RunFailed
        }
        RunStatus::Interrupted { .. } => Outcome::Interrupted,
        // `train` runs no [prune] rungs; a pruned run is a finished one.
        RunStatus::Pruned { .. } => Outcome::Ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::keys::Value;
    use crate::trainer::config::presets::preset;
    use crate::trainer::config::{LayerKind, ModelConfig};

    #[test]
    fn config_is_the_preset_with_the_flags_then_validated() {
        let o = Given(vec![("cell", Value::Word("gru".into()))]);
        let c = config(Some("model_c"), None, &o).unwrap();
        let mut want = preset("model_c").unwrap();
        want.model = ModelConfig {
            cell: LayerKind::Gru,
            activation: None,
            ..want.model
        };
        assert_eq!(c, want);
        assert!(config(Some("model_d"), None, &o)
            .unwrap_err()
            .to_string()
            .contains("known presets"));
    }

    #[test]
    fn invalid_flags_say_where_to_look() {
        let o = Given(vec![("momentum", Value::Float(0.9))]);
        let e = config(None, Some(3), &o).unwrap_err();
        assert_eq!(
            e.to_string(),
            "check the training flags (rnnsweep train --help)"
        );
        assert!(
            format!("{e:#}").contains("momentum applies only where optimizer = sgd"),
            "{e:#}"
        );
    }
}
