// Helpers for the prepare tests (the general ones are common/support.h): the sample
// corpus and a tokenizer trained on it (built once per test process), SentencePiece's
// own encoder, and an independent reader of Megatron's index format.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/support.h"

namespace pajama::testing {

namespace fs = std::filesystem;

struct SampleCorpus {
  fs::path dir;             // holds en.jsonl, zh.jsonl (+ .gz, .zst) and tok.model
  fs::path en, zh;
  fs::path tokenizer;       // trained by `pajama tokenizer train`
  std::vector<std::string> en_texts, zh_texts;
};
// Builds the sample corpus with scripts/make_sample_corpus.py and trains a tokenizer on
// it through the CLI, once per process. Fails the calling test on error.
const SampleCorpus& sample_corpus();

// Texts of the "text" field of each JSONL line.
std::vector<std::string> read_jsonl_texts(const fs::path& p);
// SentencePiece's own encoding of each text (the Python package via PAJAMA_PYTHON).
// Returns false (with a reason) when the Python package is unavailable.
bool reference_encode(const fs::path& model, const std::vector<std::string>& texts,
                      std::vector<std::vector<int32_t>>& ids, std::string& why);

// An independent reader of Megatron's .idx/.bin (FORMATS 1.3): documents as token vectors.
struct RefIndexed {
  uint8_t dtype = 0;
  std::vector<int32_t> lengths;
  std::vector<int64_t> pointers;
  std::vector<int64_t> doc_idx;
  std::vector<std::vector<int64_t>> docs;
};
RefIndexed ref_read_indexed(const std::string& prefix);

}  // namespace pajama::testing
