#include "data/prepare_pipeline.h"

#include <chrono>
#include <filesystem>

namespace pajama::prepare_detail {

namespace fs = std::filesystem;

Pipeline::Pipeline(const PrepareOptions& o, const std::vector<std::string>& files, const std::string& model_bytes,
                   int num_workers)
    : o_(o), files_(files), max_inflight_(static_cast<size_t>(2 * num_workers + 2)) {
  for (int i = 0; i < num_workers; ++i) tokenizers_.push_back(Tokenizer::from_serialized(model_bytes, o.tokenizer_path));
  bos_ = tokenizers_[0].bos_id();
  eos_ = tokenizers_[0].eos_id();
  reader_ = std::thread([this] { guarded([this] { read_all(); }); });
  for (int i = 0; i < num_workers; ++i) workers_.emplace_back([this, i] { guarded([this, i] { work(i); }); });
}

Pipeline::~Pipeline() {
  {
    std::lock_guard lock(mu_);
    abort_ = true;
  }
  cv_.notify_all();
  reader_.join();
  for (auto& t : workers_) t.join();
}

std::optional<BatchResult> Pipeline::next() {
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

void Pipeline::read_all() {
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

void Pipeline::work(int index) {
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

}  // namespace pajama::prepare_detail
