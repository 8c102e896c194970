//! The command line, the only module that sees clap: the clap structs (flag names, clap's
//! defaults, help texts), their conversion into each command's plain options struct in
//! `rnnsweep::commands`, and the dispatch to the command's entry function. Nothing else: the
//! commands resolve the other defaults, check the values, read the environment and the files,
//! and print.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::{Args, Parser, Subcommand};

use rnnsweep::cluster::Shard;
use rnnsweep::commands::{
    bench, data, describe, effects, export, predict, results, slurm, status, sweep, train, Outcome,
};
use rnnsweep::report::chart::ChartFormat;
use rnnsweep::report::effects::EffectMetric;
use rnnsweep::report::export::tidy::TidyFormat;
use rnnsweep::report::export::{Format, Tables};
use rnnsweep::report::summarize::Metric;
use rnnsweep::trainer::config::{
    Activation, Dataset, EvalEvery, InitScheme, InputMode, LayerKind, OptimKind, ScheduleKind,
};
use rnnsweep::trainer::device::DeviceRequest;
use rnnsweep::trainer::presets::{ModelOverrides, OptimKnobs, TrainOverrides};

#[derive(Parser, Debug)]
#[command(
    name = "rnnsweep",
    version,
    about = "Hyperparameter sweeps of RNN/LSTM/GRU classifiers on sequence-MNIST"
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

// The flags every command accepts; the commands that read data or show progress get them.
#[derive(Args, Debug)]
struct GlobalArgs {
    /// Data folder [default: $RNNSWEEP_DATA, else <per-user cache dir>/rnnsweep]. A folder
    /// named `mnist` or `fashion-mnist` is that data set's folder, the other data set's being
    /// beside it (/data/mnist -> /data/fashion-mnist); any other folder is a root holding one
    /// folder per data set (/data -> /data/mnist, /data/fashion-mnist), except that a folder
    /// holding MNIST's files itself stays MNIST's folder, as in earlier versions
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// No progress bars or tables (results and errors are still printed)
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every cell of a grid file that is not done yet (resumable)
    Sweep(SweepArgs),
    /// List a grid's cells with their status and a cost estimate
    Plan(PlanArgs),
    /// Train one network and record its metrics
    Train(Box<TrainArgs>),
    /// Predict the first test images with a finished run's weights
    Predict(PredictArgs),
    /// Tables and comparisons of finished sweeps (read from the results folder)
    #[command(subcommand)]
    Results(ResultsCmd),
    /// Print a network's structure and parameter tensors
    Describe(DescribeArgs),
    /// Fetch, verify or look at the data (MNIST or Fashion-MNIST)
    #[command(subcommand)]
    Data(DataCmd),
    /// Measure single-thread training throughput of the tutorial recipes
    Bench(BenchArgs),
    /// Where each cell of a sweep stands: done, running (lease age, owner), stale, failed, new
    Status(StatusArgs),
    /// Write an sbatch script running a sweep as a Slurm job array
    Slurm(SlurmArgs),
}

// The sweeps a results command reads (not `compare`, whose sweeps are `--sweep` options).
#[derive(Args, Debug)]
struct SweepsArgs {
    /// Sweeps by name (under --results) or folder [default: every sweep under --results]
    sweeps: Vec<String>,
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
}

// `--by` of the results commands but `summarize` (whose help says what the grouping is).
#[derive(Args, Debug)]
struct GroupingArgs {
    /// Grouping, as for summarize
    #[arg(long, value_delimiter = ',')]
    by: Option<Vec<String>>,
}

#[derive(Args, Debug)]
struct StatusArgs {
    #[command(flatten)]
    sweeps: SweepsArgs,
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
    Summarize(SummarizeArgs),
    /// Paired difference of two variants' final test accuracy over their shared seeds
    Compare(CompareArgs),
    /// Charts of test/train accuracy and loss vs epoch (one line per variant, seed band), as
    /// SVG and PNG files
    Curves(CurvesArgs),
    /// One self-contained offline HTML page: counts, variant table, charts, curve table
    Report(ReportArgs),
    /// A metric as a function of each setting that varies (grid axis, variant): tables on
    /// stdout, a chart per setting (and a heatmap when two vary) as SVG and PNG
    Effects(EffectsArgs),
    /// Every evaluation of every run as one tidy long table (CSV or Parquet): one row per run ×
    /// evaluation point × split, with sweep, cell id, variant, status, seed and every
    /// hyperparameter as columns
    Export(ExportArgs),
}

#[derive(Args, Debug)]
struct EffectsArgs {
    #[command(flatten)]
    sweeps: SweepsArgs,
    /// Only this setting: a grid axis as written in the grid, `variant` or `sweep` [default:
    /// every one with at least two values]
    #[arg(long, value_name = "NAME")]
    axis: Option<String>,
    /// final_test_acc, best_test_acc, samples_per_sec or time_to_target
    #[arg(long, default_value = "final_test_acc")]
    metric: EffectMetric,
    /// Test accuracy to reach, for --metric time_to_target [default: 0.9]
    #[arg(long, value_name = "ACC")]
    target: Option<f64>,
    /// table, markdown, csv or json
    #[arg(long, default_value = "table")]
    format: Format,
    /// Folder for the charts [default: <results>/<sweep>/effects, or <results>/effects for several sweeps]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ExportArgs {
    #[command(flatten)]
    sweeps: SweepsArgs,
    /// csv or parquet [default: from the --out file's extension; csv on stdout]
    #[arg(long)]
    format: Option<TidyFormat>,
    /// The file to write [default: stdout, CSV only]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

impl From<ExportArgs> for export::ExportOptions {
    fn from(a: ExportArgs) -> Self {
        export::ExportOptions {
            results: a.sweeps.results,
            sweeps: a.sweeps.sweeps,
            format: a.format,
            out: a.out,
        }
    }
}

#[derive(Args, Debug)]
struct SummarizeArgs {
    #[command(flatten)]
    sweeps: SweepsArgs,
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
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// Variant labels as shown by `summarize` (a unique prefix is enough)
    a: String,
    b: String,
    /// Sweeps by name or folder [default: every sweep under --results]
    #[arg(long = "sweep")]
    sweeps: Vec<String>,
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
    #[command(flatten)]
    grouping: GroupingArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct CurvesArgs {
    #[command(flatten)]
    sweeps: SweepsArgs,
    #[command(flatten)]
    grouping: GroupingArgs,
    /// Folder for the charts [default: <results>/<sweep>/curves, or <results>/curves for several sweeps]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// svg, png or both
    #[arg(long, default_value = "both")]
    format: ChartFormat,
}

#[derive(Args, Debug)]
struct ReportArgs {
    #[command(flatten)]
    sweeps: SweepsArgs,
    #[command(flatten)]
    grouping: GroupingArgs,
    /// The HTML file to write
    #[arg(long, value_name = "FILE", default_value = "report.html")]
    out: PathBuf,
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
    /// Recurrent weights' init: pytorch, orthogonal (each gate block of W_hh), identity (IRNN:
    /// rnn only, W_hh = init_scale·I, zero biases) [default: pytorch]
    #[arg(long)]
    init: Option<InitScheme>,
    /// init identity: the scale of W_hh [default: 1]
    #[arg(long, allow_negative_numbers = true)]
    init_scale: Option<f64>,
    /// LSTM: the forget gate's initial bias (in bias_ih; its bias_hh slice starts at 0)
    #[arg(long, allow_negative_numbers = true)]
    forget_bias: Option<f64>,
    /// Dropout probability between stacked layers, in training (needs --layers ≥ 2)
    #[arg(long, allow_negative_numbers = true, value_name = "P")]
    dropout: Option<f64>,
    /// How an image is read: rows (28 steps of 28 pixels), columns, pixels (784 steps of one
    /// pixel) or permuted (784 pixels in a fixed random order) [default: rows]
    #[arg(long)]
    input: Option<InputMode>,
    /// --input permuted: the seed of the pixel order [default: 0]
    #[arg(long, value_name = "SEED")]
    permutation_seed: Option<u64>,
}

/// The optimizer and clipping settings beyond kind, lr and momentum (PyTorch's names).
#[derive(Args, Debug, Clone)]
struct OptimKnobArgs {
    /// SGD Nesterov momentum (needs --momentum > 0)
    #[arg(long)]
    nesterov: bool,
    /// L2 penalty: coupled for sgd/adam/rmsprop, decoupled for adamw [default: 0; adamw 0.01]
    #[arg(long, allow_negative_numbers = true)]
    weight_decay: Option<f64>,
    /// Adam/AdamW beta1 [default: 0.9]
    #[arg(long, allow_negative_numbers = true)]
    beta1: Option<f64>,
    /// Adam/AdamW beta2 [default: 0.999]
    #[arg(long, allow_negative_numbers = true)]
    beta2: Option<f64>,
    /// Adam/AdamW/RMSprop epsilon [default: 1e-8]
    #[arg(long, allow_negative_numbers = true)]
    eps: Option<f64>,
    /// RMSprop smoothing constant [default: 0.99]
    #[arg(long, allow_negative_numbers = true)]
    alpha: Option<f64>,
    /// Clip the total gradient 2-norm to this before every step (clip_grad_norm_)
    #[arg(long, allow_negative_numbers = true, value_name = "X")]
    clip_grad_norm: Option<f64>,
    /// Clamp every gradient value to ±X before every step (clip_grad_value_)
    #[arg(long, allow_negative_numbers = true, value_name = "X")]
    clip_grad_value: Option<f64>,
    /// Learning-rate schedule: constant, step (StepLR, per epoch) or cosine (CosineAnnealingLR
    /// over the run, per step) [default: constant]
    #[arg(long)]
    lr_schedule: Option<ScheduleKind>,
    /// Step schedule: epochs between decays
    #[arg(long, value_name = "EPOCHS")]
    step_size: Option<u64>,
    /// Step schedule: decay factor [default: 0.1]
    #[arg(long, allow_negative_numbers = true)]
    gamma: Option<f64>,
    /// Cosine schedule: the final learning rate [default: 0]
    #[arg(long, allow_negative_numbers = true)]
    eta_min: Option<f64>,
    /// Linear warmup over the first N steps (multiplies the schedule)
    #[arg(long, value_name = "N")]
    warmup: Option<u64>,
}

impl From<OptimKnobArgs> for OptimKnobs {
    fn from(a: OptimKnobArgs) -> Self {
        OptimKnobs {
            nesterov: a.nesterov,
            weight_decay: a.weight_decay,
            beta1: a.beta1,
            beta2: a.beta2,
            eps: a.eps,
            alpha: a.alpha,
            clip_grad_norm: a.clip_grad_norm,
            clip_grad_value: a.clip_grad_value,
            lr_schedule: a.lr_schedule,
            step_size: a.step_size,
            gamma: a.gamma,
            eta_min: a.eta_min,
            warmup: a.warmup,
        }
    }
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Start from a tutorial recipe (rnnimc, model_a, model_b, model_c, lstm_h20, lstm_h64); flags override it
    #[arg(long)]
    preset: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    /// Optimizer: sgd, adam, adamw or rmsprop (PyTorch semantics)
    #[arg(long)]
    optimizer: Option<OptimKind>,
    /// Learning rate [default: 0.1 for sgd, 0.001 for adam and adamw, 0.01 for rmsprop]
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// SGD momentum
    #[arg(long, allow_negative_numbers = true)]
    momentum: Option<f64>,
    #[command(flatten)]
    knobs: OptimKnobArgs,
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
    /// Flush subnormal floats to zero on the CPU, as torch.set_flush_denormal(True): much
    /// faster back-propagation through long sequences (pixels, permuted); off by default as in PyTorch
    #[arg(long)]
    flush_denormal: bool,
    /// Data set: mnist or fashion-mnist [default: mnist]
    #[arg(long)]
    dataset: Option<Dataset>,
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
    /// Data set the model reads: mnist or fashion-mnist [default: mnist]
    #[arg(long)]
    dataset: Option<Dataset>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

// `--dataset` of the data commands.
#[derive(Args, Debug)]
struct DatasetArg {
    /// Data set: mnist or fashion-mnist (each in its own folder, see --data-dir)
    #[arg(long, default_value = "mnist")]
    dataset: Dataset,
}

#[derive(Subcommand, Debug)]
enum DataCmd {
    /// Download a data set's missing files and verify all four (SHA-256)
    Fetch {
        #[command(flatten)]
        dataset: DatasetArg,
        /// Mirror base URL to try (repeatable) [default: $RNNSWEEP_MNIST_MIRRORS or
        /// $RNNSWEEP_FASHION_MNIST_MIRRORS, else the built-in mirrors]
        #[arg(long)]
        mirror: Vec<String>,
    },
    /// Check a data set's four files: checksums and structure
    Verify {
        #[command(flatten)]
        dataset: DatasetArg,
    },
    /// Print an image as its 28 rows (time steps) with its label (and class name)
    Show {
        #[command(flatten)]
        dataset: DatasetArg,
        /// Image index
        index: usize,
        /// From the training set instead of the test set
        #[arg(long)]
        train: bool,
        /// Show it as a network with this input reads it: rows, columns, pixels, permuted
        #[arg(long, default_value = "rows")]
        input: InputMode,
        /// --input permuted: the seed of the pixel order
        #[arg(long, default_value_t = 0, value_name = "SEED")]
        permutation_seed: u64,
    },
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Recipes to measure (repeatable) [default: all six]
    #[arg(long = "recipe")]
    recipes: Vec<String>,
    /// Read the images this way instead of the recipes' rows: columns, pixels, permuted
    #[arg(long)]
    input: Option<InputMode>,
    /// This hidden size instead of the recipes'
    #[arg(long)]
    hidden: Option<usize>,
    /// Flush subnormal floats to zero, as torch.set_flush_denormal(True) (the runs'
    /// `flush_denormal = true`)
    #[arg(long)]
    flush_denormal: bool,
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

impl SweepArgs {
    fn options(self, g: GlobalArgs) -> sweep::SweepOptions {
        sweep::SweepOptions {
            grid: self.grid,
            results: self.results,
            data_dir: g.data_dir,
            device: self.device,
            jobs: self.jobs,
            threads_per_job: self.threads_per_job,
            rerun_failed: self.rerun_failed,
            shard: self.shard,
            quiet: g.quiet,
        }
    }
}

impl From<PlanArgs> for sweep::PlanOptions {
    fn from(a: PlanArgs) -> Self {
        sweep::PlanOptions {
            grid: a.grid,
            results: a.results,
            json: a.json,
        }
    }
}

impl From<StatusArgs> for status::StatusOptions {
    fn from(a: StatusArgs) -> Self {
        status::StatusOptions {
            results: a.sweeps.results,
            sweeps: a.sweeps.sweeps,
            json: a.json,
        }
    }
}

impl SlurmArgs {
    fn options(self, g: GlobalArgs) -> slurm::SlurmOptions {
        slurm::SlurmOptions {
            grid: self.grid,
            results: self.results,
            data_dir: g.data_dir,
            tasks: self.tasks,
            array_parallelism: self.array_parallelism,
            time: self.time,
            partition: self.partition,
            cpus_per_task: self.cpus_per_task,
            gres: self.gres,
            signal_seconds: self.signal_seconds,
            rerun_failed: self.rerun_failed,
            out: self.out,
            quiet: g.quiet,
        }
    }
}

impl From<SummarizeArgs> for results::SummarizeOptions {
    fn from(a: SummarizeArgs) -> Self {
        results::SummarizeOptions {
            results: a.sweeps.results,
            sweeps: a.sweeps.sweeps,
            by: a.by,
            metric: a.metric,
            format: a.format,
            tables: a.table,
            out: a.out,
        }
    }
}

impl From<CompareArgs> for results::CompareOptions {
    fn from(a: CompareArgs) -> Self {
        results::CompareOptions {
            results: a.results,
            sweeps: a.sweeps,
            by: a.grouping.by,
            a: a.a,
            b: a.b,
            json: a.json,
        }
    }
}

impl From<CurvesArgs> for results::CurvesOptions {
    fn from(a: CurvesArgs) -> Self {
        results::CurvesOptions {
            results: a.sweeps.results,
            sweeps: a.sweeps.sweeps,
            by: a.grouping.by,
            out: a.out,
            format: a.format,
        }
    }
}

impl From<ReportArgs> for results::ReportOptions {
    fn from(a: ReportArgs) -> Self {
        results::ReportOptions {
            results: a.sweeps.results,
            sweeps: a.sweeps.sweeps,
            by: a.grouping.by,
            out: a.out,
        }
    }
}

impl From<EffectsArgs> for effects::EffectsOptions {
    fn from(a: EffectsArgs) -> Self {
        effects::EffectsOptions {
            results: a.sweeps.results,
            sweeps: a.sweeps.sweeps,
            axis: a.axis,
            metric: a.metric,
            target: a.target,
            format: a.format,
            out: a.out,
        }
    }
}

impl PredictArgs {
    fn options(self, g: GlobalArgs) -> predict::PredictOptions {
        predict::PredictOptions {
            run: self.run,
            n: self.n,
            json: self.json,
            data_dir: g.data_dir,
            quiet: g.quiet,
        }
    }
}

impl From<ModelArgs> for ModelOverrides {
    fn from(a: ModelArgs) -> Self {
        ModelOverrides {
            cell: a.cell,
            activation: a.activation,
            hidden: a.hidden,
            layers: a.layers,
            init: a.init,
            init_scale: a.init_scale,
            forget_bias: a.forget_bias,
            dropout: a.dropout,
            input: a.input,
            permutation_seed: a.permutation_seed,
        }
    }
}

impl TrainArgs {
    fn options(self, g: GlobalArgs) -> train::TrainOptions {
        train::TrainOptions {
            preset: self.preset,
            overrides: TrainOverrides {
                model: self.model.into(),
                optimizer: self.optimizer,
                lr: self.lr,
                momentum: self.momentum,
                knobs: self.knobs.into(),
                batch_size: self.batch,
                epochs: self.epochs,
                iterations: self.iterations,
                seed: self.seed,
                train_limit: self.train_limit,
                test_limit: self.test_limit,
                eval_every: self.eval_every,
                eval_before: self.eval_before,
                flush_denormal: self.flush_denormal,
                dataset: self.dataset,
            },
            device: self.device,
            threads: self.threads,
            data_dir: g.data_dir,
            out_dir: self.out,
            json: self.json,
            quiet: g.quiet,
        }
    }
}

impl From<DescribeArgs> for describe::DescribeOptions {
    fn from(a: DescribeArgs) -> Self {
        describe::DescribeOptions {
            preset: a.preset,
            model: a.model.into(),
            dataset: a.dataset,
            json: a.json,
        }
    }
}

impl DataCmd {
    fn options(self, g: GlobalArgs) -> data::DataOptions {
        let (dataset, action) = match self {
            DataCmd::Fetch { dataset, mirror } => {
                (dataset, data::DataAction::Fetch { mirrors: mirror })
            }
            DataCmd::Verify { dataset } => (dataset, data::DataAction::Verify),
            DataCmd::Show {
                dataset,
                index,
                train,
                input,
                permutation_seed,
            } => (
                dataset,
                data::DataAction::Show {
                    index,
                    train,
                    input,
                    permutation_seed,
                },
            ),
        };
        data::DataOptions {
            data_dir: g.data_dir,
            dataset: dataset.dataset,
            quiet: g.quiet,
            action,
        }
    }
}

impl BenchArgs {
    fn options(self, g: GlobalArgs) -> bench::BenchOptions {
        bench::BenchOptions {
            recipes: self.recipes,
            warmup: self.warmup,
            steps: self.steps,
            repeats: self.repeats,
            threads: self.threads,
            json: self.json,
            report: self.report,
            save: self.save,
            compare: self.compare,
            input: self.input,
            hidden: self.hidden,
            flush_denormal: self.flush_denormal,
            data_dir: g.data_dir,
            quiet: g.quiet,
        }
    }
}

/// Runs the parsed command line: its options, handed to the command.
pub fn run(cli: Cli, stop: &AtomicBool) -> anyhow::Result<Outcome> {
    let g = cli.global;
    match cli.command {
        Command::Sweep(a) => sweep::sweep_cmd(&a.options(g), stop),
        Command::Plan(a) => sweep::plan_cmd(&a.into()),
        Command::Train(a) => train::train_cmd(&a.options(g), stop),
        Command::Predict(a) => predict::predict_cmd(&a.options(g)),
        Command::Results(ResultsCmd::Summarize(a)) => results::summarize_cmd(&a.into()),
        Command::Results(ResultsCmd::Compare(a)) => results::compare_cmd(&a.into()),
        Command::Results(ResultsCmd::Curves(a)) => results::curves_cmd(&a.into()),
        Command::Results(ResultsCmd::Report(a)) => results::report_cmd(&a.into()),
        Command::Results(ResultsCmd::Effects(a)) => effects::effects_cmd(&a.into()),
        Command::Results(ResultsCmd::Export(a)) => export::export_cmd(&a.into()),
        Command::Describe(a) => describe::describe_cmd(&a.into()),
        Command::Data(a) => data::data_cmd(&a.options(g)),
        Command::Bench(a) => bench::bench_cmd(&a.options(g)),
        Command::Status(a) => status::status_cmd(&a.into()),
        Command::Slurm(a) => slurm::slurm_cmd(&a.options(g)),
    }
}
