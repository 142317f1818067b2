#!/usr/bin/env bash
# The shared-base (multi-LoRA) benchmark in one call on the GPU machine: build
# attune-multi-lora-bench, make the models and variable-length data (make_bench_models.py,
# make_varlen_data.py), then for each case run the same jobs as one shared-base group and one
# after another, each in its own process; writes $OUT/multi-CASE-MODE.json, commands.txt, log.txt.
#
#   on the GPU machine, from the repository root:  bash bench/run_h200_multi_lora.sh
#
# Cases: llama (the Llama-style 1.1B, 4 causal-LM jobs: q,v and q,k,v at v ratios 1 and 4),
# llama8b (Llama-3.1-8B's layer shapes, 8 of its 32 layers, the same 4 jobs), roberta
# (RoBERTa-base on GLUE-like lengths, 8 classification jobs: q,v and q,k,v at v ratios 1, 2, 4,
# 8: the paper's sweep); llamasmall and llama8bsmall: the llama cases with a quarter of the
# examples per step (2 and 1), where one job alone leaves more of the GPU idle. Env: CASES picks them; MODES
# the modes (default "group sequential"; also group-unfused: the members' own steps one after another
# over the shared base); OUT (default /tmp/bench-out); DEADLINE (seconds since start, default 540)
# skips runs that would start after it.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-/tmp/bench-out}"; mkdir -p "$out"
log="$out/log.txt"; : >>"$log"
work=/tmp/bench; mkdir -p "$work"
build=/tmp/build
cases="${CASES:-llama roberta llama8b llamasmall llama8bsmall}"
deadline="${DEADLINE:-540}"
say() { echo "== $* ($SECONDS s)" | tee -a "$log"; }

source .gpu/device-env.sh
export PKG_CONFIG_PATH=/tmp/deb/usr/lib/x86_64-linux-gnu/pkgconfig:/tmp/deb/usr/share/pkgconfig
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$log"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "build"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTUNE_BUILD_TESTS=ON \
    -DATTUNE_BENCH_CUDA_STATS=ON -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$build/bin" >>"$log" 2>&1 ||
    { tail -30 "$log"; exit 1; }
  cmake --build "$build" --target attune-multi-lora-bench -- -k 0 >>"$log" 2>&1 ||
    { grep -B2 -A12 "error" "$log" | head -80; exit 1; }
fi
bin="$build/bin"

say "models and data"
[ -f "$work/roberta-base.jsonl" ] || python3 bench/make_bench_models.py "$work" >>"$log" 2>&1 ||
  { tail -30 "$log"; exit 1; }
want8b=""; case " $cases " in *" llama8b"*) want8b="--llama8b" ;; esac
if [ ! -f "$work/roberta-base-glue.jsonl" ] || { [ -n "$want8b" ] && [ ! -d "$work/llama-8b-layers" ]; }; then
  python3 bench/make_varlen_data.py "$work" $want8b >>"$log" 2>&1 || { tail -30 "$log"; exit 1; }
fi

# case: model data task batch seq steps warmup lr jobs
four="q,v:1/q,k,v:1/q,v:4/q,k,v:4"
eight="q,v:1/q,v:2/q,v:4/q,v:8/q,k,v:1/q,k,v:2/q,k,v:4/q,k,v:8"
declare -A shape=(
  [llama]="llama-1.1b llama-1.1b-varlen.jsonl causal-lm 8 2048 30 6 2e-4 $four"
  [llama8b]="llama-8b-layers llama-8b-varlen.jsonl causal-lm 4 4096 20 5 2e-4 $four"
  [llamasmall]="llama-1.1b llama-1.1b-varlen.jsonl causal-lm 2 2048 40 8 2e-4 $four"
  [llama8bsmall]="llama-8b-layers llama-8b-varlen.jsonl causal-lm 1 4096 30 6 2e-4 $four"
  [roberta]="roberta-base roberta-base-glue.jsonl classification 32 128 120 20 3e-4 $eight"
)
for c in $cases; do
  read -r model data task batch seq steps warm lr jobs <<<"${shape[$c]}"
  for mode in ${MODES:-group sequential}; do
    if [ "$SECONDS" -ge "$deadline" ]; then say "no time left for $c $mode"; continue; fi
    cmd=("$bin/attune-multi-lora-bench" --model "$work/$model" --train "$work/$data" --task "$task"
         --batch "$batch" --seq-len "$seq" --steps "$steps" --timing-warmup "$warm" --rank 16
         --lr "$lr" --seed 7 --jobs "$jobs" --mode "$mode" --device cuda:0 --label "$c"
         --output-dir "$work/multi-$c")
    say "$c $mode"; echo "$c-$mode: ${cmd[*]}" >>"$out/commands.txt"
    timeout 300 "${cmd[@]}" >"$out/multi-$c-$mode.json" 2>>"$log" || { echo "$c $mode failed" | tee -a "$log"; tail -5 "$log"; }
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print({k: d.get(k) for k in ('mode','window_s','tokens','tokens_per_s','peak_device_gib','failures')})" \
      "$out/multi-$c-$mode.json" 2>&1 | tee -a "$log"
  done
done
say "done"
