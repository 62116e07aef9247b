// BlendedDataset against Megatron's greedy rule written out here, plus the
// proportions, extension past the hint, and components continuing into later epochs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/blended_dataset.h"
#include "data/packed_dataset.h"
#include "data_test_util.h"

namespace pajama {
namespace {

// Sample k is k * 10 + tag in every position (an identity-like source).
class TaggedSource : public SampleSource {
 public:
  TaggedSource(int tag, int64_t seq_len, int64_t per_epoch) : tag_(tag), seq_len_(seq_len), per_epoch_(per_epoch) {}
  int64_t seq_len() const override { return seq_len_; }
  int64_t samples_per_epoch() const override { return per_epoch_; }
  void get(int64_t index, int32_t* out) const override {
    for (int64_t i = 0; i <= seq_len_; ++i) out[i] = static_cast<int32_t>(index * 10 + tag_);
  }

 private:
  int tag_;
  int64_t seq_len_;
  int64_t per_epoch_;
};

std::vector<std::shared_ptr<const SampleSource>> tagged(int n, int64_t seq_len = 4) {
  std::vector<std::shared_ptr<const SampleSource>> v;
  for (int d = 0; d < n; ++d) v.push_back(std::make_shared<TaggedSource>(d, seq_len, 1000));
  return v;
}

// helpers.cpp::build_blending_indices, transcribed from FORMATS 1.5.
std::vector<std::pair<int, int64_t>> megatron_blend(std::vector<double> w, int64_t size) {
  double sum = 0;
  for (double x : w) sum += x;
  for (double& x : w) x /= sum;
  std::vector<int64_t> current(w.size(), 0);
  std::vector<std::pair<int, int64_t>> out;
  for (int64_t s = 0; s < size; ++s) {
    const double sd = std::max(static_cast<double>(s), 1.0);
    int best = 0;
    double best_err = w[0] * sd - static_cast<double>(current[0]);
    for (size_t d = 1; d < w.size(); ++d) {
      const double err = w[d] * sd - static_cast<double>(current[d]);
      if (err > best_err) {
        best_err = err;
        best = static_cast<int>(d);
      }
    }
    out.emplace_back(best, current[static_cast<size_t>(best)]);
    ++current[static_cast<size_t>(best)];
  }
  return out;
}

TEST(BlendedDataset, MatchesMegatronGreedyRule) {
  const std::vector<double> w = {0.5, 0.2, 0.3, 0.05};
  BlendedDataset blend(tagged(4), w, 5000);
  const auto expected = megatron_blend(w, 20000);  // also past the hint
  for (int64_t k = 0; k < 20000; ++k) ASSERT_EQ(blend.locate(k), expected[static_cast<size_t>(k)]) << "sample " << k;
}

TEST(BlendedDataset, ProportionsWithinOnePercent) {
  BlendedDataset blend(tagged(2), {0.7, 0.3}, 10000);
  int64_t first = 0;
  std::vector<int32_t> out(5);
  for (int64_t k = 0; k < 10000; ++k) {
    blend.get(k, out.data());
    const int tag = out[0] % 10;
    ASSERT_EQ(tag, blend.locate(k).first);
    first += (tag == 0);
  }
  EXPECT_NEAR(static_cast<double>(first) / 10000.0, 0.7, 0.01);
}

TEST(BlendedDataset, WeightsAreNormalised) {
  // Weights whose normalised values are exact in binary, so ties break identically
  // (7/10 and 0.7 differ in the last bit, which decides exact ties of the greedy rule).
  BlendedDataset a(tagged(3), {4, 2, 2}, 1000);
  BlendedDataset b(tagged(3), {0.5, 0.25, 0.25}, 1000);
  EXPECT_EQ(a.weights(), b.weights());
  for (int64_t k = 0; k < 3000; ++k) ASSERT_EQ(a.locate(k), b.locate(k));
}

TEST(BlendedDataset, AnswersBeyondTheHintDeterministically) {
  BlendedDataset small(tagged(3), {0.2, 0.3, 0.5}, 10);
  BlendedDataset large(tagged(3), {0.2, 0.3, 0.5}, 300000);
  for (int64_t k : {int64_t{0}, int64_t{9}, int64_t{10}, int64_t{4097}, int64_t{250000}, int64_t{299999}}) {
    EXPECT_EQ(small.locate(k), large.locate(k)) << k;
  }
  // Each source's samples are handed out in order 0, 1, 2, ... with no gaps.
  std::vector<int64_t> next(3, 0);
  for (int64_t k = 0; k < 300000; ++k) {
    const auto [d, i] = large.locate(k);
    ASSERT_EQ(i, next[static_cast<size_t>(d)]++);
  }
}

TEST(BlendedDataset, ComponentsContinueIntoTheirNextEpoch) {
  testing::TempDir dir("blend_epochs");
  const auto small = testing::make_corpus(20, 5, 10, 1, 1);
  const auto big = testing::make_corpus(200, 5, 10, 2, 100000);
  testing::write_corpus(dir.str("small"), small);
  testing::write_corpus(dir.str("big"), big);
  auto a = std::make_shared<const PackedDataset>(std::make_shared<const IndexedDataset>(dir.str("small")), 0, 20, 8, 1);
  auto b = std::make_shared<const PackedDataset>(std::make_shared<const IndexedDataset>(dir.str("big")), 0, 200, 8, 1);
  BlendedDataset blend({a, b}, {0.5, 0.5}, 100);
  // The small dataset has ~16 samples per epoch; 400 blend samples take it through many epochs.
  std::vector<int32_t> got(9), want(9);
  int64_t max_small = 0;
  for (int64_t k = 0; k < 400; ++k) {
    const auto [d, i] = blend.locate(k);
    blend.get(k, got.data());
    (d == 0 ? *a : *b).get(i, want.data());
    ASSERT_EQ(got, want);
    if (d == 0) max_small = std::max(max_small, i);
  }
  EXPECT_GT(max_small, 5 * a->samples_per_epoch());
  EXPECT_EQ(blend.samples_per_epoch(), a->samples_per_epoch() + b->samples_per_epoch());
}

TEST(BlendedDataset, RejectsBadWeightsAndMismatchedSeqLen) {
  EXPECT_THROW(BlendedDataset(tagged(2), {1.0, 0.0}, 10), ConfigError);
  EXPECT_THROW(BlendedDataset(tagged(2), {1.0}, 10), ConfigError);
  EXPECT_THROW(BlendedDataset(tagged(2), {1.0, -1.0}, 10), ConfigError);
  auto mixed = tagged(1, 4);
  mixed.push_back(std::make_shared<TaggedSource>(1, 8, 10));
  EXPECT_THROW(BlendedDataset(mixed, {1.0, 1.0}, 10), Error);
}

}  // namespace
}  // namespace pajama
