// MockSource: deterministic from (seed, index), inside the vocabulary, and low-entropy
// (a Markov chain with 4 successors per state) so a small model learns it quickly.
#include <gtest/gtest.h>

#include <set>

#include "data/mock_source.h"

namespace pajama {
namespace {

TEST(MockSource, DeterministicFromSeedAndIndex) {
  MockSource a(32000, 64, 1);
  MockSource b(32000, 64, 1);
  MockSource c(32000, 64, 2);
  std::vector<int32_t> x(65), y(65), z(65);
  int differ = 0;
  for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{17}, int64_t{1} << 35}) {
    a.get(i, x.data());
    b.get(i, y.data());
    c.get(i, z.data());
    EXPECT_EQ(x, y);
    differ += (x != z);
  }
  EXPECT_EQ(differ, 4);
  a.get(5, x.data());
  a.get(6, y.data());
  EXPECT_NE(x, y);
}

TEST(MockSource, FollowsALowEntropyChainInsideTheVocabulary) {
  for (int64_t vocab : {int64_t{50}, int64_t{32000}}) {
    MockSource m(vocab, 128, 9);
    std::set<int32_t> tokens;
    std::set<std::pair<int32_t, int32_t>> bigrams;
    std::vector<int32_t> s(129);
    for (int64_t i = 0; i < 500; ++i) {
      m.get(i, s.data());
      for (size_t t = 0; t < s.size(); ++t) {
        ASSERT_GE(s[t], 0);
        ASSERT_LT(s[t], vocab);
        tokens.insert(s[t]);
        if (t > 0) bigrams.insert({s[t - 1], s[t]});
      }
    }
    const auto active = static_cast<size_t>(std::min<int64_t>(vocab, MockSource::kMaxActiveTokens));
    EXPECT_LE(tokens.size(), active);
    EXPECT_GT(tokens.size(), active / 2);
    EXPECT_LE(bigrams.size(), active * MockSource::kSuccessors);
  }
}

}  // namespace
}  // namespace pajama
