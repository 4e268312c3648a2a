#!/usr/bin/env bash
# Quantizes a model with several configurations (quarry quantize-local), evaluates each before
# and after, and prints a Markdown table of perplexities. Reproduces the tables in docs/results.md.
# Usage: scripts/ppl_table.sh MODEL_DIR OUT_DIR CONFIG...
#   CONFIG is a preset name (e.g. int8, fp8+kv_fp8) or a path to a Quark JSON config, optionally
#   followed by :ALGO.json to append an algorithm (e.g. int4_wo_128:examples/algos/gptq.json).
# Env: QUARRY=path to the quarry binary (default build/client/quarry); NUM_CALIB (default 128),
#      SEQ_LEN (512), EVAL (tests/data/kjv-eval.txt), CALIB (tests/data/kjv-calib.jsonl).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
quarry=${QUARRY:-$root/build/client/quarry}
model=$1; out=$2; shift 2
calib=${CALIB:-$root/tests/data/kjv-calib.jsonl}
eval_file=${EVAL:-$root/tests/data/kjv-eval.txt}
mkdir -p "$out"
printf '| config | ppl float | ppl quantized | change | time (s) | peak RSS (MiB) |\n|---|---:|---:|---:|---:|---:|\n'
for spec in "$@"; do
  cfg=${spec%%:*}; algo=""
  [[ "$spec" == *:* ]] && algo=${spec#*:}
  name=$(basename "${cfg%.json}")${algo:+-$(basename "${algo%.json}")}
  args=(--model "$model" --calib "$calib" --num-calib "${NUM_CALIB:-128}" --seq-len "${SEQ_LEN:-512}"
        --eval "$eval_file" --out "$out/$name" --json)
  if [[ -f "$cfg" ]]; then args+=(--config "$cfg"); else args+=(--preset "$cfg"); fi
  [[ -n "$algo" ]] && args+=(--algo "$algo")
  json=$("$quarry" quantize-local "${args[@]}" 2>"$out/$name.log")
  python3 - "$json" "$name" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); name = sys.argv[2]
f, q = r.get("perplexity_float"), r.get("perplexity_quantized")
print(f"| {name} | {f:.3f} | {q:.3f} | {100*(q/f-1):+.2f}% | {r['seconds']:.1f} | {r['peak_rss_bytes']/2**20:.0f} |")
PY
done
