#!/usr/bin/env python3
"""Makes the DoRA goldens that server/engine/dora_test.cc checks attune against.

Run where torch, transformers, peft and safetensors are installed (the GPU machine; everything
runs on the CPU in fp32, seeded):

    python3 tests/golden/dora/make_dora_goldens.py OUTDIR

It writes, and nothing outside OUTDIR:
  OUTDIR/dora_linear.safetensors  for each case C in {bias, nobias, dropout}: a single nn.Linear
      wrapped by PEFT's LoRA with use_dora=True (r=4, lora_alpha=8), with A, B (non-zero) and the
      magnitude set to seeded values. Keys "C.<name>":
        x [3, 5, in], weight [out, in], bias [out] (bias, dropout), magnitude_init [out] (what PEFT
        initialised the magnitude to, at B = 0), lora_A [r, in], lora_B [out, r], magnitude [out],
        x_dropped (dropout only: the adapter's input after a fixed dropout mask, x * mask / (1-p)),
        grad_out [3, 5, out] (loss = sum(output * grad_out)), output, grad_lora_A, grad_lora_B,
        grad_magnitude, grad_x.
      "dropout" runs in training mode with lora_dropout = 0.25 and the mask fixed (PEFT's dropout
      branch: base_result is recomputed from the dropped input); the others in eval mode.
  OUTDIR/dora_settings.json  versions, r, alpha, scale, shapes, the cases, and for each model case
      the keys PEFT saved and its adapter_config.json's use_dora.
  OUTDIR/peft_<M>/adapter_model.safetensors, adapter_config.json  for M in {roberta_cls,
      llama_cls} (the parity fixtures in tests/fixtures/parity): PEFT's save_pretrained of a DoRA
      adapter on the query/value projections with seeded A, B and magnitude.
  OUTDIR/dora_models.safetensors  "<M>.input_ids", "<M>.attention_mask" (the fixture's
      golden inputs) and "<M>.logits": the PEFT model's logits in eval mode.
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

R = 4
ALPHA = 8
IN = 16
OUT = 12
HERE = os.path.dirname(os.path.abspath(__file__))
PARITY = os.path.join(HERE, "..", "..", "fixtures", "parity")


class Wrapper(torch.nn.Module):
    def __init__(self, bias):
        super().__init__()
        self.proj = torch.nn.Linear(IN, OUT, bias=bias)

    def forward(self, x):
        return self.proj(x)


class FixedDropout(torch.nn.Module):
    """Dropout with a fixed mask, so the golden does not depend on torch's random stream."""

    def __init__(self, mask, p):
        super().__init__()
        self.mask = mask
        self.p = p

    def forward(self, x):
        return x * self.mask / (1.0 - self.p)


def linear_case(name, bias, dropout, seed):
    from peft import LoraConfig, get_peft_model
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = Wrapper(bias).float()
    with torch.no_grad():
        model.proj.weight.copy_(torch.randn(OUT, IN, generator=g) * 0.5)
        if bias:
            model.proj.bias.copy_(torch.randn(OUT, generator=g) * 0.5)
    cfg = LoraConfig(use_dora=True, r=R, lora_alpha=ALPHA, lora_dropout=dropout,
                     target_modules=["proj"])
    pm = get_peft_model(model, cfg)
    layer = pm.base_model.model.proj
    mag = layer.lora_magnitude_vector["default"].weight
    t = {"magnitude_init": mag.detach().clone()}
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(torch.randn(R, IN, generator=g) * 0.3)
        layer.lora_B["default"].weight.copy_(torch.randn(OUT, R, generator=g) * 0.3)
        mag.copy_(t["magnitude_init"] * (1.0 + 0.2 * torch.rand(OUT, generator=g)))
    x = torch.randn(3, 5, IN, generator=g)
    grad_out = torch.randn(3, 5, OUT, generator=g)
    if dropout > 0:
        mask = (torch.rand(3, 5, IN, generator=g) >= dropout).float()
        layer.lora_dropout["default"] = FixedDropout(mask, dropout)
        t["x_dropped"] = (x * mask / (1.0 - dropout)).contiguous()
        pm.train()
    else:
        pm.eval()
    xg = x.clone().requires_grad_(True)
    out = layer(xg)
    (out * grad_out).sum().backward()
    t.update({
        "x": x, "weight": layer.base_layer.weight.detach(), "lora_A": layer.lora_A["default"].weight,
        "lora_B": layer.lora_B["default"].weight, "magnitude": mag, "grad_out": grad_out,
        "output": out, "grad_lora_A": layer.lora_A["default"].weight.grad,
        "grad_lora_B": layer.lora_B["default"].weight.grad, "grad_magnitude": mag.grad,
        "grad_x": xg.grad,
    })
    if bias:
        t["bias"] = layer.base_layer.bias.detach()
    print(f"{name}: |out| {out.abs().max():.4f} |grad m| {mag.grad.abs().max():.4f}")
    return {f"{name}.{k}": v.detach().float().contiguous().clone() for k, v in t.items()}


def set_dora_weights(pm, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in sorted(pm.named_modules()):
            if not hasattr(module, "lora_magnitude_vector") or "default" not in module.lora_A:
                continue
            a = module.lora_A["default"].weight
            b = module.lora_B["default"].weight
            m = module.lora_magnitude_vector["default"].weight
            a.copy_(torch.randn(a.shape, generator=g) * 0.3)
            b.copy_(torch.randn(b.shape, generator=g) * 0.3)
            m.mul_(1.0 + 0.2 * torch.rand(m.shape, generator=g))


def model_case(out, name, targets, seed, tensors):
    import transformers
    from peft import LoraConfig, get_peft_model
    cls = getattr(transformers, json.load(open(os.path.join(PARITY, name, "config.json")))
                  ["architectures"][0])
    model = cls.from_pretrained(os.path.join(PARITY, name)).float().eval()
    torch.manual_seed(seed)
    cfg = LoraConfig(task_type="SEQ_CLS", use_dora=True, r=R, lora_alpha=ALPHA,
                     target_modules=targets)
    pm = get_peft_model(model, cfg)
    set_dora_weights(pm, seed)
    pm.eval()
    with safe_open(os.path.join(PARITY, name, "golden.safetensors"), "pt") as f:
        ids = f.get_tensor("input_ids")
        mask = f.get_tensor("attention_mask")
    with torch.no_grad():
        logits = pm(input_ids=ids, attention_mask=mask).logits.float().contiguous()
    d = os.path.join(out, "peft_" + name)
    pm.save_pretrained(d)
    tensors[f"{name}.input_ids"] = ids.contiguous()
    tensors[f"{name}.attention_mask"] = mask.contiguous()
    tensors[f"{name}.logits"] = logits
    with safe_open(os.path.join(d, "adapter_model.safetensors"), "pt") as f:
        keys = {k: list(f.get_tensor(k).shape) for k in sorted(f.keys())}
    config = json.load(open(os.path.join(d, "adapter_config.json")))
    print(f"{name}: logits {logits.tolist()}")
    return {"saved_keys": keys, "use_dora": config.get("use_dora"), "targets": targets}


def main():
    import peft
    import transformers
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    tensors = {}
    tensors.update(linear_case("bias", True, 0.0, 11))
    tensors.update(linear_case("nobias", False, 0.0, 12))
    tensors.update(linear_case("dropout", True, 0.25, 13))
    save_file(tensors, os.path.join(out, "dora_linear.safetensors"))
    settings = {
        "torch": torch.__version__, "peft": peft.__version__,
        "transformers": transformers.__version__, "r": R, "lora_alpha": ALPHA,
        "scale": ALPHA / R, "in": IN, "out": OUT, "dropout_p": 0.25,
        "cases": ["bias", "nobias", "dropout"], "models": {},
    }
    model_tensors = {}
    settings["models"]["roberta_cls"] = model_case(out, "roberta_cls", ["query", "value"], 21,
                                                   model_tensors)
    settings["models"]["llama_cls"] = model_case(out, "llama_cls", ["q_proj", "v_proj"], 22,
                                                 model_tensors)
    save_file(model_tensors, os.path.join(out, "dora_models.safetensors"))
    with open(os.path.join(out, "dora_settings.json"), "w") as f:
        json.dump(settings, f, indent=2)
    print(json.dumps(settings, indent=2))


if __name__ == "__main__":
    main()
