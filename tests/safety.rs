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

/// `medsim bench --out DIR` keeps its own files in a folder it does not
/// claim, so a BENCHMARKS.md it did not write is refused before the suite
/// runs, and left as it was.
#[test]
fn bench_does_not_replace_a_benchmarks_file_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("BENCHMARKS.md"), "my notes\n").unwrap();
    refused(
        dir.path(),
        &["bench", "--quick", "--cpu-only", "--out", "."],
        &["BENCHMARKS.md", "not a benchmark table medsim wrote"],
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("BENCHMARKS.md")).unwrap(),
        "my notes\n"
    );
    assert!(!dir.path().join("bench").exists());
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
    if !common::has_gpu() {
        return;
    }
    check_scale_invariance(&["--backend", "gpu", "--precision", "f32"], 1e-6);
}

/// The default synthetic panel of `cities` x `years` as text, through
/// `edit` (header, then rows as cells).
fn panel_text(dir: &Path, cities: &str, edit: impl FnOnce(&mut Vec<Vec<String>>)) -> String {
    let name = format!("g{cities}.csv");
    assert!(
        medsim(
            dir,
            &[
                "generate", "--out", &name, "--cities", cities, "--years", "5", "--force"
            ]
        )
        .status
        .success()
    );
    let text = std::fs::read_to_string(dir.join(&name)).unwrap();
    let mut rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    edit(&mut rows);
    rows.iter().map(|r| r.join(",") + "\n").collect()
}

#[test]
fn a_period_written_as_2011_0_is_the_period_2011() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.csv"), panel_text(d, "20", |_| {})).unwrap();
    let text = panel_text(d, "20", |rows| {
        let t = rows[0].iter().position(|h| h == "year").unwrap();
        // Half the rows write their year as 2011.0, one as 2.012e3.
        for (i, row) in rows.iter_mut().enumerate().skip(1) {
            if i % 2 == 0 {
                row[t] = format!("{}.0", row[t]);
            }
        }
        rows[3][t] = format!("{:e}", rows[3][t].parse::<f64>().unwrap());
    });
    std::fs::write(d.join("b.csv"), text).unwrap();
    run_ok(d, &quick(&["--data", "a.csv", "--out", "a"]));
    run_ok(d, &quick(&["--data", "b.csv", "--out", "b"]));
    let read = |o: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join(o).join("summary.json")).unwrap()).unwrap()
    };
    let (a, b) = (read("a"), read("b"));
    assert_eq!(b["data"]["periods"], 5);
    assert_eq!(a["effects"], b["effects"]);
    assert_eq!(a["intervals"], b["intervals"]);
    // A period that is not a number is refused with its line.
    let text = panel_text(d, "20", |rows| rows[4][1] = "2013Q1".into());
    std::fs::write(d.join("c.csv"), text).unwrap();
    let args = quick(&["--data", "c.csv", "--out", "c"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(d, &args, &["c.csv:5", "'2013Q1' is not a period number"]);
}

#[test]
fn digits_a_double_cannot_hold_are_warned_of_by_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shifted = panel_text(d, "20", |rows| {
        let c = rows[0].iter().position(|h| h == "fdi").unwrap();
        for row in rows.iter_mut().skip(1) {
            let v: f64 = row[c].parse().unwrap();
            row[c] = format!("1000000000000.{:010}", (v.abs() * 1e9) as u64);
        }
    });
    std::fs::write(d.join("shifted.csv"), shifted).unwrap();
    let args = quick(&["--data", "shifted.csv", "--controls", "fdi", "--out", "o"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = medsim(d, &args);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("more digits than double").count(), 1, "{err}");
    assert!(
        err.contains("column 'fdi'") && err.contains("shifted.csv:2"),
        "{err}"
    );
}

#[test]
fn every_missing_column_is_named_and_a_data_run_has_no_default_controls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = panel_text(d, "20", |rows| {
        for row in rows.iter_mut() {
            row.truncate(row.len() - 2);
        }
    });
    std::fs::write(d.join("p.csv"), text).unwrap();
    let args = quick(&[
        "--data",
        "p.csv",
        "--mediator",
        "agglomeration",
        "--controls",
        "ln_gdp,nope",
        "--out",
        "o",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(
        d,
        &args,
        &[
            "no column named 'agglomeration' (wanted as a mediator",
            "no column named 'nope' (wanted as a control",
        ],
    );
    // Without --controls a --data run has none: a wrong mediator name is
    // the only complaint.
    let args = quick(&[
        "--data",
        "p.csv",
        "--mediator",
        "agglomeration",
        "--out",
        "o",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = refused(d, &args, &["no column named 'agglomeration'"]);
    assert!(!err.contains("ln_gdp'"), "{err}");
    run_ok(d, &quick(&["--data", "p.csv", "--out", "o"]));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("o/summary.json")).unwrap()).unwrap();
    assert_eq!(s["model"]["controls"], serde_json::json!([]));
}

#[test]
fn a_chain_panel_of_a_million_rows_drops_its_singletons_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Unit i is seen in periods i and i + 1: with unit and period effects
    // every row is a singleton in turn, so nothing is left to fit.
    let mut text = String::from("city,year,log_ci,dei,agglom\n");
    for i in 0..500_000u64 {
        for t in [i, i + 1] {
            text.push_str(&format!(
                "{i},{t},{},{},{}\n",
                (i % 7) as f64,
                (t % 5) as f64,
                (i % 3) as f64
            ));
        }
    }
    std::fs::write(d.join("chain.csv"), text).unwrap();
    let started = Instant::now();
    let args = quick(&["--data", "chain.csv", "--out", "o"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(d, &args, &["chain.csv"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_file_of_a_million_columns_is_refused_in_seconds_and_cells_are_quoted_short() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text = (0..1_000_000)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    for _ in 0..3 {
        text.push_str(&vec!["1"; 1_000_000].join(","));
        text.push('\n');
    }
    std::fs::write(d.join("wide.csv"), text).unwrap();
    let started = Instant::now();
    let args = quick(&["--data", "wide.csv", "--out", "o"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = refused(d, &args, &["no column named 'city'", "and 999970 more"]);
    assert!(err.len() < 2000, "{} characters of error", err.len());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // A runaway cell is quoted in at most ~80 characters.
    let long = "x".repeat(100_000);
    let text = panel_text(d, "20", |rows| rows[2][5] = long.clone());
    std::fs::write(d.join("long.csv"), text).unwrap();
    let args = quick(&["--data", "long.csv", "--out", "o"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = refused(d, &args, &["100000 characters"]);
    assert!(err.len() < 1000, "{err}");
}

#[test]
fn json_that_cannot_be_written_whole_fails_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medsim"))
        .args([
            "run",
            "-B",
            "99",
            "--mc-draws",
            "1000",
            "--out",
            "o",
            "-q",
            "--json",
        ])
        .current_dir(dir.path())
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot write to standard output"));
    // A reader that goes away early, with --json: an error too.
    let mut child = Command::new(env!("CARGO_BIN_EXE_medsim"))
        .args([
            "run",
            "-B",
            "99",
            "--mc-draws",
            "1000",
            "--out",
            "p",
            "-q",
            "--json",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn requests_that_cannot_fit_are_refused_at_once_with_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let timed = |args: &[&str], needles: &[&str]| {
        let started = Instant::now();
        refused(d, args, needles);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{args:?}: {:?}",
            started.elapsed()
        );
    };
    timed(
        &["run", "--mc-draws", "1000000000000", "-q", "--out", "o"],
        &["--mc-draws", "8.0 TB", "available"],
    );
    timed(
        &[
            "generate", "--out", "big.csv", "--cities", "10000000", "--years", "10000000",
        ],
        &["10000000 cities x 10000000 years", "available"],
    );
    std::fs::write(
        d.join("big.toml"),
        "name = \"big\"\n[data.synthetic]\ncities = 10000000\nyears = 10000000\n",
    )
    .unwrap();
    timed(
        &["run", "big.toml", "-q"],
        &["data.synthetic.cities", "available"],
    );
    std::fs::write(
        d.join("many.toml"),
        "name = \"many\"\n[simulation]\ndgp = \"iid\"\nn = 100\na = 0.1\nb = 0.1\nc_prime = 0.0\n\
         datasets = 1000000000000000\nreplicates = 99\nmethods = [\"sobel\", \"percentile\"]\n",
    )
    .unwrap();
    timed(
        &["simulate", "many.toml", "-q"],
        &["simulation.datasets", "available"],
    );
    // Checkpoints larger than the disk: refused before the replicates are
    // computed, unless checkpoints are off.
    timed(
        &[
            "run",
            "-B",
            "100000000000000",
            "--backend",
            "cpu",
            "-q",
            "--no-plots",
            "--out",
            "o",
        ],
        &[
            "need",
            "free",
            "scale.checkpoint_every (--checkpoint-every) = 0",
        ],
    );
    assert!(!d.join("o").exists());
    assert!(!d.join("big.csv").exists());
}

#[test]
fn a_simulation_parameter_that_is_not_a_number_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("h.toml"),
        "name = \"h\"\n[simulation]\ndgp = \"panel\"\nn = 30\nyears = 5\na = 0.19\nb = 0.029\n\
         c_prime = -0.097\nheterogeneity = nan\ndatasets = 20\nreplicates = 99\n\
         methods = [\"sobel\"]\n",
    )
    .unwrap();
    refused(
        dir.path(),
        &["simulate", "h.toml", "-q"],
        &["h.toml:9", "simulation.heterogeneity", "NaN"],
    );
}
