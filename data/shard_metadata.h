// The sidecar JSON written beside each shard pair by `pajama prepare`
// (`<prefix>.pajama.json`), so Megatron still reads the pair untouched while pajama
// can check that the shards were made with the configured tokenizer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pajama {

struct ShardMetadata {
  int64_t format_version = 1;
  std::string tokenizer_path;        // as given to prepare
  std::string tokenizer_sha256;      // hash of the tokenizer model file's bytes
  int64_t vocab_size = 0;
  int64_t bos_id = -1;               // -1 when not added
  int64_t eos_id = -1;               // -1 when not added
  bool add_bos = false;
  bool add_eos = false;
  std::vector<std::string> sources;  // input files, in order
  int64_t documents = 0;
  int64_t tokens = 0;
  int64_t skipped = 0;               // malformed records skipped
  std::string dtype;                 // "uint16" or "int32"
};

std::string shard_metadata_path(const std::string& prefix);
// nullopt when the sidecar does not exist (e.g. shards made by Megatron's tooling);
// DataError when it exists but cannot be parsed.
std::optional<ShardMetadata> read_shard_metadata(const std::string& prefix);
void write_shard_metadata(const std::string& prefix, const ShardMetadata& meta);

}  // namespace pajama
