#include "core/hash.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace pajama {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string to_hex(const unsigned char* bytes, size_t n) {
  std::string hex;
  hex.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    hex.push_back(kHex[bytes[i] >> 4]);
    hex.push_back(kHex[bytes[i] & 15]);
  }
  return hex;
}

}  // namespace

std::string hash_algorithm_name(HashAlgorithm a) { return a == HashAlgorithm::kSha256 ? "sha256" : "xxh3_128"; }

std::optional<HashAlgorithm> parse_hash_algorithm(std::string_view name) {
  if (name == "sha256") return HashAlgorithm::kSha256;
  if (name == "xxh3_128") return HashAlgorithm::kXxh3_128;
  return std::nullopt;
}

struct Hasher::State {
  HashAlgorithm algorithm;
  EVP_MD_CTX* sha = nullptr;
  XXH3_state_t* xxh = nullptr;
  bool finished = false;
  ~State() {
    if (sha != nullptr) EVP_MD_CTX_free(sha);
    if (xxh != nullptr) XXH3_freeState(xxh);
  }
};

Hasher::Hasher(HashAlgorithm algorithm) : state_(std::make_unique<State>()) {
  state_->algorithm = algorithm;
  if (algorithm == HashAlgorithm::kSha256) {
    state_->sha = EVP_MD_CTX_new();
    PAJAMA_CHECK(state_->sha != nullptr && EVP_DigestInit_ex(state_->sha, EVP_sha256(), nullptr) == 1,
                 "OpenSSL could not start a SHA-256 hash");
  } else {
    state_->xxh = XXH3_createState();
    PAJAMA_CHECK(state_->xxh != nullptr && XXH3_128bits_reset(state_->xxh) == XXH_OK,
                 "libxxhash could not start an XXH3-128 hash");
  }
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(const void* data, size_t size) {
  PAJAMA_CHECK(!state_->finished, "Hasher::update after hex_digest");
  if (size == 0) return;
  if (state_->sha != nullptr) {
    PAJAMA_CHECK(EVP_DigestUpdate(state_->sha, data, size) == 1, "OpenSSL SHA-256 update failed");
  } else {
    PAJAMA_CHECK(XXH3_128bits_update(state_->xxh, data, size) == XXH_OK, "XXH3-128 update failed");
  }
}

std::string Hasher::hex_digest() {
  PAJAMA_CHECK(!state_->finished, "Hasher::hex_digest called twice");
  state_->finished = true;
  if (state_->sha != nullptr) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    PAJAMA_CHECK(EVP_DigestFinal_ex(state_->sha, out, &n) == 1, "OpenSSL SHA-256 final failed");
    return to_hex(out, n);
  }
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state_->xxh));
  return to_hex(canonical.digest, sizeof canonical.digest);
}

std::string sha256_hex(std::string_view bytes) {
  Hasher h(HashAlgorithm::kSha256);
  h.update(bytes);
  return h.hex_digest();
}

std::string hash_file_hex(const std::filesystem::path& path, HashAlgorithm algorithm, int64_t offset, int64_t length) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  PAJAMA_CHECK_AS(DataError, fd >= 0, "cannot open ", path.string(), ": ", std::strerror(errno));
  ::posix_fadvise(fd, offset, length < 0 ? 0 : length, POSIX_FADV_SEQUENTIAL);
  Hasher h(algorithm);
  std::vector<char> buf(4 << 20);
  int64_t pos = offset;
  int64_t left = length;
  while (left != 0) {
    const size_t want = left < 0 ? buf.size() : static_cast<size_t>(std::min<int64_t>(left, buf.size()));
    const ssize_t n = ::pread(fd, buf.data(), want, pos);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      PAJAMA_CHECK_AS(DataError, n == 0, "reading ", path.string(), ": ", std::strerror(err));
      PAJAMA_CHECK_AS(DataError, left < 0, path.string(), " ends at byte ", pos, ", before the ", length,
                      " bytes from ", offset, " that were to be hashed");
      break;
    }
    h.update(buf.data(), static_cast<size_t>(n));
    pos += n;
    if (left > 0) left -= n;
  }
  ::close(fd);
  return h.hex_digest();
}

}  // namespace pajama
