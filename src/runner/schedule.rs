//! The job source of a pruned sweep (`[prune]`): before each job it reads every cell's rung results
//! from disk (again only where a cell's files changed), makes successive halving's decisions
//! (`plan::halving`), records the cells of pruned configurations as `pruned` (their partial curve
//! kept, from the checkpoint at their rung), and hands out the next cell to train: to the rung its
//! configuration may reach, or to the end of its budget. Higher rungs first (ASHA trains promoted
//! configurations before new ones), then plan order; a worker's own shard first, then any ready
//! cell, so the study finishes as long as one process runs. Everything it decides follows from the
//! files, so a resumed sweep, other workers and other processes decide the same.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::{CellOutcome, Job, JobSource, Next, SweepObserver};
use crate::cluster::{Origin, Shard};
use crate::error::chain;
use crate::plan::halving::{config_score, decide_in, record_score, row_score, Decisions, Score};
use crate::plan::rungs::Ladder;
use crate::plan::{Cell, Plan};
use crate::store::lease::{Claim, Leases};
use crate::store::state::CellState;
use crate::store::RunStore;
use crate::trainer::fit::checkpoint::Checkpoint;
use crate::trainer::record::{MetricRow, RunRecord, RunStatus};

/// The scheduler of one pruned sweep process.
pub struct Scheduler<'a> {
    plan: &'a Plan,
    ladder: Ladder,
    config_of: Vec<usize>,
    /// Each configuration's place in the ladder's arrival order.
    arrival: Vec<usize>,
    place: Vec<usize>,
    store: &'a RunStore,
    leases: Leases,
    origin: Origin,
    shard: Option<Shard>,
    keep_checkpoints: bool,
    sweep: &'a dyn SweepObserver,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Cells handed to a worker of this process and not back yet.
    taken: BTreeSet<usize>,
    /// Finished records read so far (they do not change).
    finished: BTreeMap<usize, RunRecord>,
    /// Failed cells, not handed out again (failed before, without `--rerun-failed`, or here,
    /// or in another process meanwhile).
    failed: BTreeSet<usize>,
    /// With `--rerun-failed`: the cells that had failed when the sweep started, each tried
    /// once more.
    retry: BTreeSet<usize>,
    /// The highest level each configuration reached in a decision so far: decisions only
    /// grow as results arrive, and a result file being rewritten (its rows briefly fewer)
    /// must not take a promotion back.
    levels: Vec<usize>,
    /// The rung results last read from each unfinished cell's files, with the files' stamp:
    /// read again only when the stamp changes (a cell paused at a rung keeps its files as
    /// they are, and thousands may wait so).
    seen: BTreeMap<usize, (Stamp, Vec<Score>)>,
}

/// What tells that a cell's rung results may have changed: its metrics.csv's length and
/// modification time (rewritten by an atomic rename), and its newest checkpoint's step.
type Stamp = (Option<(u64, std::time::SystemTime)>, u64);

/// What recording a cell as pruned did.
enum Pruning {
    Recorded(Box<RunRecord>),
    /// Another worker holds it, or it was finished meanwhile.
    Later,
    /// It has no usable checkpoint at its rung: it must train to the rung again.
    Retrain,
    /// It could not be recorded (the error is in error.txt and the event log).
    Failed,
}

/// A cell as the scheduler sees it.
struct View {
    finished: Option<RunStatus>,
    /// Its result at each paused rung (None: not there yet).
    scores: Vec<Score>,
}

impl<'a> Scheduler<'a> {
    pub fn new(
        plan: &'a Plan,
        ladder: Ladder,
        store: &'a RunStore,
        leases: Leases,
        shard: Option<Shard>,
        (keep_checkpoints, rerun_failed): (bool, bool),
        sweep: &'a dyn SweepObserver,
    ) -> Self {
        let failed_before: BTreeSet<usize> = plan
            .cells
            .iter()
            .filter(|c| matches!(store.cell_state(c, None).0, CellState::Failed(_)))
            .map(|c| c.index)
            .collect();
        let (failed, retry) = match rerun_failed {
            true => (BTreeSet::new(), failed_before),
            false => (failed_before, BTreeSet::new()),
        };
        let arrival = ladder.arrival(plan);
        let mut place = vec![0; arrival.len()];
        for (p, &c) in arrival.iter().enumerate() {
            place[c] = p;
        }
        Scheduler {
            config_of: ladder.config_of(plan.cells.len()),
            arrival,
            place,
            plan,
            ladder,
            store,
            leases,
            origin: Origin::current(),
            shard,
            keep_checkpoints,
            sweep,
            state: Mutex::new(State {
                failed,
                retry,
                ..State::default()
            }),
        }
    }

    fn decide(&self, views: &[View]) -> Decisions {
        let scores: Vec<Vec<Score>> = self
            .ladder
            .configs
            .iter()
            .map(|cells| {
                (0..self.ladder.paused_rungs())
                    .map(|k| {
                        let seeds: Vec<Score> = cells.iter().map(|&i| views[i].scores[k]).collect();
                        config_score(&seeds)
                    })
                    .collect()
            })
            .collect();
        let p = &self.ladder.prune;
        decide_in(
            p.method,
            p.metric.higher_is_better(),
            p.reduction_factor,
            &scores,
            &self.arrival,
        )
    }

    /// The cells that have a folder under runs/ now (one directory read): the others have no
    /// files to look at.
    fn present(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.store.layout.runs())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn views(&self, st: &mut State, present: &BTreeSet<String>) -> Vec<View> {
        let metric = self.ladder.prune.metric;
        let rungs = self.ladder.paused_rungs();
        self.plan
            .cells
            .iter()
            .map(|cell| {
                if !st.finished.contains_key(&cell.index) && !present.contains(&cell.id) {
                    return View {
                        finished: None,
                        scores: vec![None; rungs],
                    };
                }
                if let std::collections::btree_map::Entry::Vacant(e) = st.finished.entry(cell.index)
                {
                    if let Ok(r) = self.store.load_result(&cell.id) {
                        if r.cell_id == cell.id && r.record.status.name() != "interrupted" {
                            e.insert(r.record);
                        }
                    }
                }
                let steps: Vec<u64> = (0..self.ladder.paused_rungs())
                    .map(|k| self.ladder.steps(&cell.config, k))
                    .collect();
                match st.finished.get(&cell.index) {
                    Some(r) => View {
                        finished: Some(r.status.clone()),
                        scores: steps.iter().map(|&s| record_score(r, s, metric)).collect(),
                    },
                    None => {
                        let metrics = self.store.layout.metrics_csv(&cell.id);
                        let saved = self
                            .store
                            .layout
                            .checkpoints(&cell.id)
                            .list()
                            .ok()
                            .and_then(|l| l.first().map(|c| c.0))
                            .unwrap_or(0);
                        let stamp: Stamp = (
                            std::fs::metadata(&metrics)
                                .ok()
                                .and_then(|m| Some((m.len(), m.modified().ok()?))),
                            saved,
                        );
                        let scores = match st.seen.get(&cell.index) {
                            Some((s, scores)) if *s == stamp => scores.clone(),
                            _ => {
                                let rows = read_metrics(&metrics);
                                // A rung's result counts once the checkpoint there is written
                                // too (the cell can then be continued or recorded as pruned
                                // from it).
                                let scores: Vec<Score> = steps
                                    .iter()
                                    .map(|&s| {
                                        (saved >= s).then(|| row_score(&rows, s, metric)).flatten()
                                    })
                                    .collect();
                                st.seen.insert(cell.index, (stamp, scores.clone()));
                                scores
                            }
                        };
                        View {
                            finished: None,
                            scores,
                        }
                    }
                }
            })
            .collect()
    }

    /// Whether `cell` is leased by a live worker (of any process).
    fn running(&self, cell: &Cell) -> bool {
        matches!(
            self.store.cell_state(cell, Some(&self.leases)).0,
            CellState::Running(_)
        )
    }

    /// Records `cell`, paused at rung `rung`, as pruned there (under its lease), from its
    /// newest usable checkpoint.
    fn prune(&self, cell: &Cell, rung: usize, worker: usize) -> Pruning {
        let store = self.store;
        let _lease = match self.leases.claim(&cell.id, &self.origin) {
            Ok(Claim::Acquired(l)) | Ok(Claim::TookOver(l, ..)) => l,
            Ok(Claim::Held(_)) => return Pruning::Later,
            Err(e) => {
                store.log_event(
                    "failed",
                    Some(cell),
                    serde_json::json!({ "error": format!("cannot claim the cell: {}", chain(&e)) }),
                );
                return Pruning::Failed;
            }
        };
        if store.cell_state(cell, None).0.finished() {
            return Pruning::Later;
        }
        let steps = self.ladder.steps(&cell.config, rung);
        let files = store.layout.checkpoints(&cell.id);
        let decode = |b: &[u8]| Checkpoint::from_bytes(b, &cell.config).map_err(|e| e.to_string());
        // No usable checkpoint at the rung (torn, of another format): train to it again.
        let Some(ckpt) = files
            .newest(decode)
            .ok()
            .and_then(|f| f.newest)
            .map(|(_, c)| c)
            .filter(|c| c.progress.iteration >= steps)
        else {
            return Pruning::Retrain;
        };
        let (epoch, iteration) = (ckpt.progress.epoch(), ckpt.progress.iteration);
        let mut record = ckpt.progress.into_record(
            &cell.config,
            RunStatus::Pruned {
                epoch,
                iteration,
                rung,
            },
            &ckpt.device,
        );
        record.origin = Some(self.origin.clone());
        if let Err(e) = store.record_finished(cell, &record, None) {
            let msg = format!("cannot record the pruned cell: {}", chain(&e));
            let _ = store.fail(&cell.id, &msg);
            store.log_event("failed", Some(cell), serde_json::json!({ "error": msg }));
            return Pruning::Failed;
        }
        if !self.keep_checkpoints {
            let _ = files.remove_all();
        }
        store.log_event(
            "pruned",
            Some(cell),
            serde_json::json!({ "rung": rung, "iteration": iteration, "epoch": epoch }),
        );
        self.sweep.cell_finished(
            worker,
            cell,
            &CellOutcome::Finished(Box::new(record.clone())),
        );
        Pruning::Recorded(Box::new(record))
    }
}

/// The rows of a metrics.csv (none when it is missing or unreadable: the cell is then not at
/// any rung yet, and trains to it again).
fn read_metrics(path: &std::path::Path) -> Vec<MetricRow> {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    reader.deserialize().filter_map(Result::ok).collect()
}

impl<'a> JobSource<'a> for Scheduler<'a> {
    fn next(&self, worker: usize) -> Next<'a> {
        let mut st = self.state.lock().expect("scheduler lock");
        let present = self.present();
        let views = self.views(&mut st, &present);
        let mut d = self.decide(&views);
        st.levels.resize(d.level.len(), 0);
        for (seen, now) in st.levels.iter_mut().zip(d.level.iter_mut()) {
            *now = (*now).max(*seen);
            *seen = *now;
        }
        let last = self.ladder.paused_rungs();
        let mut busy = !st.taken.is_empty();
        // A cell that failed meanwhile (here or in another process) is not handed out again,
        // unless it is one `--rerun-failed` tries once more.
        for (i, cell) in self.plan.cells.iter().enumerate() {
            if views[i].finished.is_none()
                && !st.taken.contains(&i)
                && !st.retry.contains(&i)
                && present.contains(&cell.id)
                && self.store.layout.error_txt(&cell.id).exists()
            {
                st.failed.insert(i);
            }
        }
        // Record the cells of pruned configurations (paused at their rung, not finished); one
        // without a usable checkpoint there trains to the rung again first.
        let mut retrain = BTreeSet::new();
        for (i, cell) in self.plan.cells.iter().enumerate() {
            if let (Some(rung), None) = (d.pruned[self.config_of[i]], &views[i].finished) {
                if st.taken.contains(&i) || st.failed.contains(&i) || self.running(cell) {
                    continue;
                }
                match self.prune(cell, rung, worker) {
                    Pruning::Recorded(r) => {
                        st.finished.insert(i, *r);
                    }
                    Pruning::Retrain => {
                        retrain.insert(i);
                    }
                    Pruning::Later => busy = true,
                    Pruning::Failed => {
                        st.failed.insert(i);
                    }
                }
            }
        }
        // The cells that can train now, and how far.
        let mut ready: Vec<(bool, usize, usize, usize)> = Vec::new();
        for (i, cell) in self.plan.cells.iter().enumerate() {
            let c = self.config_of[i];
            if views[i].finished.is_some()
                || st.finished.contains_key(&i)
                || st.taken.contains(&i)
                || st.failed.contains(&i)
            {
                continue;
            }
            let target = match d.pruned[c] {
                Some(rung) if retrain.contains(&i) => rung,
                Some(_) => continue,
                None => d.level[c],
            };
            if target < last && views[i].scores[target].is_some() && !retrain.contains(&i) {
                continue; // at its rung, waiting for the decision
            }
            let mine = self.shard.is_none_or(|s| s.contains(cell.index));
            // Its place in the order its rung counts results in.
            let place = d
                .rungs
                .get(target)
                .and_then(|r| r.entrants.iter().position(|&e| e == c))
                .unwrap_or(self.place[c]);
            ready.push((!mine, usize::MAX - target, place, i));
        }
        // Own shard first; then the highest rung (ASHA goes on with promoted configurations
        // before new ones; SHA has one rung at a time anyway); then the arrival order, in which
        // ASHA counts results. The first one no live worker holds (asked in that order: a
        // lease check reads files, and only a few cells are ever running).
        ready.sort();
        let first_free = ready.iter().find(|&&(_, _, _, i)| {
            let held = self.running(&self.plan.cells[i]);
            busy |= held;
            !held
        });
        match first_free {
            Some(&(_, _, _, i)) => {
                st.taken.insert(i);
                st.retry.remove(&i);
                let cell = &self.plan.cells[i];
                let c = self.config_of[i];
                let target = d.pruned[c].unwrap_or(d.level[c]);
                let pause =
                    (target < last).then(|| (target, self.ladder.steps(&cell.config, target)));
                Next::Train(Job { cell, pause })
            }
            None if busy => Next::Wait,
            None => Next::Done,
        }
    }

    fn done(&self, job: &Job<'a>, outcome: &CellOutcome) {
        let mut st = self.state.lock().expect("scheduler lock");
        st.taken.remove(&job.cell.index);
        if let CellOutcome::Failed(_) = outcome {
            st.failed.insert(job.cell.index);
        }
    }
}
