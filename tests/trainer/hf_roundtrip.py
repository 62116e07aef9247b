#!/usr/bin/env python3
"""transformers' side of the checkpoint interop tests.

  hf_roundtrip.py make DIR                     random tiny LlamaForCausalLM (tiny preset shape) -> DIR
  hf_roundtrip.py logits DIR TOKENS OUT        logits of LlamaForCausalLM.from_pretrained(DIR) for int32 tokens [B,T+1]
                                               (inputs = all but the last column) -> OUT as float32
  hf_roundtrip.py loss DIR TOKENS              mean next-token cross-entropy over the batch, printed
Token files are raw little-endian int32 with the shape given by --batch and --width.
"""
import argparse
import sys

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM


def load_tokens(path, batch, width):
    return torch.from_numpy(np.fromfile(path, dtype="<i4").reshape(batch, width).astype(np.int64))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["make", "logits", "loss"])
    ap.add_argument("dir")
    ap.add_argument("tokens", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--width", type=int, default=17)
    a = ap.parse_args()
    torch.manual_seed(3)
    if a.cmd == "make":
        cfg = LlamaConfig(vocab_size=4096, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                          rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)
        model = LlamaForCausalLM(cfg).to(torch.float32)
        model.save_pretrained(a.dir, safe_serialization=True)
        return 0
    model = LlamaForCausalLM.from_pretrained(a.dir, dtype=torch.float32, attn_implementation="eager").eval()
    tokens = load_tokens(a.tokens, a.batch, a.width)
    with torch.no_grad():
        logits = model(input_ids=tokens[:, :-1]).logits.float()
    if a.cmd == "logits":
        logits.numpy().astype("<f4").tofile(a.out)
        return 0
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    print(f"{loss.item():.10f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
