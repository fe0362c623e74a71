//! The design: per-cluster sufficient statistics of the panel (DESIGN.md
//! section 3). Columns are transformed within units (or centred, without unit
//! effects), period dummies are added for two-way effects, every column is
//! scaled to unit root-mean-square, and for each cluster g the Gram matrix
//! `S_g = sum_{t in g} z z'` is kept as a packed upper triangle. Every later
//! stage (point estimates, resampling) needs only these statistics.
//!
//! Column order of `z`: treatment, controls, nuisance (period dummies, or the
//! intercept without unit effects), mediators, the moderation block (the
//! moderator W unless the fixed effects absorb it, X*W, M*W), instruments
//! (the treatment's, then the mediators'), outcome. Products are formed on
//! the data (X and W mean-centred first with `center`), then transformed
//! like every other column.

use crate::error::{Error, Result};
use crate::math::linalg::{packed_len, unpack};
use crate::math::stats::quantile_sorted;
use crate::model::panel::{Factor, Panel};
use crate::model::spec::{FixedEffects, Moderation, ModeratorValues};

/// What a column of the design is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Treatment,
    Control,
    /// Period dummy or intercept: estimated but not reported.
    Nuisance,
    Mediator,
    /// Excluded instrument of the treatment.
    Instrument,
    /// Excluded instrument of the mediators.
    MediatorInstrument,
    /// The moderator or a product with it.
    Moderator,
    Outcome,
}

impl Role {
    fn describe(self) -> &'static str {
        match self {
            Role::Treatment => "treatment",
            Role::Control => "control",
            Role::Nuisance => "fixed effect",
            Role::Mediator => "mediator",
            Role::Instrument => "instrument",
            Role::MediatorInstrument => "mediator's instrument",
            Role::Moderator => "moderation term",
            Role::Outcome => "outcome",
        }
    }
}

/// Positions of the column blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub n_controls: usize,
    pub n_nuisance: usize,
    pub n_mediators: usize,
    /// Excluded instruments of the treatment (0: least squares).
    pub n_instruments: usize,
    /// Excluded instruments of the mediators, in the outcome equation (0:
    /// the mediators are exogenous).
    pub n_mediator_instruments: usize,
    /// Columns of the moderation block (0: no moderator).
    pub n_moderation: usize,
}

impl Layout {
    /// Number of columns.
    pub fn q(&self) -> usize {
        self.n_controls
            + self.n_nuisance
            + self.n_mediators
            + self.n_moderation
            + self.n_instruments
            + self.n_mediator_instruments
            + 2
    }
    /// The treatment column.
    pub fn treatment(&self) -> usize {
        0
    }
    /// Mediator `j`.
    pub fn mediator(&self, j: usize) -> usize {
        1 + self.n_controls + self.n_nuisance + j
    }
    /// Column `k` of the moderation block.
    pub fn moderation(&self, k: usize) -> usize {
        1 + self.n_controls + self.n_nuisance + self.n_mediators + k
    }
    /// Instrument `j`.
    pub fn instrument(&self, j: usize) -> usize {
        1 + self.n_controls + self.n_nuisance + self.n_mediators + self.n_moderation + j
    }
    /// The mediators' instrument `j`.
    pub fn mediator_instrument(&self, j: usize) -> usize {
        self.instrument(self.n_instruments + j)
    }
    /// The outcome column.
    pub fn outcome(&self) -> usize {
        self.q() - 1
    }
    /// Whether some equation is fitted by two-stage least squares: the
    /// treatment or the mediators are instrumented.
    pub fn instrumented(&self) -> bool {
        self.treatment_instrumented() || self.mediators_instrumented()
    }
    /// Whether the treatment is instrumented (in every equation).
    pub fn treatment_instrumented(&self) -> bool {
        self.n_instruments > 0
    }
    /// Whether the mediators are instrumented (in the outcome equation).
    pub fn mediators_instrumented(&self) -> bool {
        self.n_mediator_instruments > 0
    }
    /// The exogenous columns every equation shares: controls and nuisance.
    pub fn exogenous(&self) -> Vec<usize> {
        (1..1 + self.n_controls + self.n_nuisance).collect()
    }
    /// Regressors of the total-effect and mediator equations: treatment,
    /// controls and nuisance columns.
    pub fn base_regressors(&self) -> Vec<usize> {
        (0..1 + self.n_controls + self.n_nuisance).collect()
    }
    /// Regressors of the outcome equation: the base ones and every mediator.
    pub fn outcome_regressors(&self) -> Vec<usize> {
        (0..1 + self.n_controls + self.n_nuisance + self.n_mediators).collect()
    }
    /// Instruments of an equation with `regressors`: an instrumented
    /// treatment is replaced by its excluded instruments, instrumented
    /// mediators by theirs, and every other regressor instruments itself;
    /// None when no regressor is endogenous (least squares).
    pub fn instruments_for(&self, regressors: &[usize]) -> Option<Vec<usize>> {
        let treatment = self.treatment_instrumented() && regressors.contains(&self.treatment());
        let mediators = self.mediators_instrumented()
            && regressors
                .iter()
                .any(|&r| (0..self.n_mediators).any(|j| self.mediator(j) == r));
        if !treatment && !mediators {
            return None;
        }
        let endogenous = |r: usize| {
            (treatment && r == self.treatment())
                || (mediators && (0..self.n_mediators).any(|j| self.mediator(j) == r))
        };
        let mut inst: Vec<usize> = regressors
            .iter()
            .copied()
            .filter(|&r| !endogenous(r))
            .collect();
        if treatment {
            inst.extend((0..self.n_instruments).map(|j| self.instrument(j)));
        }
        if mediators {
            inst.extend((0..self.n_mediator_instruments).map(|j| self.mediator_instrument(j)));
        }
        Some(inst)
    }
    /// The instruments of a two-stage solve of `regressors`: those of
    /// [`Layout::instruments_for`], or the regressors themselves for an
    /// equation with none endogenous (two-stage least squares on its own
    /// regressors is least squares).
    pub fn system_instruments(&self, regressors: &[usize]) -> Vec<usize> {
        self.instruments_for(regressors)
            .unwrap_or_else(|| regressors.to_vec())
    }
}

/// A moderated design's moderation block and where its conditional
/// effects are evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeratedColumns {
    pub spec: Moderation,
    /// One term per moderator column: W itself, or with a categorical W
    /// (`ModeratorValues::Levels`) the indicator of each level above the
    /// lowest, in the levels' order.
    pub terms: Vec<ModeratorTerm>,
    /// Subtracted from X and W in the products: their means with
    /// `center`, else 0.
    pub x_shift: f64,
    pub w_shift: f64,
    /// The moderator values of the conditional effects, each with its label
    /// (`16th percentile`, `mean - 1 SD`, `value`, `level`).
    pub values: Vec<(String, f64)>,
    /// W's smallest and largest value in the estimation sample.
    pub range: (f64, f64),
}

/// One moderator column's place in the design.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeratorTerm {
    /// Its column, or None when the fixed effects absorb it (a moderator
    /// constant within units: its products still vary).
    pub w: Option<usize>,
    /// Its product with X (a or direct moderated) and with each mediator
    /// (b moderated; else none).
    pub xw: Option<usize>,
    pub mw: Vec<usize>,
}

impl ModeratedColumns {
    /// Whether W is categorical (one term per level above the lowest).
    pub fn categorical(&self) -> bool {
        self.spec.categorical()
    }

    /// Term `t`'s raw values from W's (`ModeratorTerm`): W, or a
    /// categorical W's indicator of its level t + 1.
    pub fn term_column(&self, w: &[f64], t: usize) -> Vec<f64> {
        term_column(w, self.categorical(), &self.values, t)
    }

    /// Where the conditional effects are evaluated, as the terms'
    /// coordinates: W less its shift for a continuous W, a level's
    /// indicators (all 0 at the lowest) for a categorical one.
    pub fn points(&self) -> Vec<Vec<f64>> {
        let terms = self.terms.len();
        self.values
            .iter()
            .enumerate()
            .map(|(k, (_, w))| match self.categorical() {
                true => (0..terms)
                    .map(|t| f64::from(u8::from(t + 1 == k)))
                    .collect(),
                false => vec![w - self.w_shift],
            })
            .collect()
    }
}

/// The interaction model's product columns X*M (one per mediator) and
/// the treatment change and sample means its natural effects are
/// evaluated at.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionColumns {
    pub xm: Vec<usize>,
    /// The treatment moves from x0 to x1.
    pub x0: f64,
    pub x1: f64,
    /// Sample means of X and of each M (a mediator's expected value at x0
    /// is its mean plus a (x0 - X's mean), at the controls' means).
    pub x_mean: f64,
    pub m_mean: Vec<f64>,
}

/// One absorbed fixed effect, for the small-sample correction.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedEffectDim {
    pub name: String,
    pub levels: usize,
    /// Every level lies inside one cluster (then its levels are not counted).
    pub nested: bool,
}

/// Sufficient statistics of the estimation sample.
#[derive(Debug, Clone)]
pub struct Design {
    pub source: String,
    pub fixed_effects: FixedEffects,
    pub names: Vec<String>,
    pub roles: Vec<Role>,
    pub layout: Layout,
    /// Column j of `z` is the transformed column divided by `scale[j]`.
    pub scale: Vec<f64>,
    pub n_obs: usize,
    pub n_clusters: usize,
    pub cluster_name: String,
    /// Observations per cluster.
    pub cluster_sizes: Vec<usize>,
    /// `n_clusters` rows of `packed_len(q)` entries: the packed `S_g`.
    pub stats: Vec<f64>,
    /// The transformed, scaled columns `z` themselves (q columns of n_obs,
    /// in the panel's observation order), for schemes that rearrange
    /// observations rather than reweight clusters (permutation).
    pub columns: Vec<Vec<f64>>,
    pub absorbed: Vec<FixedEffectDim>,
    /// The moderation block, in a moderated model.
    pub moderation: Option<ModeratedColumns>,
    /// The treatment-mediator product, in the interaction model.
    pub interaction: Option<InteractionColumns>,
    /// The mediators form a chain in their order (`crate::model::serial`).
    pub serial: bool,
    /// With `unit+GROUP^time` effects, what a replicate needs to partial
    /// them out of its own Gram (`crate::model::cells`); `stats` are of the
    /// fully absorbed columns.
    pub cells: Option<crate::model::cells::Cells>,
}

impl Design {
    /// Compute the transformed, scaled columns and per-cluster Gram matrices,
    /// refusing regressors that are constant, absorbed or collinear.
    pub fn build(panel: &Panel, fe: FixedEffects) -> Result<Design> {
        let n = panel.n_obs();
        let p = panel.n_controls;
        let m = panel.n_mediators;
        let n_inst = panel.n_instruments;
        let n_med_inst = panel.n_mediator_instruments;
        let n_nuisance = match fe {
            FixedEffects::None => 1,
            FixedEffects::Unit => 0,
            FixedEffects::UnitTime => panel.time.len() - 1,
            FixedEffects::UnitGroupTime => 0,
        };
        // Columns in design order, each transformed: (name, role, column, RMS
        // of the centred raw column, for telling constant from absorbed).
        let transform = |name: &str, role: Role, raw: &[f64]| {
            let centred = centre(raw);
            let raw = rms(&centred);
            (
                name.to_string(),
                role,
                absorb(centred, &panel.unit, fe),
                raw,
            )
        };
        let user = |k: usize, role: Role| transform(&panel.names[k], role, &panel.columns[k]);
        let n_mod = usize::from(panel.moderation.is_some());
        let (mut block, moderation) = match &panel.moderation {
            Some(spec) => moderation_block(panel, spec, &transform)?,
            None => (vec![], None),
        };
        // The interaction's products X*M, formed on the data.
        let interaction = panel.interaction.as_ref().map(|spec| {
            let x = &panel.columns[0];
            let (mut at, mut m_mean) = (Vec::new(), Vec::new());
            for j in 0..m {
                let med = &panel.columns[1 + p + j];
                let xm = product(x, 0.0, med, 0.0);
                let name = format!("{}:{}", panel.names[0], panel.names[1 + p + j]);
                block.push(transform(&name, Role::Moderator, &xm));
                at.push(block.len() - 1);
                m_mean.push(mean_sd(med).0);
            }
            let (x_mean, sd) = mean_sd(x);
            let (x0, x1) = spec.contrast.unwrap_or((x_mean, x_mean + sd));
            (at, x0, x1, x_mean, m_mean)
        });
        let layout = Layout {
            n_controls: p,
            n_nuisance,
            n_mediators: m,
            n_instruments: n_inst,
            n_mediator_instruments: n_med_inst,
            n_moderation: block.len(),
        };
        let q = layout.q();
        let mut entries = vec![user(0, Role::Treatment)];
        entries.extend((0..p).map(|k| user(1 + k, Role::Control)));
        match fe {
            FixedEffects::None => {
                entries.push(("(intercept)".to_string(), Role::Nuisance, vec![1.0; n], 1.0))
            }
            FixedEffects::Unit | FixedEffects::UnitGroupTime => {}
            FixedEffects::UnitTime => entries.extend((1..panel.time.len()).map(|t| {
                let d: Vec<f64> = panel
                    .time
                    .codes
                    .iter()
                    .map(|&c| if c as usize == t { 1.0 } else { 0.0 })
                    .collect();
                let name = format!("{}={}", panel.time.name, panel.time.levels[t]);
                (name, Role::Nuisance, demean_within(&d, &panel.unit), 1.0)
            })),
        }
        entries.extend((0..m).map(|j| user(1 + p + j, Role::Mediator)));
        entries.extend(block);
        entries.extend((0..n_inst).map(|j| user(1 + p + m + j, Role::Instrument)));
        entries.extend(
            (0..n_med_inst).map(|j| user(1 + p + m + n_inst + j, Role::MediatorInstrument)),
        );
        entries.push(user(1 + p + m + n_inst + n_med_inst + n_mod, Role::Outcome));
        let mut names = Vec::with_capacity(q);
        let mut roles = Vec::with_capacity(q);
        let mut cols: Vec<Vec<f64>> = Vec::with_capacity(q);
        let mut raw_rms = Vec::with_capacity(q);
        for (name, role, col, raw) in entries {
            names.push(name);
            roles.push(role);
            cols.push(col);
            raw_rms.push(raw);
        }

        let source = panel.source.clone();
        // Group-by-period effects: partialled out of the unit-demeaned
        // columns.
        let cell_index = match (fe, &panel.cell_group) {
            (FixedEffects::UnitGroupTime, Some(group)) => {
                let index = crate::model::cells::CellIndex::new(panel, group);
                index.residualise(&mut cols, &source)?;
                Some(index)
            }
            _ => None,
        };
        let mut scale = Vec::with_capacity(q);
        for j in 0..q {
            let s = rms(&cols[j]);
            if roles[j] != Role::Nuisance {
                check_variation(&source, fe, &names[j], roles[j], s, raw_rms[j])?;
            }
            if !(s > 0.0) {
                return Err(Error::Collinear {
                    file: source,
                    message: format!(
                        "{} '{}' has no variation left in the estimation sample",
                        roles[j].describe(),
                        names[j]
                    ),
                });
            }
            scale.push(s);
            cols[j].iter_mut().for_each(|v| *v /= s);
        }

        // Per-cluster packed Gram matrices.
        let g_count = panel.cluster.len();
        let cells = cell_index
            .as_ref()
            .map(|index| index.statistics(&cols, &panel.cluster.codes));
        let pl = packed_len(q);
        let mut stats = vec![0.0; g_count * pl];
        let mut cluster_sizes = vec![0usize; g_count];
        let mut row = vec![0.0; q];
        for i in 0..n {
            let g = panel.cluster.codes[i] as usize;
            cluster_sizes[g] += 1;
            for j in 0..q {
                row[j] = cols[j][i];
            }
            let s = &mut stats[g * pl..(g + 1) * pl];
            let mut k = 0;
            for a in 0..q {
                let ra = row[a];
                for b in a..q {
                    s[k] += ra * row[b];
                    k += 1;
                }
            }
        }

        let mut absorbed = Vec::new();
        let cluster_is = |f: &Factor| f.name == panel.cluster.name || f.nested_in(&panel.cluster);
        if fe.has_unit() {
            absorbed.push(FixedEffectDim {
                name: panel.unit.name.clone(),
                levels: panel.unit.len(),
                nested: cluster_is(&panel.unit),
            });
        }
        if fe.has_time() {
            absorbed.push(FixedEffectDim {
                name: panel.time.name.clone(),
                levels: panel.time.len(),
                nested: cluster_is(&panel.time),
            });
        }
        if let (Some(index), Some(group)) = (&cell_index, &panel.cell_group) {
            // A cell lies in one cluster when its observations do.
            let cells = group.interaction(&panel.time);
            absorbed.push(FixedEffectDim {
                name: cells.name.clone(),
                levels: index.levels(),
                nested: cells.nested_in(&panel.cluster),
            });
        }

        let design = Design {
            source,
            fixed_effects: fe,
            names,
            roles,
            layout,
            scale,
            n_obs: n,
            n_clusters: g_count,
            cluster_name: panel.cluster.name.clone(),
            cluster_sizes,
            stats,
            columns: cols,
            absorbed,
            moderation: moderation.map(|(terms, [x_shift, w_shift], values, range)| {
                let place = |k: Option<usize>| k.map(|k| layout.moderation(k));
                ModeratedColumns {
                    spec: panel.moderation.clone().expect("a moderated panel"),
                    terms: terms
                        .into_iter()
                        .map(|(w, xw, mw)| ModeratorTerm {
                            w: place(w),
                            xw: place(xw),
                            mw: mw.iter().map(|&k| layout.moderation(k)).collect(),
                        })
                        .collect(),
                    x_shift,
                    w_shift,
                    values,
                    range,
                }
            }),
            interaction: interaction.map(|(at, x0, x1, x_mean, m_mean)| InteractionColumns {
                xm: at.iter().map(|&k| layout.moderation(k)).collect(),
                x0,
                x1,
                x_mean,
                m_mean,
            }),
            serial: panel.serial,
            cells,
        };
        design.check_collinearity()?;
        let k = design.ssc_parameters(layout.outcome_regressors().len());
        if n <= k {
            return Err(Error::TooLittleData {
                file: design.source.clone(),
                message: format!(
                    "{n} observations are too few for {k} parameters (slopes and fixed effects); \
                     the model is not identified"
                ),
            });
        }
        Ok(design)
    }

    /// The same statistics indexed by a larger run's clusters: cluster c
    /// of this design becomes cluster `map[c]` of `n_clusters`, every other
    /// cluster has no observations (zero statistics). A group's model so
    /// reweighted by the run's weight rows is its model reweighted by the
    /// weights of its own clusters (the GPU engine's form of a cluster map).
    pub fn on_clusters(&self, map: &[usize], n_clusters: usize) -> Design {
        let pl = packed_len(self.q());
        let mut stats = vec![0.0; n_clusters * pl];
        let mut sizes = vec![0; n_clusters];
        for (c, &to) in map.iter().enumerate() {
            stats[to * pl..(to + 1) * pl].copy_from_slice(self.cluster_stats(c));
            sizes[to] = self.cluster_sizes[c];
        }
        Design {
            stats,
            cluster_sizes: sizes,
            n_clusters,
            cells: self.cells.as_ref().map(|c| c.on_clusters(map)),
            ..self.clone()
        }
    }

    /// The design of the clusters `clusters` alone: cluster k of it is
    /// cluster `clusters[k]` of this one (its statistics and size; `n_obs`
    /// their total). The observation columns and absorbed dimensions stay
    /// the whole sample's.
    pub fn subset(&self, clusters: &[usize]) -> Design {
        let mut stats = Vec::with_capacity(clusters.len() * packed_len(self.q()));
        for &c in clusters {
            stats.extend_from_slice(self.cluster_stats(c));
        }
        let cluster_sizes: Vec<usize> = clusters.iter().map(|&c| self.cluster_sizes[c]).collect();
        Design {
            stats,
            n_obs: cluster_sizes.iter().sum(),
            cluster_sizes,
            n_clusters: clusters.len(),
            cells: self.cells.as_ref().map(|c| c.subset(clusters)),
            ..self.clone()
        }
    }

    /// Number of columns of `z`.
    pub fn q(&self) -> usize {
        self.layout.q()
    }

    /// Packed `S_g` of cluster `g`.
    pub fn cluster_stats(&self, g: usize) -> &[f64] {
        let pl = packed_len(self.q());
        &self.stats[g * pl..(g + 1) * pl]
    }

    /// Packed Gram matrix of the whole sample: the sum of the `S_g`.
    pub fn total_packed(&self) -> Vec<f64> {
        let mut sum = vec![0.0; packed_len(self.q())];
        for g in 0..self.n_clusters {
            for (s, v) in sum.iter_mut().zip(self.cluster_stats(g)) {
                *s += v;
            }
        }
        sum
    }

    /// Full `q x q` Gram matrix of the whole sample (scaled columns).
    pub fn total_gram(&self) -> Vec<f64> {
        unpack(&self.total_packed(), self.q())
    }

    /// Parameters counted by the CR1 small-sample factor for an equation with
    /// `n_regressors` design columns, as fixest and pyfixest count them by
    /// default (`k_fixef = "nonnested"`): slopes (the intercept included when
    /// there are no fixed effects), plus fixed-effect levels less one per
    /// extra fixed effect, less the levels of effects nested in the clusters,
    /// plus one per nested effect. Unit + period effects clustered by unit
    /// give slopes + T.
    pub fn ssc_parameters(&self, n_regressors: usize) -> usize {
        let dummies = match self.fixed_effects {
            FixedEffects::UnitTime => self.layout.n_nuisance,
            _ => 0,
        };
        cr1_parameters(n_regressors - dummies, &self.absorbed)
    }

    /// Sequentially test each regressor (nuisance columns first, then the
    /// treatment, controls, mediators and moderation terms) against those
    /// before it; the first
    /// one that is a linear combination of earlier ones is named.
    fn check_collinearity(&self) -> Result<()> {
        let q = self.q();
        let a = self.total_gram();
        let layout = self.layout;
        let mut order: Vec<usize> =
            (1 + layout.n_controls..1 + layout.n_controls + layout.n_nuisance).collect();
        order.extend(0..1 + layout.n_controls);
        order.extend((0..layout.n_mediators).map(|j| layout.mediator(j)));
        order.extend((0..layout.n_moderation).map(|k| layout.moderation(k)));
        order.extend(
            (0..layout.n_instruments + layout.n_mediator_instruments).map(|j| layout.instrument(j)),
        );

        // Incremental Cholesky of a[order, order].
        let mut accepted: Vec<usize> = Vec::new();
        let mut l: Vec<Vec<f64>> = Vec::new(); // rows of L
        for &j in &order {
            let k = accepted.len();
            let mut w = vec![0.0; k];
            for r in 0..k {
                let mut s = a[accepted[r] * q + j];
                for c in 0..r {
                    s -= l[r][c] * w[c];
                }
                w[r] = s / l[r][r];
            }
            let resid = a[j * q + j] - w.iter().map(|v| v * v).sum::<f64>();
            if resid <= 1e-10 * a[j * q + j] {
                // Coefficients of j on the accepted columns: L' beta = w.
                let mut beta = w.clone();
                for r in (0..k).rev() {
                    let mut s = beta[r];
                    for c in r + 1..k {
                        s -= l[c][r] * beta[c];
                    }
                    beta[r] = s / l[r][r];
                }
                return Err(self.collinear_error(j, &accepted, &beta));
            }
            let mut row = w;
            row.push(resid.sqrt());
            l.push(row);
            accepted.push(j);
        }
        Ok(())
    }

    fn collinear_error(&self, j: usize, accepted: &[usize], beta: &[f64]) -> Error {
        let mut partners = Vec::new();
        let mut with_fe = false;
        for (&c, &b) in accepted.iter().zip(beta) {
            if b.abs() > 1e-6 {
                if self.roles[c] == Role::Nuisance {
                    with_fe = true;
                } else {
                    partners.push(format!("{} '{}'", self.roles[c].describe(), self.names[c]));
                }
            }
        }
        let fe_words = match self.fixed_effects {
            FixedEffects::None => "the intercept",
            _ => "the period fixed effects",
        };
        if with_fe {
            partners.push(fe_words.to_string());
        }
        let message = if self.roles[j] == Role::Nuisance {
            format!(
                "the period fixed effects are not identified ('{}' is a combination of other periods); \
                 check that the panel is connected",
                self.names[j]
            )
        } else {
            format!(
                "{} '{}' is perfectly collinear with {}; drop one of them",
                self.roles[j].describe(),
                self.names[j],
                join_words(&partners)
            )
        };
        Error::Collinear {
            file: self.source.clone(),
            message,
        }
    }
}

fn join_words(items: &[String]) -> String {
    match items.len() {
        0 => "the other regressors".into(),
        1 => items[0].clone(),
        _ => format!(
            "{} and {}",
            items[..items.len() - 1].join(", "),
            items[items.len() - 1]
        ),
    }
}

/// Refuse a user column that is constant, or constant within units.
fn check_variation(
    source: &str,
    fe: FixedEffects,
    name: &str,
    role: Role,
    transformed_rms: f64,
    raw_rms: f64,
) -> Result<()> {
    let what = role.describe();
    let message = if raw_rms == 0.0 {
        format!("{what} '{name}' is constant (the same value in every row); it cannot be estimated")
    } else if transformed_rms <= 1e-9 * raw_rms && fe.has_cells() {
        format!(
            "{what} '{name}' varies only by unit and by group and period, so the unit and \
             group-by-period fixed effects absorb it; drop it or use coarser fixed effects"
        )
    } else if transformed_rms <= 1e-9 * raw_rms {
        debug_assert!(fe.has_unit());
        format!(
            "{what} '{name}' does not vary within units, so the unit fixed effects absorb it; \
             drop it or set model.fixed_effects to none"
        )
    } else {
        return Ok(());
    };
    Err(Error::Collinear {
        file: source.to_string(),
        message,
    })
}

/// A transformed column: (name, role, column, RMS of the centred raw
/// column).
type Entry = (String, Role, Vec<f64>, f64);

/// Each moderator term's block positions (W, X*W, each M*W; W's None when
/// the fixed effects absorb it), X's and W's shifts in the products, the
/// moderator values and W's range.
type BlockPositions = (
    Vec<(Option<usize>, Option<usize>, Vec<usize>)>,
    [f64; 2],
    Vec<(String, f64)>,
    (f64, f64),
);

/// A categorical moderator's most levels: each adds an indicator and its
/// products to every moderated equation.
pub const MAX_LEVELS: usize = 10;

/// The moderation block's columns, formed on the data with X and W
/// centred first under `center`, each then transformed by `transform`:
/// per moderator term (W, or each level's indicator but the lowest's) the
/// term unless it does not vary once the fixed effects are absorbed, its
/// product with X when a or the direct path is moderated, with each M when
/// b is.
fn moderation_block(
    panel: &Panel,
    spec: &Moderation,
    transform: &dyn Fn(&str, Role, &[f64]) -> Entry,
) -> Result<(Vec<Entry>, Option<BlockPositions>)> {
    let w_column = panel.moderator_column();
    let (x, w) = (&panel.columns[0], &panel.columns[w_column]);
    let (x_shift, w_shift) = match spec.center {
        true => (mean_sd(x).0, mean_sd(w).0),
        false => (0.0, 0.0),
    };
    let (x_name, w_name) = (&panel.names[0], &panel.names[w_column]);
    let values = moderator_values(&spec.at, w);
    let n_terms = match spec.categorical() {
        true => {
            if values.len() < 2 {
                return Err(Error::InvalidOption {
                    option: "model.moderator".into(),
                    message: format!(
                        "the categorical moderator '{w_name}' takes one value in the estimation \
                         sample; it needs two levels or more"
                    ),
                });
            }
            if values.len() > MAX_LEVELS {
                return Err(Error::InvalidOption {
                    option: "model.at".into(),
                    message: format!(
                        "the categorical moderator '{w_name}' has {} distinct values; at most \
                         {MAX_LEVELS} levels are supported (is it continuous? then drop \
                         at = \"levels\")",
                        values.len()
                    ),
                });
            }
            values.len() - 1
        }
        false => 1,
    };
    let mut block = Vec::new();
    let mut terms = Vec::new();
    for t in 0..n_terms {
        // The term's raw column (uncentred: `product` shifts) and name.
        let raw = term_column(w, spec.categorical(), &values, t);
        let name = match spec.categorical() {
            true => format!("{w_name}={}", values[t + 1].1),
            false => w_name.clone(),
        };
        let moderator = transform(&name, Role::Moderator, &raw);
        // A W that varies only between units is the unit effects' (a
        // constant one is refused as any constant column is).
        let absorbed = moderator.3 > 0.0 && rms(&moderator.2) <= 1e-9 * moderator.3;
        let w_at = (!absorbed).then(|| {
            block.push(moderator);
            block.len() - 1
        });
        // (A categorical W is never centred: `Moderation::validate`.)
        let mut product = |a: &[f64], a_shift: f64, a_name: &str| {
            let col = product(a, a_shift, &raw, w_shift);
            block.push(transform(
                &format!("{a_name}:{name}"),
                Role::Moderator,
                &col,
            ));
            block.len() - 1
        };
        let xw_at = (spec.a || spec.direct).then(|| product(x, x_shift, x_name));
        let mut mw_at = Vec::new();
        if spec.b {
            for j in 0..panel.n_mediators {
                let column = 1 + panel.n_controls + j;
                mw_at.push(product(&panel.columns[column], 0.0, &panel.names[column]));
            }
        }
        terms.push((w_at, xw_at, mw_at));
    }
    let range = w
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    Ok((block, Some((terms, [x_shift, w_shift], values, range))))
}

/// Moderator term `t`'s raw values from W's `w`: W itself, or with a
/// categorical W (its levels `values`) the 0/1 indicator of level t + 1.
fn term_column(w: &[f64], categorical: bool, values: &[(String, f64)], t: usize) -> Vec<f64> {
    match categorical {
        true => {
            let level = values[t + 1].1;
            w.iter().map(|&v| f64::from(u8::from(v == level))).collect()
        }
        false => w.to_vec(),
    }
}

/// The product column `(a - a_shift)(b - b_shift)`, as a moderated or
/// interaction model forms it on the data.
pub fn product(a: &[f64], a_shift: f64, b: &[f64], b_shift: f64) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(u, v)| (u - a_shift) * (v - b_shift))
        .collect()
}

/// A design column that is a product with the treatment (X*W, X*M), for
/// re-forming it from a permuted treatment: `product(x, x_shift, other,
/// other_shift)`, then transformed as the design transforms its columns
/// ([`absorb`] of the centred column) and divided by its scale.
#[derive(Debug, Clone)]
pub struct TreatmentProduct {
    pub column: usize,
    pub x_shift: f64,
    /// The other factor's raw values and shift.
    pub other: Vec<f64>,
    pub other_shift: f64,
}

impl Design {
    /// The columns of this design that multiply the treatment, with the
    /// raw factors of `panel` (the panel it was built from).
    pub fn treatment_products(&self, panel: &Panel) -> Vec<TreatmentProduct> {
        let mut products = Vec::new();
        if let Some(md) = &self.moderation {
            let w = &panel.columns[panel.moderator_column()];
            for (t, term) in md.terms.iter().enumerate() {
                if let Some(column) = term.xw {
                    products.push(TreatmentProduct {
                        column,
                        x_shift: md.x_shift,
                        other: md.term_column(w, t),
                        other_shift: md.w_shift,
                    });
                }
            }
        }
        if let Some(i) = &self.interaction {
            for (j, &column) in i.xm.iter().enumerate() {
                products.push(TreatmentProduct {
                    column,
                    x_shift: 0.0,
                    other: panel.columns[1 + panel.n_controls + j].clone(),
                    other_shift: 0.0,
                });
            }
        }
        products
    }
}

/// Parameters the CR1 small-sample factor counts for `slopes` estimated
/// coefficients beside the `absorbed` fixed effects, as fixest and pyfixest
/// count them by default (`k_fixef = "nonnested"`; see
/// `Design::ssc_parameters`).
pub fn cr1_parameters(slopes: usize, absorbed: &[FixedEffectDim]) -> usize {
    if absorbed.is_empty() {
        return slopes;
    }
    let levels: usize = absorbed.iter().map(|f| f.levels).sum();
    let adj = levels - (absorbed.len() - 1);
    let nested_levels: usize = absorbed.iter().filter(|f| f.nested).map(|f| f.levels).sum();
    let nested_count = absorbed.iter().filter(|f| f.nested).count();
    slopes + adj - nested_levels + nested_count
}

/// A centred column with the unit effects absorbed (demeaned within units)
/// where the model has them: the design's transform before scaling.
pub fn absorb(centred: Vec<f64>, unit: &Factor, fe: FixedEffects) -> Vec<f64> {
    if fe.has_unit() {
        demean_within(&centred, unit)
    } else {
        centred
    }
}

/// The moderator values of the conditional effects, labelled, from W's
/// values in the estimation sample (percentiles of type 7, as R's and
/// NumPy's default; the SD with n - 1).
fn moderator_values(at: &ModeratorValues, w: &[f64]) -> Vec<(String, f64)> {
    match at {
        ModeratorValues::Percentiles(ps) => {
            let mut sorted = w.to_vec();
            sorted.sort_by(f64::total_cmp);
            ps.iter()
                .map(|&p| {
                    let label = format!("{p}th percentile");
                    (label, quantile_sorted(&sorted, p / 100.0))
                })
                .collect()
        }
        ModeratorValues::MeanSd => {
            let (mean, sd) = mean_sd(w);
            vec![
                ("mean - 1 SD".into(), mean - sd),
                ("mean".into(), mean),
                ("mean + 1 SD".into(), mean + sd),
            ]
        }
        ModeratorValues::Values(v) => v.iter().map(|&x| ("value".into(), x)).collect(),
        ModeratorValues::Levels => {
            let mut levels = w.to_vec();
            levels.sort_by(f64::total_cmp);
            levels.dedup();
            levels.into_iter().map(|v| ("level".into(), v)).collect()
        }
    }
}

/// A column's mean and standard deviation (n - 1).
fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let ss = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
    (mean, (ss / (n - 1.0)).sqrt())
}

pub fn centre(x: &[f64]) -> Vec<f64> {
    let mean = mean_sd(x).0;
    x.iter().map(|v| v - mean).collect()
}

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

/// Subtract each unit's mean.
pub fn demean_within(x: &[f64], unit: &Factor) -> Vec<f64> {
    let mut sum = vec![0.0; unit.len()];
    let mut count = vec![0usize; unit.len()];
    for (&c, &v) in unit.codes.iter().zip(x) {
        sum[c as usize] += v;
        count[c as usize] += 1;
    }
    x.iter()
        .zip(&unit.codes)
        .map(|(&v, &c)| v - sum[c as usize] / count[c as usize] as f64)
        .collect()
}
