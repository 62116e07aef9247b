#!/usr/bin/env bash
# Brings a fresh Debian machine to a built pajama tree, idempotently:
#   1. Debian packages (compilers, cmake/ninja, OpenMPI, yaml-cpp, SentencePiece, ...)
#   2. a Python venv with torch==2.11.0 (its wheel carries LibTorch) and the parity-test
#      packages; PAJAMA_VENV picks its location (default: .venv in the repo)
#   3. cmake configure + build into build/ (PAJAMA_BUILD_DIR overrides)
# A second run on a built tree only re-checks and rebuilds what changed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${PAJAMA_VENV:-$root/.venv}
build=${PAJAMA_BUILD_DIR:-$root/build}
torch_version=2.11.0
log() { printf '[setup] %s\n' "$*"; }

debs=(build-essential cmake ninja-build pkg-config ccache lld git python3 python3-venv
      libopenmpi-dev openmpi-bin libyaml-cpp-dev libsentencepiece-dev sentencepiece
      nlohmann-json3-dev libzstd-dev zstd zlib1g-dev libgtest-dev libcli11-dev libssl-dev libxxhash-dev xxhash
      fortunes fortunes-zh iproute2)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv: torch's wheel is gigabytes; pip's cache keeps a second install fast.
py=$venv/bin/python
if ! "$py" -c "import torch, transformers, safetensors, sentencepiece, numpy, google.protobuf, tensorboard; assert torch.__version__.split('+')[0] == '$torch_version'" 2>/dev/null; then
  log "creating Python venv at $venv (torch==$torch_version, transformers, safetensors, sentencepiece, protobuf, tensorboard)"
  python3 -m venv "$venv"
  "$py" -m pip install -q --upgrade pip
  # protobuf: transformers reads a SentencePiece tokenizer.model through it (convert's test);
  # tensorboard: its own event reader checks our event files (test_tensorboard_e2e)
  "$py" -m pip install -q "torch==$torch_version" transformers safetensors sentencepiece numpy protobuf tensorboard
fi
torch_prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')

# TORCH_CUDA_ARCH_LIST keeps LibTorch's CMake package from probing for a GPU.
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.0;9.0}
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}  # cache hits across clones of the repo
if [[ ! -f $build/build.ninja ]]; then
  log "configuring $build"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$torch_prefix" -DPAJAMA_PYTHON="$py" ${PAJAMA_CMAKE_ARGS:-} >/dev/null
fi
log "building ($build)"
cmake --build "$build" -j "$(nproc)"
log "done: $build/launch/pajama"
