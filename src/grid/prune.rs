//! The `[prune]` table of a grid file: early stopping of unpromising configurations by
//! successive halving, synchronous (`sha`) or asynchronous (`asha`):
//!
//! ```toml
//! [prune]
//! method = "asha"            # or "sha"
//! metric = "test_acc"        # what ranks configurations at a rung (or "test_loss")
//! min_resource = 1           # the first rung, in the budget's unit (epochs or steps)
//! reduction_factor = 3       # η: one configuration in η goes on at each rung
//! max_resource = 27          # the full budget (default: the cells' budget)
//! ```
//!
//! Rungs are at min_resource · ηᵏ below max_resource; the rules are in `plan::rungs` and
//! `plan::halving`. Here only the table is read and checked.

use serde::{Deserialize, Serialize};

/// Synchronous or asynchronous successive halving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Halving {
    Sha,
    Asha,
}

impl Halving {
    /// The grid's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Halving::Sha => "sha",
            Halving::Asha => "asha",
        }
    }
}

/// What ranks configurations at a rung: the mean over a configuration's seeds of the test
/// evaluation at the rung.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RungMetric {
    /// Test accuracy, higher is better.
    TestAcc,
    /// Test loss, lower is better.
    TestLoss,
}

impl RungMetric {
    pub fn name(self) -> &'static str {
        match self {
            RungMetric::TestAcc => "test_acc",
            RungMetric::TestLoss => "test_loss",
        }
    }
    pub fn higher_is_better(self) -> bool {
        self == RungMetric::TestAcc
    }
}

/// A checked `[prune]` table.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prune {
    pub method: Halving,
    pub metric: RungMetric,
    /// The first rung, in the budget's unit.
    pub min_resource: u64,
    /// η.
    pub reduction_factor: u64,
    /// The full budget, in the budget's unit; None: the cells' budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_resource: Option<u64>,
}

/// Largest η accepted (a larger one prunes all but one configuration at the first rung).
pub const MAX_REDUCTION: u64 = 100;

/// Reads a `[prune]` table; an error names the key (`prune.KEY`) and says what is allowed.
pub fn parse_prune(t: &toml::Table) -> Result<Prune, (String, String)> {
    let at = |k: &str| format!("prune.{k}");
    super::error::only_keys(
        t,
        &[
            "method",
            "metric",
            "min_resource",
            "reduction_factor",
            "max_resource",
        ],
        "key",
        "[prune] takes method, metric, min_resource, reduction_factor and max_resource",
    )
    .map_err(|(k, msg)| (at(&k), msg))?;
    let word = |k: &str, allowed: &[&str]| -> Result<Option<String>, (String, String)> {
        match t.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
            Some(other) => Err((
                at(k),
                format!(
                    "expected one of {}, got {other}",
                    allowed
                        .iter()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    };
    let method = match word("method", &["sha", "asha"])?.as_deref() {
        Some("sha") => Halving::Sha,
        Some(_) => Halving::Asha,
        None => {
            return Err((
                at("method"),
                "missing `method = \"asha\"` (or \"sha\"): how to prune".into(),
            ))
        }
    };
    let metric = match word("metric", &["test_acc", "test_loss"])?.as_deref() {
        Some("test_loss") => RungMetric::TestLoss,
        _ => RungMetric::TestAcc,
    };
    let int = |k: &str, lo: i64, hi: i64| super::error::int_in(t, "prune", k, (lo, hi));
    let min_resource = int("min_resource", 1, i64::MAX)?.ok_or_else(|| {
        (
            at("min_resource"),
            "missing `min_resource = N`: the first rung, in epochs (or steps when the budget is \
             `iterations`)"
                .to_string(),
        )
    })?;
    let reduction_factor = int("reduction_factor", 2, MAX_REDUCTION as i64)?.unwrap_or(3);
    let max_resource = int("max_resource", 1, i64::MAX)?;
    if let Some(max) = max_resource {
        if max <= min_resource {
            return Err((
                at("max_resource"),
                format!(
                    "{max} leaves no rung before the end: it must be larger than min_resource \
                     ({min_resource})"
                ),
            ));
        }
    }
    Ok(Prune {
        method,
        metric,
        min_resource,
        reduction_factor,
        max_resource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Prune, (String, String)> {
        parse_prune(&text.parse::<toml::Table>().unwrap())
    }

    #[test]
    fn reads_the_table_with_its_defaults() {
        let p = parse("method = \"asha\"\nmin_resource = 1").unwrap();
        assert_eq!(
            p,
            Prune {
                method: Halving::Asha,
                metric: RungMetric::TestAcc,
                min_resource: 1,
                reduction_factor: 3,
                max_resource: None,
            }
        );
        let p = parse(
            "method = \"sha\"\nmetric = \"test_loss\"\nmin_resource = 100\nreduction_factor = 2\nmax_resource = 800",
        )
        .unwrap();
        assert_eq!(p.method, Halving::Sha);
        assert!(!p.metric.higher_is_better());
        assert_eq!((p.reduction_factor, p.max_resource), (2, Some(800)));
    }

    #[test]
    fn errors_name_the_key_and_what_is_allowed() {
        let e = |t: &str| parse(t).unwrap_err();
        assert_eq!(e("min_resource = 1").0, "prune.method");
        let (k, m) = e("method = \"hyperband\"\nmin_resource = 1");
        assert_eq!(k, "prune.method");
        assert!(m.contains("\"sha\", \"asha\""), "{m}");
        assert_eq!(e("method = \"sha\"").0, "prune.min_resource");
        let (k, m) = e("method = \"sha\"\nmin_resource = 1\nreduction_factor = 1");
        assert_eq!(k, "prune.reduction_factor");
        assert!(m.contains("2..=100"), "{m}");
        let (k, m) = e("method = \"sha\"\nmin_resource = 3\nmax_resource = 3");
        assert_eq!(k, "prune.max_resource");
        assert!(m.contains("larger than min_resource"), "{m}");
        let (k, m) = e("method = \"sha\"\nmin_resource = 1\nreduction = 3");
        assert_eq!(k, "prune.reduction");
        assert!(m.contains("reduction_factor"), "{m}");
        let (k, _) = e("method = \"sha\"\nmin_resource = 1\nmetric = \"acc\"");
        assert_eq!(k, "prune.metric");
    }
}
