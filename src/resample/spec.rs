//! What a resampling run is asked for: the scheme, B, the intervals, the
//! engine and its limits (`ResampleSpec`), and how a group's model shares
//! the run's weights (`SharedWeights`).

use crate::error::{Error, Result};
use crate::model::panel::Panel;
use crate::resample::engine::Precision;
use crate::resample::intervals::Method;
use crate::resample::scheme::Scheme;

/// Settings of a resampling run.
#[derive(Debug, Clone, PartialEq)]
pub struct ResampleSpec {
    pub scheme: Scheme,
    /// Number of replicates B (ignored by the jackknife, which has G).
    pub replicates: u64,
    /// Replicates per GEMM batch.
    pub batch: usize,
    /// Worker threads (0: one per core).
    pub threads: usize,
    pub methods: Vec<Method>,
    /// Group column within which clusters are resampled.
    pub strata: Option<String>,
    /// With the wild scheme, also run the restricted (WCR) bootstrap-t test
    /// of each single coefficient (O(G^2) per replicate and coefficient).
    pub wild_tests: bool,
    /// Bytes of replicate statistics kept in memory; beyond it quantiles are
    /// found by streaming (two passes), exactly all the same.
    pub memory: u64,
    /// Which engine computes the replicates.
    pub backend: BackendChoice,
    /// GPU adapter: the best one whose name contains this.
    pub adapter: Option<String>,
    /// Precision of the GPU stages (None: f32).
    pub precision: Option<Precision>,
    /// Largest GPU batch (0: from the adapter's limits).
    pub gpu_batch: usize,
    /// The rho grid of the sensitivity analysis, whose ACME values the
    /// replicates also give (reweighting schemes; None: no analysis).
    pub sensitivity: Option<Vec<f64>>,
    /// A moderated model's Johnson-Neyman region from every replicate's
    /// paths (the main model's; a group's model does not report one).
    pub johnson_neyman: bool,
    /// Each replicate's robustness value of every path of the
    /// omitted-variable bounds (the main model's, with `[sensitivity]
    /// confounding = true`; reweighting schemes only).
    pub robustness_values: bool,
    /// Where the replicates are checkpointed, or a shard's part stored, or
    /// a merge's shards read (`crate::resample::checkpoint`); None: in memory only.
    pub store: Option<crate::resample::checkpoint::StoreRef>,
}

/// For one group's model: the run's weight plan is over all clusters, and
/// this design's cluster c takes the weight of the run's cluster `map[c]`,
/// so replicate r is the same draw for the pooled model and every group.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedWeights {
    /// Clusters of the whole run.
    pub n_clusters: usize,
    /// Stratum of each of the run's clusters (`--strata`).
    pub strata: Option<Vec<u32>>,
    pub map: Vec<usize>,
}

impl SharedWeights {
    /// The run's weights for a model whose clusters sit at `map` among the
    /// clusters of the run's sample `pooled`.
    pub fn new(pooled: &Panel, spec: &ResampleSpec, map: Vec<usize>) -> Result<SharedWeights> {
        Ok(SharedWeights {
            n_clusters: pooled.cluster.len(),
            strata: strata_of(pooled, spec)?,
            map,
        })
    }
}

/// `--backend`: where replicates are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// A hardware GPU when there is one and it runs the scheme, else the CPU.
    #[default]
    Auto,
    Cpu,
    Gpu,
}

impl BackendChoice {
    /// `auto`, `cpu` or `gpu`, as configs and summaries name it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Cpu => "cpu",
            BackendChoice::Gpu => "gpu",
        }
    }

    /// Parse `auto`, `cpu` or `gpu`.
    pub fn parse(s: &str) -> crate::error::Result<BackendChoice> {
        match s.trim() {
            "auto" => Ok(BackendChoice::Auto),
            "cpu" => Ok(BackendChoice::Cpu),
            "gpu" => Ok(BackendChoice::Gpu),
            other => Err(crate::error::Error::InvalidOption {
                option: "resampling.backend".into(),
                message: format!("'{other}': expected auto, gpu or cpu"),
            }),
        }
    }
}

spelled!(BackendChoice);

impl Default for ResampleSpec {
    fn default() -> Self {
        ResampleSpec {
            scheme: Scheme::Pairs,
            replicates: 10_000,
            batch: 256,
            threads: 0,
            methods: vec![Method::Percentile, Method::Bca],
            strata: None,
            wild_tests: true,
            memory: 1 << 30,
            backend: BackendChoice::Auto,
            adapter: None,
            precision: None,
            gpu_batch: 0,
            sensitivity: None,
            johnson_neyman: true,
            robustness_values: false,
            store: None,
        }
    }
}

/// The stratum of each cluster of `panel` for `spec.strata`, if any.
pub fn strata_of(panel: &Panel, spec: &ResampleSpec) -> Result<Option<Vec<u32>>> {
    spec.strata
        .as_deref()
        .map(|s| strata_codes(panel, s))
        .transpose()
}

/// Stratum of each cluster, checking that clusters are nested in strata.
fn strata_codes(panel: &Panel, column: &str) -> Result<Vec<u32>> {
    let f = panel
        .groups
        .iter()
        .find(|g| g.name == column)
        .ok_or_else(|| Error::InvalidOption {
            option: "resampling.strata".into(),
            message: format!("'{column}' is not among the loaded group columns"),
        })?;
    let mut code = vec![u32::MAX; panel.cluster.len()];
    for (&c, &s) in panel.cluster.codes.iter().zip(&f.codes) {
        let slot = &mut code[c as usize];
        if *slot != u32::MAX && *slot != s {
            return Err(Error::InvalidOption {
                option: "resampling.strata".into(),
                message: format!(
                    "cluster '{}' has more than one value of '{column}'; strata must be constant within clusters",
                    panel.cluster.levels[c as usize]
                ),
            });
        }
        *slot = s;
    }
    Ok(code)
}
