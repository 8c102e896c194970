//! Where a cell stands, as every command names it: one [`CellState`] worked out from the cell's
//! files (`result.json`, `error.txt`, its run folder) and, where the caller has them, its lease.
//! `sweep`, `plan`, `status` and the report loader all use it, so "running", "stale" or
//! "partial" mean the same everywhere.

use super::lease::{LeaseInfo, Leases, Liveness};
use super::{CellResult, CellStatus, RunStore};
use crate::plan::Cell;
use crate::trainer::record::RunStatus;

/// A cell's state. The lease only refines a cell that is not finished: a live lease makes it
/// `Running`, one whose owner is gone makes it `Stale`.
#[derive(Clone, Debug, PartialEq)]
pub enum CellState {
    /// Nothing written yet.
    New,
    /// Started (run folder written), not finished and not leased: crashed, killed or stopped.
    Partial,
    /// Another process (or this one) holds a live lease on it.
    Running(Option<LeaseInfo>),
    /// Leased, but the lease no longer counts (its owner exited, or its heartbeat is older
    /// than the time-to-live): the next sweep on this folder takes it over.
    Stale(Option<LeaseInfo>, String),
    /// Completed with a model that predicts many classes.
    Done,
    /// Completed, but at least 99 % of the final test predictions are one class.
    Collapsed,
    /// The loss, a gradient or a parameter went non-finite.
    Diverged,
    /// Stopped for good at a rung by successive halving (`[prune]`).
    Pruned,
    /// Training raised an error (first line of error.txt).
    Failed(String),
    /// result.json exists but cannot be used (why); the cell runs again.
    Corrupt(String),
}

impl CellState {
    /// Every state's name, in display order.
    pub const NAMES: [&'static str; 10] = [
        "done",
        "collapsed",
        "diverged",
        "pruned",
        "running",
        "stale",
        "failed",
        "partial",
        "corrupt",
        "new",
    ];

    /// The state from the cell's files, its record (when recorded) and its lease (when known).
    pub fn of(
        files: &CellStatus,
        record: Option<&CellResult>,
        lease: Option<(Option<LeaseInfo>, Liveness)>,
    ) -> CellState {
        match files {
            // `train` writes interrupted records; in a sweep the cell simply has to run again.
            CellStatus::Recorded(RunStatus::Interrupted { .. }) => {
                CellState::of(&CellStatus::Partial, None, lease)
            }
            CellStatus::Recorded(RunStatus::Diverged { .. }) => CellState::Diverged,
            CellStatus::Recorded(RunStatus::Pruned { .. }) => CellState::Pruned,
            CellStatus::Recorded(_) if record.is_some_and(|r| r.record.collapsed) => {
                CellState::Collapsed
            }
            CellStatus::Recorded(_) => CellState::Done,
            CellStatus::Failed(msg) => CellState::Failed(msg.clone()),
            CellStatus::New | CellStatus::Partial | CellStatus::Corrupt(_) => match lease {
                Some((info, Liveness::Live)) => CellState::Running(info),
                Some((info, Liveness::Stale(why))) => CellState::Stale(info, why),
                None => match files {
                    CellStatus::Corrupt(why) => CellState::Corrupt(why.clone()),
                    CellStatus::Partial => CellState::Partial,
                    _ => CellState::New,
                },
            },
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            CellState::New => "new",
            CellState::Partial => "partial",
            CellState::Running(_) => "running",
            CellState::Stale(..) => "stale",
            CellState::Done => "done",
            CellState::Collapsed => "collapsed",
            CellState::Diverged => "diverged",
            CellState::Pruned => "pruned",
            CellState::Failed(_) => "failed",
            CellState::Corrupt(_) => "corrupt",
        }
    }

    /// Whether it has an outcome (done, collapsed, diverged or pruned).
    pub fn finished(&self) -> bool {
        matches!(
            self,
            CellState::Done | CellState::Collapsed | CellState::Diverged | CellState::Pruned
        )
    }

    /// Whether a sweep should try it: everything unfinished (a running cell's lease is then
    /// found held and the cell left to its owner), and failed cells with `--rerun-failed`.
    pub fn needs_run(&self, rerun_failed: bool) -> bool {
        match self {
            CellState::Failed(_) => rerun_failed,
            s => !s.finished(),
        }
    }

    /// The lease holder, for running and stale cells.
    pub fn owner(&self) -> Option<&LeaseInfo> {
        match self {
            CellState::Running(info) | CellState::Stale(info, _) => info.as_ref(),
            _ => None,
        }
    }
}

impl RunStore {
    /// A cell's state and, when it is finished, its record (read once). With `leases`, an
    /// unfinished cell's lease says whether it is running or stale; without, only the files
    /// count (the report, which reads results, not who is working on them).
    pub fn cell_state(
        &self,
        cell: &Cell,
        leases: Option<&Leases>,
    ) -> (CellState, Option<CellResult>) {
        let (files, record) = self.inspect(cell);
        let lease = match (&files, leases) {
            (CellStatus::Recorded(_) | CellStatus::Failed(_), _) | (_, None) => None,
            (_, Some(l)) => l.inspect(&cell.id),
        };
        (CellState::of(&files, record.as_ref(), lease), record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Origin;

    fn lease() -> LeaseInfo {
        LeaseInfo {
            cell: "c".into(),
            token: "t".into(),
            owner: Origin::current(),
            acquired: 0.0,
            heartbeat: 0.0,
        }
    }

    #[test]
    fn files_decide_finished_cells_and_the_lease_the_others() {
        let live = || Some((Some(lease()), Liveness::Live));
        let stale = || Some((Some(lease()), Liveness::Stale("owner exited".into())));
        let diverged = CellStatus::Recorded(RunStatus::Diverged {
            epoch: 1,
            iteration: 3,
            non_finite: None,
        });
        assert_eq!(CellState::of(&diverged, None, live()), CellState::Diverged);
        assert_eq!(
            CellState::of(&CellStatus::Recorded(RunStatus::Completed), None, live()).name(),
            "done"
        );
        let failed = CellStatus::Failed("boom".into());
        assert_eq!(CellState::of(&failed, None, live()).name(), "failed");
        for files in [
            CellStatus::New,
            CellStatus::Partial,
            CellStatus::Corrupt("x".into()),
        ] {
            assert_eq!(CellState::of(&files, None, live()).name(), "running");
            let s = CellState::of(&files, None, stale());
            assert_eq!(s.name(), "stale");
            assert!(s.owner().is_some() && s.needs_run(false));
        }
        assert_eq!(
            CellState::of(&CellStatus::Partial, None, None).name(),
            "partial"
        );
        let interrupted = CellStatus::Recorded(RunStatus::Interrupted {
            epoch: 1,
            iteration: 2,
        });
        assert_eq!(CellState::of(&interrupted, None, None), CellState::Partial);
        assert_eq!(CellState::of(&CellStatus::New, None, None).name(), "new");
        assert_eq!(
            CellState::of(&CellStatus::Corrupt("bad".into()), None, None),
            CellState::Corrupt("bad".into())
        );
        assert!(!CellState::Done.needs_run(true));
        assert!(!CellState::Collapsed.needs_run(true));
        assert!(CellState::Failed("x".into()).needs_run(true));
        assert!(!CellState::Failed("x".into()).needs_run(false));
        // Every state's name is listed once, in the display order.
        for s in [
            CellState::New,
            CellState::Partial,
            CellState::Running(None),
            CellState::Stale(None, String::new()),
            CellState::Done,
            CellState::Collapsed,
            CellState::Diverged,
            CellState::Pruned,
            CellState::Failed(String::new()),
            CellState::Corrupt(String::new()),
        ] {
            assert_eq!(
                CellState::NAMES.iter().filter(|n| **n == s.name()).count(),
                1
            );
        }
    }
}
