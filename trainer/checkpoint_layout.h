// What a checkpoint directory holds and how it is checked (docs/FORMATS-level detail in
// docs/ARCHITECTURE.md "Checkpoints"). One place for the file names, the manifest and
// its integrity entries, shared by the checkpointer and `pajama convert`.
//
// <run dir>/checkpoints/step_00000120/
//   config.json            the model's shape as a Hugging Face LLaMA config (format 2+),
//                          independent of pajama's YAML schema; torch_dtype = training dtype
//   config.yaml            resolved config of the run that wrote it (read leniently)
//   model.safetensors      model weights, Hugging Face names (one copy, rank 0)
//   optim_rank00003.safetensors   rank 3's optimizer partition: "<name>/<kind>" holds
//                          elements [begin, end) of the flattened parameter
//   rank00003.json         that rank's slices (name, global shape, begin, end) and its
//                          file's integrity entry
//   trainer_state.json     step, consumed samples, tokens seen, optimizer step count
//   manifest.json          written last: format version, world size, every file's size
//                          and hashes
// Format 1 (pajama <= c152e2d): one sha256 per file, no config.json.
// Format 2: XXH3-128 of each 256 MiB chunk of each file, so ranks verify byte ranges
// of a large file in parallel.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/hash.h"
#include "model/llama_config.h"

namespace pajama {

constexpr int64_t kCheckpointFormatVersion = 2;
constexpr int64_t kCheckpointChunkBytes = int64_t{256} << 20;

std::string checkpoint_dir_name(int64_t step);  // "step_00000120"
std::optional<int64_t> parse_checkpoint_dir_name(const std::string& name);
std::string optim_file_name(int rank);           // "optim_rank00003.safetensors"
std::string rank_file_name(int rank);            // "rank00003.json"

// A file's size and hashes: one digest per chunk_bytes of the file (the last chunk may
// be shorter; an empty file has one digest of no bytes).
struct FileEntry {
  int64_t bytes = 0;
  HashAlgorithm algorithm = HashAlgorithm::kXxh3_128;
  int64_t chunk_bytes = 0;
  std::vector<std::string> digests;
  nlohmann::json to_json() const;
  // Reads a format-1 {bytes, sha256} or format-2 {bytes, chunk_bytes, xxh3_128: [...]} entry.
  static FileEntry from_json(const nlohmann::json& j);
};

// Hashes bytes as they are written, cutting a digest every chunk_bytes.
class ChunkedHasher {
 public:
  explicit ChunkedHasher(int64_t chunk_bytes = kCheckpointChunkBytes);
  void update(const void* data, size_t size);
  FileEntry finish();  // the entry of everything seen

 private:
  int64_t chunk_bytes_;
  int64_t total_ = 0;
  int64_t in_chunk_ = 0;
  Hasher current_;
  std::vector<std::string> digests_;
};
FileEntry entry_of_bytes(std::string_view bytes);

struct Manifest {
  int64_t format_version = 0;
  int64_t step = 0;
  int64_t world_size = 0;
  std::map<std::string, FileEntry> files;
  nlohmann::json ranks;  // [{file, slices: [{name, shape, begin, end}]}], by writing rank
  nlohmann::json to_json() const;
};
// Reads dir/manifest.json. Returns "" and fills `out`, or what is wrong ("no
// manifest.json (the save did not finish)", "format_version 3 is not supported ...").
std::string read_manifest(const std::filesystem::path& dir, Manifest& out);

// One hash to check: bytes [offset, offset + length) of `file`.
struct VerifyTask {
  std::string file;
  int64_t offset = 0;
  int64_t length = 0;
  size_t chunk = 0;  // index into the entry's digests
};
std::vector<VerifyTask> verify_tasks(const Manifest& m);
// "" when the file exists with the manifest's size and the range has its digest.
std::string verify_task(const std::filesystem::path& dir, const Manifest& m, const VerifyTask& t);
// Reads the manifest into `m` and checks everything in one process (`pajama
// convert`). "" when complete and intact.
std::string verify_checkpoint(const std::filesystem::path& dir, Manifest& m);

struct CheckpointModel {
  LlamaConfig shape;
  std::string dtype;                // "float32", "bfloat16": the training dtype of the weights
  std::string tokenizer;            // data.tokenizer of the run that wrote it ("" = none)
  std::vector<std::string> shard_prefixes;  // data.datasets paths (their sidecars hold the BOS/EOS policy)
  std::vector<std::string> notes;   // what the lenient read of config.yaml skipped
};
// The model shape from config.json (format 2) or, for format 1, from config.yaml read
// leniently; the tokenizer path from config.yaml in both.
CheckpointModel read_checkpoint_model(const std::filesystem::path& dir, const Manifest& m);

// Resolves a run directory or a checkpoints/ directory to its newest committed checkpoint.
std::filesystem::path resolve_checkpoint_dir(const std::filesystem::path& p);

}  // namespace pajama
