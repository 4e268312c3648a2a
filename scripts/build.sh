#!/usr/bin/env bash
# Configures and builds Quarry with CMake + Ninja into ${QUARRY_BUILD_DIR:-build}.
# Extra arguments go to cmake's configure step (e.g. -DQUARRY_SANITIZE=address).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${QUARRY_BUILD_DIR:-$root/build}
jobs=${QUARRY_JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=${QUARRY_BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
ninja -C "$build" -j "$jobs"
