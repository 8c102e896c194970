//! The effect tables as bytes, no I/O: fixed-width text (100 columns), Markdown, CSV (one tidy
//! table: a row per axis, line and value, the same columns for every metric) and JSON (the whole
//! [`EffectsReport`], heatmap included). Every format has one row per point with runs, diverged,
//! collapsed, n, mean, std and the 95 % t interval; `time_to_target` adds "k/n reached" and the
//! seconds. A heatmap's cells are the rows of the effect of its column dim, so CSV needs no
//! second table; the text formats show the heatmap as a matrix of "mean (n)".

use std::fmt::Write;

use serde::Serialize;

use super::{Effect, EffectMetric, EffectPoint, Heatmap};
use crate::report::export::{cut, num, ExportError, Format};
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

/// What the numbers are, for the text formats.
pub const EFFECTS_NOTE: [&str; 2] = [
    "mean and 95% t interval over seeds (none below 2 runs);",
    "diverged (div) and collapsed (col) runs are counted, not in the mean",
];

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
    format!("{what}: {} (rows) × {} (columns), mean (n)", h.y, h.x)
}

fn cell_text(p: &Option<EffectPoint>, d: usize) -> String {
    match p {
        None => "no runs".into(),
        Some(p) => {
            let mut s = format!("{} ({})", num(p.stats.mean, d), p.stats.n);
            if p.diverged > 0 {
                s.push_str(&format!(" {} div", p.diverged));
            }
            if p.collapsed > 0 {
                s.push_str(&format!(" {} col", p.collapsed));
            }
            s
        }
    }
}

fn table(r: &EffectsReport) -> String {
    let mut o = String::new();
    writeln!(o, "{}", r.counts.line()).unwrap();
    writeln!(o, "{}\n{}", EFFECTS_NOTE[0], EFFECTS_NOTE[1]).unwrap();
    let ttt = r.metric == EffectMetric::TimeToTarget;
    let d = r.metric.decimals();
    for e in &r.effects {
        writeln!(o, "\n{}", heading(e)).unwrap();
        if ttt {
            writeln!(
                o,
                "{:<20} {:<17} {:>4} {:>3} {:>3} {:>7} {:>7} {:<11} {:>7} {:<11}",
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
                "{:<20} {:<17} {:>4} {:>3} {:>3} {:>3} {:>10} {:>9} {:<21}",
                "line", "value", "runs", "div", "col", "n", "mean", "std", "95% CI (t)"
            )
            .unwrap();
        }
        for s in &e.series {
            for p in &s.points {
                let head = format!(
                    "{:<20} {:<17} {:>4} {:>3} {:>3}",
                    cut(&s.label, 20),
                    cut(&p.x, 17),
                    p.runs,
                    p.diverged,
                    p.collapsed
                );
                if ttt {
                    let secs = p.seconds.as_ref();
                    writeln!(
                        o,
                        "{head} {:>7} {:>7} {:<11} {:>7} {:<11}",
                        reached(p),
                        num(p.stats.mean, d),
                        ci(&p.stats, d),
                        num(secs.and_then(|s| s.mean), 1),
                        secs.map_or("-".into(), |s| ci(s, 1)),
                    )
                    .unwrap();
                } else {
                    writeln!(
                        o,
                        "{head} {:>3} {:>10} {:>9} {:<21}",
                        p.stats.n,
                        num(p.stats.mean, d),
                        num(p.stats.std, d),
                        ci(&p.stats, d),
                    )
                    .unwrap();
                }
            }
        }
    }
    if let Some(h) = &r.heatmap {
        writeln!(o, "\n{}", heatmap_heading(h)).unwrap();
        // Four columns per block, so a line stays within 100 characters.
        let cols: Vec<usize> = (0..h.xs.len()).collect();
        for (b, block) in cols.chunks(4).enumerate() {
            if b > 0 {
                o.push('\n');
            }
            write!(o, "{:<16}", cut(&h.y, 16)).unwrap();
            for &c in block {
                write!(o, " {:>20}", cut(&h.xs[c], 20)).unwrap();
            }
            o.push('\n');
            for (y, row) in h.ys.iter().zip(&h.cells) {
                write!(o, "{:<16}", cut(y, 16)).unwrap();
                for &c in block {
                    write!(o, " {:>20}", cut(&cell_text(&row[c], d), 20)).unwrap();
                }
                o.push('\n');
            }
        }
    }
    // No trailing blanks from the padded last columns.
    o.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

/// Escapes a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

fn markdown(r: &EffectsReport) -> String {
    let mut o = String::new();
    writeln!(o, "{}\n\n{}.", r.counts.line(), EFFECTS_NOTE.join(" ")).unwrap();
    let ttt = r.metric == EffectMetric::TimeToTarget;
    let d = r.metric.decimals();
    for e in &r.effects {
        writeln!(o, "\n### {}\n", md(&heading(e))).unwrap();
        if ttt {
            o.push_str("| line | value | runs | diverged | collapsed | reached | epochs (mean) | 95% CI (t) | seconds (mean) | 95% CI (t) |\n");
            o.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        } else {
            o.push_str(
                "| line | value | runs | diverged | collapsed | n | mean | std | 95% CI (t) |\n",
            );
            o.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
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
                if ttt {
                    let secs = p.seconds.as_ref();
                    writeln!(
                        o,
                        "{head} {} | {} | {} | {} | {} |",
                        reached(p),
                        num(p.stats.mean, d),
                        ci(&p.stats, d),
                        num(secs.and_then(|s| s.mean), 1),
                        secs.map_or("-".into(), |s| ci(s, 1)),
                    )
                    .unwrap();
                } else {
                    writeln!(
                        o,
                        "{head} {} | {} | {} | {} |",
                        p.stats.n,
                        num(p.stats.mean, d),
                        num(p.stats.std, d),
                        ci(&p.stats, d),
                    )
                    .unwrap();
                }
            }
        }
    }
    if let Some(h) = &r.heatmap {
        writeln!(o, "\n### {}\n", md(&heatmap_heading(h))).unwrap();
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
                write!(o, " {} |", md(&cell_text(c, d))).unwrap();
            }
            o.push('\n');
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
