#!/usr/bin/env bash
# A single-node Slurm on this machine, for testing the job scripts for real
# (CI starts it; no systemd, no cgroups, nothing outside one folder):
#   scripts/cluster/local-slurm.sh start DIR   # prints the SLURM_CONF to export
#   scripts/cluster/local-slurm.sh stop DIR
# Needs Debian's slurm-wlm and munge; runs munged, slurmctld and slurmd as
# the calling user (root in CI) with a fresh munge key, state and logs in
# DIR, on ports 16817/16818.
set -euo pipefail
action="${1:?start or stop}" dir="${2:?a folder for the state}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
conf="$dir/slurm.conf"

stop() {
  if [ -f "$conf" ]; then
    SLURM_CONF="$conf" scontrol shutdown >/dev/null 2>&1 || true
  fi
  for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    if [ -f "$pid" ]; then
      kill "$(cat "$pid")" 2>/dev/null || true
    fi
  done
  # Give them a moment, then make sure.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    alive=0
    for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
      if [ -f "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    if [ -f "$pid" ]; then kill -9 "$(cat "$pid")" 2>/dev/null || true; rm -f "$pid"; fi
  done
}

case "$action" in
  stop)
    stop
    ;;
  start)
    stop
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
    chmod 700 "$dir/munge"
    head -c 1024 /dev/urandom > "$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
      --seed-file="$dir/munge/munged.seed"
    host="$(hostname -s)"
    cpus="$(nproc)"
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
    cat > "$conf" <<CONF
ClusterName=medsim
SlurmctldHost=$host
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/builtin
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    slurmctld -f "$conf"
    slurmd -f "$conf"
    for _ in $(seq 1 60); do
      if SLURM_CONF="$conf" sinfo -h -o %T 2>/dev/null | grep -q idle; then
        echo "$conf"
        exit 0
      fi
      sleep 0.5
    done
    echo "the local Slurm did not come up; its logs:" >&2
    tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" "$dir/munge/munged.log" >&2 || true
    stop
    exit 1
    ;;
  *)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
