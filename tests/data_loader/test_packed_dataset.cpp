// PackedDataset against a definition written here: epoch e is the concatenation of
// the documents in the order the dataset reports, cut every seq_len tokens into
// samples of seq_len+1 tokens, each stream sample read exactly once per epoch.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <thread>

#include "core/error.h"
#include "data/packed_dataset.h"
#include "data_test_util.h"

namespace pajama {
namespace {

using testing::TempDir;

// Checks one epoch of `ds` against the concatenation of its reported document order.
void expect_epoch_matches_definition(const PackedDataset& ds, const testing::TestCorpus& corpus, int64_t epoch) {
  const std::vector<int64_t> order = ds.document_order(epoch);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> expected_docs(static_cast<size_t>(ds.num_documents()));
  std::iota(expected_docs.begin(), expected_docs.end(), ds.doc_begin());
  ASSERT_EQ(sorted, expected_docs) << "document order of epoch " << epoch << " is not a permutation of the split";

  const std::vector<int32_t> stream = testing::concatenate(corpus, order);
  const int64_t seq = ds.seq_len();
  ASSERT_EQ(ds.tokens_per_epoch(), static_cast<int64_t>(stream.size()));
  ASSERT_EQ(ds.samples_per_epoch(), (static_cast<int64_t>(stream.size()) - 1) / seq);
  // Token ids are unique, so a sample's first token says where in the stream it starts.
  std::vector<int64_t> position_of(static_cast<size_t>(corpus.num_tokens + 2), -1);
  for (size_t p = 0; p < stream.size(); ++p) position_of[static_cast<size_t>(stream[p])] = static_cast<int64_t>(p);

  std::vector<int> seen(static_cast<size_t>(ds.samples_per_epoch()), 0);
  std::vector<int32_t> sample(static_cast<size_t>(seq + 1));
  for (int64_t i = 0; i < ds.samples_per_epoch(); ++i) {
    const int64_t index = epoch * ds.samples_per_epoch() + i;
    ds.get(index, sample.data());
    const int64_t start = position_of[static_cast<size_t>(sample[0])];
    ASSERT_GE(start, 0);
    ASSERT_EQ(start % seq, 0) << "sample " << index << " does not start on a seq_len boundary";
    const int64_t s = start / seq;
    ASSERT_LT(s, ds.samples_per_epoch());
    EXPECT_EQ(s, ds.stream_sample(index));
    ++seen[static_cast<size_t>(s)];
    const std::vector<int32_t> expected(stream.begin() + start, stream.begin() + start + seq + 1);
    ASSERT_EQ(sample, expected) << "sample " << index << " of epoch " << epoch;
  }
  for (size_t s = 0; s < seen.size(); ++s) ASSERT_EQ(seen[s], 1) << "stream sample " << s << " in epoch " << epoch;
}

std::vector<int64_t> stream_order(const PackedDataset& ds, int64_t epoch) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < ds.samples_per_epoch(); ++i) out.push_back(ds.stream_sample(epoch * ds.samples_per_epoch() + i));
  return out;
}

TEST(PackedDataset, SamplesAreTheConcatenatedDocumentsEveryEpoch) {
  TempDir dir("packed_concat");
  const auto corpus = testing::make_corpus(200, 1, 60, 7);
  testing::write_corpus(dir.str("c"), corpus);
  auto idx = std::make_shared<const IndexedDataset>(dir.str("c"));
  PackedDataset ds(idx, 0, idx->num_documents(), 16, /*seed=*/1234);
  for (int64_t epoch : {0, 1, 2, 7}) expect_epoch_matches_definition(ds, corpus, epoch);
}

TEST(PackedDataset, ConsecutiveStreamSamplesOverlapByOneToken) {
  TempDir dir("packed_overlap");
  const auto corpus = testing::make_corpus(50, 5, 40, 3);
  testing::write_corpus(dir.str("c"), corpus);
  auto idx = std::make_shared<const IndexedDataset>(dir.str("c"));
  const int64_t seq = 8;
  PackedDataset ds(idx, 0, idx->num_documents(), seq, 5);
  // Invert the sample permutation to read stream samples s and s+1.
  std::vector<int64_t> index_of(static_cast<size_t>(ds.samples_per_epoch()));
  for (int64_t i = 0; i < ds.samples_per_epoch(); ++i) index_of[static_cast<size_t>(ds.stream_sample(i))] = i;
  std::vector<int32_t> a(seq + 1), b(seq + 1);
  for (int64_t s = 0; s + 1 < ds.samples_per_epoch(); ++s) {
    ds.get(index_of[static_cast<size_t>(s)], a.data());
    ds.get(index_of[static_cast<size_t>(s) + 1], b.data());
    ASSERT_EQ(a.back(), b.front());
  }
}

TEST(PackedDataset, EpochsArDifferentPermutations) {
  TempDir dir("packed_epochs");
  const auto corpus = testing::make_corpus(300, 1, 30, 11);
  testing::write_corpus(dir.str("c"), corpus);
  auto idx = std::make_shared<const IndexedDataset>(dir.str("c"));
  PackedDataset ds(idx, 0, idx->num_documents(), 32, 99);
  EXPECT_NE(ds.document_order(0), ds.document_order(1));
  EXPECT_NE(stream_order(ds, 0), stream_order(ds, 1));
  // Each is still complete (checked in full above); the content of epoch 1 is every sample once.
  expect_epoch_matches_definition(ds, corpus, 1);
}

TEST(PackedDataset, SameSeedSameOrderOtherSeedOtherOrder) {
  TempDir dir("packed_seed");
  const auto corpus = testing::make_corpus(300, 1, 30, 13);
  testing::write_corpus(dir.str("c"), corpus);
  auto idx = std::make_shared<const IndexedDataset>(dir.str("c"));
  PackedDataset a(idx, 0, idx->num_documents(), 32, 42);
  PackedDataset b(idx, 0, idx->num_documents(), 32, 42);
  PackedDataset c(idx, 0, idx->num_documents(), 32, 43);
  PackedDataset d(idx, 0, idx->num_documents(), 32, 42, /*stream=*/1);
  EXPECT_EQ(a.document_order(0), b.document_order(0));
  EXPECT_EQ(stream_order(a, 0), stream_order(b, 0));
  EXPECT_NE(a.document_order(0), c.document_order(0));
  EXPECT_NE(stream_order(a, 0), stream_order(c, 0));
  EXPECT_NE(a.document_order(0), d.document_order(0));
  std::vector<int32_t> x(33), y(33);
  for (int64_t i = 0; i < 3 * a.samples_per_epoch(); i += 7) {
    a.get(i, x.data());
    b.get(i, y.data());
    ASSERT_EQ(x, y);
  }
}

TEST(PackedDataset, DocumentRangeReadsOnlyItsDocuments) {
  TempDir dir("packed_range");
  const auto corpus = testing::make_corpus(100, 10, 20, 17);
  testing::write_corpus(dir.str("c"), corpus);
  auto idx = std::make_shared<const IndexedDataset>(dir.str("c"));
  PackedDataset ds(idx, 30, 70, 16, 3);
  EXPECT_EQ(ds.num_documents(), 40);
  expect_epoch_matches_definition(ds, corpus, 0);
  expect_epoch_matches_definition(ds, corpus, 1);
}

TEST(PackedDataset, DocumentsOfSeveralSequences) {
  TempDir dir("packed_multiseq");
  const auto corpus = testing::make_corpus(80, 3, 50, 19);
  testing::write_corpus_multi_sequence(dir.str("c"), corpus, 3);
  auto idx = std::make_shared<const IndexedDataset>(dir.str("c"));
  ASSERT_EQ(idx->num_documents(), 80);
  ASSERT_EQ(idx->num_sequences(), 240);
  PackedDataset ds(idx, 5, 80, 16, 8);
  expect_epoch_matches_definition(ds, corpus, 0);
  expect_epoch_matches_definition(ds, corpus, 3);
}

TEST(PackedDataset, Uint16TokensAndEmptyDocuments) {
  TempDir dir("packed_u16");
  auto corpus = testing::make_corpus(60, 0, 12, 23);  // includes empty documents
  testing::write_corpus(dir.str("c"), corpus, TokenDType::kUInt16);
  auto idx = std::make_shared<const IndexedDataset>(dir.str("c"));
  PackedDataset ds(idx, 0, 60, 4, 1);
  expect_epoch_matches_definition(ds, corpus, 0);
}

TEST(PackedDataset, TooSmallForOneSampleNamesThePrefix) {
  TempDir dir("packed_small");
  const auto corpus = testing::make_corpus(3, 2, 2, 1);  // 6 tokens
  testing::write_corpus(dir.str("tiny"), corpus);
  auto idx = std::make_shared<const IndexedDataset>(dir.str("tiny"));
  EXPECT_NO_THROW(PackedDataset(idx, 0, 3, 5, 0));  // exactly seq_len+1 tokens: one sample
  try {
    PackedDataset ds(idx, 0, 3, 6, 0);
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.str("tiny")), std::string::npos) << e.what();
  }
}

TEST(PackedDataset, TokenOutsideVocabularyIsADataError) {
  TempDir dir("packed_vocab");
  const auto corpus = testing::make_corpus(20, 10, 10, 1);  // ids 1..200
  testing::write_corpus(dir.str("c"), corpus);
  auto idx = std::make_shared<const IndexedDataset>(dir.str("c"));
  PackedDataset ok(idx, 0, 20, 8, 0, 0, /*vocab_limit=*/201);
  PackedDataset bad(idx, 0, 20, 8, 0, 0, /*vocab_limit=*/100);
  std::vector<int32_t> out(9);
  for (int64_t i = 0; i < ok.samples_per_epoch(); ++i) ok.get(i, out.data());
  bool thrown = false;
  for (int64_t i = 0; i < bad.samples_per_epoch() && !thrown; ++i) {
    try {
      bad.get(i, out.data());
    } catch (const DataError& e) {
      thrown = true;
      EXPECT_NE(std::string(e.what()).find(dir.str("c")), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(thrown);
}

TEST(PackedDataset, ConcurrentReadersSeeTheSameSamples) {
  TempDir dir("packed_threads");
  const auto corpus = testing::make_corpus(500, 1, 40, 29);
  testing::write_corpus(dir.str("c"), corpus);
  auto idx = std::make_shared<const IndexedDataset>(dir.str("c"));
  PackedDataset reference(idx, 0, 500, 16, 77);
  PackedDataset shared(idx, 0, 500, 16, 77);
  const int64_t total = 6 * reference.samples_per_epoch();  // more epochs than the cache holds
  std::vector<std::vector<int32_t>> got(static_cast<size_t>(total), std::vector<int32_t>(17));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = t; i < total; i += 4) shared.get(i, got[static_cast<size_t>(i)].data());
    });
  }
  for (auto& th : threads) th.join();
  std::vector<int32_t> expected(17);
  for (int64_t i = 0; i < total; ++i) {
    reference.get(i, expected.data());
    ASSERT_EQ(got[static_cast<size_t>(i)], expected) << "sample " << i;
  }
}

}  // namespace
}  // namespace pajama
