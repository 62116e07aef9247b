#include "model/memory_estimate.h"

#include <algorithm>

#include "core/error.h"

namespace pajama {

ActivationMemory estimate_activation_memory(const LlamaConfig& cfg, const TrainingOptions& opts, int64_t micro_batch,
                                            int64_t seq_len, int64_t act_bytes) {
  PAJAMA_CHECK(micro_batch > 0 && seq_len > 0 && act_bytes > 0, "estimate_activation_memory: micro_batch ",
               micro_batch, ", seq_len ", seq_len, " and act_bytes ", act_bytes, " must be positive");
  const int64_t n = micro_batch * seq_len;  // tokens
  const int64_t s = act_bytes, f32 = 4;
  const int64_t d = cfg.dim, kvd = cfg.kv_heads() * cfg.head_dim(), f = cfg.hidden_ffn_dim();
  const int64_t heads = cfg.n_heads, layers = cfg.n_layers, vocab = cfg.padded_vocab_size();
  const int64_t chunk = std::min(opts.loss_chunk_tokens, n);

  // Bytes per token one block keeps for backward with checkpointing none:
  //   x (input_layernorm's input, also the residual), the normed x (read by q/k/v_proj), q and k
  //   after RoPE, v, the attention output (SDPA), its (B, T, H*hd) copy (o_proj's input),
  //   h (post_attention_layernorm's input), the normed h (read by gate/up_proj), gate (silu's
  //   input), silu(gate) and up (the product's inputs), the product (down_proj's input):
  //   7 d + 2 kv_dim + 4 ffn in the activation dtype; SDPA's logsumexp (H) and two rstd in fp32.
  const int64_t block_none = s * (7 * d + 2 * kvd + 4 * f) + f32 * (heads + 2);
  // selective: the normed x and h, the o_proj input copy, silu(gate) and the product are
  // recomputed: x, q, k, v, attention output, h, gate, up + logsumexp + rstd remain.
  const int64_t block_selective = s * (4 * d + 2 * kvd + 2 * f) + f32 * (heads + 2);
  // full: the block input alone.
  const int64_t block_full = s * d;
  int64_t block = block_none;
  if (opts.checkpointing == ActivationCheckpointing::kSelective) block = block_selective;
  if (opts.checkpointing == ActivationCheckpointing::kFull) block = block_full;

  ActivationMemory m;
  // Outside the blocks: the final norm's input (the last block's output) and its rstd. The
  // embedding keeps the caller's token tensor, the head nothing (the loss forms its gradients
  // in forward, below).
  m.saved_bytes = n * (layers * block + s * d + f32);

  // The loss at its worst (last chunk of forward): the final hidden states (N, d) it reads,
  // grad_hidden (N, d), the fp32 grad_weight accumulator (V, d), one chunk's logits (chunk, V)
  // in the activation dtype, and for 16-bit activations also their fp32 copy, the cast of
  // d loss / d logits and the 16-bit (V, d) partial product before it is summed in fp32.
  m.loss_bytes = 2 * n * d * s + vocab * d * f32 + chunk * vocab * s;
  if (s != f32) m.loss_bytes += chunk * vocab * (f32 + s) + vocab * d * s;

  // Backward, above what is still saved at that moment. A block's backward, at its MLP (the
  // widest part): the gradient of the block output (N, d), and while mul's backward runs,
  // the product's gradient and the gradients of silu(gate) and up (3 N ffn), of which the
  // product itself (N ffn, no longer needed) was just freed; plus one weight-sized gradient
  // (dim x ffn) on its way to AccumulateGrad.
  const int64_t block_backward = n * s * (d + 2 * f) + s * d * f;
  int64_t transient = block_backward;
  if (opts.checkpointing == ActivationCheckpointing::kSelective) {
    // swiglu_linear's backward holds the recomputed silu(gate) and, in turn, the gradients of
    // the product, of up, of silu(gate) and of gate (5 N ffn) beside the block-output gradient.
    transient = n * s * (d + 5 * f) + s * d * f;
  } else if (opts.checkpointing == ActivationCheckpointing::kFull) {
    // The block being back-propagated is recomputed: its whole `none` set, then its backward.
    transient = n * block_none + block_backward;
  }
  // The final norm's backward: the incoming gradient, the fp32 normalised x, its gradient and
  // two products (about 5 N d); the embedding's backward: a dense (V, d) gradient.
  transient = std::max({transient, 5 * n * d * f32, vocab * d * s + n * d * s});
  // Tied head: the loss's (V, d) gradient waits in the shared weight's input buffer until the
  // embedding's arrives at the very end, so it stays live through all of backward.
  if (cfg.tie_embeddings) transient += vocab * d * s;
  m.backward_peak_bytes = transient;
  return m;
}

}  // namespace pajama
