//! `rnnsweep status SWEEP`: where every cell of a sweep stands, across all the processes
//! sharing its results folder: done, diverged, running (live lease, with its age and owner),
//! stale (a lease whose owner is gone), failed, partial (started, no lease) and new.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::results::resolve_sweeps;
use super::Outcome;
use crate::report::export::cut;
use crate::store::lease::{now, Leases, Liveness};
use crate::store::{CellStatus, RunStore};

/// One cell's state as `status` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct CellState {
    pub index: usize,
    pub id: String,
    pub variant: String,
    /// done, diverged, running, stale, failed, partial, new, corrupt.
    pub state: &'static str,
    /// Running or stale: who holds the lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Seconds since the lease was taken, and since its last heartbeat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_age: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_age: Option<f64>,
    /// Failed: the error; stale: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepState {
    pub sweep: String,
    pub dir: String,
    pub cells: usize,
    /// State name → count, in the fixed order of `STATES`.
    pub counts: BTreeMap<&'static str, usize>,
    pub detail: Vec<CellState>,
}

/// The states, in display order.
pub const STATES: [&str; 8] = [
    "done", "diverged", "running", "stale", "failed", "partial", "corrupt", "new",
];

/// Reads a sweep folder's state.
pub fn sweep_state(dir: &Path, ttl: Duration) -> anyhow::Result<SweepState> {
    let store = RunStore::at(dir);
    let plan = store.load_plan()?;
    let leases = Leases::new(store.layout.leases(), ttl);
    let t = now();
    let mut detail = Vec::with_capacity(plan.cells.len());
    for cell in &plan.cells {
        let status = store.status(cell);
        let mut c = CellState {
            index: cell.index,
            id: cell.id.clone(),
            variant: cell.variant.clone(),
            state: status.name(),
            owner: None,
            lease_age: None,
            heartbeat_age: None,
            note: None,
        };
        match &status {
            CellStatus::Done(_) => {}
            CellStatus::Failed(msg) => c.note = Some(msg.clone()),
            _ => {
                if let Some((info, live)) = leases.inspect(&cell.id) {
                    c.owner = info.as_ref().map(|i| i.owner.describe());
                    c.lease_age = info.as_ref().map(|i| t - i.acquired);
                    c.heartbeat_age = info.as_ref().map(|i| t - i.heartbeat);
                    match live {
                        Liveness::Live => c.state = "running",
                        Liveness::Stale(why) => {
                            c.state = "stale";
                            c.note = Some(why);
                        }
                    }
                }
            }
        }
        detail.push(c);
    }
    let counts = STATES
        .iter()
        .map(|s| (*s, detail.iter().filter(|c| c.state == *s).count()))
        .collect();
    Ok(SweepState {
        sweep: plan.name.clone(),
        dir: dir.display().to_string(),
        cells: plan.cells.len(),
        counts,
        detail,
    })
}

fn ago(secs: Option<f64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 90.0 => format!("{s:.0}s"),
        Some(s) if s < 5400.0 => format!("{:.0}m", s / 60.0),
        Some(s) => format!("{:.1}h", s / 3600.0),
    }
}

/// The text form: a counts line, then the cells that are running, stale or failed.
pub fn render(s: &SweepState) -> String {
    let mut o = format!("sweep {:?} ({}): {} cells\n", s.sweep, s.dir, s.cells);
    let parts: Vec<String> = STATES
        .iter()
        .filter(|st| s.counts[*st] > 0 || matches!(**st, "done" | "running" | "new"))
        .map(|st| format!("{} {st}", s.counts[st]))
        .collect();
    o.push_str(&parts.join(", "));
    o.push('\n');
    for (state, heading) in [
        ("running", "running"),
        (
            "stale",
            "stale (the next sweep on this folder takes these over)",
        ),
        ("failed", "failed (`sweep --rerun-failed` runs them again)"),
    ] {
        let cells: Vec<&CellState> = s.detail.iter().filter(|c| c.state == state).collect();
        if cells.is_empty() {
            continue;
        }
        o.push_str(&format!("{heading}:\n"));
        for c in cells {
            let line = match state {
                "running" => format!(
                    "  [{}] {} by {}, lease {} old, heartbeat {} ago",
                    c.index,
                    c.variant,
                    c.owner.as_deref().unwrap_or("?"),
                    ago(c.lease_age),
                    ago(c.heartbeat_age)
                ),
                _ => format!(
                    "  [{}] {}: {}",
                    c.index,
                    c.variant,
                    c.note.as_deref().unwrap_or("")
                ),
            };
            o.push_str(&cut(&line, 160));
            o.push('\n');
        }
    }
    o
}

/// `rnnsweep status SWEEP...`.
pub fn status_cmd(
    results: &Path,
    sweeps: &[String],
    ttl: Duration,
    json: bool,
) -> anyhow::Result<Outcome> {
    let dirs = resolve_sweeps(results, sweeps)?;
    let states = dirs
        .iter()
        .map(|d| sweep_state(d, ttl))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&states)?);
    } else {
        for s in &states {
            print!("{}", render(s));
        }
    }
    Ok(Outcome::Ok)
}
