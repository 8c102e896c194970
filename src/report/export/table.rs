//! Fixed-width text for a terminal of 100 columns. Wide curve tables are split into blocks.

use std::fmt::Write;

use super::{cut, mean_std, num, point, vs_best, Exporter, Tables};
use crate::report::summarize::Summary;

pub struct TableExport;

const WIDTH: usize = 100;

impl Exporter for TableExport {
    fn render(&self, s: &Summary, tables: Tables) -> Result<Vec<u8>, String> {
        let mut out = String::new();
        writeln!(out, "{}", s.counts.line()).unwrap();
        for f in s.counts.failure_lines() {
            writeln!(out, "{}", cut(&f, WIDTH)).unwrap();
        }
        if tables != Tables::Curves {
            writeln!(
                out,
                "\n{:<16} {:>4} {:>3} {:<13} {:>6} {:<10} {:>6} {:>7} {:>5} {:>19}",
                "variant",
                "runs",
                "div",
                "test acc",
                "best",
                "at",
                "train",
                "params",
                "s/ep",
                "vs best (pp, 95%)"
            )
            .unwrap();
            for (i, g) in s.groups.iter().enumerate() {
                let acc = mean_std(g, "±");
                writeln!(
                    out,
                    "{:<16} {:>4} {:>3} {:<13} {:>6} {:<10} {:>6} {:>7} {:>5.1} {:>19}",
                    cut(&g.label, 16),
                    g.runs,
                    g.diverged,
                    acc,
                    num(g.best, 4),
                    point(g.best_epoch, g.best_iteration),
                    num(g.train_acc_mean, 4),
                    g.parameters,
                    g.seconds_per_epoch,
                    vs_best(g, i == 0, 1),
                )
                .unwrap();
            }
            writeln!(
                out,
                "best = best seed-mean {} over evaluation points; runs = seeds loaded",
                s.metric.name()
            )
            .unwrap();
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
