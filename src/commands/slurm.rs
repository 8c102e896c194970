//! `rnnsweep slurm GRID`: checks the grid and the data, writes the plan into the results folder
//! (so `status` works at once), creates the log folder Slurm needs, and writes the sbatch script
//! for a job array over the plan (see `cluster::sbatch`). Submitting is left to `sbatch`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::sweep::load_plan;
use super::Outcome;
use crate::cluster::sbatch::{script, shell_quote, ScriptOptions};
use crate::fsutil::write_atomic;
use crate::store::RunStore;
use crate::trainer::backend::device::DeviceRequest;
use crate::trainer::backend::TrainerChoice;

/// Slurm's default MaxArraySize is 1001 (task ids 0..=1000).
pub const MAX_TASKS: usize = 1000;

/// Options of `rnnsweep slurm`.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    pub grid: PathBuf,
    pub results: PathBuf,
    /// The data folder the jobs read [default: see `data::resolve_base`]; each data set the
    /// plan uses is checked in its folder there before the script is written, unless
    /// `RNNSWEEP_FAKE_TRAINER` is set (the jobs will then use the fake trainer, which reads no
    /// data).
    pub data_dir: Option<PathBuf>,
    /// Array tasks [default: one per cell, at most `MAX_TASKS`].
    pub tasks: Option<usize>,
    pub array_parallelism: Option<usize>,
    pub time: Option<String>,
    pub partition: Option<String>,
    pub cpus_per_task: usize,
    pub gres: Option<String>,
    pub signal_seconds: u32,
    pub rerun_failed: bool,
    /// The jobs keep finished cells' checkpoints (`sweep --keep-checkpoints`).
    pub keep_checkpoints: bool,
    /// Script path [default: <results>/<sweep>/slurm/sweep.sbatch].
    pub out: Option<PathBuf>,
    pub quiet: bool,
    /// The trainer the jobs will use (the fake one needs no data to be checked here).
    pub trainer: TrainerChoice,
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot make {} absolute", p.display()))
}

/// Runs `rnnsweep slurm`: the script's path on stdout, how to submit and watch on stderr.
pub fn slurm_cmd(o: &SlurmOptions) -> anyhow::Result<Outcome> {
    let data_dir = crate::data::resolve_base(o.data_dir.as_deref())?;
    let check_data = o.trainer.backend(DeviceRequest::Cpu).needs_data();
    let (grid, plan) = load_plan(&o.grid)?;
    anyhow::ensure!(o.cpus_per_task >= 1, "--cpus-per-task must be at least 1");
    let tasks = o.tasks.unwrap_or(plan.cells.len().min(MAX_TASKS));
    anyhow::ensure!(
        (1..=plan.cells.len().max(1)).contains(&tasks),
        "--tasks {tasks}: must be between 1 and the plan's {} cells",
        plan.cells.len()
    );
    // Compute nodes often have no internet: make sure the data is here before submitting.
    if check_data {
        crate::data::load_sets(
            Some(&data_dir),
            plan.cells.iter().map(|c| c.config.dataset),
            o.quiet,
        )
        .with_context(|| format!("the data under {}", data_dir.display()))?;
    }
    let results = absolute(&o.results)?;
    let store = RunStore::open(&results, &plan.name);
    store.init(&grid.text, &plan)?;
    let logs = store.layout.slurm();
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let binary = std::env::current_exe().context("cannot find the rnnsweep binary")?;
    let (grid, data_dir) = (absolute(&o.grid)?, absolute(&data_dir)?);
    let extra: Vec<String> = [
        (o.rerun_failed, "--rerun-failed"),
        (o.keep_checkpoints, "--keep-checkpoints"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, flag)| flag.to_string())
    .collect();
    let text = script(&ScriptOptions {
        sweep: &plan.name,
        binary: &binary,
        grid: &grid,
        results: &results,
        data_dir: &data_dir,
        tasks,
        array_parallelism: o.array_parallelism,
        time: o.time.as_deref(),
        partition: o.partition.as_deref(),
        cpus_per_task: o.cpus_per_task,
        gres: o.gres.as_deref(),
        signal_seconds: o.signal_seconds,
        extra: &extra,
    });
    let out = match &o.out {
        Some(p) => p.clone(),
        None => logs.join("sweep.sbatch"),
    };
    write_atomic(&out, text.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755));
    }
    eprintln!(
        "sweep {:?}: {} cells in {tasks} array task(s), {} CPU(s) each; logs in {}",
        plan.name,
        plan.cells.len(),
        o.cpus_per_task,
        logs.display()
    );
    println!("{}", out.display());
    eprintln!(
        "submit with: sbatch {}\nwatch with:  {} status {} --results {}",
        shell_quote(&out.display().to_string()),
        shell_quote(&binary.display().to_string()),
        shell_quote(&plan.name),
        shell_quote(&results.display().to_string())
    );
    Ok(Outcome::Ok)
}
