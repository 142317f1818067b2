#!/usr/bin/env bash
# The seed paper's comparison (Yao et al. 2024, arXiv 2410.02247, Table 2) on roberta-mini-en and
# four GLUE tasks, through attuned, as ordinary jobs grouped per task for `attune compare`.
#
#   bash bench/paper/run_paper.sh BUILD_DIR SHARED_DIR OUT [DEVICES]
#
# BUILD_DIR holds bin/attuned and bin/attune; SHARED_DIR the shared folder (glue/, models/);
# DEVICES is attuned's --devices (default cuda:0; "cpu" works, slowly). Env: SLOTS (attuned's
# --slots-per-device, default 1: jobs trained at once on a device), DEADLINE (seconds; jobs not
# done by then are cancelled and the tables say so), TASKS / CONFIGS / SEEDS (subsets, for a
# smoke run), EXTRA (more submit flags, e.g. "--max-steps 5"). Configurations (the
# issue's list), each with seeds 0, 1, 2, LoRA r=8 alpha=16 (the paper's), batch 32, max length
# 128, linear schedule with 6% warmup, AdamW, 3 epochs (CoLA, RTE, STS-B) or 1 (SST-2):
#   qkv-1      LoRA {q,k,v}, lambda 1        qv-1/2/4/8  LoRA {q,v}, lambda 1, 2, 4, 8
#   k-1, v-1   LoRA {k} alone, {v} alone     dora-qv-4   DoRA {q,v}, lambda 4
#   full-qv-1, full-qv-4   full fine-tuning of W_q and W_v, lambda 1 and 4
# The base learning rate: LR (default 1e-3, the job default measured on SST-2 in
# tests/glue_defaults_test.cc); LR_SEARCH=1 first runs qv-1 on RTE at 2e-4, 5e-4, 1e-3 and 2e-3
# (seed 0) and keeps the best dev accuracy, as the paper fixes eta_QK (SEARCH_ONLY=1: only
# that search). Each job carries labels attune.sweep=paper-<task>, attune.grid.config=<name>,
# attune.grid.seed=<seed>, so `attune compare paper-<task>` prints the table (mean +- std over
# seeds, parameters, bytes, wall time, steps to 90% of the loss reduction, eval AUC). Writes
# OUT/paper-<task>.{txt,json}.
set -uo pipefail
build=$1 shared=$2 out=$3 devices=${4:-cuda:0}
mkdir -p "$out"
bin="$build/bin"
model="$shared/models/roberta-mini-en"
"$bin/attuned" --listen 127.0.0.1:0 --data-dir "$out/data" --devices "$devices" \
  --slots-per-device "${SLOTS:-1}" --data-roots "$shared" >"$out/attuned.out" 2>"$out/attuned.log" &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q "listening" "$out/attuned.out" && break; sleep 0.2; done
addr="$(sed -n 's/^attuned listening on //p' "$out/attuned.out")"
at() { "$bin/attune" --server "$addr" "$@"; }

# config name -> submit flags
declare -A configs=(
  [qkv-1]="--targets q,k,v --lr-ratio v=1"
  [qv-1]="--targets q,v --lr-ratio v=1"  [qv-2]="--targets q,v --lr-ratio v=2"
  [qv-4]="--targets q,v --lr-ratio v=4"  [qv-8]="--targets q,v --lr-ratio v=8"
  [k-1]="--targets k"                    [v-1]="--targets v"
  [dora-qv-4]="--targets q,v --lr-ratio v=4 --method dora"
  [full-qv-1]="--targets q,v --lr-ratio v=1 --method full"
  [full-qv-4]="--targets q,v --lr-ratio v=4 --method full"
)
# task -> kind, epochs, the dev metric the paper reports (it also picks each job's best checkpoint)
declare -A tasks=([SST-2]="classification 1 accuracy" [CoLA]="classification 3 mcc"
                  [RTE]="classification 3 accuracy" [STS-B]="regression 3 pearson")
submit() {  # task config seed lr [sweep]
  local task=$1 config=$2 seed=$3 lr=$4 sweep=${5:-paper-${1,,}}
  read -r kind epochs metric <<<"${tasks[$task]}"
  # shellcheck disable=SC2086
  at submit --model "$model" --train "$shared/glue/$task/train.jsonl" \
    --validation "$shared/glue/$task/validation.jsonl" --task "$kind" --eval-metric "$metric" ${configs[$config]} \
    --rank 8 --alpha 16 --lr "$lr" --batch-size 32 --max-seq-len 128 --epochs "$epochs" \
    --schedule linear --seed "$seed" --name "$task $config seed $seed" \
    --label "attune.sweep=$sweep" --label "attune.grid.config=$config" \
    --label "attune.grid.seed=$seed" --label "attune.grid.lr=$lr" ${EXTRA:-} | head -1
}
wait_all() {  # ids...: waits for each, until DEADLINE; cancels what is not done by then
  local id done=0 failed=0
  for id in "$@"; do
    local left=$(( ${DEADLINE:-100000} - SECONDS ))
    if [ "$left" -gt 0 ] && timeout "$left" "$bin/attune" --server "$addr" watch "$id" >/dev/null; then
      done=$((done + 1))
    else
      [ "$failed" = 0 ] && { echo "first job not succeeded:"; at get "$id"; } >&2
      failed=1
      at cancel "$id" >/dev/null 2>&1
    fi
  done
  echo "$done of $# jobs succeeded by ${SECONDS} s"
}
lr=${LR:-1e-3}
if [ "${LR_SEARCH:-0}" = 1 ]; then
  ids=()
  for l in 2e-4 5e-4 1e-3 2e-3; do ids+=("$(submit RTE qv-1 0 "$l" paper-lr-search)"); done
  wait_all "${ids[@]}"
  at --output json compare paper-lr-search >"$out/paper-lr-search.json"
  lr=$(python3 -c "import json,sys; t=json.load(open(sys.argv[1])); \
print(max(t['groups'], key=lambda g: g['devMetric']['mean'])['config']['lr'])" \
    "$out/paper-lr-search.json")
  echo "base learning rate from the search: $lr"
  at compare paper-lr-search | tee "$out/paper-lr-search.txt"
  [ "${SEARCH_ONLY:-0}" = 1 ] && exit 0
fi
ids=()
for task in ${TASKS:-${!tasks[@]}}; do
  for config in ${CONFIGS:-${!configs[@]}}; do
    for seed in ${SEEDS:-0 1 2}; do ids+=("$(submit "$task" "$config" "$seed" "$lr")"); done
  done
done
wait_all "${ids[@]}" | tee "$out/progress.txt"
for task in ${TASKS:-${!tasks[@]}}; do
  at compare "paper-${task,,}" | tee "$out/paper-${task,,}.txt"
  at --output json compare "paper-${task,,}" >"$out/paper-${task,,}.json"
done
