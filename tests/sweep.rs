//! Sweeps end to end through the binary, with the fake trainer (no MNIST): resuming runs only
//! what is not done, SIGKILL at several points of progress never leaves a half-written cell
//! counted as done and never trains a cell twice, a failing cell does not stop the others,
//! Ctrl-C stops cleanly. Kill points are found by watching the results folder, never by
//! sleeping a tuned time.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rnnsweep::store::state::CellState;

use common::{event_counts, fake_cmd, fake_sweep, grid, plan_and_store, wait_for};

/// Every cell of kill.toml takes 200 × 5 ms = 1 s.
const SLOW: &str = "delay_ms=5";
/// The safety net of every wait (a hung test fails instead of running forever).
const HUNG: Duration = Duration::from_secs(60);

fn sweep(grid: &std::path::Path, results: &std::path::Path, extra: &[&str]) -> Output {
    fake_sweep(grid, results, extra, "")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn rerunning_runs_only_what_is_not_done() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("tiny.toml");
    let o = sweep(&g, tmp.path(), &["--jobs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("6 cells, 0 done, 6 to run"),
        "{}",
        stderr(&o)
    );
    let (plan, store) = plan_and_store(&g, tmp.path());
    assert!(plan
        .cells
        .iter()
        .all(|c| store.cell_state(c, None).0.finished()));
    for c in &plan.cells {
        for f in [
            "config.json",
            "metrics.csv",
            "weights.safetensors",
            "result.json",
        ] {
            assert!(
                store.layout.run_dir(&c.id).join(f).is_file(),
                "{} lacks {f}",
                c.id
            );
        }
    }
    assert!(store.layout.spec_toml().is_file() && store.layout.plan_json().is_file());
    // Nothing to do the second time.
    let o = sweep(&g, tmp.path(), &[]);
    assert!(stderr(&o).contains("6 done, 0 to run"), "{}", stderr(&o));
    // Remove one result and corrupt another: exactly those two run again.
    std::fs::remove_file(store.layout.result_json(&plan.cells[1].id)).unwrap();
    std::fs::write(
        store.layout.result_json(&plan.cells[4].id),
        b"{\"format_version\": 1, \"cell_id\"",
    )
    .unwrap();
    assert!(matches!(
        store.cell_state(&plan.cells[4], None).0,
        CellState::Corrupt(_)
    ));
    let o = sweep(&g, tmp.path(), &[]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("4 done, 2 to run"), "{}", stderr(&o));
    let starts = event_counts(&store, "start");
    for (i, c) in plan.cells.iter().enumerate() {
        assert_eq!(
            starts[&c.id],
            if i == 1 || i == 4 { 2 } else { 1 },
            "cell {i}"
        );
    }
    // The table on stdout is in plan order.
    let out = String::from_utf8_lossy(&o.stdout);
    let idx: Vec<usize> = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("done") && l.split_whitespace().count() > 3)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(idx, (0..6).collect::<Vec<_>>());
}

#[cfg(unix)]
#[test]
fn sigkill_at_any_point_then_rerun_finishes_each_cell_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("kill.toml");
    let (plan, store) = plan_and_store(&g, tmp.path());
    let finished = || {
        plan.cells
            .iter()
            .filter(|c| store.layout.result_json(&c.id).exists())
            .count()
    };
    let has_metrics_unfinished = || {
        plan.cells.iter().any(|c| {
            store.layout.metrics_csv(&c.id).exists() && !store.layout.result_json(&c.id).exists()
        })
    };
    // Leases held by process `pid` (killed workers' leases stay behind until taken over).
    let leases_of = |pid: u32| {
        std::fs::read_dir(store.layout.leases())
            .map(|d| {
                d.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                    .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .filter(|v| v["owner"]["pid"] == pid)
                    .count()
            })
            .unwrap_or(0)
    };
    // Kill points, each reached by watching the folder: as soon as a cell has started; in the
    // middle of a cell (metrics written, no result); both workers busy; just after a cell
    // finished; just after a second one finished.
    // Each point is a test of (results before this run, the worker's pid).
    type Point<'a> = (&'a str, Box<dyn Fn(usize, u32) -> bool + 'a>);
    let points: Vec<Point> = vec![
        (
            "a start event",
            Box::new(|_, _| !event_counts(&store, "start").is_empty()),
        ),
        (
            "a cell half done",
            Box::new(|_, _| has_metrics_unfinished()),
        ),
        ("both workers busy", Box::new(|_, pid| leases_of(pid) >= 2)),
        ("one more result", Box::new(|before, _| finished() > before)),
        (
            "two more results",
            Box::new(|before, _| finished() > before + 1),
        ),
    ];
    for (what, reached) in &points {
        let before = finished();
        let mut child = fake_cmd(&g, tmp.path(), &["--jobs", "2", "-q"], SLOW)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        wait_for(what, HUNG, || reached(before, pid));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever was on disk: a result.json is complete, or absent.
        for c in &plan.cells {
            if store.layout.result_json(&c.id).exists() {
                store
                    .load_result(&c.id)
                    .unwrap_or_else(|e| panic!("after a kill at {what}: {e}"));
            }
        }
    }
    assert!(finished() < plan.cells.len(), "the kills came too late");
    let o = sweep(&g, tmp.path(), &["--jobs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let done = event_counts(&store, "done");
    for c in &plan.cells {
        let r = store.load_result(&c.id).unwrap();
        assert_eq!(r.cell_id, c.id);
        assert!(
            done.get(&c.id).copied().unwrap_or(0) <= 1,
            "cell {} was finished {} times",
            c.index,
            done[&c.id]
        );
    }
    let total_done: usize = done.values().sum();
    assert!(
        total_done >= plan.cells.len() - 5,
        "at most one done event per kill may be lost"
    );
}

#[test]
fn a_failing_cell_does_not_stop_the_others_and_can_be_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("tiny.toml");
    let (plan, store) = plan_and_store(&g, tmp.path());
    // Make cell 2 fail: its metrics.csv path is a directory, which cannot be replaced.
    let blocker = store.layout.metrics_csv(&plan.cells[2].id);
    std::fs::create_dir_all(blocker.join("x")).unwrap();
    let o = sweep(&g, tmp.path(), &["--jobs", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 cell(s) failed"), "{}", stderr(&o));
    for (i, c) in plan.cells.iter().enumerate() {
        let s = store.cell_state(c, None).0;
        if i == 2 {
            assert!(matches!(s, CellState::Failed(_)), "{s:?}");
        } else {
            assert!(s.finished(), "cell {i}: {s:?}");
        }
    }
    // Without --rerun-failed the failed cell is kept; with it, it runs (and now succeeds).
    let o = sweep(&g, tmp.path(), &[]);
    assert!(
        stderr(&o).contains("0 to run, 1 failed kept"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&blocker).unwrap();
    let o = sweep(&g, tmp.path(), &["--rerun-failed"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(store.cell_state(&plan.cells[2], None).0.finished());
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_promptly_and_unfinished_cells_continue_next_time() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("kill.toml");
    let (plan, store) = plan_and_store(&g, tmp.path());
    let mut child = fake_cmd(&g, tmp.path(), &["--jobs", "2", "-q"], SLOW)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt in the middle of a cell: its metrics are written, its result is not.
    wait_for("a cell half done", HUNG, || {
        plan.cells.iter().any(|c| {
            store.layout.metrics_csv(&c.id).exists() && !store.layout.result_json(&c.id).exists()
        })
    });
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let t1 = Instant::now();
    let code = child.wait().unwrap().code();
    assert!(
        t1.elapsed() < Duration::from_secs(5),
        "took {:?} to stop",
        t1.elapsed()
    );
    assert_eq!(code, Some(130));
    let unfinished = plan
        .cells
        .iter()
        .filter(|c| store.cell_state(c, None).0.needs_run(false))
        .count();
    assert!(
        unfinished > 0,
        "the interrupt came too late to test anything"
    );
    assert!(event_counts(&store, "interrupted").values().sum::<usize>() >= 1);
    // `status` names where each stopped cell will continue.
    let o = common::fake_bin("")
        .args(["status", "kill", "--results"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("partial (the next sweep continues them from their newest checkpoint)"),
        "{text}"
    );
    assert!(
        text.contains("checkpoint at step ") && text.contains(" of 200"),
        "{text}"
    );
    let o = sweep(&g, tmp.path(), &[]);
    assert!(o.status.success());
    assert!(
        !event_counts(&store, "resume").is_empty(),
        "a stopped cell continued"
    );
    assert!(plan
        .cells
        .iter()
        .all(|c| store.cell_state(c, None).0.finished()));
}
