#!/usr/bin/env bash
# Builds Quarry's container images with podman/buildah (Debian 12 packages; run as root).
#
#   deploy/build-images.sh base    localhost/debian:12, a Debian 12 rootfs made with debootstrap
#                                  (no registry needed; skipped when the image exists)
#   deploy/build-images.sh cpu     localhost/quarry:<version> from the binaries in the build tree
#                                  (builds `base` first when it is missing)
#   deploy/build-images.sh smoke   runs the CPU image: --help of every binary, then the tiny
#                                  fixture job end to end in a podman pod (server + worker)
#   deploy/build-images.sh cuda    the CUDA / ROCm worker images from this commit's sources and the
#   deploy/build-images.sh rocm    LibTorch in TORCH_DIR (see deploy/images/Containerfile.{cuda,rocm})
#   deploy/build-images.sh all     base, cpu, smoke
#
# Environment: QUARRY_BUILD_DIR (default build/), QUARRY_IMAGE (default localhost/quarry),
# QUARRY_VERSION (default the git describe of HEAD), DEBIAN_MIRROR (default the mirror in
# /etc/apt/sources.list.d/debian.sources, else deb.debian.org), TORCH_DIR for the GPU images.
#
# The CPU image holds the three binaries built here (copied from the build tree, not rebuilt) and
# the Debian runtime packages they link: the package of every shared object `ldd` resolves, which
# are all runtime packages (lib*N), never -dev packages or compilers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${QUARRY_BUILD_DIR:-$root/build}
image=${QUARRY_IMAGE:-localhost/quarry}
version=${QUARRY_VERSION:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo dev)}
base_image=localhost/debian:12
binaries=(server/quarry-server worker/quarry-worker client/quarry)

log() { echo "build-images: $*" >&2; }

# Container engine settings for machines like the project's (a VM with cgroup v1 plus a unified
# hierarchy, hard limit on open files 20000, no CAP_SYS_RESOURCE for raising it):
#  - crun 1.8 refuses that "hybrid" cgroup layout ("cgroups in hybrid mode not supported"), so
#    containers run with runc;
#  - podman's default ulimits (nofile/nproc 1048576) cannot be set ("setrlimit RLIMIT_NOFILE:
#    Operation not permitted"), so every container gets the caller's hard open-files limit.
# QUARRY_OCI_RUNTIME and an existing CONTAINERS_CONF override this.
if [[ -z ${CONTAINERS_CONF:-} ]]; then
  conf=$(mktemp /tmp/quarry-containers.XXXXXX.conf)
  trap 'rm -f "$conf"' EXIT
  n=$(ulimit -Hn)
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "%s"\n' \
    "$n" "$n" "$n" "$n" "${QUARRY_OCI_RUNTIME:-runc}" >"$conf"
  export CONTAINERS_CONF=$conf
fi

mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local m
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  echo "${m:-http://deb.debian.org/debian}"
}

build_base() {
  if podman image exists "$base_image"; then
    log "$base_image exists"
    return
  fi
  command -v debootstrap >/dev/null || { log "debootstrap missing (scripts/setup.sh installs it)"; exit 1; }
  local rootfs
  rootfs=$(mktemp -d /var/tmp/quarry-debian12.XXXXXX)
  log "debootstrap bookworm (minbase) from $(mirror) into $rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$(mirror)" >"$rootfs.log" 2>&1 ||
    { log "debootstrap failed; see $rootfs.log"; exit 1; }
  # The security and updates suites, as on the build machine.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $(mirror) bookworm main
deb $(mirror) bookworm-updates main
deb $(mirror | sed 's#/debian$#/debian-security#') bookworm-security main
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" --numeric-owner -c . |
    podman import --change 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
  rm -rf "$rootfs" "$rootfs.log"
  log "imported $base_image ($(podman image inspect -f '{{.Size}}' "$base_image") bytes)"
}

# The Debian packages that own the shared objects the binaries load.
runtime_packages() {
  local libs
  libs=$(for b in "${binaries[@]}"; do ldd "$build/$b"; done |
         awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
  for l in $libs; do
    dpkg -S "$(realpath "$l")" 2>/dev/null || dpkg -S "$l" 2>/dev/null || {
      log "no Debian package owns $l"; exit 1; }
  done | cut -d: -f1 | sort -u
}

stage_context() {
  local ctx=$1
  mkdir -p "$ctx/bin"
  for b in "${binaries[@]}"; do
    [[ -x $build/$b ]] || { log "$build/$b missing: build it first (scripts/build.sh)"; exit 1; }
    # Line tables are not needed at run time; strip them to keep the image small.
    objcopy --strip-debug "$build/$b" "$ctx/bin/$(basename "$b")"
  done
  runtime_packages >"$ctx/runtime-packages.txt"
  if grep -E -- '-dev$|^(gcc|g\+\+|cpp|binutils)' "$ctx/runtime-packages.txt"; then
    log "refusing: development packages in the runtime list"; exit 1
  fi
  cp "$root/deploy/images/Containerfile.cpu" "$ctx/"
}

build_cpu() {
  podman image exists "$base_image" || build_base
  local ctx
  ctx=$(mktemp -d /var/tmp/quarry-image.XXXXXX)
  stage_context "$ctx"
  log "runtime packages: $(wc -l <"$ctx/runtime-packages.txt") ($(tr '\n' ' ' <"$ctx/runtime-packages.txt" | cut -c1-120)...)"
  # --network host: the RUN step's apt-get reaches the Debian mirror as the host does.
  buildah bud --layers --format oci --network host -f "$ctx/Containerfile.cpu" \
    --build-arg "QUARRY_VERSION=$version" -t "$image:$version" -t "$image:cpu" "$ctx"
  rm -rf "$ctx"
  log "built $image:$version: $(podman image inspect -f '{{.Size}}' "$image:$version") bytes"
}

build_gpu() {
  local kind=$1
  [[ -n ${TORCH_DIR:-} && -d ${TORCH_DIR:-} ]] ||
    { log "$kind: set TORCH_DIR to an unpacked $kind LibTorch 2.x (lib/, share/cmake/Torch)"; exit 1; }
  podman image exists "$base_image" || build_base
  local ctx
  ctx=$(mktemp -d /var/tmp/quarry-image.XXXXXX)
  git -C "$root" archive --format=tar HEAD | (mkdir -p "$ctx/src" && tar -C "$ctx/src" -x)
  cp -a "$TORCH_DIR/." "$ctx/libtorch"
  buildah bud --layers --format oci --network host -f "$root/deploy/images/Containerfile.$kind" \
    --build-arg "BASE=$base_image" --build-arg "QUARRY_VERSION=$version" \
    -t "$image-$kind:$version" "$ctx"
  rm -rf "$ctx"
  log "built $image-$kind:$version: $(podman image inspect -f '{{.Size}}' "$image-$kind:$version") bytes"
}

smoke() {
  local tag=$image:$version
  podman image exists "$tag" || tag=$image:cpu
  log "--help of each binary in $tag"
  for b in quarry-server quarry-worker quarry; do
    podman run --rm --network none --read-only --entrypoint "/usr/local/bin/$b" \
      "$tag" --help >/dev/null
    log "  $b --help: ok"
  done
  "$root/deploy/images/smoke-pod.sh" "$tag"
}

case ${1:-all} in
  base) build_base ;;
  cpu) build_cpu ;;
  smoke) smoke ;;
  cuda | rocm) build_gpu "$1" ;;
  all) build_base; build_cpu; smoke ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
