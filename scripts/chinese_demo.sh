#!/usr/bin/env bash
# Chinese continued pretraining on the sample corpus (docs/CHINESE.md), every step with
# pajama's own commands:
#   0. a stand-in for released LLaMA weights: the tiny model trained on the sample's
#      English half with LLaMA's real tokenizer, exported to a Hugging Face directory;
#   1. a Chinese tokenizer trained on the sample's Chinese half, merged into LLaMA's;
#   2. the Chinese text prepared with the merged tokenizer;
#   3. stage 1: the vocabulary grown, only the embedding and the head trained;
#   4. stage 2: stage 1's checkpoint resumed in a new run with everything trainable (2 ranks);
#   5. the export, loaded by transformers with the merged tokenizer.
# Needs LLaMA's tokenizer, which is not in the repository: LLAMA_TOKENIZER=PATH names it,
# the `tokenizer.model` that comes with the released LLaMA or LLaMA-2 weights (499,723
# bytes, md5 eeec4125e9c7560836b4873b6f8e3025), e.g.
#   LLAMA_TOKENIZER=hf/llama-7b/tokenizer.model scripts/chinese_demo.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
llama_tok=${LLAMA_TOKENIZER:-}
[[ -n $llama_tok ]] || { echo "set LLAMA_TOKENIZER to LLaMA's tokenizer.model (it comes with the released weights)" >&2; exit 2; }
[[ -f $llama_tok ]] || { echo "LLAMA_TOKENIZER: $llama_tok not found" >&2; exit 2; }
llama_tok=$(realpath "$llama_tok")
"$root/scripts/setup.sh"
cd "$root"
pajama=${PAJAMA_BUILD_DIR:-$root/build}/launch/pajama
python=${PAJAMA_PYTHON:-${PAJAMA_VENV:-$root/.venv}/bin/python}
out=runs/chinese-demo
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun_np2=(mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1)
step() { printf '\n== %s\n' "$*"; }
rm -rf "$out"
mkdir -p "$out"

# The tiny model's shape with LLaMA's 32,000-token vocabulary.
shape=(--set model.dim=128 --set model.n_layers=4 --set model.n_heads=4 --set model.n_kv_heads=2
       --set model.ffn_dim=352 --set train.seq_len=128 --set train.micro_batch_size=4
       --set train.global_batch_size=16 --set train.device=cpu --set log.every_steps=20
       --set checkpoint.every_steps=0 --set eval.every_steps=50 --set eval.batches=4
       --set data.valid_fraction=0.02)

step "sample corpus"
python3 scripts/make_sample_corpus.py --output "$out/corpus"

step "0. stand-in for released weights: 300 steps on English with LLaMA's tokenizer, exported"
"$pajama" prepare --input "$out/corpus/en.jsonl" --tokenizer "$llama_tok" --output "$out/en_llama" --workers 2 --no-progress
"${mpirun_np2[@]}" "$pajama" train --config configs/tiny-corpus.yaml "${shape[@]}" \
  --set run.output_dir="$out/base" --set model.vocab_size=32000 --set train.max_steps=300 \
  --set optim.decay_steps=300 --set data.tokenizer="$llama_tok" \
  --set "data.datasets=[{path: $out/en_llama, weight: 1}]"
"$pajama" convert --checkpoint "$out/base" --to-hf "$out/base_hf"

step "1. Chinese tokenizer (8000 pieces) merged into LLaMA's"
"$pajama" tokenizer train --input "$out/corpus/zh.jsonl" --vocab-size 8000 --output "$out/tok/zh"
"$pajama" tokenizer merge --base "$llama_tok" --add "$out/tok/zh.model" --output "$out/tok/merged.model" --only-cjk \
  2>&1 | tee "$out/merge.log"
vocab=$(sed -n 's/.*added [0-9]* pieces (base [0-9]* + [0-9]* = \([0-9]*\)).*/\1/p' "$out/merge.log")

step "2. the Chinese text with LLaMA's and with the merged tokenizer"
"$pajama" prepare --input "$out/corpus/zh.jsonl" --tokenizer "$llama_tok" --output "$out/zh_llama" --workers 2 --no-progress
"$pajama" prepare --input "$out/corpus/zh.jsonl" --tokenizer "$out/tok/merged.model" --output "$out/zh_merged" --workers 2 --no-progress

zh_data=(--set data.tokenizer="$out/tok/merged.model" --set "data.datasets=[{path: $out/zh_merged, weight: 1}]"
         --set model.vocab_size="$vocab" --set model.vocab_multiple_of=64)
step "3. stage 1: vocabulary grown to $vocab, embedding and head trained (200 steps)"
"${mpirun_np2[@]}" "$pajama" train --config configs/tiny-corpus.yaml "${shape[@]}" "${zh_data[@]}" \
  --set run.output_dir="$out/stage1" --set model.init_from="$out/base_hf" --set train.max_steps=200 \
  --set optim.decay_steps=200 --set "train.trainable=[model.embed_tokens.weight, lm_head.weight]"

step "4. stage 2: stage 1 resumed with everything trainable (200 more steps)"
"${mpirun_np2[@]}" "$pajama" train --config configs/tiny-corpus.yaml "${shape[@]}" "${zh_data[@]}" \
  --set run.output_dir="$out/stage2" --set checkpoint.resume="$out/stage1/checkpoints/step_00000200" \
  --set train.max_steps=400 --set optim.decay_steps=400 --set optim.lr=1.0e-3

step "5. export; transformers loads it with the merged tokenizer"
"$pajama" convert --checkpoint "$out/stage2" --to-hf "$out/hf"
printf '床前明月光，疑是地上霜。举头望明月，低头思故乡。\n' > "$out/zh.txt"
"$python" tests/trainer/chinese_cpt.py run "$out/hf" "$out/zh.txt"

step "done: $out/{base,stage1,stage2}/eval.jsonl hold the validation losses, $out/hf the export"
