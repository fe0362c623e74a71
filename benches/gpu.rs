//! The GPU engine on the default problem (278 clusters x 10 years, six
//! controls, unit + time effects), on whatever adapter wgpu finds first
//! (`WGPU_ADAPTER_NAME`, `WGPU_BACKEND` choose): the weight stage alone, and
//! whole engine calls (weights -> GEMM -> solve -> read back -> finish on
//! the host) per scheme and precision, in replicates per second.
//! `cargo bench --bench gpu`; prints a note and does nothing without an adapter.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use medsim::internals::data::synthetic::{SyntheticParams, generate};
use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
use medsim::internals::gpu::shared_context;
use medsim::internals::model::design::Design;
use medsim::internals::model::estimate::fit_system;
use medsim::internals::model::mediation::equations;
use medsim::internals::model::panel::Panel;
use medsim::internals::model::spec::default_spec;
use medsim::internals::resample::engine::Engine;
use medsim::internals::resample::engine::Precision;
use medsim::internals::resample::scheme::{Scheme, WeightPlan, WildWeights};

fn gpu(c: &mut Criterion) {
    let Some(ctx) = shared_context(None).expect("the adapter opens") else {
        eprintln!("no GPU adapter: nothing to benchmark");
        return;
    };
    eprintln!("adapter: {} ({:?})", ctx.info.name, ctx.info.device_type);
    let spec = default_spec();
    let panel = Panel::from_table(&generate(SyntheticParams::default()), &spec).unwrap();
    let d = Design::build(&panel, spec.fixed_effects).unwrap();
    let fit = fit_system(&d, &equations(&d)).unwrap();
    let g = d.n_clusters;
    // Software adapters are slow: keep their iterations short.
    let count: usize = if medsim::internals::gpu::is_hardware(&ctx.info) {
        1 << 20
    } else {
        1 << 13
    };
    let mut group = c.benchmark_group(format!("gpu {}", ctx.info.name));
    group.sample_size(10);
    group.throughput(Throughput::Elements(count as u64));

    let plan = WeightPlan::new(Scheme::Pairs, 1, g, None);
    group.bench_function(format!("weights pairs x{count}"), |b| {
        b.iter(|| black_box(ctx.weight_codes(&plan, 0, count as u32).unwrap()))
    });

    let mut precisions = vec![Precision::F32];
    if ctx.has_f64() {
        precisions.push(Precision::F64);
    }
    for scheme in [
        Scheme::Pairs,
        Scheme::Poisson,
        Scheme::Wild(WildWeights::Rademacher),
    ] {
        for &precision in &precisions {
            let plan = WeightPlan::new(scheme, 1, g, None);
            let options = GpuOptions {
                precision,
                ..GpuOptions::default()
            };
            let engine = GpuEngine::new(ctx, &d, &fit, plan, options).unwrap();
            let mut out = vec![0.0; count * engine.layout().len()];
            let name = match scheme {
                Scheme::Wild(_) => "wild".to_string(),
                s => s.as_str().to_string(),
            };
            group.bench_function(format!("engine {name} {precision:?} x{count}"), |b| {
                b.iter(|| engine.compute(0, &mut out).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, gpu);
criterion_main!(benches);
