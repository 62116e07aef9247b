#include "data/sample_source_factory.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "data/blended_dataset.h"
#include "data/indexed_dataset.h"
#include "data/mock_source.h"
#include "data/packed_dataset.h"
#include "data/shard_metadata.h"
#include "data/shuffle.h"

namespace pajama {
namespace {

constexpr uint64_t kValidSalt = 0x76616c6964ull;  // "valid"

// Opens one prefix with the checks that need only the files and the config.
std::shared_ptr<const IndexedDataset> open_prefix(const std::string& prefix, const std::string& key,
                                                  const std::string& tokenizer, const std::string& tokenizer_sha,
                                                  int64_t vocab_size) {
  for (const std::string& path : {idx_path(prefix), bin_path(prefix)}) {
    if (std::filesystem::exists(path)) continue;
    std::string hint = "give the prefix without .bin/.idx, as written by pajama prepare";
    const std::filesystem::path p(prefix);
    if (p.extension() == ".bin" || p.extension() == ".idx") {
      hint = str("drop the extension: ", p.parent_path() / p.stem());
    }
    PAJAMA_FAIL_AS(DataError, key, ".path: shards ", prefix, ": cannot find ", path, "; ", hint);
  }
  const std::optional<ShardMetadata> meta = read_shard_metadata(prefix);
  if (meta.has_value()) {
    if (!tokenizer.empty() && meta->tokenizer_sha256 != tokenizer_sha) {
      PAJAMA_FAIL_AS(DataError, key, ": shards ", prefix, " were made with tokenizer ", meta->tokenizer_path,
                     " (sha256 ", meta->tokenizer_sha256, "), but tokenizer is ", tokenizer, " (sha256 ",
                     tokenizer_sha, "); re-run pajama prepare or fix tokenizer");
    }
    PAJAMA_CHECK_AS(DataError, meta->vocab_size <= vocab_size, key, ": shards ", prefix,
                    " were made with a tokenizer of vocab_size ", meta->vocab_size, " (", meta->tokenizer_path,
                    "), larger than the model's vocab_size ", vocab_size,
                    "; give the model a vocab_size >= ", meta->vocab_size, " or re-run pajama prepare");
  } else if (!tokenizer.empty()) {
    log_warn(key, ": shards ", prefix, " have no sidecar ", shard_metadata_path(prefix),
             " (not made by pajama prepare); cannot check them against tokenizer");
  }
  try {
    return std::make_shared<const IndexedDataset>(prefix);
  } catch (...) {
    rethrow_with_context(key, ".path");
  }
}

}  // namespace

std::pair<int64_t, int64_t> split_document_range(int64_t num_documents, double valid_fraction, Split split) {
  const auto num_valid = static_cast<int64_t>(std::llround(valid_fraction * static_cast<double>(num_documents)));
  const int64_t boundary = num_documents - std::min(num_valid, num_documents);
  return split == Split::kTrain ? std::pair{int64_t{0}, boundary} : std::pair{boundary, num_documents};
}

namespace {

// The split's sources one per configured dataset (mock: one), with their names and
// weights; an empty list when the split has no data.
std::vector<NamedSampleSource> make_parts(const DataConfig& cfg, Split split, int64_t seq_len, int64_t vocab_size,
                                          uint64_t seed) {
  cfg.validate();
  PAJAMA_CHECK_AS(ConfigError, seq_len >= 1, "seq_len must be positive, got ", seq_len);
  PAJAMA_CHECK_AS(ConfigError, vocab_size >= 2, "vocab_size must be at least 2, got ", vocab_size);
  const bool train = split == Split::kTrain;
  if (cfg.source == "mock") {
    return {NamedSampleSource{"mock", 1.0,
                              std::make_shared<const MockSource>(vocab_size, seq_len,
                                                                 train ? seed : mix_seed({seed, kValidSalt}))}};
  }
  const bool separate_valid = !cfg.valid_datasets.empty();
  if (!train && !separate_valid && cfg.valid_fraction == 0.0) return {};

  std::string tokenizer_sha;
  if (!cfg.tokenizer.empty()) {
    PAJAMA_CHECK_AS(ConfigError, std::filesystem::is_regular_file(cfg.tokenizer), "tokenizer ", cfg.tokenizer,
                    " does not exist");
    tokenizer_sha = sha256_file_hex(cfg.tokenizer);
  }

  const bool use_valid_list = !train && separate_valid;
  const std::vector<DatasetSpec>& specs = use_valid_list ? cfg.valid_datasets : cfg.datasets;
  const std::string list_key = use_valid_list ? "valid_datasets" : "datasets";
  const char* split_name = train ? "train" : "valid";
  std::vector<NamedSampleSource> parts;
  std::map<std::string, std::string> names;  // name -> the key that used it first
  for (size_t i = 0; i < specs.size(); ++i) {
    const DatasetSpec& spec = specs[i];
    const std::string key = str(list_key, "[", i, "]");
    const std::string name = dataset_name(spec);
    const auto [previous, inserted] = names.emplace(name, key);
    PAJAMA_CHECK_AS(ConfigError, train || inserted, key, " and ", previous->second, " are both named '", name,
                    "'; give them distinct `name`s (validation is reported per name)");
    auto dataset = open_prefix(spec.path, key, cfg.tokenizer, tokenizer_sha, vocab_size);
    const auto [begin, end] = use_valid_list ? std::pair{int64_t{0}, dataset->num_documents()}
                                             : split_document_range(dataset->num_documents(), cfg.valid_fraction,
                                                                    split);
    // Streams keep the datasets of one run (and train vs valid) on independent orders.
    const uint64_t stream = mix_seed({train ? uint64_t{0} : kValidSalt, static_cast<uint64_t>(i)});
    std::shared_ptr<const PackedDataset> packed;
    try {
      packed = std::make_shared<const PackedDataset>(dataset, begin, end, seq_len, seed, stream, vocab_size);
    } catch (const DataError& e) {
      if (!train && !use_valid_list) {
        // valid_fraction leaves this prefix too little to validate on; the others may still have enough.
        log_warn("valid_fraction ", cfg.valid_fraction, ": the validation part of ", spec.path,
                 " is too small for one sample; it is left out of validation (", e.what(), ")");
        continue;
      }
      rethrow_with_context(key, " (", split_name, " split)");
    }
    log_info("data ", split_name, ": ", name, " = ", spec.path, " documents [", begin, ", ", end, ") ",
             packed->tokens_per_epoch(), " tokens, ", packed->samples_per_epoch(), " samples/epoch, weight ",
             spec.weight);
    parts.push_back(NamedSampleSource{name, spec.weight, std::move(packed)});
  }
  if (parts.empty() && !train) {
    log_warn("data: no validation samples (every valid_fraction part is too small); evaluation is skipped");
  }
  return parts;
}

}  // namespace

std::string dataset_name(const DatasetSpec& spec) {
  return spec.name.empty() ? std::filesystem::path(spec.path).filename().string() : spec.name;
}

std::shared_ptr<const SampleSource> make_sample_source(const DataConfig& cfg, Split split, int64_t seq_len,
                                                       int64_t vocab_size, uint64_t seed, int64_t num_samples_hint) {
  std::vector<NamedSampleSource> parts = make_parts(cfg, split, seq_len, vocab_size, seed);
  if (parts.empty()) return nullptr;
  if (parts.size() == 1) return parts.front().source;
  std::vector<std::shared_ptr<const SampleSource>> sources;
  std::vector<double> weights;
  for (auto& p : parts) {
    sources.push_back(std::move(p.source));
    weights.push_back(p.weight);
  }
  return std::make_shared<const BlendedDataset>(std::move(sources), std::move(weights), num_samples_hint);
}

std::vector<NamedSampleSource> make_validation_sources(const DataConfig& cfg, int64_t seq_len, int64_t vocab_size,
                                                       uint64_t seed) {
  return make_parts(cfg, Split::kValid, seq_len, vocab_size, seed);
}

}  // namespace pajama
