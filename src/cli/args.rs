//! The command line's arguments (clap): the commands, their flags with the
//! config key each overrides in brackets, and their examples.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::output::scale::{Mode, Scale};
use crate::resample::checkpoint::Shard;

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
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Fit the mediation model and report effects, SEs, p-values and intervals.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// The sensitivity of the indirect effect to mediator-outcome
    /// confounding (Imai, Keele and Yamamoto 2010): ACME over a grid of rho
    /// with resampling bands, for the pooled model and each group.
    #[command(after_help = SENSITIVITY_EXAMPLES)]
    Sensitivity(RunArgs),
    /// The fixed-effects panel threshold model (Hansen 1999): does a
    /// regressor's slope change where a threshold variable passes one, two
    /// or three thresholds? F tests with bootstrap p-values, the thresholds'
    /// likelihood-ratio confidence sets and the regime coefficients.
    #[command(after_help = THRESHOLD_EXAMPLES)]
    Threshold(RunArgs),
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

pub(crate) const THRESHOLD_EXAMPLES: &str = "Examples:
  medsim threshold configs/threshold.toml
      The shipped example: does dei's effect on log_ci change with agglomeration?
  medsim threshold my.toml --data panel.csv -B 300 --seed 7
  medsim threshold configs/threshold.toml -B 100000 --backend gpu
      The bootstrap on a GPU (--precision f64 where the adapter has it).
  medsim threshold --resume results/threshold
      Continue a killed run from its checkpoint (--shard I/N and medsim merge too).

The config's [threshold] section names the threshold variable (variable = \"agglom\");
the outcome, the regime-dependent regressor(s) (regressors = [...]), the controls
and the cluster default to [model]'s outcome, treatment, controls and cluster.
Candidates: the order statistics of the variable at grid = 300 quantile levels
from trim = 0.01 to 0.99, every regime keeping at least trim of the observations
(min_regime); thresholds = 3 are estimated in turn (the first refined after the
second), each tested against one fewer by an F statistic whose p-value comes
from replicates = 1000 bootstrap samples: bootstrap = \"residual\" draws whole
units' residual vectors (Hansen 1999; balanced panels), \"wild\" multiplies each
unit's residuals by a weight (weights = rademacher, mammen, webb, normal).
-B sets the replicates; --seed, --threads, --backend, --adapter, --precision
and --gpu-batch as for run. mediation = true adds the mediation model of [model]
with the single threshold's regime moderating a, b and c' (effects and contrasts
by regime; its run in mediation/). Writes threshold.json, threshold.txt,
summary.md, tables.tex and lr_K.svg (the likelihood-ratio curve of each model,
the critical value drawn) into the results folder (docs/threshold.md).";

pub(crate) const RUN_EXAMPLES: &str = "Examples:
  medsim run
      The embedded default: 278 synthetic cities x 10 years, dei -> agglom -> log_ci,
      six controls, city and year effects, SEs clustered by city; the model of
      each region and size class and their contrasts; the model with secondary
      and tertiary agglomeration in parallel; the paths' omitted-variable bounds.
  medsim run --data panel.csv --unit city --time year --outcome log_ci \\
             --treatment dei --mediator agglom --controls ln_gdp,industry,fdi
  medsim run --mediator agglom_sec,agglom_ter      two parallel mediators, and their contrast
  medsim run --instrument iv_post1984              dei instrumented (2SLS in every equation)
  medsim run --mediator-instrument iv_agglom       agglom instrumented in the outcome equation
                                                   (2SLS b and c', as mediate_tsls)
  medsim run --benchmark ln_gdp --kd 1,2,3         a, b, c' adjusted for a confounder 1-3 times
                                                   as strong as ln_gdp (Cinelli-Hazlett bounds)
  medsim run --data panel.csv --group region       a model per region, and the differences
  medsim run --data panel.csv --also-mediators agglom_sec,agglom_ter
      the model again with the two components in parallel, same replicates
  medsim run --data panel.csv --cluster province --fixed-effects unit
  medsim run --fixed-effects city+province^year    city and province-by-year effects
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

pub(crate) const SENSITIVITY_EXAMPLES: &str = "Examples:
  medsim sensitivity                         the embedded default, rho from -0.9 to 0.9 by 0.05
  medsim sensitivity configs/sensitivity.toml
  medsim run configs/sensitivity.toml        the same: a [sensitivity] section asks for it

The same run as `medsim run` (every flag applies), with the rho grid added when
the config's [sensitivity] section has none: rho = { from = -0.9, to = 0.9,
step = 0.05 }.
With one mediator, ACME(rho) = a (b - rho kappa / sqrt(1 - rho^2)), kappa the
ratio of the outcome and mediator residual SDs: a*b at rho = 0, zero at the
residual correlation. Bands come from the run's replicates (pairs, bayes,
poisson, jackknife). Writes summary.json (\"sensitivity\") and sensitivity.csv.";

pub(crate) const SWEEP_EXAMPLES: &str = "Examples:
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

pub(crate) const SIMULATE_EXAMPLES: &str = "Examples:
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

pub(crate) const MERGE_EXAMPLES: &str = "Examples:
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

pub(crate) const BENCH_EXAMPLES: &str = "Examples:
  medsim bench --quick          the reduced suite (under a minute on the CPU engine)
  medsim bench                  the full suite: B up to 1e6, clusters up to 5000
  medsim bench --cpu-only --json

Workloads: the pairs bootstrap of the default problem (278 cities x 10 years, six
controls, city and year effects), two mediators (in parallel and as a chain), wild, permutation, the
sensitivity grid, a whole run with region groups and contrasts, scaling in B,
clusters, periods and controls, an iid simulation study, and the panel threshold
model's single-threshold F test (300 candidates, residual and wild bootstraps; the
CPU engine only); on the CPU engine, every GPU adapter wgpu lists (software ones run
a hundredth of the replicates), and the refit baseline (each replicate's panel
rebuilt and refitted; the threshold test's outcome refitted at every candidate). Each workload
warms up, then repeats; the median and range of replicates/s are reported.
Writes results/bench/<machine>.json and rewrites results/BENCHMARKS.md from every
JSON file there.";

pub(crate) const GENERATE_EXAMPLES: &str = "Examples:
  medsim generate --out panel.csv
  medsim generate --out big.csv --cities 2000 --years 20 --seed 7

Columns: city, year, province, region (east/central/west), size (large/small-medium),
dei (digital-economy index), agglom (overall agglomeration = mean of agglom_sec and
agglom_ter), log_ci (log carbon intensity) and six controls. The true parameters are
documented in the README and in `crate::data::synthetic`.";

#[derive(Args)]
pub(crate) struct RunArgs {
    /// A config file (TOML) describing the run [default: the embedded
    /// configs/paper.toml]. Flags override its values; each flag's config
    /// key is given in brackets.
    #[arg(value_name = "CONFIG.toml")]
    pub(crate) config: Option<PathBuf>,
    /// Run again what a run folder's manifest.json records: its config
    /// (flags still override, e.g. --out), after checking that its input
    /// files are unchanged; summary.json comes out byte for byte the same.
    #[arg(long, value_name = "manifest.json", conflicts_with = "config")]
    pub(crate) manifest: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) flags: RunFlags,
    #[command(flatten)]
    pub(crate) scale: ScaleFlags,
}

/// Checkpoints and shards, flags of run, sensitivity, sweep and simulate.
#[derive(Args, Default, Clone)]
pub(crate) struct ScaleFlags {
    /// Seconds between checkpoints of the replicates computed so far, into
    /// RESULTS/checkpoint (removed when the run finishes; a run shorter than
    /// this writes none); 0 for none [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) checkpoint_every: Option<f64>,
    /// Continue the killed run whose results folder is DIR, from its
    /// checkpoint (DIR/checkpoint keeps its command line): the results are
    /// those of an uninterrupted run, bit for bit. Only --quiet, --threads
    /// and --checkpoint-every may be added.
    #[arg(long, value_name = "DIR", conflicts_with = "shard")]
    pub(crate) resume: Option<PathBuf>,
    /// Compute only part I of N (0-based) of every resampling's replicates
    /// (a sweep: of each point's; a simulation study: of each cell's
    /// datasets) into RESULTS-shards/III-of-NNN; run again, a killed part
    /// continues. `medsim merge RESULTS-shards` makes the results.
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<String>,
}

impl ScaleFlags {
    /// The scale of a command run from the command line.
    pub(crate) fn scale(&self) -> Result<Scale> {
        let every = self
            .checkpoint_every
            .unwrap_or(crate::output::scale::DEFAULT_EVERY);
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

/// `--lag`'s and `--lead`'s COL or COL:K.
fn shift_of(text: &str) -> std::result::Result<(String, u32), String> {
    let (column, k) = match text.rsplit_once(':') {
        Some((column, k)) => (column, k),
        None => (text, "1"),
    };
    let column = column.trim();
    match k.trim().parse::<u32>() {
        Ok(k) if k >= 1 && !column.is_empty() => Ok((column.to_string(), k)),
        _ => Err(format!(
            "'{text}' is not COL or COL:K with K a whole number of periods, 1 or more"
        )),
    }
}

/// The flags of a run, each overriding one config key. None: the config's value.
#[derive(Args, Default, Clone, PartialEq)]
pub(crate) struct RunFlags {
    /// Data file with one row per unit and period: CSV, or by extension
    /// Stata (.dta), Parquet (.parquet) or Excel (.xlsx, .xls, ...)
    /// (default: the embedded synthetic panel) [data.csv]. Without a config
    /// file, a --data run has no groups or other mediator sets unless
    /// asked, and is named after the file.
    #[arg(long, value_name = "FILE")]
    pub(crate) data: Option<PathBuf>,
    /// Sheet of an Excel workbook given by --data [data.sheet; default its
    /// first sheet].
    #[arg(long)]
    pub(crate) sheet: Option<String>,
    /// Unit column (cities); the unit fixed effects and default clusters
    /// [data.unit; default city].
    #[arg(long)]
    pub(crate) unit: Option<String>,
    /// Time-period column [data.time; default year].
    #[arg(long)]
    pub(crate) time: Option<String>,
    /// Replace columns by their value K periods earlier in the same unit,
    /// COL or COL:K (K 1 by default), comma-separated, e.g. dei,ln_gdp:2;
    /// a unit's missing period makes the value missing, so the row is
    /// dropped and counted [data.lag; default none].
    #[arg(long, value_name = "COL[:K]", value_delimiter = ',', value_parser = shift_of)]
    pub(crate) lag: Vec<(String, u32)>,
    /// Replace columns by their value K periods later in the same unit,
    /// COL or COL:K, as --lag [data.lead; default none].
    #[arg(long, value_name = "COL[:K]", value_delimiter = ',', value_parser = shift_of)]
    pub(crate) lead: Vec<(String, u32)>,
    /// Outcome column (Y) [model.outcome; default log_ci].
    #[arg(long)]
    pub(crate) outcome: Option<String>,
    /// Treatment column (X) [model.treatment; default dei].
    #[arg(long)]
    pub(crate) treatment: Option<String>,
    /// Mediator column(s) (M), comma-separated for parallel mediators
    /// [model.mediators; default agglom].
    #[arg(long)]
    pub(crate) mediator: Option<String>,
    /// Control columns, comma-separated; an empty string for none
    /// [model.controls; default the synthetic panel's six controls, none
    /// with --data and no config file].
    #[arg(long)]
    pub(crate) controls: Option<String>,
    /// Excluded instrument(s) of the treatment, comma-separated: every
    /// equation is fitted by two-stage least squares (the treatment
    /// instrumented, controls, fixed effects and mediators instrumenting
    /// themselves), with the cluster-robust first-stage F in "iv"
    /// [model.instrument; default none, least squares].
    #[arg(long, value_name = "COL")]
    pub(crate) instrument: Option<String>,
    /// Excluded instrument(s) of the mediators, comma-separated, at least
    /// one per mediator: the outcome equation is fitted by two-stage least
    /// squares with the mediators endogenous (R's mediation::mediate_tsls),
    /// so b, c' and a*b are 2SLS; the mediator equations (a) stay least
    /// squares unless --instrument instruments the treatment too. Each
    /// mediator's cluster-robust first-stage F is in "mediator_iv"; F below
    /// 10 is warned of [model.mediator_instrument; default none].
    #[arg(long, value_name = "COL")]
    pub(crate) mediator_instrument: Option<String>,
    /// Moderator column W of the paths (conditional process analysis): the
    /// moderated equations gain W and its product with the path's cause,
    /// formed on the data before the fixed effects are absorbed; reports
    /// the conditional indirect effects, the index of moderated mediation
    /// and the interaction coefficients; with several mediators, each
    /// one's and their total [model.moderator; default none].
    #[arg(long, value_name = "COL")]
    pub(crate) moderator: Option<String>,
    /// The moderated paths, comma-separated: a (X -> M), b (M -> Y),
    /// direct (X -> Y). PROCESS model 7 is a, 14 b, 58 a,b, 59 a,b,direct
    /// [model.moderated; default a,b].
    #[arg(long, value_name = "PATHS")]
    pub(crate) moderated: Option<String>,
    /// Mean-centre the treatment and the moderator before forming the
    /// products: a, b and c' are then the effects at W's mean
    /// [model.center; default off].
    #[arg(long)]
    pub(crate) center: bool,
    /// Moderator values of the conditional effects: comma-separated values,
    /// mean-sd, percentiles (the 16th, 50th and 84th, as PROCESS) or levels
    /// (a categorical moderator: one indicator per level above the lowest,
    /// effects at every level) [model.at; default percentiles].
    #[arg(long, value_name = "VALUES")]
    pub(crate) at: Option<String>,
    /// Add the treatment-mediator interaction X*M (one per mediator) to the
    /// outcome equation: natural direct and indirect effects (VanderWeele and Vansteelandt)
    /// of moving X from the mean to the mean plus one SD, or --contrast
    /// [model.interaction; default off].
    #[arg(long)]
    pub(crate) interaction: bool,
    /// The interaction model's change of the treatment, X0,X1
    /// [model.contrast; default the mean to the mean plus one SD].
    #[arg(long, value_name = "X0,X1", value_delimiter = ',')]
    pub(crate) contrast: Vec<f64>,
    /// Serial mediators, comma-separated in the chain's order (PROCESS
    /// model 6): each mediator is regressed on the treatment and the ones
    /// before it, and every path X -> M1 -> M2 -> Y is reported with the
    /// total and their differences; 2 to 4 mediators; instead of
    /// --mediator [model.serial = true, with model.mediators; default off].
    #[arg(long, value_name = "M1,M2", conflicts_with = "mediator")]
    pub(crate) serial: Option<String>,
    /// Omitted-variable bounds of each path (Cinelli and Hazlett 2020): the
    /// partial R-squared of a, b and c', the robustness values (the
    /// strength of a confounder that removes the estimate, or takes its
    /// interval to zero), and with --benchmark the estimates adjusted for
    /// a confounder as strong as a control [sensitivity.confounding = true].
    #[arg(long)]
    pub(crate) confounding: bool,
    /// Controls whose strength bounds the confounder's, comma-separated,
    /// e.g. ln_gdp [sensitivity.benchmark; default none].
    #[arg(long, value_name = "COL", value_delimiter = ',')]
    pub(crate) benchmark: Vec<String>,
    /// Multiples of a benchmark's strength, with the regressor and the
    /// dependent alike, comma-separated [sensitivity.kd; default 1,2,3].
    #[arg(long, value_name = "K", value_delimiter = ',')]
    pub(crate) kd: Vec<f64>,
    /// Resample the robustness values too: each path's RV from every
    /// replicate's own Gram matrix, with its bootstrap SD and intervals
    /// (reweighting schemes) [sensitivity.rv_replicates =
    /// true; default off].
    #[arg(long)]
    pub(crate) rv_replicates: bool,
    /// Categorical columns whose groups of clusters (e.g. region, size class)
    /// each get their own model, fitted on the group's rows and resampled with
    /// the pooled run's weights, reported under "groups" as COL=LEVEL, with the
    /// contrasts between groups; '' for none [model.groups; default
    /// region,size for the embedded panel].
    #[arg(long, value_name = "COL")]
    pub(crate) group: Option<String>,
    /// Also fit the model with this set of mediators in parallel
    /// (comma-separated; repeat the option for several sets; '' for none),
    /// on the same sample and with the same replicates: specific indirect
    /// effects and their contrasts under "mediator_models"
    /// [model.also_mediators; default agglom_sec,agglom_ter for the
    /// embedded panel, as the study splits agglomeration].
    #[arg(long, value_name = "COLS")]
    pub(crate) also_mediators: Vec<String>,
    /// Cluster column for the standard errors [model.cluster; default the unit column].
    #[arg(long)]
    pub(crate) cluster: Option<String>,
    /// Fixed effects: none, unit, unit+time, or unit+GROUP^time (unit effects
    /// and group-by-period effects, the groups nesting the units, e.g.
    /// city+province^year: each replicate partials out its own cell
    /// effects, on the CPU engine) [model.fixed_effects; default unit+time].
    #[arg(long, value_name = "FE")]
    pub(crate) fixed_effects: Option<String>,
    /// Confidence level(s) of the intervals, comma-separated, each in (0, 1)
    /// [inference.levels; default 0.95].
    #[arg(long, value_delimiter = ',')]
    pub(crate) level: Vec<f64>,
    /// Draws of the Monte Carlo interval of the indirect effect
    /// [inference.mc_draws; default 100000].
    #[arg(long)]
    pub(crate) mc_draws: Option<u64>,
    /// Seed of every random draw (results are a pure function of it)
    /// [resampling.seed; default 1].
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Name of the run [name; default "paper" for the embedded panel, else the file's stem].
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Folder for the results [output.dir; default results/<name>].
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Print summary.json to stdout instead of the table [output.json].
    #[arg(long)]
    pub(crate) json: bool,
    /// Leave out the SVG pictures (bootstrap distribution, groups' forest
    /// plot, sensitivity curve, sweep axes) [output.plots = false].
    #[arg(long)]
    pub(crate) no_plots: bool,
    /// Also write the main model's replicate statistics: replicates.csv (B
    /// up to 1e6), else replicates.bin (little-endian f64) with
    /// replicates_columns.txt [output.save_replicates].
    #[arg(long)]
    pub(crate) save_replicates: bool,
    /// Resampling scheme: pairs (cluster bootstrap), bayes (Dirichlet weights),
    /// poisson (Poisson(1) weights), jackknife (delete one cluster), wild
    /// (wild cluster bootstrap), permutation (treatment series permuted across
    /// units: placebo p-values), or none [resampling.scheme; default pairs].
    #[arg(long)]
    pub(crate) scheme: Option<String>,
    /// Number of bootstrap replicates B [resampling.replicates; default 10000].
    #[arg(short = 'B', long = "replicates")]
    pub(crate) replicates: Option<u64>,
    /// Bootstrap interval methods, comma-separated: percentile, basic, normal, bc,
    /// bca, studentized (indirect effects, with each replicate's own CR1 SE)
    /// [inference.methods; default percentile,bca].
    #[arg(long, value_delimiter = ',')]
    pub(crate) ci: Vec<String>,
    /// Wild-bootstrap weights: rademacher, mammen, webb or normal
    /// [resampling.weights; default rademacher].
    #[arg(long)]
    pub(crate) weights: Option<String>,
    /// Resample clusters within the groups of this column (stratified
    /// bootstrap) [resampling.strata].
    #[arg(long, value_name = "COL")]
    pub(crate) strata: Option<String>,
    /// Replicates per CPU batch (one matrix multiply each); results do not
    /// depend on it [resampling.batch; default 256].
    #[arg(long)]
    pub(crate) batch: Option<u64>,
    #[command(flatten)]
    pub(crate) engine: EngineFlags,
    /// GPU adapter: the best one whose name contains this (see `medsim devices`);
    /// implies the GPU. wgpu's WGPU_BACKEND etc. also apply [resampling.adapter].
    #[arg(long, value_name = "NAME")]
    pub(crate) adapter: Option<String>,
    /// Largest GPU batch in replicates (0: from the adapter's limits); results
    /// do not depend on it [resampling.gpu_batch; default 0].
    #[arg(long, value_name = "N")]
    pub(crate) gpu_batch: Option<u64>,
    /// With --scheme wild, skip the restricted (null-imposed) bootstrap-t tests
    /// of a, b, c, c'; their p-values then come from the unrestricted draws
    /// [resampling.wild_tests = false].
    #[arg(long)]
    pub(crate) no_wild_tests: bool,
    /// Memory (MiB) for keeping replicate statistics; beyond it exact quantiles
    /// are found by streaming: a second pass replays the replicates
    /// [resampling.memory_mib; default 1024].
    #[arg(long, value_name = "MIB")]
    pub(crate) memory: Option<u64>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

/// Where and how the replicates are computed: the flags every resampling
/// command shares.
#[derive(Args, Default, Clone, PartialEq)]
pub(crate) struct EngineFlags {
    /// Engine: auto (a hardware GPU when there is one and it runs the scheme,
    /// else the CPU), gpu (fail if it cannot), or cpu. Software adapters such
    /// as lavapipe are only used when asked for [resampling.backend; default auto].
    #[arg(long)]
    pub(crate) backend: Option<String>,
    /// Precision of the GPU stages: f32 (default; within 1e-4 bootstrap SDs of
    /// the f64 CPU engine) or f64 (adapters with SHADER_F64) [resampling.precision].
    #[arg(long, value_name = "f32|f64")]
    pub(crate) precision: Option<String>,
    /// Worker threads (0: one per core; a simulation study runs its datasets
    /// in parallel); results do not depend on it [resampling.threads; default 0].
    #[arg(long)]
    pub(crate) threads: Option<u64>,
}

#[derive(Args)]
pub(crate) struct SimulateArgs {
    /// The config file with a [simulation] section.
    #[arg(value_name = "CONFIG.toml", required_unless_present = "resume")]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) flags: SimulateFlags,
    #[command(flatten)]
    pub(crate) scale: ScaleFlags,
}

/// The settings of a simulation study that override its config.
#[derive(Args, Clone, Default, PartialEq)]
pub(crate) struct SimulateFlags {
    /// Datasets per cell [simulation.datasets].
    #[arg(long)]
    pub(crate) datasets: Option<u64>,
    /// Bootstrap replicates per dataset [simulation.replicates].
    #[arg(short = 'B', long)]
    pub(crate) replicates: Option<u64>,
    #[command(flatten)]
    pub(crate) engine: EngineFlags,
    /// Folder for the results [output.dir; default results/<name>].
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Leave out power.svg [output.plots = false].
    #[arg(long)]
    pub(crate) no_plots: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

#[derive(Args)]
pub(crate) struct MergeArgs {
    /// The shard folders (RESULTS-shards/III-of-NNN), or folders holding
    /// them (RESULTS-shards).
    #[arg(value_name = "DIR", required = true)]
    pub(crate) dirs: Vec<PathBuf>,
    /// Folder for the results [default: the run's own, RESULTS].
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Worker threads of the merge (0: one per core) [default: the run's].
    #[arg(long)]
    pub(crate) threads: Option<u64>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// The reduced suite.
    #[arg(long)]
    pub(crate) quick: bool,
    /// The CPU engine and the refit baseline only.
    #[arg(long)]
    pub(crate) cpu_only: bool,
    /// Also each engine's stages on the default problem. The CPU engine's on
    /// one thread: weights, GEMM, solve, studentized SEs and aggregation per
    /// batch, with their share, flops, GFLOP/s and fraction of the thread's
    /// f64 peak (docs/performance.md). Each GPU's: every stage of a batch
    /// timed alone, with its flops and bytes per replicate, GFLOP/s, GB/s,
    /// bound and distance from its roofline; start-up; predictions for named
    /// GPUs (docs/gpu.md).
    #[arg(long)]
    pub(crate) stages: bool,
    /// Print the results as JSON instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Folder for bench/<machine>.json and BENCHMARKS.md [default: results].
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct GenerateArgs {
    /// Where to write the CSV (a new file; an existing one only with --force).
    #[arg(long, value_name = "FILE.csv")]
    pub(crate) out: PathBuf,
    /// Replace FILE.csv if it exists (only a regular file, never a folder,
    /// device or pipe).
    #[arg(long)]
    pub(crate) force: bool,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Number of cities (units).
    #[arg(long, default_value_t = 278)]
    pub(crate) cities: usize,
    /// Number of years (periods), starting in 2011.
    #[arg(long, default_value_t = 10)]
    pub(crate) years: usize,
}
