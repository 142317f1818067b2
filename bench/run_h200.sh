#!/usr/bin/env bash
# The H200 benchmark in one run: build attune, make the benchmark models, run the Hugging Face +
# PEFT baseline and attune-bench on both shapes, run the RoBERTa job through attuned, and write
# the results table.
#
#   on the GPU machine, from the repository root:  bash bench/run_h200.sh
#
# It needs .gpu/device-env.sh (not in the repository; git ignores .gpu/): sourced first, it
# unpacks Debian's gRPC, Protobuf, Abseil, ... packages from .gpu/debs/ into /tmp/deb and points
# the compiler, CMake and the loader at them and at PyTorch's LibTorch (CUDA).
# Writes under $OUT (default /tmp/bench-out): h200.md (the table, the first 50 losses of both
# programs side by side, the commands), results.json (every program's JSON) and log.txt.
# Copy h200.md to bench/results/<date>-h200.md. Env: CASES="llama roberta" picks the shapes;
# SERVICE=0 skips the attuned run; ABLATE=0 skips the runs with one speed measure turned off.
# A second call on the same (still warm) machine reuses /tmp/build and /tmp/bench's models.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-/tmp/bench-out}"; mkdir -p "$out"
log="$out/log.txt"; : >"$log"
work=/tmp/bench; mkdir -p "$work"
build=/tmp/build
cases="${CASES:-llama roberta}"
say() { echo "== $*" | tee -a "$log"; }

source .gpu/device-env.sh
export PKG_CONFIG_PATH=/tmp/deb/usr/lib/x86_64-linux-gnu/pkgconfig:/tmp/deb/usr/share/pkgconfig
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$log"

build_bench() {  # $@: extra cmake options; incremental, so a warm machine rebuilds little
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTUNE_BUILD_TESTS=ON \
    -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$build/bin" "$@" >>"$log" 2>&1 || { tail -30 "$log"; exit 1; }
  cmake --build "$build" --target attune-bench attuned attune fused_ops_test -- -k 0 >>"$log" 2>&1 ||
    { grep -B2 -A12 "error" "$log" | head -80; exit 1; }
}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "build"
  t0=$(date +%s)
  build_bench -DATTUNE_BENCH_CUDA_STATS=ON
  say "built in $(( $(date +%s) - t0 )) s"
fi
bin="$build/bin"
grep -m1 "fused CUDA kernels" "$log"
say "fused kernels against the reference on this GPU (fused_ops_test)"
"$build/tests/fused_ops_test" 2>&1 | tail -4 | tee -a "$log"

say "models"
[ -f "$work/roberta-base.jsonl" ] || python3 bench/make_bench_models.py "$work" >>"$log" 2>&1 ||
  { tail -30 "$log"; exit 1; }

say "smoke"
smoke=("$bin/attune-bench" --model "$work/roberta-base" --train "$work/roberta-base.jsonl"
       --task classification --batch 32 --seq-len 128 --steps 5 --targets q,v --device cuda:0
       --timing-warmup 1)
# If the engine crashes on this machine, find the smallest change that runs: ordinary host memory
# for batches, then no CUDA allocator statistics in attune-bench; extra=() holds what worked.
extra=()
smoke_ok() { timeout 120 "${smoke[@]}" "$@" >"$work/smoke.json" 2>>"$log"; }
if ! smoke_ok; then
  say "smoke run failed; with --pageable-batches"
  if smoke_ok --pageable-batches; then
    extra=(--pageable-batches)
  else
    say "failed again; attune-bench without CUDA allocator statistics"
    build_bench -DATTUNE_BENCH_CUDA_STATS=OFF
    if smoke_ok; then :; elif smoke_ok --pageable-batches; then extra=(--pageable-batches); else
      say "smoke run failed; its backtrace:"
      timeout 200 cuda-gdb -batch -ex run -ex bt -ex 'x/6a $sp' --args "${smoke[@]}" 2>&1 |
        grep -v "Cuda Driver error\|New Thread" | tail -40 | tee -a "$log"
      exit 1
    fi
  fi
fi
say "smoke run passed with: ${extra[*]:-defaults}"

# name model data task batch seq steps timing_warmup lr
declare -A shape=(
  [llama]="llama-1.1b llama-1.1b.jsonl causal-lm 8 2048 60 10 2e-4"
  [roberta]="roberta-base roberta-base.jsonl classification 32 128 300 50 3e-4"
)
: >"$out/commands.txt"
for c in $cases; do
  read -r model data task batch seq steps warm lr <<<"${shape[$c]}"
  common=(--model "$work/$model" --train "$work/$data" --task "$task" --batch "$batch"
          --seq-len "$seq" --steps "$steps" --rank 16 --alpha 16 --lr "$lr" --lr-ratio v=4
          --seed 7 --timing-warmup "$warm" --label "$c")
  hf=(python3 bench/hf_baseline.py "${common[@]}")
  at=("$bin/attune-bench" "${common[@]}" --targets q,v --device cuda:0 "${extra[@]}")
  printf '%s\n' "${hf[*]}" "${at[*]}" >>"$out/commands.txt"
  say "hf $c"; timeout 300 "${hf[@]}" >"$work/hf-$c.json" 2>>"$log" || tail -20 "$log"
  say "attune $c"; timeout 300 "${at[@]}" >"$work/attune-$c.json" 2>>"$log" || tail -20 "$log"
  python3 -c "import json,sys;[print(f, {k: json.load(open(f)).get(k) for k in ('ms_per_step','tokens_per_s','peak_device_gib','mfu_measured_peak','mfu_datasheet_peak','graph_replays')}) for f in sys.argv[1:]]" \
    "$work/hf-$c.json" "$work/attune-$c.json" 2>&1 | tee -a "$log"
done

if [ "${SERVICE:-1}" = 1 ]; then
  say "service"
  "$bin/attuned" --listen 127.0.0.1:0 --data-dir "$work/data" --devices cuda:0 \
    --data-roots "$work" >"$work/attuned.out" 2>"$work/attuned.log" &
  pid=$!
  for _ in $(seq 100); do grep -q "listening" "$work/attuned.out" && break; sleep 0.2; done
  addr="$(sed -n 's/^attuned listening on //p' "$work/attuned.out")"
  for c in $cases; do
    read -r model data task batch seq steps warm lr <<<"${shape[$c]}"
    submit=("$bin/attune" --server "$addr" submit --model "$work/$model" --train "$work/$data"
            --task "$task" --targets q,v --rank 16 --alpha 16 --lr "$lr" --lr-ratio v=4
            --batch-size "$batch" --max-seq-len "$seq" --max-steps "$steps" --seed 7 --gpus 1)
    printf '%s\n' "${submit[*]}" >>"$out/commands.txt"
    say "service $c"
    id="$("${submit[@]}" 2>>"$log" | head -1)"
    timeout 240 "$bin/attune" --server "$addr" watch "$id" >/dev/null 2>>"$log"
    "$bin/attune" --server "$addr" --output json get "$id" >"$work/service-$c.json" 2>>"$log"
  done
  kill "$pid"; wait "$pid" 2>/dev/null
  tail -5 "$work/attuned.log" >>"$log"
fi

# Each speed measure turned off, one at a time, while time is left (DEADLINE seconds from start).
for c in $cases; do
  read -r model data task batch seq steps warm lr <<<"${shape[$c]}"
  common=(--model "$work/$model" --train "$work/$data" --task "$task" --batch "$batch"
          --seq-len "$seq" --steps "$steps" --rank 16 --alpha 16 --lr "$lr" --lr-ratio v=4
          --seed 7 --timing-warmup "$warm" --label "$c")
  at=("$bin/attune-bench" "${common[@]}" --targets q,v --device cuda:0 "${extra[@]}")
  if [ "${ABLATE:-1}" = 1 ]; then
    variants="no-cuda-graphs masked-attention metrics-every-1"
    [ "$task" = causal-lm ] && variants="unfused plain-lm-loss $variants"
    for v in $variants; do
      [ $SECONDS -lt "${DEADLINE:-100000}" ] || { say "no time left for $c $v"; continue; }
      case $v in
        masked-attention) flag=(--masked-attention) ;;
        metrics-every-1) flag=(--metrics-every 1) ;;
        plain-lm-loss) flag=(--plain-lm-loss) ;;
        no-cuda-graphs) flag=(--no-cuda-graphs) ;;
        unfused) flag=(--unfused) ;;
      esac
      say "attune $c $v"
      timeout 300 "${at[@]}" "${flag[@]}" >"$work/attune-$c-$v.json" 2>>"$log" || tail -5 "$log"
      echo "${at[*]} ${flag[*]}" >>"$out/commands.txt"
    done
  fi
done

say "report"
python3 bench/write_report.py "$work" "$out/commands.txt" >"$out/h200.md" 2>>"$log"
python3 - "$work" >"$out/results.json" <<'EOF'
import glob, json, os, sys
def load(f):
    try:
        return json.load(open(f))
    except ValueError:
        return None
print(json.dumps({os.path.basename(f): load(f)
                  for f in sorted(glob.glob(sys.argv[1] + "/*.json"))}, indent=1))
EOF
sed -n '1,/^## Losses/p' "$out/h200.md"
