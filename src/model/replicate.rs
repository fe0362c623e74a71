//! One replicate's statistics from its Gram matrix: the three equations of
//! the mediation model solved by one Cholesky factorisation of the regressor
//! block, giving a, b, c, c', the indirect effects and the proportion
//! mediated in the units of the data. The same code serves the point estimate
//! check, every reweighting scheme and (as the reference) the GPU engine.
//!
//! # Statistic layout (per replicate, `StatLayout::len()` values)
//!
//! With m mediators: `a_1..a_m`, `b_1..b_m`, `a_1 b_1..a_m b_m`, `c`, `c'`,
//! `indirect = sum_j a_j b_j`, `proportion = indirect / c`, the suppression
//! share `|indirect / c'|`, then the pairwise
//! contrasts `a_j b_j - a_k b_k` (j < k), studentized, the replicate's
//! own SEs of `StatLayout::se_targets`, and, with a sensitivity analysis
//! over n values of rho (one mediator), `kappa` = sd(outcome residual) /
//! sd(mediator residual) and the n values ACME(rho) (`crate::model::sensitivity`).
//! A replicate whose
//! regressor block is singular (a degenerate resample) gives NaN everywhere.
//!
//! An instrumented design is solved by two-stage least squares from the same
//! Gram matrix (`estimate::TwoStage`): one projection for the total and
//! mediator equations, which share regressors and instruments, one for the
//! outcome equation.

use crate::math::linalg::{chol_solve, cholesky, packed_index, packed_len};
use crate::model::design::{Design, Layout};
use crate::model::effect::{EffectKey, parse_path};
use crate::model::estimate::TwoStage;
use crate::model::moderation::{self, ModerationStats};
use crate::model::serial::Chain;

/// Positions of the statistics of one replicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatLayout {
    pub mediators: usize,
    /// Whether the replicate's own CR1 standard errors of `a_j b_j` and of
    /// the indirect effect follow (for studentized intervals).
    pub studentized: bool,
    /// Values of rho of the sensitivity analysis (0: none); kappa and
    /// ACME(rho) follow.
    pub sensitivity: usize,
    /// A moderated model's statistics, after the rest.
    pub moderation: ModerationStats,
    /// The mediators form a chain: its links, longer paths and their
    /// contrasts come last (`crate::model::serial`).
    pub serial: bool,
    /// Paths of the omitted-variable bounds whose robustness value each
    /// replicate gives (`crate::model::confounding`; 0: none), after the
    /// rest but the studentized SEs beyond the SE targets.
    pub robustness: usize,
}

impl StatLayout {
    /// The layout of `mediators` with nothing else.
    pub fn plain(mediators: usize) -> StatLayout {
        StatLayout {
            mediators,
            studentized: false,
            sensitivity: 0,
            moderation: ModerationStats::default(),
            serial: false,
            robustness: 0,
        }
    }

    /// The layout of `design`'s model (no studentized SEs, no sensitivity
    /// analysis).
    pub fn of(design: &Design) -> StatLayout {
        StatLayout {
            moderation: ModerationStats::of(design),
            serial: design.serial,
            ..StatLayout::plain(design.layout.n_mediators)
        }
    }

    /// The chain of the mediators (serial or parallel).
    pub fn chain(&self) -> Chain {
        Chain::new(self.mediators, self.serial)
    }

    /// Number of statistics per replicate.
    pub fn len(&self) -> usize {
        self.extra_se_base() + self.extra_ses()
    }

    /// Where the replicate's own SEs of a serial, moderated or interaction
    /// model's effects start (studentized): after everything else, so the
    /// other positions do not depend on them.
    fn extra_se_base(&self) -> usize {
        self.rv(self.robustness)
    }

    /// The robustness value of the k-th path of the omitted-variable
    /// bounds: after the serial model's statistics.
    pub fn rv(&self, k: usize) -> usize {
        self.serial_base() + self.serial_len() + k
    }

    /// The replicate's own SEs beyond `se_targets`' (studentized): a
    /// serial model's longer paths and their contrasts, a moderated or
    /// interaction model's effects.
    fn extra_ses(&self) -> usize {
        match self.studentized {
            true => self.studentized_stats().len() - self.se_targets().len(),
            false => 0,
        }
    }

    /// The statistics that get the replicate's own SE when studentized, in
    /// the order of their SEs: each a_j b_j, the indirect effect and the
    /// contrasts (`se_targets`), then a serial model's longer paths and
    /// their contrasts, then a moderated or interaction model's effects
    /// (`moderation::studentized`: not its coefficients, as a and b have
    /// none).
    pub fn studentized_stats(&self) -> Vec<usize> {
        let m = self.mediators;
        let mut stats: Vec<usize> = (0..m).map(|j| self.ab(j)).collect();
        stats.push(self.indirect());
        stats.extend((0..self.n_contrasts()).map(|i| self.contrast(i)));
        if self.serial {
            let chain = self.chain();
            stats.extend((m..chain.paths.len()).map(|i| self.path(i)));
            let plain = self.n_contrasts();
            stats.extend((plain..chain.contrasts.len()).map(|i| self.any_contrast(i)));
        }
        let coefficient = self.moderation.coefficients();
        stats.extend(
            coefficient
                .iter()
                .zip(self.moderation_positions())
                .filter(|(c, _)| !**c)
                .map(|(_, at)| at),
        );
        stats
    }

    /// Where each of `studentized_stats`' SEs is, in their order.
    pub fn studentized_positions(&self) -> Vec<usize> {
        self.studentized_stats()
            .into_iter()
            .map(|s| self.se_of(s).expect("a studentized statistic has an SE"))
            .collect()
    }

    /// Where the replicate's own SE of statistic `stat` is (studentized
    /// layouts; None for a statistic without one).
    pub fn se_of(&self, stat: usize) -> Option<usize> {
        if !self.studentized {
            return None;
        }
        let i = self.studentized_stats().iter().position(|&s| s == stat)?;
        let plain = self.se_targets().len();
        Some(match i < plain {
            true => self.se_target(i),
            false => self.extra_se_base() + i - plain,
        })
    }

    /// Where a serial model's statistics start: after the moderation's.
    fn serial_base(&self) -> usize {
        self.moderation_base() + self.moderation.len()
    }

    /// A serial model's statistics: links, longer paths, their contrasts
    /// (counted as `Chain` lists them, without building one: every
    /// replicate's layout asks).
    fn serial_len(&self) -> usize {
        if !self.serial {
            return 0;
        }
        let m = self.mediators;
        let pairs = |n: usize| n * n.saturating_sub(1) / 2;
        // m(m-1)/2 links; 2^m - 1 paths, m of them single; contrasts: every
        // pair of paths but the singles' pairs.
        let paths = (1 << m) - 1;
        pairs(m) + (paths - m) + (pairs(paths) - pairs(m))
    }

    /// The serial model's link i (`Chain::links`).
    pub fn link(&self, i: usize) -> usize {
        self.serial_base() + i
    }

    /// The serial model's path i (`Chain::paths`; the single mediators'
    /// are `ab(j)`).
    pub fn path(&self, i: usize) -> usize {
        let m = self.mediators;
        match i < m {
            true => self.ab(i),
            false => self.serial_base() + m * (m - 1) / 2 + i - m,
        }
    }

    /// Contrast i of `Chain::contrasts` (the parallel model's first).
    pub fn any_contrast(&self, i: usize) -> usize {
        let (m, plain) = (self.mediators, self.n_contrasts());
        match i < plain {
            true => self.contrast(i),
            false => self.serial_base() + m * (m - 1) / 2 + (1 << m) - 1 - m + i - plain,
        }
    }

    /// Where a moderated model's statistics start: after the rest.
    fn moderation_base(&self) -> usize {
        3 * self.mediators
            + 5
            + self.n_contrasts()
            + if self.studentized {
                self.se_targets().len()
            } else {
                0
            }
            + if self.sensitivity > 0 {
                1 + self.sensitivity
            } else {
                0
            }
    }
    /// `kappa`, the ratio of the residual SDs of the outcome and mediator
    /// equations (sensitivity analysis).
    pub fn kappa(&self) -> usize {
        self.se_base()
            + if self.studentized {
                self.se_targets().len()
            } else {
                0
            }
    }
    /// ACME at the k-th value of rho.
    pub fn acme(&self, k: usize) -> usize {
        self.kappa() + 1 + k
    }
    /// Pairwise contrasts of the specific indirect effects (m(m-1)/2).
    pub fn n_contrasts(&self) -> usize {
        self.mediators * self.mediators.saturating_sub(1) / 2
    }
    /// The mediator pairs (j, k), j < k, of the contrasts, in order.
    pub fn contrast_pairs(&self) -> Vec<(usize, usize)> {
        let m = self.mediators;
        (0..m)
            .flat_map(|j| (j + 1..m).map(move |k| (j, k)))
            .collect()
    }
    /// Contrast i: `a_j b_j - a_k b_k` for the i-th pair.
    pub fn contrast(&self, i: usize) -> usize {
        3 * self.mediators + 5 + i
    }
    /// The indirect-effect combinations that get the replicate's own SE,
    /// as weights over the specific indirect effects a_j b_j: each a_j b_j,
    /// their sum, then each contrast (SEs in this order follow the
    /// statistics).
    pub fn se_targets(&self) -> Vec<Vec<f64>> {
        let m = self.mediators;
        let unit =
            |j: usize| -> Vec<f64> { (0..m).map(|i| if i == j { 1.0 } else { 0.0 }).collect() };
        (0..m)
            .map(unit)
            .chain([vec![1.0; m]])
            .chain(self.contrast_pairs().into_iter().map(|(j, k)| {
                let mut w = unit(j);
                w[k] = -1.0;
                w
            }))
            .collect()
    }
    /// Where the replicate's own SEs start.
    fn se_base(&self) -> usize {
        3 * self.mediators + 5 + self.n_contrasts()
    }
    /// The replicate's own SE of `se_targets()[t]`.
    pub fn se_target(&self, t: usize) -> usize {
        self.se_base() + t
    }
    /// The replicate's own standard error of the indirect effect.
    pub fn se_indirect(&self) -> usize {
        self.se_base() + self.mediators
    }
    /// Never empty; here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn a(&self, j: usize) -> usize {
        j
    }
    pub fn b(&self, j: usize) -> usize {
        self.mediators + j
    }
    pub fn ab(&self, j: usize) -> usize {
        2 * self.mediators + j
    }
    pub fn c(&self) -> usize {
        3 * self.mediators
    }
    pub fn c_prime(&self) -> usize {
        3 * self.mediators + 1
    }
    pub fn indirect(&self) -> usize {
        3 * self.mediators + 2
    }
    pub fn proportion(&self) -> usize {
        3 * self.mediators + 3
    }
    /// `|indirect / c'|`, the share of the direct effect the indirect
    /// effects offset (the suppression share).
    pub fn suppression_share(&self) -> usize {
        3 * self.mediators + 4
    }
    /// Where a moderated or interaction model's statistics go, in
    /// `ModerationStats::keys`' order.
    pub fn moderation_positions(&self) -> Vec<usize> {
        (0..self.moderation.len())
            .map(|k| self.moderation_base() + k)
            .collect()
    }

    /// The statistic of a moderated or interaction model's `key`.
    fn moderation_stat(&self, key: &EffectKey, mediators: &[String]) -> Option<usize> {
        let at = self
            .moderation
            .keys(mediators)
            .iter()
            .position(|k| k == key)?;
        Some(self.moderation_base() + at)
    }

    /// The statistic behind an effect key of summary.json.
    pub fn index_of(&self, key: &str, mediators: &[String]) -> Option<usize> {
        self.position(&EffectKey::parse(key, mediators)?, mediators)
    }

    /// The statistic of `key`.
    pub fn position(&self, key: &EffectKey, mediators: &[String]) -> Option<usize> {
        let path = |text: &str| {
            let path = parse_path(text, mediators)?;
            self.chain().paths.iter().position(|p| *p == path)
        };
        match key {
            EffectKey::A(_) => key.mediator(mediators).map(|j| self.a(j)),
            EffectKey::B(_) => key.mediator(mediators).map(|j| self.b(j)),
            EffectKey::Indirect(Some(text)) => path(text).map(|i| self.path(i)),
            EffectKey::Indirect(None) => Some(self.indirect()),
            EffectKey::C => Some(self.c()),
            EffectKey::CPrime => Some(self.c_prime()),
            EffectKey::ProportionMediated => Some(self.proportion()),
            EffectKey::SuppressionShare => Some(self.suppression_share()),
            EffectKey::Contrast(first, second) => {
                let pair = (path(first)?, path(second)?);
                let i = self.chain().contrasts.iter().position(|&p| p == pair)?;
                Some(self.any_contrast(i))
            }
            EffectKey::D(from, to) => {
                let at = |name: &str| mediators.iter().position(|m| m == name);
                let link = (at(to)?, at(from)?);
                let i = self.chain().links.iter().position(|&l| l == link)?;
                Some(self.link(i))
            }
            EffectKey::Sensitivity(k) => (*k < self.sensitivity).then(|| self.acme(*k)),
            EffectKey::RobustnessValue(k) => (*k < self.robustness).then(|| self.rv(*k)),
            EffectKey::A3(..)
            | EffectKey::B3(..)
            | EffectKey::C3Prime(_)
            | EffectKey::ConditionalIndirect(..)
            | EffectKey::ConditionalDirect(_)
            | EffectKey::IndexModeratedMediation(..)
            | EffectKey::IndirectDifference(..)
            | EffectKey::Interaction(_)
            | EffectKey::NaturalDirect
            | EffectKey::NaturalIndirect(_) => self.moderation_stat(key, mediators),
        }
    }
}

/// Solves replicate Gram matrices of one design. Holds scratch space, so
/// each thread keeps its own.
///
/// The regressor block and the outcome row are factored together: with
/// `L` the Cholesky factor of the regressors (treatment, controls, nuisance,
/// mediators), row `y` of the extended factor is `L^{-1} A[regressors, y]`,
/// whose leading part is the forward solve of the total-effect equation
/// (the factor of a leading block is the leading block of the factor), and
/// row `k0 + j` of `L` already is the forward solve of mediator j's equation.
/// Each equation then needs one back substitution.
#[derive(Debug, Clone)]
pub struct Solver {
    q: usize,
    k0: usize,
    ko: usize,
    m: usize,
    /// Ratios turning scaled coefficients into data units.
    x_to_m: Vec<f64>,
    x_to_y: f64,
    m_to_y: Vec<f64>,
    pub layout: StatLayout,
    /// Row-major q x q; the lower triangle holds the factor.
    l: Vec<f64>,
    inv_diag: Vec<f64>,
    rhs: Vec<f64>,
    /// Two-stage least squares instead, when the treatment is instrumented.
    iv: Option<IvState>,
    /// The rho grid of the sensitivity analysis (empty: none).
    rho: Vec<f64>,
    /// The omitted-variable bounds' paths whose robustness value each
    /// replicate gives: each path's Gram columns
    /// (`confounding::replicate_orders`), and scratch.
    robustness: Vec<Vec<usize>>,
    rv_scratch: Vec<f64>,
    /// A moderated model's equations, solved one by one instead.
    moderated: Option<Moderated>,
    /// A serial model's chain and scratch.
    chain: Option<SerialState>,
    /// [`Solver::solve_lanes`]' scratch.
    lanes: LaneScratch,
}

/// A serial model's chain, its path coefficients (the links filled by the
/// mediator equations, a and b copied in [`SerialState::fill`]) and its
/// indirect effects.
#[derive(Debug, Clone)]
struct SerialState {
    chain: Chain,
    theta: Vec<f64>,
    effects: Vec<f64>,
}

impl SerialState {
    fn new(m: usize) -> SerialState {
        let chain = Chain::new(m, true);
        SerialState {
            theta: vec![0.0; chain.theta_len()],
            effects: Vec::new(),
            chain,
        }
    }

    /// The chain's statistics from the replicate's a, b (in `out`) and
    /// links (`self.theta`'s, after a and b): the links, the longer paths,
    /// the total indirect effect over every path (with the proportion
    /// mediated and the suppression share that divide it) and the longer
    /// paths' contrasts.
    fn fill(&mut self, lay: StatLayout, out: &mut [f64]) {
        let (c, m) = (&self.chain, lay.mediators);
        for j in 0..m {
            self.theta[j] = out[lay.a(j)];
            self.theta[m + j] = out[lay.b(j)];
        }
        c.indirect_effects(&self.theta, &mut self.effects);
        for i in 0..c.links.len() {
            out[lay.link(i)] = self.theta[2 * m + i];
        }
        let n = c.paths.len();
        for i in m..n {
            out[lay.path(i)] = self.effects[i];
        }
        let total = self.effects[n];
        out[lay.indirect()] = total;
        out[lay.proportion()] = total / out[lay.c()];
        out[lay.suppression_share()] = (total / out[lay.c_prime()]).abs();
        let plain = lay.n_contrasts();
        for i in plain..c.contrasts.len() {
            out[lay.any_contrast(i)] = self.effects[n + 1 + i];
        }
    }
}

/// For engines that give a replicate's coefficients (`reported_coefficients`'
/// theta: the wild scheme's, the GPU's), the statistics a serial,
/// moderated or interaction model adds to [`coefficients_to_stats`]'s,
/// from the coefficients after a, b, c, c': a chain's links, the
/// moderation's a3, b3, c3', the interaction's X*M coefficient.
#[derive(Debug, Clone)]
pub struct Extension {
    chain: Option<SerialState>,
    extended: Option<Extended>,
}

/// A moderated or interaction model's evaluation point, where each of
/// its theta's coefficients is in the reported theta (None: 0), and
/// scratch for theta and the gradients.
#[derive(Debug, Clone)]
struct Extended {
    at: moderation::Evaluation,
    from: Vec<Option<usize>>,
    theta: Vec<f64>,
    scratch: Vec<f64>,
}

impl Extension {
    /// What `design`'s model adds (nothing for the parallel model).
    pub fn of(design: &Design) -> Extension {
        Extension {
            chain: design
                .serial
                .then(|| SerialState::new(design.layout.n_mediators)),
            extended: moderation::extended(design).then(|| {
                let from = theta_places(design);
                Extended {
                    at: moderation::Evaluation::of(design),
                    theta: vec![0.0; from.len()],
                    from,
                    scratch: Vec::new(),
                }
            }),
        }
    }

    /// Fill the added statistics of the replicate with coefficients
    /// `theta` (its a, b, c, c' statistics already in `out`).
    pub fn fill(&mut self, theta: &[f64], lay: StatLayout, out: &mut [f64]) {
        let m = lay.mediators;
        if let Some(st) = &mut self.chain {
            let links = st.theta.len() - 2 * m;
            st.theta[2 * m..].copy_from_slice(&theta[2 * m + 2..2 * m + 2 + links]);
            st.fill(lay, out);
        }
        if let Some(x) = &mut self.extended {
            for (t, from) in x.theta.iter_mut().zip(&x.from) {
                *t = from.map_or(0.0, |i| theta[i]);
            }
            let mut k = lay.moderation_base();
            let each = &mut |value, _: &[f64]| {
                out[k] = value;
                k += 1;
            };
            moderation::each_effect(&x.theta, &x.at, lay.moderation, &mut x.scratch, each);
        }
    }
}

/// Where each of a moderated or interaction design's theta's
/// coefficients (`moderation::coefficients`) is among its reported
/// coefficients (`reported_coefficients`: each a1, each b1, c, c', then
/// the later ones in order where present; None: 0).
fn theta_places(design: &Design) -> Vec<Option<usize>> {
    let lead = 2 * design.layout.n_mediators + 2;
    let coefficients = moderation::coefficients(design);
    let mut from = vec![None; coefficients.len()];
    let mut next = lead;
    for (i, c) in coefficients.iter().enumerate() {
        from[i] = match (i < lead, c) {
            (true, _) => Some(i),
            (false, Some(_)) => {
                next += 1;
                Some(next - 1)
            }
            (false, None) => None,
        };
    }
    from
}

/// What a serial, moderated or interaction model's studentized SEs need
/// from a replicate's Gram matrix: its cluster influence functionals on
/// every reported coefficient (`reported_coefficients`, in the units of
/// the data; each equation's regressors any design columns), and the
/// gradient in those coefficients of each statistic with an SE of its own
/// (`StatLayout::studentized_stats`, in order). The plain and instrumented
/// models keep `Solver::influence_functionals` (a_j and b_j only).
#[derive(Debug, Clone)]
pub struct Studentized {
    q: usize,
    /// Each equation: its regressors, its dependent, and its reported
    /// coefficients as (place in theta, place among the regressors, ratio
    /// into the units of the data).
    equations: Vec<(Vec<usize>, usize, Vec<(usize, usize, f64)>)>,
    /// Reported coefficients.
    pub n_theta: usize,
    /// Each reported coefficient's equation.
    pub equation_of: Vec<usize>,
    m: usize,
    chain: Chain,
    /// A moderated or interaction model's evaluation point and theta's
    /// places (`theta_places`).
    extended: Option<(moderation::Evaluation, Vec<Option<usize>>)>,
    stats: ModerationStats,
    /// Whether each of the model's added statistics is a coefficient
    /// (`ModerationStats::coefficients`: no SE of its own).
    coefficient: Vec<bool>,
}

impl Studentized {
    /// What `design`'s model needs (None for the plain and instrumented
    /// models, whose SEs `Solver` gives).
    pub fn of(design: &Design) -> Option<Studentized> {
        if !(design.serial || moderation::extended(design)) {
            return None;
        }
        let eqs = crate::model::mediation::equations(design);
        let keys = crate::model::mediation::reported_coefficients(design);
        let places = crate::model::mediation::coefficient_places(design);
        let equations = eqs
            .into_iter()
            .zip(places)
            .map(|(eq, mine)| (eq.regressors, eq.dependent, mine))
            .collect();
        let m = design.layout.n_mediators;
        let stats = ModerationStats::of(design);
        Some(Studentized {
            q: design.q(),
            equations,
            n_theta: keys.len(),
            equation_of: keys.iter().map(|k| k.0).collect(),
            m,
            chain: Chain::new(m, design.serial),
            extended: moderation::extended(design)
                .then(|| (moderation::Evaluation::of(design), theta_places(design))),
            coefficient: stats.coefficients(),
            stats,
        })
    }

    /// The reported coefficients `theta` of the replicate whose packed
    /// Gram is `packed`, and their influence functionals into `out`
    /// (n_theta rows of packed_len(q)): row o is the packed c with cluster
    /// g's influence on coefficient o `c . S_g`, `scale h'(S_g[R, t] -
    /// S_g[R, R] beta)`, h = A_RR^{-1} e_o. False when an equation's
    /// regressors are singular.
    pub fn functionals(&self, packed: &[f64], theta: &mut [f64], out: &mut [f64]) -> bool {
        let (q, p) = (self.q, packed_len(self.q));
        out.iter_mut().for_each(|v| *v = 0.0);
        for (regs, t, coefs) in &self.equations {
            let k = regs.len();
            let mut a = vec![0.0; k * k];
            let mut beta: Vec<f64> = regs
                .iter()
                .map(|&r| packed[packed_index(r, *t, q)])
                .collect();
            for (u, &ru) in regs.iter().enumerate() {
                for (v, &rv) in regs.iter().enumerate() {
                    a[u * k + v] = packed[packed_index(ru, rv, q)];
                }
            }
            if cholesky(&mut a, k).is_err() {
                return false;
            }
            chol_solve(&a, k, &mut beta);
            for &(o, at, scale) in coefs {
                theta[o] = beta[at] * scale;
                let mut h = vec![0.0; k];
                h[at] = 1.0;
                chol_solve(&a, k, &mut h);
                let row = &mut out[o * p..(o + 1) * p];
                for (u, &ru) in regs.iter().enumerate() {
                    row[packed_index(ru, *t, q)] += scale * h[u];
                    for (v, &rv) in regs.iter().enumerate() {
                        row[packed_index(ru, rv, q)] -= scale * h[u] * beta[v];
                    }
                }
            }
        }
        true
    }

    /// The gradient in theta of each statistic with an SE of its own
    /// (`StatLayout::studentized_stats`' order), into `out`.
    pub fn gradients(&self, theta: &[f64], out: &mut Vec<Vec<f64>>) {
        out.clear();
        let (m, n) = (self.m, self.n_theta);
        // The chain's theta is (a_j, b_j, links); the reported one has c
        // and c' before the links.
        let place = |i: usize| if i < 2 * m { i } else { i + 2 };
        let chain_theta: Vec<f64> = (0..self.chain.theta_len())
            .map(|i| theta[place(i)])
            .collect();
        let path = |p: usize| -> Vec<f64> {
            let (_, g) = self
                .chain
                .effect_and_gradient(&chain_theta, &self.chain.paths[p]);
            let mut full = vec![0.0; n];
            for (i, v) in g.into_iter().enumerate() {
                full[place(i)] = v;
            }
            full
        };
        let paths: Vec<Vec<f64>> = (0..self.chain.paths.len()).map(path).collect();
        let difference = |(p, q): (usize, usize)| -> Vec<f64> {
            (0..n).map(|i| paths[p][i] - paths[q][i]).collect()
        };
        out.extend(paths[..m].iter().cloned());
        out.push((0..n).map(|i| paths.iter().map(|g| g[i]).sum()).collect());
        let plain = m * m.saturating_sub(1) / 2;
        out.extend(self.chain.contrasts[..plain].iter().map(|&c| difference(c)));
        if self.chain.serial {
            out.extend(paths[m..].iter().cloned());
            out.extend(self.chain.contrasts[plain..].iter().map(|&c| difference(c)));
        }
        if let Some((at, from)) = &self.extended {
            let t: Vec<f64> = from.iter().map(|i| i.map_or(0.0, |i| theta[i])).collect();
            let mut coefficient = self.coefficient.iter();
            let mut scratch = Vec::new();
            let each = &mut |_, gradient: &[f64]| {
                if !*coefficient.next().expect("one flag per effect") {
                    let mut full = vec![0.0; n];
                    for (g, place) in gradient.iter().zip(from) {
                        if let Some(i) = place {
                            full[*i] += g;
                        }
                    }
                    out.push(full);
                }
            };
            moderation::each_effect(&t, at, self.stats, &mut scratch, each);
        }
    }
}

/// A moderated model's equations and where theta's coefficients lie in
/// them (`crate::model::moderation`).
#[derive(Debug, Clone)]
struct Moderated {
    /// Columns of the base block every equation starts with (treatment,
    /// controls, nuisance).
    base: usize,
    /// Each equation: its dependent column and the columns it adds.
    equations: Vec<(usize, Vec<usize>)>,
    /// Theta's coefficient i: (equation, 0 for the treatment's or 1 + j
    /// for the j-th added column's, ratio into the units of the data), None
    /// where it is 0.
    theta: Vec<Option<(usize, usize, f64)>>,
    /// Where the effects are evaluated.
    at: moderation::Evaluation,
    /// Scratch: the added columns' Schur block, the base right-hand side,
    /// each equation's (treatment, added) coefficients, theta and the
    /// effects' gradients.
    small: Vec<f64>,
    t: Vec<f64>,
    beta: Vec<Vec<f64>>,
    values: Vec<f64>,
    gradient: Vec<f64>,
}

/// The instrumented model's column sets and, after a solve, its projections
/// and coefficients (kept for the influence functionals).
#[derive(Debug, Clone)]
struct IvState {
    layout: Layout,
    /// (regressors, instruments) of the total and mediator equations, and
    /// of the outcome equation.
    base_columns: (Vec<usize>, Vec<usize>),
    outcome_columns: (Vec<usize>, Vec<usize>),
    base: Option<TwoStage>,
    outcome: Option<TwoStage>,
    /// Scaled coefficients: total, each mediator, outcome equation.
    beta_total: Vec<f64>,
    beta_mediators: Vec<Vec<f64>>,
    beta_outcome: Vec<f64>,
}

impl Solver {
    /// The solver that also gives kappa and ACME at each of `rho`
    /// (`crate::model::sensitivity`; one mediator, least squares).
    pub fn with_sensitivity(mut self, rho: &[f64]) -> Solver {
        self.layout.sensitivity = rho.len();
        self.rho = rho.to_vec();
        self
    }

    /// The solver that also gives the robustness value of each path of
    /// the omitted-variable bounds, from the Gram columns of `orders`
    /// (`crate::model::confounding::replicate_orders`).
    pub fn with_robustness(mut self, orders: Vec<Vec<usize>>) -> Solver {
        self.layout.robustness = orders.len();
        self.robustness = orders;
        self
    }

    /// A solver for `design`'s column layout and scales.
    pub fn new(design: &Design) -> Solver {
        let lay = design.layout;
        let q = design.q();
        let m = lay.n_mediators;
        let ko = lay.outcome();
        let (x_to_m, x_to_y, m_to_y) = unit_ratios(design);
        Solver {
            q,
            k0: ko - m,
            ko,
            m,
            x_to_m,
            x_to_y,
            m_to_y,
            layout: StatLayout::of(design),
            rho: Vec::new(),
            robustness: Vec::new(),
            rv_scratch: Vec::new(),
            chain: design.serial.then(|| SerialState::new(m)),
            lanes: LaneScratch::default(),
            moderated: moderation::extended(design).then(|| {
                let base = lay.base_regressors().len();
                // Every equation is the base block and the columns it adds.
                let equations: Vec<(usize, Vec<usize>)> = moderation::equations(design)
                    .into_iter()
                    .map(|e| {
                        debug_assert!(e.regressors[..base] == lay.base_regressors()[..]);
                        (e.dependent, e.regressors[base..].to_vec())
                    })
                    .collect();
                let theta = moderation::coefficients(design).into_iter().map(|c| {
                    c.map(|(e, col)| {
                        let (d, added) = &equations[e];
                        let at = match col == lay.treatment() {
                            true => 0,
                            false => {
                                1 + added
                                    .iter()
                                    .position(|&r| r == col)
                                    .expect("a coefficient's column is a regressor")
                            }
                        };
                        (e, at, design.scale[*d] / design.scale[col])
                    })
                });
                let theta: Vec<_> = theta.collect();
                let most = equations.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
                Moderated {
                    base,
                    beta: equations
                        .iter()
                        .map(|(_, r)| vec![0.0; 1 + r.len()])
                        .collect(),
                    equations,
                    values: vec![0.0; theta.len()],
                    gradient: Vec::new(),
                    theta,
                    at: moderation::Evaluation::of(design),
                    small: vec![0.0; most * most],
                    t: vec![0.0; base],
                }
            }),
            l: vec![0.0; q * q],
            inv_diag: vec![0.0; q],
            rhs: vec![0.0; (m + 2) * q],
            iv: lay.instrumented().then(|| {
                let columns = |r: Vec<usize>| (r.clone(), lay.system_instruments(&r));
                IvState {
                    layout: lay,
                    base_columns: columns(lay.base_regressors()),
                    outcome_columns: columns(lay.outcome_regressors()),
                    base: None,
                    outcome: None,
                    beta_total: Vec::new(),
                    beta_mediators: Vec::new(),
                    beta_outcome: Vec::new(),
                }
            }),
        }
    }

    /// Statistics of the replicate whose packed Gram is `packed` into `out`;
    /// false (and NaN statistics) when the regressors are singular.
    #[inline(always)]
    pub fn solve(&mut self, packed: &[f64], out: &mut [f64]) -> bool {
        let solved = self.solve_effects(packed, out);
        if solved {
            for (k, order) in self.robustness.iter().enumerate() {
                out[self.layout.rv(k)] = crate::model::confounding::robustness_of_gram(
                    packed,
                    self.q,
                    order,
                    &mut self.rv_scratch,
                );
            }
        }
        solved
    }

    /// `solve` but the robustness values.
    #[inline(always)]
    fn solve_effects(&mut self, packed: &[f64], out: &mut [f64]) -> bool {
        if self.iv.is_some() {
            return self.solve_two_stage(packed, out);
        }
        if self.moderated.is_some() {
            return self.solve_moderated(packed, out);
        }
        // The regressor block (columns 0..ko) factored; row y (= ko) goes
        // through the same eliminations and so ends up holding its
        // forward-solved part.
        if !self.eliminate(packed, self.ko) {
            out.iter_mut().for_each(|v| *v = f64::NAN);
            return false;
        }
        let (l, rhs) = (std::mem::take(&mut self.l), std::mem::take(&mut self.rhs));
        let mut rhs = rhs;
        let (factor, _) = l.as_chunks::<1>();
        let (inv, _) = self.inv_diag.as_chunks::<1>();
        let (solves, _) = rhs.as_chunks_mut::<1>();
        self.equation_solves(factor, inv, solves);
        self.effects_from_solves(factor, solves, 0, out);
        (self.l, self.rhs) = (l, rhs);
        true
    }

    /// Whether [`Solver::solve_lanes`] factors its replicates together: a
    /// model of one system (not instrumented, not moderated) without
    /// robustness values.
    pub fn lanes(&self) -> bool {
        self.iv.is_none() && self.moderated.is_none() && self.robustness.is_empty()
    }

    /// [`Solver::solve`] of `LANES` replicates' Grams, their statistics
    /// into `out` (`LANES` rows of the layout's length, in order), and
    /// whether each was solved. Where [`Solver::lanes`], the Cholesky
    /// factors are computed side by side, one replicate per vector lane,
    /// with every lane's operations those of [`Solver::solve`] in its
    /// order, so the bits are the same; then each replicate's effects from
    /// its factor. Else one replicate at a time.
    #[inline(always)]
    pub fn solve_lanes(&mut self, packed: [&[f64]; LANES], out: &mut [f64]) -> [bool; LANES] {
        let n = out.len() / LANES;
        let mut solved = [false; LANES];
        if !self.lanes() {
            for ((row, p), ok) in out.chunks_mut(n).zip(packed).zip(&mut solved) {
                *ok = self.solve(p, row);
            }
            return solved;
        }
        let (q, pivots) = (self.q, self.ko);
        let mut lanes = std::mem::take(&mut self.lanes);
        let (l, inv, rhs) = lanes.parts(q, self.m + 2);
        unpack_lanes(packed, l, q);
        let ok = eliminate_lanes(l, inv, rhs, q, pivots);
        self.equation_solves(l, inv, rhs);
        for (s, row) in out.chunks_mut(n).enumerate() {
            if !ok[s] {
                row.iter_mut().for_each(|v| *v = f64::NAN);
                continue;
            }
            self.effects_from_solves(l, rhs, s, row);
            solved[s] = true;
        }
        self.lanes = lanes;
        solved
    }

    /// The equations of a plain or serial model solved on `N` factors side
    /// by side (`eliminate_lanes` over the regressor block done), one
    /// replicate per lane: equation e's coefficients into `rhs[e q..]`, the
    /// total effect's first, then each mediator's, then the outcome's.
    #[inline(always)]
    fn equation_solves<const N: usize>(
        &self,
        l: &[[f64; N]],
        inv: &[[f64; N]],
        rhs: &mut [[f64; N]],
    ) {
        let (q, ko, k0, m) = (self.q, self.ko, self.k0, self.m);
        let y = q - 1;
        // (equation, its row of the factor, its regressors): the total
        // effect, Y on the base block; each mediator M_j on the base block
        // (and, in a chain, on the mediators before it: the leading block of
        // the factor is the factor of the leading block, so row k0 + j is
        // also its forward solve); the outcome, Y on the base block and the
        // mediators.
        let mediators =
            (0..m).map(|j| (1 + j, k0 + j, k0 + if self.chain.is_some() { j } else { 0 }));
        let equations = std::iter::once((0, y, k0))
            .chain(mediators)
            .chain(std::iter::once((m + 1, y, ko)));
        for (e, row, len) in equations {
            let b = &mut rhs[e * q..e * q + len];
            b.copy_from_slice(&l[row * q..row * q + len]);
            back_substitute_lanes(l, q, inv, b);
        }
    }

    /// The statistics of lane `s` of a plain or serial model from its
    /// factor `l` and its equations' coefficients `rhs`
    /// ([`Solver::equation_solves`]).
    #[inline(always)]
    fn effects_from_solves<const N: usize>(
        &mut self,
        l: &[[f64; N]],
        rhs: &[[f64; N]],
        s: usize,
        out: &mut [f64],
    ) {
        let (q, k0, m) = (self.q, self.k0, self.m);
        let lay = self.layout;
        let y = q - 1;
        let coefficient = |e: usize, i: usize| rhs[e * q + i][s];
        let c = coefficient(0, 0) * self.x_to_y;
        for j in 0..m {
            out[lay.a(j)] = coefficient(1 + j, 0) * self.x_to_m[j];
            if let Some(st) = &mut self.chain {
                for k in 0..j {
                    let at = st.chain.link(j, k);
                    st.theta[at] = coefficient(1 + j, k0 + k) * self.x_to_m[j] / self.x_to_m[k];
                }
            }
        }
        let c_prime = coefficient(m + 1, 0) * self.x_to_y;
        let mut indirect = 0.0;
        for j in 0..m {
            let b = coefficient(m + 1, k0 + j) * self.m_to_y[j];
            out[lay.b(j)] = b;
            let ab = out[lay.a(j)] * b;
            out[lay.ab(j)] = ab;
            indirect += ab;
        }
        out[lay.c()] = c;
        out[lay.c_prime()] = c_prime;
        out[lay.indirect()] = indirect;
        out[lay.proportion()] = indirect / c;
        out[lay.suppression_share()] = (indirect / c_prime).abs();
        for (i, (j, k)) in lay.contrast_pairs().into_iter().enumerate() {
            out[lay.contrast(i)] = out[lay.ab(j)] - out[lay.ab(k)];
        }
        if let Some(st) = &mut self.chain {
            st.fill(lay, out);
        }
        if lay.sensitivity > 0 {
            // After the eliminations the outcome's diagonal holds its
            // residual sum of squares on every regressor, the (one)
            // mediator's its residual SD on the base block, squared.
            let rss_y = l[y * q + y][s].max(0.0);
            let sd_m = l[k0 * q + k0][s];
            out[lay.kappa()] = rss_y.sqrt() / sd_m * self.m_to_y[0];
            fill_acme(lay, &self.rho, out);
        }
    }
}

/// Replicates [`Solver::solve_lanes`] factors side by side.
pub const LANES: usize = 4;

/// The packed Grams of `N` replicates into the lower triangle of the
/// q x q `l`, one replicate per lane.
#[inline(always)]
fn unpack_lanes<const N: usize>(packed: [&[f64]; N], l: &mut [[f64; N]], q: usize) {
    let mut k = 0;
    for i in 0..q {
        for j in i..q {
            for (s, p) in packed.iter().enumerate() {
                l[j * q + i][s] = p[k];
            }
            k += 1;
        }
    }
}

/// `Solver::eliminate`'s right-looking Cholesky over the first `pivots`
/// columns of `N` lanes side by side, each lane's operations in the same
/// order whatever N (so one lane or four give the same bits), `inv` the
/// pivots' reciprocals and `rhs` a column of scratch. Whether each lane's
/// pivots were all positive: a lane with one that is not runs on (on
/// garbage, without panicking), and its factor means nothing.
#[inline(always)]
fn eliminate_lanes<const N: usize>(
    l: &mut [[f64; N]],
    inv: &mut [[f64; N]],
    rhs: &mut [[f64; N]],
    q: usize,
    pivots: usize,
) -> [bool; N] {
    let mut ok = [true; N];
    for j in 0..pivots {
        let d = l[j * q + j];
        let mut diag = [0.0; N];
        let mut recip = [0.0; N];
        for s in 0..N {
            ok[s] &= d[s] > 0.0;
            diag[s] = d[s].sqrt();
            recip[s] = 1.0 / diag[s];
        }
        l[j * q + j] = diag;
        inv[j] = recip;
        for i in j + 1..q {
            let v = &mut l[i * q + j];
            for s in 0..N {
                v[s] *= recip[s];
            }
            rhs[i] = *v;
        }
        for i in j + 1..q {
            let lij = rhs[i];
            let row = &mut l[i * q + j + 1..i * q + i + 1];
            for (a, c) in row.iter_mut().zip(&rhs[j + 1..i + 1]) {
                for s in 0..N {
                    a[s] -= lij[s] * c[s];
                }
            }
        }
    }
    ok
}

/// The lane solve's scratch: q x q factors, q reciprocal diagonals and a
/// column, each entry one value per lane.
#[derive(Debug, Clone, Default)]
struct LaneScratch(Vec<[f64; LANES]>);

/// Entries of the lane solve's scratch: one value per lane.
type Lanes<'a> = &'a mut [[f64; LANES]];

impl LaneScratch {
    /// The factor, the reciprocal diagonal and the columns (one per
    /// equation: `equations` of q), for q columns.
    fn parts(&mut self, q: usize, equations: usize) -> (Lanes<'_>, Lanes<'_>, Lanes<'_>) {
        self.0.resize(q * q + q + equations * q, [0.0; LANES]);
        let (l, rest) = self.0.split_at_mut(q * q);
        let (inv, rhs) = rest.split_at_mut(q);
        (l, inv, rhs)
    }
}

impl Solver {
    /// Unpack the Gram `packed` into the lower triangle of `l` and run the
    /// right-looking Cholesky over its first `pivots` columns: those rows
    /// hold their factor, every later row its forward solve on them in its
    /// first `pivots` entries, and the trailing lower triangle the Schur
    /// complement (the later columns' Gram with the pivots partialled
    /// out). The updates are axpys over contiguous row segments, which
    /// vectorise, unlike dot-product reductions. False when singular.
    #[inline(always)]
    fn eliminate(&mut self, packed: &[f64], pivots: usize) -> bool {
        let q = self.q;
        let (l, _) = self.l.as_chunks_mut::<1>();
        unpack_lanes([packed], l, q);
        let (inv, _) = self.inv_diag.as_chunks_mut::<1>();
        let (rhs, _) = self.rhs.as_chunks_mut::<1>();
        eliminate_lanes(l, inv, rhs, q, pivots)[0]
    }

    /// [`Solver::solve`] for a moderated design. Its equations share the
    /// base block (treatment, controls, nuisance) and differ in the later
    /// columns they add, which are not nested; so the base block alone is
    /// factored once, and each equation's added coefficients come from the
    /// Schur complement (Frisch-Waugh: the later columns with the base
    /// partialled out), its treatment coefficient from one back
    /// substitution. Then theta's functions.
    fn solve_moderated(&mut self, packed: &[f64], out: &mut [f64]) -> bool {
        let q = self.q;
        let base = self.moderated.as_ref().map_or(0, |st| st.base);
        if !self.eliminate(packed, base) {
            out.iter_mut().for_each(|v| *v = f64::NAN);
            return false;
        }
        let lay = self.layout;
        let st = self.moderated.as_mut().expect("moderated solver");
        let l = &self.l;
        // The trailing lower triangle at (i, j), either order.
        let at = |i: usize, j: usize| l[i.max(j) * q + i.min(j)];
        for ((d, extras), beta) in st.equations.iter().zip(st.beta.iter_mut()) {
            let e = extras.len();
            let small = &mut st.small[..e * e];
            for (i, &ci) in extras.iter().enumerate() {
                for (j, &cj) in extras.iter().enumerate() {
                    small[i * e + j] = at(ci, cj);
                }
                beta[1 + i] = at(ci, *d);
            }
            if cholesky(small, e).is_err() {
                out.iter_mut().for_each(|v| *v = f64::NAN);
                return false;
            }
            chol_solve(small, e, &mut beta[1..]);
            // The base coefficients: L0' b = L0^{-1}(A[base, d] - A[base, E] beta_E).
            let t = &mut st.t[..base];
            t.copy_from_slice(&l[d * q..d * q + base]);
            for (&c, &b) in extras.iter().zip(&beta[1..]) {
                for (ti, &v) in t.iter_mut().zip(&l[c * q..c * q + base]) {
                    *ti -= b * v;
                }
            }
            back_substitute(l, q, &self.inv_diag, t);
            beta[0] = t[0];
        }
        for (v, c) in st.values.iter_mut().zip(&st.theta) {
            *v = c.map_or(0.0, |(e, at, ratio)| st.beta[e][at] * ratio);
        }
        coefficients_to_stats(&st.values[..2 * self.m + 2], lay, out);
        // Placed by the layout asked for (its studentized SEs, if any,
        // come before).
        let mut k = lay.moderation_base();
        let each = &mut |value, _: &[f64]| {
            out[k] = value;
            k += 1;
        };
        moderation::each_effect(&st.values, &st.at, lay.moderation, &mut st.gradient, each);
        true
    }

    /// [`Solver::solve`] for an instrumented design.
    fn solve_two_stage(&mut self, packed: &[f64], out: &mut [f64]) -> bool {
        let q = self.q;
        let m = self.m;
        let a = crate::math::linalg::unpack(packed, q);
        let st = self.iv.as_mut().expect("instrumented solver");
        let lay = st.layout;
        let ((base_r, base_i), (out_r, out_i)) = (&st.base_columns, &st.outcome_columns);
        let stages = (
            TwoStage::new(&a, q, base_r, base_i),
            TwoStage::new(&a, q, out_r, out_i),
        );
        let (Ok(base), Ok(outcome)) = stages else {
            st.base = None;
            st.outcome = None;
            out.iter_mut().for_each(|v| *v = f64::NAN);
            return false;
        };
        st.beta_total = base.coefficients(&a, q, lay.outcome());
        st.beta_mediators = (0..m)
            .map(|j| base.coefficients(&a, q, lay.mediator(j)))
            .collect();
        st.beta_outcome = outcome.coefficients(&a, q, lay.outcome());
        let x = lay.treatment();
        let mut theta = vec![0.0; 2 * m + 2];
        for j in 0..m {
            theta[j] = st.beta_mediators[j][x] * self.x_to_m[j];
            theta[m + j] = st.beta_outcome[lay.mediator(j)] * self.m_to_y[j];
        }
        theta[2 * m] = st.beta_total[x] * self.x_to_y;
        theta[2 * m + 1] = st.beta_outcome[x] * self.x_to_y;
        st.base = Some(base);
        st.outcome = Some(outcome);
        coefficients_to_stats(&theta, self.layout, out);
        true
    }

    /// [`Solver::influence_functionals`] for an instrumented design: the
    /// influence of a cluster on coefficient r is `k_r' (S_g[I, d] - S_g[I, R]
    /// beta)`, `k_r` row r of the two-stage projector.
    fn two_stage_functionals(&self, out: &mut [f64]) {
        let (q, m) = (self.q, self.m);
        let p = packed_len(q);
        out[..2 * m * p].iter_mut().for_each(|v| *v = 0.0);
        let st = self.iv.as_ref().expect("instrumented solver");
        let (Some(base), Some(outcome)) = (&st.base, &st.outcome) else {
            out[..2 * m * p].iter_mut().for_each(|v| *v = f64::NAN);
            return;
        };
        let lay = st.layout;
        let x = lay.treatment();
        for j in 0..m {
            let target = &mut out[j * p..(j + 1) * p];
            let (d, beta) = (lay.mediator(j), &st.beta_mediators[j]);
            add_two_stage_functional(target, q, base, x, d, beta, self.x_to_m[j]);
        }
        for j in 0..m {
            let target = &mut out[(m + j) * p..(m + j + 1) * p];
            let r = lay.mediator(j);
            let (d, beta) = (lay.outcome(), &st.beta_outcome);
            add_two_stage_functional(target, q, outcome, r, d, beta, self.m_to_y[j]);
        }
    }

    /// After a successful [`Solver::solve`] (its factor is still held), the
    /// linear functionals giving each cluster's influence on a_j and b_j:
    /// row u of `out` (u = j for a_j, m + j for b_j; `packed_len` entries
    /// each) is the packed vector c with `sum_k c_k S_g[k] = h'(S_g[R, d] -
    /// S_g[R, R] beta)`, `h = A^{-1} e_coef`, in the units of the data. So
    /// the influences of every cluster are one product with the cluster
    /// statistics, and a replicate's CR1 covariance follows.
    pub fn influence_functionals(&mut self, out: &mut [f64]) {
        if self.iv.is_some() {
            return self.two_stage_functionals(out);
        }
        let (q, ko, k0, m) = (self.q, self.ko, self.k0, self.m);
        let p = packed_len(q);
        out[..2 * m * p].iter_mut().for_each(|v| *v = 0.0);
        let y = q - 1;
        let mut beta = vec![0.0; ko];
        let mut h = vec![0.0; ko];
        // h_a = A_base^{-1} e_0, shared by the mediator equations.
        h[..k0].iter_mut().for_each(|v| *v = 0.0);
        h[0] = 1.0;
        forward_substitute(&self.l, q, &self.inv_diag, &mut h[..k0]);
        back_substitute(&self.l, q, &self.inv_diag, &mut h[..k0]);
        for j in 0..m {
            let row = (k0 + j) * q;
            beta[..k0].copy_from_slice(&self.l[row..row + k0]);
            back_substitute(&self.l, q, &self.inv_diag, &mut beta[..k0]);
            let target = &mut out[j * p..(j + 1) * p];
            add_functional(target, q, k0, k0 + j, &beta[..k0], &h[..k0], self.x_to_m[j]);
        }
        // Outcome equation: beta over all ko regressors, h_b = A^{-1} e_{k0+j}.
        beta.copy_from_slice(&self.l[y * q..y * q + ko]);
        back_substitute(&self.l, q, &self.inv_diag, &mut beta);
        for j in 0..m {
            h.iter_mut().for_each(|v| *v = 0.0);
            h[k0 + j] = 1.0;
            forward_substitute(&self.l, q, &self.inv_diag, &mut h);
            back_substitute(&self.l, q, &self.inv_diag, &mut h);
            let target = &mut out[(m + j) * p..(m + j + 1) * p];
            add_functional(target, q, ko, y, &beta, &h, self.m_to_y[j]);
        }
    }
}

/// A replicate's statistics from the full sample's coefficients `theta_hat`
/// and the replicate's changes of them (the wild bootstrap's `sum_g v_g
/// U_g`, or the GPU stages' output), added in f64 in place: `changes`
/// becomes the replicate's coefficients. False, and every statistic NaN,
/// for a degenerate replicate (a NaN change). Statistics beyond the
/// coefficients' are left to the caller.
pub fn stats_from_changes(
    theta_hat: &[f64],
    changes: &mut [f64],
    lay: StatLayout,
    stats: &mut [f64],
) -> bool {
    for (c, t) in changes.iter_mut().zip(theta_hat) {
        *c += t;
    }
    if changes.iter().any(|t| t.is_nan()) {
        stats.iter_mut().for_each(|s| *s = f64::NAN);
        return false;
    }
    coefficients_to_stats(changes, lay, stats);
    true
}

/// A replicate's statistics from its coefficients `theta = (a_1..a_m,
/// b_1..b_m, c, c')` in the units of the data: the products, their sum and
/// the proportion mediated. NaN coefficients give NaN statistics.
pub fn coefficients_to_stats(theta: &[f64], lay: StatLayout, stats: &mut [f64]) {
    let m = lay.mediators;
    let mut indirect = 0.0;
    for j in 0..m {
        let ab = theta[j] * theta[m + j];
        stats[lay.a(j)] = theta[j];
        stats[lay.b(j)] = theta[m + j];
        stats[lay.ab(j)] = ab;
        indirect += ab;
    }
    stats[lay.c()] = theta[2 * m];
    stats[lay.c_prime()] = theta[2 * m + 1];
    stats[lay.indirect()] = indirect;
    stats[lay.proportion()] = indirect / theta[2 * m];
    stats[lay.suppression_share()] = (indirect / theta[2 * m + 1]).abs();
    for (i, (j, k)) in lay.contrast_pairs().into_iter().enumerate() {
        stats[lay.contrast(i)] = stats[lay.ab(j)] - stats[lay.ab(k)];
    }
}

/// Ratios turning scaled coefficients into the units of the data: a_j
/// (s_Mj / s_X), c and c' (s_Y / s_X), b_j (s_Y / s_Mj).
pub fn unit_ratios(design: &Design) -> (Vec<f64>, f64, Vec<f64>) {
    let lay = design.layout;
    let s = &design.scale;
    let sx = s[lay.treatment()];
    let sy = s[lay.outcome()];
    let m = lay.n_mediators;
    (
        (0..m).map(|j| s[lay.mediator(j)] / sx).collect(),
        sy / sx,
        (0..m).map(|j| sy / s[lay.mediator(j)]).collect(),
    )
}

/// Add `scale * (h'S[R, d] - h'S[R, R] beta)` as packed coefficients, R the
/// first `k` columns.
fn add_functional(
    out: &mut [f64],
    q: usize,
    k: usize,
    d: usize,
    beta: &[f64],
    h: &[f64],
    scale: f64,
) {
    use crate::math::linalg::packed_index;
    for i in 0..k {
        let sh = scale * h[i];
        out[packed_index(i, d, q)] += sh;
        // Entry (i, j) for j < i lies in row j of the packed triangle, for
        // j >= i in row i, contiguous: each entry takes the same update in
        // the same order as one loop over j would give it.
        for j in 0..i {
            out[packed_index(j, i, q)] -= sh * beta[j];
        }
        let row = packed_index(i, i, q);
        for (o, b) in out[row..row + k - i].iter_mut().zip(&beta[i..k]) {
            *o -= sh * b;
        }
    }
}

/// Add `scale * k_r'(S[I, d] - S[I, R] beta)` as packed coefficients, `k_r`
/// the projector row of regressor r (its position in the stage's regressors).
fn add_two_stage_functional(
    out: &mut [f64],
    q: usize,
    stage: &TwoStage,
    r: usize,
    d: usize,
    beta: &[f64],
    scale: f64,
) {
    let k = stage.projector_row(r);
    for (&ki, &inst) in k.iter().zip(stage.instruments()) {
        out[packed_index(inst, d, q)] += scale * ki;
        for (&reg, &b) in stage.regressors().iter().zip(beta) {
            out[packed_index(inst, reg, q)] -= scale * ki * b;
        }
    }
}

/// Solve `L_k x = b` in place (leading `k x k` block, row stride `n`).
#[inline(always)]
fn forward_substitute(l: &[f64], n: usize, inv_diag: &[f64], b: &mut [f64]) {
    for i in 0..b.len() {
        let s: f64 = l[i * n..i * n + i]
            .iter()
            .zip(&b[..i])
            .map(|(x, y)| x * y)
            .sum();
        b[i] = (b[i] - s) * inv_diag[i];
    }
}

/// Solve `L_k' x = b` in place for the leading `k x k` block of the
/// lower-triangular factor `l` (row stride `n`), `k = b.len()`: once x_i is
/// known, row i of L (contiguous) is subtracted from the earlier entries.
#[inline(always)]
fn back_substitute(l: &[f64], n: usize, inv_diag: &[f64], b: &mut [f64]) {
    back_substitute_lanes::<1>(
        l.as_chunks().0,
        n,
        inv_diag.as_chunks().0,
        b.as_chunks_mut().0,
    );
}

/// [`back_substitute`] on `N` factors side by side, one per lane, each
/// lane's operations in the same order whatever N (so the same bits).
#[inline(always)]
fn back_substitute_lanes<const N: usize>(
    l: &[[f64; N]],
    n: usize,
    inv_diag: &[[f64; N]],
    b: &mut [[f64; N]],
) {
    for i in (0..b.len()).rev() {
        let mut xi = b[i];
        for (x, d) in xi.iter_mut().zip(&inv_diag[i]) {
            *x *= d;
        }
        b[i] = xi;
        for (bj, lij) in b[..i].iter_mut().zip(&l[i * n..i * n + i]) {
            for s in 0..N {
                bj[s] -= lij[s] * xi[s];
            }
        }
    }
}

/// ACME at each rho (`crate::model::sensitivity`) from the replicate's a, b and kappa (already in `out`).
pub fn fill_acme(layout: StatLayout, rho: &[f64], out: &mut [f64]) {
    let (a, b, kappa) = (out[layout.a(0)], out[layout.b(0)], out[layout.kappa()]);
    for (k, &r) in rho.iter().enumerate() {
        out[layout.acme(k)] = acme(a, b, kappa, r);
    }
}

/// `a (b - rho kappa / sqrt(1 - rho^2))`.
pub fn acme(a: f64, b: f64, kappa: f64, rho: f64) -> f64 {
    a * (b - rho * kappa / (1.0 - rho * rho).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{SyntheticParams, generate};
    use crate::math::linalg::quadratic_form;
    use crate::model::mediation::{analyse, equations};
    use crate::model::panel::Panel;
    use crate::model::spec::InferenceSpec;
    use crate::model::spec::default_spec;

    /// The serial statistics counted in closed form are the chain's.
    #[test]
    fn serial_counts_are_the_chains() {
        for m in 2..=crate::model::serial::MAX_MEDIATORS {
            let lay = StatLayout {
                serial: true,
                ..StatLayout::plain(m)
            };
            let c = lay.chain();
            let want = c.links.len() + c.longer().len() + c.longer_contrasts().len();
            assert_eq!(lay.serial_len(), want, "{m} mediators");
        }
    }

    /// At the full sample (every weight 1), the studentized SEs' pieces
    /// (each reported coefficient's influence functionals, the CR1 meat,
    /// each statistic's gradient) give the analysis' own delta-method SE of
    /// every statistic with an SE of its own: the treatment-mediator
    /// interaction's natural effects (whose evaluation point is the full
    /// sample's means, so no resample re-analysis can check them), a
    /// centred moderated model's effects, a chain's paths.
    #[test]
    fn studentized_pieces_give_the_delta_method_ses_at_the_full_sample() {
        use crate::model::spec::{Interaction, Moderation, ModeratorValues};
        let mut interaction = default_spec();
        interaction.interaction = Some(Interaction::default());
        let mut moderated = default_spec();
        moderated.controls.retain(|c| c != "ln_pop_density");
        moderated.moderation = Some(Moderation {
            moderator: "ln_pop_density".into(),
            a: true,
            b: true,
            direct: true,
            center: true,
            at: ModeratorValues::MeanSd,
        });
        let mut chain = default_spec();
        chain.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
        chain.serial = true;
        let table = generate(SyntheticParams::default());
        for spec in [interaction, moderated, chain] {
            let panel = Panel::from_table(&table, &spec).unwrap();
            let d = Design::build(&panel, spec.fixed_effects).unwrap();
            let analysis = analyse(&d, &InferenceSpec::default()).unwrap();
            let fit = crate::model::estimate::fit_system(&d, &equations(&d)).unwrap();
            let st = Studentized::of(&d).unwrap();
            let (n, p) = (st.n_theta, packed_len(d.q()));
            let mut theta = vec![0.0; n];
            let mut f = vec![0.0; n * p];
            assert!(st.functionals(&d.total_packed(), &mut theta, &mut f));
            let mut v = vec![0.0; n * n];
            for c in 0..d.n_clusters {
                let s = d.cluster_stats(c);
                let psi: Vec<f64> = (0..n)
                    .map(|o| (0..p).map(|k| f[o * p + k] * s[k]).sum())
                    .collect();
                for a in 0..n {
                    for b in 0..n {
                        let (ea, eb) = (st.equation_of[a], st.equation_of[b]);
                        let ssc = (fit.equations[ea].ssc * fit.equations[eb].ssc).sqrt();
                        v[a * n + b] += psi[a] * psi[b] * ssc;
                    }
                }
            }
            let mut grads = Vec::new();
            st.gradients(&theta, &mut grads);
            let lay = StatLayout {
                studentized: true,
                ..StatLayout::of(&d)
            };
            let stats = lay.studentized_stats();
            assert_eq!(grads.len(), stats.len());
            let names = &spec.mediators;
            let mut checked = 0;
            for (key, effect) in &analysis.effects {
                let Some(stat) = lay.index_of(key, names) else {
                    continue;
                };
                let Some(i) = stats.iter().position(|&s| s == stat) else {
                    continue;
                };
                let got = quadratic_form(&grads[i], &v).sqrt();
                let want = effect.se.unwrap();
                assert!((got - want).abs() <= 1e-9 * want, "{key}: {got} vs {want}");
                checked += 1;
            }
            // One mediator's a b is the indirect effect, reported once.
            assert_eq!(checked, stats.len() - usize::from(names.len() == 1));
        }
    }

    /// The default panel with the two agglomeration components as mediators.
    fn two_mediator_design() -> Design {
        design_with(&[])
    }

    /// The same, with the treatment instrumented.
    fn instrumented_design() -> Design {
        design_with(&["iv_post1984"])
    }

    fn design_with(instruments: &[&str]) -> Design {
        let mut spec = default_spec();
        spec.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
        spec.instruments = instruments.iter().map(|s| s.to_string()).collect();
        let panel = Panel::from_table(&generate(SyntheticParams::default()), &spec).unwrap();
        Design::build(&panel, spec.fixed_effects).unwrap()
    }

    #[test]
    fn influence_functionals_reproduce_the_cluster_influences() {
        check_influence_functionals(two_mediator_design());
    }

    #[test]
    fn two_stage_influence_functionals_reproduce_the_cluster_influences() {
        check_influence_functionals(instrumented_design());
    }

    fn check_influence_functionals(design: Design) {
        let fit = crate::model::estimate::fit_system(&design, &equations(&design)).unwrap();
        let p = packed_len(design.q());
        let packed = design.total_packed();
        let mut solver = Solver::new(&design);
        let mut out = vec![0.0; solver.layout.len()];
        assert!(solver.solve(&packed, &mut out));
        let m = 2;
        let mut c = vec![0.0; 2 * m * p];
        solver.influence_functionals(&mut c);
        let l = design.layout;
        for g in [0, 17, 200] {
            let s = design.cluster_stats(g);
            for j in 0..m {
                for (u, (e, col)) in [(j, (1 + j, l.treatment())), (m + j, (m + 1, l.mediator(j)))]
                {
                    let got: f64 = c[u * p..(u + 1) * p]
                        .iter()
                        .zip(s)
                        .map(|(a, b)| a * b)
                        .sum();
                    let want = fit.influence[g * fit.dim + fit.index(e, col)];
                    assert!(
                        (got - want).abs() <= 1e-10 * want.abs().max(1e-12),
                        "cluster {g} coef {u}: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// Four replicates factored side by side give each one's own solve to
    /// the bit, a singular one among them NaN and failed, for a plain model
    /// with two mediators and the sensitivity grid, and for a chain.
    #[test]
    fn lanes_solve_each_replicate_as_alone() {
        let serial = {
            let mut spec = default_spec();
            spec.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
            spec.serial = true;
            let panel = Panel::from_table(&generate(SyntheticParams::default()), &spec).unwrap();
            Design::build(&panel, spec.fixed_effects).unwrap()
        };
        for (design, rho) in [
            (two_mediator_design(), vec![-0.3, 0.0, 0.4]),
            (serial, vec![]),
        ] {
            let q = design.q();
            let p = packed_len(q);
            let g = design.n_clusters;
            let grams: Vec<Vec<f64>> = (0..LANES)
                .map(|r| {
                    let mut packed = vec![0.0; p];
                    for c in 0..g {
                        let w = ((c * 7 + r * 13) % 5) as f64;
                        for (v, &x) in packed.iter_mut().zip(&design.stats[c * p..(c + 1) * p]) {
                            *v += w * x;
                        }
                    }
                    // Replicate 2 singular: its treatment column zero.
                    if r == 2 {
                        for c in 0..q {
                            packed[packed_index(0, c, q)] = 0.0;
                        }
                    }
                    packed
                })
                .collect();
            let mut solver = Solver::new(&design);
            solver.rho = rho.clone();
            solver.layout.sensitivity = rho.len();
            assert!(solver.lanes());
            let n = solver.layout.len();
            let mut alone = vec![0.0; LANES * n];
            let mut each = Vec::new();
            for (r, row) in alone.chunks_mut(n).enumerate() {
                each.push(solver.solve(&grams[r], row));
            }
            let mut together = vec![0.0; LANES * n];
            let lanes: [&[f64]; LANES] = std::array::from_fn(|r| grams[r].as_slice());
            let solved = solver.solve_lanes(lanes, &mut together);
            assert_eq!(solved.to_vec(), each);
            assert_eq!(each, [true, true, false, true]);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&together), bits(&alone));
            assert!(together[2 * n..3 * n].iter().all(|v| v.is_nan()));
        }
    }

    #[test]
    fn unit_weights_reproduce_the_point_estimates() {
        check_point_estimates(two_mediator_design());
    }

    #[test]
    fn two_stage_unit_weights_reproduce_the_point_estimates() {
        let design = instrumented_design();
        // The instrumented estimates differ from least squares: the test
        // would not notice a solver that ignored the instruments otherwise.
        let mut ols = Solver::new(&two_mediator_design());
        let mut iv = Solver::new(&design);
        let (mut a, mut b) = (vec![0.0; ols.layout.len()], vec![0.0; iv.layout.len()]);
        assert!(ols.solve(&two_mediator_design().total_packed(), &mut a));
        assert!(iv.solve(&design.total_packed(), &mut b));
        assert!(
            (a[0] - b[0]).abs() > 1e-3 * a[0].abs(),
            "{} vs {}",
            a[0],
            b[0]
        );
        check_point_estimates(design);
    }

    #[test]
    fn two_stage_without_first_stage_is_degenerate() {
        // Zero the instrument's cross products: the first stage is singular,
        // the replicate NaN.
        let design = instrumented_design();
        let q = design.q();
        let z = design.layout.instrument(0);
        let mut packed = design.total_packed();
        for c in 0..q {
            if c != z {
                packed[packed_index(z, c, q)] = 0.0;
            }
        }
        let mut solver = Solver::new(&design);
        let mut out = vec![0.0; solver.layout.len()];
        assert!(!solver.solve(&packed, &mut out));
        assert!(out.iter().all(|v| v.is_nan()));
    }

    fn check_point_estimates(design: Design) {
        let analysis = analyse(
            &design,
            &InferenceSpec {
                mc_draws: 1000,
                ..Default::default()
            },
        )
        .unwrap();
        let packed = design.total_packed();
        let mut solver = Solver::new(&design);
        let mut out = vec![0.0; solver.layout.len()];
        assert!(solver.solve(&packed, &mut out));
        assert_eq!(equations(&design).len(), 4);
        for (key, e) in &analysis.effects {
            let i = solver.layout.index_of(key, &analysis.mediators).unwrap();
            let rel = (out[i] - e.estimate).abs() / e.estimate.abs();
            assert!(rel < 1e-12, "{key}: {} vs {}", out[i], e.estimate);
        }
    }
}
