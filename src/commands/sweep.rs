//! `rnnsweep sweep GRID` and `rnnsweep plan GRID`: expand a grid, show what is finished, run what
//! is not (in parallel, with progress), and print the cells in plan order. The sweep's defaults
//! are chosen here: jobs and matmul threads from the cores, the shard from Slurm's variables,
//! the trainer from `RNNSWEEP_FAKE_TRAINER`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::{with_threads, Outcome};
use crate::cluster::Shard;
use crate::grid::search::Method;
use crate::grid::{AxisValues, Grid};
use crate::plan::estimate::{denormal_note, estimate_seconds};
use crate::plan::rungs::Ladder;
use crate::plan::{Cell, Plan};
use crate::report::export::cut;
use crate::runner::schedule::Scheduler;
use crate::runner::{self, CellOutcome, RunOptions, SweepObserver};
use crate::store::lease::{self, Leases};
use crate::store::state::CellState;
use crate::store::{CellResult, RunStore};
use crate::trainer::backend::device::DeviceRequest;
use crate::trainer::backend::{Backend, TrainerChoice};
use crate::trainer::config::TrainConfig;
use crate::trainer::fit::checkpoint::Progress;
use crate::trainer::fit::StepInfo;
use crate::trainer::model::layout::param_count;
use crate::trainer::record::{MetricRow, MetricSplit};
use crate::trainer::speed::{probe_images, Speeds};

/// Options of `rnnsweep sweep`, as given on the command line (`None`: the default).
#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub grid: PathBuf,
    pub results: PathBuf,
    /// The data folder as given [default: see `data::resolve_base`]; each data set the
    /// pending cells use is read from its folder there (`data::dataset_dir`).
    pub data_dir: Option<PathBuf>,
    /// The real trainer or the fake one (tests).
    pub trainer: TrainerChoice,
    /// The device of the real trainer.
    pub device: DeviceRequest,
    /// Cells trained at the same time [default: the number of CPU cores].
    pub jobs: Option<usize>,
    /// Matmul threads per cell [default: the cores shared out between the cells that run at
    /// once, see [`threads_per_job`]].
    pub threads_per_job: Option<usize>,
    pub rerun_failed: bool,
    /// Keep finished cells' checkpoints (see `runner`).
    pub keep_checkpoints: bool,
    /// Only this slice of the plan [default: from `SLURM_ARRAY_TASK_*` when set, else every cell].
    pub shard: Option<Shard>,
    pub quiet: bool,
}

/// Cells at once and matmul threads per cell, from the flags and the number of cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Workers {
    jobs: usize,
    /// The flag's value, else 1 until `spare_cores` are shared out.
    threads_per_job: usize,
    /// Some(cores) when the threads per cell are left to [`threads_per_job`], which needs the
    /// number of pending cells.
    spare_cores: Option<usize>,
}

impl Workers {
    fn resolve(
        jobs: Option<usize>,
        threads_per_job: Option<usize>,
        cores: usize,
    ) -> anyhow::Result<Workers> {
        let jobs = jobs.unwrap_or(cores);
        if jobs == 0 || threads_per_job == Some(0) {
            anyhow::bail!("--jobs and --threads-per-job must be at least 1");
        }
        Ok(Workers {
            jobs,
            threads_per_job: threads_per_job.unwrap_or(1),
            spare_cores: threads_per_job.is_none().then_some(cores),
        })
    }
}

/// Loads the grid and expands it (errors name file:line:column).
pub fn load_plan(grid: &Path) -> anyhow::Result<(Grid, Plan)> {
    let grid = Grid::load(grid)?;
    let plan = Plan::expand(&grid)?;
    Ok((grid, plan))
}

fn human_secs(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0}s")
    } else if s < 5400.0 {
        format!("{:.0}m", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// Axis values and seed of a cell, in axis order.
fn coords_text(plan: &Plan, cell: &Cell) -> String {
    plan.axes
        .iter()
        .chain(std::iter::once(&"seed".to_string()))
        .filter_map(|k| cell.coords.get(k).map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Serialize)]
struct PlanRow<'a> {
    index: usize,
    id: &'a str,
    variant: &'a str,
    coords: &'a std::collections::BTreeMap<String, String>,
    status: &'static str,
    iterations: u64,
    estimated_seconds: f64,
    config: &'a TrainConfig,
}

/// Options of `rnnsweep plan`.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub grid: PathBuf,
    /// Results root, to show each cell's state.
    pub results: PathBuf,
    /// Print JSON (every cell with its full config).
    pub json: bool,
    /// Probe every kind of cell again instead of using the cached speeds.
    pub remeasure: bool,
    /// The data folder as given (the probes use MNIST's images where present).
    pub data_dir: Option<PathBuf>,
}

/// `rnnsweep plan`: the cells with their status and a cost estimate.
pub fn plan_cmd(o: &PlanOptions) -> anyhow::Result<Outcome> {
    let (grid, plan) = load_plan(&o.grid)?;
    let store = RunStore::open(&o.results, &plan.name);
    let leases = Leases::new(store.layout.leases(), lease::ttl_from_env()?);
    let states: Vec<CellState> = plan
        .cells
        .iter()
        .map(|c| store.cell_state(c, Some(&leases)).0)
        .collect();
    let speeds = measured_speeds(&plan, o)?;
    let rows: Vec<PlanRow> = plan
        .cells
        .iter()
        .zip(&states)
        .map(|(c, state)| PlanRow {
            index: c.index,
            id: &c.id,
            variant: &c.variant,
            coords: &c.coords,
            status: state.name(),
            iterations: c.config.total_iterations(),
            estimated_seconds: speeds
                .get(&c.config)
                .map_or(f64::NAN, |r| estimate_seconds(&c.config, r)),
            config: &c.config,
        })
        .collect();
    if o.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(Outcome::Ok);
    }
    println!(
        "sweep {:?}: {} cells -> {}",
        plan.name,
        plan.cells.len(),
        store.layout.root().display()
    );
    if !plan.description.is_empty() {
        println!("{}", plan.description);
    }
    if let Method::Random { trials, seed } = grid.method {
        let dists: Vec<&str> = grid
            .axes
            .iter()
            .filter(|a| a.is_drawn())
            .map(|a| a.key)
            .collect();
        let mut line = format!(
            "random search: {trials} trials (seed {seed}) drawing {}",
            dists.join(", ")
        );
        if plan.duplicate_draws > 0 {
            line.push_str(&format!(
                "; {} draws repeated an earlier trial and are left out",
                plan.duplicate_draws
            ));
        }
        println!("{line}");
    }
    if let Some(l) = plan.ladder().map_err(anyhow::Error::msg)? {
        println!("{}", pruning_line(&l));
    }
    if let Some(note) = denormal_note(plan.cells.iter().map(|c| &c.config)) {
        println!("{note}");
    }
    if let Some(targets) = grid.axes.iter().find_map(|a| match &a.values {
        AxisValues::Params(t) => Some(t),
        _ => None,
    }) {
        let mut seen: Vec<String> = Vec::new();
        for c in &plan.cells {
            let m = &c.config.model;
            let line = format!("{} ({} parameters)", m.label(), param_count(m));
            if !seen.contains(&line) {
                seen.push(line);
            }
        }
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        println!(
            "hidden matched to {} parameters: {}",
            targets.join(" / "),
            seen.join(", ")
        );
    }
    println!("data: {}", datasets_text(&plan));
    println!(
        "{:>5}  {:<9} {:<18} {:<28} {:>8} {:>6}  id",
        "index", "status", "variant", "coords", "steps", "≈time"
    );
    for (r, c) in rows.iter().zip(&plan.cells) {
        println!(
            "{:>5}  {:<9} {:<18} {:<28} {:>8} {:>6}  {}",
            r.index,
            r.status,
            cut(r.variant, 18),
            cut(&coords_text(&plan, c), 28),
            r.iterations,
            human_secs(r.estimated_seconds),
            r.id
        );
    }
    // A running cell is another process's; a stale one is taken over by the next sweep.
    let todo: Vec<&PlanRow> = rows
        .iter()
        .zip(&states)
        .filter(|(_, s)| s.needs_run(false) && !matches!(s, CellState::Running(_)))
        .map(|(r, _)| r)
        .collect();
    println!("{}", counts_line(rows.iter().map(|r| r.status)));
    println!(
        "to run: {} cells, ≈{} on one core (at this machine's measured speed)",
        todo.len(),
        human_secs(todo.iter().map(|r| r.estimated_seconds).sum())
    );
    Ok(Outcome::Ok)
}

/// This machine's speed for every kind of cell in `plan`: the cached rates, and a short probe
/// of each kind not measured yet on this machine by this binary (one thread, about a third of a
/// second each; said on stderr).
fn measured_speeds(plan: &Plan, o: &PlanOptions) -> anyhow::Result<Speeds> {
    let mut speeds = if o.remeasure {
        Speeds::fresh()
    } else {
        Speeds::load()
    };
    let missing = speeds.missing(plan.cells.iter().map(|c| &c.config));
    if !missing.is_empty() {
        eprintln!(
            "measuring this machine's speed for {} kind(s) of cell (once per machine and build)…",
            missing.len()
        );
        let images = probe_images(o.data_dir.as_deref());
        with_threads(1, || -> anyhow::Result<()> {
            for cfg in missing {
                speeds.measure(cfg, &images)?;
            }
            Ok(())
        })??;
        speeds.save();
    }
    Ok(speeds)
}

/// The data sets of a plan's cells with their counts, e.g. `MNIST (6 cells), Fashion-MNIST
/// (6 cells)`, in `Dataset` order.
fn datasets_text(plan: &Plan) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for c in &plan.cells {
        *counts.entry(c.config.dataset).or_insert(0usize) += 1;
    }
    counts
        .iter()
        .map(|(d, n)| format!("{} ({n} cell{})", d.title(), if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "12 done, 1 diverged, 4 new" in `CellState::NAMES` order.
fn counts_line<'a>(statuses: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = statuses.collect();
    let parts: Vec<String> = CellState::NAMES
        .iter()
        .filter_map(|s| {
            let n = all.iter().filter(|x| *x == s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    parts.join(", ")
}

/// Matmul threads per cell when the user did not choose: one cell per core is fastest
/// (measured with `bench/identical.toml` on 2 cores: 2 cells side by side at 1 thread finish
/// 1.88–1.92× faster than one after the other, while 2 threads speed one cell up only 1.22×), so
/// threads only get the cores that cells would leave idle.
pub fn threads_per_job(cores: usize, jobs: usize, pending: usize) -> usize {
    let running = jobs.min(pending).max(1);
    (cores / running).max(1)
}

/// Live display: an overall bar and one line per worker; finished cells are printed above.
struct SweepProgress {
    mp: MultiProgress,
    overall: ProgressBar,
    lines: Vec<ProgressBar>,
    last_acc: Mutex<Vec<Option<f64>>>,
    plan: Plan,
    quiet: bool,
}

impl SweepProgress {
    fn new(plan: &Plan, total: usize, workers: usize, quiet: bool) -> Self {
        let mp = MultiProgress::with_draw_target(if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(4)
        });
        let overall = mp.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] {bar:30} {pos}/{len} cells (eta {eta}) {msg}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        let lines = (0..workers)
            .map(|_| {
                let pb = mp.add(ProgressBar::new(1));
                pb.set_style(
                    ProgressStyle::with_template("  {spinner} {msg} {bar:15} {pos}/{len}")
                        .expect("template")
                        .progress_chars("=> "),
                );
                pb
            })
            .collect();
        if !quiet {
            overall.enable_steady_tick(Duration::from_millis(250));
        }
        SweepProgress {
            mp,
            overall,
            lines,
            last_acc: Mutex::new(vec![None; workers]),
            plan: plan.clone(),
            quiet,
        }
    }

    /// A line above the bars (on stderr when they are hidden, unless quiet).
    fn print(&self, text: String) {
        if self.mp.is_hidden() {
            if !self.quiet {
                eprintln!("{text}");
            }
        } else {
            let _ = self.mp.println(text);
        }
    }

    fn label(&self, cell: &Cell) -> String {
        format!(
            "[{}] {} {}",
            cell.index,
            cell.variant,
            coords_text(&self.plan, cell)
        )
    }
}

impl SweepObserver for SweepProgress {
    fn cell_started(&self, w: usize, cell: &Cell, resumed: Option<&Progress>) {
        self.last_acc.lock().expect("lock")[w] = None;
        let pb = &self.lines[w];
        pb.reset();
        pb.set_length(cell.config.total_iterations());
        pb.set_message(self.label(cell));
        if let Some(p) = resumed {
            pb.set_position(p.iteration);
            self.print(format!(
                "resumed  {} at epoch {}, step {} of {} (from its checkpoint)",
                self.label(cell),
                p.epoch(),
                p.iteration,
                cell.config.total_iterations()
            ));
        }
    }
    fn cell_step(&self, w: usize, cell: &Cell, info: &StepInfo) {
        let pb = &self.lines[w];
        pb.set_position(info.iteration);
        if info.iteration % 25 == 1 {
            let acc = self.last_acc.lock().expect("lock")[w];
            pb.set_message(format!(
                "{} epoch {}/{} {}",
                self.label(cell),
                info.epoch,
                cell.config.total_epochs(),
                acc.map(|a| format!("acc {a:.4}")).unwrap_or_default()
            ));
        }
    }
    fn cell_eval(&self, w: usize, _cell: &Cell, rows: &[MetricRow]) {
        if let Some(t) = rows.iter().find(|r| r.split == MetricSplit::Test) {
            self.last_acc.lock().expect("lock")[w] = Some(t.acc);
        }
    }
    fn cell_finished(&self, w: usize, cell: &Cell, outcome: &CellOutcome) {
        let text = match outcome {
            CellOutcome::Finished(r) => match &r.status {
                crate::trainer::record::RunStatus::Diverged {
                    epoch,
                    iteration,
                    non_finite,
                } => {
                    let what = non_finite.as_ref().map_or("loss".into(), |n| n.to_string());
                    format!(
                        "diverged {} at epoch {epoch}, step {iteration} ({what} non-finite)",
                        self.label(cell)
                    )
                }
                crate::trainer::record::RunStatus::Pruned {
                    epoch,
                    iteration,
                    rung,
                } => format!(
                    "pruned   {} at rung {rung} (epoch {epoch}, step {iteration}): test acc {}",
                    self.label(cell),
                    r.final_test_acc.map_or("-".into(), |a| format!("{a:.4}")),
                ),
                _ => format!(
                    "done     {}: test acc {}{} ({:.0}s, {:.0} samples/s)",
                    self.label(cell),
                    r.final_test_acc.map_or("-".into(), |a| format!("{a:.4}")),
                    collapse_note(r),
                    r.train_seconds,
                    r.samples_per_sec
                ),
            },
            CellOutcome::Failed(msg) => format!("FAILED   {}: {msg}", self.label(cell)),
            CellOutcome::Interrupted {
                checkpoint: Some(steps),
            } => format!(
                "stopped  {} at step {steps} (checkpoint kept: the next run continues from it)",
                self.label(cell)
            ),
            CellOutcome::Paused { rung, iteration } => {
                self.lines[w].set_message("idle");
                self.print(format!(
                    "paused   {} at rung {rung} (step {iteration}): waits for the rung's decision",
                    self.label(cell)
                ));
                return;
            }
            CellOutcome::Interrupted { checkpoint: None } => {
                format!("stopped  {} (will run again next time)", self.label(cell))
            }
            CellOutcome::Skipped(why) => format!("skipped  {}: {why}", self.label(cell)),
        };
        self.print(text);
        self.lines[w].set_message("idle");
        self.overall.inc(1);
    }
}

/// What `sweep` runs with: its defaults resolved from the flags, the environment and the cores.
struct SweepSetup {
    backend: Backend,
    shard: Option<Shard>,
    run: RunOptions,
    /// Some(cores) when the threads per cell are left to [`threads_per_job`].
    spare_cores: Option<usize>,
}

impl SweepSetup {
    /// Resolves and checks everything that can be wrong before the grid is read: the workers,
    /// the shard (or Slurm's variables), the data folder, the trainer and its device, and the
    /// lease TTL.
    fn resolve(opts: &SweepOptions) -> anyhow::Result<SweepSetup> {
        let env = |k: &str| std::env::var(k).ok();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = Workers::resolve(opts.jobs, opts.threads_per_job, cores)?;
        let shard = match opts.shard {
            Some(s) => Some(s),
            None => Shard::from_slurm_env(env)?,
        };
        // Checked before anything runs: a bad folder is an error now, not after the plan is
        // written.
        crate::data::resolve_base(opts.data_dir.as_deref())?;
        let backend = opts.trainer.backend(opts.device);
        backend.check_device()?;
        let run = RunOptions {
            jobs: workers.jobs,
            threads_per_job: workers.threads_per_job,
            lease_ttl: lease::ttl_from_env()?,
            rerun_failed: opts.rerun_failed,
            keep_checkpoints: opts.keep_checkpoints,
        };
        Ok(SweepSetup {
            backend,
            shard,
            run,
            spare_cores: workers.spare_cores,
        })
    }
}

/// The cells of this shard (`mine`), which of them need running, and how many failed ones are
/// kept (not rerun without `rerun_failed`); from the files only.
struct Selection<'a> {
    mine: Vec<&'a Cell>,
    pending: Vec<&'a Cell>,
    failed_kept: usize,
}

impl<'a> Selection<'a> {
    fn of(plan: &'a Plan, store: &RunStore, shard: Option<Shard>, rerun_failed: bool) -> Self {
        let mine: Vec<&Cell> = plan
            .cells
            .iter()
            .filter(|c| shard.is_none_or(|s| s.contains(c.index)))
            .collect();
        let statuses: Vec<CellState> = mine.iter().map(|c| store.cell_state(c, None).0).collect();
        let pending: Vec<&Cell> = mine
            .iter()
            .zip(&statuses)
            .filter(|(_, s)| s.needs_run(rerun_failed))
            .map(|(c, _)| *c)
            .collect();
        let failed_kept = statuses
            .iter()
            .filter(|s| matches!(s, CellState::Failed(_)))
            .count()
            * (!rerun_failed) as usize;
        Selection {
            mine,
            pending,
            failed_kept,
        }
    }

    /// "sweep "lr" shard 1/2 (3 of 6 cells): 3 cells, 1 done, 2 to run -> results/lr".
    fn start_line(&self, plan: &Plan, shard: Option<Shard>, root: &Path) -> String {
        let (mine, pending, failed_kept) = (self.mine.len(), self.pending.len(), self.failed_kept);
        // Finished cells (completed, collapsed or diverged) are counted as "done" here.
        let finished = mine - pending - failed_kept;
        format!(
            "sweep {:?}{}: {} cells, {finished} done, {} to run{} -> {}",
            plan.name,
            shard
                .map(|s| format!(" shard {s} ({} of {} cells)", mine, plan.cells.len()))
                .unwrap_or_default(),
            mine,
            pending,
            if failed_kept > 0 {
                format!(", {failed_kept} failed kept (--rerun-failed runs them)")
            } else {
                String::new()
            },
            root.display()
        )
    }
}

/// `rnnsweep sweep`: runs what is not finished yet.
pub fn sweep_cmd(opts: &SweepOptions, stop: &AtomicBool) -> anyhow::Result<Outcome> {
    let SweepSetup {
        backend,
        shard,
        mut run,
        spare_cores,
    } = SweepSetup::resolve(opts)?;
    let (grid, plan) = load_plan(&opts.grid)?;
    let store = RunStore::open(&opts.results, &plan.name);
    store.init(&grid.text, &plan)?;
    let ladder = plan.ladder().map_err(anyhow::Error::msg)?;
    let cells = Selection::of(&plan, &store, shard, run.rerun_failed);
    eprintln!("{}", cells.start_line(&plan, shard, store.layout.root()));
    if let Some(l) = &ladder {
        eprintln!("{}", pruning_line(l));
    }
    if let Some(note) = denormal_note(cells.pending.iter().map(|c| &c.config)) {
        if !opts.quiet && backend.needs_data() {
            eprintln!("{note}");
        }
    }
    // A pruned sweep's process may train any cell that is ready (its shard's first).
    let pending: Vec<&Cell> = match ladder {
        Some(_) => Selection::of(&plan, &store, None, run.rerun_failed).pending,
        None => cells.pending.clone(),
    };
    if let Some(cores) = spare_cores {
        run.threads_per_job = threads_per_job(cores, run.jobs, pending.len());
    }
    let outcomes = if pending.is_empty() {
        Vec::new()
    } else {
        let work = Work {
            plan: &plan,
            ladder,
            pending: &pending,
            shard,
        };
        run_pending(opts, &store, &backend, &run, work, stop)?
    };
    // Final table, in plan order, from the store (what is on disk is the truth); a cell another
    // process is training shows as "running".
    let leases = Leases::new(store.layout.leases(), run.lease_ttl);
    let inspected: Vec<(CellState, Option<CellResult>)> = cells
        .mine
        .iter()
        .map(|c| store.cell_state(c, Some(&leases)))
        .collect();
    if !opts.quiet && cells.mine.len() <= 200 {
        print_table(&plan, &cells.mine, &inspected);
    }
    let statuses: Vec<&CellState> = inspected.iter().map(|(s, _)| s).collect();
    println!("{}", counts_line(statuses.iter().map(|s| s.name())));
    if plan.prune.is_some() {
        let records = inspected.iter().filter_map(|(_, r)| r.as_ref());
        let (done, full) = records.fold((0, 0), |(d, f), r| {
            (
                d + r.record.samples(),
                f + r.record.samples_without_pruning(),
            )
        });
        println!("{}", crate::report::load::compute_text(done, full));
        let waiting = statuses.iter().any(|s| matches!(s, CellState::Partial));
        let failed = statuses.iter().any(|s| matches!(s, CellState::Failed(_)));
        if waiting && failed && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!(
                "some configurations wait at a rung for the result of a failed cell; \
                 `sweep --rerun-failed` runs the failed cells again"
            );
        }
    }
    Ok(end_of_sweep(&outcomes, &statuses, stop, &store))
}

/// "successive halving (asha): rungs at 1, 3 and 9 epochs (the full budget), η = 3, by test_acc,
/// 27 configurations × 3 seeds".
fn pruning_line(l: &Ladder) -> String {
    let p = &l.prune;
    let seeds = l.configs.first().map_or(0, Vec::len);
    format!(
        "successive halving ({}): {}, η = {}, by the mean {} of each configuration's seeds, {} \
         configurations × {seeds} seed(s)",
        p.method.name(),
        l.describe(),
        p.reduction_factor,
        p.metric.name(),
        l.configs.len()
    )
}

/// What a sweep process trains: the pending cells, by successive halving's scheduler when the
/// plan prunes (`ladder`), else each to its end.
struct Work<'a> {
    plan: &'a Plan,
    ladder: Option<Ladder>,
    pending: &'a [&'a Cell],
    shard: Option<Shard>,
}

/// Trains the pending cells (not empty): loads the data sets they use, shows progress, and logs
/// the sweep's start and end. Returns each cell's outcomes by plan index.
fn run_pending(
    opts: &SweepOptions,
    store: &RunStore,
    backend: &Backend,
    run: &RunOptions,
    work: Work,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<(usize, CellOutcome)>> {
    let (plan, pending) = (work.plan, work.pending);
    // Only the data sets of the cells to run, each loaded once.
    let data = match backend.needs_data() {
        true => Some(crate::data::load_sets(
            opts.data_dir.as_deref(),
            pending.iter().map(|c| c.config.dataset),
            opts.quiet,
        )?),
        false => None,
    };
    if let Backend::Fake(_) = backend {
        eprintln!("training with the fake trainer");
    }
    eprintln!(
        "running {} cells on {} worker(s), {} matmul thread(s) each",
        pending.len(),
        run.jobs.min(pending.len()),
        run.threads_per_job
    );
    let progress = SweepProgress::new(
        plan,
        pending.len(),
        run.jobs.clamp(1, pending.len()),
        opts.quiet,
    );
    store.log_event(
        "sweep_start",
        None,
        serde_json::json!({
            "pending": pending.len(),
            "jobs": run.jobs,
            "threads_per_job": run.threads_per_job
        }),
    );
    let outcomes = backend.with_trainer(data.as_ref(), |trainer| match work.ladder {
        None => runner::run(pending, store, trainer, run, stop, &progress),
        Some(ladder) => {
            let scheduler = Scheduler::new(
                plan,
                ladder,
                store,
                Leases::new(store.layout.leases(), run.lease_ttl),
                work.shard,
                (run.keep_checkpoints, run.rerun_failed),
                &progress,
            );
            let workers = run.jobs.clamp(1, pending.len());
            runner::run_jobs(&scheduler, workers, store, trainer, run, stop, &progress)
        }
    })?;
    progress.mp.clear().ok();
    store.log_event(
        "sweep_end",
        None,
        serde_json::json!({ "ran": outcomes.len() }),
    );
    Ok(outcomes)
}

/// The final table: each of `cells` (in plan order) with its state and, for a completed run,
/// its final test accuracy.
fn print_table(plan: &Plan, cells: &[&Cell], inspected: &[(CellState, Option<CellResult>)]) {
    println!(
        "{:>5}  {:<9} {:<20} {:<30} {:>9}",
        "index", "status", "variant", "coords", "test acc"
    );
    for (c, (s, result)) in cells.iter().zip(inspected) {
        // A diverged cell has no final model; its last accuracy predates the blow-up.
        let acc = match (s, result) {
            (CellState::Done | CellState::Collapsed, Some(r)) => r
                .record
                .final_test_acc
                .map_or("-".into(), |a| format!("{a:.4}")),
            _ => "-".into(),
        };
        println!(
            "{:>5}  {:<9} {:<20} {:<30} {:>9}",
            c.index,
            s.name(),
            cut(&c.variant, 20),
            cut(&coords_text(plan, c), 30),
            acc
        );
    }
}

/// Prints the end of a sweep on stderr (cells left to other workers, failed cells, event lines
/// that could not be written) and returns how it ended: interrupted when stopped with cells
/// left, failed when a cell failed here or stays failed on disk (`statuses`).
fn end_of_sweep(
    outcomes: &[(usize, CellOutcome)],
    statuses: &[&CellState],
    stop: &AtomicBool,
    store: &RunStore,
) -> Outcome {
    let skipped: Vec<String> = outcomes
        .iter()
        .filter_map(|(i, o)| match o {
            CellOutcome::Skipped(why) => Some(format!("[{i}] {why}")),
            _ => None,
        })
        .collect();
    if !skipped.is_empty() {
        eprintln!(
            "{} cell(s) left to other workers: {}",
            skipped.len(),
            cut(&skipped.join(", "), 300)
        );
    }
    let failed = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, CellOutcome::Failed(_)))
        .count();
    let interrupted = outcomes
        .iter()
        .any(|(_, o)| matches!(o, CellOutcome::Interrupted { .. }))
        || (stop.load(std::sync::atomic::Ordering::Relaxed)
            && statuses.iter().any(|s| s.needs_run(false)));
    if failed > 0 {
        eprintln!(
            "{failed} cell(s) failed; see error.txt in their folders under {}",
            store.layout.runs().display()
        );
    }
    let (lost_events, why) = store.event_failures();
    if lost_events > 0 {
        eprintln!(
            "warning: {lost_events} event(s) could not be written to {}: {}",
            store.layout.events().display(),
            why.unwrap_or_default()
        );
    }
    if interrupted {
        Outcome::Interrupted
    } else if failed > 0 || statuses.iter().any(|s| matches!(s, CellState::Failed(_))) {
        Outcome::RunFailed
    } else {
        Outcome::Ok
    }
}

/// ", COLLAPSED: 99.8 % predicted 1" for a collapsed run, else nothing.
pub(crate) fn collapse_note(r: &crate::trainer::record::RunRecord) -> String {
    match (r.collapsed, r.top_class) {
        (true, Some(t)) => format!(
            ", COLLAPSED: {:.1} % predicted {}",
            100.0 * t.share,
            t.class
        ),
        (true, None) => ", COLLAPSED".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spare_cores_go_to_the_cells_that_run() {
        use super::threads_per_job;
        assert_eq!(threads_per_job(2, 2, 21), 1);
        assert_eq!(threads_per_job(2, 2, 1), 2, "a lone cell gets both cores");
        assert_eq!(threads_per_job(8, 8, 3), 2);
        assert_eq!(threads_per_job(8, 1, 10), 8);
        assert_eq!(threads_per_job(1, 4, 4), 1);
    }

    #[test]
    fn jobs_default_to_the_cores_and_zero_is_refused() {
        use super::Workers;
        let w = |jobs, threads| Workers::resolve(jobs, threads, 8);
        assert_eq!(
            w(None, None).unwrap(),
            Workers {
                jobs: 8,
                threads_per_job: 1,
                spare_cores: Some(8)
            }
        );
        assert_eq!(
            w(Some(3), Some(2)).unwrap(),
            Workers {
                jobs: 3,
                threads_per_job: 2,
                spare_cores: None
            }
        );
        assert_eq!(w(Some(2), None).unwrap().spare_cores, Some(8));
        for (jobs, threads) in [(Some(0), None), (None, Some(0)), (Some(0), Some(0))] {
            assert_eq!(
                w(jobs, threads).unwrap_err().to_string(),
                "--jobs and --threads-per-job must be at least 1"
            );
        }
    }
}
