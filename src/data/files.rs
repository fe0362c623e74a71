//! Data files by extension: CSV (and anything else, read as CSV), Stata
//! `.dta` (every release, 102-119), Parquet and Excel (`.xlsx`, `.xlsm`,
//! `.xlsb`, `.xls`, `.ods`). Each becomes the same [`Table`] of text cells,
//! numbers written so that they parse back to the same f64 (integers as
//! integers, others shortest round-trip), missing values as empty cells,
//! so every format goes through the panel's checks as a CSV does. A row's
//! number in errors is its CSV line, its observation for `.dta` and
//! Parquet (1-based), its sheet row for Excel.

use std::path::Path;

use crate::data::table::{Table, number_cell as number, read_csv};
use crate::error::{Error, Result};

/// The file formats medsim reads, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Stata,
    Parquet,
    Excel,
}

/// The format of `path` by its extension (case-insensitive); anything
/// unknown is read as CSV.
pub fn format_of(path: &Path) -> Format {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "dta" => Format::Stata,
        "parquet" | "pq" => Format::Parquet,
        "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => Format::Excel,
        _ => Format::Csv,
    }
}

/// Read the data file at `path`; `sheet` picks an Excel workbook's sheet
/// (default the first) and is refused for other formats.
pub fn read_table(path: &Path, sheet: Option<&str>) -> Result<Table> {
    let format = format_of(path);
    if sheet.is_some() && format != Format::Excel {
        return Err(Error::InvalidOption {
            option: "data.sheet".into(),
            message: format!(
                "{} is not an Excel workbook (.xlsx, .xlsm, .xlsb, .xls, .ods); only workbooks \
                 have sheets",
                path.display()
            ),
        });
    }
    if format != Format::Csv {
        // The readers below open the file themselves; say plainly when it
        // is not there rather than in the parser's words.
        std::fs::metadata(path).map_err(|e| Error::InputFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    match format {
        Format::Csv => read_csv(path),
        Format::Stata => read_dta(path),
        Format::Parquet => read_parquet(path),
        Format::Excel => read_excel(path, sheet),
    }
}

fn unreadable(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::InputFile {
        path: path.to_path_buf(),
        reason: format!("not a readable {what} file: {e}"),
    }
}

/// A Stata dataset: numeric variables as numbers (every missing code, `.`
/// and `.a`-`.z`, as missing), strings and strLs as text. Value labels are
/// kept beside the table ([`Table::value_labels`]), so that a group column
/// reads as its labels.
fn read_dta(path: &Path) -> Result<Table> {
    use dta::stata::dta::dta_reader::DtaReader;
    use dta::stata::dta::long_string_table::LongStringTable;
    use dta::stata::dta::value::Value;
    use dta::stata::dta::value_label_table::ValueLabelTable;
    use dta::stata::stata_byte::StataByte;
    use dta::stata::stata_double::StataDouble;
    use dta::stata::stata_float::StataFloat;
    use dta::stata::stata_int::StataInt;
    use dta::stata::stata_long::StataLong;

    let bad = |e: dta::stata::dta::dta_error::DtaError| unreadable(path, "Stata .dta", e);
    let schema_reader = DtaReader::new()
        .from_path(path)
        .map_err(bad)?
        .read_header()
        .map_err(bad)?;
    let mut characteristics = schema_reader.read_schema().map_err(bad)?;
    characteristics.skip_to_end().map_err(bad)?;
    let mut records = characteristics.into_record_reader().map_err(bad)?;
    let schema = records.schema().clone();
    let encoding = records.encoding();
    let headers: Vec<String> = schema
        .variables()
        .iter()
        .map(|v| v.name().to_string())
        .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut long_refs = Vec::new();
    while let Some(record) = records.read_record().map_err(bad)? {
        let r = rows.len();
        let row = record
            .values()
            .iter()
            .enumerate()
            .map(|(c, value)| match value {
                Value::Byte(StataByte::Present(v)) => v.to_string(),
                Value::Int(StataInt::Present(v)) => v.to_string(),
                Value::Long(StataLong::Present(v)) => v.to_string(),
                Value::Float(StataFloat::Present(v)) => number(f64::from(*v)),
                Value::Double(StataDouble::Present(v)) => number(*v),
                Value::String(s) => s.trim().to_string(),
                Value::LongStringRef(reference) => {
                    long_refs.push((r, c, *reference));
                    String::new()
                }
                // Every numeric missing code.
                _ => String::new(),
            })
            .collect();
        rows.push(row);
    }
    let mut long_strings = records.into_long_string_reader().map_err(bad)?;
    if !long_refs.is_empty() {
        let mut table = LongStringTable::for_reading();
        long_strings.read_remaining_into(&mut table).map_err(bad)?;
        for (r, c, reference) in long_refs {
            if let Some(text) = table.get(&reference).and_then(|s| {
                s.data_str(encoding)
                    .map(|t| t.trim_end_matches('\0').trim().to_string())
            }) {
                rows[r][c] = text;
            }
        }
    } else {
        long_strings.skip_to_end().map_err(bad)?;
    }
    let mut label_reader = long_strings.into_value_label_reader().map_err(bad)?;
    let mut sets = ValueLabelTable::new();
    label_reader.read_remaining_into(&mut sets).map_err(bad)?;
    let value_labels = schema
        .variables()
        .iter()
        .filter(|v| !v.value_label_name().is_empty())
        .filter_map(|v| {
            let set = sets.get(v.value_label_name())?;
            let entries = set
                .entries()
                .iter()
                .map(|e| (e.value().to_string(), e.label().to_string()))
                .collect();
            Some((v.name().to_string(), entries))
        })
        .collect();
    // Errors name the observation, as Stata numbers it.
    let observations = (1..=rows.len() as u64).collect();
    let mut table = Table::numbered(&path.display().to_string(), headers, rows, observations)?;
    table.value_labels = value_labels;
    Ok(table)
}

/// A Parquet file's top-level columns: numbers, booleans (as 1 and 0) and
/// strings (dictionary-encoded ones, as pandas writes categoricals,
/// included); nulls as missing.
fn read_parquet(path: &Path) -> Result<Table> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    let bad = |e: parquet::errors::ParquetError| unreadable(path, "Parquet", e);
    let file = std::fs::File::open(path).map_err(|e| Error::InputFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let reader = SerializedFileReader::new(file).map_err(bad)?;
    let headers: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let source = path.display().to_string();
    let mut rows = Vec::new();
    for (r, row) in reader.get_row_iter(None).map_err(bad)?.enumerate() {
        let row = row.map_err(bad)?;
        let mut cells = Vec::with_capacity(headers.len());
        for (name, field) in row.get_column_iter() {
            let cell = match field {
                Field::Null => String::new(),
                Field::Bool(b) => u8::from(*b).to_string(),
                Field::Byte(v) => v.to_string(),
                Field::Short(v) => v.to_string(),
                Field::Int(v) => v.to_string(),
                Field::Long(v) => v.to_string(),
                Field::UByte(v) => v.to_string(),
                Field::UShort(v) => v.to_string(),
                Field::UInt(v) => v.to_string(),
                Field::ULong(v) => v.to_string(),
                Field::Float16(v) => number(f64::from(*v)),
                Field::Float(v) => number(f64::from(*v)),
                Field::Double(v) => number(*v),
                Field::Str(s) => s.trim().to_string(),
                Field::Bytes(b) => String::from_utf8_lossy(b.data()).trim().to_string(),
                // Dates, times and decimals as parquet prints them: text,
                // fine for an id or period label, refused where a number
                // is needed by the panel's checks.
                Field::Date(_)
                | Field::TimeMillis(_)
                | Field::TimeMicros(_)
                | Field::TimestampMillis(_)
                | Field::TimestampMicros(_)
                | Field::Decimal(_) => field.to_string().trim_matches('"').to_string(),
                _ => {
                    return Err(Error::BadValue {
                        file: source,
                        line: r as u64 + 1,
                        column: name.clone(),
                        problem: "a nested value (list, map or struct); medsim reads flat \
                                  columns of numbers or text"
                            .into(),
                    });
                }
            };
            cells.push(cell);
        }
        rows.push(cells);
    }
    let observations = (1..=rows.len() as u64).collect();
    Table::numbered(&source, headers, rows, observations)
}

/// The first sheet of a workbook, or `sheet`: its first used row names the
/// columns, the rows below are data (row numbers as the sheet shows them).
fn read_excel(path: &Path, sheet: Option<&str>) -> Result<Table> {
    use calamine::{Data, Reader, open_workbook_auto};

    let mut workbook = open_workbook_auto(path).map_err(|e| unreadable(path, "Excel", e))?;
    let names = workbook.sheet_names();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| *n == s)
            .cloned()
            .ok_or_else(|| Error::InvalidOption {
                option: "data.sheet".into(),
                message: format!(
                    "{} has no sheet named '{s}'; its sheets are: {}",
                    path.display(),
                    names.join(", ")
                ),
            })?,
        None => names.first().cloned().ok_or_else(|| Error::InputFile {
            path: path.to_path_buf(),
            reason: "the workbook has no sheets".into(),
        })?,
    };
    let range = workbook
        .worksheet_range(&name)
        .map_err(|e| unreadable(path, "Excel", e))?;
    let source = format!("{} (sheet '{name}')", path.display());
    let first_row = range.start().map_or(0, |(r, _)| r as u64);
    let mut rows = range.rows();
    let cell = |c: &Data| -> std::result::Result<String, String> {
        Ok(match c {
            Data::Empty => String::new(),
            Data::Int(v) => v.to_string(),
            Data::Float(v) => number(*v),
            Data::Bool(b) => u8::from(*b).to_string(),
            Data::String(s) => s.trim().to_string(),
            Data::DateTime(d) => number(d.as_f64()),
            Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
            Data::Error(e) => return Err(format!("the cell holds the Excel error {e}")),
        })
    };
    let headers: Vec<String> = match rows.next() {
        Some(header) => header.iter().map(|c| cell(c).unwrap_or_default()).collect(),
        None => {
            return Err(Error::BadRow {
                file: source,
                line: 1,
                problem: "the sheet is empty; expected a header row naming the columns".into(),
            });
        }
    };
    let mut body = Vec::new();
    let mut lines = Vec::new();
    for (i, row) in rows.enumerate() {
        // The sheet's own row number: 1-based, after the header.
        let line = first_row + i as u64 + 2;
        let mut cells = Vec::with_capacity(row.len());
        for (c, value) in row.iter().enumerate() {
            cells.push(cell(value).map_err(|problem| Error::BadValue {
                file: source.clone(),
                line,
                column: headers.get(c).cloned().unwrap_or_default(),
                problem,
            })?);
        }
        body.push(cells);
        lines.push(line);
    }
    Table::numbered(&source, headers, body, lines)
}
