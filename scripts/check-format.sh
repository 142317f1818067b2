#!/usr/bin/env bash
# Checks that every tracked C++ and CUDA file (*.h, *.cc, *.cu) is as clang-format formats it
# with the repository's .clang-format (Google style), and lists the files that are not.
# Exit 0 when all are formatted, 1 when some are not, 2 when clang-format or git is missing.
# Usage: scripts/check-format.sh        Fix a listed file with: clang-format -i FILE
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if ! command -v clang-format >/dev/null; then
  echo "check-format: clang-format is not installed (scripts/install-deps.sh --with-test-tools)" >&2
  exit 2
fi
if ! files="$(git ls-files -- '*.h' '*.cc' '*.cu')"; then
  echo "check-format: not a git checkout; the files checked are the tracked ones" >&2
  exit 2
fi
offenders=()
while IFS= read -r file; do
  [[ -n "$file" ]] || continue
  if ! clang-format --style=file --dry-run -Werror "$file" >/dev/null 2>&1; then
    offenders+=("$file")
  fi
done <<<"$files"
count="$(grep -c . <<<"$files" || true)"
if [[ ${#offenders[@]} -gt 0 ]]; then
  echo "check-format: ${#offenders[@]} of $count files differ from clang-format ($(clang-format --version)):" >&2
  printf '  %s\n' "${offenders[@]}" >&2
  exit 1
fi
echo "check-format: all $count files formatted"
