//! The library's chosen API (`medsim::*`), as the Python package calls
//! it: a run from columns in memory is the run of the same data from a CSV.

use medsim::internals::data::synthetic::generate;
use medsim::internals::data::table::write_csv;
use medsim::{
    BackendChoice, DataSource, ResampleSpec, RunPlan, SyntheticParams, Table, default_spec,
};

/// The synthetic panel's columns as a data frame would hold them: numbers
/// as f64 (NaN where missing), the unit, period and group columns as text.
fn frame(table: &Table) -> (Vec<(String, Vec<f64>)>, Vec<(String, Vec<String>)>) {
    let labels = ["city", "year", "region", "size"];
    let mut numeric = vec![];
    let mut text = vec![];
    for (c, name) in table.headers.iter().enumerate() {
        let cells = table.rows.iter().map(|r| r[c].clone());
        if labels.contains(&name.as_str()) {
            text.push((name.clone(), cells.collect()));
        } else {
            numeric.push((
                name.clone(),
                cells
                    .map(|v| v.parse::<f64>().unwrap_or(f64::NAN))
                    .collect(),
            ));
        }
    }
    (numeric, text)
}

#[test]
fn a_run_from_columns_in_memory_equals_the_run_from_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let params = SyntheticParams {
        cities: 60,
        ..SyntheticParams::default()
    };
    let table = generate(params);
    let csv = dir.path().join("panel.csv");
    write_csv(&table, &csv).unwrap();
    let (numeric, text) = frame(&table);
    let numeric: Vec<(&str, &[f64])> = numeric.iter().map(|(n, c)| (n.as_str(), &c[..])).collect();
    let text: Vec<(&str, &[String])> = text.iter().map(|(n, c)| (n.as_str(), &c[..])).collect();
    let in_memory = Table::from_columns("frame", &numeric, &text).unwrap();
    let resampling = ResampleSpec {
        replicates: 500,
        backend: BackendChoice::Cpu,
        ..ResampleSpec::default()
    };
    let summary = |data: DataSource| {
        let mut plan = RunPlan::new("api", data, default_spec());
        plan.resampling = Some(resampling.clone());
        plan.group_by = vec!["region".into()];
        let mut s = medsim::run(&plan, &|_, _| Ok(())).unwrap();
        s.data.source = String::new();
        serde_json::to_string(&s).unwrap()
    };
    assert_eq!(
        summary(DataSource::Table(in_memory)),
        summary(DataSource::file(csv))
    );
}

#[test]
fn columns_of_different_lengths_are_refused_by_name() {
    let x = [1.0, 2.0, 3.0];
    let y = [1.0, 2.0];
    let e = Table::from_columns("frame", &[("x", &x[..]), ("y", &y[..])], &[]).unwrap_err();
    assert!(
        e.to_string()
            .contains("column 'y' has 2 values where the first column has 3"),
        "{e}"
    );
    let unit = vec!["a".to_string(); 3];
    let e = Table::from_columns("frame", &[("x", &x[..])], &[("x", &unit[..])]).unwrap_err();
    assert!(e.to_string().contains("'x' appears twice"), "{e}");
}

/// Replicates on request: `keep_replicates` hands back the run's own B
/// replicates (every effect but none twice computed), whose moments are the
/// summary's bootstrap mean and SD, and whose indirect column starts the
/// plot's draws; without it the summary holds none.
#[test]
fn kept_replicates_are_the_runs_own() {
    let data = DataSource::Synthetic(SyntheticParams {
        cities: 40,
        ..SyntheticParams::default()
    });
    let mut plan = RunPlan::new("kept", data, default_spec());
    plan.inference.mc_draws = 1000;
    plan.group_by.clear();
    plan.resampling = Some(ResampleSpec {
        replicates: 199,
        backend: BackendChoice::Cpu,
        ..Default::default()
    });
    let plain = medsim::run(&plan, &|_, _| Ok(())).unwrap();
    assert!(plain.replicates.is_none());
    plan.keep_replicates = true;
    let s = medsim::run(&plan, &|_, _| Ok(())).unwrap();
    let kept = s.replicates.as_ref().unwrap();
    assert_eq!(kept.len(), 199);
    let keys: Vec<&String> = s.effects.keys().collect();
    assert_eq!(kept.keys.iter().collect::<Vec<_>>(), keys);
    for key in &kept.keys {
        let column: Vec<f64> = kept
            .column(key)
            .unwrap()
            .filter(|v| v.is_finite())
            .collect();
        let n = column.len() as f64;
        let mean = column.iter().sum::<f64>() / n;
        let boot = s.effects[key].bootstrap.unwrap();
        assert!(
            (mean - boot.mean).abs() <= 1e-9 * boot.mean.abs().max(1e-12),
            "{key}: {mean} vs {}",
            boot.mean
        );
    }
    let indirect: Vec<f64> = kept.column("indirect").unwrap().collect();
    assert_eq!(s.indirect_draws, indirect);
    // The same numbers as the run without kept replicates.
    assert_eq!(
        serde_json::to_string(&plain).unwrap(),
        serde_json::to_string(&s).unwrap()
    );
}

/// A progress callback that returns an error stops the run between chunks
/// of replicates (how Ctrl-C reaches a run in Python), and the run's error
/// is that error.
#[test]
fn a_progress_error_stops_the_run() {
    use std::cell::Cell;
    let mut plan = RunPlan::new(
        "api",
        DataSource::Synthetic(SyntheticParams::default()),
        default_spec(),
    );
    plan.group_by.clear();
    plan.mediator_sets.clear();
    plan.resampling = Some(ResampleSpec {
        replicates: 5_000_000,
        backend: BackendChoice::Cpu,
        ..ResampleSpec::default()
    });
    let calls = Cell::new(0u64);
    let result = medsim::run(&plan, &|done, total| {
        calls.set(calls.get() + 1);
        assert!(done < total, "stopped before the last chunk");
        Err(medsim::Error::Interrupted("stop".into()))
    });
    assert!(matches!(result, Err(medsim::Error::Interrupted(_))));
    assert_eq!(calls.get(), 1, "no chunk after the error");
}

/// A simulation study's progress runs on its workers; an error it returns
/// stops the study (no dataset starts after it) and is the study's error.
#[test]
fn a_progress_error_stops_a_simulation_study() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.toml");
    let text = "name = \"long\"\n[simulation]\ndgp = \"iid\"\nn = [60]\na = 0.39\n\
                b = 0.39\ndatasets = 100000\nreplicates = 199\nmethods = [\"percentile\"]\n";
    std::fs::write(&path, text).unwrap();
    let (config, origin) = medsim::read_config(&path).unwrap();
    let study = config.study(&origin).unwrap();
    let calls = AtomicU64::new(0);
    let result = medsim::simulate(&study, 2, &|done, _| {
        calls.fetch_add(1, Ordering::Relaxed);
        match done {
            10.. => Err(medsim::Error::Interrupted("stop".into())),
            _ => Ok(()),
        }
    });
    assert!(matches!(result, Err(medsim::Error::Interrupted(_))));
    // Datasets already running when the error came finish: one per worker.
    let calls = calls.load(Ordering::Relaxed);
    assert!((10..=12).contains(&calls), "{calls} datasets ran");
}
