#!/usr/bin/env python3
"""transformers' side of `pajama eval`'s test: the same windowing (trainer/text_eval.h),
written independently. Each JSONL document is encoded with SentencePiece's own encoder,
EOS appended; the file's ids are cut into windows of L + 1 tokens overlapping by one;
the loss is the mean next-token cross-entropy over all predicted tokens.

  eval_reference.py HF_DIR TOKENIZER L FILE...     prints {"FILE": loss, ...} as JSON
"""
import json
import sys

import sentencepiece as spm
import torch
from transformers import LlamaForCausalLM


def main():
    hf_dir, tok_path, seq_len, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    model = LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager").eval()
    out = {}
    for path in files:
        ids = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    ids += sp.encode(json.loads(line)["text"]) + [sp.eos_id()]
        total, count, start = 0.0, 0, 0
        while start + 1 < len(ids):
            window = torch.tensor([ids[start:start + seq_len + 1]])
            with torch.no_grad():
                logits = model(window[:, :-1]).logits.float()
            total += torch.nn.functional.cross_entropy(logits[0], window[0, 1:], reduction="sum").item()
            count += window.shape[1] - 1
            start += seq_len
        out[path] = total / count
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
