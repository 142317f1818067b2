#!/usr/bin/env python3
"""Makes the benchmark's models and data, on the GPU machine, with transformers.

  python3 bench/make_bench_models.py OUT

writes, with random weights drawn from a fixed seed and saved in bf16 with save_pretrained (so
attune-bench and bench/hf_baseline.py start from the very same weights):

  OUT/llama-1.1b/     LlamaForCausalLM: hidden 2048, 22 layers, 32 heads, 4 KV heads, MLP 5632,
                      vocab 32000, untied lm_head; config.json, model.safetensors, tokenizer.json
  OUT/llama-1.1b.jsonl     8 {"text"} lines of 2100 words each (>= 2048 tokens: batch 8 x 2048)
  OUT/roberta-base/   RobertaForSequenceClassification, RoBERTa-base shapes, 2 labels
  OUT/roberta-base.jsonl   32 {"text", "label"} lines of 140 words (>= 128 tokens: batch 32 x 128)

Each data file holds exactly one batch, so every step sees the same examples whatever order a
program visits them in: the mean loss of a step does not depend on the order, and the two
programs' loss curves can be compared step by step.

The tokenizer is a WordLevel vocabulary of the model's size ("w<id>" words) with a whitespace
pre-tokenizer and no post-processor: one word is one token, the same in attune's tokenizer and
in Hugging Face `tokenizers`. Dropout is 0 in both configs so that the two programs compute the
same function (the GLUE recipe's 0.1 dropout would draw different masks in each).
"""
import json
import os
import random
import sys

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (LlamaConfig, LlamaForCausalLM, RobertaConfig,
                          RobertaForSequenceClassification)

SEED = 1234


def write_tokenizer(path, vocab_size, specials, unk):
    vocab = {tok: i for i, tok in enumerate(specials)}
    for i in range(len(specials), vocab_size):
        vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(path)


def words(rng, n, first_id, vocab_size):
    return " ".join(f"w{rng.randrange(first_id, vocab_size)}" for _ in range(n))


def save(model, out_dir):
    model = model.to(torch.bfloat16)
    model.save_pretrained(out_dir)


def make_llama(out):
    d = os.path.join(out, "llama-1.1b")
    config = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632,
                         num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                         max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                         attention_dropout=0.0)
    torch.manual_seed(SEED)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    save(model, d)
    write_tokenizer(os.path.join(d, "tokenizer.json"), 32000, ["<unk>", "<s>", "</s>"], "<unk>")
    rng = random.Random(SEED)
    with open(os.path.join(out, "llama-1.1b.jsonl"), "w") as f:
        for _ in range(8):
            f.write(json.dumps({"text": words(rng, 2100, 3, 32000)}) + "\n")
    del model


def make_roberta(out):
    d = os.path.join(out, "roberta-base")
    config = RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=12,
                           num_attention_heads=12, intermediate_size=3072,
                           max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, num_labels=2,
                           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(SEED)
    with torch.device("cuda"):
        model = RobertaForSequenceClassification(config)
    save(model, d)
    write_tokenizer(os.path.join(d, "tokenizer.json"), 50265, ["<s>", "<pad>", "</s>", "<unk>"],
                    "<unk>")
    rng = random.Random(SEED + 1)
    with open(os.path.join(out, "roberta-base.jsonl"), "w") as f:
        for i in range(32):
            f.write(json.dumps({"text": words(rng, 140, 4, 50265), "label": i % 2}) + "\n")
    del model


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_bench_models.py OUT")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    make_llama(out)
    make_roberta(out)
    print(f"wrote {out}: llama-1.1b, roberta-base and their data")


if __name__ == "__main__":
    main()
