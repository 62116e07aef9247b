"""The one builder of small random transformers LLaMA models for the parity tests
(tests/model/hf_parity.py, tests/trainer/hf_roundtrip.py, tests/trainer/chinese_cpt.py).

    sys.path.insert(0, <tests/common>); from tiny_hf import tiny_llama
    model = tiny_llama(vocab=97, dim=64, ffn=96, layers=2, heads=4, kv_heads=2, seed=1234)
"""
import torch
from transformers import LlamaConfig, LlamaForCausalLM


def tiny_llama(vocab, dim, ffn, layers, heads, kv_heads, max_pos=256, eps=1e-5, theta=10000.0,
               init_range=0.02, seed=None, attn=None):
    """A random fp32 LlamaForCausalLM (untied head) of this shape; `seed` seeds torch first,
    `attn` picks transformers' attention implementation (its default when None)."""
    if seed is not None:
        torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=ffn, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=max_pos,
                      rms_norm_eps=eps, rope_theta=theta, tie_word_embeddings=False, initializer_range=init_range)
    # transformers 5 keeps the theta in rope_parameters; make sure it is the one asked for.
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict):
        rp["rope_theta"] = theta
    if attn is not None:
        cfg._attn_implementation = attn
    return LlamaForCausalLM(cfg).to(torch.float32)
