//! Fixed-width text for a terminal of 100 columns. The variant table keeps the statistics
//! (diverged k/n, collapsed, final test accuracy mean±std, n and t interval, best point, marked
//! † when it is from before divergence, paired difference vs the best); train accuracy, parameters and speed are in the other formats. The
//! divergence rates' Wilson intervals follow in their own block when any run diverged. One curve
//! table per evaluation schedule; wide ones are split into blocks. A label that does not fit its
//! column is never cut (two cut labels can read the same): the table shows every group's short
//! key (A, B, …) instead, with a legend of the full labels below it.

use std::fmt::Write;

use super::{
    acc_ci, any_before_divergence, any_before_pruning, best, coord, cut, fitted, legend, mean_std,
    num, point, vs_best, wilson_pct, wrap, ExportError, Exporter, Tables, BEFORE_DIVERGENCE_NOTE,
    BEFORE_PRUNING_NOTE, STATS_NOTE,
};
use crate::report::summarize::Summary;

pub struct TableExport;

const WIDTH: usize = 100;

/// Diverged and collapsed runs listed one per line, at most this many of each.
const LIST_MAX: usize = 10;

impl Exporter for TableExport {
    fn render(&self, s: &Summary, tables: Tables) -> Result<Vec<u8>, ExportError> {
        let mut out = String::new();
        writeln!(out, "{}", s.counts.line()).unwrap();
        for f in s
            .counts
            .failure_lines()
            .into_iter()
            .chain(s.counts.outcome_lines(LIST_MAX))
        {
            writeln!(out, "{}", cut(&f, WIDTH)).unwrap();
        }
        let labels: Vec<String> = s.groups.iter().map(|g| g.label.clone()).collect();
        let all: Vec<usize> = (0..labels.len()).collect();
        let (shown, keyed) = fitted(&labels, &all, 16);
        if tables != Tables::Curves {
            writeln!(
                out,
                "\n{:<16} {:>5} {:>3} {:<13} {:>3} {:<13} {:>7} {:<9} {:>21}",
                "variant",
                "div",
                "col",
                "test acc ±std",
                "n",
                "95% CI (t)",
                "best",
                "at",
                "vs best (pp, 95%)"
            )
            .unwrap();
            for (i, g) in s.groups.iter().enumerate() {
                writeln!(
                    out,
                    "{:<16} {:>5} {:>3} {:<13} {:>3} {:<13} {:>7} {:<9} {:>21}",
                    shown[i],
                    format!("{}/{}", g.diverged, g.runs),
                    g.collapsed,
                    mean_std(g, "±"),
                    g.test_acc_n,
                    acc_ci(g),
                    best(g, ("†", "‡")),
                    point(g.best_epoch, g.best_iteration),
                    vs_best(g, i == 0, 1, false),
                )
                .unwrap();
            }
            if s.groups.iter().any(|g| g.diverged > 0) {
                writeln!(
                    out,
                    "\n{:<16} {:>5} {:>13}",
                    "diverged", "k/n", "95% Wilson"
                )
                .unwrap();
                for (g, name) in s.groups.iter().zip(&shown) {
                    writeln!(
                        out,
                        "{:<16} {:>5} {:>13}",
                        name,
                        format!("{}/{}", g.diverged, g.runs),
                        wilson_pct(&g.divergence)
                    )
                    .unwrap();
                }
            }
            if keyed {
                out.push('\n');
                for l in legend(&labels, &all, WIDTH) {
                    writeln!(out, "{l}").unwrap();
                }
            }
            out.push('\n');
            let mut notes = vec![format!(
                "best: best seed-mean {} over evaluation points; div: diverged of runs \
                 loaded; col: collapsed.",
                s.metric.name()
            )];
            if any_before_divergence(s) {
                notes.push(format!("†: {BEFORE_DIVERGENCE_NOTE}"));
            }
            if any_before_pruning(s) {
                notes.push(format!("‡: {BEFORE_PRUNING_NOTE}"));
            }
            notes.extend([
                STATS_NOTE[0].to_string(),
                STATS_NOTE[3].to_string(),
                "train acc, parameters and speed: --format markdown, csv or json.".to_string(),
            ]);
            for n in notes {
                for l in wrap(&n, WIDTH, 2) {
                    writeln!(out, "{l}").unwrap();
                }
            }
        }
        if tables != Tables::Summary {
            let per_block = ((WIDTH - 14) / 10).max(1);
            for t in &s.curves.tables {
                let (shown, keyed) = fitted(&t.labels, &t.groups, 9);
                let cols: Vec<usize> = (0..t.labels.len()).collect();
                for block in cols.chunks(per_block) {
                    write!(
                        out,
                        "\n{} (mean over seeds), evaluated {}\n{:>5} {:>7}",
                        s.curves.metric.name(),
                        t.schedule(),
                        "epoch",
                        "step"
                    )
                    .unwrap();
                    for &j in block {
                        write!(out, " {:>9}", shown[j]).unwrap();
                    }
                    out.push('\n');
                    for (r, p) in t.points.iter().enumerate() {
                        write!(out, "{:>5} {:>7}", coord(p.epoch), coord(p.iteration)).unwrap();
                        for &j in block {
                            write!(out, " {:>9}", num(t.values[r][j], 4)).unwrap();
                        }
                        out.push('\n');
                    }
                }
                if keyed {
                    out.push('\n');
                    for l in legend(&t.labels, &t.groups, WIDTH) {
                        writeln!(out, "{l}").unwrap();
                    }
                }
            }
        }
        Ok(out.into_bytes())
    }
}
