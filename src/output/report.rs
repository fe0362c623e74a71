//! The printed summary: an aligned table of effects with standard errors and
//! p-values, the intervals of the indirect effect, and the suppression verdict
//! in words. Rendered from the summary alone, so it always agrees with
//! summary.json.

use std::fmt::Write;

use crate::model::effect::{EffectKey, parse_path, path_label};
use crate::study::summary::Summary;
use crate::study::threshold::ThresholdSummary;

fn p_text(p: Option<f64>) -> String {
    match p {
        None => "-".into(),
        Some(p) if p < 1e-4 => "<0.0001".into(),
        Some(p) => format!("{p:.4}"),
    }
}

/// A bootstrap p-value; 0 only says p < 2/B.
pub(crate) fn boot_p_text(p: Option<f64>, replicates: u64) -> String {
    match p {
        Some(0.0) if replicates > 0 => format!("<{:.1e}", 2.0 / replicates as f64),
        p => p_text(p),
    }
}

/// A one-sided bootstrap p-value, a share of `replicates` (the threshold
/// model's F tests): none of them at least the statistic is p < 1 /
/// replicates, not 0.
pub(crate) fn share_p_text(p: f64, replicates: usize) -> String {
    if p == 0.0 && replicates > 0 {
        format!("<{}", 1.0 / replicates as f64)
    } else {
        format!("{p:.4}")
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.6}"))
}

/// Label of an effect key for the table.
fn label(s: &Summary, key: &str) -> String {
    let x = &s.model.treatment;
    let y = &s.model.outcome;
    let m = s.model.mediators.first().map_or("", String::as_str);
    let mediators = &s.model.mediators;
    let Some(parsed) = EffectKey::parse(key, mediators) else {
        return key.to_string();
    };
    let path = |text: &str| path_label(text, mediators);
    let w = s
        .moderation
        .as_ref()
        .map_or("W", |md| md.moderator.as_str());
    // A moderator term: W, or a categorical W's level.
    let term = |t: usize| {
        s.moderation
            .as_ref()
            .map_or_else(|| "W".to_string(), |md| md.term_name(t))
    };
    let categorical = s.moderation.as_ref().is_some_and(|md| md.categorical);
    // A moderator value as `w=1.23`.
    let at = |k: usize| {
        s.moderation
            .as_ref()
            .and_then(|md| md.values.get(k))
            .map_or_else(|| format!("value {k}"), |v| format!("{w}={:.4}", v.value))
    };
    // One mediator's own moderated or natural effect, with several.
    let via = |n: Option<String>| n.map_or(String::new(), |n| format!(" via {n}"));
    match parsed {
        EffectKey::Contrast(first, second) => {
            format!("diff {} - {}", path(&first), path(&second))
        }
        EffectKey::D(from, to) => format!("d    {from} -> {to}"),
        EffectKey::A(Some(med)) => format!("a    {x} -> {med}"),
        EffectKey::B(Some(med)) => format!("b    {med} -> {y}"),
        EffectKey::Indirect(Some(med)) => {
            // A chain's path multiplies a link d per step.
            let steps = parse_path(&med, mediators).map_or(1, |p| p.len());
            format!("a*{}b via {}", "d*".repeat(steps - 1), path(&med))
                .replacen("a*b via", "a*b  via", 1)
        }
        EffectKey::A(None) => format!("a    {x} -> {m}"),
        EffectKey::B(None) => format!("b    {m} -> {y}"),
        EffectKey::C => "c    total effect".into(),
        EffectKey::CPrime => "c'   direct effect".into(),
        EffectKey::Indirect(None) if mediators.len() > 1 => "a*b  total indirect effect".into(),
        EffectKey::Indirect(None) => "a*b  indirect effect".into(),
        EffectKey::ProportionMediated => "     proportion mediated".into(),
        EffectKey::SuppressionShare => "     suppression share".into(),
        EffectKey::Sensitivity(_) | EffectKey::RobustnessValue(_) => key.to_string(),
        EffectKey::A3(t, n) => format!("a3   {x}*{} -> {}", term(t), n.as_deref().unwrap_or(m)),
        EffectKey::B3(t, n) => format!("b3   {}*{} -> {y}", n.as_deref().unwrap_or(m), term(t)),
        EffectKey::C3Prime(t) => format!("c3'  {x}*{} -> {y}", term(t)),
        EffectKey::ConditionalIndirect(k, n) => format!("a*b  at {}{}", at(k), via(n)),
        EffectKey::ConditionalDirect(k) => format!("c'   at {}", at(k)),
        EffectKey::IndexModeratedMediation(0, None) if !categorical => {
            "     index of moderated mediation".into()
        }
        EffectKey::IndexModeratedMediation(t, n) if categorical => {
            format!("     index {}{}", term(t), via(n))
        }
        EffectKey::IndexModeratedMediation(_, n) => format!("     index{}", via(n)),
        EffectKey::Interaction(n) => format!("d    {x}*{} -> {y}", n.as_deref().unwrap_or(m)),
        EffectKey::NaturalDirect => "NDE  natural direct effect".into(),
        EffectKey::NaturalIndirect(None) => "NIE  natural indirect effect".into(),
        EffectKey::NaturalIndirect(n) => format!("NIE{}", via(n)),
        EffectKey::IndirectDifference(t, n) => {
            let (later, earlier) = s.moderation.as_ref().map_or((0, 0), |md| md.difference(t));
            format!("     a*b at {} - at {}{}", at(later), at(earlier), via(n))
        }
    }
}

/// `effect`'s headline interval as `method [lower, upper]`.
fn headline_interval(intervals: &[crate::model::mediation::Interval], effect: &str) -> String {
    crate::model::mediation::headline(intervals, effect).map_or(String::new(), |i| {
        format!("{} [{:.6}, {:.6}]", i.method, i.lower, i.upper)
    })
}

/// The model with another set of mediators: per mediator a, b, a*b with
/// its SE and headline interval, the total, the pairwise differences and
/// the suppression share.
fn render_mediator_model(o: &mut String, key: &str, mm: &crate::study::summary::SubmodelSummary) {
    let names: Vec<&str> = key.split('+').collect();
    let one = names.len() == 1;
    let get = |k: String| mm.effects.get(&k);
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "mediators {} in parallel (same sample, same replicates)",
        names.join(" + ")
    );
    let _ = writeln!(
        o,
        "{:<28}  {:>10}  {:>10}  {:>10}  {:>10}  {:>34}",
        "mediator", "a", "b", "a*b", "SE", "interval"
    );
    let est = |e: Option<&crate::model::mediation::Effect>| {
        e.map_or("-".to_string(), |e| format!("{:.6}", e.estimate))
    };
    let mut rows: Vec<(String, String, String, String)> = names
        .iter()
        .map(|n| {
            let name = (!one).then(|| n.to_string());
            (
                n.to_string(),
                EffectKey::A(name.clone()).to_string(),
                EffectKey::B(name.clone()).to_string(),
                EffectKey::Indirect(name).to_string(),
            )
        })
        .collect();
    if !one {
        rows.push((
            "total".into(),
            String::new(),
            String::new(),
            "indirect".into(),
        ));
        for (j, first) in names.iter().enumerate() {
            for second in &names[j + 1..] {
                rows.push((
                    format!("{first} - {second}"),
                    String::new(),
                    String::new(),
                    EffectKey::Contrast(first.to_string(), second.to_string()).to_string(),
                ));
            }
        }
    }
    for (label, a, b, ab) in rows {
        let e = get(ab.clone());
        let _ = writeln!(
            o,
            "{:<28}  {:>10}  {:>10}  {:>10}  {:>10}  {:>34}",
            label,
            est(get(a)),
            est(get(b)),
            est(e),
            num(e.and_then(|e| e.se)),
            headline_interval(&mm.intervals, &ab)
        );
    }
    let _ = writeln!(
        o,
        "{:<28}  {}",
        "suppression share",
        if mm.suppression.suppressing {
            format!(
                "{:.1} % of the direct effect ({})",
                100.0 * mm.suppression.share,
                headline_interval(&mm.intervals, "suppression_share")
            )
        } else {
            "none (indirect and direct effects share a sign)".into()
        }
    );
}

/// The suppression verdict in words, with the share's headline interval
/// (its first bootstrap method, else none), e.g. "agglom suppresses 5.5 %
/// of the direct effect; 95 % percentile [4.7 %, 6.3 %] (indirect +0.0052
/// against direct -0.0962): a masking mediator".
pub fn verdict(s: &Summary) -> String {
    let indirect = s.effect("indirect").map_or(f64::NAN, |e| e.estimate);
    let direct = s.effect("c_prime").map_or(f64::NAN, |e| e.estimate);
    let who = s.model.mediators.join(" and ");
    let verb = if s.model.mediators.len() > 1 {
        "suppress"
    } else {
        "suppresses"
    };
    let interval = s
        .intervals
        .iter()
        .find(|i| i.effect == "suppression_share")
        .map_or(String::new(), |i| {
            format!(
                "; {} % {} [{:.1} %, {:.1} %]",
                100.0 * i.level,
                i.method,
                100.0 * i.lower,
                100.0 * i.upper
            )
        });
    if s.suppression.suppressing {
        format!(
            "{who} {verb} {:.1} % of the direct effect{interval} (indirect {indirect:+.4} against \
             direct {direct:+.4}): a masking mediator",
            100.0 * s.suppression.share
        )
    } else {
        format!(
            "{who} mediates in the direction of the direct effect (indirect {indirect:+.4}, direct {direct:+.4}, \
             ratio {:.1} %): no suppression",
            100.0 * s.suppression.share
        )
    }
}

/// The Johnson-Neyman region in words, e.g. "J-N  the 95 % percentile
/// interval of a*b excludes 0 for ln_pop_density in [4.10, 6.73]
/// (boundary 6.7312; observed 4.10 to 8.02)".
pub fn johnson_neyman_line(s: &Summary) -> Option<String> {
    region_line(s.moderation.as_ref()?)
}

/// A moderated model's Johnson-Neyman region in words (the run's or a
/// group's).
fn region_line(md: &crate::study::summary::ModerationSummary) -> Option<String> {
    let jn = md.johnson_neyman.as_ref()?;
    let w = &md.moderator;
    let [lo, hi] = jn.range;
    let head = format!(
        "J-N    the {} % {} interval of a*b",
        100.0 * jn.level,
        jn.method
    );
    let observed = format!("observed {lo:.4} to {hi:.4}");
    Some(match (&jn.significant[..], &jn.boundaries[..]) {
        ([], _) => format!("{head} includes 0 for every {w} ({observed})"),
        (_, []) => format!("{head} excludes 0 for every {w} ({observed})"),
        (regions, boundaries) => {
            let regions: Vec<String> = regions
                .iter()
                .map(|[a, b]| format!("[{a:.4}, {b:.4}]"))
                .collect();
            let boundaries: Vec<String> = boundaries.iter().map(|b| format!("{b:.4}")).collect();
            format!(
                "{head} excludes 0 for {w} in {} (boundar{} {}; {observed})",
                regions.join(" and "),
                if boundaries.len() == 1 { "y" } else { "ies" },
                boundaries.join(", ")
            )
        }
    })
}

/// Whether printed text may be coloured: standard output is a terminal
/// and NO_COLOR (no-color.org) is unset or empty.
pub fn colour_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` (from [`render`]) with ANSI styles: the title and the tables'
/// header rows bold, the verdict's label green and bold. The words are
/// unchanged.
pub fn colourize(text: &str) -> String {
    const BOLD: &str = "\x1b[1m";
    const GREEN: &str = "\x1b[1;32m";
    const RESET: &str = "\x1b[0m";
    let headers = [
        "effect ",
        "interval ",
        "group ",
        "mediator ",
        "indirect effect, difference",
        "suppression share, difference",
        "medsim ",
    ];
    let mut o = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("verdict") {
            o.push_str(&format!("{GREEN}verdict{RESET}{rest}\n"));
        } else if headers.iter().any(|h| line.starts_with(h)) {
            o.push_str(&format!("{BOLD}{line}{RESET}\n"));
        } else {
            o.push_str(line);
            o.push('\n');
        }
    }
    o
}

/// Render the summary as the table `medsim run` prints.
pub fn render(s: &Summary) -> String {
    let mut o = String::new();
    render_run(&mut o, s);
    render_effects(&mut o, s);
    if let Some(line) = johnson_neyman_line(s) {
        let _ = writeln!(o);
        let _ = writeln!(o, "{line}");
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "verdict  {}", verdict(s));
    for (key, mm) in &s.mediator_models {
        render_mediator_model(&mut o, key, mm);
    }
    render_groups(&mut o, s);
    render_identification(&mut o, s);
    if let Some(sens) = &s.sensitivity {
        render_sensitivity(&mut o, "pooled", sens);
        for (label, g) in &s.groups {
            if let Some(gs) = &g.sensitivity {
                render_sensitivity(&mut o, label, gs);
            }
        }
    }
    o
}

/// The run: data, model, inference and resampling, one line each.
fn render_run(o: &mut String, s: &Summary) {
    let d = &s.data;
    let _ = writeln!(o, "medsim {} - {}", s.version, s.name);
    let _ = writeln!(
        o,
        "data   {}: {} units x {} periods, {} observations ({}; dropped {} incomplete, {} singleton rows)",
        d.source,
        d.units,
        d.periods,
        d.observations,
        if d.balanced { "balanced" } else { "unbalanced" },
        d.dropped_missing,
        d.dropped_singletons
    );
    let _ = writeln!(
        o,
        "model  {} ~ {} + {} | {} controls | fixed effects: {}",
        s.model.outcome,
        s.model.treatment,
        s.model.mediators.join(" + "),
        s.model.controls.len(),
        s.model.fixed_effects
    );
    for (endogenous, mediator, iv) in s.first_stages() {
        let _ = writeln!(
            o,
            "IV     {endogenous} instrumented by {} (2SLS in {}); first-stage F = {:.1} (CR1 Wald, p = {})",
            iv.instruments.join(", "),
            instrumented_in(mediator),
            iv.first_stage_f,
            p_text(Some(iv.first_stage_p_value))
        );
    }
    if let Some(md) = &s.moderation {
        let at: Vec<String> = md
            .values
            .iter()
            .map(|v| format!("{} {:.4}", v.label, v.value))
            .collect();
        let _ = writeln!(
            o,
            "moder  PROCESS model {}: {} moderated by {}{}{}; conditional effects at {}",
            md.process_model,
            md.paths.join(", "),
            md.moderator,
            match (md.center, md.categorical, md.values.first()) {
                (true, _, _) => format!(
                    " (X and W centred: a, b, c' at {}={:.4})",
                    md.moderator, md.shift
                ),
                (false, true, Some(lowest)) => format!(
                    " (categorical, one indicator per level: a, b, c' at the reference \
                     {}={})",
                    md.moderator, lowest.value
                ),
                _ => format!(" (a, b, c' at {}=0)", md.moderator),
            },
            if md.moderator_absorbed {
                "; its main effect is absorbed by the unit fixed effects"
            } else {
                ""
            },
            at.join(", ")
        );
    }
    if let Some(i) = &s.interaction {
        let x = &s.model.treatment;
        let mediators = &s.model.mediators;
        let products: Vec<String> = mediators.iter().map(|m| format!("{x}*{m}")).collect();
        let which = match mediators.len() {
            1 => "the mediator",
            _ => "each mediator",
        };
        let _ = writeln!(
            o,
            "inter  {y} ~ {x} + {m} + {p}: natural effects of {x} from {:.4} to {:.4}, {which} \
             at its mean given {x} and the controls at theirs",
            i.x0,
            i.x1,
            y = s.model.outcome,
            m = mediators.join(" + "),
            p = products.join(" + "),
        );
    }
    let _ = writeln!(
        o,
        "SEs    {} clustered by {} ({} clusters), t tests on {} df; a*b: Sobel SE, normal p-value",
        s.inference.vcov, s.model.cluster, d.clusters, s.inference.df
    );
    if let Some(r) = &s.resampling {
        let _ = writeln!(
            o,
            "boot   {}{}, B = {} ({} degenerate), seed {}, {} backend, {:.2} s ({:.0} replicates/s)",
            match r.scheme.as_str() {
                "permutation" => "permutation of the treatment across units".to_string(),
                "wild" => format!(
                    "wild cluster bootstrap ({} weights)",
                    r.weights.as_deref().unwrap_or("?")
                ),
                other => format!("{other} resampling of clusters"),
            },
            r.strata
                .as_deref()
                .map(|st| format!(" within {st}"))
                .unwrap_or_default(),
            r.replicates,
            r.failed_replicates,
            r.seed,
            r.engine.backend,
            r.seconds,
            r.replicates_per_second
        );
    }
}

/// Every effect with its SE, p-value and intervals, and notes of
/// non-finite replicates.
fn render_effects(o: &mut String, s: &Summary) {
    for (key, e) in &s.effects {
        if let Some(b) = e.bootstrap.filter(|b| b.non_finite > 0) {
            let _ = writeln!(
                o,
                "note   {} replicate(s) gave a non-finite {} (left out of its quantiles and moments)",
                b.non_finite,
                label(s, key).trim()
            );
        }
    }
    let _ = writeln!(o);
    let labels: Vec<String> = s.effects.keys().map(|k| label(s, k)).collect();
    let w = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(10)
        .max(6);
    let boot = s.resampling.is_some();
    let _ = write!(
        o,
        "{:<w$}  {:>12}  {:>10}  {:>8}",
        "effect", "estimate", "SE", "p-value"
    );
    if boot {
        let _ = write!(o, "  {:>10}  {:>8}", "boot SE", "boot p");
    }
    let _ = writeln!(o);
    for (lab, e) in labels.iter().zip(s.effects.values()) {
        let _ = write!(
            o,
            "{:<w$}  {:>12.6}  {:>10}  {:>8}",
            lab,
            e.estimate,
            num(e.se),
            p_text(e.p_value)
        );
        if let (Some(b), Some(r)) = (&e.bootstrap, &s.resampling) {
            let _ = write!(
                o,
                "  {:>10.6}  {:>8}",
                b.sd,
                boot_p_text(b.p_value, r.replicates)
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<w$}  {:<12} {:>6}  {:>12}  {:>12}",
        "interval", "method", "level", "lower", "upper"
    );
    for (key, lab) in s.effects.keys().zip(&labels) {
        for i in s.intervals.iter().filter(|i| &i.effect == key) {
            let _ = writeln!(
                o,
                "{:<w$}  {:<12} {:>5.1}%  {:>12.6}  {:>12.6}",
                lab,
                i.method,
                100.0 * i.level,
                i.lower,
                i.upper
            );
        }
    }
    let _ = writeln!(o);
    for j in &s.joint_significance {
        // A chain's path has a link d per step.
        let steps = parse_path(&j.mediator, &s.model.mediators).map_or(1, |p| p.len());
        let _ = writeln!(
            o,
            "joint significance via {}: p = max(p_a, {}p_b) = {}",
            path_label(&j.mediator, &s.model.mediators),
            "p_d, ".repeat(steps - 1),
            p_text(Some(j.p_value))
        );
    }
}

/// Each group's model and the contrasts between groups.
fn render_groups(o: &mut String, s: &Summary) {
    if !s.groups.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{:<24}  {:>8}  {:>10}  {:>10}  {:>10}  {:>34}  {:>11}",
            "group", "clusters", "c'", "indirect", "SE", "interval", "suppression"
        );
        for (label, g) in &s.groups {
            let est = |k: &str| g.effects.get(k).map_or(f64::NAN, |e| e.estimate);
            let se = g.effects.get("indirect").and_then(|e| e.se);
            let interval = headline_interval(&g.intervals, "indirect");
            let _ = writeln!(
                o,
                "{:<24}  {:>8}  {:>10.6}  {:>10.6}  {:>10}  {:>34}  {:>11}",
                label,
                g.clusters,
                est("c_prime"),
                est("indirect"),
                num(se),
                interval,
                if g.suppression.suppressing {
                    format!("{:.1}%", 100.0 * g.suppression.share)
                } else {
                    "none".into()
                }
            );
        }
        // A moderated model's region, group by group.
        for (label, g) in &s.groups {
            if let Some(line) = g.moderation.as_ref().and_then(region_line) {
                let _ = writeln!(o, "{label:<24}  {}", line.trim_start_matches("J-N    "));
            }
        }
        for (effect, title) in [
            ("indirect", "indirect effect, difference"),
            ("suppression_share", "suppression share, difference"),
        ] {
            let rows: Vec<_> = s.contrasts.iter().filter(|c| c.effect == effect).collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "{:<40}  {:>10}  {:>10}  {:>8}  {:>8}  {:>34}",
                title, "estimate", "SE", "boot p", "perm p", "interval"
            );
            for c in rows {
                let interval = c.intervals.first().map_or(String::new(), |i| {
                    format!("{} [{:.6}, {:.6}]", i.method, i.lower, i.upper)
                });
                let _ = writeln!(
                    o,
                    "{:<40}  {:>10.6}  {:>10}  {:>8}  {:>8}  {:>34}",
                    format!("{} - {}", c.between[0], c.between[1]),
                    c.estimate,
                    num(c.se),
                    boot_p_text(
                        c.bootstrap.and_then(|b| b.p_value),
                        s.resampling.as_ref().map_or(0, |r| r.replicates)
                    ),
                    p_text(c.permutation_p_value),
                    interval
                );
            }
        }
    }
}

/// Where a first stage's endogenous column is instrumented: every
/// equation (the treatment) or the outcome equation (the mediators).
fn instrumented_in(mediator: bool) -> &'static str {
    match mediator {
        true => "the outcome equation",
        false => "every equation",
    }
}

/// How the paths are identified, when the run says: which are
/// instrumented and how strongly, and each least-squares path's
/// omitted-variable bounds.
fn render_identification(o: &mut String, s: &Summary) {
    if s.confounding.is_none() && s.iv.is_none() && s.mediator_iv.is_empty() {
        return;
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "identification");
    for (endogenous, mediator, iv) in s.first_stages() {
        let _ = writeln!(
            o,
            "  instrumented   {endogenous} by {} in {}{}: first-stage F = {:.1}{}",
            iv.instruments.join(", "),
            instrumented_in(mediator),
            if mediator { " (b, c')" } else { "" },
            iv.first_stage_f,
            if iv.first_stage_f < 10.0 {
                " (weak: below 10)"
            } else {
                ""
            }
        );
    }
    if s.iv.is_none() && s.mediator_iv.is_empty() {
        let _ = writeln!(o, "  instrumented   none: every path by least squares");
    }
    if let Some(bounds) = &s.confounding {
        render_confounding(o, bounds);
    }
}

/// The omitted-variable bounds of each path: partial R-squared and
/// robustness values, then the estimates adjusted for confounders as
/// strong as the benchmarks.
fn render_confounding(o: &mut String, s: &crate::model::confounding::ConfoundingSummary) {
    let _ = writeln!(
        o,
        "  omitted-variable bounds (Cinelli-Hazlett 2020): RV, the share of the residual \
         variance of both the regressor and the dependent\n  that a confounder must explain to \
         remove the estimate; RV at a level, to take its CR1 interval to zero"
    );
    let levels: Vec<f64> = s.paths.first().map_or(Vec::new(), |p| {
        p.rv_interval.iter().map(|v| v.level).collect()
    });
    let mut head = format!(
        "  {:<14} {:>12} {:>11} {:>8}",
        "path", "estimate", "partial R2", "RV"
    );
    for level in &levels {
        head.push_str(&format!(" {:>8}", format!("RV {}%", level * 100.0)));
    }
    // The resampled RV's first interval (its method at the first level).
    let first = s.paths.iter().find_map(|p| p.rv_intervals.first());
    if let Some(i) = first {
        head.push_str(&format!(
            "  RV {} {}% (resampled)",
            i.method,
            i.level * 100.0
        ));
    }
    let _ = writeln!(o, "{head}");
    for p in &s.paths {
        let mut line = format!(
            "  {:<14} {:>12.6} {:>11.4} {:>8.4}",
            p.path, p.estimate, p.partial_r2, p.rv
        );
        for v in &p.rv_interval {
            line.push_str(&format!(" {:>8.4}", v.value));
        }
        let interval = first.and_then(|f| {
            p.rv_intervals
                .iter()
                .find(|i| i.method == f.method && i.level == f.level)
        });
        if let Some(i) = interval {
            line.push_str(&format!("  [{:.4}, {:.4}]", i.lower, i.upper));
        }
        let _ = writeln!(o, "{line}");
    }
    if s.paths.iter().all(|p| p.bounds.is_empty()) {
        return;
    }
    let _ = writeln!(
        o,
        "  a confounder kd times as strong as a benchmark control, with the regressor and the \
         dependent:"
    );
    let _ = writeln!(
        o,
        "  {:<14} {:<12} {:>4} {:>9} {:>9} {:>12}  interval",
        "path", "benchmark", "kd", "R2 D~Z", "R2 Y~Z", "adjusted"
    );
    for p in &s.paths {
        for b in &p.bounds {
            let (Some(r2d), Some(r2y), Some(est)) = (b.r2dz_x, b.r2yz_dx, b.adjusted_estimate)
            else {
                let _ = writeln!(
                    o,
                    "  {:<14} {:<12} {:>4} impossible: it would explain all of {}'s residual \
                     variance",
                    p.path, b.benchmark, b.kd, p.regressor
                );
                continue;
            };
            let interval = b.intervals.first().map_or(String::new(), |i| {
                format!("{}% [{:.6}, {:.6}]", i.level * 100.0, i.lower, i.upper)
            });
            let _ = writeln!(
                o,
                "  {:<14} {:<12} {:>4} {:>9.4} {:>9.4} {:>12.6}  {interval}",
                p.path, b.benchmark, b.kd, r2d, r2y, est
            );
        }
    }
}

/// The sensitivity analysis of one model: where ACME crosses zero, the
/// R-squared forms, and ACME with its headline interval at every 0.1 of rho.
fn render_sensitivity(
    o: &mut String,
    model: &str,
    s: &crate::model::sensitivity::SensitivitySummary,
) {
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "sensitivity ({model}, mediator {}; Imai-Keele-Yamamoto): ACME = 0 at rho = {:.4} \
         (grid {:.2}); R2*_M R2*_Y = {:.4}, R2~_M R2~_Y = {:.3e}",
        s.mediator, s.rho_at_zero, s.rho_at_zero_grid, s.r2_star_at_zero, s.r2_tilde_at_zero
    );
    let _ = writeln!(o, "  {:>6}  {:>11}  {:>34}", "rho", "ACME", "interval");
    for p in &s.curve {
        let tenths = p.rho * 10.0;
        if (tenths - tenths.round()).abs() > 1e-9 {
            continue;
        }
        let interval = p.intervals.first().map_or(String::new(), |i| {
            format!("{} [{:.6}, {:.6}]", i.method, i.lower, i.upper)
        });
        let _ = writeln!(o, "  {:>6.2}  {:>11.6}  {:>34}", p.rho, p.acme, interval);
    }
}

/// A threshold analysis's text report (threshold.txt): the tests' table (F, p, critical values), each
/// model's thresholds with their confidence sets, the regime coefficients.
pub fn render_threshold(s: &ThresholdSummary) -> String {
    let m = &s.model;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Panel threshold model (Hansen 1999): {} on {} by regimes of {}",
        m.outcome,
        m.regressors.join(", "),
        m.threshold_variable
    );
    let _ = writeln!(
        out,
        "{} observations, {} units x {} periods{}; {} effects; controls: {}",
        s.data.observations,
        s.data.units,
        s.data.periods,
        if s.data.balanced { "" } else { " (unbalanced)" },
        m.fixed_effects,
        if m.controls.is_empty() {
            "none".into()
        } else {
            m.controls.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "{} candidate thresholds ({} trimmed at each end, at least {} observations per regime); \
         bootstrap: {}, {} replicates, seed {}\n",
        m.candidates, m.trim, m.min_regime, m.bootstrap, m.replicates, m.seed
    );
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>8} {:>9} {:>9} {:>9}",
        "test", "F", "p", "crit 90%", "crit 95%", "crit 99%"
    );
    let names = ["single", "double", "triple"];
    for st in &s.steps {
        let (p, c) = match (st.p_value, st.critical_values) {
            (Some(p), Some(c)) => (share_p_text(p, m.replicates), c.map(|v| format!("{v:.3}"))),
            _ => ("-".into(), ["-".into(), "-".into(), "-".into()]),
        };
        let _ = writeln!(
            out,
            "{:<10} {:>10.3} {:>8} {:>9} {:>9} {:>9}",
            names[st.k - 1],
            st.f_stat,
            p,
            c[0],
            c[1],
            c[2]
        );
    }
    for st in &s.steps {
        let _ = writeln!(
            out,
            "\nModel with {} threshold(s): {} ({} % LR confidence sets)",
            st.k,
            st.thresholds
                .iter()
                .map(|t| format!(
                    "{} [{}, {}]",
                    threshold_value(t.estimate),
                    threshold_value(t.lower),
                    threshold_value(t.upper)
                ))
                .collect::<Vec<_>>()
                .join(", "),
            100.0 * m.level
        );
        let _ = writeln!(
            out,
            "  regimes of {} observations; CR1 SEs clustered by {}",
            st.regime_sizes
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" / "),
            m.cluster
        );
        for c in &st.coefficients {
            let _ = writeln!(
                out,
                "  {:<40} {:>10.4} {:>10.4} {:>8.2} {:>8.3}",
                c.name, c.estimate, c.se, c.t, c.p_value
            );
        }
    }
    if let Some(md) = &s.mediation {
        let _ = writeln!(
            out,
            "\nRegime-dependent mediation: {} -> {} -> {}, regimes of the threshold(s) {} ({} \
             moderating a, b and c' in one pooled model; mediation/summary.json)",
            md.treatment,
            md.mediator,
            md.outcome,
            md.thresholds
                .iter()
                .map(|&t| threshold_value(t))
                .collect::<Vec<_>>()
                .join(", "),
            md.moderator
        );
        let level = if md.level.is_finite() {
            format!("{} % {}", 100.0 * md.level, md.interval_method)
        } else {
            "no".into()
        };
        let _ = writeln!(
            out,
            "  {:<26} {:>9} {:>9} {:>9} {:>9} {:>23} {:>9}",
            "regime",
            "a",
            "b",
            "c'",
            "a*b",
            format!("{level} interval"),
            "share"
        );
        let ci = |e: &crate::study::threshold::Estimate| match (e.lower, e.upper) {
            (Some(l), Some(u)) => format!("[{l:.4}, {u:.4}]"),
            _ => "-".into(),
        };
        for r in &md.regimes {
            let _ = writeln!(
                out,
                "  {:<26} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>23} {:>9.3}",
                r.regime,
                r.a,
                r.b,
                r.c_prime,
                r.indirect.estimate,
                ci(&r.indirect),
                r.suppression_share
            );
        }
        for (i, c) in md.contrasts.iter().enumerate() {
            if i == 0 || md.contrasts[i - 1].regime != c.regime {
                let _ = writeln!(out, "  {} less {}:", c.regime, c.reference);
            }
            let name = match c.path.as_str() {
                "c_prime" => "c'",
                "indirect" => "a*b",
                other => other,
            };
            let _ = writeln!(
                out,
                "  {:<26} {:>9.4} {:>23} p {}",
                name,
                c.estimate.estimate,
                ci(&c.estimate),
                c.estimate.p_value.map_or("-".into(), |p| format!("{p:.4}"))
            );
        }
    }
    out
}

/// A threshold as the report prints it.
fn threshold_value(v: f64) -> String {
    format!("{v:.4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Colour adds styles to the title, the header rows and the verdict's
    /// label only; without the escapes the text is the same.
    #[test]
    fn colour_changes_styles_not_words() {
        let text = "medsim 0.1.0 - paper\ndata   x\n\neffect  estimate\na    0.1\n\nverdict  agglom suppresses\n";
        let coloured = colourize(text);
        assert!(coloured.contains("\x1b[1;32mverdict\x1b[0m  agglom"));
        assert!(coloured.contains("\x1b[1meffect  estimate\x1b[0m"));
        assert!(coloured.contains("\na    0.1\n"));
        let plain = coloured
            .replace("\x1b[1;32m", "")
            .replace("\x1b[1m", "")
            .replace("\x1b[0m", "");
        assert_eq!(plain, text);
    }
}
