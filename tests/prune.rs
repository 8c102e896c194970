//! Pruned sweeps (`[prune]`) on the fake trainer, whose test accuracy after n samples is a
//! known curve per configuration and seed (`FakeCurve`): the expected rung results, and from
//! them the configurations SHA and ASHA keep at each rung, are computed here independently of
//! `runner::halving`, and a sweep with 2 and with 4 workers must end exactly so: the same cells
//! pruned at the same rungs, the same finished records. Also: a pruned sweep killed and run
//! again, and two shard processes side by side, end the same; plan rejects a [prune] whose
//! rungs are not evaluation points.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rnnsweep::plan::Plan;
use rnnsweep::store::RunStore;
use rnnsweep::trainer::backend::fake::FakeCurve;
use rnnsweep::trainer::record::{MetricSplit, RunStatus};

/// 15 configurations (lr × hidden) × 2 seeds, 9 epochs of 1,400 images (14 steps each),
/// evaluated on 100 test images every epoch; η = 2: rungs at 1, 2, 4 and 8 epochs, then 9.
/// (With these values the SHA and ASHA rules give different outcomes; the test checks that.)
fn grid(method: &str) -> String {
    format!(
        r#"[sweep]
name = "pruned"
seeds = 2

[defaults]
cell = "lstm"
optimizer = "adam"
batch = 100
epochs = 9
train_limit = 1400
test_limit = 100
eval_every = "epoch"

[grid]
lr = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
hidden = [8, 32, 128]

[prune]
method = "{method}"
min_resource = 1
reduction_factor = 2
"#
    )
}

/// What the fake trainer's test evaluation gives for `cell` after `epochs` epochs.
fn fake_acc(cfg: &rnnsweep::trainer::config::TrainConfig, epochs: u64) -> f64 {
    let n = cfg.eval.test_limit.unwrap() as f64;
    let samples = epochs * cfg.train_size() as u64;
    (FakeCurve::of(cfg).acc(samples) * n).round() / n
}

/// Each configuration's mean over its seeds at `epochs`, in plan order of configurations.
fn config_means(plan: &Plan, epochs: u64) -> Vec<f64> {
    plan.cells
        .chunks(2)
        .map(|seeds| {
            seeds
                .iter()
                .map(|c| fake_acc(&c.config, epochs))
                .sum::<f64>()
                / 2.0
        })
        .collect()
}

/// The best `q` of `entrants` by `score` (ties to the earlier configuration).
fn best(entrants: &[usize], score: &[f64], q: usize) -> Vec<usize> {
    let mut v = entrants.to_vec();
    v.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    v.truncate(q);
    v
}

/// Expected outcome per configuration: None = trained to the end, Some(k) = pruned at rung k.
fn expected(plan: &Plan, method: &str) -> Vec<Option<usize>> {
    let ladder = plan.ladder().unwrap().unwrap();
    let rung_epochs = &ladder.rungs[..ladder.paused_rungs()];
    let eta = ladder.prune.reduction_factor as usize;
    let n = plan.cells.len() / 2;
    let mut out = vec![None; n];
    // ASHA counts results in the order of the hash of each configuration's first cell id.
    let mut entrants: Vec<usize> = (0..n).collect();
    entrants.sort_by_key(|&c| *blake3::hash(plan.cells[2 * c].id.as_bytes()).as_bytes());
    for (k, &epochs) in rung_epochs.iter().enumerate() {
        let score = config_means(plan, epochs);
        let promoted: Vec<usize> = if method == "sha" {
            best(&entrants, &score, (entrants.len() / eta).max(1))
        } else {
            // ASHA in that fixed order: after each of the first m results, the best ⌊m/3⌋ of
            // them go on (in the order they first qualify).
            let mut p: Vec<usize> = Vec::new();
            for m in 1..=entrants.len() {
                for c in best(&entrants[..m], &score, m / eta) {
                    if !p.contains(&c) {
                        p.push(c);
                    }
                }
            }
            if p.is_empty() {
                p = best(&entrants, &score, 1);
            }
            p
        };
        for &c in &entrants {
            if !promoted.contains(&c) {
                out[c] = Some(k);
            }
        }
        entrants = promoted;
    }
    out
}

/// Each cell's status name and, if pruned, its rung; and the records without timing.
type Ending = (Vec<(String, Option<usize>)>, Vec<String>);

fn outcome(store: &RunStore, plan: &Plan) -> Ending {
    let mut states = Vec::new();
    let mut records = Vec::new();
    for c in &plan.cells {
        let r = store.load_result(&c.id).unwrap().record;
        let rung = match r.status {
            RunStatus::Pruned { rung, .. } => Some(rung),
            _ => None,
        };
        states.push((r.status.name().to_string(), rung));
        records.push(common::without_timing(r));
    }
    (states, records)
}

fn write_grid(dir: &Path, method: &str) -> std::path::PathBuf {
    let g = dir.join(format!("{method}.toml"));
    std::fs::write(&g, grid(method)).unwrap();
    g
}

#[test]
fn sha_and_asha_prune_the_configurations_computed_by_hand_with_2_and_4_workers() {
    let tmp = tempfile::tempdir().unwrap();
    for method in ["sha", "asha"] {
        let g = write_grid(tmp.path(), method);
        let mut seen: Option<Ending> = None;
        for jobs in ["2", "4"] {
            let results = tmp.path().join(format!("{method}-{jobs}"));
            let o = common::fake_sweep(&g, &results, &["--jobs", jobs, "-q"], "");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "{method} {jobs}: {err}");
            let (plan, store) = common::plan_and_store(&g, &results);
            let want = expected(&plan, method);
            // The grid tells the two rules apart.
            assert_ne!(expected(&plan, "sha"), expected(&plan, "asha"));
            let (states, records) = outcome(&store, &plan);
            for (i, (status, rung)) in states.iter().enumerate() {
                let config = i / 2;
                match want[config] {
                    None => assert_eq!(status, "completed", "{method} {jobs}: cell {i}"),
                    Some(k) => {
                        assert_eq!(
                            (status.as_str(), *rung),
                            ("pruned", Some(k)),
                            "{method} {jobs}: cell {i}"
                        )
                    }
                }
            }
            // One configuration goes to the end under SHA (15 → 7 → 3 → 1); ASHA keeps at least it.
            let to_end = want.iter().filter(|w| w.is_none()).count();
            if method == "sha" {
                assert_eq!(to_end, 1);
            }
            assert!(to_end >= 1);
            // A pruned run keeps its partial curve: one test row per epoch up to its rung.
            let ladder = plan.ladder().unwrap().unwrap();
            for (c, (status, rung)) in plan.cells.iter().zip(&states) {
                if let Some(k) = rung {
                    let r = store.load_result(&c.id).unwrap().record;
                    let tests = r
                        .metrics
                        .iter()
                        .filter(|m| m.split == MetricSplit::Test)
                        .count();
                    assert_eq!(tests as u64, ladder.rungs[*k], "{status} cell {}", c.index);
                    assert!(!store.layout.checkpoints(&c.id).dir().exists());
                }
            }
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(out.contains("pruned") && out.contains("compute: "), "{out}");
            // `status` counts the pruned cells per rung they stopped at.
            let o = common::fake_bin("")
                .args(["status", "pruned", "--results"])
                .arg(&results)
                .output()
                .unwrap();
            let status = String::from_utf8_lossy(&o.stdout);
            let mut per_rung = BTreeMap::new();
            for w in want.iter().flatten() {
                *per_rung.entry(*w).or_insert(0) += 2;
            }
            let line: Vec<String> = per_rung
                .iter()
                .map(|(k, n)| format!("{n} at rung {k}"))
                .collect();
            assert!(
                status.contains(&format!("pruned: {}\n", line.join(", "))),
                "{status}"
            );
            match &seen {
                None => seen = Some((states, records)),
                Some(first) => assert_eq!(first, &(states, records), "{method}: 2 vs 4 workers"),
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn a_killed_pruned_sweep_and_two_shards_side_by_side_end_as_one_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let g = write_grid(tmp.path(), "asha");
    let straight = tmp.path().join("straight");
    let o = common::fake_sweep(&g, &straight, &["--jobs", "2", "-q"], "");
    assert!(o.status.success());
    let (plan, store) = common::plan_and_store(&g, &straight);
    let want = outcome(&store, &plan);

    // Killed twice once something paused at a rung, checkpoints torn, then run to the end.
    let killed = tmp.path().join("killed");
    let (_, kstore) = common::plan_and_store(&g, &killed);
    for _ in 0..2 {
        let mut child = common::fake_cmd(&g, &killed, &["--jobs", "2", "-q"], "delay_ms=2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let before = common::event_counts(&kstore, "paused")
            .values()
            .sum::<usize>();
        common::wait_for("a cell paused at a rung", Duration::from_secs(60), || {
            common::event_counts(&kstore, "paused")
                .values()
                .sum::<usize>()
                > before
        });
        let _ = child.kill();
        let _ = child.wait();
    }
    // Tear the newest checkpoint of every unfinished cell that has two: a cell at its rung then
    // has none there, and trains to it again from the one before (pruned or promoted alike).
    for c in &plan.cells {
        if kstore.layout.result_json(&c.id).exists() {
            continue;
        }
        let files = kstore.layout.checkpoints(&c.id).list().unwrap();
        if files.len() == 2 {
            let bytes = std::fs::read(&files[0].1).unwrap();
            std::fs::write(&files[0].1, &bytes[..bytes.len() / 2]).unwrap();
        }
    }
    let o = common::fake_sweep(&g, &killed, &["--jobs", "2", "-q"], "");
    assert!(
        o.status.success(),
        "{:?}\n{}\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(kstore.layout.events()).unwrap_or_default()
    );
    assert_eq!(outcome(&kstore, &plan), want, "killed and resumed");

    // Two processes, one per shard, at once: each takes its shard's cells first, then any
    // ready one; together they make the same decisions.
    let sharded = tmp.path().join("sharded");
    let children: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|s| {
            common::fake_cmd(
                &g,
                &sharded,
                &["--jobs", "1", "-q", "--shard", s],
                "delay_ms=1",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (_, sstore) = common::plan_and_store(&g, &sharded);
    assert_eq!(outcome(&sstore, &plan), want, "two shards");
    let pruned: BTreeMap<String, usize> = common::event_counts(&sstore, "pruned");
    assert!(
        pruned.values().all(|&n| n == 1),
        "each pruned cell recorded once: {pruned:?}"
    );
}

#[test]
fn plan_shows_the_rungs_and_rejects_rungs_that_are_not_evaluation_points() {
    let tmp = tempfile::tempdir().unwrap();
    let g = write_grid(tmp.path(), "sha");
    let o = common::fake_bin("").arg("plan").arg(&g).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains(
            "successive halving (sha): rungs at 1, 2, 4, 8 and 9 epochs (the full budget), η = 2"
        ),
        "{text}"
    );
    assert!(text.contains("15 configurations × 2 seed(s)"), "{text}");

    // Steps of 10 per epoch, evaluated every 4 steps: the rung at step 10 is not one.
    let bad = grid("asha").replace("eval_every = \"epoch\"", "eval_every = 4");
    let b = tmp.path().join("bad.toml");
    std::fs::write(&b, bad).unwrap();
    let o = common::fake_bin("").arg("plan").arg(&b).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("bad.toml:") && err.contains("prune"), "{err}");
    assert!(
        err.contains("is not an evaluation point") && err.contains("eval_every = 4"),
        "{err}"
    );
}

/// The audit replays on a full grid what a pruned sweep of the same grid decides live: the
/// same configurations kept at each rung, the same compute.
#[test]
fn prune_replay_of_the_full_grid_agrees_with_the_pruned_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    for method in ["sha", "asha"] {
        let pruned_grid = write_grid(tmp.path(), method);
        let full_grid = tmp.path().join(format!("{method}-full.toml"));
        let text = grid(method);
        let full_text = text[..text.find("[prune]").unwrap()].replace("\"pruned\"", "\"full\"");
        std::fs::write(&full_grid, full_text).unwrap();
        let results = tmp.path().join(method);
        for g in [&pruned_grid, &full_grid] {
            let o = common::fake_sweep(g, &results, &["--jobs", "2", "-q"], "");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        // `results prune-replay full` with this grid's rules, and `extra` flags.
        let replay_cmd = |extra: &[&str]| {
            common::fake_bin("")
                .args(["results", "prune-replay", "full", "--min-resource", "1"])
                .args(["--reduction-factor", "2", "--method", method])
                .args(extra)
                .arg("--results")
                .arg(&results)
                .output()
                .unwrap()
        };
        let o = replay_cmd(&["--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let replay: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let (plan, store) = common::plan_and_store(&pruned_grid, &results);
        let (states, _) = outcome(&store, &plan);
        assert_eq!(replay["configs"].as_array().unwrap().len(), 15);
        let mut live_samples = 0;
        for (c, conf) in replay["configs"].as_array().unwrap().iter().enumerate() {
            let want = states[2 * c].1.map(|k| k as u64);
            assert_eq!(
                conf["pruned_at"].as_u64(),
                want,
                "{method}: configuration {c}"
            );
            live_samples += (0..2)
                .map(|s| {
                    store
                        .load_result(&plan.cells[2 * c + s].id)
                        .unwrap()
                        .record
                        .samples()
                })
                .sum::<u64>();
        }
        let replayed: u64 = replay["configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["samples_replayed"].as_u64().unwrap())
            .sum();
        assert_eq!(replayed, live_samples, "{method}: compute");
        // The text form names the full grid's best and whether it survives.
        let o = replay_cmd(&[]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("rung 0 (1 epoch): 15 configurations"),
            "{text}"
        );
        assert!(
            text.contains("the full grid's best: default lr=0.001 hidden=128"),
            "{text}"
        );
        assert!(text.contains("compute: "), "{text}");
    }
}

/// A seed that diverges before a rung: its configuration ranks last there, and its other seed is
/// still trained to the rung and recorded (the unit tests of `plan::halving` check that the
/// configuration waits for it). A failing cell leaves the configurations it holds up waiting,
/// and the sweep ends (exit 1, with the hint) instead of spinning. Both with SHA on 2 workers.
#[test]
fn diverged_and_failed_seeds_end_a_pruned_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let g = write_grid(tmp.path(), "sha");
    // Seed 0 of lr=0.001 hidden=128 (the best) diverges at its 5th step, before rung 0.
    let rules = "diverge_at=5 if lr=0.001 and hidden=128 and seed=0";
    let results = tmp.path().join("div");
    let o = common::fake_sweep(&g, &results, &["--jobs", "2", "-q"], rules);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (plan, store) = common::plan_and_store(&g, &results);
    let (states, _) = outcome(&store, &plan);
    let at = |lr: &str, hidden: &str, seed: &str| {
        plan.cells
            .iter()
            .position(|c| {
                c.coords["lr"] == lr && c.coords["hidden"] == hidden && c.coords["seed"] == seed
            })
            .unwrap()
    };
    assert_eq!(states[at("0.001", "128", "0")].0, "diverged");
    // Its other seed reached rung 0 and was recorded there: nothing is left unfinished.
    assert_eq!(
        states[at("0.001", "128", "1")],
        ("pruned".to_string(), Some(0))
    );
    assert!(states.iter().all(|(s, _)| s != "interrupted"));

    let results = tmp.path().join("fail");
    let child = common::fake_cmd(
        &g,
        &results,
        &["--jobs", "2", "-q"],
        "fail if lr=0.001 and hidden=32 and seed=1",
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("wait at a rung for the result of a failed cell"),
        "{err}"
    );
    // Run again without the failure: the failed cell is kept (no --rerun-failed) and the sweep
    // ends at once; with --rerun-failed it trains and the study finishes.
    let o = common::fake_sweep(&g, &results, &["--jobs", "2", "-q"], "");
    assert_eq!(o.status.code(), Some(1));
    let o = common::fake_sweep(&g, &results, &["--jobs", "2", "-q", "--rerun-failed"], "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (plan, store) = common::plan_and_store(&g, &results);
    assert!(plan
        .cells
        .iter()
        .all(|c| store.cell_state(c, None).0.finished()));
}
