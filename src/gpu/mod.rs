//! The GPU side (wgpu + WGSL compute shaders in `shaders/`): one long-lived
//! context holding the device, queue and pipelines. Stages so far: the
//! Philox known-answer check, cluster weights (the CPU engine's bit for
//! bit), the tiled GEMM with the per-cluster statistics and the per-replicate
//! solve, in f32 and (SHADER_F64) f64. The engine that batches them behind
//! `engine::Engine` comes next (issue 4).

pub mod wgsl;

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::design::Design;
use crate::error::{Error, Result};
use crate::rng::{POISSON1_THRESHOLDS, STREAM_WEIGHTS};
use crate::scheme::{MAMMEN_THRESHOLD, Scheme, WeightPlan, WildWeights};

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
    ("real.wgsl", include_str!("../../shaders/real.wgsl")),
];

/// A stage's source with its includes expanded, `Real` set to `precision`.
pub fn shader_source(name: &str, precision: Precision) -> Result<String> {
    let read = |f: &str| {
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
    pub seed: [u32; 2],
    pub start: [u32; 2],
    pub count: u32,
    pub n_clusters: u32,
    pub scheme: u32,
    pub n_strata: u32,
    pub tag: u32,
    pub mammen_threshold: u32,
    pub pad: [u32; 2],
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
}
const _: () = assert!(std::mem::size_of::<GemmParams>() == 16);

/// The floating-point type of the numeric stages (`Real` in WGSL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    /// Where the adapter has SHADER_F64.
    F64,
}

/// Uniform parameters of `solve.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct SolveParams {
    pub nb: u32,
    pub q: u32,
    pub k0: u32,
    pub m: u32,
}
const _: () = assert!(std::mem::size_of::<SolveParams>() == 16);

/// Largest design width the solve stage holds (`MAX_Q` in solve.wgsl).
pub const MAX_Q: usize = 48;

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
        other => Err(Error::Gpu(format!(
            "the {} scheme{} has no GPU weight stage yet",
            other.as_str(),
            match other {
                Scheme::Wild(w) => format!(" with {} weights", w.as_str()),
                _ => String::new(),
            }
        ))),
    }
}

/// A device, its queue and the compiled stages.
pub struct GpuContext {
    pub info: wgpu::AdapterInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    philox: wgpu::ComputePipeline,
    weights: wgpu::ComputePipeline,
    /// GEMM and solve stages per precision: f32, then f64 where available.
    gemm: Vec<wgpu::ComputePipeline>,
    solve: Vec<wgpu::ComputePipeline>,
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

/// Every adapter, best first, with the limits that size GPU batches.
pub fn list_adapters() -> Vec<AdapterSummary> {
    adapters()
        .iter()
        .map(|a| {
            let l = a.limits();
            AdapterSummary {
                info: a.get_info(),
                shader_f64: a.features().contains(wgpu::Features::SHADER_F64),
                max_storage_buffer_binding_size: l.max_storage_buffer_binding_size as u64,
                max_buffer_size: l.max_buffer_size,
                max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            }
        })
        .collect()
}

impl GpuContext {
    /// The best adapter wgpu finds (respecting WGPU_BACKEND and friends), or
    /// None when there is none at all.
    pub fn new() -> Result<Option<GpuContext>> {
        let Some(adapter) = adapters().into_iter().next() else {
            return Ok(None);
        };
        let info = adapter.get_info();
        let f64_ok = adapter.features().contains(wgpu::Features::SHADER_F64);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("medsim"),
            required_limits: adapter.limits(),
            required_features: if f64_ok {
                wgpu::Features::SHADER_F64
            } else {
                wgpu::Features::empty()
            },
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("cannot open {}: {e}", info.name)))?;
        let compile = |name: &str, precision: Precision| -> Result<wgpu::ComputePipeline> {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(shader_source(name, precision)?.into()),
            });
            Ok(
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(name),
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                }),
            )
        };
        let precisions: &[Precision] = if f64_ok {
            &[Precision::F32, Precision::F64]
        } else {
            &[Precision::F32]
        };
        let philox = compile("philox_check.wgsl", Precision::F32)?;
        let weights = compile("weights.wgsl", Precision::F32)?;
        let gemm = precisions
            .iter()
            .map(|&p| compile("gemm.wgsl", p))
            .collect::<Result<_>>()?;
        let solve = precisions
            .iter()
            .map(|&p| compile("solve.wgsl", p))
            .collect::<Result<_>>()?;
        Ok(Some(GpuContext {
            info,
            device,
            queue,
            philox,
            weights,
            gemm,
            solve,
        }))
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

    /// A device-side buffer of `len` u32 or f32 values that stages write.
    fn output(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// Record one dispatch of `pipeline` with `buffers` bound at 0, 1, ...
    fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
        workgroups: (u32, u32),
    ) {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(workgroups.0, workgroups.1, 1);
    }

    /// Submit `encoder` after copying the first `len` words of `source` to a
    /// mappable buffer, wait, and return them.
    fn finish_and_read(
        &self,
        mut encoder: wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        len: usize,
    ) -> Result<Vec<u32>> {
        let size = (len.max(1) * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(source, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("device poll failed: {e}")))?;
        rx.recv()
            .map_err(|e| Error::Gpu(e.to_string()))?
            .map_err(|e| Error::Gpu(format!("readback failed: {e}")))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(e.to_string()))?;
        let result = bytemuck::cast_slice::<u8, u32>(&view)[..len].to_vec();
        drop(view);
        staging.unmap();
        Ok(result)
    }

    /// Record the weight stage for replicates `start .. start + count` into
    /// a new device buffer of codes (count x G).
    fn record_weights(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        plan: &WeightPlan,
        start: u64,
        count: u32,
    ) -> Result<wgpu::Buffer> {
        let mut members = Vec::new();
        let mut offsets = vec![0u32];
        for s in &plan.strata {
            members.extend_from_slice(s);
            offsets.push(members.len() as u32);
        }
        let params = WeightParams {
            seed: [plan.seed as u32, (plan.seed >> 32) as u32],
            start: [start as u32, (start >> 32) as u32],
            count,
            n_clusters: plan.n_clusters as u32,
            scheme: scheme_code(plan.scheme)?,
            n_strata: plan.strata.len() as u32,
            tag: STREAM_WEIGHTS,
            mammen_threshold: MAMMEN_THRESHOLD,
            pad: [0; 2],
        };
        let uniform = self.uniform("weight params", bytemuck::bytes_of(&params));
        let members = self.storage("members", bytemuck::cast_slice(&members));
        let offsets = self.storage("offsets", bytemuck::cast_slice(&offsets));
        let poisson = self.storage("poisson", bytemuck::cast_slice(&POISSON1_THRESHOLDS));
        let codes = self.output("codes", count as usize * plan.n_clusters);
        self.dispatch(
            encoder,
            &self.weights,
            &[&uniform, &members, &offsets, &poisson, &codes],
            (count.div_ceil(64), 1),
        );
        Ok(codes)
    }

    fn uniform(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        self.init_buffer(label, bytes, wgpu::BufferUsages::UNIFORM)
    }

    /// Philox4x32-10 blocks computed in WGSL.
    pub fn philox(&self, cases: &[PhiloxCase]) -> Result<Vec<[u32; 4]>> {
        let input = self.storage("cases", bytemuck::cast_slice(cases));
        let blocks = self.output("blocks", cases.len() * 4);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        self.dispatch(
            &mut encoder,
            &self.philox,
            &[&input, &blocks],
            ((cases.len() as u32).div_ceil(64), 1),
        );
        let out = self.finish_and_read(encoder, &blocks, cases.len() * 4)?;
        Ok(out.chunks(4).map(|c| [c[0], c[1], c[2], c[3]]).collect())
    }

    /// Weight codes of replicates `start .. start + count` (count x G): counts
    /// for pairs and Poisson, 0/1 for the jackknife, the sign bit for
    /// Rademacher, 0 for Mammen's negative point, Webb's point index.
    pub fn weight_codes(&self, plan: &WeightPlan, start: u64, count: u32) -> Result<Vec<u32>> {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let codes = self.record_weights(&mut encoder, plan, start, count)?;
        self.finish_and_read(encoder, &codes, count as usize * plan.n_clusters)
    }

    /// Replicate Gram entries in `precision`: the weights of replicates
    /// `start .. start + count` (drawn on the device, never read back) times
    /// `stats` (G x n, row-major), as count x n.
    pub fn gram(
        &self,
        plan: &WeightPlan,
        start: u64,
        count: u32,
        stats: &[f64],
        n: usize,
        precision: Precision,
    ) -> Result<Vec<f64>> {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let out = self.record_gram(&mut encoder, plan, start, count, stats, n, precision)?;
        let words =
            self.finish_and_read(encoder, &out, count as usize * n * words_per(precision))?;
        Ok(reals_from_words(&words, precision))
    }

    /// Whether the adapter runs the f64 stages.
    pub fn has_f64(&self) -> bool {
        self.gemm.len() > 1
    }

    fn stage<'a>(
        &self,
        stages: &'a [wgpu::ComputePipeline],
        precision: Precision,
    ) -> Result<&'a wgpu::ComputePipeline> {
        match precision {
            Precision::F32 => Ok(&stages[0]),
            Precision::F64 => stages.get(1).ok_or_else(|| {
                Error::Gpu(format!("{} has no SHADER_F64: use f32", self.info.name))
            }),
        }
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

    #[allow(clippy::too_many_arguments)]
    fn record_gram(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        plan: &WeightPlan,
        start: u64,
        count: u32,
        stats: &[f64],
        n: usize,
        precision: Precision,
    ) -> Result<wgpu::Buffer> {
        let gemm = self.stage(&self.gemm, precision)?;
        let codes = self.record_weights(encoder, plan, start, count)?;
        let (decode_mode, table) = match plan.scheme {
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
            _ => (0, vec![0.0]),
        };
        let params = GemmParams {
            nb: count,
            g: plan.n_clusters as u32,
            n: n as u32,
            decode_mode,
        };
        let uniform = self.uniform("gemm params", bytemuck::bytes_of(&params));
        let stats = self.reals("stats", stats, precision);
        let table = self.reals("decode table", &table, precision);
        let out = self.output("gram", count as usize * n * words_per(precision));
        self.dispatch(
            encoder,
            gemm,
            &[&uniform, &codes, &stats, &table, &out],
            ((n as u32).div_ceil(16), count.div_ceil(16)),
        );
        Ok(out)
    }

    /// Replicate statistics (layout of `replicate::StatLayout`) of a
    /// reweighting scheme: weights, GEMM with every packed Gram entry, solve,
    /// all on the device in `precision`; only the statistics are read back.
    pub fn replicate_stats(
        &self,
        design: &Design,
        plan: &WeightPlan,
        start: u64,
        count: u32,
        precision: Precision,
    ) -> Result<Vec<f64>> {
        let q = design.q();
        if q > MAX_Q {
            return Err(Error::Gpu(format!(
                "{q} design columns exceed the solve stage's {MAX_Q}"
            )));
        }
        if matches!(plan.scheme, Scheme::Wild(_)) {
            return Err(Error::Gpu(
                "the wild scheme has no GPU solve stage yet".into(),
            ));
        }
        let solve = self.stage(&self.solve, precision)?;
        let p = crate::linalg::packed_len(q);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let gram = self.record_gram(
            &mut encoder,
            plan,
            start,
            count,
            &design.stats,
            p,
            precision,
        )?;
        let (x_to_m, x_to_y, m_to_y) = crate::replicate::unit_ratios(design);
        let scales: Vec<f64> = x_to_m
            .iter()
            .chain(&m_to_y)
            .copied()
            .chain([x_to_y])
            .collect();
        let m = design.layout.n_mediators;
        let params = SolveParams {
            nb: count,
            q: q as u32,
            k0: (design.layout.outcome() - m) as u32,
            m: m as u32,
        };
        let uniform = self.uniform("solve params", bytemuck::bytes_of(&params));
        let scales = self.reals("scales", &scales, precision);
        let n_stats = 3 * m + 4;
        let out = self.output("stats", count as usize * n_stats * words_per(precision));
        self.dispatch(
            &mut encoder,
            solve,
            &[&uniform, &gram, &scales, &out],
            (count.div_ceil(64), 1),
        );
        let words = self.finish_and_read(
            encoder,
            &out,
            count as usize * n_stats * words_per(precision),
        )?;
        Ok(reals_from_words(&words, precision))
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
/// writes it.
pub fn decode(scheme: Scheme, code: u32) -> f64 {
    match scheme {
        Scheme::Wild(WildWeights::Rademacher) => code as f64 * 2.0 - 1.0,
        Scheme::Wild(WildWeights::Mammen) => crate::scheme::MAMMEN_POINTS[code as usize],
        Scheme::Wild(WildWeights::Webb) => crate::scheme::WEBB[code as usize],
        _ => code as f64,
    }
}
