//! Trust in what medsim writes and reads back, end to end through the
//! binary: results folders that hold the user's files are refused and left
//! intact, folders whose loss would hurt are refused, one run per folder at
//! a time, links kept, nothing left behind by a refused run, and
//! `medsim generate` overwrites only what it may.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::medsim;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit 2 with every needle in stderr.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) -> String {
    let out = medsim(dir, args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "args {args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "'{n}' not in: {err}");
    }
    err
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const QUICK: &[&str] = &["run", "-B", "99", "--mc-draws", "1000", "-q", "--no-plots"];

fn quick(extra: &[&str]) -> Vec<String> {
    QUICK.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn run_ok(dir: &Path, args: &[String]) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = medsim(dir, &args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
}

#[test]
fn a_folder_holding_the_users_files_is_refused_and_left_intact() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o");
    std::fs::create_dir_all(&o).unwrap();
    std::fs::write(o.join("panel.csv"), "city,year\n").unwrap();
    std::fs::write(o.join("notes.txt"), "my notes").unwrap();
    let args = quick(&["--out", "o"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        dir.path(),
        &args,
        &[
            "results folder o",
            "did not write",
            "notes.txt",
            "panel.csv",
            "choose another",
        ],
    );
    assert_eq!(names(&o), ["notes.txt", "panel.csv"]);
    assert_eq!(
        std::fs::read_to_string(o.join("notes.txt")).unwrap(),
        "my notes"
    );
    // The same with the folder from a config's [output] dir, a sweep and a
    // simulation study.
    std::fs::write(
        dir.path().join("c.toml"),
        "name = \"c\"\n[output]\ndir = \"o\"\n[resampling]\nreplicates = 99\n",
    )
    .unwrap();
    refused(dir.path(), &["run", "c.toml", "-q"], &["did not write"]);
    assert_eq!(names(&o), ["notes.txt", "panel.csv"]);
}

#[test]
fn a_medsim_folder_keeps_what_the_user_adds_and_loses_only_stale_results() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o");
    run_ok(dir.path(), &quick(&["--out", "o", "--save-replicates"]));
    assert!(o.join("replicates.csv").exists());
    std::fs::write(o.join("notes.txt"), "mine").unwrap();
    run_ok(dir.path(), &quick(&["--out", "o"]));
    let files = names(&o);
    assert!(files.contains(&"notes.txt".to_string()), "{files:?}");
    assert!(files.contains(&"summary.json".to_string()), "{files:?}");
    assert!(
        !files.contains(&"replicates.csv".to_string()),
        "a stale result stayed: {files:?}"
    );
    assert!(
        !files
            .iter()
            .any(|f| f.contains("staging") || f.ends_with(".lock")),
        "{files:?}"
    );
    assert_eq!(
        names(dir.path()),
        ["o"],
        "temporary files beside the folder"
    );
}

#[test]
fn a_folder_written_by_an_older_medsim_is_still_medsims() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o");
    run_ok(dir.path(), &quick(&["--out", "o"]));
    std::fs::remove_file(o.join(".medsim")).unwrap(); // as older versions wrote it
    run_ok(dir.path(), &quick(&["--out", "o"]));
    assert!(o.join(".medsim").exists());
}

#[test]
fn folders_whose_loss_would_hurt_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    assert!(
        medsim(dir.path(), &["generate", "--out", "data/panel.csv"])
            .status
            .success()
    );
    let before = names(dir.path());
    for (out, why) in [
        ("/", "root folder"),
        (".", "working folder"),
        ("..", "working folder"),
        ("data", "holds the input file"),
    ] {
        let started = Instant::now();
        let args = quick(&["--data", "data/panel.csv", "--out", out]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(dir.path(), &args, &[why]);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert_eq!(names(dir.path()), before);
    assert_eq!(names(&data), ["panel.csv"]);
}

#[test]
fn a_linked_results_folder_stays_a_link() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real", dir.path().join("o")).unwrap();
    run_ok(dir.path(), &quick(&["--out", "o"]));
    run_ok(dir.path(), &quick(&["--out", "o"]));
    let meta = std::fs::symlink_metadata(dir.path().join("o")).unwrap();
    assert!(meta.file_type().is_symlink());
    assert!(dir.path().join("real/summary.json").exists());
    std::os::unix::fs::symlink("nowhere", dir.path().join("dangling")).unwrap();
    let args = quick(&["--out", "dangling"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(dir.path(), &args, &["link to nothing"]);
}

#[test]
fn a_refused_or_failed_run_leaves_no_folder_and_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        medsim(
            dir.path(),
            &["generate", "--out", "p.csv", "--cities", "30"]
        )
        .status
        .success()
    );
    // Fails after the folder is claimed: a column that is not there.
    let args = quick(&[
        "--data",
        "p.csv",
        "--mediator",
        "nope",
        "--out",
        "o",
        "--checkpoint-every",
        "0.001",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(dir.path(), &args, &["nope"]);
    assert!(!dir.path().join("o").exists());
    // In a folder medsim wrote, the failed run's checkpoint goes, the
    // results stay.
    run_ok(dir.path(), &quick(&["--data", "p.csv", "--out", "o"]));
    let before = names(&dir.path().join("o"));
    refused(dir.path(), &args, &["nope"]);
    assert_eq!(names(&dir.path().join("o")), before);
}

#[test]
fn a_second_run_on_a_held_folder_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_medsim"))
        .args([
            "run",
            "-B",
            "5000000",
            "--backend",
            "cpu",
            "-q",
            "--no-plots",
            "--out",
            "o",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = dir.path().join("o/.medsim.lock");
    let started = Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |t| t.trim().is_empty()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no lock appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = first.id().to_string();
    for seed in ["1", "2"] {
        let args = quick(&["--seed", seed, "--out", "o"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(
            dir.path(),
            &args,
            &["another medsim run", &format!("pid {pid}")],
        );
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // The holder is gone (killed): its lock went with it.
    run_ok(dir.path(), &quick(&["--out", "o"]));
}

#[test]
fn generate_overwrites_only_a_file_with_force() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.csv"), "mine").unwrap();
    refused(
        dir.path(),
        &["generate", "--out", "p.csv"],
        &["exists", "--force"],
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("p.csv")).unwrap(),
        "mine"
    );
    assert!(
        medsim(
            dir.path(),
            &["generate", "--out", "p.csv", "--force", "--cities", "5"]
        )
        .status
        .success()
    );
    assert!(
        std::fs::read_to_string(dir.path().join("p.csv"))
            .unwrap()
            .starts_with("city,")
    );
    refused(
        dir.path(),
        &["generate", "--out", "/dev/null", "--force"],
        &["not a regular file"],
    );
    assert!(Path::new("/dev/null").exists());
}

/// A run of `args` in `dir` killed (SIGKILL) once `folder` holds a stored
/// segment.
fn killed_once_stored(dir: &Path, args: &[&str], folder: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_medsim"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let stored = || {
        std::fs::read_dir(folder)
            .is_ok_and(|mut e| e.any(|e| e.unwrap().path().extension().is_some_and(|x| x == "bin")))
    };
    while !stored() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "nothing stored"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Replace `from` by `to` in a JSON file's text.
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn stored_command_lines_cannot_redirect_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = [
        "run",
        "-B",
        "3000000",
        "--backend",
        "cpu",
        "-q",
        "--no-plots",
        "--checkpoint-every",
        "0.05",
    ];
    let with_out = |out: &'static str| [&long[..], &["--out", out]].concat();
    killed_once_stored(d, &with_out("o"), &d.join("o/checkpoint"));
    killed_once_stored(d, &with_out("other"), &d.join("other/checkpoint"));
    let header = d.join("o/checkpoint/run.json");
    let saved = std::fs::read_to_string(&header).unwrap();

    // A run.json whose command is itself a resume: refused, not a stack
    // overflow.
    edit(
        &header,
        "\"--checkpoint-every\"",
        "\"--resume\", \"o\", \"--checkpoint-every\"",
    );
    let err = refused(
        d,
        &["run", "--resume", "o"],
        &["stored command line", "was edited"],
    );
    assert!(!err.contains("overflow"), "{err}");
    // One that writes another folder's results: refused, the other run
    // untouched.
    std::fs::write(&header, &saved).unwrap();
    edit(&header, "\"o\"\n", "\"other\"\n");
    let before = names(&d.join("other/checkpoint"));
    refused(d, &["run", "--resume", "o"], &["not this folder's run"]);
    assert_eq!(names(&d.join("other/checkpoint")), before);
    assert!(!d.join("other/summary.json").exists());

    // A shard whose stored command resumes another run: the merge refuses.
    let part = [
        "run",
        "-B",
        "200",
        "--backend",
        "cpu",
        "-q",
        "--no-plots",
        "--out",
        "s",
        "--shard",
        "0/1",
    ];
    assert!(medsim(d, &part).status.success());
    let shard = d.join("s-shards/000-of-001/run.json");
    edit(
        &shard,
        "\"--shard\",\n    \"0/1\"",
        "\"--resume\",\n    \"other\"",
    );
    refused(
        d,
        &["merge", "s-shards"],
        &["stored command line", "was edited"],
    );
    assert!(!d.join("other/summary.json").exists());
}

#[test]
fn a_manifest_whose_data_path_was_edited_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (file, seed) in [("a.csv", "1"), ("b.csv", "2")] {
        assert!(
            medsim(
                d,
                &["generate", "--out", file, "--cities", "30", "--seed", seed]
            )
            .status
            .success()
        );
    }
    run_ok(d, &quick(&["--data", "a.csv", "--out", "o"]));
    let manifest = d.join("o/manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let a = d
        .join("a.csv")
        .canonicalize()
        .unwrap()
        .display()
        .to_string();
    let b = d
        .join("b.csv")
        .canonicalize()
        .unwrap()
        .display()
        .to_string();
    // Only the config's csv is edited; the recorded input stays a.csv.
    let edited = text.replacen(
        &format!("\"csv\": \"{a}\""),
        &format!("\"csv\": \"{b}\""),
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(&manifest, edited).unwrap();
    refused(
        d,
        &["run", "--manifest", "o/manifest.json", "--out", "r"],
        &["b.csv", "does not record", "edited"],
    );
    assert!(!d.join("r").exists());
}

/// Every interval of a run on `csv` (effect, method, level -> bounds).
fn intervals(dir: &Path, csv: &str, extra: &[&str]) -> Vec<(String, String, f64, f64)> {
    let out = format!("o-{csv}");
    let mut args = vec![
        "run",
        "--data",
        csv,
        "-B",
        "499",
        "--ci",
        "percentile,basic,normal,bc,bca,studentized",
        "-q",
        "--no-plots",
        "--out",
        &out,
    ];
    args.extend_from_slice(extra);
    let ran = medsim(dir, &args);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&out).join("summary.json")).unwrap())
            .unwrap();
    s["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["effect"].as_str().unwrap().to_string(),
                i["method"].as_str().unwrap().to_string(),
                i["lower"].as_f64().unwrap_or(f64::NAN),
                i["upper"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

/// A copy of `csv` with `column` multiplied by `by`, written as `name`.
fn scaled(dir: &Path, csv: &str, column: &str, by: f64, name: &str) {
    let text = std::fs::read_to_string(dir.join(csv)).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let at = header.split(',').position(|c| c == column).unwrap();
    let mut out = format!("{header}\n");
    for line in lines {
        let cells: Vec<String> = line
            .split(',')
            .enumerate()
            .map(|(j, c)| match j == at {
                true => format!("{:e}", c.parse::<f64>().unwrap() * by),
                false => c.to_string(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    std::fs::write(dir.join(name), out).unwrap();
}

/// How an effect scales when the outcome, mediator or treatment is
/// multiplied by `s`.
fn effect_scale(effect: &str, column: &str, s: f64) -> f64 {
    match (column, effect) {
        (_, "proportion_mediated" | "suppression_share") => 1.0,
        ("log_ci", "a") => 1.0,
        ("log_ci", _) => s,
        ("agglom", "a") => s,
        ("agglom", "b") => 1.0 / s,
        ("agglom", _) => 1.0,
        ("dei", "b") => 1.0,
        ("dei", _) => 1.0 / s,
        _ => unreachable!(),
    }
}

/// Each interval of the scaled runs against the unscaled one times the
/// effect's scale: within `tol` relative to the value (f64), or within
/// `sd_tol` of the interval's width (f32).
fn check_scale_invariance(extra: &[&str], tol: f64) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        medsim(
            d,
            &[
                "generate", "--out", "p.csv", "--cities", "50", "--years", "6"
            ]
        )
        .status
        .success()
    );
    // The unscaled file goes through the same text formatting as the others.
    scaled(d, "p.csv", "log_ci", 1.0, "base.csv");
    let base = intervals(d, "base.csv", extra);
    for column in ["log_ci", "agglom", "dei"] {
        for s in [1e-140, 1e-60, 1e60, 1e140] {
            let name = format!("{column}-{s:e}.csv");
            scaled(d, "p.csv", column, s, &name);
            let got = intervals(d, &name, extra);
            assert_eq!(got.len(), base.len());
            for (b, g) in base.iter().zip(&got) {
                assert_eq!((&b.0, &b.1), (&g.0, &g.1));
                let k = effect_scale(&b.0, column, s);
                let width = (b.3 - b.2).abs();
                for (want, have) in [(b.2, g.2), (b.3, g.3)] {
                    let have = have / k;
                    let off = (have - want).abs();
                    assert!(
                        off <= tol * want.abs().max(width),
                        "{column} x {s:e}: {} {} bound {have} vs {want} (off {off:e})",
                        b.0,
                        b.1
                    );
                }
            }
        }
    }
}

#[test]
fn every_interval_method_is_scale_invariant_on_the_cpu() {
    check_scale_invariance(&["--backend", "cpu"], 1e-9);
}

#[test]
fn every_interval_method_is_scale_invariant_on_the_gpu_in_f32() {
    if common::gpu_context().is_none() {
        return;
    }
    check_scale_invariance(&["--backend", "gpu", "--precision", "f32"], 1e-6);
}
