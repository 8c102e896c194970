//! `rnnsweep results summarize | compare | curves | report | prune-replay`: tables, charts, the HTML
//! report and the pruning audit
//! over one or more sweeps, read from disk only. Each command's options name the sweeps the
//! same way (`commands::SweepSelection`) and group them by `by` (None: the
//! default grouping of `report::summarize`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::{write_chart, Outcome, SweepSelection};
use crate::fsutil::write_atomic;
use crate::grid::prune::{Halving, Prune, RungMetric};
use crate::report::chart::{self, metric_title, sweep_names, ChartFormat};
use crate::report::effect_figures::report_figures;
use crate::report::export::{diff_line, exporter_for, group_line, Format, Tables};
use crate::report::html::{self, Figure};
use crate::report::load::{load, Loaded};
use crate::report::network::report_networks;
use crate::report::prune_replay::replay;
use crate::report::series::{panel, Panel};
use crate::report::summarize::{check_by, compare, default_by, summarize, Metric, Summary};
use crate::store::Layout;

/// Loads and summarizes.
pub fn build_summary(
    dirs: &[PathBuf],
    by: Option<&[String]>,
    metric: Metric,
) -> anyhow::Result<(Loaded, Summary)> {
    let loaded = load(dirs)?;
    let by = match by {
        Some(b) => check_by(&loaded, b)?,
        None => default_by(&loaded),
    };
    let s = summarize(&loaded, &by, metric).context("summarizing")?;
    Ok((loaded, s))
}

/// Options of `rnnsweep results summarize`.
#[derive(Clone, Debug)]
pub struct SummarizeOptions {
    /// The sweeps read.
    pub sweeps: SweepSelection,
    pub by: Option<Vec<String>>,
    pub metric: Metric,
    pub format: Format,
    pub tables: Option<Tables>,
    pub out: Option<PathBuf>,
}

pub fn summarize_cmd(o: &SummarizeOptions) -> anyhow::Result<Outcome> {
    let dirs = o.sweeps.dirs()?;
    let (_, s) = build_summary(&dirs, o.by.as_deref(), o.metric)?;
    let tables = o.tables.unwrap_or(if o.format == Format::Csv {
        Tables::Summary
    } else {
        Tables::Both
    });
    let bytes = exporter_for(o.format).render(&s, tables)?;
    match &o.out {
        Some(p) => {
            write_atomic(p, &bytes).with_context(|| format!("cannot write {}", p.display()))?;
            eprint_counts(&s, Some(p));
        }
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&bytes)
                .context("writing to stdout")?;
        }
    }
    Ok(Outcome::Ok)
}

/// Finds a group by label: exact, else a unique case-insensitive prefix.
fn find<'a>(s: &'a Summary, name: &str) -> anyhow::Result<&'a crate::report::summarize::GroupRow> {
    if let Some(g) = s.groups.iter().find(|g| g.label == name) {
        return Ok(g);
    }
    let lower = name.to_lowercase();
    let hits: Vec<_> = s
        .groups
        .iter()
        .filter(|g| g.label.to_lowercase().starts_with(&lower))
        .collect();
    match hits.as_slice() {
        [g] => Ok(g),
        [] => bail!(
            "no variant {name:?}; variants: {}",
            s.groups
                .iter()
                .map(|g| format!("{:?}", g.label))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        many => bail!(
            "{name:?} matches several variants: {}",
            many.iter()
                .map(|g| format!("{:?}", g.label))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Options of `rnnsweep results compare`.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// The sweeps read.
    pub sweeps: SweepSelection,
    pub by: Option<Vec<String>>,
    /// Variant labels as `summarize` shows them (a unique prefix is enough).
    pub a: String,
    pub b: String,
    pub json: bool,
}

/// `results compare A B`: each variant's final test accuracy (mean ± std, n, t interval),
/// divergence rate (Wilson) and collapsed count, then the paired difference of final test
/// accuracy on their shared seeds (an interval only from 3 shared seeds).
pub fn compare_cmd(o: &CompareOptions) -> anyhow::Result<Outcome> {
    let dirs = o.sweeps.dirs()?;
    let (_, s) = build_summary(&dirs, o.by.as_deref(), Metric::TestAcc)?;
    let (ga, gb) = (find(&s, &o.a)?, find(&s, &o.b)?);
    let d = compare(ga, gb);
    if o.json {
        println!(
            "{}",
            serde_json::json!({ "a": ga.label, "b": gb.label, "diff": d, "a_group": ga, "b_group": gb })
        );
        return Ok(Outcome::Ok);
    }
    println!("{}", s.counts.line());
    println!("{}", group_line(ga));
    println!("{}", group_line(gb));
    println!("{}", diff_line(ga, gb, d.as_ref()));
    Ok(Outcome::Ok)
}

/// The four charts, in reading order.
const CHART_METRICS: [Metric; 4] = [
    Metric::TestAcc,
    Metric::TrainAcc,
    Metric::TestLoss,
    Metric::TrainLoss,
];

/// The panel of every chart metric.
type Panels = Vec<(Metric, Panel)>;

/// Loads, summarizes, and computes the panel of every chart metric.
fn panels(dirs: &[PathBuf], by: Option<&[String]>) -> anyhow::Result<(Loaded, Summary, Panels)> {
    let (loaded, s) = build_summary(dirs, by, Metric::TestAcc)?;
    let panels = CHART_METRICS
        .iter()
        .map(|&m| Ok((m, panel(&loaded, &s, m).context("computing chart series")?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((loaded, s, panels))
}

/// Options of `rnnsweep results curves`.
#[derive(Clone, Debug)]
pub struct CurvesOptions {
    /// The sweeps read.
    pub sweeps: SweepSelection,
    pub by: Option<Vec<String>>,
    /// Folder for the charts [default: <results>/<sweep>/curves, or <results>/curves for
    /// several sweeps].
    pub out: Option<PathBuf>,
    pub format: ChartFormat,
}

/// `results curves`: one SVG and/or PNG per metric; the files' paths on stdout.
pub fn curves_cmd(o: &CurvesOptions) -> anyhow::Result<Outcome> {
    let dirs = o.sweeps.dirs()?;
    let (_, s, panels) = panels(&dirs, o.by.as_deref())?;
    let name = sweep_names(&dirs).join(" + ");
    let out = match &o.out {
        Some(out) => out.clone(),
        None if dirs.len() == 1 => Layout::at(&dirs[0]).curves_dir(),
        None => Layout::at(&o.sweeps.results).curves_dir(),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = Vec::new();
    for (m, p) in &panels {
        let title = format!("{} — {name}", metric_title(*m));
        written.extend(write_chart(&out, m.name(), p, &title, o.format)?);
    }
    eprint_counts(&s, None);
    for p in written {
        println!("{}", p.display());
    }
    Ok(Outcome::Ok)
}

/// Options of `rnnsweep results report`.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// The sweeps read.
    pub sweeps: SweepSelection,
    pub by: Option<Vec<String>>,
    /// The HTML file to write.
    pub out: PathBuf,
}

/// `results report`: the self-contained HTML page.
pub fn report_cmd(o: &ReportOptions) -> anyhow::Result<Outcome> {
    let dirs = o.sweeps.dirs()?;
    let (loaded, s, panels) = panels(&dirs, o.by.as_deref())?;
    let effects = report_figures(&loaded, &dirs)?;
    let names = sweep_names(&dirs);
    let name = names.join(" + ");
    let figures = panels
        .iter()
        .map(|(m, p)| {
            let title = format!("{} — {name}", metric_title(*m));
            Ok(Figure {
                svg: chart::to_svg(p, &title)?,
                title,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let networks = report_networks(&loaded, &s).context("drawing the variants' networks")?;
    let page = html::page(
        &format!("rnnsweep report: {name}"),
        &names,
        &s,
        &networks,
        &figures,
        &effects,
    );
    write_atomic(&o.out, page.as_bytes())
        .with_context(|| format!("cannot write {}", o.out.display()))?;
    eprint_counts(&s, Some(&o.out));
    Ok(Outcome::Ok)
}

/// The counts line on stderr ("…; wrote FILE" when a file was written), then every failed and
/// corrupt cell by name, so a damaged result is never only a number.
fn eprint_counts(s: &Summary, wrote: Option<&Path>) {
    match wrote {
        Some(p) => eprintln!("{}; wrote {}", s.counts.line(), p.display()),
        None => eprintln!("{}", s.counts.line()),
    }
    for l in s.counts.failure_lines() {
        eprintln!("{l}");
    }
}

/// Options of `rnnsweep results prune-replay`.
#[derive(Clone, Debug)]
pub struct PruneReplayOptions {
    /// The sweep read (exactly one).
    pub sweeps: SweepSelection,
    pub method: Halving,
    pub min_resource: u64,
    pub reduction_factor: u64,
    pub metric: RungMetric,
    pub json: bool,
}

/// `results prune-replay`: the pruning audit of one finished sweep (see `report::prune_replay`).
pub fn prune_replay_cmd(o: &PruneReplayOptions) -> anyhow::Result<Outcome> {
    let dirs = o.sweeps.dirs()?;
    let [dir] = dirs.as_slice() else {
        bail!(
            "prune-replay reads one sweep; {} were given or found under {}: {}",
            dirs.len(),
            o.sweeps.results.display(),
            sweep_names(&dirs).join(", ")
        );
    };
    let prune = Prune {
        method: o.method,
        metric: o.metric,
        min_resource: o.min_resource,
        reduction_factor: o.reduction_factor,
        max_resource: None,
    };
    let r = replay(dir, &prune).with_context(|| format!("cannot replay {}", dir.display()))?;
    if o.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", r.render());
    }
    Ok(Outcome::Ok)
}
