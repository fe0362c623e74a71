//! The names of the effects a mediation analysis reports: the keys of
//! summary.json's `effects` and of every interval's `effect`. One enum
//! writes them ([`EffectKey`]'s `Display`) and reads them back
//! ([`EffectKey::parse`]); nothing else splits a key on `:`.

use std::fmt;

/// One reported effect. With a single mediator the paths are `a` and `b`;
/// with several they carry the mediator's name (`a:NAME`), and `indirect`
/// is the total indirect effect next to each `indirect:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectKey {
    /// Treatment -> mediator (`a`, `a:NAME`).
    A(Option<String>),
    /// Mediator -> outcome given the treatment (`b`, `b:NAME`).
    B(Option<String>),
    /// Total effect `c`.
    C,
    /// Direct effect `c_prime`.
    CPrime,
    /// Total indirect effect (`indirect`) or one path's: a mediator's
    /// (`indirect:NAME`), or in a serial model a chain's
    /// (`indirect:M1>M2`, X -> M1 -> M2 -> Y).
    Indirect(Option<String>),
    /// `indirect / c`.
    ProportionMediated,
    /// `|indirect / c'|`.
    SuppressionShare,
    /// The difference of two specific indirect effects
    /// (`contrast:FIRST:SECOND`), each named by its path: a mediator's name,
    /// or in a serial model a chain `M1>M2` (`crate::model::serial`).
    Contrast(String, String),
    /// A serial model's link: the coefficient of mediator FROM in the
    /// equation of the later mediator TO (`d:FROM:TO`).
    D(String, String),
    /// ACME at the K-th value of rho of a sensitivity analysis
    /// (`sensitivity:K`).
    Sensitivity(usize),
    /// The robustness value RV (q = 1) of the K-th path of the
    /// omitted-variable bounds (`rv:K`, `ConfoundingSummary::paths`).
    RobustnessValue(usize),
    /// A moderated model's interaction coefficients (Hayes' notation): X*W
    /// in the mediator equation (`a3`, with several mediators `a3:NAME`),
    /// M*W (`b3`, `b3:NAME`) and X*W (`c3_prime`) in the outcome equation.
    /// The first field is the moderator term (`ModeratorTerm`): 0 for a
    /// continuous W, and for a categorical one the indicator of its level
    /// T + 1 (the lowest level is 0), written with a suffix from the
    /// second on (`a3_2`, `b3_2:NAME`, `c3_prime_2`).
    A3(usize, Option<String>),
    B3(usize, Option<String>),
    C3Prime(usize),
    /// The conditional indirect effect at the K-th moderator value
    /// (`conditional_indirect:K`: with several mediators the total, and
    /// `conditional_indirect:K:NAME` each mediator's), and the conditional
    /// direct effect (`conditional_direct:K`).
    ConditionalIndirect(usize, Option<String>),
    ConditionalDirect(usize),
    /// The index of moderated mediation: a3 b (only a moderated) or a b3
    /// (only b); the total, or a mediator's (`..:NAME`); per moderator term
    /// as [`EffectKey::A3`].
    IndexModeratedMediation(usize, Option<String>),
    /// The conditional indirect effect at the last moderator value less that
    /// at the first (a and b both moderated); the total, or a mediator's.
    /// With a categorical W, one per level above the lowest, that level's
    /// less the lowest's (the term as [`EffectKey::A3`]).
    IndirectDifference(usize, Option<String>),
    /// The interaction model's X*M coefficient (`interaction`, with several
    /// mediators `interaction:NAME`), natural direct and natural indirect
    /// effects (`natural_direct`, `natural_indirect`, and each mediator's
    /// `natural_indirect:NAME`).
    Interaction(Option<String>),
    NaturalDirect,
    NaturalIndirect(Option<String>),
}

impl EffectKey {
    /// The key of `text`, with `mediators` the model's mediator names (a
    /// contrast's two names are found among them, so a name may itself
    /// contain `:`). None for a key medsim does not write.
    pub fn parse(text: &str, mediators: &[String]) -> Option<EffectKey> {
        let named = |name: &str| {
            mediators
                .iter()
                .any(|m| m == name)
                .then(|| name.to_string())
        };
        let simple = match text {
            "a" => Some(EffectKey::A(None)),
            "b" => Some(EffectKey::B(None)),
            "c" => Some(EffectKey::C),
            "c_prime" => Some(EffectKey::CPrime),
            "indirect" => Some(EffectKey::Indirect(None)),
            "proportion_mediated" => Some(EffectKey::ProportionMediated),
            "suppression_share" => Some(EffectKey::SuppressionShare),
            "interaction" => Some(EffectKey::Interaction(None)),
            "natural_direct" => Some(EffectKey::NaturalDirect),
            "natural_indirect" => Some(EffectKey::NaturalIndirect(None)),
            _ => None,
        };
        if simple.is_some() {
            return simple;
        }
        // A moderator term's key: `KIND[_N][:NAME]`.
        let (head, name) = match text.split_once(':') {
            Some((head, rest)) => (head, named(rest).map(Some)),
            None => (text, Some(None)),
        };
        if let Some((base, term)) = split_term(head) {
            let termed = |key: &dyn Fn(Option<String>) -> EffectKey| name.clone().map(key);
            match base {
                "a3" => return termed(&|n| EffectKey::A3(term, n)),
                "b3" => return termed(&|n| EffectKey::B3(term, n)),
                "c3_prime" => return (name == Some(None)).then_some(EffectKey::C3Prime(term)),
                "index_moderated_mediation" => {
                    return termed(&|n| EffectKey::IndexModeratedMediation(term, n));
                }
                "indirect_difference" => {
                    return termed(&|n| EffectKey::IndirectDifference(term, n));
                }
                _ => {}
            }
        }
        let (kind, rest) = text.split_once(':')?;
        // Two names or paths separated by ':' (a name may contain ':').
        let two = |of: &dyn Fn(&str) -> bool| {
            rest.match_indices(':').find_map(|(i, _)| {
                let (first, second) = (&rest[..i], &rest[i + 1..]);
                (of(first) && of(second)).then(|| (first.to_string(), second.to_string()))
            })
        };
        let is_path = |t: &str| parse_path(t, mediators).is_some();
        match kind {
            "a" => named(rest).map(|m| EffectKey::A(Some(m))),
            "b" => named(rest).map(|m| EffectKey::B(Some(m))),
            "indirect" => is_path(rest).then(|| EffectKey::Indirect(Some(rest.to_string()))),
            "d" => two(&|t| named(t).is_some()).map(|(from, to)| EffectKey::D(from, to)),
            "sensitivity" => rest.parse().ok().map(EffectKey::Sensitivity),
            "rv" => rest.parse().ok().map(EffectKey::RobustnessValue),
            "interaction" => named(rest).map(|m| EffectKey::Interaction(Some(m))),
            "natural_indirect" => named(rest).map(|m| EffectKey::NaturalIndirect(Some(m))),
            "conditional_indirect" => match rest.split_once(':') {
                Some((k, name)) => {
                    let k = k.parse().ok()?;
                    named(name).map(|m| EffectKey::ConditionalIndirect(k, Some(m)))
                }
                None => rest
                    .parse()
                    .ok()
                    .map(|k| EffectKey::ConditionalIndirect(k, None)),
            },
            "conditional_direct" => rest.parse().ok().map(EffectKey::ConditionalDirect),
            "contrast" => two(&is_path).map(|(first, second)| EffectKey::Contrast(first, second)),
            _ => None,
        }
    }

    /// The mediator a path or a specific indirect effect belongs to: the
    /// named one, or the only one for `a`, `b` (None otherwise).
    pub fn mediator(&self, mediators: &[String]) -> Option<usize> {
        let of = |name: &Option<String>| match name {
            None if mediators.len() == 1 => Some(0),
            Some(n) => mediators.iter().position(|m| m == n),
            None => None,
        };
        match self {
            EffectKey::A(n) | EffectKey::B(n) => of(n),
            EffectKey::Indirect(Some(n)) => mediators.iter().position(|m| m == n),
            _ => None,
        }
    }
}

/// A moderator term's key head `KIND` or `KIND_N` (N >= 2) as (KIND,
/// term N - 1); None for `KIND_0` or `KIND_1`, which medsim does not write.
fn split_term(head: &str) -> Option<(&str, usize)> {
    match head.rsplit_once('_') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            let n: usize = n.parse().ok()?;
            (n >= 2).then_some((base, n - 1))
        }
        _ => Some((head, 0)),
    }
}

/// The separator of a chain's mediators in a path's name (`M1>M2`).
pub const PATH_SEPARATOR: char = '>';

/// The name of the path through `path`'s mediators: the mediator's name,
/// or the chain's joined by `>`.
pub fn path_name(path: &[usize], mediators: &[String]) -> String {
    let names: Vec<&str> = path.iter().map(|&j| mediators[j].as_str()).collect();
    names.join(&PATH_SEPARATOR.to_string())
}

/// The mediators (increasing) of the path named `text`: a mediator's name
/// (first, so a name containing `>` stays one mediator) or a chain of
/// names joined by `>`. None for anything else.
pub fn parse_path(text: &str, mediators: &[String]) -> Option<Vec<usize>> {
    if let Some(j) = mediators.iter().position(|m| m == text) {
        return Some(vec![j]);
    }
    mediators.iter().enumerate().find_map(|(j, name)| {
        let rest = text
            .strip_prefix(name.as_str())?
            .strip_prefix(PATH_SEPARATOR)?;
        let mut path = vec![j];
        path.extend(parse_path(rest, mediators)?);
        path.windows(2).all(|w| w[0] < w[1]).then_some(path)
    })
}

/// A path's name for people: its mediators joined by ` -> `.
pub fn path_label(text: &str, mediators: &[String]) -> String {
    match parse_path(text, mediators) {
        Some(path) => {
            let names: Vec<&str> = path.iter().map(|&j| mediators[j].as_str()).collect();
            names.join(" -> ")
        }
        None => text.to_string(),
    }
}

impl fmt::Display for EffectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |f: &mut fmt::Formatter<'_>, kind: &str, name: &Option<String>| match name {
            None => f.write_str(kind),
            Some(n) => write!(f, "{kind}:{n}"),
        };
        // A moderator term's kind: suffixed from the second term on.
        let term = |kind: &str, t: usize| match t {
            0 => kind.to_string(),
            t => format!("{kind}_{}", t + 1),
        };
        match self {
            EffectKey::A(n) => with(f, "a", n),
            EffectKey::B(n) => with(f, "b", n),
            EffectKey::C => f.write_str("c"),
            EffectKey::CPrime => f.write_str("c_prime"),
            EffectKey::Indirect(n) => with(f, "indirect", n),
            EffectKey::ProportionMediated => f.write_str("proportion_mediated"),
            EffectKey::SuppressionShare => f.write_str("suppression_share"),
            EffectKey::Contrast(a, b) => write!(f, "contrast:{a}:{b}"),
            EffectKey::D(from, to) => write!(f, "d:{from}:{to}"),
            EffectKey::Sensitivity(k) => write!(f, "sensitivity:{k}"),
            EffectKey::RobustnessValue(k) => write!(f, "rv:{k}"),
            EffectKey::A3(t, n) => with(f, &term("a3", *t), n),
            EffectKey::B3(t, n) => with(f, &term("b3", *t), n),
            EffectKey::C3Prime(t) => f.write_str(&term("c3_prime", *t)),
            EffectKey::ConditionalIndirect(k, n) => {
                with(f, &format!("conditional_indirect:{k}"), n)
            }
            EffectKey::ConditionalDirect(k) => write!(f, "conditional_direct:{k}"),
            EffectKey::IndexModeratedMediation(t, n) => {
                with(f, &term("index_moderated_mediation", *t), n)
            }
            EffectKey::IndirectDifference(t, n) => with(f, &term("indirect_difference", *t), n),
            EffectKey::Interaction(n) => with(f, "interaction", n),
            EffectKey::NaturalDirect => f.write_str("natural_direct"),
            EffectKey::NaturalIndirect(n) => with(f, "natural_indirect", n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_reads_back_as_written() {
        let meds = vec!["agglom".to_string(), "x:y".to_string(), "x".to_string()];
        let keys = [
            EffectKey::A(None),
            EffectKey::B(Some("x:y".into())),
            EffectKey::C,
            EffectKey::CPrime,
            EffectKey::Indirect(None),
            EffectKey::Indirect(Some("agglom".into())),
            EffectKey::ProportionMediated,
            EffectKey::SuppressionShare,
            EffectKey::Contrast("x:y".into(), "x".into()),
            EffectKey::Contrast("x".into(), "x:y".into()),
            EffectKey::Contrast("agglom>x:y".into(), "x".into()),
            EffectKey::Contrast("agglom".into(), "agglom>x:y>x".into()),
            EffectKey::Indirect(Some("agglom>x".into())),
            EffectKey::D("agglom".into(), "x:y".into()),
            EffectKey::Sensitivity(12),
            EffectKey::RobustnessValue(2),
            EffectKey::A3(0, None),
            EffectKey::A3(0, Some("x:y".into())),
            EffectKey::A3(2, Some("x:y".into())),
            EffectKey::B3(0, None),
            EffectKey::B3(0, Some("agglom".into())),
            EffectKey::B3(1, None),
            EffectKey::C3Prime(0),
            EffectKey::C3Prime(3),
            EffectKey::ConditionalIndirect(2, None),
            EffectKey::ConditionalIndirect(2, Some("x:y".into())),
            EffectKey::ConditionalDirect(0),
            EffectKey::IndexModeratedMediation(0, None),
            EffectKey::IndexModeratedMediation(0, Some("x".into())),
            EffectKey::IndexModeratedMediation(1, Some("x".into())),
            EffectKey::IndirectDifference(0, None),
            EffectKey::IndirectDifference(0, Some("agglom".into())),
            EffectKey::IndirectDifference(4, None),
            EffectKey::Interaction(None),
            EffectKey::Interaction(Some("x".into())),
            EffectKey::NaturalDirect,
            EffectKey::NaturalIndirect(None),
            EffectKey::NaturalIndirect(Some("x:y".into())),
        ];
        for k in keys {
            assert_eq!(EffectKey::parse(&k.to_string(), &meds), Some(k));
        }
        for bad in [
            "",
            "a:nobody",
            "contrast:agglom",
            "sensitivity:x",
            "conditional_indirect:",
            "conditional_indirect:1:nobody",
            "a3:nobody",
            "a3_1",
            "c3_prime_2:x",
            "b3_x",
            "z",
            "indirect:x>agglom",
            "indirect:agglom>",
            "d:agglom",
            "contrast:agglom>nobody:x",
        ] {
            assert_eq!(EffectKey::parse(bad, &meds), None, "{bad}");
        }
    }
}
