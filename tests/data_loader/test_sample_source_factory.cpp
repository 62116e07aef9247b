// make_sample_source: mock vs shards, blends, train/valid splits, and the checks that
// must name the prefix and the config key (tokenizer, vocabulary, missing files).
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "core/error.h"
#include "core/hash.h"
#include "data/blended_dataset.h"
#include "data/mock_source.h"
#include "data/packed_dataset.h"
#include "data/sample_source_factory.h"
#include "data/shard_metadata.h"
#include "data_test_util.h"

namespace pajama {
namespace {

using testing::TempDir;
using testing::write_file;

void write_sidecar(const std::string& prefix, const std::string& tokenizer, const std::string& sha, int64_t vocab) {
  ShardMetadata m;
  m.tokenizer_path = tokenizer;
  m.tokenizer_sha256 = sha;
  m.vocab_size = vocab;
  m.dtype = "int32";
  write_shard_metadata(prefix, m);
}

template <typename E, typename F>
std::string expect_error(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception";
  return "";
}

std::set<int32_t> tokens_of_epoch(const SampleSource& s) {
  std::set<int32_t> out;
  std::vector<int32_t> buf(static_cast<size_t>(s.seq_len() + 1));
  for (int64_t i = 0; i < s.samples_per_epoch(); ++i) {
    s.get(i, buf.data());
    out.insert(buf.begin(), buf.end());
  }
  return out;
}

TEST(SampleSourceFactory, MockTrainAndValidDiffer) {
  DataConfig cfg;
  cfg.source = "mock";
  auto train = make_sample_source(cfg, Split::kTrain, 32, 1000, 7, 100);
  auto valid = make_sample_source(cfg, Split::kValid, 32, 1000, 7, 100);
  ASSERT_NE(dynamic_cast<const MockSource*>(train.get()), nullptr);
  ASSERT_NE(valid, nullptr);
  std::vector<int32_t> a(33), b(33);
  train->get(0, a.data());
  valid->get(0, b.data());
  EXPECT_NE(a, b);
}

TEST(SampleSourceFactory, UnknownSourceListsTheValidOnes) {
  DataConfig cfg;
  cfg.source = "parquet";
  const std::string msg = expect_error<ConfigError>([&] { make_sample_source(cfg, Split::kTrain, 8, 100, 0, 10); });
  EXPECT_NE(msg.find("mock"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shards"), std::string::npos) << msg;
  EXPECT_NE(msg.find("parquet"), std::string::npos) << msg;
}

TEST(SampleSourceFactory, MissingShardsNameThePath) {
  TempDir dir("factory_missing");
  DataConfig cfg;
  cfg.source = "shards";
  cfg.datasets = {{dir.str("nothing"), 1.0, ""}};
  std::string msg = expect_error<DataError>([&] { make_sample_source(cfg, Split::kTrain, 8, 100, 0, 10); });
  EXPECT_NE(msg.find(dir.str("nothing") + ".idx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("datasets[0]"), std::string::npos) << msg;
  // Given with the extension by mistake: the hint says to drop it.
  testing::write_corpus(dir.str("c"), testing::make_corpus(10, 5, 5, 1));
  cfg.datasets = {{dir.str("c") + ".bin", 1.0, ""}};
  msg = expect_error<DataError>([&] { make_sample_source(cfg, Split::kTrain, 8, 100, 0, 10); });
  EXPECT_NE(msg.find("drop the extension"), std::string::npos) << msg;
  cfg.source = "";
  expect_error<ConfigError>([&] { make_sample_source(cfg, Split::kTrain, 8, 100, 0, 10); });
  cfg.source = "shards";
  cfg.datasets.clear();
  expect_error<ConfigError>([&] { make_sample_source(cfg, Split::kTrain, 8, 100, 0, 10); });
}

TEST(SampleSourceFactory, TokenizerMismatchNamesThePrefixAndTheKey) {
  TempDir dir("factory_tokenizer");
  testing::write_corpus(dir.str("c"), testing::make_corpus(20, 10, 10, 1));
  write_file(dir.str("mine.model"), "the configured tokenizer");
  write_file(dir.str("other.model"), "the tokenizer the shards were made with");
  write_sidecar(dir.str("c"), dir.str("other.model"), sha256_file_hex(dir.str("other.model")), 500);
  DataConfig cfg;
  cfg.source = "shards";
  cfg.datasets = {{dir.str("c"), 1.0, ""}};
  cfg.tokenizer = dir.str("mine.model");
  const std::string msg = expect_error<DataError>([&] { make_sample_source(cfg, Split::kTrain, 8, 1000, 0, 10); });
  EXPECT_NE(msg.find("shards " + dir.str("c") + " were made with tokenizer " + dir.str("other.model")),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("but tokenizer is " + dir.str("mine.model")), std::string::npos) << msg;
  // The same tokenizer passes; no tokenizer configured skips the check.
  cfg.tokenizer = dir.str("other.model");
  EXPECT_NE(make_sample_source(cfg, Split::kTrain, 8, 1000, 0, 10), nullptr);
  cfg.tokenizer.clear();
  EXPECT_NE(make_sample_source(cfg, Split::kTrain, 8, 1000, 0, 10), nullptr);
}

TEST(SampleSourceFactory, VocabularyLargerThanTheModelIsAnError) {
  TempDir dir("factory_vocab");
  testing::write_corpus(dir.str("c"), testing::make_corpus(20, 10, 10, 1));  // ids 1..200
  write_sidecar(dir.str("c"), "tok.model", "00", 1000);
  DataConfig cfg;
  cfg.source = "shards";
  cfg.datasets = {{dir.str("c"), 1.0, ""}};
  const std::string msg = expect_error<DataError>([&] { make_sample_source(cfg, Split::kTrain, 8, 500, 0, 10); });
  EXPECT_NE(msg.find(dir.str("c")), std::string::npos) << msg;
  EXPECT_NE(msg.find("larger than the model's vocab_size 500"), std::string::npos) << msg;
  // Without a sidecar, an out-of-range id is caught when it is read.
  std::filesystem::remove(shard_metadata_path(dir.str("c")));
  auto source = make_sample_source(cfg, Split::kTrain, 8, 100, 0, 10);
  std::vector<int32_t> buf(9);
  bool thrown = false;
  for (int64_t i = 0; i < source->samples_per_epoch() && !thrown; ++i) {
    try {
      source->get(i, buf.data());
    } catch (const DataError& e) {
      thrown = true;
      EXPECT_NE(std::string(e.what()).find(dir.str("c")), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(thrown);
}

TEST(SampleSourceFactory, TooSmallDatasetNamesThePrefix) {
  TempDir dir("factory_small");
  testing::write_corpus(dir.str("tiny"), testing::make_corpus(2, 3, 3, 1));
  DataConfig cfg;
  cfg.source = "shards";
  cfg.datasets = {{dir.str("tiny"), 1.0, ""}};
  const std::string msg = expect_error<DataError>([&] { make_sample_source(cfg, Split::kTrain, 8, 100, 0, 10); });
  EXPECT_NE(msg.find(dir.str("tiny")), std::string::npos) << msg;
  EXPECT_NE(msg.find("datasets[0]"), std::string::npos) << msg;
}

TEST(SampleSourceFactory, BlendOfPrefixesFollowsTheWeights) {
  TempDir dir("factory_blend");
  testing::write_corpus(dir.str("a"), testing::make_corpus(100, 20, 40, 1, 1));
  testing::write_corpus(dir.str("b"), testing::make_corpus(100, 20, 40, 2, 100000));
  DataConfig cfg;
  cfg.source = "shards";
  cfg.datasets = {{dir.str("a"), 3.0, ""}, {dir.str("b"), 1.0, ""}};
  auto source = make_sample_source(cfg, Split::kTrain, 16, 200000, 5, 4000);
  const auto* blend = dynamic_cast<const BlendedDataset*>(source.get());
  ASSERT_NE(blend, nullptr);
  std::vector<int32_t> buf(17);
  int64_t from_a = 0;
  for (int64_t k = 0; k < 4000; ++k) {
    source->get(k, buf.data());
    from_a += buf[0] < 100000;
  }
  EXPECT_NEAR(static_cast<double>(from_a) / 4000.0, 0.75, 0.01);
}

TEST(SampleSourceFactory, ValidFractionIsDisjointFromTrain) {
  TempDir dir("factory_split");
  testing::write_corpus(dir.str("a"), testing::make_corpus(200, 10, 30, 1, 1));
  testing::write_corpus(dir.str("b"), testing::make_corpus(100, 10, 30, 2, 100000));
  DataConfig cfg;
  cfg.source = "shards";
  cfg.datasets = {{dir.str("a"), 1.0, ""}};
  cfg.valid_fraction = 0.1;
  auto train = make_sample_source(cfg, Split::kTrain, 8, 200000, 1, 100);
  auto valid = make_sample_source(cfg, Split::kValid, 8, 200000, 1, 100);
  ASSERT_NE(valid, nullptr);
  const auto* t = dynamic_cast<const PackedDataset*>(train.get());
  const auto* v = dynamic_cast<const PackedDataset*>(valid.get());
  ASSERT_NE(t, nullptr);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(t->doc_begin(), 0);
  EXPECT_EQ(t->doc_end(), 180);
  EXPECT_EQ(v->doc_begin(), 180);
  EXPECT_EQ(v->doc_end(), 200);
  const auto train_tokens = tokens_of_epoch(*train);
  for (int32_t tok : tokens_of_epoch(*valid)) ASSERT_EQ(train_tokens.count(tok), 0u) << tok;

  // Separate prefixes for validation; both ways at once is an error.
  cfg.valid_fraction = 0.0;
  cfg.valid_datasets = {{dir.str("b"), 1.0, ""}};
  auto valid_b = make_sample_source(cfg, Split::kValid, 8, 200000, 1, 100);
  ASSERT_NE(valid_b, nullptr);
  for (int32_t tok : tokens_of_epoch(*valid_b)) ASSERT_GE(tok, 100000);
  EXPECT_EQ(dynamic_cast<const PackedDataset*>(make_sample_source(cfg, Split::kTrain, 8, 200000, 1, 100).get())
                ->doc_end(),
            200);
  cfg.valid_fraction = 0.1;
  expect_error<ConfigError>([&] { make_sample_source(cfg, Split::kTrain, 8, 200000, 1, 100); });
}

TEST(SampleSourceFactory, NoOrEmptyValidationGivesNull) {
  TempDir dir("factory_novalid");
  testing::write_corpus(dir.str("a"), testing::make_corpus(50, 10, 10, 1));
  DataConfig cfg;
  cfg.source = "shards";
  cfg.datasets = {{dir.str("a"), 1.0, ""}};
  EXPECT_EQ(make_sample_source(cfg, Split::kValid, 8, 1000, 1, 100), nullptr);
  cfg.valid_fraction = 0.005;  // rounds to zero documents
  EXPECT_EQ(make_sample_source(cfg, Split::kValid, 8, 1000, 1, 100), nullptr);
  EXPECT_EQ(std::dynamic_pointer_cast<const PackedDataset>(make_sample_source(cfg, Split::kTrain, 8, 1000, 1, 100))
                ->doc_end(),
            50);
  cfg.valid_fraction = 1.0;
  expect_error<ConfigError>([&] { make_sample_source(cfg, Split::kTrain, 8, 1000, 1, 100); });
}

TEST(SplitDocumentRange, LastFractionIsValidation) {
  EXPECT_EQ(split_document_range(1000, 0.01, Split::kTrain), (std::pair<int64_t, int64_t>{0, 990}));
  EXPECT_EQ(split_document_range(1000, 0.01, Split::kValid), (std::pair<int64_t, int64_t>{990, 1000}));
  EXPECT_EQ(split_document_range(7, 0.0, Split::kValid), (std::pair<int64_t, int64_t>{7, 7}));
}

}  // namespace
}  // namespace pajama
