//! Where replicates are computed: the engine a resampling run asks for
//! (`--backend`), the GPU engine on an adapter or the CPU engine built by
//! `crate::resample::factory`, and the GPU the run's other stages (the wild
//! tests) then use. Without the `gpu` feature only the CPU is there, and
//! asking for the GPU says how to get it.

use crate::error::{Error, Result};
use crate::model::design::Design;
use crate::model::estimate::SystemFit;
use crate::model::panel::Panel;
use crate::resample::engine::Precision;
use crate::resample::engine::{Backend, Engine};
use crate::resample::factory::{CpuRequest, cpu_engine};
use crate::resample::scheme::{Scheme, WeightPlan};
use crate::resample::spec::{BackendChoice, ResampleSpec, SharedWeights};
use crate::resample::threshold::{CpuThreshold, Null, ThresholdEngine};
use crate::resample::wild::RestrictedTest;

/// Whether `spec` runs on a GPU: asked for, or (auto) an adapter named or
/// a hardware adapter present.
pub fn wants_gpu(spec: &ResampleSpec) -> bool {
    match spec.backend {
        BackendChoice::Cpu => false,
        BackendChoice::Gpu => true,
        BackendChoice::Auto => spec.adapter.is_some() || hardware_gpu(),
    }
}

#[cfg(feature = "gpu")]
fn hardware_gpu() -> bool {
    crate::gpu::hardware_available()
}

#[cfg(not(feature = "gpu"))]
fn hardware_gpu() -> bool {
    false
}

/// What the engine computes: the model, and how its replicates relate to
/// the run's.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub design: &'a Design,
    pub fit: &'a SystemFit,
    pub panel: Option<&'a Panel>,
    pub seed: u64,
    pub strata: Option<&'a [u32]>,
    pub studentize: bool,
    /// A group's model drawing the run's weights: the CPU engine through
    /// its cluster map, the GPU engine on its statistics spread over the
    /// run's clusters.
    pub shared: Option<&'a SharedWeights>,
}

/// The engine `spec.backend` asks for: the CPU engine, the GPU engine, or
/// (auto) the GPU engine on a hardware adapter, else the CPU engine. Naming
/// an adapter asks for the GPU. With the GPU, the GPU the run's other
/// stages use.
pub fn engine<'a>(
    spec: &ResampleSpec,
    r: Request<'a>,
) -> Result<(Box<dyn Engine + 'a>, Option<GpuUse>)> {
    let g = r.shared.map_or(r.design.n_clusters, |s| s.n_clusters);
    let plan = WeightPlan::new(spec.scheme, r.seed, g, r.strata);
    no_cpu_precision(spec)?;
    let named = spec.backend == BackendChoice::Gpu || spec.adapter.is_some();
    if wants_gpu(spec) {
        match gpu_engine(spec, r, plan.clone()) {
            // Auto: a permutation table the adapter cannot bind (quadratic
            // in the units) leaves the run to the CPU engine.
            Err(Error::InvalidOption { option, message })
                if !named
                    && spec.scheme == Scheme::Permutation
                    && option == "resampling.backend" =>
            {
                let why = message
                    .split("; set resampling.backend")
                    .next()
                    .unwrap_or_default();
                crate::notices::notify(format!("note: {why}; the CPU engine permutes instead"));
            }
            other => return other,
        }
    }
    let request = CpuRequest {
        design: r.design,
        fit: r.fit,
        panel: r.panel,
        batch: spec.batch,
        threads: spec.threads,
        studentize: r.studentize,
        robustness_values: spec.robustness_values,
        rho: spec.sensitivity.clone().unwrap_or_default(),
        // The permutation scheme draws no weights to share.
        cluster_map: r
            .shared
            .filter(|_| spec.scheme != Scheme::Permutation)
            .map(|s| s.map.clone()),
    };
    Ok((cpu_engine(request, plan)?, None))
}

#[cfg(feature = "gpu")]
fn gpu_engine<'a>(
    spec: &ResampleSpec,
    r: Request<'a>,
    plan: WeightPlan,
) -> Result<(Box<dyn Engine + 'a>, Option<GpuUse>)> {
    use crate::gpu::engine::{Fault, GpuEngine, GpuOptions};
    let gpu = gpu_for(spec)?;
    let ctx = gpu.ctx;
    let options = GpuOptions {
        precision: gpu.precision,
        max_batch: gpu.max_batch,
        cpu_batch: spec.batch,
        cpu_threads: spec.threads,
        studentize: r.studentize,
        fault: Fault::from_env()?,
    };
    let mapped = r.shared.filter(|_| spec.scheme != Scheme::Permutation);
    let engine = if spec.scheme == Scheme::Permutation {
        GpuEngine::permutation(
            ctx,
            r.design,
            r.fit,
            crate::resample::factory::permutation_panel(r.panel)?,
            r.seed,
            options,
        )?
    } else if let Some(shared) = mapped {
        GpuEngine::mapped(ctx, r.design, r.fit, shared, plan, options)?
    } else {
        GpuEngine::new(ctx, r.design, r.fit, plan, options)?
    };
    let engine = match &spec.sensitivity {
        Some(rho) if spec.scheme != Scheme::Permutation => engine.with_sensitivity(rho)?,
        _ => engine,
    };
    let engine = match spec.robustness_values {
        true => engine.with_robustness()?,
        false => engine,
    };
    Ok((Box::new(engine), Some(gpu)))
}

#[cfg(not(feature = "gpu"))]
fn gpu_engine<'a>(
    _: &ResampleSpec,
    _: Request<'a>,
    _: WeightPlan,
) -> Result<(Box<dyn Engine + 'a>, Option<GpuUse>)> {
    Err(no_gpu_build())
}

/// A precision asked of the CPU engine, refused: it computes in f64.
fn no_cpu_precision(spec: &ResampleSpec) -> Result<()> {
    if spec.backend == BackendChoice::Cpu && spec.precision.is_some() {
        return Err(Error::InvalidOption {
            option: "resampling.precision".into(),
            message:
                "the CPU engine always computes in f64; a precision applies to the GPU engine only"
                    .into(),
        });
    }
    Ok(())
}

/// Where a threshold test's replicates run (`[resampling]`'s backend,
/// adapter, precision and GPU batch, as for `medsim run`).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdBackend {
    pub backend: BackendChoice,
    pub adapter: Option<String>,
    pub precision: Option<Precision>,
    pub gpu_batch: usize,
}

impl ThresholdBackend {
    /// The same choice as a resampling spec's, which `wants_gpu` and
    /// `gpu_for` read.
    fn spec(&self) -> ResampleSpec {
        ResampleSpec {
            backend: self.backend,
            adapter: self.adapter.clone(),
            precision: self.precision,
            gpu_batch: self.gpu_batch,
            ..ResampleSpec::default()
        }
    }
}

/// The engine of `null`'s replicates: the CPU's on `pool`, the GPU's, or
/// (auto) the GPU's on a hardware adapter, else the CPU's; auto leaves a
/// residual bootstrap whose table the adapter cannot hold to the CPU.
pub fn threshold_engine<'n>(
    choice: &ThresholdBackend,
    null: &'n Null<'_>,
    pool: &'n rayon::ThreadPool,
) -> Result<Box<dyn ThresholdEngine + 'n>> {
    let spec = choice.spec();
    no_cpu_precision(&spec)?;
    let named = spec.backend == BackendChoice::Gpu || spec.adapter.is_some();
    if wants_gpu(&spec) {
        match gpu_threshold(&spec, null) {
            Err(Error::InvalidOption { option, message })
                if !named && option == "resampling.backend" =>
            {
                let why = message.split("; use").next().unwrap_or_default();
                crate::notices::notify(format!(
                    "note: {why}; the CPU engine bootstraps the threshold test instead"
                ));
            }
            other => return other,
        }
    }
    Ok(Box::new(CpuThreshold { null, pool }))
}

#[cfg(feature = "gpu")]
fn gpu_threshold<'n>(
    spec: &ResampleSpec,
    null: &'n Null<'_>,
) -> Result<Box<dyn ThresholdEngine + 'n>> {
    let gpu = gpu_for(spec)?;
    Ok(Box::new(crate::gpu::threshold::GpuThreshold::new(
        gpu.ctx,
        null,
        gpu.precision,
        gpu.max_batch,
    )?))
}

#[cfg(not(feature = "gpu"))]
fn gpu_threshold<'n>(_: &ResampleSpec, _: &'n Null<'_>) -> Result<Box<dyn ThresholdEngine + 'n>> {
    Err(no_gpu_build())
}

/// The error of asking a CPU-only build for the GPU.
pub fn no_gpu_build() -> Error {
    Error::Gpu(
        "this medsim was built without the `gpu` feature; set resampling.backend to cpu, or build the GPU \
         engine with the default features (`cargo install --path .`)"
            .into(),
    )
}

/// The GPU `spec` asks for (`--adapter`, else the best wgpu finds), with
/// its precision and batch limit.
#[cfg(feature = "gpu")]
pub fn gpu_for(spec: &ResampleSpec) -> Result<GpuUse> {
    let ctx = crate::gpu::shared_context(spec.adapter.as_deref())?.ok_or_else(|| {
        Error::Gpu(
            "no GPU adapter found (on Linux install a Vulkan driver, e.g. mesa-vulkan-drivers; \
             `medsim devices` lists what wgpu sees); set resampling.backend to cpu"
                .into(),
        )
    })?;
    Ok(GpuUse {
        ctx,
        precision: spec.precision.unwrap_or(Precision::F32),
        max_batch: spec.gpu_batch,
    })
}

#[cfg(not(feature = "gpu"))]
pub fn gpu_for(_: &ResampleSpec) -> Result<GpuUse> {
    Err(no_gpu_build())
}

/// The GPU a run uses: its engine's, and its other GPU stages' (the WCR
/// tests, a simulation study's stacked datasets).
#[cfg(feature = "gpu")]
#[derive(Clone, Copy)]
pub struct GpuUse {
    ctx: &'static crate::gpu::GpuContext,
    precision: Precision,
    max_batch: usize,
}

/// A CPU-only build has no GPU to use.
#[cfg(not(feature = "gpu"))]
#[derive(Clone, Copy)]
pub enum GpuUse {}

#[cfg(feature = "gpu")]
impl GpuUse {
    /// The restricted wild bootstrap's p-value of `test` on this GPU.
    pub fn wild_p_value(
        &self,
        test: &RestrictedTest,
        plan: &WeightPlan,
        replicates: u64,
    ) -> Result<f64> {
        crate::gpu::wild::p_value(
            self.ctx,
            test,
            plan,
            replicates,
            self.precision,
            self.max_batch,
        )
    }

    /// Replicates `0 .. replicates` of `scheme` for each of `sets` (a
    /// design, its fit and its seed), stacked in GPU batches.
    pub fn stacked(
        &self,
        sets: &[(&Design, &SystemFit, u64)],
        scheme: Scheme,
        replicates: usize,
    ) -> Result<Vec<Vec<f64>>> {
        let sets: Vec<crate::gpu::stack::Set> = sets
            .iter()
            .map(|&(design, fit, seed)| crate::gpu::stack::Set { design, fit, seed })
            .collect();
        crate::gpu::stack::replicates(
            self.ctx,
            &sets,
            scheme,
            replicates,
            self.precision,
            0,
            &|_| {},
        )
    }

    /// The engine that replicates computed here report.
    pub fn backend(&self) -> Backend {
        Backend {
            backend: "gpu".into(),
            adapter: Some(self.ctx.info.name.clone()),
            precision: Some(self.precision.as_str().into()),
            fallback: None,
        }
    }

    /// Refuse f64 on an adapter without f64 shaders.
    pub fn check_precision(&self) -> Result<()> {
        if self.precision == Precision::F64 && !self.ctx.has_f64() {
            return Err(Error::InvalidOption {
                option: "resampling.precision".into(),
                message: format!(
                    "{} has no f64 shaders; set resampling.precision to f32",
                    self.ctx.info.name
                ),
            });
        }
        Ok(())
    }
}

#[cfg(not(feature = "gpu"))]
impl GpuUse {
    pub fn wild_p_value(&self, _: &RestrictedTest, _: &WeightPlan, _: u64) -> Result<f64> {
        match *self {}
    }
    pub fn stacked(
        &self,
        _: &[(&Design, &SystemFit, u64)],
        _: Scheme,
        _: usize,
    ) -> Result<Vec<Vec<f64>>> {
        match *self {}
    }
    pub fn backend(&self) -> Backend {
        match *self {}
    }
    pub fn check_precision(&self) -> Result<()> {
        match *self {}
    }
}

/// Whether this medsim has the GPU engine (the `gpu` feature).
pub const GPU_BUILD: bool = cfg!(feature = "gpu");

/// A GPU adapter as wgpu lists it, best first.
#[derive(Debug, Clone)]
pub struct Adapter {
    pub name: String,
    /// wgpu's device type (`DiscreteGpu`, `Cpu` for software rasterisers).
    pub device_type: String,
    /// The graphics API (`Vulkan`, `Metal`, ...).
    pub api: String,
    /// Driver name and version.
    pub driver: String,
    /// A real GPU rather than a software rasteriser (lavapipe, WARP,
    /// SwiftShader): what `--backend auto` takes.
    pub hardware: bool,
    pub shader_f64: bool,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
}

/// Every GPU adapter (none in a CPU-only build).
#[cfg(feature = "gpu")]
pub fn adapters() -> Vec<Adapter> {
    crate::gpu::list_adapters()
        .into_iter()
        .map(|a| Adapter {
            name: a.info.name.clone(),
            device_type: format!("{:?}", a.info.device_type),
            api: format!("{:?}", a.info.backend),
            driver: format!("{} {}", a.info.driver, a.info.driver_info),
            hardware: crate::gpu::is_hardware(&a.info),
            shader_f64: a.shader_f64,
            max_storage_buffer_binding_size: u64::from(a.max_storage_buffer_binding_size),
            max_buffer_size: a.max_buffer_size,
            max_compute_workgroups_per_dimension: a.max_compute_workgroups_per_dimension,
        })
        .collect()
}

#[cfg(not(feature = "gpu"))]
pub fn adapters() -> Vec<Adapter> {
    Vec::new()
}

/// The measured f32 arithmetic peak, in GFLOP/s, of the adapter named like
/// `name` (`shaders/peak.wgsl`).
#[cfg(feature = "gpu")]
pub fn gpu_peak(name: &str) -> Result<f64> {
    let ctx = crate::gpu::shared_context(Some(name))?
        .ok_or_else(|| Error::Gpu(format!("no adapter named like '{name}'")))?;
    ctx.arithmetic_peak(Precision::F32)
}

#[cfg(not(feature = "gpu"))]
pub fn gpu_peak(_: &str) -> Result<f64> {
    Err(no_gpu_build())
}
