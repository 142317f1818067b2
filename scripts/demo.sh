#!/usr/bin/env bash
# The example end to end: installs what is missing, builds, starts attuned with its embedded
# defaults on a free port and a temporary data directory, creates the example model and data,
# submits the example job with the defaults (LoRA on q,v with v at 4x the learning rate), watches
# it to the end, downloads the adapter, prints where it is, and stops the server.
# Usage: scripts/demo.sh   (the temporary directory is kept so the adapter can be looked at)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/bin"

bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh" --target attuned --target attune --target attune-make-example >/dev/null
echo "demo: built attuned, attune and attune-make-example in $bin"

work="$(mktemp -d -t attune-demo.XXXXXX)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

"$bin/attune-make-example" "$work/example"

# Start the server on a free port; it prints "attuned listening on HOST:PORT".
: >"$work/attuned.log"
"$bin/attuned" --listen 127.0.0.1:0 --data-dir "$work/data" --data-roots "$work" \
  >"$work/attuned.log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 1 100); do
  addr="$(sed -n 's/^attuned listening on //p' "$work/attuned.log" | head -n1)"
  [[ -n "$addr" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/attuned.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$addr" ]] || { echo "demo: attuned did not start" >&2; cat "$work/attuned.log" >&2; exit 1; }
echo "demo: attuned listening on $addr (data dir $work/data)"

attune() { "$bin/attune" --server "$addr" "$@"; }
# Only the model, the data and the task: everything else is the server's defaults (README,
# "Defaults"), the ones a user gets who sets nothing.
job="$(attune submit --name demo \
  --model "$work/example/model" \
  --train "$work/example/train.jsonl" --validation "$work/example/validation.jsonl" \
  --task classification)"
echo "demo: submitted job $job"
attune watch "$job"
attune get "$job"
attune download "$job" -o "$work/adapter"
echo
echo "demo: the adapter is in $work/adapter:"
ls -l "$work/adapter"
du -sh "$work/adapter" | awk '{print "demo: adapter size on disk: " $1}'
