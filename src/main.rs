//! The `medsim` command: parses arguments into a validated plan, runs it, and
//! maps library errors to exit codes (0 success, 1 internal error, 2 bad
//! input, options or output location).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use medsim::bootstrap::{BackendChoice, ResampleSpec};
use medsim::error::{Error, Result};
use medsim::gpu::Precision;
use medsim::intervals::Method;
use medsim::output::{write_file, write_run_dir};
use medsim::report::render;
use medsim::run::{DataSource, RunPlan, execute};
use medsim::scheme::{Scheme, WildWeights};
use medsim::spec::{FixedEffects, InferenceSpec, ModelSpec};
use medsim::synthetic::{SyntheticParams, default_spec, generate};
use medsim::table::write_csv;

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
    /// Write the study-calibrated synthetic panel as CSV.
    #[command(after_help = GENERATE_EXAMPLES)]
    Generate(GenerateArgs),
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

Column options default to the synthetic panel's names, so a file written by
`medsim generate` needs none. Rows with a missing value (empty, NA, NaN, .) in a
used column are dropped and counted; units left with one observation are dropped.
Results go to results/<name>/summary.json (replaced whole at the end of the run).
Exit codes: 0 success, 2 bad input or options (nothing is written), 1 internal error.";

const GENERATE_EXAMPLES: &str = "Examples:
  medsim generate --out panel.csv
  medsim generate --out big.csv --cities 2000 --years 20 --seed 7

Columns: city, year, province, region (east/central/west), size (large/small-medium),
dei (digital-economy index), agglom (overall agglomeration = mean of agglom_sec and
agglom_ter), log_ci (log carbon intensity) and six controls. The true parameters are
documented in the README and in `medsim::synthetic`.";

#[derive(Args)]
struct RunArgs {
    /// CSV file with one row per unit and period (default: the embedded synthetic panel).
    #[arg(long, value_name = "FILE.csv")]
    data: Option<PathBuf>,
    /// Unit column (cities); the unit fixed effects and default clusters.
    #[arg(long, default_value = "city")]
    unit: String,
    /// Time-period column.
    #[arg(long, default_value = "year")]
    time: String,
    /// Outcome column (Y).
    #[arg(long, default_value = "log_ci")]
    outcome: String,
    /// Treatment column (X).
    #[arg(long, default_value = "dei")]
    treatment: String,
    /// Mediator column(s) (M), comma-separated for parallel mediators.
    #[arg(long, value_delimiter = ',', default_value = "agglom")]
    mediator: Vec<String>,
    /// Control columns, comma-separated; an empty string for none
    /// [default: the synthetic panel's six controls].
    #[arg(long)]
    controls: Option<String>,
    /// Excluded instrument(s) of the treatment, comma-separated: every
    /// equation is fitted by two-stage least squares (the treatment
    /// instrumented, controls, fixed effects and mediators instrumenting
    /// themselves), with the cluster-robust first-stage F in "iv"
    /// [default: none, least squares].
    #[arg(long, value_delimiter = ',', value_name = "COL")]
    instrument: Vec<String>,
    /// Categorical columns whose groups of clusters (e.g. region, size class)
    /// each get their own model, fitted on the group's rows and resampled with
    /// the pooled run's weights, reported under "groups" as COL=LEVEL, with the
    /// contrasts between groups [default: region,size for the embedded panel,
    /// none for --data; --group '' for none].
    #[arg(long, value_delimiter = ',', value_name = "COL")]
    group: Vec<String>,
    /// Also fit the model with this set of mediators in parallel
    /// (comma-separated; repeat the option for several sets), on the same
    /// sample and with the same replicates: specific indirect effects and
    /// their contrasts under "mediator_models" [default:
    /// agglom_sec,agglom_ter for the embedded panel, as the study splits
    /// agglomeration; none for --data; '' for none].
    #[arg(long, value_name = "COLS")]
    also_mediators: Vec<String>,
    /// Cluster column for the standard errors [default: the unit column].
    #[arg(long)]
    cluster: Option<String>,
    /// Fixed effects: none, unit or unit+time.
    #[arg(long, default_value = "unit+time", value_name = "FE")]
    fixed_effects: String,
    /// Confidence level(s) of the intervals, comma-separated, each in (0, 1).
    #[arg(long, value_delimiter = ',', default_value = "0.95")]
    level: Vec<f64>,
    /// Draws of the Monte Carlo interval of the indirect effect.
    #[arg(long, default_value_t = 100_000)]
    mc_draws: u64,
    /// Seed of every random draw (results are a pure function of it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Name of the run [default: "paper" for the embedded panel, else the file's stem].
    #[arg(long)]
    name: Option<String>,
    /// Folder for the results [default: results/<name>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print summary.json to stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Resampling scheme: pairs (cluster bootstrap), bayes (Dirichlet weights),
    /// poisson (Poisson(1) weights), jackknife (delete one cluster), wild
    /// (wild cluster bootstrap), permutation (treatment series permuted across
    /// units: placebo p-values), or none.
    #[arg(long, default_value = "pairs")]
    scheme: String,
    /// Number of bootstrap replicates B.
    #[arg(short = 'B', long = "replicates", default_value_t = 10_000)]
    replicates: u64,
    /// Bootstrap interval methods, comma-separated: percentile, basic, normal, bc,
    /// bca, studentized (indirect effects, with each replicate's own CR1 SE).
    #[arg(long, value_delimiter = ',', default_value = "percentile,bca")]
    ci: Vec<String>,
    /// Wild-bootstrap weights: rademacher, mammen, webb or normal.
    #[arg(long, default_value = "rademacher")]
    weights: String,
    /// Resample clusters within the groups of this column (stratified bootstrap).
    #[arg(long, value_name = "COL")]
    strata: Option<String>,
    /// Replicates per CPU batch (one matrix multiply each); results do not depend on it.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Engine: auto (a hardware GPU when there is one and it runs the scheme,
    /// else the CPU), gpu (fail if it cannot), or cpu. Software adapters such
    /// as lavapipe are only used when asked for.
    #[arg(long, default_value = "auto")]
    backend: String,
    /// GPU adapter: the best one whose name contains this (see `medsim devices`);
    /// implies the GPU. wgpu's WGPU_BACKEND etc. also apply.
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
    /// Precision of the GPU stages: f32 (default; within 1e-4 bootstrap SDs of
    /// the f64 CPU engine) or f64 (adapters with SHADER_F64).
    #[arg(long, value_name = "f32|f64")]
    precision: Option<String>,
    /// Largest GPU batch in replicates (0: from the adapter's limits); results
    /// do not depend on it.
    #[arg(long, default_value_t = 0, value_name = "N")]
    gpu_batch: usize,
    /// Worker threads (0: one per core); results do not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// With --scheme wild, skip the restricted (null-imposed) bootstrap-t tests
    /// of a, b, c, c'; their p-values then come from the unrestricted draws.
    #[arg(long)]
    no_wild_tests: bool,
    /// Memory (MiB) for keeping replicate statistics; beyond it exact quantiles
    /// are found by streaming: a second pass replays the replicates.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    memory: u64,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
struct GenerateArgs {
    /// Where to write the CSV.
    #[arg(long, value_name = "FILE.csv")]
    out: PathBuf,
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

fn plan(args: &RunArgs) -> Result<RunPlan> {
    let controls = match &args.controls {
        Some(list) => split_list(list),
        None => default_spec().controls,
    };
    let mut model = ModelSpec {
        cluster: args.cluster.clone().unwrap_or_else(|| args.unit.clone()),
        unit: args.unit.clone(),
        time: args.time.clone(),
        outcome: args.outcome.clone(),
        treatment: args.treatment.clone(),
        mediators: args.mediator.iter().flat_map(|m| split_list(m)).collect(),
        controls,
        instruments: args.instrument.iter().flat_map(|z| split_list(z)).collect(),
        groups: args
            .group
            .iter()
            .flat_map(|g| split_list(g))
            .chain(args.strata.clone().filter(|s| !args.group.contains(s)))
            .collect(),
        fixed_effects: FixedEffects::parse(&args.fixed_effects)?,
    };
    let mut levels: Vec<f64> = Vec::new();
    for &l in &args.level {
        if !levels.contains(&l) {
            levels.push(l);
        }
    }
    let inference = InferenceSpec {
        levels,
        mc_draws: args.mc_draws,
        seed: args.seed,
    };
    let (data, default_name) = match &args.data {
        None => (
            DataSource::Synthetic(SyntheticParams::default()),
            "paper".to_string(),
        ),
        Some(path) => (
            DataSource::Csv(path.clone()),
            path.file_stem()
                .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned()),
        ),
    };
    let name = args.name.clone().unwrap_or(default_name);
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(Error::InvalidOption {
            option: "--name".into(),
            message: format!(
                "'{name}' cannot name a results folder; use letters, digits, '-' or '_'"
            ),
        });
    }
    let resampling = match args.scheme.trim() {
        "none" => None,
        scheme => Some(ResampleSpec {
            scheme: match Scheme::parse(scheme)? {
                Scheme::Wild(_) => Scheme::Wild(WildWeights::parse(&args.weights)?),
                other => other,
            },
            replicates: args.replicates,
            batch: args.batch,
            threads: args.threads,
            methods: args
                .ci
                .iter()
                .map(|m| Method::parse(m))
                .collect::<Result<_>>()?,
            strata: args.strata.clone(),
            wild_tests: !args.no_wild_tests,
            memory: args.memory.saturating_mul(1 << 20),
            backend: match args.backend.trim() {
                "auto" => BackendChoice::Auto,
                "cpu" => BackendChoice::Cpu,
                "gpu" => BackendChoice::Gpu,
                other => {
                    return Err(Error::InvalidOption {
                        option: "--backend".into(),
                        message: format!("'{other}': expected auto, gpu or cpu"),
                    });
                }
            },
            adapter: args.adapter.clone(),
            precision: args
                .precision
                .as_deref()
                .map(|p| match p.trim() {
                    "f32" => Ok(Precision::F32),
                    "f64" => Ok(Precision::F64),
                    other => Err(Error::InvalidOption {
                        option: "--precision".into(),
                        message: format!("'{other}': expected f32 or f64"),
                    }),
                })
                .transpose()?,
            gpu_batch: args.gpu_batch,
        }),
    };
    let mut group_by: Vec<String> = args.group.iter().flat_map(|g| split_list(g)).collect();
    // The embedded default shows the study's heterogeneity: region and size.
    if args.data.is_none() && args.group.is_empty() {
        group_by = vec!["region".into(), "size".into()];
    }
    for column in &group_by {
        if !model.groups.contains(column) {
            model.groups.push(column.clone());
        }
    }
    // And the split of agglomeration into its secondary and tertiary parts.
    let mut mediator_sets: Vec<Vec<String>> = args
        .also_mediators
        .iter()
        .map(|set| split_list(set))
        .filter(|set| !set.is_empty())
        .collect();
    if args.data.is_none() && args.also_mediators.is_empty() {
        mediator_sets = vec![vec!["agglom_sec".into(), "agglom_ter".into()]];
    }
    mediator_sets.retain(|set| *set != model.mediators);
    let plan = RunPlan {
        name,
        data,
        model,
        inference,
        resampling,
        group_by,
        mediator_sets,
    };
    plan.model.validate()?;
    plan.inference.validate()?;
    Ok(plan)
}

fn run(args: RunArgs) -> Result<()> {
    let plan = plan(&args)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&plan.name));
    if out.exists() && !out.is_dir() {
        return Err(Error::Output {
            path: out,
            reason: "it exists and is not a folder".into(),
        });
    }
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(plan.resampling.as_ref().map_or(0, |r| r.replicates))
            .with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} replicates {human_pos}/{human_len} [{bar:30}] {per_sec:0} eta {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            )
    };
    let summary = execute(&plan, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let json =
        serde_json::to_string_pretty(&summary).map_err(|e| Error::Numerical(e.to_string()))? + "\n";
    write_run_dir(&out, &[("summary.json", json.clone().into_bytes())])?;
    if args.json {
        print!("{json}");
    } else {
        print!("{}", render(&summary));
        println!("\nwritten  {}", out.join("summary.json").display());
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
    let table = generate(SyntheticParams {
        cities: args.cities,
        years: args.years,
        seed: args.seed,
        ..SyntheticParams::default()
    });
    write_file(&args.out, |tmp| write_csv(&table, tmp))?;
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
        println!(
            "no GPU adapter found (on Linux, Mesa's mesa-vulkan-drivers provides lavapipe); the CPU engine runs everything"
        );
        return;
    }
    for (i, a) in list.iter().enumerate() {
        println!(
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
        Command::Run(args) => run(args),
        Command::Generate(args) => generate_cmd(args),
        Command::Devices => {
            devices();
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
