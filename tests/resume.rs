//! Checkpoints on real MNIST training: a run resumed from any of its checkpoints (taken at an
//! evaluation point, or when the stop flag stopped it between two) ends bit-identical to the
//! run that was never stopped: every metric row but the measured seconds, every epoch's
//! counts, and every final weight, for each cell kind and optimizer, with dropout masks, a
//! learning-rate schedule and warmup, clipping, and an evaluation schedule inside epochs.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use dfdx::prelude::Cpu;
use rnnsweep::trainer::config::presets::preset;
use rnnsweep::trainer::config::*;
use rnnsweep::trainer::fit::checkpoint::{Checkpoint, Span};
use rnnsweep::trainer::fit::{fit, Observer, Silent, StepInfo};

/// Keeps every checkpoint, and sets the stop flag after step `stop_at`.
struct Keeper<'a> {
    kept: Mutex<Vec<Checkpoint>>,
    stop_at: Option<u64>,
    stop: &'a AtomicBool,
}

impl Observer for Keeper<'_> {
    fn step(&self, info: &StepInfo) {
        if Some(info.iteration) == self.stop_at {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
    fn wants_checkpoints(&self) -> bool {
        true
    }
    fn checkpoint(&self, ckpt: Checkpoint) {
        self.kept.lock().unwrap().push(ckpt);
    }
}

/// The record (timing zeroed, floats as bits) and every weight's bits of a run of `cfg`.
type Outcome = (String, Vec<u32>);

/// Trains `cfg` from `resume` (or the start), stopping after step `stop_at`; returns the
/// outcome and the checkpoints it handed out.
fn train(
    cfg: &TrainConfig,
    resume: Option<&Checkpoint>,
    stop_at: Option<u64>,
) -> (Outcome, Vec<Checkpoint>) {
    let stop = AtomicBool::new(false);
    let keeper = Keeper {
        kept: Mutex::new(Vec::new()),
        stop_at,
        stop: &stop,
    };
    let span = Span {
        from: resume,
        pause_at: None,
    };
    let (record, model) = fit(
        &Cpu::default(),
        "cpu",
        cfg,
        common::mnist(),
        &keeper,
        &stop,
        span,
    )
    .unwrap();
    let weights = model
        .values()
        .iter()
        .flatten()
        .map(|x| x.to_bits())
        .collect();
    let outcome = (common::without_timing(record), weights);
    (outcome, keeper.kept.into_inner().unwrap())
}

/// A small network on 60 images, batch 10 (6 steps an epoch), 3 epochs, evaluated on 50 test
/// images every epoch.
fn small(cell: LayerKind, optim: OptimKind) -> TrainConfig {
    let mut c = preset("lstm_h20").unwrap();
    c.model.cell = cell;
    c.model.hidden = 8;
    c.optim.kind = optim;
    c.optim.lr = match optim {
        OptimKind::Sgd => 0.1,
        _ => 0.01,
    };
    c.batch_size = 10;
    c.budget = Budget::Epochs(3);
    c.train_limit = Some(60);
    c.eval = EvalConfig {
        every: EvalEvery::Epoch,
        before_training: true,
        test_limit: Some(50),
    };
    c
}

/// Resumes `cfg` from every checkpoint of an uninterrupted run and from a stop at each of
/// `stops`; each must end as the uninterrupted run did. Returns how many resumptions it checked.
fn check_resumes(what: &str, cfg: &TrainConfig, stops: &[u64]) -> usize {
    let (straight, kept) = train(cfg, None, None);
    // Handing out checkpoints changes nothing in the run itself.
    let (silent, model) = fit(
        &Cpu::default(),
        "cpu",
        cfg,
        common::mnist(),
        &Silent,
        &AtomicBool::new(false),
        Span::whole(),
    )
    .unwrap();
    let silent_weights: Vec<u32> = model
        .values()
        .iter()
        .flatten()
        .map(|x| x.to_bits())
        .collect();
    assert_eq!(
        (common::without_timing(silent), silent_weights),
        straight,
        "{what}"
    );
    assert!(straight.0.contains("Completed"), "{what}: {}", straight.0);
    assert!(!kept.is_empty(), "{what}: no checkpoint");
    let mut checked = 0;
    for ckpt in &kept {
        let (resumed, _) = train(cfg, Some(ckpt), None);
        assert_eq!(
            resumed, straight,
            "{what}: resumed after step {}",
            ckpt.progress.iteration
        );
        checked += 1;
    }
    for &at in stops {
        let (stopped, mut at_stop) = train(cfg, None, Some(at));
        assert!(stopped.0.contains("Interrupted"), "{what}");
        let last = at_stop.pop().expect("a checkpoint when stopped");
        assert_eq!(last.progress.iteration, at, "{what}");
        // Stopped again from there, then resumed from that checkpoint: still the same run.
        let (_, mut second) = train(cfg, Some(&last), Some(at + 4));
        let again = second.pop().expect("a checkpoint at the second stop");
        let (resumed, _) = train(cfg, Some(&again), None);
        assert_eq!(
            resumed,
            straight,
            "{what}: stopped after step {at} and {}",
            at + 4
        );
        checked += 1;
    }
    checked
}

#[test]
fn every_cell_kind_and_optimizer_resumes_bit_identical() {
    let optimizers = [
        ("sgd", OptimKind::Sgd, false),
        ("sgd nesterov", OptimKind::Sgd, true),
        ("adam", OptimKind::Adam, false),
        ("adamw amsgrad", OptimKind::Adamw, true),
        ("rmsprop", OptimKind::Rmsprop, false),
    ];
    let mut checked = 0;
    for cell in [LayerKind::Rnn, LayerKind::Lstm, LayerKind::Gru] {
        for (name, kind, variant) in optimizers {
            let mut cfg = small(cell, kind);
            match kind {
                OptimKind::Sgd if variant => {
                    cfg.optim.momentum = 0.9;
                    cfg.optim.nesterov = true;
                }
                OptimKind::Adamw => cfg.optim.amsgrad = variant,
                _ => {}
            }
            // Mid-epoch (step 4 of 6), and at an epoch's first step (7).
            checked += check_resumes(&format!("{cell:?} {name}"), &cfg, &[4, 7]);
        }
    }
    // 15 configurations × (2 evaluation checkpoints + 2 stops).
    assert_eq!(checked, 15 * 4);
}

#[test]
fn dropout_schedules_clipping_and_evaluation_inside_epochs_resume_bit_identical() {
    // Two layers with dropout between them: the mask stream continues where it was.
    let mut cfg = small(LayerKind::Lstm, OptimKind::Adam);
    cfg.model.layers = 2;
    cfg.model.dropout = Some(0.3);
    // A schedule by epoch, warmup by step, clipping of the norm.
    cfg.optim.lr_schedule = LrSchedule::Step {
        step_size: 1,
        gamma: 0.5,
    };
    cfg.optim.warmup = Some(5);
    cfg.optim.clip_grad_norm = Some(0.5);
    // Evaluation every 4 steps: points inside epochs, and a final partial window.
    cfg.eval.every = EvalEvery::Iterations(4);
    assert_eq!(check_resumes("lstm dropout", &cfg, &[3, 9]), 4 + 2);

    // A budget in steps that ends inside an epoch, a cosine schedule, a relu RNN of 784 steps.
    let mut cfg = small(LayerKind::Rnn, OptimKind::Sgd);
    cfg.model.activation = Some(Activation::Relu);
    cfg.model.input = rnnsweep::data::sequence::InputMode::Pixels;
    cfg.optim.lr = 0.01;
    cfg.optim.clip_grad_value = Some(1.0);
    cfg.optim.lr_schedule = LrSchedule::Cosine { eta_min: 0.001 };
    cfg.budget = Budget::Iterations(11);
    cfg.eval.every = EvalEvery::Iterations(5);
    assert_eq!(check_resumes("rnn pixels", &cfg, &[2]), 2 + 1);
}

/// A checkpoint of another configuration is refused, with the reason.
#[test]
fn a_checkpoint_of_another_config_is_refused() {
    let cfg = small(LayerKind::Gru, OptimKind::Adam);
    let (_, kept) = train(&cfg, None, None);
    let other = TrainConfig {
        seed: cfg.seed + 1,
        ..cfg.clone()
    };
    let stop = AtomicBool::new(false);
    let Err(e) = fit(
        &Cpu::default(),
        "cpu",
        &other,
        common::mnist(),
        &Silent,
        &stop,
        Span {
            from: Some(&kept[0]),
            pause_at: None,
        },
    ) else {
        panic!("refused")
    };
    let text = rnnsweep::error::chain(&e);
    assert!(text.contains("another configuration"), "{text}");
}

/// A real sweep (six cells on MNIST, two workers) SIGKILLed at random moments, three times,
/// each time once a cell has a checkpoint; then the newest checkpoint of one unfinished cell is
/// torn (cut short). The sweep run to the end continues the unfinished cells from their
/// checkpoints (the torn one skipped for the one before it), and every cell ends bit-identical
/// to an uninterrupted sweep: its record (timing aside) and its weights file, byte for byte.
#[cfg(unix)]
#[test]
fn a_real_sweep_killed_at_random_moments_ends_bit_identical() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let g = common::grid("resume.toml");
    let straight_dir = tempfile::tempdir().unwrap();
    let o = common::sweep(&g, straight_dir.path(), &["--jobs", "2", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (plan, straight) = common::plan_and_store(&g, straight_dir.path());

    let tmp = tempfile::tempdir().unwrap();
    let (_, store) = common::plan_and_store(&g, tmp.path());
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let unfinished_with_checkpoint = || {
        plan.cells.iter().any(|c| {
            !store.layout.result_json(&c.id).exists()
                && !store.layout.checkpoints(&c.id).list().unwrap().is_empty()
        })
    };
    let mut kills = Vec::new();
    for _ in 0..3 {
        let mut child = common::cmd(&g, tmp.path(), &["--jobs", "2", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        common::wait_for(
            "a checkpoint of an unfinished cell",
            Duration::from_secs(120),
            &unfinished_with_checkpoint,
        );
        let delay = Duration::from_millis(next() % 400);
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        kills.push(t0.elapsed());
    }
    let why = format!("seed {seed}, killed after {kills:?}");
    let partial: Vec<_> = plan
        .cells
        .iter()
        .filter(|c| !store.layout.result_json(&c.id).exists())
        .collect();
    assert!(!partial.is_empty(), "the kills came too late ({why})");
    // Tear the newest checkpoint of an unfinished cell that has two.
    let torn = partial.iter().find_map(|c| {
        let files = store.layout.checkpoints(&c.id).list().unwrap();
        (files.len() == 2).then(|| files[0].1.clone())
    });
    if let Some(path) = &torn {
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    }

    let o = common::sweep(&g, tmp.path(), &["--jobs", "2", "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let resumed = common::event_counts(&store, "resume");
    eprintln!(
        "{why}: {} cell(s) resumed, torn: {}",
        resumed.len(),
        torn.is_some()
    );
    assert!(!resumed.is_empty(), "no cell was resumed ({why})");
    if torn.is_some() {
        assert_eq!(
            common::event_counts(&store, "checkpoint_ignored")
                .values()
                .sum::<usize>(),
            1,
            "{why}"
        );
    }
    for c in &plan.cells {
        let record = |s: &rnnsweep::store::RunStore| {
            common::without_timing(s.load_result(&c.id).unwrap().record)
        };
        assert_eq!(
            record(&store),
            record(&straight),
            "cell {} ({why})",
            c.index
        );
        let weights =
            |s: &rnnsweep::store::RunStore| std::fs::read(s.layout.weights(&c.id)).unwrap();
        assert!(
            weights(&store) == weights(&straight),
            "cell {} weights ({why})",
            c.index
        );
        assert!(
            !store.layout.checkpoints(&c.id).dir().exists(),
            "removed when finished"
        );
    }
}
