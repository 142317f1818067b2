#!/usr/bin/env bash
# Installs the Debian 12 packages that attune builds, tests and runs with.
# Only packages that are missing are installed; safe to run again.
# Usage: scripts/install-deps.sh [--with-test-tools] [--fuzz]
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ccache
  libtorch-dev libopenblas0-openmp
  libgloo-dev  # the headers of LibTorch's c10d ProcessGroupGloo (data-parallel training on the CPU)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libgtest-dev libgmock-dev libsqlite3-dev
  nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libpcre2-dev libutf8proc-dev
  libssl-dev libcpp-httplib-dev python3
  python3-jinja2  # renders chat templates (server/engine/chat/render_helper.py)
)
for flag in "$@"; do
  case "$flag" in
    # promtool and the Prometheus server for the metrics tests; Chromium for the dashboard test;
    # clang-format for scripts/check-format.sh.
    --with-test-tools) packages+=(prometheus chromium clang-format) ;;
    # clang and libFuzzer for bench/fuzz.sh (the CI corpus replay needs neither).
    --fuzz) packages+=(clang-14 libclang-rt-14-dev) ;;
    *) echo "install-deps: unknown flag $flag; expected --with-test-tools or --fuzz" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
