#!/usr/bin/env python3
"""Where a Llama decoder layer's time goes on the GPU, and what each fusion would buy.

  python3 bench/fusion_probe.py [--batch 8 --seq 2048] [--profile]

Times forward + backward of one decoder layer at the 1.1B benchmark's shapes (hidden 2048,
32 heads, 4 KV heads, MLP 5632), bf16 frozen weights, LoRA r=16 on q and v in fp32, the way the
engine computes it (server/engine/llama.cc), then with one change at a time, using only ATen
operators that LibTorch's C++ API also has. Prints one JSON object: ms per layer for each
variant. With --profile, also the top CUDA kernels of the baseline. A probe for choosing what
to build, not a test.
"""
import argparse
import json
import math

import torch
import torch.nn.functional as F

H, HEADS, KV, FFN, R = 2048, 32, 4, 5632, 16
D = H // HEADS


def make_weights(dev):
    g = torch.Generator(device="cpu").manual_seed(0)

    def w(*shape, dtype=torch.bfloat16, std=0.02):
        return (torch.randn(*shape, generator=g) * std).to(dev, dtype)

    p = dict(
        n1=torch.ones(H, device=dev, dtype=torch.bfloat16),
        n2=torch.ones(H, device=dev, dtype=torch.bfloat16),
        wq=w(H, H), wk=w(KV * D, H), wv=w(KV * D, H), wo=w(H, H),
        wg=w(FFN, H), wu=w(FFN, H), wd=w(H, FFN),
    )
    p["wqkv"] = torch.cat([p["wq"], p["wk"], p["wv"]])
    p["wgu"] = torch.cat([p["wg"], p["wu"]])
    lora = dict(
        aq=w(R, H, dtype=torch.float32, std=1 / math.sqrt(H)),
        bq=w(H, R, dtype=torch.float32),
        av=w(R, H, dtype=torch.float32, std=1 / math.sqrt(H)),
        bv=w(KV * D, R, dtype=torch.float32),
    )
    for t in lora.values():
        t.requires_grad_(True)
    p.update(lora)
    return p


def rms_hf(x, w, eps=1e-5):
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return w * h.to(x.dtype)


def rms_fused(x, w, eps=1e-5):
    return F.rms_norm(x, (x.shape[-1],), w, eps)


def lora_plain(x, w, a, b, scale=1.0):
    return F.linear(x, w) + F.linear(F.linear(x, a.to(x.dtype)), b.to(x.dtype)) * scale


def lora_addmm(x, w, a, b, scale=1.0):
    shape = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    base = x2 @ w.t()
    xa = x2 @ a.to(x.dtype).t()
    return torch.addmm(base, xa, (b * scale).to(x.dtype).t()).view(*shape, -1)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


def rope_cat(q, cos, sin):
    return q * cos + rotate_half(q) * sin


def layer(x, p, cos, sin, *, norm=rms_hf, lora=lora_plain, fused_gemm=False, backend=None):
    b, t, _ = x.shape
    h = norm(x, p["n1"])
    if fused_gemm:
        qkv = F.linear(h, p["wqkv"])
        q, k, v = qkv.split([H, KV * D, KV * D], -1)
        hq = h.reshape(-1, H)
        q = q + (F.linear(F.linear(hq, p["aq"].to(h.dtype)), p["bq"].to(h.dtype))).view_as(q)
        v = v + (F.linear(F.linear(hq, p["av"].to(h.dtype)), p["bv"].to(h.dtype))).view_as(v)
    else:
        q = lora(h, p["wq"], p["aq"], p["bq"])
        k = F.linear(h, p["wk"])
        v = lora(h, p["wv"], p["av"], p["bv"])
    q = q.view(b, t, HEADS, D).transpose(1, 2)
    k = k.view(b, t, KV, D).transpose(1, 2)
    v = v.view(b, t, KV, D).transpose(1, 2)
    q = rope_cat(q, cos, sin)
    k = rope_cat(k, cos, sin)
    if backend is None:
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    else:
        from torch.nn.attention import sdpa_kernel
        with sdpa_kernel(backend):
            if backend == torch.nn.attention.SDPBackend.CUDNN_ATTENTION:
                rep = HEADS // KV
                a = F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1),
                                                   v.repeat_interleave(rep, 1), is_causal=True)
            else:
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    a = a.transpose(1, 2).reshape(b, t, H)
    x = x + F.linear(a, p["wo"])
    h = norm(x, p["n2"])
    if fused_gemm:
        g, u = F.linear(h, p["wgu"]).chunk(2, -1)
    else:
        g, u = F.linear(h, p["wg"]), F.linear(h, p["wu"])
    return x + F.linear(F.silu(g) * u, p["wd"])


def timeit(fn, iters=20, warm=5):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    dev = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    p = make_weights(dev)
    x0 = (torch.randn(args.batch, args.seq, H, device=dev) * 0.5).to(torch.bfloat16)
    pos = torch.arange(args.seq, device=dev, dtype=torch.float32)
    inv = 1.0 / (10000 ** (torch.arange(0, D, 2, device=dev).float() / D))
    ang = torch.cat([torch.outer(pos, inv)] * 2, -1)
    cos, sin = ang.cos().to(torch.bfloat16), ang.sin().to(torch.bfloat16)
    dy = torch.randn_like(x0) * 0.01

    def step(**kw):
        def run():
            x = x0.detach().requires_grad_(True)
            y = layer(x, p, cos, sin, **kw)
            y.backward(dy)
        return run

    SDP = torch.nn.attention.SDPBackend
    variants = {
        "engine_now": {},
        "fused_rms_norm": dict(norm=rms_fused),
        "lora_addmm": dict(lora=lora_addmm),
        "fused_gemms": dict(fused_gemm=True),
        "cudnn_attention": dict(backend=SDP.CUDNN_ATTENTION),
        "efficient_attention": dict(backend=SDP.EFFICIENT_ATTENTION),
        "all_but_cudnn": dict(norm=rms_fused, fused_gemm=True),
        "all_with_cudnn": dict(norm=rms_fused, fused_gemm=True, backend=SDP.CUDNN_ATTENTION),
    }
    out = {"shape": [args.batch, args.seq], "torch": torch.__version__, "ms_per_layer": {}}
    for name, kw in variants.items():
        try:
            out["ms_per_layer"][name] = round(timeit(step(**kw)), 3)
        except Exception as e:  # a backend that refuses these shapes
            out["ms_per_layer"][name] = f"failed: {type(e).__name__}: {str(e)[:120]}"
    try:
        compiled = torch.compile(lambda x: layer(x, p, cos, sin, norm=rms_hf))

        def run_c():
            x = x0.detach().requires_grad_(True)
            compiled(x).backward(dy)
        out["ms_per_layer"]["torch_compile_engine_now"] = round(timeit(run_c), 3)
    except Exception as e:
        out["ms_per_layer"]["torch_compile_engine_now"] = f"failed: {str(e)[:160]}"
    # Pieces on their own.
    xr = x0.detach().requires_grad_(True)
    pieces = {}
    pieces["rms_hf_fwd_bwd"] = timeit(lambda: rms_hf(xr, p["n1"]).backward(dy))
    pieces["rms_fused_fwd_bwd"] = timeit(lambda: rms_fused(xr, p["n1"]).backward(dy))
    g = torch.randn(args.batch, args.seq, FFN, device=dev, dtype=torch.bfloat16, requires_grad=True)
    u = torch.randn_like(g, requires_grad=True)
    dg = torch.randn_like(g)
    pieces["swiglu_fwd_bwd"] = timeit(lambda: (F.silu(g) * u).backward(dg))
    m = torch.randn(args.batch * args.seq, H, device=dev, dtype=torch.bfloat16)
    pieces["gemm_2048x2048_ms"] = timeit(lambda: m @ p["wq"].t())
    pieces["gemm_2048x5632_ms"] = timeit(lambda: m @ p["wg"].t())
    out["pieces_ms"] = {k: round(v, 3) for k, v in pieces.items()}
    fl = 2 * args.batch * args.seq * H * H
    out["gemm_2048x2048_tflops"] = round(fl / pieces["gemm_2048x2048_ms"] / 1e9, 1)
    if args.profile:
        from torch.profiler import profile, ProfilerActivity
        run = step()
        run()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                run()
            torch.cuda.synchronize()
        rows = []
        for e in prof.key_averages():
            if e.device_time_total > 0:
                rows.append((e.device_time_total / 3 / 1000, e.count // 3, e.key[:90]))
        rows.sort(reverse=True)
        out["profile_ms_per_layer"] = [[round(a, 3), c, k] for a, c, k in rows[:40]]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
