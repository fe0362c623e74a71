//! The run's pictures, as SVG (plotters' SVG backend; text stays text, so
//! no font files are needed): the bootstrap distribution of the indirect
//! effect with its estimate and interval, a forest plot of the indirect
//! effect and suppression share across groups, the sensitivity curve
//! ACME(rho) with its band, a moderated model's conditional indirect effect
//! over the moderator, a sweep's estimate along each swept key, and a
//! simulation study's power curves by method against n, and a threshold
//! model's likelihood-ratio curves. Each function
//! returns the file's name and text, or nothing when the run has no such
//! result. `--no-plots` (`[output] plots = false`) leaves them out.

use plotters::prelude::*;

use crate::model::mediation::headline;
use crate::study::simulate::{Cell, SimulationSummary};
use crate::study::summary::Summary;
use crate::study::threshold::ThresholdSummary;

const WIDTH: u32 = 760;
const HEIGHT: u32 = 460;
/// Colours of successive series (colour-blind safe, Okabe-Ito).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// Draw with `f` on a fresh SVG canvas of `size`; the SVG text.
fn svg(
    size: (u32, u32),
    f: impl FnOnce(
        &DrawingArea<SVGBackend, plotters::coord::Shift>,
    ) -> Result<(), Box<dyn std::error::Error>>,
) -> Option<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).ok()?;
        f(&root).ok()?;
        root.present().ok()?;
    }
    Some(text)
}

/// A chart of these plots: reals on both axes, drawn as SVG.
type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The series' legend in a white box at `at`.
fn legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    at: SeriesLabelPosition,
) -> Result<(), Box<dyn std::error::Error>> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(at)
        .draw()?;
    Ok(())
}

/// A curve (x, y) over its band (x, lower, upper; none drawn when empty)
/// and the zero line across the curve's x range, each labelled.
fn band_and_curve<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    band: &[(f64, f64, f64)],
    band_label: &str,
    curve: Vec<(f64, f64)>,
    curve_label: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    if !band.is_empty() {
        let mut polygon: Vec<(f64, f64)> = band.iter().map(|&(x, l, _)| (x, l)).collect();
        polygon.extend(band.iter().rev().map(|&(x, _, u)| (x, u)));
        chart
            .draw_series([Polygon::new(polygon, PALETTE[5].mix(0.35).filled())])?
            .label(band_label)
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 18, y + 5)], PALETTE[5].mix(0.35).filled())
            });
    }
    if let (Some(&(x0, _)), Some(&(x1, _))) = (curve.first(), curve.last()) {
        chart.draw_series(LineSeries::new([(x0, 0.0), (x1, 0.0)], BLACK.mix(0.5)))?;
    }
    chart
        .draw_series(LineSeries::new(curve, PALETTE[0].stroke_width(2)))?
        .label(curve_label)
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], PALETTE[0].stroke_width(2)));
    Ok(())
}

/// `[lo, hi]` widened by 5 % each side (a unit around a single value).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(hi > lo) {
        return (lo - 1.0, hi + 1.0);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// `indirect_distribution.svg`: a histogram of the main model's indirect
/// effect over its first replicates, the estimate (solid) and the headline
/// interval (dashed).
pub fn distribution(s: &Summary) -> Option<(String, String)> {
    let draws = &s.indirect_draws;
    if draws.len() < 10 {
        return None;
    }
    let mut sorted = draws.clone();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let estimate = s.effect("indirect")?.estimate;
    let interval = headline(&s.intervals, "indirect");
    let mut lo = at(0.001).min(estimate);
    let mut hi = at(0.999).max(estimate);
    if let Some(i) = interval {
        lo = lo.min(i.lower);
        hi = hi.max(i.upper);
    }
    let (lo, hi) = padded(lo, hi);
    const BINS: usize = 60;
    let width = (hi - lo) / BINS as f64;
    let mut counts = [0usize; BINS];
    for &v in draws {
        let k = ((v - lo) / width).floor();
        if k >= 0.0 && (k as usize) < BINS {
            counts[k as usize] += 1;
        }
    }
    let density: Vec<f64> = counts
        .iter()
        .map(|&c| c as f64 / (draws.len() as f64 * width))
        .collect();
    let top = density.iter().cloned().fold(0.0, f64::max) * 1.1;
    let r = s.resampling.as_ref()?;
    let text = svg((WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Indirect effect: {} bootstrap distribution ({} of B = {} replicates)",
                    r.scheme,
                    draws.len(),
                    r.replicates
                ),
                ("sans-serif", 17),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc(format!("indirect effect (a*b) of {}", s.model.treatment))
            .y_desc("density")
            .light_line_style(WHITE)
            .draw()?;
        chart.draw_series(density.iter().enumerate().map(|(k, &d)| {
            let x0 = lo + k as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, d)], PALETTE[5].mix(0.6).filled())
        }))?;
        chart
            .draw_series(LineSeries::new(
                [(estimate, 0.0), (estimate, top)],
                PALETTE[1].stroke_width(2),
            ))?
            .label(format!("estimate {estimate:.4}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], PALETTE[1].stroke_width(2)));
        if let Some(i) = interval {
            for (k, bound) in [i.lower, i.upper].into_iter().enumerate() {
                let series = chart.draw_series(DashedLineSeries::new(
                    [(bound, 0.0), (bound, top)],
                    6,
                    4,
                    PALETTE[0].stroke_width(2),
                ))?;
                if k == 0 {
                    series
                        .label(format!(
                            "{} % {} [{:.4}, {:.4}]",
                            100.0 * i.level,
                            i.method,
                            i.lower,
                            i.upper
                        ))
                        .legend(|(x, y)| {
                            PathElement::new([(x, y), (x + 18, y)], PALETTE[0].stroke_width(2))
                        });
                }
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })?;
    Some(("indirect_distribution.svg".into(), text))
}

/// One row of a forest plot: label, estimate, interval.
type ForestRow = (String, f64, Option<(f64, f64)>);

/// Draw a forest panel of `rows` on `area` with `title` and an x label.
fn forest_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    rows: &[ForestRow],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (_, e, iv) in rows {
        lo = lo.min(*e).min(0.0);
        hi = hi.max(*e).max(0.0);
        if let Some((l, u)) = iv {
            lo = lo.min(*l);
            hi = hi.max(*u);
        }
    }
    let (lo, hi) = padded(lo, hi);
    let n = rows.len();
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d(lo..hi, -0.5..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_labels(n)
        .y_label_formatter(&|y: &f64| {
            let k = y.round();
            if (y - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
                labels[n - 1 - k as usize].clone()
            } else {
                String::new()
            }
        })
        .light_line_style(WHITE)
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(0.0, -0.5), (0.0, n as f64 - 0.5)],
        BLACK.mix(0.5),
    ))?;
    for (k, (_, e, iv)) in rows.iter().enumerate() {
        let y = (n - 1 - k) as f64;
        let colour = if k == 0 { PALETTE[1] } else { PALETTE[0] };
        if let Some((l, u)) = iv {
            chart.draw_series(LineSeries::new([(*l, y), (*u, y)], colour.stroke_width(2)))?;
        }
        chart.draw_series([Circle::new((*e, y), 5, colour.filled())])?;
    }
    Ok(())
}

/// `forest.svg`: the indirect effect and the suppression share of the
/// pooled model (first) and of every group, each with its headline
/// interval.
pub fn forest(s: &Summary) -> Option<(String, String)> {
    if s.groups.is_empty() {
        return None;
    }
    let row = |label: &str,
               effects: &indexmap::IndexMap<String, crate::model::mediation::Effect>,
               intervals: &[crate::model::mediation::Interval],
               key: &str,
               scale: f64|
     -> Option<ForestRow> {
        let e = effects.get(key)?.estimate * scale;
        let iv = headline(intervals, key).map(|i| (i.lower * scale, i.upper * scale));
        Some((label.to_string(), e, iv))
    };
    let rows = |key: &str, scale: f64| -> Vec<ForestRow> {
        std::iter::once(row("pooled", &s.effects, &s.intervals, key, scale))
            .chain(
                s.groups
                    .iter()
                    .map(|(label, g)| row(label, &g.effects, &g.intervals, key, scale)),
            )
            .flatten()
            .collect()
    };
    let (indirect, share) = (rows("indirect", 1.0), rows("suppression_share", 100.0));
    let method = headline(&s.intervals, "indirect").map_or(String::new(), |i| {
        format!(", {} % {}", 100.0 * i.level, i.method)
    });
    let height = (120 + 36 * indirect.len() as u32).max(260);
    let text = svg((2 * WIDTH - 200, height), |root| {
        let (left, right) = root.split_horizontally(WIDTH - 100);
        forest_panel(
            &left,
            &format!("Indirect effect by group{method}"),
            "a*b",
            &indirect,
        )
        .map_err(|e| e.to_string())?;
        forest_panel(
            &right,
            "Suppression share by group",
            "|a*b / c'|, % of the direct effect",
            &share,
        )
        .map_err(|e| e.to_string())?;
        Ok(())
    })?;
    Some(("forest.svg".into(), text))
}

/// `sensitivity.svg`: ACME(rho) with the band of its headline interval
/// method, zero, and the rho where ACME crosses it.
pub fn sensitivity(s: &Summary) -> Option<(String, String)> {
    let sens = s.sensitivity.as_ref()?;
    let curve = &sens.curve;
    if curve.len() < 2 {
        return None;
    }
    let method = curve
        .iter()
        .flat_map(|p| p.intervals.first())
        .next()
        .map(|i| (i.method.clone(), i.level));
    let band: Vec<(f64, f64, f64)> = match &method {
        Some((m, level)) => curve
            .iter()
            .filter_map(|p| {
                p.intervals
                    .iter()
                    .find(|i| &i.method == m && i.level == *level)
                    .map(|i| (p.rho, i.lower, i.upper))
            })
            .collect(),
        None => Vec::new(),
    };
    let mut lo = curve.iter().map(|p| p.acme).fold(0.0, f64::min);
    let mut hi = curve.iter().map(|p| p.acme).fold(0.0, f64::max);
    for &(_, l, u) in &band {
        lo = lo.min(l);
        hi = hi.max(u);
    }
    let (lo, hi) = padded(lo, hi);
    let (r0, r1) = (curve[0].rho, curve[curve.len() - 1].rho);
    let text = svg((WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Sensitivity of the indirect effect via {} to mediator-outcome confounding",
                    sens.mediator
                ),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(r0..r1, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("rho: correlation of the mediator and outcome errors")
            .y_desc("ACME(rho)")
            .light_line_style(WHITE)
            .draw()?;
        let (m, level) = method.clone().unwrap_or_default();
        band_and_curve(
            &mut chart,
            &band,
            &format!("{} % {m} band", 100.0 * level),
            curve.iter().map(|p| (p.rho, p.acme)).collect(),
            "ACME(rho)",
        )?;
        if sens.rho_at_zero.is_finite() && sens.rho_at_zero > r0 && sens.rho_at_zero < r1 {
            chart
                .draw_series([Circle::new((sens.rho_at_zero, 0.0), 5, PALETTE[1].filled())])?
                .label(format!("ACME = 0 at rho = {:.3}", sens.rho_at_zero))
                .legend(|(x, y)| Circle::new((x + 9, y), 5, PALETTE[1].filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })?;
    Some(("sensitivity.svg".into(), text))
}

/// `lr_K.svg` for each model of a threshold analysis (K thresholds): the
/// likelihood-ratio curve of each of its searches over the candidates, the
/// critical value of the confidence sets as a dashed line.
pub fn threshold_lr(s: &ThresholdSummary) -> Vec<(String, String)> {
    let crit = s.model.lr_critical;
    s.steps
        .iter()
        .filter_map(|step| {
            let curves: Vec<&Vec<(f64, f64)>> = step
                .lr_curves
                .iter()
                .map(|c| &c.points)
                .filter(|p| p.len() >= 2)
                .collect();
            let first = curves.first()?;
            let (mut x0, mut x1) = (first[0].0, first[first.len() - 1].0);
            let mut hi = crit;
            for c in &curves {
                x0 = x0.min(c[0].0);
                x1 = x1.max(c[c.len() - 1].0);
                hi = hi.max(c.iter().map(|p| p.1).fold(0.0, f64::max));
            }
            let (lo, hi) = padded(0.0, hi);
            let text = svg((WIDTH, HEIGHT), |root| {
                let mut chart = ChartBuilder::on(root)
                    .caption(
                        format!(
                            "Likelihood ratio of the threshold in {}, model with {} threshold(s)",
                            s.model.threshold_variable, step.k
                        ),
                        ("sans-serif", 16),
                    )
                    .margin(12)
                    .x_label_area_size(45)
                    .y_label_area_size(65)
                    .build_cartesian_2d(x0..x1, lo..hi)?;
                chart
                    .configure_mesh()
                    .x_desc(format!(
                        "candidate threshold ({})",
                        s.model.threshold_variable
                    ))
                    .y_desc("LR")
                    .light_line_style(WHITE)
                    .draw()?;
                for (i, c) in step.lr_curves.iter().enumerate() {
                    let colour = PALETTE[i % PALETTE.len()];
                    let label = if c.given.is_empty() {
                        format!("LR, estimate {:.4}", c.estimate)
                    } else {
                        let given: Vec<String> =
                            c.given.iter().map(|g| format!("{g:.4}")).collect();
                        format!("LR given {}, estimate {:.4}", given.join(", "), c.estimate)
                    };
                    chart
                        .draw_series(LineSeries::new(c.points.clone(), colour.stroke_width(2)))?
                        .label(label)
                        .legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                        });
                }
                let dashes: Vec<(f64, f64)> = (0..40)
                    .flat_map(|i| {
                        let a = x0 + (x1 - x0) * (2 * i) as f64 / 80.0;
                        let b = x0 + (x1 - x0) * (2 * i + 1) as f64 / 80.0;
                        [(a, crit), (b, crit)]
                    })
                    .collect();
                for pair in dashes.chunks(2) {
                    chart.draw_series(LineSeries::new(pair.to_vec(), BLACK.mix(0.7)))?;
                }
                chart
                    .draw_series(LineSeries::new(Vec::<(f64, f64)>::new(), BLACK.mix(0.7)))?
                    .label(format!(
                        "critical value {:.2} ({} % confidence set)",
                        crit,
                        100.0 * s.model.level
                    ))
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.mix(0.7)));
                legend(&mut chart, SeriesLabelPosition::UpperRight)?;
                Ok(())
            })?;
            Some((format!("lr_{}.svg", step.k), text))
        })
        .collect()
}

/// `sweep_<key>.svg` for each swept key: the pooled indirect effect of
/// every point, with its headline interval, against the key's value
/// (numeric values on their axis; others in point order), one line per
/// combination of the other swept keys' values.
pub fn sweep(
    keys: &[String],
    points: &[(Vec<(String, toml::Value)>, &Summary)],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in keys {
        let rows = sweep_rows(key, points);
        if rows.is_empty() {
            continue;
        }
        if let Some(text) = sweep_plot(key, &rows) {
            let slug: String = key
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            out.push((format!("sweep_{slug}.svg"), text));
        }
    }
    out
}

/// One point of a sweep along one key.
struct SweepRow {
    /// The key's value as the table prints it.
    label: String,
    /// The key's value, when a number.
    x: Option<f64>,
    estimate: f64,
    interval: Option<(f64, f64)>,
    /// The other swept keys' values: the line the point is on.
    others: String,
}

/// The points of a sweep along `key` (those that swept it and have a pooled
/// indirect effect), in point order.
fn sweep_rows(key: &str, points: &[(Vec<(String, toml::Value)>, &Summary)]) -> Vec<SweepRow> {
    points
        .iter()
        .filter_map(|(values, s)| {
            let v = values.iter().find(|(k, _)| k == key)?.1.clone();
            let x = match &v {
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::Float(f) => Some(*f),
                _ => None,
            };
            let estimate = s.effect("indirect")?.estimate;
            let interval = headline(&s.intervals, "indirect").map(|i| (i.lower, i.upper));
            let others = values
                .iter()
                .filter(|(k, _)| k != key)
                .map(|(k, v)| format!("{k} = {}", crate::study::sweep::cell(v)))
                .collect::<Vec<_>>()
                .join(", ");
            Some(SweepRow {
                label: crate::study::sweep::cell(&v),
                x,
                estimate,
                interval,
                others,
            })
        })
        .collect()
}

/// The SVG of a sweep along `key` (rows not empty).
fn sweep_plot(key: &str, rows: &[SweepRow]) -> Option<String> {
    let mut groups: Vec<&str> = Vec::new();
    for r in rows {
        if !groups.contains(&r.others.as_str()) {
            groups.push(&r.others);
        }
    }
    let numeric = rows.iter().all(|r| r.x.is_some());
    let xs: Vec<f64> = rows
        .iter()
        .enumerate()
        .map(|(k, r)| {
            if numeric {
                r.x.unwrap_or(0.0)
            } else {
                k as f64
            }
        })
        .collect();
    let (x0, x1) = padded(
        xs.iter().cloned().fold(f64::INFINITY, f64::min),
        xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let mut lo = 0.0f64;
    let mut hi = 0.0f64;
    for r in rows {
        lo = lo.min(r.estimate);
        hi = hi.max(r.estimate);
        if let Some((l, u)) = r.interval {
            lo = lo.min(l);
            hi = hi.max(u);
        }
    }
    let (lo, hi) = padded(lo, hi);
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    svg((WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("Indirect effect along {key}"), ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(x0..x1, lo..hi)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(key)
            .y_desc("indirect effect (a*b)")
            .light_line_style(WHITE);
        let formatter = |x: &f64| {
            let k = x.round();
            if (x - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < labels.len() {
                labels[k as usize].clone()
            } else {
                String::new()
            }
        };
        if !numeric {
            mesh.x_labels(labels.len()).x_label_formatter(&formatter);
        }
        mesh.draw()?;
        chart.draw_series(LineSeries::new([(x0, 0.0), (x1, 0.0)], BLACK.mix(0.5)))?;
        for (x, r) in xs.iter().zip(rows) {
            if let Some((l, u)) = r.interval {
                chart.draw_series(LineSeries::new(
                    [(*x, l), (*x, u)],
                    PALETTE[0].stroke_width(2),
                ))?;
            }
        }
        for (g, group) in groups.iter().enumerate() {
            let colour = PALETTE[g % PALETTE.len()];
            let mut line: Vec<(f64, f64)> = xs
                .iter()
                .zip(rows)
                .filter(|(_, r)| r.others == *group)
                .map(|(x, r)| (*x, r.estimate))
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            let series = chart.draw_series(LineSeries::new(line.clone(), colour.mix(0.6)))?;
            if !group.is_empty() {
                series.label(group.to_string()).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2))
                });
            }
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        }
        if groups.iter().any(|g| !g.is_empty()) {
            legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        }
        Ok(())
    })
}

/// `power.svg`: each method's rejection rate against n, one panel per (a,
/// b, c') of the study at its first level (at most 16 panels), with the
/// level's alpha and the target power dashed.
pub fn power(sim: &SimulationSummary) -> Option<(String, String)> {
    let level = *sim.levels.first()?;
    let mut combos: Vec<Cell> = Vec::new();
    for c in sim.cells.iter().filter(|c| c.level == level) {
        if !combos.iter().any(|k| k.same_effects(&c.parameters)) {
            combos.push(c.parameters);
        }
    }
    combos.truncate(16);
    let ns: Vec<u64> = sim.cells.iter().map(|c| c.parameters.n).collect();
    let (n_min, n_max) = (*ns.iter().min()?, *ns.iter().max()?);
    if n_min == n_max {
        return None;
    }
    let methods: Vec<String> = sim.cells.first()?.methods.keys().cloned().collect();
    let cols = (combos.len() as f64).sqrt().ceil() as usize;
    let rows = combos.len().div_ceil(cols);
    let target = sim.sample_size.first().map(|s| s.target_power);
    let text = svg((360 * cols as u32 + 40, 300 * rows as u32 + 70), |root| {
        let (title, body) = root.split_vertically(40);
        title.titled(
            &format!(
                "Rejection rate of H0: {} = 0 by method ({} DGP, {} datasets per cell, level {level})",
                combos[0].target_name(),
                sim.dgp,
                sim.datasets
            ),
            ("sans-serif", 17),
        )?;
        let panels = body.split_evenly((rows, cols));
        for (k, combo) in combos.iter().enumerate() {
            let mut cells: Vec<&crate::study::simulate::CellResult> = sim
                .cells
                .iter()
                .filter(|c| c.level == level && c.parameters.same_effects(combo))
                .collect();
            cells.sort_by_key(|c| c.parameters.n);
            let mut chart = ChartBuilder::on(&panels[k])
                .caption(combo.label(), ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(35)
                .y_label_area_size(40)
                .build_cartesian_2d(n_min as f64..n_max as f64, 0.0..1.0)?;
            chart
                .configure_mesh()
                .x_desc("n")
                .x_label_formatter(&|x: &f64| format!("{x:.0}"))
                .light_line_style(WHITE)
                .draw()?;
            let alpha = 1.0 - level;
            chart.draw_series(DashedLineSeries::new(
                [(n_min as f64, alpha), (n_max as f64, alpha)],
                4,
                4,
                BLACK.mix(0.4).stroke_width(1),
            ))?;
            if let Some(t) = target {
                chart.draw_series(DashedLineSeries::new(
                    [(n_min as f64, t), (n_max as f64, t)],
                    4,
                    4,
                    PALETTE[1].mix(0.6).stroke_width(1),
                ))?;
            }
            for (m, method) in methods.iter().enumerate() {
                let colour = PALETTE[m % PALETTE.len()];
                let series = chart.draw_series(LineSeries::new(
                    cells.iter().filter_map(|c| {
                        c.methods
                            .get(method)
                            .and_then(|r| Some((c.parameters.n as f64, r.rejection_rate?)))
                    }),
                    colour.stroke_width(2),
                ))?;
                if k == 0 {
                    series.label(method.as_str()).legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2))
                    });
                }
            }
            if k == 0 {
                legend(&mut chart, SeriesLabelPosition::LowerRight)?;
            }
        }
        Ok(())
    })?;
    Some(("power.svg".into(), text))
}

/// `conditional_indirect.svg`: a moderated model's conditional indirect
/// effect over the moderator's observed range with its percentile band,
/// the Johnson-Neyman boundaries (dashed) and the reported moderator
/// values (points).
pub fn conditional_indirect(s: &Summary) -> Option<(String, String)> {
    let md = s.moderation.as_ref()?;
    let jn = md.johnson_neyman.as_ref()?;
    let curve = &jn.curve;
    let lo = curve
        .iter()
        .map(|p| p.lower.min(p.estimate))
        .fold(0.0, f64::min);
    let hi = curve
        .iter()
        .map(|p| p.upper.max(p.estimate))
        .fold(0.0, f64::max);
    let (lo, hi) = padded(lo, hi);
    let [w0, w1] = jn.range;
    let points: Vec<(f64, f64)> = md
        .values
        .iter()
        .enumerate()
        .filter_map(|(k, v)| {
            let e = s.effect(&format!("conditional_indirect:{k}"))?;
            (v.value >= w0 && v.value <= w1).then_some((v.value, e.estimate))
        })
        .collect();
    let text = svg((WIDTH, HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Indirect effect via {} conditional on {}",
                    s.model.mediators.join(", "),
                    md.moderator
                ),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(w0..w1, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc(md.moderator.as_str())
            .y_desc("conditional indirect effect")
            .light_line_style(WHITE)
            .draw()?;
        band_and_curve(
            &mut chart,
            &curve
                .iter()
                .map(|p| (p.w, p.lower, p.upper))
                .collect::<Vec<_>>(),
            &format!("{} % {} band", 100.0 * jn.level, jn.method),
            curve.iter().map(|p| (p.w, p.estimate)).collect(),
            "a*b at W",
        )?;
        for (k, &b) in jn.boundaries.iter().enumerate() {
            let line = chart.draw_series(DashedLineSeries::new(
                [(b, lo), (b, hi)],
                6,
                4,
                PALETTE[1].stroke_width(2),
            ))?;
            if k == 0 {
                line.label("Johnson-Neyman boundary").legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], PALETTE[1].stroke_width(2))
                });
            }
        }
        if !points.is_empty() {
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, 4, PALETTE[2].filled())),
                )?
                .label("reported moderator values")
                .legend(|(x, y)| Circle::new((x + 9, y), 4, PALETTE[2].filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })?;
    Some(("conditional_indirect.svg".into(), text))
}

/// The pictures of one run's folder.
pub fn run_plots(s: &Summary) -> Vec<(String, String)> {
    [
        distribution(s),
        forest(s),
        sensitivity(s),
        conditional_indirect(s),
    ]
    .into_iter()
    .flatten()
    .collect()
}
