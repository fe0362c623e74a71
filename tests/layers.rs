//! The library's layers import only downward, and no module imports itself
//! through others: `src/LAYER/` may name `crate::` modules of its own layer
//! and of the layers before it in `LAYERS`, and the graph of module imports
//! (every `crate::a::b` path in code, tests and comments left out) has no
//! cycle. docs/architecture.md explains the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Bottom to top. The crate root's modules (`error`, `resources`,
/// `provenance`, `notices`) sit below all of them.
const LAYERS: [&str; 8] = [
    "math", "data", "model", "resample", "gpu", "study", "output", "cli",
];
const BASE: [&str; 4] = ["error", "resources", "provenance", "notices"];

/// The code of a source file: comments removed, `#[cfg(test)]` modules
/// (always at the end of a file here) cut off.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module paths (`layer::module` or a base module) named in `code` as
/// `crate::...`, and, inside a layer, `super::module`.
fn imports(code: &str, layer: Option<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + 7..];
        let first = ident(rest);
        if first.is_empty() {
            panic!("`crate::` followed by something other than a module: {rest:.40}");
        }
        let second = rest[first.len()..]
            .strip_prefix("::")
            .map(ident)
            .unwrap_or_default();
        if LAYERS.contains(&first.as_str()) && !second.is_empty() {
            out.insert(format!("{first}::{second}"));
        } else {
            out.insert(first);
        }
    }
    if let Some(layer) = layer {
        for (at, _) in code.match_indices("super::") {
            let m = ident(&code[at + 7..]);
            if !m.is_empty() {
                out.insert(format!("{layer}::{m}"));
            }
        }
    }
    out
}

/// Every source file of the library as (module path, imports).
fn modules() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            for file in std::fs::read_dir(&path).unwrap() {
                let file = file.unwrap().path();
                if file.extension().is_some_and(|e| e == "rs") {
                    let stem = file.file_stem().unwrap().to_str().unwrap();
                    let module = if stem == "mod" {
                        name.clone()
                    } else {
                        format!("{name}::{stem}")
                    };
                    let text = std::fs::read_to_string(&file).unwrap();
                    out.insert(module, imports(&code(&text), Some(&name)));
                }
            }
        } else if !["lib", "main", "internals"].contains(&name.as_str()) {
            // lib.rs and internals.rs re-export from every layer: they are
            // the crate's surface, above all of them.
            let text = std::fs::read_to_string(&path).unwrap();
            out.insert(name, imports(&code(&text), None));
        }
    }
    // `gpu::GpuContext` names an item of the layer's own `mod.rs`.
    let known: BTreeSet<String> = out.keys().cloned().collect();
    for imports in out.values_mut() {
        *imports = std::mem::take(imports)
            .into_iter()
            .map(|m| match m.split_once("::") {
                Some((layer, _)) if !known.contains(&m) => layer.to_string(),
                _ => m,
            })
            .collect();
    }
    out
}

/// The layer's rank (`BASE` modules: -1).
fn rank(module: &str) -> i32 {
    let first = module.split("::").next().unwrap();
    if BASE.contains(&first) {
        return -1;
    }
    match LAYERS.iter().position(|l| *l == first) {
        Some(r) => r as i32,
        None => panic!("`{module}` is in no layer: add its folder to LAYERS or BASE"),
    }
}

#[test]
fn layers_import_only_downward() {
    let mut wrong = vec![];
    for (module, imports) in modules() {
        for import in imports {
            if rank(&import) > rank(&module) {
                wrong.push(format!("{module} imports {import}"));
            }
        }
    }
    assert!(wrong.is_empty(), "upward imports:\n{}", wrong.join("\n"));
}

#[test]
fn no_module_imports_itself_through_others() {
    let graph = modules();
    // A module's folder's `mod.rs` only declares its children: the edge
    // from a child to `layer` itself (e.g. `super::Type` in gpu) is kept.
    let mut cycles = vec![];
    let mut done = BTreeSet::new();
    for start in graph.keys() {
        let mut path = vec![start.clone()];
        walk(&graph, &mut path, &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

/// Depth-first search from the last module of `path`, recording each cycle
/// found; modules fully explored go into `done`.
fn walk(
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
    cycles: &mut Vec<String>,
) {
    let here = path.last().unwrap().clone();
    if done.contains(&here) {
        return;
    }
    for next in graph.get(&here).into_iter().flatten() {
        if *next == here || !graph.contains_key(next) {
            continue;
        }
        if let Some(i) = path.iter().position(|m| m == next) {
            cycles.push(format!("{} -> {next}", path[i..].join(" -> ")));
            continue;
        }
        path.push(next.clone());
        walk(graph, path, done, cycles);
        path.pop();
    }
    done.insert(here);
}

#[test]
fn the_checker_sees_an_upward_import_and_a_cycle() {
    let code = code(
        "use crate::study::run::x; // crate::output::files\nfn f() { crate::math::rng::philox(); }\n#[cfg(test)]\nmod tests { use crate::cli::x; }",
    );
    let found = imports(&code, Some("model"));
    assert_eq!(
        found,
        BTreeSet::from(["study::run".to_string(), "math::rng".to_string()])
    );
    assert!(rank("study::run") > rank("model::design"));
    let graph = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    let mut cycles = vec![];
    walk(
        &graph,
        &mut vec!["a".into()],
        &mut BTreeSet::new(),
        &mut cycles,
    );
    assert_eq!(cycles, vec!["a -> b -> a".to_string()]);
}
