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
    /// Total indirect effect (`indirect`) or one mediator's (`indirect:NAME`).
    Indirect(Option<String>),
    /// `indirect / c`.
    ProportionMediated,
    /// `|indirect / c'|`.
    SuppressionShare,
    /// `a_j b_j - a_k b_k` between two mediators (`contrast:FIRST:SECOND`).
    Contrast(String, String),
    /// ACME at the K-th value of rho of a sensitivity analysis
    /// (`sensitivity:K`).
    Sensitivity(usize),
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
            _ => None,
        };
        if simple.is_some() {
            return simple;
        }
        let (kind, rest) = text.split_once(':')?;
        match kind {
            "a" => named(rest).map(|m| EffectKey::A(Some(m))),
            "b" => named(rest).map(|m| EffectKey::B(Some(m))),
            "indirect" => named(rest).map(|m| EffectKey::Indirect(Some(m))),
            "sensitivity" => rest.parse().ok().map(EffectKey::Sensitivity),
            "contrast" => mediators.iter().find_map(|first| {
                let second = rest.strip_prefix(first.as_str())?.strip_prefix(':')?;
                named(second).map(|second| EffectKey::Contrast(first.clone(), second))
            }),
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

impl fmt::Display for EffectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |f: &mut fmt::Formatter<'_>, kind: &str, name: &Option<String>| match name {
            None => f.write_str(kind),
            Some(n) => write!(f, "{kind}:{n}"),
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
            EffectKey::Sensitivity(k) => write!(f, "sensitivity:{k}"),
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
            EffectKey::Sensitivity(12),
        ];
        for k in keys {
            assert_eq!(EffectKey::parse(&k.to_string(), &meds), Some(k));
        }
        for bad in ["", "a:nobody", "contrast:agglom", "sensitivity:x", "z"] {
            assert_eq!(EffectKey::parse(bad, &meds), None, "{bad}");
        }
    }
}
