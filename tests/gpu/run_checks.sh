#!/usr/bin/env bash
# The GPU machine's checks for issues 3 and 4, in one device call:
#   1. attune-parity on cuda:0 in fp32 and bf16 against transformers' fp32 golden logits,
#      and transformers' own bf16 error for context;
#   2. an adapter trained by attune (on the CPU, carried in .gpucheck/) loaded by PEFT over the
#      same base model: its validation predictions must equal attune's own.
# Run on the GPU machine from the repo root with `.gpu` and `.gpucheck` carried; writes $OUT/*.
set -uo pipefail
out="${OUT:-/tmp/out}"
mkdir -p "$out"
source .gpu/device-env.sh
export PKG_CONFIG_PATH=/tmp/deb/usr/lib/x86_64-linux-gnu/pkgconfig:/tmp/deb/usr/share/pkgconfig
python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)' | tee "$out/versions.txt"
cmake -S . -B /tmp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTUNE_BUILD_TESTS=OFF >"$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
cmake --build /tmp/build --target attune-parity >"$out/build.log" 2>&1 || { grep -m20 -B2 -A8 "error" "$out/build.log"; exit 1; }
{
  /tmp/build/bin/attune-parity --device cuda:0 --dtype float32 tests/fixtures/parity/*/
  /tmp/build/bin/attune-parity --device cuda:0 --dtype bfloat16 tests/fixtures/parity/*/
  python3 tests/gpu/hf_bf16_reference.py tests/fixtures/parity/*/
} 2>&1 | tee "$out/parity.jsonl"
python3 tests/gpu/peft_crosscheck.py .gpucheck/example/model .gpucheck/adapter \
  .gpucheck/example/validation.jsonl .gpucheck/eval_predictions.jsonl 2>&1 | tee "$out/peft.json"
