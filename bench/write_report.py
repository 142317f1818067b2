#!/usr/bin/env python3
"""Writes the H200 results table (Markdown) from the JSON that run_h200.sh collected.

  python3 bench/write_report.py WORK_DIR COMMANDS_TXT > h200.md

WORK_DIR holds hf-<case>.json and attune-<case>.json (hf_baseline.py / attune-bench output) and,
optionally, service-<case>.json (`attune --output json get` of the same job run by attuned).
"""
import datetime
import glob
import json
import os
import sys

TARGETS = {
    "llama": "tokens/s >= 1.5x HF and peak memory <= 0.8x HF",
    "roberta": "<= 8 ms/step",
}
VARIANTS = {
    "masked-attention": "mask always passed (no flash attention)",
    "metrics-every-1": "metrics read back every step (a host sync per step)",
    "plain-lm-loss": "loss on full [B,T,V] logits (not chunked)",
    "no-cuda-graphs": "every step eager (no CUDA graph replays)",
    "unfused": "RMSNorm, RoPE and SwiGLU as plain LibTorch ops (no fused kernels)",
}
TITLES = {
    "llama": "Llama-style 1.1B, causal LM, batch 8 x 2048",
    "roberta": "RoBERTa-base, sequence classification, batch 32 x 128",
}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def verdict(case, hf, at):
    if hf is None or at is None:
        return "not measured"
    speed = at["tokens_per_s"] / hf["tokens_per_s"]
    mem = at["peak_device_gib"] / hf["peak_device_gib"] if hf["peak_device_gib"] else None
    if case == "llama":
        ok = speed >= 1.5 and mem is not None and mem <= 0.8
        return (f"{speed:.2f}x HF tokens/s (target 1.5x), peak {fmt(mem, '.2f')}x HF "
                f"(target <= 0.8x): {'met' if ok else 'NOT met'}")
    ok = at["ms_per_step"] <= 8.0
    return (f"{at['ms_per_step']:.2f} ms/step (target <= 8), {speed:.2f}x HF: "
            f"{'met' if ok else 'NOT met'}")


def agreement(hf, at, n=50):
    a, b = hf["losses"][:n], at["losses"][:n]
    m = min(len(a), len(b))
    rel = [abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a[:m], b[:m])]
    return m, max(rel) if rel else None, a[:m], b[:m]


def service_line(work, case, at):
    job = load(os.path.join(work, f"service-{case}.json"))
    if job is None or at is None:
        return None
    parse = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    try:
        seconds = (parse(job["finishTime"]) - parse(job["startTime"])).total_seconds()
    except (KeyError, ValueError):
        return f"service job did not finish: state {job.get('state')}"
    steps = int(job.get("currentStep", 0))
    service = steps / seconds
    bench = at["steps"] / at["total_s"]
    return (f"{TITLES[case]}, the same job through attuned (state {job.get('state')}): {steps} steps in "
            f"{seconds:.2f} s from start to finish = {service:.2f} steps/s; attune-bench, the "
            f"same job start to finish (setup, steps, final checkpoint): {bench:.2f} steps/s; "
            f"service / bench = {service / bench:.3f} (target >= 0.95)")


def main():
    work, commands = sys.argv[1], sys.argv[2]
    print(f"# H200: attune vs Hugging Face + PEFT ({datetime.date.today().isoformat()})\n")
    print("Both programs in one run of bench/run_h200.sh, same saved bf16 init, same "
          "data (one batch, see bench/make_bench_models.py), LoRA r=16 alpha=16 on q,v, v at 4x "
          "lr, bf16 autocast with fp32 adapters, AdamW, clip 1.0. ms/step = mean over the timed "
          "steps (device synchronised at both ends); MFU = (4N + attention FLOPs per token) x "
          "tokens/s / peak, against 790 TFLOP/s (the dense bf16 matmul rate measured on the "
          "H200) and 989 TFLOP/s (the datasheet's dense bf16 figure); see bench/engine_bench.cc. "
          "Peak = CUDA allocator peak.\n")
    print("| case | program | ms/step | tokens/s | peak GiB | MFU (790 measured) "
          "| MFU (989 datasheet) | timed steps |")
    print("|---|---|---|---|---|---|---|---|")
    results = {}
    for case in ("llama", "roberta"):
        hf = load(os.path.join(work, f"hf-{case}.json"))
        at = load(os.path.join(work, f"attune-{case}.json"))
        results[case] = (hf, at)
        for name, r in (("HF + PEFT", hf), ("attune", at)):
            if r is None:
                print(f"| {case} | {name} | failed | | | | | |")
                continue
            print(f"| {TITLES[case]} | {name} | {r['ms_per_step']:.2f} | {r['tokens_per_s']:.0f} "
                  f"| {fmt(r['peak_device_gib'], '.2f')} | {r['mfu_measured_peak']:.3f} "
                  f"| {r['mfu_datasheet_peak']:.3f} | {r['timed_steps']} |")
    print("\n## Each speed measure turned off, one at a time (attune-bench flags)\n")
    print("| case | attune with | ms/step | tokens/s | peak GiB | vs all on |")
    print("|---|---|---|---|---|---|")
    for case in ("llama", "roberta"):
        base = results[case][1]
        for path in sorted(glob.glob(os.path.join(work, f"attune-{case}-*.json"))):
            r = load(path)
            variant = os.path.basename(path)[len(f"attune-{case}-"):-len(".json")]
            if r is None:
                print(f"| {case} | {variant} | failed | | | |")
                continue
            rel = f"{r['ms_per_step'] / base['ms_per_step']:.2f}x time" if base else ""
            print(f"| {case} | {VARIANTS.get(variant, variant)} | {r['ms_per_step']:.2f} | "
                  f"{r['tokens_per_s']:.0f} | {fmt(r['peak_device_gib'], '.2f')} | {rel} |")
    print("\n## Against the targets\n")
    for case, (hf, at) in results.items():
        print(f"- {TITLES[case]} ({TARGETS[case]}): {verdict(case, hf, at)}")
    for case, (hf, at) in results.items():
        line = service_line(work, case, at)
        if line:
            print(f"- {line}")
    print("\n## Losses\n")
    for case, (hf, at) in results.items():
        if hf is None or at is None:
            continue
        m, worst, a, b = agreement(hf, at)
        print(f"### {TITLES[case]}: first {m} steps, largest relative difference "
              f"{fmt(worst, '.2e')}\n")
        print("| step | HF + PEFT | attune |")
        print("|---|---|---|")
        for i, (x, y) in enumerate(zip(a, b), start=1):
            print(f"| {i} | {x:.5f} | {y:.5f} |")
        print()
    print("## Commands\n\n```")
    with open(commands) as f:
        print(f.read().rstrip())
    print("```")
    versions = next((r[0].get("versions") for r in results.values() if r[0]), None)
    if versions:
        print(f"\nVersions: {versions}")


if __name__ == "__main__":
    main()
