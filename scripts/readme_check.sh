#!/usr/bin/env bash
# Runs the command lines of README.md's "Everyday use" and "Viewing curves" sections as
# written, on the sample data that scripts/demo.sh makes, so that a README edit that
# breaks a command fails here.
#
#   scripts/readme_check.sh [--demo]
#
# The lines are read from README.md's ```bash blocks under those headings, not copied
# here. They run one by one in bash from a scratch directory (under $TMPDIR) that links
# build/, configs/ and launch/ and demo.sh's runs/sample-data and runs/tiny-corpus, so
# their relative outputs (runs/tiny, tok/, data/, hf/) land there and not in the clone.
# A shell assignment (pajama=build/launch/pajama) carries over to the later lines.
# Lines that need what a 2-core machine without GPUs lacks are skipped by the patterns
# below, each with its reason. No line is shortened: each README line finishes in a few
# minutes on 2 cores as written, so none gets a --set train.max_steps override.
#
# Sample data: reused when runs/tiny-corpus has a checkpoint, else (or with --demo)
# scripts/demo.sh runs first (it also runs scripts/setup.sh).
# Prints SKIP, OK or FAIL with the exit code for every line; exits 1 if any line fails.
# KEEP=1 keeps the scratch directory; README=FILE checks another file.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PAJAMA_BUILD_DIR:-$root/build}
readme=$(realpath "${README:-$root/README.md}")
sections=("Everyday use" "Viewing curves")

# pattern (extended regex) | reason the line cannot run here
skips=(
  'weights/|released weights (weights/llama-7b-hf) are not part of the sample'
  'mpirun -np 8|needs 8 ranks with a GPU each'
  '--device cuda|needs a GPU'
  '(^| )(sbatch|srun) |needs a SLURM cluster'
  "tensorboard --logdir|starts a web server that runs until stopped (test_train_e2e reads the event files with TensorBoard's reader)"
)

if [[ ${1:-} == --demo || ! -f $root/runs/tiny-corpus/checkpoints/latest ]]; then
  "$root/scripts/demo.sh"
fi
[[ -x $build/launch/pajama ]] || { echo "readme_check: $build/launch/pajama not built (run scripts/setup.sh)" >&2; exit 2; }
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

# The lines of the ```bash blocks under the sections, "\"-continuations joined.
mapfile -t lines < <(python3 - "$readme" "${sections[@]}" <<'PY'
import sys
path, wanted = sys.argv[1], set(sys.argv[2:])
section, fence, pending = None, None, ""
for raw in open(path, encoding="utf-8"):
    line = raw.rstrip("\n")
    if fence is None and line.startswith("## "):
        section = line[3:].strip()
    elif line.startswith("```"):
        fence = None if fence is not None else line[3:].strip()
    elif fence == "bash" and section in wanted:
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        line, pending = pending + line, ""
        if line.strip() and not line.lstrip().startswith("#"):
            print(line.strip())
PY
)
((${#lines[@]})) || { echo "readme_check: no command lines under: ${sections[*]} in $readme" >&2; exit 2; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/pajama-readme-XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then echo "scratch directory (kept): $scratch"; else trap 'rm -rf "$scratch"' EXIT; fi
ln -s "$build" "$scratch/build"
ln -s "$root/configs" "$scratch/configs"
ln -s "$root/launch" "$scratch/launch"
mkdir "$scratch/runs"
ln -s "$root/runs/sample-data" "$scratch/runs/sample-data"
ln -s "$root/runs/tiny-corpus" "$scratch/runs/tiny-corpus"
cd "$scratch"

prelude=""  # assignments so far
ok=0 failed=0 skipped=0 n=0
start=$SECONDS
for line in "${lines[@]}"; do
  n=$((n + 1))
  reason=""
  for s in "${skips[@]}"; do
    if [[ $line =~ ${s%%|*} ]]; then reason=${s#*|}; break; fi
  done
  if [[ -n $reason ]]; then
    printf 'SKIP  %s\n      (%s)\n' "$line" "$reason"
    skipped=$((skipped + 1))
    continue
  fi
  if [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*=[^[:space:]]*$ ]]; then
    prelude+="$line"$'\n'
    printf 'SET   %s\n' "$line"
    continue
  fi
  log="$scratch/line$n.log"
  t0=$SECONDS
  rc=0
  bash -o pipefail -c "$prelude$line" >"$log" 2>&1 || rc=$?
  if ((rc == 0)); then
    printf 'OK    %s\n      (exit 0, %ds)\n' "$line" $((SECONDS - t0))
    ok=$((ok + 1))
  else
    printf 'FAIL  %s\n      (exit %d, %ds); the last lines of its output:\n' "$line" "$rc" $((SECONDS - t0))
    tail -n 15 "$log" | sed 's/^/      | /'
    failed=$((failed + 1))
  fi
done
printf '\nreadme_check: %d ok, %d failed, %d skipped in %ds (%s)\n' "$ok" "$failed" "$skipped" $((SECONDS - start)) "$readme"
((failed == 0))
