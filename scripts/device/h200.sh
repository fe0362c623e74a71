#!/usr/bin/env bash
# Run ON the GPU machine (device tool), after scripts/device/prepare.sh here:
#   run(command="bash scripts/device/h200.sh", carry=[".device", ".gl"], timeout_s=540)
# Checks the GPU engine against the CPU engine on real hardware (the GPU
# test suites, under CI=true so a missing adapter fails) and measures
# replicates per second per scheme and precision; everything is written
# under $OUT (log.txt, bench.json). B_SCALE=1000 divides every B, for a dry
# run on a slow adapter.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/medsim-device-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

# Vulkan loaders (the CUDA image has the NVIDIA driver but not libvulkan).
if ! ldconfig -p | grep -q libvulkan; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
# The test binaries were built with this repository at /work/main (fixtures,
# the medsim binary): make that path lead here.
if [ "$(pwd)" != /work/main ] && [ ! -e /work/main ]; then
  mkdir -p /work && ln -s "$(pwd)" /work/main
fi
mkdir -p target/release && cp .device/medsim target/release/medsim
M=./target/release/medsim
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv || true
$M devices

echo "== GPU test suites (CI=true: a missing adapter fails)"
for t in .device/test-*; do
  [ -x "$t" ] || continue
  echo "-- $t"
  CI=true timeout 240 "$t" || echo "FAILED: $t"
done

echo "== throughput (summary.json replicates_per_second)"
S=${B_SCALE:-1}
bench() {
  local label=$1; shift
  local json
  json=$(timeout 120 $M run -q --json --out /tmp/bench-run "$@") || { echo "$label: failed"; return; }
  echo "$json" | python3 -c "
import json, sys
r = json.load(sys.stdin)['resampling']
print(json.dumps({'label': '$label', 'args': sys.argv[1:], 'backend': r['backend'], 'adapter': r.get('adapter'),
                  'precision': r.get('precision'), 'replicates': r['replicates'], 'seconds': r['seconds'],
                  'replicates_per_second': r['replicates_per_second']}))
" "$@" | tee -a "$OUT/bench.jsonl"
}
bench "pairs f32" --backend gpu --scheme pairs -B $((10000000 / S)) --ci percentile
bench "pairs f32 again" --backend gpu --scheme pairs -B $((10000000 / S)) --ci percentile
bench "pairs f64" --backend gpu --precision f64 --scheme pairs -B $((2000000 / S)) --ci percentile
bench "poisson f32" --backend gpu --scheme poisson -B $((10000000 / S)) --ci percentile
bench "bayes f32" --backend gpu --scheme bayes -B $((10000000 / S)) --ci percentile
bench "wild f32, no WCR" --backend gpu --scheme wild --no-wild-tests -B $((10000000 / S)) --ci percentile
bench "wild f32 + 4 WCR" --backend gpu --scheme wild -B $((2000000 / S)) --ci percentile
bench "permutation f32" --backend gpu --scheme permutation -B $((2000000 / S))
bench "pairs f32 studentized" --backend gpu --scheme pairs -B $((2000000 / S)) --ci percentile,studentized
bench "pairs cpu (16 cores)" --backend cpu --scheme pairs -B $((2000000 / S)) --ci percentile
echo "== the GPU engine alone (criterion: weights stage, engine calls of 2^20 replicates)"
[ -x .device/bench-gpu ] && timeout 200 .device/bench-gpu --bench --noplot 2>&1 | grep -E "^gpu|time:|thrpt:" || true
echo "== medsim bench --quick --stages (each GPU stage timed alone with its roofline, then the suite"
echo "   on the CPU engine, the H200 and the refit baseline)"
timeout 180 $M bench --quick --stages --out "$OUT/results" 2>&1 | grep -v "^bench:" || echo "medsim bench failed or timed out"
python3 -c "
import json
rows = [json.loads(l) for l in open('$OUT/bench.jsonl')]
json.dump(rows, open('$OUT/bench.json', 'w'), indent=1)
" || true
echo "done"
