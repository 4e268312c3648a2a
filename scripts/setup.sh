#!/usr/bin/env bash
# Installs every Debian 12 package Quarry needs to build, test and run. Idempotent; run as root.
# Usage: scripts/setup.sh            (install + BLAS check)
#        QUARRY_SKIP_APT=1 scripts/setup.sh   (only the BLAS check; for machines set up already)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev libopenblas0-openmp
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev nlohmann-json3-dev libcli11-dev libsentencepiece-dev libssl-dev
  python3 python3-grpcio python3-protobuf prometheus
  python3-yaml python3-jsonschema
  clang libclang-rt-14-dev llvm
  podman buildah crun runc catatonit debootstrap uidmap fuse-overlayfs slirp4netns
)
# python3-yaml, python3-jsonschema: the offline manifest checks (ctest -L deploy; kubectl comes
# with the machine image). podman ... slirp4netns: deploy/build-images.sh (not run by CI).
# clang libclang-rt-14-dev llvm: the libFuzzer targets (tests/fuzz/run.sh; clang 14, its
# libFuzzer + ASan/UBSan runtimes, llvm-symbolizer for the reports).

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [[ "${QUARRY_SKIP_APT:-0}" != 1 && ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages (${missing[*]}); run this script as root" >&2
    exit 1
  fi
  echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The prometheus package starts a server through systemd where one runs; we only need promtool.
else
  echo "setup: all ${#PACKAGES[@]} packages present"
fi

# Debian's LibTorch links libblas.so.3; make sure the alternative points at OpenBLAS (OpenMP
# flavour), not the reference BLAS which is ~30x slower.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  cand=/usr/lib/$arch/openblas-openmp/$lib
  if [[ -e $cand ]] && update-alternatives --list "$lib-$arch" >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then update-alternatives --quiet --set "$lib-$arch" "$cand" || true; fi
  fi
done

# llama.cpp for the GGUF runtime tests (ctest -L runtime): node-llama-cpp 3.21.1 and its prebuilt
# linux-x64 CPU library, pinned by tests/runtime/package-lock.json, into tests/runtime/node_modules
# (git-ignored; ~83 MB, ~10 s). --omit=optional leaves out the other platforms' and GPU builds
# (~650 MB); --ignore-scripts skips node-llama-cpp's postinstall (it would offer to build
# llama.cpp; the prebuilt library needs nothing). Needs Node.js >= 20 with npm and the npm
# registry once; skipped when that lockfile is installed already. Without it the runtime tests
# fail, saying so.
runtime_dir=$(cd "$(dirname "$0")/../tests/runtime" && pwd)
stamp=$runtime_dir/node_modules/.quarry-installed-lock.json
node_major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\).*/\1/p')
if [[ -z $node_major || $node_major -lt 20 ]] || ! command -v npm >/dev/null; then
  echo "setup: WARNING: Node.js >= 20 with npm not found; the llama.cpp runtime tests" \
       "(ctest -L runtime) will fail" >&2
elif cmp -s "$runtime_dir/package-lock.json" "$stamp"; then
  echo "setup: node-llama-cpp present (tests/runtime/node_modules)"
else
  echo "setup: installing node-llama-cpp (tests/runtime/package-lock.json)"
  if (cd "$runtime_dir" && npm ci --omit=optional --ignore-scripts --no-audit --no-fund \
        --loglevel=error >/dev/null) &&
     node "$runtime_dir/llama_cpp_nll.mjs" --check >/dev/null; then
    cp "$runtime_dir/package-lock.json" "$stamp"
  else
    echo "setup: WARNING: installing node-llama-cpp failed; the runtime tests will fail" >&2
  fi
fi

# Check the BLAS that LibTorch actually uses: build a tiny matmul probe and print its GFLOP/s.
here=$(cd "$(dirname "$0")" && pwd)
probe_dir=${TMPDIR:-/tmp}/quarry-setup-$$
mkdir -p "$probe_dir"
if g++ -std=c++17 -O2 "$here/tools/blas_check.cc" -o "$probe_dir/blas_check" \
     -I/usr/include/torch/csrc/api/include -ltorch_cpu -lc10 2>"$probe_dir/build.log"; then
  if ! "$probe_dir/blas_check" "${QUARRY_MIN_GFLOPS:-50}"; then
    echo "setup: WARNING: matmul is slow; is libopenblas0-openmp the libblas.so.3 alternative?" >&2
    echo "setup:          update-alternatives --display libblas.so.3-$arch" >&2
  fi
  rm -rf "$probe_dir"
else
  echo "setup: WARNING: could not build the BLAS probe (see $probe_dir/build.log)" >&2
fi
