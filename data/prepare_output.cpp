#include "data/prepare_output.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"

namespace pajama::prepare_detail {
namespace {

namespace fs = std::filesystem;

// Removes a directory tree, best effort.
void remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// "<dir>/.<name>.prepare-tmp.<pid>" without the pid.
std::string staging_tag(const fs::path& prefix) {
  // Appended piece by piece: GCC 12 -O3 warns (-Wrestrict, a false positive) on "." + s + "...".
  std::string tag = ".";
  tag += prefix.filename().string();
  tag += ".prepare-tmp.";
  return tag;
}

void remove_stale_staging(const fs::path& dir, const std::string& tag) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(tag, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + tag.size(), nullptr, 10);
    if (pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM)) continue;  // still running
    stale.push_back((dir / name).string());
  }
  ::closedir(d);
  for (const auto& p : stale) {
    remove_tree(p);
    log_info("prepare: removed ", p, " left by an interrupted run");
  }
}

// Removes "<name>_NNNNN.{bin,idx,pajama.json}" with NNNNN >= num_shards: shards of an
// earlier run with more shards, which a glob over the prefix would otherwise pick up.
void remove_stale_shards(const fs::path& dir, const std::string& name, size_t num_shards) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const std::string f = e->d_name;
    if (f.size() < name.size() + 6 || f.compare(0, name.size() + 1, name + "_") != 0) continue;
    const std::string digits = f.substr(name.size() + 1, 5);
    const std::string ext = f.substr(name.size() + 6);
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    if (ext != ".bin" && ext != ".idx" && ext != ".pajama.json") continue;
    if (std::stoul(digits) >= num_shards) stale.push_back(f);
  }
  ::closedir(d);
  std::sort(stale.begin(), stale.end());
  for (const auto& f : stale) {
    ::unlink((dir / f).c_str());
    log_info("prepare: removed ", (dir / f).string(), ", a shard of an earlier run with the same prefix");
  }
}

std::string shard_index(size_t i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05zu", i);
  return buf;
}

}  // namespace

StagingDir::StagingDir(const fs::path& prefix)
    : prefix_(prefix), out_dir_(prefix.has_parent_path() ? prefix.parent_path() : fs::path(".")) {
  fs::create_directories(out_dir_);
  const std::string tag = staging_tag(prefix_);
  remove_stale_staging(out_dir_, tag);
  path_ = out_dir_ / (tag + std::to_string(::getpid()));
  remove_tree(path_);
  fs::create_directory(path_);
}

StagingDir::~StagingDir() {
  if (!committed_) remove_tree(path_);
}

std::vector<std::string> StagingDir::commit(const std::vector<std::string>& names, bool sharded) {
  std::vector<std::string> outputs;
  for (const auto& name : names) {
    for (const char* ext : {".bin", ".pajama.json", ".idx"}) fs::rename(path_ / (name + ext), out_dir_ / (name + ext));
    outputs.push_back(prefix_.has_parent_path() ? (out_dir_ / name).string() : name);
  }
  committed_ = true;
  remove_tree(path_);
  if (sharded) remove_stale_shards(out_dir_, prefix_.filename().string(), names.size());
  fsync_directory(out_dir_);
  return outputs;
}

void ShardWriter::add(std::span<const int32_t> tokens) {
  const auto n = static_cast<int64_t>(tokens.size());
  if (builder_ && o_.shard_size > 0 && builder_->num_documents() > 0 && builder_->num_tokens() + n > o_.shard_size) {
    const std::string keep = sources_.back();
    close_shard();
    sources_.push_back(keep);
  }
  if (!builder_) {
    const std::string name = fs::path(o_.output_prefix).filename().string();
    current_name_ = o_.shard_size > 0 ? str(name, "_", shard_index(names_.size())) : name;
    builder_ = std::make_unique<IndexedDatasetBuilder>((staging_ / current_name_).string(), dtype_);
  }
  builder_->add_document(tokens);
}

std::vector<std::string> ShardWriter::finish() {
  if (builder_) close_shard();
  return names_;
}

void ShardWriter::close_shard() {
  builder_->finalize();
  ShardMetadata m = base_;
  m.sources = sources_;
  m.documents = builder_->num_documents();
  m.tokens = builder_->num_tokens();
  m.skipped = skipped_;
  write_shard_metadata((staging_ / current_name_).string(), m);
  names_.push_back(current_name_);
  builder_.reset();
  sources_.clear();
  skipped_ = 0;
}

}  // namespace pajama::prepare_detail
