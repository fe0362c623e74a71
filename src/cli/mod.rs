//! The command line, a thin client of the library: arguments ([`args`]),
//! flags as config overrides ([`flags`]), the commands ([`commands`]) and
//! what they share ([`driver`]). Only this layer names flags and prints.

/// Whether what goes to standard output is data (`--json`), which must
/// arrive whole: a reader that stops early then fails the command.
pub(crate) static STDOUT_IS_DATA: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// A failed write to standard output: a reader that stopped early
/// (`medsim run | head`) ends a printed table quietly, with success; output
/// that is data (`--json`) cut short, or any other failure (a full disk),
/// is an error, exit 2.
pub fn stdout_failed(e: std::io::Error) -> ! {
    let data = STDOUT_IS_DATA.load(std::sync::atomic::Ordering::Relaxed);
    if e.kind() == std::io::ErrorKind::BrokenPipe && !data {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output ({e}); what was printed is incomplete");
    std::process::exit(2);
}

/// Print to standard output (see [`stdout_failed`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            $crate::cli::stdout_failed(e);
        }
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    () => { $crate::cli::out!("\n") };
    ($($arg:tt)*) => {{ $crate::cli::out!($($arg)*); $crate::cli::out!("\n"); }};
}

pub(crate) use out;

pub mod args;
mod commands;
mod driver;
mod flags;

pub use args::Cli;
use args::Command;

use crate::error::{Error, Result};

/// Run the command `cli` describes.
pub fn dispatch(cli: Cli) -> Result<()> {
    run_command(cli).map_err(name_flag)
}

/// A library error about a config key names the flag that sets it too,
/// where the option is named and where a message or a missing column's
/// role mentions a key.
fn name_flag(e: Error) -> Error {
    match e {
        Error::InvalidOption { option, message } => Error::InvalidOption {
            option: match flags::flag_of(&option) {
                Some(flag) => format!("{option} ({flag})"),
                None => mention_flags(&option),
            },
            message: mention_flags(&message),
        },
        Error::MissingColumn {
            file,
            missing,
            available,
        } => Error::MissingColumn {
            file,
            missing: missing
                .into_iter()
                .map(|(column, role)| (column, mention_flags(&role)))
                .collect(),
            available,
        },
        Error::Gpu(message) => Error::Gpu(mention_flags(&message)),
        Error::Collinear { file, message } => Error::Collinear {
            file,
            message: mention_flags(&message),
        },
        other => other,
    }
}

/// `message` with each config key that a flag sets followed by that flag:
/// "with model.instrument use ..." -> "with model.instrument (--instrument)
/// use ...". A key is matched whole (not inside a longer key).
pub fn mention_flags(message: &str) -> String {
    let part_of_key = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    'scan: while !rest.is_empty() {
        let before = out.chars().last();
        if !before.is_some_and(|c| part_of_key(c) || c == '.') {
            for key in flags::keys() {
                let Some(after) = rest.strip_prefix(key) else {
                    continue;
                };
                let mut next = after.chars();
                let whole = match next.next() {
                    None => true,
                    Some('.') => !next.next().is_some_and(part_of_key),
                    Some(c) => !part_of_key(c),
                };
                if whole && let Some(flag) = flags::flag_of(key) {
                    out.push_str(key);
                    if after.starts_with(')') {
                        out.push_str(&format!(", {flag}"));
                    } else {
                        out.push_str(&format!(" ({flag})"));
                    }
                    rest = after;
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().expect("rest is not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn run_command(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => commands::run(args, false, None),
        Command::Sensitivity(args) => commands::run(args, true, None),
        Command::Threshold(args) => commands::threshold(args, None),
        Command::Sweep(args) => commands::sweep(args, None),
        Command::Simulate(args) => commands::simulate(args, None),
        Command::Merge(args) => commands::merge(args),
        Command::Bench(args) => commands::bench(args),
        Command::Generate(args) => commands::generate_cmd(args),
        Command::Devices => {
            commands::devices();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_error_about_a_key_names_its_flag() {
        let e = name_flag(Error::InvalidOption {
            option: "resampling.strata".into(),
            message: "m".into(),
        });
        assert_eq!(
            e.to_string(),
            "invalid option resampling.strata (--strata): m"
        );
        let e = name_flag(Error::InvalidOption {
            option: "--shard".into(),
            message: "m".into(),
        });
        assert_eq!(e.to_string(), "invalid option --shard: m");
    }

    #[test]
    fn keys_in_a_message_name_their_flags_whole_keys_only() {
        assert_eq!(
            mention_flags("with model.instrument use pairs; turn off resampling.wild_tests."),
            "with model.instrument (--instrument) use pairs; turn off \
             resampling.wild_tests (--no-wild-tests)."
        );
        assert_eq!(
            mention_flags("a mediator (model.mediators)"),
            "a mediator (model.mediators, --mediator)"
        );
        for unchanged in [
            "model.instrumental",
            "xmodel.instrument",
            "model.instrument.x",
            "no key here",
        ] {
            assert_eq!(mention_flags(unchanged), unchanged);
        }
    }
}
