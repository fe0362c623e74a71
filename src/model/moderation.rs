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
/// coefficients (a3, b3, c3' of the moderated paths), the conditional
/// indirect effect at each moderator value, the conditional direct effect
/// at each (direct path moderated), the index of moderated mediation (only
/// one of a and b moderated), the difference of the last and first
/// conditional indirect effects (both moderated, two values or more).
/// The interaction model adds the interaction coefficient, the natural
/// direct and the natural indirect effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModerationStats {
    pub a: bool,
    pub b: bool,
    pub direct: bool,
    /// Moderator values (0: not a moderated model).
    pub values: usize,
    /// The treatment-mediator interaction model.
    pub interaction: bool,
}

impl ModerationStats {
    /// The statistics of a design's moderation or interaction (none
    /// without).
    pub fn of(design: &Design) -> ModerationStats {
        let interaction = design.interaction.is_some();
        match &design.moderation {
            Some(m) => ModerationStats {
                a: m.spec.a,
                b: m.spec.b,
                direct: m.spec.direct,
                values: m.values.len(),
                interaction,
            },
            None => ModerationStats {
                interaction,
                ..ModerationStats::default()
            },
        }
    }
    /// Whether the model is moderated.
    pub fn on(&self) -> bool {
        self.values > 0
    }
    /// The interaction coefficients (one per moderated path).
    pub fn interactions(&self) -> usize {
        usize::from(self.a) + usize::from(self.b) + usize::from(self.direct)
    }
    /// Whether the index of moderated mediation exists: the conditional
    /// indirect effect is linear in W (exactly one of a, b moderated).
    pub fn has_index(&self) -> bool {
        self.on() && self.a != self.b
    }
    /// Whether the difference of conditional indirect effects is given.
    pub fn has_difference(&self) -> bool {
        self.a && self.b && self.values >= 2
    }
    /// The moderation's statistics (the interaction model's follow).
    pub fn moderation_len(&self) -> usize {
        if !self.on() {
            return 0;
        }
        self.interactions()
            + self.values
            + if self.direct { self.values } else { 0 }
            + usize::from(self.has_index())
            + usize::from(self.has_difference())
    }
    /// Statistics added.
    pub fn len(&self) -> usize {
        self.moderation_len() + if self.interaction { 3 } else { 0 }
    }

    /// The keys of the statistics added, in their order: the one
    /// definition `StatLayout` places them by and [`each_effect`] gives
    /// them in.
    pub fn keys(&self) -> Vec<EffectKey> {
        let mut keys = Vec::with_capacity(self.len());
        if self.on() {
            let paths = [
                (self.a, EffectKey::A3),
                (self.b, EffectKey::B3),
                (self.direct, EffectKey::C3Prime),
            ];
            keys.extend(paths.into_iter().filter(|p| p.0).map(|p| p.1));
            keys.extend((0..self.values).map(EffectKey::ConditionalIndirect));
            if self.direct {
                keys.extend((0..self.values).map(EffectKey::ConditionalDirect));
            }
            if self.has_index() {
                keys.push(EffectKey::IndexModeratedMediation);
            }
            if self.has_difference() {
                keys.push(EffectKey::IndirectDifference);
            }
        }
        if self.interaction {
            keys.extend([
                EffectKey::Interaction,
                EffectKey::NaturalDirect,
                EffectKey::NaturalIndirect,
            ]);
        }
        keys
    }
}

/// Whether a moderated or interaction model's statistic `key` gets the
/// replicate's own SE under studentized intervals: its effects
/// (conditional effects, index, difference, natural effects), not its
/// coefficients (a3, b3, c3', the interaction), as a and b have none.
pub fn studentized(key: &EffectKey) -> bool {
    !matches!(
        key,
        EffectKey::A3 | EffectKey::B3 | EffectKey::C3Prime | EffectKey::Interaction
    )
}

/// Positions in theta: a1, b1, c (2), c' (as in the plain model), then a3,
/// b3, c3' (zero where the path is not moderated), d (X*M, the interaction
/// model's).
pub const THETA: usize = 8;
pub const A1: usize = 0;
pub const B1: usize = 1;
pub const C_PRIME: usize = 3;
pub const A3: usize = 4;
pub const B3: usize = 5;
pub const C3: usize = 6;
pub const D: usize = 7;

/// Whether `design` is a moderated or an interaction model (solved and
/// evaluated here).
pub fn extended(design: &Design) -> bool {
    design.moderation.is_some() || design.interaction.is_some()
}

/// The extended model's three equations: total, mediator, outcome.
pub fn equations(design: &Design) -> Vec<Equation> {
    let l = design.layout;
    let equation = |name: String, dependent: usize, regressors: Vec<usize>| Equation {
        name,
        dependent,
        regressors,
        instruments: None,
    };
    let mediator_name = format!("mediator {}", design.names[l.mediator(0)]);
    let Some(md) = &design.moderation else {
        let mut outcome = l.outcome_regressors();
        outcome.extend(design.interaction.map(|i| i.xm));
        return vec![
            equation("total".into(), l.outcome(), l.base_regressors()),
            equation(mediator_name, l.mediator(0), l.base_regressors()),
            equation("outcome".into(), l.outcome(), outcome),
        ];
    };
    let with = |mut regressors: Vec<usize>, extra: &[Option<usize>]| {
        regressors.extend(extra.iter().flatten());
        regressors
    };
    let spec = &md.spec;
    let total = with(l.base_regressors(), &[md.w]);
    let mediator = match spec.a {
        true => with(l.base_regressors(), &[md.w, md.xw]),
        false => l.base_regressors(),
    };
    let outcome = with(
        l.outcome_regressors(),
        &[
            md.w.filter(|_| spec.b || spec.direct),
            md.mw,
            md.xw.filter(|_| spec.direct),
        ],
    );
    vec![
        equation("total".into(), l.outcome(), total),
        equation(mediator_name, l.mediator(0), mediator),
        equation("outcome".into(), l.outcome(), outcome),
    ]
}

/// Each coefficient of theta as (equation, design column), None where the
/// model has no such term (theta is 0 there).
pub fn coefficients(design: &Design) -> [Option<(usize, usize)>; THETA] {
    let l = design.layout;
    let (x, m) = (l.treatment(), l.mediator(0));
    let md = design.moderation.as_ref();
    let (a, direct) = md.map_or((false, false), |md| (md.spec.a, md.spec.direct));
    let xw = md.and_then(|md| md.xw);
    [
        Some((1, x)),
        Some((2, m)),
        Some((0, x)),
        Some((2, x)),
        xw.filter(|_| a).map(|c| (1, c)),
        md.and_then(|md| md.mw).map(|c| (2, c)),
        xw.filter(|_| direct).map(|c| (2, c)),
        design.interaction.map(|i| (2, i.xm)),
    ]
}

/// Where an extended model's effects are evaluated: the moderator values
/// less W's shift in the products, and the interaction model's
/// (x0, x1, mean of X, mean of M).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    pub u: Vec<f64>,
    pub natural: Option<[f64; 4]>,
}

impl Evaluation {
    pub fn of(design: &Design) -> Evaluation {
        Evaluation {
            u: design
                .moderation
                .as_ref()
                .map(|md| md.values.iter().map(|(_, w)| w - md.w_shift).collect())
                .unwrap_or_default(),
            natural: design.interaction.map(|i| [i.x0, i.x1, i.x_mean, i.m_mean]),
        }
    }
}

/// The conditional indirect effect (a1 + a3 u)(b1 + b3 u) of
/// `(a1, a3, b1, b3)` at u (W less its shift).
pub fn omega(path: &[f64; 4], u: f64) -> f64 {
    (path[0] + path[1] * u) * (path[2] + path[3] * u)
}

/// theta's `(a1, a3, b1, b3)`, the arguments of [`omega`].
pub fn paths(theta: &[f64; THETA]) -> [f64; 4] {
    [theta[A1], theta[A3], theta[B1], theta[B3]]
}

/// Every statistic a moderated model adds, in [`ModerationStats::keys`]'
/// order, each with its value and gradient in theta, handed to `each`.
pub fn each_effect(
    theta: &[f64; THETA],
    at: &Evaluation,
    stats: ModerationStats,
    each: &mut dyn FnMut(EffectKey, f64, [f64; THETA]),
) {
    let t = theta;
    let u = &at.u[..stats.values.min(at.u.len())];
    let unit = |i: usize| {
        let mut g = [0.0; THETA];
        g[i] = 1.0;
        g
    };
    if stats.a {
        each(EffectKey::A3, t[A3], unit(A3));
    }
    if stats.b {
        each(EffectKey::B3, t[B3], unit(B3));
    }
    if stats.direct {
        each(EffectKey::C3Prime, t[C3], unit(C3));
    }
    // (a1 + a3 u)(b1 + b3 u) and its gradient.
    let omega = |u: f64| {
        let (first, second) = (t[A1] + t[A3] * u, t[B1] + t[B3] * u);
        let mut g = [0.0; THETA];
        g[A1] = second;
        g[A3] = second * u;
        g[B1] = first;
        g[B3] = first * u;
        (omega(&paths(t), u), g)
    };
    for (k, &v) in u.iter().enumerate() {
        let (value, g) = omega(v);
        each(EffectKey::ConditionalIndirect(k), value, g);
    }
    if stats.direct {
        for (k, &v) in u.iter().enumerate() {
            let mut g = unit(C_PRIME);
            g[C3] = v;
            each(EffectKey::ConditionalDirect(k), t[C_PRIME] + t[C3] * v, g);
        }
    }
    if stats.has_index() {
        let mut g = [0.0; THETA];
        let value = if stats.a {
            g[A3] = t[B1];
            g[B1] = t[A3];
            t[A3] * t[B1]
        } else {
            g[A1] = t[B3];
            g[B3] = t[A1];
            t[A1] * t[B3]
        };
        each(EffectKey::IndexModeratedMediation, value, g);
    }
    if stats.has_difference() {
        let ((last, gl), (first, gf)) = (omega(u[u.len() - 1]), omega(u[0]));
        let mut g = [0.0; THETA];
        for i in 0..THETA {
            g[i] = gl[i] - gf[i];
        }
        each(EffectKey::IndirectDifference, last - first, g);
    }
    if let (true, Some([x0, x1, x_mean, m_mean])) = (stats.interaction, at.natural) {
        let delta = x1 - x0;
        each(EffectKey::Interaction, t[D], unit(D));
        // E[M | x0] at the controls' means.
        let m0 = m_mean + t[A1] * (x0 - x_mean);
        let mut g = [0.0; THETA];
        g[C_PRIME] = delta;
        g[D] = m0 * delta;
        g[A1] = t[D] * (x0 - x_mean) * delta;
        each(
            EffectKey::NaturalDirect,
            (t[C_PRIME] + t[D] * m0) * delta,
            g,
        );
        let mut g = [0.0; THETA];
        g[A1] = (t[B1] + t[D] * x1) * delta;
        g[B1] = t[A1] * delta;
        g[D] = t[A1] * x1 * delta;
        each(
            EffectKey::NaturalIndirect,
            t[A1] * (t[B1] + t[D] * x1) * delta,
            g,
        );
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
            interaction,
        }
    }

    /// Every gradient is the derivative of its value (central differences).
    #[test]
    fn gradients_are_the_derivatives() {
        let theta = [0.3, -0.7, 0.2, 0.5, 0.11, -0.23, 0.17, 0.09];
        let at = Evaluation {
            u: vec![-1.3, 0.4, 2.2],
            natural: Some([1.5, 2.7, 1.9, 3.1]),
        };
        for stats in [
            stats(true, false, false, 3, false),
            stats(false, true, true, 3, false),
            stats(true, true, true, 3, false),
            stats(false, false, false, 0, true),
        ] {
            let mut values = Vec::new();
            each_effect(&theta, &at, stats, &mut |k, v, g| values.push((k, v, g)));
            assert_eq!(values.len(), stats.len());
            // In the order the layout places them.
            let keys: Vec<EffectKey> = values.iter().map(|v| v.0.clone()).collect();
            assert_eq!(keys, stats.keys());
            for (n, (key, _, g)) in values.iter().enumerate() {
                for i in 0..THETA {
                    let value = |h: f64| {
                        let mut t = theta;
                        t[i] += h;
                        let mut out = Vec::new();
                        each_effect(&t, &at, stats, &mut |_, v, _| out.push(v));
                        out[n]
                    };
                    let numeric = (value(1e-6) - value(-1e-6)) / 2e-6;
                    assert!(
                        (numeric - g[i]).abs() < 1e-8,
                        "{key} d{i}: {numeric} vs {}",
                        g[i]
                    );
                }
            }
        }
    }

    #[test]
    fn the_index_is_the_slope_of_the_conditional_indirect_effect() {
        // Only a moderated: omega(u) = (a1 + a3 u) b1, linear with slope a3 b1.
        let theta = [0.3, -0.7, 0.2, 0.5, 0.11, 0.0, 0.0, 0.0];
        let at = Evaluation {
            u: vec![0.0, 1.0],
            natural: None,
        };
        let mut got = Vec::new();
        each_effect(
            &theta,
            &at,
            stats(true, false, false, 2, false),
            &mut |k, v, _| got.push((k, v)),
        );
        let of = |key: EffectKey| {
            got.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .unwrap()
        };
        let slope = of(EffectKey::ConditionalIndirect(1)) - of(EffectKey::ConditionalIndirect(0));
        assert!((slope - of(EffectKey::IndexModeratedMediation)).abs() < 1e-15);
    }

    #[test]
    fn without_an_interaction_the_natural_effects_are_c_prime_and_a_b() {
        // d = 0: NDE = c' (x1 - x0), NIE = a b (x1 - x0), whatever the means.
        let (a, b, c_prime) = (0.3, -0.7, 0.5);
        let theta = [a, b, 0.2, c_prime, 0.0, 0.0, 0.0, 0.0];
        let at = Evaluation {
            u: vec![],
            natural: Some([1.5, 4.0, 1.9, 3.1]),
        };
        let mut got = Vec::new();
        each_effect(
            &theta,
            &at,
            stats(false, false, false, 0, true),
            &mut |k, v, _| got.push((k, v)),
        );
        assert_eq!(got[1], (EffectKey::NaturalDirect, c_prime * 2.5));
        assert_eq!(got[2], (EffectKey::NaturalIndirect, a * b * 2.5));
    }
}
