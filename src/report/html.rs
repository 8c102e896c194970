//! The offline HTML report: one self-contained page (inline CSS, inline SVG charts, no scripts,
//! no links to fetch) with the counts (failed and corrupt cells listed, diverged runs with what
//! went non-finite and collapsed runs in collapsible lists), the variant table with its
//! statistics (rows with collapsed runs marked, a best from before divergence labelled so,
//! numbers never wrapped inside their cell), a note on how they are computed, the variants'
//! networks as small pictures (`network`, in a collapsible section), the Effects section (a
//! metric against each setting that varies, heatmaps), the curve charts and the curve table. A
//! Content-Security-Policy forbids every request, so the page cannot reach out even by mistake.

use std::fmt::Write;

use super::export::{
    acc_ci, any_before_divergence, any_before_pruning, best, divergence, mean_std, num, point,
    vs_best, BEFORE_DIVERGENCE_NOTE, BEFORE_PRUNING_NOTE, STATS_NOTE,
};
use super::load::runs_word;
use super::network::{thousands, NetworkFigure};
use super::summarize::Summary;

/// A chart to embed: its title and its SVG document.
pub struct Figure {
    pub title: String,
    pub svg: String,
}

/// An effect chart to embed (see `report::effects`): an id for the page, its title, its SVG
/// document and a caption saying how to read it (plain text).
pub struct EffectFigure {
    pub id: String,
    pub title: String,
    pub svg: String,
    pub caption: String,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.at { white-space: nowrap; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
.failed { color: #a00; } .scroll { overflow-x: auto; }
tr.collapsed td { background: #fff3d6; } .mark { font-size: 0.75rem; color: #8a5a00; font-weight: 600; }
details { margin: 0.5rem 0; font-size: 0.9rem; } .note { font-size: 0.85rem; color: #444; }
.networks { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure.network { margin: 0.5rem 0; width: 300px; } figure.network svg { width: 100%; height: auto; }
";

/// The whole page. `networks`: one picture per distinct network of the variants, in a
/// collapsible section under the variant table (each row's parameter count links to its
/// picture). `effects`: the Effects section's charts, before the curves (a note when there are
/// none: nothing but the seed varies).
pub fn page(
    title: &str,
    sweeps: &[String],
    s: &Summary,
    networks: &[NetworkFigure],
    figures: &[Figure],
    effects: &[EffectFigure],
) -> String {
    let mut o = String::new();
    let t = escape(title);
    write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"rnnsweep {}\">\n<title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        env!("CARGO_PKG_VERSION")
    )
    .unwrap();
    writeln!(
        o,
        "<p>Sweeps: {}. <span id=\"counts\">{}</span>. Grouped by {}; accuracies are on the test set.</p>",
        escape(&sweeps.join(", ")),
        escape(&s.counts.line()),
        escape(&s.by.join(", "))
    )
    .unwrap();
    let failures = s.counts.failure_lines();
    if !failures.is_empty() {
        o.push_str("<ul class=\"failed\">\n");
        for f in failures {
            writeln!(o, "<li>{}</li>", escape(&f)).unwrap();
        }
        o.push_str("</ul>\n");
    }
    let c = &s.counts;
    for (id, what, lines) in [
        (
            "diverged-runs",
            format!(
                "{} diverged {}",
                c.diverged_runs.len(),
                runs_word(c.diverged_runs.len())
            ),
            c.diverged_lines(usize::MAX),
        ),
        (
            "collapsed-runs",
            format!(
                "{} collapsed {}",
                c.collapsed_runs.len(),
                runs_word(c.collapsed_runs.len())
            ),
            c.collapsed_lines(usize::MAX),
        ),
    ] {
        if lines.is_empty() {
            continue;
        }
        writeln!(
            o,
            "<details id=\"{id}\"><summary>{}</summary>\n<ul>",
            escape(&what)
        )
        .unwrap();
        for l in lines {
            writeln!(o, "<li>{}</li>", escape(&l)).unwrap();
        }
        o.push_str("</ul></details>\n");
    }

    o.push_str("<h2>Variants</h2>\n<div class=\"scroll\"><table id=\"summary\">\n<thead><tr>");
    for h in [
        "variant",
        "runs",
        "diverged (95% Wilson)",
        "collapsed",
        "final test acc (mean ± std)",
        "n",
        "95% CI (t)",
        "best (seed mean)",
        "at",
        "final train acc",
        "parameters",
        "s/epoch",
        "samples/s",
        "vs best (pp, 95% paired CI)",
    ] {
        write!(o, "<th>{}</th>", escape(h)).unwrap();
    }
    o.push_str("</tr></thead>\n<tbody>\n");
    for (i, g) in s.groups.iter().enumerate() {
        // The parameter count links to the group's network when it has exactly one.
        let mut nets = networks.iter().filter(|n| n.groups.contains(&i));
        let parameters = match (nets.next(), nets.next()) {
            (Some(n), None) => format!("<a href=\"#{}\">{}</a>", escape(&n.id), g.parameters),
            _ => g.parameters.to_string(),
        };
        let (row, mark) = if g.collapsed > 0 {
            (
                " class=\"collapsed\"",
                format!(" <span class=\"mark\">{} collapsed</span>", g.collapsed),
            )
        } else {
            ("", String::new())
        };
        writeln!(
            o,
            "<tr{row}><td>{}{mark}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"at\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{:.1}</td><td class=\"n\">{:.0}</td><td class=\"n\">{}</td></tr>",
            escape(&g.label),
            g.runs,
            escape(&divergence(g)),
            g.collapsed,
            escape(&mean_std(g, " ± ")),
            g.test_acc_n,
            escape(&acc_ci(g)),
            best(
                g,
                (
                    " <span class=\"mark\">before divergence</span>",
                    " <span class=\"mark\">before pruning</span>",
                ),
            ),
            point(g.best_epoch, g.best_iteration),
            num(g.train_acc_mean, 4),
            parameters,
            g.seconds_per_epoch,
            g.samples_per_sec,
            escape(&vs_best(g, i == 0, 2, true)),
        )
        .unwrap();
    }
    o.push_str("</tbody>\n</table></div>\n<p class=\"note\">");
    let mut diverged = if any_before_divergence(s) {
        format!(" {}", escape(BEFORE_DIVERGENCE_NOTE))
    } else {
        String::new()
    };
    if any_before_pruning(s) {
        diverged.push_str(&format!(" {}", escape(BEFORE_PRUNING_NOTE)));
    }
    writeln!(
        o,
        "best: best seed-mean {} over evaluation points.{diverged} {}</p>",
        escape(s.metric.name()),
        escape(&STATS_NOTE.join(" "))
    )
    .unwrap();

    networks_section(&mut o, s, networks);
    effects_section(&mut o, effects);

    o.push_str("<h2>Curves</h2>\n");
    for f in figures {
        writeln!(
            o,
            "<figure class=\"chart\">\n{}\n<figcaption>{}: mean over seeds (line), min–max over seeds (band).</figcaption>\n</figure>",
            f.svg,
            escape(&f.title)
        )
        .unwrap();
    }

    // One table per evaluation schedule (see `summarize::CurveTable`).
    for (k, c) in s.curves.tables.iter().enumerate() {
        let id = if k == 0 {
            "curves".to_string()
        } else {
            format!("curves-{k}")
        };
        writeln!(
            o,
            "<h2>{} by evaluation point (mean over seeds), evaluated {}</h2>\n<div class=\"scroll\"><table id=\"{id}\">\n<thead><tr><th>epoch</th><th>iteration</th>",
            escape(s.curves.metric.name()),
            escape(&c.schedule())
        )
        .unwrap();
        for l in &c.labels {
            write!(o, "<th>{}</th>", escape(l)).unwrap();
        }
        o.push_str("</tr></thead>\n<tbody>\n");
        for (r, p) in c.points.iter().enumerate() {
            let (e, it) = (
                super::export::coord(p.epoch),
                super::export::coord(p.iteration),
            );
            write!(o, "<tr><td class=\"n\">{e}</td><td class=\"n\">{it}</td>").unwrap();
            for v in &c.values[r] {
                write!(o, "<td class=\"n\">{}</td>", num(*v, 4)).unwrap();
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</tbody>\n</table></div>\n");
    }
    o.push_str("</body>\n</html>\n");
    o
}

/// The networks of the variants, in a collapsible section (open): each picture with the labels
/// of the variants that train it.
fn networks_section(o: &mut String, s: &Summary, networks: &[NetworkFigure]) {
    if networks.is_empty() {
        return;
    }
    let n = networks.len();
    writeln!(
        o,
        "<details id=\"networks\" open><summary>{n} {} as configured (blocks, tensor shapes, parameters)</summary>\n<div class=\"networks\">",
        if n == 1 { "network" } else { "networks" }
    )
    .unwrap();
    for f in networks {
        let labels: Vec<&str> = f
            .groups
            .iter()
            .filter_map(|&g| s.groups.get(g).map(|g| g.label.as_str()))
            .collect();
        writeln!(
            o,
            "<figure class=\"network\" id=\"{}\">\n{}\n<figcaption>{}: {} ({} parameters)</figcaption>\n</figure>",
            escape(&f.id),
            f.svg,
            escape(&labels.join(", ")),
            escape(&f.title),
            thousands(f.parameters)
        )
        .unwrap();
    }
    o.push_str("</div></details>\n");
}

/// The Effects section: each chart in a figure with its caption.
fn effects_section(o: &mut String, effects: &[EffectFigure]) {
    o.push_str("<h2 id=\"effects\">Effects</h2>\n");
    if effects.is_empty() {
        o.push_str("<p class=\"note\">Only the seed varies between these runs: no setting to show an effect of.</p>\n");
        return;
    }
    o.push_str(
        "<p class=\"note\">Each setting that varies on x, the other settings as lines (or crossed in a heatmap). \
         Diverged and collapsed runs are not in the accuracy means (they are in the samples/s ones); \
         they are counted at their point. Runs stopped early by pruning are left out. Each caption \
         says which runs a point holds.</p>\n",
    );
    for f in effects {
        writeln!(
            o,
            "<figure class=\"chart effect\" id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
            escape(&f.id),
            f.svg,
            escape(&f.caption)
        )
        .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_section_embeds_figures_or_says_why_not() {
        let mut o = String::new();
        effects_section(&mut o, &[]);
        assert!(o.starts_with("<h2 id=\"effects\">Effects</h2>"));
        assert!(o.contains("Only the seed varies"));
        let mut o = String::new();
        effects_section(
            &mut o,
            &[EffectFigure {
                id: "effect-lr-final_test_acc".into(),
                title: "t".into(),
                svg: "<svg></svg>".into(),
                caption: "acc < 1 & more".into(),
            }],
        );
        assert!(o.contains(
            "<figure class=\"chart effect\" id=\"effect-lr-final_test_acc\">\n<svg></svg>\n<figcaption>acc &lt; 1 &amp; more</figcaption>"
        ));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">A&B's</a>"),
            "&lt;a href=&quot;x&quot;&gt;A&amp;B&#39;s&lt;/a&gt;"
        );
    }
}
