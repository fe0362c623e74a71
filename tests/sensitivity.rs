//! The sensitivity analysis for mediator-outcome confounding (Imai, Keele
//! and Yamamoto 2010) against a port of R's `mediation::medsens`
//! (tests/fixtures/make_sensitivity_fixtures.py) on a single-level model,
//! its identities (ACME(0) = a*b to the last bit, zero at the reported
//! crossing), its bands from the run's replicates, and its refusals.

use std::path::PathBuf;

use medsim::internals::model::replicate::acme;
use medsim::internals::model::spec::{FixedEffects, ModelSpec};
use medsim::internals::resample::spec::ResampleSpec;
use medsim::internals::study::run::{DataSource, RunPlan, execute};
use serde_json::Value;

mod common;

use common::floats;

fn fixture(name: &str) -> PathBuf {
    common::fixture(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("sensitivity_expected.json")).unwrap())
        .unwrap()
}

/// The iid model of the fixture: y ~ x + m + c1, m ~ x + c1, no fixed
/// effects, each observation its own cluster.
fn iid_plan(rho: Vec<f64>, resampling: Option<ResampleSpec>) -> RunPlan {
    RunPlan {
        inference: Default::default(),
        resampling,
        sensitivity: Some(rho),
        ..RunPlan::new(
            "iid",
            DataSource::file(fixture("sensitivity_iid.csv")),
            ModelSpec::xmy("id", "period", &["c1"], FixedEffects::None),
        )
    }
}

/// On the same data, the curve is the fixed point of medsens's iterated
/// FGLS at every rho of its default grid (1e-10 of the curve's range),
/// within medsens's stopping rule of the values it prints, and the
/// crossing, its grid value, the R-squared values and both R-squared
/// thresholds are medsens's.
#[test]
fn the_curve_matches_medsens_on_the_iid_model() {
    let want = expected();
    let rho = floats(&want["rho"]);
    let s = execute(&iid_plan(rho.clone(), None), &|_, _| Ok(())).unwrap();
    let sens = s.sensitivity.as_ref().unwrap();
    let close = |got: f64, want: f64, tol: f64, what: &str| {
        assert!(
            (got - want).abs() <= tol * want.abs().max(1e-300),
            "{what}: {got} vs {want}"
        );
    };
    close(
        s.effects["a"].estimate,
        want["a"].as_f64().unwrap(),
        1e-10,
        "a",
    );
    close(
        s.effects["b"].estimate,
        want["b"].as_f64().unwrap(),
        1e-10,
        "b",
    );
    let converged = floats(&want["acme_converged"]);
    let shipped = floats(&want["acme_medsens"]);
    let range = converged.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_eq!(sens.curve.len(), rho.len());
    for ((p, &c), &m) in sens.curve.iter().zip(&converged).zip(&shipped) {
        assert!(
            (p.acme - c).abs() <= 1e-10 * range,
            "rho {}: {} vs converged FGLS {c}",
            p.rho,
            p.acme
        );
        // medsens stops once the squared change of the coefficients is
        // below sqrt(eps) ~ 1.5e-8, i.e. changes of ~1e-4.
        assert!(
            (p.acme - m).abs() <= 1e-3,
            "rho {}: {} vs medsens {m}",
            p.rho,
            p.acme
        );
    }
    close(
        sens.rho_at_zero,
        want["err_cr"].as_f64().unwrap(),
        1e-10,
        "rho at zero",
    );
    assert_eq!(sens.rho_at_zero_grid, want["err_cr_grid"].as_f64().unwrap());
    close(
        sens.r_squared_mediator,
        want["r_squared_mediator"].as_f64().unwrap(),
        1e-10,
        "R2_M",
    );
    close(
        sens.r_squared_outcome,
        want["r_squared_outcome"].as_f64().unwrap(),
        1e-10,
        "R2_Y",
    );
    close(
        sens.r2_star_at_zero,
        want["r2_star_thresh"].as_f64().unwrap(),
        1e-10,
        "R2* threshold",
    );
    close(
        sens.r2_tilde_at_zero,
        want["r2_tilde_thresh"].as_f64().unwrap(),
        1e-10,
        "R2~ threshold",
    );
    for p in &sens.curve {
        assert_eq!(p.r2_star_prod, p.rho * p.rho);
    }
}

/// ACME(0) is the reported a*b to the last bit, and ACME at the reported
/// crossing is zero (to rounding); on the panel model with fixed effects.
#[test]
fn acme_is_ab_at_zero_and_vanishes_at_the_crossing() {
    for (plan, what) in [
        (iid_plan(vec![-0.5, 0.0, 0.5], None), "iid"),
        (
            RunPlan {
                sensitivity: Some(vec![-0.5, 0.0, 0.5]),
                ..paper_plan()
            },
            "panel",
        ),
    ] {
        let s = execute(&plan, &|_, _| Ok(())).unwrap();
        let sens = s.sensitivity.as_ref().unwrap();
        let ab = s.effects["indirect"].estimate;
        assert_eq!(sens.curve[1].rho, 0.0);
        assert_eq!(sens.curve[1].acme.to_bits(), ab.to_bits(), "{what}");
        let (a, b) = (s.effects["a"].estimate, s.effects["b"].estimate);
        let at_zero = acme(a, b, sens.kappa, sens.rho_at_zero);
        assert!(at_zero.abs() <= 1e-12 * ab.abs(), "{what}: {at_zero}");
        // And the sign changes there.
        assert!(acme(a, b, sens.kappa, sens.rho_at_zero - 0.01) * ab > 0.0);
        assert!(acme(a, b, sens.kappa, sens.rho_at_zero + 0.01) * ab < 0.0);
    }
}

/// The embedded default's model without groups or other mediators.
fn paper_plan() -> RunPlan {
    let (config, origin) = medsim::internals::study::config::paper();
    let mut plan = config.plan(&origin).unwrap();
    plan.group_by.clear();
    plan.mediator_sets.clear();
    plan.resampling = None;
    plan.model.groups.clear();
    plan
}

/// The bands come from the run's replicates: each replicate's ACME(0) is
/// its a*b, so the interval at rho = 0 is the indirect effect's, bit for
/// bit; every point has every method's interval, ordered, and the bands
/// widen away from rho = 0 here (kappa's spread adds to a*b's).
#[test]
fn bands_come_from_the_replicates() {
    let rho: Vec<f64> = (-9..=9).map(|k| k as f64 / 10.0).collect();
    let spec = ResampleSpec {
        replicates: 1999,
        sensitivity: Some(rho.clone()),
        methods: vec![
            medsim::internals::resample::intervals::Method::Percentile,
            medsim::internals::resample::intervals::Method::Bca,
        ],
        ..Default::default()
    };
    let s = execute(&iid_plan(rho.clone(), Some(spec)), &|_, _| Ok(())).unwrap();
    let sens = s.sensitivity.as_ref().unwrap();
    let zero = &sens.curve[9];
    assert_eq!(zero.rho, 0.0);
    for i in &zero.intervals {
        let same = s
            .intervals
            .iter()
            .find(|j| j.effect == "indirect" && j.method == i.method && j.level == i.level)
            .unwrap();
        assert_eq!((i.lower, i.upper), (same.lower, same.upper), "{}", i.method);
    }
    assert_eq!(
        zero.bootstrap.unwrap().sd,
        s.effects["indirect"].bootstrap.unwrap().sd
    );
    for p in &sens.curve {
        assert_eq!(p.intervals.len(), 2, "rho {}", p.rho);
        for i in &p.intervals {
            assert!(i.lower < p.acme && p.acme < i.upper, "rho {}: {i:?}", p.rho);
        }
    }
    let width = |k: usize| {
        let i = &sens.curve[k].intervals[0];
        i.upper - i.lower
    };
    assert!(width(0) > width(9) && width(18) > width(9));
    // Nothing of the curve leaks into the main intervals.
    assert!(
        s.intervals
            .iter()
            .all(|i| !i.effect.starts_with("sensitivity"))
    );
}

/// Several mediators or an instrument: refused with the reason; the wild
/// and permutation schemes give the curve without bands.
#[test]
fn refusals_and_schemes_without_bands() {
    let mut plan = paper_plan();
    plan.sensitivity = Some(vec![0.0]);
    plan.model.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
    let e = execute(&plan, &|_, _| Ok(())).unwrap_err().to_string();
    assert!(e.contains("one mediator"), "{e}");
    let mut plan = paper_plan();
    plan.sensitivity = Some(vec![0.0]);
    plan.model.instruments = vec!["iv_post1984".into()];
    let e = execute(&plan, &|_, _| Ok(())).unwrap_err().to_string();
    assert!(e.contains("least-squares"), "{e}");
    // Asked of the library directly, bands on the wild scheme are refused
    // (its replicates have no Gram matrix).
    let spec = ResampleSpec {
        scheme: medsim::internals::resample::scheme::Scheme::Wild(
            medsim::internals::resample::scheme::WildWeights::Rademacher,
        ),
        replicates: 99,
        sensitivity: Some(vec![0.0]),
        ..Default::default()
    };
    let e = execute(&iid_plan(vec![0.0], Some(spec)), &|_, _| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("reweighting scheme"), "{e}");
    for scheme in ["wild", "permutation"] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_medsim"))
            .args([
                "sensitivity",
                "--group",
                "",
                "--also-mediators",
                "",
                "--scheme",
                scheme,
                "-B",
                "199",
                "--no-wild-tests",
                "-q",
                "--json",
                "--out",
            ])
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        let curve = s["sensitivity"]["curve"].as_array().unwrap();
        assert_eq!(curve.len(), 37);
        assert!(
            curve.iter().all(|p| p.get("intervals").is_none()),
            "{scheme}"
        );
        assert!(dir.path().join("out/sensitivity.csv").exists());
    }
}
