#!/usr/bin/env bash
# Shared-base groups through attuned and its worker processes on the GPU: the same JOBS LoRA jobs
# submitted at once to an attuned with its defaults (--share-base=gpus, --job-processes on), where
# they train as one group in one attune-worker, and to one with --share-base=off, where they run
# one after another. Default: RoBERTa-base on GLUE-like lengths (run_h200_varlen.sh's data), 4
# jobs (q,v and q,k,v at v ratios 1 and 4), STEPS steps each. Aggregate rate: all jobs' real tokens
# over the time their step events span, as attuned stamped them: shared, from the first job's first
# step to the last job's last; sequential, the sum of each job's own span.
#
#   on the GPU machine, from the repository root:  OUT=$OUT bash bench/run_h200_share_worker.sh
#   to check the script on the CPU:  BIN=build/bin SKIP_BUILD=1 DEVICE=cpu MODEL=... DATA=...
#     SHARE=--share-base STEPS=40 bash bench/run_h200_share_worker.sh
#
# Writes OUT (default /tmp/share-out): MODE-events-N.jsonl, MODE-workers.txt (attune-worker
# processes seen while the jobs ran), summary.json, commands.txt, attuned-MODE.log.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-/tmp/share-out}"; mkdir -p "$out"
work=/tmp/bench
device="${DEVICE:-cuda:0}"
model="${MODEL:-$work/roberta-base}"
data="${DATA:-$work/roberta-base-glue.jsonl}"
steps="${STEPS:-600}"
bin="${BIN:-/tmp/build/bin}"
jobs=("q,v v=1" "q,k,v v=1" "q,v v=4" "q,k,v v=4")
say() { echo "== $* ($SECONDS s)"; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  source .gpu/device-env.sh
  export PKG_CONFIG_PATH=/tmp/deb/usr/lib/x86_64-linux-gnu/pkgconfig:/tmp/deb/usr/share/pkgconfig
  say build
  cmake -S . -B /tmp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTUNE_BUILD_TESTS=OFF \
    -DCMAKE_RUNTIME_OUTPUT_DIRECTORY=/tmp/build/bin >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
  cmake --build /tmp/build --target attuned attune attune-worker -- -k 0 \
    >>"$out/build.log" 2>&1 || { grep -B2 -A12 "error" "$out/build.log" | head -60; exit 1; }
  say "models and data"
  [ -f "$work/roberta-base-glue.jsonl" ] || { python3 bench/make_bench_models.py "$work" &&
    python3 bench/make_varlen_data.py "$work"; } >"$out/data.log" 2>&1 || { tail -20 "$out/data.log"; exit 1; }
fi
gpus=1; [ "$device" = cpu ] && gpus=0

# run MODE FLAGS...: one attuned, the jobs submitted at once, their events.
run() {
  local mode="$1"; shift
  say "$mode"
  rm -rf "/tmp/share-data-$mode"
  "$bin/attuned" --listen 127.0.0.1:0 --data-dir "/tmp/share-data-$mode" --devices "$device" \
    --data-roots "$(dirname "$model"),$(dirname "$data")" "$@" >"$out/attuned-$mode.out" \
    2>"$out/attuned-$mode.log" &
  local attuned=$!
  for _ in $(seq 100); do grep -q "listening on" "$out/attuned-$mode.out" 2>/dev/null && break; sleep 0.1; done
  local address; address="$(sed -n 's/^attuned listening on //p' "$out/attuned-$mode.out")"
  echo "attuned ($mode): --devices $device $*" >>"$out/commands.txt"
  local ids=() n=0
  for j in "${jobs[@]}"; do
    read -r targets ratio <<<"$j"
    local submit=("$bin/attune" --server "$address" submit --model "$model" --train "$data"
      --task classification --batch-size 32 --max-seq-len 128 --max-steps "$steps" --rank 16
      --alpha 16 --lr 3e-4 --lr-ratio "$ratio" --seed $((7 + n)) --targets "$targets"
      --gpus "$gpus" --checkpoint-every "$steps")
    echo "job ($mode): ${submit[*]}" >>"$out/commands.txt"
    ids+=("$("${submit[@]}" | head -1)"); n=$((n + 1))
  done
  : >"$out/$mode-workers.txt"
  (while kill -0 $attuned 2>/dev/null; do pgrep -P $attuned -f attune-worker | tr '\n' ' ' >>"$out/$mode-workers.txt"; echo >>"$out/$mode-workers.txt"; sleep 0.5; done) &
  local sampler=$!
  n=0
  for id in "${ids[@]}"; do
    timeout 600 "$bin/attune" --server "$address" watch "$id" --output json >"$out/$mode-events-$n.jsonl"
    n=$((n + 1))
  done
  kill $attuned; wait $attuned 2>/dev/null; kill $sampler 2>/dev/null
}
run shared ${SHARE:-}
run sequential --share-base=off
python3 - "$out" "${#jobs[@]}" <<'PY' | tee "$out/summary.json"
import datetime, json, sys
out, n = sys.argv[1], int(sys.argv[2])
def when(e):
    whole, _, frac = e["time"].rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(whole).timestamp() + (float("0." + frac) if frac else 0.0)
result = {}
for mode in ("shared", "sequential"):
    steps, first, last, tokens, states, shared, spans = [], None, None, 0, [], 0, 0.0
    for i in range(n):
        events = [json.loads(l) for l in open(f"{out}/{mode}-events-{i}.jsonl") if l.strip()]
        s = [e for e in events if "step" in e]
        steps.append({int(e["step"]["step"]): float(e["step"].get("trainLoss", "nan")) for e in s})
        tokens += sum(int(e["step"].get("tokens", 0)) for e in s)
        if s:
            first = min(first or when(s[0]), when(s[0])); last = max(last or when(s[-1]), when(s[-1]))
            spans += when(s[-1]) - when(s[0])
        states += [e["stateChange"]["state"] for e in events if "stateChange" in e][-1:]
        shared += any("shares its frozen base" in e.get("warning", {}).get("message", "") for e in events)
    workers = set(w for line in open(f"{out}/{mode}-workers.txt") for w in line.split())
    # Shared: the jobs overlap, so the window from the first step to the last; sequential: the
    # sum of each job's own window (not the loading between one job and the next).
    seconds = (last - first if first else 0.0) if mode == "shared" else spans
    result[mode] = {"tokens": tokens, "seconds": seconds,
                    "tokens_per_s": tokens / seconds if seconds > 0 else None,
                    "final_states": states, "jobs_that_shared": shared,
                    "worker_processes_seen": len(workers), "losses": steps}
a, b = result["shared"], result["sequential"]
if a["tokens_per_s"] and b["tokens_per_s"]:
    result["shared_over_sequential"] = a["tokens_per_s"] / b["tokens_per_s"]
rel = [abs(x - y) / max(abs(y), 1e-12) for la, lb in zip(a["losses"], b["losses"]) for s, x in la.items()
       if s in lb for y in [lb[s]]]
result["max_relative_loss_difference"] = max(rel) if rel else None
result["losses_compared"] = len(rel)
for m in ("shared", "sequential"):
    result[m].pop("losses")
print(json.dumps(result, indent=1))
PY
