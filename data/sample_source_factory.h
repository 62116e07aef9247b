// Builds the SampleSource the trainer reads from a DataConfig:
//   source: mock   -> MockSource (validation uses the same chain with another seed);
//   source: shards -> one PackedDataset per prefix, on the split's documents, blended
//                     by weight (a single prefix is used directly, without a blend).
// Splits: validation comes from valid_datasets (whole prefixes, blended by their
// weights) or, when valid_fraction > 0, from the last round(f * documents)
// documents of every training prefix (training keeps the rest); setting both is a
// ConfigError (DataConfig::validate). Checks, each naming the prefix and the
// DataConfig field ("datasets[1]"):
//   * every prefix opens (missing .idx/.bin named with its path);
//   * with `tokenizer` set, a prefix's sidecar `<prefix>.pajama.json` (if any)
//     must record that file's sha256;
//   * the sidecar's vocab_size must not exceed the model's vocab_size, and every token
//     read is checked against it (one max per sample, at read time);
//   * a training prefix too small for one sample is a DataError.
// Returns nullptr for Split::kValid when no validation data is configured, or when
// every valid_fraction part is too small for one sample (logged); the trainer then
// skips evaluation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/data_config.h"
#include "data/sample_source.h"

namespace pajama {

enum class Split { kTrain, kValid };

// num_samples_hint: samples the run will read (train.max_steps * global_batch plus
// slack); blends prebuild their assignment for it and extend on demand beyond.
std::shared_ptr<const SampleSource> make_sample_source(const DataConfig& cfg, Split split, int64_t seq_len,
                                                       int64_t vocab_size, uint64_t seed, int64_t num_samples_hint);

// The validation split one source per dataset (valid_datasets, or each training
// dataset's valid_fraction part; mock: one source named "mock"), for per-source
// evaluation; empty when there is no validation data. Names are the datasets' `name`
// (default: the prefix's file name) and must be distinct (ConfigError).
struct NamedSampleSource {
  std::string name;
  double weight = 1.0;
  std::shared_ptr<const SampleSource> source;
};
std::vector<NamedSampleSource> make_validation_sources(const DataConfig& cfg, int64_t seq_len, int64_t vocab_size,
                                                       uint64_t seed);
// A dataset's name in logs and metrics: its `name`, or the prefix's file name.
std::string dataset_name(const DatasetSpec& spec);

// Documents [first, second) of a prefix with `num_documents` documents that belong to
// `split` under valid_fraction: validation is the last llround(f * n) documents.
std::pair<int64_t, int64_t> split_document_range(int64_t num_documents, double valid_fraction, Split split);

}  // namespace pajama
