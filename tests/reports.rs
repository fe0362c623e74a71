//! What a run folder holds for people and for provenance: manifest.json
//! and its replay (`medsim run --manifest`), byte for byte.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::medsim;

use medsim::internals::data::synthetic::{SyntheticParams, generate};
use medsim::internals::data::table::write_csv;

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A run on a CSV with flags over a config file writes manifest.json (the
/// version and revision, the command, the resolved config with the CSV's
/// absolute path, seed, engine, threads, stage timings, the input's and
/// outputs' SHA-256); `medsim run --manifest` from another working folder
/// reproduces summary.json byte for byte; an edited input is refused
/// (exit 2, nothing written).
#[test]
fn manifest_replay_reproduces_the_summary_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let table = generate(SyntheticParams {
        cities: 60,
        years: 6,
        seed: 4,
        ..SyntheticParams::default()
    });
    std::fs::create_dir(dir.path().join("data")).unwrap();
    write_csv(&table, &dir.path().join("data/panel.csv")).unwrap();
    std::fs::write(
        dir.path().join("study.toml"),
        "name = \"study\"\n[data]\ncsv = \"data/panel.csv\"\n[resampling]\nscheme = \"bayes\"\nreplicates = 999\nseed = 7\n",
    )
    .unwrap();
    let first = medsim(
        dir.path(),
        &[
            "run",
            "study.toml",
            "--ci",
            "percentile,bca",
            "--mc-draws",
            "2000",
            "--group",
            "region",
            "--out",
            "first",
            "-q",
        ],
    );
    ok(&first);
    let folder = dir.path().join("first");
    let manifest = json(&folder.join("manifest.json"));
    assert_eq!(manifest["medsim"], env!("CARGO_PKG_VERSION"));
    assert!(!manifest["git_revision"].as_str().unwrap().is_empty());
    assert_eq!(manifest["command"][1], "run");
    assert_eq!(manifest["seed"], 7);
    assert_eq!(manifest["engine"]["backend"], "cpu");
    assert!(manifest["threads"].as_u64().unwrap() >= 1);
    assert_eq!(manifest["config"]["resampling"]["scheme"], "bayes");
    assert_eq!(manifest["config"]["model"]["groups"][0], "region");
    let csv = dir.path().join("data/panel.csv").canonicalize().unwrap();
    assert_eq!(
        Path::new(manifest["config"]["data"]["csv"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        csv
    );
    let input = &manifest["inputs"][0];
    let bytes = std::fs::read(&csv).unwrap();
    assert_eq!(input["bytes"], bytes.len() as u64);
    assert_eq!(
        input["sha256"],
        medsim::internals::provenance::sha256_hex(&bytes)
    );
    let timings = manifest["timings"].as_object().unwrap();
    let mut stages: Vec<&str> = timings.keys().map(String::as_str).collect();
    stages.sort();
    assert_eq!(
        stages,
        ["data", "design", "fit", "groups", "resampling", "total"]
    );
    let total = timings["total"].as_f64().unwrap();
    let sum: f64 = timings
        .iter()
        .filter(|(k, _)| *k != "total")
        .map(|(_, v)| v.as_f64().unwrap())
        .sum();
    assert!((total - sum).abs() < 1e-9 && total > 0.0, "{timings:?}");
    let summary = std::fs::read(folder.join("summary.json")).unwrap();
    let outputs = manifest["outputs"].as_array().unwrap();
    let listed = outputs
        .iter()
        .find(|o| o["path"] == "summary.json")
        .unwrap();
    assert_eq!(
        listed["sha256"],
        medsim::internals::provenance::sha256_hex(&summary)
    );

    // The replay, from another working folder, into another run folder.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let manifest_path = folder.join("manifest.json");
    let replay = medsim(
        &elsewhere,
        &[
            "run",
            "--manifest",
            manifest_path.to_str().unwrap(),
            "--out",
            "replayed",
            "-q",
        ],
    );
    ok(&replay);
    let again = std::fs::read(elsewhere.join("replayed/summary.json")).unwrap();
    assert!(again == summary, "the replay's summary.json differs");

    // An edited input is refused, naming the file; nothing is written.
    let mut t = table.clone();
    t.rows[3][4] = "0.123".into();
    write_csv(&t, &csv).unwrap();
    let refused = medsim(
        &elsewhere,
        &[
            "run",
            "--manifest",
            manifest_path.to_str().unwrap(),
            "--out",
            "refused",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("panel.csv changed since the manifest"),
        "{err}"
    );
    assert!(!elsewhere.join("refused").exists());
}

/// A manifest and a config file together are refused by the parser.
#[test]
fn manifest_and_config_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let out = medsim(
        dir.path(),
        &["run", "a.toml", "--manifest", "manifest.json"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

/// Every sweep point's folder has its manifest, and replaying it with
/// `medsim run --manifest` gives that point's summary.json byte for byte.
#[test]
fn a_sweep_points_manifest_replays_the_point() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sweep.toml"),
        "name = \"s\"\n[data.synthetic]\ncities = 40\nyears = 5\n[model]\ngroups = []\nalso_mediators = []\n\
         [resampling]\nreplicates = 299\n[inference]\nmc_draws = 1000\n[sweep]\n\"data.synthetic.b\" = [0.01, 0.05]\n",
    )
    .unwrap();
    ok(&medsim(
        dir.path(),
        &["sweep", "sweep.toml", "--out", "sw", "-q"],
    ));
    let point = dir.path().join("sw/points/002");
    let manifest = json(&point.join("manifest.json"));
    assert_eq!(manifest["config"]["data"]["synthetic"]["b"], 0.05);
    assert_eq!(manifest["command"][1], "sweep");
    let replay = medsim(
        dir.path(),
        &[
            "run",
            "--manifest",
            "sw/points/002/manifest.json",
            "--out",
            "again",
            "-q",
        ],
    );
    ok(&replay);
    let want = std::fs::read(point.join("summary.json")).unwrap();
    let got = std::fs::read(dir.path().join("again/summary.json")).unwrap();
    assert!(got == want, "the replayed point's summary.json differs");
}

/// A number in `sig4` form matches `want` to its printed digits.
fn close_to_printed(printed: &str, want: f64) -> bool {
    let got: f64 = printed.trim().parse().unwrap_or(f64::NAN);
    let step = 10f64.powi(want.abs().log10().floor() as i32 - 3);
    (got - want).abs() <= 0.5 * step * (1.0 + 1e-9)
}

/// The cells of a tabular row `a & b & c \\`.
fn cells(line: &str) -> Vec<String> {
    line.trim_end()
        .trim_end_matches("\\\\")
        .split('&')
        .map(|c| c.trim().to_string())
        .collect()
}

/// The default run writes tables.tex and summary.md beside summary.json;
/// tables.tex, parsed back, gives every coefficient and SE of the three
/// regressions, the within R-squared, the observations, and every effect
/// with its intervals as summary.json has them (to the printed digits);
/// with a TeX engine at hand it compiles in a minimal document.
#[test]
fn tables_tex_matches_the_summary_and_compiles() {
    let dir = tempfile::tempdir().unwrap();
    ok(&medsim(
        dir.path(),
        &["run", "-B", "999", "--mc-draws", "1000", "--out", "p", "-q"],
    ));
    let folder = dir.path().join("p");
    let summary = json(&folder.join("summary.json"));
    let tex = std::fs::read_to_string(folder.join("tables.tex")).unwrap();
    let md = std::fs::read_to_string(folder.join("summary.md")).unwrap();
    let lines: Vec<&str> = tex.lines().collect();
    let midrules: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i] == "\\midrule")
        .collect();
    // The regression table: coefficient rows, then their SE rows.
    let equations = summary["equations"].as_array().unwrap();
    let mut checked = 0;
    let body = &lines[midrules[0] + 1..midrules[1]];
    for pair in body.chunks(2) {
        let (est, se) = (cells(pair[0]), cells(pair[1]));
        let name = est[0].replace("\\_", "_");
        for (k, eq) in equations.iter().enumerate() {
            let coef = eq["coefficients"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name.as_str());
            match coef {
                None => assert!(est[k + 1].is_empty() && se[k + 1].is_empty(), "{name}"),
                Some(c) => {
                    let e = c["estimate"].as_f64().unwrap();
                    let p = c["p_value"].as_f64().unwrap();
                    let printed = est[k + 1].trim_end_matches('*');
                    let stars = est[k + 1].len() - printed.len();
                    let want_stars = [0.01, 0.05, 0.10].iter().filter(|&&a| p < a).count();
                    assert_eq!(stars, want_stars, "{name} in ({}): p = {p}", k + 1);
                    assert!(close_to_printed(printed, e), "{name}: {printed} vs {e}");
                    let s = c["se"].as_f64().unwrap();
                    let inner = se[k + 1].trim_start_matches('(').trim_end_matches(')');
                    assert!(close_to_printed(inner, s), "{name} SE: {inner} vs {s}");
                    checked += 1;
                }
            }
        }
    }
    let coefficients: usize = equations
        .iter()
        .map(|e| e["coefficients"].as_array().unwrap().len())
        .sum();
    assert_eq!(checked, coefficients);
    let row = |start: &str| -> Vec<String> {
        cells(lines.iter().find(|l| l.starts_with(start)).unwrap())
    };
    let r2 = row("R$^2$ within");
    for (k, eq) in equations.iter().enumerate() {
        let want = eq["r2_within"].as_f64().unwrap();
        assert!((r2[k + 1].parse::<f64>().unwrap() - want).abs() <= 5e-5);
    }
    let n = summary["data"]["observations"].as_u64().unwrap();
    assert_eq!(row("Observations")[1].replace(',', ""), n.to_string());
    // The effects table: rows in summary order, intervals by method.
    let effects = summary["effects"].as_object().unwrap();
    let intervals = summary["intervals"].as_array().unwrap();
    let head = cells(lines[midrules[2] - 1]);
    let methods: Vec<String> = head[4..]
        .iter()
        .map(|h| h.split(' ').next().unwrap().to_lowercase())
        .collect();
    let body = &lines[midrules[2] + 1..];
    let mut intervals_checked = 0;
    for ((key, e), line) in effects.iter().zip(body) {
        let c = cells(line);
        assert!(
            close_to_printed(&c[1], e["estimate"].as_f64().unwrap()),
            "{key}: {} vs {}",
            c[1],
            e["estimate"]
        );
        if let Some(se) = e["se"].as_f64() {
            assert!(close_to_printed(&c[2], se), "{key} SE");
        }
        for (m, cell) in methods.iter().zip(&c[4..]) {
            let method = match m.as_str() {
                "monte" => "monte_carlo",
                other => other,
            };
            let want = intervals
                .iter()
                .find(|i| i["effect"] == key.as_str() && i["method"] == method);
            match want {
                None => assert!(cell.is_empty(), "{key} {method}: {cell}"),
                Some(i) => {
                    let (l, u) = cell
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .split_once(", ")
                        .unwrap();
                    assert!(
                        close_to_printed(l, i["lower"].as_f64().unwrap()),
                        "{key} {method}"
                    );
                    assert!(
                        close_to_printed(u, i["upper"].as_f64().unwrap()),
                        "{key} {method}"
                    );
                    intervals_checked += 1;
                }
            }
        }
    }
    assert_eq!(intervals_checked, intervals.len());
    // summary.md holds the same tables and the verdict.
    assert!(md.contains("| a*b: indirect effect | 0.005504 |"), "{md}");
    assert!(md.contains("**Verdict.** agglom suppresses"));
    assert!(md.contains("## Groups") && md.contains("## Regressions"));
    // Compiles where a TeX engine is installed (not needed in CI).
    let engine = ["pdflatex", "xelatex", "lualatex"].into_iter().find(|e| {
        Command::new(e)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(engine) = engine else {
        eprintln!("no TeX engine: tables.tex parsed back but not compiled");
        return;
    };
    std::fs::write(
        folder.join("doc.tex"),
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{tables.tex}\n\\end{document}\n",
    )
    .unwrap();
    let out = Command::new(engine)
        .args(["-interaction=nonstopmode", "-halt-on-error", "doc.tex"])
        .current_dir(&folder)
        .output()
        .unwrap();
    assert!(
        out.status.success() && folder.join("doc.pdf").exists(),
        "{engine}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Renders `svg` to PNG with rsvg-convert where it is installed (not in
/// CI), as a browser would; false when there is no converter.
fn renders(svg: &Path) -> bool {
    let png = svg.with_extension("png");
    match Command::new("rsvg-convert")
        .arg("-o")
        .arg(&png)
        .arg(svg)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}: {}",
                svg.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(std::fs::metadata(&png).unwrap().len() > 5_000);
            true
        }
        Err(_) => false,
    }
}

/// A well-formed SVG document holding `needles`.
fn svg_with(path: &Path, needles: &[&str]) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    assert_eq!(
        text.matches("<text").count(),
        text.matches("</text>").count()
    );
    for n in needles {
        assert!(text.contains(n), "{}: no '{n}'", path.display());
    }
    renders(path);
    text
}

/// The default run draws the bootstrap distribution (60 bins, estimate and
/// interval in the legend) and the groups' forest plot; `medsim
/// sensitivity` the ACME curve; a sweep each swept key; a study its power
/// curves; `--no-plots` none of them.
#[test]
fn runs_draw_their_plots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&medsim(
        d,
        &[
            "run",
            "-B",
            "2000",
            "--mc-draws",
            "1000",
            "--out",
            "p",
            "-q",
        ],
    ));
    let summary = json(&d.join("p/summary.json"));
    let estimate = summary["effects"]["indirect"]["estimate"].as_f64().unwrap();
    let text = svg_with(
        &d.join("p/indirect_distribution.svg"),
        &[
            "2000 of B = 2000 replicates",
            &format!("estimate {estimate:.4}"),
            "95 % percentile [",
        ],
    );
    // 60 bins, the white background and the legend box.
    assert!(
        text.matches("<rect").count() >= 60,
        "{}",
        text.matches("<rect").count()
    );
    svg_with(
        &d.join("p/forest.svg"),
        &[
            "pooled",
            "region=west",
            "size=large",
            "Suppression share by group",
        ],
    );
    ok(&medsim(
        d,
        &[
            "sensitivity",
            "-B",
            "500",
            "--mc-draws",
            "1000",
            "--out",
            "s",
            "-q",
        ],
    ));
    svg_with(
        &d.join("s/sensitivity.svg"),
        &["ACME(rho)", "ACME = 0 at rho", "95 % percentile band"],
    );
    ok(&medsim(
        d,
        &[
            "run",
            "-B",
            "500",
            "--mc-draws",
            "1000",
            "--out",
            "n",
            "-q",
            "--no-plots",
        ],
    ));
    let svgs = std::fs::read_dir(d.join("n"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count();
    assert_eq!(svgs, 0);
    std::fs::write(
        d.join("sim.toml"),
        "name = \"sim\"\n[simulation]\nn = [40, 80]\na = 0.39\nb = 0.39\ndatasets = 20\nreplicates = 99\n\
         methods = [\"sobel\", \"percentile\"]\nmc_draws = 1000\n",
    )
    .unwrap();
    ok(&medsim(d, &["simulate", "sim.toml", "--out", "sim", "-q"]));
    svg_with(
        &d.join("sim/power.svg"),
        &["sobel", "percentile", "a = 0.39, b = 0.39"],
    );
    std::fs::write(
        d.join("sweep.toml"),
        "name = \"s\"\n[data.synthetic]\ncities = 40\nyears = 5\n[model]\ngroups = []\nalso_mediators = []\n\
         [resampling]\nreplicates = 199\n[inference]\nmc_draws = 1000\n[sweep]\n\"data.synthetic.b\" = [0.01, 0.05]\n",
    )
    .unwrap();
    ok(&medsim(d, &["sweep", "sweep.toml", "--out", "sw", "-q"]));
    svg_with(
        &d.join("sw/sweep_data_synthetic_b.svg"),
        &["Indirect effect along data.synthetic.b"],
    );
    svg_with(
        &d.join("sw/points/001/indirect_distribution.svg"),
        &["pairs"],
    );
}

/// The mean and SD of one column of replicates.
fn moments(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    (mean, sd)
}

/// `--save-replicates` writes the run's own replicates: replicates.csv
/// (B rows, a column per effect of summary.json) whose every column has
/// the bootstrap mean and SD summary.json reports; above a million
/// replicates the binary layout (little-endian f64 rows, the columns in
/// replicates_columns.txt), checked the same way.
#[test]
fn saved_replicates_are_the_runs_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&medsim(
        d,
        &[
            "run",
            "-B",
            "999",
            "--mc-draws",
            "1000",
            "--out",
            "r",
            "-q",
            "--save-replicates",
        ],
    ));
    let summary = json(&d.join("r/summary.json"));
    let csv = std::fs::read_to_string(d.join("r/replicates.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keys: Vec<&String> = summary["effects"].as_object().unwrap().keys().collect();
    assert_eq!(header[0], "replicate");
    assert_eq!(header.len() - 1, keys.len());
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 999);
    let check = |name: &str, column: Vec<f64>| {
        let boot = &summary["effects"][name]["bootstrap"];
        let (mean, sd) = moments(&column);
        let (want_mean, want_sd) = (boot["mean"].as_f64().unwrap(), boot["sd"].as_f64().unwrap());
        assert!(
            (mean - want_mean).abs() <= 1e-9 * want_mean.abs().max(1e-12),
            "{name}: mean {mean} vs {want_mean}"
        );
        assert!(
            (sd - want_sd).abs() <= 1e-9 * want_sd,
            "{name}: sd {sd} vs {want_sd}"
        );
    };
    for (j, name) in header[1..].iter().enumerate() {
        check(name, rows.iter().map(|r| r[j]).collect());
    }
    // Above a million replicates: the binary layout.
    std::fs::write(
        d.join("big.toml"),
        "name = \"big\"\n[data.synthetic]\ncities = 30\nyears = 5\n[model]\ngroups = []\nalso_mediators = []\n\
         [resampling]\nscheme = \"wild\"\nreplicates = 1000001\nwild_tests = false\n[inference]\nmc_draws = 1000\nmethods = [\"percentile\"]\n",
    )
    .unwrap();
    ok(&medsim(
        d,
        &["run", "big.toml", "--out", "big", "-q", "--save-replicates"],
    ));
    let summary = json(&d.join("big/summary.json"));
    let columns = std::fs::read_to_string(d.join("big/replicates_columns.txt")).unwrap();
    let columns: Vec<&str> = columns.lines().collect();
    let bytes = std::fs::read(d.join("big/replicates.bin")).unwrap();
    assert_eq!(bytes.len(), 1_000_001 * columns.len() * 8);
    assert!(!d.join("big/replicates.csv").exists());
    let values: Vec<f64> = bytes
        .chunks(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let j = columns.iter().position(|c| *c == "indirect").unwrap();
    let column: Vec<f64> = values.chunks(columns.len()).map(|r| r[j]).collect();
    let (mean, sd) = moments(&column);
    let boot = &summary["effects"]["indirect"]["bootstrap"];
    assert!((mean - boot["mean"].as_f64().unwrap()).abs() <= 1e-9 * mean.abs());
    assert!((sd - boot["sd"].as_f64().unwrap()).abs() <= 1e-9 * sd);
}

/// A statistic that is not finite in some replicates (a ratio over a zero
/// denominator) is counted per effect, in summary.json and the printed
/// summary, and left out of that effect's moments; a degenerate replicate
/// (every statistic NaN) is counted once as failed, not per effect.
#[test]
fn non_finite_statistics_are_counted_and_reported() {
    use medsim::internals::model::design::Design;
    use medsim::internals::model::mediation::analyse;
    use medsim::internals::model::panel::Panel;
    use medsim::internals::model::spec::InferenceSpec;
    use medsim::internals::model::spec::default_spec;
    use medsim::internals::resample::engine::{CpuEngine, Engine, Precomputed};
    use medsim::internals::resample::scheme::{Scheme, WeightPlan};
    use medsim::internals::resample::spec::ResampleSpec;
    use medsim::internals::study::resampling::resample_with;
    let spec = medsim::internals::model::spec::ModelSpec {
        groups: vec![],
        ..default_spec()
    };
    let table = generate(SyntheticParams {
        cities: 40,
        years: 5,
        ..SyntheticParams::default()
    });
    let panel = Panel::from_table(&table, &spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let inference = InferenceSpec {
        mc_draws: 1000,
        ..InferenceSpec::default()
    };
    let analysis = analyse(&design, &inference).unwrap();
    let b = 200u64;
    let cpu = CpuEngine::new(
        &design,
        &analysis.fit,
        WeightPlan::new(Scheme::Pairs, 3, design.n_clusters, None),
        64,
        1,
        false,
    )
    .unwrap();
    let layout = cpu.layout();
    let n = layout.len();
    let mut stats = vec![0.0; b as usize * n];
    cpu.compute(0, &mut stats).unwrap();
    for r in [3usize, 7] {
        stats[r * n + layout.proportion()] = f64::NAN;
    }
    stats[11 * n..12 * n].iter_mut().for_each(|v| *v = f64::NAN);
    let finite: Vec<f64> = (0..b as usize)
        .filter(|r| ![3, 7, 11].contains(r))
        .map(|r| stats[r * n + layout.proportion()])
        .collect();
    let given = Precomputed::new(
        layout,
        stats,
        medsim::internals::resample::engine::Backend::cpu(),
    );
    let rs = ResampleSpec {
        replicates: b,
        ..ResampleSpec::default()
    };
    let result = resample_with(
        &design,
        &panel,
        &analysis,
        &rs,
        3,
        &[0.95],
        &|_, _| Ok(()),
        None,
        Some(&given),
        0,
    )
    .unwrap();
    assert_eq!(result.summary.failed_replicates, 1);
    let get = |k: &str| result.effects.iter().find(|(key, _)| key == k).unwrap().1;
    assert_eq!(get("proportion_mediated").non_finite, 2);
    assert_eq!(get("indirect").non_finite, 0);
    let mean = finite.iter().sum::<f64>() / finite.len() as f64;
    let got = get("proportion_mediated").mean;
    assert!((got - mean).abs() <= 1e-12 * mean.abs(), "{got} vs {mean}");
    let mut summary = medsim::internals::study::summary::Summary::new(
        "t", &spec, &inference, &panel, &design, &analysis,
    );
    summary.add_resampling(result);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        json["effects"]["proportion_mediated"]["bootstrap"]["non_finite"],
        2
    );
    assert!(
        json["effects"]["indirect"]["bootstrap"]
            .get("non_finite")
            .is_none()
    );
    let printed = medsim::internals::output::report::render(&summary);
    assert!(
        printed.contains("note   2 replicate(s) gave a non-finite proportion mediated"),
        "{printed}"
    );
}
