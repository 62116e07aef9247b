#!/usr/bin/env python3
"""transformers' side of the checkpoint interop tests.

  hf_roundtrip.py make DIR                     random tiny LlamaForCausalLM (tiny preset shape) -> DIR
  hf_roundtrip.py make-baichuan DIR            the same model in DIR/llama, and in DIR/baichuan in Baichuan-7B's
                                               layout (model_type baichuan, q/k/v fused into W_pack; no GQA)
  hf_roundtrip.py logits DIR TOKENS OUT        logits of LlamaForCausalLM.from_pretrained(DIR) for int32 tokens [B,T+1]
                                               (inputs = all but the last column) -> OUT as float32
  hf_roundtrip.py loss DIR TOKENS              mean next-token cross-entropy over the batch, printed as {"loss": x}
  hf_roundtrip.py generate DIR IDS N           greedy generate(do_sample=False) of N new tokens after the
                                               space-separated prompt ids IDS (no EOS stop); prints the new ids
Token files are raw little-endian int32 with the shape given by --batch and --width.
"""
import argparse
import json
import sys

import numpy as np
import torch
from transformers import LlamaForCausalLM

import os
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from tiny_hf import tiny_llama  # noqa: E402


def load_tokens(path, batch, width):
    return torch.from_numpy(np.fromfile(path, dtype="<i4").reshape(batch, width).astype(np.int64))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["make", "make-baichuan", "logits", "loss", "generate"])
    ap.add_argument("dir")
    ap.add_argument("tokens", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--width", type=int, default=17)
    ap.add_argument("--init-range", type=float, default=0.02,
                    help="make: weight init std (larger gives a model whose greedy output varies)")
    a = ap.parse_args()
    torch.manual_seed(3)
    if a.cmd in ("make", "make-baichuan"):
        baichuan = a.cmd == "make-baichuan"
        model = tiny_llama(vocab=4096, dim=128, ffn=352, layers=4, heads=4, kv_heads=4 if baichuan else 2,
                           max_pos=256, eps=1e-6 if baichuan else 1e-5, theta=10000.0, init_range=a.init_range)
        cfg = model.config
        if not baichuan:
            model.save_pretrained(a.dir, safe_serialization=True)
            return 0
        import os
        from safetensors.torch import save_file
        model.save_pretrained(os.path.join(a.dir, "llama"), safe_serialization=True)
        out = os.path.join(a.dir, "baichuan")
        os.makedirs(out, exist_ok=True)
        sd = {k: v.contiguous() for k, v in model.state_dict().items()}
        for i in range(cfg.num_hidden_layers):
            p = f"model.layers.{i}.self_attn."
            sd[p + "W_pack.weight"] = torch.cat([sd.pop(p + n + "_proj.weight") for n in ("q", "k", "v")], 0)
        save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        bc = {"architectures": ["BaiChuanForCausalLM"], "model_type": "baichuan", "hidden_act": "silu",
              "hidden_size": 128, "intermediate_size": 352, "num_attention_heads": 4, "num_hidden_layers": 4,
              "vocab_size": 4096, "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "initializer_range": 0.02,
              "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "tie_word_embeddings": False,
              "torch_dtype": "float32", "use_cache": True}
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(bc, f, indent=2)
        return 0
    model = LlamaForCausalLM.from_pretrained(a.dir, dtype=torch.float32, attn_implementation="eager").eval()
    if a.cmd == "generate":
        prompt = torch.tensor([[int(x) for x in a.tokens.split()]])
        n = int(a.out)
        with torch.no_grad():
            out = model.generate(prompt, do_sample=False, max_new_tokens=n, min_new_tokens=n, eos_token_id=None,
                                 pad_token_id=0)
        print(" ".join(str(int(x)) for x in out[0, prompt.shape[1]:]))
        return 0
    tokens = load_tokens(a.tokens, a.batch, a.width)
    with torch.no_grad():
        logits = model(input_ids=tokens[:, :-1]).logits.float()
    if a.cmd == "logits":
        logits.numpy().astype("<f4").tofile(a.out)
        return 0
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    print(json.dumps({"loss": loss.item()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
