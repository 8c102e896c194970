//! `rnnsweep results export`: every evaluation of every loaded run as one tidy long table
//! (`report::export::tidy`), written as CSV or Parquet to a file (atomically) or, for CSV, to
//! stdout. The format comes from `--format` or else from the file's extension. The counts line
//! (and every failed or corrupt cell) goes to stderr, with the table's size.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::{Outcome, SweepSelection};
use crate::fsutil::write_atomic;
use crate::report::export::tidy::{render, tidy_frame, TidyFormat};
use crate::report::load::load;

/// Options of `rnnsweep results export`.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// The sweeps read.
    pub sweeps: SweepSelection,
    /// None: from the extension of `out`.
    pub format: Option<TidyFormat>,
    /// None: stdout (CSV only).
    pub out: Option<PathBuf>,
}

/// The format to write: `--format`, else the extension of `--out`, else CSV for stdout.
fn format_of(o: &ExportOptions) -> anyhow::Result<TidyFormat> {
    let format = match (o.format, &o.out) {
        (Some(f), _) => f,
        (None, None) => TidyFormat::Csv,
        (None, Some(p)) => match TidyFormat::from_path(p) {
            Some(f) => f,
            None => bail!(
                "cannot tell the format from {}: give --format csv or --format parquet (or name \
                 the file .csv or .parquet)",
                p.display()
            ),
        },
    };
    if format == TidyFormat::Parquet && o.out.is_none() {
        bail!("Parquet is a binary file: give --out FILE.parquet (CSV can go to stdout)");
    }
    Ok(format)
}

pub fn export_cmd(o: &ExportOptions) -> anyhow::Result<Outcome> {
    let format = format_of(o)?;
    let dirs = o.sweeps.dirs()?;
    let loaded = load(&dirs)?;
    let mut df = tidy_frame(&loaded).context("building the tidy table")?;
    let bytes = render(&mut df, format)?;
    let size = format!("{} rows × {} columns", df.height(), df.width());
    match &o.out {
        Some(p) => {
            write_atomic(p, &bytes).with_context(|| format!("cannot write {}", p.display()))?;
            eprintln!("{}; wrote {} ({size})", loaded.counts.line(), p.display());
        }
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&bytes)
                .context("writing to stdout")?;
            eprintln!("{} ({size})", loaded.counts.line());
        }
    }
    for l in loaded.counts.failure_lines() {
        eprintln!("{l}");
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(format: Option<TidyFormat>, out: Option<&str>) -> ExportOptions {
        ExportOptions {
            sweeps: SweepSelection {
                results: "results".into(),
                sweeps: vec![],
            },
            format,
            out: out.map(PathBuf::from),
        }
    }

    #[test]
    fn format_comes_from_the_flag_then_the_extension() {
        let f = |o| format_of(&o).map_err(|e| e.to_string());
        assert_eq!(f(opts(None, None)), Ok(TidyFormat::Csv));
        assert_eq!(f(opts(None, Some("a.parquet"))), Ok(TidyFormat::Parquet));
        assert_eq!(
            f(opts(Some(TidyFormat::Csv), Some("a.parquet"))),
            Ok(TidyFormat::Csv)
        );
        assert!(f(opts(None, Some("a.txt")))
            .unwrap_err()
            .contains("give --format csv or --format parquet"));
        assert!(f(opts(Some(TidyFormat::Parquet), None))
            .unwrap_err()
            .contains("give --out FILE.parquet"));
    }
}
