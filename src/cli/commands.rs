//! The commands: run (and sensitivity), sweep, simulate, bench, generate
//! and devices, and `--resume` and `merge`, which run a stored command
//! line again.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::cli::STDOUT_IS_DATA;
use crate::cli::args::{
    BenchArgs, Cli, Command, EngineFlags, GenerateArgs, MergeArgs, RunArgs, ScaleFlags,
    SimulateArgs, SimulateFlags,
};
use crate::cli::driver::{
    Session, describe, engine_of, merge_engine, only_resume, progress_bar, resume_alone,
};
use crate::cli::flags::{ENGINE_FLAGS, SIMULATE_FLAGS, apply_flags, run_config};
use crate::data::synthetic::{SyntheticParams, generate};
use crate::data::table::write_csv;
use crate::error::{Error, Result};
use crate::output::files::{check_ours, write_file};
use crate::output::manifest::{Manifest, resolve_inputs, run_folder};
use crate::output::report::render;
use crate::output::scale::{Mode, Scale};
use crate::resample::checkpoint::Shard;
use crate::study::config::{self, Config};
use crate::study::run::execute_timed;

pub(crate) fn run(args: RunArgs, sensitivity: bool, scale: Option<Scale>) -> Result<()> {
    if let Some(resumed) = resume_if_asked(&args) {
        return resumed;
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
    if sensitivity {
        // The curve, whatever else the section asks for.
        let section = config.sensitivity.get_or_insert_with(Default::default);
        section.rho.get_or_insert_with(Default::default);
    }
    let mut plan = config.plan(&origin)?;
    let inputs = resolve_inputs(&mut config, &plan)?;
    let out = config.out_dir();
    let command = if sensitivity { "sensitivity" } else { "run" };
    let mut session = Session::start(
        &scale,
        command,
        out.clone(),
        &inputs,
        &[&config],
        plan.resampling.is_some(),
        args.flags.quiet,
    )?;
    if let Some(spec) = plan.resampling.as_mut() {
        session.attach(spec, None)?;
    }
    let bar = progress_bar(
        args.flags.quiet,
        plan.resampling.as_ref().map_or(0, |r| r.replicates),
        "{spinner} replicates {human_pos}/{human_len} [{bar:30}] {per_sec:0} eta {eta}",
    );
    let executed = execute_timed(&plan, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
        Ok(())
    });
    bar.finish_and_clear();
    let (summary, timings) = executed?;
    let store = plan.resampling.as_ref().and_then(|s| s.store.clone());
    session.note_engine(engine_of(&summary));
    if session.finish_shard()? {
        return Ok(());
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
    let files = run_folder(&config, &inputs, &summary, &timings)?;
    session.write(&files)?;
    if config.output.json {
        STDOUT_IS_DATA.store(true, std::sync::atomic::Ordering::Relaxed);
        out!("{}", String::from_utf8_lossy(&files[0].1));
    } else {
        let text = render(&summary);
        if crate::output::report::colour_wanted() {
            out!("{}", crate::output::report::colourize(&text));
        } else {
            out!("{text}");
        }
        outln!("\nwritten  {}", out.join("summary.json").display());
    }
    Ok(())
}

/// With `--resume DIR` (and nothing else but what it allows): the
/// checkpoint's own command line, continued.
fn resume_if_asked(args: &RunArgs) -> Option<Result<()>> {
    let dir = args.scale.resume.as_ref()?;
    Some(only_resume(args).and_then(|()| {
        resume(
            dir,
            &args.scale,
            args.flags.quiet,
            args.flags.engine.threads,
        )
    }))
}

/// `medsim sweep CONFIG`: every point of the config's [sweep], checked
/// first, then run back to back; sweep.csv and each point's folder.
pub(crate) fn sweep(args: RunArgs, scale: Option<Scale>) -> Result<()> {
    if let Some(resumed) = resume_if_asked(&args) {
        return resumed;
    }
    let scale = scale.map_or_else(|| args.scale.scale(), Ok)?;
    let path = args.config.as_ref().ok_or_else(|| Error::InvalidOption {
        option: "CONFIG".into(),
        message: "medsim sweep needs a config file with a [sweep] table (see configs/)".into(),
    })?;
    let (base, mut origin) = config::read(path)?;
    let (keys, points) = crate::study::sweep::points(&origin)?;
    // The flags, applied to the file's base, are refused on swept keys.
    let mut base_flags = base.clone();
    apply_flags(&args.flags, true, &mut base_flags, &mut origin)?;
    crate::study::sweep::check_flags(&keys, &origin.flags)?;
    origin.swept = keys.clone();
    if args.manifest.is_some() {
        return Err(Error::InvalidOption {
            option: "--manifest".into(),
            message: "a sweep is replayed from its config; each point's manifest.json replays \
                      that point with `medsim run --manifest`"
                .into(),
        });
    }
    let plans = point_plans(&args, &points, &mut origin)?;
    let out = base_flags.out_dir();
    let configs: Vec<&Config> = plans.iter().map(|(c, _, _)| c).collect();
    let mut all_inputs: Vec<PathBuf> = plans.iter().flat_map(|(_, _, i)| i.clone()).collect();
    all_inputs.sort();
    all_inputs.dedup();
    let resamples = plans.iter().any(|(_, p, _)| p.resampling.is_some());
    let mut session = Session::start(
        &scale,
        "sweep",
        out.clone(),
        &all_inputs,
        &configs,
        resamples,
        args.flags.quiet,
    )?;
    let started = std::time::Instant::now();
    let bar = progress_bar(
        args.flags.quiet,
        plans.len() as u64 * 1000,
        "{spinner} sweep point {msg} [{bar:30}] {percent}% eta {eta}",
    );
    let (rows, mut files, summaries) = run_points(&plans, &points, &mut session, &bar)?;
    bar.finish_and_clear();
    // A shard's part is marked complete only now that every point's part
    // is stored.
    if session.finish_shard()? {
        return Ok(());
    }
    let table = crate::study::sweep::csv_text(&crate::study::sweep::header(&keys), &rows)?;
    files.push(("sweep.csv".into(), table.into_bytes()));
    if base_flags.output.plots {
        let along: Vec<_> = points
            .iter()
            .zip(&summaries)
            .map(|(p, s)| (p.values.clone(), s))
            .collect();
        for (name, text) in crate::output::plots::sweep(&keys, &along) {
            files.push((name, text.into_bytes()));
        }
    }
    session.write(&files)?;
    let seconds = started.elapsed().as_secs_f64();
    print_sweep(&base_flags.name, &keys, &points, &rows, seconds);
    outln!("written  {}", out.join("sweep.csv").display());
    Ok(())
}

/// A sweep's run and each point's config, validated plan and inputs.
type PointPlan = (Config, crate::study::run::RunPlan, Vec<PathBuf>);

/// Run every point of a sweep in order, each drawing its replicates through
/// its folder of the sweep's store. Gives the sweep table's rows, each
/// point's files and summary (none for a shard's part, which only stores
/// replicates).
#[allow(clippy::type_complexity)]
fn run_points(
    plans: &[PointPlan],
    points: &[crate::study::sweep::Point],
    session: &mut Session,
    bar: &indicatif::ProgressBar,
) -> Result<(
    Vec<Vec<String>>,
    Vec<(String, Vec<u8>)>,
    Vec<crate::study::summary::Summary>,
)> {
    let n = plans.len() as u64;
    let width = n.to_string().len().max(3);
    let mut files = Vec::new();
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for (k, ((config, plan, inputs), point)) in plans.iter().zip(points).enumerate() {
        bar.set_message(format!("{}/{n}", k + 1));
        let offset = k as u64 * 1000;
        let mut plan = plan.clone();
        if let Some(spec) = plan.resampling.as_mut() {
            session.attach(spec, Some(&format!("p{:0width$}", k + 1)))?;
        }
        let plan = &plan;
        let (summary, timings) = execute_timed(plan, &|done, total| {
            bar.set_position(offset + 1000 * done / total.max(1));
            Ok(())
        })
        .map_err(|e| Error::InvalidOption {
            option: format!("sweep point {} ({})", k + 1, describe(&point.values)),
            message: e.to_string(),
        })?;
        if session.is_shard() {
            session.note_engine(engine_of(&summary));
            bar.set_position(offset + 1000);
            continue;
        }
        rows.extend(crate::study::sweep::rows(k + 1, &point.values, &summary));
        for (name, bytes) in run_folder(config, inputs, &summary, &timings)? {
            files.push((format!("points/{:0width$}/{name}", k + 1), bytes));
        }
        summaries.push(summary);
        bar.set_position(offset + 1000);
    }
    Ok((rows, files, summaries))
}

/// Every sweep point's config (the flags applied), validated plan and
/// inputs (for its manifest), before any work.
fn point_plans(
    args: &RunArgs,
    points: &[crate::study::sweep::Point],
    origin: &mut config::Origin,
) -> Result<Vec<PointPlan>> {
    let mut plans = Vec::with_capacity(points.len());
    for point in points {
        let mut c = point.config.clone();
        apply_flags(&args.flags, true, &mut c, origin)?;
        let plan = c.plan(origin)?;
        let inputs = resolve_inputs(&mut c, &plan)?;
        plans.push((c, plan, inputs));
    }
    Ok(plans)
}

/// The sweep's one-line summary and each point's pooled indirect effect
/// (from sweep.csv's `rows`).
fn print_sweep(
    name: &str,
    keys: &[String],
    points: &[crate::study::sweep::Point],
    rows: &[Vec<String>],
    seconds: f64,
) {
    let n = points.len();
    let width = n.to_string().len().max(3);
    outln!(
        "sweep {name}: {n} points over {} in {seconds:.1} s",
        keys.join(", ")
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
}

/// `medsim simulate CONFIG`: the study of the config's [simulation].
pub(crate) fn simulate(args: SimulateArgs, scale: Option<Scale>) -> Result<()> {
    let f = &args.flags;
    if let Some(dir) = &args.scale.resume {
        let rest = SimulateFlags {
            quiet: false,
            engine: EngineFlags {
                threads: None,
                ..f.engine.clone()
            },
            ..f.clone()
        };
        if args.config.is_some() || rest != SimulateFlags::default() {
            return Err(resume_alone());
        }
        return resume(dir, &args.scale, f.quiet, f.engine.threads);
    }
    let scale = scale.map_or_else(|| args.scale.scale(), Ok)?;
    let path = args.config.as_ref().ok_or_else(|| Error::InvalidOption {
        option: "CONFIG".into(),
        message: "medsim simulate needs a config file with a [simulation] section".into(),
    })?;
    let (mut c, mut origin) = config::read(path)?;
    crate::cli::flags::apply_table(SIMULATE_FLAGS, f, &mut c, &mut origin);
    crate::cli::flags::apply_table(ENGINE_FLAGS, &f.engine, &mut c, &mut origin);
    let study = c.study(&origin)?;
    // What runs; the summary describes the study as configured.
    let out = c.out_dir();
    let mut session = Session::start(&scale, "simulate", out.clone(), &[], &[&c], true, f.quiet)?;
    let mut running = study.clone();
    if session.merges() {
        merge_engine(&mut running.resampling);
    }
    let total = study.cells.len() as u64 * study.datasets;
    let bar = progress_bar(
        f.quiet,
        total,
        "{spinner} datasets {human_pos}/{human_len} [{bar:30}] {per_sec:0} eta {eta}",
    );
    let store = session.store(None)?;
    let ran = crate::study::simulate::run_stored(
        &running,
        c.resampling.threads as usize,
        &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
            Ok(())
        },
        store.as_ref().map(|s| s.0.as_ref()),
    );
    bar.finish_and_clear();
    let (cells, sizes, seconds) = ran?;
    if session.finish_shard()? {
        return Ok(());
    }
    let summary =
        crate::study::simulate::SimulationSummary::new(&c.name, &study, cells, sizes, seconds);
    let json =
        serde_json::to_string_pretty(&summary).map_err(|e| Error::Numerical(e.to_string()))? + "\n";
    let mut files = vec![
        ("simulation.json".to_string(), json.into_bytes()),
        ("simulation.csv".to_string(), summary.csv().into_bytes()),
    ];
    if c.output.plots
        && let Some((name, text)) = crate::output::plots::power(&summary)
    {
        files.push((name, text.into_bytes()));
    }
    session.write(&files)?;
    out!("{}", summary.render());
    outln!("\nwritten  {}", out.join("simulation.json").display());
    Ok(())
}

/// `medsim threshold`: the panel threshold model's analysis, then its
/// files (threshold.json, threshold.txt, the LR plots).
pub(crate) fn threshold(args: RunArgs, scale: Option<Scale>) -> Result<()> {
    if let Some(resumed) = resume_if_asked(&args) {
        return resumed;
    }
    if args.manifest.is_some() {
        return Err(Error::InvalidOption {
            option: "--manifest".into(),
            message: "replays a `medsim run`; medsim threshold takes its config file".into(),
        });
    }
    let scale = scale.map_or_else(|| args.scale.scale(), Ok)?;
    let (mut c, origin) = run_config(&args)?;
    // -B gives the F tests' replicates.
    if origin.gave("resampling.replicates")
        && let Some(t) = c.threshold.as_mut()
    {
        t.replicates = c.resampling.replicates;
    }
    let mut plan = c.threshold_plan(&origin)?;
    let mut inputs = Vec::new();
    if let crate::study::run::DataSource::File { path, .. } = &plan.data {
        inputs.push(std::path::absolute(path).map_err(|e| Error::InputFile {
            path: path.clone(),
            reason: e.to_string(),
        })?);
    }
    let out = c.out_dir();
    let quiet = args.flags.quiet;
    let resamples = plan.replicates > 0
        || plan
            .mediation
            .as_ref()
            .is_some_and(|m| m.resampling.is_some());
    let mut session = Session::start(
        &scale,
        "threshold",
        out.clone(),
        &inputs,
        &[&c],
        resamples,
        quiet,
    )?;
    if session.merges() {
        // The parts' replicates are read, not computed: any engine here.
        plan.engine.backend = crate::resample::spec::BackendChoice::Auto;
        plan.engine.adapter = None;
        plan.engine.precision = None;
        if let Some(spec) = plan.mediation.as_mut().and_then(|m| m.resampling.as_mut()) {
            merge_engine(spec);
            spec.precision = None;
        }
    }
    let store = session.store(None)?;
    let bar = progress_bar(
        quiet,
        0,
        "{spinner} bootstrap replicates {human_pos}/{human_len} [{bar:30}] {per_sec:0} eta {eta}",
    );
    let ran = crate::study::threshold::run(&plan, store.as_ref(), &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
        Ok(())
    });
    bar.finish_and_clear();
    let (summary, mediation) = ran?;
    session.note_engine(summary.model.backend.clone());
    if session.finish_shard()? {
        return Ok(());
    }
    let json =
        serde_json::to_string_pretty(&summary).map_err(|e| Error::Numerical(e.to_string()))? + "\n";
    let report = crate::output::report::render_threshold(&summary);
    let mut files = vec![
        ("threshold.json".to_string(), json.into_bytes()),
        ("threshold.txt".to_string(), report.clone().into_bytes()),
        (
            "summary.md".to_string(),
            crate::output::paper_tables::threshold_markdown(&summary).into_bytes(),
        ),
        (
            "tables.tex".to_string(),
            crate::output::paper_tables::threshold_latex(&summary).into_bytes(),
        ),
    ];
    if c.output.plots {
        for (name, text) in crate::output::plots::threshold_lr(&summary) {
            files.push((name, text.into_bytes()));
        }
    }
    // The regime mediation's run, as `medsim run` writes it.
    if let Some(run) = &mediation {
        for (name, bytes) in crate::output::files::run_files(run, c.output.plots)? {
            files.push((format!("mediation/{name}"), bytes));
        }
    }
    session.write(&files)?;
    out!("{report}");
    outln!("\nwritten  {}", out.join("threshold.json").display());
    Ok(())
}

/// `medsim bench`: the suite on every engine, then its files.
pub(crate) fn bench(args: BenchArgs) -> Result<()> {
    use crate::study::bench::{Engine, Report};
    let mut engines = vec![Engine::Cpu];
    if !args.cpu_only {
        for a in crate::study::backend::adapters() {
            engines.push(Engine::Gpu(a.name));
        }
    }
    engines.push(Engine::Refit);
    // medsim's own files in a folder it does not claim: checked before
    // the suite runs, and each machine's report before it is replaced.
    const HEADER: &str = "# medsim benchmarks\n";
    let dir = args.out.unwrap_or_else(|| PathBuf::from("results"));
    let md_path = dir.join("BENCHMARKS.md");
    check_ours(&md_path, "benchmark table", |t| t.starts_with(HEADER))?;
    let report = crate::study::bench::run(&engines, args.quick, args.stages, &|what| {
        eprintln!("bench: {what}");
    })?;
    let json =
        serde_json::to_string_pretty(&report).map_err(|e| Error::Numerical(e.to_string()))? + "\n";
    let file = dir.join("bench").join(format!("{}.json", report.slug()));
    check_ours(&file, "benchmark report", |t| {
        serde_json::from_str::<Report>(t).is_ok()
    })?;
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
    let mut md = format!(
        "{HEADER}\nWritten by `medsim bench` (see docs/performance.md): one section per machine, \
         from `bench/*.json` beside this file.\n\n"
    );
    for r in &reports {
        md.push_str(&r.markdown());
        md.push('\n');
    }
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

pub(crate) fn generate_cmd(args: GenerateArgs) -> Result<()> {
    for (option, value) in [("--cities", args.cities), ("--years", args.years)] {
        if value < 2 {
            return Err(Error::InvalidOption {
                option: option.into(),
                message: format!("{value} is too few; a panel needs at least 2"),
            });
        }
    }
    crate::data::synthetic::check_size("--cities", args.cities, args.years)?;
    let target = crate::output::files::file_target(&args.out, args.force)?;
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

pub(crate) fn devices() {
    if !crate::study::backend::GPU_BUILD {
        outln!("{}", crate::study::backend::no_gpu_build());
        return;
    }
    let list = crate::study::backend::adapters();
    if list.is_empty() {
        outln!(
            "no GPU adapter found (on Linux, Mesa's mesa-vulkan-drivers provides lavapipe); the CPU engine runs everything"
        );
        return;
    }
    for (i, a) in list.iter().enumerate() {
        outln!(
            "{i}: {} ({}, {}, driver {})\n   shader f64: {}, max storage binding {} MiB, max buffer {} MiB, max workgroups per dimension {}",
            a.name,
            a.device_type,
            a.api,
            a.driver,
            if a.shader_f64 { "yes" } else { "no" },
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroups_per_dimension
        );
    }
}

/// `--resume DIR`: the command line kept in DIR's checkpoint, run again in
/// its folder, reading back the replicates the checkpoint holds.
pub(crate) fn resume(
    dir: &std::path::Path,
    flags: &ScaleFlags,
    quiet: bool,
    threads: Option<u64>,
) -> Result<()> {
    let header =
        crate::resample::checkpoint::Header::read(&crate::output::scale::checkpoint_dir(dir))?;
    let mut scale = ScaleFlags {
        resume: None,
        shard: None,
        ..flags.clone()
    }
    .scale()?;
    scale.mode = Mode::Checkpoint { keep: true };
    scale.resumes = Some(crate::output::results_dir::resolve(dir));
    replay(&header, scale, None, quiet, threads)
}

/// Run a checkpoint's or shard's command line again, in the folder it ran
/// in, with `scale` (and results to `out`, on `threads`, when given).
pub(crate) fn replay(
    header: &crate::resample::checkpoint::Header,
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
        Command::Threshold(a) => ("threshold", &a.scale),
        _ => {
            return Err(bad(format!(
                "its stored command line is not a run, sensitivity, sweep, simulation or threshold \
             analysis ({}); \
             the folder's {} was not written by medsim",
                header.argv.join(" "),
                crate::resample::checkpoint::HEADER_FILE
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
            crate::resample::checkpoint::HEADER_FILE
        )));
    }
    match cli.command {
        Command::Run(mut a) | Command::Sensitivity(mut a) => {
            a.flags.quiet |= quiet;
            a.flags.out = out.or(a.flags.out);
            a.flags.engine.threads = threads.or(a.flags.engine.threads);
            run(a, header.command == "sensitivity", Some(scale))
        }
        Command::Sweep(mut a) => {
            a.flags.quiet |= quiet;
            a.flags.out = out.or(a.flags.out);
            a.flags.engine.threads = threads.or(a.flags.engine.threads);
            sweep(a, Some(scale))
        }
        Command::Simulate(mut a) => {
            a.flags.quiet |= quiet;
            a.flags.out = out.or(a.flags.out);
            a.flags.engine.threads = threads.or(a.flags.engine.threads);
            simulate(a, Some(scale))
        }
        Command::Threshold(mut a) => {
            a.flags.quiet |= quiet;
            a.flags.out = out.or(a.flags.out);
            a.flags.engine.threads = threads.or(a.flags.engine.threads);
            threshold(a, Some(scale))
        }
        _ => Err(bad(format!(
            "`medsim {}` keeps no checkpoint",
            header.command
        ))),
    }
}

/// `medsim merge DIR...`: the run the shards split, from their replicates.
pub(crate) fn merge(args: MergeArgs) -> Result<()> {
    let dirs: Vec<PathBuf> = args
        .dirs
        .iter()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
        .collect();
    let (header, dirs) = crate::output::scale::shards(&dirs)?;
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
