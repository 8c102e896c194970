//! The effect tables as bytes, no I/O: fixed-width text (100 columns), Markdown, CSV (one tidy
//! table: a row per axis, line and value, the same columns for every metric) and JSON (the whole
//! [`EffectsReport`], heatmap included). Every format has one row per point with runs, diverged,
//! collapsed, no value, n, mean, std and the 95 % t interval; `time_to_target` adds "k/n reached"
//! and the seconds. A heatmap's cells are the rows of the effect of its column dim, so CSV needs
//! no second table; the text formats show the heatmap as a matrix of "mean n2 d1 c1" (or "mean
//! k/n"), never cut. Table lines whose labels do not fit get keys (A, B, …) and a legend, so two
//! lines never print the same label; runs without a value of the axis are said in a note.

use std::fmt::Write;

use serde::Serialize;

use super::{Effect, EffectMetric, EffectPoint, Heatmap};
use crate::report::export::{cut, ExportError, Format};
use crate::report::load::Counts;
use crate::report::stats::MeanStats;

/// Everything `results effects` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EffectsReport {
    pub counts: Counts,
    pub metric: EffectMetric,
    /// `time_to_target` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    pub effects: Vec<Effect>,
    /// When exactly two settings vary.
    pub heatmap: Option<Heatmap>,
}

/// What the numbers are, for the text formats: one line each.
pub fn effects_note(metric: EffectMetric) -> Vec<&'static str> {
    let mut v = vec!["mean and 95% t interval over seeds (none below 2 runs);"];
    match metric {
        EffectMetric::SamplesPerSec => v.extend([
            "every run with a throughput counts, diverged (div) and collapsed (col) ones included;",
            "no value (nv): runs without a stored throughput, not in the mean",
        ]),
        EffectMetric::TimeToTarget => v.extend([
            "k/n reached: of the n completed, not collapsed runs, k reached the target (a run",
            "without test evaluations did not); diverged (div) and collapsed (col) runs are left",
            "out of k and n; epochs and seconds: mean over the k runs that reached it",
        ]),
        EffectMetric::FinalTestAcc | EffectMetric::BestTestAcc => v.extend([
            "diverged (div) and collapsed (col) runs are counted, not in the mean; so are",
            "completed runs with no value (nv: NaN accuracy, no test evaluation)",
        ]),
    }
    v
}

/// The note under a table whose axis some runs have no value of.
fn not_shown_note(n: usize, what: &str) -> Option<String> {
    (n > 0).then(|| format!("{n} runs not shown (no value of {what})"))
}

/// Keys for the lines of a table: the labels themselves when the longest fits in `width`, else
/// "A", "B", … "Z", "AA", … with a legend (two lines never print the same label).
fn line_keys(labels: &[&str], width: usize) -> Option<Vec<String>> {
    if labels.iter().all(|l| l.chars().count() <= width) {
        return None;
    }
    Some(
        (0..labels.len())
            .map(|mut i| {
                let mut k = String::new();
                loop {
                    k.insert(0, (b'A' + (i % 26) as u8) as char);
                    if i < 26 {
                        break k;
                    }
                    i = i / 26 - 1;
                }
            })
            .collect(),
    )
}

/// Renders the report in `format`.
pub fn render(r: &EffectsReport, format: Format) -> Result<Vec<u8>, ExportError> {
    Ok(match format {
        Format::Table => table(r).into_bytes(),
        Format::Markdown => markdown(r).into_bytes(),
        Format::Csv => csv(r)?,
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(r).map_err(ExportError::Json)?;
            v.push(b'\n');
            v
        }
    })
}

/// A number for the text formats: "-" for none, "NaN" / "inf" / "-inf" for non-finite ones
/// (a NaN mean is a result, never hidden as "no value").
fn val(v: Option<f64>, d: usize) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.is_nan() => "NaN".into(),
        Some(x) if x.is_infinite() => (if x > 0.0 { "inf" } else { "-inf" }).into(),
        Some(x) => format!("{x:.d$}"),
    }
}

fn ci(s: &MeanStats, d: usize) -> String {
    s.ci.map_or("-".into(), |c| format!("{:.d$}–{:.d$}", c.low, c.high))
}

fn reached(p: &EffectPoint) -> String {
    p.reached.map_or("-".into(), |r| format!("{}/{}", r.k, r.n))
}

/// "final_test_acc by lr (log scale)", "time_to_target (test acc ≥ 0.9) by variant".
fn heading(e: &Effect) -> String {
    let what = match e.target {
        Some(t) => format!("{} (test acc ≥ {t})", e.metric),
        None => e.metric.to_string(),
    };
    format!("{what} by {} ({} scale)", e.axis, e.scale.name())
}

fn heatmap_heading(h: &Heatmap) -> String {
    let what = match h.target {
        Some(t) => format!("{} (epochs to test acc ≥ {t})", h.metric),
        None => h.metric.to_string(),
    };
    format!("{what}: {} (rows) × {} (columns)", h.y, h.x)
}

/// What a heatmap cell says, for the text formats.
fn heatmap_legend(h: &Heatmap) -> &'static str {
    if h.target.is_some() {
        "cells: mean k/n reached, d diverged, c collapsed"
    } else {
        "cells: mean, n runs in the mean, d diverged, c collapsed, nv no value"
    }
}

/// A heatmap cell: "0.9050 n2 d1 c1", "0.75 2/3 d1"; for a pair without runs, "no runs" when no
/// run was left out of the heatmap, else "none shown".
fn cell_text(p: &Option<EffectPoint>, d: usize, not_shown: usize) -> String {
    match p {
        None if not_shown > 0 => "none shown".into(),
        None => "no runs".into(),
        Some(p) => {
            let mut s = val(p.stats.mean, d);
            match p.reached {
                Some(r) => s.push_str(&format!(" {}/{}", r.k, r.n)),
                None => s.push_str(&format!(" n{}", p.stats.n)),
            }
            for (k, c) in [("d", p.diverged), ("c", p.collapsed), ("nv", p.no_value)] {
                if c > 0 {
                    s.push_str(&format!(" {k}{c}"));
                }
            }
            s
        }
    }
}

fn table(r: &EffectsReport) -> String {
    let mut o = String::new();
    writeln!(o, "{}", r.counts.line()).unwrap();
    for l in effects_note(r.metric) {
        writeln!(o, "{l}").unwrap();
    }
    let ttt = r.metric == EffectMetric::TimeToTarget;
    let d = r.metric.decimals();
    for e in &r.effects {
        writeln!(o, "\n{}", heading(e)).unwrap();
        // Values longer than 17 characters get keys "a", "b", … with a legend, so that two
        // values never print the same.
        let vals: Vec<&str> = e.values.iter().map(String::as_str).collect();
        let vkeys: Option<Vec<String>> =
            line_keys(&vals, 17).map(|k| k.iter().map(|k| k.to_lowercase()).collect());
        let value_of = |x: &str| -> String {
            match (&vkeys, e.values.iter().position(|v| v == x)) {
                (Some(k), Some(i)) => k[i].clone(),
                _ => x.to_string(),
            }
        };
        let vw = vals
            .iter()
            .map(|v| value_of(v).chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        let labels: Vec<&str> = e.series.iter().map(|s| s.label.as_str()).collect();
        // The line column may take what keeps a row within 100 characters.
        let keys = line_keys(&labels, 37 - vw);
        let shown: Vec<&str> = match &keys {
            Some(k) => k.iter().map(String::as_str).collect(),
            None => labels.clone(),
        };
        let lw = shown
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        if ttt {
            writeln!(
                o,
                "{:<lw$} {:<vw$} {:>4} {:>3} {:>3} {:>7} {:>7} {:<11} {:>7} {:<11}",
                "line",
                "value",
                "runs",
                "div",
                "col",
                "reached",
                "epochs",
                "95% CI (t)",
                "seconds",
                "95% CI (t)"
            )
            .unwrap();
        } else {
            writeln!(
                o,
                "{:<lw$} {:<vw$} {:>4} {:>3} {:>3} {:>3} {:>3} {:>9} {:>8} {:<21}",
                "line", "value", "runs", "div", "col", "nv", "n", "mean", "std", "95% CI (t)"
            )
            .unwrap();
        }
        for (s, line) in e.series.iter().zip(&shown) {
            for p in &s.points {
                let head = format!(
                    "{:<lw$} {:<vw$} {:>4} {:>3} {:>3}",
                    line,
                    value_of(&p.x),
                    p.runs,
                    p.diverged,
                    p.collapsed
                );
                // Right-aligned to a width, or left-aligned (a negative width).
                let widths: [i32; 5] = if ttt {
                    [7, 7, -11, 7, -11]
                } else {
                    [3, 3, 9, 8, -21]
                };
                let mut row = head;
                for (cell, w) in metric_cells(p, ttt, d).iter().zip(widths) {
                    let width = w.unsigned_abs() as usize;
                    if w < 0 {
                        write!(row, " {cell:<width$}").unwrap();
                    } else {
                        write!(row, " {cell:>width$}").unwrap();
                    }
                }
                writeln!(o, "{row}").unwrap();
            }
        }
        if let Some(keys) = &keys {
            for (k, l) in keys.iter().zip(&labels) {
                writeln!(o, "  {k}: {l}").unwrap();
            }
        }
        if let Some(keys) = &vkeys {
            for (k, v) in keys.iter().zip(&vals) {
                writeln!(o, "  {k}: {}={v}", e.axis).unwrap();
            }
        }
        if let Some(n) = not_shown_note(e.not_shown, &e.axis) {
            writeln!(o, "{n}").unwrap();
        }
    }
    if let Some(h) = &r.heatmap {
        writeln!(o, "\n{}", heatmap_heading(h)).unwrap();
        writeln!(o, "{}", heatmap_legend(h)).unwrap();
        let texts: Vec<Vec<String>> = h
            .cells
            .iter()
            .map(|row| row.iter().map(|c| cell_text(c, d, h.not_shown)).collect())
            .collect();
        // Columns as wide as their widest cell or value, as many per block as fit in 100
        // characters; nothing is cut.
        let w = texts
            .iter()
            .flatten()
            .chain(&h.xs)
            .map(|t| t.chars().count())
            .max()
            .unwrap_or(1);
        let per = ((100 - 16) / (w + 1)).max(1);
        let cols: Vec<usize> = (0..h.xs.len()).collect();
        for (b, block) in cols.chunks(per).enumerate() {
            if b > 0 {
                o.push('\n');
            }
            write!(o, "{:<16}", cut(&h.y, 16)).unwrap();
            for &c in block {
                write!(o, " {:>w$}", h.xs[c]).unwrap();
            }
            o.push('\n');
            for (y, row) in h.ys.iter().zip(&texts) {
                write!(o, "{:<16}", cut(y, 16)).unwrap();
                for &c in block {
                    write!(o, " {:>w$}", row[c]).unwrap();
                }
                o.push('\n');
            }
        }
        if let Some(n) = not_shown_note(h.not_shown, &format!("{} or {}", h.x, h.y)) {
            writeln!(o, "{n}").unwrap();
        }
    }
    // No trailing blanks from the padded last columns.
    o.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

/// Escapes a Markdown table cell.
/// The five metric cells of a point, the same in the text table and Markdown: for time to
/// target reached (k/n), epochs and their interval, seconds and theirs; else no value, n,
/// mean, std and the interval.
fn metric_cells(p: &EffectPoint, ttt: bool, d: usize) -> Vec<String> {
    if ttt {
        let secs = p.seconds.as_ref();
        vec![
            reached(p),
            val(p.stats.mean, d),
            ci(&p.stats, d),
            val(secs.and_then(|s| s.mean), 1),
            secs.map_or("-".into(), |s| ci(s, 1)),
        ]
    } else {
        vec![
            p.no_value.to_string(),
            p.stats.n.to_string(),
            val(p.stats.mean, d),
            val(p.stats.std, d),
            ci(&p.stats, d),
        ]
    }
}

fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

fn markdown(r: &EffectsReport) -> String {
    let mut o = String::new();
    writeln!(
        o,
        "{}\n\n{}.",
        r.counts.line(),
        effects_note(r.metric).join(" ")
    )
    .unwrap();
    let ttt = r.metric == EffectMetric::TimeToTarget;
    let d = r.metric.decimals();
    for e in &r.effects {
        writeln!(o, "\n### {}\n", md(&heading(e))).unwrap();
        if ttt {
            o.push_str("| line | value | runs | diverged | collapsed | reached | epochs (mean) | 95% CI (t) | seconds (mean) | 95% CI (t) |\n");
            o.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        } else {
            o.push_str(
                "| line | value | runs | diverged | collapsed | no value | n | mean | std | 95% CI (t) |\n",
            );
            o.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        }
        for s in &e.series {
            for p in &s.points {
                let head = format!(
                    "| {} | {} | {} | {} | {} |",
                    md(&s.label),
                    md(&p.x),
                    p.runs,
                    p.diverged,
                    p.collapsed
                );
                writeln!(o, "{head} {} |", metric_cells(p, ttt, d).join(" | ")).unwrap();
            }
        }
        if let Some(n) = not_shown_note(e.not_shown, &e.axis) {
            writeln!(o, "\n{n}.").unwrap();
        }
    }
    if let Some(h) = &r.heatmap {
        writeln!(o, "\n### {}\n", md(&heatmap_heading(h))).unwrap();
        writeln!(o, "{}.\n", heatmap_legend(h)).unwrap();
        write!(o, "| {} |", md(&h.y)).unwrap();
        for x in &h.xs {
            write!(o, " {}={} |", md(&h.x), md(x)).unwrap();
        }
        o.push_str("\n|---|");
        o.push_str(&"--:|".repeat(h.xs.len()));
        o.push('\n');
        for (y, row) in h.ys.iter().zip(&h.cells) {
            write!(o, "| {} |", md(y)).unwrap();
            for c in row {
                write!(o, " {} |", md(&cell_text(c, d, h.not_shown))).unwrap();
            }
            o.push('\n');
        }
        if let Some(n) = not_shown_note(h.not_shown, &format!("{} or {}", h.x, h.y)) {
            writeln!(o, "\n{n}.").unwrap();
        }
    }
    o
}

/// One CSV row: a point of a line of an effect.
#[derive(Serialize)]
struct CsvRow<'a> {
    metric: &'static str,
    target: Option<f64>,
    axis: &'a str,
    scale: &'static str,
    line: &'a str,
    value: &'a str,
    runs: usize,
    diverged: usize,
    collapsed: usize,
    no_value: usize,
    n: usize,
    mean: Option<f64>,
    std: Option<f64>,
    ci_low: Option<f64>,
    ci_high: Option<f64>,
    reached: Option<usize>,
    reached_of: Option<usize>,
    seconds_mean: Option<f64>,
    seconds_ci_low: Option<f64>,
    seconds_ci_high: Option<f64>,
}

fn csv(r: &EffectsReport) -> Result<Vec<u8>, ExportError> {
    let err = |source| ExportError::Csv {
        table: "effects",
        source,
    };
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for e in &r.effects {
        for s in &e.series {
            for p in &s.points {
                let secs = p.seconds.as_ref();
                w.serialize(CsvRow {
                    metric: e.metric.name(),
                    target: e.target,
                    axis: &e.axis,
                    scale: e.scale.name(),
                    line: &s.label,
                    value: &p.x,
                    runs: p.runs,
                    diverged: p.diverged,
                    collapsed: p.collapsed,
                    no_value: p.no_value,
                    n: p.stats.n,
                    mean: p.stats.mean,
                    std: p.stats.std,
                    ci_low: p.stats.ci.map(|c| c.low),
                    ci_high: p.stats.ci.map(|c| c.high),
                    reached: p.reached.map(|r| r.k),
                    reached_of: p.reached.map(|r| r.n),
                    seconds_mean: secs.and_then(|s| s.mean),
                    seconds_ci_low: secs.and_then(|s| s.ci.map(|c| c.low)),
                    seconds_ci_high: secs.and_then(|s| s.ci.map(|c| c.high)),
                })
                .map_err(err)?;
            }
        }
    }
    if r.effects.is_empty() {
        // The header alone, so an empty result is still a table with known columns.
        w.write_record([
            "metric",
            "target",
            "axis",
            "scale",
            "line",
            "value",
            "runs",
            "diverged",
            "collapsed",
            "no_value",
            "n",
            "mean",
            "std",
            "ci_low",
            "ci_high",
            "reached",
            "reached_of",
            "seconds_mean",
            "seconds_ci_low",
            "seconds_ci_high",
        ])
        .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| err(::csv::Error::from(e.into_error())))
}
