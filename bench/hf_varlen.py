#!/usr/bin/env python3
"""The Hugging Face + PEFT baseline on variable-length data: what a careful HF user runs.

  python3 bench/hf_varlen.py --model DIR --train JSONL --task causal-lm|classification \
      --batch 8 --seq-len 2048 --steps 60 --rank 16 --alpha 16 --lr 2e-4 --lr-ratio v=4 \
      [--order grouped|random] [--compile]

The same model setup as hf_baseline.py (bf16 weights, SDPA, PEFT LoRA on q and v with attune's
A init, fp32 adapters and head, bf16 autocast, AdamW with the v group at lr x ratio, linear
schedule, clipping at 1.0), fed as transformers' Trainer feeds variable-length data: examples
tokenized as attune tokenizes them (causal LM: EOS appended; truncated to --seq-len), batches of
--batch examples padded to the longest in the batch (DataCollatorWithPadding), grouped by
length as Trainer's group_by_length does (--order grouped: mega-batches of 50 batches sorted
by length, longest first, batches in a seeded random order) or in a random order. --compile
wraps the model in torch.compile (dynamic shapes: it recompiles as new lengths appear, then
marks the length dynamic). Steps cycle through the batches. The timing window and the JSON are
hf_baseline.py's; tokens_per_s counts real (non-padding) tokens, and padded_tokens_per_s the
padded ones it computed.
"""
import argparse
import json
import random
import resource
import time

import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from hf_baseline import (DATASHEET_PEAK_BF16_FLOPS, MEASURED_PEAK_BF16_FLOPS,
                         attune_lora_init)


def parse_args():
    p = argparse.ArgumentParser()
    for name, kind, default in [("--model", str, None), ("--train", str, None),
                                ("--task", str, "classification"), ("--batch", int, 32),
                                ("--seq-len", int, 128), ("--steps", int, 100),
                                ("--rank", int, 16), ("--alpha", float, 16), ("--lr", float, 1e-4),
                                ("--seed", int, 42), ("--timing-warmup", int, 10),
                                ("--label", str, ""), ("--order", str, "grouped")]:
        p.add_argument(name, type=kind, default=default, required=default is None and
                       name in ("--model", "--train"))
    p.add_argument("--lr-ratio", action="append", default=[])
    p.add_argument("--compile", action="store_true")
    return p.parse_args()


def load_examples(args, tokenizer, eos_id):
    examples = []
    for line in open(args.train):
        if not line.strip():
            continue
        r = json.loads(line)
        ids = tokenizer.encode(r["text"]).ids
        if args.task == "causal-lm" and (not ids or ids[-1] != eos_id):
            ids.append(eos_id)
        examples.append((ids[:args.seq_len], int(r.get("label", 0))))
    return examples


def batches_in_order(examples, args):
    rng = random.Random(args.seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    if args.order == "grouped":
        mega = 50 * args.batch
        order = [i for s in range(0, len(order), mega)
                 for i in sorted(order[s:s + mega], key=lambda i: -len(examples[i][0]))]
    batches = [order[s:s + args.batch] for s in range(0, len(order), args.batch)]
    rng.shuffle(batches)
    return batches


def collate(examples, batch, causal, pad_id):
    longest = max(len(examples[i][0]) for i in batch)
    ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for row, i in enumerate(batch):
        seq = examples[i][0]
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    labels = (ids.masked_fill(mask == 0, -100) if causal
              else torch.tensor([examples[i][1] for i in batch], dtype=torch.long))
    return ids.pin_memory(), mask.pin_memory(), labels.pin_memory(), int(mask.sum()), ids.numel()


def build(args, decoder, device, pad_id):
    """decoder: a Llama-family model (q_proj/v_proj), for causal LM or classification."""
    causal = args.task == "causal-lm"
    cls = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
    model = cls.from_pretrained(args.model, dtype=torch.bfloat16, attn_implementation="sdpa")
    if not causal and model.config.pad_token_id is None:
        model.config.pad_token_id = pad_id  # the last real token is pooled, as attune does
    model.to(device)
    lora = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
                      target_modules=["q_proj", "v_proj"] if decoder else ["query", "value"],
                      task_type="CAUSAL_LM" if causal else "SEQ_CLS")
    model = get_peft_model(model, lora)
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    attune_lora_init(model, args, decoder)
    model.train()
    ratios = dict(item.split("=", 1) for item in args.lr_ratio)
    groups = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            proj = ("v" if ("v_proj" in name or ".value." in name) else "q") if "lora_" in name \
                else None
            groups.setdefault(args.lr * float(ratios.get(proj, 1.0)) if proj else args.lr,
                              []).append(p)
    optimizer = torch.optim.AdamW([{"params": ps, "lr": lr} for lr, ps in groups.items()],
                                  betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: max(0.0, 1.0 - s / max(1, args.steps)))
    return model, optimizer, scheduler


def main():
    args = parse_args()
    device = torch.device("cuda")
    tokenizer = Tokenizer.from_file(f"{args.model}/tokenizer.json")
    config = json.load(open(f"{args.model}/config.json"))
    decoder = config.get("model_type") in ("llama", "qwen2", "mistral")
    pad_id = config.get("pad_token_id") or 0
    examples = load_examples(args, tokenizer, config.get("eos_token_id", 2))
    batches = batches_in_order(examples, args)
    started = time.perf_counter()
    model, optimizer, scheduler = build(args, decoder, device, pad_id)
    forward = torch.compile(model) if args.compile else model
    params = [p for p in model.parameters() if p.requires_grad]
    setup_s = time.perf_counter() - started

    losses, real, padded, samples = [], 0, 0, 0
    timing_first = min(args.timing_warmup, args.steps - 1)
    window_start = None
    for step in range(1, args.steps + 1):
        ids, mask, labels, n_real, n_padded = collate(examples, batches[(step - 1) % len(batches)],
                                                      args.task == "causal-lm", pad_id)
        ids, mask, labels = (t.to(device, non_blocking=True) for t in (ids, mask, labels))
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = forward(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
        if step > timing_first:
            real, padded, samples = real + n_real, padded + n_padded, samples + ids.shape[0]
        if step == timing_first:
            torch.cuda.synchronize()
            window_start = time.perf_counter()
    torch.cuda.synchronize()
    window_s = time.perf_counter() - window_start
    timed = args.steps - timing_first
    print(json.dumps({
        "program": "hf_varlen.py" + (" --compile" if args.compile else ""),
        "label": args.label, "order": args.order, "model_dir": args.model, "task": args.task,
        "batch_size": args.batch, "max_seq_len": args.seq_len, "steps": args.steps,
        "timed_steps": timed, "ms_per_step": 1000.0 * window_s / timed,
        "tokens_per_s": real / window_s, "padded_tokens_per_s": padded / window_s,
        "samples_per_s": samples / window_s,
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in params),
        "peak_device_gib": torch.cuda.max_memory_allocated() / 2**30,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "setup_s": setup_s, "total_s": time.perf_counter() - started,
        "losses": [x.item() for x in losses],
        "peaks": {"measured": MEASURED_PEAK_BF16_FLOPS, "datasheet": DATASHEET_PEAK_BF16_FLOPS},
        "versions": {"torch": torch.__version__,
                     "transformers": __import__("transformers").__version__,
                     "peft": __import__("peft").__version__},
    }))


if __name__ == "__main__":
    main()
