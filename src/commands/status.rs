//! `rnnsweep status SWEEP`: where every cell of a sweep stands, across all the processes
//! sharing its results folder: the store's `CellState` (done, collapsed, diverged, running with
//! its lease's age and owner, stale, failed, partial, corrupt, new) with the details a person
//! needs to act on it, and for an unfinished cell the step of its newest checkpoint (where the
//! next sweep continues it).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{Outcome, SweepSelection};
use crate::report::export::cut;
use crate::store::lease::{now, ttl_from_env, Leases};
use crate::store::state::CellState;
use crate::store::RunStore;
use crate::trainer::record::RunStatus;

/// One cell's state as `status` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct CellRow {
    pub index: usize,
    pub id: String,
    pub variant: String,
    /// One of `CellState::NAMES`.
    pub state: &'static str,
    /// Running or stale: who holds the lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Seconds since the lease was taken, and since its last heartbeat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_age: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_age: Option<f64>,
    /// Failed: the error; corrupt and stale: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Unfinished: the optimizer steps of its newest checkpoint file (by name: the next sweep
    /// checks it and falls back to the one before if it is damaged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<u64>,
    /// The cell's whole budget in optimizer steps.
    pub steps: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepState {
    pub sweep: String,
    pub dir: String,
    pub cells: usize,
    /// State name → count, for every state, in `CellState::NAMES` order (also in JSON).
    pub counts: Counts,
    /// Pruned cells per rung they stopped at (`[prune]`), rung → cells.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pruned_at: BTreeMap<usize, usize>,
    pub detail: Vec<CellRow>,
}

/// How many cells are in each state, every state listed in [`CellState::NAMES`] order; serialized as a
/// JSON object whose keys keep that order.
#[derive(Clone, Debug)]
pub struct Counts(Vec<(&'static str, usize)>);

impl Counts {
    fn of(detail: &[CellRow]) -> Counts {
        Counts(
            CellState::NAMES
                .iter()
                .map(|s| (*s, detail.iter().filter(|c| c.state == *s).count()))
                .collect(),
        )
    }
    /// The count of one state (0 for a name that is not a state).
    pub fn get(&self, state: &str) -> usize {
        self.0
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    }
}

impl Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Reads a sweep folder's state.
pub fn sweep_state(dir: &Path, ttl: Duration) -> anyhow::Result<SweepState> {
    let store = RunStore::at(dir);
    let plan = store.load_plan()?;
    let leases = Leases::new(store.layout.leases(), ttl);
    let t = now();
    let mut detail = Vec::with_capacity(plan.cells.len());
    let mut pruned_at = BTreeMap::new();
    for cell in &plan.cells {
        let (state, result) = store.cell_state(cell, Some(&leases));
        if let Some(RunStatus::Pruned { rung, .. }) = result.map(|r| r.record.status) {
            *pruned_at.entry(rung).or_insert(0) += 1;
        }
        let owner = state.owner();
        let checkpoint = if state.finished() {
            None
        } else {
            let files = store.layout.checkpoints(&cell.id).list()?;
            files.first().map(|(steps, _)| *steps)
        };
        detail.push(CellRow {
            index: cell.index,
            id: cell.id.clone(),
            variant: cell.variant.clone(),
            state: state.name(),
            owner: owner.map(|i| i.owner.describe()),
            lease_age: owner.map(|i| t - i.acquired),
            heartbeat_age: owner.map(|i| t - i.heartbeat),
            note: match &state {
                CellState::Failed(msg) | CellState::Corrupt(msg) | CellState::Stale(_, msg) => {
                    Some(msg.clone())
                }
                _ => None,
            },
            checkpoint,
            steps: cell.config.total_iterations(),
        });
    }
    let counts = Counts::of(&detail);
    Ok(SweepState {
        sweep: plan.name.clone(),
        dir: dir.display().to_string(),
        cells: plan.cells.len(),
        counts,
        pruned_at,
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

/// The text form: a counts line, then the cells that are running, stale, failed or corrupt.
pub fn render(s: &SweepState) -> String {
    let mut o = format!("sweep {:?} ({}): {} cells\n", s.sweep, s.dir, s.cells);
    let parts: Vec<String> = CellState::NAMES
        .iter()
        .filter(|st| s.counts.get(st) > 0 || matches!(**st, "done" | "running" | "new"))
        .map(|st| format!("{} {st}", s.counts.get(st)))
        .collect();
    o.push_str(&parts.join(", "));
    o.push('\n');
    if !s.pruned_at.is_empty() {
        let rungs: Vec<String> = s
            .pruned_at
            .iter()
            .map(|(rung, n)| format!("{n} at rung {rung}"))
            .collect();
        o.push_str(&format!("pruned: {}\n", rungs.join(", ")));
    }
    for (state, heading) in [
        ("running", "running"),
        (
            "stale",
            "stale (the next sweep on this folder takes these over)",
        ),
        ("failed", "failed (`sweep --rerun-failed` runs them again)"),
        ("corrupt", "corrupt (the next sweep runs them again)"),
        (
            "partial",
            "partial (the next sweep continues them from their newest checkpoint)",
        ),
    ] {
        let cells: Vec<&CellRow> = s.detail.iter().filter(|c| c.state == state).collect();
        if cells.is_empty() {
            continue;
        }
        o.push_str(&format!("{heading}:\n"));
        for c in cells {
            let saved = match c.checkpoint {
                Some(n) => format!("checkpoint at step {n} of {}", c.steps),
                None => "no checkpoint: starts from the beginning".into(),
            };
            let line = match state {
                "running" => format!(
                    "  [{}] {} by {}, lease {} old, heartbeat {} ago; {saved}",
                    c.index,
                    c.variant,
                    c.owner.as_deref().unwrap_or("?"),
                    ago(c.lease_age),
                    ago(c.heartbeat_age)
                ),
                "partial" => format!("  [{}] {}: {saved}", c.index, c.variant),
                "stale" => format!(
                    "  [{}] {}: {}; {saved}",
                    c.index,
                    c.variant,
                    c.note.as_deref().unwrap_or("")
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

/// Options of `rnnsweep status`.
#[derive(Clone, Debug)]
pub struct StatusOptions {
    /// The sweeps read.
    pub sweeps: SweepSelection,
    pub json: bool,
}

/// `rnnsweep status SWEEP...`: the lease time-to-live comes from `RNNSWEEP_LEASE_TTL` (see
/// `store::lease`).
pub fn status_cmd(o: &StatusOptions) -> anyhow::Result<Outcome> {
    let ttl = ttl_from_env()?;
    let dirs = o.sweeps.dirs()?;
    let states = dirs
        .iter()
        .map(|d| sweep_state(d, ttl))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if o.json {
        println!("{}", serde_json::to_string_pretty(&states)?);
    } else {
        for s in &states {
            print!("{}", render(s));
        }
    }
    Ok(Outcome::Ok)
}
