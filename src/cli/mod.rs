//! The command line, the only module that sees clap: the flags of every command (clap derive;
//! the setting flags of `train` and `describe` are generated from the table of keys, in
//! `settings`), turned into each command's plain options struct in `rnnsweep::commands` by
//! `options::flags!` (fields of the same name, each written once), and the dispatch to the
//! command's entry function. The commands resolve the
//! other defaults, check the values, read the files, and print.

mod options;
mod settings;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::{Args, Parser, Subcommand};

use options::{flags, word, Globals};
use rnnsweep::cluster::Shard;
use rnnsweep::commands::{
    bench, data, describe, effects, export, keys as keys_cmd, predict, results, slurm, status,
    sweep, train, Outcome,
};
use rnnsweep::grid::prune::{Halving, RungMetric};
use rnnsweep::report::chart::ChartFormat;
use rnnsweep::report::effects::EffectMetric;
use rnnsweep::report::export::tidy::TidyFormat;
use rnnsweep::report::export::{Format, Tables};
use rnnsweep::report::summarize::Metric;
use rnnsweep::trainer::backend::device::DeviceRequest;
use rnnsweep::trainer::backend::TrainerChoice;
use rnnsweep::trainer::config::{Dataset, InputMode};
use settings::SettingArgs;

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
    /// The trainer: real, or fake:RULES for tests (see src/trainer/backend/fake.rs) [default: fake
    /// with the rules of $RNNSWEEP_FAKE_TRAINER when set, else real]
    #[arg(long, global = true, hide = true, value_parser = TrainerChoice::parse)]
    trainer: Option<TrainerChoice>,
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
    /// The settings a grid, `train` and `describe` accept: values, defaults, what each applies to
    Keys {
        /// Print JSON instead of the Markdown table
        #[arg(long)]
        json: bool,
    },
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

// `compare`'s sweeps.
#[derive(Args, Debug)]
struct CompareSweepsArgs {
    /// Sweeps by name or folder [default: every sweep under --results]
    #[arg(long = "sweep")]
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

flags! {
    struct StatusArgs => status::StatusOptions {
        #[command(flatten)]
        sweeps: SweepsArgs,
        #[arg(long)]
        json: bool,
    }
}

flags! {
    struct SlurmArgs => slurm::SlurmOptions {
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
        /// Keep each finished cell's mid-run checkpoints (by default they are removed)
        #[arg(long)]
        keep_checkpoints: bool,
        /// Where to write the script [default: <results>/<sweep>/slurm/sweep.sbatch]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    } globals(data_dir, quiet, trainer)
}

flags! {
    struct SweepArgs => sweep::SweepOptions {
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
        /// Keep each finished cell's mid-run checkpoints (by default they are removed)
        #[arg(long)]
        keep_checkpoints: bool,
        /// auto, cpu or cuda (gpu)
        #[arg(long, default_value = "auto", value_parser = word::<DeviceRequest>)]
        device: DeviceRequest,
        /// Run only cells whose index ≡ I (mod N), 0 <= I < N [default: from SLURM_ARRAY_TASK_ID
        /// and SLURM_ARRAY_TASK_COUNT (or _MIN/_MAX) when set, else every cell]
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
    } globals(data_dir, quiet, trainer)
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
    /// The pruning audit: on a sweep trained without pruning, replay successive halving (ASHA
    /// or SHA) from the stored curves: which configurations each rung would have kept, whether
    /// the full grid's best survives, and the compute it would have used
    PruneReplay(PruneReplayArgs),
}

flags! {
    struct EffectsArgs => effects::EffectsOptions {
        #[command(flatten)]
        sweeps: SweepsArgs,
        /// Only this setting: a grid axis as written in the grid, `variant` or `sweep` [default:
        /// every one with at least two values]
        #[arg(long, value_name = "NAME")]
        axis: Option<String>,
        /// final_test_acc, best_test_acc, samples_per_sec or time_to_target
        #[arg(long, default_value = "final_test_acc", value_parser = word::<EffectMetric>)]
        metric: EffectMetric,
        /// Test accuracy to reach, for --metric time_to_target [default: 0.9]
        #[arg(long, value_name = "ACC")]
        target: Option<f64>,
        /// table, markdown, csv or json
        #[arg(long, default_value = "table", value_parser = word::<Format>)]
        format: Format,
        /// Folder for the charts [default: <results>/<sweep>/effects, or <results>/effects for several sweeps]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    }
}

flags! {
    struct ExportArgs => export::ExportOptions {
        #[command(flatten)]
        sweeps: SweepsArgs,
        /// csv or parquet [default: from the --out file's extension; csv on stdout]
        #[arg(long, value_parser = word::<TidyFormat>)]
        format: Option<TidyFormat>,
        /// The file to write [default: stdout, CSV only]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    }
}

flags! {
    struct PruneReplayArgs => results::PruneReplayOptions {
        #[command(flatten)]
        sweeps: SweepsArgs,
        /// asha or sha
        #[arg(long, default_value = "asha", value_parser = word::<Halving>)]
        method: Halving,
        /// The first rung, in the budget's unit (epochs, or steps for an `iterations` budget)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        min_resource: u64,
        /// η: one configuration in η goes on at each rung
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(2..=100))]
        reduction_factor: u64,
        /// test_acc or test_loss
        #[arg(long, default_value = "test_acc", value_parser = word::<RungMetric>)]
        metric: RungMetric,
        #[arg(long)]
        json: bool,
    }
}

flags! {
    struct SummarizeArgs => results::SummarizeOptions {
        #[command(flatten)]
        sweeps: SweepsArgs,
        /// Group by these columns (comma-separated), e.g. `cell,hidden` [default: sweep, variant, grid axes]
        #[arg(long, value_delimiter = ',')]
        by: Option<Vec<String>>,
        /// Metric of the curve table: test_acc, test_loss, train_acc, train_loss
        #[arg(long, default_value = "test_acc", value_parser = word::<Metric>)]
        metric: Metric,
        /// table, markdown, csv or json
        #[arg(long, default_value = "table", value_parser = word::<Format>)]
        format: Format,
        /// summary, curves or both [default: both; summary for csv]
        #[arg(long = "table", value_parser = word::<Tables>)]
        tables: Option<Tables>,
        /// Write to this file instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    }
}

flags! {
    struct CompareArgs => results::CompareOptions {
        /// Variant labels as shown by `summarize` (a unique prefix is enough)
        a: String,
        b: String,
        #[command(flatten)]
        sweeps: CompareSweepsArgs,
        #[command(flatten)]
        by: GroupingArgs,
        #[arg(long)]
        json: bool,
    }
}

flags! {
    struct CurvesArgs => results::CurvesOptions {
        #[command(flatten)]
        sweeps: SweepsArgs,
        #[command(flatten)]
        by: GroupingArgs,
        /// Folder for the charts [default: <results>/<sweep>/curves, or <results>/curves for several sweeps]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// svg, png or both
        #[arg(long, default_value = "both", value_parser = word::<ChartFormat>)]
        format: ChartFormat,
    }
}

flags! {
    struct ReportArgs => results::ReportOptions {
        #[command(flatten)]
        sweeps: SweepsArgs,
        #[command(flatten)]
        by: GroupingArgs,
        /// The HTML file to write
        #[arg(long, value_name = "FILE", default_value = "report.html")]
        out: PathBuf,
    }
}

flags! {
    struct PredictArgs => predict::PredictOptions {
        /// A run folder: results/<sweep>/runs/<cell id> or a `train` output folder
        run: PathBuf,
        /// How many test images, from the first
        #[arg(long, short, default_value_t = 10)]
        n: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    } globals(data_dir, quiet)
}

flags! {
    struct PlanArgs => sweep::PlanOptions {
        /// The grid file (TOML)
        grid: PathBuf,
        /// Results root, to show which cells are done
        #[arg(long, default_value = "results", value_name = "DIR")]
        results: PathBuf,
        /// Print JSON (every cell with its full config)
        #[arg(long)]
        json: bool,
        /// Measure this machine's speed again for the estimates (they are measured once per
        /// machine and build and kept in the cache folder's speed.json)
        #[arg(long)]
        remeasure: bool,
    } globals(data_dir)
}

flags! {
    struct TrainArgs => train::TrainOptions {
        /// Start from a tutorial recipe (rnnimc, model_a, model_b, model_c, lstm_h20, lstm_h64); flags override it
        #[arg(long)]
        preset: Option<String>,
        /// Seed for initialisation and shuffling [default: the recipe's, else 0]
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        settings: SettingArgs<false>,
        /// auto (CUDA if built with it and a GPU answers, else CPU), cpu or cuda
        #[arg(long, default_value = "auto", value_parser = word::<DeviceRequest>)]
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
    } globals(data_dir, quiet, trainer)
}

flags! {
    struct DescribeArgs => describe::DescribeOptions {
        /// Describe a tutorial recipe's model
        #[arg(long, conflicts_with = "run")]
        preset: Option<String>,
        #[command(flatten)]
        settings: SettingArgs<true>,
        /// Describe a finished run's model: a run folder with config.json (results/<sweep>/runs/<cell id> or a `train` output folder)
        #[arg(long, value_name = "DIR")]
        run: Option<PathBuf>,
        /// Also draw the network (blocks, tensor shapes, parameters) as an SVG file
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Also draw the network as a PNG file
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    }
}

// `--dataset` of the data commands.
#[derive(Args, Debug)]
struct DatasetArg {
    /// Data set: mnist or fashion-mnist (each in its own folder, see --data-dir)
    #[arg(long, default_value = "mnist", value_parser = word::<Dataset>)]
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
        #[arg(long, default_value = "rows", value_parser = word::<InputMode>)]
        input: InputMode,
        /// --input permuted: the seed of the pixel order
        #[arg(long, default_value_t = 0, value_name = "SEED")]
        permutation_seed: u64,
    },
}

flags! {
    struct BenchArgs => bench::BenchOptions {
        /// Recipes to measure (repeatable) [default: all six]
        #[arg(long = "recipe")]
        recipes: Vec<String>,
        /// Read the images this way instead of the recipes' rows: columns, pixels, permuted
        #[arg(long, value_parser = word::<InputMode>)]
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
        /// Instead of training: print, as JSON, what bench/pytorch/bench.py needs to time the
        /// same recipes in PyTorch (`just bench-vs-pytorch` runs both)
        #[arg(long)]
        pytorch_spec: bool,
        /// Show PyTorch's figures measured by bench/pytorch/bench.py (its output FILE) beside
        /// this program's, instead of the reference figures
        #[arg(long, value_name = "FILE")]
        pytorch: Option<PathBuf>,
    } globals(data_dir, quiet)
}

/// Runs the parsed command line: its options, handed to the command.
pub fn run(cli: Cli, stop: &AtomicBool) -> anyhow::Result<Outcome> {
    let g = &cli.global.resolve()?;
    match cli.command {
        Command::Sweep(a) => sweep::sweep_cmd(&a.options(g), stop),
        Command::Plan(a) => sweep::plan_cmd(&a.options(g)),
        Command::Train(a) => train::train_cmd(&a.options(g), stop),
        Command::Predict(a) => predict::predict_cmd(&a.options(g)),
        Command::Results(ResultsCmd::Summarize(a)) => results::summarize_cmd(&a.options(g)),
        Command::Results(ResultsCmd::Compare(a)) => results::compare_cmd(&a.options(g)),
        Command::Results(ResultsCmd::Curves(a)) => results::curves_cmd(&a.options(g)),
        Command::Results(ResultsCmd::Report(a)) => results::report_cmd(&a.options(g)),
        Command::Results(ResultsCmd::Effects(a)) => effects::effects_cmd(&a.options(g)),
        Command::Results(ResultsCmd::Export(a)) => export::export_cmd(&a.options(g)),
        Command::Results(ResultsCmd::PruneReplay(a)) => results::prune_replay_cmd(&a.options(g)),
        Command::Describe(a) => describe::describe_cmd(&a.options(g)),
        Command::Keys { json } => keys_cmd::keys_cmd(json),
        Command::Data(a) => data::data_cmd(&a.options(g)),
        Command::Bench(a) => bench::bench_cmd(&a.options(g)),
        Command::Status(a) => status::status_cmd(&a.options(g)),
        Command::Slurm(a) => slurm::slurm_cmd(&a.options(g)),
    }
}
