//! Sweeps: many runs described by one config. Its `[sweep]` table maps
//! config keys (dotted, e.g. "model.controls" or "data.synthetic.cities")
//! to lists of values, combined as a grid (every combination, the first key
//! varying slowest; the default) or zipped (`combine = "zip"`: the i-th
//! value of every list together, a one-value list standing for all; see
//! `crate::study::combine`, which `[simulation]` shares). Each point is the config with those keys
//! set, checked like any config before the first point runs, so a bad key
//! or value stops the sweep before any work; the points then run back to
//! back in one process (one GPU context, its pipelines compiled once).
//!
//! Output: `sweep.csv`, one row per point x model x effect x interval
//! (the swept values, the estimate, SE, p-value and the interval's method,
//! level and bounds; an effect without intervals has one row with them
//! empty), and each point's run folder under `points/NNN/`.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::study::combine::Combine;
use crate::study::config::{Config, Origin, line_of_key, with_suggestion};
use crate::study::summary::Summary;

/// One point of a sweep: its swept values (key, value as TOML) and config.
#[derive(Debug, Clone)]
pub struct Point {
    pub values: Vec<(String, toml::Value)>,
    pub config: Config,
}

/// An error on the sweep's entry for `key`.
fn sweep_error(origin: &Origin, key: &str, message: impl Into<String>) -> Error {
    Error::Config {
        file: origin.name.clone(),
        line: line_of_key(&origin.text, &format!("sweep.{key}")),
        key: format!("sweep.\"{key}\""),
        message: message.into(),
    }
}

/// Set the dotted `key` of `table` to `value`, making missing tables.
fn set(table: &mut toml::Table, key: &str, value: toml::Value) -> std::result::Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut t = table;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(format!("'{key}' is not a dotted config key"));
        }
        if i + 1 == parts.len() {
            t.insert(part.to_string(), value);
            return Ok(());
        }
        let next = t
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = match next {
            toml::Value::Table(inner) => inner,
            _ => {
                return Err(format!(
                    "'{}' is a value, not a table, so '{key}' cannot be set",
                    parts[..=i].join(".")
                ));
            }
        };
    }
    Ok(())
}

/// The config of one table, its errors put on the line of `key` in the
/// sweep.
fn config_of(table: toml::Table, origin: &Origin, key: &str) -> Result<Config> {
    toml::Value::Table(table)
        .try_into::<Config>()
        .map_err(|e| sweep_error(origin, key, with_suggestion(e.message())))
}

/// The swept keys and their lists of values, in the [sweep] table's order;
/// each value is checked alone on `base`, so an unknown key or a bad value
/// is named here, not as a combination.
fn swept_lists(
    sweep: toml::Table,
    base: &toml::Table,
    origin: &Origin,
) -> Result<(Vec<String>, Vec<Vec<toml::Value>>)> {
    let mut keys = Vec::new();
    let mut lists = Vec::new();
    for (key, value) in sweep {
        let toml::Value::Array(values) = value else {
            return Err(sweep_error(
                origin,
                &key,
                "a swept key takes a list of values, e.g. [100, 200]",
            ));
        };
        if values.is_empty() {
            return Err(sweep_error(origin, &key, "the list of values is empty"));
        }
        // Each key alone, with each of its values: an unknown key or a bad
        // value is named here, not as a combination.
        for v in &values {
            let mut t = base.clone();
            set(&mut t, &key, v.clone()).map_err(|m| sweep_error(origin, &key, m))?;
            config_of(t, origin, &key)?;
        }
        keys.push(key);
        lists.push(values);
    }
    Ok((keys, lists))
}

/// The points of the sweep in `origin`'s text (which must parse as a
/// config: see `config::parse`).
pub fn points(origin: &Origin) -> Result<(Vec<String>, Vec<Point>)> {
    let mut base: toml::Table = toml::from_str(&origin.text).map_err(|e| Error::Config {
        file: origin.name.clone(),
        line: 0,
        key: String::new(),
        message: e.message().to_string(),
    })?;
    let Some(toml::Value::Table(mut sweep)) = base.remove("sweep") else {
        return Err(Error::Config {
            file: origin.name.clone(),
            line: 0,
            key: "sweep".into(),
            message: "a sweep needs a [sweep] table mapping config keys to lists of values, \
                      e.g. \"model.controls\" = [[\"gdp\"], [\"gdp\", \"fdi\"]]"
                .into(),
        });
    };
    let combine = match sweep.remove("combine") {
        None => Combine::Grid,
        Some(toml::Value::String(s)) => {
            Combine::parse(&s).map_err(|m| sweep_error(origin, "combine", m))?
        }
        Some(other) => {
            return Err(sweep_error(
                origin,
                "combine",
                format!("{other} is not \"grid\" or \"zip\""),
            ));
        }
    };
    let (keys, lists) = swept_lists(sweep, &base, origin)?;
    if keys.is_empty() {
        return Err(Error::Config {
            file: origin.name.clone(),
            line: line_of_key(&origin.text, "sweep"),
            key: "sweep".into(),
            message: "the [sweep] table sweeps no key".into(),
        });
    }
    let lengths: Vec<usize> = lists.iter().map(Vec::len).collect();
    if combine.count(&lengths) > 100_000 {
        return Err(sweep_error(
            origin,
            &keys[0],
            format!("{} points are more than 100,000", combine.count(&lengths)),
        ));
    }
    let combos = combine
        .points(&lengths)
        .map_err(|(k, m)| sweep_error(origin, &keys[k], m))?;
    let points = combos
        .into_iter()
        .map(|combo| {
            let mut t = base.clone();
            let mut values = Vec::new();
            for ((key, list), &i) in keys.iter().zip(&lists).zip(&combo) {
                set(&mut t, key, list[i].clone()).map_err(|m| sweep_error(origin, key, m))?;
                values.push((key.clone(), list[i].clone()));
            }
            let config = config_of(t, origin, &keys[0])?;
            Ok(Point { values, config })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((keys, points))
}

/// A swept value as a CSV cell: strings bare, lists joined with '+'.
pub fn cell(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

/// The rows of sweep.csv for one point's summary.
pub fn rows(point: usize, values: &[(String, toml::Value)], s: &Summary) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let fmt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let mut model = |name: &str,
                     effects: &indexmap::IndexMap<String, crate::model::mediation::Effect>,
                     intervals: &[crate::model::mediation::Interval]| {
        for (key, e) in effects {
            let head: Vec<String> = std::iter::once(point.to_string())
                .chain(values.iter().map(|(_, v)| cell(v)))
                .chain([
                    name.to_string(),
                    key.clone(),
                    e.estimate.to_string(),
                    fmt(e.se),
                    fmt(e.p_value),
                    fmt(e.bootstrap.and_then(|b| b.p_value)),
                ])
                .collect();
            let mine: Vec<_> = intervals.iter().filter(|i| i.effect == *key).collect();
            if mine.is_empty() {
                out.push(
                    head.iter()
                        .cloned()
                        .chain(std::iter::repeat_n(String::new(), 4))
                        .collect(),
                );
            }
            for i in mine {
                out.push(
                    head.iter()
                        .cloned()
                        .chain([
                            i.method.clone(),
                            i.level.to_string(),
                            i.lower.to_string(),
                            i.upper.to_string(),
                        ])
                        .collect(),
                );
            }
        }
    };
    model("pooled", &s.effects, &s.intervals);
    for (label, g) in &s.groups {
        model(label, &g.effects, &g.intervals);
    }
    for (label, g) in &s.mediator_models {
        model(&format!("mediators={label}"), &g.effects, &g.intervals);
    }
    out
}

/// The header of sweep.csv for the swept `keys`.
pub fn header(keys: &[String]) -> Vec<String> {
    std::iter::once("point".to_string())
        .chain(keys.iter().cloned())
        .chain(
            [
                "model",
                "effect",
                "estimate",
                "se",
                "p_value",
                "bootstrap_p_value",
                "method",
                "level",
                "lower",
                "upper",
            ]
            .map(String::from),
        )
        .collect()
}

/// The CSV text of `rows` under `header`, quoted where needed.
pub fn csv_text(header: &[String], rows: &[Vec<String>]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Numerical(format!("writing sweep.csv: {e}"));
    w.write_record(header).map_err(err)?;
    for r in rows {
        w.write_record(r).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Numerical(format!("writing sweep.csv: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Keys whose value a flag gives and a sweep varies: refused, as the flag
/// would flatten the sweep.
pub fn check_flags(keys: &[String], flags: &BTreeMap<String, String>) -> Result<()> {
    for key in keys {
        if let Some(flag) = flags.get(key) {
            return Err(Error::InvalidOption {
                option: flag.clone(),
                message: format!("it sets {key}, which the sweep varies; drop one of them"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        Origin {
            text: text.into(),
            ..Origin::embedded()
        }
    }

    #[test]
    fn grids_and_zips() {
        let o = origin(
            "name = \"s\"\n[sweep]\n\"resampling.replicates\" = [100, 200]\n\"model.controls\" = [[], [\"gdp\"], [\"gdp\", \"fdi\"]]\n",
        );
        let (keys, grid) = points(&o).unwrap();
        assert_eq!(keys, ["resampling.replicates", "model.controls"]);
        assert_eq!(grid.len(), 6);
        assert_eq!(grid[4].config.resampling.replicates, 200);
        assert_eq!(grid[4].config.model.controls, ["gdp"]);
        let o = origin(
            "[sweep]\ncombine = \"zip\"\n\"data.synthetic.cities\" = [50, 100]\n\"data.synthetic.years\" = [5, 6]\n",
        );
        let (_, zipped) = points(&o).unwrap();
        assert_eq!(zipped.len(), 2);
        let s = zipped[1].config.data.synthetic.as_ref().unwrap();
        assert_eq!((s.cities, s.years), (100, 6));
        // A one-value list stands for every point, as in [simulation].
        let o = origin(
            "[sweep]\ncombine = \"zip\"\n\"data.synthetic.cities\" = [50, 100]\n\"data.synthetic.years\" = [7]\n",
        );
        let (_, zipped) = points(&o).unwrap();
        let years: Vec<_> = zipped
            .iter()
            .map(|p| p.config.data.synthetic.as_ref().unwrap().years)
            .collect();
        assert_eq!(years, [7, 7]);
    }

    #[test]
    fn unknown_swept_keys_are_named_with_their_line() {
        let o = origin("name = \"s\"\n\n[sweep]\n\"model.controsl\" = [[\"gdp\"]]\n");
        let e = points(&o).unwrap_err().to_string();
        assert!(e.contains(":4:"), "{e}");
        assert!(e.contains("did you mean 'controls'"), "{e}");
        let o = origin("[sweep]\n\"resampling.replicates\" = [\"many\"]\n");
        let e = points(&o).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("invalid type"), "{e}");
        let o = origin("[sweep]\ncombine = \"zip\"\n\"a.b\" = [1]\n\"name\" = [\"x\", \"y\"]\n");
        assert!(points(&o).is_err());
    }
}
