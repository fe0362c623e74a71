// Stage: one Philox4x32-10 block per invocation, for the known-answer test.
// #include "philox.wgsl"

struct Case {
    counter: vec4<u32>,
    key: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> cases: array<Case>;
@group(0) @binding(1) var<storage, read_write> blocks: array<vec4<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&cases)) {
        return;
    }
    blocks[i] = philox4x32_10(cases[i].counter, cases[i].key.xy);
}
