//! The run's tables as documents, rendered from the summary alone (so they
//! agree with summary.json): `tables.tex`, the three regressions side by
//! side as economists publish them (coefficients with clustered SEs in
//! parentheses and stars, fixed-effect and cluster rows, N, within
//! R-squared) and the mediation-effects table; and `summary.md`, the
//! printed summary's tables in Markdown. A threshold analysis has its own
//! pair: the tests, the thresholds and the regime regressions.

use std::fmt::Write;

use crate::model::effect::{EffectKey, path_label};
use crate::study::summary::Summary;
use crate::study::threshold::ThresholdSummary;

/// `v` with four significant digits, in fixed notation.
pub fn sig4(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{v:.digits$}")
}

/// Stars of a two-sided p-value: * < 0.10, ** < 0.05, *** < 0.01.
pub fn stars(p: f64) -> &'static str {
    if p < 0.01 {
        "***"
    } else if p < 0.05 {
        "**"
    } else if p < 0.10 {
        "*"
    } else {
        ""
    }
}

/// A p-value for a table: four decimals, or `<0.0001`.
fn p4(p: f64) -> String {
    if p < 1e-4 {
        "<0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

/// An interval method's name as a table heads it.
fn method_name(m: &str) -> &str {
    match m {
        "sobel" => "Sobel",
        "monte_carlo" => "Monte Carlo",
        "percentile" => "Percentile",
        "basic" => "Basic",
        "normal" => "Normal",
        "bc" => "BC",
        "bca" => "BCa",
        "studentized" => "Studentized",
        other => other,
    }
}

/// `n` with thousands separated by commas.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut o = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// `s` with LaTeX's special characters escaped.
pub fn tex_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '_' | '%' | '&' | '#' | '$' | '{' | '}' => {
                o.push('\\');
                o.push(c);
            }
            '~' => o.push_str("\\textasciitilde{}"),
            '^' => o.push_str("\\textasciicircum{}"),
            '\\' => o.push_str("\\textbackslash{}"),
            _ => o.push(c),
        }
    }
    o
}

/// Moderator value `k` of a moderated summary, as `W = value (label)`.
fn moderator_value(s: &Summary, k: usize) -> String {
    match s
        .moderation
        .as_ref()
        .and_then(|md| md.values.get(k).map(|v| (md, v)))
    {
        Some((md, v)) => format!("{} = {:.4} ({})", md.moderator, v.value, v.label),
        None => format!("moderator value {k}"),
    }
}

/// The effect rows of the tables: key and label.
fn effect_rows(s: &Summary) -> Vec<(String, String)> {
    let x = &s.model.treatment;
    let y = &s.model.outcome;
    s.effects
        .keys()
        .map(|k| {
            let all = || s.model.mediators.join(", ");
            let path = |text: &str| path_label(text, &s.model.mediators);
            let via = |m: Option<String>| m.map_or(String::new(), |m| format!(" via {m}"));
            let of = |m: Option<String>| m.map_or(String::new(), |m| format!(" of {m}"));
            // A categorical moderator's level of term t (against the lowest).
            let level = |t: usize| match &s.moderation {
                Some(md) if md.categorical => format!(
                    ", {} = {} vs {}",
                    md.moderator,
                    md.level(t).unwrap_or(f64::NAN),
                    md.values.first().map_or(f64::NAN, |v| v.value)
                ),
                _ => String::new(),
            };
            let label = match EffectKey::parse(k, &s.model.mediators) {
                Some(EffectKey::A(Some(m))) => format!("a: {x} on {m}"),
                Some(EffectKey::B(Some(m))) => format!("b: {m} on {y}"),
                Some(EffectKey::Indirect(Some(m))) => format!("a*b via {}", path(&m)),
                Some(EffectKey::Contrast(first, second)) => {
                    format!("difference {} - {}", path(&first), path(&second))
                }
                Some(EffectKey::D(from, to)) => format!("d: {from} on {to}"),
                Some(EffectKey::A(None)) => format!("a: {x} on {}", all()),
                Some(EffectKey::B(None)) => format!("b: {} on {y}", all()),
                Some(EffectKey::C) => "c: total effect".into(),
                Some(EffectKey::CPrime) => "c': direct effect".into(),
                Some(EffectKey::Indirect(None)) => "a*b: indirect effect".into(),
                Some(EffectKey::ProportionMediated) => "proportion mediated".into(),
                Some(EffectKey::SuppressionShare) => "suppression share".into(),
                Some(EffectKey::A3(t, m)) => {
                    format!("a3: interaction on the a path{}{}", of(m), level(t))
                }
                Some(EffectKey::B3(t, m)) => {
                    format!("b3: interaction on the b path{}{}", of(m), level(t))
                }
                Some(EffectKey::C3Prime(t)) => {
                    format!("c3': interaction on the direct path{}", level(t))
                }
                Some(EffectKey::ConditionalIndirect(j, m)) => {
                    format!("a*b at {}{}", moderator_value(s, j), via(m))
                }
                Some(EffectKey::ConditionalDirect(j)) => {
                    format!("c' at {}", moderator_value(s, j))
                }
                Some(EffectKey::IndexModeratedMediation(t, m)) => {
                    format!("index of moderated mediation{}{}", level(t), via(m))
                }
                Some(EffectKey::IndirectDifference(t, m)) => {
                    format!("difference of conditional a*b{}{}", level(t), via(m))
                }
                Some(EffectKey::Interaction(None)) => format!("d: {x} x {} on {y}", all()),
                Some(EffectKey::Interaction(Some(m))) => format!("d: {x} x {m} on {y}"),
                Some(EffectKey::NaturalDirect) => "natural direct effect".into(),
                Some(EffectKey::NaturalIndirect(m)) => format!("natural indirect effect{}", via(m)),
                Some(EffectKey::Sensitivity(_) | EffectKey::RobustnessValue(_)) | None => k.clone(),
            };
            (k.clone(), label)
        })
        .collect()
}

/// The interval methods of the summary's first level, in order.
fn methods(s: &Summary) -> (f64, Vec<String>) {
    let level = s.inference.levels.first().copied().unwrap_or(0.95);
    let mut out: Vec<String> = Vec::new();
    for i in s.intervals.iter().filter(|i| i.level == level) {
        if !out.contains(&i.method) {
            out.push(i.method.clone());
        }
    }
    (level, out)
}

fn interval_of(s: &Summary, effect: &str, method: &str, level: f64) -> Option<(f64, f64)> {
    s.intervals
        .iter()
        .find(|i| i.effect == effect && i.method == method && i.level == level)
        .map(|i| (i.lower, i.upper))
}

/// tables.tex: the regression table and the mediation-effects table, each
/// a `table` environment needing only the booktabs package.
pub fn latex(s: &Summary) -> String {
    let mut o = String::new();
    latex_regressions(&mut o, s);
    latex_effects(&mut o, s);
    o
}

/// The regression table: the three equations side by side.
fn latex_regressions(o: &mut String, s: &Summary) {
    let name = tex_escape(&s.name);
    let _ = writeln!(
        o,
        "% medsim {}: run {}; generated from summary.json. Needs \\usepackage{{booktabs}}.",
        s.version, s.name
    );
    let n = s.equations.len();
    let _ = writeln!(o, "\\begin{{table}}[htbp]\\centering");
    let _ = writeln!(
        o,
        "\\caption{{Mediation regressions ({})}}\\label{{tab:{}-regressions}}",
        name,
        s.name.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let _ = writeln!(o, "\\begin{{tabular}}{{l{}}}", "c".repeat(n));
    let _ = writeln!(o, "\\toprule");
    let numbers: Vec<String> = (1..=n).map(|k| format!("({k})")).collect();
    let _ = writeln!(o, " & {} \\\\", numbers.join(" & "));
    let deps: Vec<String> = s
        .equations
        .iter()
        .map(|e| tex_escape(&e.dependent))
        .collect();
    let _ = writeln!(o, " & {} \\\\", deps.join(" & "));
    let _ = writeln!(o, "\\midrule");
    // Rows: every regressor in order of first appearance.
    let mut names: Vec<&str> = Vec::new();
    for e in &s.equations {
        for c in &e.coefficients {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
    }
    for name in names {
        let cells =
            |f: &dyn Fn(&crate::study::summary::CoefficientSummary) -> String| -> Vec<String> {
                s.equations
                    .iter()
                    .map(|e| {
                        e.coefficients
                            .iter()
                            .find(|c| c.name == name)
                            .map_or(String::new(), f)
                    })
                    .collect()
            };
        let est = cells(&|c| format!("{}{}", sig4(c.estimate), stars(c.p_value)));
        let se = cells(&|c| format!("({})", sig4(c.se)));
        let _ = writeln!(o, "{} & {} \\\\", tex_escape(name), est.join(" & "));
        let _ = writeln!(o, " & {} \\\\", se.join(" & "));
    }
    let _ = writeln!(o, "\\midrule");
    let fe = s.model.fixed_effects.as_str();
    // unit+GROUP^time: the group's effect in each period (which absorbs
    // the period's).
    let cells = fe
        .strip_prefix("unit+")
        .and_then(|rest| rest.strip_suffix("^time"));
    let yes = |on: bool| vec![if on { "Yes" } else { "No" }; n].join(" & ");
    let _ = writeln!(o, "Unit fixed effects & {} \\\\", yes(fe != "none"));
    let _ = writeln!(
        o,
        "Period fixed effects & {} \\\\",
        yes(fe == "unit+time" || cells.is_some())
    );
    if let Some(group) = cells {
        let _ = writeln!(
            o,
            "{} $\\times$ period fixed effects & {} \\\\",
            tex_escape(group),
            yes(true)
        );
    }
    let _ = writeln!(
        o,
        "Clusters ({}) & {} \\\\",
        tex_escape(&s.model.cluster),
        vec![s.data.clusters.to_string(); n].join(" & ")
    );
    let _ = writeln!(
        o,
        "Observations & {} \\\\",
        vec![thousands(s.data.observations); n].join(" & ")
    );
    let r2: Vec<String> = s
        .equations
        .iter()
        .map(|e| e.r2_within.map_or("-".into(), |r| format!("{r:.4}")))
        .collect();
    let _ = writeln!(
        o,
        "{} & {} \\\\",
        if fe == "none" {
            "R$^2$"
        } else {
            "R$^2$ within"
        },
        r2.join(" & ")
    );
    let _ = writeln!(o, "\\bottomrule");
    let _ = writeln!(o, "\\end{{tabular}}");
    let _ = writeln!(
        o,
        "\\par\\smallskip\\footnotesize {} standard errors clustered by {} in parentheses; \
         * $p<0.10$, ** $p<0.05$, *** $p<0.01$ ($t$ tests on {} df).",
        tex_escape(&s.inference.vcov),
        tex_escape(&s.model.cluster),
        s.inference.df
    );
    let _ = writeln!(o, "\\end{{table}}");
    let _ = writeln!(o);
}

/// The mediation effects: estimate, SE, p-value, an interval per method.
fn latex_effects(o: &mut String, s: &Summary) {
    let name = tex_escape(&s.name);
    let (level, methods) = methods(s);
    let _ = writeln!(o, "\\begin{{table}}[htbp]\\centering");
    let _ = writeln!(
        o,
        "\\caption{{Mediation effects ({name})}}\\label{{tab:{}-effects}}",
        s.name.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    );
    let _ = writeln!(o, "\\begin{{tabular}}{{lccc{}}}", "c".repeat(methods.len()));
    let _ = writeln!(o, "\\toprule");
    let heads: Vec<String> = methods
        .iter()
        .map(|m| format!("{} {}\\%", method_name(m), 100.0 * level))
        .collect();
    let _ = writeln!(
        o,
        "Effect & Estimate & SE & $p$-value{}{} \\\\",
        if heads.is_empty() { "" } else { " & " },
        heads.join(" & ")
    );
    let _ = writeln!(o, "\\midrule");
    for (key, label) in effect_rows(s) {
        let e = &s.effects[&key];
        let ivs: Vec<String> = methods
            .iter()
            .map(|m| {
                interval_of(s, &key, m, level).map_or(String::new(), |(l, u)| {
                    format!("[{}, {}]", sig4(l), sig4(u))
                })
            })
            .collect();
        let _ = writeln!(
            o,
            "{} & {} & {} & {}{}{} \\\\",
            tex_escape(&label),
            sig4(e.estimate),
            e.se.map_or("-".into(), sig4),
            e.p_value.map_or("-".into(), |p| p4(p).replace('<', "$<$")),
            if ivs.is_empty() { "" } else { " & " },
            ivs.join(" & ")
        );
    }
    let _ = writeln!(o, "\\bottomrule");
    let _ = writeln!(o, "\\end{{tabular}}");
    let _ = writeln!(
        o,
        "\\par\\smallskip\\footnotesize {}",
        tex_escape(&crate::output::report::verdict(s))
    );
    let _ = writeln!(o, "\\end{{table}}");
}

/// A Markdown table.
fn md_table(o: &mut String, head: &[String], rows: &[Vec<String>]) {
    let _ = writeln!(o, "| {} |", head.join(" | "));
    let _ = writeln!(
        o,
        "|{}",
        head.iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for r in rows {
        let _ = writeln!(o, "| {} |", r.join(" | "));
    }
    let _ = writeln!(o);
}

/// summary.md: the printed summary's tables in Markdown.
pub fn markdown(s: &Summary) -> String {
    let mut o = String::new();
    markdown_run(&mut o, s);
    markdown_effects(&mut o, s);
    let _ = writeln!(o, "**Verdict.** {}\n", crate::output::report::verdict(s));
    markdown_groups(&mut o, s);
    markdown_regressions(&mut o, s);
    o
}

/// The Markdown title and the run's data, model and resampling.
fn markdown_run(o: &mut String, s: &Summary) {
    let d = &s.data;
    let _ = writeln!(o, "# medsim {}: {}\n", s.version, s.name);
    let _ = writeln!(
        o,
        "Data: {} ({} units x {} periods, {} observations; {} clusters by {}). \
         Model: {} on {} through {}, {} controls, fixed effects {}. \
         SEs: {} clustered, t tests on {} df.\n",
        d.source.replace('<', "&lt;").replace('>', "&gt;"),
        d.units,
        d.periods,
        d.observations,
        d.clusters,
        s.model.cluster,
        s.model.outcome,
        s.model.treatment,
        s.model.mediators.join(" + "),
        s.model.controls.len(),
        s.model.fixed_effects,
        s.inference.vcov,
        s.inference.df
    );
    if let Some(r) = &s.resampling {
        let _ = writeln!(
            o,
            "Resampling: {} scheme, B = {} ({} degenerate), seed {}, {} engine.\n",
            r.scheme, r.replicates, r.failed_replicates, r.seed, r.engine.backend
        );
    }
}

/// The effects table and the intervals table.
fn markdown_effects(o: &mut String, s: &Summary) {
    let _ = writeln!(o, "## Effects\n");
    let boot = s.resampling.is_some();
    let mut head: Vec<String> = ["effect", "estimate", "SE", "p-value"]
        .map(String::from)
        .to_vec();
    if boot {
        head.extend(["boot SE".to_string(), "boot p".to_string()]);
    }
    let rows: Vec<Vec<String>> = effect_rows(s)
        .into_iter()
        .map(|(key, label)| {
            let e = &s.effects[&key];
            let mut r = vec![
                label,
                sig4(e.estimate),
                e.se.map_or("-".into(), sig4),
                e.p_value.map_or("-".into(), p4),
            ];
            if boot {
                let b = e.bootstrap.as_ref();
                r.push(b.map_or("-".into(), |b| sig4(b.sd)));
                r.push(crate::output::report::boot_p_text(
                    b.and_then(|b| b.p_value),
                    s.resampling.as_ref().map_or(0, |r| r.replicates),
                ));
            }
            r
        })
        .collect();
    md_table(o, &head, &rows);
    let (level, methods) = methods(s);
    if !methods.is_empty() {
        let _ = writeln!(o, "## Intervals ({} %)\n", 100.0 * level);
        let mut head = vec!["effect".to_string()];
        head.extend(methods.iter().map(|m| method_name(m).to_string()));
        let rows: Vec<Vec<String>> = effect_rows(s)
            .into_iter()
            .filter(|(key, _)| s.intervals.iter().any(|i| &i.effect == key))
            .map(|(key, label)| {
                let mut r = vec![label];
                r.extend(methods.iter().map(|m| {
                    interval_of(s, &key, m, level)
                        .map_or("-".into(), |(l, u)| format!("[{}, {}]", sig4(l), sig4(u)))
                }));
                r
            })
            .collect();
        md_table(o, &head, &rows);
    }
}

/// The groups' table and the contrasts between them.
fn markdown_groups(o: &mut String, s: &Summary) {
    if !s.groups.is_empty() {
        let _ = writeln!(o, "## Groups\n");
        let head = [
            "group",
            "clusters",
            "c'",
            "indirect",
            "SE",
            "suppression share",
        ]
        .map(String::from)
        .to_vec();
        let rows: Vec<Vec<String>> = s
            .groups
            .iter()
            .map(|(label, g)| {
                let est = |k: &str| g.effects.get(k).map_or("-".into(), |e| sig4(e.estimate));
                vec![
                    label.clone(),
                    g.clusters.to_string(),
                    est("c_prime"),
                    est("indirect"),
                    g.effects
                        .get("indirect")
                        .and_then(|e| e.se)
                        .map_or("-".into(), sig4),
                    format!("{:.1} %", 100.0 * g.suppression.share),
                ]
            })
            .collect();
        md_table(o, &head, &rows);
    }
    if !s.contrasts.is_empty() {
        let _ = writeln!(o, "## Differences between groups\n");
        let head = ["effect", "difference", "estimate", "SE", "boot p", "perm p"]
            .map(String::from)
            .to_vec();
        let rows: Vec<Vec<String>> = s
            .contrasts
            .iter()
            .map(|c| {
                vec![
                    c.effect.clone(),
                    format!("{} - {}", c.between[0], c.between[1]),
                    sig4(c.estimate),
                    c.se.map_or("-".into(), sig4),
                    crate::output::report::boot_p_text(
                        c.bootstrap.as_ref().and_then(|b| b.p_value),
                        s.resampling.as_ref().map_or(0, |r| r.replicates),
                    ),
                    c.permutation_p_value
                        .map_or("-".into(), |p| format!("{p:.4}")),
                ]
            })
            .collect();
        md_table(o, &head, &rows);
    }
}

/// The three equations side by side, as a paper's regression table.
fn markdown_regressions(o: &mut String, s: &Summary) {
    let _ = writeln!(o, "## Regressions\n");
    let mut head = vec!["".to_string()];
    head.extend(
        s.equations
            .iter()
            .map(|e| format!("{} ({})", e.dependent, e.name)),
    );
    let mut names: Vec<&str> = Vec::new();
    for e in &s.equations {
        for c in &e.coefficients {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
    }
    let mut rows: Vec<Vec<String>> = names
        .iter()
        .map(|name| {
            let mut r = vec![name.to_string()];
            r.extend(s.equations.iter().map(|e| {
                e.coefficients
                    .iter()
                    .find(|c| c.name == *name)
                    .map_or(String::new(), |c| {
                        format!("{}{} ({})", sig4(c.estimate), stars(c.p_value), sig4(c.se))
                    })
            }));
            r
        })
        .collect();
    let mut r2 = vec!["R2 within".to_string()];
    r2.extend(
        s.equations
            .iter()
            .map(|e| e.r2_within.map_or("-".into(), |r| format!("{r:.4}"))),
    );
    rows.push(r2);
    md_table(o, &head, &rows);
    let _ = writeln!(
        o,
        "Standard errors in parentheses, clustered by {}; * p < 0.10, ** p < 0.05, *** p < 0.01.",
        s.model.cluster
    );
}

/// A threshold analysis's three tables, as rows of cells: the tests (model,
/// F, p, the 10/5/1 % critical values), the thresholds (model, which, the
/// estimate, its confidence set) and the regime regressions (a column per
/// model; each regressor's regimes numbered from the lowest, then the
/// controls; the estimate with stars and its SE), with their heads.
struct ThresholdTables {
    tests: (Vec<String>, Vec<Vec<String>>),
    thresholds: (Vec<String>, Vec<Vec<String>>),
    regressions: Vec<RegimeRow>,
}

/// A regime regression's row: its name, then per model (estimate with
/// stars, SE) where the model has it.
type RegimeRow = (String, Vec<Option<(String, String)>>);

const MODELS: [&str; 3] = ["Single", "Double", "Triple"];

/// Regime-dependent mediation as a table: each regime's paths, a*b with
/// its interval and the suppression share, then each regime's contrasts
/// with the lowest (a, b, c', a*b) with their intervals; None without it.
fn regime_mediation_table(s: &ThresholdSummary) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let md = s.mediation.as_ref()?;
    let with_ci = |e: &crate::study::threshold::Estimate| match (e.lower, e.upper) {
        (Some(l), Some(u)) => format!("{:.4} [{l:.4}, {u:.4}]", e.estimate),
        _ => format!("{:.4}", e.estimate),
    };
    let head = ["Regime", "a", "b", "c'", "a*b", "Suppression share"]
        .map(String::from)
        .to_vec();
    let mut rows: Vec<Vec<String>> = md
        .regimes
        .iter()
        .map(|r| {
            vec![
                r.regime.clone(),
                format!("{:.4}", r.a),
                format!("{:.4}", r.b),
                format!("{:.4}", r.c_prime),
                with_ci(&r.indirect),
                format!("{:.3}", r.suppression_share),
            ]
        })
        .collect();
    // One row per regime compared, its contrasts in the paths' order.
    for chunk in md.contrasts.chunk_by(|x, y| x.regime == y.regime) {
        let mut row = vec![format!("{} less {}", chunk[0].regime, chunk[0].reference)];
        row.extend(chunk.iter().map(|c| with_ci(&c.estimate)));
        row.push(String::new());
        rows.push(row);
    }
    Some((head, rows))
}

/// The note under the regime mediation table.
fn regime_mediation_note(s: &ThresholdSummary) -> Option<String> {
    let md = s.mediation.as_ref()?;
    let values: Vec<String> = md.thresholds.iter().map(|t| format!("{t:.4}")).collect();
    Some(format!(
        "{} -> {} -> {} in one pooled model, the regimes of the threshold(s) {} ({}) \
         moderating a, b and c'; {} % {} intervals in brackets.",
        md.treatment,
        md.mediator,
        md.outcome,
        values.join(", "),
        md.moderator,
        100.0 * md.level,
        md.interval_method
    ))
}

fn threshold_tables(s: &ThresholdSummary) -> ThresholdTables {
    let m = &s.model;
    let tests = (
        ["Model", "F", "p-value", "10 %", "5 %", "1 %"]
            .map(String::from)
            .to_vec(),
        s.steps
            .iter()
            .map(|st| {
                let mut row = vec![MODELS[st.k - 1].to_string(), format!("{:.3}", st.f_stat)];
                match (st.p_value, st.critical_values) {
                    (Some(p), Some(c)) => {
                        row.push(crate::output::report::share_p_text(p, m.replicates));
                        row.extend(c.iter().map(|v| format!("{v:.3}")));
                    }
                    _ => row.extend(["-"; 4].map(String::from)),
                }
                row
            })
            .collect(),
    );
    let thresholds = (
        [
            "Model".to_string(),
            "Threshold".to_string(),
            "Estimate".to_string(),
            format!("{} % confidence set", 100.0 * m.level),
        ]
        .to_vec(),
        s.steps
            .iter()
            .flat_map(|st| {
                st.thresholds.iter().enumerate().map(move |(j, t)| {
                    vec![
                        MODELS[st.k - 1].to_string(),
                        format!("gamma_{}", j + 1),
                        sig4(t.estimate),
                        format!("[{}, {}]", sig4(t.lower), sig4(t.upper)),
                    ]
                })
            })
            .collect(),
    );
    // Row names: each regressor's regimes, then the controls.
    let most = s.steps.iter().map(|st| st.k).max().unwrap_or(0);
    let mut names: Vec<String> = Vec::new();
    for x in &m.regressors {
        for r in 0..=most {
            names.push(format!("{x}, regime {}", r + 1));
        }
    }
    names.extend(m.controls.iter().cloned());
    let regressions = names
        .iter()
        .map(|name| {
            let cells = s
                .steps
                .iter()
                .map(|st| {
                    let regimes = st.k + 1;
                    let at = m
                        .regressors
                        .iter()
                        .enumerate()
                        .find_map(|(j, x)| {
                            (0..regimes)
                                .find(|r| *name == format!("{x}, regime {}", r + 1))
                                .map(|r| j * regimes + r)
                        })
                        .or_else(|| {
                            m.controls
                                .iter()
                                .position(|c| c == name)
                                .map(|c| m.regressors.len() * regimes + c)
                        })?;
                    let c = st.coefficients.get(at)?;
                    Some((
                        format!("{}{}", sig4(c.estimate), stars(c.p_value)),
                        format!("({})", sig4(c.se)),
                    ))
                })
                .collect();
            (name.clone(), cells)
        })
        .collect();
    ThresholdTables {
        tests,
        thresholds,
        regressions,
    }
}

/// A threshold analysis's summary.md: the tests, the thresholds and the
/// regime regressions.
pub fn threshold_markdown(s: &ThresholdSummary) -> String {
    let m = &s.model;
    let t = threshold_tables(s);
    let mut o = format!(
        "# {}: panel threshold model (Hansen 1999)\n\n{} on {} by regimes of {}; {} observations, \
         {} units x {} periods; {} effects; bootstrap {}, {} replicates.\n\n## Threshold tests\n\n",
        s.name,
        m.outcome,
        m.regressors.join(", "),
        m.threshold_variable,
        thousands(s.data.observations),
        s.data.units,
        s.data.periods,
        m.fixed_effects,
        m.bootstrap,
        m.replicates
    );
    md_table(&mut o, &t.tests.0, &t.tests.1);
    let _ = writeln!(o, "## Thresholds\n");
    md_table(&mut o, &t.thresholds.0, &t.thresholds.1);
    let _ = writeln!(o, "## Regime regressions\n");
    let mut head = vec![String::new()];
    head.extend(s.steps.iter().map(|st| MODELS[st.k - 1].to_string()));
    let rows: Vec<Vec<String>> = t
        .regressions
        .iter()
        .map(|(name, cells)| {
            let mut row = vec![name.clone()];
            row.extend(cells.iter().map(|c| {
                c.as_ref()
                    .map_or(String::new(), |(e, se)| format!("{e} {se}"))
            }));
            row
        })
        .collect();
    md_table(&mut o, &head, &rows);
    let _ = writeln!(
        o,
        "Regimes are numbered from the lowest {}, at each model's thresholds above. CR1 SEs \
         clustered by {} in parentheses; * p < 0.10, ** p < 0.05, *** p < 0.01.",
        m.threshold_variable, m.cluster
    );
    if let (Some((head, rows)), Some(note)) = (regime_mediation_table(s), regime_mediation_note(s))
    {
        let _ = writeln!(o, "\n## Regime-dependent mediation\n");
        md_table(&mut o, &head, &rows);
        let _ = writeln!(o, "{note}");
    }
    o
}

/// A threshold analysis's tables.tex (booktabs): the tests with their
/// thresholds, and the regime regressions side by side.
pub fn threshold_latex(s: &ThresholdSummary) -> String {
    let m = &s.model;
    let t = threshold_tables(s);
    let label = s.name.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let mut o = format!(
        "% medsim {}: threshold analysis {}; generated from threshold.json. Needs \
         \\usepackage{{booktabs}}.\n",
        s.version, s.name
    );
    let _ = writeln!(o, "\\begin{{table}}[htbp]\\centering");
    let _ = writeln!(
        o,
        "\\caption{{Threshold effect tests ({})}}\\label{{tab:{label}-threshold-tests}}",
        tex_escape(&s.name)
    );
    let _ = writeln!(o, "\\begin{{tabular}}{{lccccc}}\n\\toprule");
    let _ = writeln!(
        o,
        "Model & F & p-value & \\multicolumn{{3}}{{c}}{{Critical values}} \\\\"
    );
    let _ = writeln!(o, " & & & 10\\% & 5\\% & 1\\% \\\\\n\\midrule");
    for row in &t.tests.1 {
        let _ = writeln!(o, "{} \\\\", row.join(" & ").replace('<', "$<$"));
    }
    let _ = writeln!(o, "\\midrule");
    for row in &t.thresholds.1 {
        let _ = writeln!(
            o,
            "{} & \\multicolumn{{5}}{{l}}{{$\\hat\\gamma_{}$ = {}, {} \\% CI {}}} \\\\",
            row[0],
            &row[1][6..],
            row[2],
            100.0 * m.level,
            row[3]
        );
    }
    let _ = writeln!(o, "\\bottomrule\n\\end{{tabular}}");
    let _ = writeln!(
        o,
        "\\par\\footnotesize p-values and critical values from {} bootstrap replicates ({}); \
         confidence sets by the likelihood ratio (Hansen 2000).\n\\end{{table}}\n",
        m.replicates,
        tex_escape(&m.bootstrap)
    );
    let n = s.steps.len();
    let _ = writeln!(o, "\\begin{{table}}[htbp]\\centering");
    let _ = writeln!(
        o,
        "\\caption{{Regime regressions of {} ({})}}\\label{{tab:{label}-regimes}}",
        tex_escape(&m.outcome),
        tex_escape(&s.name)
    );
    let _ = writeln!(o, "\\begin{{tabular}}{{l{}}}\n\\toprule", "c".repeat(n));
    let heads: Vec<&str> = s.steps.iter().map(|st| MODELS[st.k - 1]).collect();
    let _ = writeln!(o, " & {} \\\\\n\\midrule", heads.join(" & "));
    for (name, cells) in &t.regressions {
        let est: Vec<String> = cells
            .iter()
            .map(|c| c.as_ref().map_or(String::new(), |(e, _)| e.clone()))
            .collect();
        let se: Vec<String> = cells
            .iter()
            .map(|c| c.as_ref().map_or(String::new(), |(_, se)| se.clone()))
            .collect();
        let _ = writeln!(o, "{} & {} \\\\", tex_escape(name), est.join(" & "));
        let _ = writeln!(o, " & {} \\\\", se.join(" & "));
    }
    let _ = writeln!(o, "\\midrule");
    let _ = writeln!(o, "Unit effects & {} \\\\", vec!["Yes"; n].join(" & "));
    let _ = writeln!(
        o,
        "Period effects & {} \\\\",
        vec![
            if m.fixed_effects == "unit+time" {
                "Yes"
            } else {
                "No"
            };
            n
        ]
        .join(" & ")
    );
    let _ = writeln!(
        o,
        "Observations & {} \\\\",
        vec![thousands(s.data.observations); n].join(" & ")
    );
    let _ = writeln!(o, "\\bottomrule\n\\end{{tabular}}");
    let _ = writeln!(
        o,
        "\\par\\footnotesize Regimes of {} numbered from the lowest, at each model's thresholds. \
         CR1 SEs clustered by {} in parentheses; * p $<$ 0.10, ** p $<$ 0.05, *** p $<$ 0.01.\n\
         \\end{{table}}",
        tex_escape(&m.threshold_variable),
        tex_escape(&m.cluster)
    );
    if let (Some((head, rows)), Some(note)) = (regime_mediation_table(s), regime_mediation_note(s))
    {
        let _ = writeln!(o, "\n\\begin{{table}}[htbp]\\centering");
        let _ = writeln!(
            o,
            "\\caption{{Regime-dependent mediation ({})}}\\label{{tab:{label}-regime-mediation}}",
            tex_escape(&s.name)
        );
        let _ = writeln!(o, "\\begin{{tabular}}{{lccccc}}\n\\toprule");
        let cells = |r: &[String]| {
            r.iter()
                .map(|c| tex_escape(c).replace("<=", "$\\le$").replace('>', "$>$"))
                .collect::<Vec<_>>()
                .join(" & ")
        };
        let _ = writeln!(o, "{} \\\\\n\\midrule", cells(&head));
        for (i, r) in rows.iter().enumerate() {
            if i + 1 == rows.len() {
                let _ = writeln!(o, "\\midrule");
            }
            let _ = writeln!(o, "{} \\\\", cells(r));
        }
        let _ = writeln!(o, "\\bottomrule\n\\end{{tabular}}");
        let _ = writeln!(
            o,
            "\\par\\footnotesize {}\n\\end{{table}}",
            tex_escape(&note).replace("->", "$\\to$")
        );
    }
    o
}
