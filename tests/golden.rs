//! Golden outputs: the summaries of a fixed set of runs (the default
//! analysis, every resampling scheme, every interval method, groups and
//! contrasts, two mediators, IV, sensitivity, a sweep, a simulation study),
//! committed in tests/golden/ and compared with this build's, value by
//! value and bit for bit. A change that must move a number regenerates
//! them (`MEDSIM_BLESS=1 cargo test --release --test golden`) and says why
//! in its commit.

mod common;

use std::path::{Path, PathBuf};

use common::medsim;

/// Each golden: its file, the command (run in a fresh folder whose results
/// go to `out`), and the file of `out` it keeps.
const CASES: &[(&str, &[&str], &str)] = &[
    ("default", &["run", "-B", "999"], "summary.json"),
    (
        "pairs_every_interval",
        &[
            "run",
            "-B",
            "999",
            "--ci",
            "percentile,basic,normal,bc,bca,studentized",
            "--level",
            "0.9,0.95",
        ],
        "summary.json",
    ),
    (
        "bayes_strata",
        &[
            "run", "-B", "999", "--scheme", "bayes", "--strata", "region",
        ],
        "summary.json",
    ),
    (
        "poisson",
        &["run", "-B", "999", "--scheme", "poisson"],
        "summary.json",
    ),
    (
        "jackknife",
        &["run", "--scheme", "jackknife"],
        "summary.json",
    ),
    (
        "wild_webb",
        &["run", "-B", "999", "--scheme", "wild", "--weights", "webb"],
        "summary.json",
    ),
    (
        "permutation",
        &["run", "-B", "999", "--scheme", "permutation"],
        "summary.json",
    ),
    (
        "two_mediators",
        &["run", "-B", "999", "--mediator", "agglom_sec,agglom_ter"],
        "summary.json",
    ),
    (
        "instrumented",
        &["run", "-B", "999", "--instrument", "iv_post1984"],
        "summary.json",
    ),
    ("sensitivity", &["sensitivity", "-B", "499"], "summary.json"),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn bless() -> bool {
    std::env::var("MEDSIM_BLESS").is_ok_and(|v| v == "1")
}

/// Compare two JSON values bit for bit, naming the first path that differs.
fn same(path: &str, want: &serde_json::Value, got: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => same(&format!("{path}.{k}"), x, y)?,
                    (x, _) => {
                        return Err(format!(
                            "{path}.{k} is {} in the golden file and {} now",
                            x.map_or("absent".into(), |v| v.to_string()),
                            b.get(k).map_or("absent".into(), |v| v.to_string())
                        ));
                    }
                }
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (x, y))| same(&format!("{path}[{i}]"), x, y)),
        (Value::Number(a), Value::Number(b)) => {
            let bits = |n: &serde_json::Number| n.as_f64().map(f64::to_bits);
            if a == b || bits(a) == bits(b) {
                Ok(())
            } else {
                Err(format!("{path} is {a} in the golden file and {b} now"))
            }
        }
        _ if want == got => Ok(()),
        _ => Err(format!("{path} is {want} in the golden file and {got} now")),
    }
}

/// Check (or, blessing, write) the golden file `name` against `got`.
fn check(name: &str, got: &serde_json::Value) {
    let file = golden_dir().join(format!("{name}.json"));
    if bless() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        let text = serde_json::to_string_pretty(got).unwrap() + "\n";
        std::fs::write(&file, text).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (MEDSIM_BLESS=1 writes it)", file.display()));
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    if let Err(d) = same(name, &want, got) {
        panic!(
            "{d}: the results moved; if that is meant, regenerate with MEDSIM_BLESS=1 and say why in the commit"
        );
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn runs_match_their_golden_summaries() {
    for (name, args, file) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--backend", "cpu", "--no-plots", "-q", "--out", "out"]);
        let out = medsim(dir.path(), &all);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        check(name, &read_json(&dir.path().join("out").join(file)));
    }
}

#[test]
fn a_sweep_and_a_study_match_their_golden_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/sweep_effect_size.toml");
    let out = medsim(
        d,
        &[
            "sweep",
            config.to_str().unwrap(),
            "-B",
            "199",
            "--backend",
            "cpu",
            "--no-plots",
            "-q",
            "--out",
            "sweep",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let points: Vec<serde_json::Value> = (1..)
        .map(|k| d.join(format!("sweep/points/{k:03}/summary.json")))
        .take_while(|p| p.exists())
        .map(|p| read_json(&p))
        .collect();
    assert!(points.len() > 1);
    check("sweep_points", &serde_json::Value::Array(points));

    std::fs::write(
        d.join("study.toml"),
        "name = \"study\"\n[simulation]\ndgp = \"iid\"\nn = [40, 80]\na = 0.3\nb = 0.2\n\
         c_prime = 0.1\ndatasets = 40\nreplicates = 199\n\
         methods = [\"sobel\", \"joint\", \"monte_carlo\", \"percentile\", \"bc\", \"bca\"]\n\
         seed = 3\n[resampling]\nbackend = \"cpu\"\n",
    )
    .unwrap();
    let out = medsim(
        d,
        &[
            "simulate",
            "study.toml",
            "--no-plots",
            "-q",
            "--out",
            "study",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut study = read_json(&d.join("study/simulation.json"));
    for timing in ["seconds", "fits_per_second", "replicates_per_second"] {
        study.as_object_mut().unwrap().remove(timing);
    }
    check("simulation", &study);
}
