#!/usr/bin/env python3
"""The Hugging Face + PEFT baseline: the same job as attune-bench, timed the same way.

  python3 bench/hf_baseline.py --model DIR --train JSONL --task causal-lm|classification \
      --batch 8 --seq-len 2048 --steps 60 --rank 16 --alpha 16 --lr 2e-4 --lr-ratio v=4

transformers with bf16 weights and SDPA attention, PEFT LoRA on q and v (adapters and the
classification head in fp32, as attune keeps them), bf16 autocast, torch.optim.AdamW with the v
adapters' group at lr x ratio, linear schedule with warmup, gradient clipping at 1.0: what a
person would write with these libraries. It prints one JSON object with the same fields as
attune-bench (see bench/engine_bench.cc for their definitions), timed the same way: the device
is synchronised after --timing-warmup steps and after the last step, and losses are read back
only at the end (no host sync inside a step).

Same numerics as attune: the data file holds one batch (see make_bench_models.py), every LoRA A
matrix is drawn exactly as attune draws it (one CPU generator seeded with --seed, uniform(-1/sqrt(in),
1/sqrt(in)), layer by layer, q before v), and B starts at zero.
"""
import argparse
import json
import math
import resource
import time

import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

# Dense bf16 matmul rates of the H200: 790 TFLOP/s measured, 989 the datasheet's figure.
MEASURED_PEAK_BF16_FLOPS = 790e12
DATASHEET_PEAK_BF16_FLOPS = 989e12


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--task", default="classification", choices=["classification", "causal-lm"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-ratio", action="append", default=[])
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--timing-warmup", type=int, default=5)
    p.add_argument("--label", default="")
    return p.parse_args()


def load_batch(args, tokenizer):
    rows = [json.loads(line) for line in open(args.train) if line.strip()]
    if len(rows) != args.batch:
        raise SystemExit(f"{args.train}: {len(rows)} lines; the benchmark expects one batch "
                         f"({args.batch} lines)")
    ids = [tokenizer.encode(r["text"]).ids[:args.seq_len] for r in rows]
    if any(len(i) != args.seq_len for i in ids):
        raise SystemExit(f"{args.train}: every line must tokenize to >= {args.seq_len} tokens")
    input_ids = torch.tensor(ids, dtype=torch.long)
    labels = (input_ids.clone() if args.task == "causal-lm"
              else torch.tensor([int(r["label"]) for r in rows], dtype=torch.long))
    return input_ids, labels


def attune_lora_init(model, args, decoder):
    """Overwrites every lora_A with the draws attune makes (layers.h / lora.cc)."""
    gen = torch.Generator().manual_seed(args.seed)
    layers = model.base_model.model.model.layers if decoder else \
        model.base_model.model.roberta.encoder.layer
    for layer in layers:
        attn = layer.self_attn if decoder else layer.attention.self
        for proj in ([attn.q_proj, attn.v_proj] if decoder else [attn.query, attn.value]):
            a = proj.lora_A["default"].weight
            bound = 1.0 / math.sqrt(a.shape[1])
            draw = torch.empty(a.shape, dtype=torch.float32).uniform_(-bound, bound, generator=gen)
            with torch.no_grad():
                a.copy_(draw)


def attention_flops_per_token(config, seq_len, causal):
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    per_layer = 12.0 * seq_len * config.num_attention_heads * head_dim
    return config.num_hidden_layers * (per_layer / 2 if causal else per_layer)


def main():
    args = parse_args()
    ratios = dict(item.split("=", 1) for item in args.lr_ratio)
    decoder = args.task == "causal-lm"
    device = torch.device("cuda")
    tokenizer = Tokenizer.from_file(f"{args.model}/tokenizer.json")
    input_ids, labels = load_batch(args, tokenizer)
    started = time.perf_counter()

    cls = AutoModelForCausalLM if decoder else AutoModelForSequenceClassification
    model = cls.from_pretrained(args.model, dtype=torch.bfloat16, attn_implementation="sdpa")
    model.to(device)
    targets = ["q_proj", "v_proj"] if decoder else ["query", "value"]
    lora = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
                      target_modules=targets, task_type="CAUSAL_LM" if decoder else "SEQ_CLS")
    model = get_peft_model(model, lora)
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()  # adapters and head train in fp32
    attune_lora_init(model, args, decoder)
    model.train()

    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        proj = None
        if "lora_" in name:
            proj = "v" if ("v_proj" in name or ".value." in name) else "q"
        lr = args.lr * float(ratios.get(proj, 1.0)) if proj else args.lr
        groups.setdefault(lr, []).append(p)
    optimizer = torch.optim.AdamW([{"params": ps, "lr": lr} for lr, ps in groups.items()],
                                  betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    def multiplier(step):  # Hugging Face's linear schedule with warmup, as attune's
        if step < args.warmup:
            return step / max(1, args.warmup)
        return max(0.0, 1.0 - (step - args.warmup) / max(1, args.steps - args.warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
    params = [p for p in model.parameters() if p.requires_grad]
    input_ids = input_ids.pin_memory()
    labels = labels.pin_memory()
    setup_s = time.perf_counter() - started

    losses, norms = [], []
    window_start = window_end = None
    timing_first = min(args.timing_warmup, args.steps - 1)
    for step in range(1, args.steps + 1):
        ids = input_ids.to(device, non_blocking=True)
        lab = labels.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=lab).loss
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
        if step == timing_first:
            torch.cuda.synchronize()
            window_start = time.perf_counter()
    torch.cuda.synchronize()
    window_end = time.perf_counter()

    timed = args.steps - timing_first
    window_s = window_end - window_start
    tokens = timed * args.batch * args.seq_len
    total_params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in params)
    flops = 4.0 * total_params + attention_flops_per_token(model.config, args.seq_len, decoder)
    out = {
        "program": "hf_baseline.py",
        "label": args.label,
        "device": "cuda:0",
        "model_dir": args.model,
        "task": args.task,
        "batch_size": args.batch,
        "max_seq_len": args.seq_len,
        "steps": args.steps,
        "timed_steps": timed,
        "ms_per_step": 1000.0 * window_s / timed,
        "steps_per_s": timed / window_s,
        "tokens_per_s": tokens / window_s,
        "samples_per_s": timed * args.batch / window_s,
        "total_parameters": total_params,
        "trainable_parameters": trainable,
        "flops_per_token": flops,
        "mfu_measured_peak": flops * tokens / window_s / MEASURED_PEAK_BF16_FLOPS,
        "mfu_datasheet_peak": flops * tokens / window_s / DATASHEET_PEAK_BF16_FLOPS,
        "peak_device_gib": torch.cuda.max_memory_allocated() / 2**30,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "setup_s": setup_s,
        "total_s": time.perf_counter() - started,
        "skipped_steps": 0,
        "losses": [x.item() for x in losses],
        "grad_norms": [x.item() for x in norms],
        "versions": {"torch": torch.__version__,
                     "transformers": __import__("transformers").__version__,
                     "peft": __import__("peft").__version__},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
