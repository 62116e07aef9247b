// SHA-256 against FIPS 180-4 / NIST test vectors and sha256sum, XXH3-128 against
// Debian's xxhsum, streaming at every block boundary, and file ranges.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/hash.h"
#include "prepare_test_util.h"

namespace pajama {
namespace {

TEST(Sha256, NistVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Hasher, StreamingEqualsOneShotAtEveryBlockBoundary) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  for (size_t len : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 128u, 300u}) {
    const std::string part = data.substr(0, len);
    for (HashAlgorithm a : {HashAlgorithm::kSha256, HashAlgorithm::kXxh3_128}) {
      Hasher streamed(a), whole(a);
      for (size_t i = 0; i < part.size(); i += 13) streamed.update(part.substr(i, 13));
      whole.update(part);
      EXPECT_EQ(streamed.hex_digest(), whole.hex_digest()) << hash_algorithm_name(a) << " length " << len;
    }
  }
}

TEST(Sha256, FileMatchesSha256sum) {
  const testing::TempDir tmp("hash");
  const std::filesystem::path& dir = tmp.path();
  std::string data;
  for (int i = 0; i < 3000000; ++i) data.push_back(static_cast<char>((i * 2654435761u) >> 24));
  testing::write_file(dir / "f.bin", data);
  const auto r = testing::run_command("sha256sum " + testing::quote((dir / "f.bin").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(sha256_file_hex(dir / "f.bin"), r.output.substr(0, 64));
  EXPECT_EQ(sha256_file_hex(dir / "f.bin"), sha256_hex(data));
  EXPECT_THROW(sha256_file_hex(dir / "missing"), DataError);
}

TEST(Xxh3_128, FileAndRangesMatchXxhsum) {
  const testing::TempDir tmp("xxh");
  const std::filesystem::path& dir = tmp.path();
  std::string data;
  for (int i = 0; i < 9000000; ++i) data.push_back(static_cast<char>((i * 2654435761u) >> 21));
  testing::write_file(dir / "f.bin", data);
  testing::write_file(dir / "part.bin", data.substr(5000001, 3000007));
  testing::write_file(dir / "empty.bin", "");
  for (const char* name : {"f.bin", "part.bin", "empty.bin"}) {
    const auto r = testing::run_command("(xxhsum -H2 " + testing::quote((dir / name).string()) + " 2>/dev/null)");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string expected = r.output.substr(0, 32);
    if (std::string(name) == "part.bin") {
      EXPECT_EQ(hash_file_hex(dir / "f.bin", HashAlgorithm::kXxh3_128, 5000001, 3000007), expected);
    } else {
      EXPECT_EQ(hash_file_hex(dir / name, HashAlgorithm::kXxh3_128), expected) << name;
    }
  }
  EXPECT_EQ(hash_file_hex(dir / "f.bin", HashAlgorithm::kXxh3_128, 8999990, 10),
            hash_file_hex(dir / "f.bin", HashAlgorithm::kXxh3_128, 8999990));
  EXPECT_THROW(hash_file_hex(dir / "f.bin", HashAlgorithm::kXxh3_128, 8999990, 11), DataError);
  EXPECT_EQ(parse_hash_algorithm("xxh3_128"), HashAlgorithm::kXxh3_128);
  EXPECT_EQ(parse_hash_algorithm("md5"), std::nullopt);
}

}  // namespace
}  // namespace pajama
