//! The `medsim` command: parses arguments into a validated plan, runs it, and
//! maps library errors to exit codes (0 success, 1 internal error, 2 bad
//! input, options or output location).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use medsim::data::synthetic::{SyntheticParams, generate};
use medsim::data::table::write_csv;
use medsim::error::{Error, Result};
use medsim::output::files::write_file;
use medsim::output::manifest::{Manifest, resolve_inputs, run_folder};
use medsim::output::report::render;
use medsim::output::scale::{Mode, Scale, results_config};
use medsim::resample::checkpoint::Shard;
use medsim::study::config::{self, Config, Origin};
use medsim::study::run::execute_timed;

/// Whether what goes to standard output is data (`--json`), which must
/// arrive whole: a reader that stops early then fails the command.
static STDOUT_IS_DATA: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A failed write to standard output: a reader that stopped early
/// (`medsim run | head`) ends a printed table quietly, with success; output
/// that is data (`--json`) cut short, or any other failure (a full disk),
/// is an error, exit 2.
fn stdout_failed(e: std::io::Error) -> ! {
    let data = STDOUT_IS_DATA.load(std::sync::atomic::Ordering::Relaxed);
    if e.kind() == std::io::ErrorKind::BrokenPipe && !data {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output ({e}); what was printed is incomplete");
    std::process::exit(2);
}

/// Print to standard output (see [`stdout_failed`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            stdout_failed(e);
        }
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {{ out!($($arg)*); out!("\n"); }};
}

#[derive(Parser)]
#[command(
    name = "medsim",
    version,
    about = "Panel-data mediation with fixed effects and cluster-robust inference, built for massive resampling",
    long_about = "medsim fits the three-equation mediation model (total, mediator, outcome) on a \
unit-by-period panel with unit or unit + period fixed effects, reports the indirect effect a*b, \
the direct effect c', the proportion mediated and whether the mediator suppresses (masks) the \
direct effect, with CR1 cluster-robust standard errors as fixest computes them.\n\n\
With no data it runs on a synthetic panel calibrated to a study of 278 Chinese cities, \
2011-2020 (digital economy -> industrial agglomeration -> carbon intensity).",
    after_help = "Examples:\n  medsim run                          the embedded default, printed as a table\n  \
medsim generate --out panel.csv     write the default synthetic panel\n  \
medsim run --data panel.csv         fit the same model on the file\n  \
medsim run configs/heterogeneity.toml   a run described by a config file\n  \
medsim sweep configs/robustness.toml    many runs from one config\n  \
medsim simulate configs/power_iid.toml  a simulation study of every method\n  \
medsim bench --quick                every engine of this machine, timed\n  \
medsim run --help                   every option of a run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit the mediation model and report effects, SEs, p-values and intervals.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// The sensitivity of the indirect effect to mediator-outcome
    /// confounding (Imai, Keele and Yamamoto 2010): ACME over a grid of rho
    /// with resampling bands, for the pooled model and each group.
    #[command(after_help = SENSITIVITY_EXAMPLES)]
    Sensitivity(RunArgs),
    /// Run every point of a config's [sweep] table back to back: sweep.csv
    /// and each point's summary.
    #[command(after_help = SWEEP_EXAMPLES)]
    Sweep(RunArgs),
    /// A simulation study: many datasets from a known process, each analysed
    /// with every method; rejection rates (power or Type I error), coverage,
    /// interval widths.
    #[command(after_help = SIMULATE_EXAMPLES)]
    Simulate(SimulateArgs),
    /// Benchmark every engine of this machine (and a refit-per-replicate
    /// baseline) on a fixed suite: replicates per second and GFLOP/s.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Write the study-calibrated synthetic panel as CSV.
    #[command(after_help = GENERATE_EXAMPLES)]
    Generate(GenerateArgs),
    /// Combine the parts of a run split with --shard I/N into its results,
    /// the same as the unsplit run's, bit for bit.
    #[command(after_help = MERGE_EXAMPLES)]
    Merge(MergeArgs),
    /// List the GPU adapters wgpu finds, best first, with the limits that size batches.
    #[command(
        after_help = "Examples:\n  medsim devices\n  WGPU_BACKEND=vulkan medsim devices\n\n\
Software adapters (type Cpu, e.g. Mesa's lavapipe) run the GPU stages for testing;\n\
they are slower than medsim's CPU engine."
    )]
    Devices,
}

const RUN_EXAMPLES: &str = "Examples:
  medsim run
      The embedded default: 278 synthetic cities x 10 years, dei -> agglom -> log_ci,
      six controls, city and year effects, SEs clustered by city; the model of
      each region and size class and their contrasts; the model with secondary
      and tertiary agglomeration in parallel.
  medsim run --data panel.csv --unit city --time year --outcome log_ci \\
             --treatment dei --mediator agglom --controls ln_gdp,industry,fdi
  medsim run --mediator agglom_sec,agglom_ter      two parallel mediators, and their contrast
  medsim run --instrument iv_post1984              dei instrumented (2SLS in every equation)
  medsim run --data panel.csv --group region       a model per region, and the differences
  medsim run --data panel.csv --also-mediators agglom_sec,agglom_ter
      the model again with the two components in parallel, same replicates
  medsim run --data panel.csv --cluster province --fixed-effects unit
  medsim run --json > summary.json                 the summary as JSON on stdout
  medsim run -B 100000 --ci percentile,bca,studentized --level 0.9,0.95
  medsim run --scheme wild --weights webb -B 99999  wild bootstrap, WCR p-values
  medsim run --scheme permutation -B 9999           placebo (randomization) test

With --data and no config file, the unit, time, cluster, outcome, treatment and
mediator columns default to the synthetic panel's names (city, year, city,
log_ci, dei, agglom); there are no controls, groups or other mediator sets
unless --controls, --group or --also-mediators name them. Rows with a missing
value (empty, NA, NaN, .) in a used column are dropped and counted; units left
with one observation are dropped. Periods are numbers (2011 and 2011.0 are one).
Results go to results/<name>/ (--out DIR): a new or empty folder, or one medsim
wrote before, whose own files are replaced at the end of the run; a folder
holding other files is refused, and so is one another run is writing.
Exit codes: 0 success, 2 bad input or options (nothing is written), 1 internal error.";

const SENSITIVITY_EXAMPLES: &str = "Examples:
  medsim sensitivity                         the embedded default, rho from -0.9 to 0.9 by 0.05
  medsim sensitivity configs/sensitivity.toml
  medsim run configs/sensitivity.toml        the same: a [sensitivity] section asks for it

The same run as `medsim run` (every flag applies), with a [sensitivity] section
added when the config has none: rho = { from = -0.9, to = 0.9, step = 0.05 }.
With one mediator, ACME(rho) = a (b - rho kappa / sqrt(1 - rho^2)), kappa the
ratio of the outcome and mediator residual SDs: a*b at rho = 0, zero at the
residual correlation. Bands come from the run's replicates (pairs, bayes,
poisson, jackknife). Writes summary.json (\"sensitivity\") and sensitivity.csv.";

const SWEEP_EXAMPLES: &str = "Examples:
  medsim sweep configs/robustness.toml
  medsim sweep configs/sweep_effect_size.toml -B 999 --backend cpu

A [sweep] table maps config keys to lists of values:
  [sweep]
  combine = \"grid\"                                 # or \"zip\"
  \"model.controls\" = [[\"ln_gdp\"], [\"ln_gdp\", \"fdi\"]]
  \"data.synthetic.cities\" = [100, 278, 1000]
Every point is checked before the first runs. Flags apply to every point and
may not set a swept key. Writes results/<name>/sweep.csv (one row per point x
model x effect x interval) and results/<name>/points/NNN/summary.json.";

const SIMULATE_EXAMPLES: &str = "Examples:
  medsim simulate configs/power_iid.toml          power of every method on the classic iid model
  medsim simulate configs/coverage_panel.toml     coverage on the calibrated panel
  medsim simulate configs/power_iid.toml --datasets 200 --replicates 500

A [simulation] section says the data-generating process (dgp = \"iid\": X ~ N(0,1),
M = a X + e, Y = c' X + b M + e; or \"panel\": the calibrated synthetic panel with
n cities), n, a, b, c_prime (each a number or a list: a grid), datasets,
replicates, methods (sobel, joint, monte_carlo, percentile, basic, normal, bc,
bca, studentized), scheme, level (a number or a list), seed. Writes
results/<name>/simulation.json and simulation.csv (per cell, level and method:
rejection rate and its Monte Carlo SE, coverage, misses left and right, mean
width). On a GPU the datasets' bootstraps run stacked, many datasets per batch.";

const MERGE_EXAMPLES: &str = "Examples:
  medsim run big.toml --shard 0/4     (and 1/4, 2/4, 3/4, on four machines)
  medsim merge results/big-shards     results/big, as `medsim run big.toml` writes it

Each part runs the same command with its own --shard I/N (0-based) and stores
replicates I*B/N .. (I+1)*B/N of every resampling in RESULTS-shards/III-of-NNN
(sweeps: of every point; simulations: datasets of every cell). The merge runs
the command again, reading those replicates instead of computing them (the
BCa jackknife, the restricted wild tests and the plots' draws are computed
by the merge). It refuses parts from another config, seed, data file or medsim
version, parts that ran on different engines, a part given twice, a missing
part and a part that did not finish. See the README's Running at scale.";

const BENCH_EXAMPLES: &str = "Examples:
  medsim bench --quick          the reduced suite (under a minute on the CPU engine)
  medsim bench                  the full suite: B up to 1e6, clusters up to 5000
  medsim bench --cpu-only --json

Workloads: the pairs bootstrap of the default problem (278 cities x 10 years, six
controls, city and year effects), two mediators, wild, permutation, the
sensitivity grid, a whole run with region groups and contrasts, scaling in B,
clusters, periods and controls, and an iid simulation study; on the CPU engine,
every GPU adapter wgpu lists (software ones run a hundredth of the replicates), and
the refit baseline (each replicate's panel rebuilt and refitted). Each workload
warms up, then repeats; the median and range of replicates/s are reported.
Writes results/bench/<machine>.json and rewrites results/BENCHMARKS.md from every
JSON file there.";

const GENERATE_EXAMPLES: &str = "Examples:
  medsim generate --out panel.csv
  medsim generate --out big.csv --cities 2000 --years 20 --seed 7

Columns: city, year, province, region (east/central/west), size (large/small-medium),
dei (digital-economy index), agglom (overall agglomeration = mean of agglom_sec and
agglom_ter), log_ci (log carbon intensity) and six controls. The true parameters are
documented in the README and in `medsim::data::synthetic`.";

#[derive(Args)]
struct RunArgs {
    /// A config file (TOML) describing the run [default: the embedded
    /// configs/paper.toml]. Flags override its values; each flag's config
    /// key is given in brackets.
    #[arg(value_name = "CONFIG.toml")]
    config: Option<PathBuf>,
    /// Run again what a run folder's manifest.json records: its config
    /// (flags still override, e.g. --out), after checking that its input
    /// files are unchanged; summary.json comes out byte for byte the same.
    #[arg(long, value_name = "manifest.json", conflicts_with = "config")]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    flags: RunFlags,
    #[command(flatten)]
    scale: ScaleFlags,
}

/// Checkpoints and shards, flags of run, sensitivity, sweep and simulate.
#[derive(Args, Default, Clone)]
struct ScaleFlags {
    /// Seconds between checkpoints of the replicates computed so far, into
    /// RESULTS/checkpoint (removed when the run finishes; a run shorter than
    /// this writes none); 0 for none [default: 60].
    #[arg(long, value_name = "SECONDS")]
    checkpoint_every: Option<f64>,
    /// Continue the killed run whose results folder is DIR, from its
    /// checkpoint (DIR/checkpoint keeps its command line): the results are
    /// those of an uninterrupted run, bit for bit. Only --quiet, --threads
    /// and --checkpoint-every may be added.
    #[arg(long, value_name = "DIR", conflicts_with = "shard")]
    resume: Option<PathBuf>,
    /// Compute only part I of N (0-based) of every resampling's replicates
    /// (a sweep: of each point's; a simulation study: of each cell's
    /// datasets) into RESULTS-shards/III-of-NNN; run again, a killed part
    /// continues. `medsim merge RESULTS-shards` makes the results.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
}

impl ScaleFlags {
    /// The scale of a command run from the command line.
    fn scale(&self) -> Result<Scale> {
        let every = self
            .checkpoint_every
            .unwrap_or(medsim::output::scale::DEFAULT_EVERY);
        if !every.is_finite() || every < 0.0 {
            return Err(Error::InvalidOption {
                option: "--checkpoint-every".into(),
                message: format!("{every}: give seconds, 0 or more (0: no checkpoints)"),
            });
        }
        let mode = match &self.shard {
            Some(s) => Mode::Shard(Shard::parse(s)?),
            None => Mode::Checkpoint { keep: false },
        };
        Ok(Scale {
            mode,
            every: Duration::from_secs_f64(every),
            resumes: None,
        })
    }
}

/// The flags of a run, each overriding one config key. None: the config's value.
#[derive(Args, Default, Clone, PartialEq)]
struct RunFlags {
    /// CSV file with one row per unit and period (default: the embedded
    /// synthetic panel) [data.csv]. Without a config file, a --data run has
    /// no groups or other mediator sets unless asked, and is named after the file.
    #[arg(long, value_name = "FILE.csv")]
    data: Option<PathBuf>,
    /// Unit column (cities); the unit fixed effects and default clusters
    /// [data.unit; default city].
    #[arg(long)]
    unit: Option<String>,
    /// Time-period column [data.time; default year].
    #[arg(long)]
    time: Option<String>,
    /// Outcome column (Y) [model.outcome; default log_ci].
    #[arg(long)]
    outcome: Option<String>,
    /// Treatment column (X) [model.treatment; default dei].
    #[arg(long)]
    treatment: Option<String>,
    /// Mediator column(s) (M), comma-separated for parallel mediators
    /// [model.mediators; default agglom].
    #[arg(long)]
    mediator: Option<String>,
    /// Control columns, comma-separated; an empty string for none
    /// [model.controls; default the synthetic panel's six controls, none
    /// with --data and no config file].
    #[arg(long)]
    controls: Option<String>,
    /// Excluded instrument(s) of the treatment, comma-separated: every
    /// equation is fitted by two-stage least squares (the treatment
    /// instrumented, controls, fixed effects and mediators instrumenting
    /// themselves), with the cluster-robust first-stage F in "iv"
    /// [model.instrument; default none, least squares].
    #[arg(long, value_name = "COL")]
    instrument: Option<String>,
    /// Categorical columns whose groups of clusters (e.g. region, size class)
    /// each get their own model, fitted on the group's rows and resampled with
    /// the pooled run's weights, reported under "groups" as COL=LEVEL, with the
    /// contrasts between groups; '' for none [model.groups; default
    /// region,size for the embedded panel].
    #[arg(long, value_name = "COL")]
    group: Option<String>,
    /// Also fit the model with this set of mediators in parallel
    /// (comma-separated; repeat the option for several sets; '' for none),
    /// on the same sample and with the same replicates: specific indirect
    /// effects and their contrasts under "mediator_models"
    /// [model.also_mediators; default agglom_sec,agglom_ter for the
    /// embedded panel, as the study splits agglomeration].
    #[arg(long, value_name = "COLS")]
    also_mediators: Vec<String>,
    /// Cluster column for the standard errors [model.cluster; default the unit column].
    #[arg(long)]
    cluster: Option<String>,
    /// Fixed effects: none, unit or unit+time [model.fixed_effects; default unit+time].
    #[arg(long, value_name = "FE")]
    fixed_effects: Option<String>,
    /// Confidence level(s) of the intervals, comma-separated, each in (0, 1)
    /// [inference.levels; default 0.95].
    #[arg(long, value_delimiter = ',')]
    level: Vec<f64>,
    /// Draws of the Monte Carlo interval of the indirect effect
    /// [inference.mc_draws; default 100000].
    #[arg(long)]
    mc_draws: Option<u64>,
    /// Seed of every random draw (results are a pure function of it)
    /// [resampling.seed; default 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Name of the run [name; default "paper" for the embedded panel, else the file's stem].
    #[arg(long)]
    name: Option<String>,
    /// Folder for the results [output.dir; default results/<name>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print summary.json to stdout instead of the table [output.json].
    #[arg(long)]
    json: bool,
    /// Leave out the SVG pictures (bootstrap distribution, groups' forest
    /// plot, sensitivity curve, sweep axes) [output.plots = false].
    #[arg(long)]
    no_plots: bool,
    /// Also write the main model's replicate statistics: replicates.csv (B
    /// up to 1e6), else replicates.bin (little-endian f64) with
    /// replicates_columns.txt [output.save_replicates].
    #[arg(long)]
    save_replicates: bool,
    /// Resampling scheme: pairs (cluster bootstrap), bayes (Dirichlet weights),
    /// poisson (Poisson(1) weights), jackknife (delete one cluster), wild
    /// (wild cluster bootstrap), permutation (treatment series permuted across
    /// units: placebo p-values), or none [resampling.scheme; default pairs].
    #[arg(long)]
    scheme: Option<String>,
    /// Number of bootstrap replicates B [resampling.replicates; default 10000].
    #[arg(short = 'B', long = "replicates")]
    replicates: Option<u64>,
    /// Bootstrap interval methods, comma-separated: percentile, basic, normal, bc,
    /// bca, studentized (indirect effects, with each replicate's own CR1 SE)
    /// [inference.methods; default percentile,bca].
    #[arg(long, value_delimiter = ',')]
    ci: Vec<String>,
    /// Wild-bootstrap weights: rademacher, mammen, webb or normal
    /// [resampling.weights; default rademacher].
    #[arg(long)]
    weights: Option<String>,
    /// Resample clusters within the groups of this column (stratified
    /// bootstrap) [resampling.strata].
    #[arg(long, value_name = "COL")]
    strata: Option<String>,
    /// Replicates per CPU batch (one matrix multiply each); results do not
    /// depend on it [resampling.batch; default 256].
    #[arg(long)]
    batch: Option<u64>,
    /// Engine: auto (a hardware GPU when there is one and it runs the scheme,
    /// else the CPU), gpu (fail if it cannot), or cpu. Software adapters such
    /// as lavapipe are only used when asked for [resampling.backend; default auto].
    #[arg(long)]
    backend: Option<String>,
    /// GPU adapter: the best one whose name contains this (see `medsim devices`);
    /// implies the GPU. wgpu's WGPU_BACKEND etc. also apply [resampling.adapter].
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
    /// Precision of the GPU stages: f32 (default; within 1e-4 bootstrap SDs of
    /// the f64 CPU engine) or f64 (adapters with SHADER_F64) [resampling.precision].
    #[arg(long, value_name = "f32|f64")]
    precision: Option<String>,
    /// Largest GPU batch in replicates (0: from the adapter's limits); results
    /// do not depend on it [resampling.gpu_batch; default 0].
    #[arg(long, value_name = "N")]
    gpu_batch: Option<u64>,
    /// Worker threads (0: one per core); results do not depend on it
    /// [resampling.threads; default 0].
    #[arg(long)]
    threads: Option<u64>,
    /// With --scheme wild, skip the restricted (null-imposed) bootstrap-t tests
    /// of a, b, c, c'; their p-values then come from the unrestricted draws
    /// [resampling.wild_tests = false].
    #[arg(long)]
    no_wild_tests: bool,
    /// Memory (MiB) for keeping replicate statistics; beyond it exact quantiles
    /// are found by streaming: a second pass replays the replicates
    /// [resampling.memory_mib; default 1024].
    #[arg(long, value_name = "MIB")]
    memory: Option<u64>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
struct SimulateArgs {
    /// The config file with a [simulation] section.
    #[arg(value_name = "CONFIG.toml", required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Datasets per cell [simulation.datasets].
    #[arg(long)]
    datasets: Option<u64>,
    /// Bootstrap replicates per dataset [simulation.replicates].
    #[arg(short = 'B', long)]
    replicates: Option<u64>,
    /// Worker threads, datasets in parallel (0: one per core) [resampling.threads].
    #[arg(long)]
    threads: Option<u64>,
    /// Engine of each dataset's resampling: auto, gpu or cpu [resampling.backend].
    #[arg(long)]
    backend: Option<String>,
    /// Precision of the GPU stages: f32 or f64 [resampling.precision].
    #[arg(long, value_name = "f32|f64")]
    precision: Option<String>,
    /// Folder for the results [output.dir; default results/<name>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Leave out power.svg [output.plots = false].
    #[arg(long)]
    no_plots: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    scale: ScaleFlags,
}

#[derive(Args)]
struct MergeArgs {
    /// The shard folders (RESULTS-shards/III-of-NNN), or folders holding
    /// them (RESULTS-shards).
    #[arg(value_name = "DIR", required = true)]
    dirs: Vec<PathBuf>,
    /// Folder for the results [default: the run's own, RESULTS].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Worker threads of the merge (0: one per core) [default: the run's].
    #[arg(long)]
    threads: Option<u64>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// The reduced suite.
    #[arg(long)]
    quick: bool,
    /// The CPU engine and the refit baseline only.
    #[arg(long)]
    cpu_only: bool,
    /// Print the results as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Folder for bench/<machine>.json and BENCHMARKS.md [default: results].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct GenerateArgs {
    /// Where to write the CSV (a new file; an existing one only with --force).
    #[arg(long, value_name = "FILE.csv")]
    out: PathBuf,
    /// Replace FILE.csv if it exists (only a regular file, never a folder,
    /// device or pipe).
    #[arg(long)]
    force: bool,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of cities (units).
    #[arg(long, default_value_t = 278)]
    cities: usize,
    /// Number of years (periods), starting in 2011.
    #[arg(long, default_value_t = 10)]
    years: usize,
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// The config a run starts from: the file named, else the embedded
/// default; then the flags, each recorded with its key so errors name it.
fn run_config(args: &RunArgs) -> Result<(Config, Origin)> {
    let (mut c, mut origin) = match &args.config {
        Some(path) => config::read(path)?,
        None => config::paper(),
    };
    apply_flags(&args.flags, args.config.is_some(), &mut c, &mut origin)?;
    Ok((c, origin))
}

/// Set the config keys the flags give, recording each with its flag;
/// `with_file` says the config came from a file (not the embedded default).
fn apply_flags(f: &RunFlags, with_file: bool, c: &mut Config, origin: &mut Origin) -> Result<()> {
    let mut set = |key: &str, flag: &str| {
        origin.flags.insert(key.to_string(), flag.to_string());
    };
    if let Some(path) = &f.data {
        // A flag's path is the working directory's, even with a config file.
        c.data.csv = Some(match with_file {
            true if path.is_relative() => std::env::current_dir()
                .map_err(|e| Error::InputFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
                .join(path),
            _ => path.clone(),
        });
        c.data.synthetic = None;
        set("data.csv", "--data");
        if !with_file {
            // The embedded default's controls, groups and mediator sets
            // are the synthetic panel's; a file gets none unless asked.
            c.model.controls.clear();
            c.model.groups.clear();
            c.model.also_mediators.clear();
            c.name = path
                .file_stem()
                .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
        }
    }
    macro_rules! flag {
        ($value:expr, $field:expr, $key:literal, $flag:literal) => {
            if let Some(v) = $value {
                $field = v;
                set($key, $flag);
            }
        };
    }
    flag!(f.unit.clone(), c.data.unit, "data.unit", "--unit");
    flag!(f.time.clone(), c.data.time, "data.time", "--time");
    flag!(
        f.outcome.clone(),
        c.model.outcome,
        "model.outcome",
        "--outcome"
    );
    flag!(
        f.treatment.clone(),
        c.model.treatment,
        "model.treatment",
        "--treatment"
    );
    flag!(
        f.mediator.as_deref().map(split_list),
        c.model.mediators,
        "model.mediators",
        "--mediator"
    );
    flag!(
        f.controls.as_deref().map(split_list),
        c.model.controls,
        "model.controls",
        "--controls"
    );
    flag!(
        f.instrument.as_deref().map(split_list),
        c.model.instrument,
        "model.instrument",
        "--instrument"
    );
    flag!(
        f.group.as_deref().map(split_list),
        c.model.groups,
        "model.groups",
        "--group"
    );
    flag!(
        f.cluster.clone().map(Some),
        c.model.cluster,
        "model.cluster",
        "--cluster"
    );
    flag!(
        f.fixed_effects.clone(),
        c.model.fixed_effects,
        "model.fixed_effects",
        "--fixed-effects"
    );
    flag!(
        f.mc_draws,
        c.inference.mc_draws,
        "inference.mc_draws",
        "--mc-draws"
    );
    flag!(f.seed, c.resampling.seed, "resampling.seed", "--seed");
    flag!(f.name.clone(), c.name, "name", "--name");
    flag!(f.out.clone().map(Some), c.output.dir, "output.dir", "--out");
    flag!(
        f.scheme.clone(),
        c.resampling.scheme,
        "resampling.scheme",
        "--scheme"
    );
    flag!(
        f.replicates,
        c.resampling.replicates,
        "resampling.replicates",
        "-B"
    );
    flag!(
        f.weights.clone(),
        c.resampling.weights,
        "resampling.weights",
        "--weights"
    );
    flag!(
        f.strata.clone().map(Some),
        c.resampling.strata,
        "resampling.strata",
        "--strata"
    );
    flag!(f.batch, c.resampling.batch, "resampling.batch", "--batch");
    flag!(
        f.backend.clone(),
        c.resampling.backend,
        "resampling.backend",
        "--backend"
    );
    flag!(
        f.adapter.clone().map(Some),
        c.resampling.adapter,
        "resampling.adapter",
        "--adapter"
    );
    flag!(
        f.precision.clone().map(Some),
        c.resampling.precision,
        "resampling.precision",
        "--precision"
    );
    flag!(
        f.gpu_batch,
        c.resampling.gpu_batch,
        "resampling.gpu_batch",
        "--gpu-batch"
    );
    flag!(
        f.threads,
        c.resampling.threads,
        "resampling.threads",
        "--threads"
    );
    flag!(
        f.memory,
        c.resampling.memory_mib,
        "resampling.memory_mib",
        "--memory"
    );
    let lists = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    flag!(
        (!f.level.is_empty()).then(|| f.level.clone()),
        c.inference.levels,
        "inference.levels",
        "--level"
    );
    flag!(
        lists(&f.ci),
        c.inference.methods,
        "inference.methods",
        "--ci"
    );
    flag!(
        lists(&f.also_mediators).map(|sets| sets.iter().map(|s| split_list(s)).collect()),
        c.model.also_mediators,
        "model.also_mediators",
        "--also-mediators"
    );
    flag!(
        f.no_wild_tests.then_some(false),
        c.resampling.wild_tests,
        "resampling.wild_tests",
        "--no-wild-tests"
    );
    flag!(
        f.json.then_some(true),
        c.output.json,
        "output.json",
        "--json"
    );
    flag!(
        f.no_plots.then_some(false),
        c.output.plots,
        "output.plots",
        "--no-plots"
    );
    flag!(
        f.save_replicates.then_some(true),
        c.output.save_replicates,
        "output.save_replicates",
        "--save-replicates"
    );
    Ok(())
}

/// `medsim sweep CONFIG`: every point of the config's [sweep], checked
/// first, then run back to back; sweep.csv and each point's folder.
fn sweep(args: RunArgs, scale: Option<Scale>) -> Result<()> {
    if let Some(dir) = &args.scale.resume {
        only_resume(&args)?;
        return resume(dir, &args.scale, args.flags.quiet, args.flags.threads);
    }
    let scale = scale.map_or_else(|| args.scale.scale(), Ok)?;
    let path = args.config.as_ref().ok_or_else(|| Error::InvalidOption {
        option: "CONFIG".into(),
        message: "medsim sweep needs a config file with a [sweep] table (see configs/)".into(),
    })?;
    let (base, mut origin) = config::read(path)?;
    let (keys, points) = medsim::study::sweep::points(&origin)?;
    // The flags, applied to the file's base, are refused on swept keys.
    let mut base_flags = base.clone();
    apply_flags(&args.flags, true, &mut base_flags, &mut origin)?;
    medsim::study::sweep::check_flags(&keys, &origin.flags)?;
    origin.swept = keys.clone();
    if args.manifest.is_some() {
        return Err(Error::InvalidOption {
            option: "--manifest".into(),
            message: "a sweep is replayed from its config; each point's manifest.json replays \
                      that point with `medsim run --manifest`"
                .into(),
        });
    }
    // Every point's plan before any work, with its config and inputs for
    // its manifest.
    let mut plans = Vec::with_capacity(points.len());
    for point in &points {
        let mut c = point.config.clone();
        apply_flags(&args.flags, true, &mut c, &mut origin)?;
        let plan = c.plan(&origin)?;
        let inputs = resolve_inputs(&mut c, &plan)?;
        plans.push((c, plan, inputs));
    }
    let out = base_flags.out_dir();
    let configs: Vec<&Config> = plans.iter().map(|(c, _, _)| c).collect();
    let mut all_inputs: Vec<PathBuf> = plans.iter().flat_map(|(_, _, i)| i.clone()).collect();
    all_inputs.sort();
    all_inputs.dedup();
    let mut folder = scale.claim(&out, &all_inputs)?;
    let resamples = plans.iter().any(|(_, p, _)| p.resampling.is_some());
    if !resamples && matches!(scale.mode, Mode::Shard(_)) {
        return Err(nothing_to_split());
    }
    let mut stores = match resamples {
        true => scale.open("sweep", results_config(&configs, &all_inputs)?, &out)?,
        false => None,
    };
    let n = plans.len() as u64;
    let bar = progress_bar(
        args.flags.quiet,
        n * 1000,
        "{spinner} sweep point {msg} [{bar:30}] {percent}% eta {eta}",
    );
    let width = n.to_string().len().max(3);
    let mut files = Vec::new();
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    let started = std::time::Instant::now();
    for (k, ((config, plan, inputs), point)) in plans.iter().zip(&points).enumerate() {
        bar.set_message(format!("{}/{n}", k + 1));
        let offset = k as u64 * 1000;
        // Each point's replicates in a folder of the sweep's store.
        let mut plan = plan.clone();
        if let (Some(st), Some(spec)) = (&stores, plan.resampling.as_mut()) {
            spec.store = Some(st.at(Some(&format!("p{:0width$}", k + 1)))?);
            if matches!(scale.mode, Mode::Merge { .. }) {
                merge_engine(spec);
            }
        }
        let plan = &plan;
        let (summary, timings) = execute_timed(plan, &|done, total| {
            bar.set_position(offset + 1000 * done / total.max(1));
        })
        .map_err(|e| Error::InvalidOption {
            option: format!("sweep point {} ({})", k + 1, describe(&point.values)),
            message: e.to_string(),
        })?;
        if matches!(scale.mode, Mode::Shard(_)) {
            if let Some(st) = stores.as_mut() {
                st.note_engine(engine_of(&summary));
            }
            bar.set_position(offset + 1000);
            continue;
        }
        rows.extend(medsim::study::sweep::rows(k + 1, &point.values, &summary));
        let extra = if config.output.save_replicates {
            medsim::study::run::replicate_files(plan)?
        } else {
            Vec::new()
        };
        for (name, bytes) in run_folder(config, inputs, &summary, &timings, extra)? {
            files.push((format!("points/{:0width$}/{name}", k + 1), bytes));
        }
        summaries.push(summary);
        bar.set_position(offset + 1000);
    }
    bar.finish_and_clear();
    if let (Some(st), Mode::Shard(shard)) = (stores.as_mut(), &scale.mode) {
        // Marked complete only now that every point's part is stored.
        st.finish_shard()?;
        folder.keep();
        return shard_done(*shard, st, &out, args.flags.quiet);
    }
    let table = medsim::study::sweep::csv_text(&medsim::study::sweep::header(&keys), &rows)?;
    files.push(("sweep.csv".into(), table.into_bytes()));
    if base_flags.output.plots {
        let along: Vec<_> = points
            .iter()
            .zip(&summaries)
            .map(|(p, s)| (p.values.clone(), s))
            .collect();
        for (name, text) in medsim::output::plots::sweep(&keys, &along) {
            files.push((name, text.into_bytes()));
        }
    }
    folder.write(&files)?;
    outln!(
        "sweep {}: {n} points over {} in {:.1} s",
        base_flags.name,
        keys.join(", "),
        started.elapsed().as_secs_f64()
    );
    for (k, point) in points.iter().enumerate() {
        let indirect = rows
            .iter()
            .find(|r| {
                r[0] == (k + 1).to_string()
                    && r[keys.len() + 1] == "pooled"
                    && r[keys.len() + 2] == "indirect"
            })
            .map_or(String::new(), |r| r[keys.len() + 3].clone());
        outln!(
            "  {:>w$}  {}  indirect {indirect}",
            k + 1,
            describe(&point.values),
            w = width
        );
    }
    outln!("written  {}", out.join("sweep.csv").display());
    Ok(())
}

/// `medsim simulate CONFIG`: the study of the config's [simulation].
fn simulate(args: SimulateArgs, scale: Option<Scale>) -> Result<()> {
    if let Some(dir) = &args.scale.resume {
        let given = args.config.is_some()
            || args.datasets.is_some()
            || args.replicates.is_some()
            || args.backend.is_some()
            || args.precision.is_some()
            || args.out.is_some()
            || args.no_plots;
        if given {
            return Err(resume_alone());
        }
        return resume(dir, &args.scale, args.quiet, args.threads);
    }
    let scale = scale.map_or_else(|| args.scale.scale(), Ok)?;
    let path = args.config.as_ref().ok_or_else(|| Error::InvalidOption {
        option: "CONFIG".into(),
        message: "medsim simulate needs a config file with a [simulation] section".into(),
    })?;
    let (mut c, mut origin) = config::read(path)?;
    let mut set = |key: &str, flag: &str| {
        origin.flags.insert(key.to_string(), flag.to_string());
    };
    if let Some(s) = c.simulation.as_mut() {
        if let Some(d) = args.datasets {
            s.datasets = d;
            set("simulation.datasets", "--datasets");
        }
        if let Some(b) = args.replicates {
            s.replicates = b;
            set("simulation.replicates", "-B");
        }
    }
    if let Some(t) = args.threads {
        c.resampling.threads = t;
        set("resampling.threads", "--threads");
    }
    if let Some(b) = &args.backend {
        c.resampling.backend = b.clone();
        set("resampling.backend", "--backend");
    }
    if let Some(p) = &args.precision {
        c.resampling.precision = Some(p.clone());
        set("resampling.precision", "--precision");
    }
    if let Some(o) = &args.out {
        c.output.dir = Some(o.clone());
    }
    if args.no_plots {
        c.output.plots = false;
    }
    let study = c.study(&origin)?;
    // What runs; the summary describes the study as configured.
    let mut running = study.clone();
    if matches!(scale.mode, Mode::Merge { .. }) {
        merge_engine(&mut running.resampling);
    }
    let out = c.out_dir();
    let mut folder = scale.claim(&out, &[])?;
    let total = study.cells.len() as u64 * study.datasets;
    let bar = progress_bar(
        args.quiet,
        total,
        "{spinner} datasets {human_pos}/{human_len} [{bar:30}] {per_sec:0} eta {eta}",
    );
    let mut stores = scale.open("simulate", results_config(&[&c], &[])?, &out)?;
    let store = stores.as_ref().map(|st| st.at(None)).transpose()?;
    let ran = medsim::study::simulate::run_stored(
        &running,
        c.resampling.threads as usize,
        &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
        store.as_ref().map(|s| s.0.as_ref()),
    );
    bar.finish_and_clear();
    let (cells, sizes, seconds) = ran?;
    if let (Some(st), Mode::Shard(shard)) = (stores.as_mut(), &scale.mode) {
        st.finish_shard()?;
        folder.keep();
        return shard_done(*shard, st, &out, args.quiet);
    }
    let summary =
        medsim::study::simulate::SimulationSummary::new(&c.name, &study, cells, sizes, seconds);
    let json =
        serde_json::to_string_pretty(&summary).map_err(|e| Error::Numerical(e.to_string()))? + "\n";
    let mut files = vec![
        ("simulation.json".to_string(), json.into_bytes()),
        ("simulation.csv".to_string(), summary.csv().into_bytes()),
    ];
    if c.output.plots
        && let Some((name, text)) = medsim::output::plots::power(&summary)
    {
        files.push((name, text.into_bytes()));
    }
    folder.write(&files)?;
    out!("{}", summary.render());
    outln!("\nwritten  {}", out.join("simulation.json").display());
    Ok(())
}

/// `medsim bench`: the suite on every engine, then its files.
fn bench(args: BenchArgs) -> Result<()> {
    use medsim::study::bench::{Engine, Report};
    let mut engines = vec![Engine::Cpu];
    if !args.cpu_only {
        for a in medsim::gpu::list_adapters() {
            engines.push(Engine::Gpu(a.info.name.clone()));
        }
    }
    engines.push(Engine::Refit);
    let report = medsim::study::bench::run(&engines, args.quick, &|what| {
        eprintln!("bench: {what}");
    })?;
    let dir = args.out.unwrap_or_else(|| PathBuf::from("results"));
    let json =
        serde_json::to_string_pretty(&report).map_err(|e| Error::Numerical(e.to_string()))? + "\n";
    let file = dir.join("bench").join(format!("{}.json", report.slug()));
    write_file(&file, |tmp| {
        std::fs::write(tmp, &json).map_err(|e| Error::Output {
            path: file.clone(),
            reason: e.to_string(),
        })
    })?;
    // BENCHMARKS.md: every machine's results in results/bench/.
    let mut reports: Vec<Report> = std::fs::read_dir(dir.join("bench"))
        .map_err(|e| Error::Output {
            path: dir.join("bench"),
            reason: e.to_string(),
        })?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect();
    reports.sort_by_key(|r| r.slug());
    let mut md = String::from(
        "# medsim benchmarks\n\nWritten by `medsim bench` (see the README's Performance section): one section per machine, from `results/bench/*.json`.\n\n",
    );
    for r in &reports {
        md.push_str(&r.markdown());
        md.push('\n');
    }
    let md_path = dir.join("BENCHMARKS.md");
    write_file(&md_path, |tmp| {
        std::fs::write(tmp, &md).map_err(|e| Error::Output {
            path: md_path.clone(),
            reason: e.to_string(),
        })
    })?;
    if args.json {
        STDOUT_IS_DATA.store(true, std::sync::atomic::Ordering::Relaxed);
        out!("{json}");
    } else {
        out!("{}", report.markdown());
        outln!("\nwritten  {} and {}", file.display(), md_path.display());
    }
    Ok(())
}

/// A merge reads the parts' replicates: its own engine only computes what
/// is not sharded (the restricted wild tests, the plot's draws), on
/// whatever this machine has, so the parts' GPU or adapter need not be here.
fn merge_engine(spec: &mut medsim::study::resampling::ResampleSpec) {
    spec.backend = medsim::study::resampling::BackendChoice::Auto;
    spec.adapter = None;
}

/// The engine of a run's main replicates, as its summary reports it.
fn engine_of(
    summary: &medsim::study::summary::Summary,
) -> Option<medsim::resample::engine::Backend> {
    summary
        .resampling
        .as_ref()
        .map(medsim::study::resampling::ResamplingSummary::engine)
}

/// Report a finished shard.
fn shard_done(
    shard: Shard,
    stores: &medsim::output::scale::Stores,
    out: &std::path::Path,
    quiet: bool,
) -> Result<()> {
    let dir = stores
        .dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    if !quiet {
        outln!(
            "shard {}/{}: its replicates are stored in {dir}\nwhen all {} parts are done: medsim merge {}",
            shard.index,
            shard.count,
            shard.count,
            medsim::output::scale::shards_dir(out).display()
        );
    }
    Ok(())
}

/// `--resume` takes no config or setting: the checkpoint's command line
/// is the run (only --quiet, --threads and --checkpoint-every may be given).
fn only_resume(args: &RunArgs) -> Result<()> {
    let rest = RunFlags {
        quiet: false,
        threads: None,
        ..args.flags.clone()
    };
    if args.config.is_some() || args.manifest.is_some() || rest != RunFlags::default() {
        return Err(resume_alone());
    }
    Ok(())
}

/// `--shard` on a run with no resampling.
fn nothing_to_split() -> Error {
    Error::InvalidOption {
        option: "--shard".into(),
        message: "splits the replicates of a resampling, and this run has none \
                  (scheme = \"none\"); run it whole"
            .into(),
    }
}

fn resume_alone() -> Error {
    Error::InvalidOption {
        option: "--resume".into(),
        message: "continues the checkpoint's own command line, so it takes no config file or \
                  setting (only --quiet, --threads and --checkpoint-every)"
            .into(),
    }
}

/// `--resume DIR`: the command line kept in DIR's checkpoint, run again in
/// its folder, reading back the replicates the checkpoint holds.
fn resume(
    dir: &std::path::Path,
    flags: &ScaleFlags,
    quiet: bool,
    threads: Option<u64>,
) -> Result<()> {
    let header =
        medsim::resample::checkpoint::Header::read(&medsim::output::scale::checkpoint_dir(dir))?;
    let mut scale = ScaleFlags {
        resume: None,
        shard: None,
        ..flags.clone()
    }
    .scale()?;
    scale.mode = Mode::Checkpoint { keep: true };
    scale.resumes = Some(medsim::output::results_dir::resolve(dir));
    replay(&header, scale, None, quiet, threads)
}

/// Run a checkpoint's or shard's command line again, in the folder it ran
/// in, with `scale` (and results to `out`, on `threads`, when given).
fn replay(
    header: &medsim::resample::checkpoint::Header,
    scale: Scale,
    out: Option<PathBuf>,
    quiet: bool,
    threads: Option<u64>,
) -> Result<()> {
    let bad = |message: String| Error::InvalidOption {
        option: "--resume / medsim merge".into(),
        message,
    };
    std::env::set_current_dir(&header.cwd).map_err(|e| {
        bad(format!(
            "the run ran in {}, which cannot be entered here ({e}); its relative paths need it",
            header.cwd.display()
        ))
    })?;
    let cli = Cli::try_parse_from(&header.argv)
        .map_err(|e| bad(format!("its command line no longer parses: {e}")))?;
    // The stored command must be the run that wrote the folder: not a
    // resume or merge itself (that would redirect the work, or never end),
    // and a merge's must be the part the folder says it is.
    let (command, flags) = match &cli.command {
        Command::Run(a) => ("run", &a.scale),
        Command::Sensitivity(a) => ("sensitivity", &a.scale),
        Command::Sweep(a) => ("sweep", &a.scale),
        Command::Simulate(a) => ("simulate", &a.scale),
        _ => {
            return Err(bad(format!(
                "its stored command line is not a run, sensitivity, sweep or simulation ({}); \
             the folder's {} was not written by medsim",
                header.argv.join(" "),
                medsim::resample::checkpoint::HEADER_FILE
            )));
        }
    };
    let stored_shard = flags.shard.as_deref().map(Shard::parse).transpose()?;
    if command != header.command || flags.resume.is_some() || stored_shard != header.shard {
        return Err(bad(format!(
            "its stored command line ({}) is not the `medsim {}` {} that wrote the folder; \
             the folder's {} was edited or is not medsim's",
            header.argv.join(" "),
            header.command,
            match header.shard {
                Some(s) => format!("part --shard {}/{}", s.index, s.count),
                None => "run".into(),
            },
            medsim::resample::checkpoint::HEADER_FILE
        )));
    }
    match cli.command {
        Command::Run(mut a) | Command::Sensitivity(mut a) => {
            a.flags.quiet |= quiet;
            a.flags.out = out.or(a.flags.out);
            a.flags.threads = threads.or(a.flags.threads);
            run(a, header.command == "sensitivity", Some(scale))
        }
        Command::Sweep(mut a) => {
            a.flags.quiet |= quiet;
            a.flags.out = out.or(a.flags.out);
            a.flags.threads = threads.or(a.flags.threads);
            sweep(a, Some(scale))
        }
        Command::Simulate(mut a) => {
            a.quiet |= quiet;
            a.out = out.or(a.out);
            a.threads = threads.or(a.threads);
            simulate(a, Some(scale))
        }
        _ => Err(bad(format!(
            "`medsim {}` keeps no checkpoint",
            header.command
        ))),
    }
}

/// `medsim merge DIR...`: the run the shards split, from their replicates.
fn merge(args: MergeArgs) -> Result<()> {
    let dirs: Vec<PathBuf> = args
        .dirs
        .iter()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
        .collect();
    let (header, dirs) = medsim::output::scale::shards(&dirs)?;
    let out = args.out.map(|o| std::path::absolute(&o).unwrap_or(o));
    let scale = Scale {
        mode: Mode::Merge {
            dirs,
            shards: Box::new(header.clone()),
        },
        resumes: None,
        every: Duration::ZERO,
    };
    replay(&header, scale, out, args.quiet, args.threads)
}

/// A progress bar of `len` steps with `template`, hidden when `quiet`.
fn progress_bar(quiet: bool, len: u64, template: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    indicatif::ProgressBar::new(len).with_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> "),
    )
}

/// A point's swept values, `key = value, ...`.
fn describe(values: &[(String, toml::Value)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k} = {}", medsim::study::sweep::cell(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run(args: RunArgs, sensitivity: bool, scale: Option<Scale>) -> Result<()> {
    if let Some(dir) = &args.scale.resume {
        only_resume(&args)?;
        return resume(dir, &args.scale, args.flags.quiet, args.flags.threads);
    }
    let scale = scale.map_or_else(|| args.scale.scale(), Ok)?;
    let (mut config, origin) = match &args.manifest {
        Some(path) => {
            let (_, mut config, mut origin) = Manifest::read(path)?;
            apply_flags(&args.flags, true, &mut config, &mut origin)?;
            (config, origin)
        }
        None => run_config(&args)?,
    };
    if sensitivity && config.sensitivity.is_none() {
        config.sensitivity = Some(Default::default());
    }
    let mut plan = config.plan(&origin)?;
    let inputs = resolve_inputs(&mut config, &plan)?;
    let out = config.out_dir();
    let command = if sensitivity { "sensitivity" } else { "run" };
    if plan.resampling.is_none() && matches!(scale.mode, Mode::Shard(_)) {
        return Err(nothing_to_split());
    }
    let mut folder = scale.claim(&out, &inputs)?;
    let mut stores = match &plan.resampling {
        Some(_) => scale.open(command, results_config(&[&config], &inputs)?, &out)?,
        None => None,
    };
    if let (Some(st), Some(spec)) = (&stores, plan.resampling.as_mut()) {
        spec.store = Some(st.at(None)?);
        if matches!(scale.mode, Mode::Merge { .. }) {
            merge_engine(spec);
        }
    }
    let bar = progress_bar(
        args.flags.quiet,
        plan.resampling.as_ref().map_or(0, |r| r.replicates),
        "{spinner} replicates {human_pos}/{human_len} [{bar:30}] {per_sec:0} eta {eta}",
    );
    let executed = execute_timed(&plan, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let (summary, timings) = executed?;
    let store = plan.resampling.as_ref().and_then(|s| s.store.clone());
    if let (Some(st), Mode::Shard(shard)) = (stores.as_mut(), &scale.mode) {
        st.note_engine(engine_of(&summary));
        st.finish_shard()?;
        folder.keep();
        return shard_done(*shard, st, &out, args.flags.quiet);
    }
    if let Some(store) = &store
        && store.0.reused() > 0
        && matches!(scale.mode, Mode::Checkpoint { keep: true })
    {
        eprintln!(
            "resumed: {} replicate computations read back from the checkpoint",
            store.0.reused()
        );
    }
    let mut extra = Vec::new();
    if config.output.save_replicates {
        extra = medsim::study::run::replicate_files(&plan)?;
    }
    let files = run_folder(&config, &inputs, &summary, &timings, extra)?;
    folder.write(&files)?;
    if config.output.json {
        STDOUT_IS_DATA.store(true, std::sync::atomic::Ordering::Relaxed);
        out!("{}", String::from_utf8_lossy(&files[0].1));
    } else {
        let text = render(&summary);
        if medsim::output::report::colour_wanted() {
            out!("{}", medsim::output::report::colourize(&text));
        } else {
            out!("{text}");
        }
        outln!("\nwritten  {}", out.join("summary.json").display());
    }
    Ok(())
}

fn generate_cmd(args: GenerateArgs) -> Result<()> {
    for (option, value) in [("--cities", args.cities), ("--years", args.years)] {
        if value < 2 {
            return Err(Error::InvalidOption {
                option: option.into(),
                message: format!("{value} is too few; a panel needs at least 2"),
            });
        }
    }
    medsim::data::synthetic::check_size("--cities", args.cities, args.years)?;
    let target = medsim::output::files::file_target(&args.out, args.force)?;
    let table = generate(SyntheticParams {
        cities: args.cities,
        years: args.years,
        seed: args.seed,
        ..SyntheticParams::default()
    });
    write_file(&target, |tmp| write_csv(&table, tmp))?;
    eprintln!(
        "wrote {} ({} cities x {} years, seed {})",
        args.out.display(),
        args.cities,
        args.years,
        args.seed
    );
    Ok(())
}

fn devices() {
    let list = medsim::gpu::list_adapters();
    if list.is_empty() {
        outln!(
            "no GPU adapter found (on Linux, Mesa's mesa-vulkan-drivers provides lavapipe); the CPU engine runs everything"
        );
        return;
    }
    for (i, a) in list.iter().enumerate() {
        outln!(
            "{i}: {} ({:?}, {:?}, driver {} {})\n   shader f64: {}, max storage binding {} MiB, max buffer {} MiB, max workgroups per dimension {}",
            a.info.name,
            a.info.device_type,
            a.info.backend,
            a.info.driver,
            a.info.driver_info,
            if a.shader_f64 { "yes" } else { "no" },
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroups_per_dimension
        );
    }
}

fn main() -> ExitCode {
    // On a headless machine (CI, a cluster node) without XDG_RUNTIME_DIR,
    // Vulkan drivers' window-system probing (libwayland) prints "error:
    // XDG_RUNTIME_DIR is invalid or not set" while wgpu lists adapters,
    // though nothing is wrong. medsim draws no windows: point the variable
    // at the temporary folder when it is unset. Done first, while the
    // process has one thread, as set_var requires.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args, false, None),
        Command::Sensitivity(args) => run(args, true, None),
        Command::Sweep(args) => sweep(args, None),
        Command::Simulate(args) => simulate(args, None),
        Command::Merge(args) => merge(args),
        Command::Bench(args) => bench(args),
        Command::Generate(args) => generate_cmd(args),
        Command::Devices => {
            devices();
            Ok(())
        }
    };
    if let Err(e) = std::io::Write::flush(&mut std::io::stdout()) {
        stdout_failed(e);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
