//! The real-Slurm test: runs scripts/test-slurm.sh, which starts a one-node Slurm cluster on
//! this machine, submits the script `rnnsweep slurm` writes for a tiny grid as an array job and
//! checks every cell is done once, then stops a task with SIGUSR1 and checks it requeues and
//! finishes. It needs root and takes about 3 minutes (Slurm delays a requeued job by about two),
//! so it runs only with `RNNSWEEP_SLURM_TESTS=require` (set by `.ci/run`); `just test-slurm`
//! runs the script directly. The jobs train with the fake trainer (no MNIST).

mod common;

use std::process::Command;

#[test]
fn sweep_runs_as_a_slurm_job_array_and_requeues_after_sigusr1() {
    if std::env::var("RNNSWEEP_SLURM_TESTS").as_deref() != Ok("require") {
        eprintln!(
            "SKIPPED the real-Slurm test: set RNNSWEEP_SLURM_TESTS=require (needs root) or run \
             `just test-slurm`"
        );
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let o = Command::new("bash")
        .arg(format!("{root}/scripts/test-slurm.sh"))
        .env("RNNSWEEP_BIN", assert_cmd::cargo::cargo_bin("rnnsweep"))
        .env("RNNSWEEP_FAKE_TRAINER", "delay_ms=5")
        .env("RNNSWEEP_DATA", common::NO_DATA)
        .output()
        .expect("running scripts/test-slurm.sh");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("slurm test passed"), "{out}");
}
