#!/usr/bin/env bash
# Split a medsim run over a Slurm job array and merge it when all parts end:
#   scripts/cluster/submit.sh COMMAND CONFIG OUT N [extra medsim flags...]
# e.g.
#   scripts/cluster/submit.sh simulate configs/scale_study.toml results/scale_study 8
# queues tasks 0..7 of shard.sbatch, then merge.sbatch once all of them
# succeeded (afterok). Set MEDSIM to the binary's path if it is not on PATH,
# and MEDSIM_SBATCH to sbatch options that override the scripts' own (e.g.
# MEDSIM_SBATCH="--cpus-per-task=2 --mem=2G --partition=gpu").
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
command="$1" config="$2" out="$3" n="$4"
shift 4
export MEDSIM_COMMAND="$command" MEDSIM_CONFIG="$config" MEDSIM_OUT="$out" MEDSIM_ARGS="$*"
# shellcheck disable=SC2086 # MEDSIM_SBATCH is a list of options
array=$(sbatch --parsable ${MEDSIM_SBATCH:-} --array="0-$((n - 1))" --export=ALL "$here/shard.sbatch")
array="${array%%;*}"
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${MEDSIM_SBATCH:-} --dependency="afterok:${array}" --export=ALL "$here/merge.sbatch")
echo "queued: shards ${array} (${n} tasks), merge ${merge%%;*} -> ${out}"
