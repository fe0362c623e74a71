//! WGSL source assembly: a line `// #include "FILE"` is replaced by that
//! file of `shaders/` (recursively, each file once). Plain std, so that
//! build.rs validates exactly the text the engine compiles.

use std::collections::HashSet;

/// Expand the includes of `name` using `read(file) -> Option<source>`, with
/// `real.wgsl` (the numeric stages' `alias Real`) set to f64 when `f64` is
/// true.
pub fn assemble(
    name: &str,
    read: &dyn Fn(&str) -> Option<String>,
    f64: bool,
) -> Result<String, String> {
    let read = |f: &str| {
        if f64 && f == "real.wgsl" {
            Some("alias Real = f64;\n".to_string())
        } else {
            read(f)
        }
    };
    let mut seen = HashSet::new();
    let mut out = String::new();
    expand(name, &read, &mut seen, &mut out)?;
    Ok(out)
}

fn expand(
    name: &str,
    read: &dyn Fn(&str) -> Option<String>,
    seen: &mut HashSet<String>,
    out: &mut String,
) -> Result<(), String> {
    if !seen.insert(name.to_string()) {
        return Ok(());
    }
    let src = read(name).ok_or_else(|| format!("shader file '{name}' not found"))?;
    for line in src.lines() {
        match line.trim().strip_prefix("// #include ") {
            Some(inc) => expand(inc.trim().trim_matches('"'), read, seen, out)?,
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(())
}
