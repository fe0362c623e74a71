//! Raw tables of text cells with their source line numbers: read from and
//! written to CSV. Parsing cells into numbers is the panel module's job, so a
//! CSV file and the synthetic generator's output go through the same checks.

use std::path::Path;

/// Cell values read as missing (R and Stata spellings included).
pub const MISSING: &[&str] = &["", "NA", "N/A", "NaN", "nan", ".", "NULL", "null"];

use crate::error::{Error, Result};

/// A table of text cells as read from a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Name used in error messages (the file path, or `<synthetic>`).
    pub source: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// 1-based line on which each row starts (the header is line 1; a
    /// Stata or Parquet file's observation, an Excel sheet's row).
    pub lines: Vec<u64>,
    /// A Stata file's value labels: per labelled column, each integer
    /// value's text and its label (`crate::data::files`); empty otherwise.
    pub value_labels: Vec<(String, Vec<(String, String)>)>,
}

impl Table {
    /// A table built in memory; rows are numbered as if written to CSV.
    pub fn new(source: &str, headers: Vec<String>, rows: Vec<Vec<String>>) -> Self {
        let lines = (0..rows.len() as u64).map(|i| i + 2).collect();
        Table {
            source: source.to_string(),
            headers,
            rows,
            lines,
            value_labels: Vec::new(),
        }
    }

    /// A table read from a file whose rows are numbered `lines` (an
    /// observation, a sheet's row), its header checked as a CSV's is.
    pub fn numbered(
        source: &str,
        headers: Vec<String>,
        rows: Vec<Vec<String>>,
        lines: Vec<u64>,
    ) -> Result<Table> {
        check_headers(source, &headers)?;
        Ok(Table {
            source: source.to_string(),
            headers,
            rows,
            lines,
            value_labels: Vec::new(),
        })
    }

    /// The cells of `columns` that have value labels replaced by their
    /// labels (a group column of a Stata file reads as "east", not 1); a
    /// value without a label keeps its number.
    pub fn apply_value_labels(&mut self, columns: &[String]) {
        for (name, labels) in &self.value_labels {
            if !columns.contains(name) {
                continue;
            }
            let Some(c) = self.headers.iter().position(|h| h == name) else {
                continue;
            };
            let map: std::collections::HashMap<&str, &str> = labels
                .iter()
                .map(|(v, l)| (v.as_str(), l.as_str()))
                .collect();
            for row in &mut self.rows {
                if let Some(cell) = row.get_mut(c)
                    && let Some(label) = map.get(cell.as_str())
                {
                    *cell = label.to_string();
                }
            }
        }
    }

    /// A table from columns in memory (a data frame's): `numeric` columns
    /// of numbers (NaN: missing) and `labels` columns of any text (unit,
    /// time, cluster, group; "" or NA: missing), all of one length. Numbers
    /// are kept exactly (shortest round-trip decimals), so the model sees
    /// the same values as from the frame itself.
    pub fn from_columns(
        source: &str,
        numeric: &[(&str, &[f64])],
        labels: &[(&str, &[String])],
    ) -> Result<Table> {
        let lengths: Vec<(&str, usize)> = numeric
            .iter()
            .map(|(name, c)| (*name, c.len()))
            .chain(labels.iter().map(|(name, c)| (*name, c.len())))
            .collect();
        let n = lengths.first().map_or(0, |&(_, len)| len);
        if let Some((name, len)) = lengths.iter().find(|&&(_, len)| len != n) {
            return Err(Error::BadRow {
                file: source.to_string(),
                line: 1,
                problem: format!("column '{name}' has {len} values where the first column has {n}"),
            });
        }
        let headers: Vec<String> = numeric
            .iter()
            .map(|(name, _)| name.to_string())
            .chain(labels.iter().map(|(name, _)| name.to_string()))
            .collect();
        let rows = (0..n)
            .map(|i| {
                numeric
                    .iter()
                    .map(|(_, c)| number_cell(c[i]))
                    .chain(labels.iter().map(|(_, c)| c[i].clone()))
                    .collect()
            })
            .collect();
        check_headers(source, &headers)?;
        Ok(Table::new(source, headers, rows))
    }

    /// Position of a column in the header.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// The positions of the `wanted` columns (name, role), or one error
    /// naming every one that is missing.
    pub fn columns(&self, wanted: &[(&str, &str)]) -> Result<Vec<usize>> {
        let found: Vec<Option<usize>> = wanted.iter().map(|(n, _)| self.column(n)).collect();
        let missing: Vec<(String, String)> = wanted
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|((n, role), _)| (n.to_string(), role.to_string()))
            .collect();
        if !missing.is_empty() {
            const SHOWN: usize = 30;
            let mut available: Vec<String> = self
                .headers
                .iter()
                .take(SHOWN)
                .map(|h| clip(h).into_owned())
                .collect();
            if self.headers.len() > SHOWN {
                available.push(format!("and {} more", self.headers.len() - SHOWN));
            }
            return Err(Error::MissingColumn {
                file: self.source.clone(),
                missing,
                available: available.join(", "),
            });
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Keep only the rows for which `keep` is true.
    pub fn filter_rows(&self, mut keep: impl FnMut(&[String]) -> bool) -> Table {
        let (rows, lines) = self
            .rows
            .iter()
            .zip(&self.lines)
            .filter(|(r, _)| keep(r))
            .map(|(r, l)| (r.clone(), *l))
            .unzip();
        Table {
            source: self.source.clone(),
            headers: self.headers.clone(),
            rows,
            lines,
            value_labels: self.value_labels.clone(),
        }
    }
}

/// A number as a cell: integers (and integer-valued floats below 2^53)
/// without a decimal point, others in the shortest text that parses back
/// to the same f64; NaN is missing.
pub fn number_cell(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        format!("{}", x as i64)
    } else {
        format!("{x:?}")
    }
}

/// Read a comma-separated file with a header row.
pub fn read_csv(path: &Path) -> Result<Table> {
    let file = std::fs::File::open(path).map_err(|e| Error::InputFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    parse_csv(&path.display().to_string(), std::io::BufReader::new(file))
}

/// Parse comma-separated text with a header row from `input`; `source`
/// names it in errors (what [`read_csv`] and the fuzz target call).
pub fn parse_csv(source: &str, input: impl std::io::Read) -> Result<Table> {
    let source = source.to_string();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(&source, e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
        return Err(Error::BadRow {
            file: source,
            line: 1,
            problem: "the file is empty; expected a header row naming the columns".into(),
        });
    }
    // One field holding another separator: a semicolon- or tab-separated
    // file (as spreadsheets in many locales write), read as one column.
    if headers.len() == 1
        && let Some(sep) = [';', '\t', '|']
            .into_iter()
            .find(|&c| headers[0].contains(c))
    {
        let name = if sep == '\t' {
            "tab".to_string()
        } else {
            format!("'{sep}'")
        };
        return Err(Error::BadRow {
            file: source,
            line: 1,
            problem: format!(
                "the header is a single field; the file seems to be separated by {name}, \
                 but medsim reads comma-separated files (save it as CSV with commas)"
            ),
        });
    }
    check_headers(&source, &headers)?;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(&source, e))?;
        let line = record.position().map_or(0, |p| p.line());
        rows.push(record.iter().map(|c| c.trim().to_string()).collect());
        lines.push(line);
    }
    Ok(Table {
        source,
        headers,
        rows,
        lines,
        value_labels: Vec::new(),
    })
}

fn csv_error(source: &str, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    let problem = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } if len < expected_len => format!(
            "this row has {len} fields but the header has {expected_len}: a field is missing, \
             or an unmatched double quote (\") runs on into the next fields"
        ),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "this row has {len} fields but the header has {expected_len}: a value holds an \
             unquoted comma, or the row has a field too many"
        ),
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8 text".into(),
        csv::ErrorKind::Io(io) => format!("read error: {io}"),
        _ => e.to_string(),
    };
    Error::BadRow {
        file: source.to_string(),
        line,
        problem,
    }
}

/// Every column named, and no name twice.
fn check_headers(source: &str, headers: &[String]) -> Result<()> {
    if let Some(i) = headers.iter().position(|h| h.is_empty()) {
        return Err(Error::BadRow {
            file: source.to_string(),
            line: 1,
            problem: format!("header field {} is empty; every column needs a name", i + 1),
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(headers.len());
    for h in headers {
        if !seen.insert(h.as_str()) {
            return Err(Error::BadRow {
                file: source.to_string(),
                line: 1,
                problem: format!("column name '{}' appears twice in the header", clip(h)),
            });
        }
    }
    Ok(())
}

/// Write a table as CSV to `path` (callers wanting atomicity pass a
/// temporary path, see `output::write_file`).
pub fn write_csv(table: &Table, path: &Path) -> Result<()> {
    let out_err = |e: &dyn std::fmt::Display| Error::Output {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut w = csv::Writer::from_path(path).map_err(|e| out_err(&e))?;
    w.write_record(&table.headers).map_err(|e| out_err(&e))?;
    for row in &table.rows {
        w.write_record(row).map_err(|e| out_err(&e))?;
    }
    w.flush().map_err(|e| out_err(&e))
}

/// A cell as an error message quotes it: at most 80 characters (a longer
/// one cut, with how long it was), so a runaway cell cannot flood the
/// terminal.
pub fn clip(cell: &str) -> std::borrow::Cow<'_, str> {
    const MOST: usize = 80;
    if cell.chars().count() <= MOST {
        return cell.into();
    }
    let head: String = cell.chars().take(MOST - 20).collect();
    format!("{head}... ({} characters)", cell.chars().count()).into()
}
