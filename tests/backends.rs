//! `--backend gpu` against `--backend cpu`, end to end through the CLI: the
//! intervals of every method agree (1e-4 bootstrap SDs in f32, 1e-9 relative
//! in f64), the summary says where the replicates ran, the GPU batch size
//! does not change a bit, options that cannot work are refused, and a
//! device that fails part way (MEDSIM_GPU_FAULT) leaves the answer intact.

#![cfg(feature = "gpu")]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// A run of the binary; the pooled model alone (no default groups or
/// mediator sets, which software GPUs make slow) unless `args` asks for them.
fn medsim(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> (Output, Option<Value>) {
    let out_dir = dir.join(name);
    let mut extra = Vec::new();
    for option in ["--group", "--also-mediators"] {
        if !args.contains(&option) {
            extra.extend([option, ""]);
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_medsim"))
        .args(["run", "-q", "--mc-draws", "2000", "--out"])
        .arg(&out_dir)
        .args(args)
        .args(extra)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let summary = std::fs::read_to_string(out_dir.join("summary.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    (out, summary)
}

/// A successful run's summary.
fn run(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let (out, summary) = medsim(dir, name, args, env);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    summary.expect("summary.json written")
}

/// `base` on the CPU engine, then on the GPU in f32 and (where the adapter
/// has it) f64: the CPU summary and (precision, GPU summary) pairs.
fn cpu_and_gpu_runs(
    dir: &Path,
    ctx: &medsim::internals::gpu::GpuContext,
    base: &[&str],
) -> (Value, Vec<(&'static str, Value)>) {
    let cpu = run(dir, "cpu", &[base, &["--backend", "cpu"]].concat(), &[]);
    assert_eq!(cpu["resampling"]["backend"], "cpu");
    let mut precisions = vec!["f32"];
    if ctx.has_f64() {
        precisions.push("f64");
    }
    let gpus = precisions
        .into_iter()
        .map(|precision| {
            let args = [base, &["--backend", "gpu", "--precision", precision]].concat();
            (precision, run(dir, "gpu", &args, &[]))
        })
        .collect();
    (cpu, gpus)
}

/// The stderr of a run that must have succeeded.
fn succeeded(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// The summary less the two wall-clock fields of `resampling`.
fn without_timings(mut v: Value) -> Value {
    let r = v["resampling"].as_object_mut().unwrap();
    r.remove("seconds");
    r.remove("replicates_per_second");
    v
}

/// A refused run: exit code 2, nothing written, and the message on stderr.
fn refused(dir: &Path, name: &str, args: &[&str]) -> String {
    let (out, summary) = medsim(dir, name, args, &[]);
    assert_eq!(out.status.code(), Some(2), "{args:?} should be refused");
    assert!(summary.is_none(), "{args:?} wrote a summary");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every interval of `got` within `tol(effect)` of the same one in `want`.
fn intervals_agree(got: &Value, want: &Value, tol: &dyn Fn(&str, f64) -> f64, label: &str) {
    let (g, w) = (
        got["intervals"].as_array().unwrap(),
        want["intervals"].as_array().unwrap(),
    );
    assert_eq!(g.len(), w.len(), "{label}: interval lists differ");
    for (a, b) in g.iter().zip(w) {
        assert_eq!(
            (&a["effect"], &a["method"], &a["level"]),
            (&b["effect"], &b["method"], &b["level"])
        );
        let effect = a["effect"].as_str().unwrap();
        for end in ["lower", "upper"] {
            let (x, y) = (a[end].as_f64().unwrap(), b[end].as_f64().unwrap());
            let bound = tol(effect, y);
            assert!(
                (x - y).abs() <= bound,
                "{label}: {effect} {} {end}: {x} vs {y} (bound {bound:.2e})",
                a["method"]
            );
        }
    }
}

/// A GPU run's intervals (`precision`) agree with the CPU run's, for the
/// pooled model, each group's and each other mediator set's: within 1e-4
/// of the bootstrap SD in f32, 1e-9 relative in f64.
fn every_model_agrees(cpu: &Value, gpu: &Value, precision: &str, label: &str) {
    assert_eq!(gpu["resampling"]["backend"], "gpu");
    let mut models = vec![("pooled".to_string(), cpu, gpu)];
    for key in ["groups", "mediator_models"] {
        let Some(sub) = cpu[key].as_object() else {
            continue;
        };
        for (name, m) in sub {
            models.push((name.clone(), m, &gpu[key][name]));
        }
    }
    for (name, want, got) in models {
        let sd = |effect: &str| want["effects"][effect]["bootstrap"]["sd"].as_f64().unwrap();
        let tol = |effect: &str, value: f64| match precision {
            "f32" => 1e-4 * sd(effect) + 1e-15 * value.abs(),
            _ => 1e-9 * value.abs(),
        };
        intervals_agree(got, want, &tol, &format!("{label} {precision} {name}"));
    }
}

const METHODS: &str = "percentile,basic,normal,bc,bca";

#[test]
fn gpu_and_cpu_intervals_agree_for_every_method_and_scheme() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for scheme in [
        &["--scheme", "pairs"][..],
        &["--scheme", "poisson", "--mediator", "agglom_sec,agglom_ter"],
        &["--scheme", "bayes", "--strata", "region"],
        &["--scheme", "wild", "--weights", "normal", "--no-wild-tests"],
        &["--scheme", "jackknife"],
        &["--scheme", "wild", "--weights", "webb", "--no-wild-tests"],
    ] {
        let base = [
            scheme,
            &["-B", "3001", "--ci", METHODS, "--level", "0.9,0.95"],
        ]
        .concat();
        let (cpu, gpus) = cpu_and_gpu_runs(dir.path(), ctx, &base);
        assert!(cpu["resampling"].get("adapter").is_none());
        for (precision, gpu) in gpus {
            let r = &gpu["resampling"];
            assert_eq!(r["backend"], "gpu");
            assert_eq!(r["adapter"], ctx.info.name.as_str());
            assert_eq!(r["precision"], precision);
            assert!(r.get("fallback").is_none());
            assert_eq!(
                r["failed_replicates"],
                cpu["resampling"]["failed_replicates"]
            );
            let sd = |effect: &str| cpu["effects"][effect]["bootstrap"]["sd"].as_f64().unwrap();
            let tol = |effect: &str, value: f64| match precision {
                // Sobel and Monte Carlo intervals do not involve the engine.
                "f32" => 1e-4 * sd(effect) + 1e-15 * value.abs(),
                _ => 1e-9 * value.abs(),
            };
            let label = format!("{scheme:?} {precision}");
            intervals_agree(&gpu, &cpu, &tol, &label);
            for (effect, e) in cpu["effects"].as_object().unwrap() {
                let (b, c) = (&gpu["effects"][effect]["bootstrap"], &e["bootstrap"]);
                let tol = tol(effect, c["mean"].as_f64().unwrap());
                assert!((b["mean"].as_f64().unwrap() - c["mean"].as_f64().unwrap()).abs() <= tol);
                let rel = (b["sd"].as_f64().unwrap() / c["sd"].as_f64().unwrap() - 1.0).abs();
                assert!(rel < 1e-4, "{label} {effect}: sd differs by {rel:e}");
            }
        }
    }
}

#[test]
fn the_gpu_batch_size_does_not_change_the_summary() {
    if common::gpu_context().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let strip = without_timings;
    let args = ["--backend", "gpu", "-B", "2001", "--ci", METHODS];
    let reference = strip(run(dir.path(), "ref", &args, &[]));
    for batch in ["64", "1000"] {
        let got = strip(run(
            dir.path(),
            batch,
            &[&args[..], &["--gpu-batch", batch]].concat(),
            &[],
        ));
        assert_eq!(got, reference, "differs with --gpu-batch {batch}");
    }
}

#[test]
fn options_the_gpu_cannot_honour_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = refused(d, "a", &["--backend", "banana"]);
    assert!(
        e.contains("--backend") && e.contains("expected auto, gpu or cpu"),
        "{e}"
    );
    let e = refused(d, "b", &["--precision", "f16", "--backend", "gpu"]);
    assert!(e.contains("expected f32 or f64"), "{e}");
    let e = refused(d, "c", &["--backend", "cpu", "--precision", "f32"]);
    assert!(e.contains("CPU engine always computes in f64"), "{e}");
    let e = refused(
        d,
        "e",
        &[
            "--backend",
            "gpu",
            "--scheme",
            "wild",
            "--ci",
            "studentized",
        ],
    );
    assert!(
        e.contains("studentized") && e.contains("not yet for wild"),
        "{e}"
    );
    if common::gpu_context().is_some() {
        let e = refused(d, "g", &["--adapter", "no-such-adapter-anywhere"]);
        assert!(
            e.contains("no adapter's name contains 'no-such-adapter-anywhere'"),
            "{e}"
        );
    }
}

/// Permutation p-values from the GPU equal the CPU's: the same in f64, and
/// within two replicates' worth in f32.
#[test]
fn gpu_and_cpu_permutation_p_values_agree() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let b = 2000.0;
    let base = ["--scheme", "permutation", "-B", "2000"];
    let (cpu, gpus) = cpu_and_gpu_runs(dir.path(), ctx, &base);
    for (precision, gpu) in gpus {
        assert_eq!(gpu["resampling"]["backend"], "gpu");
        for effect in ["a", "c", "c_prime", "indirect"] {
            let (g, c) = (
                &gpu["effects"][effect]["bootstrap"],
                &cpu["effects"][effect]["bootstrap"],
            );
            let (pg, pc) = (
                g["p_value"].as_f64().unwrap(),
                c["p_value"].as_f64().unwrap(),
            );
            match precision {
                "f64" => assert_eq!(pg, pc, "{effect}"),
                _ => assert!((pg - pc).abs() <= 2.0 / b, "{effect}: {pg} vs {pc}"),
            }
            let rel = (g["sd"].as_f64().unwrap() / c["sd"].as_f64().unwrap() - 1.0).abs();
            assert!(rel < 1e-4, "{precision} {effect}: sd differs by {rel:e}");
        }
    }
}

/// `auto` takes a hardware GPU, never a software one such as lavapipe.
#[test]
fn auto_uses_the_cpu_engine_on_a_software_adapter() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    if medsim::internals::gpu::is_hardware(&ctx.info) {
        eprintln!("SKIPPED: {} is a hardware adapter", ctx.info.name);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = run(dir.path(), "auto", &["-B", "500"], &[]);
    assert_eq!(s["resampling"]["backend"], "cpu");
    // Naming the adapter asks for it, software or not.
    let name = ctx.info.name.clone();
    let s = run(dir.path(), "named", &["-B", "500", "--adapter", &name], &[]);
    assert_eq!(s["resampling"]["backend"], "gpu");
}

/// A batch the device rejects is retried with half the replicates; the
/// answer is the same to the bit as a run that never failed.
#[test]
fn rejected_batches_are_retried_smaller_with_the_same_answer() {
    if common::gpu_context().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = ["--backend", "gpu", "-B", "1500", "--ci", METHODS];
    let (out, faulty) = medsim(
        dir.path(),
        "faulty",
        &[&args[..], &["--gpu-batch", "400"]].concat(),
        &[("MEDSIM_GPU_FAULT", "fail-above:100")],
    );
    let stderr = succeeded(&out);
    assert!(
        stderr.contains("retrying with 200 replicates per batch"),
        "{stderr}"
    );
    assert!(
        stderr.contains("retrying with 100 replicates per batch"),
        "{stderr}"
    );
    let clean = run(
        dir.path(),
        "clean",
        &[&args[..], &["--gpu-batch", "100"]].concat(),
        &[],
    );
    let faulty = faulty.unwrap();
    assert!(faulty["resampling"].get("fallback").is_none());
    assert_eq!(without_timings(faulty), without_timings(clean));
}

/// The device is destroyed after two batches: the CPU engine finishes the
/// run, the summary says so, and (in f64) the answer equals the CPU run's.
#[test]
fn a_lost_device_falls_back_to_the_cpu_engine_with_the_same_answer() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let precision = if ctx.has_f64() { "f64" } else { "f32" };
    let dir = tempfile::tempdir().unwrap();
    let args = ["-B", "3001", "--ci", METHODS];
    let (out, lost) = medsim(
        dir.path(),
        "lost",
        &[
            &args[..],
            &[
                "--backend",
                "gpu",
                "--gpu-batch",
                "256",
                "--precision",
                precision,
            ],
        ]
        .concat(),
        &[("MEDSIM_GPU_FAULT", "lose-device-after:2")],
    );
    let stderr = succeeded(&out);
    assert!(
        stderr.contains("the CPU engine computed the rest"),
        "no fallback warning: {stderr}"
    );
    let lost = lost.unwrap();
    let note = lost["resampling"]["fallback"]
        .as_str()
        .expect("fallback noted");
    assert!(note.contains("from replicate 512"), "{note}");
    assert_eq!(lost["resampling"]["backend"], "gpu");
    let cpu = run(
        dir.path(),
        "cpu",
        &[&args[..], &["--backend", "cpu"]].concat(),
        &[],
    );
    let sd = |effect: &str| cpu["effects"][effect]["bootstrap"]["sd"].as_f64().unwrap();
    let tol = |effect: &str, value: f64| match precision {
        "f64" => 1e-9 * value.abs(),
        _ => 1e-4 * sd(effect) + 1e-15 * value.abs(),
    };
    intervals_agree(&lost, &cpu, &tol, "after a lost device");

    // With groups, their contrasts and a mediator set, engines built on the
    // context before another one lost it finish on the CPU too (the second
    // side of a contrast used to allocate on the destroyed device).
    let args = [
        "-B",
        "1001",
        "--ci",
        "percentile",
        "--group",
        "region",
        "--also-mediators",
        "agglom_sec,agglom_ter",
    ];
    let (out, lost) = medsim(
        dir.path(),
        "lost-groups",
        &[&args[..], &["--backend", "gpu", "--precision", precision]].concat(),
        &[("MEDSIM_GPU_FAULT", "lose-device-after:1")],
    );
    succeeded(&out);
    let lost = lost.unwrap();
    let cpu = run(
        dir.path(),
        "cpu-groups",
        &[&args[..], &["--backend", "cpu"]].concat(),
        &[],
    );
    let mut models = vec![("pooled".to_string(), &cpu, &lost)];
    for key in ["groups", "mediator_models"] {
        for (label, m) in cpu[key].as_object().unwrap() {
            models.push((label.clone(), m, &lost[key][label]));
        }
    }
    for (label, want, got) in models {
        let sd = |effect: &str| want["effects"][effect]["bootstrap"]["sd"].as_f64().unwrap();
        let tol = |effect: &str, value: f64| match precision {
            "f64" => 1e-9 * value.abs(),
            _ => 1e-4 * sd(effect) + 1e-15 * value.abs(),
        };
        intervals_agree(got, want, &tol, &format!("{label} after a lost device"));
    }
    assert_eq!(
        lost["contrasts"].as_array().unwrap().len(),
        cpu["contrasts"].as_array().unwrap().len()
    );
}

/// On the GPU too, the streamed quantiles (two passes over the replicates,
/// beyond --memory) equal the in-memory ones to the bit.
#[test]
fn gpu_streamed_quantiles_equal_the_in_memory_ones() {
    if common::gpu_context().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 40,001 replicates x 7 tracked statistics x 8 bytes > 1 MiB: streamed.
    let args = [
        "--backend",
        "gpu",
        "--scheme",
        "wild",
        "--no-wild-tests",
        "-B",
        "40001",
        "--ci",
        METHODS,
    ];
    let in_memory = run(dir.path(), "memory", &args, &[]);
    let streamed = run(
        dir.path(),
        "streamed",
        &[&args[..], &["--memory", "1"]].concat(),
        &[],
    );
    assert_eq!(without_timings(streamed), without_timings(in_memory));
}

/// Group models (`--group`) on the GPU: each group's statistics spread over
/// the run's clusters, reweighted by the run's weight rows; every interval
/// of every group and of every between-group contrast agrees with the CPU
/// engine's cluster map (1e-4 of the bootstrap SD in f32, 1e-9 relative in
/// f64), studentized too, and for a moderated model; the label test (on the GPU too) gives the same
/// p-values (f32: within three replicates' worth).
#[test]
fn gpu_and_cpu_group_models_agree() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for scheme in [
        &["--scheme", "pairs", "--ci", "percentile,bca,studentized"][..],
        &[
            "--scheme",
            "bayes",
            "--strata",
            "region",
            "--ci",
            "percentile,bca",
        ],
        &[
            "--scheme",
            "wild",
            "--no-wild-tests",
            "--ci",
            "percentile,bca",
        ],
        // A moderated model (PROCESS 58): each equation a system of its
        // own on the GPU.
        &[
            "--scheme",
            "pairs",
            "--moderator",
            "ln_pop_density",
            "--moderated",
            "a,b",
            "--controls",
            "ln_gdp,industry,fdi,urban,gov",
            "--ci",
            "percentile,bca",
        ],
    ] {
        let base = [
            scheme,
            &[
                "-B",
                "1001",
                "--group",
                "region,size",
                "--also-mediators",
                "",
            ],
        ]
        .concat();
        let (cpu, gpus) = cpu_and_gpu_runs(dir.path(), ctx, &base);
        for (precision, gpu) in gpus {
            assert_eq!(gpu["resampling"]["backend"], "gpu");
            for (label, group) in cpu["groups"].as_object().unwrap() {
                let sd = |effect: &str| {
                    group["effects"][effect]["bootstrap"]["sd"]
                        .as_f64()
                        .unwrap()
                };
                // f64: 1e-9 of the value plus 1e-9 of the spread, as for
                // the contrasts below: a bound can sit near zero (the
                // moderated model's suppression share's BCa lower bound is
                // 8e-6 against an SD of about 5e-3), where 1e-9 of the value alone
                // is below rounding.
                let tol = |effect: &str, value: f64| match precision {
                    "f32" => 1e-4 * sd(effect) + 1e-15 * value.abs(),
                    _ => 1e-9 * (value.abs() + sd(effect)),
                };
                let what = format!("{scheme:?} {precision} {label}");
                intervals_agree(&gpu["groups"][label], group, &tol, &what);
            }
            let (got, want) = (
                gpu["contrasts"].as_array().unwrap(),
                cpu["contrasts"].as_array().unwrap(),
            );
            assert_eq!(got.len(), want.len());
            for (g, c) in got.iter().zip(want) {
                assert_eq!((&g["effect"], &g["between"]), (&c["effect"], &c["between"]));
                // The label test runs on the GPU too: f64 gives the CPU's
                // p-values, f32 within three of the 1001 replicates (a |d*|
                // within rounding of |d| may count differently).
                match (
                    g["permutation_p_value"].as_f64(),
                    c["permutation_p_value"].as_f64(),
                ) {
                    (Some(gp), Some(cp)) => {
                        let slack = if precision == "f32" {
                            3.0 / 1002.0
                        } else {
                            0.0
                        };
                        assert!(
                            (gp - cp).abs() <= slack + 1e-15,
                            "{scheme:?} {precision} {} {}: permutation p {gp} vs {cp}",
                            c["effect"],
                            c["between"]
                        );
                    }
                    (gp, cp) => assert_eq!(gp, cp),
                }
                // A difference of effects can sit at zero, where a bound
                // relative to the value alone is below rounding: f64 gets
                // 1e-9 of the value plus 1e-9 of the spread.
                let sd = c["bootstrap"]["sd"].as_f64().unwrap();
                let tol = |_: &str, value: f64| match precision {
                    "f32" => 1e-4 * sd + 1e-15 * value.abs(),
                    _ => 1e-9 * (value.abs() + sd),
                };
                let what = format!(
                    "{scheme:?} {precision} contrast {} {}",
                    c["effect"], c["between"]
                );
                intervals_agree(g, c, &tol, &what);
            }
        }
    }
}

/// Instrumented models (`--instrument`, `--mediator-instrument`, both) on
/// the GPU (solve_iv.wgsl): every interval of the pooled model, the groups,
/// the other mediator set and the contrasts agrees with the CPU engine
/// (1e-4 of the bootstrap SD in f32, 1e-9 relative in f64), studentized
/// too, for pairs and Bayes.
#[test]
fn gpu_and_cpu_instrumented_models_agree() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let treatment = &["--instrument", "iv_post1984"][..];
    let also = &["--also-mediators", "agglom_sec,agglom_ter"][..];
    let mediator = &["--mediator-instrument", "iv_agglom"][..];
    for (scheme, model) in [
        ("pairs", [treatment, also].concat()),
        ("bayes", [treatment, also].concat()),
        ("pairs", [mediator, &["--also-mediators", ""]].concat()),
        (
            "bayes",
            [mediator, treatment, &["--also-mediators", ""]].concat(),
        ),
    ] {
        let scheme = &["--scheme", scheme][..];
        let base = [
            scheme,
            &model,
            &[
                "-B",
                "501",
                "--ci",
                "percentile,bca,studentized",
                "--group",
                "region",
            ],
        ]
        .concat();
        let (cpu, gpus) = cpu_and_gpu_runs(dir.path(), ctx, &base);
        for (precision, gpu) in gpus {
            every_model_agrees(&cpu, &gpu, precision, &format!("{scheme:?}"));
            for (g, c) in gpu["contrasts"]
                .as_array()
                .unwrap()
                .iter()
                .zip(cpu["contrasts"].as_array().unwrap())
            {
                // A difference of effects can sit at zero, where a bound
                // relative to the value alone is below rounding: f64 gets
                // 1e-9 of the value plus 1e-9 of the spread.
                let sd = c["bootstrap"]["sd"].as_f64().unwrap();
                let tol = |_: &str, value: f64| match precision {
                    "f32" => 1e-4 * sd + 1e-15 * value.abs(),
                    _ => 1e-9 * (value.abs() + sd),
                };
                intervals_agree(g, c, &tol, &format!("{scheme:?} {precision} contrast"));
            }
        }
    }
}

/// The robustness values' replicates on the GPU (solve.wgsl's terms, RV
/// formed on the host): each path's bootstrap SD and intervals agree with
/// the CPU engine's, within 1e-4 of the SD in f32 and 1e-9 relative in
/// f64; a chain's link included, beside studentized intervals (the meat's
/// reals come first) and the sensitivity curve's ratio.
#[test]
fn gpu_and_cpu_robustness_values_agree() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (scheme, extra) in [
        ("pairs", &["--ci", "percentile,bca,studentized"][..]),
        (
            "bayes",
            &["--serial", "agglom_sec,agglom_ter", "--also-mediators", ""][..],
        ),
    ] {
        let base = [
            &[
                "--scheme",
                scheme,
                "-B",
                "301",
                "--rv-replicates",
                "--group",
                "",
            ][..],
            extra,
        ]
        .concat();
        let (cpu, gpus) = cpu_and_gpu_runs(dir.path(), ctx, &base);
        for (precision, gpu) in gpus {
            every_model_agrees(&cpu, &gpu, precision, scheme);
            let paths = |s: &Value| s["confounding"]["paths"].as_array().unwrap().clone();
            let (want, got) = (paths(&cpu), paths(&gpu));
            assert!(!want.is_empty());
            for (w, g) in want.iter().zip(&got) {
                let sd = w["rv_bootstrap"]["sd"].as_f64().unwrap();
                let tol = |_: &str, value: f64| match precision {
                    "f32" => 1e-4 * sd + 1e-15 * value.abs(),
                    _ => 1e-9 * value.abs(),
                };
                let label = format!("{scheme} {precision} rv:{}", w["path"]);
                let gsd = g["rv_bootstrap"]["sd"].as_f64().unwrap();
                assert!(
                    (gsd - sd).abs() <= tol("", sd).max(1e-9 * sd),
                    "{label}: sd {gsd} vs {sd}"
                );
                let wrap = |p: &Value| serde_json::json!({"intervals": p["rv_intervals"]});
                intervals_agree(&wrap(g), &wrap(w), &tol, &label);
            }
        }
    }
}

/// City + province^year effects on the GPU (the cell stages between the
/// GEMM and the solve): every interval of the pooled model and of each
/// region's (whose engines draw the run's weights over their own
/// clusters) agrees with the CPU engine's, within 1e-4 of the bootstrap
/// SD in f32 and 1e-9 relative in f64; with the jackknife (codes kept for
/// the cell sums), wild (no cell stage: the full sample's influences),
/// and an instrumented mediator (the two-stage solve after the cells).
#[test]
fn gpu_and_cpu_province_by_year_models_agree() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cells = &["--fixed-effects", "city+province^year"][..];
    for (scheme, extra) in [
        ("pairs", &["--group", "region"][..]),
        ("bayes", &[][..]),
        ("jackknife", &[][..]),
        ("wild", &[][..]),
        (
            "pairs",
            &["--mediator-instrument", "iv_agglom", "--also-mediators", ""][..],
        ),
    ] {
        let ci = match scheme {
            "jackknife" => "normal",
            _ => "percentile,bca",
        };
        let base = [cells, &["--scheme", scheme, "-B", "301", "--ci", ci], extra].concat();
        let (cpu, gpus) = cpu_and_gpu_runs(dir.path(), ctx, &base);
        assert_eq!(cpu["model"]["fixed_effects"], "unit+province^time");
        for (precision, gpu) in gpus {
            every_model_agrees(&cpu, &gpu, precision, scheme);
        }
    }
}

/// The sensitivity analysis on the GPU (configs/sensitivity.toml: the
/// pooled model and each region): the band at every rho agrees with the
/// CPU engine's, within 1e-4 of its bootstrap SD in f32 and 1e-9 relative
/// in f64.
#[test]
fn gpu_and_cpu_sensitivity_bands_agree() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/sensitivity.toml");
    let (cpu, gpus) =
        cpu_and_gpu_runs(dir.path(), ctx, &[config, "-B", "501", "--group", "region"]);
    let models = |s: &Value| -> Vec<Value> {
        std::iter::once(s["sensitivity"].clone())
            .chain(
                s["groups"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|g| g["sensitivity"].clone()),
            )
            .collect()
    };
    for (precision, gpu) in gpus {
        assert_eq!(gpu["resampling"]["backend"], "gpu");
        let (want, got) = (models(&cpu), models(&gpu));
        assert_eq!(want.len(), 4);
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(w["rho_at_zero"], g["rho_at_zero"]);
            for (pw, pg) in w["curve"]
                .as_array()
                .unwrap()
                .iter()
                .zip(g["curve"].as_array().unwrap())
            {
                let sd = pw["bootstrap"]["sd"].as_f64().unwrap();
                let (iw, ig) = (
                    pw["intervals"].as_array().unwrap(),
                    pg["intervals"].as_array().unwrap(),
                );
                assert_eq!(iw.len(), 2);
                assert_eq!(iw.len(), ig.len());
                for (a, b) in iw.iter().zip(ig) {
                    for bound in ["lower", "upper"] {
                        let (x, y) = (a[bound].as_f64().unwrap(), b[bound].as_f64().unwrap());
                        let tol = match precision {
                            "f32" => 1e-4 * sd,
                            _ => 1e-9 * x.abs().max(sd),
                        };
                        assert!(
                            (x - y).abs() <= tol,
                            "{precision} rho {} {} {bound}: {x} vs {y}",
                            pw["rho"],
                            a["method"]
                        );
                    }
                }
            }
        }
    }
}
