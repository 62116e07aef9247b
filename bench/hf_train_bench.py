#!/usr/bin/env python3
"""The peer side of pajama's training benchmarks: transformers' LlamaForCausalLM
trained the way its users train it (AdamW, fused on CUDA; bf16 autocast on CUDA, fp32
on CPU; SDPA attention; optional torch.compile), on random tokens, same shape, batch
and thread count as the pajama run it is compared with.

Prints one JSON object: impl, tokens_per_s, step_ms, params, flops_per_token, peak_mem_gb
(CUDA: the caching allocator's peak) and peak_rss_growth_mb (CPU: VmHWM above the RSS before
the model existed, as pajama's metrics.jsonl peak_memory_mb).
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--kv-heads", type=int, default=0)
    p.add_argument("--ffn", type=int, required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--micro-batch", type=int, required=True)
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compile", action="store_true")
    return p.parse_args()


def proc_status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def main():
    a = parse_args()
    rest_mb = proc_status_mb("VmRSS")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    cfg = LlamaConfig(vocab_size=a.vocab, hidden_size=a.dim, intermediate_size=a.ffn, num_hidden_layers=a.layers,
                      num_attention_heads=a.heads, num_key_value_heads=a.kv_heads or a.heads,
                      max_position_embeddings=a.seq, rms_norm_eps=1e-5, tie_word_embeddings=False)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(dev).train()
    params = sum(p.numel() for p in model.parameters())
    flops_per_token = 6 * (params - a.vocab * a.dim) + 12 * a.layers * a.dim * a.seq
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=dev.type == "cuda")
    fwd = torch.compile(model) if a.compile else model
    gen = torch.Generator().manual_seed(1)
    use_amp = dev.type == "cuda"

    def step():
        batch = torch.randint(0, a.vocab, (a.micro_batch, a.seq), generator=gen).to(dev)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
            # transformers shifts the labels itself: labels = input_ids is the next-token loss.
            out = fwd(input_ids=batch, labels=batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(a.warmup):
        step()
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    sync()
    dt = (time.perf_counter() - t0) / a.steps
    print(json.dumps({
        "impl": "transformers" + ("+compile" if a.compile else ""), "device": dev.type,
        "tokens_per_s": a.micro_batch * a.seq / dt, "step_ms": dt * 1e3, "params": params,
        "flops_per_token": flops_per_token, "loss": float(loss), "threads": torch.get_num_threads(),
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
        "peak_rss_growth_mb": proc_status_mb("VmHWM") - rest_mb,
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()
