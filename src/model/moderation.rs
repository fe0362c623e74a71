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

use crate::model::design::{Design, ModeratedColumns};
use crate::model::effect::EffectKey;
use crate::model::estimate::Equation;

/// The statistics a moderated model adds, in this order: its interaction
/// coefficients (a3, b3, c3' of the moderated paths), the conditional
/// indirect effect at each moderator value, the conditional direct effect
/// at each (direct path moderated), the index of moderated mediation (only
/// one of a and b moderated), the difference of the last and first
/// conditional indirect effects (both moderated, two values or more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModerationStats {
    pub a: bool,
    pub b: bool,
    pub direct: bool,
    /// Moderator values (0: not a moderated model).
    pub values: usize,
}

impl ModerationStats {
    /// The statistics of a design's moderation (none without).
    pub fn of(design: &Design) -> ModerationStats {
        match &design.moderation {
            Some(m) => ModerationStats {
                a: m.spec.a,
                b: m.spec.b,
                direct: m.spec.direct,
                values: m.values.len(),
            },
            None => ModerationStats::default(),
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
    /// Statistics added.
    pub fn len(&self) -> usize {
        if !self.on() {
            return 0;
        }
        self.interactions()
            + self.values
            + if self.direct { self.values } else { 0 }
            + usize::from(self.has_index())
            + usize::from(self.has_difference())
    }
}

/// Positions in theta: a1, b1, c (2), c' (as in the plain model), then a3,
/// b3, c3' (zero where the path is not moderated).
pub const THETA: usize = 7;
pub const A1: usize = 0;
pub const B1: usize = 1;
pub const C_PRIME: usize = 3;
pub const A3: usize = 4;
pub const B3: usize = 5;
pub const C3: usize = 6;

/// The moderated model's three equations: total, mediator, outcome.
pub fn equations(design: &Design, md: &ModeratedColumns) -> Vec<Equation> {
    let l = design.layout;
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
    let equation = |name: String, dependent: usize, regressors: Vec<usize>| Equation {
        name,
        dependent,
        regressors,
        instruments: None,
    };
    vec![
        equation("total".into(), l.outcome(), total),
        equation(
            format!("mediator {}", design.names[l.mediator(0)]),
            l.mediator(0),
            mediator,
        ),
        equation("outcome".into(), l.outcome(), outcome),
    ]
}

/// Each coefficient of theta as (equation, design column), None where the
/// path is not moderated (theta is 0 there).
pub fn coefficients(design: &Design, md: &ModeratedColumns) -> [Option<(usize, usize)>; THETA] {
    let l = design.layout;
    let (x, m) = (l.treatment(), l.mediator(0));
    let spec = &md.spec;
    [
        Some((1, x)),
        Some((2, m)),
        Some((0, x)),
        Some((2, x)),
        md.xw.filter(|_| spec.a).map(|c| (1, c)),
        md.mw.map(|c| (2, c)),
        md.xw.filter(|_| spec.direct).map(|c| (2, c)),
    ]
}

/// The moderator values less W's shift in the products: where the
/// conditional effects are evaluated.
pub fn shifted_values(md: &ModeratedColumns) -> Vec<f64> {
    md.values.iter().map(|(_, w)| w - md.w_shift).collect()
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

/// Every statistic a moderated model adds (`StatLayout`'s order), each
/// with its value and gradient in theta, handed to `each`.
pub fn each_effect(
    theta: &[f64; THETA],
    u: &[f64],
    stats: ModerationStats,
    each: &mut dyn FnMut(EffectKey, f64, [f64; THETA]),
) {
    let t = theta;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every gradient is the derivative of its value (central differences).
    #[test]
    fn gradients_are_the_derivatives() {
        let theta = [0.3, -0.7, 0.2, 0.5, 0.11, -0.23, 0.17];
        let u = [-1.3, 0.4, 2.2];
        for stats in [
            ModerationStats {
                a: true,
                b: false,
                direct: false,
                values: 3,
            },
            ModerationStats {
                a: false,
                b: true,
                direct: true,
                values: 3,
            },
            ModerationStats {
                a: true,
                b: true,
                direct: true,
                values: 3,
            },
        ] {
            let mut values = Vec::new();
            each_effect(&theta, &u, stats, &mut |k, v, g| values.push((k, v, g)));
            for (n, (key, _, g)) in values.iter().enumerate() {
                for i in 0..THETA {
                    let at = |h: f64| {
                        let mut t = theta;
                        t[i] += h;
                        let mut out = Vec::new();
                        each_effect(&t, &u, stats, &mut |_, v, _| out.push(v));
                        out[n]
                    };
                    let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
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
        let theta = [0.3, -0.7, 0.2, 0.5, 0.11, 0.0, 0.0];
        let stats = ModerationStats {
            a: true,
            b: false,
            direct: false,
            values: 2,
        };
        let mut got = Vec::new();
        each_effect(&theta, &[0.0, 1.0], stats, &mut |k, v, _| got.push((k, v)));
        let of = |key: EffectKey| {
            got.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .unwrap()
        };
        let slope = of(EffectKey::ConditionalIndirect(1)) - of(EffectKey::ConditionalIndirect(0));
        assert!((slope - of(EffectKey::IndexModeratedMediation)).abs() < 1e-15);
    }
}
