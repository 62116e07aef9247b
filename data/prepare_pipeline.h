// The threads of `pajama prepare` (data/prepare.h describes the whole run): one reader
// thread cuts the inputs into batches of raw records, N worker threads parse and tokenize
// them, and next() hands the results back in input order, so the output is the same for
// any worker count. In-flight batches are capped, so memory stays bounded. The reader and
// the workers never throw out of their thread: the first exception is stored, the others
// drain, and next() rethrows it. Internal to data/prepare.cpp.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/corpus_reader.h"
#include "data/prepare.h"
#include "data/tokenizer.h"

namespace pajama::prepare_detail {

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

class Pipeline {
 public:
  Pipeline(const PrepareOptions& o, const std::vector<std::string>& files, const std::string& model_bytes,
           int num_workers);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // The next batch result in input order; nullopt when all input is done. Rethrows a
  // reader/worker failure; throws PrepareInterrupted when options.stop is set.
  std::optional<BatchResult> next();

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
  void read_all();
  void work(int index);

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

}  // namespace pajama::prepare_detail
