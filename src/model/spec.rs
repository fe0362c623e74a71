//! The validated plan of a run: which columns play which role, the fixed
//! effects, the cluster variable, and the inference settings. Built from the
//! command line, checked once here, read by every later stage.

use crate::error::{Error, Result};
use crate::model::serial::MAX_MEDIATORS;

/// Fixed effects absorbed before estimation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FixedEffects {
    /// Pooled OLS with an intercept.
    None,
    /// Unit (city) effects.
    Unit,
    /// Unit and period effects (two-way fixed effects).
    #[default]
    UnitTime,
    /// Unit effects and group-by-period effects (`unit+GROUP^time`, e.g.
    /// `city+province^year`), the groups nesting the units; the group
    /// column is `ModelSpec::cell_group`.
    UnitGroupTime,
}

spelled!(FixedEffects);

impl FixedEffects {
    /// The spelling used on the command line and in summary.json.
    pub fn as_str(self) -> &'static str {
        match self {
            FixedEffects::None => "none",
            FixedEffects::Unit => "unit",
            FixedEffects::UnitTime => "unit+time",
            FixedEffects::UnitGroupTime => "unit+group^time",
        }
    }

    /// Parse a config's `model.fixed_effects`: `none`, `unit`, `unit+time`,
    /// or `unit+GROUP^time` (the unit and the period may be spelled by
    /// their columns, `city+province^year`), with GROUP's column.
    pub fn parse_with_group(s: &str, unit: &str, time: &str) -> Result<(Self, Option<String>)> {
        let t = s.trim();
        let Some((first, cell)) = t.split_once('+') else {
            return Self::parse(t).map(|fe| (fe, None));
        };
        let Some((group, period)) = cell.split_once('^') else {
            return Self::parse(t).map(|fe| (fe, None));
        };
        let (first, group, period) = (first.trim(), group.trim(), period.trim());
        let bad = |message: String| {
            Err(Error::InvalidOption {
                option: "model.fixed_effects".into(),
                message,
            })
        };
        if first != "unit" && first != unit {
            return bad(format!(
                "'{t}': interacted effects are unit+GROUP^time; '{first}' is not the unit \
                 ('unit' or its column '{unit}')"
            ));
        }
        if period != "time" && period != "period" && period != time {
            return bad(format!(
                "'{t}': interacted effects are unit+GROUP^time; '{period}' is not the period \
                 ('time' or its column '{time}')"
            ));
        }
        if group.is_empty() || group == unit || group == time {
            return bad(format!(
                "'{t}': GROUP in unit+GROUP^time is a column grouping the units, such as a \
                 province; got '{group}'"
            ));
        }
        Ok((FixedEffects::UnitGroupTime, Some(group.to_string())))
    }

    /// Parse `none`, `unit` or `unit+time`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "none" => Ok(FixedEffects::None),
            "unit" => Ok(FixedEffects::Unit),
            "unit+time" | "unit+period" | "twoway" => Ok(FixedEffects::UnitTime),
            other => Err(Error::InvalidOption {
                option: "model.fixed_effects".into(),
                message: format!("'{other}' is not one of none, unit, unit+time"),
            }),
        }
    }

    /// Whether unit effects are absorbed.
    pub fn has_unit(self) -> bool {
        !matches!(self, FixedEffects::None)
    }

    /// Whether period effects are absorbed (as period dummies).
    pub fn has_time(self) -> bool {
        matches!(self, FixedEffects::UnitTime)
    }

    /// Whether group-by-period effects are absorbed.
    pub fn has_cells(self) -> bool {
        matches!(self, FixedEffects::UnitGroupTime)
    }
}

/// Column roles and model options.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub unit: String,
    pub time: String,
    pub outcome: String,
    pub treatment: String,
    pub mediators: Vec<String>,
    pub controls: Vec<String>,
    /// Excluded instruments of the treatment (two-stage least squares);
    /// empty for the ordinary least-squares model.
    pub instruments: Vec<String>,
    /// Excluded instruments of the mediators: the outcome equation's
    /// mediators are then endogenous and fitted by two-stage least squares
    /// (as R's `mediation::mediate_tsls`); empty: least squares.
    pub mediator_instruments: Vec<String>,
    /// Categorical columns carried with the panel for group analyses.
    pub groups: Vec<String>,
    /// Cluster variable for inference; the unit column unless set.
    pub cluster: String,
    pub fixed_effects: FixedEffects,
    /// GROUP of `unit+GROUP^time` fixed effects (`FixedEffects::UnitGroupTime`).
    pub cell_group: Option<String>,
    /// A moderator of the paths (conditional process analysis), if any.
    pub moderation: Option<Moderation>,
    /// The treatment-mediator interaction in the outcome equation, if any.
    pub interaction: Option<Interaction>,
    /// The mediators form a chain in their order (serial mediation, Hayes'
    /// PROCESS model 6): each is regressed on the treatment and the
    /// mediators before it (`crate::model::serial`).
    pub serial: bool,
}

/// The outcome equation's treatment-mediator interaction, Y ~ X + M + X*M
/// (`crate::model::moderation`): natural direct and indirect effects
/// (VanderWeele and Vansteelandt 2009) of moving X from x0 to x1.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Interaction {
    /// (x0, x1); None: the mean to the mean plus one SD.
    pub contrast: Option<(f64, f64)>,
}

/// A moderator W of some of the model's paths (Hayes' PROCESS models 7, 14,
/// 58, 59 and their kin): each moderated path's equation gains W and the
/// product of W with the path's cause, formed on the data before the fixed
/// effects are absorbed (`crate::model::moderation`).
#[derive(Debug, Clone, PartialEq)]
pub struct Moderation {
    /// The moderator's column.
    pub moderator: String,
    /// Moderated paths: X -> M (a), M -> Y (b), X -> Y (direct).
    pub a: bool,
    pub b: bool,
    pub direct: bool,
    /// Mean-centre X and W before forming the products (PROCESS `center`):
    /// a, b and c' are then the effects at the moderator's mean.
    pub center: bool,
    /// The moderator values the conditional effects are given at.
    pub at: ModeratorValues,
}

/// Where conditional effects are evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum ModeratorValues {
    /// Percentiles of W in the estimation sample (PROCESS: 16, 50, 84).
    Percentiles(Vec<f64>),
    /// The mean less one SD, the mean, the mean plus one SD.
    MeanSd,
    /// Values of W as given.
    Values(Vec<f64>),
    /// W is categorical (PROCESS `mcw` indicator coding): each of its
    /// distinct values is a level, the lowest the reference; every
    /// moderated equation gains one indicator per other level and its
    /// products, and the conditional effects are given at each level.
    Levels,
}

impl Default for ModeratorValues {
    fn default() -> Self {
        ModeratorValues::Percentiles(vec![16.0, 50.0, 84.0])
    }
}

impl Moderation {
    /// Hayes' PROCESS model number of the moderated paths (with several mediators,
    /// the same paths moderated for each).
    pub fn process_model(&self) -> u8 {
        match (self.a, self.b, self.direct) {
            (true, false, false) => 7,
            (false, true, false) => 14,
            (true, true, false) => 58,
            (true, true, true) => 59,
            (true, false, true) => 8,
            (false, true, true) => 15,
            _ => 5,
        }
    }

    /// Check the paths and the values, and the combinations not built yet.
    fn validate(&self, instrumented: bool) -> Result<()> {
        let bad = |option: &str, message: String| {
            Err(Error::InvalidOption {
                option: option.into(),
                message,
            })
        };
        if !(self.a || self.b || self.direct) {
            return bad(
                "model.moderated",
                "name at least one moderated path: a, b or direct".into(),
            );
        }
        if instrumented {
            return bad(
                "model.moderator",
                "a moderated model with an instrumented treatment (model.instrument) is not \
                 supported"
                    .into(),
            );
        }
        match &self.at {
            ModeratorValues::Percentiles(p)
                if p.is_empty() || p.iter().any(|v| !(*v > 0.0 && *v < 100.0)) =>
            {
                bad(
                    "model.at",
                    format!("percentiles must lie strictly between 0 and 100; got {p:?}"),
                )
            }
            ModeratorValues::Values(v) if v.is_empty() || v.iter().any(|x| !x.is_finite()) => bad(
                "model.at",
                format!("give at least one finite moderator value; got {v:?}"),
            ),
            ModeratorValues::Levels if self.center => bad(
                "model.center",
                "a categorical moderator (at = \"levels\") is coded as indicators, which \
                 are not centred; set center = false"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// Whether W is categorical (`ModeratorValues::Levels`).
    pub fn categorical(&self) -> bool {
        self.at == ModeratorValues::Levels
    }

    /// The moderated paths as config spells them.
    pub fn paths(&self) -> Vec<&'static str> {
        [(self.a, "a"), (self.b, "b"), (self.direct, "direct")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect()
    }
}

/// Settings of the analytic inference for the indirect effect.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceSpec {
    /// Confidence levels, each in (0, 1).
    pub levels: Vec<f64>,
    /// Number of draws of the Monte Carlo (parametric) interval.
    pub mc_draws: u64,
    /// Seed of every random draw of the run.
    pub seed: u64,
}

impl Default for InferenceSpec {
    fn default() -> Self {
        InferenceSpec {
            levels: vec![0.95],
            mc_draws: 100_000,
            seed: 1,
        }
    }
}

impl ModelSpec {
    /// The one-mediator model of columns `x` (treatment), `m` (mediator)
    /// and `y` (outcome) with `controls`, clustered by the unit: the shape
    /// of the simulation studies' datasets and of several test fixtures.
    pub fn xmy(
        unit: &str,
        time: &str,
        controls: &[&str],
        fixed_effects: FixedEffects,
    ) -> ModelSpec {
        ModelSpec {
            unit: unit.into(),
            time: time.into(),
            outcome: "y".into(),
            treatment: "x".into(),
            mediators: vec!["m".into()],
            controls: controls.iter().map(|c| c.to_string()).collect(),
            instruments: vec![],
            mediator_instruments: vec![],
            groups: vec![],
            cluster: unit.into(),
            fixed_effects,
            cell_group: None,
            moderation: None,
            interaction: None,
            serial: false,
        }
    }

    /// The fixed effects as summary.json and the report spell them:
    /// `none`, `unit`, `unit+time` or `unit+GROUP^time`.
    pub fn fixed_effects_label(&self) -> String {
        match (&self.fixed_effects, &self.cell_group) {
            (FixedEffects::UnitGroupTime, Some(g)) => format!("unit+{g}^time"),
            (fe, _) => fe.as_str().to_string(),
        }
    }

    /// Check that roles are filled and no column plays two numeric roles;
    /// errors name the config key of the role.
    pub fn validate(&self) -> Result<()> {
        let bad = |option: &str, message: String| {
            Err(Error::InvalidOption {
                option: option.into(),
                message,
            })
        };
        for (option, value) in [
            ("data.unit", &self.unit),
            ("data.time", &self.time),
            ("model.outcome", &self.outcome),
            ("model.treatment", &self.treatment),
            ("model.cluster", &self.cluster),
        ] {
            if value.trim().is_empty() {
                return bad(option, "a column name is required".into());
            }
        }
        if self.fixed_effects.has_cells() != self.cell_group.is_some() {
            return bad(
                "model.fixed_effects",
                "interacted effects name their group: unit+GROUP^time, e.g. city+province^year"
                    .into(),
            );
        }
        if self.mediators.is_empty() {
            return bad(
                "model.mediators",
                "at least one mediator column is required".into(),
            );
        }
        let mut seen: Vec<(&str, &str)> = Vec::new();
        let key = |role: &str| match role {
            "mediator" => "model.mediators",
            "control" => "model.controls",
            "instrument" => "model.instrument",
            "mediator instrument" => "model.mediator_instrument",
            "moderator" => "model.moderator",
            "unit" => "data.unit",
            "time" => "data.time",
            "outcome" => "model.outcome",
            _ => "model.treatment",
        };
        let numeric = std::iter::once(("outcome", &self.outcome))
            .chain(std::iter::once(("treatment", &self.treatment)))
            .chain(self.mediators.iter().map(|m| ("mediator", m)))
            .chain(self.controls.iter().map(|c| ("control", c)))
            .chain(self.instruments.iter().map(|z| ("instrument", z)))
            .chain(
                self.mediator_instruments
                    .iter()
                    .map(|z| ("mediator instrument", z)),
            )
            .chain(self.moderation.iter().map(|w| ("moderator", &w.moderator)))
            .chain(std::iter::once(("unit", &self.unit)))
            .chain(std::iter::once(("time", &self.time)));
        for (role, name) in numeric {
            if let Some((first, _)) = seen.iter().find(|(_, n)| *n == name.as_str()) {
                return bad(
                    key(role),
                    format!(
                        "column '{name}' is already used as the {first}; each column can play one role"
                    ),
                );
            }
            seen.push((role, name));
        }
        if !self.mediator_instruments.is_empty() {
            let refuse = |message: String| bad("model.mediator_instrument", message);
            let (k, m) = (self.mediator_instruments.len(), self.mediators.len());
            if k < m {
                return refuse(format!(
                    "{m} instrumented mediators need at least {m} excluded instruments; \
                     {k} given"
                ));
            }
            if self.serial || self.moderation.is_some() || self.interaction.is_some() {
                return refuse(
                    "an instrumented mediator is supported in the plain model with parallel \
                     mediators, not with model.serial, model.moderator or model.interaction"
                        .into(),
                );
            }
        }
        if self.serial {
            let refuse = |message: String| bad("model.serial", message);
            let m = self.mediators.len();
            if !(2..=MAX_MEDIATORS).contains(&m) {
                return refuse(format!(
                    "a chain of mediators has 2 to {MAX_MEDIATORS}, in order; this one has {m}"
                ));
            }
            if self.moderation.is_some() || self.interaction.is_some() {
                return refuse(
                    "serial mediators with a moderator or the treatment-mediator interaction \
                     (model.moderator, model.interaction) are not supported; fit one or the other"
                        .into(),
                );
            }
            if !self.instruments.is_empty() {
                return refuse(
                    "serial mediators with an instrumented treatment (model.instrument) are not \
                     supported yet"
                        .into(),
                );
            }
        }
        if let Some(w) = &self.moderation {
            w.validate(!self.instruments.is_empty())?;
        }
        if let Some(i) = &self.interaction {
            let refuse = |message: String| bad("model.interaction", message);
            if self.moderation.is_some() {
                return refuse(
                    "a treatment-mediator interaction with a moderator (model.moderator) is not \
                     supported; fit one or the other"
                        .into(),
                );
            }
            if !self.instruments.is_empty() {
                return refuse(format!(
                    "the interaction model has no instrument; this one has {} (model.instrument)",
                    self.instruments.len()
                ));
            }
            if let Some((x0, x1)) = i.contrast
                && !(x0.is_finite() && x1.is_finite() && x0 != x1)
            {
                return bad(
                    "model.contrast",
                    format!(
                        "give two different finite treatment values [x0, x1]; got [{x0}, {x1}]"
                    ),
                );
            }
        }
        Ok(())
    }
}

/// A confidence level lies strictly between 0 and 1.
pub fn check_level(level: f64) -> std::result::Result<(), String> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(format!(
            "{level} is not a confidence level strictly between 0 and 1 (e.g. 0.95)"
        ))
    }
}

impl InferenceSpec {
    /// Check levels and draw counts.
    pub fn validate(&self) -> Result<()> {
        if self.levels.is_empty() {
            return Err(Error::InvalidOption {
                option: "inference.levels".into(),
                message: "give at least one confidence level, e.g. 0.95".into(),
            });
        }
        for &l in &self.levels {
            check_level(l).map_err(|message| Error::InvalidOption {
                option: "inference.levels".into(),
                message,
            })?;
        }
        if self.mc_draws < 1000 {
            return Err(Error::InvalidOption {
                option: "inference.mc_draws".into(),
                message: format!(
                    "{} draws are too few for a Monte Carlo interval; use at least 1000",
                    self.mc_draws
                ),
            });
        }
        // The draws of the indirect effect (and, with several mediators, of
        // each specific effect and contrast) are kept for their quantiles.
        crate::resources::check_memory(
            "inference.mc_draws",
            &format!("{} Monte Carlo draws", self.mc_draws),
            self.mc_draws as f64 * 8.0,
        )?;
        Ok(())
    }
}

/// The model the embedded default fits: the study's baseline, on the
/// synthetic panel's columns.
pub fn default_spec() -> ModelSpec {
    ModelSpec {
        unit: "city".into(),
        time: "year".into(),
        outcome: "log_ci".into(),
        treatment: "dei".into(),
        mediators: vec!["agglom".into()],
        controls: crate::data::synthetic::CONTROLS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        instruments: vec![],
        mediator_instruments: vec![],
        groups: vec!["region".into(), "size".into()],
        cluster: "city".into(),
        fixed_effects: FixedEffects::UnitTime,
        cell_group: None,
        moderation: None,
        interaction: None,
        serial: false,
    }
}
