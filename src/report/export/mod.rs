//! Exporters turn a `Summary` into bytes and do no I/O; the caller writes them to stdout or a
//! file. One file per format.

mod csv;
mod json;
mod markdown;
mod table;

use super::summarize::Summary;

/// Which of the two tables to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tables {
    Summary,
    Curves,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Markdown,
    Csv,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "table" => Format::Table,
            "markdown" | "md" => Format::Markdown,
            "csv" => Format::Csv,
            "json" => Format::Json,
            _ => {
                return Err(format!(
                    "unknown format {s:?}; allowed: table, markdown, csv, json"
                ))
            }
        })
    }
}

impl std::str::FromStr for Tables {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "summary" => Tables::Summary,
            "curves" => Tables::Curves,
            "both" => Tables::Both,
            _ => {
                return Err(format!(
                    "unknown table {s:?}; allowed: summary, curves, both"
                ))
            }
        })
    }
}

pub trait Exporter {
    fn render(&self, s: &Summary, tables: Tables) -> Result<Vec<u8>, String>;
}

pub fn exporter_for(f: Format) -> Box<dyn Exporter> {
    match f {
        Format::Table => Box::new(table::TableExport),
        Format::Markdown => Box::new(markdown::MarkdownExport),
        Format::Csv => Box::new(csv::CsvExport),
        Format::Json => Box::new(json::JsonExport),
    }
}

/// `s` shortened to `n` characters, ending in "…" when cut.
pub fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// "0.9579" or "-".
pub(crate) fn num(v: Option<f64>, prec: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or("-".into(), |x| format!("{x:.prec$}"))
}

/// A group's final test accuracy as "mean{sep}std", or "-" when no seed completed.
pub(crate) fn mean_std(g: &super::summarize::GroupRow, sep: &str) -> String {
    match (g.test_acc_mean, g.test_acc_std) {
        (Some(m), Some(sd)) => format!("{m:.4}{sep}{sd:.4}"),
        _ => "-".into(),
    }
}

/// The evaluation point as text: "e5" for a whole-epoch schedule, else "e2 it1000".
pub(crate) fn point(epoch: Option<i64>, iteration: Option<i64>) -> String {
    match (epoch, iteration) {
        (Some(e), Some(i)) => format!("e{e} it{i}"),
        _ => "-".into(),
    }
}

/// The paired difference vs the best group in percentage points, e.g. "-1.20 [-2.05,-0.41]".
pub(crate) fn vs_best(g: &super::summarize::GroupRow, first: bool, prec: usize) -> String {
    if first {
        return "best".into();
    }
    g.vs_best.as_ref().map_or("-".into(), |d| {
        format!(
            "{:+.prec$} [{:+.prec$},{:+.prec$}]",
            100.0 * d.mean_diff,
            100.0 * d.low,
            100.0 * d.high
        )
    })
}
