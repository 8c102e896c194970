//! GitHub-flavoured markdown tables with full labels.

use std::fmt::Write;

use super::{mean_std, num, point, vs_best, Exporter, Tables};
use crate::report::summarize::Summary;

pub struct MarkdownExport;

impl Exporter for MarkdownExport {
    fn render(&self, s: &Summary, tables: Tables) -> Result<Vec<u8>, String> {
        let mut out = format!("{}\n", s.counts.line());
        for f in s.counts.failure_lines() {
            out.push_str(&format!("\n- {f}"));
        }
        if !s.counts.failed.is_empty() {
            out.push('\n');
        }
        if tables != Tables::Curves {
            out.push_str("\n| variant | runs | diverged | test acc (mean ± std) | best | at | train acc | parameters | s/epoch | samples/s | vs best (pp, 95% CI) |\n");
            out.push_str("|---|---:|---:|---|---:|---|---:|---:|---:|---:|---|\n");
            for (i, g) in s.groups.iter().enumerate() {
                let acc = mean_std(g, " ± ");
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.0} | {} |",
                    g.label.replace('|', "\\|"),
                    g.runs,
                    g.diverged,
                    acc,
                    num(g.best, 4),
                    point(g.best_epoch, g.best_iteration),
                    num(g.train_acc_mean, 4),
                    g.parameters,
                    g.seconds_per_epoch,
                    g.samples_per_sec,
                    vs_best(g, i == 0, 2)
                )
                .unwrap();
            }
        }
        if tables != Tables::Summary && !s.curves.labels.is_empty() {
            let c = &s.curves;
            write!(
                out,
                "\n{} (mean over seeds)\n\n| epoch | iteration |",
                c.metric.name()
            )
            .unwrap();
            for l in &c.labels {
                write!(out, " {} |", l.replace('|', "\\|")).unwrap();
            }
            out.push_str("\n|---:|---:|");
            out.push_str(&"---:|".repeat(c.labels.len()));
            out.push('\n');
            for (r, (e, it)) in c.points.iter().enumerate() {
                write!(out, "| {e} | {it} |").unwrap();
                for v in &c.values[r] {
                    write!(out, " {} |", num(*v, 4)).unwrap();
                }
                out.push('\n');
            }
        }
        Ok(out.into_bytes())
    }
}
