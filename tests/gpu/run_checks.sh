#!/usr/bin/env bash
# The GPU machine's checks (parity with transformers, PEFT loading attune's adapters, the fused
# kernels and CUDA graphs), in one run:
#   1. attune-parity on cuda:0 in fp32 and bf16 against transformers' fp32 golden logits,
#      and transformers' own bf16 error for context (the decoders run the fused kernels);
#   2. an adapter trained by attune (on the CPU, copied into .gpucheck/) loaded by PEFT over the
#      same base model: its validation predictions must equal attune's own;
#   3. fused_ops_test: the fused CUDA kernels against the LibTorch reference;
#   4. the example job on cuda:0: attune-bench with CUDA graphs (its bucketed batches have
#      several shapes) and without, and through attuned with a checkpoint every 10 steps and
#      only the last one kept (pruning on the GPU machine);
#   5. metrics: attuned with --devices auto and --http, the example job submitted without --gpus
#      (so it must default to the GPU), /metrics scraped while it runs: the NVML series for
#      cuda:0 and the job's CUDA allocator series must be there, and the job's events must say
#      "running on cuda:0".
# Run on the GPU machine from the repo root with .gpu/ (device-env.sh and the Debian packages
# it unpacks; see bench/run_h200.sh) and .gpucheck/ (the example model, the adapter and
# eval_predictions.jsonl from scripts/demo.sh) beside it, neither in the repository; writes
# $OUT/*.
# PARTS (default "parity peft fused example metrics") picks the checks.
set -uo pipefail
out="${OUT:-/tmp/out}"
mkdir -p "$out"
source .gpu/device-env.sh
export PKG_CONFIG_PATH=/tmp/deb/usr/lib/x86_64-linux-gnu/pkgconfig:/tmp/deb/usr/share/pkgconfig
python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)' | tee "$out/versions.txt"
cmake -S . -B /tmp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTUNE_BUILD_TESTS=ON >"$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
cmake --build /tmp/build --target attune-parity fused_ops_test attune-bench attuned attune \
  attune-make-example >"$out/build.log" 2>&1 || { grep -m20 -B2 -A8 "error" "$out/build.log"; exit 1; }
parts=" ${PARTS:-parity peft fused example metrics} "
if [[ $parts == *" parity "* ]]; then
{
  /tmp/build/bin/attune-parity --device cuda:0 --dtype float32 tests/fixtures/parity/*/
  /tmp/build/bin/attune-parity --device cuda:0 --dtype bfloat16 tests/fixtures/parity/*/
  python3 tests/gpu/hf_bf16_reference.py tests/fixtures/parity/*/
} 2>&1 | tee "$out/parity.jsonl"
fi
if [[ $parts == *" peft "* ]]; then
python3 tests/gpu/peft_crosscheck.py .gpucheck/example/model .gpucheck/adapter \
  .gpucheck/example/validation.jsonl .gpucheck/eval_predictions.jsonl 2>&1 | tee "$out/peft.json"
fi

if [[ $parts == *" fused "* ]]; then
/tmp/build/tests/fused_ops_test 2>&1 | tail -3 | tee "$out/fused_ops_test.txt"
fi
ex=/tmp/example
/tmp/build/bin/attune-make-example "$ex" >/dev/null
cp scripts/example-job.yaml "$ex/"

if [[ $parts == *" metrics "* ]]; then
/tmp/build/bin/attuned --listen 127.0.0.1:0 --http 127.0.0.1:0 --data-dir /tmp/msvc \
  --devices auto --data-roots "$ex" >/tmp/msvc.out 2>/tmp/msvc.log &
mpid=$!
for _ in $(seq 100); do grep -q listening /tmp/msvc.out && break; sleep 0.2; done
maddr="$(sed -n 's/^attuned listening on //p' /tmp/msvc.out)"
haddr="$(sed -n 's/^attuned http on //p' /tmp/msvc.out)"
mid="$(/tmp/build/bin/attune --server "$maddr" submit --config "$ex/example-job.yaml" \
       --epochs 40 | head -1)"
scrape() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' "http://$haddr/metrics"; }
for _ in $(seq 100); do
  scrape | grep -q '^attune_job_device_memory_allocated_bytes' && break
  sleep 0.2
done
scrape >"$out/metrics-running.txt"
/tmp/build/bin/attune --server "$maddr" cancel "$mid" >/dev/null
timeout 60 /tmp/build/bin/attune --server "$maddr" watch "$mid" --output json >"$out/metrics-events.jsonl"
kill "$mpid"; wait "$mpid"
echo "attuned exit status $?" >"$out/metrics-check.txt"
{
  grep -E '^attune_device_(memory_used_bytes|memory_total_bytes|utilization_ratio)\{device="cuda:0"' \
    "$out/metrics-running.txt" || echo "MISSING: NVML series for cuda:0"
  grep -E '^attune_job_device_memory_(allocated|reserved|peak_allocated)_bytes' \
    "$out/metrics-running.txt" || echo "MISSING: the job's CUDA allocator series"
  grep -o '"devices":\[[^]]*\]' "$out/metrics-events.jsonl" | head -1 || echo "MISSING: devices"
  grep -o 'running on [a-z0-9:,]*' "$out/metrics-events.jsonl" | head -1
} | tee -a "$out/metrics-check.txt"
tail -3 /tmp/msvc.log >>"$out/metrics-check.txt"
fi
[[ $parts == *" example "* ]] || exit 0

for g in "" --no-cuda-graphs; do
  /tmp/build/bin/attune-bench --model "$ex/model" --train "$ex/train.jsonl" \
    --validation "$ex/validation.jsonl" --task classification --targets q,v --rank 8 --alpha 16 \
    --lr 3e-3 --lr-ratio v=4 --epochs 3 --batch 32 --seq-len 64 --warmup 10 --seed 7 \
    --device cuda:0 $g >"$out/example-bench$g.json" 2>"$out/example-bench$g.err"
done
python3 - "$out" <<'PY' | tee "$out/example-graphs.txt"
import json, sys
a = json.load(open(sys.argv[1] + "/example-bench.json"))
b = json.load(open(sys.argv[1] + "/example-bench--no-cuda-graphs.json"))
worst = max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a["losses"], b["losses"]))
print(f"example job on cuda:0: graph replays {a['graph_replays']} of {a['steps']} steps, "
      f"{a['ms_per_step']:.2f} ms/step; eager {b['ms_per_step']:.2f} ms/step; largest relative "
      f"loss difference {worst:.2e}; final losses {a['losses'][-1]:.5f} / {b['losses'][-1]:.5f}")
PY
/tmp/build/bin/attuned --listen 127.0.0.1:0 --data-dir /tmp/svc --devices cuda:0 \
  --data-roots "$ex" >/tmp/svc.out 2>/tmp/svc.log &
pid=$!
for _ in $(seq 100); do grep -q listening /tmp/svc.out && break; sleep 0.2; done
addr="$(sed -n 's/^attuned listening on //p' /tmp/svc.out)"
id="$(/tmp/build/bin/attune --server "$addr" submit --config "$ex/example-job.yaml" --gpus 1 \
      --checkpoint-every 10 --keep-checkpoints 1 | head -1)"
timeout 120 /tmp/build/bin/attune --server "$addr" watch "$id" >/dev/null
/tmp/build/bin/attune --server "$addr" get "$id" | tee "$out/example-service.txt"
kill "$pid"; wait "$pid"
echo "attuned exit status $? (0 = clean shutdown)" | tee -a "$out/example-service.txt"
tail -3 /tmp/svc.log >>"$out/example-service.txt"
