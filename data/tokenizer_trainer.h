// Trains a SentencePiece tokenizer with LLaMA's recipe (BPE, byte fallback, split
// digits, identity normalization, dummy prefix, whitespace kept, ids unk 0 / bos 1 /
// eos 2, no pad) from the same inputs `prepare` reads. Documents are split into lines
// (SentencePiece's "sentences"); a deterministic reservoir keeps at most
// `max_sentences` of them so training stays fast and bounded on large inputs.
//   TokenizerTrainOptions o; o.inputs = {"corpus/"}; o.vocab_size = 32000; o.output_prefix = "tok";
//   train_tokenizer(o);   // writes tok.model and tok.vocab
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pajama {

struct TokenizerTrainOptions {
  std::vector<std::string> inputs;     // files, globs or directories (as for prepare)
  std::string output_prefix;           // writes <prefix>.model and <prefix>.vocab
  std::string text_key = "text";       // JSON field holding the text
  int64_t vocab_size = 32000;          // pieces, including <unk>, <s>, </s> and the 256 byte pieces
  std::string model_type = "bpe";      // "bpe" (LLaMA) or "unigram"
  int64_t max_sentences = 2000000;     // reservoir size over all input lines
  double character_coverage = 0.9995;  // share of characters kept as pieces (rest: byte fallback)
  int64_t max_sentence_length = 16384; // bytes; longer lines are skipped by SentencePiece
  bool hard_vocab_limit = false;       // false: a small corpus may yield fewer pieces (warned)
  int num_threads = 0;                 // 0 = hardware concurrency
  uint64_t seed = 0;                   // reservoir sampling seed
};

struct TokenizerTrainStats {
  int64_t documents = 0;       // usable documents read
  int64_t skipped = 0;         // malformed records skipped
  int64_t sentences_seen = 0;  // non-empty lines in those documents
  int64_t sentences_used = 0;  // lines kept by the reservoir
  int64_t vocab_size = 0;      // pieces in the trained model
};

TokenizerTrainStats train_tokenizer(const TokenizerTrainOptions& options);

}  // namespace pajama
