//! Every path of a sweep's results directory, in one place:
//!
//! ```text
//! <results>/<sweep name>/
//!   spec.toml               verbatim copy of the grid file (rewritten on each run)
//!   plan.json               every cell: index, id, variant, coords, config
//!   events.jsonl            one line per event (sweep start/end, cell start/done/failed/interrupted)
//!   leases/<cell id>.json   who is training the cell now (owner, heartbeat); see `lease`
//!   slurm/                  sbatch script and task logs, when `rnnsweep slurm` wrote them
//!   runs/<cell id>/
//!     config.json           written first
//!     metrics.csv           long format, rewritten atomically after every evaluation
//!     weights.safetensors   final parameters, PyTorch names and shapes
//!     checkpoints/          step-<steps>.ckpt: the newest two mid-run checkpoints (removed
//!                           when the cell finishes, unless --keep-checkpoints); see `checkpoint`
//!     result.json           written last and atomically: the "finished" marker
//!     error.txt             only for failed cells
//! ```

use std::path::{Path, PathBuf};

use super::checkpoint::CheckpointFiles;

#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// `results_root/sweep_name`.
    pub fn new(results_root: &Path, sweep_name: &str) -> Self {
        Layout {
            root: results_root.join(sweep_name),
        }
    }
    /// A sweep directory given directly.
    pub fn at(dir: &Path) -> Self {
        Layout {
            root: dir.to_owned(),
        }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn spec_toml(&self) -> PathBuf {
        self.root.join("spec.toml")
    }
    pub fn plan_json(&self) -> PathBuf {
        self.root.join("plan.json")
    }
    pub fn events(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }
    pub fn leases(&self) -> PathBuf {
        self.root.join("leases")
    }
    pub fn slurm(&self) -> PathBuf {
        self.root.join("slurm")
    }
    /// Where `results curves` writes its charts by default (a sweep's, or the results root's
    /// when several sweeps are loaded).
    pub fn curves_dir(&self) -> PathBuf {
        self.root.join("curves")
    }
    /// Where `results effects` writes its charts by default (a sweep's, or the results root's
    /// when several sweeps are loaded).
    pub fn effects_dir(&self) -> PathBuf {
        self.root.join("effects")
    }
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.runs().join(id)
    }
    /// Cell `id`'s run folder.
    pub fn run(&self, id: &str) -> RunDir {
        RunDir::at(&self.run_dir(id))
    }
    pub fn config_json(&self, id: &str) -> PathBuf {
        self.run(id).config_json()
    }
    pub fn metrics_csv(&self, id: &str) -> PathBuf {
        self.run(id).metrics_csv()
    }
    pub fn weights(&self, id: &str) -> PathBuf {
        self.run(id).weights()
    }
    pub fn result_json(&self, id: &str) -> PathBuf {
        self.run(id).result_json()
    }
    pub fn error_txt(&self, id: &str) -> PathBuf {
        self.run(id).error_txt()
    }
    /// Cell `id`'s checkpoint files.
    pub fn checkpoints(&self, id: &str) -> CheckpointFiles {
        CheckpointFiles::at(&self.run(id).checkpoints())
    }

    /// Whether `dir` is a sweep folder (it has a plan.json).
    pub fn is_sweep(dir: &Path) -> bool {
        Layout::at(dir).plan_json().is_file()
    }
}

/// The files of one training run: a sweep cell's `runs/<cell id>/`, or the folder `train --out`
/// writes (the same names, so `predict` reads either).
#[derive(Clone, Debug)]
pub struct RunDir {
    dir: PathBuf,
}

impl RunDir {
    pub fn at(dir: &Path) -> Self {
        RunDir {
            dir: dir.to_owned(),
        }
    }
    pub fn path(&self) -> &Path {
        &self.dir
    }
    pub fn config_json(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn metrics_csv(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }
    pub fn weights(&self) -> PathBuf {
        self.dir.join("weights.safetensors")
    }
    pub fn result_json(&self) -> PathBuf {
        self.dir.join("result.json")
    }
    pub fn error_txt(&self) -> PathBuf {
        self.dir.join("error.txt")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }
}
