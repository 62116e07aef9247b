// `pajama prepare`: tokenizes corpora (see corpus_reader.h for the input formats) into
// Megatron indexed datasets, one document per sequence, with a sidecar
// `<prefix>.pajama.json` (tokenizer path + sha256, vocab, BOS/EOS policy, sources,
// counts). Pipeline: one reader thread cuts the inputs into batches of raw records, N
// worker threads parse and tokenize batches, the calling thread writes results in input
// order, so the output is byte-identical for any worker count. In-flight batches are
// capped, so memory is bounded however large the inputs are.
//
// Outputs are staged in a hidden directory beside the prefix and renamed into place
// only after everything succeeded: a failure or an interruption (options.stop) leaves
// nothing under the final names. A later run removes stale staging directories of
// processes that no longer exist.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/corpus_reader.h"

namespace pajama {

struct PrepareOptions {
  std::vector<std::string> inputs;   // files, globs or directories, in order
  std::string tokenizer_path;        // SentencePiece model
  std::string output_prefix;         // PREFIX.bin/.idx, or PREFIX_00000... with shard_size
  std::string text_key = "text";     // JSON field holding the document text
  int num_workers = 0;               // tokenizer threads; 0 = hardware concurrency
  bool add_bos = false;              // prepend BOS to each document
  bool add_eos = true;               // append EOS to each document (Megatron's --append-eod)
  int64_t min_doc_tokens = 0;        // drop documents with fewer text tokens (before BOS/EOS)
  int64_t shard_size = 0;            // max tokens per output shard (documents never split); 0 = one output
  bool strict = false;               // the first malformed record is an error
  size_t batch_bytes = 1 << 20;      // raw bytes per work batch
  bool progress = true;              // progress line on stderr
  int max_reported = 5;              // malformed records reported by file:line
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by a signal handler) to abandon the run
};

struct PrepareStats {
  int64_t files = 0;
  int64_t documents = 0;
  int64_t tokens = 0;          // written, including BOS/EOS
  int64_t text_tokens = 0;     // excluding BOS/EOS
  int64_t text_bytes = 0;      // UTF-8 bytes of the documents written
  uint64_t input_bytes = 0;    // bytes of the input files on disk
  std::array<int64_t, kNumRecordErrors> malformed{};  // by RecordError
  int64_t too_short = 0;       // dropped by min_doc_tokens
  std::vector<std::string> outputs;  // prefixes written, in order
  double seconds = 0;

  int64_t skipped_malformed() const;
};

// Thrown when options.stop is set while running; nothing was written.
class PrepareInterrupted : public Error {
 public:
  using Error::Error;
};

// Runs prepare; throws ConfigError for bad options, DataError for bad or truncated
// inputs (and, with strict, the first malformed record), PrepareInterrupted on stop.
PrepareStats run_prepare(const PrepareOptions& options);

// Multi-line human summary: documents, tokens, skipped by reason, bytes per token, rate.
std::string format_prepare_summary(const PrepareStats& stats);

}  // namespace pajama
