//! CSV, one table per output: the summary (one row per group, grouping columns included; every
//! statistic in its own column: intervals as low/high pairs, empty where undefined, the paired
//! difference's method as `t` or `bootstrap`) or the curves (long format: group label, the
//! evaluation schedule as the grid's `eval_every`, epoch, iteration, value; an empty epoch or
//! iteration where the schedule's runs differ in it), so any tool can read it. Labels are never
//! cut.

use ::csv::Writer;

use super::{ExportError, Exporter, Tables};
use crate::report::summarize::Summary;

pub struct CsvExport;

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| x.to_string())
}

impl Exporter for CsvExport {
    fn render(&self, s: &Summary, tables: Tables) -> Result<Vec<u8>, ExportError> {
        type Rows = fn(&mut Writer<Vec<u8>>, &Summary) -> ::csv::Result<()>;
        let (table, rows): (&'static str, Rows) = match tables {
            Tables::Both => return Err(ExportError::CsvOneTable),
            Tables::Summary => ("summary", summary_rows),
            Tables::Curves => ("curves", curve_rows),
        };
        let err = |source| ExportError::Csv { table, source };
        let mut w = Writer::from_writer(Vec::new());
        rows(&mut w, s).map_err(err)?;
        w.into_inner().map_err(|e| err(e.into_error().into()))
    }
}

/// One row per group: the grouping columns, then every statistic.
fn summary_rows(w: &mut Writer<Vec<u8>>, s: &Summary) -> ::csv::Result<()> {
    let mut header: Vec<String> =
        s.by.iter()
            .map(|b| b.trim_start_matches("axis_").to_string())
            .collect();
    header.extend(
        [
            "label",
            "runs",
            "diverged",
            "diverged_low",
            "diverged_high",
            "collapsed",
            "test_acc_n",
            "test_acc_mean",
            "test_acc_std",
            "test_acc_low",
            "test_acc_high",
            "best",
            "best_epoch",
            "best_iteration",
            "best_before_divergence",
            "pruned",
            "best_before_pruning",
            "train_acc_mean",
            "parameters",
            "seconds_per_epoch",
            "samples_per_sec",
            "vs_best_n",
            "vs_best_diff",
            "vs_best_low",
            "vs_best_high",
            "vs_best_method",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    for (i, g) in s.groups.iter().enumerate() {
        let mut rec: Vec<String> = s.by.iter().map(|b| g.key[b].clone()).collect();
        let wilson = g.divergence.interval;
        let ci = g.test_acc_ci;
        let d = g.vs_best.as_ref();
        let d_ci = d.and_then(|d| d.interval);
        rec.extend([
            g.label.clone(),
            g.runs.to_string(),
            g.diverged.to_string(),
            opt(wilson.map(|c| c.low)),
            opt(wilson.map(|c| c.high)),
            g.collapsed.to_string(),
            g.test_acc_n.to_string(),
            opt(g.test_acc_mean),
            opt(g.test_acc_std),
            opt(ci.map(|c| c.low)),
            opt(ci.map(|c| c.high)),
            opt(g.best),
            g.best_epoch.map_or(String::new(), |x| x.to_string()),
            g.best_iteration.map_or(String::new(), |x| x.to_string()),
            g.best_before_divergence.to_string(),
            g.pruned.to_string(),
            g.best_before_pruning.to_string(),
            opt(g.train_acc_mean),
            g.parameters.to_string(),
            g.seconds_per_epoch.to_string(),
            g.samples_per_sec.to_string(),
            // Shared seeds: empty for the best group itself.
            match (i, d) {
                (0, _) => String::new(),
                (_, d) => d.map_or(0, |d| d.n).to_string(),
            },
            opt(d.map(|d| d.mean_diff)),
            opt(d_ci.map(|c| c.low)),
            opt(d_ci.map(|c| c.high)),
            d_ci.map_or(String::new(), |c| c.method.name().to_string()),
        ]);
        w.write_record(&rec)?;
    }
    Ok(())
}

/// Long format: one row per group, schedule and evaluation point with a value.
fn curve_rows(w: &mut Writer<Vec<u8>>, s: &Summary) -> ::csv::Result<()> {
    w.write_record(["label", "eval_every", "epoch", "iteration", s.metric.name()])?;
    let opt_i = |v: Option<i64>| v.map_or(String::new(), |x| x.to_string());
    for t in &s.curves.tables {
        for (j, l) in t.labels.iter().enumerate() {
            for (r, p) in t.points.iter().enumerate() {
                if let Some(v) = t.values[r][j] {
                    w.write_record([
                        l.clone(),
                        t.eval_every.clone(),
                        opt_i(p.epoch),
                        opt_i(p.iteration),
                        v.to_string(),
                    ])?;
                }
            }
        }
    }
    Ok(())
}
