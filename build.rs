//! Validates every WGSL compute stage in shaders/ with naga, after expanding
//! its includes, so that a broken shader fails `cargo build`.

#[path = "src/gpu/wgsl.rs"]
mod wgsl;

use std::path::Path;

fn main() {
    let dir = Path::new("shaders");
    println!("cargo:rerun-if-changed=shaders");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("shaders/ exists")
        .map(|e| {
            e.expect("readable shaders/")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    entries.sort();
    for name in entries {
        println!("cargo:rerun-if-changed=shaders/{name}");
        // Every stage in both precisions of its `Real` (f32 plain, f64 with
        // the FLOAT64 capability that SHADER_F64 adapters have).
        for f64 in [false, true] {
            let source = wgsl::assemble(&name, &read, f64).unwrap_or_else(|e| panic!("{e}"));
            let module = naga::front::wgsl::parse_str(&source)
                .unwrap_or_else(|e| panic!("shaders/{name}: {}", e.emit_to_string(&source)));
            let caps = if f64 {
                naga::valid::Capabilities::FLOAT64
            } else {
                naga::valid::Capabilities::empty()
            };
            let precision = if f64 { "f64" } else { "f32" };
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
                .validate(&module)
                .unwrap_or_else(|e| {
                    panic!(
                        "shaders/{name} ({precision}): {}",
                        e.emit_to_string(&source)
                    )
                });
        }
    }
}
