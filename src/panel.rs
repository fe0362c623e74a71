//! Turns a raw table into the estimation sample: resolves the column roles,
//! parses numbers (naming the line and column of anything that is not one),
//! drops incomplete rows listwise and fixed-effect singletons, and indexes
//! units, periods, clusters and groups.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::spec::ModelSpec;
use crate::table::Table;

/// Cell values read as missing (R and Stata spellings included).
pub const MISSING: &[&str] = &["", "NA", "N/A", "NaN", "nan", ".", "NULL", "null"];

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
        let index: HashMap<&str, u32> = levels
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
    /// Numeric columns in model order: treatment, controls, mediators,
    /// instruments, outcome.
    pub names: Vec<String>,
    pub n_controls: usize,
    pub n_mediators: usize,
    pub n_instruments: usize,
    pub columns: Vec<Vec<f64>>,
    /// Source line of each kept observation.
    pub lines: Vec<u64>,
    /// Rows dropped because a used column was missing.
    pub dropped_missing: usize,
    /// Rows dropped as fixed-effect singletons.
    pub dropped_singletons: usize,
}

impl Panel {
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
        let col = |name: &str, role: &str| {
            table.column(name).ok_or_else(|| Error::MissingColumn {
                file: file.to_string(),
                column: name.to_string(),
                role: role.to_string(),
                available: table.headers.join(", "),
            })
        };
        let unit_col = col(&spec.unit, "the unit (--unit)")?;
        let time_col = col(&spec.time, "the time period (--time)")?;
        let cluster_col = col(&spec.cluster, "the cluster variable (--cluster)")?;
        let group_cols = spec
            .groups
            .iter()
            .map(|g| col(g, "a group (--group)"))
            .collect::<Result<Vec<_>>>()?;
        let mut names = vec![spec.treatment.clone()];
        let mut numeric = vec![col(&spec.treatment, "the treatment (--treatment)")?];
        for c in &spec.controls {
            names.push(c.clone());
            numeric.push(col(c, "a control (--controls)")?);
        }
        for m in &spec.mediators {
            names.push(m.clone());
            numeric.push(col(m, "a mediator (--mediator)")?);
        }
        for z in &spec.instruments {
            names.push(z.clone());
            numeric.push(col(z, "an instrument (--instrument)")?);
        }
        names.push(spec.outcome.clone());
        numeric.push(col(&spec.outcome, "the outcome (--outcome)")?);

        if table.rows.is_empty() {
            return Err(Error::TooLittleData {
                file: file.to_string(),
                message: "the file has a header but no data rows".into(),
            });
        }

        // Parse every numeric cell; a cell that is neither missing nor a finite
        // number is an error wherever it is, even in a row dropped for another reason.
        let mut keep = vec![true; table.rows.len()];
        let mut values: Vec<Vec<f64>> = vec![Vec::with_capacity(table.rows.len()); numeric.len()];
        for (r, row) in table.rows.iter().enumerate() {
            for (k, &c) in numeric.iter().enumerate() {
                let cell = row[c].as_str();
                let v = if MISSING.contains(&cell) {
                    keep[r] = false;
                    f64::NAN
                } else {
                    parse_number(cell).map_err(|problem| Error::BadValue {
                        file: file.to_string(),
                        line: table.lines[r],
                        column: table.headers[c].clone(),
                        problem,
                    })?
                };
                values[k].push(v);
            }
            let keys = [unit_col, time_col, cluster_col]
                .into_iter()
                .chain(group_cols.iter().copied());
            for c in keys {
                if MISSING.contains(&row[c].as_str()) {
                    keep[r] = false;
                }
            }
        }

        // Each unit once per period, among all rows that name both.
        let mut seen: HashMap<(&str, &str), u64> = HashMap::with_capacity(table.rows.len());
        for (r, row) in table.rows.iter().enumerate() {
            let (u, t) = (row[unit_col].as_str(), row[time_col].as_str());
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
        let dropped_missing = keep.iter().filter(|k| !**k).count();

        // Fixed-effect singletons, removed iteratively as reghdfe and pyfixest do.
        let mut fe_cols = Vec::new();
        if spec.fixed_effects.has_unit() {
            fe_cols.push(unit_col);
        }
        if spec.fixed_effects.has_time() {
            fe_cols.push(time_col);
        }
        let dropped_singletons = drop_singletons(table, &fe_cols, &mut keep);

        let kept: Vec<usize> = (0..table.rows.len()).filter(|&r| keep[r]).collect();
        let factor = |name: &str, c: usize| {
            Factor::build(
                name,
                kept.iter().map(|&r| table.rows[r][c].as_str()).collect(),
            )
        };
        let panel = Panel {
            source: file.to_string(),
            unit: factor(&spec.unit, unit_col),
            time: factor(&spec.time, time_col),
            cluster: factor(&spec.cluster, cluster_col),
            groups: spec
                .groups
                .iter()
                .zip(&group_cols)
                .map(|(g, &c)| factor(g, c))
                .collect(),
            names,
            n_controls: spec.controls.len(),
            n_mediators: spec.mediators.len(),
            n_instruments: spec.instruments.len(),
            columns: values
                .into_iter()
                .map(|v| kept.iter().map(|&r| v[r]).collect())
                .collect(),
            lines: kept.iter().map(|&r| table.lines[r]).collect(),
            dropped_missing,
            dropped_singletons,
        };
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

/// Parse a finite number, or say what was wrong.
fn parse_number(cell: &str) -> std::result::Result<f64, String> {
    match cell.parse::<f64>() {
        // Squares of larger values overflow the Gram matrix (f64 up to
        // 1.8e308): refuse rather than let them turn into infinities.
        Ok(v) if v.is_finite() && v.abs() > 1e150 => Err(format!(
            "'{cell}' is too large: its square overflows double precision in the model's \
             cross-products; rescale the column (e.g. to thousands or logs)"
        )),
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("'{cell}' is infinite; expected a finite number")),
        Err(_) => Err(format!(
            "'{cell}' is not a number; expected a number, or an empty cell / NA for a missing value"
        )),
    }
}

/// Mark rows whose level of any fixed effect has a single kept observation,
/// repeating until none is left; returns how many rows were dropped.
fn drop_singletons(table: &Table, fe_cols: &[usize], keep: &mut [bool]) -> usize {
    let mut dropped = 0;
    loop {
        let mut changed = false;
        for &c in fe_cols {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for (r, row) in table.rows.iter().enumerate() {
                if keep[r] {
                    *counts.entry(row[c].as_str()).or_default() += 1;
                }
            }
            for (r, row) in table.rows.iter().enumerate() {
                if keep[r] && counts[row[c].as_str()] == 1 {
                    keep[r] = false;
                    dropped += 1;
                    changed = true;
                }
            }
        }
        if !changed {
            return dropped;
        }
    }
}
