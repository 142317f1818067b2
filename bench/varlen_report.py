#!/usr/bin/env python3
"""The variable-length benchmark's table, from run_h200_varlen.sh's results.json.

  python3 bench/varlen_report.py results.json WORKDIR

Real (non-padding) tokens per second, samples per second, ms per step, peak device memory and
graph replays of every program, the ratio of attune packed to each HF baseline, and MFU. MFU
counts 4 N FLOPs per token (N = every parameter but the input embedding, a lookup: forward and
input-gradient passes through frozen weights) plus attention at the data's token-weighted mean length
L_eff = sum(len^2) / sum(len) (a token of an example of length len attends to len tokens; half
of that for causal models): 12 x layers x heads x head_dim x L_eff per token, halved for
causal. Full-row runs use L_eff = the row length. Peaks: 790 TFLOP/s (measured dense bf16
matmul on the H200) and 989 (datasheet).
"""
import json
import os
import sys

PEAKS = {"measured": 790e12, "datasheet": 989e12}
# case: model, data, cap, causal attention, an EOS appended to each example (causal LM)
DATA = {"roberta": ("roberta-base", "roberta-base-glue.jsonl", 128, False, False),
        "llama": ("llama-1.1b", "llama-1.1b-varlen.jsonl", 2048, True, True),
        "llama8b": ("llama-8b-layers", "llama-8b-varlen.jsonl", 4096, True, True),
        "llama8bcls": ("llama-8b-layers", "llama-8b-glue.jsonl", 128, True, False)}


def effective_length(path, cap, eos):
    total = squares = 0
    for line in open(path):
        if line.strip():
            n = min(cap, len(json.loads(line)["text"].split()) + (1 if eos else 0))
            total, squares = total + n, squares + n * n
    return squares / total


def flops_per_token(work, model, params, length, causal):
    """4 N + attention, N without the input embedding (a lookup, not a matmul)."""
    c = json.load(open(os.path.join(work, model, "config.json")))
    head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    attn = 12.0 * c["num_hidden_layers"] * c["num_attention_heads"] * head_dim * length
    matmul_params = params - c["vocab_size"] * c["hidden_size"]
    return 4.0 * matmul_params + (attn / 2 if causal else attn)


def main():
    results = json.load(open(sys.argv[1]))
    work = sys.argv[2]
    print("| case | program | real tokens/s | samples/s | ms/step | MFU (790) | MFU (989) "
          "| peak GiB | graph replays | attune packed / this |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for case, (model, data, cap, causal, eos) in DATA.items():
        rows = {k[:-5]: v for k, v in results.items() if v and (k.startswith(f"attune-{case}-")
                                                             or k.startswith(f"hf-{case}-"))}
        if not rows:
            continue
        l_eff = effective_length(os.path.join(work, data), cap, eos)
        packed = (rows.get(f"attune-{case}-packed") or {}).get("tokens_per_s")
        for name, r in sorted(rows.items()):
            length = cap if name.endswith("-full") else l_eff
            f = flops_per_token(work, model, r["total_parameters"], length, causal)
            t = r["tokens_per_s"]
            ratio = f"{packed / t:.2f}x" if packed and t else ""
            print(f"| {case} | {name} | {t:,.0f} | {r.get('samples_per_s', 0):,.1f} | "
                  f"{r['ms_per_step']:.1f} | {f * t / PEAKS['measured']:.1%} | "
                  f"{f * t / PEAKS['datasheet']:.1%} | {r.get('peak_device_gib') or 0:.2f} | "
                  f"{r.get('graph_replays', '')} | {ratio} |")
        print(f"\n{case}: token-weighted mean example length L_eff = {l_eff:.1f} tokens\n")


if __name__ == "__main__":
    main()
