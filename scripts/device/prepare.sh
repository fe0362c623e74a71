#!/usr/bin/env bash
# Run HERE (the development machine) before a device session: builds the
# binaries the GPU machine runs (it has no Rust toolchain) without debug
# info, so they fit the 64 MiB a device call carries, and fetches the Vulkan
# loader packages it lacks. Everything lands in .device/ and .gl/, which
# this script adds to .git/info/exclude. Then, in the device tool:
#   run(command="bash scripts/device/h200.sh", carry=[".device", ".gl"], timeout_s=420)
set -euo pipefail
cd "$(dirname "$0")/../.."
for d in /.device/ /.gl/; do
  grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude
done
export CARGO_PROFILE_RELEASE_DEBUG=false CARGO_TARGET_DIR=target/device
cargo build --release --bin medsim
cargo test --release --no-run --test gpu --test backends --test oracle --test wild --test threshold --message-format=json 2>/dev/null \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' > target/device/tests.txt
rm -rf .device && mkdir -p .device
cp target/device/release/medsim .device/medsim
while read -r name path; do cp "$path" ".device/test-$name"; done < target/device/tests.txt
strip .device/* 2>/dev/null || true
mkdir -p .gl /tmp/amd64/partial
if ! ls .gl/*.deb >/dev/null 2>&1; then
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .device .gl
