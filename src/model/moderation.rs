//! Moderated mediation (conditional process analysis, Hayes' PROCESS
//! models 7, 14, 58, 59 and their kin) on the design's moderation block:
//! the equations, the coefficients theta the effects are functions of, and
//! those functions with their gradients (one definition, used by the point
//! estimate's delta method and by every replicate).
//!
//! With W the moderator (shifted by its mean under `center`, so u = w - w̄),
//! the mediator equation gains W and X*W when a is moderated, the outcome
//! equation W and M*W when b is, W and X*W when the direct path is:
//!
//! ```text
//! M = a1 X + a2 W + a3 XW + ...          Y = c1' X + c2' W + c3' XW + b1 M + b2 MW + ...
//! ```
//!
//! The conditional indirect effect at u is (a1 + a3 u)(b1 + b3 u), the
//! conditional direct effect c1' + c3' u; the index of moderated mediation
//! is a3 b1 (only a moderated) or a1 b3 (only b). The total-effect
//! equation is Y on X (and W): the average total effect given W.
//!
//! The treatment-mediator interaction is the same kind of model: the
//! outcome equation gains X*M (coefficient d), and the natural direct and
//! indirect effects of moving X from x0 to x1 (VanderWeele and Vansteelandt
//! 2009, linear mediator and outcome, at the controls' means) are
//! `(c' + d (E[M | x0])) (x1 - x0)` and `a (b + d x1) (x1 - x0)`, with
//! `E[M | x0] = mean(M) + a (x0 - mean(X))`.

use crate::model::design::Design;
use crate::model::effect::EffectKey;
use crate::model::estimate::Equation;

/// The statistics a moderated model adds, in this order: its interaction
/// coefficients (a3 of each mediator, b3 of each, c3' of the moderated
/// paths), the conditional indirect effect at each moderator value (the
/// total over the mediators, then with several each mediator's), the
/// conditional direct effect at each (direct path moderated), the index
/// of moderated mediation (only one of a and b moderated; total, then each
/// mediator's), the difference of the last and first conditional indirect
/// effects (both moderated, two values or more; total, then each
/// mediator's). The interaction model adds the interaction coefficient of
/// each mediator, the natural direct effect and the natural indirect
/// effect (total, then each mediator's). With one mediator nothing is
/// named and the totals are the mediator's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModerationStats {
    pub a: bool,
    pub b: bool,
    pub direct: bool,
    /// Moderator values (0: not a moderated model).
    pub values: usize,
    /// Moderator terms: 1 for a continuous W, a categorical one's levels
    /// less one (0: not a moderated model).
    pub terms: usize,
    /// W is categorical: its values are its levels, the first the lowest.
    pub categorical: bool,
    /// The treatment-mediator interaction model.
    pub interaction: bool,
    /// Parallel mediators (0 for a model that is neither).
    pub mediators: usize,
}

impl ModerationStats {
    /// The statistics of a design's moderation or interaction (none
    /// without).
    pub fn of(design: &Design) -> ModerationStats {
        let interaction = design.interaction.is_some();
        let mediators = match extended(design) {
            true => design.layout.n_mediators,
            false => 0,
        };
        match &design.moderation {
            Some(m) => ModerationStats {
                a: m.spec.a,
                b: m.spec.b,
                direct: m.spec.direct,
                values: m.values.len(),
                terms: m.terms.len(),
                categorical: m.categorical(),
                interaction,
                mediators,
            },
            None => ModerationStats {
                interaction,
                mediators,
                ..ModerationStats::default()
            },
        }
    }
    /// Whether the model is moderated.
    pub fn on(&self) -> bool {
        self.values > 0
    }
    /// Each mediator's own effects besides the totals (several mediators).
    fn each(&self) -> usize {
        if self.mediators > 1 {
            self.mediators
        } else {
            0
        }
    }
    /// The interaction coefficients (a3, b3 per mediator, c3'; per term).
    pub fn interactions(&self) -> usize {
        self.terms
            * (self.mediators * (usize::from(self.a) + usize::from(self.b))
                + usize::from(self.direct))
    }
    /// Whether the index of moderated mediation exists: the conditional
    /// indirect effect is linear in W (exactly one of a, b moderated); one
    /// per term.
    pub fn has_index(&self) -> bool {
        self.on() && self.a != self.b
    }
    /// Whether the difference of conditional indirect effects is given.
    pub fn has_difference(&self) -> bool {
        self.a && self.b && self.values >= 2
    }
    /// The model's differences of conditional indirect effects
    /// ([`difference_pairs`]; none unless a and b are both moderated).
    pub fn differences(&self) -> impl ExactSizeIterator<Item = (usize, usize)> {
        let values = if self.has_difference() {
            self.values
        } else {
            0
        };
        difference_pairs(values, self.categorical)
    }
    /// The moderation's statistics (the interaction model's follow).
    pub fn moderation_len(&self) -> usize {
        if !self.on() {
            return 0;
        }
        let with_each = 1 + self.each();
        self.interactions()
            + self.values * with_each
            + if self.direct { self.values } else { 0 }
            + usize::from(self.has_index()) * self.terms * with_each
            + self.differences().len() * with_each
    }
    /// Statistics added.
    pub fn len(&self) -> usize {
        let interaction = match self.interaction {
            true => self.mediators + 2 + self.each(),
            false => 0,
        };
        self.moderation_len() + interaction
    }

    /// The keys of the statistics added, in their order, with `mediators`
    /// the mediators' names: the one definition `StatLayout` places them
    /// by and [`each_effect`] gives them in.
    pub fn keys(&self, mediators: &[String]) -> Vec<EffectKey> {
        let mut keys = Vec::with_capacity(self.len());
        let name = |j: usize| (self.mediators > 1).then(|| mediators[j].clone());
        let each = |keys: &mut Vec<EffectKey>, key: &dyn Fn(Option<String>) -> EffectKey| {
            keys.push(key(None));
            keys.extend((0..self.each()).map(|j| key(name(j))));
        };
        if self.on() {
            if self.a {
                for t in 0..self.terms {
                    keys.extend((0..self.mediators).map(|j| EffectKey::A3(t, name(j))));
                }
            }
            if self.b {
                for t in 0..self.terms {
                    keys.extend((0..self.mediators).map(|j| EffectKey::B3(t, name(j))));
                }
            }
            if self.direct {
                keys.extend((0..self.terms).map(EffectKey::C3Prime));
            }
            for k in 0..self.values {
                each(&mut keys, &|n| EffectKey::ConditionalIndirect(k, n));
            }
            if self.direct {
                keys.extend((0..self.values).map(EffectKey::ConditionalDirect));
            }
            if self.has_index() {
                for t in 0..self.terms {
                    each(&mut keys, &|n| EffectKey::IndexModeratedMediation(t, n));
                }
            }
            for t in 0..self.differences().len() {
                each(&mut keys, &|n| EffectKey::IndirectDifference(t, n));
            }
        }
        if self.interaction {
            keys.extend((0..self.mediators).map(|j| EffectKey::Interaction(name(j))));
            keys.push(EffectKey::NaturalDirect);
            each(&mut keys, &EffectKey::NaturalIndirect);
        }
        keys
    }

    /// Whether each statistic (in [`ModerationStats::keys`]' order) is a
    /// coefficient (a3, b3, c3', an interaction; see [`coefficient`]).
    pub fn coefficients(&self) -> Vec<bool> {
        let numbered: Vec<String> = (0..self.mediators).map(|j| j.to_string()).collect();
        self.keys(&numbered).iter().map(coefficient).collect()
    }

    /// Theta's length: a1 and b1 of each mediator, c, c', then per term
    /// a3 of each mediator, per term b3 of each, c3' of each term, d of
    /// each mediator (zero where the model has no such term; one term's
    /// places in a model that is not moderated).
    pub fn theta_len(&self) -> usize {
        self.d(self.mediators)
    }
    /// Terms theta has places for.
    fn slots(&self) -> usize {
        self.terms.max(1)
    }
    /// Mediator j's a1 in theta.
    pub fn a1(&self, j: usize) -> usize {
        j
    }
    pub fn b1(&self, j: usize) -> usize {
        self.mediators + j
    }
    pub fn c(&self) -> usize {
        2 * self.mediators
    }
    pub fn c_prime(&self) -> usize {
        2 * self.mediators + 1
    }
    /// Mediator j's a3 of term t.
    pub fn a3(&self, j: usize, t: usize) -> usize {
        2 * self.mediators + 2 + t * self.mediators + j
    }
    pub fn b3(&self, j: usize, t: usize) -> usize {
        self.a3(j, t) + self.slots() * self.mediators
    }
    pub fn c3(&self, t: usize) -> usize {
        2 * self.mediators + 2 + 2 * self.slots() * self.mediators + t
    }
    pub fn d(&self, j: usize) -> usize {
        self.c3(self.slots()) + j
    }
}

/// The differences of conditional indirect effects among `values`
/// moderator values, as (later, earlier) values: the last less the first,
/// or with a categorical W each level's less the lowest's (none below two
/// values).
pub fn difference_pairs(
    values: usize,
    categorical: bool,
) -> impl ExactSizeIterator<Item = (usize, usize)> {
    let first = match categorical {
        true => 1,
        false => values.saturating_sub(1).max(1),
    };
    (first..values.max(first)).map(|k| (k, 0))
}

/// Whether `key` is a moderated or interaction model's coefficient (a3,
/// b3, c3', an interaction), tested by its t statistic. The others (its
/// conditional effects, index, difference, natural effects) get a
/// replicate's own SE under studentized intervals; its coefficients do
/// not, as a and b have none.
pub fn coefficient(key: &EffectKey) -> bool {
    matches!(
        key,
        EffectKey::A3(..) | EffectKey::B3(..) | EffectKey::C3Prime(_) | EffectKey::Interaction(_)
    )
}

/// Whether `design` is a moderated or an interaction model (solved and
/// evaluated here).
pub fn extended(design: &Design) -> bool {
    design.moderation.is_some() || design.interaction.is_some()
}

/// The extended model's equations: total, each mediator's, outcome.
pub fn equations(design: &Design) -> Vec<Equation> {
    let l = design.layout;
    let m = l.n_mediators;
    let equation = |name: String, dependent: usize, regressors: Vec<usize>| Equation {
        name,
        dependent,
        regressors,
        instruments: None,
    };
    let mediator_name = |j: usize| format!("mediator {}", design.names[l.mediator(j)]);
    let Some(md) = &design.moderation else {
        let mut outcome = l.outcome_regressors();
        outcome.extend(design.interaction.iter().flat_map(|i| i.xm.iter().copied()));
        let mut eqs = vec![equation("total".into(), l.outcome(), l.base_regressors())];
        eqs.extend((0..m).map(|j| equation(mediator_name(j), l.mediator(j), l.base_regressors())));
        eqs.push(equation("outcome".into(), l.outcome(), outcome));
        return eqs;
    };
    let spec = &md.spec;
    let ws = md.terms.iter().filter_map(|t| t.w);
    let xws = md.terms.iter().filter_map(|t| t.xw);
    let mut total = l.base_regressors();
    total.extend(ws.clone());
    let mut mediator = l.base_regressors();
    if spec.a {
        // Each term's W, then each term's X*W.
        mediator.extend(ws.clone());
        mediator.extend(xws.clone());
    }
    let mut outcome = l.outcome_regressors();
    if spec.b || spec.direct {
        outcome.extend(ws);
    }
    outcome.extend(md.terms.iter().flat_map(|t| t.mw.iter().copied()));
    if spec.direct {
        outcome.extend(xws);
    }
    let mut eqs = vec![equation("total".into(), l.outcome(), total)];
    eqs.extend((0..m).map(|j| equation(mediator_name(j), l.mediator(j), mediator.clone())));
    eqs.push(equation("outcome".into(), l.outcome(), outcome));
    eqs
}

/// Each coefficient of theta ([`ModerationStats::theta_len`]'s order) as
/// (equation, design column), None where the model has no such term
/// (theta is 0 there).
pub fn coefficients(design: &Design) -> Vec<Option<(usize, usize)>> {
    let l = design.layout;
    let s = ModerationStats::of(design);
    let m = s.mediators;
    let x = l.treatment();
    let outcome = m + 1;
    let md = design.moderation.as_ref();
    let (a, direct) = md.map_or((false, false), |md| (md.spec.a, md.spec.direct));
    let terms = md.map_or(&[][..], |md| &md.terms[..]);
    let mut theta = vec![None; s.theta_len()];
    for j in 0..m {
        theta[s.a1(j)] = Some((1 + j, x));
        theta[s.b1(j)] = Some((outcome, l.mediator(j)));
        for (t, term) in terms.iter().enumerate() {
            theta[s.a3(j, t)] = term.xw.filter(|_| a).map(|c| (1 + j, c));
            theta[s.b3(j, t)] = term.mw.get(j).map(|&c| (outcome, c));
        }
        theta[s.d(j)] = design.interaction.as_ref().map(|i| (outcome, i.xm[j]));
    }
    theta[s.c()] = Some((0, x));
    theta[s.c_prime()] = Some((outcome, x));
    for (t, term) in terms.iter().enumerate() {
        theta[s.c3(t)] = term.xw.filter(|_| direct).map(|c| (outcome, c));
    }
    theta
}

/// Where an extended model's effects are evaluated: each moderator value
/// as the moderator terms' coordinates (W less its shift in the products,
/// or a categorical W's level indicators), and the interaction model's
/// change of the treatment and sample means.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    pub u: Vec<Vec<f64>>,
    pub natural: Option<Natural>,
}

/// The interaction model's treatment change x0 -> x1, X's mean and each
/// mediator's.
#[derive(Debug, Clone, PartialEq)]
pub struct Natural {
    pub x0: f64,
    pub x1: f64,
    pub x_mean: f64,
    pub m_mean: Vec<f64>,
}

impl Evaluation {
    pub fn of(design: &Design) -> Evaluation {
        Evaluation {
            u: design
                .moderation
                .as_ref()
                .map(|md| md.points())
                .unwrap_or_default(),
            natural: design.interaction.as_ref().map(|i| Natural {
                x0: i.x0,
                x1: i.x1,
                x_mean: i.x_mean,
                m_mean: i.m_mean.clone(),
            }),
        }
    }
}

/// The conditional indirect effect (a1 + a3 u)(b1 + b3 u) of
/// `(a1, a3, b1, b3)` at u (W less its shift).
pub fn omega(path: &[f64; 4], u: f64) -> f64 {
    (path[0] + path[1] * u) * (path[2] + path[3] * u)
}

/// Every statistic a moderated or interaction model adds, in
/// [`ModerationStats::keys`]' order, each value with its gradient in
/// theta (in `scratch`, which it sizes) handed to `each`.
pub fn each_effect(
    theta: &[f64],
    at: &Evaluation,
    stats: ModerationStats,
    scratch: &mut Vec<f64>,
    each: &mut dyn FnMut(f64, &[f64]),
) {
    let (t, s) = (theta, stats);
    let m = s.mediators;
    let u = &at.u[..s.values.min(at.u.len())];
    scratch.clear();
    scratch.resize(s.theta_len(), 0.0);
    let g = scratch;
    // Each statistic: its gradient written into a zeroed g by `grad`,
    // which gives its value.
    let mut emit = |grad: &mut dyn FnMut(&mut [f64]) -> f64| {
        g.iter_mut().for_each(|v| *v = 0.0);
        let value = grad(g);
        each(value, g);
    };
    // The total over the mediators (all of them) or mediator j's own, of
    // a per-mediator term, then each mediator's with several.
    let total_and_each = |emit: &mut dyn FnMut(&mut dyn FnMut(&mut [f64]) -> f64),
                          term: &dyn Fn(usize, &mut [f64]) -> f64| {
        emit(&mut |g| (0..m).map(|j| term(j, g)).sum());
        if m > 1 {
            for j in 0..m {
                emit(&mut |g| term(j, g));
            }
        }
    };
    // (a1 + a3'u)(b1 + b3'u) of mediator j at the terms' coordinates u,
    // its gradient added into g.
    let omega = |j: usize, u: &[f64], sign: f64, g: &mut [f64]| {
        let mut first = t[s.a1(j)];
        let mut second = t[s.b1(j)];
        for (l, &v) in u.iter().enumerate() {
            first += t[s.a3(j, l)] * v;
            second += t[s.b3(j, l)] * v;
        }
        g[s.a1(j)] += sign * second;
        g[s.b1(j)] += sign * first;
        for (l, &v) in u.iter().enumerate() {
            g[s.a3(j, l)] += sign * second * v;
            g[s.b3(j, l)] += sign * first * v;
        }
        sign * first * second
    };
    if s.on() {
        let paths: [(bool, fn(&ModerationStats, usize, usize) -> usize); 2] =
            [(s.a, ModerationStats::a3), (s.b, ModerationStats::b3)];
        for (on, place) in paths {
            if on {
                for l in 0..s.terms {
                    for j in 0..m {
                        emit(&mut |g| {
                            g[place(&s, j, l)] = 1.0;
                            t[place(&s, j, l)]
                        });
                    }
                }
            }
        }
        if s.direct {
            for l in 0..s.terms {
                emit(&mut |g| {
                    g[s.c3(l)] = 1.0;
                    t[s.c3(l)]
                });
            }
        }
        for v in u {
            total_and_each(&mut emit, &|j, g| omega(j, v, 1.0, g));
        }
        if s.direct {
            for v in u {
                emit(&mut |g| {
                    g[s.c_prime()] = 1.0;
                    let mut value = t[s.c_prime()];
                    for (l, &v) in v.iter().enumerate() {
                        g[s.c3(l)] = v;
                        value += t[s.c3(l)] * v;
                    }
                    value
                });
            }
        }
        if s.has_index() {
            for l in 0..s.terms {
                total_and_each(&mut emit, &|j, g| match s.a {
                    true => {
                        g[s.a3(j, l)] += t[s.b1(j)];
                        g[s.b1(j)] += t[s.a3(j, l)];
                        t[s.a3(j, l)] * t[s.b1(j)]
                    }
                    false => {
                        g[s.a1(j)] += t[s.b3(j, l)];
                        g[s.b3(j, l)] += t[s.a1(j)];
                        t[s.a1(j)] * t[s.b3(j, l)]
                    }
                });
            }
        }
        for (later, earlier) in s.differences() {
            let (first, last) = (&u[earlier], &u[later]);
            total_and_each(&mut emit, &|j, g| {
                omega(j, last, 1.0, g) + omega(j, first, -1.0, g)
            });
        }
    }
    if let (true, Some(n)) = (s.interaction, &at.natural) {
        let delta = n.x1 - n.x0;
        for j in 0..m {
            emit(&mut |g| {
                g[s.d(j)] = 1.0;
                t[s.d(j)]
            });
        }
        // E[M_j | x0] at the controls' means.
        let m0 = |j: usize| n.m_mean[j] + t[s.a1(j)] * (n.x0 - n.x_mean);
        emit(&mut |g| {
            g[s.c_prime()] = delta;
            let mut value = t[s.c_prime()];
            for j in 0..m {
                g[s.d(j)] = m0(j) * delta;
                g[s.a1(j)] = t[s.d(j)] * (n.x0 - n.x_mean) * delta;
                value += t[s.d(j)] * m0(j);
            }
            value * delta
        });
        total_and_each(&mut emit, &|j, g| {
            g[s.a1(j)] += (t[s.b1(j)] + t[s.d(j)] * n.x1) * delta;
            g[s.b1(j)] += t[s.a1(j)] * delta;
            g[s.d(j)] += t[s.a1(j)] * n.x1 * delta;
            t[s.a1(j)] * (t[s.b1(j)] + t[s.d(j)] * n.x1) * delta
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(a: bool, b: bool, direct: bool, values: usize, interaction: bool) -> ModerationStats {
        ModerationStats {
            a,
            b,
            direct,
            values,
            terms: usize::from(values > 0),
            categorical: false,
            interaction,
            mediators: 1,
        }
    }

    /// A categorical W of `levels` levels: its values are the levels.
    fn categorical(a: bool, b: bool, direct: bool, levels: usize) -> ModerationStats {
        ModerationStats {
            terms: levels - 1,
            categorical: true,
            ..stats(a, b, direct, levels, false)
        }
    }

    /// The levels' indicator coordinates (the lowest all zero).
    fn level_points(levels: usize) -> Vec<Vec<f64>> {
        (0..levels)
            .map(|k| (1..levels).map(|t| f64::from(u8::from(t == k))).collect())
            .collect()
    }

    fn evaluate(theta: &[f64], at: &Evaluation, stats: ModerationStats) -> Vec<(f64, Vec<f64>)> {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        each_effect(theta, at, stats, &mut scratch, &mut |v, g| {
            out.push((v, g.to_vec()))
        });
        out
    }

    /// Every gradient is the derivative of its value (central differences),
    /// with one mediator and with three, a continuous and a categorical W.
    #[test]
    fn gradients_are_the_derivatives() {
        let names: Vec<String> = ["m1", "m2", "m3"].map(String::from).to_vec();
        for mediators in [1, 3] {
            let natural = Some(Natural {
                x0: 1.5,
                x1: 2.7,
                x_mean: 1.9,
                m_mean: vec![3.1, -0.4, 0.8][..mediators].to_vec(),
            });
            let continuous = Evaluation {
                u: vec![vec![-1.3], vec![0.4], vec![2.2]],
                natural: natural.clone(),
            };
            let levels = Evaluation {
                u: level_points(4),
                natural,
            };
            for (stats, at) in [
                (stats(true, false, false, 3, false), &continuous),
                (stats(false, true, true, 3, false), &continuous),
                (stats(true, true, true, 3, false), &continuous),
                (stats(false, false, false, 0, true), &continuous),
                (categorical(true, false, true, 4), &levels),
                (categorical(false, true, false, 4), &levels),
                (categorical(true, true, true, 4), &levels),
            ] {
                let stats = ModerationStats { mediators, ..stats };
                let theta: Vec<f64> = (0..stats.theta_len())
                    .map(|i| ((i * 7 + 3) % 11) as f64 / 10.0 - 0.45)
                    .collect();
                let values = evaluate(&theta, at, stats);
                assert_eq!(values.len(), stats.len());
                assert_eq!(stats.keys(&names[..mediators]).len(), stats.len());
                for (n, (_, g)) in values.iter().enumerate() {
                    for i in 0..theta.len() {
                        let value = |h: f64| {
                            let mut t = theta.clone();
                            t[i] += h;
                            evaluate(&t, at, stats)[n].0
                        };
                        let numeric = (value(1e-6) - value(-1e-6)) / 2e-6;
                        assert!(
                            (numeric - g[i]).abs() < 1e-8,
                            "{mediators} mediators, statistic {n} d{i}: {numeric} vs {}",
                            g[i]
                        );
                    }
                }
            }
        }
    }

    /// With several mediators each total is the sum of the mediators' own,
    /// and each mediator's is the one-mediator model's of its coefficients.
    #[test]
    fn totals_are_sums_of_each_mediators_effects() {
        let names: Vec<String> = ["m1", "m2"].map(String::from).to_vec();
        let two = ModerationStats {
            mediators: 2,
            ..stats(true, true, false, 2, false)
        };
        let theta: Vec<f64> = (0..two.theta_len())
            .map(|i| 0.1 + 0.07 * i as f64)
            .collect();
        let at = Evaluation {
            u: vec![vec![-0.5], vec![1.5]],
            natural: None,
        };
        let got = evaluate(&theta, &at, two);
        let keys = two.keys(&names);
        let value = |key: EffectKey| got[keys.iter().position(|k| *k == key).unwrap()].0;
        for j in 0..2 {
            // Mediator j alone: (a1, b1, c, c', a3, b3, c3', d).
            let one = ModerationStats {
                mediators: 1,
                ..two
            };
            let own = [
                theta[two.a1(j)],
                theta[two.b1(j)],
                theta[two.c()],
                theta[two.c_prime()],
                theta[two.a3(j, 0)],
                theta[two.b3(j, 0)],
                0.0,
                0.0,
            ];
            let alone = evaluate(&own, &at, one);
            let alone_keys = one.keys(&[]);
            let name = Some(names[j].clone());
            for (key, named) in [
                (
                    EffectKey::ConditionalIndirect(1, None),
                    EffectKey::ConditionalIndirect(1, name.clone()),
                ),
                (
                    EffectKey::IndirectDifference(0, None),
                    EffectKey::IndirectDifference(0, name.clone()),
                ),
                (EffectKey::B3(0, None), EffectKey::B3(0, name.clone())),
            ] {
                let k = alone_keys.iter().position(|k| *k == key).unwrap();
                assert_eq!(alone[k].0, value(named));
            }
        }
        for key in [
            |n| EffectKey::ConditionalIndirect(0, n),
            |n| EffectKey::IndirectDifference(0, n),
        ] {
            let sum = value(key(Some("m1".into()))) + value(key(Some("m2".into())));
            assert!((value(key(None)) - sum).abs() < 1e-15);
        }
    }

    #[test]
    fn the_index_is_the_slope_of_the_conditional_indirect_effect() {
        // Only a moderated: omega(u) = (a1 + a3 u) b1, linear with slope a3 b1.
        let theta = [0.3, -0.7, 0.2, 0.5, 0.11, 0.0, 0.0, 0.0];
        let at = Evaluation {
            u: vec![vec![0.0], vec![1.0]],
            natural: None,
        };
        let s = stats(true, false, false, 2, false);
        let got = evaluate(&theta, &at, s);
        let keys = s.keys(&[]);
        let of = |key: EffectKey| got[keys.iter().position(|k| *k == key).unwrap()].0;
        let slope = of(EffectKey::ConditionalIndirect(1, None))
            - of(EffectKey::ConditionalIndirect(0, None));
        assert!((slope - of(EffectKey::IndexModeratedMediation(0, None))).abs() < 1e-15);
    }

    #[test]
    fn without_an_interaction_the_natural_effects_are_c_prime_and_a_b() {
        // d = 0: NDE = c' (x1 - x0), NIE = a b (x1 - x0), whatever the means.
        let (a, b, c_prime) = (0.3, -0.7, 0.5);
        let theta = [a, b, 0.2, c_prime, 0.0, 0.0, 0.0, 0.0];
        let at = Evaluation {
            u: vec![],
            natural: Some(Natural {
                x0: 1.5,
                x1: 4.0,
                x_mean: 1.9,
                m_mean: vec![3.1],
            }),
        };
        let got = evaluate(&theta, &at, stats(false, false, false, 0, true));
        assert_eq!(got[1].0, c_prime * 2.5);
        assert_eq!(got[2].0, a * b * 2.5);
    }
}
