//! Flags as config overrides: each flag of a run sets one config key, and
//! the origin records which flag gave it, so errors name the flag.

use crate::cli::args::{EngineFlags, RunArgs, RunFlags, SimulateFlags};
use crate::error::{Error, Result};
use crate::study::config::{self, Config, Origin};

pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// The config a run starts from: the file named, else the embedded
/// default; then the flags, each recorded with its key so errors name it.
pub(crate) fn run_config(args: &RunArgs) -> Result<(Config, Origin)> {
    let (mut c, mut origin) = match &args.config {
        Some(path) => config::read(path)?,
        None => config::paper(),
    };
    apply_flags(&args.flags, args.config.is_some(), &mut c, &mut origin)?;
    Ok((c, origin))
}

/// Set the config keys the flags give, recording each with its flag;
/// `with_file` says the config came from a file (not the embedded default).
pub(crate) fn apply_flags(
    f: &RunFlags,
    with_file: bool,
    c: &mut Config,
    origin: &mut Origin,
) -> Result<()> {
    let mut set_origin = |key: &str, flag: &str| {
        origin.flags.insert(key.to_string(), flag.to_string());
    };
    if let Some(path) = &f.data {
        // A flag's path is the working directory's, even with a config file.
        c.data.csv = Some(match with_file {
            true if path.is_relative() => std::env::current_dir()
                .map_err(|e| Error::InputFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
                .join(path),
            _ => path.clone(),
        });
        c.data.synthetic = None;
        set_origin("data.csv", "--data");
        if !with_file {
            // The embedded default's controls, groups and mediator sets
            // are the synthetic panel's; a file gets none unless asked.
            c.model.controls.clear();
            c.model.groups.clear();
            c.model.also_mediators.clear();
            c.name = path
                .file_stem()
                .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
        }
    }
    apply_table(FLAGS, f, c, origin);
    apply_table(ENGINE_FLAGS, &f.engine, c, origin);
    Ok(())
}

/// Set the config keys the flags of `table` give, recording each with its
/// flag.
pub(crate) fn apply_table<A>(table: &[Flag<A>], args: &A, c: &mut Config, origin: &mut Origin) {
    for flag in table {
        if (flag.apply)(args, c) {
            origin
                .flags
                .insert(flag.key.to_string(), flag.flag.to_string());
        }
    }
}

/// One flag of a command (`A`, its parsed flags): the config key it
/// overrides, and how its value sets it (false: the flag was not given).
pub(crate) struct Flag<A> {
    pub(crate) flag: &'static str,
    pub(crate) key: &'static str,
    apply: fn(&A, &mut Config) -> bool,
}

/// Every flag of a run that overrides a config key, with [`ENGINE_FLAGS`]
/// (`--data`, whose path and defaults depend on whether a config file was
/// given, is applied first by `apply_flags`).
pub(crate) const FLAGS: &[Flag<RunFlags>] = &[
    Flag {
        flag: "--sheet",
        key: "data.sheet",
        apply: |f, c| set(f.sheet.clone().map(Some), &mut c.data.sheet),
    },
    Flag {
        flag: "--unit",
        key: "data.unit",
        apply: |f, c| set(f.unit.clone(), &mut c.data.unit),
    },
    Flag {
        flag: "--time",
        key: "data.time",
        apply: |f, c| set(f.time.clone(), &mut c.data.time),
    },
    Flag {
        flag: "--lag",
        key: "data.lag",
        apply: |f, c| set(shifts(&f.lag), &mut c.data.lag),
    },
    Flag {
        flag: "--lead",
        key: "data.lead",
        apply: |f, c| set(shifts(&f.lead), &mut c.data.lead),
    },
    Flag {
        flag: "--outcome",
        key: "model.outcome",
        apply: |f, c| set(f.outcome.clone(), &mut c.model.outcome),
    },
    Flag {
        flag: "--treatment",
        key: "model.treatment",
        apply: |f, c| set(f.treatment.clone(), &mut c.model.treatment),
    },
    Flag {
        flag: "--mediator",
        key: "model.mediators",
        apply: |f, c| {
            set(
                f.mediator.as_deref().map(split_list),
                &mut c.model.mediators,
            )
        },
    },
    Flag {
        flag: "--controls",
        key: "model.controls",
        apply: |f, c| set(f.controls.as_deref().map(split_list), &mut c.model.controls),
    },
    Flag {
        flag: "--instrument",
        key: "model.instrument",
        apply: |f, c| {
            set(
                f.instrument.as_deref().map(split_list),
                &mut c.model.instrument,
            )
        },
    },
    Flag {
        flag: "--mediator-instrument",
        key: "model.mediator_instrument",
        apply: |f, c| {
            set(
                f.mediator_instrument.as_deref().map(split_list),
                &mut c.model.mediator_instrument,
            )
        },
    },
    Flag {
        flag: "--moderator",
        key: "model.moderator",
        apply: |f, c| set(f.moderator.clone().map(Some), &mut c.model.moderator),
    },
    Flag {
        flag: "--moderated",
        key: "model.moderated",
        apply: |f, c| {
            set(
                f.moderated.as_deref().map(split_list),
                &mut c.model.moderated,
            )
        },
    },
    Flag {
        flag: "--center",
        key: "model.center",
        apply: |f, c| set(f.center.then_some(true), &mut c.model.center),
    },
    Flag {
        flag: "--at",
        key: "model.at",
        apply: |f, c| set(f.at.as_deref().map(|a| Some(at_values(a))), &mut c.model.at),
    },
    Flag {
        flag: "--interaction",
        key: "model.interaction",
        apply: |f, c| set(f.interaction.then_some(true), &mut c.model.interaction),
    },
    Flag {
        flag: "--serial",
        key: "model.serial",
        apply: |f, c| {
            let chain = f.serial.as_deref().map(split_list);
            set(chain.is_some().then_some(true), &mut c.model.serial);
            set(chain, &mut c.model.mediators)
        },
    },
    Flag {
        flag: "--confounding",
        key: "sensitivity.confounding",
        apply: |f, c| f.confounding && set_sensitivity(c, |s| s.confounding = true),
    },
    Flag {
        flag: "--benchmark",
        key: "sensitivity.benchmark",
        apply: |f, c| {
            !f.benchmark.is_empty() && set_sensitivity(c, |s| s.benchmark = f.benchmark.clone())
        },
    },
    Flag {
        flag: "--kd",
        key: "sensitivity.kd",
        apply: |f, c| !f.kd.is_empty() && set_sensitivity(c, |s| s.kd = f.kd.clone()),
    },
    Flag {
        flag: "--rv-replicates",
        key: "sensitivity.rv_replicates",
        apply: |f, c| f.rv_replicates && set_sensitivity(c, |s| s.rv_replicates = true),
    },
    Flag {
        flag: "--contrast",
        key: "model.contrast",
        apply: |f, c| {
            set(
                (!f.contrast.is_empty()).then(|| Some(f.contrast.clone())),
                &mut c.model.contrast,
            )
        },
    },
    Flag {
        flag: "--group",
        key: "model.groups",
        apply: |f, c| set(f.group.as_deref().map(split_list), &mut c.model.groups),
    },
    Flag {
        flag: "--cluster",
        key: "model.cluster",
        apply: |f, c| set(f.cluster.clone().map(Some), &mut c.model.cluster),
    },
    Flag {
        flag: "--fixed-effects",
        key: "model.fixed_effects",
        apply: |f, c| set(f.fixed_effects.clone(), &mut c.model.fixed_effects),
    },
    Flag {
        flag: "--mc-draws",
        key: "inference.mc_draws",
        apply: |f, c| set(f.mc_draws, &mut c.inference.mc_draws),
    },
    Flag {
        flag: "--seed",
        key: "resampling.seed",
        apply: |f, c| set(f.seed, &mut c.resampling.seed),
    },
    Flag {
        flag: "--name",
        key: "name",
        apply: |f, c| set(f.name.clone(), &mut c.name),
    },
    Flag {
        flag: "--out",
        key: "output.dir",
        apply: |f, c| set(f.out.clone().map(Some), &mut c.output.dir),
    },
    Flag {
        flag: "--scheme",
        key: "resampling.scheme",
        apply: |f, c| set(f.scheme.clone(), &mut c.resampling.scheme),
    },
    Flag {
        flag: "-B",
        key: "resampling.replicates",
        apply: |f, c| set(f.replicates, &mut c.resampling.replicates),
    },
    Flag {
        flag: "--weights",
        key: "resampling.weights",
        apply: |f, c| set(f.weights.clone(), &mut c.resampling.weights),
    },
    Flag {
        flag: "--strata",
        key: "resampling.strata",
        apply: |f, c| set(f.strata.clone().map(Some), &mut c.resampling.strata),
    },
    Flag {
        flag: "--batch",
        key: "resampling.batch",
        apply: |f, c| set(f.batch, &mut c.resampling.batch),
    },
    Flag {
        flag: "--adapter",
        key: "resampling.adapter",
        apply: |f, c| set(f.adapter.clone().map(Some), &mut c.resampling.adapter),
    },
    Flag {
        flag: "--gpu-batch",
        key: "resampling.gpu_batch",
        apply: |f, c| set(f.gpu_batch, &mut c.resampling.gpu_batch),
    },
    Flag {
        flag: "--memory",
        key: "resampling.memory_mib",
        apply: |f, c| set(f.memory, &mut c.resampling.memory_mib),
    },
    Flag {
        flag: "--level",
        key: "inference.levels",
        apply: |f, c| {
            set(
                (!f.level.is_empty()).then(|| f.level.clone()),
                &mut c.inference.levels,
            )
        },
    },
    Flag {
        flag: "--ci",
        key: "inference.methods",
        apply: |f, c| set(list(&f.ci), &mut c.inference.methods),
    },
    Flag {
        flag: "--also-mediators",
        key: "model.also_mediators",
        apply: |f, c| {
            set(
                list(&f.also_mediators).map(|sets| sets.iter().map(|s| split_list(s)).collect()),
                &mut c.model.also_mediators,
            )
        },
    },
    Flag {
        flag: "--no-wild-tests",
        key: "resampling.wild_tests",
        apply: |f, c| {
            set(
                f.no_wild_tests.then_some(false),
                &mut c.resampling.wild_tests,
            )
        },
    },
    Flag {
        flag: "--json",
        key: "output.json",
        apply: |f, c| set(f.json.then_some(true), &mut c.output.json),
    },
    Flag {
        flag: "--no-plots",
        key: "output.plots",
        apply: |f, c| set(f.no_plots.then_some(false), &mut c.output.plots),
    },
    Flag {
        flag: "--save-replicates",
        key: "output.save_replicates",
        apply: |f, c| {
            set(
                f.save_replicates.then_some(true),
                &mut c.output.save_replicates,
            )
        },
    },
];

/// The engine flags run, sweep and simulate share.
pub(crate) const ENGINE_FLAGS: &[Flag<EngineFlags>] = &[
    Flag {
        flag: "--backend",
        key: "resampling.backend",
        apply: |f, c| set(f.backend.clone(), &mut c.resampling.backend),
    },
    Flag {
        flag: "--precision",
        key: "resampling.precision",
        apply: |f, c| set(f.precision.clone().map(Some), &mut c.resampling.precision),
    },
    Flag {
        flag: "--threads",
        key: "resampling.threads",
        apply: |f, c| set(f.threads, &mut c.resampling.threads),
    },
];

/// Every flag of `medsim simulate` that overrides a config key (with
/// [`ENGINE_FLAGS`]).
pub(crate) const SIMULATE_FLAGS: &[Flag<SimulateFlags>] = &[
    Flag {
        flag: "--datasets",
        key: "simulation.datasets",
        apply: |f, c| match c.simulation.as_mut() {
            Some(s) => set(f.datasets, &mut s.datasets),
            None => false,
        },
    },
    Flag {
        flag: "-B",
        key: "simulation.replicates",
        apply: |f, c| match c.simulation.as_mut() {
            Some(s) => set(f.replicates, &mut s.replicates),
            None => false,
        },
    },
    Flag {
        flag: "--out",
        key: "output.dir",
        apply: |f, c| set(f.out.clone().map(Some), &mut c.output.dir),
    },
    Flag {
        flag: "--no-plots",
        key: "output.plots",
        apply: |f, c| set(f.no_plots.then_some(false), &mut c.output.plots),
    },
];

/// Set `field` to `value` when given.
fn set<T>(value: Option<T>, field: &mut T) -> bool {
    let given = value.is_some();
    if let Some(v) = value {
        *field = v;
    }
    given
}

/// Set a key of `[sensitivity]`, adding the section (which then asks only
/// for what its keys say) when the config has none.
fn set_sensitivity(c: &mut Config, apply: impl FnOnce(&mut config::SensitivityConfig)) -> bool {
    apply(c.sensitivity.get_or_insert_with(Default::default));
    true
}

/// `--at`: numbers as values, else a name (mean-sd, percentiles) that the
/// config's check judges.
fn at_values(text: &str) -> config::AtConfig {
    let values: std::result::Result<Vec<f64>, _> =
        split_list(text).iter().map(|v| v.parse::<f64>()).collect();
    match values {
        Ok(v) if !v.is_empty() => config::AtConfig::Values(v),
        _ => config::AtConfig::Named(text.trim().to_string()),
    }
}

/// `--lag`'s or `--lead`'s (column, K) pairs as the config holds them;
/// None when not given.
fn shifts(values: &[(String, u32)]) -> Option<indexmap::IndexMap<String, u32>> {
    (!values.is_empty()).then(|| values.iter().cloned().collect())
}

/// A repeated or comma-separated flag's values; None when not given.
fn list(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

/// The options of where and how much of a run is computed (resume, shard,
/// replay, checkpoints): keys of no config file, named so by the library.
const SCALE_FLAGS: &[(&str, &str)] = &[
    ("scale.resume", "--resume"),
    ("scale.shard", "--shard"),
    ("scale.manifest", "--manifest"),
    ("scale.checkpoint_every", "--checkpoint-every"),
];

/// Every config key a flag sets, longest first (so a key is never taken
/// for a shorter one it starts with).
pub(crate) fn keys() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = FLAGS
        .iter()
        .map(|f| f.key)
        .chain(SIMULATE_FLAGS.iter().map(|f| f.key))
        .chain(ENGINE_FLAGS.iter().map(|f| f.key))
        .chain(SCALE_FLAGS.iter().map(|&(key, _)| key))
        .filter(|k| k.contains('.'))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.push("data.csv");
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    keys
}

/// The flag that sets config `key`, if one does.
pub(crate) fn flag_of(key: &str) -> Option<&'static str> {
    if key == "data.csv" {
        return Some("--data");
    }
    FLAGS
        .iter()
        .find(|f| f.key == key)
        .map(|f| f.flag)
        .or_else(|| SIMULATE_FLAGS.iter().find(|f| f.key == key).map(|f| f.flag))
        .or_else(|| ENGINE_FLAGS.iter().find(|f| f.key == key).map(|f| f.flag))
        .or_else(|| {
            SCALE_FLAGS
                .iter()
                .find(|&&(k, _)| k == key)
                .map(|&(_, f)| f)
        })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    /// Each flag's help names the config key the table gives it, and every
    /// flag of run and simulate that has a key in its help is in its table.
    #[test]
    fn the_table_and_the_help_agree() {
        let cli = Cli::command();
        let engine = ENGINE_FLAGS.iter().map(|f| (f.flag, f.key));
        let run: Vec<(&str, &str)> = FLAGS
            .iter()
            .map(|f| (f.flag, f.key))
            .chain(engine.clone())
            .collect();
        let simulate: Vec<(&str, &str)> = SIMULATE_FLAGS
            .iter()
            .map(|f| (f.flag, f.key))
            .chain(engine)
            .collect();
        for (command, table) in [("run", run), ("simulate", simulate)] {
            let sub = cli.find_subcommand(command).expect("subcommand");
            let help_of = |flag: &str| -> String {
                let arg = sub
                    .get_arguments()
                    .find(|a| match flag.strip_prefix("--") {
                        Some(long) => a.get_long() == Some(long),
                        None => {
                            a.get_short() == flag.strip_prefix('-').and_then(|s| s.chars().next())
                        }
                    })
                    .unwrap_or_else(|| panic!("{flag} is not a flag of medsim {command}"));
                arg.get_help().map(|h| h.to_string()).unwrap_or_default()
            };
            for &(flag, key) in &table {
                let help = help_of(flag)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                assert!(
                    help.contains(&format!("[{key}")),
                    "{flag}'s help does not name {key}: {help}"
                );
            }
            for arg in sub.get_arguments() {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let Some(long) = arg.get_long() else { continue };
                let short = arg.get_short().map(|s| format!("-{s}"));
                let named = table
                    .iter()
                    .any(|&(f, _)| f == format!("--{long}") || Some(f) == short.as_deref());
                let has_key = help.contains(" [") && !help.contains("[default:");
                assert!(
                    named || !has_key || long == "data",
                    "medsim {command} --{long} names a key but is not in its table: {help}"
                );
            }
        }
        assert_eq!(flag_of("model.controls"), Some("--controls"));
        assert_eq!(flag_of("data.csv"), Some("--data"));
        assert_eq!(flag_of("sweep"), None);
        assert_eq!(flag_of("simulation.datasets"), Some("--datasets"));
        assert_eq!(flag_of("resampling.threads"), Some("--threads"));
    }
}
