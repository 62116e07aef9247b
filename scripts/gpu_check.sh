#!/usr/bin/env bash
# The GPU check: everything pajama needs a GPU for, in one command of under 10 minutes,
# every figure written to one results directory.
#
# On the development machine (built with scripts/setup.sh), stage what travels:
#   scripts/gpu_check.sh --stage
#     -> .gpu-carry/ (ignored by git): bin/ with pajama and the GPU test executables, which
#        link the same torch==2.11.0 cu130 LibTorch as the GPU machine's Python, and debs/
#        with the Debian libraries the GPU machine lacks (../shared/gpu/README.md)
# On the GPU machine (the device tool: carry [".gpu-carry"], timeout_s 600):
#   bash scripts/gpu_check.sh --out "$OUT"
#     1 env      GPU, driver, clocks, torch/CUDA/cuDNN/NCCL versions, compiler, Python.h
#     2 libs     the debs unpacked into /opt/pajama-deps; torch's and the wheel's nvidia
#                libraries on LD_LIBRARY_PATH; `ldd` of every executable; if one cannot
#                load, a build with all cores (build-gpu/) instead
#     3 tests    the `gpu` tests with PAJAMA_REQUIRE_GPU=1 (a missing GPU fails them)
#     4 bench    bench/gpu.sh: pajama against transformers eager and compiled, tokens/s,
#                MFU, peak memory against `pajama info`'s plan; nvidia-smi sampled meanwhile
#   Results: <out>/summary.tsv (step, exit code, seconds), <out>/<step>.log, the tests'
#   JSON, gpu_bench.tsv. Every step runs under `timeout`, and a failed step does not stop
#   the others.
# In CI (no GPU):
#   scripts/gpu_check.sh --dry-run [--build DIR]
#     the same steps with their CPU-checkable parts: the executables exist and list their
#     tests, every GPU test fails under PAJAMA_REQUIRE_GPU=1 without a GPU and skips
#     without it, and bench/gpu.sh --dry-run runs every shape's flags on the CPU.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=gpu
build=$root/build
out=
while [[ $# -gt 0 ]]; do
  case $1 in
    --stage) mode=stage; shift ;;
    --dry-run) mode=dry; shift ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (--stage | --dry-run | --out DIR | --build DIR)" >&2; exit 2 ;;
  esac
done
tests="test_gpu_ops test_gpu_parallel test_gpu_train"
carry=$root/.gpu-carry

if [[ $mode == stage ]]; then
  set -e
  [[ -x $build/launch/pajama ]] || { echo "gpu_check.sh: no $build/launch/pajama; run scripts/setup.sh first" >&2; exit 2; }
  rm -rf "$carry"
  mkdir -p "$carry/bin"
  cp "$build/launch/pajama" "$carry/bin/"
  for t in $tests; do
    [[ -x $build/tests/gpu/$t ]] || { echo "gpu_check.sh: no $build/tests/gpu/$t (a build with CUDA and tests)" >&2; exit 2; }
    cp "$build/tests/gpu/$t" "$carry/bin/"
  done
  strip --strip-debug "$carry"/bin/* 2>/dev/null || true
  shared=$root/../shared/gpu
  [[ -f $shared/fetch-debs.sh ]] || { echo "gpu_check.sh: no $shared/fetch-debs.sh" >&2; exit 2; }
  (cd "$root" && bash "$shared/fetch-debs.sh" .gpu-carry/debs >/dev/null)
  # Beyond fetch-debs.sh's list: what the executables load (xxHash, OpenSSL's libcrypto,
  # udev for hwloc) and a fallback build needs (their -dev packages).
  (cd "$carry/debs" && apt-get download libxxhash0 libxxhash-dev libssl3 libssl-dev libudev1 >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get download libxxhash0 libxxhash-dev libssl3 libssl-dev libudev1; })
  # What the carried executables need from the GPU machine's C library: at most glibc 2.34
  # and GLIBCXX 3.4.30 today (Debian 12 builds); printed so a mismatch is plain there.
  syms=$(objdump -T "$carry/bin/pajama" | grep -o 'GLIBC_2\.[0-9]*\|GLIBCXX_3\.4\.[0-9]*' | sort -V | uniq)
  echo "needs $(grep GLIBC_ <<<"$syms" | tail -1) $(grep GLIBCXX_ <<<"$syms" | tail -1)" >"$carry/NEEDS"
  cp "$shared/unpack-debs.sh" "$carry/"
  du -sh "$carry"
  echo "staged; on the GPU machine: bash scripts/gpu_check.sh --out \"\$OUT\"   (carry .gpu-carry)"
  exit 0
fi

out=${out:-$root/gpu-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
summary=$out/summary.tsv
printf 'step\texit\tseconds\n' >"$summary"
failed=0
# run_step NAME LIMIT_S CMD...: output to <out>/NAME.log, a row in summary.tsv. A shell
# function runs through `bash -c` (timeout needs a program): the functions and the
# variables they read are exported.
run_step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s)"
  if declare -F "$1" >/dev/null; then
    timeout "$limit" bash -c "$*" >"$out/$name.log" 2>&1
  else
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
  fi
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >>"$summary"
  [[ $rc == 0 ]] || { failed=$((failed + 1)); echo "   $name FAILED (exit $rc): $out/$name.log"; tail -15 "$out/$name.log"; }
  return $rc
}

env_report() {
  echo "date: $(date -u +%FT%TZ)  host: $(hostname)  cores: $(nproc --all)"
  free -g | head -2
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm,clocks.max.mem,power.limit,pstate \
      --format=csv
    nvidia-smi topo -m 2>/dev/null | head -5
  else
    echo "nvidia-smi: absent"
  fi
  "${PYTHON:-python3}" - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
    print("cudnn", torch.backends.cudnn.version(), "nccl", torch.cuda.nccl.version())
try:
    import transformers
    print("transformers", transformers.__version__)
except ImportError as e:
    print("transformers: absent", e)
PY
  gcc --version 2>/dev/null | head -1 || echo "gcc: absent"
  "${PYTHON:-python3}" -c 'import sysconfig, os; p = sysconfig.get_paths()["include"]; print("Python.h", os.path.exists(p + "/Python.h"), p)'
  true
}

# Where the executables are: the staged copies, else this build.
# The dry run checks this build; a staged carry (possibly older) is for the GPU machine.
if [[ $mode != dry && -d $carry/bin ]]; then bin=$carry/bin; else bin=$build/launch; fi
exe() { if [[ $1 == pajama ]]; then echo "$bin/pajama"; elif [[ -x $bin/$1 ]]; then echo "$bin/$1"; else echo "$build/tests/gpu/$1"; fi; }

libs_setup() {
  if [[ -d $carry/debs ]]; then
    eval "$(bash "$carry/unpack-debs.sh" "$carry/debs")" || return 1
    # Debian's OpenMPI was configured with prefix /usr: relocated, OPAL_PREFIX is the
    # unpacked usr/ (with .../openmpi, as unpack-debs.sh sets it, orterun cannot find its
    # components and rejects even -n), and its sysconfdir moves along.
    export OPAL_PREFIX=$PAJAMA_DEPS/usr OPAL_SYSCONFDIR=$PAJAMA_DEPS/etc/openmpi
  fi
  local torch_dir
  torch_dir=$("${PYTHON:-python3}" -c 'import torch, os; print(os.path.dirname(torch.__file__))') || return 1
  local extra=$torch_dir/lib
  for d in "$torch_dir"/../nvidia/*/lib; do [[ -d $d ]] && extra=$extra:$(cd "$d" && pwd); done
  export LD_LIBRARY_PATH=$extra:${LD_LIBRARY_PATH:-}
  export PAJAMA_MPIEXEC=${PAJAMA_MPIEXEC:-$(command -v orterun || command -v mpirun.openmpi || command -v mpiexec || echo mpiexec)}
}

libs_report() {
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "PAJAMA_MPIEXEC=$PAJAMA_MPIEXEC"
  [[ -f $carry/NEEDS ]] && echo "carried executables $(cat "$carry/NEEDS"); here: $(ldd --version | head -1)"
  local missing=0
  for e in pajama $tests; do
    local path
    path=$(exe "$e")
    echo "-- $path"
    ldd "$path" | grep -E 'torch|c10|nccl|cudart|cudnn|yaml|sentencepiece|mpi|not found' | sed 's/^/   /'
    if ldd "$path" | grep -q 'not found'; then missing=1; fi
  done
  "$(exe pajama)" --help >/dev/null || missing=1
  return $missing
}

build_here() {
  local torch_cmake
  torch_cmake=$("${PYTHON:-python3}" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  cmake -S "$root" -B "$root/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="${CMAKE_PREFIX_PATH:-}:$torch_cmake" -DTORCH_CUDA_ARCH_LIST="9.0" &&
    cmake --build "$root/build-gpu" -j "$(nproc --all)" --target pajama $tests
}

gpu_tests() {
  local rc=0
  export PAJAMA_SOURCE_DIR=$root PAJAMA_EXE=$(exe pajama) PAJAMA_BINARY_DIR=$out OMP_NUM_THREADS=1
  export PAJAMA_PYTHON=${PYTHON:-python3}
  mkdir -p "$out/tmp"
  for t in $tests; do
    echo "-- $t"
    PAJAMA_REQUIRE_GPU=1 timeout 420 "$(exe "$t")" --gtest_output="json:$out/$t.json" || rc=1
  done
  return $rc
}

# CI: the tests exist, list their cases, fail when a GPU is required and absent, skip otherwise.
dry_tests() {
  local rc=0
  export PAJAMA_SOURCE_DIR=$root PAJAMA_EXE=$(exe pajama) PAJAMA_BINARY_DIR=$out
  for t in $tests; do
    local path n
    path=$(exe "$t")
    n=$("$path" --gtest_list_tests | grep -c '^  ')
    echo "$t: $n tests"
    [[ $n -gt 0 ]] || rc=1
    if PAJAMA_REQUIRE_GPU=1 "$path" >"$out/$t.required.log" 2>&1; then
      echo "$t passed under PAJAMA_REQUIRE_GPU=1 without a GPU: it must fail"; rc=1
    fi
    grep -q "PAJAMA_REQUIRE_GPU=1 but LibTorch sees no CUDA device" "$out/$t.required.log" || {
      echo "$t: no 'requires a GPU' failure in its output"; rc=1; }
    PAJAMA_REQUIRE_GPU=0 "$path" >"$out/$t.skip.log" 2>&1 || { echo "$t failed without PAJAMA_REQUIRE_GPU"; rc=1; }
    grep -q "SKIPPED" "$out/$t.skip.log" || { echo "$t did not skip without a GPU"; rc=1; }
  done
  return $rc
}

export root build out carry tests bin
export -f env_report exe libs_report build_here gpu_tests dry_tests

if [[ $mode == dry ]]; then
  run_step env 60 env_report
  run_step tests 300 dry_tests
  run_step bench 600 bash "$root/bench/gpu.sh" --dry-run --pajama "$(exe pajama)" --out "$out/bench"
else
  t_start=$SECONDS
  run_step env 60 env_report
  libs_setup || echo "library set-up failed; see libs.log"
  if ! run_step libs 60 libs_report; then
    echo "   the carried executables do not load here: building with $(nproc --all) cores"
    bin=$root/build-gpu/launch
    build=$root/build-gpu
    run_step build 420 build_here
  fi
  run_step tests 420 gpu_tests
  smi_pid=
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,clocks.sm,power.draw --format=csv -lms 500 \
      >"$out/nvidia_smi.csv" 2>&1 &
    smi_pid=$!
  fi
  left=$((570 - (SECONDS - t_start)))
  if [[ $left -gt 60 ]]; then
    run_step bench "$left" bash "$root/bench/gpu.sh" --pajama "$(exe pajama)" --out "$out/bench"
  else
    echo "no time left for the benchmark (${left}s)"
    printf 'bench\tskipped\t0\n' >>"$summary"
  fi
  [[ -n $smi_pid ]] && kill "$smi_pid" 2>/dev/null
fi
echo "== summary ($out)"
column -t -s $'\t' "$summary"
[[ -f $out/bench/gpu_bench.tsv ]] && column -t -s $'\t' "$out/bench/gpu_bench.tsv"
exit $((failed > 0))
