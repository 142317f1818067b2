#!/usr/bin/env bash
# Bench: does watching a job slow its training? Runs the example job (targets q,v, v=4) for
# STEPS steps with 0 watchers, then with N concurrent WatchJob streams (attune-watchers-bench:
# N streams from one process), and compares steps/s (the job's steps over its start-to-finish
# time as the server recorded it). Alternates the two runs ROUNDS times.
# Usage: bench/watchers.sh [N=200] [STEPS=1500] [ROUNDS=3]    (after scripts/build.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${ATTUNE_BIN:-$root/build/bin}"
n="${1:-200}"; steps="${2:-1500}"; rounds="${3:-3}"
work="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin/attune-make-example" "$work/ex" >/dev/null
: >"$work/out"
"$bin/attuned" --listen 127.0.0.1:0 --data-dir "$work/data" --devices cpu \
  --data-roots "$work/ex" >"$work/out" 2>"$work/log" &
for _ in $(seq 100); do grep -q "listening" "$work/out" && break; sleep 0.1; done
addr="$(sed -n 's/^attuned listening on //p' "$work/out")"

run() {  # $1 = watchers; prints the bench's JSON line
  local id
  id="$("$bin/attune" --server "$addr" submit --model "$work/ex/model" \
        --train "$work/ex/train.jsonl" --task classification --targets q,v --lr-ratio v=4 \
        --lr 3e-3 --batch-size 32 --max-seq-len 64 --seed 7 --max-steps "$steps" | head -1)"
  "$bin/attune-watchers-bench" --server "$addr" --job "$id" --watchers "$1"
}

echo "# watchers=0 vs watchers=$n, $steps steps each, $(nproc) cores, $(date -u +%F)"
for r in $(seq "$rounds"); do
  run 0
  run "$n"
done
