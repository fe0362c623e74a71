//! The same seed gives the same summary.json whatever the batch size and
//! thread count (all but the two wall-clock fields of `resampling`).

use std::path::Path;
use std::process::Command;

/// Run `medsim run` with `args` into `dir/name`; the summary without its
/// two wall-clock fields.
fn run(dir: &Path, name: &str, args: &[&str]) -> serde_json::Value {
    let out_dir = dir.join(name);
    let out = Command::new(env!("CARGO_BIN_EXE_medsim"))
        .args([
            "run",
            "-q",
            "--mc-draws",
            "2000",
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(out_dir.join("summary.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let r = v["resampling"].as_object_mut().unwrap();
    r.remove("seconds");
    r.remove("replicates_per_second");
    v
}

/// B = 3001 and every interval method unless `extra` names its own.
fn summary(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["-B", "3001"];
    if !extra.contains(&"--ci") {
        args.extend(["--ci", "percentile,basic,normal,bc,bca"]);
    }
    args.extend_from_slice(extra);
    run(dir, &extra.join("_").replace('-', ""), &args)
}

#[test]
fn batch_size_and_threads_do_not_change_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let reference = summary(dir.path(), &["--batch", "256", "--threads", "1"]);
    for extra in [
        ["--batch", "1", "--threads", "2"],
        ["--batch", "7", "--threads", "1"],
        ["--batch", "1000", "--threads", "2"],
        ["--batch", "4096", "--threads", "3"],
    ] {
        assert_eq!(
            summary(dir.path(), &extra),
            reference,
            "differs with {extra:?}"
        );
    }
}

#[test]
fn every_scheme_is_reproducible_and_the_seed_matters() {
    let dir = tempfile::tempdir().unwrap();
    for scheme in ["pairs", "bayes", "poisson", "jackknife"] {
        let a = summary(
            dir.path(),
            &["--scheme", scheme, "--batch", "64", "--threads", "2"],
        );
        let b = summary(
            dir.path(),
            &["--scheme", scheme, "--batch", "500", "--threads", "1"],
        );
        assert_eq!(a, b, "{scheme}");
        if scheme != "jackknife" {
            let c = summary(
                dir.path(),
                &["--scheme", scheme, "--batch", "64", "--seed", "2"],
            );
            let bootstrap = |v: &serde_json::Value| -> Vec<serde_json::Value> {
                v["intervals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|i| i["method"] == "percentile")
                    .cloned()
                    .collect()
            };
            assert_ne!(
                bootstrap(&a),
                bootstrap(&c),
                "{scheme}: the seed has no effect"
            );
        }
    }
}

#[test]
fn streamed_quantiles_equal_the_in_memory_ones() {
    // --memory 0 forces the two-pass histogram-and-replay path.
    let dir = tempfile::tempdir().unwrap();
    for extra in [
        vec![
            "--scheme",
            "pairs",
            "--ci",
            "percentile,basic,normal,bc,bca,studentized",
            "--level",
            "0.9,0.99",
        ],
        vec![
            "--scheme",
            "wild",
            "--weights",
            "webb",
            "--ci",
            "percentile,bca",
        ],
        vec!["--scheme", "permutation"],
    ] {
        let mut streamed = extra.clone();
        streamed.extend(["--memory", "0"]);
        let a = summary(dir.path(), &extra);
        let b = summary(dir.path(), &streamed);
        assert_eq!(a, b, "{extra:?}");
    }
}

#[test]
fn streaming_over_many_chunks_is_exact() {
    // B above one chunk (65,536 replicates), so the histogram range comes
    // from the first chunk and later draws can fall outside it. The pooled
    // model only (--group ''): the group models stream the same way and are
    // covered at smaller B above.
    let dir = tempfile::tempdir().unwrap();
    let args = |memory| {
        [
            "--group",
            "",
            "-B",
            "150000",
            "--ci",
            "percentile,bca,studentized",
            "--memory",
            memory,
        ]
    };
    assert_eq!(
        run(dir.path(), "kept", &args("1024")),
        run(dir.path(), "streamed", &args("0"))
    );
}
