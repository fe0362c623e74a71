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

/// A library error about a config key names the flag that sets it too.
fn name_flag(e: Error) -> Error {
    match e {
        Error::InvalidOption { option, message } => match flags::flag_of(&option) {
            Some(flag) => Error::InvalidOption {
                option: format!("{option} ({flag})"),
                message,
            },
            None => Error::InvalidOption { option, message },
        },
        other => other,
    }
}

fn run_command(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => commands::run(args, false, None),
        Command::Sensitivity(args) => commands::run(args, true, None),
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
}
