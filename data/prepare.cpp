#include "data/prepare.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "data/indexed_dataset.h"
#include "data/progress.h"
#include "data/shard_metadata.h"
#include "data/tokenizer.h"

namespace pajama {

namespace fs = std::filesystem;

int64_t PrepareStats::skipped_malformed() const {
  int64_t n = 0;
  for (size_t i = 1; i < malformed.size(); ++i) n += malformed[i];
  return n;
}

namespace {

constexpr int kTooShort = kNumRecordErrors;  // status after the RecordError values

struct Batch {
  uint64_t seq = 0;
  int file = 0;
  CorpusFormat format = CorpusFormat::kJsonLines;
  std::vector<RawRecord> records;
};

struct DocResult {
  int status = 0;  // RecordError value, or kTooShort
  int64_t line = 0;
  int64_t num_tokens = 0;  // written tokens, BOS/EOS included
  int64_t text_bytes = 0;
};

struct BatchResult {
  int file = 0;
  std::vector<DocResult> docs;
  std::vector<int32_t> tokens;  // the documents' tokens back to back
};

// Removes a directory tree, best effort.
void remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// Hidden staging directory beside the output: "<dir>/.<name>.prepare-tmp.<pid>".
std::string staging_tag(const fs::path& prefix) { return "." + prefix.filename().string() + ".prepare-tmp."; }

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

// The shared state of one run's threads. The reader and the workers never throw out of
// their thread: the first exception is stored, `abort` is raised and everyone drains.
class Pipeline {
 public:
  Pipeline(const PrepareOptions& o, const std::vector<std::string>& files, const std::string& model_bytes,
           int num_workers)
      : o_(o), files_(files), max_inflight_(static_cast<size_t>(2 * num_workers + 2)) {
    for (int i = 0; i < num_workers; ++i) tokenizers_.push_back(Tokenizer::from_serialized(model_bytes, o.tokenizer_path));
    bos_ = tokenizers_[0].bos_id();
    eos_ = tokenizers_[0].eos_id();
    reader_ = std::thread([this] { guarded([this] { read_all(); }); });
    for (int i = 0; i < num_workers; ++i) workers_.emplace_back([this, i] { guarded([this, i] { work(i); }); });
  }

  ~Pipeline() {
    {
      std::lock_guard lock(mu_);
      abort_ = true;
    }
    cv_.notify_all();
    reader_.join();
    for (auto& t : workers_) t.join();
  }

  // The next batch result in input order; nullopt when all input is done. Rethrows a
  // reader/worker failure; throws PrepareInterrupted when options.stop is set.
  std::optional<BatchResult> next() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (error_) std::rethrow_exception(error_);
      if (o_.stop != nullptr && o_.stop->load()) throw PrepareInterrupted("prepare interrupted; no output was written");
      auto it = results_.find(next_seq_);
      if (it != results_.end()) {
        BatchResult r = std::move(it->second);
        results_.erase(it);
        ++next_seq_;
        --inflight_;
        lock.unlock();
        cv_.notify_all();
        return r;
      }
      if (reader_done_ && next_seq_ == batches_made_) return std::nullopt;
      // Timed wait: a signal handler can only set the stop flag, not notify.
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
  }

  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }

 private:
  template <typename F>
  void guarded(F&& f) {
    try {
      f();
    } catch (...) {
      std::lock_guard lock(mu_);
      if (!error_) error_ = std::current_exception();
      abort_ = true;
      cv_.notify_all();
    }
  }

  bool stopping() const { return o_.stop != nullptr && o_.stop->load(); }

  void read_all() {
    uint64_t done_bytes = 0;
    for (size_t f = 0; f < files_.size(); ++f) {
      CorpusReader reader(files_[f]);
      Batch batch;
      size_t bytes = 0;
      RawRecord rec;
      auto flush = [&] {
        if (batch.records.empty()) return true;
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return abort_ || inflight_ < max_inflight_; });
        if (abort_) return false;
        batch.seq = batches_made_++;
        ++inflight_;
        work_.push_back(std::move(batch));
        lock.unlock();
        cv_.notify_all();
        batch = Batch{};
        bytes = 0;
        return true;
      };
      batch.file = static_cast<int>(f);
      batch.format = reader.format();
      while (reader.next(rec)) {
        bytes += rec.data.size();
        batch.records.push_back(std::move(rec));
        rec = RawRecord{};
        if (bytes >= o_.batch_bytes) {
          bytes_read_.store(done_bytes + reader.file_bytes_read(), std::memory_order_relaxed);
          if (stopping() || !flush()) return;
          batch.file = static_cast<int>(f);
          batch.format = reader.format();
        }
      }
      done_bytes += fs::file_size(files_[f]);
      bytes_read_.store(done_bytes, std::memory_order_relaxed);
      if (stopping() || !flush()) return;
    }
    std::lock_guard lock(mu_);
    reader_done_ = true;
    cv_.notify_all();
  }

  void work(int index) {
    const Tokenizer& tok = tokenizers_[static_cast<size_t>(index)];
    std::string text;
    for (;;) {
      Batch batch;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return abort_ || !work_.empty(); });
        if (abort_) return;
        batch = std::move(work_.front());
        work_.pop_front();
      }
      BatchResult r;
      r.file = batch.file;
      r.docs.reserve(batch.records.size());
      for (const auto& rec : batch.records) {
        DocResult d;
        d.line = rec.line;
        const RecordError err = extract_text(batch.format, rec.data, o_.text_key, text);
        if (err != RecordError::kNone) {
          d.status = static_cast<int>(err);
          r.docs.push_back(d);
          continue;
        }
        const size_t start = r.tokens.size();
        if (o_.add_bos) r.tokens.push_back(bos_);
        const size_t before = r.tokens.size();
        tok.encode(text, r.tokens);
        const auto text_tokens = static_cast<int64_t>(r.tokens.size() - before);
        if (text_tokens < o_.min_doc_tokens) {
          r.tokens.resize(start);
          d.status = kTooShort;
          r.docs.push_back(d);
          continue;
        }
        if (o_.add_eos) r.tokens.push_back(eos_);
        d.num_tokens = static_cast<int64_t>(r.tokens.size() - start);
        d.text_bytes = static_cast<int64_t>(text.size());
        r.docs.push_back(d);
      }
      {
        std::lock_guard lock(mu_);
        results_.emplace(batch.seq, std::move(r));
      }
      cv_.notify_all();
    }
  }

  const PrepareOptions& o_;
  const std::vector<std::string>& files_;
  const size_t max_inflight_;
  std::vector<Tokenizer> tokenizers_;
  int32_t bos_ = -1, eos_ = -1;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> work_;
  std::map<uint64_t, BatchResult> results_;
  uint64_t batches_made_ = 0;
  uint64_t next_seq_ = 0;
  size_t inflight_ = 0;
  bool reader_done_ = false;
  bool abort_ = false;
  std::exception_ptr error_;
  std::atomic<uint64_t> bytes_read_{0};

  std::thread reader_;
  std::vector<std::thread> workers_;
};

// Writes documents into shards under the staging directory and keeps each shard's
// sidecar counts.
class ShardWriter {
 public:
  ShardWriter(const PrepareOptions& o, const fs::path& staging, ShardMetadata base, TokenDType dtype)
      : o_(o), staging_(staging), base_(std::move(base)), dtype_(dtype) {}

  void note_source(const std::string& file) {
    if (sources_.empty() || sources_.back() != file) sources_.push_back(file);
  }
  void note_skipped() { ++skipped_; }

  void add(std::span<const int32_t> tokens) {
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

  // Finalizes the open shard; returns the file names staged (relative to staging).
  std::vector<std::string> finish() {
    if (builder_) close_shard();
    return names_;
  }

  static std::string shard_index(size_t i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%05zu", i);
    return buf;
  }

 private:
  void close_shard() {
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

  const PrepareOptions& o_;
  fs::path staging_;
  ShardMetadata base_;
  TokenDType dtype_;
  std::unique_ptr<IndexedDatasetBuilder> builder_;
  std::string current_name_;
  std::vector<std::string> names_;
  std::vector<std::string> sources_;
  int64_t skipped_ = 0;
};

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

// Removes the staging directory unless commit() ran.
struct StagingDir {
  fs::path path;
  bool committed = false;
  ~StagingDir() {
    if (!committed) remove_tree(path);
  }
};

void validate(const PrepareOptions& o) {
  PAJAMA_CHECK_AS(ConfigError, !o.inputs.empty(), "prepare: no --input given");
  PAJAMA_CHECK_AS(ConfigError, !o.tokenizer_path.empty(), "prepare: --tokenizer is required");
  PAJAMA_CHECK_AS(ConfigError, !o.output_prefix.empty(), "prepare: --output is required");
  PAJAMA_CHECK_AS(ConfigError, !fs::path(o.output_prefix).filename().empty(), "prepare: --output ", o.output_prefix,
                  " must name a file prefix (e.g. data/corpus), not a directory");
  PAJAMA_CHECK_AS(ConfigError, !fs::is_directory(o.output_prefix), "prepare: --output ", o.output_prefix,
                  " is a directory; give a prefix inside it, e.g. ", (fs::path(o.output_prefix) / "corpus").string());
  PAJAMA_CHECK_AS(ConfigError, o.num_workers >= 0 && o.num_workers <= 1024, "prepare: --workers ", o.num_workers,
                  " out of range");
  PAJAMA_CHECK_AS(ConfigError, o.min_doc_tokens >= 0, "prepare: --min-doc-tokens must be >= 0");
  PAJAMA_CHECK_AS(ConfigError, o.shard_size >= 0, "prepare: --shard-size must be >= 0 (0 = one output)");
  PAJAMA_CHECK_AS(ConfigError, o.batch_bytes > 0, "prepare: batch size must be positive");
}

}  // namespace

PrepareStats run_prepare(const PrepareOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(o);
  const auto files = expand_corpus_inputs(o.inputs);
  const std::string model_bytes = read_file(o.tokenizer_path);
  const Tokenizer probe = Tokenizer::from_serialized(model_bytes, o.tokenizer_path);
  PAJAMA_CHECK_AS(ConfigError, !o.add_bos || probe.bos_id() >= 0, o.tokenizer_path,
                  ": the tokenizer has no BOS token; run with --no-bos");
  PAJAMA_CHECK_AS(ConfigError, !o.add_eos || probe.eos_id() >= 0, o.tokenizer_path,
                  ": the tokenizer has no EOS token; run with --no-eos");

  PrepareStats stats;
  stats.files = static_cast<int64_t>(files.size());
  for (const auto& f : files) stats.input_bytes += fs::file_size(f);

  ShardMetadata base;
  base.tokenizer_path = o.tokenizer_path;
  base.tokenizer_sha256 = sha256_hex(model_bytes);
  base.vocab_size = probe.vocab_size();
  base.add_bos = o.add_bos;
  base.add_eos = o.add_eos;
  base.bos_id = o.add_bos ? probe.bos_id() : -1;
  base.eos_id = o.add_eos ? probe.eos_id() : -1;
  const TokenDType dtype = optimal_token_dtype(probe.vocab_size());
  base.dtype = dtype == TokenDType::kUInt16 ? "uint16" : "int32";

  const fs::path prefix(o.output_prefix);
  const fs::path out_dir = prefix.has_parent_path() ? prefix.parent_path() : fs::path(".");
  fs::create_directories(out_dir);
  const std::string tag = staging_tag(prefix);
  remove_stale_staging(out_dir, tag);
  StagingDir staging{out_dir / (tag + std::to_string(::getpid()))};
  remove_tree(staging.path);
  fs::create_directory(staging.path);

  const int workers = o.num_workers > 0 ? o.num_workers : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ShardWriter writer(o, staging.path, base, dtype);
  ProgressMeter meter("prepare", stats.input_bytes, o.progress);
  int reported = 0;
  {
    Pipeline pipeline(o, files, model_bytes, workers);
    while (auto r = pipeline.next()) {
      const std::string& file = files[static_cast<size_t>(r->file)];
      const int32_t* tokens = r->tokens.data();
      for (const DocResult& d : r->docs) {
        writer.note_source(file);
        if (d.status == 0) {
          writer.add(std::span<const int32_t>(tokens, static_cast<size_t>(d.num_tokens)));
          tokens += d.num_tokens;
          ++stats.documents;
          stats.tokens += d.num_tokens;
          stats.text_tokens += d.num_tokens - (o.add_bos ? 1 : 0) - (o.add_eos ? 1 : 0);
          stats.text_bytes += d.text_bytes;
          continue;
        }
        if (d.status == kTooShort) {
          ++stats.too_short;
          continue;
        }
        writer.note_skipped();
        const char* reason = record_error_name(static_cast<RecordError>(d.status));
        PAJAMA_CHECK_AS(DataError, !o.strict, file, ":", d.line, ": malformed record (", reason,
                        "); --strict stops at the first one (without it, malformed records are skipped and counted)");
        ++stats.malformed[static_cast<size_t>(d.status)];
        if (reported++ < o.max_reported) log_warn("prepare: ", file, ":", d.line, ": skipped (", reason, ")");
      }
      meter.update(stats.documents, stats.tokens, pipeline.bytes_read());
    }
  }
  meter.finish();
  PAJAMA_CHECK_AS(DataError, stats.documents > 0, "prepare: no documents to write (", stats.skipped_malformed(),
                  " malformed, ", stats.too_short, " shorter than --min-doc-tokens) in ", files.size(),
                  " input file(s); check --text-key and the inputs");
  const auto names = writer.finish();
  PAJAMA_CHECK_AS(PrepareInterrupted, o.stop == nullptr || !o.stop->load(), "prepare interrupted; no output was written");

  // Commit: move every staged file to its final name, .idx last per shard so a reader
  // that finds an index finds its data. Shards of an earlier, larger run with the same
  // prefix would otherwise be picked up alongside the new ones: remove them.
  for (const auto& name : names) {
    for (const char* ext : {".bin", ".pajama.json", ".idx"}) {
      fs::rename(staging.path / (name + ext), out_dir / (name + ext));
    }
    stats.outputs.push_back((out_dir / name).string());
    if (!prefix.has_parent_path()) stats.outputs.back() = name;
  }
  staging.committed = true;
  remove_tree(staging.path);
  if (o.shard_size > 0) remove_stale_shards(out_dir, prefix.filename().string(), names.size());
  fsync_directory(out_dir);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

std::string format_prepare_summary(const PrepareStats& s) {
  std::string out = str("prepare: ", s.documents, " documents, ", s.tokens, " tokens (", s.text_tokens,
                        " text tokens) from ", s.files, " file(s), ", s.input_bytes, " bytes, in ");
  char buf[128];
  std::snprintf(buf, sizeof buf, "%.1fs (%.1f MB/s, %s tokens/s)", s.seconds,
                s.seconds > 0 ? static_cast<double>(s.input_bytes) / 1e6 / s.seconds : 0.0,
                human_count(s.seconds > 0 ? static_cast<double>(s.tokens) / s.seconds : 0.0).c_str());
  out += buf;
  if (s.text_tokens > 0) {
    std::snprintf(buf, sizeof buf, "\nprepare: %.2f bytes per token (UTF-8 text bytes / text tokens)",
                  static_cast<double>(s.text_bytes) / static_cast<double>(s.text_tokens));
    out += buf;
  }
  out += str("\nprepare: skipped ", s.skipped_malformed() + s.too_short, " records");
  bool first = true;
  for (size_t i = 1; i < s.malformed.size(); ++i) {
    out += str(first ? " (" : ", ", record_error_name(static_cast<RecordError>(i)), " ", s.malformed[i]);
    first = false;
  }
  out += str(", too_short ", s.too_short, ")");
  for (const auto& p : s.outputs) out += str("\nprepare: wrote ", p, ".bin/.idx/.pajama.json");
  return out;
}

}  // namespace pajama
