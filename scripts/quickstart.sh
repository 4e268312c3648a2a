#!/usr/bin/env bash
# README command 1: sets everything up, builds, and runs the main job: `quarry quantize` starts an
# embedded server with a local worker, quantizes the tiny fixture model through the gRPC service
# (progress streams to the terminal), downloads the result and shuts down.
# Usage: scripts/quickstart.sh [OUT_DIR]   (default out/tiny-llama-kjv-int4_wo_128)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/out/tiny-llama-kjv-int4_wo_128}
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
build=${QUARRY_BUILD_DIR:-$root/build}
"$build/client/quarry" quantize \
  --model "$root/tests/data/models/tiny-llama-kjv" \
  --preset int4_wo_128 \
  --calib "$root/tests/data/kjv-calib.jsonl" \
  --eval "$root/tests/data/kjv-eval.txt" \
  --out "$out"
echo "quickstart: quantized model in $out"
ls -l "$out"
