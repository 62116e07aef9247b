// Configuration owned by data/: where training samples come from. trainer/ maps YAML
// keys onto it (docs/CONFIG.md); validate() and the sample-source factory name these
// fields as written here ("datasets[1].weight").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pajama {

struct DatasetSpec {
  std::string path;     // Megatron prefix (without .bin/.idx)
  double weight = 1.0;  // sampling proportion over training samples (Megatron semantics; normalised)
  std::string name;     // shown in logs and per-source validation (eval/<name>/loss); "" = the prefix's file name
};

struct DataConfig {
  std::string source = "mock";              // "mock" (seeded synthetic data) or "shards" (indexed datasets)
  std::vector<DatasetSpec> datasets;        // shards: the training blend
  std::vector<DatasetSpec> valid_datasets;  // shards: separate validation prefixes (else valid_fraction)
  double valid_fraction = 0.0;              // share of each dataset's documents held out for validation
  std::string tokenizer;                    // SentencePiece model the shards must have been made with ("" = no check)
  // ConfigError about the offending field (core/error.h ConfigField): source, an empty
  // datasets list for shards, a path or weight, valid_fraction, both validation kinds.
  void validate() const;
};

}  // namespace pajama
