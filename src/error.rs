//! Typed library errors. Each variant says what went wrong, where, and what was
//! expected, so a user can act on it; `exit_code` is what `main` returns.

use std::path::PathBuf;

/// Everything that can stop a medsim run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input file does not exist or cannot be opened.
    #[error("{path}: cannot open the input file: {reason}")]
    InputFile { path: PathBuf, reason: String },

    /// The CSV is malformed or a value in it is not what the model needs.
    /// `line` is 1-based as an editor shows it (the header is line 1).
    #[error("{file}:{line}: column '{column}': {problem}")]
    BadValue {
        file: String,
        line: u64,
        column: String,
        problem: String,
    },

    /// A row-level problem not tied to one column (ragged row, bad quoting).
    #[error("{file}:{line}: {problem}")]
    BadRow {
        file: String,
        line: u64,
        problem: String,
    },

    /// Columns the model needs are not in the header: all of them, each
    /// with its role.
    #[error(
        "{file}:1: {}; the header has: {available}",
        missing.iter().map(|(c, role)| format!("no column named '{c}' (wanted as {role})")).collect::<Vec<_>>().join(", ")
    )]
    MissingColumn {
        file: String,
        missing: Vec<(String, String)>,
        available: String,
    },

    /// Two rows describe the same unit in the same period.
    #[error(
        "{file}:{line}: duplicate (unit, time) pair ({unit}, {time}): already on line {first_line}; \
         each unit may appear once per period"
    )]
    DuplicateKey {
        file: String,
        line: u64,
        first_line: u64,
        unit: String,
        time: String,
    },

    /// A regressor has no variation left after the fixed effects, or is a
    /// linear combination of other regressors.
    #[error("{file}: {message}")]
    Collinear { file: String, message: String },

    /// Not enough data left to estimate the model.
    #[error("{file}: {message}")]
    TooLittleData { file: String, message: String },

    /// A command-line or configuration value is out of range or inconsistent.
    #[error("invalid option {option}: {message}")]
    InvalidOption { option: String, message: String },

    /// A config file's value is unknown, of the wrong type or out of
    /// range. `line` is 1-based; 0 when the value is a default the file
    /// does not state.
    #[error("{file}:{line}: {key}: {message}")]
    Config {
        file: String,
        line: usize,
        key: String,
        message: String,
    },

    /// Results could not be written where the user asked.
    #[error("cannot write results to {path}: {reason}")]
    Output { path: PathBuf, reason: String },

    /// A results folder that medsim will not write into (it holds other
    /// files, another run holds it, or it is a folder results must not
    /// bury); nothing was written.
    #[error("results folder {path}: {reason} (config key output.dir)")]
    Folder { path: PathBuf, reason: String },

    /// The GPU could not be used (no adapter, a failed stage or readback).
    #[error("GPU: {0}")]
    Gpu(String),

    /// The caller stopped the run (its progress callback said so: Ctrl-C
    /// in Python); nothing was written.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// A numerical failure that valid input should never cause.
    #[error("internal numerical error: {0}; please report this with the input that caused it")]
    Numerical(String),
}

impl Error {
    /// Process exit code: 2 for anything the user can fix (input data,
    /// options, output location), 1 for internal failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Numerical(_) | Error::Gpu(_) => 1,
            Error::Interrupted(_) => 130,
            _ => 2,
        }
    }
}

/// Result alias used across the library.
pub type Result<T> = std::result::Result<T, Error>;
