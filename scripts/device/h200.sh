#!/usr/bin/env bash
# Run ON the GPU machine (device tool), after scripts/device/prepare.sh here:
#   run(command="bash scripts/device/h200.sh", carry=[".device", ".gl"], timeout_s=420)
# Measures the GPU engine on real hardware and checks it against the CPU
# engine, most valuable first, so that a run cut short still brings back the
# figures: end-to-end rates per scheme and precision on the one-model
# default problem, the threshold model's F tests on each engine, then
# `medsim bench --quick --stages` (each stage timed
# alone against its roofline, and the suite on every engine), then the GPU
# test suites under CI=true (a missing adapter fails) while time is left.
# Everything lands under $OUT: log.txt, e2e.jsonl, tests.txt, BENCHMARKS.md (every
# machine's section, this one's included) and this machine's bench JSON, for
# results/bench/. B_SCALE=1000 divides every B, for a dry run on a slow
# adapter; DEADLINE (seconds, default 330) is when the test suites stop.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/medsim-device-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
T0=$(date +%s)
left() { echo $(( ${DEADLINE:-330} - ($(date +%s) - T0) )); }

# Vulkan loaders (the CUDA image has the NVIDIA driver but not libvulkan).
if ! ldconfig -p | grep -q libvulkan; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
# The test binaries were built with this repository at /work/main (fixtures)
# and name the medsim binary at target/device/release: make both lead here.
if [ "$(pwd)" != /work/main ] && [ ! -e /work/main ]; then
  mkdir -p /work && ln -s "$(pwd)" /work/main
fi
mkdir -p target/device/release && cp .device/medsim target/device/release/medsim
M=$(pwd)/target/device/release/medsim
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv || true
nproc
$M devices

echo "== end to end: the one-model default problem (generated panel, six controls, city and year effects)"
S=${B_SCALE:-1}
$M generate --out /tmp/panel.csv --force >/dev/null
DATA=(--data /tmp/panel.csv --controls ln_gdp,industry,fdi,urban,gov,ln_pop_density --no-plots)
e2e() {
  local label=$1 b=$2; shift 2
  local dir=/tmp/e2e start end
  start=$(date +%s.%N)
  if ! timeout 90 "$M" run -q --out $dir "${DATA[@]}" -B $((b / S)) "$@" >/dev/null; then
    echo "$label: failed or timed out"; return
  fi
  end=$(date +%s.%N)
  python3 - "$label" "$start" "$end" "$dir" "$@" <<'EOF' | tee -a "$OUT/e2e.jsonl"
import json, sys
label, start, end, d = sys.argv[1:5]
m = json.load(open(d + '/manifest.json'))
wall = float(end) - float(start)
n = json.load(open(d + '/summary.json'))['resampling']['replicates']
print(json.dumps({'label': label, 'args': sys.argv[5:], 'engine': m['engine'], 'replicates': n,
                  'wall_s': round(wall, 3), 'resampling_s': round(m['timings']['resampling'], 3),
                  'replicates_per_second': round(m['replicates_per_second']),
                  'end_to_end_per_second': round(n / wall)}))
EOF
}
e2e "pairs f32" 10000000 --backend gpu --scheme pairs --ci percentile
e2e "pairs f32 again" 10000000 --backend gpu --scheme pairs --ci percentile
e2e "pairs f64" 4000000 --backend gpu --precision f64 --scheme pairs --ci percentile
e2e "bayes f32" 10000000 --backend gpu --scheme bayes --ci percentile
e2e "wild f32, no WCR" 10000000 --backend gpu --scheme wild --no-wild-tests --ci percentile
e2e "wild f32 + WCR" 1000000 --backend gpu --scheme wild --ci percentile
e2e "permutation f32" 2000000 --backend gpu --scheme permutation
e2e "pairs f32 studentized" 2000000 --backend gpu --scheme pairs --ci percentile,studentized
e2e "pairs cpu ($(nproc) threads)" 4000000 --backend cpu --scheme pairs --ci percentile
# Where the end-to-end time goes beyond the stages: the fixed cost (B = 1e6),
# the checkpoints (64 bytes per replicate to disk), the batch size.
e2e "pairs f32, B = 1e6" 1000000 --backend gpu --scheme pairs --ci percentile
e2e "pairs f32, no checkpoints" 10000000 --backend gpu --scheme pairs --ci percentile --checkpoint-every 0
e2e "pairs f32, no checkpoints, batches of 2^16" 10000000 --backend gpu --scheme pairs --ci percentile --checkpoint-every 0 --gpu-batch 65536
e2e "pairs f32, no checkpoints, batches of 2^18" 10000000 --backend gpu --scheme pairs --ci percentile --checkpoint-every 0 --gpu-batch 262144

echo "== threshold F tests: configs/threshold.toml (three tests, grid 300) [$(( $(date +%s) - T0 )) s]"
for engine in "--backend gpu" "--backend gpu --precision f64" "--backend cpu"; do
  for boot in residual wild; do
    sed "s/^bootstrap = .*/bootstrap = \"$boot\"/" configs/threshold.toml > /tmp/threshold-$boot.toml
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    if timeout 60 "$M" threshold /tmp/threshold-$boot.toml -q --out /tmp/thr -B $((100000 / S)) $engine >/dev/null; then
      end=$(date +%s.%N)
      python3 -c "import json,sys; t=json.load(open('/tmp/thr/threshold.json')); w=float(sys.argv[2])-float(sys.argv[1]); b=3*t['model']['replicates']; print(json.dumps({'label': 'threshold $boot', 'args': '$engine', 'engine': t['model'].get('backend'), 'replicates': b, 'wall_s': round(w, 3), 'end_to_end_per_second': round(b / w), 'p_values': [s['p_value'] for s in t['steps']]}))" "$start" "$end" | tee -a "$OUT/e2e.jsonl"
    else
      echo "threshold $boot $engine: failed or timed out"
    fi
  done
done

echo "== medsim bench --quick --stages [$(( $(date +%s) - T0 )) s]"
# Beside the committed machines' JSON, so BENCHMARKS.md comes back whole.
rm -rf /tmp/results && mkdir -p /tmp/results/bench
cp results/bench/*.json /tmp/results/bench/ && cp results/BENCHMARKS.md /tmp/results/
timeout 200 $M bench --quick --stages --out /tmp/results 2>&1 | grep -v "^bench:" \
  || echo "medsim bench failed or timed out"
cp /tmp/results/BENCHMARKS.md "$OUT/" 2>/dev/null
# This machine's JSON, its '+' (not allowed in a returned name) as '_':
# commit it as results/bench/<name with the '+' back>.json.
for f in /tmp/results/bench/*.json; do
  [ -e "results/bench/$(basename "$f")" ] || cp "$f" "$OUT/$(basename "$f" | tr + _)"
done

# The largest run last: 1e8 replicates, most of whose time is the aggregation.
e2e "pairs f32, B = 1e8" 100000000 --backend gpu --scheme pairs --ci percentile

echo "== GPU test suites (CI=true: a missing adapter fails) [$(( $(date +%s) - T0 )) s]"
for t in .device/test-*; do
  [ -x "$t" ] || continue
  l=$(left)
  if [ "$l" -lt 20 ]; then echo "-- $t: not run (deadline)"; continue; fi
  echo "-- $t (at most $l s)"
  # The whole output in tests.txt, the verdicts here.
  CI=true timeout "$l" "$t" 2>&1 | tee -a "$OUT/tests.txt" | grep -E "^test result|FAILED|panicked" \
    || echo "FAILED or timed out: $t"
done
echo "done [$(( $(date +%s) - T0 )) s]"
