//! Crash-safe long runs and runs split over machines, end to end through
//! the binary: a run killed with SIGKILL part way and resumed, and runs,
//! sweeps and simulation studies split with `--shard I/N` into parts run as
//! concurrent processes and merged, each compared byte for byte with the
//! uninterrupted single run; and every refusal of `medsim merge`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::medsim;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medsim"));
    c.env("NO_COLOR", "1");
    c
}

fn ok(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "medsim failed: {text}");
    text
}

fn refused(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "expected exit 2, got: {err}");
    err
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The segment files of stream `stream` under `dir`.
fn segments(dir: &Path, stream: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(stream) && name.ends_with(".bin")
            })
            .count()
    })
}

/// Start medsim with `args` in `d` and SIGKILL it once `folder` holds a
/// segment of the stream whose files start with `stream` (`s0002-`: the
/// third resampling).
fn kill_once_stored<S: AsRef<std::ffi::OsStr>>(d: &Path, args: &[S], folder: &Path, stream: &str) {
    let mut child = bin()
        .args(args)
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while segments(folder, stream) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// The default run (groups, contrasts, label tests, a second mediator set)
/// with B replicates on the CPU engine.
fn default_run(b: &str, out: &str) -> Vec<String> {
    [
        "run",
        "-B",
        b,
        "--backend",
        "cpu",
        "--no-plots",
        "-q",
        "--out",
        out,
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_the_uninterrupted_summary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let b = "60000";
    ok(&medsim(
        d,
        &default_run(b, "whole")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));

    let mut args = default_run(b, "killed");
    args.extend(["--checkpoint-every", "0.1"].map(String::from));
    // Killed once the third resampling (the first group's) has a
    // checkpoint: the pooled model and the other mediator set are done.
    let checkpoint = d.join("killed/checkpoint");
    kill_once_stored(d, &args, &checkpoint, "s0002-");
    assert!(!d.join("killed/summary.json").exists());
    assert!(segments(&checkpoint, "s0000-") > 0);
    // A bad disk zeroed some replicates of a stored segment.
    let damaged = first_segment(&checkpoint);
    flip_middle(&damaged);

    let out = medsim(d, &["run", "--resume", "killed"]);
    let text = ok(&out);
    assert!(
        text.contains(&damaged.file_name().unwrap().to_string_lossy().into_owned())
            && text.contains("checksum does not match")
            && text.contains("computed again"),
        "{text}"
    );
    let reused: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("resumed: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resume report in: {text}"));
    assert!(reused >= 120_000, "only {reused} replicates were read back");
    assert_eq!(
        read(&d.join("killed/summary.json")),
        read(&d.join("whole/summary.json")),
        "the resumed run's summary differs from the uninterrupted run's"
    );
    // The checkpoint goes with the finished run.
    assert!(!checkpoint.exists());
}

#[test]
fn resume_refuses_a_folder_without_a_checkpoint_and_a_changed_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = refused(&medsim(d, &["run", "--resume", "nowhere"]));
    assert!(err.contains("no checkpoint or shard here"), "{err}");
    // A checkpoint whose recorded config no longer matches its command.
    std::fs::write(
        d.join("c.toml"),
        "name = \"c\"\n[data]\ncsv = \"panel.csv\"\n[resampling]\nreplicates = 2000\nbackend = \"cpu\"\n",
    )
    .unwrap();
    ok(&medsim(
        d,
        &[
            "generate",
            "--out",
            "panel.csv",
            "--cities",
            "30",
            "--years",
            "4",
        ],
    ));
    // A run killed once it has a checkpoint; then its config is edited.
    kill_once_stored(
        d,
        &[
            "run",
            "c.toml",
            "--checkpoint-every",
            "0.01",
            "-B",
            "2000000",
        ],
        &d.join("results/c/checkpoint"),
        "s0000-",
    );
    std::fs::write(
        d.join("c.toml"),
        "name = \"c\"\n[data]\ncsv = \"panel.csv\"\n[resampling]\nreplicates = 2000\nbackend = \"cpu\"\nseed = 5\n",
    )
    .unwrap();
    let err = refused(&medsim(d, &["run", "--resume", "results/c"]));
    assert!(
        err.contains("written for a different run: resampling.seed (--seed) is 5 here and 1 there"),
        "{err}"
    );
}

/// Run `args` as N concurrent shard processes in `d`, each with its
/// `--shard I/N`.
fn run_shards(d: &Path, args: &[&str], n: u64) {
    let children: Vec<_> = (0..n)
        .map(|i| {
            bin()
                .args(args)
                .args(["--shard", &format!("{i}/{n}")])
                .current_dir(d)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        ok(&c.wait_with_output().unwrap());
    }
}

/// `args` run whole into `single`, and split into `n` parts run as
/// concurrent processes, merged into `split`.
fn single_and_merged(d: &Path, args: &[&str], n: u64) {
    let with_out = |out| [args, &["--out", out]].concat();
    ok(&medsim(d, &with_out("single")));
    run_shards(d, &with_out("split"), n);
    ok(&medsim(d, &["merge", "split-shards", "-q"]));
}

#[test]
fn three_shards_merge_into_the_single_run_and_bad_sets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let single = default_run("3000", "single");
    ok(&medsim(
        d,
        &single.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let split = default_run("3000", "split");
    let split: Vec<&str> = split.iter().map(String::as_str).collect();
    run_shards(d, &split, 3);
    let shards = d.join("split-shards");
    assert!(!d.join("split/summary.json").exists());
    let part = |i: u64| shards.join(format!("{i:03}-of-003"));

    // The refusals first, while the set is intact.
    let s = |p: PathBuf| p.display().to_string();
    let err = refused(&medsim(d, &["merge", &s(part(0)), &s(part(1))]));
    assert!(err.contains("shard 2/3 missing"), "{err}");
    let err = refused(&medsim(
        d,
        &["merge", &s(part(0)), &s(part(0)), &s(part(1)), &s(part(2))],
    ));
    assert!(err.contains("shard 0/3 is given twice"), "{err}");

    // The merge: byte for byte the single run's summary.
    ok(&medsim(d, &["merge", "split-shards", "-q"]));
    assert_eq!(
        read(&d.join("split/summary.json")),
        read(&d.join("single/summary.json")),
        "the merged summary differs from the single run's"
    );
    assert!(read(&d.join("split/manifest.json")).len() > 100);

    // A part run with another seed.
    let other = tempfile::tempdir().unwrap();
    let mut seeded = split.clone();
    seeded.extend(["--seed", "99", "--shard", "2/3"]);
    ok(&medsim(other.path(), &seeded));
    let err = refused(&medsim(
        d,
        &[
            "merge",
            &s(part(0)),
            &s(part(1)),
            &s(other.path().join("split-shards/002-of-003")),
        ],
    ));
    assert!(
        err.contains("resampling.seed (--seed) is 1 here and 99 there"),
        "{err}"
    );

    // A part split into another number of parts.
    let mut four = split.clone();
    four.extend(["--shard", "3/4"]);
    ok(&medsim(other.path(), &four));
    let err = refused(&medsim(
        d,
        &[
            "merge",
            &s(part(0)),
            &s(part(1)),
            &s(part(2)),
            &s(other.path().join("split-shards/003-of-004")),
        ],
    ));
    assert!(err.contains("one of 4 parts"), "{err}");

    // Edited headers: another medsim version, an unfinished part, another
    // engine.
    let edit = |from: &str, to: &str| {
        let copy = tempfile::tempdir().unwrap();
        for i in 0..3 {
            let target = copy.path().join(format!("{i:03}-of-003"));
            std::fs::create_dir_all(&target).unwrap();
            for e in std::fs::read_dir(part(i)).unwrap().flatten() {
                std::fs::copy(e.path(), target.join(e.file_name())).unwrap();
            }
        }
        let header = copy.path().join("001-of-003/run.json");
        let text = String::from_utf8(read(&header)).unwrap();
        assert!(text.contains(from), "{from} not in {text}");
        std::fs::write(&header, text.replacen(from, to, 1)).unwrap();
        copy
    };
    let copy = edit("\"medsim\": \"", "\"medsim\": \"0.0.0-other");
    let err = refused(&medsim(d, &["merge", &s(copy.path().to_path_buf())]));
    assert!(err.contains("written by medsim 0.0.0-other"), "{err}");
    let copy = edit("\"complete\": true", "\"complete\": false");
    let err = refused(&medsim(d, &["merge", &s(copy.path().to_path_buf())]));
    assert!(
        err.contains("shard 1/3") && err.contains("did not finish"),
        "{err}"
    );
    let copy = edit(
        "\"engine\": {\n    \"backend\": \"cpu\"",
        "\"engine\": {\n    \"backend\": \"gpu\"",
    );
    let err = refused(&medsim(d, &["merge", &s(copy.path().to_path_buf())]));
    assert!(err.contains("different engines"), "{err}");

    // Overlapping ranges: part 0's replicates also stored in part 1.
    let copy = edit("\"complete\": true", "\"complete\": true");
    for e in std::fs::read_dir(part(0)).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "bin") {
            let name = e
                .file_name()
                .to_string_lossy()
                .replace("-000000000000000-", "-000000000000001-");
            // A segment claiming replicates 1 .. of part 0's range: rewrite
            // its header's first replicate to match the name.
            let mut bytes = read(&e.path());
            bytes[16..24].copy_from_slice(&1u64.to_le_bytes());
            let width = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
            bytes.truncate(bytes.len() - 4 - width * 8);
            let crc = crc32c::crc32c(&bytes);
            bytes.extend_from_slice(&crc.to_le_bytes());
            std::fs::write(copy.path().join("001-of-003").join(name), bytes).unwrap();
        }
    }
    let err = refused(&medsim(d, &["merge", &s(copy.path().to_path_buf())]));
    assert!(err.contains("are in two shards"), "{err}");

    // A truncated segment.
    let copy = edit("\"complete\": true", "\"complete\": true");
    let seg = std::fs::read_dir(copy.path().join("002-of-003"))
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "bin"))
        .unwrap()
        .path();
    let bytes = read(&seg);
    std::fs::write(&seg, &bytes[..bytes.len() - 8]).unwrap();
    let err = refused(&medsim(d, &["merge", &s(copy.path().to_path_buf())]));
    assert!(
        err.contains("its length does not match its replicates"),
        "{err}"
    );

    // Bytes changed in the middle of a segment, its length intact.
    let copy = edit("\"complete\": true", "\"complete\": true");
    let seg = first_segment(&copy.path().join("001-of-003"));
    flip_middle(&seg);
    let err = refused(&medsim(d, &["merge", &s(copy.path().to_path_buf())]));
    assert!(
        err.contains("checksum does not match") && err.contains(&s(seg)),
        "{err}"
    );
}

/// The first segment file in `dir`, by name.
fn first_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    segs.sort();
    segs.remove(0)
}

/// Zero 64 bytes in the middle of a segment's rows (as a bad disk
/// might), keeping its length.
fn flip_middle(seg: &Path) {
    let mut bytes = read(seg);
    let mid = bytes.len() / 2;
    assert!(bytes[mid..mid + 64].iter().any(|b| *b != 0));
    bytes[mid..mid + 64].fill(0);
    std::fs::write(seg, bytes).unwrap();
}

#[test]
fn a_changed_data_file_is_refused_by_the_merge() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&medsim(
        d,
        &[
            "generate",
            "--out",
            "panel.csv",
            "--cities",
            "40",
            "--years",
            "5",
        ],
    ));
    let args = [
        "run",
        "--data",
        "panel.csv",
        "-B",
        "500",
        "--backend",
        "cpu",
        "--no-plots",
        "-q",
        "--out",
        "r",
    ];
    run_shards(d, &args, 2);
    ok(&medsim(
        d,
        &[
            "generate",
            "--out",
            "panel.csv",
            "--cities",
            "40",
            "--years",
            "5",
            "--seed",
            "3",
            "--force",
        ],
    ));
    let err = refused(&medsim(d, &["merge", "r-shards"]));
    assert!(
        err.contains("panel.csv") && err.contains("changed"),
        "{err}"
    );
}

#[test]
fn shard_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["3/3", "1/0", "a/2", "2"] {
        let err = refused(&medsim(dir.path(), &["run", "-B", "10", "--shard", bad]));
        assert!(err.contains("--shard"), "{bad}: {err}");
    }
    let err = refused(&medsim(
        dir.path(),
        &["run", "-B", "10", "--checkpoint-every=-1"],
    ));
    assert!(err.contains("--checkpoint-every"), "{err}");
    let err = refused(&medsim(dir.path(), &["merge", "."]));
    assert!(err.contains("holds no shard"), "{err}");
    let err = refused(&medsim(
        dir.path(),
        &["run", "--scheme", "none", "--shard", "0/2"],
    ));
    assert!(err.contains("this run has none"), "{err}");
    // --resume runs the checkpoint's own command line: no other settings.
    for args in [
        &["run", "--resume", "r", "-B", "5"][..],
        &["sweep", "--resume", "r", "c.toml"],
        &["simulate", "--resume", "r", "--datasets", "5"],
    ] {
        let err = refused(&medsim(dir.path(), args));
        assert!(err.contains("takes no config file or setting"), "{err}");
    }
}

const SWEEP: &str = r#"name = "sw"
[resampling]
replicates = 800
backend = "cpu"
[model]
groups = []
also_mediators = []
[data.synthetic]
cities = 40
years = 5
[sweep]
"resampling.seed" = [1, 2, 3]
"#;

#[test]
fn a_sweep_split_in_two_merges_into_the_single_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("sw.toml"), SWEEP).unwrap();
    single_and_merged(d, &["sweep", "sw.toml", "--no-plots", "-q"], 2);
    assert_eq!(
        read(&d.join("split/sweep.csv")),
        read(&d.join("single/sweep.csv"))
    );
    for p in ["001", "002", "003"] {
        assert_eq!(
            read(&d.join(format!("split/points/{p}/summary.json"))),
            read(&d.join(format!("single/points/{p}/summary.json"))),
            "point {p}"
        );
    }
}

const STUDY: &str = r#"name = "st"
[simulation]
dgp = "iid"
n = [50, 80]
a = 0.3
b = 0.3
c_prime = 0.0
datasets = 400
replicates = 200
methods = ["sobel", "percentile", "bca"]
seed = 4
[resampling]
backend = "cpu"
"#;

/// simulation.json less its timings (seconds and rates).
fn without_seconds(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&read(path)).unwrap();
    if let Some(o) = v.as_object_mut() {
        for timing in ["seconds", "fits_per_second", "replicates_per_second"] {
            assert!(o.remove(timing).is_some(), "{timing}");
        }
    }
    v
}

#[test]
fn a_simulation_study_split_in_three_merges_and_a_killed_one_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("st.toml"), STUDY).unwrap();
    single_and_merged(d, &["simulate", "st.toml", "--no-plots", "-q"], 3);
    assert_eq!(
        read(&d.join("split/simulation.csv")),
        read(&d.join("single/simulation.csv"))
    );
    assert_eq!(
        without_seconds(&d.join("split/simulation.json")),
        without_seconds(&d.join("single/simulation.json"))
    );

    // Killed once the first cell's datasets have a checkpoint.
    let checkpoint = d.join("killed/checkpoint");
    kill_once_stored(
        d,
        &[
            "simulate",
            "st.toml",
            "--no-plots",
            "-q",
            "--out",
            "killed",
            "--checkpoint-every",
            "0.05",
            "--threads",
            "1",
        ],
        &checkpoint,
        "s0000-",
    );
    assert!(!d.join("killed/simulation.json").exists());
    ok(&medsim(d, &["simulate", "--resume", "killed", "-q"]));
    assert_eq!(
        read(&d.join("killed/simulation.csv")),
        read(&d.join("single/simulation.csv"))
    );
}

/// The threshold analysis's bootstrap (three F tests, then the regime
/// mediation's run) split in two parts merges into the single run's
/// threshold.json and mediation summary byte for byte, and a run killed
/// once its first test has a checkpoint resumes to the uninterrupted
/// one's.
#[test]
fn a_threshold_analysis_split_in_two_merges_and_a_killed_one_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/threshold.toml"),
    )
    .unwrap();
    let config = shipped.replace("level = 0.95", "level = 0.95\nmediation = true");
    std::fs::write(d.join("t.toml"), config).unwrap();
    let args = [
        "threshold",
        "t.toml",
        "-B",
        "300",
        "--backend",
        "cpu",
        "--no-plots",
        "-q",
    ];
    single_and_merged(d, &args, 2);
    for file in ["threshold.json", "mediation/summary.json", "threshold.txt"] {
        assert_eq!(
            read(&d.join("split").join(file)),
            read(&d.join("single").join(file)),
            "{file}"
        );
    }
    let t: serde_json::Value =
        serde_json::from_slice(&read(&d.join("single/threshold.json"))).unwrap();
    assert!(t["steps"][2]["p_value"].as_f64().is_some());

    // Killed once the first test has a checkpoint, then resumed.
    let long = |out: &str| -> Vec<String> {
        [
            "threshold",
            "t.toml",
            "-B",
            "20000",
            "--backend",
            "cpu",
            "--no-plots",
            "-q",
            "--threads",
            "1",
            "--out",
            out,
        ]
        .map(String::from)
        .to_vec()
    };
    ok(&medsim(
        d,
        &long("whole").iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let mut killed = long("killed");
    killed.extend(["--checkpoint-every", "0.05"].map(String::from));
    kill_once_stored(d, &killed, &d.join("killed/checkpoint"), "s0000-");
    assert!(!d.join("killed/threshold.json").exists());
    ok(&medsim(d, &["threshold", "--resume", "killed", "-q"]));
    assert_eq!(
        read(&d.join("killed/threshold.json")),
        read(&d.join("whole/threshold.json"))
    );
}

#[test]
fn gpu_shards_merge_into_the_single_gpu_run() {
    if !common::has_gpu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["run", "-B", "400", "--backend", "gpu", "--no-plots", "-q"];
    single_and_merged(d, &args, 2);
    let summary = read(&d.join("split/summary.json"));
    assert!(String::from_utf8_lossy(&summary).contains("\"backend\": \"gpu\""));
    assert_eq!(summary, read(&d.join("single/summary.json")));
}

/// scripts/cluster's Slurm job array run here as Slurm would: each task
/// of shard.sbatch as a process with its SLURM_ARRAY_TASK_ID and
/// SLURM_ARRAY_TASK_COUNT, then merge.sbatch; the result is the single
/// study's.
#[test]
fn the_slurm_scripts_split_and_merge_a_study() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("st.toml"), STUDY).unwrap();
    ok(&medsim(
        d,
        &["simulate", "st.toml", "--no-plots", "-q", "--out", "single"],
    ));
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster");
    let script = |name: &str, task: Option<u64>| {
        let mut c = Command::new("bash");
        c.arg(scripts.join(name))
            .current_dir(d)
            .env("MEDSIM", env!("CARGO_BIN_EXE_medsim"))
            .env("MEDSIM_COMMAND", "simulate")
            .env("MEDSIM_CONFIG", "st.toml")
            .env("MEDSIM_OUT", "results/st")
            .env("MEDSIM_ARGS", "--no-plots")
            .env("SLURM_CPUS_PER_TASK", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(i) = task {
            c.env("SLURM_ARRAY_TASK_ID", i.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", "4");
        }
        c.spawn().unwrap()
    };
    let tasks: Vec<_> = (0..4).map(|i| script("shard.sbatch", Some(i))).collect();
    for t in tasks {
        ok(&t.wait_with_output().unwrap());
    }
    ok(&script("merge.sbatch", None).wait_with_output().unwrap());
    assert_eq!(
        read(&d.join("results/st/simulation.csv")),
        read(&d.join("single/simulation.csv"))
    );
}

/// The Slurm scripts on a real Slurm: `submit.sh` queues a job array of
/// four parts of the default run and the merge (afterok) with `sbatch`;
/// the merged summary is the unsplit run's, byte for byte. Needs a running
/// Slurm (`SLURM_CONF`, which `.ci/run` starts with
/// scripts/cluster/local-slurm.sh); under CI its absence is a failure.
#[test]
fn the_slurm_scripts_run_on_a_real_slurm() {
    let conf = std::env::var("SLURM_CONF")
        .ok()
        .filter(|c| Path::new(c).exists());
    let Some(conf) = conf else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "no Slurm under CI: .ci/run starts one (scripts/cluster/local-slurm.sh)"
        );
        eprintln!("SKIPPED: no Slurm (set SLURM_CONF; scripts/cluster/local-slurm.sh starts one)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = repo.join("configs/paper.toml");
    let config = config.to_str().unwrap();
    let flags = ["-B", "2000", "--backend", "cpu", "--no-plots"];
    ok(&medsim(
        d,
        &[&["run", config, "-q", "--out", "single"][..], &flags[..]].concat(),
    ));
    let out = Command::new("bash")
        .arg(repo.join("scripts/cluster/submit.sh"))
        .args(["run", config, "results/paper", "4"])
        .args(flags)
        .current_dir(d)
        .env("SLURM_CONF", &conf)
        .env("MEDSIM", env!("CARGO_BIN_EXE_medsim"))
        .env(
            "MEDSIM_SBATCH",
            "--cpus-per-task=1 --mem=500M --time=00:10:00",
        )
        .output()
        .unwrap();
    let text = ok(&out);
    let merge = text
        .split("merge ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no merge job in: {text}"))
        .to_string();
    let started = Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-j", &merge, "-o", "%T"])
            .env("SLURM_CONF", &conf)
            .output()
            .unwrap();
        let state = String::from_utf8_lossy(&q.stdout).trim().to_string();
        if state.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the merge job is still {state} after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let logs: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert_eq!(logs.len(), 5, "four shard logs and a merge log: {logs:?}");
    let merged = d.join("results/paper/summary.json");
    assert!(merged.exists(), "no merged summary; job logs: {logs:?}");
    assert_eq!(read(&merged), read(&d.join("single/summary.json")));
}

#[test]
fn a_killed_sweep_resumes_to_the_uninterrupted_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("sw.toml"),
        // Enough replicates that a point outlasts its first checkpoint
        // (0.1 s) on a fast CPU engine: at 40000 a point took 0.1 s and
        // could end before it was killed.
        "name = \"sw\"\n[resampling]\nreplicates = 400000\nbackend = \"cpu\"\n[sweep]\n\"resampling.seed\" = [1, 2]\n",
    )
    .unwrap();
    ok(&medsim(
        d,
        &["sweep", "sw.toml", "--no-plots", "-q", "--out", "whole"],
    ));
    // Killed in the second point, once it has a checkpoint.
    let second = d.join("killed/checkpoint/p002");
    kill_once_stored(
        d,
        &[
            "sweep",
            "sw.toml",
            "--no-plots",
            "-q",
            "--out",
            "killed",
            "--checkpoint-every",
            "0.1",
        ],
        &second,
        "s0000-",
    );
    assert!(segments(&d.join("killed/checkpoint/p001"), "s0000-") > 0);
    let text = ok(&medsim(d, &["sweep", "--resume", "killed", "-q"]));
    assert!(text.contains("sweep sw: 2 points"), "{text}");
    assert_eq!(
        read(&d.join("killed/sweep.csv")),
        read(&d.join("whole/sweep.csv"))
    );
    for p in ["1", "2"] {
        assert_eq!(
            read(&d.join(format!("killed/points/00{p}/summary.json"))),
            read(&d.join(format!("whole/points/00{p}/summary.json")))
        );
    }
}

/// Ranges of stored segments, per stream, in a checkpoint folder.
fn ranges(dir: &Path) -> std::collections::BTreeMap<u32, Vec<(u64, u64)>> {
    let mut out: std::collections::BTreeMap<u32, Vec<(u64, u64)>> = Default::default();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".bin") else {
            continue;
        };
        let parts: Vec<&str> = stem[1..].split('-').collect();
        out.entry(parts[0].parse().unwrap())
            .or_default()
            .push((parts[1].parse().unwrap(), parts[2].parse().unwrap()));
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

/// Beyond the memory budget the aggregator reads every replicate twice
/// (exact quantiles in two passes): the checkpoint holds each replicate
/// once, and a kill resumes to the same summary. (That the second pass
/// reads back rather than recomputes is checkpoint.rs's unit test.)
#[test]
fn a_streamed_run_checkpoints_each_replicate_once_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut args = default_run("80000", "whole");
    args.extend(["--memory", "1"].map(String::from));
    ok(&medsim(
        d,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let mut args = default_run("80000", "killed");
    args.extend(["--memory", "1", "--checkpoint-every", "0.1"].map(String::from));
    let checkpoint = d.join("killed/checkpoint");
    kill_once_stored(d, &args, &checkpoint, "s0002-");
    let stored = ranges(&checkpoint);
    for (stream, list) in &stored {
        for w in list.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "stream {stream}: {:?} and {:?} overlap",
                w[0],
                w[1]
            );
        }
    }
    // The first two resamplings are whole, each replicate stored once.
    for stream in [0, 1] {
        let total: u64 = stored[&stream].iter().map(|(a, b)| b - a).sum();
        assert_eq!(total, 80_000, "stream {stream}");
    }
    ok(&medsim(d, &["run", "--resume", "killed"]));
    assert_eq!(
        read(&d.join("killed/summary.json")),
        read(&d.join("whole/summary.json"))
    );
}
