// SHA-256 (FIPS 180-4) for content fingerprints: the tokenizer model recorded in a
// shard's sidecar, checksums in manifests. Streaming, so large files hash in bounded memory.
//   Sha256 h; h.update(bytes); std::string hex = h.hex_digest();
//   sha256_file_hex("tokenizer.model") -> "9e556afd..."
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace pajama {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  // Finishes the hash; the object must not be updated afterwards.
  std::array<uint8_t, 32> digest();
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

std::string sha256_hex(std::string_view bytes);
// Hashes a file in 1 MiB chunks; throws DataError naming the path when it cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace pajama
