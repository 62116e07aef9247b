// PackedDataset: one indexed dataset's documents packed into samples of seq_len+1
// tokens, Megatron GPTDataset style, but computed one epoch at a time so that any
// global sample index has a closed-form answer (resume = arithmetic).
//
// Epoch e (global index k: e = k / samples_per_epoch, j = k % samples_per_epoch):
//   1. the split's documents [doc_begin, doc_end) are put in the order
//      doc_begin + P_doc(e)(0), doc_begin + P_doc(e)(1), ...  and concatenated
//      (a document's sequences stay together, in file order);
//   2. the concatenation (T tokens) is cut into samples_per_epoch = (T - 1) / seq_len
//      samples; stream sample s is tokens [s*seq_len, s*seq_len + seq_len + 1), so
//      consecutive samples overlap by one token; the last (T-1) % seq_len tokens of
//      the epoch are not used (a different tail each epoch, as the order changes);
//   3. global index k reads stream sample P_sample(e)(j).
// P_doc(e) and P_sample(e) are FeistelPermutations keyed by
// mix_seed({seed, stream, e, 0}) and mix_seed({seed, stream, e, 1}); `stream`
// tells datasets of one run apart (the factory passes the dataset's position).
//
// Memory: 4 bytes per document of the split (token counts), and per epoch the start
// (document position, offset) of each stream sample, 8 bytes per sample, built in one
// pass over the documents; up to kCachedEpochs epochs are cached. get() is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "data/indexed_dataset.h"
#include "data/sample_source.h"

namespace pajama {

class PackedDataset : public SampleSource {
 public:
  static constexpr size_t kCachedEpochs = 3;

  // Samples from documents [doc_begin, doc_end) of `dataset`. vocab_limit > 0 makes
  // get() throw DataError on a token id outside [0, vocab_limit). Throws DataError
  // naming the prefix when the documents hold fewer than seq_len+1 tokens.
  PackedDataset(std::shared_ptr<const IndexedDataset> dataset, int64_t doc_begin, int64_t doc_end,
                int64_t seq_len, uint64_t seed, uint64_t stream = 0, int64_t vocab_limit = 0);

  int64_t seq_len() const override { return seq_len_; }
  int64_t samples_per_epoch() const override { return samples_per_epoch_; }
  void get(int64_t index, int32_t* out) const override;

  const std::string& prefix() const { return dataset_->prefix(); }
  int64_t doc_begin() const { return doc_begin_; }
  int64_t doc_end() const { return doc_end_; }
  int64_t num_documents() const { return doc_end_ - doc_begin_; }
  int64_t tokens_per_epoch() const { return tokens_per_epoch_; }
  // Tokens of document `doc` (an id in the indexed dataset).
  int64_t document_length(int64_t doc) const;

  // Document ids in the order epoch `epoch` concatenates them (for tests and tools).
  std::vector<int64_t> document_order(int64_t epoch) const;
  // The stream sample (position s of step 2 above) that global index `index` reads.
  int64_t stream_sample(int64_t index) const;

 private:
  struct EpochIndex;
  std::shared_ptr<const EpochIndex> epoch_index(int64_t epoch) const;
  std::shared_ptr<const EpochIndex> build_epoch(int64_t epoch) const;
  // Copies tokens [offset, offset+count) of document `doc` into out.
  void read_document(int64_t doc, int64_t offset, int64_t count, int32_t* out) const;
  void check_vocab(int64_t index, const int32_t* out) const;

  std::shared_ptr<const IndexedDataset> dataset_;
  int64_t doc_begin_;
  int64_t doc_end_;
  int64_t seq_len_;
  uint64_t seed_;
  uint64_t stream_;
  int64_t vocab_limit_;
  int64_t tokens_per_epoch_ = 0;
  int64_t samples_per_epoch_ = 0;
  std::vector<uint32_t> doc_lengths_;  // tokens of documents doc_begin_ .. doc_end_-1

  mutable std::mutex mutex_;
  // Most recently used first.
  mutable std::vector<std::pair<int64_t, std::shared_ptr<const EpochIndex>>> cache_;
};

}  // namespace pajama
