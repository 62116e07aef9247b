#!/usr/bin/env bash
# Throughput of `pajama prepare` (1 and 2 workers) against SentencePiece's own
# single-threaded `spm_encode` on the same text. Run by hand; never timed inside tests.
#
#   bench/prepare_bench.sh [--exe build/launch/pajama] [--tokenizer MODEL] [--repeat 10] [--workdir DIR]
#
# Input: the sample corpus (scripts/make_sample_corpus.py, English + Chinese fortunes)
# repeated --repeat times (10 -> about 60 MB of JSONL). Tokenizer: --tokenizer, else
# $LLAMA_TOKENIZER (LLaMA's tokenizer.model, from the released weights) when set, else
# one trained here on the sample with `pajama tokenizer train`.
# The "2x spm_encode, parallel" row is a calibration: per-copy wall time of two
# concurrent spm_encode runs, i.e. the machine's parallel capacity at that moment.
# MB/s counts UTF-8 text bytes (the same bytes for every row); tokens/s counts text
# tokens (prepare's EOS per document excluded). spm_encode reads one line at a time, so
# it sees the documents' lines rather than whole documents; the text is the same.
# "cpu s" is user+sys time: on a shared machine, wall time only shows the scaling of
# -j2 when two cores are actually free; compare the CPU columns as well.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
exe="$here/build/launch/pajama"
tokenizer=""
repeat=10
workdir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --exe) exe="$2"; shift 2 ;;
    --tokenizer) tokenizer="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -x "$exe" ]] || { echo "pajama executable not found at $exe (use --exe)" >&2; exit 2; }
command -v spm_encode >/dev/null || { echo "spm_encode not found (apt install sentencepiece)" >&2; exit 2; }
if [[ -z "$workdir" ]]; then workdir="$(mktemp -d /tmp/pajama-prepare-bench-XXXXXX)"; trap 'rm -rf "$workdir"' EXIT; fi
mkdir -p "$workdir"

python3 "$here/scripts/make_sample_corpus.py" --output "$workdir/sample" >/dev/null
if [[ -z "$tokenizer" ]]; then
  if [[ -n "${LLAMA_TOKENIZER:-}" ]]; then
    tokenizer="$LLAMA_TOKENIZER"
  else
    "$exe" tokenizer train --input "$workdir/sample" --vocab-size 8000 --output "$workdir/tok" 2>/dev/null
    tokenizer="$workdir/tok.model"
  fi
fi

# The corpus repeated, as JSONL for prepare and as plain text for spm_encode.
python3 - "$workdir" "$repeat" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
lines = open(f"{d}/sample/en.jsonl", encoding="utf-8").readlines() + open(f"{d}/sample/zh.jsonl", encoding="utf-8").readlines()
texts = [json.loads(l)["text"] for l in lines]
with open(f"{d}/bench.jsonl", "w", encoding="utf-8") as j, open(f"{d}/bench.txt", "w", encoding="utf-8") as t:
    for _ in range(n):
        j.writelines(lines)
        for x in texts:
            t.write(x + "\n")
PY
text_bytes=$(python3 -c "import sys; print(sum(len(l) - 1 for l in open(sys.argv[1], 'rb')))" "$workdir/bench.txt")

now() { date +%s.%N; }
cpu() { awk '{print $1 + $2}' "$1"; }
rate() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]) / 1e6:.2f}')" "$1" "$2"; }
ktok() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]) / 1e3:.0f}')" "$1" "$2"; }

t0=$(now)
/usr/bin/time -f "%U %S" -o "$workdir/spm.cpu" spm_encode --model "$tokenizer" --output_format=id < "$workdir/bench.txt" > "$workdir/spm.ids"
t1=$(now)
spm_s=$(python3 -c "print($t1 - $t0)")
# Calibration: two spm_encode processes at once show how much parallel CPU the machine
# really offers now (2.00x on two free cores; ~1.0x when other jobs hold a core).
t0=$(now)
spm_encode --model "$tokenizer" --output_format=id < "$workdir/bench.txt" > /dev/null &
spm_encode --model "$tokenizer" --output_format=id < "$workdir/bench.txt" > /dev/null
wait
t1=$(now)
spm2_s=$(python3 -c "print(($t1 - $t0) / 2)")
spm_tokens=$(wc -w < "$workdir/spm.ids")

declare -A secs toks
for w in 1 2; do
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$workdir/prepare_w$w.cpu" "$exe" prepare --no-progress --input "$workdir/bench.jsonl" --tokenizer "$tokenizer" --output "$workdir/out_w$w" \
    --workers "$w" 2> "$workdir/prepare_w$w.log"
  t1=$(now)
  secs[$w]=$(python3 -c "print($t1 - $t0)")
  toks[$w]=$(sed -n 's/.*(\([0-9]*\) text tokens).*/\1/p' "$workdir/prepare_w$w.log")
done
cmp -s "$workdir/out_w1.bin" "$workdir/out_w2.bin" || { echo "1 and 2 workers differ!" >&2; exit 1; }

echo "input: $(du -h "$workdir/bench.jsonl" | cut -f1) JSONL, $text_bytes text bytes, tokenizer $(basename "$tokenizer"), $(nproc) cores"
printf "%-24s %8s %10s %10s %8s %8s\n" "tool" "wall s" "text MB/s" "ktokens/s" "vs spm" "cpu s"
printf "%-24s %8.2f %10s %10s %8s %8.2f\n" "spm_encode (1 thread)" "$spm_s" "$(rate "$text_bytes" "$spm_s")" \
  "$(ktok "$spm_tokens" "$spm_s")" "1.00x" "$(cpu "$workdir/spm.cpu")"
printf "%-24s %8.2f %10s %10s %8s %8s\n" "2x spm_encode, parallel" "$spm2_s" "$(rate "$text_bytes" "$spm2_s")" \
  "$(ktok "$spm_tokens" "$spm2_s")" "$(python3 -c "print(f'{$spm_s / $spm2_s:.2f}x')")" "-"
for w in 1 2; do
  printf "%-24s %8.2f %10s %10s %8s %8.2f\n" "pajama prepare -j$w" "${secs[$w]}" "$(rate "$text_bytes" "${secs[$w]}")" \
    "$(ktok "${toks[$w]}" "${secs[$w]}")" "$(python3 -c "print(f'{$spm_s / ${secs[$w]}:.2f}x')")" "$(cpu "$workdir/prepare_w$w.cpu")"
done
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
