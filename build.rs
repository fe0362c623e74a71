//! Validates every WGSL compute stage in shaders/ with naga, after expanding
//! its includes, so that a broken shader fails `cargo build` (with the
//! `gpu` feature), and records the git revision.

#[cfg(feature = "gpu")]
#[path = "src/gpu/wgsl.rs"]
mod wgsl;

use std::path::Path;

/// The git revision of the working tree (`-dirty` with uncommitted
/// changes), or `unknown` outside a git checkout, for manifest.json.
fn git_revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(rev) if !rev.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        _ => "unknown".into(),
    }
}

fn main() {
    println!("cargo:rustc-env=MEDSIM_GIT_REVISION={}", git_revision());
    for path in [".git/HEAD", ".git/index", ".git/refs/heads"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    #[cfg(feature = "gpu")]
    validate_shaders();
}

/// Every stage of shaders/ parsed and validated by naga (the GPU build only).
#[cfg(feature = "gpu")]
fn validate_shaders() {
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
            // Subgroup operations: gemm_sg.wgsl, run only where the adapter
            // has them (SUBGROUP).
            let caps = naga::valid::Capabilities::SUBGROUP
                | if f64 {
                    naga::valid::Capabilities::FLOAT64
                } else {
                    naga::valid::Capabilities::empty()
                };
            let precision = if f64 { "f64" } else { "f32" };
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
                .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
                .subgroup_operations(naga::valid::SubgroupOperationSet::all())
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
