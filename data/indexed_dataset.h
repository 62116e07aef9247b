// Megatron-LM's indexed dataset: `<prefix>.bin` holds the tokens of every sequence
// back to back; `<prefix>.idx` holds magic "MMIDIDX\0\0", version 1, a dtype code,
// sequence and document counts, int32 sequence lengths, int64 byte pointers and int64
// document indices (no padding, little-endian). Files made by Megatron's
// preprocess_data.py read here, and files written here read in Megatron.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/fs.h"

namespace pajama {

enum class TokenDType : uint8_t {
  kUInt8 = 1, kInt8 = 2, kInt16 = 3, kInt32 = 4, kInt64 = 5, kFloat64 = 6, kFloat32 = 7, kUInt16 = 8
};
size_t token_dtype_size(TokenDType dtype);
// Megatron's DType.optimal_dtype: uint16 when vocab_size < 65500, else int32.
TokenDType optimal_token_dtype(int64_t vocab_size);

// Reads an indexed dataset through mmap; validates the header against both file sizes
// and throws DataError saying what is wrong and with which file.
class IndexedDataset {
 public:
  explicit IndexedDataset(const std::string& prefix);
  IndexedDataset(const IndexedDataset&) = delete;
  IndexedDataset& operator=(const IndexedDataset&) = delete;

  const std::string& prefix() const { return prefix_; }
  TokenDType dtype() const { return dtype_; }
  int64_t num_sequences() const { return num_sequences_; }
  // Documents (document_count - 1 of the header).
  int64_t num_documents() const { return static_cast<int64_t>(document_indices_.size()) - 1; }
  int64_t num_tokens() const { return num_tokens_; }
  int32_t sequence_length(int64_t i) const { return sequence_lengths_[static_cast<size_t>(i)]; }
  const std::vector<int32_t>& sequence_lengths() const { return sequence_lengths_; }
  const std::vector<int64_t>& sequence_pointers() const { return sequence_pointers_; }
  const std::vector<int64_t>& document_indices() const { return document_indices_; }
  // Copies tokens [offset, offset+count) of sequence `seq` into out, converted to int32.
  void read(int64_t seq, int64_t offset, int64_t count, int32_t* out) const;

 private:
  std::string prefix_;
  TokenDType dtype_ = TokenDType::kUInt16;
  int64_t num_sequences_ = 0;
  int64_t num_tokens_ = 0;
  std::vector<int32_t> sequence_lengths_;
  std::vector<int64_t> sequence_pointers_;
  std::vector<int64_t> document_indices_;
  MappedFile bin_;
};

// Writes an indexed dataset, one sequence per document (Megatron's layout without
// --split-sentences). Files are written under temporary names and renamed into
// place by finalize(), so a failed or interrupted write leaves nothing under
// `<prefix>.bin/.idx`. Without finalize() the destructor removes the temporaries.
class IndexedDatasetBuilder {
 public:
  IndexedDatasetBuilder(const std::string& prefix, TokenDType dtype);
  ~IndexedDatasetBuilder();
  IndexedDatasetBuilder(const IndexedDatasetBuilder&) = delete;
  IndexedDatasetBuilder& operator=(const IndexedDatasetBuilder&) = delete;

  // Appends one document; throws DataError if a token does not fit the dtype.
  void add_document(std::span<const int32_t> tokens);
  int64_t num_documents() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t num_tokens() const { return num_tokens_; }
  int64_t bin_bytes() const { return num_tokens_ * static_cast<int64_t>(token_dtype_size(dtype_)); }
  // Writes the index, flushes both files and renames them into place.
  void finalize();

 private:
  std::string prefix_;
  TokenDType dtype_;
  std::filesystem::path bin_tmp_;
  std::FILE* bin_ = nullptr;
  std::vector<int32_t> lengths_;
  int64_t num_tokens_ = 0;
  std::vector<uint8_t> scratch_;
  bool finalized_ = false;
};

std::string idx_path(const std::string& prefix);
std::string bin_path(const std::string& prefix);

}  // namespace pajama
