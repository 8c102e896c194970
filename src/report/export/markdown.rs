//! GitHub-flavoured markdown tables with full labels and every column: the counts line and the
//! failed, corrupt, diverged and collapsed runs as a list, the variant table with its statistics,
//! (a best from before divergence labelled so), a note on how they are computed, then one curve table per evaluation schedule. Labels are
//! never cut.

use std::fmt::Write;

use super::{
    acc_ci, any_before_divergence, any_before_pruning, best, coord, divergence, mean_std, num,
    point, vs_best, ExportError, Exporter, Tables, BEFORE_DIVERGENCE_NOTE, BEFORE_PRUNING_NOTE,
    STATS_NOTE,
};
use crate::report::summarize::Summary;

pub struct MarkdownExport;

/// Diverged and collapsed runs listed, at most this many of each.
const LIST_MAX: usize = 20;

impl Exporter for MarkdownExport {
    fn render(&self, s: &Summary, tables: Tables) -> Result<Vec<u8>, ExportError> {
        let mut out = format!("{}\n", s.counts.line());
        let listed: Vec<String> = s
            .counts
            .failure_lines()
            .into_iter()
            .chain(s.counts.outcome_lines(LIST_MAX))
            .collect();
        for f in &listed {
            out.push_str(&format!("\n- {}", f.replace('|', "\\|")));
        }
        if !listed.is_empty() {
            out.push('\n');
        }
        if tables != Tables::Curves {
            out.push_str("\n| variant | runs | diverged (95% Wilson) | collapsed | test acc (mean ± std) | n | 95% CI (t) | best | at | train acc | parameters | s/epoch | samples/s | vs best (pp, 95% paired CI) |\n");
            out.push_str("|---|---:|---|---:|---|---:|---|---:|---|---:|---:|---:|---:|---|\n");
            for (i, g) in s.groups.iter().enumerate() {
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.0} | {} |",
                    g.label.replace('|', "\\|"),
                    g.runs,
                    divergence(g),
                    g.collapsed,
                    mean_std(g, " ± "),
                    g.test_acc_n,
                    acc_ci(g),
                    best(g, (" (before divergence)", " (before pruning)")),
                    point(g.best_epoch, g.best_iteration),
                    num(g.train_acc_mean, 4),
                    g.parameters,
                    g.seconds_per_epoch,
                    g.samples_per_sec,
                    vs_best(g, i == 0, 2, true)
                )
                .unwrap();
            }
            let mut diverged = if any_before_divergence(s) {
                format!(" {BEFORE_DIVERGENCE_NOTE}")
            } else {
                String::new()
            };
            if any_before_pruning(s) {
                diverged.push_str(&format!(" {BEFORE_PRUNING_NOTE}"));
            }
            writeln!(
                out,
                "\nbest: best seed-mean {} over evaluation points.{diverged} {}",
                s.metric.name(),
                STATS_NOTE.join(" ")
            )
            .unwrap();
        }
        if tables != Tables::Summary {
            for t in &s.curves.tables {
                write!(
                    out,
                    "\n{} (mean over seeds), evaluated {}\n\n| epoch | step |",
                    s.curves.metric.name(),
                    t.schedule()
                )
                .unwrap();
                for l in &t.labels {
                    write!(out, " {} |", l.replace('|', "\\|")).unwrap();
                }
                out.push_str("\n|---:|---:|");
                out.push_str(&"---:|".repeat(t.labels.len()));
                out.push('\n');
                for (r, p) in t.points.iter().enumerate() {
                    write!(out, "| {} | {} |", coord(p.epoch), coord(p.iteration)).unwrap();
                    for v in &t.values[r] {
                        write!(out, " {} |", num(*v, 4)).unwrap();
                    }
                    out.push('\n');
                }
            }
        }
        Ok(out.into_bytes())
    }
}
