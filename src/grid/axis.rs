//! Grid axes: a list of values, a linear range `{ start, stop, step }` (stop included when it
//! is hit), or `{ start, stop, num, scale = "log" | "linear" }` (num points, both ends
//! included). Float steps are computed as start + i·step and rounded to 12 significant digits,
//! so 0.1-steps do not drift.

use super::params::{check, Kind, Value};

/// Most values one axis may have.
pub const MAX_AXIS_VALUES: usize = 1000;

/// Expands one axis definition into checked values (errors say what is wrong and what is allowed).
pub fn expand(kind: Kind, def: &toml::Value) -> Result<Vec<Value>, String> {
    let values = match def {
        toml::Value::Array(items) => {
            if items.is_empty() {
                return Err("empty axis: give at least one value".into());
            }
            items
                .iter()
                .enumerate()
                .map(|(i, v)| check(kind, v).map_err(|e| format!("value {} of the list: {e}", i + 1)))
                .collect::<Result<Vec<_>, _>>()?
        }
        toml::Value::Table(t) => range(kind, t)?,
        _ => {
            return Err(
                "a grid axis needs a list (`[1, 2]`) or a range table (`{ start = 1, stop = 4, step = 1 }`); \
                 for a single fixed value use [defaults]"
                    .into(),
            )
        }
    };
    if values.len() > MAX_AXIS_VALUES {
        return Err(format!(
            "{} values on one axis; at most {MAX_AXIS_VALUES}",
            values.len()
        ));
    }
    for (i, a) in values.iter().enumerate() {
        if values[..i].contains(a) {
            return Err(format!("the value {a} appears twice on this axis"));
        }
    }
    Ok(values)
}

/// The targets of a parameter-matched axis, `hidden = { params = 20000 }` or
/// `{ params = [20000, 50000] }`: parameter counts ≥ 1, for the key `hidden` only.
pub fn param_targets(key: &str, t: &toml::Table) -> Result<Vec<u64>, String> {
    if key != "hidden" {
        return Err(format!(
            "`{{ params = N }}` matches the hidden size to a parameter count; `{key}` is not `hidden`"
        ));
    }
    if let Some(k) = t.keys().find(|k| *k != "params") {
        return Err(format!(
            "a parameter-matched axis is `{{ params = N }}` alone; `{k}` is not allowed"
        ));
    }
    let one = |v: &toml::Value| match v {
        toml::Value::Integer(n) if *n >= 1 => Ok(*n as u64),
        other => Err(format!("a parameter count is an integer ≥ 1, got {other}")),
    };
    let targets = match &t["params"] {
        toml::Value::Array(a) if !a.is_empty() => {
            a.iter().map(one).collect::<Result<Vec<_>, _>>()?
        }
        toml::Value::Array(_) => return Err("empty list of parameter counts".into()),
        v => vec![one(v)?],
    };
    for (i, a) in targets.iter().enumerate() {
        if targets[..i].contains(a) {
            return Err(format!("the parameter count {a} appears twice"));
        }
    }
    Ok(targets)
}

fn num(t: &toml::Table, key: &str) -> Result<Option<f64>, String> {
    match t.get(key) {
        None => Ok(None),
        Some(toml::Value::Integer(i)) => Ok(Some(*i as f64)),
        Some(toml::Value::Float(x)) if x.is_finite() => Ok(Some(*x)),
        Some(other) => Err(format!("`{key}` must be a number, got {other}")),
    }
}

fn round12(x: f64) -> f64 {
    format!("{x:.11e}").parse().expect("formatted float parses")
}

fn range(kind: Kind, t: &toml::Table) -> Result<Vec<Value>, String> {
    super::error::only_keys(
        t,
        &["start", "stop", "step", "num", "scale"],
        "range key",
        "a range is { start, stop, step } or { start, stop, num, scale }",
    )
    .map_err(|(_, msg)| msg)?;
    if matches!(kind, Kind::Word(_) | Kind::Bool | Kind::EvalEvery) {
        return Err("ranges are for numeric keys; list the values instead".into());
    }
    let start = num(t, "start")?.ok_or("a range needs `start`")?;
    let stop = num(t, "stop")?.ok_or("a range needs `stop`")?;
    let step = num(t, "step")?;
    let n = match t.get("num") {
        None => None,
        Some(toml::Value::Integer(n)) if *n >= 1 => Some(*n as usize),
        Some(other) => return Err(format!("`num` must be an integer ≥ 1, got {other}")),
    };
    let log = match t.get("scale") {
        None => false,
        Some(toml::Value::String(s)) if s == "log" => true,
        Some(toml::Value::String(s)) if s == "linear" => false,
        Some(other) => {
            return Err(format!(
                "`scale` must be \"log\" or \"linear\", got {other}"
            ))
        }
    };
    if stop < start {
        return Err(format!("stop ({stop}) is below start ({start})"));
    }
    let raw: Vec<f64> = match (step, n) {
        (Some(_), Some(_)) => return Err("give either `step` or `num`, not both".into()),
        (None, None) => {
            return Err(
                "a range needs `step` (linear) or `num` (with scale = \"log\" or \"linear\")"
                    .into(),
            )
        }
        (Some(step), None) => {
            if log {
                return Err("`scale = \"log\"` goes with `num`, not `step`".into());
            }
            if step <= 0.0 {
                return Err(format!("step must be > 0, got {step}"));
            }
            let count = ((stop - start) / step + 1e-9).floor() as usize + 1;
            if count > MAX_AXIS_VALUES {
                return Err(format!(
                    "this range has {count} values; at most {MAX_AXIS_VALUES}"
                ));
            }
            (0..count)
                .map(|i| round12(start + i as f64 * step))
                .collect()
        }
        (None, Some(n)) => {
            if n > MAX_AXIS_VALUES {
                return Err(format!("num = {n}; at most {MAX_AXIS_VALUES}"));
            }
            if log && start <= 0.0 {
                return Err(format!("a log range needs start > 0, got {start}"));
            }
            (0..n)
                .map(|i| {
                    let f = if n == 1 {
                        0.0
                    } else {
                        i as f64 / (n - 1) as f64
                    };
                    round12(if log {
                        start * (stop / start).powf(f)
                    } else {
                        start + f * (stop - start)
                    })
                })
                .collect()
        }
    };
    raw.into_iter()
        .map(|x| {
            let v = if matches!(kind, Kind::Int(..)) {
                if (x - x.round()).abs() > 1e-9 {
                    return Err(format!("this range yields {x}, but the key takes integers"));
                }
                toml::Value::Integer(x.round() as i64)
            } else {
                toml::Value::Float(x)
            };
            check(kind, &v).map_err(|e| format!("range value {x}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(s: &str) -> toml::Value {
        toml::from_str::<toml::Table>(&format!("x = {s}")).unwrap()["x"].clone()
    }
    fn floats(v: Vec<Value>) -> Vec<f64> {
        v.into_iter()
            .map(|x| if let Value::Float(f) = x { f } else { panic!() })
            .collect()
    }

    #[test]
    fn linear_ranges_include_stop_without_drift() {
        let v = expand(
            crate::trainer::config::keys::LR,
            &def("{ start = 0.1, stop = 0.5, step = 0.1 }"),
        )
        .unwrap();
        assert_eq!(floats(v), vec![0.1, 0.2, 0.3, 0.4, 0.5]);
        let h = expand(
            Kind::Int(1, 8192),
            &def("{ start = 32, stop = 128, step = 32 }"),
        )
        .unwrap();
        assert_eq!(
            h,
            vec![
                Value::Int(32),
                Value::Int(64),
                Value::Int(96),
                Value::Int(128)
            ]
        );
    }

    #[test]
    fn log_ranges_are_geometric() {
        let v = expand(
            crate::trainer::config::keys::LR,
            &def("{ start = 1e-4, stop = 1e-1, num = 4, scale = \"log\" }"),
        )
        .unwrap();
        assert_eq!(floats(v), vec![1e-4, 1e-3, 1e-2, 1e-1]);
        let h = expand(
            Kind::Int(1, 8192),
            &def("{ start = 16, stop = 256, num = 5, scale = \"log\" }"),
        )
        .unwrap();
        assert_eq!(h, (4..=8).map(|p| Value::Int(1 << p)).collect::<Vec<_>>());
    }

    #[test]
    fn bad_axes_say_why() {
        let e = |kind, s: &str| expand(kind, &def(s)).unwrap_err();
        assert!(e(Kind::Int(1, 10), "[]").contains("empty axis"));
        assert!(e(Kind::Int(1, 10), "3").contains("needs a list"));
        assert!(e(Kind::Int(1, 10), "[1, 1]").contains("appears twice"));
        assert!(e(
            Kind::Int(1, 100),
            "{ start = 1, stop = 10, num = 4, scale = \"log\" }"
        )
        .contains("takes integers"));
        assert!(e(
            crate::trainer::config::keys::LR,
            "{ start = 1, stop = 2, stp = 1 }"
        )
        .contains("did you mean `step`"));
        assert!(e(
            crate::trainer::config::keys::LR,
            "{ start = 2, stop = 1, step = 1 }"
        )
        .contains("below start"));
        assert!(e(
            Kind::Int(1, 1_000_000),
            "{ start = 1, stop = 100000, step = 1 }"
        )
        .contains("at most 1000"));
        assert!(e(Kind::Word(&["a"]), "{ start = 1, stop = 2, step = 1 }").contains("numeric keys"));
    }
}
