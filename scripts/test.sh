#!/usr/bin/env bash
# Installs what is missing, checks the formatting (scripts/check-format.sh), builds, and runs
# every test with CTest.
# Usage: scripts/test.sh [ctest args...]   e.g. scripts/test.sh -R trainer
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/install-deps.sh" --with-test-tools
bash "$root/scripts/check-format.sh"
bash "$root/scripts/build.sh"
cd "$root/build"
# --timeout: the default for tests without their own TIMEOUT (unit tests, a few seconds each).
ctest --output-on-failure --timeout 60 -j "$(nproc)" "$@"
