// Growing a vocabulary (Chinese-LLaMA's recipe: a merged tokenizer appends pieces to a
// released model's 32,000): the released rows of the embedding and the LM head are kept,
// the new rows start by a documented rule, and padding rows (model.vocab_multiple_of)
// are zero. Used by `model.init_from` and by resuming a checkpoint into a larger
// model.vocab_size; both copy the released rows straight into the model's parameters,
// so no second model exists.
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>

namespace pajama {

// The parameters whose first dimension is the vocabulary.
bool is_vocab_parameter(const std::string& name);

// How rows [old_rows, vocab_size) of a grown embedding or head start:
//   mean        the mean of rows [0, old_rows) (HF's resize_token_embeddings with
//               mean_resizing; keeps the initial distribution over old tokens almost
//               unchanged, Hewitt 2021);
//   mean_noise  that mean plus normal noise, std = 0.01 x the old rows' standard deviation,
//               drawn from a CPU generator seeded with `seed` (identical on every rank).
// Rows [vocab_size, weight.size(0)) are padding and set to zero: the loss never gives them
// probability mass, so they get no gradient and stay zero.
void init_new_vocab_rows(torch::Tensor weight, int64_t old_rows, int64_t vocab_size, const std::string& rule,
                         uint64_t seed);
// Throws ConfigError for a rule other than mean or mean_noise, about the field
// `new_vocab_init` at `rule`'s address (core/error.h ConfigField).
void check_new_vocab_rule(const std::string& rule);

}  // namespace pajama
