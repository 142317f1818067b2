#!/usr/bin/env bash
# A job's throughput through attuned and its attune-worker process against attune-bench's, same
# model, data and spec (issue 15 asks for within 3%): by default the RoBERTa-base packed case of
# run_h200_varlen.sh (GLUE-like lengths, 32 x 128 token budget, LoRA r=16 on q,v, v at 4x) on
# cuda:0, for STEPS steps of which the first WARMUP are not timed. The job's rate is its real
# tokens over the time between the step events of steps WARMUP and STEPS, as attuned stamped
# them (so it includes everything between the worker and attuned); attune-bench's is its own.
#
#   on the GPU machine, from the repository root:  OUT=$OUT bash bench/run_h200_worker.sh
#   to check the script on the CPU:  BIN=build/bin SKIP_BUILD=1 DEVICE=cpu MODEL=... DATA=...
#     BATCH=32 SEQ=64 STEPS=60 WARMUP=10 bash bench/run_h200_worker.sh
#
# ATTUNED_FLAGS adds flags to attuned, e.g. ATTUNED_FLAGS=--one-rank-collectives: the job's one
# rank then forms its one-member process group (ProcessGroupNCCL on CUDA; data_parallel.h), the
# issue's "1-rank NCCL job"; the summary then also compares its losses with attune-bench's.
#
# Writes OUT (default /tmp/worker-out): bench.json, job-events.jsonl, summary.json, commands.txt,
# attuned.log, worker.log.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-/tmp/worker-out}"; mkdir -p "$out"
work=/tmp/bench
device="${DEVICE:-cuda:0}"
model="${MODEL:-$work/roberta-base}"
data="${DATA:-$work/roberta-base-glue.jsonl}"
batch="${BATCH:-32}"; seq="${SEQ:-128}"; steps="${STEPS:-1500}"; warmup="${WARMUP:-100}"
bin="${BIN:-/tmp/build/bin}"
say() { echo "== $* ($SECONDS s)"; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  source .gpu/device-env.sh
  export PKG_CONFIG_PATH=/tmp/deb/usr/lib/x86_64-linux-gnu/pkgconfig:/tmp/deb/usr/share/pkgconfig
  say build
  cmake -S . -B /tmp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTUNE_BUILD_TESTS=OFF \
    -DCMAKE_RUNTIME_OUTPUT_DIRECTORY=/tmp/build/bin >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
  cmake --build /tmp/build --target attuned attune attune-worker attune-bench -- -k 0 \
    >>"$out/build.log" 2>&1 || { grep -B2 -A12 "error" "$out/build.log" | head -60; exit 1; }
  say "models and data"
  [ -f "$work/roberta-base-glue.jsonl" ] || { python3 bench/make_bench_models.py "$work" &&
    python3 bench/make_varlen_data.py "$work"; } >"$out/data.log" 2>&1 || { tail -20 "$out/data.log"; exit 1; }
fi
tokens=$((batch * seq))
say attune-bench
bench=("$bin/attune-bench" --model "$model" --train "$data" --task classification --batch "$batch"
       --seq-len "$seq" --steps "$steps" --rank 16 --alpha 16 --lr 3e-4 --lr-ratio v=4 --seed 7
       --timing-warmup "$warmup" --targets q,v --device "$device" --packing on
       --tokens-per-step "$tokens" --label worker-check)
echo "attune-bench: ${bench[*]}" >>"$out/commands.txt"
"${bench[@]}" >"$out/bench.json" 2>>"$out/bench.log" || { echo "attune-bench failed"; tail "$out/bench.log"; }

say "attuned and the job"
rm -rf /tmp/worker-data
gpus=1; [ "$device" = cpu ] && gpus=0
"$bin/attuned" --listen 127.0.0.1:0 --data-dir /tmp/worker-data --devices "$device" \
  --data-roots "$(dirname "$model"),$(dirname "$data")" ${ATTUNED_FLAGS:-} >"$out/attuned.out" 2>"$out/attuned.log" &
attuned=$!
trap 'kill $attuned 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q "listening on" "$out/attuned.out" 2>/dev/null && break; sleep 0.1; done
address="$(sed -n 's/^attuned listening on //p' "$out/attuned.out")"
submit=("$bin/attune" --server "$address" submit --model "$model" --train "$data"
        --task classification --batch-size "$batch" --max-seq-len "$seq" --max-steps "$steps"
        --rank 16 --alpha 16 --lr 3e-4 --lr-ratio v=4 --seed 7 --targets q,v --packing on
        --tokens-per-step "$tokens" --gpus "$gpus" --checkpoint-every "$steps")
echo "job: ${submit[*]}" >>"$out/commands.txt"
id="$("${submit[@]}" | head -1)"
timeout 600 "$bin/attune" --server "$address" watch "$id" --output json >"$out/job-events.jsonl"
echo "watch exit $?"
echo "attuned: --devices $device ${ATTUNED_FLAGS:-}" >>"$out/commands.txt"
cp /tmp/worker-data/jobs/"$id"/worker.log "$out/worker.log" 2>/dev/null
python3 - "$out" "$warmup" "$steps" <<'PY' | tee "$out/summary.json"
import datetime, json, sys
out, warmup, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def when(e):
    t = e["time"].rstrip("Z")
    whole, _, frac = t.partition(".")
    base = datetime.datetime.fromisoformat(whole)
    return base.timestamp() + (float("0." + frac) if frac else 0.0)
events = [json.loads(l) for l in open(out + "/job-events.jsonl") if l.strip()]
step = {int(e["step"]["step"]): e for e in events if "step" in e}
start, end = step.get(warmup), step.get(steps)
bench = json.load(open(out + "/bench.json"))
result = {"bench_tokens_per_s": bench.get("tokens_per_s"), "job_steps_seen": len(step)}
if start and end:
    tokens = sum(int(step[s]["step"].get("tokens", 0)) for s in range(warmup + 1, steps + 1) if s in step)
    seconds = when(end) - when(start)
    result.update(job_tokens_per_s=tokens / seconds, job_timed_seconds=seconds, job_tokens=tokens)
    result["job_over_bench"] = result["job_tokens_per_s"] / result["bench_tokens_per_s"]
losses = bench.get("losses") or []
pairs = [(float(step[s]["step"]["trainLoss"]), float(losses[s - 1])) for s in step
         if 0 < s <= len(losses) and "trainLoss" in step[s]["step"]]
if pairs:
    result["losses_compared"] = len(pairs)
    result["max_relative_loss_difference"] = max(abs(a - b) / max(abs(b), 1e-12) for a, b in pairs)
    result["losses_identical"] = sum(a == b for a, b in pairs)
print(json.dumps(result, indent=1))
PY
