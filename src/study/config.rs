//! Config files: one TOML file describes an analysis (its data, model,
//! resampling, inference, sensitivity analysis and output); a `[sweep]`
//! table in it describes many (`crate::study::sweep`). Parsing is strict: an
//! unknown key is refused with the nearest valid key suggested, a value of
//! the wrong type or out of range is refused naming the file, line and
//! key. Command-line flags override the file's values ([`Config`] is plain
//! data the CLI edits before [`Config::plan`] checks it), and errors on a
//! value a flag gave name the flag. The embedded default run is
//! `configs/paper.toml`, compiled in as [`PAPER`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::data::robustness::Robustness;
use crate::data::synthetic::{CONTROLS, SyntheticParams};
use crate::error::{Error, Result};
use crate::model::confounding::ConfoundingSpec;
use crate::model::spec::{
    FixedEffects, InferenceSpec, Interaction, ModelSpec, Moderation, ModeratorValues, check_level,
};
use crate::resample::engine::Precision;
use crate::resample::intervals::Method;
use crate::resample::scheme::{Scheme, WildWeights};
use crate::resample::spec::{BackendChoice, ResampleSpec};
use crate::study::combine::Combine;
use crate::study::run::{DataSource, RunPlan};

/// The embedded default run: the study's model on the synthetic panel.
pub const PAPER: &str = include_str!("../../configs/paper.toml");

/// One analysis, as a config file says it. Every key has a default, so a
/// file need only say what differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Name of the run: its results go to `results/<name>/`.
    pub name: String,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub resampling: ResamplingConfig,
    pub inference: InferenceConfig,
    /// The sensitivity analysis for mediator-outcome confounding, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<SensitivityConfig>,
    pub output: OutputConfig,
    /// A simulation study (`medsim simulate`), when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulation: Option<SimulationConfig>,
    /// The panel threshold model (`medsim threshold`), when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<ThresholdConfig>,
    /// Config keys (dotted, e.g. "model.controls") mapped to lists of
    /// values, for `medsim sweep`; `combine = "grid"` (default) or "zip".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<toml::Table>,
}

/// `[data]`: where the panel comes from, its unit and period columns, and
/// the robustness transformations applied before the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The data file with a header row (relative to the config file): CSV,
    /// or by its extension Stata (.dta), Parquet (.parquet) or Excel
    /// (.xlsx, .xlsm, .xlsb, .xls, .ods). `file` is another name for it.
    #[serde(skip_serializing_if = "Option::is_none", alias = "file")]
    pub csv: Option<PathBuf>,
    /// The sheet of an Excel workbook (default its first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The study-calibrated synthetic panel (the default when no csv):
    /// `crate::data::synthetic::SyntheticParams`, each key defaulting to the
    /// study's calibration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SyntheticParams>,
    pub unit: String,
    pub time: String,
    /// Use the treatment of the unit's previous period (`lag = { TREATMENT
    /// = 1 }`).
    pub lag_treatment: bool,
    /// Columns replaced by their value K periods earlier in the same unit,
    /// e.g. `{ dei = 1, ln_gdp = 2 }`.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub lag: IndexMap<String, u32>,
    /// Columns replaced by their value K periods later in the same unit.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub lead: IndexMap<String, u32>,
    /// Winsorise the model's numeric columns at these two percentiles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winsorize: Option<Vec<f64>>,
    /// Units left out.
    pub drop_units: Vec<String>,
    /// Rows left out by the value of a column, e.g. `{ size = ["large"] }`.
    pub drop: IndexMap<String, Vec<String>>,
    /// Only periods in this range (inclusive; either end may be left open).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periods: Option<PeriodRange>,
}

/// `periods = { from = 2012, to = 2019 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<f64>,
}

/// `[model]`: the roles of the columns and the model's structure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub outcome: String,
    pub treatment: String,
    pub mediators: Vec<String>,
    pub controls: Vec<String>,
    /// "none", "unit" or "unit+time".
    pub fixed_effects: String,
    /// The unit column unless set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Columns whose groups of clusters each get their own model.
    pub groups: Vec<String>,
    /// Excluded instruments of the treatment (2SLS).
    pub instrument: Vec<String>,
    /// Excluded instruments of the mediators (2SLS in the outcome equation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mediator_instrument: Vec<String>,
    /// Other sets of parallel mediators fitted on the same replicates.
    pub also_mediators: Vec<Vec<String>>,
    /// A moderator column of the paths (conditional process analysis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderator: Option<String>,
    /// The moderated paths, any of "a", "b", "direct" (PROCESS model 7 is
    /// ["a"], 14 ["b"], 58 ["a", "b"], 59 all three); empty: ["a", "b"].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub moderated: Vec<String>,
    /// Mean-centre the treatment and the moderator before forming products.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub center: bool,
    /// Moderator values of the conditional effects: a list of values,
    /// "mean-sd", "levels" (a categorical moderator), or `{ percentiles =
    /// [..] }` (default 16, 50, 84).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<AtConfig>,
    /// The treatment-mediator interaction X*M in the outcome equation.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interaction: bool,
    /// The interaction model's change of the treatment [x0, x1] (default
    /// the mean to the mean plus one SD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contrast: Option<Vec<f64>>,
    /// The mediators form a chain in the order given (serial mediation,
    /// PROCESS model 6).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub serial: bool,
}

/// `[model] at`: where conditional effects are evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AtConfig {
    Values(Vec<f64>),
    Named(String),
    Percentiles { percentiles: Vec<f64> },
}

/// `[resampling]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResamplingConfig {
    /// pairs, bayes, poisson, jackknife, wild, permutation or none.
    pub scheme: String,
    /// Wild weights: rademacher, mammen, webb or normal.
    pub weights: String,
    pub replicates: u64,
    /// Seed of every random draw of the run.
    pub seed: u64,
    pub batch: u64,
    pub threads: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strata: Option<String>,
    pub wild_tests: bool,
    pub memory_mib: u64,
    /// auto, gpu or cpu.
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// f32 or f64 (GPU stages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    pub gpu_batch: u64,
}

/// `[inference]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    pub methods: Vec<String>,
    pub levels: Vec<f64>,
    pub mc_draws: u64,
}

/// `[sensitivity]`: the Imai-Keele-Yamamoto curve over a grid of error
/// correlations rho (`rho`; the default grid when the section asks for
/// nothing else), and the Cinelli-Hazlett omitted-variable bounds of each
/// path (`confounding = true`, with `benchmark` controls and their
/// multiples `kd`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensitivityConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<RhoGrid>,
    pub confounding: bool,
    pub benchmark: Vec<String>,
    pub kd: Vec<f64>,
    /// Each replicate's robustness values too.
    pub rv_replicates: bool,
}

impl Default for SensitivityConfig {
    fn default() -> Self {
        SensitivityConfig {
            rho: None,
            confounding: false,
            benchmark: Vec::new(),
            kd: ConfoundingSpec::default().kd,
            rv_replicates: false,
        }
    }
}

impl SensitivityConfig {
    /// The rho grid of the curve: `rho`, or the default grid when the
    /// section does not ask for the bounds alone.
    pub fn rho_grid(&self) -> Option<RhoGrid> {
        match (&self.rho, self.confounding) {
            (Some(grid), _) => Some(grid.clone()),
            (None, false) => Some(RhoGrid::default()),
            (None, true) => None,
        }
    }
}

/// `rho = { from = -0.9, to = 0.9, step = 0.05 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RhoGrid {
    pub from: f64,
    pub to: f64,
    pub step: f64,
}

/// A number, or a list of them (a grid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    /// The values, one or many.
    pub fn values(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `[threshold]`: the fixed-effects panel threshold model of Hansen (1999)
/// (`medsim threshold`, `crate::study::threshold`). The outcome, the
/// regime-dependent regressor(s), the controls and the cluster default to
/// `[model]`'s outcome, treatment, controls and cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdConfig {
    /// The threshold variable q (required).
    pub variable: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regressors: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controls: Option<Vec<String>>,
    /// "unit" (Hansen 1999) or "unit+time".
    pub fixed_effects: String,
    /// Thresholds estimated and tested in turn, 1 to 3.
    pub thresholds: u64,
    /// Candidate thresholds: order statistics of q at this many quantile
    /// levels from trim to 1 - trim.
    pub grid: u64,
    pub trim: f64,
    /// Fewest observations per regime [default: trim of them].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_regime: Option<u64>,
    /// "residual" (whole units' residual vectors, Hansen 1999) or "wild".
    pub bootstrap: String,
    /// The wild bootstrap's multipliers: rademacher, mammen, webb, normal.
    pub weights: String,
    /// Bootstrap replicates of each F test (0: none).
    pub replicates: u64,
    /// Level of the thresholds' likelihood-ratio confidence sets.
    pub level: f64,
    /// Regime-dependent mediation: `[model]`'s mediation model with the
    /// regime moderating a, b and c'.
    pub mediation: bool,
    /// The model whose thresholds make the regimes of the mediation: 1
    /// (two regimes, the default) to `thresholds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mediation_thresholds: Option<u64>,
}

impl Default for ThresholdConfig {
    fn default() -> Self {
        ThresholdConfig {
            variable: String::new(),
            outcome: None,
            regressors: None,
            controls: None,
            fixed_effects: "unit".into(),
            thresholds: 3,
            grid: 300,
            trim: 0.01,
            min_regime: None,
            bootstrap: "residual".into(),
            weights: "rademacher".into(),
            replicates: 1000,
            level: 0.95,
            mediation: false,
            mediation_thresholds: None,
        }
    }
}

/// `[simulation]`: a study of many simulated datasets (`crate::study::simulate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulationConfig {
    /// "iid" or "panel".
    pub dgp: String,
    /// Observations (iid) or cities (panel); a list makes a grid.
    pub n: OneOrMany<u64>,
    pub a: OneOrMany<f64>,
    pub b: OneOrMany<f64>,
    pub c_prime: OneOrMany<f64>,
    /// A moderated iid study: the interaction of the a path (or of the b
    /// path) with a standard normal moderator W; the target is then the
    /// index of moderated mediation (a3 b, or a b3). One of the two.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a3: Option<OneOrMany<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b3: Option<OneOrMany<f64>>,
    /// Panel: periods, the within-city AR(1) coefficient, the heterogeneity.
    pub years: u64,
    pub rho: f64,
    pub heterogeneity: f64,
    pub datasets: u64,
    pub replicates: u64,
    pub methods: Vec<String>,
    pub scheme: String,
    /// Confidence level(s); a list judges every method at each.
    pub level: OneOrMany<f64>,
    pub seed: u64,
    pub mc_draws: u64,
    /// Search the smallest n reaching this power, n = [lo, hi].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_power: Option<f64>,
    /// How the lists of n, a, b, c_prime combine: "grid" (every
    /// combination) or "zip" (the i-th values together; a single value
    /// goes with every i).
    pub combine: String,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            dgp: "iid".into(),
            n: OneOrMany::One(100),
            a: OneOrMany::One(0.39),
            b: OneOrMany::One(0.39),
            c_prime: OneOrMany::One(0.0),
            a3: None,
            b3: None,
            years: 10,
            rho: 0.5,
            heterogeneity: 0.0,
            datasets: 1000,
            replicates: 1000,
            methods: ["sobel", "joint", "monte_carlo", "percentile", "bc", "bca"]
                .map(String::from)
                .to_vec(),
            scheme: "pairs".into(),
            level: OneOrMany::One(0.95),
            seed: 1,
            mc_draws: 10_000,
            target_power: None,
            combine: "grid".into(),
        }
    }
}

/// `[output]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Results folder (relative to the working directory) [default:
    /// results/<name>].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Print summary.json instead of the table.
    pub json: bool,
    /// Write the SVG pictures (`crate::output::plots`) into the results folder.
    pub plots: bool,
    /// Write the main model's replicate statistics (`output::files::replicate_files`).
    pub save_replicates: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            dir: None,
            json: false,
            plots: true,
            save_replicates: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "run".into(),
            data: DataConfig::default(),
            model: ModelConfig::default(),
            resampling: ResamplingConfig::default(),
            inference: InferenceConfig::default(),
            sensitivity: None,
            output: OutputConfig::default(),
            simulation: None,
            threshold: None,
            sweep: None,
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            csv: None,
            sheet: None,
            synthetic: None,
            unit: "city".into(),
            time: "year".into(),
            lag_treatment: false,
            lag: IndexMap::new(),
            lead: IndexMap::new(),
            winsorize: None,
            drop_units: vec![],
            drop: IndexMap::new(),
            periods: None,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            outcome: "log_ci".into(),
            treatment: "dei".into(),
            mediators: vec!["agglom".into()],
            controls: CONTROLS.iter().map(|s| s.to_string()).collect(),
            fixed_effects: "unit+time".into(),
            cluster: None,
            groups: vec![],
            instrument: vec![],
            mediator_instrument: vec![],
            also_mediators: vec![],
            moderator: None,
            moderated: vec![],
            center: false,
            at: None,
            interaction: false,
            contrast: None,
            serial: false,
        }
    }
}

impl Default for ResamplingConfig {
    fn default() -> Self {
        let spec = ResampleSpec::default();
        ResamplingConfig {
            scheme: "pairs".into(),
            weights: "rademacher".into(),
            replicates: spec.replicates,
            seed: 1,
            batch: spec.batch as u64,
            threads: 0,
            strata: None,
            wild_tests: true,
            memory_mib: spec.memory >> 20,
            backend: "auto".into(),
            adapter: None,
            precision: None,
            gpu_batch: 0,
        }
    }
}

impl Default for InferenceConfig {
    fn default() -> Self {
        let spec = InferenceSpec::default();
        InferenceConfig {
            methods: vec!["percentile".into(), "bca".into()],
            levels: spec.levels,
            mc_draws: spec.mc_draws,
        }
    }
}

impl Default for RhoGrid {
    fn default() -> Self {
        RhoGrid {
            from: -0.9,
            to: 0.9,
            step: 0.05,
        }
    }
}

/// Where a config came from, to place its errors and its relative paths.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The file's name as errors show it.
    pub name: String,
    /// Folder that a relative csv path is relative to.
    pub dir: PathBuf,
    /// The file's text, to find the line of a key.
    pub text: String,
    /// Keys whose value a command-line flag gave, and the flag.
    pub flags: BTreeMap<String, String>,
    /// Keys whose value a sweep point gave (`crate::study::sweep`).
    pub swept: Vec<String>,
}

impl Origin {
    /// The origin of a config read from `path` with text `text`.
    pub fn file(path: &Path, text: &str) -> Origin {
        Origin {
            name: path.display().to_string(),
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            text: text.to_string(),
            flags: BTreeMap::new(),
            swept: Vec::new(),
        }
    }

    /// The embedded default, whose relative paths are the working directory's.
    pub fn embedded() -> Origin {
        Origin {
            name: "configs/paper.toml (embedded)".into(),
            dir: PathBuf::new(),
            text: PAPER.to_string(),
            flags: BTreeMap::new(),
            swept: Vec::new(),
        }
    }

    /// Whether the user gave `key`: a flag or keyword, a sweep point, or a
    /// line of their own config file (the embedded default's are not).
    pub fn gave(&self, key: &str) -> bool {
        self.flags.contains_key(key)
            || self.swept.iter().any(|k| k == key)
            || (self.text != PAPER
                && lines_with_keys(&self.text)
                    .iter()
                    .any(|(header, assigned)| full_key(header, assigned).as_deref() == Some(key)))
    }

    /// The error for `key`'s value: naming the flag that gave it, or the
    /// file, line and key.
    pub fn error(&self, key: &str, message: impl Into<String>) -> Error {
        let message = message.into();
        if let Some(flag) = self.flags.get(key) {
            return Error::InvalidOption {
                option: flag.clone(),
                message,
            };
        }
        if self.swept.iter().any(|k| k == key) {
            return Error::Config {
                file: self.name.clone(),
                line: line_of_key(&self.text, &format!("sweep.{key}")),
                key: format!("sweep.\"{key}\""),
                message,
            };
        }
        Error::Config {
            file: self.name.clone(),
            line: line_of_key(&self.text, key),
            key: key.into(),
            message,
        }
    }
}

/// Parse a config's text; `origin` places the errors.
pub fn parse(origin: &Origin) -> Result<Config> {
    toml::from_str::<Config>(&origin.text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        let line = origin.text[..at.min(origin.text.len())]
            .matches('\n')
            .count()
            + 1;
        Error::Config {
            file: origin.name.clone(),
            line,
            key: key_at(&origin.text, at),
            message: with_suggestion(e.message()),
        }
    })
}

/// Read and parse the config file at `path`.
pub fn read(path: &Path) -> Result<(Config, Origin)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::InputFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let origin = Origin::file(path, &text);
    Ok((parse(&origin)?, origin))
}

/// The embedded default config.
pub fn paper() -> (Config, Origin) {
    let origin = Origin::embedded();
    let config = parse(&origin).expect("the embedded configs/paper.toml is valid");
    (config, origin)
}

/// The message of a parse error, with the nearest valid key added to an
/// unknown one ("unknown field `x`, expected one of `a`, `b`").
pub fn with_suggestion(message: &str) -> String {
    let message = message.trim().to_string();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return message;
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let valid = candidates.join(", ");
    match nearest(field, &candidates) {
        Some(best) => {
            format!("unknown key '{field}'; did you mean '{best}'? (valid keys: {valid})")
        }
        None => format!("unknown key '{field}' (valid keys: {valid})"),
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough
/// to be a likely typo (at most a third of the word's length, at least 2).
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The table header (`[data]`) in force on each line, and the key a line
/// assigns, if any.
fn lines_with_keys(text: &str) -> Vec<(String, Option<String>)> {
    let mut header = String::new();
    text.lines()
        .map(|line| {
            let t = line.trim();
            if t.starts_with('[') {
                header = t
                    .trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches('"')
                    .to_string();
                return (header.clone(), None);
            }
            let key = t
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"').to_string())
                .filter(|k| !k.is_empty() && !k.starts_with('#'));
            (header.clone(), key)
        })
        .collect()
}

/// The dotted key assigned on the line holding byte `offset`.
fn key_at(text: &str, offset: usize) -> String {
    let line = text[..offset.min(text.len())].matches('\n').count();
    match lines_with_keys(text).get(line) {
        Some((header, Some(key))) if header.is_empty() => key.clone(),
        Some((header, Some(key))) => format!("{header}.{key}"),
        Some((header, None)) => header.clone(),
        None => String::new(),
    }
}

/// The 1-based line that sets `key` (dotted), or its table, or 0 when the
/// file does not say it (a default).
pub fn line_of_key(text: &str, key: &str) -> usize {
    let lines = lines_with_keys(text);
    let mut table_line = 0;
    for (i, (header, assigned)) in lines.iter().enumerate() {
        let Some(full) = full_key(header, assigned) else {
            if !header.is_empty() && key.starts_with(&format!("{header}.")) && table_line == 0 {
                table_line = i + 1;
            }
            continue;
        };
        if key == full || key.starts_with(&format!("{full}.")) {
            return i + 1;
        }
    }
    table_line
}

/// The dotted key a line assigns (`data.lag` for `lag = ...` under
/// `[data]`), from [`lines_with_keys`]'s header and key; None for a line
/// that assigns nothing.
fn full_key(header: &str, assigned: &Option<String>) -> Option<String> {
    match assigned {
        Some(k) if header.is_empty() => Some(k.clone()),
        Some(k) => Some(format!("{header}.{k}")),
        None => None,
    }
}

/// The messages of the existing option parsers, without their flag names.
/// `[model] interaction` and `contrast` as the model's [`Interaction`].
fn interaction(
    m: &ModelConfig,
) -> std::result::Result<Option<Interaction>, (&'static str, String)> {
    let contrast = match m.contrast.as_deref() {
        None => None,
        Some(&[x0, x1]) => Some((x0, x1)),
        Some(other) => {
            return Err((
                "model.contrast",
                format!(
                    "give two treatment values [x0, x1]; got {} value(s)",
                    other.len()
                ),
            ));
        }
    };
    match (m.interaction, contrast) {
        (false, Some(_)) => Err((
            "model.contrast",
            "applies only with the interaction (model.interaction = true)".into(),
        )),
        (false, None) => Ok(None),
        (true, contrast) => Ok(Some(Interaction { contrast })),
    }
}

/// `[model]`'s moderation keys as the model's [`Moderation`]; an error
/// names its key.
fn moderation(m: &ModelConfig) -> std::result::Result<Option<Moderation>, (&'static str, String)> {
    let Some(moderator) = &m.moderator else {
        for (key, set) in [
            ("model.moderated", !m.moderated.is_empty()),
            ("model.center", m.center),
            ("model.at", m.at.is_some()),
        ] {
            if set {
                return Err((
                    key,
                    "applies only with a moderator (model.moderator)".into(),
                ));
            }
        }
        return Ok(None);
    };
    let mut paths = [false; 3];
    for path in &m.moderated {
        match path.as_str() {
            "a" => paths[0] = true,
            "b" => paths[1] = true,
            "direct" => paths[2] = true,
            other => {
                return Err((
                    "model.moderated",
                    format!(
                        "'{other}' is not a path; use a (X -> M), b (M -> Y) or direct (X -> Y)"
                    ),
                ));
            }
        }
    }
    if m.moderated.is_empty() {
        paths = [true, true, false];
    }
    let at = match &m.at {
        None => ModeratorValues::default(),
        Some(AtConfig::Values(v)) => ModeratorValues::Values(v.clone()),
        Some(AtConfig::Percentiles { percentiles }) => {
            ModeratorValues::Percentiles(percentiles.clone())
        }
        Some(AtConfig::Named(name)) => match name.as_str() {
            "mean-sd" => ModeratorValues::MeanSd,
            "percentiles" => ModeratorValues::default(),
            "levels" => ModeratorValues::Levels,
            other => {
                return Err((
                    "model.at",
                    format!(
                        "'{other}' is not a choice of moderator values; give a list of values, \
                         \"mean-sd\", \"percentiles\", \"levels\" (a categorical moderator) \
                         or {{ percentiles = [16, 50, 84] }}"
                    ),
                ));
            }
        },
    };
    Ok(Some(Moderation {
        moderator: moderator.clone(),
        a: paths[0],
        b: paths[1],
        direct: paths[2],
        center: m.center,
        at,
    }))
}

fn message_of(e: Error) -> String {
    match e {
        Error::InvalidOption { message, .. } => message,
        other => other.to_string(),
    }
}

/// A results-folder name: letters, digits, '-', '_' or '.', not '.' or '..'.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "'{name}' cannot name a results folder; use letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

impl Config {
    /// The validated study of the config's `[simulation]` section, its
    /// resampling engine settings from `[resampling]`.
    pub fn study(&self, origin: &Origin) -> Result<crate::study::simulate::Study> {
        use crate::study::simulate::{Dgp, Study, Test};
        let err = |key: &str, message: String| origin.error(key, message);
        let Some(s) = &self.simulation else {
            return Err(Error::Config {
                file: origin.name.clone(),
                line: 0,
                key: "simulation".into(),
                message:
                    "medsim simulate needs a [simulation] section (see configs/power_iid.toml)"
                        .into(),
            });
        };
        check_name(&self.name).map_err(|m| err("name", m))?;
        let dgp = dgp_of(s, origin)?;
        let cells = cells_of(s, &dgp, origin)?;
        if s.datasets < 2 {
            return Err(err(
                "simulation.datasets",
                format!(
                    "{} is too few; a study needs at least 2 datasets",
                    s.datasets
                ),
            ));
        }
        let levels = study_levels(s).map_err(|m| err("simulation.level", m))?;
        if s.methods.is_empty() {
            return Err(err("simulation.methods", "give at least one method".into()));
        }
        let mut tests = s
            .methods
            .iter()
            .map(|m| Test::parse(m))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| err("simulation.methods", message_of(e)))?;
        // A moderated study left with the default methods judges the index
        // by those that can (not joint or monte_carlo).
        if cells.iter().any(|c| c.moderated()) && s.methods == SimulationConfig::default().methods {
            tests.retain(|t| !matches!(t, Test::Joint | Test::MonteCarlo));
        }
        if tests.iter().any(|t| t.resamples()) && s.replicates < 1 {
            return Err(err(
                "simulation.replicates",
                "0 is too small; it must be at least 1".into(),
            ));
        }
        if s.mc_draws < 1000 {
            return Err(err(
                "simulation.mc_draws",
                format!("{} draws are too few; use at least 1000", s.mc_draws),
            ));
        }
        if cells.iter().any(|c| c.moderated()) {
            check_moderated_study(s, &dgp, &tests).map_err(|(key, m)| err(key, m))?;
        }
        let resampling = self.study_resampling(s, origin)?;
        // Each dataset's verdicts (per level and method) are kept until its
        // cell is summarised.
        let verdicts = s.datasets as f64 * levels.len() as f64 * s.methods.len() as f64;
        crate::resources::check_memory(
            "simulation.datasets",
            &format!("{} datasets per cell", s.datasets),
            verdicts * 32.0,
        )
        .map_err(|e| err("simulation.datasets", message_of(e)))?;
        if let Dgp::Panel { years, .. } = dgp {
            let largest = cells.iter().map(|c| c.n).max().unwrap_or(0) as usize;
            crate::data::synthetic::check_size("simulation.n", largest, years)
                .map_err(|e| err("simulation.n", message_of(e)))?;
        }
        Ok(Study {
            dgp,
            cells,
            datasets: s.datasets,
            methods: tests,
            levels,
            seed: s.seed,
            mc_draws: s.mc_draws,
            resampling,
            target: s.target_power,
        })
    }

    /// The resampling of a study's datasets: `[simulation]`'s scheme and B
    /// with the run's engine settings (intervals only: no restricted wild
    /// tests, no sensitivity bands).
    fn study_resampling(&self, s: &SimulationConfig, origin: &Origin) -> Result<ResampleSpec> {
        let err = |key: &str, message: String| origin.error(key, message);
        let scheme =
            match Scheme::parse(&s.scheme).map_err(|e| err("simulation.scheme", message_of(e)))? {
                Scheme::Wild(_) => Scheme::Wild(
                    WildWeights::parse(&self.resampling.weights)
                        .map_err(|e| err("resampling.weights", message_of(e)))?,
                ),
                Scheme::Permutation => {
                    return Err(err(
                        "simulation.scheme",
                        "the permutation scheme gives p-values, not intervals; use pairs, bayes, \
                     poisson, jackknife or wild"
                            .into(),
                    ));
                }
                other => other,
            };
        // The engine settings are [resampling]'s, with the study's scheme
        // and replicates.
        let mut run = self.clone();
        run.resampling.scheme = s.scheme.clone();
        run.resampling.replicates = s.replicates.max(1);
        let mut resampling = run.resample_spec(None, origin)?.unwrap_or_default();
        resampling.scheme = scheme;
        resampling.sensitivity = None;
        // Intervals only: the wild scheme's restricted tests are not used.
        resampling.wild_tests = false;
        Ok(resampling)
    }

    /// The validated plan of the run this config describes; errors name
    /// the file, line and key of the value (or the flag that gave it).
    pub fn plan(&self, origin: &Origin) -> Result<RunPlan> {
        let err = |key: &str, message: String| origin.error(key, message);
        check_name(&self.name).map_err(|m| err("name", m))?;
        let data = self.data_source(origin)?;
        let model = self.model_spec(origin)?;
        let inference = self.inference_spec(origin)?;
        let sensitivity = self
            .sensitivity
            .as_ref()
            .and_then(SensitivityConfig::rho_grid)
            .map(|grid| rho_grid(&grid, &err))
            .transpose()?;
        let confounding = self
            .sensitivity
            .as_ref()
            .map(|s| confounding(s, &model, origin.gave("sensitivity.confounding"), &err))
            .transpose()?
            .flatten();
        if sensitivity.is_some() {
            crate::model::sensitivity::check_model(
                model.mediators.len(),
                !model.instruments.is_empty() || !model.mediator_instruments.is_empty(),
            )
            .map_err(|e| err("sensitivity", message_of(e)))?;
        }
        let resampling = self.resample_spec(sensitivity.as_deref(), origin)?;
        let (d, m) = (&self.data, &self.model);
        let robustness = robustness(d, &err)?;
        if d.lag_treatment
            && (d.lag.contains_key(&m.treatment) || d.lead.contains_key(&m.treatment))
        {
            return Err(err(
                "data.lag_treatment",
                format!(
                    "the treatment '{}' is also shifted by data.lag or data.lead; give its lag there \
                     only",
                    m.treatment
                ),
            ));
        }
        let mut mediator_sets: Vec<Vec<String>> = m
            .also_mediators
            .iter()
            .filter(|set| !set.is_empty())
            .cloned()
            .collect();
        mediator_sets.retain(|set| *set != model.mediators);
        // Instrumented mediators need an instrument each; the embedded
        // default's other mediator sets go without a note where they have
        // more mediators than the flags give instruments (a set the user
        // gives is refused by its own model's check).
        let k = model.mediator_instruments.len();
        if k > 0 && !origin.gave("model.also_mediators") {
            let (kept, left): (Vec<_>, Vec<_>) =
                mediator_sets.into_iter().partition(|set| set.len() <= k);
            if !left.is_empty() {
                let sets: Vec<String> = left.iter().map(|s| s.join(" + ")).collect();
                crate::notices::notify(format!(
                    "note: model.mediator_instrument gives {k} instrument(s); the embedded \
                     default's model with mediators {} (model.also_mediators) needs one per \
                     mediator and is left out",
                    sets.join("; ")
                ));
            }
            mediator_sets = kept;
        }
        for column in &m.groups {
            if column.trim().is_empty() {
                return Err(err("model.groups", "a group column name is empty".into()));
            }
        }
        Ok(RunPlan {
            name: self.name.clone(),
            data,
            model,
            inference,
            resampling,
            group_by: m.groups.clone(),
            mediator_sets,
            robustness,
            sensitivity,
            confounding,
            keep_replicates: self.output.save_replicates,
        })
    }

    /// Where `[data]` says the table comes from: a CSV (relative to the
    /// config's folder) or the synthetic panel.
    fn data_source(&self, origin: &Origin) -> Result<DataSource> {
        let err = |key: &str, message: String| origin.error(key, message);
        let d = &self.data;
        Ok(match (&d.csv, &d.synthetic) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "data.csv",
                    "give either csv or synthetic, not both".into(),
                ));
            }
            (Some(csv), None) => DataSource::File {
                path: if csv.is_absolute() {
                    csv.clone()
                } else {
                    origin.dir.join(csv)
                },
                sheet: d.sheet.clone(),
            },
            (None, synthetic) => {
                let s = synthetic.clone().unwrap_or_default();
                DataSource::Synthetic(synthetic_params(&s, &err)?)
            }
        })
    }

    /// The plan of `medsim threshold`: `[data]` and `[threshold]`, with
    /// `[model]`'s roles as defaults and `[resampling]`'s seed and threads.
    pub fn threshold_plan(
        &self,
        origin: &Origin,
    ) -> Result<crate::study::threshold::ThresholdPlan> {
        use crate::model::threshold::ThresholdSpec;
        use crate::resample::threshold::ThresholdScheme;
        let err = |key: &str, message: String| origin.error(key, message);
        check_name(&self.name).map_err(|m| err("name", m))?;
        let t = self.threshold.as_ref().ok_or_else(|| {
            err(
                "threshold",
                "medsim threshold needs a [threshold] section naming at least its variable, \
                 e.g. [threshold] variable = \"agglom\""
                    .into(),
            )
        })?;
        if t.variable.trim().is_empty() {
            return Err(err(
                "threshold.variable",
                "name the threshold variable q, e.g. variable = \"agglom\"".into(),
            ));
        }
        let data = self.data_source(origin)?;
        let m = &self.model;
        let fixed_effects = match t.fixed_effects.trim() {
            "unit" => FixedEffects::Unit,
            "unit+time" => FixedEffects::UnitTime,
            other => {
                return Err(err(
                    "threshold.fixed_effects",
                    format!("'{other}' is not one of unit, unit+time"),
                ));
            }
        };
        let scheme = match t.bootstrap.trim() {
            "residual" => ThresholdScheme::Residual,
            "wild" => ThresholdScheme::Wild(
                crate::resample::scheme::WildWeights::parse(&t.weights)
                    .map_err(|e| err("threshold.weights", message_of(e)))?,
            ),
            other => {
                return Err(err(
                    "threshold.bootstrap",
                    format!("'{other}' is not one of residual, wild"),
                ));
            }
        };
        let spec = ThresholdSpec {
            unit: self.data.unit.clone(),
            time: self.data.time.clone(),
            cluster: m.cluster.clone().unwrap_or_else(|| self.data.unit.clone()),
            outcome: t.outcome.clone().unwrap_or_else(|| m.outcome.clone()),
            regressors: t
                .regressors
                .clone()
                .unwrap_or_else(|| vec![m.treatment.clone()]),
            threshold: t.variable.clone(),
            controls: t.controls.clone().unwrap_or_else(|| m.controls.clone()),
            fixed_effects,
            max_thresholds: t.thresholds as usize,
            grid: t.grid as usize,
            trim: t.trim,
            min_regime: t.min_regime.map(|v| v as usize),
            level: t.level,
        };
        spec.validate().map_err(|e| match e {
            Error::InvalidOption { option, message } => err(&option, message),
            other => other,
        })?;
        Ok(crate::study::threshold::ThresholdPlan {
            name: self.name.clone(),
            data,
            spec,
            scheme,
            replicates: t.replicates as usize,
            seed: self.resampling.seed,
            threads: self.resampling.threads as usize,
            engine: crate::study::backend::ThresholdBackend {
                backend: BackendChoice::parse(&self.resampling.backend)
                    .map_err(|e| err("resampling.backend", message_of(e)))?,
                adapter: self.resampling.adapter.clone(),
                precision: self
                    .resampling
                    .precision
                    .as_deref()
                    .map(Precision::parse)
                    .transpose()
                    .map_err(|e| err("resampling.precision", message_of(e)))?,
                gpu_batch: self.resampling.gpu_batch as usize,
            },
            mediation: if t.mediation {
                Some(self.regime_mediation_plan(origin)?)
            } else {
                None
            },
            mediation_thresholds: match (t.mediation_thresholds, t.mediation) {
                (None, _) => 1,
                (Some(_), false) => {
                    return Err(err(
                        "threshold.mediation_thresholds",
                        "applies only with regime-dependent mediation (threshold.mediation = \
                         true)"
                            .into(),
                    ));
                }
                (Some(k), true) if k < 1 || k > t.thresholds => {
                    return Err(err(
                        "threshold.mediation_thresholds",
                        format!(
                            "the mediation's regimes come from one of the models estimated, 1 to \
                             threshold.thresholds = {}; got {k}",
                            t.thresholds
                        ),
                    ));
                }
                (Some(k), true) => k as usize,
            },
        })
    }

    /// The run of `[model]` that regime-dependent mediation moderates by
    /// the regime: one mediator, no moderator, chain, interaction or groups
    /// of its own.
    fn regime_mediation_plan(&self, origin: &Origin) -> Result<RunPlan> {
        let err = |key: &str, message: String| origin.error(key, message);
        let plan = self.plan(origin)?;
        let m = &plan.model;
        if m.mediators.len() != 1 {
            return Err(err(
                "model.mediators",
                format!(
                    "regime-dependent mediation (threshold.mediation) takes one mediator, not {}",
                    m.mediators.len()
                ),
            ));
        }
        let taken = [
            ("model.moderator", m.moderation.is_some()),
            ("model.interaction", m.interaction.is_some()),
            ("model.serial", m.serial),
            ("model.groups", !plan.group_by.is_empty()),
            ("model.also_mediators", !plan.mediator_sets.is_empty()),
        ];
        if let Some((key, _)) = taken.iter().find(|(_, on)| *on) {
            return Err(err(
                key,
                "regime-dependent mediation (threshold.mediation) moderates a, b and c' by the \
                 regime itself; unset this for the threshold run"
                    .into(),
            ));
        }
        Ok(plan)
    }

    /// The model of `[data]` and `[model]`, validated (its errors name the
    /// config key of the role).
    fn model_spec(&self, origin: &Origin) -> Result<ModelSpec> {
        let err = |key: &str, message: String| origin.error(key, message);
        let d = &self.data;
        let m = &self.model;
        let (fixed_effects, cell_group) =
            FixedEffects::parse_with_group(&m.fixed_effects, &d.unit, &d.time)
                .map_err(|e| err("model.fixed_effects", message_of(e)))?;
        let r = &self.resampling;
        let mut groups: Vec<String> = m.groups.clone();
        if let Some(s) = &r.strata
            && !groups.contains(s)
        {
            groups.push(s.clone());
        }
        let model = ModelSpec {
            unit: d.unit.clone(),
            time: d.time.clone(),
            outcome: m.outcome.clone(),
            treatment: m.treatment.clone(),
            mediators: m.mediators.clone(),
            controls: m.controls.clone(),
            instruments: m.instrument.clone(),
            mediator_instruments: m.mediator_instrument.clone(),
            groups,
            cluster: m.cluster.clone().unwrap_or_else(|| d.unit.clone()),
            fixed_effects,
            cell_group,
            moderation: moderation(m).map_err(|(key, message)| err(key, message))?,
            interaction: interaction(m).map_err(|(key, message)| err(key, message))?,
            serial: m.serial,
        };
        model.validate().map_err(|e| match e {
            Error::InvalidOption { option, message } => err(&option, message),
            other => other,
        })?;
        Ok(model)
    }

    /// `[inference]`'s levels (each once) and Monte Carlo draws, with the
    /// resampling seed.
    fn inference_spec(&self, origin: &Origin) -> Result<InferenceSpec> {
        let err = |key: &str, message: String| origin.error(key, message);
        let r = &self.resampling;
        let i = &self.inference;
        // A level given twice is judged once.
        let mut levels: Vec<f64> = Vec::new();
        for &l in &i.levels {
            if !levels.contains(&l) {
                levels.push(l);
            }
        }
        let inference = InferenceSpec {
            levels,
            mc_draws: i.mc_draws,
            seed: r.seed,
        };
        inference.validate().map_err(|e| match e {
            Error::InvalidOption { option, message } => err(&option, message),
            other => other,
        })?;
        Ok(inference)
    }

    /// `[resampling]` and `[inference]`'s methods as a resampling spec; None
    /// for `scheme = "none"`. `sensitivity` is the run's rho grid, whose
    /// bands reweighting schemes give.
    fn resample_spec(
        &self,
        sensitivity: Option<&[f64]>,
        origin: &Origin,
    ) -> Result<Option<ResampleSpec>> {
        let err = |key: &str, message: String| origin.error(key, message);
        let (i, r) = (&self.inference, &self.resampling);
        let methods = i
            .methods
            .iter()
            .map(|s| Method::parse(s))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| err("inference.methods", message_of(e)))?;
        // Checked whatever the scheme, so a typo never waits for a wild run.
        let weights =
            WildWeights::parse(&r.weights).map_err(|e| err("resampling.weights", message_of(e)))?;
        Ok(match r.scheme.trim() {
            "none" => None,
            scheme => {
                let scheme = match Scheme::parse(scheme)
                    .map_err(|e| err("resampling.scheme", message_of(e)))?
                {
                    Scheme::Wild(_) => Scheme::Wild(weights),
                    other => other,
                };
                for (key, value, least) in [
                    ("resampling.replicates", r.replicates, 1),
                    ("resampling.batch", r.batch, 1),
                ] {
                    if value < least {
                        return Err(err(
                            key,
                            format!("{value} is too small; it must be at least {least}"),
                        ));
                    }
                }
                Some(ResampleSpec {
                    scheme,
                    replicates: r.replicates,
                    batch: r.batch as usize,
                    threads: r.threads as usize,
                    methods,
                    strata: r.strata.clone(),
                    wild_tests: r.wild_tests,
                    memory: r.memory_mib.saturating_mul(1 << 20),
                    backend: BackendChoice::parse(&r.backend)
                        .map_err(|e| err("resampling.backend", message_of(e)))?,
                    adapter: r.adapter.clone(),
                    precision: r
                        .precision
                        .as_deref()
                        .map(Precision::parse)
                        .transpose()
                        .map_err(|e| err("resampling.precision", message_of(e)))?,
                    gpu_batch: r.gpu_batch as usize,
                    // Bands need the replicates' Gram matrices.
                    sensitivity: sensitivity.map(<[f64]>::to_vec).filter(|_| {
                        matches!(
                            scheme,
                            Scheme::Pairs | Scheme::Bayes | Scheme::Poisson | Scheme::Jackknife
                        )
                    }),
                    johnson_neyman: true,
                    robustness_values: false,
                    store: None,
                })
            }
        })
    }

    /// The results folder: `output.dir`, else `results/<name>`.
    pub fn out_dir(&self) -> PathBuf {
        self.output
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("results").join(&self.name))
    }
}

/// A study's confidence levels (`simulation.level`): at least one, each in
/// (0, 1), none twice.
fn study_levels(s: &SimulationConfig) -> std::result::Result<Vec<f64>, String> {
    let levels = s.level.values();
    if levels.is_empty() {
        return Err("the list is empty".into());
    }
    if let Some(message) = levels.iter().find_map(|&l| check_level(l).err()) {
        return Err(message);
    }
    if let Some(l) = levels
        .iter()
        .enumerate()
        .find_map(|(i, l)| levels[..i].contains(l).then_some(l))
    {
        return Err(format!("{l} is listed twice"));
    }
    Ok(levels)
}

/// The generator's parameters, range-checked.
fn synthetic_params(
    s: &SyntheticParams,
    err: &dyn Fn(&str, String) -> Error,
) -> Result<SyntheticParams> {
    for (key, value) in [
        ("data.synthetic.cities", s.cities),
        ("data.synthetic.years", s.years),
    ] {
        if value < 2 {
            return Err(err(
                key,
                format!("{value} is too few; a panel needs at least 2"),
            ));
        }
        if value > 10_000_000 {
            return Err(err(key, format!("{value} is more than 10,000,000")));
        }
    }
    crate::data::synthetic::check_size("data.synthetic.cities", s.cities, s.years)
        .map_err(|e| err("data.synthetic.cities", message_of(e)))?;
    if !(0.0..1.0).contains(&s.rho) {
        return Err(err(
            "data.synthetic.rho",
            format!(
                "{} is not an AR(1) coefficient in [0, 1) (the shocks must be stationary)",
                s.rho
            ),
        ));
    }
    for (key, value) in [
        ("data.synthetic.a_sec", s.a_sec),
        ("data.synthetic.a_ter", s.a_ter),
        ("data.synthetic.b", s.b),
        ("data.synthetic.c_prime", s.c_prime),
        ("data.synthetic.heterogeneity", s.heterogeneity),
    ] {
        if !value.is_finite() || value.abs() > 100.0 {
            return Err(err(
                key,
                format!("{value} is not a finite effect of at most 100 in size"),
            ));
        }
    }
    Ok(*s)
}

/// The rho values of a grid, each in (-1, 1), from `from` to `to` in steps
/// of `step` (the last within a millionth of a step of `to` included).
fn rho_grid(g: &RhoGrid, err: &dyn Fn(&str, String) -> Error) -> Result<Vec<f64>> {
    for (key, value) in [
        ("sensitivity.rho.from", g.from),
        ("sensitivity.rho.to", g.to),
    ] {
        if !(value > -1.0 && value < 1.0) {
            return Err(err(
                key,
                format!("{value} is not a correlation strictly between -1 and 1"),
            ));
        }
    }
    if g.from > g.to {
        return Err(err(
            "sensitivity.rho",
            format!("from ({}) is above to ({})", g.from, g.to),
        ));
    }
    if g.step.is_nan() || g.step <= 0.0 || (g.to - g.from) / g.step > 100_000.0 {
        return Err(err(
            "sensitivity.rho.step",
            format!(
                "{} is not a positive step giving at most 100,000 values",
                g.step
            ),
        ));
    }
    let n = ((g.to - g.from) / g.step + 1e-6).floor() as usize;
    Ok((0..=n)
        .map(|k| {
            // Rounded to 12 decimals, so 0.05 steps give 0.1, not 0.10000000000000009.
            let v = g.from + k as f64 * g.step;
            (v * 1e12).round() / 1e12
        })
        .collect())
}

/// The omitted-variable bounds `[sensitivity]` asks for (None without
/// `confounding = true`), checked against the model.
/// `gave`: the user asked for them (not only the embedded default).
fn confounding(
    s: &SensitivityConfig,
    model: &ModelSpec,
    gave: bool,
    err: &dyn Fn(&str, String) -> Error,
) -> Result<Option<ConfoundingSpec>> {
    if !s.confounding {
        for (key, given) in [
            ("sensitivity.benchmark", !s.benchmark.is_empty()),
            ("sensitivity.kd", s.kd != ConfoundingSpec::default().kd),
            ("sensitivity.rv_replicates", s.rv_replicates),
        ] {
            if given {
                return Err(err(
                    key,
                    "this sets the omitted-variable bounds, which sensitivity.confounding = true \
                     asks for"
                        .into(),
                ));
            }
        }
        return Ok(None);
    }
    if let Err(e) = crate::model::confounding::check_model(
        !model.instruments.is_empty(),
        model.moderation.is_some() || model.interaction.is_some(),
    ) {
        // The embedded default asks for the bounds of whatever model the
        // flags make; where they are undefined, it goes without them.
        if gave {
            return Err(err(
                "sensitivity.confounding",
                format!("{}; remove sensitivity.confounding", message_of(e)),
            ));
        }
        crate::notices::notify(format!(
            "{}; the embedded default's omitted-variable bounds are left out",
            message_of(e)
        ));
        return Ok(None);
    }
    for name in &s.benchmark {
        if !model.controls.contains(name) {
            return Err(err(
                "sensitivity.benchmark",
                format!(
                    "'{name}' is not one of model.controls ({}); a benchmark is a control whose \
                     strength bounds the confounder's",
                    model.controls.join(", ")
                ),
            ));
        }
    }
    if s.kd.is_empty() {
        return Err(err("sensitivity.kd", "give at least one multiple".into()));
    }
    if let Some(kd) = s.kd.iter().find(|k| !(k.is_finite() && **k > 0.0)) {
        return Err(err(
            "sensitivity.kd",
            format!("{kd} is not a positive multiple of a benchmark's strength"),
        ));
    }
    Ok(Some(ConfoundingSpec {
        benchmarks: s.benchmark.clone(),
        kd: s.kd.clone(),
        replicates: s.rv_replicates,
    }))
}

/// The robustness options of a `[data]` table, range-checked (`err` places errors).
fn robustness(d: &DataConfig, err: &dyn Fn(&str, String) -> Error) -> Result<Robustness> {
    let winsorize = match d.winsorize.as_deref() {
        None => None,
        Some(&[lo, hi]) if (0.0..hi).contains(&lo) && hi <= 100.0 => Some([lo, hi]),
        Some(other) => {
            return Err(err(
                "data.winsorize",
                format!("{other:?} is not two percentiles low < high in [0, 100], e.g. [1, 99]"),
            ));
        }
    };
    if let Some(p) = &d.periods
        && let (Some(from), Some(to)) = (p.from, p.to)
        && from > to
    {
        return Err(err(
            "data.periods",
            format!("from ({from}) is after to ({to})"),
        ));
    }
    for (key, shifts) in [("data.lag", &d.lag), ("data.lead", &d.lead)] {
        for (column, &k) in shifts {
            if k == 0 {
                return Err(err(
                    key,
                    format!("'{column}' = 0 shifts nothing; give a number of periods, 1 or more"),
                ));
            }
            if *column == d.unit || *column == d.time {
                return Err(err(
                    key,
                    format!("'{column}' is the unit or time column, which cannot be shifted"),
                ));
            }
        }
    }
    if let Some(column) = d.lag.keys().find(|c| d.lead.contains_key(*c)) {
        return Err(err(
            "data.lead",
            format!("'{column}' is also in data.lag; shift a column one way"),
        ));
    }
    Ok(Robustness {
        lag_treatment: d.lag_treatment,
        lag: d.lag.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        lead: d.lead.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        winsorize,
        drop_units: d.drop_units.clone(),
        drop: d.drop.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        periods_from: d.periods.as_ref().and_then(|p| p.from),
        periods_to: d.periods.as_ref().and_then(|p| p.to),
    })
}

/// `[simulation]`'s data-generating process, its parameters checked.
fn dgp_of(s: &SimulationConfig, origin: &Origin) -> Result<crate::study::simulate::Dgp> {
    use crate::study::simulate::Dgp;
    let err = |key: &str, message: String| origin.error(key, message);
    Ok(match s.dgp.as_str() {
        "iid" => Dgp::Iid,
        "panel" => {
            if s.years < 2 {
                return Err(err(
                    "simulation.years",
                    format!("{} is too few; a panel needs at least 2", s.years),
                ));
            }
            if !(0.0..1.0).contains(&s.rho) {
                return Err(err(
                    "simulation.rho",
                    format!("{} is not an AR(1) coefficient in [0, 1)", s.rho),
                ));
            }
            if !s.heterogeneity.is_finite() || s.heterogeneity.abs() > 100.0 {
                return Err(err(
                    "simulation.heterogeneity",
                    format!(
                        "{} is not a finite exponent of at most 100 in size",
                        s.heterogeneity
                    ),
                ));
            }
            Dgp::Panel {
                years: s.years as usize,
                rho: s.rho,
                heterogeneity: s.heterogeneity,
            }
        }
        other => {
            return Err(err(
                "simulation.dgp",
                format!("'{other}' is not \"iid\" or \"panel\""),
            ));
        }
    })
}

/// A moderated study's refusals: one moderated path (the index of
/// moderated mediation exists), the iid process, and the methods that
/// judge the index (Sobel's delta method and the bootstrap intervals but
/// the studentized one).
fn check_moderated_study(
    s: &SimulationConfig,
    dgp: &crate::study::simulate::Dgp,
    tests: &[crate::study::simulate::Test],
) -> std::result::Result<(), (&'static str, String)> {
    use crate::resample::intervals::Method;
    use crate::study::simulate::{Dgp, Test};
    if s.a3.is_some() && s.b3.is_some() {
        return Err((
            "simulation.b3",
            "give a3 or b3, not both: the index of moderated mediation, the study's target, \
             exists when one path is moderated (PROCESS model 7 or 14)"
                .into(),
        ));
    }
    if *dgp != Dgp::Iid {
        return Err((
            "simulation.dgp",
            "a moderator (simulation.a3, simulation.b3) is simulated by the iid process only"
                .into(),
        ));
    }
    if let Some(t) = tests.iter().find(|t| {
        matches!(
            t,
            Test::Joint
                | Test::MonteCarlo
                | Test::Permutation
                | Test::Interval(Method::Studentized)
        )
    }) {
        return Err((
            "simulation.methods",
            format!(
                "'{t}' does not judge the index of moderated mediation; a moderated study \
                 (simulation.a3, simulation.b3) takes sobel, percentile, basic, normal, bc and bca"
            ),
        ));
    }
    Ok(())
}

/// The cells of `[simulation]`: its n, a, b and c' checked, combined as a
/// grid or zipped (`crate::study::combine`).
fn cells_of(
    s: &SimulationConfig,
    dgp: &crate::study::simulate::Dgp,
    origin: &Origin,
) -> Result<Vec<crate::study::simulate::Cell>> {
    use crate::study::simulate::{Cell, Dgp};
    let err = |key: &str, message: String| origin.error(key, message);
    let least = if *dgp == Dgp::Iid { 4 } else { 2 };
    let ns = s.n.values();
    if let Some(t) = s.target_power {
        if !(t > 0.0 && t < 1.0) {
            return Err(err(
                "simulation.target_power",
                format!("{t} is not a power strictly between 0 and 1"),
            ));
        }
        if ns.len() != 2 || ns[0] >= ns[1] {
            return Err(err(
                "simulation.n",
                "with target_power, n is the range to search: [lo, hi] with lo < hi".into(),
            ));
        }
    }
    if ns.is_empty() {
        return Err(err("simulation.n", "the list is empty".into()));
    }
    for &n in &ns {
        if n < least || n > 10_000_000 {
            return Err(err(
                "simulation.n",
                format!("{n} is outside {least}..10,000,000"),
            ));
        }
    }
    // A moderated study's a3 or b3 (both: refused by check_moderated_study).
    let (moderation_key, mv) = match (&s.a3, &s.b3) {
        (Some(v), _) => ("simulation.a3", v.values()),
        (None, Some(v)) => ("simulation.b3", v.values()),
        (None, None) => ("simulation.a3", vec![]),
    };
    let moderated = s.a3.is_some() || s.b3.is_some();
    for (key, values) in [
        ("simulation.a", s.a.values()),
        ("simulation.b", s.b.values()),
        ("simulation.c_prime", s.c_prime.values()),
    ]
    .into_iter()
    .chain(moderated.then(|| (moderation_key, mv.clone())))
    {
        if values.is_empty() {
            return Err(err(key, "the list is empty".into()));
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite() || v.abs() > 100.0) {
            return Err(err(
                key,
                format!("{v} is not a finite effect of at most 100 in size"),
            ));
        }
    }
    let (av, bv, cv) = (s.a.values(), s.b.values(), s.c_prime.values());
    let combine = Combine::parse(&s.combine).map_err(|m| err("simulation.combine", m))?;
    if combine == Combine::Zip && s.target_power.is_some() {
        return Err(err(
            "simulation.combine",
            "a sample-size search needs combine = \"grid\" (n is its range)".into(),
        ));
    }
    let keys = [
        "simulation.n",
        "simulation.a",
        "simulation.b",
        "simulation.c_prime",
        moderation_key,
    ];
    let mut sizes = vec![ns.len(), av.len(), bv.len(), cv.len()];
    if moderated {
        sizes.push(mv.len());
    }
    let points = combine.points(&sizes).map_err(|(k, m)| err(keys[k], m))?;
    let cells: Vec<Cell> = points
        .into_iter()
        .map(|p| {
            let moderation = moderated.then(|| mv[p[4]]);
            Cell {
                n: ns[p[0]],
                a: av[p[1]],
                b: bv[p[2]],
                c_prime: cv[p[3]],
                a3: moderation.filter(|_| s.a3.is_some()),
                b3: moderation.filter(|_| s.a3.is_none()),
            }
        })
        .collect();
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_parses() {
        let (config, origin) = paper();
        let plan = config.plan(&origin).unwrap();
        assert_eq!(plan.name, "paper");
        assert_eq!(plan.group_by, ["region", "size"]);
    }

    #[test]
    fn unknown_keys_get_the_nearest_valid_key() {
        let origin = Origin {
            text: "name = \"x\"\n[model]\ncontrosl = [\"gdp\"]\n".into(),
            ..Origin::embedded()
        };
        let e = parse(&origin).unwrap_err().to_string();
        assert!(e.contains(":3:"), "{e}");
        assert!(e.contains("model.controsl"), "{e}");
        assert!(e.contains("did you mean 'controls'"), "{e}");
    }

    #[test]
    fn line_of_key_finds_tables_and_inline_tables() {
        let text =
            "name = \"a\"\n[data]\nsynthetic = { cities = 1 }\n[resampling]\n\nreplicates = 0\n";
        assert_eq!(line_of_key(text, "data.synthetic.cities"), 3);
        assert_eq!(line_of_key(text, "resampling.replicates"), 6);
        assert_eq!(line_of_key(text, "resampling.seed"), 4);
        assert_eq!(line_of_key(text, "inference.levels"), 0);
        assert_eq!(line_of_key(text, "name"), 1);
    }

    #[test]
    fn rho_grids_include_both_ends() {
        let err = |k: &str, m: String| Error::InvalidOption {
            option: k.into(),
            message: m,
        };
        let g = rho_grid(
            &RhoGrid {
                from: -0.9,
                to: 0.9,
                step: 0.05,
            },
            &err,
        )
        .unwrap();
        assert_eq!(g.len(), 37);
        assert_eq!((g[0], g[18], g[36]), (-0.9, 0.0, 0.9));
        assert_eq!(g[20], 0.1);
    }
}
