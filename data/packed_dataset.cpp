#include "data/packed_dataset.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "data/feistel.h"
#include "data/shuffle.h"

namespace pajama {

// The start of every stream sample of one epoch: sample s begins at token
// start_offset[s] of the document at position start_doc[s] of the epoch's order.
struct PackedDataset::EpochIndex {
  FeistelPermutation doc_perm;
  FeistelPermutation sample_perm;
  std::vector<uint32_t> start_doc;
  std::vector<uint32_t> start_offset;
};

PackedDataset::PackedDataset(std::shared_ptr<const IndexedDataset> dataset, int64_t doc_begin, int64_t doc_end,
                             int64_t seq_len, uint64_t seed, uint64_t stream, int64_t vocab_limit)
    : dataset_(std::move(dataset)),
      doc_begin_(doc_begin),
      doc_end_(doc_end),
      seq_len_(seq_len),
      seed_(seed),
      stream_(stream),
      vocab_limit_(vocab_limit) {
  PAJAMA_CHECK(dataset_ != nullptr, "PackedDataset needs a dataset");
  PAJAMA_CHECK(seq_len_ >= 1, "seq_len must be positive, got ", seq_len_);
  PAJAMA_CHECK(0 <= doc_begin_ && doc_begin_ <= doc_end_ && doc_end_ <= dataset_->num_documents(), prefix(),
               ": document range [", doc_begin_, ", ", doc_end_, ") out of range for ", dataset_->num_documents(),
               " documents");
  PAJAMA_CHECK_AS(DataError, doc_end_ - doc_begin_ < (int64_t{1} << 32), prefix(), ": ", doc_end_ - doc_begin_,
                  " documents in one split; at most 2^32-1 are supported, split the dataset into several prefixes");
  // Token count per document of the split, in file order (one sequential pass): the
  // epoch walk reads it in shuffled order, where one compact array beats chasing
  // document indices, pointers and lengths for every document.
  const auto& docs = dataset_->document_indices();
  const auto& lengths = dataset_->sequence_lengths();
  doc_lengths_.resize(static_cast<size_t>(doc_end_ - doc_begin_));
  for (int64_t d = doc_begin_; d < doc_end_; ++d) {
    int64_t len = 0;
    for (int64_t q = docs[static_cast<size_t>(d)]; q < docs[static_cast<size_t>(d) + 1]; ++q) {
      len += lengths[static_cast<size_t>(q)];
    }
    PAJAMA_CHECK_AS(DataError, len <= std::numeric_limits<uint32_t>::max(), prefix(), ": document ", d, " has ", len,
                    " tokens; documents of 2^32 tokens or more are not supported");
    doc_lengths_[static_cast<size_t>(d - doc_begin_)] = static_cast<uint32_t>(len);
    tokens_per_epoch_ += len;
  }
  PAJAMA_CHECK_AS(DataError, tokens_per_epoch_ >= seq_len_ + 1, prefix(), ": documents [", doc_begin_, ", ", doc_end_,
                  ") hold ", tokens_per_epoch_, " tokens, fewer than one sample of seq_len+1 = ", seq_len_ + 1,
                  " tokens; use more data, a smaller seq_len, or a smaller valid_fraction");
  samples_per_epoch_ = (tokens_per_epoch_ - 1) / seq_len_;
  PAJAMA_CHECK_AS(DataError, samples_per_epoch_ < (int64_t{1} << 32), prefix(), ": ", samples_per_epoch_,
                  " samples per epoch; at most 2^32-1 are supported, split the dataset into several prefixes");
}

int64_t PackedDataset::document_length(int64_t doc) const {
  return doc_lengths_[static_cast<size_t>(doc - doc_begin_)];
}

std::shared_ptr<const PackedDataset::EpochIndex> PackedDataset::build_epoch(int64_t epoch) const {
  auto index = std::make_shared<EpochIndex>();
  const auto e = static_cast<uint64_t>(epoch);
  const auto num_docs = static_cast<uint64_t>(num_documents());
  index->doc_perm = FeistelPermutation(num_docs, mix_seed({seed_, stream_, e, 0}));
  index->sample_perm = FeistelPermutation(static_cast<uint64_t>(samples_per_epoch_), mix_seed({seed_, stream_, e, 1}));
  index->start_doc.resize(static_cast<size_t>(samples_per_epoch_));
  index->start_offset.resize(static_cast<size_t>(samples_per_epoch_));
  // The epoch's document lengths in order. The permutation is written out first (a
  // sequential pass) so the random reads of doc_lengths_ can be prefetched ahead:
  // with 1e8 documents those cache misses, not the arithmetic, are the cost.
  std::vector<uint32_t> order(static_cast<size_t>(num_docs));
  for (uint64_t k = 0; k < num_docs; ++k) order[k] = static_cast<uint32_t>(index->doc_perm(k));
  constexpr uint64_t kAhead = 32;
  for (uint64_t k = 0; k < num_docs; ++k) {
    if (k + kAhead < num_docs) __builtin_prefetch(&doc_lengths_[order[k + kAhead]]);
    order[k] = doc_lengths_[order[k]];
  }
  // One pass: doc_start is the stream position of the document at position k.
  uint64_t k = 0;
  int64_t doc_start = 0;
  int64_t doc_len = order[0];
  for (int64_t s = 0; s < samples_per_epoch_; ++s) {
    const int64_t pos = s * seq_len_;
    while (doc_start + doc_len <= pos) {
      doc_start += doc_len;
      doc_len = order[++k];
    }
    index->start_doc[static_cast<size_t>(s)] = static_cast<uint32_t>(k);
    index->start_offset[static_cast<size_t>(s)] = static_cast<uint32_t>(pos - doc_start);
  }
  return index;
}

std::shared_ptr<const PackedDataset::EpochIndex> PackedDataset::epoch_index(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < cache_.size(); ++i) {
    if (cache_[i].first == epoch) {
      if (i != 0) std::rotate(cache_.begin(), cache_.begin() + static_cast<ptrdiff_t>(i),
                              cache_.begin() + static_cast<ptrdiff_t>(i) + 1);
      return cache_.front().second;
    }
  }
  // Built under the lock: concurrent readers of a new epoch wait for one build
  // instead of each building it.
  auto index = build_epoch(epoch);
  cache_.insert(cache_.begin(), {epoch, index});
  if (cache_.size() > kCachedEpochs) cache_.pop_back();
  return index;
}

void PackedDataset::read_document(int64_t doc, int64_t offset, int64_t count, int32_t* out) const {
  const auto& docs = dataset_->document_indices();
  int64_t seq = docs[static_cast<size_t>(doc)];
  while (count > 0) {
    const int64_t len = dataset_->sequence_length(seq);
    if (offset >= len) {
      offset -= len;
      ++seq;
      continue;
    }
    const int64_t n = std::min(count, len - offset);
    dataset_->read(seq, offset, n, out);
    out += n;
    count -= n;
    offset = 0;
    ++seq;
  }
}

void PackedDataset::get(int64_t index, int32_t* out) const {
  PAJAMA_CHECK(index >= 0, prefix(), ": negative sample index ", index);
  const int64_t epoch = index / samples_per_epoch_;
  const auto j = static_cast<uint64_t>(index % samples_per_epoch_);
  const auto epoch_idx = epoch_index(epoch);
  const auto s = static_cast<size_t>(epoch_idx->sample_perm(j));
  uint64_t k = epoch_idx->start_doc[s];
  int64_t offset = epoch_idx->start_offset[s];
  int64_t remaining = seq_len_ + 1;
  while (remaining > 0) {
    const int64_t doc = doc_begin_ + static_cast<int64_t>(epoch_idx->doc_perm(k));
    const int64_t n = std::min(remaining, document_length(doc) - offset);
    read_document(doc, offset, n, out);
    out += n;
    remaining -= n;
    offset = 0;
    ++k;
  }
  if (vocab_limit_ > 0) check_vocab(index, out - (seq_len_ + 1));
}

void PackedDataset::check_vocab(int64_t index, const int32_t* out) const {
  // One branch-free max over the sample (vectorises), the slow path only on failure.
  uint32_t max_id = 0;
  for (int64_t i = 0; i <= seq_len_; ++i) max_id = std::max(max_id, static_cast<uint32_t>(out[i]));
  if (max_id < static_cast<uint64_t>(vocab_limit_)) return;
  for (int64_t i = 0; i <= seq_len_; ++i) {
    PAJAMA_CHECK_AS(DataError, out[i] >= 0 && out[i] < vocab_limit_, prefix(), ": token id ", out[i],
                    " (sample ", index, ", position ", i, ") is outside the model vocabulary [0, ", vocab_limit_,
                    "); the shards were made with a larger tokenizer than the model's vocab_size allows");
  }
}

std::vector<int64_t> PackedDataset::document_order(int64_t epoch) const {
  const auto epoch_idx = epoch_index(epoch);
  std::vector<int64_t> order(static_cast<size_t>(num_documents()));
  for (size_t k = 0; k < order.size(); ++k) order[k] = doc_begin_ + static_cast<int64_t>(epoch_idx->doc_perm(k));
  return order;
}

int64_t PackedDataset::stream_sample(int64_t index) const {
  PAJAMA_CHECK(index >= 0, prefix(), ": negative sample index ", index);
  const auto epoch_idx = epoch_index(index / samples_per_epoch_);
  return static_cast<int64_t>(epoch_idx->sample_perm(static_cast<uint64_t>(index % samples_per_epoch_)));
}

}  // namespace pajama
