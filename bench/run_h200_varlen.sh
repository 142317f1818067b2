#!/usr/bin/env bash
# The variable-length benchmark in one call on the GPU machine: build attune-bench, make the
# models (make_bench_models.py) and the variable-length data (make_varlen_data.py), check the
# varlen attention kernel against the reference (packed_model_test), then run attune-bench
# (packed, and unpacked) and the HF + PEFT baselines (hf_varlen.py: length-grouped dynamic
# padding, random order, torch.compile) on the same data, and attune-bench / hf_baseline.py on
# full rows for reference.
#
#   on the GPU machine, from the repository root:  bash bench/run_h200_varlen.sh
#
# Env: CASES="roberta llama llama8b llama8bcls" picks the cases (llama8bcls: the 8B shapes as a
# classifier on GLUE-like lengths, attune packed and HF length-grouped only); PROFILE="llama"
# (cases) profiles attune packed under Nsight Systems when nsys is there, else with LibTorch's
# Kineto (attune-bench --profile-trace; profile_report.py either way); COMPILE=0 leaves out HF +
# torch.compile, COMPILE_LIMIT its time limit (s, default 240); OUT (default /tmp/bench-out) gets
# results.json (every program's JSON, by file name), commands.txt and log.txt; REPEAT=N repeats
# HF length-grouped and attune packed N-1 more times per case; DEADLINE
# (seconds since start, default 540) skips what would start after it. A warm machine reuses
# /tmp/build and /tmp/bench.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-/tmp/bench-out}"; mkdir -p "$out"
log="$out/log.txt"; : >>"$log"
work=/tmp/bench; mkdir -p "$work"
build=/tmp/build
cases="${CASES:-roberta llama}"
deadline="${DEADLINE:-540}"
say() { echo "== $* ($SECONDS s)" | tee -a "$log"; }

source .gpu/device-env.sh
export PKG_CONFIG_PATH=/tmp/deb/usr/lib/x86_64-linux-gnu/pkgconfig:/tmp/deb/usr/share/pkgconfig
export PYTHONUNBUFFERED=1
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "build"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTUNE_BUILD_TESTS=ON \
    -DATTUNE_BENCH_CUDA_STATS=ON -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$build/bin" >>"$log" 2>&1 ||
    { tail -30 "$log"; exit 1; }
  cmake --build "$build" --target attune-bench packed_model_test ${EXTRA_TARGETS:-} -- -k 0 \
    >>"$log" 2>&1 || { grep -B2 -A12 "error" "$log" | head -80; exit 1; }
fi
bin="$build/bin"
say "varlen kernel vs reference (packed_model_test)"
(cd "$root" && "$build/tests/packed_model_test" 2>&1 | tail -5 | tee -a "$log")

say "models and data"
[ -f "$work/roberta-base.jsonl" ] || python3 bench/make_bench_models.py "$work" >>"$log" 2>&1 ||
  { tail -30 "$log"; exit 1; }
want8b=""; case " $cases " in *" llama8b"*) want8b="--llama8b" ;; esac
if [ ! -f "$work/roberta-base-glue.jsonl" ] || { [ -n "$want8b" ] && [ ! -d "$work/llama-8b-layers" ]; }; then
  python3 bench/make_varlen_data.py "$work" $want8b >>"$log" 2>&1 || { tail -30 "$log"; exit 1; }
fi

# case: model data task examples-per-step seq steps warmup lr
declare -A shape=(
  [roberta]="roberta-base roberta-base-glue.jsonl classification 32 128 300 30 3e-4"
  [llama]="llama-1.1b llama-1.1b-varlen.jsonl causal-lm 8 2048 40 8 2e-4"
  [llama8b]="llama-8b-layers llama-8b-varlen.jsonl causal-lm 4 4096 30 6 2e-4"
  [llama8bcls]="llama-8b-layers llama-8b-glue.jsonl classification 32 128 60 10 2e-4"
)
declare -A full=(
  [roberta]="roberta-base.jsonl 32 128"
  [llama]="llama-1.1b.jsonl 8 2048"
  [llama8b]="llama-8b-full.jsonl 4 4096"
)
run() {  # name timeout command...: runs it into $work/name.json, logs the command
  local name=$1 limit=$2; shift 2
  if [ "$SECONDS" -ge "$deadline" ]; then say "no time left for $name"; return; fi
  say "$name"; echo "$name: $*" >>"$out/commands.txt"
  timeout "$limit" "$@" >"$work/$name.json" 2>>"$log" || { echo "$name failed" | tee -a "$log"; tail -5 "$log"; }
}
for d in /usr/local/cuda/bin /usr/local/cuda-*/bin /opt/nvidia/nsight-systems/*/bin; do
  command -v nsys >/dev/null && break
  [ -x "$d/nsys" ] && PATH="$PATH:$d"
done
profile() {  # case command...: where the packed step's GPU time goes (profile_report.py)
  local c=$1; shift
  if [ "$SECONDS" -ge "$deadline" ]; then say "no time left to profile $c"; return; fi
  if ! command -v nsys >/dev/null; then  # LibTorch's own Kineto profiler, over 5 timed steps
    say "profile $c (Kineto: no nsys on this machine)"
    echo "profile-$c: $* --profile-trace $work/profile-$c.trace.json --profile-steps 5" >>"$out/commands.txt"
    timeout 200 "$@" --profile-trace "$work/profile-$c.trace.json" --profile-steps 5 \
      >"$work/profile-$c.run" 2>>"$log" &&
      python3 bench/profile_report.py --kineto "$work/profile-$c.trace.json" "$work/profile-$c.run" \
        >"$out/profile-$c.md" 2>>"$log" || say "profile $c failed"
    return
  fi
  say "profile $c"; echo "profile-$c: nsys profile --cuda-graph-trace=node $*" >>"$out/commands.txt"
  timeout 200 nsys profile -f true -o "$work/profile-$c" --trace=cuda --cuda-graph-trace=node \
    "$@" >"$work/profile-$c.run" 2>>"$log" &&
    nsys stats -f csv -r cuda_gpu_kern_sum,cuda_gpu_mem_time_sum -o "$work/profile-$c" \
      "$work/profile-$c.nsys-rep" >>"$log" 2>&1 &&
    python3 bench/profile_report.py "$work/profile-$c" "$work/profile-$c.run" \
      >"$out/profile-$c.md" 2>>"$log" || say "profile $c failed"
}
for c in $cases; do
  read -r model data task batch seq steps warm lr <<<"${shape[$c]}"
  common=(--model "$work/$model" --train "$work/$data" --task "$task" --batch "$batch"
          --seq-len "$seq" --steps "$steps" --rank 16 --alpha 16 --lr "$lr" --lr-ratio v=4
          --seed 7 --timing-warmup "$warm" --label "$c")
  at=("$bin/attune-bench" "${common[@]}" --targets q,v --device cuda:0)
  # The token budget of batch full rows, as in the 2026-12-02 results (the default budget is
  # now the rows that hold about batch examples, much smaller on short data).
  run "attune-$c-packed" 200 "${at[@]}" --packing on --tokens-per-step $((batch * seq))
  # The same packed step with each packed-attention kernel (packed_attention.h), to weigh their
  # time and memory on short rows: the block mask (the default there), flash and
  # memory-efficient attention over cumulative sequence lengths.
  if [ "$c" = roberta ]; then
    for k in mask flash efficient; do
      run "attune-$c-packed-$k" 200 "${at[@]}" --packing on --tokens-per-step $((batch * seq)) \
        --packed-attention "$k"
    done
  fi
  if [ -n "${full[$c]:-}" ]; then  # attune's own full-row rate, in the same call
    read -r fdata fbatch fseq <<<"${full[$c]}"
    fcommon=(--model "$work/$model" --train "$work/$fdata" --task "$task" --batch "$fbatch"
             --seq-len "$fseq" --steps "$steps" --rank 16 --alpha 16 --lr "$lr" --lr-ratio v=4
             --seed 7 --timing-warmup "$warm" --label "$c-full")
    run "attune-$c-full" 200 "$bin/attune-bench" "${fcommon[@]}" --targets q,v --device cuda:0
  fi
  run "hf-$c-grouped" 200 python3 bench/hf_varlen.py "${common[@]}" --order grouped
  case " ${PROFILE:-} " in *" $c "*) profile "$c" "${at[@]}" --packing on --tokens-per-step $((batch * seq)) ;; esac
  [ "$c" = llama8bcls ] && continue
  run "attune-$c-unpacked" 200 "${at[@]}" --packing off
  [ "$c" = roberta ] && run "attune-$c-unpacked-no-graphs" 200 "${at[@]}" --packing off --no-cuda-graphs
  [ "$c" != llama8b ] && run "hf-$c-random" 200 python3 bench/hf_varlen.py "${common[@]}" --order random
  # REPEAT=N: N-1 more runs of HF length-grouped and attune packed, interleaved, to see how much
  # each varies between runs in one call.
  for r in $(seq 2 "${REPEAT:-1}"); do
    run "hf-$c-grouped-rep$r" 200 python3 bench/hf_varlen.py "${common[@]}" --order grouped
    run "attune-$c-packed-rep$r" 200 "${at[@]}" --packing on --tokens-per-step $((batch * seq))
  done
  [ "${COMPILE:-1}" = 1 ] && run "hf-$c-compile" "${COMPILE_LIMIT:-240}" python3 bench/hf_varlen.py "${common[@]}" --order grouped --compile
done
python3 - "$work" >"$out/results.json" <<'PY'
import glob, json, os, sys
def load(f):
    try:
        return json.load(open(f))
    except ValueError:
        return None
print(json.dumps({os.path.basename(f): load(f) for f in sorted(glob.glob(sys.argv[1] + "/*.json"))
                  if "smoke" not in f and not f.endswith(".trace.json")}, indent=1))
PY
python3 bench/varlen_report.py "$out/results.json" "$work" | tee "$out/summary.md"
cp "$work"/profile-*.csv "$out"/ 2>/dev/null; true
