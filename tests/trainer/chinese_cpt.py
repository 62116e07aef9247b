#!/usr/bin/env python3
"""transformers' side of the Chinese continued-pretraining test (docs/CHINESE.md).

  chinese_cpt.py make DIR                  a random small LlamaForCausalLM with LLaMA's 32,000-token vocabulary
  chinese_cpt.py run HF_DIR TEXT_FILE      loads HF_DIR's model and tokenizer with transformers, tokenizes the
                                           Chinese text, checks that the tokenizer and the model agree, and
                                           prints one JSON line: tokens, vocabulary sizes, loss, round trip
"""
import argparse
import json
import math
import sys

import torch
from transformers import AutoTokenizer, LlamaForCausalLM

import os
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from tiny_hf import tiny_llama  # noqa: E402


def make(out):
    model = tiny_llama(vocab=32000, dim=64, ffn=176, layers=2, heads=4, kv_heads=2, max_pos=256, eps=1e-5,
                       theta=10000.0, seed=11)
    model.save_pretrained(out, safe_serialization=True)


def run(hf_dir, text_file):
    tok = AutoTokenizer.from_pretrained(hf_dir)
    model = LlamaForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32)
    text = open(text_file, encoding="utf-8").read().strip()
    ids = tok(text, return_tensors="pt").input_ids[:, :200]
    with torch.no_grad():
        loss = model(ids, labels=ids).loss.item()
    decoded = tok.decode(tok(text).input_ids, skip_special_tokens=True)
    print(json.dumps({"tokens": int(ids.shape[1]), "tokenizer_size": len(tok),
                      "model_vocab": model.config.vocab_size, "max_id": int(ids.max()),
                      "loss": loss, "finite": math.isfinite(loss), "round_trip": decoded == text}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["make", "run"])
    ap.add_argument("dir")
    ap.add_argument("text", nargs="?")
    a = ap.parse_args()
    if a.cmd == "make":
        make(a.dir)
    else:
        run(a.dir, a.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
