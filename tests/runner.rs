//! The runner in-process, with the fake trainer: every way a cell can end (completed,
//! diverged, collapsed, an error, a panic, interrupted, skipped) is recorded in the store as
//! `CellState` says, the observer hears every cell start and finish, and a stop flag set at a
//! chosen step (not after a chosen time) interrupts exactly the running cell, which the next
//! run continues from its checkpoint (or the one before, when the newest is torn).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rnnsweep::cluster::Origin;
use rnnsweep::error::TrainError;
use rnnsweep::grid::Grid;
use rnnsweep::plan::{Cell, Plan};
use rnnsweep::runner::{self, CellOutcome, RunOptions, SweepObserver};
use rnnsweep::store::lease::{now, LeaseInfo};
use rnnsweep::store::state::CellState;
use rnnsweep::store::RunStore;
use rnnsweep::trainer::backend::fake::FakeTrainer;
use rnnsweep::trainer::config::TrainConfig;
use rnnsweep::trainer::fit::checkpoint::{Progress, Span};
use rnnsweep::trainer::fit::{Observer, StepInfo};
use rnnsweep::trainer::record::{MetricRow, RunStatus};
use rnnsweep::trainer::{Trained, Trainer};

fn setup(results: &std::path::Path) -> (Plan, RunStore) {
    let grid = Grid::load(&common::grid("tiny.toml")).unwrap();
    let plan = Plan::expand(&grid).unwrap();
    let store = RunStore::open(results, &plan.name);
    store.init(&grid.text, &plan).unwrap();
    (plan, store)
}

fn opts(jobs: usize) -> RunOptions {
    RunOptions {
        jobs,
        threads_per_job: 1,
        lease_ttl: Duration::from_secs(60),
        rerun_failed: false,
        keep_checkpoints: false,
    }
}

fn fake(rules: &str) -> FakeTrainer {
    FakeTrainer {
        rules: rules.parse().unwrap(),
    }
}

/// The cell of `tiny.toml` with this cell type and seed.
fn find<'a>(plan: &'a Plan, cell: &str, seed: u64) -> &'a Cell {
    plan.cells
        .iter()
        .find(|c| c.config.model.cell.to_string() == cell && c.config.seed == seed)
        .unwrap()
}

/// Counts every hook, and sets `stop` when a cell reaches step `stop_at` (if any).
#[derive(Default)]
struct Recorder {
    started: Mutex<Vec<usize>>,
    finished: Mutex<Vec<usize>>,
    steps: AtomicUsize,
    eval_rows: AtomicUsize,
    stop_at: Option<u64>,
    stop: AtomicBool,
}

impl SweepObserver for Recorder {
    fn cell_started(&self, _w: usize, cell: &Cell, _resumed: Option<&Progress>) {
        self.started.lock().unwrap().push(cell.index);
    }
    fn cell_step(&self, _w: usize, _cell: &Cell, info: &StepInfo) {
        self.steps.fetch_add(1, Ordering::SeqCst);
        if Some(info.iteration) == self.stop_at {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
    fn cell_eval(&self, _w: usize, _cell: &Cell, rows: &[MetricRow]) {
        self.eval_rows.fetch_add(rows.len(), Ordering::SeqCst);
    }
    fn cell_finished(&self, _w: usize, cell: &Cell, _o: &CellOutcome) {
        self.finished.lock().unwrap().push(cell.index);
    }
}

#[test]
fn every_ending_of_a_cell_is_recorded_as_its_state() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, store) = setup(tmp.path());
    let trainer = fake(
        "fail if cell=rnn and seed=0; panic if cell=rnn and seed=1; \
         diverge_at=5 if cell=lstm and seed=0; collapse if cell=gru and seed=1",
    );
    let obs = Recorder::default();
    let stop = AtomicBool::new(false);
    let cells: Vec<&Cell> = plan.cells.iter().collect();
    let outcomes = runner::run(&cells, &store, &trainer, &opts(2), &stop, &obs).unwrap();

    let by_index: BTreeMap<usize, &CellOutcome> = outcomes.iter().map(|(i, o)| (*i, o)).collect();
    assert_eq!(by_index.len(), 6);
    let outcome = |cell: &str, seed| by_index[&find(&plan, cell, seed).index];
    let state = |cell: &str, seed| store.cell_state(find(&plan, cell, seed), None).0;

    match outcome("rnn", 0) {
        CellOutcome::Failed(m) => assert!(m.contains("a `fail` rule matched"), "{m}"),
        o => panic!("{o:?}"),
    }
    match outcome("rnn", 1) {
        CellOutcome::Failed(m) => assert!(m.starts_with("training panicked: fake trainer"), "{m}"),
        o => panic!("{o:?}"),
    }
    for (cell, seed) in [("rnn", 0), ("rnn", 1)] {
        assert!(
            matches!(state(cell, seed), CellState::Failed(_)),
            "{cell} {seed}"
        );
    }
    match outcome("lstm", 0) {
        CellOutcome::Finished(r) => {
            assert!(matches!(r.status, RunStatus::Diverged { iteration: 5, .. }))
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(state("lstm", 0), CellState::Diverged);
    assert_eq!(state("gru", 1), CellState::Collapsed);
    assert_eq!(state("lstm", 1), CellState::Done);
    assert_eq!(state("gru", 0), CellState::Done);
    // Weights only for the runs that completed.
    for (cell, seed, has) in [("lstm", 0, false), ("lstm", 1, true), ("gru", 1, true)] {
        let w = store
            .layout
            .run_dir(&find(&plan, cell, seed).id)
            .join("weights.safetensors");
        assert_eq!(w.exists(), has, "{cell} {seed}");
    }

    // Every cell started and finished once; the failed ones before any step.
    let mut started = obs.started.lock().unwrap().clone();
    let mut finished = obs.finished.lock().unwrap().clone();
    started.sort();
    finished.sort();
    assert_eq!(started, (0..6).collect::<Vec<_>>());
    assert_eq!(finished, started);
    // 3 completed cells × 30 steps + the diverged cell's 4 good steps.
    assert_eq!(obs.steps.load(Ordering::SeqCst), 3 * 30 + 4);
    assert!(obs.eval_rows.load(Ordering::SeqCst) > 0);
    let failed = common::event_counts(&store, "failed");
    assert_eq!(failed.values().sum::<usize>(), 2, "{failed:?}");
    assert_eq!(
        common::event_counts(&store, "done").values().sum::<usize>(),
        4
    );
    assert_eq!(store.event_failures().0, 0);
}

#[test]
fn a_stop_at_a_given_step_interrupts_the_running_cell_and_starts_no_other() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, store) = setup(tmp.path());
    let obs = Recorder {
        stop_at: Some(12),
        ..Recorder::default()
    };
    let cells: Vec<&Cell> = plan.cells.iter().collect();
    // One worker: cell 0 runs alone; the observer sets the flag after its step 12.
    let outcomes = runner::run(&cells, &store, &fake(""), &opts(1), &obs.stop, &obs).unwrap();
    assert_eq!(
        outcomes.len(),
        1,
        "no cell starts after the stop: {outcomes:?}"
    );
    // The stop wrote a checkpoint at step 12, beside the one of the evaluation at step 10.
    assert!(matches!(
        outcomes[0],
        (
            0,
            CellOutcome::Interrupted {
                checkpoint: Some(12)
            }
        )
    ));
    let cell0 = &plan.cells[0];
    assert_eq!(store.cell_state(cell0, None).0, CellState::Partial);
    assert_eq!(obs.steps.load(Ordering::SeqCst), 12);
    let saved: Vec<u64> = store
        .layout
        .checkpoints(&cell0.id)
        .list()
        .unwrap()
        .iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(saved, vec![12, 10]);
    // metrics.csv holds the evaluation at step 10, written as it happened.
    let csv = std::fs::read_to_string(store.layout.metrics_csv(&cell0.id)).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("1,10,test,")), "{csv}");
    assert_eq!(common::event_counts(&store, "interrupted").len(), 1);

    // The checkpoint of step 12 is torn (a crash mid-write on a filesystem that lost its
    // end): the next run, not stopped, skips it and continues cell 0 from step 11, then
    // finishes everything.
    let newest = &store.layout.checkpoints(&cell0.id).list().unwrap()[0].1;
    let bytes = std::fs::read(newest).unwrap();
    std::fs::write(newest, &bytes[..bytes.len() - 1]).unwrap();
    let again = Recorder::default();
    let outcomes = runner::run(&cells, &store, &fake(""), &opts(2), &again.stop, &again).unwrap();
    assert_eq!(outcomes.len(), 6);
    assert!(plan
        .cells
        .iter()
        .all(|c| store.cell_state(c, None).0 == CellState::Done));
    assert_eq!(again.steps.load(Ordering::SeqCst), 6 * 30 - 10);
    assert_eq!(common::event_counts(&store, "resume").len(), 1);
    assert_eq!(common::event_counts(&store, "checkpoint_ignored").len(), 1);
    assert!(
        !store.layout.checkpoints(&cell0.id).dir().exists(),
        "removed once finished"
    );

    // Every metric row (but the seconds) as in a run that was never stopped.
    let other = tempfile::tempdir().unwrap();
    let (_, straight) = setup(other.path());
    let outcomes = runner::run(
        &cells[..1],
        &straight,
        &fake(""),
        &opts(1),
        &AtomicBool::new(false),
        &Recorder::default(),
    )
    .unwrap();
    assert!(matches!(outcomes[0].1, CellOutcome::Finished(_)));
    let record = |s: &RunStore| common::without_timing(s.load_result(&cell0.id).unwrap().record);
    assert_eq!(record(&store), record(&straight));
}

#[test]
fn a_cell_leased_elsewhere_or_finished_meanwhile_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, store) = setup(tmp.path());
    // Cell 0: finished by an earlier run after this one read the plan.
    let first = [&plan.cells[0]];
    let obs = Recorder::default();
    runner::run(&first, &store, &fake(""), &opts(1), &obs.stop, &obs).unwrap();
    // Cell 1: a live lease of another host.
    let held = &plan.cells[1];
    let info = LeaseInfo {
        cell: held.id.clone(),
        token: "other".into(),
        owner: Origin {
            host: "node-elsewhere".into(),
            pid: 4242,
            ..Origin::default()
        },
        acquired: now() - 1.0,
        heartbeat: now(),
    };
    std::fs::create_dir_all(store.layout.leases()).unwrap();
    std::fs::write(
        store.layout.leases().join(format!("{}.json", held.id)),
        serde_json::to_vec(&info).unwrap(),
    )
    .unwrap();

    let two = [&plan.cells[0], &plan.cells[1], &plan.cells[2]];
    let obs = Recorder::default();
    let outcomes = runner::run(&two, &store, &fake(""), &opts(2), &obs.stop, &obs).unwrap();
    match &outcomes[0].1 {
        CellOutcome::Skipped(why) => assert_eq!(why, "done meanwhile"),
        o => panic!("{o:?}"),
    }
    match &outcomes[1].1 {
        CellOutcome::Skipped(why) => assert_eq!(why, "leased by node-elsewhere:4242"),
        o => panic!("{o:?}"),
    }
    assert!(matches!(outcomes[2].1, CellOutcome::Finished(_)));
    assert_eq!(
        common::event_counts(&store, "start").get(&plan.cells[0].id),
        Some(&1)
    );
    assert_eq!(*obs.started.lock().unwrap(), vec![2]);
}

/// Fails every cell after putting a folder where the cell's error.txt goes, so that the
/// runner cannot write the file.
struct FailsWithErrorTxtBlocked(std::path::PathBuf);

impl Trainer for FailsWithErrorTxtBlocked {
    fn train(
        &self,
        _cfg: &TrainConfig,
        _obs: &dyn Observer,
        _stop: &AtomicBool,
        _span: Span<'_>,
    ) -> Result<Trained, TrainError> {
        std::fs::create_dir_all(self.0.join("in-the-way")).unwrap();
        Err(TrainError::Injected("boom".into()))
    }
}

#[test]
fn a_failure_that_error_txt_cannot_keep_is_still_reported_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (plan, store) = setup(tmp.path());
    let cell = &plan.cells[0];
    let error_txt = store.layout.error_txt(&cell.id);
    let obs = Recorder::default();
    let trainer = FailsWithErrorTxtBlocked(error_txt.clone());
    let outcomes = runner::run(&[cell], &store, &trainer, &opts(1), &obs.stop, &obs).unwrap();
    let why = format!("cannot write {}", error_txt.display());
    match &outcomes[0].1 {
        CellOutcome::Failed(m) => {
            assert!(m.starts_with("boom; "), "the training error first: {m}");
            assert!(m.contains(&why), "{m}");
        }
        o => panic!("{o:?}"),
    }
    let events = std::fs::read_to_string(store.layout.events()).unwrap();
    let failed = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "failed")
        .expect("a failed event");
    assert!(failed["error"].as_str().unwrap().contains(&why), "{failed}");
}
