#!/usr/bin/env bash
# Runs the whole test suite: brings the machine to a built tree first (scripts/setup.sh),
# then every CTest test (unit, parity, MPI multi-rank, end-to-end; not `gpu`). Extra arguments go
# to ctest, e.g. scripts/test.sh -L mpi  or  scripts/test.sh -R config
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PAJAMA_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$build"
# The `gpu` tests need a GPU: left out unless PAJAMA_REQUIRE_GPU=1 (scripts/gpu_check.sh).
gpu=(-LE gpu)
[[ ${PAJAMA_REQUIRE_GPU:-0} == 1 ]] && gpu=()
ctest --output-on-failure -j "$(nproc)" "${gpu[@]}" "$@"
