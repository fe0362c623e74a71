//! The GPU side (wgpu + WGSL compute shaders in `shaders/`): one long-lived
//! context holding the device, queue and pipelines (this module), and the
//! engine that batches the stages behind `engine::Engine` ([`engine`]).
//! Stages: the Philox known-answer check, cluster weights (the CPU engine's
//! bit for bit), the tiled GEMM of weights and per-cluster statistics, and
//! the per-replicate solve in whitened coordinates (`crate::resample::whiten`), in f32
//! and (SHADER_F64) f64.

pub(crate) mod cells;
pub mod engine;
pub mod permute;
pub mod roofline;
pub(crate) mod solve_gen;
pub mod stack;
pub mod threshold;
pub mod wgsl;
pub mod wild;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::math::rng::{POISSON1_THRESHOLDS, STREAM_LABELS, STREAM_WEIGHTS};
use crate::resample::engine::Precision;
use crate::resample::scheme::{MAMMEN_THRESHOLD, Scheme, WeightPlan, WildWeights};

/// The WGSL files, by name, as compiled into the binary (build.rs validates
/// the same text).
const SHADERS: &[(&str, &str)] = &[
    ("philox.wgsl", include_str!("../../shaders/philox.wgsl")),
    (
        "philox_check.wgsl",
        include_str!("../../shaders/philox_check.wgsl"),
    ),
    ("weights.wgsl", include_str!("../../shaders/weights.wgsl")),
    ("gemm.wgsl", include_str!("../../shaders/gemm.wgsl")),
    ("solve.wgsl", include_str!("../../shaders/solve.wgsl")),
    ("solve_iv.wgsl", include_str!("../../shaders/solve_iv.wgsl")),
    ("real.wgsl", include_str!("../../shaders/real.wgsl")),
    ("packed.wgsl", include_str!("../../shaders/packed.wgsl")),
    ("decode.wgsl", include_str!("../../shaders/decode.wgsl")),
    ("draw.wgsl", include_str!("../../shaders/draw.wgsl")),
    ("gemm_nt.wgsl", include_str!("../../shaders/gemm_nt.wgsl")),
    ("gemm_sg.wgsl", include_str!("../../shaders/gemm_sg.wgsl")),
    (
        "gemm_common.wgsl",
        include_str!("../../shaders/gemm_common.wgsl"),
    ),
    ("meat.wgsl", include_str!("../../shaders/meat.wgsl")),
    ("meat_cov.wgsl", include_str!("../../shaders/meat_cov.wgsl")),
    ("wcr.wgsl", include_str!("../../shaders/wcr.wgsl")),
    ("permute.wgsl", include_str!("../../shaders/permute.wgsl")),
    (
        "cell_sums.wgsl",
        include_str!("../../shaders/cell_sums.wgsl"),
    ),
    (
        "cell_factor.wgsl",
        include_str!("../../shaders/cell_factor.wgsl"),
    ),
    (
        "cell_partial.wgsl",
        include_str!("../../shaders/cell_partial.wgsl"),
    ),
    ("peak.wgsl", include_str!("../../shaders/peak.wgsl")),
    (
        "threshold_draw.wgsl",
        include_str!("../../shaders/threshold_draw.wgsl"),
    ),
    (
        "threshold_search.wgsl",
        include_str!("../../shaders/threshold_search.wgsl"),
    ),
    (
        "solve_params.wgsl",
        include_str!("../../shaders/solve_params.wgsl"),
    ),
];

/// A stage's source with its includes expanded, `Real` set to `precision`.
pub fn shader_source(name: &str, precision: Precision) -> Result<String> {
    assemble(name, None, precision)
}

/// `name`'s source with its includes from `shaders/` expanded, `Real` set
/// to `precision`; `text` is `name`'s own text where it is not a file of
/// `shaders/` (a generated stage).
fn assemble(name: &str, text: Option<&str>, precision: Precision) -> Result<String> {
    let read = |f: &str| {
        if f == name
            && let Some(text) = text
        {
            return Some(text.to_string());
        }
        SHADERS
            .iter()
            .find(|(n, _)| *n == f)
            .map(|(_, s)| s.to_string())
    };
    wgsl::assemble(name, &read, precision == Precision::F64).map_err(Error::Gpu)
}

/// Uniform parameters of `weights.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct WeightParams {
    pub start: [u32; 2],
    /// Replicates per set of a stacked batch (0: one set).
    pub per_set: u32,
    pub pad: u32,
    pub count: u32,
    pub n_clusters: u32,
    pub scheme: u32,
    pub n_strata: u32,
    pub tag: u32,
    pub mammen_threshold: u32,
    /// Labels: the size of the first group, and 1 to weight the second.
    pub first: u32,
    pub second: u32,
}
const _: () = assert!(std::mem::size_of::<WeightParams>() == 48);

/// Uniform parameters of `gemm.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct GemmParams {
    pub nb: u32,
    pub g: u32,
    pub n: u32,
    pub decode_mode: u32,
    pub n_strata: u32,
    /// 1: the GEMM draws the weights itself (`draws_in_gemm`).
    pub draw: u32,
    pub scheme: u32,
    pub tag: u32,
    /// The batch's first replicate (low, high words).
    pub start: [u32; 2],
    pub mammen_threshold: u32,
    pub pad: u32,
}
const _: () = assert!(std::mem::size_of::<GemmParams>() == 48);

/// Whether the GEMM can draw `scheme`'s weights in its tile loads (the
/// jackknife and the wild weights but Webb's: one draw per cluster without
/// a table or rejection loop), so that no weight codes are written to
/// device memory and read back. Where it does is the context's choice
/// (`GpuContext::set_draw_weights`).
fn draws_in_gemm(scheme: Scheme) -> bool {
    matches!(
        scheme,
        Scheme::Jackknife
            | Scheme::Wild(WildWeights::Rademacher | WildWeights::Mammen | WildWeights::Normal)
    )
}

/// A compute stage of shaders/, compiled on first use in each precision
/// (f32, then f64 where the adapter has it) and kept for the context's
/// life: a process compiles only the stages its runs use, once.
struct Pipelines {
    name: &'static str,
    constants: Vec<(&'static str, f64)>,
    compiled: [OnceLock<wgpu::ComputePipeline>; 2],
}

impl Pipelines {
    fn new(name: &'static str, constants: Vec<(&'static str, f64)>) -> Pipelines {
        Pipelines {
            name,
            constants,
            compiled: [OnceLock::new(), OnceLock::new()],
        }
    }
}

/// A kernel and block shape of the GEMM: the rows and columns of the
/// output one workgroup of 64 invocations computes. Wide and Narrow are
/// `gemm.wgsl` with its pipeline constants (the clusters it passes through
/// workgroup memory at a time among them): Wide for the packed Gram widths
/// of the solve's input (tens to hundreds of columns); Narrow for the wild
/// path's few right-hand sides, where a wide block would multiply mostly
/// padding. Subgroup is `gemm_sg.wgsl`, which shares the weights between
/// the lanes of an 8-lane subgroup instead of through workgroup memory: on
/// a software adapter (lavapipe) workgroup memory is ordinary memory
/// reached lane by lane, and a barrier switches coroutines, while a
/// subgroup is one SIMD register and a broadcast one instruction. All three
/// sum each output's clusters in the same order: the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GemmShape {
    Wide,
    Narrow,
    Subgroup,
}

/// The subgroup size `gemm_sg.wgsl` is written for.
const GEMM_SUBGROUP: u32 = 8;

impl GemmShape {
    /// The shape for an output `n` columns wide; `subgroup`: the adapter
    /// runs `gemm_sg.wgsl` and the weights are read as codes (it does not
    /// draw them).
    pub(crate) fn choose(n: u32, subgroup: bool) -> GemmShape {
        if n <= 4 {
            GemmShape::Narrow
        } else if subgroup {
            GemmShape::Subgroup
        } else {
            GemmShape::Wide
        }
    }

    /// WX invocations across (4 columns each), TM rows per invocation, KT
    /// clusters per pass (the tiles fit 16 KiB of workgroup memory in f64);
    /// for the subgroup kernel, 8 lanes across and 16 rows per subgroup.
    fn sizes(self) -> (u32, u32, u32) {
        match self {
            GemmShape::Wide => (8, 8, 16),
            GemmShape::Narrow => (1, 4, 4),
            GemmShape::Subgroup => (GEMM_SUBGROUP, 16, 1),
        }
    }

    /// gemm.wgsl's pipeline constants (gemm_sg.wgsl has none).
    fn constants(self) -> Vec<(&'static str, f64)> {
        let (wx, tm, kt) = self.sizes();
        match self {
            GemmShape::Subgroup => Vec::new(),
            _ => vec![("WX", wx as f64), ("TM", tm as f64), ("KT", kt as f64)],
        }
    }

    /// The kernel's name: "wide", "narrow" (workgroup memory, `gemm.wgsl`)
    /// or "subgroup" (`gemm_sg.wgsl`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            GemmShape::Wide => "wide",
            GemmShape::Narrow => "narrow",
            GemmShape::Subgroup => "subgroup",
        }
    }

    /// Rows and columns of the output per workgroup, as the shaders derive
    /// them: BM = TM x 64 / WX, BN = 4 WX (the subgroup kernel: 16 rows per
    /// subgroup, 4 columns per lane).
    pub(crate) fn block(self) -> (u32, u32) {
        let (wx, tm, _) = self.sizes();
        (tm * 64 / wx, 4 * wx)
    }
}

/// Rows (clusters) and columns (replicate functionals) of the influence
/// GEMM's output per workgroup (`gemm_nt.wgsl`'s BM and BN).
pub(crate) const NT_BLOCK: (u32, u32) = (64, 32);

/// Device memory one batch's buffers may take (two batches are in flight).
const BATCH_BYTES: u64 = 512 << 20;

/// The same on a software adapter (lavapipe), whose device memory is the
/// process's own: its stages gain nothing from batches beyond a few
/// thousand replicates, and two batches of `BATCH_BYTES` would add a
/// gigabyte to the run's resident memory.
const SOFTWARE_BATCH_BYTES: u64 = 32 << 20;

/// Uniform parameters of `solve.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct SolveParams {
    pub nb: u32,
    pub q: u32,
    pub n_coef: u32,
    pub stride: u32,
    pub n_func: u32,
    /// Where the sensitivity analysis's kappa ratio goes in a replicate's
    /// reals (0: not written).
    pub kappa_at: u32,
    /// Replicates per set of a stacked batch (0: one set).
    pub per_set: u32,
    /// Systems per replicate (a moderated model's equations: row r of
    /// the solve is system r % systems of replicate r / systems, with its
    /// own coefficients, L and L^{-1}); 0 or 1: one.
    pub systems: u32,
    /// Where the robustness values' terms go in a replicate's reals (0:
    /// not written): per marked coefficient, `[A^{-1}]_jj` and its
    /// equation's residual sum of squares.
    pub rv_at: u32,
    pub pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<SolveParams>() == 48);

/// Uniform parameters of `solve_iv.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct SolveIvParams {
    pub nb: u32,
    pub q: u32,
    pub n_coef: u32,
    pub stride: u32,
    pub n_sys: u32,
    pub ki_max: u32,
    pub kr_max: u32,
    pub n_func: u32,
}
const _: () = assert!(std::mem::size_of::<SolveIvParams>() == 32);

/// Uniform parameters of `gemm_nt.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct GemmNtParams {
    pub rows: u32,
    pub cols: u32,
    pub k: u32,
    pub pad: u32,
}
const _: () = assert!(std::mem::size_of::<GemmNtParams>() == 16);

/// Uniform parameters of `wcr.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct WcrParams {
    pub nb: u32,
    pub g: u32,
    pub decode_mode: u32,
    pub n_strata: u32,
}
const _: () = assert!(std::mem::size_of::<WcrParams>() == 16);

/// Uniform parameters of `threshold_draw.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct ThresholdDrawParams {
    pub nb: u32,
    pub units: u32,
    pub periods: u32,
    pub tag: u32,
    pub seed: [u32; 2],
    pub start: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<ThresholdDrawParams>() == 32);

/// Uniform parameters of `threshold_search.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct ThresholdSearchParams {
    pub nb: u32,
    pub g: u32,
    pub m: u32,
    pub k: u32,
    pub stride: u32,
    pub steps: u32,
    pub min_regime: u32,
    pub n_obs: u32,
    pub rows: u32,
    pub decode_mode: u32,
    pub n_strata: u32,
    pub pad: u32,
}
const _: () = assert!(std::mem::size_of::<ThresholdSearchParams>() == 48);

/// Uniform parameters of `meat.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct MeatParams {
    pub nb: u32,
    pub g: u32,
    pub m: u32,
    pub stride: u32,
    pub decode_mode: u32,
    pub n_strata: u32,
    pub n_targets: u32,
    pub pad: u32,
}
const _: () = assert!(std::mem::size_of::<MeatParams>() == 32);

/// Uniform parameters of `meat_cov.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct MeatCovParams {
    pub nb: u32,
    pub g: u32,
    pub d: u32,
    pub stride: u32,
    pub decode_mode: u32,
    pub n_strata: u32,
    pub n_coef: u32,
    pub pad: u32,
}
const _: () = assert!(std::mem::size_of::<MeatCovParams>() == 32);

/// One case of `philox_check.wgsl` (`struct Case`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct PhiloxCase {
    pub counter: [u32; 4],
    /// Key in the first two words.
    pub key: [u32; 4],
}
const _: () = assert!(std::mem::size_of::<PhiloxCase>() == 32);

/// The scheme number of `weights.wgsl`, for schemes whose draws are exact
/// integers on every device.
fn scheme_code(scheme: Scheme) -> Result<u32> {
    match scheme {
        Scheme::Pairs => Ok(0),
        Scheme::Poisson => Ok(1),
        Scheme::Jackknife => Ok(2),
        Scheme::Wild(WildWeights::Rademacher) => Ok(3),
        Scheme::Wild(WildWeights::Mammen) => Ok(4),
        Scheme::Wild(WildWeights::Webb) => Ok(5),
        Scheme::Bayes => Ok(6),
        Scheme::Wild(WildWeights::Normal) => Ok(7),
        Scheme::Labels { .. } => Ok(8),
        Scheme::Permutation => Err(Error::Gpu(
            "the permutation scheme has no GPU weight stage".into(),
        )),
    }
}

/// A device, its queue and the compiled stages.
pub struct GpuContext {
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// Whether the adapter runs the f64 stages (SHADER_F64).
    f64: bool,
    /// Whether GEMMs draw the weights of the schemes that allow it
    /// (`draws_in_gemm`) instead of reading the weight stage's codes.
    draw_weights: AtomicBool,
    philox: Pipelines,
    weights: Pipelines,
    /// The GEMM in its block shapes (`GemmShape`).
    gemm: Pipelines,
    gemm_narrow: Pipelines,
    gemm_subgroup: Pipelines,
    /// Whether GEMMs built from now on that read codes run the subgroup
    /// kernel (only where the adapter has 8-lane subgroups).
    subgroup_gemm: AtomicBool,
    /// The adapter runs `gemm_sg.wgsl`: it has subgroups of exactly 8 lanes.
    subgroups_of_8: bool,
    /// Whether engines built from now on run the generated least-squares
    /// solve where they may (`set_generated_solves`).
    generate_solves: AtomicBool,
    /// Generated solves by shape and precision (`generated_solve`).
    generated: Mutex<HashMap<(solve_gen::SolveShape, Precision), wgpu::ComputePipeline>>,
    solve: Pipelines,
    solve_iv: Pipelines,
    gemm_nt: Pipelines,
    meat: Pipelines,
    meat_cov: Pipelines,
    wcr: Pipelines,
    permute: Pipelines,
    /// `unit+GROUP^time` effects' stages (`cells`).
    cell_sums: Pipelines,
    cell_factor: Pipelines,
    cell_partial: Pipelines,
    /// The threshold model's bootstrap (`threshold`).
    threshold_draw: Pipelines,
    threshold_search: Pipelines,
    /// The first device error not yet reported (validation, out of memory,
    /// device lost): wgpu reports them asynchronously, the engine checks
    /// here after each batch.
    fault: Arc<Mutex<Option<String>>>,
    /// Set when the device is lost: nothing on it can succeed any more.
    lost: Arc<AtomicBool>,
}

/// Preference order of adapter types: real GPUs first, software last.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// What `medsim devices` shows of one adapter.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub info: wgpu::AdapterInfo,
    pub shader_f64: bool,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
}

/// The adapters wgpu sees (Vulkan, Metal, DX12, or what WGPU_BACKEND says),
/// best first.
fn adapters() -> Vec<wgpu::Adapter> {
    // GL is left out: it cannot run these stages well.
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::PRIMARY;
    let desc = desc.with_env();
    let backends = desc.backends;
    let instance = wgpu::Instance::new(desc);
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
    adapters.sort_by_key(|a| rank(a.get_info().device_type));
    adapters
}

/// Whether the best adapter is a hardware GPU (what `--backend auto`
/// asks), found once per process: enumerating adapters costs milliseconds,
/// and a simulation study asks for every dataset.
pub fn hardware_available() -> bool {
    static HARDWARE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HARDWARE.get_or_init(|| {
        list_adapters()
            .first()
            .is_some_and(|a| is_hardware(&a.info))
    })
}

/// Every adapter, best first, with the limits that size GPU batches.
pub fn list_adapters() -> Vec<AdapterSummary> {
    adapters()
        .iter()
        .map(|a| {
            let l = a.limits();
            AdapterSummary {
                info: a.get_info(),
                shader_f64: a.features().contains(wgpu::Features::SHADER_F64),
                max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
                max_buffer_size: l.max_buffer_size,
                max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            }
        })
        .collect()
}

/// Whether an adapter is a real GPU rather than a software rasteriser
/// (lavapipe, WARP, SwiftShader): what `--backend auto` takes.
pub fn is_hardware(info: &wgpu::AdapterInfo) -> bool {
    info.device_type != wgpu::DeviceType::Cpu
}

/// One context per adapter choice for the whole process, opened on first
/// use and kept: a long-lived device, queue and pipelines (each compiled
/// when a run first needs it), whatever number of runs follow. A context
/// whose device was lost is replaced.
pub fn shared_context(adapter: Option<&str>) -> Result<Option<&'static GpuContext>> {
    type Cache = Mutex<Vec<(Option<String>, &'static GpuContext)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let mut cache = cache
        .lock()
        .map_err(|_| Error::Gpu("the GPU context cache was poisoned".into()))?;
    let key = adapter.map(str::to_string);
    cache.retain(|(_, ctx)| !ctx.is_lost());
    if let Some((_, ctx)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(Some(ctx));
    }
    let Some(ctx) = GpuContext::new(adapter)? else {
        return Ok(None);
    };
    // Leaked on purpose: the context lives as long as the process.
    let ctx: &'static GpuContext = Box::leak(Box::new(ctx));
    cache.push((key, ctx));
    Ok(Some(ctx))
}

impl GpuContext {
    /// The best adapter wgpu finds (respecting WGPU_BACKEND and friends), or
    /// with `adapter`, the best whose name contains it (case-insensitive);
    /// None when there is none at all. A name that matches nothing is an
    /// error listing the adapters there are.
    pub fn new(adapter: Option<&str>) -> Result<Option<GpuContext>> {
        let all = adapters();
        let chosen = match adapter {
            None => all.into_iter().next(),
            Some(want) => {
                let lower = want.to_lowercase();
                let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
                match all
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&lower))
                {
                    Some(a) => Some(a),
                    None => {
                        return Err(Error::InvalidOption {
                            option: "resampling.adapter".into(),
                            message: if names.is_empty() {
                                format!("no GPU adapter at all, so none named like '{want}'")
                            } else {
                                format!(
                                    "no adapter's name contains '{want}'; there are: {} (see `medsim devices`)",
                                    names.join(", ")
                                )
                            },
                        });
                    }
                }
            }
        };
        let Some(adapter) = chosen else {
            return Ok(None);
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let f64_ok = adapter.features().contains(wgpu::Features::SHADER_F64);
        let subgroups_of_8 = adapter.features().contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == GEMM_SUBGROUP
            && info.subgroup_max_size == GEMM_SUBGROUP;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("medsim"),
            required_limits: limits.clone(),
            required_features: if f64_ok {
                wgpu::Features::SHADER_F64
            } else {
                wgpu::Features::empty()
            } | if subgroups_of_8 {
                wgpu::Features::SUBGROUP
            } else {
                wgpu::Features::empty()
            },
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("cannot open {}: {e}", info.name)))?;
        let fault = Arc::new(Mutex::new(None));
        let record = |slot: &Arc<Mutex<Option<String>>>, message: String| {
            if let Ok(mut f) = slot.lock() {
                f.get_or_insert(message);
            }
        };
        let on_error = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            record(&on_error, e.to_string())
        }));
        let lost = Arc::new(AtomicBool::new(false));
        let (on_lost, lost_flag) = (fault.clone(), lost.clone());
        device.set_device_lost_callback(move |reason, message| {
            lost_flag.store(true, Ordering::SeqCst);
            record(&on_lost, format!("device lost ({reason:?}): {message}"))
        });
        // On a hardware GPU the codes' trip through device memory costs more
        // than drawing them again per block of columns; a software adapter
        // runs the per-invocation draw loops serially and is faster with the
        // weight stage.
        let draw_weights = AtomicBool::new(is_hardware(&info));
        // Measured on lavapipe: the subgroup kernel takes 40-60 % of the
        // wide one's time. Hardware keeps the workgroup-memory kernel, the
        // one its vendors' GEMMs are built like.
        let subgroup_gemm = AtomicBool::new(subgroups_of_8 && !is_hardware(&info));
        let ctx = GpuContext {
            info,
            limits,
            device,
            queue,
            f64: f64_ok,
            draw_weights,
            philox: Pipelines::new("philox_check.wgsl", Vec::new()),
            weights: Pipelines::new("weights.wgsl", Vec::new()),
            gemm: Pipelines::new("gemm.wgsl", GemmShape::Wide.constants()),
            gemm_narrow: Pipelines::new("gemm.wgsl", GemmShape::Narrow.constants()),
            gemm_subgroup: Pipelines::new("gemm_sg.wgsl", GemmShape::Subgroup.constants()),
            subgroup_gemm,
            subgroups_of_8,
            generate_solves: AtomicBool::new(true),
            generated: Mutex::new(HashMap::new()),
            solve: Pipelines::new("solve.wgsl", Vec::new()),
            solve_iv: Pipelines::new("solve_iv.wgsl", Vec::new()),
            gemm_nt: Pipelines::new("gemm_nt.wgsl", Vec::new()),
            meat: Pipelines::new("meat.wgsl", Vec::new()),
            meat_cov: Pipelines::new("meat_cov.wgsl", Vec::new()),
            wcr: Pipelines::new("wcr.wgsl", Vec::new()),
            permute: Pipelines::new("permute.wgsl", Vec::new()),
            cell_sums: Pipelines::new("cell_sums.wgsl", Vec::new()),
            cell_factor: Pipelines::new("cell_factor.wgsl", Vec::new()),
            cell_partial: Pipelines::new("cell_partial.wgsl", Vec::new()),
            threshold_draw: Pipelines::new("threshold_draw.wgsl", Vec::new()),
            threshold_search: Pipelines::new("threshold_search.wgsl", Vec::new()),
            fault,
            lost,
        };
        ctx.check()?;
        Ok(Some(ctx))
    }

    /// The first device error since the last check, as an error (and forget it).
    pub(crate) fn check(&self) -> Result<()> {
        match self.fault.lock().ok().and_then(|mut f| f.take()) {
            Some(message) => Err(Error::Gpu(message)),
            None => Ok(()),
        }
    }

    /// The most units (replicates, or a stack's datasets) one batch holds:
    /// each buffer of `per_unit[i]` bytes per unit within the binding limit,
    /// all of them within `budget` bytes (if given), and at most `by_groups`
    /// (what the dispatch grid allows) and `cap`. The one sizing rule of
    /// every stage's batches.
    pub(crate) fn batch_limit(
        &self,
        per_unit: &[u64],
        budget: Option<u64>,
        by_groups: u64,
        cap: u64,
    ) -> u64 {
        let binding = self.binding_limit();
        let by_binding = per_unit
            .iter()
            .filter(|&&b| b > 0)
            .map(|&b| binding / b)
            .min()
            .unwrap_or(u64::MAX);
        let by_memory = budget.map_or(u64::MAX, |m| m / per_unit.iter().sum::<u64>().max(1));
        by_binding.min(by_memory).min(by_groups).min(cap)
    }

    /// Device memory one batch's buffers may take on this adapter.
    pub(crate) fn batch_budget(&self) -> u64 {
        if is_hardware(&self.info) {
            BATCH_BYTES
        } else {
            SOFTWARE_BATCH_BYTES
        }
    }

    /// The largest buffer a stage can bind, in bytes.
    pub(crate) fn binding_limit(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Whether the device has been lost.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Destroy the device, as a driver reset would: every later use fails.
    /// For testing the engine's fallback.
    pub fn lose_device(&self) {
        self.device.destroy();
        self.lost.store(true, Ordering::SeqCst);
    }

    /// A buffer holding `bytes`, for `usage`.
    fn init_buffer(&self, label: &str, bytes: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage,
            })
    }

    fn storage(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        self.init_buffer(label, bytes, wgpu::BufferUsages::STORAGE)
    }

    /// A uniform buffer the host rewrites before each batch.
    fn uniform(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        self.init_buffer(
            label,
            bytes,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// A device-side buffer of `bytes` bytes that stages write (at least 16:
    /// an f64 array binding needs 8, an empty one would be invalid).
    fn output(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// A host-readable buffer of `bytes` bytes to copy results into.
    fn staging(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(16),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// `buffers` bound at 0, 1, ... of `pipeline`'s group 0.
    fn bind(&self, pipeline: &wgpu::ComputePipeline, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Record one dispatch of `pipeline` with `bind` as group 0.
    fn dispatch(
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bind: &wgpu::BindGroup,
        workgroups: (u32, u32),
    ) {
        Self::dispatch_sets(encoder, pipeline, bind, workgroups, 1);
    }

    /// `dispatch` with `sets` workgroups along z (a stacked batch's sets).
    fn dispatch_sets(
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bind: &wgpu::BindGroup,
        workgroups: (u32, u32),
        sets: u32,
    ) {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind, &[]);
        pass.dispatch_workgroups(workgroups.0, workgroups.1, sets);
    }

    /// Submit `encoder` after copying the first `bytes` of `source` into
    /// `staging`; returns what `read` needs to wait for them.
    fn submit_with_readback(
        &self,
        mut encoder: wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        staging: &wgpu::Buffer,
        bytes: u64,
    ) -> Pending {
        encoder.copy_buffer_to_buffer(source, 0, staging, 0, bytes);
        let index = self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..bytes, move |r| {
            let _ = tx.send(r);
        });
        Pending { index, rx, bytes }
    }

    /// Submit `encoder` and wait until the device has run it.
    fn submit_and_wait(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        let index = self.queue.submit([encoder.finish()]);
        self.wait(index)
    }

    /// Wait until the device has run submission `index`.
    fn wait(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        let waited = self.device.poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: None,
        });
        self.check()?;
        waited
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("waiting for the device failed: {e}")))
    }

    /// The device's bandwidths in GB/s: of its memory, as a buffer-to-buffer
    /// copy measures it (bytes read plus bytes written), the ceiling of a
    /// memory-bound stage; and to the host, as a copy into a mapped staging
    /// buffer measures it, the ceiling of the readback. Best of three
    /// copies of 64 MiB each.
    pub fn bandwidth_peaks(&self) -> Result<(f64, f64)> {
        const BYTES: u64 = 64 << 20;
        let from = self.output("bandwidth from", BYTES);
        let to = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("bandwidth to"),
            size: BYTES,
            usage: wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let staging = self.staging(BYTES);
        let best = |f: &dyn Fn() -> Result<f64>| -> Result<f64> {
            f()?;
            let mut t = f64::INFINITY;
            for _ in 0..3 {
                t = t.min(f()?);
            }
            Ok(t.max(1e-9))
        };
        let memory = best(&|| {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(&from, 0, &to, 0, BYTES);
            let started = std::time::Instant::now();
            self.submit_and_wait(encoder)?;
            Ok(started.elapsed().as_secs_f64())
        })?;
        let link = best(&|| {
            let encoder = self.device.create_command_encoder(&Default::default());
            let started = std::time::Instant::now();
            let pending = self.submit_with_readback(encoder, &from, &staging, BYTES);
            self.read(pending, &staging, |_| ())?;
            Ok(started.elapsed().as_secs_f64())
        })?;
        Ok((2.0 * BYTES as f64 / memory / 1e9, BYTES as f64 / link / 1e9))
    }

    /// Wait for a submission's readback into `staging` and hand its bytes
    /// to `f`.
    fn read<T>(
        &self,
        pending: Pending,
        staging: &wgpu::Buffer,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<T> {
        self.wait(pending.index)?;
        pending
            .rx
            .recv()
            .map_err(|e| Error::Gpu(format!("readback never completed: {e}")))?
            .map_err(|e| Error::Gpu(format!("readback failed: {e}")))?;
        let view = staging
            .get_mapped_range(..pending.bytes)
            .map_err(|e| Error::Gpu(e.to_string()))?;
        let out = f(&view);
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Submit, read back the first `len` words of `source`.
    fn words(
        &self,
        encoder: wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        len: usize,
    ) -> Result<Vec<u32>> {
        let bytes = (len.max(1) * 4) as u64;
        let staging = self.staging(bytes);
        let pending = self.submit_with_readback(encoder, source, &staging, bytes);
        self.read(pending, &staging, |b| {
            bytemuck::cast_slice::<u8, u32>(b)[..len].to_vec()
        })
    }

    /// The adapter's measured arithmetic peak in `precision`, in GFLOP/s:
    /// `peak.wgsl` (independent fused multiply-adds, 2 flops each) over a
    /// million invocations, its rounds doubled until one dispatch takes
    /// 0.2 s; the best of three at that size. A ceiling for `medsim
    /// bench`'s fraction of peak, compiled only when asked for.
    pub fn arithmetic_peak(&self, precision: Precision) -> Result<f64> {
        self.precision_index(precision)?;
        let pipeline = self.compile("peak.wgsl", precision, &[])?;
        const GROUPS: u32 = 4096;
        let invocations = GROUPS as u64 * 256;
        let out = self.output("peak", invocations * (words_per(precision) * 4) as u64);
        let time = |iterations: u32| -> Result<f64> {
            let params = self.uniform("peak params", bytemuck::cast_slice(&[iterations, 0, 0, 0]));
            let bind = self.bind(&pipeline, &[&params, &out]);
            let mut encoder = self.device.create_command_encoder(&Default::default());
            Self::dispatch(&mut encoder, &pipeline, &bind, (GROUPS, 1));
            let started = std::time::Instant::now();
            self.words(encoder, &out, 1)?;
            Ok(started.elapsed().as_secs_f64())
        };
        let mut iterations = 16u32;
        time(iterations)?;
        while time(iterations)? < 0.2 && iterations < 1 << 24 {
            iterations *= 2;
        }
        let best = (0..3)
            .map(|_| time(iterations))
            .collect::<Result<Vec<f64>>>()?
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        Ok(invocations as f64 * iterations as f64 * 16.0 / best / 1e9)
    }

    /// Philox4x32-10 blocks computed in WGSL.
    pub fn philox(&self, cases: &[PhiloxCase]) -> Result<Vec<[u32; 4]>> {
        let input = self.storage("cases", bytemuck::cast_slice(cases));
        let blocks = self.output("blocks", (cases.len() * 16) as u64);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let pipeline = self.stage(&self.philox, Precision::F32)?;
        let bind = self.bind(pipeline, &[&input, &blocks]);
        Self::dispatch(
            &mut encoder,
            pipeline,
            &bind,
            ((cases.len() as u32).div_ceil(64), 1),
        );
        let out = self.words(encoder, &blocks, cases.len() * 4)?;
        Ok(out.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect())
    }

    /// Weight codes of replicates `start .. start + count` (count x G): counts
    /// for pairs and Poisson, 0/1 for the jackknife, the sign bit for
    /// Rademacher, 0 for Mammen's negative point, Webb's point index, the
    /// normal table's index, the tabulated exponential for Bayes; and (Bayes)
    /// each replicate's per-stratum sums of codes (count x strata).
    pub fn weight_codes(
        &self,
        plan: &WeightPlan,
        start: u64,
        count: u32,
    ) -> Result<(Vec<u32>, Vec<u64>)> {
        let inputs = GemmInputs::new(self, plan, &[0.0], 1, Precision::F32, false)?.keeping_codes();
        let slot = inputs.slot(self, count as usize, None)?;
        let mut encoder = self.device.create_command_encoder(&Default::default());
        inputs.record_weights(self, &mut encoder, &slot, start, count);
        let codes = self.words(encoder, &slot.codes, count as usize * plan.n_clusters)?;
        let encoder = self.device.create_command_encoder(&Default::default());
        let n_sums = count as usize * plan.strata.len();
        let sums = self.words(encoder, &slot.sums, 2 * n_sums)?;
        let sums = sums
            .chunks(2)
            .map(|w| w[0] as u64 | (w[1] as u64) << 32)
            .collect();
        Ok((codes, sums))
    }

    /// Replicate Gram entries in `precision`: the weights of replicates
    /// `start .. start + count` (drawn on the device, never read back) times
    /// `stats` (G x n, row-major), as count x n. The GEMM stage on its own,
    /// for testing.
    pub fn gram(
        &self,
        plan: &WeightPlan,
        start: u64,
        count: u32,
        stats: &[f64],
        n: usize,
        precision: Precision,
    ) -> Result<Vec<f64>> {
        let inputs = GemmInputs::new(self, plan, stats, n, precision, false)?;
        let slot = inputs.slot(self, count as usize, None)?;
        let mut encoder = self.device.create_command_encoder(&Default::default());
        inputs.record(self, &mut encoder, &slot, start, count);
        let words = self.words(
            encoder,
            &slot.out,
            count as usize * n * words_per(precision),
        )?;
        Ok(reals_from_words(&words, precision))
    }

    /// Make GEMMs built from now on draw their weights (where the scheme
    /// allows) or read the weight stage's codes. The replicates are the same
    /// to the bit either way (`tests/gpu.rs` runs both).
    pub fn set_draw_weights(&self, on: bool) {
        self.draw_weights.store(on, Ordering::SeqCst);
    }

    /// Make GEMMs built from now on that read weight codes run the subgroup
    /// kernel (`GemmShape::Subgroup`) or the workgroup-memory one; false if
    /// the adapter cannot run the subgroup kernel (nothing changes). The
    /// replicates are the same to the bit either way (`tests/gpu.rs`).
    pub fn set_subgroup_gemm(&self, on: bool) -> bool {
        if on && !self.subgroups_of_8 {
            return false;
        }
        self.subgroup_gemm.store(on, Ordering::SeqCst);
        true
    }

    /// Make engines built from now on run the least-squares solve generated
    /// for their model's shape (`solve_gen`; the default) or `solve.wgsl`.
    /// The replicates are the same to the bit either way (`tests/gpu.rs`).
    pub fn set_generated_solves(&self, on: bool) {
        self.generate_solves.store(on, Ordering::SeqCst);
    }

    /// Whether engines built now run generated solves.
    pub(crate) fn generates_solves(&self) -> bool {
        self.generate_solves.load(Ordering::SeqCst)
    }

    /// Whether the adapter runs the f64 stages.
    pub fn has_f64(&self) -> bool {
        self.f64
    }

    /// The GEMM pipeline of `shape` in `precision`.
    fn gemm_stage(&self, shape: GemmShape, precision: Precision) -> Result<&wgpu::ComputePipeline> {
        match shape {
            GemmShape::Wide => self.stage(&self.gemm, precision),
            GemmShape::Narrow => self.stage(&self.gemm_narrow, precision),
            GemmShape::Subgroup => self.stage(&self.gemm_subgroup, precision),
        }
    }

    fn stage<'a>(
        &self,
        stages: &'a Pipelines,
        precision: Precision,
    ) -> Result<&'a wgpu::ComputePipeline> {
        let cell = &stages.compiled[self.precision_index(precision)?];
        if let Some(pipeline) = cell.get() {
            return Ok(pipeline);
        }
        let pipeline = self.compile(stages.name, precision, &stages.constants)?;
        Ok(cell.get_or_init(|| pipeline))
    }

    /// Compile every stage in `precision` now (for timing start-up: runs
    /// compile a stage when they first use it).
    pub fn compile_all(&self, precision: Precision) -> Result<()> {
        // The integer stages have one precision.
        self.stage(&self.philox, Precision::F32)?;
        self.stage(&self.weights, Precision::F32)?;
        self.stage(&self.threshold_draw, Precision::F32)?;
        for stages in [
            &self.gemm,
            &self.gemm_narrow,
            &self.solve,
            &self.solve_iv,
            &self.gemm_nt,
            &self.meat,
            &self.wcr,
            &self.permute,
            &self.cell_sums,
            &self.cell_factor,
            &self.cell_partial,
            &self.threshold_search,
        ] {
            self.stage(stages, precision)?;
        }
        if self.subgroups_of_8 {
            self.stage(&self.gemm_subgroup, precision)?;
        }
        self.check()
    }

    /// Where `precision`'s pipelines are kept; an error if the adapter has
    /// no f64.
    pub(crate) fn precision_index(&self, precision: Precision) -> Result<usize> {
        match precision {
            Precision::F32 => Ok(0),
            Precision::F64 if self.f64 => Ok(1),
            Precision::F64 => Err(Error::InvalidOption {
                option: "resampling.precision".into(),
                message: format!("{} has no SHADER_F64; use f32", self.info.name),
            }),
        }
    }

    /// Stage `name` of shaders/ compiled in `precision` with its pipeline
    /// constants.
    fn compile(
        &self,
        name: &str,
        precision: Precision,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        Ok(self.compile_text(name, shader_source(name, precision)?, constants))
    }

    /// WGSL `source` compiled, labelled `name`.
    fn compile_text(
        &self,
        name: &str,
        source: String,
        constants: &[(&str, f64)],
    ) -> wgpu::ComputePipeline {
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                // Every stage writes its workgroup memory before it reads it.
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
    }

    /// The generated least-squares solve of `shape` in `precision`
    /// (`solve_gen`), compiled once per shape and kept: the models of a
    /// sweep or a group share it. Errors as the other stages (the adapter's
    /// precision).
    pub(crate) fn generated_solve(
        &self,
        shape: &solve_gen::SolveShape,
        precision: Precision,
    ) -> Result<wgpu::ComputePipeline> {
        self.precision_index(precision)?;
        let key = (shape.clone(), precision);
        let mut cache = self
            .generated
            .lock()
            .map_err(|_| Error::Gpu("the pipeline cache is poisoned".into()))?;
        if let Some(pipeline) = cache.get(&key) {
            return Ok(pipeline.clone());
        }
        let pipeline = self.compile_text(
            "solve (generated)",
            solve_gen::solve_source(shape, precision)?,
            &[],
        );
        cache.insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// The least-squares solve's bind group. `buffers`: its parameters, E,
    /// then the coefficient table, scales, L and L^{-1}, then the
    /// replicates' reals. `solve.wgsl` also binds its scratch (made here,
    /// `scratch_bytes`) and the influence functionals; the generated solve
    /// (`generated`) binds neither, nor the coefficient table.
    pub(crate) fn bind_solve(
        &self,
        pipeline: &wgpu::ComputePipeline,
        generated: bool,
        buffers: [&wgpu::Buffer; 7],
        scratch_bytes: u64,
        functionals: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        let [params, e, coefs, scales, factor, inverse, deltas] = buffers;
        if generated {
            return self.bind(pipeline, &[params, e, scales, factor, inverse, deltas]);
        }
        let work = self.output("solve scratch", scratch_bytes);
        self.bind(
            pipeline,
            &[
                params,
                e,
                coefs,
                scales,
                factor,
                inverse,
                deltas,
                &work,
                functionals,
            ],
        )
    }

    /// A read-only storage buffer of reals in `precision`.
    fn reals(&self, label: &str, values: &[f64], precision: Precision) -> wgpu::Buffer {
        match precision {
            Precision::F32 => {
                let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
                self.storage(label, bytemuck::cast_slice(&v))
            }
            Precision::F64 => self.storage(label, bytemuck::cast_slice(values)),
        }
    }
}

/// A submitted batch whose results are being copied to a staging buffer.
struct Pending {
    index: wgpu::SubmissionIndex,
    rx: std::sync::mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
    bytes: u64,
}

/// The fixed inputs of the weight and GEMM stages for one weight plan and
/// one matrix of per-cluster statistics (G x n), or for a stack of sets
/// (`for_sets`): each its own seed and G x n matrix, the same clusters.
pub(crate) struct GemmInputs {
    weight_params: WeightParams,
    gemm_params: GemmParams,
    members: wgpu::Buffer,
    offsets: wgpu::Buffer,
    /// Each set's seed.
    seeds: wgpu::Buffer,
    /// Poisson thresholds or the exponential table.
    table: wgpu::Buffer,
    pub stats: wgpu::Buffer,
    pub decode_table: wgpu::Buffer,
    /// Each cluster's stratum, then each stratum's size.
    pub strata: wgpu::Buffer,
    pub precision: Precision,
    /// Where the weights are read as codes, the GEMM runs the subgroup
    /// kernel (`GpuContext::set_subgroup_gemm`).
    subgroup: bool,
}

/// The buffers of one batch through the weight and GEMM stages.
pub(crate) struct GemmSlot {
    weight_params: wgpu::Buffer,
    gemm_params: wgpu::Buffer,
    pub codes: wgpu::Buffer,
    pub sums: wgpu::Buffer,
    /// The GEMM's output, capacity x n reals.
    pub out: wgpu::Buffer,
    weights_bind: wgpu::BindGroup,
    gemm_bind: wgpu::BindGroup,
}

impl GemmInputs {
    /// `deviation` makes the GEMM use the weights minus one (the whitened
    /// solve's input).
    pub(crate) fn new(
        ctx: &GpuContext,
        plan: &WeightPlan,
        stats: &[f64],
        n: usize,
        precision: Precision,
        deviation: bool,
    ) -> Result<GemmInputs> {
        Self::for_sets(ctx, plan, &[plan.seed], 0, stats, n, precision, deviation)
    }

    /// Inputs for a stack of sets: set s draws replicates 0 .. `per_set`
    /// of `plan` with seed `seeds[s]` over its own G x n block of `stats`
    /// (blocks in set order). Batches are then whole sets: `record`'s
    /// `count` is a multiple of `per_set`. `per_set` 0: one set, `new`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn for_sets(
        ctx: &GpuContext,
        plan: &WeightPlan,
        seeds: &[u64],
        per_set: usize,
        stats: &[f64],
        n: usize,
        precision: Precision,
        deviation: bool,
    ) -> Result<GemmInputs> {
        ctx.precision_index(precision)?;
        let mut members = Vec::new();
        let mut offsets = vec![0u32];
        let mut strata = vec![0u32; plan.n_clusters];
        for (k, s) in plan.strata.iter().enumerate() {
            members.extend_from_slice(s);
            offsets.push(members.len() as u32);
            for &c in s {
                strata[c as usize] = k as u32;
            }
        }
        strata.extend(plan.strata.iter().map(|s| s.len() as u32));
        let table: &[u32] = match plan.scheme {
            Scheme::Bayes => crate::math::rng::exponential_table(),
            _ => &POISSON1_THRESHOLDS,
        };
        let (decode_mode, decode_table) = decoding(plan.scheme, deviation);
        let label_split = match plan.scheme {
            Scheme::Labels { first, second } => (first, u32::from(second)),
            _ => (0, 0),
        };
        Ok(GemmInputs {
            weight_params: WeightParams {
                start: [0; 2],
                per_set: per_set as u32,
                pad: 0,
                count: 0,
                n_clusters: plan.n_clusters as u32,
                scheme: scheme_code(plan.scheme)?,
                n_strata: plan.strata.len() as u32,
                tag: match plan.scheme {
                    Scheme::Labels { .. } => STREAM_LABELS,
                    _ => STREAM_WEIGHTS,
                },
                mammen_threshold: MAMMEN_THRESHOLD,
                first: label_split.0,
                second: label_split.1,
            },
            gemm_params: GemmParams {
                nb: 0,
                g: plan.n_clusters as u32,
                n: n as u32,
                decode_mode,
                n_strata: plan.strata.len() as u32,
                draw: u32::from(
                    draws_in_gemm(plan.scheme) && ctx.draw_weights.load(Ordering::SeqCst),
                ),
                scheme: scheme_code(plan.scheme)?,
                tag: STREAM_WEIGHTS,
                start: [0; 2],
                mammen_threshold: MAMMEN_THRESHOLD,
                pad: 0,
            },
            members: ctx.storage("members", bytemuck::cast_slice(&members)),
            offsets: ctx.storage("offsets", bytemuck::cast_slice(&offsets)),
            seeds: ctx.storage(
                "seeds",
                bytemuck::cast_slice(
                    &seeds
                        .iter()
                        .map(|&s| [s as u32, (s >> 32) as u32])
                        .collect::<Vec<_>>(),
                ),
            ),
            table: ctx.storage("weight table", bytemuck::cast_slice(table)),
            stats: ctx.reals("cluster statistics", stats, precision),
            decode_table: ctx.reals("decode table", &decode_table, precision),
            strata: ctx.storage("strata", bytemuck::cast_slice(&strata)),
            precision,
            subgroup: ctx.subgroup_gemm.load(Ordering::SeqCst),
        })
    }

    /// A GEMM whose left operand is `table[code]`, the codes written by
    /// another stage into the slot's codes (`rows` per replicate): the
    /// threshold model's residual bootstrap, each replicate's row its
    /// residual draw (`threshold_draw.wgsl`). Record it with `record_gemm`.
    pub(crate) fn reading_table(
        ctx: &GpuContext,
        rows: usize,
        table: &[f64],
        stats: &[f64],
        n: usize,
        precision: Precision,
    ) -> Result<GemmInputs> {
        // The normal weights' decoding is a table lookup (mode 1); only the
        // table differs.
        let plan = WeightPlan::new(Scheme::Wild(WildWeights::Normal), 0, rows, None);
        let mut inputs = Self::new(ctx, &plan, stats, n, precision, false)?.keeping_codes();
        inputs.decode_table = ctx.reals("decode table", table, precision);
        Ok(inputs)
    }

    /// The weight stage writes every replicate's codes even where the GEMM
    /// could draw the weights itself: for a later stage that reads them
    /// (the studentized meat, the WCR tests, a test of the codes).
    pub(crate) fn keeping_codes(mut self) -> GemmInputs {
        self.gemm_params.draw = 0;
        self
    }

    /// Whether the GEMM draws the weights (no weight stage, no codes).
    pub(crate) fn draws(&self) -> bool {
        self.gemm_params.draw != 0
    }

    /// The GEMM's kernel and block shape (the subgroup kernel reads codes
    /// only).
    pub(crate) fn shape(&self) -> GemmShape {
        GemmShape::choose(self.gemm_params.n, self.subgroup && !self.draws())
    }

    /// The GEMM's output per replicate (reals).
    pub(crate) fn width(&self) -> usize {
        self.gemm_params.n as usize
    }

    /// The GEMM's decode mode and the number of strata, for other stages
    /// that weight clusters by the same codes (meat.wgsl).
    pub(crate) fn decode_mode(&self) -> (u32, u32) {
        (self.gemm_params.decode_mode, self.gemm_params.n_strata)
    }

    /// Buffers for batches of up to `capacity` replicates; `out_bytes`
    /// overrides the size of the GEMM's output (fault injection).
    pub(crate) fn slot(
        &self,
        ctx: &GpuContext,
        capacity: usize,
        out_bytes: Option<u64>,
    ) -> Result<GemmSlot> {
        let shape = self.shape();
        let gemm = ctx.gemm_stage(shape, self.precision)?;
        let cap = capacity as u64;
        let g = self.gemm_params.g as u64;
        let n_strata = self.gemm_params.n_strata as u64;
        let weight_params = ctx.uniform("weight params", bytemuck::bytes_of(&self.weight_params));
        let gemm_params = ctx.uniform("gemm params", bytemuck::bytes_of(&self.gemm_params));
        // Drawn weights: the GEMM binds the codes but never reads them.
        let codes = ctx.output("codes", if self.draws() { 4 } else { cap * g * 4 });
        let sums = ctx.output("sums", cap * n_strata * 8);
        let ws = (words_per(self.precision) * 4) as u64;
        let out = ctx.output(
            "gram",
            out_bytes.unwrap_or(cap * self.gemm_params.n as u64 * ws),
        );
        let weights_bind = ctx.bind(
            ctx.stage(&ctx.weights, Precision::F32)?,
            &[
                &weight_params,
                &self.members,
                &self.offsets,
                &self.table,
                &codes,
                &sums,
                &self.seeds,
            ],
        );
        let gemm_buffers = [
            &gemm_params,
            &codes,
            &self.stats,
            &self.decode_table,
            &out,
            &sums,
            &self.strata,
            &self.seeds,
        ];
        // The subgroup kernel never draws: it has no binding for the seeds.
        let bound = match shape {
            GemmShape::Subgroup => &gemm_buffers[..7],
            _ => &gemm_buffers[..],
        };
        let gemm_bind = ctx.bind(gemm, bound);
        Ok(GemmSlot {
            weight_params,
            gemm_params,
            codes,
            sums,
            out,
            weights_bind,
            gemm_bind,
        })
    }

    /// Record the weight stage for replicates `start .. start + count`.
    pub(crate) fn record_weights(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slot: &GemmSlot,
        start: u64,
        count: u32,
    ) {
        let params = WeightParams {
            start: [start as u32, (start >> 32) as u32],
            count,
            ..self.weight_params
        };
        ctx.queue
            .write_buffer(&slot.weight_params, 0, bytemuck::bytes_of(&params));
        let weights = ctx
            .stage(&ctx.weights, Precision::F32)
            .expect("compiled by GemmInputs::slot");
        GpuContext::dispatch(
            encoder,
            weights,
            &slot.weights_bind,
            (count.div_ceil(64), 1),
        );
    }

    /// Record the weight and GEMM stages for replicates `start .. start +
    /// count` (at most the slot's capacity).
    pub(crate) fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slot: &GemmSlot,
        start: u64,
        count: u32,
    ) {
        if !self.draws() {
            self.record_weights(ctx, encoder, slot, start, count);
        }
        self.record_gemm(ctx, encoder, slot, start, count);
    }

    /// Record the GEMM stage of replicates `start .. start + count` (whose
    /// weight codes the weight stage wrote, unless the GEMM draws them).
    pub(crate) fn record_gemm(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slot: &GemmSlot,
        start: u64,
        count: u32,
    ) {
        // A stacked batch: one z-slice of the GEMM per set, per_set rows each.
        let (rows, sets) = match self.weight_params.per_set {
            0 => (count, 1),
            p => (p, count / p),
        };
        let params = GemmParams {
            nb: rows,
            start: [start as u32, (start >> 32) as u32],
            ..self.gemm_params
        };
        ctx.queue
            .write_buffer(&slot.gemm_params, 0, bytemuck::bytes_of(&params));
        let shape = self.shape();
        let (block_rows, block_cols) = shape.block();
        let gemm = ctx
            .gemm_stage(shape, self.precision)
            .expect("compiled by GemmInputs::slot");
        GpuContext::dispatch_sets(
            encoder,
            gemm,
            &slot.gemm_bind,
            (
                self.gemm_params.n.div_ceil(block_cols),
                rows.div_ceil(block_rows),
            ),
            sets,
        );
    }
}

/// How the GEMM turns weight codes into weights: its decode mode (0 count,
/// 1 table, 2 count minus one, 3 Bayes, 4 Bayes minus one) and table.
/// `deviation` asks for the weights minus one of the whitened solve.
fn decoding(scheme: Scheme, deviation: bool) -> (u32, Vec<f64>) {
    match scheme {
        Scheme::Wild(WildWeights::Normal) => (1, crate::math::rng::normal_table().to_vec()),
        Scheme::Wild(w) => {
            let n_codes = match w {
                WildWeights::Rademacher | WildWeights::Mammen => 2,
                _ => 6,
            };
            (
                1,
                (0..n_codes).map(|c| decode(Scheme::Wild(w), c)).collect(),
            )
        }
        Scheme::Bayes => (if deviation { 4 } else { 3 }, vec![0.0]),
        _ if deviation => (2, vec![0.0]),
        _ => (0, vec![0.0]),
    }
}

/// 32-bit words per real.
fn words_per(precision: Precision) -> usize {
    match precision {
        Precision::F32 => 1,
        Precision::F64 => 2,
    }
}

/// Reals read back as little-endian 32-bit words.
fn reals_from_words(words: &[u32], precision: Precision) -> Vec<f64> {
    match precision {
        Precision::F32 => words.iter().map(|&w| f32::from_bits(w) as f64).collect(),
        Precision::F64 => words
            .chunks(2)
            .map(|w| f64::from_bits(w[0] as u64 | (w[1] as u64) << 32))
            .collect(),
    }
}

/// The weight a code of `weight_codes` stands for, as `WeightPlan::fill`
/// writes it (Bayes: `n_s code / sum`, which needs the stratum's sum).
pub fn decode(scheme: Scheme, code: u32) -> f64 {
    match scheme {
        Scheme::Wild(WildWeights::Normal) => crate::math::rng::normal_table()[code as usize],
        Scheme::Wild(WildWeights::Rademacher) => code as f64 * 2.0 - 1.0,
        Scheme::Wild(WildWeights::Mammen) => crate::resample::scheme::MAMMEN_POINTS[code as usize],
        Scheme::Wild(WildWeights::Webb) => crate::resample::scheme::WEBB[code as usize],
        _ => code as f64,
    }
}
