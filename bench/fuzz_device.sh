#!/usr/bin/env bash
# Runs one libFuzzer target on the GPU machine's CPU cores (the `device` tool: 16 cores there, 2
# here), in libFuzzer's fork mode: one run of N worker processes that share the corpus, whose
# executions libFuzzer adds up. For the slow targets (chat_template: about 400 executions/s a
# core), where 10 million executions need hours of one core.
#
# Two halves, because the GPU machine has no clang and reaches no package registry:
#   here:       bench/fuzz_device.sh pack TARGET
#               Copies build-fuzz/fuzz/TARGET_fuzzer (build it first: `bench/fuzz.sh 1 TARGET`),
#               the shared libraries it links (Debian's Abseil, PCRE2, utf8proc, ...; not glibc)
#               and the grown corpus build-fuzz/corpus/TARGET into build-fuzz-device/ (git
#               ignores build-*/), with this checkout's path, which the binary may have compiled
#               in (chat_template reads its tokenizer from tests/fuzz/corpus/).
#   the device: bench/fuzz_device.sh run TARGET SECONDS [FORKS (default nproc)]
#               with carry ["build-fuzz-device"]; writes $OUT/TARGET.log (the last line is the
#               total: "#EXECUTIONS: cov ... oom/timeout/crash: 0/0/0 time: ..."), any crash
#               input under $OUT/crashes/ and the corpus grown as $OUT/corpus-out.tar.gz
#               (unpack it into build-fuzz/corpus/ here to carry it on).
# The sanitizer options are bench/fuzz.sh's: ASan, UBSan and LeakSanitizer, every report fatal.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pack="$root/build-fuzz-device"
mode="${1:?usage: fuzz_device.sh pack TARGET | run TARGET SECONDS [FORKS]}"
target="${2:?a target, e.g. chat_template}"

if [[ "$mode" == pack ]]; then
  binary="$root/build-fuzz/fuzz/${target}_fuzzer"
  [[ -x "$binary" ]] || { echo "no $binary: run bench/fuzz.sh 1 $target first" >&2; exit 1; }
  rm -rf "$pack" && mkdir -p "$pack/lib"
  cp "$binary" "$pack/"
  ldd "$binary" | awk '/=>/ {print $3}' | grep -v -E '/lib(c|m)\.so' | xargs -I{} cp -L {} "$pack/lib/"
  tar cf "$pack/corpus.tar" -C "$root/build-fuzz/corpus" "$target"
  echo "$root" >"$pack/root"
  du -sh "$pack"
  exit 0
fi

[[ "$mode" == run ]] || { echo "mode must be pack or run, not '$mode'" >&2; exit 2; }
seconds="${3:?seconds}"
forks="${4:-$(nproc)}"
out="${OUT:?run on the device, where \$OUT is set}"
# The path the binary was built under, linked to this checkout when it does not exist here.
built_root="$(cat "$pack/root")"
if [[ ! -e "$built_root/tests/fuzz" ]]; then
  mkdir -p "$(dirname "$built_root")" && ln -sfn "$root" "$built_root"
fi
rm -rf "$pack/corpus" && mkdir -p "$pack/corpus" "$out/crashes"
tar xf "$pack/corpus.tar" -C "$pack/corpus"
status=0
LD_LIBRARY_PATH="$pack/lib" \
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:malloc_context_size=0 \
  UBSAN_OPTIONS=print_stacktrace=1 \
  "$pack/${target}_fuzzer" -fork="$forks" -max_total_time="$seconds" -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$out/crashes/" "$pack/corpus/$target" \
  "$root/tests/fuzz/corpus/$target" >"$out/$target.log" 2>&1 || status=$?
echo "$target: exit $status, $(grep -E '^#[0-9]+:' "$out/$target.log" | tail -1)"
echo "sanitizer reports: $(grep -c -E '==ERROR|runtime error' "$out/$target.log" || true)"
echo "crash inputs: $(ls "$out/crashes" | wc -l)"
tar czf "$out/corpus-out.tar.gz" -C "$pack/corpus" "$target"
exit "$status"
