//! `bench --report RUNS`: how long `results summarize` takes on a synthetic sweep of RUNS
//! completed cells, written with the store's own writers to a temporary folder.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::trainer::config::presets::preset;

/// `bench --report RUNS`: [`report_bench`] in a temporary folder (removed afterwards), printed.
pub(super) fn report_bench_cmd(runs: usize, json: bool) -> anyhow::Result<Outcome> {
    if runs == 0 {
        anyhow::bail!("--report needs at least 1 run");
    }
    let tmp = std::env::temp_dir().join(format!("rnnsweep-report-bench-{}", std::process::id()));
    let r = report_bench(&tmp, runs, 30);
    let _ = std::fs::remove_dir_all(&tmp);
    let r = r?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "results summarize on {} runs x {} epochs ({} metric rows): load {:.2}s, summarize {:.2}s, render {:.3}s, total {:.2}s (writing the synthetic sweep took {:.1}s)",
            r.runs, r.epochs, r.metric_rows, r.load_seconds, r.summarize_seconds, r.render_seconds,
            r.load_seconds + r.summarize_seconds + r.render_seconds, r.write_seconds
        );
    }
    Ok(Outcome::Ok)
}

/// Timings of `results summarize` on a synthetic sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportBench {
    pub runs: usize,
    pub epochs: usize,
    pub metric_rows: usize,
    pub write_seconds: f64,
    pub load_seconds: f64,
    pub summarize_seconds: f64,
    pub render_seconds: f64,
}

/// Writes a sweep of `runs` completed cells × `epochs` evaluations (train + test rows each)
/// under `dir` with the store's own writers, then times loading, summarizing (100 variants ×
/// runs/100 seeds) and rendering the terminal table.
pub fn report_bench(
    dir: &std::path::Path,
    runs: usize,
    epochs: usize,
) -> anyhow::Result<ReportBench> {
    use crate::plan::{cell_id, Cell, Plan};
    use crate::report::{export, load, summarize};
    use crate::store::{CellResult, RunStore};
    use crate::trainer::record::*;
    let t0 = Instant::now();
    let variants = 100.min(runs.max(1));
    let mut cells = Vec::with_capacity(runs);
    for i in 0..runs {
        let mut cfg = preset("lstm_h64")?;
        cfg.model.hidden = 8 + i % variants;
        cfg.seed = (i / variants) as u64;
        cfg.budget = crate::trainer::config::Budget::Epochs(epochs as u32);
        cfg.model = cfg.model.normalized();
        let coords = [("seed".to_string(), cfg.seed.to_string())]
            .into_iter()
            .collect();
        cells.push(Cell {
            index: i,
            id: cell_id(&cfg),
            variant: format!("h{}", cfg.model.hidden),
            coords,
            config: cfg,
        });
    }
    let plan = Plan {
        name: "bench".into(),
        description: String::new(),
        axes: vec![],
        cells,
        duplicate_draws: 0,
        prune: None,
    };
    let store = RunStore::open(dir, "bench");
    store.init("# synthetic\n", &plan)?;
    for (i, cell) in plan.cells.iter().enumerate() {
        std::fs::create_dir_all(store.layout.run_dir(&cell.id))?;
        let acc =
            |e: usize| 0.5 + 0.45 * (e as f64 / epochs as f64) + 0.001 * ((i * 7919 % 13) as f64);
        let metrics: Vec<MetricRow> = (1..=epochs)
            .flat_map(|e| {
                [MetricSplit::Train, MetricSplit::Test].map(|split| MetricRow {
                    epoch: e as u64,
                    iteration: (e * 938) as u64,
                    split,
                    loss: 1.0 - acc(e),
                    acc: acc(e),
                    samples: 60_000,
                    seconds: e as f64 * 10.0,
                    samples_per_sec: (split == MetricSplit::Train).then_some(6000.0),
                    grad_norm: (split == MetricSplit::Train).then_some(1.0),
                    grad_norm_max: (split == MetricSplit::Train).then_some(2.0),
                    lr: Some(0.1),
                })
            })
            .collect();
        store.write_metrics(&cell.id, &metrics)?;
        let record = RunRecord {
            format_version: FORMAT_VERSION,
            config: cell.config.clone(),
            status: RunStatus::Completed,
            device: "cpu".into(),
            parameters: crate::trainer::model::layout::param_count(&cell.config.model),
            iterations: (epochs * 938) as u64,
            train_seconds: 10.0 * epochs as f64,
            eval_seconds: 1.0,
            samples_per_sec: 6000.0,
            final_test_acc: Some(acc(epochs)),
            final_test_loss: Some(1.0 - acc(epochs)),
            metrics,
            epochs: (1..=epochs as u64)
                .map(|e| EpochStats {
                    epoch: e,
                    iterations: 938,
                    samples: 60_000,
                    seconds: 10.0,
                    samples_per_sec: 6000.0,
                })
                .collect(),
            collapsed: false,
            top_class: None,
            origin: None,
        };
        let result = CellResult {
            format_version: FORMAT_VERSION,
            cell_id: cell.id.clone(),
            index: i,
            variant: cell.variant.clone(),
            coords: cell.coords.clone(),
            record,
        };
        std::fs::write(
            store.layout.result_json(&cell.id),
            serde_json::to_vec(&result)?,
        )?;
    }
    let write_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let loaded = load::load(&[store.layout.root().to_owned()])?;
    let load_seconds = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let s = summarize::summarize(
        &loaded,
        &summarize::default_by(&loaded),
        summarize::Metric::TestAcc,
    )?;
    let summarize_seconds = t2.elapsed().as_secs_f64();
    let t3 = Instant::now();
    let bytes = export::exporter_for(export::Format::Table).render(&s, export::Tables::Both)?;
    let render_seconds = t3.elapsed().as_secs_f64();
    anyhow::ensure!(
        s.counts.completed == runs && !bytes.is_empty(),
        "the synthetic sweep did not load completely"
    );
    Ok(ReportBench {
        runs,
        epochs,
        metric_rows: runs * epochs * 2,
        write_seconds,
        load_seconds,
        summarize_seconds,
        render_seconds,
    })
}
