#!/usr/bin/env bash
# CPU training throughput: pajama against transformers' LlamaForCausalLM on the same
# shape, batch and thread count, one after the other on the same machine.
#   bench/cpu_train.sh [tiny|125m|all]        (default: all; THREADS=N to pin threads)
# Prints tokens/s of both and the ratio. Results go to docs/BENCHMARKS.md by hand.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pajama=${PAJAMA_BUILD_DIR:-$root/build}/launch/pajama
py=${PAJAMA_VENV:-$root/.venv}/bin/python
threads=${THREADS:-$(nproc)}
which=${1:-all}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# name vocab dim layers heads kv ffn seq micro steps
shapes=(
  "tiny 4096 128 4 4 2 352 128 4 40"
  "125m 32000 768 12 12 12 2048 256 2 8"
)

printf '%-6s %8s %6s %14s %14s %7s %12s %12s\n' shape seq batch pajama_tok/s hf_tok/s ratio pajama_MB hf_MB
for s in "${shapes[@]}"; do
  read -r name vocab dim layers heads kv ffn seq micro steps <<<"$s"
  [[ $which == all || $which == "$name" ]] || continue
  # pajama: mock data, one rank, no checkpoints; the first logged interval is warmup.
  "$pajama" train --config "$root/configs/tiny.yaml" \
    --set run.output_dir="$out/$name" --set model.vocab_size="$vocab" --set model.dim="$dim" \
    --set model.n_layers="$layers" --set model.n_heads="$heads" --set model.n_kv_heads="$kv" \
    --set model.ffn_dim="$ffn" --set model.max_seq_len="$seq" --set train.seq_len="$seq" \
    --set train.micro_batch_size="$micro" --set train.global_batch_size="$micro" \
    --set train.max_steps=$((steps + 3)) --set log.every_steps=1 --set train.threads="$threads" \
    --set checkpoint.save_final=false --set checkpoint.every_steps=0 >"$out/$name.log" 2>&1
  pj=$("$py" - "$out/$name/metrics.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][3:]
print(sum(r["tokens_per_s"] for r in recs) / len(recs), recs[-1]["peak_memory_mb"])
PY
)
  read -r pj pj_mem <<<"$pj"
  hf_json=$("$py" "$root/bench/hf_train_bench.py" --vocab "$vocab" --dim "$dim" --layers "$layers" --heads "$heads" \
        --kv-heads "$kv" --ffn "$ffn" --seq "$seq" --micro-batch "$micro" --steps "$steps" --warmup 3 \
        --threads "$threads" --device cpu | tail -n 1)
  read -r hf hf_mem <<<"$("$py" -c 'import json,sys; j = json.loads(sys.argv[1]); print(j["tokens_per_s"], j["peak_rss_growth_mb"])' "$hf_json")"
  printf '%-6s %8s %6s %14.0f %14.0f %7.2f %12.0f %12.0f\n' "$name" "$seq" "$micro" "$pj" "$hf" \
    "$("$py" -c "print($pj / $hf)")" "$pj_mem" "$hf_mem"
done
