//! medsim._medsim: the compiled half of the Python package. Thin by
//! design: it turns a config (as JSON, built by `medsim/__init__.py` from
//! keyword arguments or read from a file) and a data frame's columns into
//! medsim's `RunPlan`, runs it through the library with the GIL released,
//! and hands back summary.json's text and the kept replicates. Every
//! number comes from the same library calls as the CLI's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use medsim::{Config, DataSource, Error, Origin, SyntheticParams, Table};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pyo3::create_exception!(
    _medsim,
    MedsimError,
    PyValueError,
    "An error medsim reports: bad data (which row, which column), a bad option \
     (which keyword or config key, what was expected), or a failed GPU or \
     numerical step."
);

/// The exception for a library error (its message is the CLI's).
fn to_py(e: Error) -> PyErr {
    MedsimError::new_err(e.to_string())
}

/// A data frame's columns, copied out of Python: numbers (NaN: missing)
/// and labels (unit, time, cluster, group: text, "" missing).
struct Columns {
    source: String,
    numeric: Vec<(String, Vec<f64>)>,
    labels: Vec<(String, Vec<String>)>,
}

impl Columns {
    fn table(&self) -> medsim::Result<Table> {
        let numeric: Vec<(&str, &[f64])> = self
            .numeric
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let labels: Vec<(&str, &[String])> = self
            .labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        Table::from_columns(&self.source, &numeric, &labels)
    }
}

/// Run the analysis a config describes.
///
/// `config_json`: the config (`medsim::Config`) as JSON. `keywords`: config
/// key -> the Python keyword that set it, so an error names the keyword.
/// `origin`: the config file's path (its relative paths and its errors'
/// lines), or None when the keywords made it. `numeric`/`labels`: a data
/// frame's columns, which replace the config's data source when given
/// (`source` names them in the summary). Returns summary.json's text, the
/// table the CLI prints, the indirect effect's first draws (those the
/// CLI plots) and, with `keep_replicates`, the replicates' effect names and values (one row
/// per replicate). Ctrl-C stops the run between chunks of replicates with
/// KeyboardInterrupt.
#[pyfunction]
#[pyo3(signature = (config_json, keywords, origin, numeric, labels, source, keep_replicates))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn run<'py>(
    py: Python<'py>,
    config_json: &str,
    keywords: BTreeMap<String, String>,
    origin: Option<PathBuf>,
    numeric: Vec<(String, PyReadonlyArray1<'py, f64>)>,
    labels: Vec<(String, Vec<String>)>,
    source: Option<String>,
    keep_replicates: bool,
) -> PyResult<(
    String,
    String,
    Bound<'py, PyArray1<f64>>,
    Option<(Vec<String>, Bound<'py, PyArray2<f64>>)>,
)> {
    let config: Config = serde_json::from_str(config_json)
        .map_err(|e| MedsimError::new_err(format!("the analysis' options: {e}")))?;
    let origin = match &origin {
        Some(path) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let mut o = Origin::file(path, &text);
            o.flags = keywords;
            o
        }
        None => Origin {
            name: "medsim (Python)".into(),
            dir: std::env::current_dir().unwrap_or_default(),
            text: String::new(),
            flags: keywords,
            swept: Vec::new(),
        },
    };
    let columns = source.map(|source| Columns {
        source,
        numeric: numeric
            .into_iter()
            .map(|(name, values)| (name, values.as_array().to_vec()))
            .collect(),
        labels,
    });
    let interrupted: Mutex<Option<PyErr>> = Mutex::new(None);
    let progress = |_: u64, _: u64| signals(&interrupted);
    let outcome = py.detach(|| -> medsim::Result<_> {
        let mut plan = config.plan(&origin)?;
        if let Some(columns) = &columns {
            plan.data = DataSource::Table(columns.table()?);
        }
        plan.keep_replicates = keep_replicates;
        let mut summary = medsim::run(&plan, &progress)?;
        let replicates = summary.replicates.take();
        let json = serde_json::to_string(&summary).map_err(|e| Error::Numerical(e.to_string()))?;
        let draws = std::mem::take(&mut summary.indirect_draws);
        Ok((json, medsim::render_summary(&summary), draws, replicates))
    });
    let (json, text, draws, replicates) = outcome.map_err(|e| raised(e, &interrupted))?;
    // Present exactly when kept; the row-major values become the array
    // without a copy per row.
    let replicates = match replicates {
        Some(r) => {
            let shape = [r.len(), r.keys.len()];
            let array = PyArray1::from_vec(py, r.values)
                .reshape(shape)
                .map_err(|e| MedsimError::new_err(format!("replicates: {e}")))?;
            Some((r.keys, array))
        }
        None => None,
    };
    Ok((json, text, PyArray1::from_vec(py, draws), replicates))
}

/// Ctrl-C as a run's progress sees it: the run stops with
/// `Error::Interrupted`, and `slot` keeps Python's KeyboardInterrupt.
fn signals(slot: &Mutex<Option<PyErr>>) -> medsim::Result<()> {
    Python::attach(|py| py.check_signals()).map_err(|e| {
        if let Ok(mut s) = slot.lock() {
            *s = Some(e);
        }
        Error::Interrupted("stopped from Python".into())
    })
}

/// A library error as Python's exception: the stored KeyboardInterrupt
/// for an interruption, else MedsimError.
fn raised(e: Error, slot: &Mutex<Option<PyErr>>) -> PyErr {
    match e {
        Error::Interrupted(message) => slot
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or_else(|| MedsimError::new_err(message)),
        e => to_py(e),
    }
}

/// A sweep config's points run one after another, as `medsim sweep`
/// runs them: sweep.csv's text.
#[pyfunction]
fn sweep(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    let (_, mut origin) = medsim::read_config(&path).map_err(to_py)?;
    let interrupted: Mutex<Option<PyErr>> = Mutex::new(None);
    let progress = |_: u64, _: u64| signals(&interrupted);
    py.detach(|| -> medsim::Result<String> {
        let (keys, points) = medsim::sweep_points(&origin)?;
        origin.swept = keys.clone();
        let mut rows = Vec::new();
        for (k, point) in points.iter().enumerate() {
            let plan = point.config.plan(&origin)?;
            let summary = medsim::run(&plan, &progress)?;
            rows.extend(medsim::sweep_rows(k + 1, &point.values, &summary));
        }
        medsim::sweep_csv(&medsim::sweep_header(&keys), &rows)
    })
    .map_err(|e| raised(e, &interrupted))
}

/// A simulation study's config run as `medsim simulate` runs it:
/// simulation.csv's and simulation.json's texts. Its datasets run on
/// worker threads, where Python's signals cannot be seen, so this thread
/// watches for Ctrl-C while they run and tells them to stop.
#[pyfunction]
#[pyo3(signature = (path, threads))]
fn simulate(py: Python<'_>, path: PathBuf, threads: usize) -> PyResult<(String, String)> {
    let (config, origin) = medsim::read_config(&path).map_err(to_py)?;
    let interrupted: Mutex<Option<PyErr>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let progress = |_: u64, _: u64| match stop.load(Ordering::Relaxed) {
        true => Err(Error::Interrupted("stopped from Python".into())),
        false => Ok(()),
    };
    py.detach(|| -> medsim::Result<(String, String)> {
        let study = config.study(&origin)?;
        let (cells, sizes, seconds) = std::thread::scope(|scope| {
            let study = scope.spawn(|| medsim::simulate(&study, threads, &progress));
            while !study.is_finished() {
                if signals(&interrupted).is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            study
                .join()
                .unwrap_or_else(|_| Err(Error::Numerical("the simulation thread failed".into())))
        })?;
        let summary = medsim::SimulationSummary::new(&config.name, &study, cells, sizes, seconds);
        let json = serde_json::to_string(&summary).map_err(|e| Error::Numerical(e.to_string()))?;
        Ok((summary.csv(), json))
    })
    .map_err(|e| raised(e, &interrupted))
}

/// A threshold config run as `medsim threshold` runs it (its
/// `[threshold]` section; `replicates` as -B): threshold.json's text, the
/// printed report, and with regime-dependent mediation its run's
/// summary.json. Ctrl-C stops the bootstrap between chunks.
#[pyfunction]
#[pyo3(signature = (path, replicates))]
fn threshold(
    py: Python<'_>,
    path: PathBuf,
    replicates: Option<usize>,
) -> PyResult<(String, String, Option<String>)> {
    let (config, origin) = medsim::read_config(&path).map_err(to_py)?;
    let interrupted: Mutex<Option<PyErr>> = Mutex::new(None);
    let progress = |_: u64, _: u64| signals(&interrupted);
    py.detach(|| -> medsim::Result<(String, String, Option<String>)> {
        let mut plan = config.threshold_plan(&origin)?;
        // As -B: the F tests' replicates and the regime mediation run's.
        if let Some(b) = replicates {
            plan.replicates = b;
            if let Some(r) = plan.mediation.as_mut().and_then(|m| m.resampling.as_mut()) {
                r.replicates = b as u64;
            }
        }
        let (summary, mediation) = medsim::threshold(&plan, None, &progress)?;
        let json = serde_json::to_string(&summary).map_err(|e| Error::Numerical(e.to_string()))?;
        let mediation = mediation
            .map(|m| serde_json::to_string(&m))
            .transpose()
            .map_err(|e| Error::Numerical(e.to_string()))?;
        Ok((json, medsim::render_threshold(&summary), mediation))
    })
    .map_err(|e| raised(e, &interrupted))
}

/// The study-calibrated synthetic panel: its header and its rows as text
/// (exactly what `medsim generate` writes).
#[pyfunction]
#[pyo3(signature = (seed, cities, years))]
fn generate(
    py: Python<'_>,
    seed: u64,
    cities: usize,
    years: usize,
) -> PyResult<(Vec<String>, Vec<Vec<String>>)> {
    let params = SyntheticParams {
        seed,
        cities,
        years,
        ..SyntheticParams::default()
    };
    let table = py
        .detach(|| DataSource::Synthetic(params).load())
        .map_err(to_py)?;
    Ok((table.headers, table.rows))
}

/// The embedded default config (configs/paper.toml) as JSON.
#[pyfunction]
fn default_config() -> PyResult<String> {
    let (config, _) = medsim::default_config();
    serde_json::to_string(&config).map_err(|e| MedsimError::new_err(e.to_string()))
}

/// A config file, parsed and checked as the CLI reads it, as JSON.
#[pyfunction]
fn read_config(path: PathBuf) -> PyResult<String> {
    let (config, _) = medsim::read_config(&path).map_err(to_py)?;
    serde_json::to_string(&config).map_err(|e| MedsimError::new_err(e.to_string()))
}

/// The GPU adapters wgpu finds, each as (name, device type, API, driver,
/// hardware, f64 shaders).
#[pyfunction]
fn devices(py: Python<'_>) -> Vec<(String, String, String, String, bool, bool)> {
    py.detach(medsim::adapters)
        .into_iter()
        .map(|a| {
            (
                a.name,
                a.device_type,
                a.api,
                a.driver,
                a.hardware,
                a.shader_f64,
            )
        })
        .collect()
}

#[pymodule]
fn _medsim(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MedsimError", m.py().get_type::<MedsimError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(threshold, m)?)?;
    m.add_function(wrap_pyfunction!(default_config, m)?)?;
    m.add_function(wrap_pyfunction!(read_config, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    Ok(())
}
