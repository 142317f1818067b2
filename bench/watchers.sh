#!/usr/bin/env bash
# Bench: does watching a job slow its training? Runs the example job (targets q,v, v=4) for
# STEPS steps with 0 watchers, then with N concurrent `attune watch` streams (gRPC WatchJob) plus
# N dashboard-style pollers of /api/jobs/<id>/events, and compares steps/s (steps divided by the
# job's start-to-finish time as the server recorded it). Alternates the two runs ROUNDS times.
# Usage: bench/watchers.sh [N=200] [STEPS=400] [ROUNDS=2]    (after scripts/build.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${ATTUNE_BIN:-$root/build/bin}"
n="${1:-200}"; steps="${2:-400}"; rounds="${3:-2}"
work="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin/attune-make-example" "$work/ex" >/dev/null
"$bin/attuned" --listen 127.0.0.1:0 --http 127.0.0.1:0 --data-dir "$work/data" --devices cpu \
  --data-roots "$work/ex" >"$work/out" 2>"$work/log" &
for _ in $(seq 100); do grep -q "listening" "$work/out" && break; sleep 0.1; done
addr="$(sed -n 's/^attuned listening on //p' "$work/out")"
http="$(sed -n 's/^attuned http on //p' "$work/out")"
cli() { "$bin/attune" --server "$addr" "$@"; }

run() {  # $1 = watchers; prints steps/s
  local id pids=()
  id="$(cli submit --model "$work/ex/model" --train "$work/ex/train.jsonl" \
        --validation "$work/ex/validation.jsonl" --task classification --targets q,v \
        --lr-ratio v=4 --seed 7 --max-steps "$steps" --eval-every 50 | head -1)"
  for _ in $(seq "$1"); do
    cli --output json watch "$id" >/dev/null 2>&1 & pids+=($!)
    ( after=0; while true; do
        body="$(curl -s "http://$http/api/jobs/$id/events?after=$after")" || break
        after="$(printf '%s' "$body" | sed -n 's/.*"nextAfter":\([0-9]*\).*/\1/p')"
        printf '%s' "$body" | grep -q '"state":"SUCCEEDED"' && break
        sleep 1
      done ) & pids+=($!)
  done
  cli watch "$id" >/dev/null 2>&1 || true
  wait "${pids[@]}" 2>/dev/null || true
  cli --output json get "$id" | python3 -c '
import json, sys, datetime
j = json.load(sys.stdin)
t = datetime.datetime.fromisoformat  # Python >= 3.11 reads the "Z" and nanoseconds
print("%.2f" % (int(j["currentStep"]) / (t(j["finishTime"]) - t(j["startTime"])).total_seconds()))'
}

echo "watchers=0 vs watchers=$n ($n WatchJob streams + $n pollers), $steps steps, $(nproc) cores"
for r in $(seq "$rounds"); do
  base="$(run 0)"; watched="$(run "$n")"
  echo "round $r: steps/s without watchers $base, with $watched"
done
