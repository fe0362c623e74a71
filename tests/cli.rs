//! The real binary in temporary folders: the default run, generate then run,
//! and one test per kind of bad input (exit code 2, a message naming the
//! place, nothing written).

use std::path::{Path, PathBuf};

mod common;

use common::medsim;

use medsim::internals::data::synthetic::{SyntheticParams, generate};
use medsim::internals::data::table::{Table, write_csv};
use medsim::internals::study::summary::Summary;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read_summary(path: &Path) -> Summary {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A small synthetic panel (12 cities x 5 years) written to `dir/name`.
fn small_panel(dir: &Path, name: &str, edit: impl FnOnce(&mut Table)) -> PathBuf {
    let mut t = generate(SyntheticParams {
        cities: 12,
        years: 5,
        ..SyntheticParams::default()
    });
    edit(&mut t);
    let path = dir.join(name);
    write_csv(&t, &path).unwrap();
    path
}

fn col(t: &Table, name: &str) -> usize {
    t.column(name).unwrap()
}

#[test]
fn default_run_prints_the_table_and_writes_results_paper() {
    let dir = tempfile::tempdir().unwrap();
    let out = medsim(dir.path(), &["run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for needle in [
        "a    dei -> agglom",
        "c'   direct effect",
        "monte_carlo",
        "sobel",
        "suppresses",
        "CR1 clustered by city",
        "region=west",
        "size=small-medium",
        "region=east - region=west",
        "suppression share, difference",
        "mediators agglom_sec + agglom_ter in parallel",
        "agglom_sec - agglom_ter",
    ] {
        assert!(stdout.contains(needle), "missing '{needle}' in:\n{stdout}");
    }
    let s = read_summary(&dir.path().join("results/paper/summary.json"));
    assert_eq!(s.data.units, 278);
    assert_eq!(s.data.periods, 10);
    assert_eq!(s.data.observations, 2780);
    assert_eq!(s.model.fixed_effects, "unit+time");
    // The study's heterogeneity: a model per region and size class.
    assert_eq!(s.groups.len(), 5);
    assert_eq!(s.contrasts.len(), 4 * s.effects.len());
    for key in [
        "a",
        "b",
        "c",
        "c_prime",
        "indirect",
        "proportion_mediated",
        "suppression_share",
    ] {
        assert!(s.effect(key).is_some(), "effect {key}");
    }
    // Both agglomeration mediators, in parallel, resampled.
    let both = &s.mediator_models["agglom_sec+agglom_ter"];
    for key in [
        "indirect:agglom_sec",
        "indirect:agglom_ter",
        "contrast:agglom_sec:agglom_ter",
    ] {
        assert!(both.effects[key].bootstrap.is_some(), "{key}");
        assert!(
            both.intervals
                .iter()
                .any(|i| i.effect == key && i.method == "bca")
        );
    }
    let methods: Vec<&str> = s
        .intervals
        .iter()
        .filter(|i| i.effect == "indirect")
        .map(|i| i.method.as_str())
        .collect();
    assert_eq!(methods, ["sobel", "monte_carlo", "percentile", "bca"]);
    let r = s.resampling.as_ref().expect("the default resamples");
    assert_eq!(
        (r.scheme.as_str(), r.replicates, r.engine.backend.as_str()),
        ("pairs", 10_000, "cpu")
    );
    for (key, e) in &s.effects {
        assert!(e.bootstrap.is_some(), "effect {key} has no bootstrap block");
        for method in ["percentile", "bca"] {
            assert!(
                s.intervals
                    .iter()
                    .any(|i| &i.effect == key && i.method == method),
                "no {method} interval for {key}"
            );
        }
    }
}

#[test]
fn generate_then_run_reproduces_the_default_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = medsim(dir.path(), &["generate", "--out", "panel.csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let a = medsim(dir.path(), &["run", "--out", "default"]);
    let b = medsim(
        dir.path(),
        &[
            "run",
            "--data",
            "panel.csv",
            "--controls",
            CONTROLS,
            "--out",
            "file",
        ],
    );
    assert!(
        a.status.success() && b.status.success(),
        "{}",
        text(&b.stderr)
    );
    let sa = read_summary(&dir.path().join("default/summary.json"));
    let sb = read_summary(&dir.path().join("file/summary.json"));
    assert_eq!(sa.effects, sb.effects, "effects differ");
    assert_eq!(sa.intervals, sb.intervals, "intervals differ");
    assert_eq!(sa.equations, sb.equations);
    assert_eq!(sb.name, "panel");
}

#[test]
fn json_flag_prints_the_written_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = medsim(
        dir.path(),
        &["run", "--json", "--mc-draws", "2000", "--out", "o"],
    );
    assert!(out.status.success());
    let printed: Summary = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, read_summary(&dir.path().join("o/summary.json")));
}

#[test]
fn missing_rows_and_singletons_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = small_panel(dir.path(), "gaps.csv", |t| {
        let (y, x) = (col(t, "log_ci"), col(t, "dei"));
        t.rows[3][y] = "NA".into();
        t.rows[7][x] = String::new();
        // City 3 (rows 10..15) keeps one complete row: a singleton.
        for r in 11..15 {
            t.rows[r][y] = ".".into();
        }
    });
    let out = medsim(
        dir.path(),
        &[
            "run",
            "--data",
            path.to_str().unwrap(),
            "--out",
            "o",
            "--mc-draws",
            "2000",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = read_summary(&dir.path().join("o/summary.json"));
    assert_eq!(s.data.dropped_missing, 6);
    assert_eq!(s.data.dropped_singletons, 1);
    assert_eq!(s.data.dropped_rows, 7);
    assert_eq!(s.data.observations, 60 - 7);
    assert_eq!(s.data.units, 11);
    assert!(!s.data.balanced);
}

/// Run on a bad file: exit code 2, every needle in stderr, nothing written.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) {
    let out = medsim(dir, args);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "args {args:?}; stderr: {stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "'{n}' not in: {stderr}");
    }
    assert!(!dir.join("o").exists(), "a refused run wrote results");
    assert!(!dir.join("results").exists(), "a refused run wrote results");
}

/// The synthetic panel's controls (a --data run without a config has none).
const CONTROLS: &str = "ln_gdp,industry,fdi,urban,gov,ln_pop_density";

fn refused_file(edit: impl FnOnce(&mut Table), extra: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = small_panel(dir.path(), "bad.csv", edit);
    let mut args = vec![
        "run",
        "--data",
        path.to_str().unwrap(),
        "--out",
        "o",
        "--controls",
        CONTROLS,
    ];
    args.extend_from_slice(extra);
    refused(dir.path(), &args, needles);
}

#[test]
fn missing_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        dir.path(),
        &["run", "--data", "nope.csv", "--out", "o"],
        &["nope.csv", "cannot open"],
    );
}

#[test]
fn missing_column_is_refused() {
    refused_file(
        |_| {},
        &["--mediator", "agglom_x"],
        &["bad.csv:1", "agglom_x", "mediator", "the header has"],
    );
}

#[test]
fn non_numeric_value_is_refused() {
    refused_file(
        |t| {
            let c = col(t, "fdi");
            t.rows[4][c] = "12,5".into();
        },
        &[],
        &["bad.csv:6", "column 'fdi'", "'12,5' is not a number"],
    );
}

#[test]
fn infinite_value_is_refused() {
    refused_file(
        |t| {
            let c = col(t, "dei");
            t.rows[9][c] = "inf".into();
        },
        &[],
        &["bad.csv:11", "column 'dei'", "infinite"],
    );
}

#[test]
fn duplicate_unit_time_pair_is_refused() {
    refused_file(
        |t| {
            let y = col(t, "year");
            t.rows[1][y] = t.rows[0][y].clone();
        },
        &[],
        &[
            "bad.csv:3",
            "duplicate (unit, time) pair (C001, 2011)",
            "line 2",
        ],
    );
}

#[test]
fn constant_regressor_is_refused() {
    refused_file(
        |t| {
            let c = col(t, "gov");
            t.rows.iter_mut().for_each(|r| r[c] = "3.5".into());
        },
        &[],
        &["bad.csv", "control 'gov' is constant"],
    );
}

#[test]
fn regressor_absorbed_by_unit_effects_is_refused() {
    refused_file(
        |t| {
            let (c, u) = (col(t, "urban"), col(t, "city"));
            for r in t.rows.iter_mut() {
                r[c] = r[u][1..].to_string();
            }
        },
        &[],
        &["bad.csv", "control 'urban' does not vary within units"],
    );
}

#[test]
fn collinear_regressor_is_refused() {
    refused_file(
        |t| {
            let (a, b, c) = (col(t, "industry"), col(t, "fdi"), col(t, "gov"));
            for r in t.rows.iter_mut() {
                let v: f64 = 2.0 * r[a].parse::<f64>().unwrap() - r[b].parse::<f64>().unwrap();
                r[c] = format!("{v}");
            }
        },
        &[],
        &[
            "bad.csv",
            "control 'gov' is perfectly collinear with",
            "control 'industry'",
            "control 'fdi'",
        ],
    );
}

#[test]
fn regressor_collinear_with_period_effects_is_refused() {
    refused_file(
        |t| {
            let (c, y) = (col(t, "ln_gdp"), col(t, "year"));
            for r in t.rows.iter_mut() {
                r[c] = format!("{}.5", &r[y][2..]);
            }
        },
        &[],
        &[
            "bad.csv",
            "control 'ln_gdp' is perfectly collinear with the period fixed effects",
        ],
    );
}

#[test]
fn fewer_than_two_clusters_is_refused() {
    refused_file(
        |t| {
            let c = col(t, "province");
            t.rows.iter_mut().for_each(|r| r[c] = "P01".into());
        },
        &["--cluster", "province"],
        &["bad.csv", "1 cluster(s) of 'province'", "at least two"],
    );
}

#[test]
fn ragged_row_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    edited_csv(dir.path(), "bad.csv", |l| l[5].push_str(",extra"));
    refused(
        dir.path(),
        &["run", "--data", "bad.csv", "--out", "o"],
        &[
            "bad.csv:6",
            &format!(
                "this row has {} fields but the header has {}",
                medsim::internals::data::synthetic::headers().len() + 1,
                medsim::internals::data::synthetic::headers().len()
            ),
        ],
    );
}

#[test]
fn empty_and_header_only_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.csv"), "").unwrap();
    refused(
        dir.path(),
        &["run", "--data", "empty.csv", "--out", "o"],
        &["empty.csv:1", "empty"],
    );
    let header = medsim::internals::data::synthetic::headers().join(",") + "\n";
    std::fs::write(dir.path().join("header.csv"), header).unwrap();
    refused(
        dir.path(),
        &["run", "--data", "header.csv", "--out", "o"],
        &["header.csv", "no data rows"],
    );
}

#[test]
fn bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        dir.path(),
        &["run", "--level", "1.5", "--out", "o"],
        &["--level", "1.5"],
    );
    refused(
        dir.path(),
        &["run", "--fixed-effects", "city", "--out", "o"],
        &["--fixed-effects", "'city'"],
    );
    refused(
        dir.path(),
        &["run", "--seed", "abc", "--out", "o"],
        &["--seed"],
    );
    refused(
        dir.path(),
        &["run", "--mediator", "dei", "--out", "o"],
        &["'dei'", "treatment"],
    );
    std::fs::write(dir.path().join("o"), "a file").unwrap();
    let out = medsim(dir.path(), &["run", "--out", "o"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a folder"));
}

#[test]
fn help_teaches_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["generate", "--help"],
    ] {
        let out = medsim(dir.path(), &args);
        assert!(out.status.success());
        let s = text(&out.stdout);
        assert!(s.contains("Examples:"), "{args:?}: {s}");
    }
}

#[test]
fn devices_lists_adapters_or_says_there_are_none() {
    let dir = tempfile::tempdir().unwrap();
    let out = medsim(dir.path(), &["devices"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    if cfg!(feature = "gpu") {
        assert!(
            s.starts_with("0: ") || s.starts_with("no GPU adapter found"),
            "{s}"
        );
    } else {
        assert!(s.contains("built without the `gpu` feature"), "{s}");
    }
}

/// A CPU-only build asked for the GPU says how to get it, and writes
/// nothing.
#[cfg(not(feature = "gpu"))]
#[test]
fn a_cpu_only_build_asked_for_the_gpu_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = medsim(
        dir.path(),
        &["run", "-B", "100", "--backend", "gpu", "--group", ""],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("without the `gpu` feature"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("results").exists());
}

/// `--instrument`: the printed IV line, the summary's `iv` block and
/// instruments, a 2SLS fit that differs from least squares, groups with
/// their own first stage, and resampling on the CPU.
#[test]
fn instrumented_run_reports_the_first_stage() {
    let dir = tempfile::tempdir().unwrap();
    let out = medsim(
        dir.path(),
        &[
            "run",
            "--instrument",
            "iv_post1984",
            "--group",
            "region",
            "-B",
            "300",
            "--out",
            "iv",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "IV     dei instrumented by iv_post1984 (2SLS in every equation); first-stage F = "
        ),
        "{stdout}"
    );
    let s = read_summary(&dir.path().join("iv/summary.json"));
    let iv = s.iv.as_ref().expect("iv block");
    assert_eq!(iv.instruments, ["iv_post1984"]);
    assert!(
        iv.first_stage_f > 100.0,
        "a strong instrument: {}",
        iv.first_stage_f
    );
    assert_eq!(s.model.instruments, ["iv_post1984"]);
    assert_eq!(s.resampling.as_ref().unwrap().engine.backend, "cpu");
    for (label, g) in &s.groups {
        let giv = g.iv.as_ref().unwrap_or_else(|| panic!("{label}: no iv"));
        assert!(giv.first_stage_f > 10.0, "{label}: F {}", giv.first_stage_f);
    }
    let out = medsim(
        dir.path(),
        &["run", "--group", "", "--scheme", "none", "--out", "ols"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ols = read_summary(&dir.path().join("ols/summary.json"));
    assert!(ols.iv.is_none());
    let (a_iv, a_ols) = (s.effect("a").unwrap(), ols.effect("a").unwrap());
    assert!(
        (a_iv.estimate - a_ols.estimate).abs() > 1e-4,
        "2SLS equals OLS?"
    );
    assert!(a_iv.se.unwrap() > a_ols.se.unwrap(), "2SLS is less precise");
}

#[test]
fn instrument_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        dir.path(),
        &["run", "--instrument", "no_such", "--out", "o"],
        &["no_such", "instrument (model.instrument, --instrument)"],
    );
    refused(
        dir.path(),
        &["run", "--instrument", "dei", "--out", "o"],
        &["'dei'", "treatment"],
    );
    refused(
        dir.path(),
        &[
            "run",
            "--instrument",
            "iv_post1984",
            "--scheme",
            "permutation",
            "--out",
            "o",
        ],
        &["first stage", "--instrument"],
    );
    refused(
        dir.path(),
        &[
            "run",
            "--instrument",
            "iv_post1984",
            "--scheme",
            "wild",
            "--out",
            "o",
        ],
        &["WCR", "--no-wild-tests"],
    );
    // An instrument absorbed by the unit effects, and one collinear with a
    // control.
    refused_file(
        |t| {
            let c = col(t, "iv_post1984");
            let city = col(t, "city");
            for row in &mut t.rows {
                row[c] = row[city][1..].to_string();
            }
        },
        &["--instrument", "iv_post1984"],
        &["instrument 'iv_post1984'", "unit fixed effects"],
    );
    refused_file(
        |t| {
            let (c, g) = (col(t, "iv_post1984"), col(t, "gov"));
            for row in &mut t.rows {
                row[c] = row[g].clone();
            }
        },
        &["--instrument", "iv_post1984"],
        &["instrument 'iv_post1984'", "collinear", "control 'gov'"],
    );
    // The wild score bootstrap runs without the WCR tests.
    let out = medsim(
        dir.path(),
        &[
            "run",
            "--instrument",
            "iv_post1984",
            "--scheme",
            "wild",
            "--no-wild-tests",
            "-B",
            "200",
            "--group",
            "",
            "--out",
            "w",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `--mediator-instrument`: the printed IV line and identification
/// section, the summary's `mediator_iv` block, a b that is two-stage least
/// squares (the treatment's first stage absent), the embedded default's
/// second mediator set left out with a note (one instrument for two
/// mediators), groups with their own first stage; a weak instrument is
/// warned of; the refused combinations name the key.
#[test]
fn instrumented_mediator_run_reports_its_first_stage() {
    let dir = tempfile::tempdir().unwrap();
    let out = medsim(
        dir.path(),
        &[
            "run",
            "--mediator-instrument",
            "iv_agglom",
            "--group",
            "region",
            "-B",
            "300",
            "--out",
            "miv",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for line in [
        "IV     agglom instrumented by iv_agglom (2SLS in the outcome equation); first-stage F = ",
        "  instrumented   agglom by iv_agglom in the outcome equation (b, c'): first-stage F = ",
    ] {
        assert!(stdout.contains(line), "{stdout}");
    }
    assert!(
        stderr.contains("agglom_sec + agglom_ter (model.also_mediators, --also-mediators)"),
        "{stderr}"
    );
    assert!(!stderr.contains("weak"), "{stderr}");
    let s = read_summary(&dir.path().join("miv/summary.json"));
    assert!(s.iv.is_none());
    assert!(s.mediator_models.is_empty());
    let fs = &s.mediator_iv["agglom"];
    assert_eq!(fs.instruments, ["iv_agglom"]);
    assert!(fs.first_stage_f > 100.0, "strong: {}", fs.first_stage_f);
    assert_eq!(s.model.mediator_instruments, ["iv_agglom"]);
    let outcome = s.equations.iter().find(|e| e.name == "outcome").unwrap();
    assert!(outcome.r2_within.is_none(), "the outcome equation is 2SLS");
    for (label, g) in &s.groups {
        let f = g.mediator_iv["agglom"].first_stage_f;
        assert!(f > 10.0, "{label}: F {f}");
    }
    let bounds = s.confounding.as_ref().expect("the a path's bounds");
    let paths: Vec<&str> = bounds.paths.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["a"]);

    // iv_post1984 moves agglomeration only through dei, a regressor of the
    // outcome equation: as the mediator's instrument it is weak.
    let out = medsim(
        dir.path(),
        &[
            "run",
            "--mediator-instrument",
            "iv_post1984",
            "--group",
            "",
            "--scheme",
            "none",
            "--out",
            "weak",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "warning: weak instruments: the first stage of 'agglom' on iv_post1984 \
             (model.mediator_instrument"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("(weak: below 10)"));

    refused(
        dir.path(),
        &[
            "run",
            "--mediator-instrument",
            "iv_agglom",
            "--also-mediators",
            "agglom_sec,agglom_ter",
            "--out",
            "o",
        ],
        &[
            "2 instrumented mediators need at least 2",
            "--mediator-instrument",
        ],
    );
    refused(
        dir.path(),
        &[
            "run",
            "--mediator-instrument",
            "iv_agglom",
            "--scheme",
            "permutation",
            "--out",
            "o",
        ],
        &["first stage", "--mediator-instrument"],
    );
    refused(
        dir.path(),
        &[
            "run",
            "--serial",
            "agglom_sec,agglom_ter",
            "--mediator-instrument",
            "iv_agglom,iv_post1984",
            "--out",
            "o",
        ],
        &["model.serial", "--mediator-instrument"],
    );
    refused(
        dir.path(),
        &["run", "--mediator-instrument", "agglom", "--out", "o"],
        &["'agglom'", "mediator"],
    );
}

/// `--fixed-effects city+province^year`: the model line names the effects,
/// the CPU engine resamples it (auto leaves the software GPU alone), the
/// estimates differ from unit + year effects'; the refused spellings and
/// combinations name the key.
#[test]
fn province_by_year_effects_run_and_refuse_what_they_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let out = medsim(
        dir.path(),
        &[
            "run",
            "--fixed-effects",
            "city+province^year",
            "--group",
            "region",
            "-B",
            "300",
            "--out",
            "py",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("fixed effects: unit+province^time"),
        "{}",
        text(&out.stdout)
    );
    let s = read_summary(&dir.path().join("py/summary.json"));
    assert_eq!(s.model.fixed_effects, "unit+province^time");
    assert_eq!(s.resampling.as_ref().unwrap().engine.backend, "cpu");
    assert_eq!(s.groups.len(), 3);
    let tex = std::fs::read_to_string(dir.path().join("py/tables.tex")).unwrap();
    assert!(
        tex.contains("province $\\times$ period fixed effects & Yes"),
        "{tex}"
    );
    let out = medsim(
        dir.path(),
        &["run", "--group", "", "--scheme", "none", "--out", "ut"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let two_way = read_summary(&dir.path().join("ut/summary.json"));
    let (a, a2) = (s.effect("a").unwrap(), two_way.effect("a").unwrap());
    assert!(
        (a.estimate - a2.estimate).abs() > 1e-4,
        "the cells change a"
    );

    for (args, words) in [
        (
            &["--fixed-effects", "year+province^city"][..],
            &["'year' is not the unit", "--fixed-effects"][..],
        ),
        (
            &[
                "--fixed-effects",
                "city+province^year",
                "--scheme",
                "permutation",
            ],
            &["permutation", "unit+GROUP^time"],
        ),
        (
            &[
                "--fixed-effects",
                "city+province^year",
                "--ci",
                "studentized",
            ],
            &["studentized", "unit+GROUP^time"],
        ),
    ] {
        let mut all = vec!["run", "--out", "o"];
        all.extend_from_slice(args);
        refused(dir.path(), &all, words);
    }
    // The first city's last row moves to another city's province (a cell
    // of two rows, so not a singleton): provinces no longer nest the
    // cities.
    let mut t = generate(SyntheticParams::default());
    let (p, c) = (col(&t, "province"), col(&t, "city"));
    let (first, home) = (t.rows[0][c].clone(), t.rows[0][p].clone());
    let other = t.rows.iter().find(|r| r[p] != home).unwrap()[p].clone();
    let last = t.rows.iter().rposition(|r| r[c] == first).unwrap();
    t.rows[last][p] = other;
    let path = dir.path().join("moved.csv");
    write_csv(&t, &path).unwrap();
    refused(
        dir.path(),
        &[
            "run",
            "--data",
            path.to_str().unwrap(),
            "--fixed-effects",
            "city+province^year",
            "--out",
            "o",
        ],
        &["nest the units", "--fixed-effects"],
    );
}

/// `--also-mediators`: the model with the other mediators is the model a
/// run with those mediators reports, replicates and all (the same clusters
/// draw the same weights); a set equal to the run's own is not repeated.
#[test]
fn also_mediators_is_the_run_with_those_mediators() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "-B",
        "400",
        "--group",
        "",
        "--ci",
        "percentile,bca,studentized",
    ];
    let mut args = vec![
        "run",
        "--out",
        "main",
        "--also-mediators",
        "agglom_sec,agglom_ter",
    ];
    args.extend(common);
    let out = medsim(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut args = vec!["run", "--out", "two", "--mediator", "agglom_sec,agglom_ter"];
    args.extend(common);
    let out = medsim(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let main = read_summary(&dir.path().join("main/summary.json"));
    let two = read_summary(&dir.path().join("two/summary.json"));
    let sub = &main.mediator_models["agglom_sec+agglom_ter"];
    assert_eq!(sub.effects, two.effects);
    assert_eq!(sub.intervals, two.intervals);
    assert_eq!(sub.suppression, two.suppression);
    assert!(two.mediator_models.is_empty(), "the run's own set again");
    // On a file, a set whose mediator is missing for a whole city: fewer
    // clusters, the run's weights through the cluster map.
    let path = small_panel(dir.path(), "gap.csv", |t| {
        let (c, city) = (col(t, "agglom_ter"), col(t, "city"));
        let first = t.rows[0][city].clone();
        for row in t.rows.iter_mut().filter(|r| r[city] == first) {
            row[c] = "NA".into();
        }
    });
    let out = medsim(
        dir.path(),
        &[
            "run",
            "--data",
            path.to_str().unwrap(),
            "--out",
            "gap",
            "-B",
            "200",
            "--also-mediators",
            "agglom_sec,agglom_ter",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let gap = read_summary(&dir.path().join("gap/summary.json"));
    let sub = &gap.mediator_models["agglom_sec+agglom_ter"];
    assert_eq!(sub.clusters, gap.data.clusters - 1);
    assert!(sub.effects["indirect"].bootstrap.is_some());
    refused(
        dir.path(),
        &["run", "--also-mediators", "agglom_sec,nope", "--out", "o"],
        &["--also-mediators", "nope"],
    );
}

/// The small panel's CSV text with `edit` applied to its lines.
fn edited_csv(dir: &Path, name: &str, edit: impl FnOnce(&mut Vec<String>)) -> PathBuf {
    let path = small_panel(dir, name, |_| {});
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    edit(&mut lines);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn unmatched_quote_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    edited_csv(dir.path(), "bad.csv", |l| l[3].insert(0, '"'));
    refused(
        dir.path(),
        &["run", "--data", "bad.csv", "--out", "o"],
        &["bad.csv:4", "unmatched double quote"],
    );
}

#[test]
fn semicolon_separated_file_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    edited_csv(dir.path(), "bad.csv", |lines| {
        for l in lines.iter_mut() {
            *l = l.replace(',', ";");
        }
    });
    refused(
        dir.path(),
        &["run", "--data", "bad.csv", "--out", "o"],
        &["bad.csv:1", "separated by ';'", "comma-separated"],
    );
}

/// A UTF-8 byte-order mark (Excel writes one) is skipped: the run is the
/// run of the same file without it.
#[test]
fn byte_order_mark_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let plain = small_panel(dir.path(), "plain.csv", |_| {});
    let mut bytes = vec![0xef, 0xbb, 0xbf];
    bytes.extend(std::fs::read(&plain).unwrap());
    std::fs::write(dir.path().join("bom.csv"), bytes).unwrap();
    for (file, out) in [("plain.csv", "a"), ("bom.csv", "b")] {
        let o = medsim(
            dir.path(),
            &[
                "run",
                "--data",
                file,
                "--out",
                out,
                "-B",
                "99",
                "--mc-draws",
                "1000",
                "-q",
            ],
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let (mut a, mut b) = (
        read_summary(&dir.path().join("a/summary.json")),
        read_summary(&dir.path().join("b/summary.json")),
    );
    a.data.source.clear();
    b.data.source.clear();
    a.name.clear();
    b.name.clear();
    assert_eq!(a, b);
}

#[test]
fn value_whose_square_overflows_is_refused() {
    refused_file(
        |t| {
            let c = col(t, "ln_gdp");
            t.rows[2][c] = "3e200".into();
        },
        &[],
        &["bad.csv:4", "column 'ln_gdp'", "too large", "rescale"],
    );
}

#[test]
fn single_period_panel_is_refused() {
    refused_file(
        |t| {
            let y = col(t, "year");
            let first = t.rows[0][y].clone();
            t.rows.retain(|r| r[y] == first);
        },
        &[],
        &["0 cluster(s)", "singleton", "at least two"],
    );
}

#[test]
fn permutation_of_a_treatment_identical_across_units_is_refused() {
    refused_file(
        |t| {
            let (x, y) = (col(t, "dei"), col(t, "year"));
            for r in t.rows.iter_mut() {
                let year: f64 = r[y].parse().unwrap();
                r[x] = format!("{}", 0.1 * (year - 2010.0) + 0.01 * (year % 3.0));
            }
        },
        &[
            "--fixed-effects",
            "unit",
            "--scheme",
            "permutation",
            "-B",
            "99",
        ],
        &["--scheme", "identical across units", "changes nothing"],
    );
}

#[test]
fn more_regressors_than_clusters_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = generate(SyntheticParams {
        cities: 6,
        years: 10,
        ..SyntheticParams::default()
    });
    write_csv(&t, &dir.path().join("six.csv")).unwrap();
    refused(
        dir.path(),
        &[
            "run",
            "--data",
            "six.csv",
            "--controls",
            CONTROLS,
            "--out",
            "o",
        ],
        &[
            "8 regressors",
            "only 6 clusters",
            "more clusters than regressors",
        ],
    );
}

#[test]
fn an_output_folder_that_is_not_writable_is_refused_before_any_work() {
    // /sys refuses new files even to root (CI runs as root, for which
    // permission bits do not bind).
    let dir = tempfile::tempdir().unwrap();
    let out = medsim(
        dir.path(),
        &["run", "-B", "99", "--out", "/sys/medsim-results", "-q"],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/sys is not writable"), "{err}");
    assert!(!err.contains("replicates"), "the run started: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn zero_replicates_and_an_output_path_under_a_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        dir.path(),
        &["run", "-B", "0", "--out", "o"],
        &["-B", "at least 1"],
    );
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let out = medsim(
        dir.path(),
        &[
            "run",
            "-B",
            "99",
            "--mc-draws",
            "1000",
            "--out",
            "file/o",
            "-q",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("file"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("file")).unwrap(),
        "x"
    );
}

/// A reader that stops early (`medsim run | head`) ends the run quietly:
/// exit 0, no panic, the results written.
#[test]
fn a_closed_pipe_is_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_medsim"))
        .args(["run", "-B", "99", "--mc-draws", "1000", "--out", "o", "-q"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
    assert!(dir.path().join("o/summary.json").exists());
}
