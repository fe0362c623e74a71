//! Where a GPU engine's time goes (`medsim bench --stages`): on the bench's
//! default problem, each stage of one batch timed alone on the device, the
//! readback and the host's finishing, the start-up (a fresh context:
//! adapter, device, shader compilation, pipelines; then the engine's
//! set-up), and beside each stage its work (`crate::gpu::roofline`): flops
//! and bytes per replicate, the achieved GFLOP/s and GB/s, its bound and
//! how far it is from its roofline at the adapter's measured peaks; then
//! the replicates per second the roofline predicts here and on named GPUs.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::design::Design;
use crate::model::estimate::SystemFit;
use crate::model::panel::Panel;

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
    use crate::resample::scheme::{Scheme, WeightPlan, WildWeights};
    use std::time::Instant;

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
