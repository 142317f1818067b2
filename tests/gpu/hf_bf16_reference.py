#!/usr/bin/env python3
"""For context beside attune-parity's bf16 numbers: transformers' own error in bf16 against its
fp32 golden logits, on the parity fixtures, on CUDA.

    python3 tests/gpu/hf_bf16_reference.py tests/fixtures/parity/*/

One JSON object per line: {"fixture", "dtype": "bfloat16", "relative_error"} with the same
error measure (max |diff| / max |golden|, padding positions of causal-LM logits excluded).
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification


def main():
    for d in sys.argv[1:]:
        d = os.path.normpath(d)
        config = AutoConfig.from_pretrained(d)
        cls = (AutoModelForCausalLM if config.architectures[0].endswith("ForCausalLM")
               else AutoModelForSequenceClassification)
        model = cls.from_pretrained(d, torch_dtype=torch.bfloat16).cuda().eval()
        golden = load_file(os.path.join(d, "golden.safetensors"))
        ids, mask = golden["input_ids"].cuda(), golden["attention_mask"].cuda()
        with torch.no_grad():
            got = model(input_ids=ids, attention_mask=mask).logits.float().cpu()
        want = golden["logits"].float()
        if got.dim() == 3:
            m = golden["attention_mask"].unsqueeze(-1).bool()
            got, want = got.masked_fill(~m, 0), want.masked_fill(~m, 0)
        err = ((got - want).abs().max() / want.abs().max()).item()
        print(json.dumps({"fixture": os.path.basename(d), "dtype": "bfloat16",
                          "relative_error": err}))


if __name__ == "__main__":
    main()
