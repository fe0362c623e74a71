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
        let source = wgsl::assemble(&name, &read).unwrap_or_else(|e| panic!("{e}"));
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("shaders/{name}: {}", e.emit_to_string(&source)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("shaders/{name}: {}", e.emit_to_string(&source)));
    }
}
