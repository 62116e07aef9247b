// Content fingerprints, streaming so large files hash in bounded memory.
//   SHA-256 (FIPS 180-4, OpenSSL's implementation): the tokenizer model recorded in a
//     shard's sidecar, the files of format-1 checkpoint manifests.
//   XXH3-128 (libxxhash): integrity of checkpoint files from format 2 on; about ten
//     times SHA-256's rate, so verification keeps up with the disk (docs/BENCHMARKS.md).
//
//   Hasher h(HashAlgorithm::kXxh3_128); h.update(bytes); std::string hex = h.hex_digest();
//   sha256_file_hex("tokenizer.model") -> "9e556afd..."
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace pajama {

enum class HashAlgorithm { kSha256, kXxh3_128 };

// The names used in manifests: "sha256", "xxh3_128".
std::string hash_algorithm_name(HashAlgorithm a);
std::optional<HashAlgorithm> parse_hash_algorithm(std::string_view name);

class Hasher {
 public:
  explicit Hasher(HashAlgorithm algorithm);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void update(const void* data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  // Finishes the hash (lowercase hex; SHA-256's 64 digits, XXH3-128's 32 in its
  // canonical big-endian order); the object must not be updated afterwards.
  std::string hex_digest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256_hex(std::string_view bytes);
// Hashes bytes [offset, offset + length) of a file (length -1: to the end) in 4 MiB
// reads; throws DataError naming the path when it cannot be read or is shorter.
std::string hash_file_hex(const std::filesystem::path& path, HashAlgorithm algorithm, int64_t offset = 0,
                          int64_t length = -1);
inline std::string sha256_file_hex(const std::filesystem::path& path) {
  return hash_file_hex(path, HashAlgorithm::kSha256);
}

}  // namespace pajama
