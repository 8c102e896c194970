//! The program's commands as library functions, one file per command (or family): each has a
//! plain options struct (the flags as given, `None` for "not given"; no clap) and one entry
//! function `xxx_cmd(&Options, ..) -> anyhow::Result<Outcome>`. The command owns everything
//! after parsing: defaults that depend on the machine or the environment (cores, Slurm's
//! variables, `RNNSWEEP_FAKE_TRAINER`, the data folder), checks of the values, loading, the
//! work, and all its output on stdout and stderr. `cli.rs`, the only module that sees clap,
//! just fills the options and calls the entry function; `main` maps the [`Outcome`] to an
//! exit code. What several commands share is here: naming sweeps ([`resolve_sweeps`]), writing
//! a chart ([`write_chart`]) and a matmul pool ([`with_threads`]).

pub mod bench;
pub mod data;
pub mod describe;
pub mod effects;
pub mod export;
pub mod keys;
pub mod predict;
pub mod progress;
pub mod results;
pub mod slurm;
pub mod status;
pub mod sweep;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::fsutil::write_atomic;
use crate::report::chart::{to_png, to_svg, ChartFormat, Drawable};
use crate::report::load::sweeps_in;
use crate::store::Layout;

/// How a command ended, as far as the exit code is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: the command ran, but did not get its result: `train`'s run diverged, or a
    /// sweep has failed cells (a sweep's diverged cells are results and exit 0).
    RunFailed,
    /// Exit 130: stopped by Ctrl-C, SIGTERM or SIGUSR1 after saving what was done.
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::RunFailed => 1,
            Outcome::Interrupted => 130,
        }
    }
}

/// Writes `chart` as `<out>/<stem>.svg` and/or `<stem>.png`, as `format` asks (each rendered
/// before anything is written, each file atomically); returns the paths written.
pub fn write_chart(
    out: &Path,
    stem: &str,
    chart: &impl Drawable,
    title: &str,
    format: ChartFormat,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if format.svg() {
        files.push((
            out.join(format!("{stem}.svg")),
            to_svg(chart, title)?.into_bytes(),
        ));
    }
    if format.png() {
        files.push((out.join(format!("{stem}.png")), to_png(chart, title)?));
    }
    let mut written = Vec::new();
    for (path, bytes) in files {
        write_atomic(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The sweeps a results command reads: by name under `results`, or by folder; none named means
/// every sweep under `results`.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSelection {
    pub results: PathBuf,
    pub sweeps: Vec<String>,
}

impl SweepSelection {
    /// The sweep folders (see [`resolve_sweeps`]).
    pub fn dirs(&self) -> anyhow::Result<Vec<PathBuf>> {
        resolve_sweeps(&self.results, &self.sweeps)
    }
}

/// Sweep folders from names or paths (none = every sweep under `results`).
pub fn resolve_sweeps(results: &Path, names: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    if names.is_empty() {
        return Ok(sweeps_in(results)?);
    }
    names
        .iter()
        .map(|n| {
            let p = PathBuf::from(n);
            if Layout::is_sweep(&p) {
                return Ok(p);
            }
            let q = results.join(n);
            if Layout::is_sweep(&q) {
                return Ok(q);
            }
            let known = sweeps_in(results).map(|v| {
                v.iter()
                    .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            bail!(
                "no sweep {n:?}: neither {} nor {} holds a plan.json{}",
                p.display(),
                q.display(),
                known
                    .map(|k| format!(" (sweeps in {}: {k})", results.display()))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Runs `f` with dfdx's CPU matmul limited to `threads` threads (dfdx uses the current rayon pool).
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start a pool of {threads} threads: {e}"))?;
    Ok(pool.install(f))
}
