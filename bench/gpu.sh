#!/usr/bin/env bash
# GPU training throughput on one GPU, side by side in one command: pajama (bf16, ZeRO-2
# on one rank, fused AdamW) against transformers' LlamaForCausalLM (bf16 autocast, fused
# AdamW, SDPA), eager and with torch.compile, on the same shapes and batches.
#   bench/gpu.sh [build-dir]          (on the GPU machine; builds first if needed)
# Prints a table: tokens/s, MFU (6 x non-embedding parameters + 12 x layers x dim x seq FLOPs
# per token, as `pajama info` counts them, against 989 TFLOP/s), peak memory,
# and pajama's ratio to each peer. Copy the table and the command into docs/BENCHMARKS.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build-gpu}
py=${PYTHON:-python3}
peak=989e12
if [[ ! -x $build/launch/pajama ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')" -DPAJAMA_BUILD_TESTS=OFF
  cmake --build "$build" -j "$(nproc)"
fi
pajama=$build/launch/pajama
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# name vocab dim layers heads kv ffn seq micro steps
shapes=(
  "125m 32000 768 12 12 12 2048 1024 16 30"
  "1b 32000 2048 18 16 16 5632 2048 8 20"
  "7b-2l 32000 4096 2 32 32 11008 4096 4 20"
)
printf '%-7s %-22s %12s %7s %9s %8s\n' shape impl tokens/s mfu peak_gb vs_pajama
for s in "${shapes[@]}"; do
  read -r name vocab dim layers heads kv ffn seq micro steps <<<"$s"
  "$pajama" train --config "$root/configs/tiny.yaml" --set train.device=cuda --set train.dtype=bf16 \
    --set run.output_dir="$out/$name" --set model.vocab_size="$vocab" --set model.dim="$dim" \
    --set model.n_layers="$layers" --set model.n_heads="$heads" --set model.n_kv_heads="$kv" \
    --set model.ffn_dim="$ffn" --set model.max_seq_len="$seq" --set train.seq_len="$seq" \
    --set train.micro_batch_size="$micro" --set train.global_batch_size="$micro" \
    --set train.max_steps=$((steps + 5)) --set log.every_steps=5 --set log.peak_flops=$peak \
    --set checkpoint.save_final=false >"$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }
  pj=$("$py" -c "import json,sys; r=[json.loads(l) for l in open('$out/$name/metrics.jsonl')][1:]; print(sum(x['tokens_per_s'] for x in r)/len(r))")
  fpt=$("$py" -c "print(6*(2*$vocab*$dim + $layers*(2*$dim*$dim + 2*$dim*($dim*$kv//$heads) + 3*$dim*$ffn + 2*$dim) + $dim - $vocab*$dim) + 12*$layers*$dim*$seq)")
  printf '%-7s %-22s %12.0f %6.1f%% %9s %8s\n' "$name" pajama "$pj" "$("$py" -c "print($pj*$fpt/$peak*100)")" "-" "1.00"
  for flag in "" "--compile"; do
    line=$("$py" "$root/bench/hf_train_bench.py" --vocab "$vocab" --dim "$dim" --layers "$layers" --heads "$heads" \
      --kv-heads "$kv" --ffn "$ffn" --seq "$seq" --micro-batch "$micro" --steps "$steps" --warmup 5 --device cuda $flag)
    "$py" - "$line" "$pj" "$peak" "$name" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); pj = float(sys.argv[2]); peak = float(sys.argv[3])
mfu = r["tokens_per_s"] * r["flops_per_token"] / peak * 100
print(f'{sys.argv[4]:<7} {r["impl"]:<22} {r["tokens_per_s"]:12.0f} {mfu:6.1f}% {r["peak_mem_gb"]:9.2f} {pj / r["tokens_per_s"]:8.2f}')
PY
  done
done
