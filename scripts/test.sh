#!/usr/bin/env bash
# README command 2: sets everything up (Debian packages), builds, and runs the whole test suite
# with ctest. Run as root on a fresh Debian 12 machine (or as any user once set up).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
start=$(date +%s)
"$root/scripts/build.sh"
built=$(date +%s)
build=${QUARRY_BUILD_DIR:-$root/build}
cd "$build"
# Every label but "soak" (30 minutes, not built by default: tests/service_tests.cmake says how).
ctest --output-on-failure -j "${QUARRY_TEST_JOBS:-2}" -LE soak "$@"
end=$(date +%s)
echo "test: build $((built - start)) s, tests $((end - built)) s"
