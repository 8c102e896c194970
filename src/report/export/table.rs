//! Fixed-width text for a terminal of 100 columns. The variant table keeps the statistics
//! (diverged k/n, collapsed, final test accuracy mean±std, n and t interval, best point, paired
//! difference vs the best); train accuracy, parameters and speed are in the other formats. The
//! divergence rates' Wilson intervals follow in their own block when any run diverged. Wide curve
//! tables are split into blocks.

use std::fmt::Write;

use super::{
    acc_ci, cut, mean_std, num, point, vs_best, wilson_pct, wrap, ExportError, Exporter, Tables,
    STATS_NOTE,
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
        if tables != Tables::Curves {
            writeln!(
                out,
                "\n{:<16} {:>5} {:>3} {:<13} {:>3} {:<14} {:>6} {:<9} {:>21}",
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
                    "{:<16} {:>5} {:>3} {:<13} {:>3} {:<14} {:>6} {:<9} {:>21}",
                    cut(&g.label, 16),
                    format!("{}/{}", g.diverged, g.runs),
                    g.collapsed,
                    mean_std(g, "±"),
                    g.test_acc_n,
                    acc_ci(g),
                    num(g.best, 4),
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
                for g in &s.groups {
                    writeln!(
                        out,
                        "{:<16} {:>5} {:>13}",
                        cut(&g.label, 16),
                        format!("{}/{}", g.diverged, g.runs),
                        wilson_pct(&g.divergence)
                    )
                    .unwrap();
                }
            }
            out.push('\n');
            let notes = [
                format!(
                    "best: best seed-mean {} over evaluation points; div: diverged of runs \
                     loaded; col: collapsed.",
                    s.metric.name()
                ),
                STATS_NOTE[0].to_string(),
                STATS_NOTE[3].to_string(),
                "train acc, parameters and speed: --format markdown, csv or json.".to_string(),
            ];
            for n in notes {
                for l in wrap(&n, WIDTH, 2) {
                    writeln!(out, "{l}").unwrap();
                }
            }
        }
        if tables != Tables::Summary && !s.curves.labels.is_empty() {
            let c = &s.curves;
            let per_block = ((WIDTH - 14) / 10).max(1);
            for block in (0..c.labels.len()).collect::<Vec<_>>().chunks(per_block) {
                write!(
                    out,
                    "\n{} (mean over seeds)\n{:>5} {:>7}",
                    c.metric.name(),
                    "epoch",
                    "iter"
                )
                .unwrap();
                for &j in block {
                    write!(out, " {:>9}", cut(&c.labels[j], 9)).unwrap();
                }
                out.push('\n');
                for (r, (e, it)) in c.points.iter().enumerate() {
                    write!(out, "{e:>5} {it:>7}").unwrap();
                    for &j in block {
                        write!(out, " {:>9}", num(c.values[r][j], 4)).unwrap();
                    }
                    out.push('\n');
                }
            }
        }
        Ok(out.into_bytes())
    }
}
