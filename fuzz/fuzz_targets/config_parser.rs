//! Fuzz target: arbitrary text through the config parser, then (when it
//! parses) through the checks that turn a config into a run plan, a sweep's
//! points and a simulation study. Any input may be refused with an error;
//! none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medsim::internals::study::config::{Origin, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Origin::file(std::path::Path::new("fuzz.toml"), text);
    let Ok(config) = parse(&origin) else {
        return;
    };
    let _ = config.plan(&origin);
    let _ = config.out_dir();
    if config.simulation.is_some() {
        let _ = config.study(&origin);
    }
    if config.sweep.is_some() {
        let _ = medsim::internals::study::sweep::points(&origin);
    }
});
