//! Robustness specifications: transformations of the raw table before the
//! panel is built, each a config option (`[data]`) usable in sweeps. In
//! order: columns lagged or led K periods within each unit (on the whole
//! table, so the first period kept can use the one before it;
//! `lag_treatment` is the treatment's lag of one); rows left out by unit,
//! by the value of a column, or outside a range of periods; then
//! winsorising the model's numeric columns at two percentiles of the rows
//! kept. Periods are counted in the panel's order of periods (numeric when
//! every period is a number), and a unit's gap is respected: a row whose
//! lag or lead does not exist (the unit has no row K periods away) gets a
//! missing value and is dropped (and counted) with the other incomplete
//! rows.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::table::MISSING;
use crate::data::table::Table;
use crate::error::{Error, Result};

/// The robustness options of a run; the default changes nothing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Robustness {
    /// The treatment of the unit's previous period replaces its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lag_treatment: bool,
    /// Columns replaced by their value K periods before (`lag`) or after
    /// (`lead`) in the same unit: (column, K), K >= 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lag: Vec<(String, u32)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lead: Vec<(String, u32)>,
    /// Winsorise at these percentiles (0-100), low then high.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winsorize: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop_units: Vec<String>,
    /// Rows whose column has one of the values are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<(String, Vec<String>)>,
    /// Only periods from .. to (inclusive, numeric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods_from: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods_to: Option<f64>,
}

/// The columns a transformation needs to know about.
pub struct Columns<'a> {
    pub unit: &'a str,
    pub time: &'a str,
    pub treatment: &'a str,
    /// Winsorised: outcome, treatment, mediators, controls, instruments.
    pub numeric: Vec<&'a str>,
}

impl Robustness {
    /// Whether the options change nothing.
    pub fn is_identity(&self) -> bool {
        *self == Robustness::default()
    }

    /// The table with the transformations applied.
    pub fn apply(&self, table: &Table, cols: &Columns) -> Result<Table> {
        if self.is_identity() {
            return Ok(table.clone());
        }
        let at = |name: &str, role: &str| Ok(table.columns(&[(name, role)])?[0]);
        let found = table.columns(&[(cols.unit, "unit"), (cols.time, "time")])?;
        let (unit, time) = (found[0], found[1]);
        let mut out = table.clone();
        if self.lag_treatment {
            shift(&mut out, unit, time, at(cols.treatment, "treatment")?, 1);
        }
        for (name, k) in &self.lag {
            let column = at(name, "column of data.lag")?;
            shift(&mut out, unit, time, column, i64::from(*k));
        }
        for (name, k) in &self.lead {
            let column = at(name, "column of data.lead")?;
            shift(&mut out, unit, time, column, -i64::from(*k));
        }
        for name in &self.drop_units {
            if !out.rows.iter().any(|r| r[unit].trim() == name) {
                return Err(Error::InvalidOption {
                    option: "data.drop_units".into(),
                    message: format!("no unit '{name}' in column '{}'", cols.unit),
                });
            }
        }
        out = out.filter_rows(|r| !self.drop_units.iter().any(|u| u == r[unit].trim()));
        for (column, values) in &self.drop {
            let c = at(column, "column of data.drop")?;
            for v in values {
                if !out.rows.iter().any(|r| r[c].trim() == v) {
                    return Err(Error::InvalidOption {
                        option: format!("data.drop.{column}"),
                        message: format!("no row has '{v}' in column '{column}'"),
                    });
                }
            }
            out = out.filter_rows(|r| !values.iter().any(|v| v == r[c].trim()));
        }
        if self.periods_from.is_some() || self.periods_to.is_some() {
            for (row, line) in out.rows.iter().zip(&out.lines) {
                if row[time].trim().parse::<f64>().is_err() {
                    return Err(Error::BadValue {
                        file: out.source.clone(),
                        line: *line,
                        column: cols.time.to_string(),
                        problem: format!(
                            "'{}' is not a number, so data.periods cannot select it",
                            row[time]
                        ),
                    });
                }
            }
            let (from, to) = (
                self.periods_from.unwrap_or(f64::NEG_INFINITY),
                self.periods_to.unwrap_or(f64::INFINITY),
            );
            out = out.filter_rows(|r| {
                let t: f64 = r[time].trim().parse().unwrap_or(f64::NAN);
                t >= from && t <= to
            });
        }
        if let Some([lo, hi]) = self.winsorize {
            for name in &cols.numeric {
                winsorize(&mut out, at(name, "model column")?, lo / 100.0, hi / 100.0);
            }
        }
        Ok(out)
    }
}

/// Whether a cell is missing, as the panel reads it.
fn missing(cell: &str) -> bool {
    MISSING.contains(&cell.trim())
}

/// Periods in order: numerically when every one is a number, else as text.
fn period_order(values: &[&str]) -> Vec<String> {
    let mut distinct: Vec<String> = values.iter().map(|v| v.trim().to_string()).collect();
    distinct.sort();
    distinct.dedup();
    let numbers: Option<Vec<f64>> = distinct.iter().map(|v| v.parse().ok()).collect();
    if let Some(numbers) = numbers {
        let mut paired: Vec<(f64, String)> = numbers.into_iter().zip(distinct).collect();
        paired.sort_by(|a, b| a.0.total_cmp(&b.0));
        paired.into_iter().map(|(_, v)| v).collect()
    } else {
        distinct
    }
}

/// Replace `column` with its value in the unit's row `by` periods of the
/// panel earlier (a lag; negative: later, a lead), missing where the unit
/// has no such row.
fn shift(table: &mut Table, unit: usize, time: usize, column: usize, by: i64) {
    let periods: Vec<&str> = table.rows.iter().map(|r| r[time].as_str()).collect();
    let order = period_order(&periods);
    let rank: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let mut value: HashMap<(String, usize), String> = HashMap::new();
    for r in &table.rows {
        value.insert(
            (r[unit].trim().to_string(), rank[r[time].trim()]),
            r[column].clone(),
        );
    }
    for r in &mut table.rows {
        let k = rank[r[time].trim()] as i64 - by;
        r[column] = match usize::try_from(k) {
            Ok(source) => value
                .get(&(r[unit].trim().to_string(), source))
                .cloned()
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
    }
}

/// Type-7 quantile (linear interpolation, as R's default) of sorted values.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Clamp a column's numbers to its `lo` and `hi` quantiles (fractions);
/// cells left alone keep their text.
fn winsorize(table: &mut Table, column: usize, lo: f64, hi: f64) {
    let mut values: Vec<f64> = table
        .rows
        .iter()
        .filter(|r| !missing(&r[column]))
        .filter_map(|r| r[column].trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() {
        return;
    }
    values.sort_by(f64::total_cmp);
    let (low, high) = (quantile(&values, lo), quantile(&values, hi));
    for r in &mut table.rows {
        if let Ok(v) = r[column].trim().parse::<f64>()
            && v.is_finite()
        {
            if v < low {
                r[column] = format!("{low}");
            } else if v > high {
                r[column] = format!("{high}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let rows = [
            ["a", "2011", "1", "x"],
            ["a", "2012", "2", "x"],
            ["a", "2013", "3", "x"],
            ["b", "2011", "10", "y"],
            ["b", "2013", "30", "y"],
        ];
        Table::new(
            "t",
            ["u", "t", "d", "g"].map(String::from).to_vec(),
            rows.iter().map(|r| r.map(String::from).to_vec()).collect(),
        )
    }

    fn cols() -> Columns<'static> {
        Columns {
            unit: "u",
            time: "t",
            treatment: "d",
            numeric: vec!["d"],
        }
    }

    #[test]
    fn the_lag_is_the_previous_period_of_the_same_unit() {
        let r = Robustness {
            lag_treatment: true,
            ..Default::default()
        };
        let out = r.apply(&table(), &cols()).unwrap();
        let d: Vec<&str> = out.rows.iter().map(|r| r[2].as_str()).collect();
        // b has no 2012 row, so its 2013 lag is missing.
        assert_eq!(d, ["", "1", "2", "", ""]);
    }

    #[test]
    fn lags_and_leads_count_periods_within_the_unit() {
        let shifted = |lag: Vec<(String, u32)>, lead: Vec<(String, u32)>| {
            let r = Robustness {
                lag,
                lead,
                ..Default::default()
            };
            let out = r.apply(&table(), &cols()).unwrap();
            out.rows.iter().map(|r| r[2].clone()).collect::<Vec<_>>()
        };
        let d = || "d".to_string();
        // The same as lag_treatment.
        assert_eq!(shifted(vec![(d(), 1)], vec![]), ["", "1", "2", "", ""]);
        // Two periods back: b's 2011 is 2013's lag of two, across its gap.
        assert_eq!(shifted(vec![(d(), 2)], vec![]), ["", "", "1", "", "10"]);
        // A lead: b has no 2012 row, so its 2011 lead is missing.
        assert_eq!(shifted(vec![], vec![(d(), 1)]), ["2", "3", "", "", ""]);
        assert_eq!(shifted(vec![], vec![(d(), 2)]), ["3", "", "", "30", ""]);
        // Another column than the treatment; an unknown one is refused.
        let r = Robustness {
            lag: vec![("g".into(), 1)],
            ..Default::default()
        };
        let out = r.apply(&table(), &cols()).unwrap();
        let g: Vec<&str> = out.rows.iter().map(|r| r[3].as_str()).collect();
        assert_eq!(g, ["", "x", "x", "", ""]);
        let r = Robustness {
            lead: vec![("nope".into(), 1)],
            ..Default::default()
        };
        let e = r.apply(&table(), &cols()).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("data.lead"), "{e}");
    }

    #[test]
    fn drops_and_period_ranges_keep_the_source_lines() {
        let r = Robustness {
            drop: vec![("g".into(), vec!["y".into()])],
            periods_from: Some(2012.0),
            ..Default::default()
        };
        let out = r.apply(&table(), &cols()).unwrap();
        assert_eq!(out.lines, [3, 4]);
        let r = Robustness {
            drop_units: vec!["z".into()],
            ..Default::default()
        };
        assert!(r.apply(&table(), &cols()).is_err());
    }

    #[test]
    fn winsorizing_clamps_at_type_7_quantiles() {
        let r = Robustness {
            winsorize: Some([25.0, 75.0]),
            ..Default::default()
        };
        let out = r.apply(&table(), &cols()).unwrap();
        // 1, 2, 3, 10, 30: quartiles 2 and 10.
        let d: Vec<&str> = out.rows.iter().map(|r| r[2].as_str()).collect();
        assert_eq!(d, ["2", "2", "3", "10", "10"]);
    }
}
