//! The tidy export of `rnnsweep results export`: every loaded run's evaluations as one long
//! table, one row per run × evaluation point × split, with the run's identity, outcome and
//! every hyperparameter as columns, rendered as CSV (the csv crate) or Parquet (polars-io's
//! writer), as bytes: the caller writes them. One line loads it: `pandas.read_csv(f)`,
//! `polars.read_parquet(f)`.
//!
//! Columns, in order: `sweep`, `cell_id`, `cell_index` (plan order), `variant`, `status`
//! (completed or diverged), `collapsed`, `seed`; then one column per grid key (`report::hyper`,
//! named as in the grid) that has a value for at least one exported run (the union over the
//! sweeps; null where a run has none, e.g. `beta1` of an SGD run); then `epoch` (fractional:
//! steps taken / steps per epoch, so an end-of-epoch evaluation is a whole number), `step`,
//! `split` (train or test), `loss`, `accuracy`, `samples` (what the numbers average over),
//! `elapsed_seconds` (training wall time so far, evaluation excluded); and, when recorded for
//! any row, `samples_per_sec`, `lr_in_force` (the scheduled rate at that point; `lr` is the
//! hyperparameter), `grad_norm`, `grad_norm_max` (null where not recorded: test rows, older
//! records). Failed, corrupt and missing cells have no evaluations and no
//! rows; the counts line says how many there are. CSV writes null as an empty field, numbers
//! as Rust writes them (shortest text that reads back to the same f64; NaN and inf as such).

use std::collections::HashMap;

use polars::prelude::*;
use polars_io::parquet::write::ParquetWriter;

use crate::report::hyper;
use crate::report::load::Loaded;

/// The file format of the tidy export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TidyFormat {
    Csv,
    Parquet,
}

impl TidyFormat {
    /// The format a file name's extension says: `.csv`, `.parquet` or `.pq`.
    pub fn from_path(path: &std::path::Path) -> Option<TidyFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(TidyFormat::Csv),
            "parquet" | "pq" => Some(TidyFormat::Parquet),
            _ => None,
        }
    }
}

/// Why the tidy table could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum TidyError {
    #[error("cannot build the tidy table")]
    Polars(#[from] PolarsError),
    #[error("cannot write the tidy table as CSV")]
    Csv(#[from] ::csv::Error),
}

/// Identity and outcome columns of the runs table, with their names in the export.
const RUN_COLUMNS: [(&str, &str); 7] = [
    ("sweep", "sweep"),
    ("id", "cell_id"),
    ("index", "cell_index"),
    ("variant", "variant"),
    ("status", "status"),
    ("collapsed", "collapsed"),
    ("seed", "seed"),
];

/// Metric columns that are recorded for some rows only, with their names in the export (the
/// rate in force is `lr_in_force`: `lr` is the hyperparameter): exported when any row has one.
const OPTIONAL_METRICS: [(&str, &str); 4] = [
    ("samples_per_sec", "samples_per_sec"),
    ("lr", "lr_in_force"),
    ("grad_norm", "grad_norm"),
    ("grad_norm_max", "grad_norm_max"),
];

/// The tidy table of the loaded runs (columns in the module doc), rows in sweep and plan order,
/// each run's evaluations in the order they were made (train row, then test row).
pub fn tidy_frame(loaded: &Loaded) -> PolarsResult<DataFrame> {
    let runs = &loaded.runs;
    let metrics = loaded.metrics.clone().collect()?;
    let row_of: HashMap<&str, IdxSize> = runs
        .column("id")?
        .str()?
        .iter()
        .enumerate()
        .filter_map(|(i, id)| Some((id?, i as IdxSize)))
        .collect();
    // Every metric row belongs to a loaded run (both come from the same records).
    let take: Vec<IdxSize> = metrics
        .column("id")?
        .str()?
        .iter()
        .map(|id| {
            id.and_then(|id| row_of.get(id).copied())
                .ok_or_else(|| polars_err!(ComputeError: "a metric row of an unknown run {:?}", id))
        })
        .collect::<PolarsResult<_>>()?;
    let take = IdxCa::from_vec("take".into(), take);

    let mut names: Vec<&str> = RUN_COLUMNS.iter().map(|c| c.0).collect();
    let hyper_keys: Vec<&str> = hyper::keys()
        .filter(|k| {
            runs.column(k)
                .is_ok_and(|c| c.null_count() < c.len() || runs.height() == 0)
        })
        .collect();
    names.extend(&hyper_keys);
    names.push("steps_per_epoch");
    let mut out = runs.select(names)?.take(&take)?;
    for (from, to) in RUN_COLUMNS {
        if from != to {
            out.rename(from, to.into())?;
        }
    }
    let steps_per_epoch = out
        .drop_in_place("steps_per_epoch")?
        .cast(&DataType::Float64)?;
    let step = metrics.column("iteration")?.cast(&DataType::Int64)?;
    let epoch = (step.cast(&DataType::Float64)?.as_materialized_series()
        / steps_per_epoch.as_materialized_series())?;
    let mut cols: Vec<Column> = vec![
        epoch.with_name("epoch".into()).into(),
        step.with_name("step".into()),
        metrics.column("split")?.clone(),
        metrics.column("loss")?.clone(),
        metrics.column("acc")?.clone().with_name("accuracy".into()),
        metrics.column("samples")?.clone(),
        metrics
            .column("seconds")?
            .clone()
            .with_name("elapsed_seconds".into()),
    ];
    for (from, to) in OPTIONAL_METRICS {
        let c = metrics.column(from)?;
        if c.null_count() < c.len() {
            cols.push(c.clone().with_name(to.into()));
        }
    }
    out.hstack_mut(&cols)?;
    Ok(out)
}

/// The table as CSV or Parquet bytes.
pub fn render(df: &mut DataFrame, format: TidyFormat) -> Result<Vec<u8>, TidyError> {
    match format {
        TidyFormat::Csv => csv_bytes(df),
        TidyFormat::Parquet => {
            let mut buf = Vec::new();
            ParquetWriter::new(&mut buf).finish(df)?;
            Ok(buf)
        }
    }
}

/// A value as CSV text: null empty, floats as Rust writes them (round-trip exact).
fn field(v: AnyValue) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Float64(x) => x.to_string(),
        AnyValue::Float32(x) => x.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        other => other.to_string(),
    }
}

fn csv_bytes(df: &DataFrame) -> Result<Vec<u8>, TidyError> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(df.get_column_names().iter().map(|n| n.as_str()))?;
    let cols: Vec<Series> = df
        .columns()
        .iter()
        .map(|c| c.as_materialized_series().rechunk())
        .collect();
    let mut rec: Vec<String> = Vec::with_capacity(cols.len());
    for i in 0..df.height() {
        rec.clear();
        for c in &cols {
            rec.push(field(c.get(i)?));
        }
        w.write_record(&rec)?;
    }
    w.into_inner()
        .map_err(|e| TidyError::Csv(e.into_error().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_name_and_extension() {
        let name = |s: &str| serde_json::from_str::<TidyFormat>(&format!("\"{s}\"")).ok();
        assert_eq!(name("csv"), Some(TidyFormat::Csv));
        assert_eq!(name("parquet"), Some(TidyFormat::Parquet));
        assert_eq!(name("xlsx"), None);
        let p = |s: &str| TidyFormat::from_path(std::path::Path::new(s));
        assert_eq!(p("runs.CSV"), Some(TidyFormat::Csv));
        assert_eq!(p("out/runs.parquet"), Some(TidyFormat::Parquet));
        assert_eq!(p("runs.pq"), Some(TidyFormat::Parquet));
        assert_eq!(p("runs"), None);
    }

    #[test]
    fn csv_fields_round_trip_floats_and_write_null_empty() {
        assert_eq!(field(AnyValue::Null), "");
        for x in [0.1, 1e-8, 0.9579, 1.0 / 3.0, 12345.678] {
            assert_eq!(field(AnyValue::Float64(x)).parse::<f64>().unwrap(), x);
        }
        assert_eq!(field(AnyValue::Float64(f64::NAN)), "NaN");
        assert_eq!(field(AnyValue::Float64(f64::INFINITY)), "inf");
        assert_eq!(field(AnyValue::Boolean(true)), "true");
        assert_eq!(field(AnyValue::UInt64(7)), "7");
    }
}
