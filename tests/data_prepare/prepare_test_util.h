// Helpers for the prepare tests: temp dirs, running the pajama executable, the sample
// corpus and a tokenizer trained on it (built once per test process).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pajama::testing {

namespace fs = std::filesystem;

struct CmdResult {
  int code = -1;       // exit status, or 128+signal
  std::string output;  // stdout and stderr together
};

std::string env_or(const char* name, const std::string& fallback);
std::string quote(const std::string& s);
CmdResult run_cmd(const std::string& cmd);
// `$PAJAMA_EXE <args>`.
CmdResult run_pajama(const std::string& args);
fs::path make_temp_dir(const std::string& name);
std::string read_bytes(const fs::path& p);
void write_bytes(const fs::path& p, const std::string& bytes);
std::string python();

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
