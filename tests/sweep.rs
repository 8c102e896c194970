//! Sweeps end to end through the binary: resuming runs only what is not done, SIGKILL at several
//! points never leaves a half-written cell counted as done and never trains a cell twice, a
//! failing cell does not stop the others, Ctrl-C stops cleanly.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rnnsweep::store::state::CellState;

use common::{cmd, event_counts, grid, plan_and_store, sweep};

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
    for delay_ms in [150u64, 400, 700, 1100, 1600] {
        let mut child = cmd(&g, tmp.path(), &["--jobs", "2", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever was on disk: a result.json is complete, or absent.
        for c in &plan.cells {
            if store.layout.result_json(&c.id).exists() {
                store
                    .load_result(&c.id)
                    .unwrap_or_else(|e| panic!("after a kill at {delay_ms} ms: {e}"));
            }
        }
    }
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
fn ctrl_c_stops_promptly_and_unfinished_cells_run_next_time() {
    let tmp = tempfile::tempdir().unwrap();
    let g = grid("kill.toml");
    let (plan, store) = plan_and_store(&g, tmp.path());
    let mut child = cmd(&g, tmp.path(), &["--jobs", "2", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while event_counts(&store, "start").is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the sweep never started a cell"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
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
    let o = sweep(&g, tmp.path(), &[]);
    assert!(o.status.success());
    assert!(plan
        .cells
        .iter()
        .all(|c| store.cell_state(c, None).0.finished()));
}
