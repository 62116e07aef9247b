#!/usr/bin/env python3
"""The transformers side of pajama's HF parity test (tests/model/test_hf_parity.cpp).

  hf_parity.py make OUT_DIR
      Builds a random tiny LlamaForCausalLM (GQA, untied, rope_theta 50000, eps 1e-6, fp32,
      eager attention), save_pretrained(safe_serialization=True)s it into OUT_DIR/hf and writes
      OUT_DIR/hf_logits.safetensors with "tokens" (int64 [B,T]) and "logits" (fp32 [B,T,V]).
  hf_parity.py check DIR [DIR...]
      Each DIR holds a pajama save_hf export in DIR/model and DIR/logits.safetensors with
      "tokens" and pajama's "logits"; loads the export with LlamaForCausalLM.from_pretrained
      and compares. Exit status 0 only if every max |diff| < 1e-4.
"""
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaForCausalLM

import os
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from tiny_hf import tiny_llama  # noqa: E402

TOLERANCE = 1e-4


def make(out):
    model = tiny_llama(vocab=97, dim=64, ffn=96, layers=2, heads=4, kv_heads=2, max_pos=64, eps=1e-6,
                       theta=50000.0, seed=1234, attn="eager").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Larger than the default init so every op visibly shapes the logits; norms away from 1.
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.15)
        tokens = torch.randint(0, 97, (2, 13))
        logits = model(input_ids=tokens).logits.float().contiguous()
    model.save_pretrained(f"{out}/hf", safe_serialization=True)
    save_file({"tokens": tokens.contiguous(), "logits": logits}, f"{out}/hf_logits.safetensors")
    print(f"made {out}/hf: logits {tuple(logits.shape)}, |logits| max {logits.abs().max():.3f}")
    return 0


def check(dirs):
    ok = True
    for d in dirs:
        model = LlamaForCausalLM.from_pretrained(f"{d}/model", dtype=torch.float32, attn_implementation="eager").eval()
        data = load_file(f"{d}/logits.safetensors")
        with torch.no_grad():
            ours = model(input_ids=data["tokens"]).logits.float()
        diff = (ours - data["logits"]).abs().max().item()
        theirs_scale = data["logits"].abs().max().item()
        rope = getattr(model.config, "rope_parameters", None) or {}
        theta = rope.get("rope_theta", getattr(model.config, "rope_theta", None))
        print(f"{d}: max |logits diff| {diff:.3e} (|logits| max {theirs_scale:.3f}, rope_theta {theta}, "
              f"tied {model.config.tie_word_embeddings})")
        ok = ok and diff < TOLERANCE
    return 0 if ok else 1


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        return make(sys.argv[2])
    if len(sys.argv) >= 3 and sys.argv[1] == "check":
        return check(sys.argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
