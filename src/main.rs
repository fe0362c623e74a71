//! The `medsim` command: parses the arguments, runs the command through the
//! library's `cli` layer, and maps errors to exit codes (0 success, 1
//! internal error or GPU failure, 2 bad input, options or output location).

use std::process::ExitCode;

use clap::Parser;

use medsim::internals::cli::{Cli, dispatch, mention_flags, stdout_failed};

fn main() -> ExitCode {
    // On a headless machine (CI, a cluster node) without XDG_RUNTIME_DIR,
    // Vulkan drivers' window-system probing (libwayland) prints "error:
    // XDG_RUNTIME_DIR is invalid or not set" while wgpu lists adapters,
    // though nothing is wrong. medsim draws no windows: point the variable
    // at the temporary folder when it is unset. Done first, while the
    // process has one thread, as set_var requires.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    // Notices name config keys; the command line adds their flags.
    medsim::set_reporter(|line| eprintln!("{}", mention_flags(line)));
    let result = dispatch(Cli::parse());
    if let Err(e) = std::io::Write::flush(&mut std::io::stdout()) {
        stdout_failed(e);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
