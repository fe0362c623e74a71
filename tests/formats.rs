//! Data files economists hand around read as their CSV does: one panel
//! saved by pandas as CSV, Stata (.dta, releases 118 and 114, with a strL
//! id, value-labelled regions and Stata missing values), Parquet (snappy
//! and zstd, a dictionary-encoded region) and Excel (its second sheet),
//! by `tests/fixtures/make_format_fixtures.py`. The whole summary of a
//! grouped, resampled run is the CSV's; bad files and bad sheets get clear
//! errors.

mod common;

use common::fixture;
use medsim::internals::data::files::read_table;
use medsim::{BackendChoice, DataSource, Error, ResampleSpec, RunPlan, Summary, default_spec};

/// The run's summary.json (timings are not in it), the source left out.
fn run(data: DataSource) -> Result<String, Error> {
    let mut model = default_spec();
    model.controls = vec!["ln_gdp".into(), "industry".into(), "fdi".into()];
    model.groups = vec!["region".into()];
    let mut plan = RunPlan::new("formats", data, model);
    plan.group_by = vec!["region".into()];
    plan.resampling = Some(ResampleSpec {
        replicates: 400,
        backend: BackendChoice::Cpu,
        ..ResampleSpec::default()
    });
    let mut s: Summary = medsim::run(&plan, &|_, _| Ok(()))?;
    s.data.source = String::new();
    Ok(serde_json::to_string_pretty(&s).expect("a summary serialises"))
}

#[test]
fn every_format_gives_the_csvs_summary() {
    let want = run(DataSource::file(fixture("formats.csv"))).unwrap();
    // The fixture's holes: two missing controls and a missing mediator.
    assert!(want.contains("\"dropped_missing\": 3,"));
    for group in ["region=central", "region=east", "region=west"] {
        assert!(want.contains(&format!("\"{group}\": {{")), "{group}");
    }
    for (file, sheet) in [
        ("formats.dta", None),
        ("formats_114.dta", None),
        ("formats.parquet", None),
        ("formats_zstd.parquet", None),
        ("formats.xlsx", Some("panel")),
        ("formats.xls", None),
        ("formats.ods", None),
    ] {
        let got = run(DataSource::File {
            path: fixture(file),
            sheet: sheet.map(String::from),
        })
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(got == want, "{file}: the summary differs from the CSV's");
    }
}

/// Stata's extended missing values (`.a` to `.z`) are missing as `.` is:
/// the fixture's three holes (doubles stored as `.`) rewritten as `.a`,
/// `.m` and `.z` give the CSV's summary.
#[test]
fn stata_extended_missing_codes_are_missing() {
    let want = run(DataSource::file(fixture("formats.csv"))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in ["formats.dta", "formats_114.dta"] {
        let mut bytes = std::fs::read(fixture(name)).unwrap();
        // `.` is the double 2^1023; `.a` + k adds k * 2^1011 (Stata's dta spec).
        let dot = 0x7fe0_0000_0000_0000u64.to_le_bytes();
        let at: Vec<usize> = (0..bytes.len() - 8)
            .filter(|&i| bytes[i..i + 8] == dot)
            .collect();
        assert_eq!(at.len(), 3, "{name}: the fixture's three holes");
        for (&i, k) in at.iter().zip([1u64, 13, 26]) {
            bytes[i..i + 8].copy_from_slice(&(0x7fe0_0000_0000_0000u64 + (k << 40)).to_le_bytes());
        }
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let got = run(DataSource::file(path)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == want, "{name}: the summary differs from the CSV's");
    }
}

#[test]
fn stata_cells_are_the_csvs_cells() {
    let csv = read_table(&fixture("formats.csv"), None).unwrap();
    let dta = read_table(&fixture("formats.dta"), None).unwrap();
    assert_eq!(dta.headers, csv.headers);
    // Observation numbers, as Stata counts them.
    assert_eq!(dta.lines[..3], [1, 2, 3]);
    let column = |t: &medsim::Table, name: &str| -> Vec<String> {
        let c = t.column(name).unwrap();
        t.rows.iter().map(|r| r[c].clone()).collect()
    };
    // The strL ids, the years (an int16) and the numbers, holes included.
    for name in ["city", "year", "dei", "ln_gdp", "agglom"] {
        let (a, b) = (column(&dta, name), column(&csv, name));
        for (x, y) in a.iter().zip(&b) {
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(u), Ok(v)) => assert_eq!(u.to_bits(), v.to_bits(), "{name}: {x} {y}"),
                _ => assert_eq!(x, y, "{name}"),
            }
        }
    }
    // region is an integer with value labels: numbers in the table,
    // labels where it is a group column.
    assert!(
        column(&dta, "region")
            .iter()
            .all(|v| v.parse::<i32>().is_ok())
    );
    let mut labelled = dta.clone();
    labelled.apply_value_labels(&["region".to_string()]);
    assert_eq!(column(&labelled, "region"), column(&csv, "region"));
}

#[test]
fn an_excel_workbook_needs_the_right_sheet() {
    // The first sheet holds notes, not the panel: its columns are missing.
    let first = run(DataSource::file(fixture("formats.xlsx"))).unwrap_err();
    assert!(
        first.to_string().contains("sheet 'notes'") && first.to_string().contains("no column"),
        "{first}"
    );
    let wrong = read_table(&fixture("formats.xlsx"), Some("Panel")).unwrap_err();
    assert!(
        wrong
            .to_string()
            .contains("has no sheet named 'Panel'; its sheets are: notes, panel"),
        "{wrong}"
    );
    let not_a_workbook = read_table(&fixture("formats.csv"), Some("panel")).unwrap_err();
    assert!(
        not_a_workbook.to_string().contains("not an Excel workbook"),
        "{not_a_workbook}"
    );
    // Rows are numbered as the sheet shows them (the header is row 1).
    let table = read_table(&fixture("formats.xlsx"), Some("panel")).unwrap();
    assert_eq!(table.lines[0], 2);
}

#[test]
fn bad_files_and_wrong_types_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["fake.dta", "fake.parquet", "fake.xlsx"] {
        let path = dir.path().join(name);
        std::fs::write(&path, "city,year\nC1,2011\n").unwrap();
        let e = read_table(&path, None).unwrap_err();
        assert!(
            matches!(e, Error::InputFile { .. }) && e.to_string().contains("not a readable"),
            "{name}: {e}"
        );
    }
    let missing = read_table(&dir.path().join("nowhere.dta"), None).unwrap_err();
    assert!(matches!(missing, Error::InputFile { .. }), "{missing}");
    // A text column where a number is needed: named, with its observation.
    let mut model = default_spec();
    model.groups.clear();
    model.controls = vec!["region".into()];
    let plan = RunPlan::new(
        "formats",
        DataSource::file(fixture("formats.parquet")),
        model,
    );
    let e = medsim::run(&plan, &|_, _| Ok(())).unwrap_err().to_string();
    assert!(
        e.contains("formats.parquet:1: column 'region'"),
        "the error names the file, observation and column: {e}"
    );
}
