// Fuzzing data/'s readers: Megatron .idx/.bin (IndexedDataset), JSONL/.txt corpora plain,
// .gz and .zst (CorpusReader + extract_text), SentencePiece models (Tokenizer and
// read_model_pieces). See fuzz_util.h for the contract.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "data/corpus_reader.h"
#include "data/indexed_dataset.h"
#include "data/tokenizer.h"
#include "data/tokenizer_merge.h"
#include "data/tokenizer_trainer.h"
#include "fuzz_util.h"

namespace pajama::testing::fuzz {
namespace {

// Header fields of a .idx: version, dtype, counts, then per-sequence arrays.
std::vector<Field> idx_fields(int64_t n, int64_t d) {
  std::vector<Field> f = {{9, 8, "version"}, {17, 1, "dtype"}, {18, 8, "sequence count"}, {26, 8, "document count"}};
  for (int64_t i = 0; i < n; ++i) f.push_back({34 + 4 * static_cast<size_t>(i), 4, str("length[", i, "]")});
  for (int64_t i = 0; i < n; ++i) f.push_back({34 + 4 * static_cast<size_t>(n) + 8 * static_cast<size_t>(i), 8, str("pointer[", i, "]")});
  for (int64_t i = 0; i < d; ++i)
    f.push_back({34 + 12 * static_cast<size_t>(n) + 8 * static_cast<size_t>(i), 8, str("document_index[", i, "]")});
  return f;
}

// An accepted dataset must be self-consistent, independently of the reader's own checks.
void check_indexed(const IndexedDataset& ds, uint64_t bin_bytes) {
  const size_t item = token_dtype_size(ds.dtype());
  FUZZ_EXPECT(static_cast<size_t>(ds.num_sequences()) == ds.sequence_lengths().size() &&
                  ds.sequence_pointers().size() == ds.sequence_lengths().size(),
              "array sizes disagree with the sequence count");
  uint64_t total = 0;
  for (int64_t i = 0; i < ds.num_sequences(); ++i) {
    const int64_t len = ds.sequence_length(i);
    const int64_t ptr = ds.sequence_pointers()[static_cast<size_t>(i)];
    FUZZ_EXPECT(len >= 0 && ptr >= 0 && static_cast<uint64_t>(ptr) + static_cast<uint64_t>(len) * item <= bin_bytes,
                "sequence ", i, " [", ptr, " + ", len, "x", item, ") exceeds the ", bin_bytes, "-byte .bin");
    std::vector<int32_t> out(static_cast<size_t>(len));
    ds.read(i, 0, len, out.data());
    total += static_cast<uint64_t>(len);
  }
  FUZZ_EXPECT(total == static_cast<uint64_t>(ds.num_tokens()), "num_tokens ", ds.num_tokens(), " != ", total);
  const auto& doc = ds.document_indices();
  FUZZ_EXPECT(!doc.empty() && doc.front() == 0 && doc.back() == ds.num_sequences(), "document indices do not span");
  for (size_t i = 1; i < doc.size(); ++i) {
    FUZZ_EXPECT(doc[i] >= doc[i - 1] && doc[i] <= ds.num_sequences(), "document index ", i, " = ", doc[i],
                " is not monotonic within [0, ", ds.num_sequences(), "]");
  }
}

TEST(FuzzReaders, IndexedDataset) {
  Tally t{"IndexedDataset (.idx/.bin)", fuzz_seed(0x1d8b17)};
  const TempDir tmp("fuzz-idx");
  const fs::path dir = tmp.path();
  struct Base {
    TokenDType dtype;
    std::string prefix;
    std::string idx, bin;
    int64_t n;
  };
  std::vector<Base> bases;
  for (const TokenDType dt : {TokenDType::kUInt16, TokenDType::kInt32}) {
    const std::string prefix = (dir / str("base", int(dt))).string();
    IndexedDatasetBuilder b(prefix, dt);
    std::mt19937_64 gen(7);
    for (int doc = 0; doc < 5; ++doc) {
      std::vector<int32_t> tokens(static_cast<size_t>(doc * 3 + (doc == 2 ? 0 : 1)));
      for (auto& x : tokens) x = static_cast<int32_t>(gen() % 30000);
      b.add_document(tokens);
    }
    b.finalize();
    IndexedDataset check(prefix);
    bases.push_back({dt, prefix, read_file(idx_path(prefix)), read_file(bin_path(prefix)), check.num_sequences()});
  }
  std::mt19937_64 rng(t.seed);
  const std::string prefix = (dir / "mut").string();
  for (int m = 0; m < 300; ++m) {
    const Base& base = bases[static_cast<size_t>(m) % bases.size()];
    std::string desc;
    std::string idx = base.idx, bin = base.bin;
    if (rng() % 5 == 0) {
      bin = mutate_bytes(base.bin, rng, {}, desc);
      desc = ".bin: " + desc;
    } else {
      idx = mutate_bytes(base.idx, rng, idx_fields(base.n, base.n + 1), desc);
      desc = ".idx: " + desc;
    }
    write_file(idx_path(prefix), idx);
    write_file(bin_path(prefix), bin);
    const uint64_t bin_bytes = bin.size();
    t.record(m, desc, run_isolated([&] {
               IndexedDataset ds(prefix);
               check_indexed(ds, bin_bytes);
             }, "mut."));
  }
  fs::remove_all(dir);
}

// Corpus files: plain JSONL and text, gzip and zstd. An accepted compressed file must
// decompress to exactly the original records (both formats carry checksums).
TEST(FuzzReaders, CorpusReader) {
  Tally t{"CorpusReader (.jsonl/.txt/.gz/.zst)", fuzz_seed(0xc0270)};
  const TempDir tmp("fuzz-corpus");
  const fs::path dir = tmp.path();
  std::string jsonl;
  for (int i = 0; i < 40; ++i) {
    jsonl += str("{\"text\": \"document ", i, " with some words \\u00e9\\u4e2d and a tab\\t\", \"id\": ", i, "}\n");
  }
  std::string txt = "first document\nline two\n\nsecond document\n\n\nthird\n";
  write_file(dir / "b.jsonl", jsonl);
  write_file(dir / "b.txt", txt);
  ASSERT_EQ(std::system(str("gzip -c ", (dir / "b.jsonl").string(), " > ", (dir / "b.jsonl.gz").string()).c_str()), 0);
  ASSERT_EQ(std::system(str("zstd -q -c ", (dir / "b.jsonl").string(), " > ", (dir / "b.jsonl.zst").string()).c_str()), 0);
  auto records = [](const std::string& path) {
    std::vector<std::string> out;
    CorpusReader r(path);
    RawRecord rec;
    while (r.next(rec)) out.push_back(rec.data);
    return out;
  };
  struct Base {
    std::string ext;
    std::string bytes;
    bool compressed;
    std::vector<std::string> records;
  };
  std::vector<Base> bases;
  for (const std::string ext : {".jsonl", ".txt", ".jsonl.gz", ".jsonl.zst"}) {
    const std::string p = (dir / ("b" + ext)).string();
    bases.push_back({ext, read_file(p), ext.ends_with(".gz") || ext.ends_with(".zst"), records(p)});
  }
  ASSERT_EQ(bases[2].records, bases[0].records);
  ASSERT_EQ(bases[3].records, bases[0].records);
  std::mt19937_64 rng(t.seed);
  for (int m = 0; m < 400; ++m) {
    const Base& base = bases[static_cast<size_t>(m) % bases.size()];
    std::string desc;
    std::string bytes = base.bytes;
    if (!base.compressed && rng() % 3 == 0) {
      if (!mutate_number(bytes, rng, desc)) bytes = mutate_bytes(base.bytes, rng, {}, desc);
    } else {
      std::vector<Field> fields;
      if (base.ext.ends_with(".gz")) fields = {{4, 4, "gzip mtime"}, {bytes.size() - 8, 4, "gzip crc32"},
                                               {bytes.size() - 4, 4, "gzip isize"}};
      if (base.ext.ends_with(".zst")) fields = {{0, 4, "zstd magic"}, {4, 1, "zstd frame header"},
                                                {bytes.size() - 4, 4, "zstd checksum"}};
      bytes = mutate_bytes(base.bytes, rng, fields, desc);
    }
    const std::string path = (dir / ("mut" + base.ext)).string();
    write_file(path, bytes);
    desc = base.ext + ": " + desc;
    t.record(m, desc, run_isolated([&] {
               CorpusReader r(path);
               RawRecord rec;
               std::vector<std::string> got;
               std::string text;
               while (r.next(rec)) {
                 got.push_back(rec.data);
                 (void)extract_text(r.format(), rec.data, "text", text);
               }
               if (base.compressed) FUZZ_EXPECT(got == base.records, "corrupt compressed file decoded to other records");
             }, "mut."));
  }
  fs::remove_all(dir);
}

// SentencePiece models from `pajama tokenizer train`'s library call on a small text.
TEST(FuzzReaders, SentencePieceModel) {
  Tally t{"SentencePiece model (Tokenizer, read_model_pieces)", fuzz_seed(0x5e7ce)};
  const TempDir tmp("fuzz-spm");
  const fs::path dir = tmp.path();
  std::string corpus;
  const char* words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "中文", "分词", "模型", "数据"};
  std::mt19937_64 gen(3);
  for (int i = 0; i < 400; ++i) {
    std::string line;
    for (int w = 0; w < 12; ++w) line += std::string(words[gen() % std::size(words)]) + " ";
    corpus += str("{\"text\": \"", line, "\"}\n");
  }
  write_file(dir / "c.jsonl", corpus);
  TokenizerTrainOptions o;
  o.inputs = {(dir / "c.jsonl").string()};
  o.output_prefix = (dir / "tok").string();
  o.vocab_size = 300;
  o.num_threads = 1;
  train_tokenizer(o);
  const std::string model = read_file(dir / "tok.model");
  const Tokenizer good(( dir / "tok.model").string());
  const std::vector<int32_t> good_ids = good.encode("the quick 中文 fox");
  const auto good_pieces = read_model_pieces(model, "tok.model");
  ASSERT_EQ(static_cast<int64_t>(good_pieces.size()), good.vocab_size());

  std::mt19937_64 rng(t.seed);
  const std::string path = (dir / "mut.model").string();
  for (int m = 0; m < 300; ++m) {
    std::string desc;
    const std::string bytes = mutate_bytes(model, rng, {}, desc);
    write_file(path, bytes);
    // read_model_pieces: our own wire-format reader.
    t.record(2 * m, "read_model_pieces: " + desc, run_isolated([&] {
               const auto pieces = read_model_pieces(bytes, path);
               for (const auto& p : pieces) FUZZ_EXPECT(p.type >= 1 && p.type <= 6, "piece type ", p.type, " accepted");
             }, "mut.model"));
    // Tokenizer: SentencePiece's loader behind our wrapper.
    t.record(2 * m + 1, "Tokenizer: " + desc, run_isolated([&] {
               Tokenizer tok(path);
               const std::vector<int32_t> ids = tok.encode("the quick 中文 fox");
               for (const int32_t id : ids) FUZZ_EXPECT(id >= 0 && id < tok.vocab_size(), "id ", id, " out of range");
               (void)tok.decode(ids);
             }, "mut.model"));
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pajama::testing::fuzz
