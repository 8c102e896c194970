//! Several worker processes on one results folder: two and four `sweep` processes started
//! together train every cell exactly once; shards (flag or Slurm variables) split the plan; a
//! worker killed mid-cell leaves a lease that `status` calls stale and another worker takes over;
//! a live lease of another host is respected; SIGUSR1 and SIGTERM stop a worker cleanly; the
//! `slurm` command writes a script and the plan. The real-Slurm test is `just test-slurm`.
//! Every worker trains with the fake trainer (no MNIST); cells are made slow by its
//! `delay_ms` rule where a test must catch a worker mid-cell.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{event_counts, fake_cmd, fake_sweep, grid, plan_and_store, wait_for};
use rnnsweep::cluster::Origin;
use rnnsweep::store::lease::{now, LeaseInfo};
use rnnsweep::store::RunStore;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn status_json(results: &Path, sweep: &str) -> serde_json::Value {
    let o = Command::new(assert_cmd::cargo::cargo_bin("rnnsweep"))
        .args(["status", sweep, "--json", "--results"])
        .arg(results)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()[0].clone()
}

fn all_done(plan: &rnnsweep::plan::Plan, store: &RunStore) -> bool {
    plan.cells
        .iter()
        .all(|c| store.cell_state(c, None).0.finished())
}

/// Every cell of kill.toml takes 200 × 5 ms = 1 s.
const SLOW: &str = "delay_ms=5";
/// The safety net of every wait (a hung test fails instead of running forever).
const HUNG: Duration = Duration::from_secs(60);

fn cmd(grid: &Path, results: &Path, extra: &[&str]) -> Command {
    fake_cmd(grid, results, extra, "")
}

fn sweep(grid: &Path, results: &Path, extra: &[&str]) -> Output {
    fake_sweep(grid, results, extra, "")
}

fn concurrent_workers_run_each_cell_once(workers: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("tiny.toml");
    let (plan, store) = plan_and_store(&g, tmp.path());
    // 30 steps of 2 ms: the workers compete for cells while all of them are running.
    let children: Vec<Child> = (0..workers)
        .map(|_| {
            fake_cmd(&g, tmp.path(), &["--jobs", "1", "-q"], "delay_ms=2")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    assert!(all_done(&plan, &store));
    let starts = event_counts(&store, "start");
    assert_eq!(starts.len(), plan.cells.len());
    assert!(
        starts.values().all(|&n| n == 1),
        "a cell was trained twice: {starts:?}"
    );
    // Every record names the process that trained it; leases are gone.
    for c in &plan.cells {
        let r = store.load_result(&c.id).unwrap();
        let origin = r.record.origin.expect("origin recorded");
        assert_eq!(origin.host, rnnsweep::cluster::hostname());
    }
    let st = status_json(tmp.path(), "tiny");
    assert_eq!(st["counts"]["done"], plan.cells.len());
    assert!(std::fs::read_dir(store.layout.leases())
        .map(|d| d.count() == 0)
        .unwrap_or(true));
}

#[test]
fn two_workers_share_a_results_folder() {
    concurrent_workers_run_each_cell_once(2);
}

#[test]
fn four_workers_share_a_results_folder() {
    concurrent_workers_run_each_cell_once(4);
}

#[test]
fn shards_split_the_plan_by_flag_or_slurm_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("tiny.toml");
    let (plan, store) = plan_and_store(&g, tmp.path());
    // Slurm array task 1 of 3: cells 1 and 4.
    let o = cmd(&g, tmp.path(), &["-q"])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .env("SLURM_ARRAY_JOB_ID", "77")
        .env("SLURM_JOB_ID", "78")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let done: Vec<usize> = plan
        .cells
        .iter()
        .filter(|c| store.cell_state(c, None).0.finished())
        .map(|c| c.index)
        .collect();
    assert_eq!(done, vec![1, 4]);
    let origin = store
        .load_result(&plan.cells[1].id)
        .unwrap()
        .record
        .origin
        .unwrap();
    assert_eq!(origin.slurm_array_job_id.as_deref(), Some("77"));
    assert_eq!(origin.slurm_array_task_id.as_deref(), Some("1"));
    assert_eq!(origin.slurm_job_id.as_deref(), Some("78"));
    // The flag wins over the variables; two shards finish the rest.
    for shard in ["0/3", "2/3"] {
        let o = cmd(&g, tmp.path(), &["-q", "--shard", shard])
            .env("SLURM_ARRAY_TASK_ID", "1")
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    assert!(all_done(&plan, &store));
    assert!(event_counts(&store, "start").values().all(|&n| n == 1));
    // A bad shard is refused before anything runs.
    let o = sweep(&g, tmp.path(), &["--shard", "3/3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("0 <= I < N"),
        "{}",
        text(&o.stderr)
    );
}

#[cfg(unix)]
#[test]
fn a_killed_workers_lease_goes_stale_and_another_worker_finishes_the_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("kill.toml");
    let (plan, store) = plan_and_store(&g, tmp.path());
    let mut a = fake_cmd(&g, tmp.path(), &["--jobs", "1", "-q"], SLOW)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = &plan.cells[0];
    wait_for("a lease and progress", HUNG, || {
        store
            .layout
            .leases()
            .join(format!("{}.json", first.id))
            .exists()
            && store.layout.metrics_csv(&first.id).exists()
    });
    a.kill().unwrap(); // SIGKILL: no chance to clean up
    a.wait().unwrap();
    assert!(
        store.cell_state(first, None).0.needs_run(false),
        "killed mid-cell"
    );
    let st = status_json(tmp.path(), "kill");
    let cell = &st["detail"][0];
    assert_eq!(cell["state"], "stale", "{st}");
    assert!(
        cell["note"].as_str().unwrap().contains("has exited"),
        "{cell}"
    );

    let o = sweep(&g, tmp.path(), &["--jobs", "2", "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(all_done(&plan, &store));
    let takeovers = event_counts(&store, "takeover");
    assert_eq!(takeovers.get(&first.id), Some(&1), "{takeovers:?}");
    assert_eq!(event_counts(&store, "done").get(&first.id), Some(&1));
    assert_eq!(status_json(tmp.path(), "kill")["counts"]["stale"], 0);
}

/// Writes a lease for `cell` as if another machine held it, `age` seconds after its last
/// heartbeat.
fn foreign_lease(store: &RunStore, cell: &str, age: f64) {
    let info = LeaseInfo {
        cell: cell.into(),
        token: "other".into(),
        owner: Origin {
            host: "node-elsewhere".into(),
            pid: 4242,
            ..Origin::default()
        },
        acquired: now() - age - 10.0,
        heartbeat: now() - age,
    };
    std::fs::create_dir_all(store.layout.leases()).unwrap();
    std::fs::write(
        store.layout.leases().join(format!("{cell}.json")),
        serde_json::to_vec(&info).unwrap(),
    )
    .unwrap();
}

#[test]
fn another_hosts_live_lease_is_respected_and_its_stale_lease_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("tiny.toml");
    let (plan, store) = plan_and_store(&g, tmp.path());
    let held = &plan.cells[2];
    foreign_lease(&store, &held.id, 1.0);
    let o = sweep(&g, tmp.path(), &["--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("leased by node-elsewhere:4242"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("running"),
        "the final table shows the cell as running elsewhere:\n{}",
        text(&o.stdout)
    );
    assert!(!store.cell_state(held, None).0.finished());
    let st = status_json(tmp.path(), "tiny");
    assert_eq!(st["counts"]["running"], 1);
    assert_eq!(st["detail"][2]["owner"], "node-elsewhere:4242");

    // With a 2 s time-to-live, a heartbeat 5 s old is stale: the lease is taken over.
    foreign_lease(&store, &held.id, 5.0);
    let o = cmd(&g, tmp.path(), &["-q"])
        .env("RNNSWEEP_LEASE_TTL", "2")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(all_done(&plan, &store));
    assert_eq!(event_counts(&store, "takeover").get(&held.id), Some(&1));
}

#[cfg(unix)]
fn signal_stops_cleanly(signal: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("kill.toml");
    let (plan, store) = plan_and_store(&g, tmp.path());
    let child = fake_cmd(&g, tmp.path(), &["--jobs", "1", "-q"], SLOW)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first cell to start", HUNG, || {
        !event_counts(&store, "start").is_empty()
    });
    assert!(Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    let o: Output = child.wait_with_output().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("stopped by SIG{signal}")),
        "{}",
        text(&o.stderr)
    );
    assert!(plan
        .cells
        .iter()
        .any(|c| store.cell_state(c, None).0.needs_run(false)));
    assert!(
        std::fs::read_dir(store.layout.leases()).unwrap().count() == 0,
        "leases are released on a clean stop"
    );
}

#[cfg(unix)]
#[test]
fn sigusr1_stops_a_worker_at_a_clean_point() {
    signal_stops_cleanly("USR1");
}

#[cfg(unix)]
#[test]
fn sigterm_stops_a_worker_at_a_clean_point() {
    signal_stops_cleanly("TERM");
}

#[test]
fn slurm_writes_an_array_script_and_the_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("tiny.toml");
    let o = common::fake_bin("")
        .args(["slurm", g.to_str().unwrap(), "--results"])
        .arg(tmp.path())
        .args(["--time", "00:10:00", "--array-parallelism", "2", "-q"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let script_path = tmp.path().join("tiny/slurm/sweep.sbatch");
    assert_eq!(text(&o.stdout).trim(), script_path.display().to_string());
    let s = std::fs::read_to_string(&script_path).unwrap();
    assert!(s.contains("#SBATCH --array=0-5%2"), "{s}");
    assert!(s.contains("#SBATCH --time=00:10:00"), "{s}");
    // bash accepts it.
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script_path)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{}", text(&syntax.stderr));
    let st = status_json(tmp.path(), "tiny");
    assert_eq!(st["counts"]["new"], 6);
}
