#!/usr/bin/env bash
# Runs attune's libFuzzer targets (tests/fuzz/) for a given time each, one after another, with
# ASan, UBSan and LeakSanitizer, at the lowest CPU priority.
# Usage: [FUZZ_RUNS=N] bench/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET ...]
#   FUZZ_RUNS: also stop a target after N executions (libFuzzer's -runs), whichever comes first.
#   TARGET: tokens_file hf_config safetensors jsonl tokenizer_json job_yaml job_proto chat_template
#   (default all)
# Builds into build-fuzz/ with clang-14 (-DATTUNE_FUZZ=ON; `scripts/install-deps.sh --fuzz`
# installs clang-14 and libclang-rt-14-dev). The growing corpus is build-fuzz/corpus/TARGET (seeded
# from tests/fuzz/corpus/TARGET); a crash is written to tests/fuzz/crashes/TARGET/, where CTest's
# replay picks it up as a regression input. Prints each target's executions; logs in
# build-fuzz/logs/.
# ASan keeps no allocation stacks (malloc_context_size=0): errors, leaks and UBSan reports are all
# still caught and fail the run, their reports just lack the allocating stack. It makes the
# allocation-heavy targets (job_yaml, chat_template) 20-40% faster; to see the stack of a report,
# replay its input from tests/fuzz/crashes/ (CTest does, with the default options).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(tokens_file hf_config safetensors jsonl tokenizer_json job_yaml job_proto chat_template)
fi
build="$root/build-fuzz"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DATTUNE_FUZZ=ON >/dev/null
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "${t}_fuzzer"); done
nice -n 19 cmake --build "$build" -j "$(nproc)" "${build_targets[@]}"
mkdir -p "$build/logs"
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t" "$root/tests/fuzz/crashes/$t"
  log="$build/logs/$t.log"
  status=0
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:malloc_context_size=0 UBSAN_OPTIONS=print_stacktrace=1 \
    nice -n 19 "$build/fuzz/${t}_fuzzer" -max_total_time="$seconds" -print_final_stats=1 \
    -rss_limit_mb=2048 ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -artifact_prefix="$root/tests/fuzz/crashes/$t/" \
    "$build/corpus/$t" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1 || status=$?
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  echo "$t: ${runs} executions in ${seconds} s, exit ${status} (log $log)"
done
