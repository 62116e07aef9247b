// Where `pajama prepare`'s output goes (data/prepare.h describes the whole run): shards
// are written into a hidden staging directory beside the output prefix
// ("<dir>/.<name>.prepare-tmp.<pid>") and renamed into place only after everything
// succeeded, so a failure or an interruption leaves nothing under the final names.
// Internal to data/prepare.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/indexed_dataset.h"
#include "data/prepare.h"
#include "data/shard_metadata.h"

namespace pajama::prepare_detail {

// The staging directory of this process beside `prefix`, created empty after removing
// those of processes that no longer exist; removed at destruction unless committed.
class StagingDir {
 public:
  explicit StagingDir(const std::filesystem::path& prefix);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& out_dir() const { return out_dir_; }

  // Moves the staged shards `names` to their final names beside the prefix (.idx last per
  // shard, so a reader that finds an index finds its data), removes shards of an earlier,
  // larger run with the same prefix (sharded output), fsyncs the directory. Returns the
  // prefixes written.
  std::vector<std::string> commit(const std::vector<std::string>& names, bool sharded);

 private:
  std::filesystem::path prefix_, out_dir_, path_;
  bool committed_ = false;
};

// Writes documents into shards under the staging directory and keeps each shard's
// sidecar counts.
class ShardWriter {
 public:
  ShardWriter(const PrepareOptions& o, const std::filesystem::path& staging, ShardMetadata base, TokenDType dtype)
      : o_(o), staging_(staging), base_(std::move(base)), dtype_(dtype) {}

  void note_source(const std::string& file) {
    if (sources_.empty() || sources_.back() != file) sources_.push_back(file);
  }
  void note_skipped() { ++skipped_; }
  void add(std::span<const int32_t> tokens);
  // Finalizes the open shard; returns the file names staged (relative to staging).
  std::vector<std::string> finish();

 private:
  void close_shard();

  const PrepareOptions& o_;
  std::filesystem::path staging_;
  ShardMetadata base_;
  TokenDType dtype_;
  std::unique_ptr<IndexedDatasetBuilder> builder_;
  std::string current_name_;
  std::vector<std::string> names_;
  std::vector<std::string> sources_;
  int64_t skipped_ = 0;
};

}  // namespace pajama::prepare_detail
