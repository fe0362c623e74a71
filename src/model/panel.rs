//! Turns a raw table into the estimation sample: resolves the column roles,
//! parses numbers (naming the line and column of anything that is not one),
//! drops incomplete rows listwise and fixed-effect singletons, and indexes
//! units, periods, clusters and groups.

use std::collections::HashMap;

/// Hash maps keyed by the panel's cells: a fast deterministic hasher (the
/// keys are the user's own data, and a million rows are hashed several
/// times).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

use crate::data::table::{MISSING, Table, clip};
use crate::error::{Error, Result};
use crate::model::spec::{Interaction, ModelSpec, Moderation};

/// A categorical column indexed to 0..levels.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    pub name: String,
    /// Level index of each observation.
    pub codes: Vec<u32>,
    /// Level labels, in sorted order (numerically when all are numbers).
    pub levels: Vec<String>,
}

impl Factor {
    fn build(name: &str, values: Vec<&str>) -> Factor {
        let mut levels: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        levels.sort_by(|a, b| natural_cmp(a, b));
        levels.dedup();
        let index: FastMap<&str, u32> = levels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i as u32))
            .collect();
        let codes = values.iter().map(|v| index[v]).collect();
        Factor {
            name: name.to_string(),
            codes,
            levels,
        }
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// True when there are no levels.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The factor of (self, other) pairs, `SELF^OTHER`: a level for every
    /// pair of levels (observed or not), labelled `a^b`.
    pub fn interaction(&self, other: &Factor) -> Factor {
        let n = other.len() as u32;
        Factor {
            name: format!("{}^{}", self.name, other.name),
            codes: self
                .codes
                .iter()
                .zip(&other.codes)
                .map(|(&a, &b)| a * n + b)
                .collect(),
            levels: self
                .levels
                .iter()
                .flat_map(|a| other.levels.iter().map(move |b| format!("{a}^{b}")))
                .collect(),
        }
    }

    /// Whether each level of `self` falls in exactly one level of `outer`.
    pub fn nested_in(&self, outer: &Factor) -> bool {
        let mut owner = vec![u32::MAX; self.len()];
        for (&c, &o) in self.codes.iter().zip(&outer.codes) {
            let slot = &mut owner[c as usize];
            if *slot == u32::MAX {
                *slot = o;
            } else if *slot != o {
                return false;
            }
        }
        true
    }
}

/// Numbers sort numerically, everything else lexicographically after them.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x
            .partial_cmp(&y)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(b)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

/// The estimation sample.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Where the data came from, for messages.
    pub source: String,
    pub unit: Factor,
    pub time: Factor,
    pub cluster: Factor,
    pub groups: Vec<Factor>,
    /// GROUP of `unit+GROUP^time` fixed effects: each observation's group.
    pub cell_group: Option<Factor>,
    /// Numeric columns in model order: treatment, controls, mediators,
    /// instruments (the treatment's, then the mediators'), the moderator
    /// (if any), outcome.
    pub names: Vec<String>,
    pub n_controls: usize,
    pub n_mediators: usize,
    pub n_instruments: usize,
    /// Excluded instruments of the mediators, after the treatment's.
    pub n_mediator_instruments: usize,
    /// The moderation of the paths; its moderator's column follows the
    /// instruments.
    pub moderation: Option<Moderation>,
    /// The outcome equation's treatment-mediator interaction.
    pub interaction: Option<Interaction>,
    /// The mediators form a chain in their order.
    pub serial: bool,
    pub columns: Vec<Vec<f64>>,
    /// Source line of each kept observation.
    pub lines: Vec<u64>,
    /// Rows dropped because a used column was missing.
    pub dropped_missing: usize,
    /// Rows dropped as fixed-effect singletons.
    pub dropped_singletons: usize,
}

impl Panel {
    /// The moderator's column (following the instruments), in a moderated
    /// model.
    pub fn moderator_column(&self) -> usize {
        1 + self.n_controls + self.n_mediators + self.n_instruments + self.n_mediator_instruments
    }

    /// Number of observations.
    pub fn n_obs(&self) -> usize {
        self.lines.len()
    }

    /// Whether every unit is observed in every period.
    pub fn is_balanced(&self) -> bool {
        self.n_obs() == self.unit.len() * self.time.len()
    }

    /// Build the estimation sample from a table.
    pub fn from_table(table: &Table, spec: &ModelSpec) -> Result<Panel> {
        spec.validate()?;
        let file = table.source.as_str();
        // Every column the model names, looked up at once so that all the
        // missing ones are named together.
        let wanted = wanted_columns(spec);
        let found = table.columns(&wanted)?;
        let labels = 3 + spec.groups.len() + usize::from(spec.cell_group.is_some());
        let names: Vec<String> = wanted[labels..]
            .iter()
            .map(|&(name, _)| name.to_string())
            .collect();
        let (unit_col, time_col, cluster_col) = (found[0], found[1], found[2]);
        let group_cols = found[3..3 + spec.groups.len()].to_vec();
        let cell_col = spec.cell_group.as_ref().map(|_| found[labels - 1]);
        let numeric = found[labels..].to_vec();

        if table.rows.is_empty() {
            return Err(Error::TooLittleData {
                file: file.to_string(),
                message: "the file has a header but no data rows".into(),
            });
        }

        // Every numeric cell parsed; rows with a missing value (or a
        // missing key: unit, period, cluster, group) are not kept.
        let keys: Vec<usize> = [unit_col, time_col, cluster_col]
            .into_iter()
            .chain(group_cols.iter().copied())
            .chain(cell_col)
            .collect();
        let Kept {
            values,
            periods,
            kept,
            dropped_missing,
            dropped_singletons,
        } = keep_rows(table, &numeric, &keys, cell_col, spec.fixed_effects)?;
        let period_refs: Vec<&str> = periods.iter().map(String::as_str).collect();
        let factor = |name: &str, c: usize| {
            Factor::build(
                name,
                kept.iter().map(|&r| table.rows[r][c].as_str()).collect(),
            )
        };
        let panel = Panel {
            source: file.to_string(),
            unit: factor(&spec.unit, unit_col),
            time: Factor::build(&spec.time, kept.iter().map(|&r| period_refs[r]).collect()),
            cluster: factor(&spec.cluster, cluster_col),
            groups: spec
                .groups
                .iter()
                .zip(&group_cols)
                .map(|(g, &c)| factor(g, c))
                .collect(),
            cell_group: spec
                .cell_group
                .as_ref()
                .zip(cell_col)
                .map(|(g, c)| factor(g, c)),
            names,
            n_controls: spec.controls.len(),
            n_mediators: spec.mediators.len(),
            n_instruments: spec.instruments.len(),
            n_mediator_instruments: spec.mediator_instruments.len(),
            moderation: spec.moderation.clone(),
            interaction: spec.interaction.clone(),
            serial: spec.serial,
            columns: values
                .into_iter()
                .map(|v| kept.iter().map(|&r| v[r]).collect())
                .collect(),
            lines: kept.iter().map(|&r| table.lines[r]).collect(),
            dropped_missing,
            dropped_singletons,
        };
        if let Some(g) = &panel.cell_group
            && !panel.unit.nested_in(g)
        {
            return Err(Error::InvalidOption {
                option: "model.fixed_effects".into(),
                message: format!(
                    "unit+{}^time needs groups that nest the units, and some unit of '{}' lies in \
                     more than one group of '{}'",
                    g.name, spec.unit, g.name
                ),
            });
        }
        if panel.cluster.len() < 2 {
            return Err(Error::TooLittleData {
                file: file.to_string(),
                message: format!(
                    "{} cluster(s) of '{}' left after dropping {} incomplete row(s) and {} singleton(s); \
                     cluster-robust inference needs at least two",
                    panel.cluster.len(),
                    spec.cluster,
                    dropped_missing,
                    dropped_singletons
                ),
            });
        }
        Ok(panel)
    }
}

/// The rows a sample keeps, and what it parsed.
struct Kept {
    /// Every row's value of each numeric column (missing ones NaN).
    values: Vec<Vec<f64>>,
    /// Every row's period key.
    periods: Vec<String>,
    /// The rows kept, in order.
    kept: Vec<usize>,
    dropped_missing: usize,
    dropped_singletons: usize,
}

/// Parse the `numeric` columns, drop the rows missing one of them or a
/// `keys` column (the first two: unit and period), check that each unit
/// has a period once, then drop the singletons of the fixed effects `fe`
/// (with `cells`, the (group, period) cells of that group column too),
/// iteratively as reghdfe and pyfixest do.
fn keep_rows(
    table: &Table,
    numeric: &[usize],
    keys: &[usize],
    cells: Option<usize>,
    fe: crate::model::spec::FixedEffects,
) -> Result<Kept> {
    let file = table.source.as_str();
    let (unit_col, time_col) = (keys[0], keys[1]);
    let (values, mut keep) = parse_columns(table, numeric, keys, file)?;
    // Periods are numbers: 2011, 2011.0 and 2.011e3 are one period.
    let periods = period_keys(table, time_col, file)?;
    check_unique(table, unit_col, &periods, file)?;
    let dropped_missing = keep.iter().filter(|k| !**k).count();
    let units: Vec<&str> = table.rows.iter().map(|r| r[unit_col].as_str()).collect();
    let period_refs: Vec<&str> = periods.iter().map(String::as_str).collect();
    let mut fe_keys: Vec<&[&str]> = Vec::new();
    if fe.has_unit() {
        fe_keys.push(&units);
    }
    if fe.has_time() {
        fe_keys.push(&period_refs);
    }
    // A (group, period) cell's key: the two joined by a separator no label
    // holds.
    let cell_keys: Vec<String> = match cells {
        Some(c) => table
            .rows
            .iter()
            .zip(&period_refs)
            .map(|(r, p)| format!("{}\u{1f}{p}", r[c]))
            .collect(),
        None => Vec::new(),
    };
    let cell_refs: Vec<&str> = cell_keys.iter().map(String::as_str).collect();
    if cells.is_some() {
        fe_keys.push(&cell_refs);
    }
    let dropped_singletons = drop_singletons(&fe_keys, &mut keep);
    let kept = (0..table.rows.len()).filter(|&r| keep[r]).collect();
    Ok(Kept {
        values,
        periods,
        kept,
        dropped_missing,
        dropped_singletons,
    })
}

/// The estimation sample of a model that names, besides its unit, period
/// and cluster, only numeric columns (the panel threshold model): read as
/// [`Panel::from_table`] reads one (numbers parsed with the line and column
/// of anything that is not one, incomplete rows dropped listwise, then the
/// fixed effects' singletons).
#[derive(Debug, Clone)]
pub struct Sample {
    /// Where the data came from, for messages.
    pub source: String,
    pub unit: Factor,
    pub time: Factor,
    pub cluster: Factor,
    /// The numeric columns, in the order asked for.
    pub columns: Vec<Vec<f64>>,
    /// Source line of each kept observation.
    pub lines: Vec<u64>,
    pub dropped_missing: usize,
    pub dropped_singletons: usize,
}

impl Sample {
    /// `keys` are the unit, period and cluster columns and `numeric` the
    /// numeric ones, each with its role as an error names it (e.g. "the
    /// outcome (threshold.outcome)"); `fe` says which singletons to drop.
    pub fn read(
        table: &Table,
        keys: [(&str, &str); 3],
        numeric: &[(&str, &str)],
        fe: crate::model::spec::FixedEffects,
    ) -> Result<Sample> {
        let file = table.source.as_str();
        let wanted: Vec<(&str, &str)> = keys.iter().chain(numeric).copied().collect();
        let found = table.columns(&wanted)?;
        if table.rows.is_empty() {
            return Err(Error::TooLittleData {
                file: file.to_string(),
                message: "the file has a header but no data rows".into(),
            });
        }
        let (unit_col, cluster_col) = (found[0], found[2]);
        let Kept {
            values,
            periods,
            kept,
            dropped_missing,
            dropped_singletons,
        } = keep_rows(table, &found[3..], &found[..3], None, fe)?;
        let period_refs: Vec<&str> = periods.iter().map(String::as_str).collect();
        let factor = |name: &str, c: usize| {
            Factor::build(
                name,
                kept.iter().map(|&r| table.rows[r][c].as_str()).collect(),
            )
        };
        let sample = Sample {
            source: file.to_string(),
            unit: factor(keys[0].0, unit_col),
            time: Factor::build(keys[1].0, kept.iter().map(|&r| period_refs[r]).collect()),
            cluster: factor(keys[2].0, cluster_col),
            columns: values
                .into_iter()
                .map(|v| kept.iter().map(|&r| v[r]).collect())
                .collect(),
            lines: kept.iter().map(|&r| table.lines[r]).collect(),
            dropped_missing,
            dropped_singletons,
        };
        if sample.cluster.len() < 2 {
            return Err(Error::TooLittleData {
                file: file.to_string(),
                message: format!(
                    "{} cluster(s) of '{}' left after dropping {} incomplete row(s) and {} \
                     singleton(s); cluster-robust inference needs at least two",
                    sample.cluster.len(),
                    keys[2].0,
                    dropped_missing,
                    dropped_singletons
                ),
            });
        }
        Ok(sample)
    }

    /// Number of observations.
    pub fn n_obs(&self) -> usize {
        self.lines.len()
    }
}

/// Every column the model names, with its role (as an error names it):
/// unit, period, cluster, the groups, then the numeric columns in the
/// panel's order (treatment, controls, mediators, instruments (the
/// treatment's, then the mediators'), moderator,
/// outcome).
fn wanted_columns(spec: &ModelSpec) -> Vec<(&str, &str)> {
    let mut wanted: Vec<(&str, &str)> = vec![
        (&spec.unit, "the unit (data.unit)"),
        (&spec.time, "the time period (data.time)"),
        (&spec.cluster, "the cluster variable (model.cluster)"),
    ];
    wanted.extend(
        spec.groups
            .iter()
            .map(|g| (g.as_str(), "a group (model.groups)")),
    );
    if let Some(g) = &spec.cell_group {
        wanted.push((
            g,
            "the group of the interacted effects (model.fixed_effects)",
        ));
    }
    wanted.push((&spec.treatment, "the treatment (model.treatment)"));
    for (list, role) in [
        (&spec.controls, "a control (model.controls)"),
        (&spec.mediators, "a mediator (model.mediators)"),
        (&spec.instruments, "an instrument (model.instrument)"),
        (
            &spec.mediator_instruments,
            "a mediator's instrument (model.mediator_instrument)",
        ),
    ] {
        wanted.extend(list.iter().map(|c| (c.as_str(), role)));
    }
    if let Some(w) = &spec.moderation {
        wanted.push((&w.moderator, "the moderator (model.moderator)"));
    }
    wanted.push((&spec.outcome, "the outcome (model.outcome)"));
    wanted
}

/// Each numeric column's values, row by row (NaN where missing), and which
/// rows are complete (no missing value, nor a missing key in `keys`). A
/// cell that is neither missing nor a finite number is an error wherever it
/// is, even in a row dropped for another reason; a cell with more digits
/// than a double holds is warned of once per column.
fn parse_columns(
    table: &Table,
    numeric: &[usize],
    keys: &[usize],
    file: &str,
) -> Result<(Vec<Vec<f64>>, Vec<bool>)> {
    let mut keep = vec![true; table.rows.len()];
    let mut warned = vec![false; numeric.len()];
    let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(table.rows.len()); numeric.len()];
    for (r, row) in table.rows.iter().enumerate() {
        for (k, &c) in numeric.iter().enumerate() {
            let cell = row[c].as_str();
            let v = if MISSING.contains(&cell) {
                keep[r] = false;
                f64::NAN
            } else {
                let v = parse_number(cell).map_err(|problem| Error::BadValue {
                    file: file.to_string(),
                    line: table.lines[r],
                    column: table.headers[c].clone(),
                    problem,
                })?;
                if !warned[k] && loses_digits(cell, v) {
                    warned[k] = true;
                    crate::notices::notify(format!(
                        "warning: {file}:{}: column '{}': '{}' has more digits than double \
                         precision holds (read as {v}); if the column's values are a large \
                         constant plus small changes, those changes lost digits: subtract the \
                         constant before saving the file",
                        table.lines[r],
                        table.headers[c],
                        clip(cell)
                    ));
                }
                v
            };
            values[k].push(v);
        }
        for &c in keys {
            if MISSING.contains(&row[c].as_str()) {
                keep[r] = false;
            }
        }
    }
    Ok((values, keep))
}

/// Each unit once per period, among all rows that name both.
fn check_unique(table: &Table, unit_col: usize, periods: &[String], file: &str) -> Result<()> {
    let mut seen: FastMap<(&str, &str), u64> =
        FastMap::with_capacity_and_hasher(table.rows.len(), Default::default());
    for (r, row) in table.rows.iter().enumerate() {
        let (u, t) = (row[unit_col].as_str(), periods[r].as_str());
        if MISSING.contains(&u) || MISSING.contains(&t) {
            continue;
        }
        if let Some(&first) = seen.get(&(u, t)) {
            return Err(Error::DuplicateKey {
                file: file.to_string(),
                line: table.lines[r],
                first_line: first,
                unit: u.to_string(),
                time: t.to_string(),
            });
        }
        seen.insert((u, t), table.lines[r]);
    }
    Ok(())
}

/// Parse a finite number, or say what was wrong.
pub(crate) fn parse_number(cell: &str) -> std::result::Result<f64, String> {
    match cell.parse::<f64>() {
        // Squares of larger values overflow the Gram matrix (f64 up to
        // 1.8e308): refuse rather than let them turn into infinities.
        Ok(v) if v.is_finite() && v.abs() > 1e150 => Err(format!(
            "'{}' is too large: its square overflows double precision in the model's \
             cross-products; rescale the column (e.g. to thousands or logs)",
            clip(cell)
        )),
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!(
            "'{}' is infinite; expected a finite number",
            clip(cell)
        )),
        Err(_) => Err(format!(
            "'{}' is not a number; expected a number, or an empty cell / NA for a missing value",
            clip(cell)
        )),
    }
}

/// Whether the decimal `cell` holds digits that its double `v` lost: a
/// number of at most 15 significant digits never does; a longer one does
/// when `v` written out to as many digits differs (a file that wrote a
/// double's exact expansion, 0.1 as 0.1000000000000000055511, lost none).
fn loses_digits(cell: &str, v: f64) -> bool {
    fn digits(text: &str) -> String {
        let mantissa = text.split(['e', 'E']).next().unwrap_or("");
        let d: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        d.trim_start_matches('0').trim_end_matches('0').to_string()
    }
    // Every cell passes here: a short one, the common case, cannot hold
    // 16 digits, and is answered without building any string.
    if cell.len() <= 15 {
        return false;
    }
    let ours = digits(cell);
    if ours.len() <= 15 {
        return false;
    }
    digits(&format!("{:.*e}", ours.len() - 1, v.abs())) != ours
}

/// Each row's period as the canonical text of its number (missing cells
/// as they are: their rows are dropped), so `2011` and `2011.0` are one
/// period; a period that is not a number is refused.
fn period_keys(table: &Table, time_col: usize, file: &str) -> Result<Vec<String>> {
    table
        .rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let cell = row[time_col].as_str();
            if MISSING.contains(&cell) {
                return Ok(cell.to_string());
            }
            match cell.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(format!("{v}")),
                _ => Err(Error::BadValue {
                    file: file.to_string(),
                    line: table.lines[r],
                    column: table.headers[time_col].clone(),
                    problem: format!(
                        "'{}' is not a period number; periods are numbers (a year such as \
                         2011, or the index of a quarter or month)",
                        clip(cell)
                    ),
                }),
            }
        })
        .collect()
}

/// Mark rows whose level of any fixed effect (`keys[f][row]`) has a single
/// kept observation, until none is left (each removal can leave another
/// level with one); returns how many rows were dropped. The rows removed
/// do not depend on the order of removal, so a queue of levels that have
/// fallen to one row visits each row and level a bounded number of times:
/// linear in the rows, where repeated passes were quadratic on a chain.
fn drop_singletons(keys: &[&[&str]], keep: &mut [bool]) -> usize {
    let n = keep.len();
    // Per fixed effect: each row's level code, each level's rows (level l's
    // are rows[start[l] .. start[l + 1]], one flat array: a million levels
    // are not a million allocations) and kept count.
    let mut codes: Vec<Vec<u32>> = Vec::with_capacity(keys.len());
    let mut members: Vec<(Vec<u32>, Vec<u32>)> = Vec::with_capacity(keys.len());
    let mut counts: Vec<Vec<usize>> = Vec::with_capacity(keys.len());
    for k in keys {
        let mut index: FastMap<&str, u32> =
            FastMap::with_capacity_and_hasher(n, Default::default());
        let code: Vec<u32> = (0..n)
            .map(|r| {
                let next = index.len() as u32;
                *index.entry(k[r]).or_insert(next)
            })
            .collect();
        let levels = index.len();
        let mut start = vec![0u32; levels + 1];
        for &c in &code {
            start[c as usize + 1] += 1;
        }
        for l in 0..levels {
            start[l + 1] += start[l];
        }
        let mut rows = vec![0u32; n];
        let mut next = start.clone();
        for (r, &c) in code.iter().enumerate() {
            rows[next[c as usize] as usize] = r as u32;
            next[c as usize] += 1;
        }
        let mut count = vec![0usize; levels];
        for r in 0..n {
            if keep[r] {
                count[code[r] as usize] += 1;
            }
        }
        codes.push(code);
        members.push((start, rows));
        counts.push(count);
    }
    let mut queue: Vec<(usize, u32)> = Vec::new();
    for (f, count) in counts.iter().enumerate() {
        queue.extend(
            (0..count.len() as u32)
                .filter(|&l| count[l as usize] == 1)
                .map(|l| (f, l)),
        );
    }
    let mut dropped = 0;
    while let Some((f, level)) = queue.pop() {
        if counts[f][level as usize] != 1 {
            continue;
        }
        let (start, rows) = &members[f];
        let level_rows = &rows[start[level as usize] as usize..start[level as usize + 1] as usize];
        let Some(&r) = level_rows.iter().find(|&&r| keep[r as usize]) else {
            continue;
        };
        keep[r as usize] = false;
        dropped += 1;
        for g in 0..keys.len() {
            let l = codes[g][r as usize] as usize;
            counts[g][l] -= 1;
            if counts[g][l] == 1 {
                queue.push((g, l as u32));
            }
        }
    }
    dropped
}

#[cfg(test)]
mod digit_tests {
    use super::*;

    #[test]
    fn digits_lost_only_when_the_text_holds_more_than_the_double() {
        for (cell, lost) in [
            ("0.1", false),
            ("2.50", false),
            ("123456789012345", false),
            ("0.1000000000000000055511151231257827", false),
            ("1000000000001.2345678901", true),
            ("-1000000000001.2345678901", true),
            ("1.00000000000000000000", false),
            ("1.234567890123456789e5", true),
        ] {
            let v: f64 = cell.parse().unwrap();
            assert_eq!(loses_digits(cell, v), lost, "{cell}");
        }
    }

    #[test]
    fn singletons_are_dropped_to_the_same_fixed_point_in_linear_time() {
        // A chain: unit i in periods i and i+1; with unit and period
        // effects every row goes, one after another.
        let n = 200_000;
        let units: Vec<String> = (0..n).flat_map(|i| [i, i]).map(|i| i.to_string()).collect();
        let periods: Vec<String> = (0..n)
            .flat_map(|i| [i, i + 1])
            .map(|i| i.to_string())
            .collect();
        let u: Vec<&str> = units.iter().map(String::as_str).collect();
        let p: Vec<&str> = periods.iter().map(String::as_str).collect();
        let mut keep = vec![true; u.len()];
        let started = std::time::Instant::now();
        assert_eq!(drop_singletons(&[&u, &p], &mut keep), 2 * n);
        assert!(started.elapsed().as_secs_f64() < 5.0);
        // Two complete periods of three units keep every row.
        let u = ["a", "a", "b", "b", "c", "c"];
        let p = ["1", "2", "1", "2", "1", "2"];
        let mut keep = vec![true; 6];
        assert_eq!(drop_singletons(&[&u, &p], &mut keep), 0);
        // A unit seen once goes, and with it the period it alone had.
        let u = ["a", "a", "b", "b", "c"];
        let p = ["1", "2", "1", "2", "3"];
        let mut keep = vec![true; 5];
        assert_eq!(drop_singletons(&[&u, &p], &mut keep), 1);
        assert_eq!(keep, [true, true, true, true, false]);
    }
}
