// The Megatron indexed dataset against its published layout (FORMATS 1.3): the golden
// 82-byte example, an independent writer read back through IndexedDataset, and
// IndexedDatasetBuilder's files read by the independent reader.
#include <gtest/gtest.h>

#include <cstring>

#include "data/indexed_dataset.h"
#include "prepare_test_util.h"

namespace pajama {
namespace {

// Independent writer, following Megatron's _IndexWriter byte for byte.
void ref_write(const std::string& prefix, const std::vector<std::vector<int64_t>>& docs, uint8_t code) {
  const size_t item = code == 8 ? 2 : 4;
  std::string bin, idx("MMIDIDX\0\0", 9);
  auto put = [](std::string& s, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(idx, 1, 8);
  idx.push_back(static_cast<char>(code));
  put(idx, docs.size(), 8);
  put(idx, docs.size() + 1, 8);
  for (const auto& d : docs) put(idx, d.size(), 4);
  uint64_t ptr = 0;
  for (const auto& d : docs) {
    put(idx, ptr, 8);
    ptr += d.size() * item;
  }
  for (size_t i = 0; i <= docs.size(); ++i) put(idx, i, 8);
  for (const auto& d : docs) {
    for (int64_t t : d) put(bin, static_cast<uint64_t>(t), static_cast<int>(item));
  }
  testing::write_file(prefix + ".idx", idx);
  testing::write_file(prefix + ".bin", bin);
}

std::string hex_to_bytes(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size();) {
    if (hex[i] == ' ' || hex[i] == '\n') {
      ++i;
      continue;
    }
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    i += 2;
  }
  return out;
}

// FORMATS 1.3's worked example: documents [1,2,3] and [4,5], uint16.
const std::string kGoldenIdx = hex_to_bytes(
    "4d 4d 49 44 49 44 58 00 00 01 00 00 00 00 00 00 00 08 02 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00"
    "03 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 06 00 00 00 00 00 00 00"
    "00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00");
const std::string kGoldenBin = hex_to_bytes("01 00 02 00 03 00 04 00 05 00");

TEST(IndexedFormat, GoldenExampleFromTheSpec) {
  ASSERT_EQ(kGoldenIdx.size(), 82u);
  const testing::TempDir tmp("idx");
  const std::filesystem::path& dir = tmp.path();
  const std::string ours = (dir / "ours").string(), ref = (dir / "ref").string();
  {
    IndexedDatasetBuilder b(ours, TokenDType::kUInt16);
    b.add_document(std::vector<int32_t>{1, 2, 3});
    b.add_document(std::vector<int32_t>{4, 5});
    b.finalize();
  }
  EXPECT_EQ(testing::read_file(ours + ".idx"), kGoldenIdx);
  EXPECT_EQ(testing::read_file(ours + ".bin"), kGoldenBin);
  ref_write(ref, {{1, 2, 3}, {4, 5}}, 8);
  EXPECT_EQ(testing::read_file(ref + ".idx"), kGoldenIdx);  // the independent writer agrees with the spec
  testing::write_file(dir / "golden.idx", kGoldenIdx);
  testing::write_file(dir / "golden.bin", kGoldenBin);
  IndexedDataset ds((dir / "golden").string());
  EXPECT_EQ(ds.dtype(), TokenDType::kUInt16);
  ASSERT_EQ(ds.num_sequences(), 2);
  EXPECT_EQ(ds.num_documents(), 2);
  int32_t out[3];
  ds.read(0, 0, 3, out);
  EXPECT_EQ(std::vector<int32_t>(out, out + 3), (std::vector<int32_t>{1, 2, 3}));
  ds.read(1, 0, 2, out);
  EXPECT_EQ(std::vector<int32_t>(out, out + 2), (std::vector<int32_t>{4, 5}));
}

TEST(IndexedFormat, IndependentWriterReadsBackBothDtypes) {
  const testing::TempDir tmp("idx");
  const std::filesystem::path& dir = tmp.path();
  std::vector<std::vector<int64_t>> docs;
  for (int d = 0; d < 50; ++d) {
    std::vector<int64_t> doc;
    for (int k = 0; k < (d * 37) % 23; ++k) doc.push_back((d * 1000 + k * 77) % 64000);
    docs.push_back(doc);
  }
  for (uint8_t code : {uint8_t{8}, uint8_t{4}}) {
    auto big = docs;
    if (code == 4) big[3].push_back(120000);  // beyond uint16
    const std::string prefix = (dir / ("ref" + std::to_string(code))).string();
    ref_write(prefix, big, code);
    IndexedDataset ds(prefix);
    EXPECT_EQ(static_cast<int>(ds.dtype()), code);
    ASSERT_EQ(ds.num_sequences(), 50);
    for (int64_t s = 0; s < 50; ++s) {
      const auto& want = big[static_cast<size_t>(s)];
      std::vector<int32_t> got(want.size());
      ds.read(s, 0, static_cast<int64_t>(got.size()), got.data());
      EXPECT_EQ(std::vector<int64_t>(got.begin(), got.end()), want) << "sequence " << s;
    }
    // And the builder writes the same bytes as the independent writer.
    const std::string built = (dir / ("built" + std::to_string(code))).string();
    {
      IndexedDatasetBuilder b(built, static_cast<TokenDType>(code));
      for (const auto& d : big) b.add_document(std::vector<int32_t>(d.begin(), d.end()));
      b.finalize();
    }
    EXPECT_EQ(testing::read_file(built + ".idx"), testing::read_file(prefix + ".idx"));
    EXPECT_EQ(testing::read_file(built + ".bin"), testing::read_file(prefix + ".bin"));
    const auto r = testing::ref_read_indexed(built);
    EXPECT_EQ(r.docs, big);
  }
}

TEST(IndexedFormat, OptimalDtypeFollowsMegatron) {
  EXPECT_EQ(optimal_token_dtype(32000), TokenDType::kUInt16);
  EXPECT_EQ(optimal_token_dtype(64000), TokenDType::kUInt16);
  EXPECT_EQ(optimal_token_dtype(65499), TokenDType::kUInt16);
  EXPECT_EQ(optimal_token_dtype(65500), TokenDType::kInt32);
  EXPECT_EQ(optimal_token_dtype(128256), TokenDType::kInt32);
}

}  // namespace
}  // namespace pajama
