#include "data/indexed_dataset.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/fs.h"

namespace pajama {
namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr size_t kHeaderBytes = 34;  // magic 9 + version 8 + dtype 1 + counts 16

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // unaligned-safe; x86/ARM hosts are little-endian
  return v;
}

void write_all(std::FILE* f, const void* data, size_t n, const std::filesystem::path& path) {
  if (n == 0) return;
  PAJAMA_CHECK_AS(DataError, std::fwrite(data, 1, n, f) == n, "writing ", path.string(), ": ",
                  std::strerror(errno));
}

}  // namespace

std::string idx_path(const std::string& prefix) { return prefix + ".idx"; }
std::string bin_path(const std::string& prefix) { return prefix + ".bin"; }

size_t token_dtype_size(TokenDType dtype) {
  switch (dtype) {
    case TokenDType::kUInt8:
    case TokenDType::kInt8: return 1;
    case TokenDType::kInt16:
    case TokenDType::kUInt16: return 2;
    case TokenDType::kInt32:
    case TokenDType::kFloat32: return 4;
    case TokenDType::kInt64:
    case TokenDType::kFloat64: return 8;
  }
  PAJAMA_FAIL_AS(DataError, "unknown token dtype code ", static_cast<int>(dtype));
}

TokenDType optimal_token_dtype(int64_t vocab_size) {
  return vocab_size < 65500 ? TokenDType::kUInt16 : TokenDType::kInt32;
}

IndexedDataset::IndexedDataset(const std::string& prefix) : prefix_(prefix) {
  const std::string idx = idx_path(prefix);
  const std::string bin = bin_path(prefix);
  const std::string data = read_file(idx);
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  PAJAMA_CHECK_AS(DataError, data.size() >= kHeaderBytes, idx, ": ", data.size(),
                  " bytes is too short for a Megatron index header (34 bytes); the file is truncated or not an index");
  PAJAMA_CHECK_AS(DataError, std::memcmp(p, kMagic, 9) == 0, idx,
                  ": bad magic (expected MMIDIDX\\0\\0); not a Megatron indexed dataset index");
  const uint64_t version = load_le<uint64_t>(p + 9);
  PAJAMA_CHECK_AS(DataError, version == 1, idx, ": index version ", version, " is not supported (expected 1)");
  const uint8_t code = p[17];
  PAJAMA_CHECK_AS(DataError, code >= 1 && code <= 8, idx, ": unknown dtype code ", int(code));
  dtype_ = static_cast<TokenDType>(code);
  PAJAMA_CHECK_AS(DataError, dtype_ != TokenDType::kFloat32 && dtype_ != TokenDType::kFloat64, idx,
                  ": dtype code ", int(code), " is a float type; token datasets hold integers");
  const uint64_t n = load_le<uint64_t>(p + 18);
  const uint64_t d = load_le<uint64_t>(p + 26);
  const uint64_t expected = kHeaderBytes + 12 * n + 8 * d;
  PAJAMA_CHECK_AS(DataError, n < (uint64_t{1} << 40) && d < (uint64_t{1} << 40) && expected == data.size(), idx,
                  ": header says ", n, " sequences and ", d, " document indices (", expected,
                  " bytes) but the file has ", data.size(),
                  " bytes; the index is truncated, multimodal or from an older fairseq format");
  num_sequences_ = static_cast<int64_t>(n);
  sequence_lengths_.resize(n);
  sequence_pointers_.resize(n);
  document_indices_.resize(d);
  std::memcpy(sequence_lengths_.data(), p + kHeaderBytes, 4 * n);
  std::memcpy(sequence_pointers_.data(), p + kHeaderBytes + 4 * n, 8 * n);
  std::memcpy(document_indices_.data(), p + kHeaderBytes + 12 * n, 8 * d);
  PAJAMA_CHECK_AS(DataError, d >= 1 && document_indices_.front() == 0 &&
                                 document_indices_.back() == static_cast<int64_t>(n),
                  idx, ": document indices must start at 0 and end at the sequence count ", n);
  for (size_t i = 1; i < d; ++i) {
    PAJAMA_CHECK_AS(DataError, document_indices_[i] >= document_indices_[i - 1], idx, ": document index ", i, " (",
                    document_indices_[i], ") is below the one before it (", document_indices_[i - 1],
                    "); the index is corrupt");
  }

  const size_t item = token_dtype_size(dtype_);
  int64_t expect_ptr = 0;
  for (size_t i = 0; i < n; ++i) {
    PAJAMA_CHECK_AS(DataError, sequence_lengths_[i] >= 0 && sequence_pointers_[i] == expect_ptr, idx,
                    ": sequence ", i, " has length ", sequence_lengths_[i], " at byte ", sequence_pointers_[i],
                    ", expected byte ", expect_ptr, "; the index is corrupt");
    expect_ptr += static_cast<int64_t>(sequence_lengths_[i]) * static_cast<int64_t>(item);
    num_tokens_ += sequence_lengths_[i];
  }

  bin_ = MappedFile::open<DataError>(bin);
  if (bin_.size() != static_cast<size_t>(expect_ptr)) {
    PAJAMA_FAIL_AS(DataError, bin, ": ", bin_.size(), " bytes, but ", idx, " describes ", expect_ptr, " bytes (",
                   num_tokens_, " tokens of ", item, " bytes); the pair does not match or one file is truncated");
  }
}

void IndexedDataset::read(int64_t seq, int64_t offset, int64_t count, int32_t* out) const {
  PAJAMA_CHECK(seq >= 0 && seq < num_sequences_, prefix_, ": sequence ", seq, " out of range");
  const int64_t len = sequence_lengths_[static_cast<size_t>(seq)];
  PAJAMA_CHECK(offset >= 0 && count >= 0 && offset + count <= len, prefix_, ": tokens [", offset, ", ",
               offset + count, ") out of range for sequence ", seq, " of length ", len);
  const uint8_t* base = bin_.data() + sequence_pointers_[static_cast<size_t>(seq)];
  switch (dtype_) {
    case TokenDType::kUInt16:
      for (int64_t i = 0; i < count; ++i) out[i] = load_le<uint16_t>(base + 2 * (offset + i));
      break;
    case TokenDType::kInt32:
      std::memcpy(out, base + 4 * offset, 4 * static_cast<size_t>(count));
      break;
    case TokenDType::kUInt8:
      for (int64_t i = 0; i < count; ++i) out[i] = base[offset + i];
      break;
    case TokenDType::kInt8:
      for (int64_t i = 0; i < count; ++i) out[i] = static_cast<int8_t>(base[offset + i]);
      break;
    case TokenDType::kInt16:
      for (int64_t i = 0; i < count; ++i) out[i] = load_le<int16_t>(base + 2 * (offset + i));
      break;
    case TokenDType::kInt64:
      for (int64_t i = 0; i < count; ++i) out[i] = static_cast<int32_t>(load_le<int64_t>(base + 8 * (offset + i)));
      break;
    default:
      PAJAMA_FAIL_AS(DataError, prefix_, ": unsupported token dtype");
  }
}

IndexedDatasetBuilder::IndexedDatasetBuilder(const std::string& prefix, TokenDType dtype)
    : prefix_(prefix), dtype_(dtype) {
  PAJAMA_CHECK_AS(DataError, dtype == TokenDType::kUInt16 || dtype == TokenDType::kInt32,
                  "indexed dataset builder writes uint16 or int32 tokens");
  bin_tmp_ = temp_path_for(bin_path(prefix));
  bin_ = std::fopen(bin_tmp_.c_str(), "wb");
  PAJAMA_CHECK_AS(DataError, bin_ != nullptr, "cannot create ", bin_tmp_.string(), ": ", std::strerror(errno));
}

IndexedDatasetBuilder::~IndexedDatasetBuilder() {
  if (bin_ != nullptr) std::fclose(bin_);
  if (!finalized_) {
    std::error_code ec;
    std::filesystem::remove(bin_tmp_, ec);
  }
}

void IndexedDatasetBuilder::add_document(std::span<const int32_t> tokens) {
  PAJAMA_CHECK(!finalized_, "add_document after finalize on ", prefix_);
  PAJAMA_CHECK_AS(DataError, tokens.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                  "document of ", tokens.size(), " tokens is too long for the int32 length field");
  if (dtype_ == TokenDType::kUInt16) {
    scratch_.resize(tokens.size() * 2);
    for (size_t i = 0; i < tokens.size(); ++i) {
      const int32_t t = tokens[i];
      PAJAMA_CHECK_AS(DataError, t >= 0 && t <= 0xFFFF, "token id ", t, " does not fit uint16 in ", prefix_);
      const auto v = static_cast<uint16_t>(t);
      std::memcpy(scratch_.data() + 2 * i, &v, 2);
    }
    write_all(bin_, scratch_.data(), scratch_.size(), bin_tmp_);
  } else {
    write_all(bin_, tokens.data(), tokens.size() * 4, bin_tmp_);
  }
  lengths_.push_back(static_cast<int32_t>(tokens.size()));
  num_tokens_ += static_cast<int64_t>(tokens.size());
}

void IndexedDatasetBuilder::finalize() {
  PAJAMA_CHECK(!finalized_, "finalize called twice on ", prefix_);
  PAJAMA_CHECK_AS(DataError, std::fflush(bin_) == 0 && ::fsync(::fileno(bin_)) == 0, "flushing ",
                  bin_tmp_.string(), ": ", std::strerror(errno));
  std::fclose(bin_);
  bin_ = nullptr;

  const uint64_t n = lengths_.size();
  std::string idx;
  idx.reserve(kHeaderBytes + 12 * n + 8 * (n + 1));
  auto put = [&idx](const void* p, size_t k) { idx.append(static_cast<const char*>(p), k); };
  put(kMagic, 9);
  const uint64_t version = 1;
  put(&version, 8);
  const auto code = static_cast<uint8_t>(dtype_);
  put(&code, 1);
  const uint64_t d = n + 1;
  put(&n, 8);
  put(&d, 8);
  put(lengths_.data(), 4 * n);
  const int64_t item = static_cast<int64_t>(token_dtype_size(dtype_));
  int64_t ptr = 0;
  for (int32_t len : lengths_) {
    put(&ptr, 8);
    ptr += static_cast<int64_t>(len) * item;
  }
  for (uint64_t i = 0; i <= n; ++i) {
    const auto v = static_cast<int64_t>(i);
    put(&v, 8);
  }
  // .bin first, then .idx: a reader that finds the .idx finds a complete pair.
  rename_into_place<DataError>(bin_tmp_, bin_path(prefix_));
  write_file_atomic<DataError>(idx_path(prefix_), [&](int fd, const std::filesystem::path& tmp) {
    write_all<DataError>(fd, idx.data(), idx.size(), tmp);
  });
  finalized_ = true;
}

}  // namespace pajama
