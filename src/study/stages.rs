//! Where an engine's time goes (`medsim bench --stages`). On the CPU: one
//! batch of the bench's default problem on one thread, its stages timed as
//! they run (weights, GEMM, solve, studentized SEs) and the aggregation of
//! its statistics, each with its flops and share of a thread's measured
//! f64 GEMM peak. On a GPU: each stage of one batch timed alone on the device, the
//! readback and the host's finishing, the start-up (a fresh context:
//! adapter, device, shader compilation, pipelines; then the engine's
//! set-up), and beside each stage its work (`crate::gpu::roofline`): flops
//! and bytes per replicate, the achieved GFLOP/s and GB/s, its bound and
//! how far it is from its roofline at the adapter's measured peaks; then
//! the replicates per second the roofline predicts here and on named GPUs.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::design::Design;
use crate::model::estimate::SystemFit;
use crate::model::panel::Panel;
use crate::resample::scheme::Scheme;

/// One stage of a profiled batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRow {
    pub stage: String,
    /// Seconds of the batch's stage on the device (readback: to the host).
    pub seconds: f64,
    pub flops_per_replicate: f64,
    pub bytes_per_replicate: f64,
    pub gflops: f64,
    pub gbs: f64,
    /// "compute" or "memory" at the adapter's measured peaks.
    pub bound: String,
    /// The stage's roofline time over its measured time (1: at the
    /// ceiling).
    pub of_roofline: f64,
}

/// The measured ceilings of the profiled adapter.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MeasuredPeaks {
    /// f32 fused multiply-adds (`shaders/peak.wgsl`), GFLOP/s.
    pub gflops: f64,
    /// Buffer-to-buffer copy, GB/s read plus written.
    pub memory_gbs: f64,
    /// Copy into a mapped staging buffer, GB/s.
    pub link_gbs: f64,
}

/// A predicted rate on a named GPU, from its published peaks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prediction {
    pub gpu: String,
    pub replicates_per_second: f64,
}

/// One workload's stages on one adapter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageProfile {
    pub engine: String,
    pub workload: String,
    pub precision: String,
    /// Clusters, GEMM width, q.
    pub clusters: usize,
    pub width: usize,
    pub q: usize,
    /// Replicates in the profiled batch.
    pub batch: usize,
    /// Seconds to open a fresh context (adapter, device).
    pub context_seconds: f64,
    /// Seconds to compile every stage in f32 on it (shader modules and
    /// pipelines; a run compiles only the stages it uses, once per process).
    #[serde(default)]
    pub compile_seconds: f64,
    /// Seconds to build the engine (whitening, uploads, buffers).
    pub engine_seconds: f64,
    pub stages: Vec<StageRow>,
    /// Seconds of the host's finishing of the batch (f64 statistics).
    pub finish_seconds: f64,
    /// The batch's replicates over its stages' and finishing's seconds.
    pub replicates_per_second: f64,
    pub peaks: MeasuredPeaks,
    /// What the roofline allows at the measured peaks.
    pub roofline_replicates_per_second: f64,
    pub predictions: Vec<Prediction>,
}

/// The problem a profile runs on.
pub struct Problem<'a> {
    pub design: &'a Design,
    pub fit: &'a SystemFit,
    pub panel: &'a Panel,
}

/// The workloads profiled: pairs, wild, permutation and studentized pairs,
/// each stage of a batch of `batch` replicates (a sixteenth of it, at least
/// 256, on a software adapter, as the bench runs a hundredth of its
/// replicates there) timed `repeats` times (the median) after a first run.
#[cfg(feature = "gpu")]
pub fn profile(
    adapter: &str,
    problem: &Problem,
    batch: usize,
    repeats: usize,
) -> Result<Vec<StageProfile>> {
    use crate::gpu::engine::{GpuEngine, GpuOptions};
    use crate::resample::engine::Precision;
    use crate::resample::scheme::{WeightPlan, WildWeights};

    let started = Instant::now();
    let fresh = crate::gpu::GpuContext::new(Some(adapter))?;
    let context_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    if let Some(fresh) = &fresh {
        fresh.compile_all(Precision::F32)?;
    }
    let compile_seconds = started.elapsed().as_secs_f64();
    drop(fresh);
    let ctx = crate::gpu::shared_context(Some(adapter))?
        .ok_or_else(|| crate::error::Error::Gpu(format!("no adapter named like '{adapter}'")))?;
    let (memory_gbs, link_gbs) = ctx.bandwidth_peaks()?;
    let peaks = MeasuredPeaks {
        gflops: ctx.arithmetic_peak(Precision::F32)?,
        memory_gbs,
        link_gbs,
    };
    let batch = match crate::gpu::is_hardware(&ctx.info) {
        true => batch,
        false => (batch / 16).max(256),
    };
    let (design, fit) = (problem.design, problem.fit);
    let g = design.n_clusters;
    let mut out = Vec::new();
    for (workload, scheme, studentize) in [
        ("pairs", Scheme::Pairs, false),
        ("wild", Scheme::Wild(WildWeights::Rademacher), false),
        ("permutation", Scheme::Permutation, false),
        ("pairs, studentized", Scheme::Pairs, true),
    ] {
        let options = GpuOptions {
            precision: Precision::F32,
            studentize,
            ..GpuOptions::default()
        };
        let started = Instant::now();
        let engine = match scheme {
            Scheme::Permutation => {
                GpuEngine::permutation(ctx, design, fit, problem.panel, 1, options)?
            }
            _ => GpuEngine::new(
                ctx,
                design,
                fit,
                WeightPlan::new(scheme, 1, g, None),
                options,
            )?,
        };
        let engine_seconds = started.elapsed().as_secs_f64();
        let times = engine.stage_times(batch, repeats)?;
        out.push(StageProfile {
            engine: format!("gpu: {adapter}"),
            workload: workload.into(),
            context_seconds,
            compile_seconds,
            engine_seconds,
            ..beside_roofline(&times, &engine.dims(), peaks)
        });
    }
    Ok(out)
}

/// A batch's measured stages beside their work and roofline at `peaks`, and
/// the predictions at named GPUs' published peaks (engine, workload and
/// start-up left for the caller).
#[cfg(feature = "gpu")]
fn beside_roofline(
    times: &crate::gpu::engine::StageTimes,
    dims: &crate::gpu::roofline::Dims,
    peaks: MeasuredPeaks,
) -> StageProfile {
    use crate::gpu::roofline::{NAMED_GPUS, Peaks, Stage, Work, on_hardware, predicted_rate, work};
    let measured = Peaks {
        gflops: peaks.gflops,
        memory_gbs: peaks.memory_gbs,
        link_gbs: peaks.link_gbs,
    };
    let n = times.count as f64;
    let worked_at = |d: &crate::gpu::roofline::Dims| -> Vec<(Stage, Work)> {
        times.stages.iter().map(|&(s, _)| (s, work(s, d))).collect()
    };
    let worked = worked_at(dims);
    let stages = times
        .stages
        .iter()
        .zip(&worked)
        .map(|(&(stage, seconds), &(_, w))| StageRow {
            stage: stage.as_str().into(),
            seconds,
            flops_per_replicate: w.flops,
            bytes_per_replicate: w.bytes,
            gflops: w.flops * n / seconds / 1e9,
            gbs: w.bytes * n / seconds / 1e9,
            bound: w.bound(stage, &measured).into(),
            of_roofline: w.seconds(stage, &measured) * n / seconds,
        })
        .collect();
    let total: f64 = times.stages.iter().map(|(_, t)| t).sum::<f64>() + times.finish;
    StageProfile {
        engine: String::new(),
        workload: String::new(),
        precision: "f32".into(),
        clusters: dims.clusters,
        width: dims.width,
        q: dims.q,
        batch: times.count,
        context_seconds: 0.0,
        compile_seconds: 0.0,
        engine_seconds: 0.0,
        stages,
        finish_seconds: times.finish,
        replicates_per_second: n / total,
        peaks,
        roofline_replicates_per_second: predicted_rate(&worked, &measured),
        predictions: {
            // The named GPUs run the workgroup-memory GEMM.
            let worked = worked_at(&on_hardware(dims));
            NAMED_GPUS
                .iter()
                .map(|(name, p)| Prediction {
                    gpu: name.to_string(),
                    replicates_per_second: predicted_rate(&worked, p),
                })
                .collect()
        },
    }
}

/// A CPU-only build has no GPU stages to profile.
#[cfg(not(feature = "gpu"))]
pub fn profile(_: &str, _: &Problem, _: usize, _: usize) -> Result<Vec<StageProfile>> {
    Err(crate::study::backend::no_gpu_build())
}

/// The CPU's measured f64 GEMM ceiling in GFLOP/s: every worker thread
/// multiplies its own 256 x 256 matrices with the CPU engine's GEMM
/// (matrixmultiply's dgemm, which uses the widest vector instructions the
/// CPU has, chosen at run time), rounds doubled until one takes 0.3 s; the
/// best of three rounds at that size.
pub fn cpu_peak() -> f64 {
    use rayon::prelude::*;
    const N: usize = 256;
    let threads = rayon::current_num_threads();
    let a: Vec<f64> = (0..N * N).map(|i| (i % 97) as f64 * 1e-2).collect();
    let round = |reps: usize| -> f64 {
        let started = Instant::now();
        (0..threads).into_par_iter().for_each(|_| {
            let mut c = vec![0.0; N * N];
            for _ in 0..reps {
                // SAFETY: a and c hold N x N row-major values.
                unsafe {
                    matrixmultiply::dgemm(
                        N,
                        N,
                        N,
                        1.0,
                        a.as_ptr(),
                        N as isize,
                        1,
                        a.as_ptr(),
                        N as isize,
                        1,
                        1.0,
                        c.as_mut_ptr(),
                        N as isize,
                        1,
                    );
                }
            }
            std::hint::black_box(&c);
        });
        started.elapsed().as_secs_f64()
    };
    let mut reps = 1;
    round(reps);
    while round(reps) < 0.3 && reps < 1 << 20 {
        reps *= 2;
    }
    let best = (0..3).map(|_| round(reps)).fold(f64::INFINITY, f64::min);
    (threads * reps) as f64 * 2.0 * (N * N * N) as f64 / best / 1e9
}

/// Flops per replicate of the CPU engine's GEMM and solve for `scheme` on
/// `design`: the weights times the per-cluster Gram columns that vary
/// across clusters, and the Cholesky factor with a solve per equation; the
/// wild bootstrap's GEMM of the weights with the cluster influences (its
/// statistics counted as none).
pub fn cpu_flops(design: &Design, scheme: Scheme) -> (f64, f64) {
    let g = design.n_clusters as f64;
    let m = design.layout.n_mediators;
    if let Scheme::Wild(_) = scheme {
        return (2.0 * g * (2.0 * m as f64 + 2.0), 0.0);
    }
    let width = crate::resample::engine::split_columns(design).0.len();
    (2.0 * g * width as f64, system_flops(design.q(), m))
}

/// The Cholesky factor of a q x q system and a solve per equation (the
/// total, each mediator's, the outcome's).
pub fn system_flops(q: usize, mediators: usize) -> f64 {
    let (q, m) = (q as f64, mediators as f64);
    q * q * q / 3.0 + (m + 2.0) * q * q
}

/// One workload's stages on one CPU thread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CpuStageProfile {
    pub workload: String,
    /// Clusters, GEMM width (the Gram's columns that vary across
    /// clusters, or the wild bootstrap's coefficients), q.
    pub clusters: usize,
    pub width: usize,
    pub q: usize,
    /// Replicates in the profiled batch (the engine's batch size).
    pub batch: usize,
    pub stages: Vec<CpuStageRow>,
    /// The batch's replicates over its stages' seconds, on one thread.
    pub replicates_per_second: f64,
    /// One thread's f64 GEMM peak ([`cpu_peak`] on one thread).
    pub peak_gflops: f64,
}

/// One stage of a CPU batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CpuStageRow {
    pub stage: String,
    /// Seconds per batch (the median of the repeats).
    pub seconds: f64,
    /// Of the batch's total.
    pub share: f64,
    /// Floating-point work per replicate (0: integer or sorting work).
    pub flops_per_replicate: f64,
    pub gflops: f64,
    /// `gflops` over the thread's peak.
    pub of_peak: f64,
}

/// The CPU engine's stages on `problem`: pairs, wild (Rademacher),
/// studentized pairs and permutation, each a batch of `batch` replicates on one thread,
/// timed `repeats` times after a first run (the median per stage); the
/// aggregation is `aggregate` of every statistic of the batch (tallies and
/// sorting), as a run does.
pub fn profile_cpu(
    problem: &Problem,
    batch: usize,
    repeats: usize,
) -> Result<Vec<CpuStageProfile>> {
    use crate::model::replicate::StatLayout;
    use crate::resample::aggregate::{Source, aggregate};
    use crate::resample::engine::{CpuEngine, CpuStageTimes, Engine, Precomputed};
    use crate::resample::permutation::{PermutationEngine, PermutationStageTimes};
    use crate::resample::scheme::{WeightPlan, WildWeights};

    let (design, fit) = (problem.design, problem.fit);
    let g = design.n_clusters;
    let one = crate::resample::engine::thread_pool(1, batch)?;
    let peak_gflops = one.install(cpu_peak);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // A batch's statistics aggregated as a run aggregates them.
    let aggregation = |layout: StatLayout, stats: &[f64], backend| -> Result<f64> {
        let kept = Precomputed::new(layout, stats.to_vec(), backend);
        let sources: Vec<Source> = (0..layout.len()).map(Source::Stat).collect();
        let t0s = vec![0.0; sources.len()];
        let alphas = |_: usize, _: &crate::resample::intervals::Tally| vec![0.025, 0.975];
        let seconds = (0..repeats)
            .map(|_| {
                let started = Instant::now();
                aggregate(
                    &kept,
                    batch as u64,
                    &sources,
                    &t0s,
                    &alphas,
                    u64::MAX,
                    &|_, _| Ok(()),
                    &mut |_| {},
                )
                .map(|_| started.elapsed().as_secs_f64())
            })
            .collect::<Result<Vec<f64>>>()?;
        Ok(median(seconds))
    };
    let profile = |workload: &str, width: usize, rows: Vec<(&str, f64, f64)>| {
        let total: f64 = rows.iter().map(|r| r.1).sum();
        let n = batch as f64;
        CpuStageProfile {
            workload: workload.into(),
            clusters: g,
            width,
            q: design.q(),
            batch,
            stages: rows
                .into_iter()
                .map(|(stage, seconds, flops)| {
                    let gflops = flops * n / seconds / 1e9;
                    CpuStageRow {
                        stage: stage.into(),
                        seconds,
                        share: seconds / total,
                        flops_per_replicate: flops,
                        gflops,
                        of_peak: gflops / peak_gflops,
                    }
                })
                .collect(),
            replicates_per_second: n / total,
            peak_gflops,
        }
    };
    let mut out = Vec::new();
    for (workload, scheme, studentize) in [
        ("pairs", Scheme::Pairs, false),
        ("wild", Scheme::Wild(WildWeights::Rademacher), false),
        ("pairs, studentized", Scheme::Pairs, true),
    ] {
        let engine = CpuEngine::new(
            design,
            fit,
            WeightPlan::new(scheme, 1, g, None),
            batch,
            1,
            studentize,
        )?;
        let layout = engine.layout();
        let mut stats = vec![0.0; batch * layout.len()];
        engine.profile_batch(0, &mut stats);
        let runs: Vec<CpuStageTimes> = (0..repeats)
            .map(|r| engine.profile_batch(((r + 1) * batch) as u64, &mut stats))
            .collect();
        let aggregated = aggregation(layout, &stats, engine.backend())?;
        let (gemm_flops, solve_flops) = cpu_flops(design, scheme);
        let mut rows: Vec<(&str, f64, f64)> = vec![
            (
                "weights",
                median(runs.iter().map(|t| t.weights).collect()),
                0.0,
            ),
            (
                "gemm",
                median(runs.iter().map(|t| t.gemm).collect()),
                gemm_flops,
            ),
            (
                "solve",
                median(runs.iter().map(|t| t.solve).collect()),
                solve_flops,
            ),
        ];
        if studentize {
            rows.push((
                "studentize",
                median(runs.iter().map(|t| t.studentize).collect()),
                0.0,
            ));
        }
        rows.push(("aggregation", aggregated, 0.0));
        let width = match scheme {
            Scheme::Wild(_) => crate::model::mediation::reported_coefficients(design).len(),
            _ => crate::resample::engine::split_columns(design).0.len(),
        };
        out.push(profile(workload, width, rows));
    }
    // Permutation: no weights and no GEMM; each replicate's treatment row
    // added up from the table of donor rows, one row of q - 1 per unit.
    let engine = PermutationEngine::new(design, problem.panel, 1, batch, 1)?;
    let layout = engine.layout();
    let mut stats = vec![0.0; batch * layout.len()];
    engine.profile_batch(0, &mut stats);
    let runs: Vec<PermutationStageTimes> = (0..repeats)
        .map(|r| engine.profile_batch(((r + 1) * batch) as u64, &mut stats))
        .collect();
    let aggregated = aggregation(layout, &stats, engine.backend())?;
    let row_flops = (problem.panel.unit.len() * (design.q() - 1)) as f64;
    let solve_flops = system_flops(design.q(), design.layout.n_mediators);
    let rows = vec![
        ("draws", median(runs.iter().map(|t| t.draws).collect()), 0.0),
        (
            "gram row",
            median(runs.iter().map(|t| t.row).collect()),
            row_flops,
        ),
        (
            "solve",
            median(runs.iter().map(|t| t.solve).collect()),
            solve_flops,
        ),
        ("aggregation", aggregated, 0.0),
    ];
    out.push(profile("permutation", design.q() - 1, rows));
    Ok(out)
}

/// The markdown of CPU `profiles`: per workload, its stages' time, share,
/// work and rate against one thread's peak.
pub fn cpu_markdown(profiles: &[CpuStageProfile]) -> String {
    let mut md = String::new();
    for p in profiles {
        md.push_str(&format!(
            "#### Stages: {} on the CPU, one thread, f64 (G = {}, GEMM width {}, q = {}; a batch of {})\n\n\
             | stage | ms per batch | us per replicate | share | flops / replicate | GFLOP/s | of peak |\n\
             |---|---|---|---|---|---|---|\n",
            p.workload, p.clusters, p.width, p.q, p.batch
        ));
        for s in &p.stages {
            let work = match s.flops_per_replicate > 0.0 {
                true => format!(
                    "{:.0} | {:.2} | {:.1} %",
                    s.flops_per_replicate,
                    s.gflops,
                    100.0 * s.of_peak
                ),
                false => "- | - | -".into(),
            };
            md.push_str(&format!(
                "| {} | {:.3} | {:.3} | {:.1} % | {} |\n",
                s.stage,
                s.seconds * 1e3,
                s.seconds * 1e6 / p.batch as f64,
                100.0 * s.share,
                work
            ));
        }
        md.push_str(&format!(
            "\n{:.3e} replicates/s on one thread over the stages; the thread's f64 GEMM peak is \
             {:.2} GFLOP/s.\n\n",
            p.replicates_per_second, p.peak_gflops
        ));
    }
    md
}

/// The markdown of `profiles`: per workload, its stages with their work
/// and rates, then the start-up and the predictions.
pub fn markdown(profiles: &[StageProfile]) -> String {
    let mut md = String::new();
    for p in profiles {
        md.push_str(&format!(
            "#### Stages: {} on {}, {} (G = {}, GEMM width {}, q = {}; a batch of {})\n\n\
             | stage | ms per batch | flops / replicate | bytes / replicate | GFLOP/s | GB/s | bound | of roofline |\n\
             |---|---|---|---|---|---|---|---|\n",
            p.workload, p.engine, p.precision, p.clusters, p.width, p.q, p.batch
        ));
        for s in &p.stages {
            md.push_str(&format!(
                "| {} | {:.3} | {:.0} | {:.0} | {:.2} | {:.2} | {} | {:.1} % |\n",
                s.stage,
                s.seconds * 1e3,
                s.flops_per_replicate,
                s.bytes_per_replicate,
                s.gflops,
                s.gbs,
                s.bound,
                100.0 * s.of_roofline
            ));
        }
        md.push_str(&format!(
            "| host finishing | {:.3} | | | | | | |\n\n\
             {:.3e} replicates/s over the stages and finishing; the roofline allows {:.3e} at the \
             measured peaks ({:.1} GFLOP/s f32, {:.1} GB/s memory, {:.1} GB/s to the host). \
             Start-up: {:.2} s for a fresh context, {:.2} s compiling every stage, {:.3} s for the \
             engine. Predicted (roofline \
             at published peaks, not measured): {}.\n\n",
            p.finish_seconds * 1e3,
            p.replicates_per_second,
            p.roofline_replicates_per_second,
            p.peaks.gflops,
            p.peaks.memory_gbs,
            p.peaks.link_gbs,
            p.context_seconds,
            p.compile_seconds,
            p.engine_seconds,
            p.predictions
                .iter()
                .map(|q| format!("{} {:.2e}/s", q.gpu, q.replicates_per_second))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    md
}
