//! From the loaded frames (and each sweep's copy of its grid file, `spec.toml`, for the axes
//! written as log ranges) to the plain inputs of the effects: one [`RunObs`] per loaded run and
//! the candidate dims (sweep when several, variant, the grid axes in file order). A run whose
//! sweep did not vary an axis takes its value from its configuration column. Reads only the
//! disk, like the rest of the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::{Outcome, RunObs, TestEval};
use crate::report::load::{LoadError, Loaded};
use crate::report::series::{steps_per_epoch, MNIST_TRAIN};
use crate::store::Layout;

/// The grid axes a sweep's `spec.toml` writes as `{ …, scale = "log" }`. A sweep folder without
/// a spec.toml has none; one that cannot be read or parsed is an error naming the file.
pub fn log_axes(dir: &Path) -> Result<Vec<String>, LoadError> {
    let path = Layout::at(dir).spec_toml();
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let read = |why: String| LoadError::Read {
        path: path.clone(),
        why,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| read(e.to_string()))?;
    let t: toml::Table = toml::from_str(&text).map_err(|e| read(e.message().to_string()))?;
    Ok(log_axes_of(&t))
}

/// The `[grid]` keys of a parsed grid file whose range says `scale = "log"`.
pub fn log_axes_of(t: &toml::Table) -> Vec<String> {
    let Some(toml::Value::Table(grid)) = t.get("grid") else {
        return Vec::new();
    };
    grid.iter()
        .filter(|(_, v)| {
            matches!(v, toml::Value::Table(r)
                if r.get("scale").and_then(|s| s.as_str()) == Some("log"))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The candidate dims: (name as the user wrote it, written as a log range in some sweep).
pub fn candidates(loaded: &Loaded, dirs: &[PathBuf]) -> Result<Vec<(String, bool)>, LoadError> {
    let mut log = Vec::new();
    for d in dirs {
        log.extend(log_axes(d)?);
    }
    let mut c = Vec::new();
    if loaded.sweeps.len() > 1 {
        c.push(("sweep".to_string(), false));
    }
    c.push(("variant".to_string(), false));
    for a in &loaded.axes {
        c.push((a.clone(), log.contains(a)));
    }
    Ok(c)
}

/// One [`RunObs`] per row of the runs frame, in its order (plan order), with its test
/// evaluations from the metrics frame.
pub fn runs(loaded: &Loaded) -> PolarsResult<Vec<RunObs>> {
    let df = &loaded.runs;
    let text = |name: &str| -> PolarsResult<Vec<Option<String>>> {
        Ok(df
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let ids = text("id")?;
    let sweep = text("sweep")?;
    let variant = text("variant")?;
    let status = text("status")?;
    let axes = loaded
        .axes
        .iter()
        .map(|a| Ok((a.clone(), text(&format!("axis_{a}"))?)))
        .collect::<PolarsResult<Vec<_>>>()?;
    // Each axis's configuration column (when the runs frame has one of that name), for the runs
    // of sweeps that did not vary it: their value, written as the grid writes an equal number.
    let config = axes
        .iter()
        .map(|(a, grid)| {
            let Ok(c) = df.column(a) else {
                return Ok(Vec::new());
            };
            let c = c.cast(&DataType::String)?;
            Ok(c.str()?
                .iter()
                .map(|v| v.map(|v| as_written(v, grid)))
                .collect())
        })
        .collect::<PolarsResult<Vec<Vec<Option<String>>>>>()?;
    let seed = df.column("seed")?.u64()?.clone();
    let collapsed = df.column("collapsed")?.bool()?.clone();
    let acc = df.column("final_test_acc")?.f64()?.clone();
    let sps = df.column("samples_per_sec")?.f64()?.clone();
    let batch = df.column("batch")?.cast(&DataType::UInt64)?;
    let limit = df.column("train_limit")?.cast(&DataType::UInt64)?;
    let (batch, limit) = (batch.u64()?, limit.u64()?);

    // Test evaluations per run id, in training order.
    let rows = loaded
        .metrics
        .clone()
        .filter(col("split").eq(lit("test")))
        .select([col("id"), col("iteration"), col("seconds"), col("acc")])
        .sort(["id", "iteration"], SortMultipleOptions::default())
        .collect()?;
    let (rid, rit, rsec, racc) = (
        rows.column("id")?.str()?,
        rows.column("iteration")?.i64()?,
        rows.column("seconds")?.f64()?,
        rows.column("acc")?.f64()?,
    );
    let mut evals: BTreeMap<&str, Vec<(i64, f64, f64)>> = BTreeMap::new();
    for r in 0..rows.height() {
        if let (Some(id), Some(it), Some(s), Some(a)) =
            (rid.get(r), rit.get(r), rsec.get(r), racc.get(r))
        {
            evals.entry(id).or_default().push((it, s, a));
        }
    }

    let mut out = Vec::with_capacity(df.height());
    for r in 0..df.height() {
        let Some(id) = ids[r].as_deref() else {
            continue;
        };
        let mut coords = BTreeMap::new();
        if let Some(s) = &sweep[r] {
            coords.insert("sweep".to_string(), s.clone());
        }
        if let Some(v) = &variant[r] {
            coords.insert("variant".to_string(), v.clone());
        }
        for ((a, col), conf) in axes.iter().zip(&config) {
            if let Some(v) = col[r].as_ref().or(conf.get(r).and_then(Option::as_ref)) {
                coords.insert(a.clone(), v.clone());
            }
        }
        let outcome = match (status[r].as_deref(), collapsed.get(r)) {
            // Stopped early by [prune]: a partial curve, not an outcome of the full budget.
            (Some("pruned"), _) => continue,
            (Some("diverged"), _) => Outcome::Diverged,
            (_, Some(true)) => Outcome::Collapsed,
            _ => Outcome::Completed,
        };
        let steps = steps_per_epoch(
            limit.get(r).unwrap_or(MNIST_TRAIN).min(MNIST_TRAIN),
            batch.get(r).unwrap_or(1),
        ) as f64;
        let test_evals = evals
            .get(id)
            .map(|v| {
                v.iter()
                    .map(|&(it, seconds, acc)| TestEval {
                        epochs: it as f64 / steps,
                        seconds,
                        acc,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(RunObs {
            coords,
            seed: seed.get(r).unwrap_or(0),
            outcome,
            final_test_acc: acc.get(r),
            samples_per_sec: sps.get(r).unwrap_or(f64::NAN),
            test_evals,
        });
    }
    Ok(out)
}

/// A configuration value as the grid writes it: the grid's text of an equal number when one
/// exists ("1e-4" for 0.0001), else the value as it is.
fn as_written(v: &str, grid: &[Option<String>]) -> String {
    let num = |s: &str| s.parse::<f64>().ok();
    match num(v) {
        Some(x) => grid
            .iter()
            .flatten()
            .find(|g| num(g) == Some(x))
            .cloned()
            .unwrap_or_else(|| v.to_string()),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_are_written_as_the_grid_writes_them() {
        let grid = vec![Some("1e-4".to_string()), None, Some("0.01".to_string())];
        assert_eq!(as_written("0.0001", &grid), "1e-4");
        assert_eq!(as_written("0.01", &grid), "0.01");
        assert_eq!(as_written("0.5", &grid), "0.5");
        assert_eq!(as_written("lstm", &grid), "lstm");
    }

    #[test]
    fn log_axes_are_the_grid_ranges_with_scale_log() {
        let t: toml::Table = toml::from_str(
            r#"
            [sweep]
            name = "x"
            [defaults]
            lr = 0.1
            [grid]
            lr = { start = 1e-4, stop = 1e-1, num = 4, scale = "log" }
            hidden = { start = 16, stop = 64, step = 16 }
            batch = [16, 32]
            layers = { start = 1, stop = 2, num = 2, scale = "linear" }
            "#,
        )
        .unwrap();
        assert_eq!(log_axes_of(&t), vec!["lr".to_string()]);
        assert!(log_axes_of(&toml::Table::new()).is_empty());
    }
}
