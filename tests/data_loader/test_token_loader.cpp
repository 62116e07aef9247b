// TokenLoader: N ranks simulated in-process. The union of what the ranks read is the
// global stream (every sample of an epoch exactly once), and resuming from
// consumed_samples on another rank count continues the same global stream.
#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "data/packed_dataset.h"
#include "data/token_loader.h"
#include "data_test_util.h"

namespace pajama {
namespace {

constexpr int64_t kSeq = 16;
constexpr int64_t kRow = kSeq + 1;

struct Fixture {
  testing::TempDir dir{"loader"};
  testing::TestCorpus corpus = testing::make_corpus(400, 1, 50, 31);
  std::shared_ptr<const PackedDataset> dataset;
  Fixture() {
    testing::write_corpus(dir.str("c"), corpus);
    dataset = std::make_shared<const PackedDataset>(std::make_shared<const IndexedDataset>(dir.str("c")), 0,
                                                    static_cast<int64_t>(corpus.documents.size()), kSeq, 2024);
  }
};

// Runs `steps` optimizer steps on dp_size loaders starting at `consumed` and returns
// the global stream they read, assembled by the documented rank partition.
std::vector<std::vector<int32_t>> run_ranks(std::shared_ptr<const SampleSource> source, int dp_size,
                                            int64_t global_batch, int64_t micro_batch, int64_t consumed,
                                            int64_t steps) {
  std::vector<TokenLoader> loaders;
  for (int r = 0; r < dp_size; ++r) {
    loaders.emplace_back(source, global_batch, micro_batch, r, dp_size);
    loaders.back().set_consumed_samples(consumed);
  }
  std::vector<std::vector<int32_t>> global;
  std::vector<int32_t> buf(static_cast<size_t>(micro_batch * kRow));
  for (int64_t step = 0; step < steps; ++step) {
    for (int r = 0; r < dp_size; ++r) {
      TokenLoader& loader = loaders[static_cast<size_t>(r)];
      EXPECT_EQ(loader.consumed_samples(), consumed + step * global_batch);
      for (int64_t m = 0; m < loader.num_micro_steps(); ++m) {
        loader.fill_micro_batch(m, buf.data());
        for (int64_t i = 0; i < micro_batch; ++i) {
          global.emplace_back(buf.begin() + i * kRow, buf.begin() + (i + 1) * kRow);
        }
      }
    }
    for (auto& loader : loaders) loader.advance();
  }
  return global;
}

TEST(TokenLoader, RanksTogetherReadEveryEpochSampleExactlyOnce) {
  Fixture f;
  const std::vector<int32_t> stream = testing::concatenate(f.corpus, f.dataset->document_order(0));
  std::map<int32_t, int64_t> position_of;
  for (size_t p = 0; p < stream.size(); ++p) position_of[stream[p]] = static_cast<int64_t>(p);
  const int64_t per_epoch = f.dataset->samples_per_epoch();
  const int64_t global_batch = 8;
  for (int dp : {1, 2, 4}) {
    const int64_t steps = (per_epoch + global_batch - 1) / global_batch;
    auto global = run_ranks(f.dataset, dp, global_batch, 2, 0, steps);
    ASSERT_EQ(static_cast<int64_t>(global.size()), steps * global_batch);
    std::vector<int> seen(static_cast<size_t>(per_epoch), 0);
    for (int64_t k = 0; k < per_epoch; ++k) {
      const auto& sample = global[static_cast<size_t>(k)];
      const int64_t start = position_of.at(sample[0]);
      ASSERT_EQ(start % kSeq, 0);
      const std::vector<int32_t> expected(stream.begin() + start, stream.begin() + start + kRow);
      ASSERT_EQ(sample, expected);
      ++seen[static_cast<size_t>(start / kSeq)];
    }
    for (size_t s = 0; s < seen.size(); ++s) ASSERT_EQ(seen[s], 1) << dp << " ranks, stream sample " << s;
  }
}

TEST(TokenLoader, GlobalStreamIsTheSameOnAnyRankCount) {
  Fixture f;
  const auto one = run_ranks(f.dataset, 1, 8, 2, 0, 30);
  EXPECT_EQ(run_ranks(f.dataset, 2, 8, 2, 0, 30), one);
  EXPECT_EQ(run_ranks(f.dataset, 4, 8, 1, 0, 30), one);
  EXPECT_EQ(run_ranks(f.dataset, 8, 8, 1, 0, 30), one);
}

TEST(TokenLoader, ResumeContinuesTheSameStreamOnOtherRankCounts) {
  Fixture f;
  const int64_t g = 8;
  // Runs across the epoch boundary (per_epoch is ~700 samples; 150 steps read 1200).
  const auto uninterrupted = run_ranks(f.dataset, 1, g, 2, 0, 150);
  // 2 ranks for 40 steps, then 4 ranks for 60, then 1 rank for the rest.
  auto resumed = run_ranks(f.dataset, 2, g, 2, 0, 40);
  auto part2 = run_ranks(f.dataset, 4, g, 1, 40 * g, 60);
  auto part3 = run_ranks(f.dataset, 1, g, 4, 100 * g, 50);
  resumed.insert(resumed.end(), part2.begin(), part2.end());
  resumed.insert(resumed.end(), part3.begin(), part3.end());
  ASSERT_EQ(resumed.size(), uninterrupted.size());
  EXPECT_EQ(resumed, uninterrupted);
}

TEST(TokenLoader, SameSeedSameStreamOtherSeedOtherStream) {
  Fixture f;
  auto idx = std::make_shared<const IndexedDataset>(f.dir.str("c"));
  auto same = std::make_shared<const PackedDataset>(idx, 0, 400, kSeq, 2024);
  auto other = std::make_shared<const PackedDataset>(idx, 0, 400, kSeq, 2025);
  const auto a = run_ranks(f.dataset, 2, 8, 2, 0, 10);
  EXPECT_EQ(run_ranks(same, 2, 8, 2, 0, 10), a);
  EXPECT_NE(run_ranks(other, 2, 8, 2, 0, 10), a);
}

TEST(TokenLoader, RejectsBatchesThatDoNotSplit) {
  Fixture f;
  EXPECT_THROW(TokenLoader(f.dataset, 10, 4, 0, 1), ConfigError);
  EXPECT_THROW(TokenLoader(f.dataset, 8, 2, 0, 3), ConfigError);
  EXPECT_THROW(TokenLoader(f.dataset, 8, 0, 0, 1), ConfigError);
  TokenLoader ok(f.dataset, 16, 2, 1, 2);
  EXPECT_EQ(ok.num_micro_steps(), 4);
  std::vector<int32_t> buf(2 * kRow);
  EXPECT_THROW(ok.fill_micro_batch(4, buf.data()), Error);
  EXPECT_THROW(ok.set_consumed_samples(-1), Error);
}

}  // namespace
}  // namespace pajama
