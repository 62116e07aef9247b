#!/usr/bin/env bash
# The README's main job on a fresh machine: set up, build the bilingual sample corpus
# (Debian's fortunes and fortunes-zh), train a SentencePiece tokenizer on it, prepare
# Megatron shards, train the tiny model on the CPU over 2 MPI ranks to a checkpoint,
# then run the same command again with a higher step budget: it resumes from the
# checkpoint and continues.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
pajama=${PAJAMA_BUILD_DIR:-$root/build}/launch/pajama
data=runs/sample-data
run=runs/tiny-corpus
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun_np2=(mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1)

step() { printf '\n== %s\n' "$*"; }

step "sample corpus -> $data/corpus"
python3 scripts/make_sample_corpus.py --output "$data/corpus"

step "tokenizer (SentencePiece BPE, 8000 pieces, byte fallback)"
"$pajama" tokenizer train --input "$data"/corpus/*.jsonl --vocab-size 8000 --output "$data/tokenizer"

step "prepare Megatron shards"
"$pajama" prepare --input "$data/corpus/en.jsonl" --tokenizer "$data/tokenizer.model" --output "$data/en" --workers 2
"$pajama" prepare --input "$data/corpus/zh.jsonl" --tokenizer "$data/tokenizer.model" --output "$data/zh" --workers 2

rm -rf "$run"
step "train 80 steps on 2 ranks (checkpoints at 40 and 80)"
"${mpirun_np2[@]}" "$pajama" train --config configs/tiny-corpus.yaml --set train.max_steps=80 --set optim.decay_steps=120

step "same command, 120 steps: resumes from the step-80 checkpoint"
"${mpirun_np2[@]}" "$pajama" train --config configs/tiny-corpus.yaml --set train.max_steps=120 --set optim.decay_steps=120

step "done: metrics in $run/metrics.jsonl, checkpoints in $run/checkpoints"
