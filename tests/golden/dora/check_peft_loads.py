#!/usr/bin/env python3
"""Checks that PEFT loads a DoRA (or LoRA) adapter that attune wrote, and predicts what attune
predicted. Run where torch, transformers, peft and safetensors are installed (CPU, fp32):

    python3 tests/golden/dora/check_peft_loads.py ADAPTER_DIR MODEL_DIR [LOGITS_FILE]

ADAPTER_DIR is an attune checkpoint (adapter_model.safetensors, adapter_config.json); MODEL_DIR
the base model it was trained on. LOGITS_FILE (default ADAPTER_DIR/attune_logits.safetensors)
holds "input_ids", "attention_mask" and attune's "logits" for them; server/engine/
checkpoint_format_test.cc (DoraAdapterPredictionsForPeft) writes one beside the adapter it
trains, and copies all three into $ATTUNE_DORA_EXPORT_DIR when that is set.

Prints one JSON object: max_abs_diff / max_rel_diff of PEFT's logits against attune's,
adapter_effect_max_abs (how far the logits are from the base model's, to show the adapter
matters), the adapter keys PEFT did not load or that attune did not write, and "ok". Exits 1
unless ok (every key loaded both ways and max_abs_diff < 1e-4). Writes nothing.
"""
import json
import os
import sys

import torch
import transformers
from peft import PeftModel
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file


def main():
    adapter_dir, model_dir = sys.argv[1], sys.argv[2]
    logits_path = (sys.argv[3] if len(sys.argv) > 3
                   else os.path.join(adapter_dir, "attune_logits.safetensors"))
    torch.set_num_threads(1)
    attune = load_file(logits_path)
    config = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    if config["task_type"] == "CAUSAL_LM":
        base = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    else:
        base = transformers.AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=attune["logits"].shape[-1])
    model = PeftModel.from_pretrained(base.float(), adapter_dir).eval()

    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(model)
    common = sorted(set(saved) & set(loaded))
    tensors_diff = max((saved[k].float() - loaded[k].float()).abs().max().item() for k in common)

    ids, mask = attune["input_ids"].long(), attune["attention_mask"].long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        with model.disable_adapter():
            base_logits = model(input_ids=ids, attention_mask=mask).logits.float()
    want = attune["logits"].float()
    diff = (logits - want).abs().max().item()
    result = {
        "max_abs_diff": diff,
        "max_rel_diff": diff / want.abs().max().item(),
        "adapter_effect_max_abs": (logits - base_logits).abs().max().item(),
        "use_dora": config.get("use_dora"),
        "keys_not_loaded_by_peft": sorted(set(saved) - set(loaded)),
        "keys_not_written_by_attune": sorted(set(loaded) - set(saved)),
        "magnitude_keys": sum(k.endswith("lora_magnitude_vector") for k in saved),
        "tensors_max_abs_diff": tensors_diff,
        "peft_logits": logits.tolist(),
        "attune_logits": want.tolist(),
    }
    result["ok"] = (not result["keys_not_loaded_by_peft"]
                    and not result["keys_not_written_by_attune"] and tensors_diff == 0
                    and diff < 1e-4)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
