#!/usr/bin/env python3
"""Loads an adapter that attune trained (as `attune download` leaves it) with Hugging Face PEFT
over the same base model, runs the validation set, and compares the predictions with attune's
own final evaluation (eval_predictions.jsonl in the job's directory).

    python3 tests/gpu/peft_crosscheck.py BASE_MODEL_DIR ADAPTER_DIR VALIDATION_JSONL PREDICTIONS_JSONL

Prints one JSON object: examples, agreement (fraction of identical predicted labels), PEFT's
accuracy and attune's accuracy. Exits 1 when the predictions disagree on any example.
Runs where torch, transformers and peft are installed (the GPU machine).
"""
import json
import sys

import torch
import transformers
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast


def main():
    base_dir, adapter_dir, validation_path, predictions_path = sys.argv[1:5]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{base_dir}/tokenizer.json",
                                        pad_token="<pad>")
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir).to(device).eval()
    record = json.load(open(f"{adapter_dir}/attune.json"))
    names = record["label_names"]

    rows = [json.loads(line) for line in open(validation_path) if line.strip()]
    ours = [json.loads(line) for line in open(predictions_path) if line.strip()]
    assert len(rows) == len(ours), (len(rows), len(ours))
    peft_predictions = []
    with torch.no_grad():
        for start in range(0, len(rows), 64):
            batch = rows[start:start + 64]
            enc = tokenizer([r["text"] for r in batch], padding=True, truncation=True,
                            max_length=64, return_tensors="pt").to(device)
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            peft_predictions += logits.argmax(-1).tolist()
    agree = sum(int(p == o["prediction"]) for p, o in zip(peft_predictions, ours))
    peft_correct = sum(int(names[p] == r["label"]) for p, r in zip(peft_predictions, rows))
    attune_correct = sum(int(o["label"] == r["label"]) for o, r in zip(ours, rows))
    result = {
        "transformers": transformers.__version__,
        "peft": __import__("peft").__version__,
        "device": device,
        "examples": len(rows),
        "agreement": agree / len(rows),
        "peft_accuracy": peft_correct / len(rows),
        "attune_accuracy": attune_correct / len(rows),
    }
    print(json.dumps(result))
    sys.exit(0 if agree == len(rows) else 1)


if __name__ == "__main__":
    main()
