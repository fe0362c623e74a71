//! A resampling run: draws the replicates through an engine, aggregates
//! their statistics exactly (in memory, or streamed in two passes beyond the
//! memory budget), computes the jackknife for BCa, and turns the draws into
//! per-effect bootstrap moments, p-values and intervals.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::design::Design;
use crate::model::effect::EffectKey;
use crate::model::mediation::BootstrapStats;
use crate::model::mediation::{Analysis, Interval, TOTAL, equations};
use crate::model::moderation;
use crate::model::panel::Panel;
use crate::model::spec::FixedEffects;
pub use crate::resample::aggregate::Progress;
use crate::resample::aggregate::{Ordered, Source, aggregate};
use crate::resample::contrast::ContrastEngine;
use crate::resample::engine::{Engine, thread_pool};
use crate::resample::factory::{CpuRequest, cpu_engine};
use crate::resample::intervals::{Draws, Method, Tally, jackknife_acceleration};
use crate::resample::johnson_neyman::{JohnsonNeyman, johnson_neyman};
use crate::resample::scheme::{Asks, Scheme, WeightPlan, check_rules};
use crate::resample::spec::{ResampleSpec, SharedWeights, strata_of};
use crate::resample::wild::RestrictedTest;
use crate::study::backend::{self, Request};

/// The `resampling` block of summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResamplingSummary {
    pub scheme: String,
    /// Wild-bootstrap weight distribution, when the scheme has one.
    pub weights: Option<String>,
    pub replicates: u64,
    pub seed: u64,
    /// Where the replicates were computed (`backend`, `adapter`,
    /// `precision`, `fallback` in summary.json).
    #[serde(flatten)]
    pub engine: crate::resample::engine::Backend,
    pub strata: Option<String>,
    /// Replicates whose resample was degenerate (singular regressors); they
    /// are left out of every quantile and moment, and counted here.
    pub failed_replicates: u64,
    /// Wall-clock seconds of the resampling: printed and kept in
    /// manifest.json, not in summary.json, whose every byte a replay of the
    /// run reproduces.
    #[serde(skip)]
    pub seconds: f64,
    #[serde(skip)]
    pub replicates_per_second: f64,
}

/// What a resampling run adds to the summary.
#[derive(Debug, Clone)]
pub struct ResampleResult {
    pub effects: Vec<(String, BootstrapStats)>,
    pub intervals: Vec<Interval>,
    pub summary: ResamplingSummary,
    /// The leading replicates the caller asked to keep, as the aggregator
    /// saw them.
    pub kept: Replicates,
    /// A moderated model's Johnson-Neyman region (at the first level).
    pub johnson_neyman: Option<JohnsonNeyman>,
}

/// Replicates of a resampling, every effect of summary.json (less the
/// sensitivity curve's) in each: row-major, `keys.len()` values per
/// replicate, NaN where a replicate is degenerate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replicates {
    pub keys: Vec<String>,
    pub values: Vec<f64>,
}

impl Replicates {
    /// How many replicates are kept.
    pub fn len(&self) -> usize {
        self.values.len() / self.keys.len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values of effect `key`, replicate by replicate.
    pub fn column(&self, key: &str) -> Option<impl Iterator<Item = f64> + '_> {
        let at = self.keys.iter().position(|k| k == key)?;
        Some(self.values.chunks(self.keys.len()).map(move |row| row[at]))
    }
}

/// Refuse designs whose clusters cannot be resampled whole.
fn check_resamplable(design: &Design, panel: &Panel) -> Result<()> {
    if design.fixed_effects != FixedEffects::None && !panel.unit.nested_in(&panel.cluster) {
        return Err(Error::InvalidOption {
            option: "model.cluster".into(),
            message: format!(
                "resampling clusters of '{}' would split units of '{}' and break the unit fixed effects; \
                 cluster by the unit or by a column that nests units",
                panel.cluster.name, panel.unit.name
            ),
        });
    }
    Ok(())
}

/// The mediator part of a moderated model's keys: None with one mediator,
/// else each mediator's name.
fn moderated_names(mediators: &[String]) -> Vec<Option<String>> {
    match mediators.len() {
        1 => vec![None],
        _ => mediators.iter().cloned().map(Some).collect(),
    }
}

/// The (equation, design column) of a single-coefficient effect key: `a`,
/// `b`, `a:NAME`, `b:NAME`, `c`, `c_prime`, a chain's link `d:FROM:TO`, a
/// moderated model's `a3`, `b3`, `c3_prime`, the interaction's
/// `interaction`; None for derived effects.
fn coefficient_of(key: &str, mediators: &[String], design: &Design) -> Option<(usize, usize)> {
    let (l, m) = (design.layout, mediators.len());
    let key = EffectKey::parse(key, mediators)?;
    let j = key.mediator(mediators);
    let at = |name: &str| mediators.iter().position(|n| n == name);
    // A moderated or interaction model's mediator: named, or the only one.
    let stats = moderation::ModerationStats::of(design);
    let mediator = |n: &Option<String>| match n {
        Some(n) => at(n),
        None => (m == 1).then_some(0),
    };
    match key {
        EffectKey::A(_) => j.map(|j| (1 + j, l.treatment())),
        EffectKey::B(_) => j.map(|j| (m + 1, l.mediator(j))),
        EffectKey::C => Some((TOTAL, l.treatment())),
        EffectKey::CPrime => Some((m + 1, l.treatment())),
        EffectKey::D(from, to) => Some((1 + at(&to)?, l.mediator(at(&from)?))),
        EffectKey::A3(t, n) if t < stats.terms => {
            moderation::coefficients(design)[stats.a3(mediator(&n)?, t)]
        }
        EffectKey::B3(t, n) if t < stats.terms => {
            moderation::coefficients(design)[stats.b3(mediator(&n)?, t)]
        }
        EffectKey::C3Prime(t) if t < stats.terms => moderation::coefficients(design)[stats.c3(t)],
        EffectKey::Interaction(n) => moderation::coefficients(design)[stats.d(mediator(&n)?)],
        _ => None,
    }
}

/// The label-permutation test's p-values (`label_test`), its two sides
/// computed by the engine `spec.backend` asks for, like the run's
/// replicates.
pub fn label_test_p_values(
    test: &crate::resample::label_test::LabelPermutation,
    spec: &ResampleSpec,
) -> Result<Vec<Option<f64>>> {
    let side = |second: bool| {
        let plan = test.plan(second);
        let spec = ResampleSpec {
            scheme: plan.scheme,
            sensitivity: None,
            ..spec.clone()
        };
        backend::engine(
            &spec,
            Request {
                design: test.design(),
                fit: test.fit(),
                panel: None,
                seed: plan.seed,
                strata: None,
                studentize: false,
                shared: None,
            },
        )
        .map(|(engine, _)| engine)
    };
    let (first, second) = (side(false)?, side(true)?);
    let Some(store) = &spec.store else {
        return test.p_values([first.as_ref(), second.as_ref()], spec.replicates);
    };
    let sides = [
        store.0.stream(first.as_ref(), spec.replicates)?,
        store.0.stream(second.as_ref(), spec.replicates)?,
    ];
    if let Some(shard) = store.0.shard() {
        let (from, to) = shard.range(spec.replicates);
        for side in &sides {
            side.fill(from, to)?;
        }
        return Ok(vec![]);
    }
    test.p_values([&sides[0], &sides[1]], spec.replicates)
}

/// Resample the design and summarise the draws of every effect of
/// `analysis`; with `shared`, a group's design drawing the run's weights.
#[allow(clippy::too_many_arguments)]
pub fn resample(
    design: &Design,
    panel: &Panel,
    analysis: &Analysis,
    spec: &ResampleSpec,
    seed: u64,
    levels: &[f64],
    progress: Progress,
    shared: Option<&SharedWeights>,
    keep: u64,
) -> Result<ResampleResult> {
    resample_with(
        design, panel, analysis, spec, seed, levels, progress, shared, None, keep,
    )
}

/// [`resample`], its replicates from `given` where given (a simulation
/// study's stacked GPU batch: replicates 0 .. B of `spec.scheme` with
/// `seed`, the statistics the engine `spec` asks for would compute).
#[allow(clippy::too_many_arguments)]
pub fn resample_with(
    design: &Design,
    panel: &Panel,
    analysis: &Analysis,
    spec: &ResampleSpec,
    seed: u64,
    levels: &[f64],
    progress: Progress,
    shared: Option<&SharedWeights>,
    given: Option<&dyn Engine>,
    keep: u64,
) -> Result<ResampleResult> {
    // The jackknife deletes each of the model's own clusters: a group's
    // model has its own G replicates, not the run's.
    let shared = shared.filter(|_| spec.scheme != Scheme::Jackknife);
    let (replicates, strata) = checked_request(design, panel, spec, shared)?;
    let studentize = spec.methods.contains(&Method::Studentized);
    let chosen;
    let (engine, gpu): (&dyn Engine, _) = match given {
        Some(engine) => (engine, None),
        None => {
            chosen = backend::engine(
                spec,
                Request {
                    design,
                    fit: &analysis.fit,
                    panel: Some(panel),
                    seed,
                    strata: strata.as_deref(),
                    studentize,
                    shared,
                },
            )?;
            (chosen.0.as_ref(), chosen.1)
        }
    };
    let wild_tests = |engine: &dyn Engine| {
        // The tests run where the replicates ran, unless the GPU failed.
        let gpu = gpu.as_ref().filter(|_| engine.backend().fallback.is_none());
        wild_test_p_values(design, analysis, spec, seed, replicates, gpu)
    };
    let g = design.n_clusters;
    let studentized = engine.layout().studentized;
    // The jackknife's statistics sit where the replicates' do (the
    // tracked positions are the engine's): its layout is the same, the
    // replicate SEs of studentized intervals included, which move what
    // follows them (the sensitivity curve, a chain's or a moderated
    // model's statistics, the robustness values).
    let jackknife = || -> Result<(Box<dyn Engine + '_>, u64)> {
        let jplan = WeightPlan::new(Scheme::Jackknife, seed, g, None);
        let request = CpuRequest {
            design,
            fit: &analysis.fit,
            panel: None,
            batch: spec.batch,
            threads: spec.threads,
            studentize: studentized,
            robustness_values: spec.robustness_values,
            rho: spec.sensitivity.clone().unwrap_or_default(),
            cluster_map: None,
        };
        Ok((cpu_engine(request, jplan)? as Box<dyn Engine>, g as u64))
    };
    let done = summarise(
        engine,
        &jackknife,
        &tracked_effects(design, analysis, spec)?,
        &analysis.mediators,
        spec,
        replicates,
        levels,
        progress,
        &wild_tests,
        keep,
    )?;
    let mut effects = done.effects;
    // |a*b / c'| is never below zero: no test of a zero share (its
    // differences between groups are tested, in resample_contrast).
    let share = EffectKey::SuppressionShare.to_string();
    for (key, stats) in &mut effects {
        if *key == share {
            stats.p_value = None;
        }
    }
    // A region over a categorical W's levels means nothing.
    let continuous = design.moderation.as_ref().filter(|md| !md.categorical());
    let johnson_neyman = continuous.and_then(|md| {
        let estimate = |key: EffectKey| {
            analysis
                .effect(&key.to_string())
                .map_or(0.0, |e| e.estimate)
        };
        let paths: Vec<[f64; 4]> = moderated_names(&analysis.mediators)
            .into_iter()
            .map(|n| {
                [
                    estimate(EffectKey::A(n.clone())),
                    estimate(EffectKey::A3(0, n.clone())),
                    estimate(EffectKey::B(n.clone())),
                    estimate(EffectKey::B3(0, n)),
                ]
            })
            .collect();
        let level = levels.first().copied()?;
        johnson_neyman(&done.paths, &paths, md.w_shift, md.range, level)
    });
    Ok(ResampleResult {
        effects,
        intervals: done.intervals,
        johnson_neyman,
        summary: ResamplingSummary {
            scheme: spec.scheme.as_str().into(),
            weights: match spec.scheme {
                Scheme::Wild(w) => Some(w.as_str().into()),
                _ => None,
            },
            replicates,
            seed,
            engine: done.backend,
            strata: spec.strata.clone(),
            failed_replicates: done.failed,
            seconds: done.seconds,
            replicates_per_second: replicates as f64 / done.seconds.max(1e-9),
        },
        kept: done.kept,
    })
}

/// Check a resampling request before any work: the clusters resample
/// whole, B is positive, strata suit the scheme, and the scheme suits the
/// model and intervals (`check_rules`). Gives B (G for the jackknife) and
/// each cluster's stratum.
fn checked_request(
    design: &Design,
    panel: &Panel,
    spec: &ResampleSpec,
    shared: Option<&SharedWeights>,
) -> Result<(u64, Option<Vec<u32>>)> {
    check_resamplable(design, panel)?;
    let strata = match shared {
        Some(s) => s.strata.clone(),
        None => strata_of(panel, spec)?,
    };
    let replicates = if spec.scheme == Scheme::Jackknife {
        design.n_clusters as u64
    } else {
        spec.replicates
    };
    if replicates == 0 {
        return Err(Error::InvalidOption {
            option: "resampling.replicates".into(),
            message: "B = 0: ask for at least one replicate (10000 is a good start)".into(),
        });
    }
    if strata.is_some() && !matches!(spec.scheme, Scheme::Pairs | Scheme::Bayes) {
        return Err(Error::InvalidOption {
            option: "resampling.strata".into(),
            message: format!(
                "stratified resampling applies to the pairs and bayes schemes, not {}",
                spec.scheme.as_str()
            ),
        });
    }
    check_rules(
        spec.scheme,
        Asks {
            studentized: spec.methods.contains(&Method::Studentized),
            sensitivity: spec.sensitivity.is_some(),
            wild_tests: spec.wild_tests,
            ..Asks::model(design)
        },
    )?;
    if spec.sensitivity.is_some() {
        crate::model::sensitivity::check(design)?;
    }
    Ok((replicates, strata))
}

/// The wild scheme's restricted (null-imposed, WCR) bootstrap-t p-values
/// of the single coefficients, from the same weights as the unrestricted
/// replicates: on `gpu` where given (the CPU takes over a test it fails).
/// None for other schemes or without `spec.wild_tests`.
fn wild_test_p_values(
    design: &Design,
    analysis: &Analysis,
    spec: &ResampleSpec,
    seed: u64,
    replicates: u64,
    gpu: Option<&backend::GpuUse>,
) -> Result<Vec<(String, f64)>> {
    let mut wcr = Vec::new();
    if !(matches!(spec.scheme, Scheme::Wild(_)) && spec.wild_tests) {
        return Ok(wcr);
    }
    let pool = thread_pool(spec.threads, spec.batch)?;
    let eqs = equations(design);
    let plan = WeightPlan::new(spec.scheme, seed, design.n_clusters, None);
    for (key, _) in &analysis.effects {
        let Some((e, col)) = coefficient_of(key, &analysis.mediators, design) else {
            continue;
        };
        let test = RestrictedTest::new(design, &analysis.fit, e, &eqs[e], col)?;
        let p = match gpu.map(|u| u.wild_p_value(&test, &plan, replicates)) {
            Some(Ok(p)) => p,
            Some(Err(err)) => {
                crate::notices::notify(format!(
                    "warning: the GPU failed the wild test of {key} ({err}); computing it on the CPU"
                ));
                test.p_value(&plan, replicates, spec.batch, &pool)
            }
            None => test.p_value(&plan, replicates, spec.batch, &pool),
        };
        wcr.push((key.clone(), p));
    }
    Ok(wcr)
}

/// The effects whose replicates are summarised: the analysis's, then with
/// a sensitivity analysis the ACME at each rho as `sensitivity:K` (its
/// estimate the full sample's).
fn tracked_effects(
    design: &Design,
    analysis: &Analysis,
    spec: &ResampleSpec,
) -> Result<Vec<(String, crate::model::mediation::Effect)>> {
    let mut effects = analysis.effects.clone();
    if spec.robustness_values {
        let gram = design.total_packed();
        let mut scratch = Vec::new();
        let orders = crate::model::confounding::replicate_orders(design, &analysis.fit);
        effects.extend(orders.iter().enumerate().map(|(k, order)| {
            (
                EffectKey::RobustnessValue(k).to_string(),
                crate::model::mediation::Effect {
                    estimate: crate::model::confounding::robustness_of_gram(
                        &gram,
                        design.q(),
                        order,
                        &mut scratch,
                    ),
                    se: None,
                    p_value: None,
                    bootstrap: None,
                },
            )
        }));
    }
    if let Some(rho) = &spec.sensitivity {
        let curve = crate::model::sensitivity::full_sample(design, analysis, rho)?;
        effects.extend(curve.into_iter().enumerate().map(|(k, acme)| {
            (
                EffectKey::Sensitivity(k).to_string(),
                crate::model::mediation::Effect {
                    estimate: acme,
                    se: None,
                    p_value: None,
                    bootstrap: None,
                },
            )
        }));
    }
    Ok(effects)
}

/// What summarising a run's draws gives.
struct Summarised {
    effects: Vec<(String, BootstrapStats)>,
    intervals: Vec<Interval>,
    failed: u64,
    seconds: f64,
    backend: crate::resample::engine::Backend,
    kept: Replicates,
    /// A moderated model's (a1, a3, b1, b3) of every replicate.
    paths: Vec<[f64; 4]>,
}

/// One side of a between-group contrast: the group's design and fit, and
/// its clusters' positions among the pooled run's.
pub struct GroupSide<'a> {
    pub design: &'a Design,
    pub fit: &'a crate::model::estimate::SystemFit,
    pub map: Vec<usize>,
}

/// The bootstrap of the differences `effects` (first group minus second,
/// keys as in summary.json) between two groups' models, both drawing the
/// pooled run's weights (`shared` gives the pooled clusters and strata):
/// moments, p-values and the intervals of `spec.methods` (studentized only
/// for `independent` groups, which share no cluster: their replicate SEs
/// combine as `sqrt(se_1^2 + se_2^2)`), BCa's acceleration from the
/// delete-one jackknife over the pooled clusters (on the CPU engine). The
/// replicates run where `spec.backend` says, as the groups' own models do.
#[allow(clippy::too_many_arguments)]
pub fn resample_contrast(
    sides: [GroupSide; 2],
    independent: bool,
    n_clusters: usize,
    strata: Option<&[u32]>,
    effects: &[(String, crate::model::mediation::Effect)],
    mediators: &[String],
    spec: &ResampleSpec,
    seed: u64,
    levels: &[f64],
    progress: Progress,
) -> Result<(Vec<(String, BootstrapStats)>, Vec<Interval>)> {
    if matches!(spec.scheme, Scheme::Permutation | Scheme::Jackknife) {
        return Ok((vec![], vec![]));
    }
    let mut spec = spec.clone();
    spec.sensitivity = None;
    if !independent {
        spec.methods.retain(|&m| m != Method::Studentized);
    }
    let studentize = spec.methods.contains(&Method::Studentized);
    // Each side draws the run's weights: through its cluster map on the
    // CPU, on its statistics spread over the run's clusters on the GPU.
    let shared: Vec<SharedWeights> = sides
        .iter()
        .map(|side| SharedWeights {
            n_clusters,
            strata: strata.map(<[u32]>::to_vec),
            map: side.map.clone(),
        })
        .collect();
    let mut engines = Vec::new();
    for (side, shared) in sides.iter().zip(&shared) {
        let (engine, _) = backend::engine(
            &spec,
            Request {
                design: side.design,
                fit: side.fit,
                panel: None,
                seed,
                strata,
                studentize,
                shared: Some(shared),
            },
        )?;
        engines.push(engine);
    }
    let engine = first_minus_second(engines);
    // BCa's jackknife deletes each of the run's clusters, on the CPU, with
    // the replicates' layout (see `resample_model`).
    let studentized = engine.layout().studentized;
    let jackknife = || -> Result<(Box<dyn Engine + '_>, u64)> {
        let jplan = WeightPlan::new(Scheme::Jackknife, seed, n_clusters, None);
        let mut engines: Vec<Box<dyn Engine>> = Vec::new();
        for side in &sides {
            let request = CpuRequest {
                design: side.design,
                fit: side.fit,
                panel: None,
                batch: spec.batch,
                threads: spec.threads,
                studentize: studentized,
                robustness_values: false,
                rho: vec![],
                cluster_map: Some(side.map.clone()),
            };
            engines.push(cpu_engine(request, jplan.clone())?);
        }
        Ok((Box::new(first_minus_second(engines)), n_clusters as u64))
    };
    let done = summarise(
        &engine,
        &jackknife,
        effects,
        mediators,
        &spec,
        spec.replicates,
        levels,
        progress,
        &|_| Ok(vec![]),
        0,
    )?;
    Ok((done.effects, done.intervals))
}

/// The contrast engine of the two sides' engines, in order.
fn first_minus_second<'a>(mut engines: Vec<Box<dyn Engine + 'a>>) -> ContrastEngine<'a> {
    let second = engines.pop().expect("two sides");
    let first = engines.pop().expect("two sides");
    ContrastEngine::new(first, second)
}

/// Summarise replicates `0..replicates` of `engine` for every effect of
/// `effects_in` (keys as in summary.json, statistics found through the
/// engine's layout): moments, p-values (`wild_tests` may supply some) and
/// the intervals of `spec.methods` at `levels`; BCa's acceleration from the
/// engine `jackknife` builds (with its number of replicates); the first
/// `keep` replicates' effects are handed back as they stream past.
#[allow(clippy::too_many_arguments)]
fn summarise<'a>(
    engine: &dyn Engine,
    jackknife: &dyn Fn() -> Result<(Box<dyn Engine + 'a>, u64)>,
    effects_in: &[(String, crate::model::mediation::Effect)],
    mediators: &[String],
    spec: &ResampleSpec,
    replicates: u64,
    levels: &[f64],
    progress: Progress,
    wild_tests: &dyn Fn(&dyn Engine) -> Result<Vec<(String, f64)>>,
    keep: u64,
) -> Result<Summarised> {
    // Through the run's store: a checkpoint or merge serves stored
    // replicates; a shard computes and stores its part, and summarises
    // nothing (the merge does).
    let stored;
    let engine: &dyn Engine = match &spec.store {
        Some(store) => {
            stored = store.0.stream(engine, replicates)?;
            if let Some(shard) = store.0.shard() {
                let (from, to) = shard.range(replicates);
                stored.fill(from, to)?;
                return Ok(Summarised {
                    effects: vec![],
                    intervals: vec![],
                    failed: 0,
                    seconds: 0.0,
                    backend: stored.backend(),
                    kept: Replicates::default(),
                    paths: vec![],
                });
            }
            &stored
        }
        None => engine,
    };
    let permutation = spec.scheme == Scheme::Permutation;
    let tracked = Tracked::new(effects_in, mediators, engine.layout());
    let started = Instant::now();
    // BCa needs the jackknife before the quantiles are known.
    let acceleration = if spec.methods.contains(&Method::Bca) && !permutation {
        tracked.accelerations(jackknife)?
    } else {
        vec![None; tracked.sources.len()]
    };
    let methods: Vec<Method> = if permutation {
        vec![]
    } else {
        spec.methods.clone()
    };
    let alphas = |i: usize, tally: &Tally| -> Vec<f64> {
        let is_student = i >= tracked.n_effects;
        let accel = acceleration[i];
        methods
            .iter()
            .filter(|&&m| (m == Method::Studentized) == is_student)
            .flat_map(|&m| levels.iter().flat_map(move |&l| tally.alphas(m, l, accel)))
            .collect()
    };
    let mut kept = Keeper::new(
        effects_in,
        mediators,
        &tracked.sources,
        keep.min(replicates),
    );
    // A conditional indirect effect that depends on W: its Johnson-Neyman
    // region needs every replicate's paths (32 bytes each).
    let layout = engine.layout();
    let moderation = layout.moderation;
    if spec.johnson_neyman
        && (moderation.a || moderation.b)
        && !moderation.categorical
        && !permutation
    {
        let names = moderated_names(mediators);
        crate::resources::check_memory(
            "resampling.replicates",
            &format!("the paths of {replicates} replicates (Johnson-Neyman region)"),
            replicates as f64 * 32.0 * names.len() as f64,
        )?;
        let paths = names
            .into_iter()
            .enumerate()
            .map(|(j, n)| {
                [
                    Some(layout.a(j)),
                    layout.position(&EffectKey::A3(0, n.clone()), mediators),
                    Some(layout.b(j)),
                    layout.position(&EffectKey::B3(0, n), mediators),
                ]
            })
            .collect::<Vec<_>>();
        kept.path_rows.reserve(replicates as usize * paths.len());
        kept.paths = Some(paths);
    }
    let (columns, failed) = aggregate(
        engine,
        replicates,
        &tracked.sources,
        &tracked.t0s,
        &alphas,
        spec.memory,
        progress,
        &mut |row| kept.tap(row),
    )?;

    let wcr = wild_tests(engine)?;
    let seconds = started.elapsed().as_secs_f64();
    let backend = engine.backend();

    let mut effects = Vec::new();
    let mut intervals = Vec::new();
    for (i, (key, effect)) in effects_in.iter().enumerate() {
        let col = &columns[i];
        if col.tally.n < 2 {
            continue;
        }
        let d = tracked.draws(i, effect, &columns, acceleration[i]);
        let p_value = p_value_of(key, &d, permutation, &wcr, mediators);
        effects.push((
            key.clone(),
            BootstrapStats {
                mean: d.mean(),
                sd: d.sd,
                p_value,
                non_finite: replicates
                    .saturating_sub(failed)
                    .saturating_sub(col.tally.n as u64),
            },
        ));
        intervals.extend(d.intervals(key, &methods, levels));
    }
    Ok(Summarised {
        effects,
        intervals,
        failed,
        seconds,
        backend,
        kept: kept.replicates,
        paths: kept.path_rows,
    })
}

/// Effect `key`'s p-value: the permutation test's (permuting the
/// treatment imposes a = c = c' = 0, so also every indirect effect = 0,
/// and a moderated model's a3 = c3' = 0 and every conditional effect = 0,
/// the interaction model's X*M coefficient = 0, but says nothing about b,
/// b3 (M*W), a chain's links or the proportion mediated), else the wild
/// scheme's restricted test where it has one, else the bootstrap's.
fn p_value_of(
    key: &str,
    d: &Draws,
    permutation: bool,
    wcr: &[(String, f64)],
    mediators: &[String],
) -> Option<f64> {
    if permutation {
        let untested = matches!(
            EffectKey::parse(key, mediators),
            Some(
                EffectKey::B(_)
                    | EffectKey::B3(..)
                    | EffectKey::D(..)
                    | EffectKey::ProportionMediated
            )
        );
        return (!untested).then(|| d.permutation_p_value());
    }
    Some(
        wcr.iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| d.p_value(), |(_, p)| *p),
    )
}

/// The leading replicates' effects (every effect but the sensitivity
/// curve's), kept as the aggregator streams them past.
struct Keeper {
    columns: Vec<usize>,
    keep: usize,
    replicates: Replicates,
    /// A moderated model's (a1, a3, b1, b3) statistics of each mediator
    /// (a3 or b3 None where not moderated) and every replicate's values of
    /// them (one mediator's after another), for the Johnson-Neyman region.
    paths: Option<Vec<[Option<usize>; 4]>>,
    path_rows: Vec<[f64; 4]>,
}

impl Keeper {
    fn new(
        effects: &[(String, crate::model::mediation::Effect)],
        mediators: &[String],
        sources: &[Source],
        keep: u64,
    ) -> Keeper {
        let (keys, columns) = effects
            .iter()
            .zip(sources)
            .filter(|((k, _), _)| {
                !matches!(
                    EffectKey::parse(k, mediators),
                    Some(EffectKey::Sensitivity(_) | EffectKey::RobustnessValue(_))
                )
            })
            .map(|((k, _), source)| match source {
                Source::Stat(s) => (k.clone(), *s),
                Source::Student { .. } => unreachable!("effects come first"),
            })
            .unzip();
        let keep = keep as usize;
        let columns: Vec<usize> = columns;
        Keeper {
            replicates: Replicates {
                keys,
                values: Vec::with_capacity(keep * columns.len()),
            },
            columns,
            keep,
            paths: None,
            path_rows: Vec::new(),
        }
    }

    /// One replicate's statistics, in replicate order.
    fn tap(&mut self, row: &[f64]) {
        if let Some(paths) = &self.paths {
            for at in paths {
                self.path_rows.push(at.map(|s| s.map_or(0.0, |s| row[s])));
            }
        }
        if self.replicates.values.len() < self.keep * self.columns.len() {
            let values = &mut self.replicates.values;
            values.extend(self.columns.iter().map(|&s| row[s]));
        }
    }
}

/// The quantities the aggregator tracks: each effect's statistic, then
/// (studentized) the t* of each indirect effect and contrast.
struct Tracked {
    sources: Vec<Source>,
    /// Each source's point estimate (0 for a t*).
    t0s: Vec<f64>,
    n_effects: usize,
    /// Effect i's t* source, if it has one.
    student: Vec<Option<usize>>,
}

impl Tracked {
    fn new(
        effects: &[(String, crate::model::mediation::Effect)],
        mediators: &[String],
        layout: crate::model::replicate::StatLayout,
    ) -> Tracked {
        let mut sources: Vec<Source> = Vec::new();
        let mut t0s: Vec<f64> = Vec::new();
        for (k, e) in effects {
            let s = layout
                .index_of(k, mediators)
                .expect("every effect has a statistic");
            sources.push(Source::Stat(s));
            t0s.push(e.estimate);
        }
        let n_effects = sources.len();
        let mut student = vec![None; n_effects];
        if layout.studentized {
            for (i, (_, e)) in effects.iter().enumerate() {
                // Indirect effects, their contrasts and a moderated or
                // interaction model's effects have an SE per replicate.
                if let Source::Stat(stat) = sources[i]
                    && let Some(se) = layout.se_of(stat)
                {
                    student[i] = Some(sources.len());
                    sources.push(Source::Student {
                        stat,
                        se,
                        t0: e.estimate,
                    });
                    t0s.push(0.0);
                }
            }
        }
        Tracked {
            sources,
            t0s,
            n_effects,
            student,
        }
    }

    /// Effect i's draws: its column, and with studentized intervals its
    /// t* column and full-sample SE.
    fn draws<'c>(
        &self,
        i: usize,
        effect: &crate::model::mediation::Effect,
        columns: &'c [crate::resample::aggregate::Column],
        acceleration: Option<f64>,
    ) -> Draws<'c> {
        let col = &columns[i];
        Draws {
            tally: col.tally,
            sd: col.sd,
            order: col.order(),
            acceleration,
            studentized: match (self.student[i], effect.se) {
                (Some(s), Some(se)) if columns[s].tally.n > 0 => {
                    Some((se, columns[s].tally.n, columns[s].order()))
                }
                _ => None,
            },
        }
    }

    /// BCa's acceleration of each source from the delete-one jackknife
    /// the engine `jackknife` builds (none for a t*).
    fn accelerations<'a>(
        &self,
        jackknife: &dyn Fn() -> Result<(Box<dyn Engine + 'a>, u64)>,
    ) -> Result<Vec<Option<f64>>> {
        let (jengine, n_jack) = jackknife()?;
        let (cols, _) = aggregate(
            jengine.as_ref(),
            n_jack,
            &self.sources[..self.n_effects],
            &self.t0s[..self.n_effects],
            &|_, _| vec![],
            u64::MAX,
            &|_, _| Ok(()),
            &mut |_| {},
        )?;
        Ok(cols
            .iter()
            .map(|c| match &c.ordered {
                Ordered::Sorted(v) => Some(jackknife_acceleration(v)),
                Ordered::Ranks(_) => None,
            })
            .chain(std::iter::repeat(None))
            .take(self.sources.len())
            .collect())
    }
}
