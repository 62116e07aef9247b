#!/usr/bin/env bash
# Multi-node launcher: one rank per GPU over the nodes of a hostfile, with OpenMPI.
#
#   launch/mpirun.sh --hostfile hosts --config configs/llama-7b.yaml [--set key=value ...]
#
# The hostfile has DeepSpeed-style "host slots=N" lines (see launch/hostfile.example);
# the world size is the sum of the slots unless --np says otherwise. Every rank picks
# GPU = its local rank. Environment variables that matter to NCCL and OpenMPI are
# forwarded to every rank with -x when they are set here, e.g.
#   NCCL_SOCKET_IFNAME=eth0 NCCL_IB_HCA=mlx5 OMPI_MCA_btl_tcp_if_include=eth0 launch/mpirun.sh ...
# Anything after "--" goes to mpirun itself (e.g. -- --mca plm_rsh_args "-p 2222").
# SIGTERM or SIGINT to this script makes every rank checkpoint and exit 75 (see the end).
# Exit code: mpirun's, which is pajama's: 0 done, 1 error, 2 config error, 75 stopped
# after a checkpoint (run the same command again to resume).
set -euo pipefail

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

hostfile=""
config=""
np=""
pajama="${PAJAMA_EXE:-}"
train_args=()
mpi_extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --hostfile) hostfile="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --np) np="$2"; shift 2 ;;
    --pajama) pajama="$2"; shift 2 ;;
    --set) train_args+=(--set "$2"); shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; mpi_extra=("$@"); break ;;
    *) echo "mpirun.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

[[ -n "$config" ]] || { echo "mpirun.sh: --config is required" >&2; usage 2; }
[[ -f "$config" ]] || { echo "mpirun.sh: config file '$config' not found" >&2; exit 2; }
if [[ -z "$pajama" ]]; then
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  for candidate in "$here/../build/launch/pajama" "$(command -v pajama || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then pajama="$candidate"; break; fi
  done
fi
[[ -n "$pajama" && -x "$pajama" ]] || { echo "mpirun.sh: pajama executable not found; pass --pajama PATH or set PAJAMA_EXE" >&2; exit 2; }

hosts=()
if [[ -n "$hostfile" ]]; then
  [[ -f "$hostfile" ]] || { echo "mpirun.sh: hostfile '$hostfile' not found" >&2; exit 2; }
  slots=$(awk '!/^[[:space:]]*(#|$)/ { n = 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { split($i, a, "="); n = a[2] } s += n } END { print s + 0 }' "$hostfile")
  [[ "$slots" -gt 0 ]] || { echo "mpirun.sh: hostfile '$hostfile' lists no slots" >&2; exit 2; }
  np="${np:-$slots}"
  hosts=(--hostfile "$hostfile")
fi
np="${np:-1}"

# Forward the variables that NCCL, OpenMPI, CUDA and pajama read, when set here.
env_args=(-x PATH -x LD_LIBRARY_PATH)
for v in $(compgen -e); do
  case "$v" in
    NCCL_*|OMPI_MCA_*|UCX_*|CUDA_*|PAJAMA_*|OMP_NUM_THREADS|TORCH_*|PYTORCH_*) env_args+=(-x "$v") ;;
  esac
done
# CPU threads: pajama train divides the node's cores among its ranks unless
# OMP_NUM_THREADS (forwarded above) or train.threads says otherwise.

# --map-by slot fills each host's slots in hostfile order, so consecutive ranks share a
# node and local ranks 0..slots-1 map to GPUs 0..slots-1. --bind-to none leaves CPU
# placement to the OS and torch's thread pool (binding to one core starves the loader).
cmd=(mpirun -np "$np" "${hosts[@]}" --map-by slot --bind-to none
     "${env_args[@]}" "${mpi_extra[@]}"
     "$pajama" train --config "$config" "${train_args[@]}")
echo "+ ${cmd[*]}" >&2
# mpirun answers SIGTERM/SIGINT by killing the ranks one second later and exiting 1,
# too soon for a checkpoint. It forwards SIGUSR1 instead, which every rank treats as
# "checkpoint at the next step boundary and exit 75"; so a stop request to this script
# (a scheduler's SIGTERM, Ctrl-C) becomes SIGUSR1 for mpirun, and the exit code is mpirun's.
# OpenMPI's mpirun exits with the first non-zero code a rank returns (75 here) and then
# kills the ranks still running; by then every rank is past the checkpoint's final barrier
# and MPI_Finalize, so nothing is lost (it prints "...returned a non-zero exit code").
"${cmd[@]}" &
child=$!
trap 'echo "mpirun.sh: stop requested; every rank will checkpoint at its next step and exit" >&2; kill -USR1 "$child" 2>/dev/null || true' TERM INT
rc=0
while :; do
  wait "$child" && rc=0 || rc=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$rc"
