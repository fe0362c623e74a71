//! GPU stages against the CPU reference, on whatever adapter wgpu finds
//! (lavapipe in CI). Without an adapter the tests say they were skipped,
//! except under CI (CI=true), where that is a failure.

#![cfg(feature = "gpu")]

use medsim::internals::gpu::{GpuContext, PhiloxCase, decode};
use medsim::internals::math::rng::philox4x32_10;
use medsim::internals::resample::engine::Precision;
use medsim::internals::resample::scheme::{Scheme, WeightPlan, WildWeights};

mod common;

use common::gpu_context as context;

#[test]
fn philox_known_answers_in_wgsl() {
    let Some(ctx) = context() else { return };
    let cases = [
        ([0, 0, 0, 0], [0, 0]),
        ([u32::MAX; 4], [u32::MAX; 2]),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
        ),
        ([7, 1 << 31, 12345, 99], [0xdeadbeef, 42]),
    ];
    let input: Vec<PhiloxCase> = cases
        .iter()
        .map(|&(counter, key)| PhiloxCase {
            counter,
            key: [key[0], key[1], 0, 0],
        })
        .collect();
    let got = ctx.philox(&input).unwrap();
    assert_eq!(got[0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(got[1], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    assert_eq!(got[2], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
    for (g, &(counter, key)) in got.iter().zip(&cases) {
        assert_eq!(*g, philox4x32_10(counter, key));
    }
}

#[test]
fn gpu_weights_equal_the_cpu_weights_bit_for_bit() {
    let Some(ctx) = context() else { return };
    let strata: Vec<u32> = (0..37).map(|g| (g * 7 % 3) as u32).collect();
    // Both sides of a contrast's label shuffle, as well as the schemes.
    let schemes: Vec<Scheme> = GPU_SCHEMES
        .into_iter()
        .chain([false, true].map(|second| Scheme::Labels { first: 13, second }))
        .collect();
    for g in [37usize, 278] {
        for &scheme in &schemes {
            let mut plans = vec![WeightPlan::new(scheme, 0x1234_5678_9abc, g, None)];
            if matches!(scheme, Scheme::Pairs | Scheme::Bayes) && g == 37 {
                plans.push(WeightPlan::new(scheme, 3, g, Some(&strata)));
            }
            // Odd counts, and a batch that crosses 2^32 (the counter's high word).
            let starts: &[u64] = if scheme == Scheme::Jackknife {
                &[0, 5]
            } else {
                &[0, 1000, (1 << 32) - 30]
            };
            for plan in &plans {
                for &start in starts {
                    let count = if scheme == Scheme::Jackknife {
                        (g - start as usize) as u32
                    } else {
                        67
                    };
                    let (codes, sums) = ctx.weight_codes(plan, start, count).unwrap();
                    let mut want = vec![0.0; g];
                    let n_strata = plan.strata.len();
                    let mut stratum = vec![0; g];
                    for (k, s) in plan.strata.iter().enumerate() {
                        for &c in s {
                            stratum[c as usize] = k;
                        }
                    }
                    for r in 0..count as usize {
                        plan.fill(start + r as u64, &mut want);
                        for c in 0..g {
                            let code = codes[r * g + c];
                            let got = if scheme == Scheme::Bayes {
                                // n_s E_g / sum, with the device's exact sum.
                                let k = stratum[c];
                                let n = plan.strata[k].len() as f64;
                                n * code as f64 / sums[r * n_strata + k] as f64
                            } else {
                                decode(scheme, code)
                            };
                            assert_eq!(
                                got.to_bits(),
                                want[c].to_bits(),
                                "{scheme:?} G={g} replicate {} cluster {c}",
                                start + r as u64
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn gpu_gram_rows_match_the_cpu_product() {
    use medsim::internals::data::synthetic::{SyntheticParams, generate};
    use medsim::internals::math::linalg::packed_len;
    use medsim::internals::model::design::Design;
    use medsim::internals::model::panel::Panel;
    use medsim::internals::model::spec::default_spec;
    let spec = default_spec();
    let panel = Panel::from_table(&generate(SyntheticParams::default()), &spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let g = design.n_clusters;
    let p = packed_len(design.q());
    let strata: Vec<u32> = (0..g).map(|c| (c % 3) as u32).collect();
    // The weight-drawing switch below is this test's own.
    let Some(ctx) = common::private_gpu_context() else {
        return;
    };
    let ctx = &ctx;
    for (scheme, strata, draw) in [
        (Scheme::Pairs, None, false),
        (Scheme::Bayes, Some(&strata[..]), false),
        (Scheme::Wild(WildWeights::Webb), None, false),
        (Scheme::Wild(WildWeights::Rademacher), None, false),
        // The GEMM drawing the weights itself (what hardware adapters do).
        (Scheme::Wild(WildWeights::Rademacher), None, true),
        (Scheme::Wild(WildWeights::Mammen), None, true),
        (Scheme::Wild(WildWeights::Normal), None, true),
        (Scheme::Jackknife, None, true),
    ] {
        let plan = WeightPlan::new(scheme, 9, g, strata);
        let count = 37;
        let got = with_drawn_weights(ctx, draw, || {
            ctx.gram(&plan, 100, count, &design.stats, p, Precision::F32)
                .unwrap()
        });
        let mut w = vec![0.0; g];
        for r in 0..count as usize {
            plan.fill(100 + r as u64, &mut w);
            let want: Vec<f64> = (0..p)
                .map(|k| (0..g).map(|c| w[c] * design.stats[c * p + k]).sum())
                .collect();
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let worst = (0..p)
                .map(|k| (got[r * p + k] - want[k]).abs() / scale)
                .fold(0.0, f64::max);
            if r == 0 {
                eprintln!("{scheme:?}: largest GPU f32 error / row scale = {worst:.2e}");
            }
            for k in 0..p {
                // f32 inputs and accumulation over G = 278 terms (seen: ~4e-7).
                let err = (got[r * p + k] - want[k]).abs();
                assert!(
                    err <= 5e-6 * scale,
                    "{scheme:?} replicate {r} entry {k}: {} vs {}",
                    got[r * p + k],
                    want[k]
                );
            }
        }
    }
}

/// The default synthetic panel with the default model (its mediators
/// replaced by `mediators` unless empty): the panel, its design and fit.
fn default_problem(
    mediators: &[&str],
) -> (
    medsim::internals::model::panel::Panel,
    medsim::internals::model::design::Design,
    medsim::internals::model::estimate::SystemFit,
) {
    use medsim::internals::data::synthetic::{SyntheticParams, generate};
    use medsim::internals::model::spec::default_spec;
    let mut spec = default_spec();
    if !mediators.is_empty() {
        spec.mediators = mediators.iter().map(|s| s.to_string()).collect();
    }
    common::fitted(&generate(SyntheticParams::default()), &spec)
}

/// `f` run with GEMMs built to draw their weights (`draw`) or to read the
/// weight stage's codes, then the adapter's default restored. Other tests
/// running meanwhile may build either kind: both give the same replicates
/// to the bit (`drawn_weights_are_the_weight_stages_to_the_bit`).
fn with_drawn_weights<T>(ctx: &GpuContext, draw: bool, f: impl FnOnce() -> T) -> T {
    ctx.set_draw_weights(draw);
    let out = f();
    ctx.set_draw_weights(medsim::internals::gpu::is_hardware(&ctx.info));
    out
}

/// Every statistic of `got` is `want`'s to the bit (NaNs of the same
/// payload included), else the count that differ and the first.
fn assert_same_bits(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let differ: Vec<usize> = (0..want.len())
        .filter(|&i| got[i].to_bits() != want[i].to_bits())
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} of {} statistics differ, first at {}: {} against {}",
        differ.len(),
        want.len(),
        differ[0],
        got[differ[0]],
        want[differ[0]]
    );
}

/// Numbers in short scientific notation, for a test's log.
fn sci(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.1e}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Per statistic (rows of `width`), the largest distance of `got` from
/// `exact` over the replicates, in `exact`'s standard deviations.
fn worst_errors(got: &[f64], exact: &[f64], width: usize) -> Vec<f64> {
    let n = exact.len() / width;
    (0..width)
        .map(|j| {
            let col = || (0..n).map(|r| exact[r * width + j]);
            let mean = col().sum::<f64>() / n as f64;
            let sd = (col().map(|v| (v - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt();
            (0..n)
                .map(|r| (got[r * width + j] - exact[r * width + j]).abs() / sd)
                .fold(0.0, f64::max)
        })
        .collect()
}

/// The GEMM drawing the jackknife's and the wild weights in its tile loads
/// gives every replicate bit for bit as the weight stage's codes do: the
/// narrow wild GEMM and the wide one of the jackknife's Grams, from a
/// replicate other than 0, over several batches.
#[test]
fn drawn_weights_are_the_weight_stages_to_the_bit() {
    use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
    use medsim::internals::resample::engine::Engine;
    let Some(ctx) = common::private_gpu_context() else {
        return;
    };
    let ctx = &ctx;
    let (_, design, fit) = default_problem(&[]);
    let g = design.n_clusters;
    for scheme in [
        Scheme::Wild(WildWeights::Rademacher),
        Scheme::Wild(WildWeights::Mammen),
        Scheme::Wild(WildWeights::Normal),
        Scheme::Jackknife,
    ] {
        let (start, count) = match scheme {
            Scheme::Jackknife => (3, g - 3),
            _ => (1000, 300),
        };
        let run = |draw: bool| {
            with_drawn_weights(ctx, draw, || {
                let options = GpuOptions {
                    max_batch: 128,
                    ..GpuOptions::default()
                };
                let plan = WeightPlan::new(scheme, 7, g, None);
                let engine = GpuEngine::new(ctx, &design, &fit, plan, options).unwrap();
                let stages = engine.stages().len();
                let mut out = vec![0.0; count * engine.layout().len()];
                engine.compute(start as u64, &mut out).unwrap();
                (out, stages)
            })
        };
        let (drawn, drawn_stages) = run(true);
        let (coded, coded_stages) = run(false);
        assert_eq!(
            drawn_stages + 1,
            coded_stages,
            "{scheme:?}: no weight stage"
        );
        assert_same_bits(&drawn, &coded, &format!("{scheme:?}"));
    }
}

/// The subgroup GEMM kernel (`gemm_sg.wgsl`, lavapipe's default) gives every
/// replicate bit for bit as the workgroup-memory kernel does, for each way
/// codes become weights (counts, Bayes' table, stratified Bayes' sums,
/// Poisson), over several batches from a replicate other than 0, in both
/// precisions. An adapter without 8-lane subgroups runs only the latter;
/// lavapipe under CI must have them.
#[test]
fn subgroup_gemm_is_the_workgroup_gemm_to_the_bit() {
    use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
    use medsim::internals::resample::engine::Engine;
    let Some(ctx) = common::private_gpu_context() else {
        return;
    };
    let ctx = &ctx;
    let software = !medsim::internals::gpu::is_hardware(&ctx.info);
    if !ctx.set_subgroup_gemm(true) {
        assert!(
            !(software && std::env::var_os("CI").is_some()),
            "lavapipe under CI should run the subgroup GEMM"
        );
        return;
    }
    let (_, design, fit) = default_problem(&[]);
    let g = design.n_clusters;
    let strata: Vec<u32> = (0..g as u32).map(|c| c % 3).collect();
    let precisions = if ctx.has_f64() {
        vec![Precision::F32, Precision::F64]
    } else {
        vec![Precision::F32]
    };
    for precision in precisions {
        for (scheme, strata) in [
            (Scheme::Pairs, None),
            (Scheme::Bayes, None),
            (Scheme::Bayes, Some(&strata[..])),
            (Scheme::Poisson, None),
        ] {
            let run = |subgroup: bool| {
                assert!(ctx.set_subgroup_gemm(subgroup));
                let options = GpuOptions {
                    max_batch: 128,
                    precision,
                    ..GpuOptions::default()
                };
                let plan = WeightPlan::new(scheme, 11, g, strata);
                let engine = GpuEngine::new(ctx, &design, &fit, plan, options).unwrap();
                let kernel = engine.gemm_kernel();
                let mut out = vec![0.0; 300 * engine.layout().len()];
                engine.compute(1000, &mut out).unwrap();
                (out, kernel)
            };
            let (subgroup, kernel) = run(true);
            assert_eq!(kernel, Some("subgroup"));
            let (workgroup, kernel) = run(false);
            assert_eq!(kernel, Some("wide"));
            assert_same_bits(&subgroup, &workgroup, &format!("{scheme:?} {precision:?}"));
        }
    }
    ctx.set_subgroup_gemm(software);
}

/// The least-squares solve generated for the model's shape gives every
/// replicate bit for bit as `solve.wgsl` does (on hardware, to rounding: see
/// below): after the GEMM (pairs, Bayes)
/// and after the permutation gather, with one mediator and with two (another
/// shape), in both precisions. Studentized engines and the sensitivity ratio
/// keep `solve.wgsl`.
#[test]
fn generated_solve_is_solve_wgsl_to_the_bit() {
    use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
    use medsim::internals::resample::engine::Engine;
    let Some(ctx) = common::private_gpu_context() else {
        return;
    };
    let ctx = &ctx;
    let precisions = if ctx.has_f64() {
        vec![Precision::F32, Precision::F64]
    } else {
        vec![Precision::F32]
    };
    for mediators in [&[][..], &["agglom_sec", "agglom_ter"][..]] {
        let (panel, design, fit) = default_problem(mediators);
        let g = design.n_clusters;
        for &precision in &precisions {
            for scheme in [Scheme::Pairs, Scheme::Bayes, Scheme::Permutation] {
                let run = |generated: bool| {
                    ctx.set_generated_solves(generated);
                    let options = GpuOptions {
                        max_batch: 128,
                        precision,
                        ..GpuOptions::default()
                    };
                    let plan = WeightPlan::new(scheme, 13, g, None);
                    let engine = match scheme {
                        Scheme::Permutation => {
                            GpuEngine::permutation(ctx, &design, &fit, &panel, 13, options)
                        }
                        _ => GpuEngine::new(ctx, &design, &fit, plan, options),
                    }
                    .unwrap();
                    let kernel = engine.solve_kernel();
                    let width = engine.layout().len();
                    let mut out = vec![0.0; 200 * width];
                    engine.compute(500, &mut out).unwrap();
                    ctx.set_generated_solves(true);
                    (out, kernel, width)
                };
                let (generated, kernel, width) = run(true);
                assert_eq!(kernel, Some("generated"));
                let (general, kernel, _) = run(false);
                assert_eq!(kernel, Some("solve.wgsl"));
                let what = format!("{mediators:?} {scheme:?} {precision:?}");
                if medsim::internals::gpu::is_hardware(&ctx.info) {
                    // A driver's compiler may fuse a*b+c into one rounding
                    // differently in the unrolled code and in the loop
                    // (SPIR-V without NoContraction allows it): on an NVIDIA
                    // H200, 914 of 1600 f32 statistics differed, by up to
                    // 1.3e-4 SD after the permutation gather, whose f32
                    // statistics are themselves ~1e-3 SD from the CPU
                    // engine's on this problem (lavapipe too). There the
                    // generated solve must be as accurate as solve.wgsl,
                    // statistic by statistic, against the CPU engine: a wrong
                    // term would be far less so.
                    use medsim::internals::resample::engine::CpuEngine;
                    use medsim::internals::resample::permutation::PermutationEngine;
                    let cpu: Box<dyn Engine> = match scheme {
                        Scheme::Permutation => {
                            Box::new(PermutationEngine::new(&design, &panel, 13, 3, 2).unwrap())
                        }
                        _ => {
                            let plan = WeightPlan::new(scheme, 13, g, None);
                            Box::new(CpuEngine::new(&design, &fit, plan, 7, 2, false).unwrap())
                        }
                    };
                    assert_eq!(cpu.layout().len(), width);
                    let mut exact = vec![0.0; generated.len()];
                    cpu.compute(500, &mut exact).unwrap();
                    let floor = match precision {
                        Precision::F32 => 1e-5,
                        Precision::F64 => 1e-9,
                    };
                    let ours = worst_errors(&generated, &exact, width);
                    let theirs = worst_errors(&general, &exact, width);
                    eprintln!(
                        "{what}: worst error in SDs, generated {}, solve.wgsl {}",
                        sci(&ours),
                        sci(&theirs)
                    );
                    for j in 0..width {
                        assert!(
                            ours[j] <= 2.0 * theirs[j] + floor,
                            "{what} statistic {j}: the generated solve is {:.2e} SD from the CPU engine, solve.wgsl {:.2e}",
                            ours[j],
                            theirs[j]
                        );
                    }
                } else {
                    assert_same_bits(&generated, &general, &what);
                }
            }
        }
    }
    let (_, design, fit) = default_problem(&[]);
    let plan = WeightPlan::new(Scheme::Pairs, 1, design.n_clusters, None);
    let studentized = GpuOptions {
        studentize: true,
        ..GpuOptions::default()
    };
    let engine = GpuEngine::new(ctx, &design, &fit, plan.clone(), studentized).unwrap();
    assert_eq!(engine.solve_kernel(), Some("solve.wgsl"));
    let engine = GpuEngine::new(ctx, &design, &fit, plan, GpuOptions::default())
        .unwrap()
        .with_sensitivity(&[0.0, 0.5])
        .unwrap();
    assert_eq!(engine.solve_kernel(), Some("solve.wgsl"));
}

/// CPU-engine and GPU-engine statistics of replicates 0..count (jackknife:
/// G) of `scheme` on the default panel with `mediators` (with each
/// replicate's own SEs of the indirect effects, except for wild, which has
/// no studentized intervals), the GPU in batches
/// of at most 128 replicates (so several batches are in flight), and the
/// statistics per replicate.
fn cpu_and_gpu(
    ctx: &'static GpuContext,
    mediators: &[&str],
    scheme: Scheme,
    count: usize,
    precision: Precision,
) -> (Vec<f64>, Vec<f64>, usize, usize) {
    use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
    use medsim::internals::resample::engine::{CpuEngine, Engine};
    let (_, design, fit) = default_problem(mediators);
    let plan = WeightPlan::new(scheme, 5, design.n_clusters, None);
    let count = if scheme == Scheme::Jackknife {
        design.n_clusters
    } else {
        count
    };
    // Each replicate's own SEs too, where the scheme has them.
    let studentize = !matches!(scheme, Scheme::Wild(_));
    let cpu = CpuEngine::new(&design, &fit, plan.clone(), 64, 2, studentize).unwrap();
    let n_stats = cpu.layout().len();
    let mut want = vec![0.0; count * n_stats];
    cpu.compute(0, &mut want).unwrap();
    let options = GpuOptions {
        precision,
        max_batch: 128,
        studentize,
        ..GpuOptions::default()
    };
    let gpu = GpuEngine::new(ctx, &design, &fit, plan, options).unwrap();
    assert_eq!(gpu.layout(), cpu.layout());
    let mut got = vec![0.0; count * n_stats];
    gpu.compute(0, &mut got).unwrap();
    assert!(gpu.backend().fallback.is_none());
    (want, got, n_stats, count)
}

const GPU_SCHEMES: [Scheme; 8] = [
    Scheme::Pairs,
    Scheme::Bayes,
    Scheme::Poisson,
    Scheme::Jackknife,
    Scheme::Wild(WildWeights::Rademacher),
    Scheme::Wild(WildWeights::Mammen),
    Scheme::Wild(WildWeights::Webb),
    Scheme::Wild(WildWeights::Normal),
];

/// The f32 GPU engine against the f64 CPU engine, replicate by replicate:
/// every statistic within 1e-4 of its bootstrap SD (the whitened deviations
/// of `medsim::internals::resample::whiten` keep f32 rounding relative to the spread; seen at
/// most ~2e-6 SDs on lavapipe).
#[test]
fn gpu_replicate_statistics_match_the_cpu_engine_in_f32() {
    let Some(ctx) = context() else { return };
    for mediators in [vec!["agglom"], vec!["agglom_sec", "agglom_ter"]] {
        for scheme in GPU_SCHEMES {
            let (want, got, n_stats, count) =
                cpu_and_gpu(ctx, &mediators, scheme, 500, Precision::F32);
            let mut report = Vec::new();
            for s in 0..n_stats {
                let col: Vec<f64> = (0..count).map(|r| want[r * n_stats + s]).collect();
                let mean = col.iter().sum::<f64>() / count as f64;
                let sd = (col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
                    / (count as f64 - 1.0))
                    .sqrt();
                let worst = (0..count)
                    .map(|r| (got[r * n_stats + s] - want[r * n_stats + s]).abs())
                    .fold(0.0, f64::max);
                report.push(format!("{:.1e}", worst / sd));
                assert!(
                    worst <= 1e-4 * sd,
                    "{scheme:?} m={} statistic {s}: {:.2e} SDs",
                    mediators.len(),
                    worst / sd
                );
            }
            eprintln!(
                "{scheme:?} m={}: max |gpu - cpu| / bootstrap sd per statistic: {}",
                mediators.len(),
                report.join(" ")
            );
        }
    }
}

/// Where the adapter has SHADER_F64 (lavapipe does), the f64 GPU engine
/// equals the CPU engine replicate by replicate to 1e-9 relative.
#[test]
fn gpu_f64_replicate_statistics_match_the_cpu_engine() {
    let Some(ctx) = context() else { return };
    if !ctx.has_f64() {
        eprintln!("SKIPPED: {} has no SHADER_F64", ctx.info.name);
        return;
    }
    for scheme in GPU_SCHEMES {
        let (want, got, _, _) = cpu_and_gpu(
            ctx,
            &["agglom_sec", "agglom_ter"],
            scheme,
            300,
            Precision::F64,
        );
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs() / w.abs().max(1e-12))
            .fold(0.0, f64::max);
        eprintln!("{scheme:?} f64: largest relative difference {worst:.2e}");
        assert!(worst < 1e-9, "{scheme:?}: {worst:e}");
    }
}

/// The WCR tests on the GPU give the CPU's p-values: the same in f64, and
/// within two replicates' worth in f32 (a t* within f32 rounding of the
/// observed |t| could count differently). Every coefficient of every
/// equation of the panel behind tests/wild.rs, whose p-values are far from
/// 0 and 1.
#[test]
fn gpu_wild_restricted_tests_match_the_cpu() {
    use medsim::internals::model::design::Design;
    use medsim::internals::model::estimate::fit_system;
    use medsim::internals::model::mediation::equations;
    use medsim::internals::model::panel::Panel;
    use medsim::internals::resample::wild::RestrictedTest;
    let Some(ctx) = context() else { return };
    let spec = common::wild_panel_spec();
    let path = common::fixture("wild_panel.csv");
    let table = medsim::internals::data::table::read_csv(&path).unwrap();
    let panel = Panel::from_table(&table, &spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let eqs = equations(&design);
    let fit = fit_system(&design, &eqs).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let b = 2999u64;
    let mut precisions = vec![Precision::F32];
    if ctx.has_f64() {
        precisions.push(Precision::F64);
    }
    let mut middling = 0;
    for weights in [WildWeights::Rademacher, WildWeights::Webb] {
        let plan = WeightPlan::new(Scheme::Wild(weights), 21, design.n_clusters, None);
        for (e, eq) in eqs.iter().enumerate() {
            for &col in eq.regressors.iter().take(3) {
                let test = RestrictedTest::new(&design, &fit, e, eq, col).unwrap();
                let cpu = test.p_value(&plan, b, 256, &pool);
                if cpu > 0.02 && cpu < 0.98 {
                    middling += 1;
                }
                for &precision in &precisions {
                    let gpu =
                        medsim::internals::gpu::wild::p_value(ctx, &test, &plan, b, precision, 700)
                            .unwrap();
                    eprintln!(
                        "{weights:?} {} column {col} {precision:?}: cpu {cpu} gpu {gpu}",
                        eq.name
                    );
                    match precision {
                        Precision::F64 => assert_eq!(gpu, cpu, "{weights:?} column {col}"),
                        Precision::F32 => assert!(
                            (gpu - cpu).abs() <= 2.0 / b as f64,
                            "{weights:?} column {col}: {gpu} vs {cpu}"
                        ),
                    }
                }
            }
        }
    }
    assert!(middling >= 6, "too few informative p-values ({middling})");
}

/// The label-permutation test of a between-group contrast on the GPU
/// (weights.wgsl's label shuffle, then the GEMM and solve whitened at the
/// fit of both groups): each side's replicates match the CPU engine's (f64
/// to 1e-9 relative, f32 within 1e-4 of the permutation SD of every
/// difference), and so do the p-values (f64 the same; f32 within three
/// replicates' worth, as a |d*| within rounding of |d| may count
/// differently). East against west cities of the default panel.
#[test]
fn gpu_label_permutation_test_matches_the_cpu() {
    use medsim::internals::data::synthetic::{SyntheticParams, generate};
    use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
    use medsim::internals::model::design::Design;
    use medsim::internals::model::panel::Panel;
    use medsim::internals::model::spec::default_spec;
    use medsim::internals::resample::engine::{CpuEngine, Engine};
    use medsim::internals::resample::label_test::LabelPermutation;
    let Some(ctx) = context() else { return };
    let spec = default_spec();
    let panel = Panel::from_table(&generate(SyntheticParams::default()), &spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let region = panel.groups.iter().find(|f| f.name == "region").unwrap();
    let clusters_of = |name: &str| -> Vec<usize> {
        let code = region.levels.iter().position(|l| l == name).unwrap() as u32;
        let mut out: Vec<usize> = panel
            .cluster
            .codes
            .iter()
            .zip(&region.codes)
            .filter(|&(_, &r)| r == code)
            .map(|(&c, _)| c as usize)
            .collect();
        out.dedup();
        out
    };
    let test =
        LabelPermutation::new(&design, &clusters_of("east"), &clusters_of("west"), 9).unwrap();
    let n = test.layout().len();
    let count = 400;
    let cpu: Vec<CpuEngine> = [false, true]
        .map(|second| {
            CpuEngine::new(test.design(), test.fit(), test.plan(second), 64, 2, false).unwrap()
        })
        .into();
    let differences = |sides: [&dyn Engine; 2]| -> Vec<f64> {
        let (mut a, mut b) = (vec![0.0; count * n], vec![0.0; count * n]);
        sides[0].compute(0, &mut a).unwrap();
        sides[1].compute(0, &mut b).unwrap();
        a.iter().zip(&b).map(|(x, y)| x - y).collect()
    };
    let want = differences([&cpu[0], &cpu[1]]);
    let replicates = 999;
    let want_p = test.p_values([&cpu[0], &cpu[1]], replicates).unwrap();
    let mut precisions = vec![Precision::F32];
    if ctx.has_f64() {
        precisions.push(Precision::F64);
    }
    for precision in precisions {
        let options = GpuOptions {
            precision,
            max_batch: 128,
            ..GpuOptions::default()
        };
        let gpu: Vec<GpuEngine> = [false, true]
            .map(|second| {
                GpuEngine::new(ctx, test.design(), test.fit(), test.plan(second), options).unwrap()
            })
            .into();
        let got = differences([&gpu[0], &gpu[1]]);
        for s in 0..n {
            let col: Vec<f64> = (0..count).map(|r| want[r * n + s]).collect();
            let mean = col.iter().sum::<f64>() / count as f64;
            let sd =
                (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1) as f64).sqrt();
            let worst = (0..count)
                .map(|r| (got[r * n + s] - want[r * n + s]).abs())
                .fold(0.0, f64::max);
            eprintln!(
                "{precision:?} statistic {s}: max |gpu - cpu| = {:.1e} permutation SDs",
                worst / sd
            );
            let bound = match precision {
                Precision::F32 => 1e-4 * sd,
                Precision::F64 => 1e-9 * col.iter().fold(0.0f64, |m, v| m.max(v.abs())),
            };
            assert!(worst <= bound, "{precision:?} statistic {s}: {worst:e}");
        }
        let got_p = test.p_values([&gpu[0], &gpu[1]], replicates).unwrap();
        assert!(gpu.iter().all(|e| e.backend().fallback.is_none()));
        for (s, (g, w)) in got_p.iter().zip(&want_p).enumerate() {
            let (g, w) = (g.unwrap(), w.unwrap());
            eprintln!("{precision:?} statistic {s}: p {g} (cpu {w})");
            let slack = match precision {
                Precision::F32 => 3.0 / (replicates + 1) as f64,
                Precision::F64 => 0.0,
            };
            assert!(
                (g - w).abs() <= slack + 1e-15,
                "{precision:?} statistic {s}: p {g} vs {w}"
            );
        }
    }
}

/// The sensitivity analysis's replicates on the GPU (solve.wgsl's ratio of
/// the whitened factor's outcome and mediator diagonals, times the full
/// sample's kappa): kappa and ACME at every rho match the CPU engine's,
/// replicate by replicate, with and without the studentized SEs (which
/// share the replicate's reals): f32 within 1e-4 of each statistic's
/// bootstrap SD, f64 to 1e-9 relative.
#[test]
fn gpu_sensitivity_replicates_match_the_cpu_engine() {
    use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
    use medsim::internals::resample::engine::{CpuEngine, Engine};
    let Some(ctx) = context() else { return };
    let (_, design, fit) = default_problem(&[]);
    let rho = [-0.9, -0.3, 0.0, 0.4, 0.9];
    let mut precisions = vec![Precision::F32];
    if ctx.has_f64() {
        precisions.push(Precision::F64);
    }
    for scheme in [
        Scheme::Pairs,
        Scheme::Bayes,
        Scheme::Poisson,
        Scheme::Jackknife,
    ] {
        for studentize in [false, true] {
            let plan = WeightPlan::new(scheme, 8, design.n_clusters, None);
            let count = if scheme == Scheme::Jackknife {
                design.n_clusters
            } else {
                300
            };
            let cpu = CpuEngine::new(&design, &fit, plan.clone(), 64, 2, studentize)
                .unwrap()
                .with_sensitivity(&rho)
                .unwrap();
            let layout = cpu.layout();
            let n = layout.len();
            let mut want = vec![0.0; count * n];
            cpu.compute(0, &mut want).unwrap();
            for &precision in &precisions {
                let options = GpuOptions {
                    precision,
                    max_batch: 128,
                    studentize,
                    ..GpuOptions::default()
                };
                let gpu = GpuEngine::new(ctx, &design, &fit, plan.clone(), options)
                    .unwrap()
                    .with_sensitivity(&rho)
                    .unwrap();
                assert_eq!(gpu.layout(), layout);
                let mut got = vec![0.0; count * n];
                gpu.compute(0, &mut got).unwrap();
                assert!(gpu.backend().fallback.is_none());
                let stats: Vec<usize> = std::iter::once(layout.kappa())
                    .chain((0..rho.len()).map(|k| layout.acme(k)))
                    .chain(studentize.then(|| layout.se_indirect()))
                    .collect();
                for s in stats {
                    let col: Vec<f64> = (0..count).map(|r| want[r * n + s]).collect();
                    let mean = col.iter().sum::<f64>() / count as f64;
                    let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                        / (count - 1) as f64)
                        .sqrt();
                    let worst = (0..count)
                        .map(|r| (got[r * n + s] - want[r * n + s]).abs())
                        .fold(0.0, f64::max);
                    let bound = match precision {
                        Precision::F32 => 1e-4 * sd,
                        Precision::F64 => 1e-9 * col.iter().fold(0.0f64, |m, v| m.max(v.abs())),
                    };
                    eprintln!(
                        "{scheme:?} {precision:?} studentized={studentize} statistic {s}: {:.1e} SDs",
                        worst / sd
                    );
                    assert!(
                        worst <= bound,
                        "{scheme:?} {precision:?} statistic {s}: {worst:e}"
                    );
                }
            }
        }
    }
}

/// A stacked batch (`medsim::internals::gpu::stack`, a simulation study's datasets at
/// once) gives each dataset exactly the replicates the GPU engine gives it
/// alone with its own seed (the same arithmetic, bit for bit), and so the
/// CPU engine's: iid datasets (n = 60, each observation a cluster; c' =
/// 0.59 keeps the proportion mediated, a ratio, away from its pole) and
/// small calibrated panels, every stacking scheme, batches of 3 datasets;
/// against the CPU, f64 every statistic to 1e-9 relative, f32 the
/// coefficients and products within 1e-4 of their bootstrap SD. (In f32 the
/// ratios, proportion mediated and suppression share, are as close as their
/// denominators allow: a replicate of an iid dataset with c'* near 0 has a
/// share of 80 and an SD of 6, and f32's error in c'* moves it by 3e-4 SDs.
/// The ratios are formed on the host in f64 from the coefficients checked
/// here, by the code the CPU engine runs.)
#[test]
fn stacked_datasets_match_the_cpu_engine_dataset_by_dataset() {
    use medsim::internals::data::synthetic::{SyntheticParams, generate};
    use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
    use medsim::internals::gpu::stack::{Set, replicates};
    use medsim::internals::model::design::Design;
    use medsim::internals::model::estimate::{SystemFit, fit_system};
    use medsim::internals::model::mediation::equations;
    use medsim::internals::model::panel::Panel;
    use medsim::internals::model::spec::default_spec;
    use medsim::internals::model::spec::{FixedEffects, ModelSpec};
    use medsim::internals::resample::engine::{CpuEngine, Engine};
    use medsim::internals::study::simulate::{Cell, iid_table};
    let Some(ctx) = context() else { return };
    let cell = Cell {
        n: 60,
        a: 0.39,
        b: 0.14,
        c_prime: 0.59,
        a3: None,
        b3: None,
    };
    let iid = ModelSpec::xmy("id", "period", &[], FixedEffects::None);
    let panel_spec = ModelSpec {
        groups: vec![],
        ..default_spec()
    };
    let families: Vec<(&str, Vec<(Design, SystemFit)>)> = vec![
        (
            "iid",
            (0..7u64)
                .map(|d| {
                    let p = Panel::from_table(&iid_table(9, d, &cell), &iid).unwrap();
                    let design = Design::build(&p, iid.fixed_effects).unwrap();
                    let fit = fit_system(&design, &equations(&design)).unwrap();
                    (design, fit)
                })
                .collect(),
        ),
        (
            "panel",
            (0..4u64)
                .map(|d| {
                    let table = generate(SyntheticParams {
                        cities: 40,
                        years: 6,
                        seed: 100 + d,
                        ..SyntheticParams::default()
                    });
                    let p = Panel::from_table(&table, &panel_spec).unwrap();
                    let design = Design::build(&p, panel_spec.fixed_effects).unwrap();
                    let fit = fit_system(&design, &equations(&design)).unwrap();
                    (design, fit)
                })
                .collect(),
        ),
    ];
    let mut precisions = vec![Precision::F32];
    if ctx.has_f64() {
        precisions.push(Precision::F64);
    }
    let b = 200;
    for (family, data) in &families {
        let sets: Vec<Set> = data
            .iter()
            .enumerate()
            .map(|(d, (design, fit))| Set {
                design,
                fit,
                seed: 1000 + 17 * d as u64,
            })
            .collect();
        for scheme in [
            Scheme::Pairs,
            Scheme::Bayes,
            Scheme::Poisson,
            Scheme::Wild(WildWeights::Rademacher),
            Scheme::Wild(WildWeights::Webb),
        ] {
            for &precision in &precisions {
                let got = replicates(ctx, &sets, scheme, b, precision, 3, &|_| {}).unwrap();
                assert_eq!(got.len(), sets.len());
                for (set, stacked) in sets.iter().zip(&got) {
                    let plan = WeightPlan::new(scheme, set.seed, set.design.n_clusters, None);
                    let options = GpuOptions {
                        precision,
                        ..GpuOptions::default()
                    };
                    let alone =
                        GpuEngine::new(ctx, set.design, set.fit, plan.clone(), options).unwrap();
                    let mut on_gpu = vec![0.0; stacked.len()];
                    alone.compute(0, &mut on_gpu).unwrap();
                    assert_same_bits(
                        stacked,
                        &on_gpu,
                        &format!(
                            "{family} {scheme:?} {precision:?} seed {}: stacked against alone",
                            set.seed
                        ),
                    );
                    let cpu = CpuEngine::new(set.design, set.fit, plan, 64, 1, false).unwrap();
                    let n_stats = cpu.layout().len();
                    let mut want = vec![0.0; b * n_stats];
                    cpu.compute(0, &mut want).unwrap();
                    assert_eq!(stacked.len(), want.len());
                    let checked = match precision {
                        Precision::F64 => n_stats,
                        Precision::F32 => cpu.layout().proportion(),
                    };
                    for s in 0..checked {
                        let col: Vec<f64> = (0..b).map(|r| want[r * n_stats + s]).collect();
                        let mean = col.iter().sum::<f64>() / b as f64;
                        let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                            / (b as f64 - 1.0))
                            .sqrt();
                        for r in 0..b {
                            let (g, w) = (stacked[r * n_stats + s], want[r * n_stats + s]);
                            let ok = match precision {
                                Precision::F64 => (g - w).abs() <= 1e-9 * w.abs().max(1e-12),
                                Precision::F32 => (g - w).abs() <= 1e-4 * sd,
                            };
                            assert!(
                                ok,
                                "{family} {scheme:?} {precision:?} seed {} replicate {r} \
                                 statistic {s}: stacked {g}, alone {w} (sd {sd:e})",
                                set.seed
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The adapter's measured f32 peak (`medsim bench`'s ceiling) is a finite
/// positive rate, and the rounds it settles on take measurable time.
#[test]
fn arithmetic_peak_is_measured() {
    let Some(ctx) = context() else { return };
    let peak = ctx.arithmetic_peak(Precision::F32).unwrap();
    eprintln!("{}: {peak:.1} GFLOP/s f32", ctx.info.name);
    assert!(peak.is_finite() && peak > 0.01, "{peak}");
}

/// `medsim bench --stages` times each stage of a batch alone: those
/// stages, run one by one and read back, give the statistics the engine's
/// fused batches give, bit for bit, for pairs, wild, permutation and
/// studentized pairs; and the profile reports every stage with positive
/// times, finite rates and a roofline.
#[test]
fn stages_timed_alone_are_the_engines_own() {
    use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
    use medsim::internals::gpu::roofline::Stage;
    use medsim::internals::resample::engine::Engine;
    use medsim::internals::study::stages::{Problem, markdown, profile};
    let Some(ctx) = context() else { return };
    let (panel, design, fit) = default_problem(&[]);
    let g = design.n_clusters;
    for (scheme, studentize, stages) in [
        (
            Scheme::Pairs,
            false,
            &[Stage::Weights, Stage::Gemm, Stage::Solve][..],
        ),
        (
            Scheme::Wild(WildWeights::Webb),
            false,
            &[Stage::Weights, Stage::Gemm],
        ),
        (Scheme::Permutation, false, &[Stage::Permute, Stage::Solve]),
        (
            Scheme::Pairs,
            true,
            &[
                Stage::Weights,
                Stage::Gemm,
                Stage::Solve,
                Stage::InfluenceGemm,
                Stage::Meat,
            ],
        ),
    ] {
        let options = GpuOptions {
            studentize,
            ..GpuOptions::default()
        };
        let engine = match scheme {
            Scheme::Permutation => {
                GpuEngine::permutation(ctx, &design, &fit, &panel, 3, options).unwrap()
            }
            _ => GpuEngine::new(
                ctx,
                &design,
                &fit,
                WeightPlan::new(scheme, 3, g, None),
                options,
            )
            .unwrap(),
        };
        assert_eq!(engine.stages(), stages, "{scheme:?}");
        let times = engine.stage_times(300, 1).unwrap();
        let mut fused = vec![0.0; times.stats.len()];
        engine.compute(0, &mut fused).unwrap();
        assert_eq!(times.stats, fused, "{scheme:?} studentized {studentize}");
        assert_eq!(times.stages.len(), stages.len() + 1);
        assert!(times.stages.iter().all(|(_, t)| *t > 0.0));
    }
    let problem = Problem {
        design: &design,
        fit: &fit,
        panel: &panel,
    };
    let profiles = profile(&ctx.info.name, &problem, 256, 1).unwrap();
    assert_eq!(profiles.len(), 4);
    for p in &profiles {
        assert!(p.replicates_per_second.is_finite() && p.replicates_per_second > 0.0);
        assert!(p.roofline_replicates_per_second > 0.0);
        assert!(p.context_seconds > 0.0 && p.engine_seconds > 0.0);
        for s in &p.stages {
            assert!(s.seconds > 0.0 && s.of_roofline.is_finite(), "{s:?}");
        }
        assert_eq!(p.predictions.len(), 4);
    }
    let md = markdown(&profiles);
    eprintln!("{md}");
    assert!(
        md.contains("| gemm |") && md.contains("| readback |"),
        "{md}"
    );
}

/// Data in tiny or huge units (the outcome, mediator or treatment times
/// 1e-140 .. 1e140, all of which the CPU accepts) put the wild bootstrap's
/// cluster influences and the reported coefficients far beyond f32's
/// normal range (about 1.2e-38 .. 3.4e38): the f32 stages, single and
/// stacked, must still give the CPU's replicates, never zeros or
/// infinities, for the wild and the reweighting schemes.
#[test]
fn replicates_of_data_in_any_units_match_the_cpu_in_f32() {
    use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
    use medsim::internals::gpu::stack::{Set, replicates};
    use medsim::internals::resample::engine::{CpuEngine, Engine};
    let Some(ctx) = context() else { return };
    let table =
        medsim::internals::data::table::read_csv(&common::fixture("wild_panel.csv")).unwrap();
    for (column, scale) in [
        ("y", 1.0),
        ("y", 1e-140),
        ("y", 1e-40),
        ("y", 1e37),
        ("y", 1e140),
        ("m", 1e-140),
        ("m", 1e140),
        ("x", 1e-140),
        ("x", 1e140),
    ] {
        let at = table.column(column).unwrap();
        let mut t = table.clone();
        for row in &mut t.rows {
            let v: f64 = row[at].parse().unwrap();
            row[at] = format!("{:e}", v * scale);
        }
        let spec = common::wild_panel_spec();
        let (_panel, design, fit) = common::fitted(&t, &spec);
        for scheme in [Scheme::Wild(WildWeights::Rademacher), Scheme::Pairs] {
            let plan = WeightPlan::new(scheme, 3, design.n_clusters, None);
            let cpu = CpuEngine::new(&design, &fit, plan.clone(), 64, 2, false).unwrap();
            let n_stats = cpu.layout().len();
            let count = 300;
            let mut want = vec![0.0; count * n_stats];
            cpu.compute(0, &mut want).unwrap();
            let options = GpuOptions {
                precision: Precision::F32,
                max_batch: 128,
                ..GpuOptions::default()
            };
            let gpu = GpuEngine::new(ctx, &design, &fit, plan, options).unwrap();
            let mut single = vec![0.0; count * n_stats];
            gpu.compute(0, &mut single).unwrap();
            let set = Set {
                design: &design,
                fit: &fit,
                seed: 3,
            };
            let stacked = replicates(ctx, &[set], scheme, count, Precision::F32, 1, &|_| {})
                .unwrap()
                .remove(0);
            // The coefficients and the indirect effect: what the f32 stages
            // compute. (The ratios derived from them on the host, such as
            // the proportion mediated, are ill-conditioned in a replicate
            // whose total effect is near zero, at any scale.)
            let layout = cpu.layout();
            let keys = ["a", "b", "c", "c_prime", "indirect"];
            let at: Vec<usize> = keys
                .iter()
                .map(|k| layout.index_of(k, &["m".to_string()]).unwrap())
                .collect();
            let pick = |v: &[f64]| -> Vec<f64> {
                v.chunks(n_stats)
                    .flat_map(|row| at.iter().map(move |&i| row[i]))
                    .collect()
            };
            let want = pick(&want);
            for (engine, got) in [("single", pick(&single)), ("stacked", pick(&stacked))] {
                assert!(
                    got.iter().all(|v| v.is_finite() && *v != 0.0),
                    "{column} x {scale:e}, {scheme:?}, {engine}: zero or non-finite replicates"
                );
                common::assert_close(
                    &format!("gpu f32 {engine} {scheme:?}, {column} x {scale:e}"),
                    &got,
                    &want,
                    keys.len(),
                    common::Tolerance::SdFraction(1e-4),
                );
            }
        }
    }
}

/// A wild run on data in tiny units (outcome x 1e-40) on the GPU in f32:
/// the restricted tests' p-values are the CPU run's (their matrix is in
/// the design's scaled units; a test whose values would leave f32's safe
/// range is handed to the CPU), and the replicates' SEs agree.
#[test]
fn a_wild_run_on_data_in_tiny_units_matches_the_cpu() {
    if context().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut table =
        medsim::internals::data::table::read_csv(&common::fixture("wild_panel.csv")).unwrap();
    let y = table.column("y").unwrap();
    for row in &mut table.rows {
        let v: f64 = row[y].parse().unwrap();
        row[y] = format!("{:e}", v * 1e-40);
    }
    let csv = dir.path().join("tiny.csv");
    medsim::internals::data::table::write_csv(&table, &csv).unwrap();
    let run = |backend: &str| {
        let out = common::medsim(
            dir.path(),
            &[
                "run",
                "--data",
                csv.to_str().unwrap(),
                "--unit",
                "unit",
                "--time",
                "year",
                "--outcome",
                "y",
                "--treatment",
                "x",
                "--mediator",
                "m",
                "--controls",
                "c1",
                "--scheme",
                "wild",
                "-B",
                "499",
                "--backend",
                backend,
                "--no-plots",
                "-q",
                "--out",
                backend,
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let summary: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(backend).join("summary.json")).unwrap(),
        )
        .unwrap();
        (summary, stderr)
    };
    let (gpu, _) = run("gpu");
    let (cpu, _) = run("cpu");
    assert_eq!(gpu["resampling"]["backend"], "gpu");
    for key in ["a", "b", "c", "c_prime"] {
        let boot = |s: &serde_json::Value, field: &str| {
            s["effects"][key]["bootstrap"][field].as_f64().unwrap()
        };
        assert_eq!(boot(&gpu, "p_value"), boot(&cpu, "p_value"), "{key}");
        let (g, c) = (boot(&gpu, "sd"), boot(&cpu, "sd"));
        assert!(c > 0.0 && (g - c).abs() <= 1e-4 * c, "{key}: SE {g} vs {c}");
    }
}
