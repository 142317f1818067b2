#!/usr/bin/env bash
# Configures and builds attune (Release, Ninja) into build/; binaries land in build/bin/.
# Usage: scripts/build.sh [--target T]... [extra cmake args...]
#   With --target, only those targets (and what they need) are built; otherwise everything.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
targets=()
cmake_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target) targets+=(--target "$2"); shift 2 ;;
    *) cmake_args+=("$1"); shift ;;
  esac
done
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}"
cmake --build "$root/build" -j "$(nproc)" "${targets[@]}"
