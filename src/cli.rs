//! The command line (the only module that sees clap): flags are parsed into the library's typed
//! options, validated there, and dispatched to `rnnsweep::commands`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use rnnsweep::cluster::Shard;
use rnnsweep::commands::{
    self, bench, data, describe, predict, results, slurm, status, sweep, train, Outcome,
};
use rnnsweep::data as mnist;
use rnnsweep::report::export::{Format, Tables};
use rnnsweep::report::summarize::Metric;
use rnnsweep::runner::RunOptions;
use rnnsweep::store::lease::ttl_from_env;
use rnnsweep::trainer::backend::Backend;
use rnnsweep::trainer::config::*;
use rnnsweep::trainer::device::DeviceRequest;
use rnnsweep::trainer::presets::{default_config, default_lr, preset};

#[derive(Parser, Debug)]
#[command(
    name = "rnnsweep",
    version,
    about = "Hyperparameter sweeps of RNN/LSTM/GRU classifiers on sequence-MNIST"
)]
pub struct Cli {
    /// Folder with the four MNIST files [default: $RNNSWEEP_DATA, else the per-user cache dir]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// No progress bars or tables (results and errors are still printed)
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every cell of a grid file that is not done yet (resumable)
    Sweep(SweepArgs),
    /// List a grid's cells with their status and a cost estimate
    Plan(PlanArgs),
    /// Train one network and record its metrics
    Train(TrainArgs),
    /// Predict the first test images with a finished run's weights
    Predict(PredictArgs),
    /// Tables and comparisons of finished sweeps (read from the results folder)
    #[command(subcommand)]
    Results(ResultsCmd),
    /// Print a network's structure and parameter tensors
    Describe(DescribeArgs),
    /// Fetch, verify or look at the MNIST data
    #[command(subcommand)]
    Data(DataCmd),
    /// Measure single-thread training throughput of the tutorial recipes
    Bench(BenchArgs),
    /// Where each cell of a sweep stands: done, running (lease age, owner), stale, failed, new
    Status(StatusArgs),
    /// Write an sbatch script running a sweep as a Slurm job array
    Slurm(SlurmArgs),
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// Sweeps by name (under --results) or folder [default: every sweep under --results]
    sweeps: Vec<String>,
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct SlurmArgs {
    /// The grid file (TOML)
    grid: PathBuf,
    /// Results root (shared by all nodes, e.g. on NFS)
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
    /// Array tasks, each running one shard [default: one per cell, at most 1000]
    #[arg(long)]
    tasks: Option<usize>,
    /// At most M tasks at once (the array's %M)
    #[arg(long, value_name = "M")]
    array_parallelism: Option<usize>,
    /// Time limit per task, as sbatch takes it (e.g. 02:00:00)
    #[arg(long)]
    time: Option<String>,
    #[arg(long)]
    partition: Option<String>,
    /// CPUs per task; each task trains this many cells at once
    #[arg(long, default_value_t = 2)]
    cpus_per_task: usize,
    /// Generic resources, e.g. gpu:1
    #[arg(long)]
    gres: Option<String>,
    /// Seconds before the time limit at which Slurm sends SIGUSR1 (the task stops and requeues)
    #[arg(long, default_value_t = 120)]
    signal_seconds: u32,
    /// Also run cells that failed before
    #[arg(long)]
    rerun_failed: bool,
    /// Where to write the script [default: <results>/<sweep>/slurm/sweep.sbatch]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SweepArgs {
    /// The grid file (TOML), e.g. experiments/activation.toml
    grid: PathBuf,
    /// Cells trained at the same time [default: the number of CPU cores]
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Matmul threads per cell [default: 1 when there are at least as many cells as cores,
    /// else the cores shared out between the cells]
    #[arg(long)]
    threads_per_job: Option<usize>,
    /// Results root; the sweep goes to <DIR>/<sweep name>
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
    /// Also run cells that failed before
    #[arg(long)]
    rerun_failed: bool,
    /// auto, cpu or cuda
    #[arg(long, default_value = "auto")]
    device: DeviceRequest,
    /// Run only cells whose index ≡ I (mod N), 0 <= I < N [default: from SLURM_ARRAY_TASK_ID
    /// and SLURM_ARRAY_TASK_COUNT (or _MIN/_MAX) when set, else every cell]
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
}

#[derive(Subcommand, Debug)]
enum ResultsCmd {
    /// One row per variant (mean ± std over seeds, best, diverged, speed), then the
    /// metric-vs-epoch table with one column per variant
    Summarize {
        /// Sweeps by name (under --results) or folder [default: every sweep under --results]
        sweeps: Vec<String>,
        #[arg(long, default_value = "results", value_name = "DIR")]
        results: PathBuf,
        /// Group by these columns (comma-separated), e.g. `cell,hidden` [default: sweep, variant, grid axes]
        #[arg(long, value_delimiter = ',')]
        by: Option<Vec<String>>,
        /// Metric of the curve table: test_acc, test_loss, train_acc, train_loss
        #[arg(long, default_value = "test_acc")]
        metric: Metric,
        /// table, markdown, csv or json
        #[arg(long, default_value = "table")]
        format: Format,
        /// summary, curves or both [default: both; summary for csv]
        #[arg(long)]
        table: Option<Tables>,
        /// Write to this file instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Paired difference of two variants' final test accuracy over their shared seeds
    Compare {
        /// Variant labels as shown by `summarize` (a unique prefix is enough)
        a: String,
        b: String,
        /// Sweeps by name or folder [default: every sweep under --results]
        #[arg(long = "sweep")]
        sweeps: Vec<String>,
        #[arg(long, default_value = "results", value_name = "DIR")]
        results: PathBuf,
        /// Grouping, as for summarize
        #[arg(long, value_delimiter = ',')]
        by: Option<Vec<String>>,
        #[arg(long)]
        json: bool,
    },
    /// Charts of test/train accuracy and loss vs epoch (one line per variant, seed band), as
    /// SVG and PNG files
    Curves {
        /// Sweeps by name (under --results) or folder [default: every sweep under --results]
        sweeps: Vec<String>,
        #[arg(long, default_value = "results", value_name = "DIR")]
        results: PathBuf,
        /// Grouping, as for summarize
        #[arg(long, value_delimiter = ',')]
        by: Option<Vec<String>>,
        /// Folder for the charts [default: <results>/<sweep>/curves, or <results>/curves for several sweeps]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// svg, png or both
        #[arg(long, default_value = "both", value_parser = ["svg", "png", "both"])]
        format: String,
    },
    /// One self-contained offline HTML page: counts, variant table, charts, curve table
    Report {
        /// Sweeps by name (under --results) or folder [default: every sweep under --results]
        sweeps: Vec<String>,
        #[arg(long, default_value = "results", value_name = "DIR")]
        results: PathBuf,
        /// Grouping, as for summarize
        #[arg(long, value_delimiter = ',')]
        by: Option<Vec<String>>,
        /// The HTML file to write
        #[arg(long, value_name = "FILE", default_value = "report.html")]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// A run folder: results/<sweep>/runs/<cell id> or a `train` output folder
    run: PathBuf,
    /// How many test images, from the first
    #[arg(long, short, default_value_t = 10)]
    n: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct PlanArgs {
    /// The grid file (TOML)
    grid: PathBuf,
    /// Results root, to show which cells are done
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
    /// Print JSON (every cell with its full config)
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
struct ModelArgs {
    /// Recurrent cell: rnn, lstm or gru
    #[arg(long)]
    cell: Option<LayerKind>,
    /// RNN nonlinearity: relu or tanh (rnn only; default tanh)
    #[arg(long)]
    activation: Option<Activation>,
    /// Hidden units per layer
    #[arg(long)]
    hidden: Option<usize>,
    /// Stacked recurrent layers
    #[arg(long)]
    layers: Option<usize>,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Start from a tutorial recipe (rnnimc, model_a, model_b, model_c, lstm_h20, lstm_h64); flags override it
    #[arg(long)]
    preset: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    /// Optimizer: sgd, adam or rmsprop (PyTorch semantics)
    #[arg(long)]
    optimizer: Option<OptimKind>,
    /// Learning rate [default: 0.1 for sgd, 0.001 for adam, 0.01 for rmsprop]
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// SGD momentum
    #[arg(long, allow_negative_numbers = true)]
    momentum: Option<f64>,
    /// Mini-batch size
    #[arg(long)]
    batch: Option<usize>,
    /// Train this many epochs [default: 1]
    #[arg(long, conflicts_with = "iterations")]
    epochs: Option<u32>,
    /// Train this many optimizer steps instead of whole epochs
    #[arg(long)]
    iterations: Option<u64>,
    /// Seed for initialisation and shuffling
    #[arg(long)]
    seed: Option<u64>,
    /// Train on the first N training images only
    #[arg(long, value_name = "N")]
    train_limit: Option<usize>,
    /// Evaluate on the first N test images only
    #[arg(long, value_name = "N")]
    test_limit: Option<usize>,
    /// Evaluate every epoch, or every K steps: `epoch` or a number
    #[arg(long, value_name = "epoch|K")]
    eval_every: Option<EvalEvery>,
    /// Also evaluate the untrained model (epoch 0)
    #[arg(long)]
    eval_before: bool,
    /// auto (CUDA if built with it and a GPU answers, else CPU), cpu or cuda
    #[arg(long, default_value = "auto")]
    device: DeviceRequest,
    /// CPU threads for matrix products
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Output folder [default: results/train/<config slug>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the final record as JSON on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct DescribeArgs {
    /// Describe a tutorial recipe's model
    #[arg(long)]
    preset: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum DataCmd {
    /// Download the missing MNIST files and verify all four (SHA-256)
    Fetch {
        /// Mirror base URL to try (repeatable) [default: $RNNSWEEP_MNIST_MIRRORS, else built-in mirrors]
        #[arg(long)]
        mirror: Vec<String>,
    },
    /// Check the four files' checksums and structure
    Verify,
    /// Print an image as its 28 rows (time steps) with its label
    Show {
        /// Image index
        index: usize,
        /// From the training set instead of the test set
        #[arg(long)]
        train: bool,
    },
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Recipes to measure (repeatable) [default: all six]
    #[arg(long = "recipe")]
    recipes: Vec<String>,
    /// Untimed steps before measuring
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Timed steps per window
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Timed windows (the median is reported)
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Threads for matrix products (the recipes' targets are single-thread)
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Instead of training: time `results summarize` on a synthetic sweep of this many runs
    /// (30 epochs each), written to a temporary folder
    #[arg(long, value_name = "RUNS")]
    report: Option<usize>,
    /// Also write the rows as JSON to FILE (a baseline for --compare)
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Print the rows against a baseline saved with --save (regressions are marked SLOWER)
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
}

impl ModelArgs {
    /// Applies the flags to `m` (a preset's model or the default).
    fn apply(&self, mut m: ModelConfig) -> ModelConfig {
        if let Some(c) = self.cell {
            if c != m.cell {
                m.activation = None; // a preset's rnn activation does not carry over to lstm/gru
            }
            m.cell = c;
        }
        if let Some(a) = self.activation {
            m.activation = Some(a);
        }
        if let Some(h) = self.hidden {
            m.hidden = h;
        }
        if let Some(l) = self.layers {
            m.layers = l;
        }
        m
    }
}

impl TrainArgs {
    fn config(&self) -> anyhow::Result<TrainConfig> {
        let mut c = match &self.preset {
            Some(p) => preset(p)?,
            None => default_config(),
        };
        c.model = self.model.apply(c.model);
        if let Some(k) = self.optimizer {
            if k != c.optim.kind && self.lr.is_none() {
                c.optim.lr = default_lr(k);
            }
            c.optim.kind = k;
        }
        if let Some(lr) = self.lr {
            c.optim.lr = lr;
        }
        if let Some(m) = self.momentum {
            c.optim.momentum = m;
        }
        if let Some(b) = self.batch {
            c.batch_size = b;
        }
        if let Some(e) = self.epochs {
            c.budget = Budget::Epochs(e);
        }
        if let Some(n) = self.iterations {
            c.budget = Budget::Iterations(n);
        }
        if let Some(s) = self.seed {
            c.seed = s;
        }
        if self.train_limit.is_some() {
            c.train_limit = self.train_limit;
        }
        if self.test_limit.is_some() {
            c.eval.test_limit = self.test_limit;
        }
        if let Some(e) = self.eval_every {
            c.eval.every = e;
        }
        if self.eval_before {
            c.eval.before_training = true;
        }
        c.validate()
            .context("check the training flags (rnnsweep train --help)")?;
        Ok(c)
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli, stop: &AtomicBool) -> anyhow::Result<Outcome> {
    let env = |k: &str| std::env::var(k).ok();
    let data_dir = || mnist::resolve_dir(cli.data_dir.as_deref());
    match cli.command {
        Command::Sweep(a) => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let jobs = a.jobs.unwrap_or(cores);
            if jobs == 0 || a.threads_per_job == Some(0) {
                anyhow::bail!("--jobs and --threads-per-job must be at least 1");
            }
            let shard = match a.shard {
                Some(s) => Some(s),
                None => Shard::from_slurm_env(|k| std::env::var(k).ok())?,
            };
            let opts = sweep::SweepOptions {
                grid: a.grid,
                results: a.results,
                data_dir: data_dir()?,
                backend: Backend::from_env(a.device, env)?,
                run: RunOptions {
                    jobs,
                    threads_per_job: a.threads_per_job.unwrap_or(1),
                    lease_ttl: ttl_from_env()?,
                    rerun_failed: a.rerun_failed,
                },
                shard,
                spare_cores: a.threads_per_job.is_none().then_some(cores),
                quiet: cli.quiet,
            };
            sweep::sweep_cmd(&opts, stop)
        }
        Command::Plan(a) => sweep::plan_cmd(&a.grid, &a.results, a.json),
        Command::Status(a) => status::status_cmd(&a.results, &a.sweeps, ttl_from_env()?, a.json),
        Command::Slurm(a) => slurm::slurm_cmd(&slurm::SlurmOptions {
            grid: a.grid,
            results: a.results,
            data_dir: data_dir()?,
            check_data: Backend::from_env(DeviceRequest::Cpu, env)?.needs_data(),
            tasks: a.tasks,
            array_parallelism: a.array_parallelism,
            time: a.time,
            partition: a.partition,
            cpus_per_task: a.cpus_per_task,
            gres: a.gres,
            signal_seconds: a.signal_seconds,
            rerun_failed: a.rerun_failed,
            out: a.out,
            quiet: cli.quiet,
        }),
        Command::Results(ResultsCmd::Summarize {
            sweeps,
            results,
            by,
            metric,
            format,
            table,
            out,
        }) => results::summarize_cmd(&results::SummarizeOptions {
            results,
            sweeps,
            by,
            metric,
            format,
            tables: table,
            out,
        }),
        Command::Results(ResultsCmd::Compare {
            a,
            b,
            sweeps,
            results,
            by,
            json,
        }) => results::compare_cmd(&results, &sweeps, &a, &b, by.as_deref(), json),
        Command::Results(ResultsCmd::Curves {
            sweeps,
            results,
            by,
            out,
            format,
        }) => results::curves_cmd(
            &results,
            &sweeps,
            by.as_deref(),
            out.as_deref(),
            format != "png",
            format != "svg",
        ),
        Command::Results(ResultsCmd::Report {
            sweeps,
            results,
            by,
            out,
        }) => results::report_cmd(&results, &sweeps, by.as_deref(), &out),
        Command::Predict(a) => {
            if a.n == 0 {
                anyhow::bail!("--n must be at least 1");
            }
            let run = predict::load_run(&a.run)?;
            let data = data::load(&data_dir()?, cli.quiet)?;
            let p = predict::predict_cmd(&run, &data, a.n);
            if a.json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                print!("{}", p.text());
            }
            Ok(Outcome::Ok)
        }
        Command::Train(a) => {
            if a.threads == 0 {
                anyhow::bail!("--threads must be at least 1");
            }
            let opts = train::TrainOptions {
                config: a.config()?,
                backend: Backend::from_env(a.device, env)?,
                threads: a.threads,
                data_dir: data_dir()?,
                out_dir: a.out.clone(),
                json: a.json,
                quiet: cli.quiet,
            };
            train::train_cmd(&opts, stop)
        }
        Command::Describe(a) => {
            let base = match &a.preset {
                Some(p) => preset(p)?.model,
                None => default_config().model,
            };
            let m = a.model.apply(base);
            m.validate()?;
            let d = describe::describe(&m);
            if a.json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print!("{}", d.text());
            }
            Ok(Outcome::Ok)
        }
        Command::Data(cmd) => {
            let dir = data_dir()?;
            let text = match cmd {
                DataCmd::Fetch { mirror } => data::fetch_cmd(&dir, &mirror, cli.quiet)?,
                DataCmd::Verify => data::verify_cmd(&dir)?,
                DataCmd::Show { index, train } => data::show_cmd(&dir, index, train, cli.quiet)?,
            };
            print!("{text}");
            Ok(Outcome::Ok)
        }
        Command::Bench(a) => {
            if a.threads == 0 || a.steps == 0 || a.repeats == 0 {
                anyhow::bail!("--threads, --steps and --repeats must be at least 1");
            }
            if let Some(runs) = a.report {
                if runs == 0 {
                    anyhow::bail!("--report needs at least 1 run");
                }
                let tmp = std::env::temp_dir()
                    .join(format!("rnnsweep-report-bench-{}", std::process::id()));
                let r = bench::report_bench(&tmp, runs, 30);
                let _ = std::fs::remove_dir_all(&tmp);
                let r = r?;
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    println!(
                        "results summarize on {} runs x {} epochs ({} metric rows): load {:.2}s, summarize {:.2}s, render {:.3}s, total {:.2}s (writing the synthetic sweep took {:.1}s)",
                        r.runs, r.epochs, r.metric_rows, r.load_seconds, r.summarize_seconds, r.render_seconds,
                        r.load_seconds + r.summarize_seconds + r.render_seconds, r.write_seconds
                    );
                }
                return Ok(Outcome::Ok);
            }
            for r in &a.recipes {
                preset(r)?;
            }
            // Read the baseline first: a bad file should not cost a benchmark run.
            let baseline = a.compare.as_deref().map(bench::load_baseline).transpose()?;
            let data = data::load(&data_dir()?, cli.quiet)?;
            let opts = bench::BenchOptions {
                recipes: a.recipes,
                warmup: a.warmup,
                steps: a.steps,
                repeats: a.repeats,
            };
            if !a.json && !cli.quiet {
                eprintln!(
                    "training throughput, {} thread(s), {} timed steps x {} windows after {} warm-up steps",
                    a.threads, a.steps, a.repeats, a.warmup
                );
            }
            let verbose = !a.json && !cli.quiet;
            let rows = commands::with_threads(a.threads, || {
                bench::run(&opts, &data, |r| {
                    if verbose {
                        eprintln!("  {}: {:.0} samples/s", r.recipe, r.samples_per_sec);
                    }
                })
            })??;
            if let Some(path) = &a.save {
                rnnsweep::fsutil::write_atomic(
                    path,
                    serde_json::to_string_pretty(&rows)?.as_bytes(),
                )
                .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", bench::table(&rows));
                if let Some(base) = &baseline {
                    println!();
                    print!("{}", bench::compare_table(&rows, base));
                }
            }
            Ok(Outcome::Ok)
        }
    }
}
