// `pajama eval`: loss and perplexity of a model on text files in the formats `prepare`
// reads, per file and overall, on any number of ranks.
//
// Windowing (documented in docs/DATA.md): each file's documents are tokenized as
// `prepare` does (BOS before each document with add_bos, EOS after it with add_eos; by
// default EOS only), concatenated, and cut into windows of seq_len + 1 tokens that
// overlap by one token, the last one shorter: window i is tokens [i*L, i*L + L + 1).
// Every token after a file's first is predicted exactly once, from the tokens before it
// in its window. The loss is the mean next-token cross-entropy (fp32 log-softmax) over all
// predicted tokens of a file; overall, over all predicted tokens. Windows go round-robin
// to the ranks; one all-reduce of (sum, count) per file gives every rank the same result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "model/llama.h"
#include "parallel/communicator.h"

namespace pajama {

struct TextEvalOptions {
  int64_t seq_len = 1024;
  int64_t batch_size = 8;
  bool add_bos = false;
  bool add_eos = true;
  std::string text_key = "text";
};

struct TextEvalFile {
  std::string path;
  int64_t documents = 0;
  int64_t predicted = 0;  // tokens scored
  double loss = 0;        // mean cross-entropy over them
};

struct TextEvalResult {
  std::vector<TextEvalFile> files;
  int64_t predicted = 0;
  double loss = 0;
};

TextEvalResult evaluate_text_files(Llama& model, const Tokenizer& tokenizer, const std::vector<std::string>& files,
                                   const TextEvalOptions& options, Communicator& comm);

}  // namespace pajama
