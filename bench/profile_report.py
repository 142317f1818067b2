#!/usr/bin/env python3
"""Where a training step's GPU time goes, from an Nsight Systems profile of attune-bench.

  python3 bench/profile_report.py PREFIX RUN_OUTPUT
  python3 bench/profile_report.py --kineto TRACE.json RUN_OUTPUT

PREFIX: the `nsys stats -f csv -o PREFIX` output (PREFIX_cuda_gpu_kern_sum.csv and
PREFIX_cuda_gpu_mem_time_sum.csv); RUN_OUTPUT: what attune-bench printed under nsys (its JSON,
possibly with nsys's own lines around it). Kernels are grouped by kind from their names; the
per-step figures divide the whole run's kernel time by its steps (warm-up steps included, graph
capture launches nothing), and the step's wall time is attune-bench's timed window, so "GPU idle"
is what the host, launches and synchronisation cost beyond the kernels. Writes markdown.

--kineto: TRACE.json is attune-bench's --profile-trace (LibTorch's Kineto, where there is no
nsys), RUN_OUTPUT that run's JSON, whose profiled_steps gives the steps in the trace. The step's
wall time is then the trace's span over those steps (the profiler slows the host, so it is longer
than the benchmark's unprofiled ms/step), and "GPU idle" is that span minus the union of the
kernels' and copies' intervals.
"""
import csv
import glob
import json
import re
import sys

KINDS = [  # first match wins
    ("attention (flash / memory-efficient varlen)", r"flash|fmha|attention|attn"),
    ("matmul (cuBLAS / CUTLASS GEMM)", r"gemm|cutlass|xmma|nvjet|cublas|splitk|sm\d\d_"),
    ("optimizer (AdamW, grad norm)", r"adam|multi_tensor|foreach|lpnorm|norm_kernel"),
    ("attune fused kernels (SwiGLU, RoPE)", r"swiglu|rope"),
    ("norms (RMSNorm / LayerNorm)", r"layer_norm|rms|layernorm"),
    ("softmax / cross-entropy / loss", r"softmax|cross_entropy|nll_loss|log_softmax"),
    ("index, gather, scatter, cat", r"index|gather|scatter|cat_|catarray|embedding"),
    ("reductions", r"reduce"),
    ("elementwise, copies, fills", r"elementwise|vectorized|copy|fill|unrolled"),
]


def read_csv(prefix, report):
    files = sorted(glob.glob(f"{prefix}*{report}*.csv"))
    return list(csv.DictReader(open(files[0]))) if files else []


def run_json(path):
    text = open(path).read()
    start, end = text.find("{"), text.rfind("}")
    return json.loads(text[start:end + 1])


def kind_of(name):
    low = name.lower()
    for kind, pattern in KINDS:
        if re.search(pattern, low):
            return kind
    return "other"


def busy_us(intervals):
    """Length of the union of (start, end) intervals."""
    total, end = 0.0, None
    for s, e in sorted(intervals):
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def kineto_summary(events, steps):
    """GPU microseconds by kind, (launches, us) by kernel name, GPU busy and span per step (ms),
    and CUDA runtime calls by name, from Kineto's complete ("X") events."""
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    start = min(float(e["ts"]) for e in events)
    end = max(float(e["ts"]) + float(e.get("dur", 0)) for e in events)
    by_kind, top = {}, {}
    for e in gpu:
        kind = kind_of(e["name"]) if e["cat"] == "kernel" else "memory copies and sets"
        dur = float(e.get("dur", 0))
        by_kind[kind] = by_kind.get(kind, 0.0) + dur
        n, us = top.get(e["name"], (0, 0.0))
        top[e["name"]] = (n + 1, us + dur)
    busy = busy_us([(float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0))) for e in gpu])
    launches = {}
    for e in events:
        if e.get("cat") == "cuda_runtime":
            launches[e["name"]] = launches.get(e["name"], 0) + 1
    return by_kind, top, busy / 1e3 / steps, (end - start) / 1e3 / steps, launches


def kineto_main(trace_path, run):
    events = [e for e in json.load(open(trace_path))["traceEvents"] if e.get("ph") == "X"]
    steps = max(int(run.get("profiled_steps") or 0), 1)
    by_kind, top, busy_ms, span_ms, launches = kineto_summary(events, steps)
    print(f"# Profile (Kineto): {run.get('label', '')}, {run['program']} ({steps} steps traced; "
          f"unprofiled: {run['ms_per_step']:.1f} ms/step timed, "
          f"{run['tokens_per_s']:,.0f} real tokens/s)\n")
    print(f"Traced span {span_ms:.2f} ms/step; GPU busy (union of kernels and copies) "
          f"{busy_ms:.2f} ms/step = {busy_ms / span_ms:.1%} of it.\n")
    gpu_total = sum(by_kind.values())
    if gpu_total == 0:
        why = (f"its {run['graph_replays']} steps replayed a CUDA graph, and Kineto here does not "
               "record the kernels inside a replayed graph" if run.get("graph_replays")
               else "the trace holds no GPU activity")
        print(f"No kernel in the trace: {why}. This profile says nothing about the GPU time.")
        return
    print("| kind | GPU ms/step | share of the GPU time |")
    print("|---|---|---|")
    for kind, us in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {us / 1e3 / steps:.3f} | {us / gpu_total:.1%} |")
    print(f"| GPU idle within the span | {max(span_ms - busy_ms, 0):.3f} | |")
    print("\nTop kernels by total time:\n")
    print("| ms/step | launches/step | kernel |")
    print("|---|---|---|")
    for name, (n, us) in sorted(top.items(), key=lambda kv: -kv[1][1])[:12]:
        print(f"| {us / 1e3 / steps:.3f} | {n / steps:.1f} | `{name[:110]}` |")
    print("\nCUDA runtime calls per step: " + ", ".join(
        f"{name} {n / steps:.1f}" for name, n in sorted(launches.items(), key=lambda kv: -kv[1])[:8]))


def main():
    if sys.argv[1] == "--kineto":
        kineto_main(sys.argv[2], run_json(sys.argv[3]))
        return
    prefix, run = sys.argv[1], run_json(sys.argv[2])
    kernels = read_csv(prefix, "kern_sum")
    memory = read_csv(prefix, "mem_time_sum")
    steps = run["steps"]
    step_ms = run["ms_per_step"]
    by_kind, top = {}, []
    for row in kernels:
        ns = float(row["Total Time (ns)"])
        by_kind[kind_of(row["Name"])] = by_kind.get(kind_of(row["Name"]), 0.0) + ns
        top.append((ns, int(row["Instances"]), row["Name"]))
    mem_ns = sum(float(r["Total Time (ns)"]) for r in memory)
    kernel_ms = sum(by_kind.values()) / 1e6 / steps
    print(f"# Profile: {run.get('label', '')}, {run['program']} ({steps} steps, "
          f"{step_ms:.1f} ms/step timed, {run['tokens_per_s']:,.0f} real tokens/s)\n")
    print("| kind | ms/step | share of the step |")
    print("|---|---|---|")
    for kind, ns in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {ns / 1e6 / steps:.2f} | {ns / 1e6 / steps / step_ms:.1%} |")
    print(f"| memory copies and sets | {mem_ns / 1e6 / steps:.2f} | "
          f"{mem_ns / 1e6 / steps / step_ms:.1%} |")
    idle = step_ms - kernel_ms - mem_ns / 1e6 / steps
    print(f"| GPU idle (host, launches, sync) | {max(idle, 0):.2f} | {max(idle, 0) / step_ms:.1%} |")
    print("\nTop kernels by total time:\n")
    print("| ms/step | launches/step | kernel |")
    print("|---|---|---|")
    for ns, n, name in sorted(top, reverse=True)[:12]:
        print(f"| {ns / 1e6 / steps:.2f} | {n / steps:.1f} | `{name[:110]}` |")


if __name__ == "__main__":
    main()
