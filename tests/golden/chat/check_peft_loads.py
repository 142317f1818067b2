#!/usr/bin/env python3
"""Checks that PEFT loads an adapter that an attune chat job wrote.

    python3 check_peft_loads.py ADAPTER_DIR MODEL_DIR

ADAPTER_DIR is a downloaded adapter (adapter_config.json, adapter_model.safetensors); MODEL_DIR
the base model it was trained on (config.json, safetensors). Loads the base with transformers,
the adapter with peft.PeftModel.from_pretrained, and prints one JSON object: whether it loaded,
which adapter tensors peft did not take (must be none), how many LoRA B matrices are non-zero
(a trained adapter has them), and whether the adapter changes the logits. Exit 0 when all hold.
Runs on the CPU in seconds for the tiny test models; writes nothing.
"""
import json
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_peft_loads.py ADAPTER_DIR MODEL_DIR")
    adapter_dir, model_dir = sys.argv[1], sys.argv[2]
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    report = {"adapter": adapter_dir, "model": model_dir}
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    ids = torch.randint(0, base.config.vocab_size, (1, 16))
    with torch.no_grad():
        before = base(ids).logits.clone()
    model = PeftModel.from_pretrained(base, adapter_dir)
    model.eval()
    saved = load_file(adapter_dir + "/adapter_model.safetensors")
    state = model.state_dict()
    # PEFT's names carry the adapter name ("lora_A.default.weight"); the file's do not.
    names = {k.replace(".default", "") for k in state}
    report["not_loaded"] = sorted(k for k in saved if k not in names)
    report["lora_B_nonzero"] = sum(1 for k, v in saved.items() if "lora_B" in k and v.abs().sum() > 0)
    report["lora_tensors"] = len(saved)
    with torch.no_grad():
        after = model(ids).logits
    report["logits_changed"] = bool((after - before).abs().max() > 0)
    report["ok"] = (not report["not_loaded"] and report["lora_B_nonzero"] > 0
                    and report["logits_changed"])
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
