//! Hot kernels of the CPU engine on the default problem (278 clusters x 10
//! years, six controls, unit + time effects): weight generation, the GEMM of
//! weights x cluster statistics, the per-replicate solve, a whole engine batch,
//! and the quantiles of the aggregator. `cargo bench --bench kernels`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use medsim::internals::data::synthetic::{SyntheticParams, generate};
use medsim::internals::math::linalg::packed_len;
use medsim::internals::model::design::Design;
use medsim::internals::model::estimate::fit_system;
use medsim::internals::model::mediation::equations;
use medsim::internals::model::panel::Panel;
use medsim::internals::model::replicate::Solver;
use medsim::internals::model::spec::default_spec;
use medsim::internals::resample::engine::{CpuEngine, Engine};
use medsim::internals::resample::intervals::{Draws, Method};
use medsim::internals::resample::scheme::{Scheme, WeightPlan};

fn design() -> Design {
    let spec = default_spec();
    let panel = Panel::from_table(&generate(SyntheticParams::default()), &spec).unwrap();
    Design::build(&panel, spec.fixed_effects).unwrap()
}

fn kernels(c: &mut Criterion) {
    let d = design();
    let g = d.n_clusters;
    let p = packed_len(d.q());
    let batch = 256;
    let mut group = c.benchmark_group("default problem");
    group.throughput(Throughput::Elements(batch as u64));

    for scheme in [Scheme::Pairs, Scheme::Bayes, Scheme::Poisson] {
        let plan = WeightPlan::new(scheme, 1, g, None);
        let mut w = vec![0.0; batch * g];
        group.bench_function(format!("weights {} x{batch}", scheme.as_str()), |b| {
            b.iter(|| {
                for (i, row) in w.chunks_mut(g).enumerate() {
                    plan.fill(i as u64, row);
                }
                black_box(&w);
            })
        });
    }

    let plan = WeightPlan::new(Scheme::Pairs, 1, g, None);
    let mut w = vec![0.0; batch * g];
    for (i, row) in w.chunks_mut(g).enumerate() {
        plan.fill(i as u64, row);
    }
    let mut gram = vec![0.0; batch * p];
    let gemm = |gram: &mut [f64]| unsafe {
        matrixmultiply::dgemm(
            batch,
            g,
            p,
            1.0,
            w.as_ptr(),
            g as isize,
            1,
            d.stats.as_ptr(),
            p as isize,
            1,
            0.0,
            gram.as_mut_ptr(),
            p as isize,
            1,
        );
    };
    group.bench_function(
        format!("gemm {batch}x{g} . {g}x{p} (full packed width)"),
        |b| {
            b.iter(|| {
                gemm(&mut gram);
                black_box(&gram);
            })
        },
    );
    gemm(&mut gram);

    let mut solver = Solver::new(&d);
    let mut out = vec![0.0; solver.layout.len()];
    group.bench_function(format!("solve x{batch}"), |b| {
        b.iter(|| {
            for row in gram.chunks(p) {
                solver.solve(row, &mut out);
            }
            black_box(&out);
        })
    });

    let fit = fit_system(&d, &equations(&d)).unwrap();
    let engine = CpuEngine::new(&d, &fit, plan.clone(), batch, 1, false).unwrap();
    let mut stats = vec![0.0; batch * engine.layout().len()];
    group.bench_function(format!("engine batch pairs x{batch}, 1 thread"), |b| {
        b.iter(|| engine.compute(0, &mut stats).unwrap())
    });
    group.finish();

    let mut draws: Vec<f64> = (0..100_000)
        .map(|i| ((i * 7919) % 100_003) as f64)
        .collect();
    c.bench_function("sort + 5 intervals, B = 1e5", |b| {
        b.iter(|| {
            let mut v = draws.clone();
            v.sort_by(f64::total_cmp);
            let d = Draws::in_memory(50_000.0, &draws, &v, Some(0.01));
            for m in [
                Method::Percentile,
                Method::Basic,
                Method::Normal,
                Method::Bc,
                Method::Bca,
            ] {
                black_box(d.interval(m, 0.95));
            }
        })
    });
    draws.clear();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
