#!/usr/bin/env bash
# Writes the example fine-tuning assets: OUT/model (a tiny Hugging Face-format RoBERTa-style
# classifier: config.json, model.safetensors, tokenizer.json), OUT/train.jsonl and
# OUT/validation.jsonl (a learnable sentiment task). Builds the generator if needed.
# Usage: scripts/make-example.sh OUT
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: scripts/make-example.sh OUT" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/bin/attune-make-example"
if [[ ! -x "$bin" ]]; then
  cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build" --target attune-make-example
fi
exec "$bin" "$1"
