#!/usr/bin/env bash
# Builds Quarry's libFuzzer targets (tests/fuzz: clang, ASan + UBSan) and runs each for a fixed
# time; docs/fuzzing.md explains the targets. Fails when a target crashes, leaks, hits undefined
# behaviour or times out, and leaves the input in $build/crashes/<target>/.
# Usage: tests/fuzz/run.sh [SECONDS_PER_TARGET (default 20)] [TARGET ...]
#   QUARRY_FUZZ_BUILD_DIR   build tree (default build-fuzz)
#   QUARRY_FUZZ_JOBS        targets fuzzed at once (default 2)
#   QUARRY_BUILD_LOCK       a lock file the compile step holds (flock), on shared machines
# Each target first replays tests/fuzz/regressions/<target>/ (every crash found so far), then
# fuzzes from its seeds (written by fuzz_seeds from the fixtures) and its corpus
# $build/corpus/<target>/, which persists and grows between runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-20}
shift || true
build=${QUARRY_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${QUARRY_FUZZ_JOBS:-2}
all=(safetensors safetensors_index config_json proto_config hf_tokenizer sentencepiece gguf)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")

start=$(date +%s)
if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root/tests/fuzz" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang \
        -DCMAKE_CXX_COMPILER=clang++ >/dev/null
fi
lock=()
[[ -n ${QUARRY_BUILD_LOCK:-} ]] && lock=(flock "$QUARRY_BUILD_LOCK")
"${lock[@]}" ninja -C "$build" -j "${QUARRY_FUZZ_BUILD_JOBS:-2}" >/dev/null
built=$(date +%s)

rm -rf "$build/seeds"
"$build/fuzz_seeds" "$root" "$build/seeds" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
command -v llvm-symbolizer >/dev/null && export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer)

# run_target NAME: replay the regressions, then fuzz for $seconds; one line of stats.
run_target() {
  local t=$1 bin=$build/${1}_fuzz log=$build/logs/$1.log
  local corpus=$build/corpus/$t crashes=$build/crashes/$t regress=$root/tests/fuzz/regressions/$t
  mkdir -p "$corpus" "$crashes" "$build/logs"
  : >"$log"
  if [[ -d $regress ]] && compgen -G "$regress/*" >/dev/null; then
    if ! "$bin" -runs=0 "$regress" >>"$log" 2>&1; then
      echo "fuzz: $t: a regression input crashes again (see $log)"; return 1
    fi
  fi
  local dict=() d=$root/tests/fuzz/${t/proto_config/config_json}.dict
  [[ -f $d ]] && dict=(-dict="$d")
  local rc=0
  # rss_limit: LibTorch (gguf) starts at ~300 MB; -timeout: one input may take 10 s at most.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 \
         "${dict[@]}" -artifact_prefix="$crashes/" "$corpus" "$build/seeds/$t" >>"$log" 2>&1 || rc=$?
  local execs rate corp
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # libFuzzer's final corpus (inputs that add coverage / their total size); the directory also
  # keeps inputs later superseded by smaller ones.
  corp=$(sed -n 's/.*DONE .* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' "$log" | tail -1)
  if [[ $rc -ne 0 ]]; then
    echo "fuzz: $t: FAILED (exit $rc) after ${execs:-?} runs; input in $crashes/, log $log"
    grep -m3 -E '^(SUMMARY|==[0-9]+==ERROR)|runtime error' "$log" | sed 's/^/fuzz:   /' || true
    return 1
  fi
  echo "fuzz: $t: ok, $seconds s, ${execs:-?} runs, ${rate:-?} exec/s, corpus ${corp:-?}" \
       "(inputs/bytes)"
}

failed=0
pids=()
names=()
for t in "${targets[@]}"; do
  [[ -x $build/${t}_fuzz ]] || { echo "fuzz: unknown target '$t' (have: ${all[*]})" >&2; exit 2; }
  run_target "$t" &
  pids+=($!)
  names+=("$t")
  if [[ ${#pids[@]} -ge $jobs ]]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
end=$(date +%s)
echo "fuzz: build $((built - start)) s, fuzzing $((end - built)) s (${#targets[@]} targets," \
     "$seconds s each, $jobs at a time)"
exit $failed
