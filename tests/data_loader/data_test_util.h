// Helpers for the read-side data tests (the general ones are common/support.h): indexed
// datasets whose tokens are recognisable (every token id unique, so a sample says where
// it came from).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/support.h"
#include "data/indexed_dataset.h"

namespace pajama::testing {

// Documents with lengths drawn from [min_len, max_len] (mt19937 seeded with `seed`);
// document d holds tokens first_token + (running count) ... so ids are unique.
struct TestCorpus {
  std::vector<std::vector<int32_t>> documents;
  int64_t num_tokens = 0;
};

inline TestCorpus make_corpus(int64_t num_documents, int min_len, int max_len, uint32_t seed,
                              int32_t first_token = 1) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> len(min_len, max_len);
  TestCorpus c;
  int32_t next = first_token;
  for (int64_t d = 0; d < num_documents; ++d) {
    std::vector<int32_t> doc(static_cast<size_t>(len(rng)));
    for (auto& t : doc) t = next++;
    c.num_tokens += static_cast<int64_t>(doc.size());
    c.documents.push_back(std::move(doc));
  }
  return c;
}

inline void write_corpus(const std::string& prefix, const TestCorpus& c, TokenDType dtype = TokenDType::kInt32) {
  IndexedDatasetBuilder b(prefix, dtype);
  for (const auto& doc : c.documents) b.add_document(doc);
  b.finalize();
}

// Writes a Megatron index by hand (FORMATS 1.3) where document d is split into
// `pieces` sequences, to exercise documents of several sequences (--split-sentences).
inline void write_corpus_multi_sequence(const std::string& prefix, const TestCorpus& c, int pieces) {
  std::vector<int32_t> lengths;
  std::vector<int64_t> doc_idx = {0};
  std::ofstream bin(prefix + ".bin", std::ios::binary);
  for (const auto& doc : c.documents) {
    const size_t n = doc.size();
    size_t start = 0;
    for (int p = 0; p < pieces; ++p) {
      const size_t end = (p + 1 == pieces) ? n : n * static_cast<size_t>(p + 1) / static_cast<size_t>(pieces);
      lengths.push_back(static_cast<int32_t>(end - start));
      start = end;
    }
    bin.write(reinterpret_cast<const char*>(doc.data()), static_cast<std::streamsize>(4 * n));
    doc_idx.push_back(static_cast<int64_t>(lengths.size()));
  }
  std::ofstream idx(prefix + ".idx", std::ios::binary);
  idx.write("MMIDIDX\0\0", 9);
  const uint64_t version = 1, n = lengths.size(), d = doc_idx.size();
  const uint8_t code = 4;  // int32
  idx.write(reinterpret_cast<const char*>(&version), 8);
  idx.write(reinterpret_cast<const char*>(&code), 1);
  idx.write(reinterpret_cast<const char*>(&n), 8);
  idx.write(reinterpret_cast<const char*>(&d), 8);
  idx.write(reinterpret_cast<const char*>(lengths.data()), static_cast<std::streamsize>(4 * n));
  int64_t ptr = 0;
  for (int32_t len : lengths) {
    idx.write(reinterpret_cast<const char*>(&ptr), 8);
    ptr += 4 * int64_t{len};
  }
  idx.write(reinterpret_cast<const char*>(doc_idx.data()), static_cast<std::streamsize>(8 * d));
}

// The concatenation of `order`'s documents.
inline std::vector<int32_t> concatenate(const TestCorpus& c, const std::vector<int64_t>& order) {
  std::vector<int32_t> stream;
  for (int64_t d : order) {
    const auto& doc = c.documents[static_cast<size_t>(d)];
    stream.insert(stream.end(), doc.begin(), doc.end());
  }
  return stream;
}

}  // namespace pajama::testing
