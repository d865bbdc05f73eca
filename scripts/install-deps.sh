#!/usr/bin/env bash
# Installs the Debian packages posattn needs, only those missing: the build and tests by default; with --bench the
# benchmark suite and its peers; with --cross the aarch64 cross toolchain, qemu and the arm64 libraries;
# with --sanitizers clang's sanitizer runtimes; with --vendor CMake and qemu-user (scripts/vendor-check.sh). Debian 12, as root (or with sudo available).
set -euo pipefail

packages=(meson ninja-build pkg-config gcc libsleef-dev check libsubunit-dev)
arm64=0
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(g++ libbenchmark-dev libdnnl-dev libxnnpack-dev libpthreadpool-dev python3 python3-matplotlib) ;;
    --cross) arm64=1
             packages+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user
                        libsleef-dev:arm64 check:arm64 libsubunit-dev:arm64) ;;
    --ggml) packages+=(g++ cmake make patch openssl) ;; # integrations/ggml (npm comes with nodejs)
    --sanitizers) packages+=(clang libclang-rt-14-dev) ;;
    --vendor) packages+=(cmake qemu-user) ;;
    *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$arm64" -eq 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  as_root dpkg --add-architecture arm64
fi
echo "install-deps: installing ${missing[*]}"
as_root apt-get update -q
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
