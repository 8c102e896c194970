//! Random search: the `[search]` table (`method = "grid"`, the default, or `"random"` with
//! `trials = N` and `seed`) and the `[grid]` axes written as distributions, which each trial
//! draws from:
//!
//! ```toml
//! [search]
//! method = "random"
//! trials = 20
//! seed = 0
//!
//! [grid]
//! lr = { dist = "loguniform", low = 1e-4, high = 1e-1 }
//! momentum = { dist = "uniform", low = 0.0, high = 0.95 }
//! hidden = { dist = "int", low = 16, high = 256, log = true }
//! cell = { choice = ["lstm", "gru"] }
//! ```
//!
//! A distribution is checked against its key's type and range from the table of keys (both
//! ends, every choice), so it can draw nothing a list could not hold. Trial `t` draws each key
//! from its own stream, seeded by (search seed, t, key): the same file always draws the same
//! trials, and adding an axis leaves the other axes' draws as they were. Drawn numbers are
//! rounded to 6 significant digits (readable slugs, and the same value on every platform's
//! `ln`/`exp`). Distribution axes are crossed with the variants, the list axes and the seeds;
//! a trial that draws a configuration already drawn is left out (the plan counts it).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::params::{check, Kind, Value};

/// How the grid's cells are chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Method {
    /// Every combination of the axes (the default).
    #[default]
    Grid,
    /// `trials` draws from the distribution axes, from the stream of `seed`.
    Random { trials: usize, seed: u64 },
}

impl Method {
    /// Draws per variant and list-axis combination (1 for a full grid).
    pub fn trials(&self) -> usize {
        match self {
            Method::Grid => 1,
            Method::Random { trials, .. } => *trials,
        }
    }
}

/// Most trials of one random search.
pub const MAX_TRIALS: usize = 10_000;

/// Checks the `[search]` table.
pub fn parse_method(t: &toml::Table) -> Result<Method, (String, String)> {
    let at = |k: &str| format!("search.{k}");
    super::error::only_keys(
        t,
        &["method", "trials", "seed"],
        "key",
        "[search] takes method, trials and seed",
    )
    .map_err(|(k, msg)| (at(&k), msg))?;
    let method = match t.get("method") {
        None => "grid",
        Some(toml::Value::String(s)) if s == "grid" || s == "random" => s.as_str(),
        Some(other) => {
            return Err((
                at("method"),
                format!("expected \"grid\" or \"random\", got {other}"),
            ))
        }
    };
    let int = |k: &str, lo: i64, hi: i64| super::error::int_in(t, "search", k, (lo, hi));
    let trials = int("trials", 1, MAX_TRIALS as i64)?;
    let seed = int("seed", 0, i64::MAX)?;
    match (method, trials) {
        ("random", Some(n)) => Ok(Method::Random {
            trials: n as usize,
            seed: seed.unwrap_or(0),
        }),
        ("random", None) => Err((
            at("method"),
            "a random search needs `trials = N` (how many draws)".into(),
        )),
        (_, None) if seed.is_none() => Ok(Method::Grid),
        _ => Err((
            at(if trials.is_some() { "trials" } else { "seed" }),
            "`trials` and `seed` go with method = \"random\"".into(),
        )),
    }
}

/// An axis written as a distribution.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    Uniform { low: f64, high: f64 },
    LogUniform { low: f64, high: f64 },
    Int { low: u64, high: u64, log: bool },
    Choice(Vec<Value>),
}

/// Whether an axis table is a distribution (`dist = …` or `choice = […]`) rather than a range.
pub fn is_dist(t: &toml::Table) -> bool {
    t.contains_key("dist") || t.contains_key("choice")
}

/// Checks a distribution table against the key's kind.
pub fn parse_dist(kind: Kind, t: &toml::Table) -> Result<Dist, String> {
    if let Some(c) = t.get("choice") {
        if t.len() > 1 {
            return Err("a choice is `{ choice = [...] }` alone".into());
        }
        let items = match c {
            toml::Value::Array(a) if !a.is_empty() => a,
            other => return Err(format!("`choice` needs a non-empty list, got {other}")),
        };
        let values = items
            .iter()
            .enumerate()
            .map(|(i, v)| check(kind, v).map_err(|e| format!("choice {}: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in values.iter().enumerate() {
            if values[..i].contains(a) {
                return Err(format!("the choice {a} appears twice"));
            }
        }
        return Ok(Dist::Choice(values));
    }
    super::error::only_keys(
        t,
        &["dist", "low", "high", "log"],
        "distribution key",
        "a distribution is { dist, low, high } (int: also log)",
    )
    .map_err(|(_, msg)| msg)?;
    let name = match t.get("dist") {
        Some(toml::Value::String(s)) => s.as_str(),
        other => {
            return Err(format!(
                "`dist` must be \"uniform\", \"loguniform\" or \"int\", got {}",
                other.map_or("nothing".into(), |v| v.to_string())
            ))
        }
    };
    if matches!(kind, Kind::Word(_) | Kind::Bool | Kind::EvalEvery) {
        return Err("only numeric keys take a distribution; use `{ choice = [...] }`".into());
    }
    let bound = |k: &str| -> Result<toml::Value, String> {
        let v = t
            .get(k)
            .ok_or_else(|| format!("a distribution needs `{k}`"))?;
        check(kind, v).map_err(|e| format!("`{k}`: {e}"))?;
        Ok(v.clone())
    };
    let (low, high) = (bound("low")?, bound("high")?);
    let float = |v: &toml::Value| match v {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(x) => *x,
        _ => f64::NAN,
    };
    let (lo, hi) = (float(&low), float(&high));
    if lo >= hi {
        return Err(format!("low ({lo}) must be below high ({hi})"));
    }
    let log = match t.get("log") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => return Err(format!("`log` must be true or false, got {other}")),
    };
    match (name, kind) {
        ("int", Kind::Int(..)) => {
            if log && lo <= 0.0 {
                return Err(format!("a log int distribution needs low > 0, got {lo}"));
            }
            Ok(Dist::Int {
                low: lo as u64,
                high: hi as u64,
                log,
            })
        }
        ("uniform" | "loguniform", Kind::Float(_)) if t.contains_key("log") => {
            Err("`log` goes with dist = \"int\"; use dist = \"loguniform\"".into())
        }
        ("uniform", Kind::Float(_)) => Ok(Dist::Uniform { low: lo, high: hi }),
        ("loguniform", Kind::Float(_)) if lo <= 0.0 => {
            Err(format!("a loguniform distribution needs low > 0, got {lo}"))
        }
        ("loguniform", Kind::Float(_)) => Ok(Dist::LogUniform { low: lo, high: hi }),
        ("int", _) => Err("dist = \"int\" is for integer keys; use uniform or loguniform".into()),
        ("uniform" | "loguniform", Kind::Int(..)) => Err(
            "an integer key draws from dist = \"int\" (with `log = true` for a log scale)".into(),
        ),
        ("uniform" | "loguniform", _) => {
            Err("only numeric keys take a distribution; use `{ choice = [...] }`".into())
        }
        (other, _) => Err(format!(
            "unknown dist {other:?}; use \"uniform\", \"loguniform\" or \"int\"{}",
            super::error::did_you_mean(other, &["uniform", "loguniform", "int"])
        )),
    }
}

/// `x` rounded to 6 significant digits.
fn round6(x: f64) -> f64 {
    format!("{x:.5e}").parse().expect("formatted float parses")
}

impl Dist {
    /// The value trial `trial` of the search seeded `seed` draws for `key`.
    pub fn draw(&self, seed: u64, trial: usize, key: &str) -> Value {
        let h = blake3::hash(format!("{seed}/{trial}/{key}").as_bytes());
        let mut rng =
            ChaCha8Rng::seed_from_u64(u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap()));
        let u: f64 = rng.gen();
        match self {
            Dist::Uniform { low, high } => Value::Float(round6(low + u * (high - low)).min(*high)),
            Dist::LogUniform { low, high } => {
                let x = (low.ln() + u * (high.ln() - low.ln())).exp();
                Value::Float(round6(x).clamp(*low, *high))
            }
            Dist::Int { low, high, log } => {
                let (lo, hi) = (*low as f64, *high as f64 + 1.0);
                let x = if *log {
                    (lo.ln() + u * (hi.ln() - lo.ln())).exp()
                } else {
                    lo + u * (hi - lo)
                };
                Value::Int((x.floor() as u64).clamp(*low, *high))
            }
            Dist::Choice(values) => {
                values[((u * values.len() as f64) as usize).min(values.len() - 1)].clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::keys::{key, LR};

    fn table(s: &str) -> toml::Table {
        toml::from_str::<toml::Table>(&format!("x = {s}")).unwrap()["x"]
            .as_table()
            .unwrap()
            .clone()
    }

    #[test]
    fn draws_are_stable_in_range_and_rounded() {
        let d = parse_dist(
            LR,
            &table("{ dist = \"loguniform\", low = 1e-4, high = 1e-1 }"),
        )
        .unwrap();
        let draws: Vec<Value> = (0..200).map(|t| d.draw(7, t, "lr")).collect();
        assert_eq!(
            draws,
            (0..200).map(|t| d.draw(7, t, "lr")).collect::<Vec<_>>()
        );
        for v in &draws {
            let Value::Float(x) = v else { panic!() };
            assert!((1e-4..=1e-1).contains(x), "{x}");
            assert_eq!(*x, round6(*x));
        }
        // Spread over the decades: a quarter of the draws or so in each of the 3.
        let low = draws
            .iter()
            .filter(|v| matches!(v, Value::Float(x) if *x < 1e-3))
            .count();
        assert!((40..=95).contains(&low), "{low} of 200 below 1e-3");
        // Another key or seed draws another stream.
        assert_ne!(d.draw(7, 0, "lr"), d.draw(8, 0, "lr"));
        assert_ne!(d.draw(7, 0, "lr"), d.draw(7, 0, "eps"));
        let hidden = key("hidden").unwrap().kind;
        let d = parse_dist(
            hidden,
            &table("{ dist = \"int\", low = 16, high = 256, log = true }"),
        )
        .unwrap();
        let ints: Vec<u64> = (0..500)
            .map(|t| match d.draw(0, t, "hidden") {
                Value::Int(i) => i,
                _ => panic!(),
            })
            .collect();
        assert!(ints.iter().all(|i| (16..=256).contains(i)));
        assert!(ints.contains(&16) && ints.contains(&256), "both ends drawn");
        let cell = key("cell").unwrap().kind;
        let d = parse_dist(cell, &table("{ choice = [\"lstm\", \"gru\"] }")).unwrap();
        let picks: Vec<Value> = (0..50).map(|t| d.draw(0, t, "cell")).collect();
        assert!(picks.contains(&Value::Word("lstm".into())));
        assert!(picks.contains(&Value::Word("gru".into())));
    }

    #[test]
    fn distributions_are_checked_against_the_keys_range() {
        let err = |k: &str, s: &str| parse_dist(key(k).unwrap().kind, &table(s)).unwrap_err();
        assert!(err("lr", "{ dist = \"uniform\", low = 0.0, high = 1 }").contains("`low`"));
        assert!(
            err("momentum", "{ dist = \"uniform\", low = 0.5, high = 1.0 }")
                .contains("momentum must be in [0, 1)")
        );
        assert!(
            err("lr", "{ dist = \"loguniform\", low = 0.1, high = 0.01 }")
                .contains("must be below high")
        );
        assert!(
            err("hidden", "{ dist = \"uniform\", low = 16, high = 64 }").contains("dist = \"int\"")
        );
        assert!(err("lr", "{ dist = \"normal\", low = 0.1, high = 0.2 }")
            .contains("unknown dist \"normal\""));
        assert!(err("cell", "{ choice = [\"lstm\", \"lsmt\"] }").contains("did you mean `lstm`"));
        assert!(err("lr", "{ dist = \"uniform\", low = 0.1, hihg = 0.2 }")
            .contains("did you mean `high`"));
    }

    #[test]
    fn the_search_table() {
        let m = |s: &str| parse_method(&toml::from_str::<toml::Table>(s).unwrap());
        assert_eq!(m(""), Ok(Method::Grid));
        assert_eq!(
            m("method = \"random\"\ntrials = 5"),
            Ok(Method::Random { trials: 5, seed: 0 })
        );
        assert!(m("method = \"random\"")
            .unwrap_err()
            .1
            .contains("needs `trials"));
        assert!(m("trials = 5")
            .unwrap_err()
            .1
            .contains("go with method = \"random\""));
        assert!(m("method = \"bayes\"").is_err());
        assert!(m("trails = 5")
            .unwrap_err()
            .1
            .contains("did you mean `trials`"));
    }
}
