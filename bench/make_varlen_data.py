#!/usr/bin/env python3
"""Variable-length benchmark data, and the 8B-shaped model, on the GPU machine.

  python3 bench/make_varlen_data.py OUT [--llama8b]

Beside make_bench_models.py's models (same word-level tokenizers: one word is one token in both
attune and Hugging Face `tokenizers`), writes data whose lengths look like what people bring:

  OUT/llama-1.1b-varlen.jsonl   512 {"text"} lines, lognormal lengths (median 300 tokens,
                                sigma 1.0), capped at 2048
  OUT/roberta-base-glue.jsonl   4096 {"text", "label"} lines, lognormal lengths (median 20
                                tokens, sigma 0.6, as GLUE's single sentences), capped at 128
  OUT/llama-8b-layers/          with --llama8b: a LlamaForCausalLM with Llama-3.1-8B's layer
                                shapes (hidden 4096, 32 heads, 8 KV heads, MLP 14336, vocab
                                128256, rope 500000) but 8 of its 32 layers, random init in bf16
  OUT/llama-8b-varlen.jsonl     1024 {"text"} lines, lognormal (median 300, sigma 1.0), cap 4096
  OUT/llama-8b-full.jsonl       4 {"text"} lines of 4200 words (full rows: 4 x 4096 tokens)
  OUT/llama-8b-glue.jsonl       4096 {"text", "label"} lines, GLUE-like lengths as above, for
                                the 8B shapes as a classifier (the score head, last token)

The lengths are drawn from a fixed seed; labels alternate. The 8B-shaped model keeps 8 layers so
that the HF baseline fits in memory without activation checkpointing at a 16k-token step; every
layer is the real layer's shape, so per-layer speed and MFU are those of the full model.
"""
import json
import math
import os
import random
import sys

SEED = 4321


def lognormal_lengths(rng, n, median, sigma, cap, floor=2):
    return [max(floor, min(cap, int(round(rng.lognormvariate(math.log(median), sigma)))))
            for _ in range(n)]


def write_texts(path, rng, lengths, first_id, vocab, labels):
    with open(path, "w") as f:
        for i, n in enumerate(lengths):
            row = {"text": " ".join(f"w{rng.randrange(first_id, vocab)}" for _ in range(n))}
            if labels:
                row["label"] = i % 2
            f.write(json.dumps(row) + "\n")


def make_llama8b(out):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    sys.path.insert(0, os.path.dirname(__file__))
    from make_bench_models import write_tokenizer
    d = os.path.join(out, "llama-8b-layers")
    config = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                         num_hidden_layers=8, num_attention_heads=32, num_key_value_heads=8,
                         max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=500000.0,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                         attention_dropout=0.0)
    torch.manual_seed(SEED)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    model.to(torch.bfloat16).save_pretrained(d)
    write_tokenizer(os.path.join(d, "tokenizer.json"), 128256, ["<unk>", "<s>", "</s>"], "<unk>")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: make_varlen_data.py OUT [--llama8b]")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(SEED)
    write_texts(os.path.join(out, "llama-1.1b-varlen.jsonl"), rng,
                lognormal_lengths(rng, 512, 300, 1.0, 2048), 3, 32000, labels=False)
    write_texts(os.path.join(out, "roberta-base-glue.jsonl"), rng,
                lognormal_lengths(rng, 4096, 20, 0.6, 128), 4, 50265, labels=True)
    if "--llama8b" in sys.argv[2:]:
        make_llama8b(out)
        write_texts(os.path.join(out, "llama-8b-varlen.jsonl"), rng,
                    lognormal_lengths(rng, 1024, 300, 1.0, 4096), 3, 128256, labels=False)
        write_texts(os.path.join(out, "llama-8b-full.jsonl"), rng, [4200] * 4, 3, 128256,
                    labels=False)
        write_texts(os.path.join(out, "llama-8b-glue.jsonl"), rng,
                    lognormal_lengths(rng, 4096, 20, 0.6, 128), 3, 128256, labels=True)
    print(f"wrote {out}: variable-length data")


if __name__ == "__main__":
    main()
