#!/usr/bin/env bash
# GPU training throughput on one GPU, side by side in one command: pajama (bf16 parameters
# and activations, fp32 master weights, ZeRO-2 on one rank, fused AdamW) against
# transformers' LlamaForCausalLM (fp32 weights under bf16 autocast, fused AdamW, SDPA),
# eager and with torch.compile, on the same shapes and batches (random tokens).
#
#   bench/gpu.sh [--pajama EXE] [--out DIR] [--dry-run]
#
# Writes <out>/gpu_bench.tsv one row at a time (a failure is a row marked FAILED, and the
# rest still run), each run's log beside it, and prints the table: tokens/s, MFU (FLOPs per
# token as DESIGN.md and `pajama info`: 6 x non-embedding parameters + 12 x layers x dim x
# seq, counting full non-causal attention on both sides, against 989 TFLOP/s dense bf16 for
# H100/H200 SXM), peak memory (pajama: the caching allocator's peak above the process at
# rest, from metrics.jsonl; transformers: torch.cuda.max_memory_allocated) and pajama's
# `pajama info` plan, and pajama's speed over each peer's.
# --dry-run (CI, no GPU): every shape's pajama flags through `pajama info`, a 2-step CPU
# run of each with the shape shrunk, and the transformers script on the CPU at toy size:
# the commands and the table code cannot rot unnoticed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pajama=$root/build/launch/pajama
out=
dry=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --pajama) pajama=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    *) echo "bench/gpu.sh: unknown argument '$1' (--pajama EXE, --out DIR, --dry-run)" >&2; exit 2 ;;
  esac
done
py=${PYTHON:-python3}
[[ -x $pajama ]] || { echo "bench/gpu.sh: no $pajama; build first (scripts/setup.sh) or pass --pajama" >&2; exit 2; }
out=${out:-$(mktemp -d)}
mkdir -p "$out"
peak=989e12
tsv=$out/gpu_bench.tsv
printf 'shape\timpl\ttokens_per_s\tmfu_pct\tpeak_gib\tplan_gib\tpajama_over_peer\tstatus\n' >"$tsv"
failures=0

# name vocab dim layers heads kv ffn seq micro steps compile
shapes=(
  "125m 32000 768 12 12 12 2048 1024 16 30 no"
  "1b 32000 2048 18 16 16 5632 2048 8 20 yes"
  "1b-gqa 32000 2048 18 16 4 5632 2048 8 20 no"
  "7b-2l 32000 4096 2 32 32 11008 4096 4 20 no"
)

row() { printf '%s\n' "$*" | tr ' ' '\t' >>"$tsv"; }

for s in "${shapes[@]}"; do
  read -r name vocab dim layers heads kv ffn seq micro steps compile <<<"$s"
  sets=(--set model.vocab_size="$vocab" --set model.dim="$dim" --set model.n_layers="$layers"
        --set model.n_heads="$heads" --set model.n_kv_heads="$kv" --set model.ffn_dim="$ffn"
        --set model.max_seq_len="$seq" --set train.seq_len="$seq" --set train.micro_batch_size="$micro"
        --set train.global_batch_size="$micro" --set train.device=cuda --set train.dtype=bf16
        --set log.peak_flops="$peak" --set checkpoint.every_steps=0 --set checkpoint.save_final=false
        --set eval.every_steps=0)
  "$pajama" info --json --config "$root/configs/tiny.yaml" "${sets[@]}" >"$out/$name.info.json" 2>"$out/$name.info.err"
  # The memory plan (GiB) and FLOPs per token as `pajama info --json` states them for this shape.
  plan= fpt=
  read -r plan fpt < <("$py" -c 'import json, sys
j = json.load(open(sys.argv[1]))
print("%.2f %.6e" % (j["memory"]["peak_bytes"] / 2**30, j["flops_per_token"]))' "$out/$name.info.json" 2>>"$out/$name.info.err")
  if [[ -z $plan || -z $fpt ]]; then
    echo "bench/gpu.sh: pajama info failed for $name:" >&2; cat "$out/$name.info.err" >&2
    row "$name pajama - - - - - FAILED(info)"; failures=$((failures + 1)); continue
  fi
  if [[ $dry == 1 ]]; then
    # The same flags, the shape shrunk to run 2 steps on the CPU.
    small=(--set train.device=cpu --set train.dtype=bf16 --set model.dim=64 --set model.n_layers=1 --set model.n_heads=4
           --set model.n_kv_heads=$((kv < heads ? 2 : 4)) --set model.ffn_dim=96 --set model.vocab_size=512
           --set model.max_seq_len=32 --set train.seq_len=32 --set train.micro_batch_size=1 --set train.global_batch_size=1)
    runs=("pajama" "transformers")
  else
    small=()
    runs=("pajama" "transformers")
    [[ $compile == yes ]] && runs+=("transformers+compile")
  fi
  pj=
  for impl in "${runs[@]}"; do
    log=$out/$name.$impl.log
    if [[ $impl == pajama ]]; then
      n=$([[ $dry == 1 ]] && echo 2 || echo $((steps + 5)))
      every=$([[ $dry == 1 ]] && echo 1 || echo 5)
      timeout 300 "$pajama" train --config "$root/configs/tiny.yaml" "${sets[@]}" "${small[@]}" \
        --set run.output_dir="$out/$name.run" --set train.max_steps="$n" --set log.every_steps="$every" >"$log" 2>&1
      rc=$?
      # Skip the first record (start-up, first allocations); mean of the rest.
      line=$([[ $rc == 0 ]] && "$py" - "$out/$name.run/metrics.jsonl" "$fpt" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tail = recs[1:] or recs
print(json.dumps({"tokens_per_s": sum(r["tokens_per_s"] for r in tail) / len(tail), "flops_per_token": float(sys.argv[2]),
                  "peak_mem_gb": max(r["peak_memory_mb"] for r in recs) * 1e6 / 2**30}))
PY
)
    else
      flag=$([[ $impl == *compile ]] && echo --compile)
      if [[ $dry == 1 ]]; then
        dims=(--vocab 512 --dim 64 --layers 1 --heads 4 --kv-heads $((kv < heads ? 2 : 4)) --ffn 96 --seq 32
              --micro-batch 1 --steps 2 --warmup 1 --device cpu)
      else
        dims=(--vocab "$vocab" --dim "$dim" --layers "$layers" --heads "$heads" --kv-heads "$kv" --ffn "$ffn"
              --seq "$seq" --micro-batch "$micro" --steps "$steps" --warmup 5 --device cuda)
      fi
      line=$(timeout 400 "$py" "$root/bench/hf_train_bench.py" "${dims[@]}" $flag 2>"$log" | tail -1)
      rc=$?
    fi
    if [[ $rc != 0 || -z $line ]]; then
      echo "bench/gpu.sh: $name $impl failed (exit $rc); its log: $log" >&2
      tail -5 "$log" >&2
      row "$name $impl - - - - - FAILED(exit:$rc)"
      failures=$((failures + 1))
      continue
    fi
    read -r tps mfu mem <<<"$("$py" -c "
import json, sys
r = json.loads(sys.argv[1])
print(r['tokens_per_s'], r['tokens_per_s'] * r['flops_per_token'] / $peak * 100, r.get('peak_mem_gb') or 0)" "$line")"
    [[ $impl == pajama ]] && pj=$tps
    ratio=$([[ -n $pj ]] && "$py" -c "print(f'{$pj / $tps:.2f}')" || echo -)
    row "$name $impl $(printf '%.0f %.1f %.2f' "$tps" "$mfu" "$mem") $([[ $impl == pajama ]] && echo "$plan" || echo -) $ratio ok"
  done
done
column -t -s $'\t' "$tsv"
echo "results: $tsv"
exit $((failures > 0))
