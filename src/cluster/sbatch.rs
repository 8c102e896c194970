//! The sbatch script for a sweep: a Slurm job array sized to the plan, each task running
//! `rnnsweep sweep GRID` on its shard (the shard comes from Slurm's array variables). Slurm is
//! asked to send SIGUSR1 shortly before the time limit; the script forwards it (and SIGTERM) to
//! rnnsweep, which stops its cells at the next step, and then requeues the task, which resumes
//! from what is on disk. Pure text; the command writes it.

use std::path::Path;

/// What the script needs.
#[derive(Clone, Debug)]
pub struct ScriptOptions<'a> {
    pub sweep: &'a str,
    /// Absolute paths baked into the script (compute nodes start in another directory).
    pub binary: &'a Path,
    pub grid: &'a Path,
    pub results: &'a Path,
    pub data_dir: &'a Path,
    /// Array tasks (each runs the cells of one shard).
    pub tasks: usize,
    /// At most this many tasks at once (`%M`).
    pub array_parallelism: Option<usize>,
    pub time: Option<&'a str>,
    pub partition: Option<&'a str>,
    pub cpus_per_task: usize,
    pub gres: Option<&'a str>,
    /// Seconds before the time limit at which Slurm sends SIGUSR1.
    pub signal_seconds: u32,
    /// Extra arguments for `rnnsweep sweep` (e.g. `--rerun-failed`).
    pub extra: &'a [String],
}

/// Quotes a word for bash (single quotes, with embedded ones escaped).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Slurm's job name: letters, digits and `-_.` only.
fn job_name(sweep: &str) -> String {
    let clean: String = sweep
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("rnnsweep-{clean}")
}

/// The script text.
pub fn script(o: &ScriptOptions) -> String {
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let logs = o.results.join(o.sweep).join("slurm");
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!(
        "# Written by `rnnsweep slurm` for sweep {:?}: {} array task(s), each runs one shard of\n\
         # the plan. Cells are claimed through leases in the results folder, so tasks, requeued\n\
         # tasks and sweeps started by hand never train the same cell twice.\n",
        o.sweep, o.tasks
    ));
    s.push_str(&format!("#SBATCH --job-name={}\n", job_name(o.sweep)));
    let par = o
        .array_parallelism
        .map(|m| format!("%{m}"))
        .unwrap_or_default();
    s.push_str(&format!(
        "#SBATCH --array=0-{}{par}\n",
        o.tasks.saturating_sub(1)
    ));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", o.cpus_per_task));
    s.push_str("#SBATCH --ntasks=1\n");
    if let Some(t) = o.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(p) = o.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(g) = o.gres {
        s.push_str(&format!("#SBATCH --gres={g}\n"));
    }
    s.push_str(&format!("#SBATCH --output={}/%A_%a.out\n", logs.display()));
    s.push_str("#SBATCH --open-mode=append\n");
    s.push_str(&format!("#SBATCH --signal=B:USR1@{}\n", o.signal_seconds));
    s.push_str("#SBATCH --requeue\n\n");
    s.push_str("set -u\n");
    s.push_str(
        "echo \"rnnsweep task ${SLURM_ARRAY_JOB_ID:-?}_${SLURM_ARRAY_TASK_ID:-?} on $(hostname) at $(date -Is)\"\n",
    );
    let mut cmd = vec![
        q(o.binary),
        "sweep".into(),
        q(o.grid),
        "--results".into(),
        q(o.results),
        "--data-dir".into(),
        q(o.data_dir),
        "--jobs".into(),
        o.cpus_per_task.to_string(),
        "--threads-per-job".into(),
        "1".into(),
        "--quiet".into(),
    ];
    cmd.extend(o.extra.iter().map(|e| shell_quote(e)));
    s.push_str(&format!("{} &\n", cmd.join(" ")));
    s.push_str(
        "child=$!\n\
         stopping=0\n\
         # Slurm's warning (USR1) or a cancel (TERM): let rnnsweep stop at its next step.\n\
         trap 'stopping=1; kill -USR1 \"$child\" 2>/dev/null' USR1 TERM\n\
         while true; do\n\
         \x20   wait \"$child\"; rc=$?\n\
         \x20   # wait returns early (rc > 128) when a trapped signal arrives; wait again.\n\
         \x20   if ! kill -0 \"$child\" 2>/dev/null; then break; fi\n\
         done\n\
         echo \"rnnsweep exited with $rc at $(date -Is)\"\n\
         if [ \"$stopping\" = 1 ] && [ \"$rc\" = 130 ]; then\n\
         \x20   # Stopped before the time limit with cells left: run again later, resuming from disk.\n\
         \x20   scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\" && exit 0\n\
         fi\n\
         exit \"$rc\"\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("/a/b-c_1.toml"), "/a/b-c_1.toml");
        assert_eq!(shell_quote("my grid.toml"), "'my grid.toml'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn script_has_the_array_resources_signal_and_requeue() {
        let (bin, grid, res, data) = (
            PathBuf::from("/opt/rnnsweep"),
            PathBuf::from("/home/u/my grid.toml"),
            PathBuf::from("/scratch/results"),
            PathBuf::from("/data/mnist"),
        );
        let s = script(&ScriptOptions {
            sweep: "lr study",
            binary: &bin,
            grid: &grid,
            results: &res,
            data_dir: &data,
            tasks: 12,
            array_parallelism: Some(4),
            time: Some("01:00:00"),
            partition: Some("gpu"),
            cpus_per_task: 2,
            gres: Some("gpu:1"),
            signal_seconds: 120,
            extra: &[],
        });
        for line in [
            "#SBATCH --job-name=rnnsweep-lr_study",
            "#SBATCH --array=0-11%4",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --time=01:00:00",
            "#SBATCH --partition=gpu",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --output=/scratch/results/lr study/slurm/%A_%a.out",
            "#SBATCH --signal=B:USR1@120",
            "#SBATCH --requeue",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
        assert!(s.contains("/opt/rnnsweep sweep '/home/u/my grid.toml' --results /scratch/results"));
        assert!(s.contains("scontrol requeue"));
        assert!(
            !s.contains("--shard"),
            "the shard comes from the array variables"
        );
    }
}
