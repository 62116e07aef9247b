#include "prepare_test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

namespace pajama::testing {

namespace {

// Minimal JSON string-field extraction for the sample corpus lines, which
// make_sample_corpus.py writes as {"text": "...", "meta": ...}: parsed by Python
// instead to stay independent of the code under test.
std::vector<std::string> texts_via_python(const fs::path& jsonl) {
  const fs::path out = jsonl.string() + ".texts";
  const std::string script =
      "import json,sys\n"
      "with open(sys.argv[1],encoding='utf-8') as f, open(sys.argv[2],'wb') as o:\n"
      "  for line in f:\n"
      "    t=json.loads(line)['text'].encode('utf-8'); o.write(str(len(t)).encode()+b'\\n'+t)\n";
  const fs::path py = jsonl.string() + ".texts.py";
  write_file(py, script);
  const auto r = run_command(quote(python()) + " " + quote(py.string()) + " " + quote(jsonl.string()) + " " +
                         quote(out.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string data = read_file(out);
  std::vector<std::string> texts;
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t nl = data.find('\n', pos);
    const size_t len = std::stoul(data.substr(pos, nl - pos));
    texts.push_back(data.substr(nl + 1, len));
    pos = nl + 1 + len;
  }
  return texts;
}

}  // namespace

std::vector<std::string> read_jsonl_texts(const fs::path& p) { return texts_via_python(p); }

const SampleCorpus& sample_corpus() {
  static SampleCorpus corpus;
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    static const TempDir holder("sample");  // removed at exit
    corpus.dir = holder.path();
    const std::string src = env_or("PAJAMA_SOURCE_DIR", "");
    if (src.empty()) {
      error = "PAJAMA_SOURCE_DIR is not set; run this test through ctest";
      return;
    }
    // 2500 documents per language keep tokenizer training and parity checks to seconds.
    auto r = run_command(quote(python()) + " " + quote(src + "/scripts/make_sample_corpus.py") + " --output " +
                     quote(corpus.dir.string()) + " --max-docs 2500 --compress");
    if (r.exit_code != 0) {
      error = "scripts/make_sample_corpus.py failed (needs the Debian packages fortunes and fortunes-zh): " + r.output;
      return;
    }
    corpus.en = corpus.dir / "en.jsonl";
    corpus.zh = corpus.dir / "zh.jsonl";
    r = run_pajama("tokenizer train --input " + quote(corpus.en.string()) + " " + quote(corpus.zh.string()) +
                   " --vocab-size 6000 --output " + quote((corpus.dir / "tok").string()));
    if (r.exit_code != 0) {
      error = "pajama tokenizer train failed: " + r.output;
      return;
    }
    corpus.tokenizer = corpus.dir / "tok.model";
    corpus.en_texts = read_jsonl_texts(corpus.en);
    corpus.zh_texts = read_jsonl_texts(corpus.zh);
  });
  if (!error.empty()) ADD_FAILURE() << error;
  return corpus;
}

bool reference_encode(const fs::path& model, const std::vector<std::string>& texts,
                      std::vector<std::vector<int32_t>>& ids, std::string& why) {
  const testing::TempDir tmp("ref");
  const std::filesystem::path& dir = tmp.path();
  std::string in;
  for (const auto& t : texts) in += std::to_string(t.size()) + "\n" + t;
  write_file(dir / "in.bin", in);
  write_file(dir / "enc.py",
              "import sys\n"
              "import sentencepiece as spm\n"
              "sp = spm.SentencePieceProcessor(model_file=sys.argv[1])\n"
              "data = open(sys.argv[2],'rb').read(); pos = 0\n"
              "with open(sys.argv[3],'w') as o:\n"
              "  while pos < len(data):\n"
              "    nl = data.index(b'\\n', pos); n = int(data[pos:nl]); t = data[nl+1:nl+1+n].decode('utf-8'); pos = nl+1+n\n"
              "    o.write(' '.join(map(str, sp.encode(t))) + '\\n')\n");
  const auto probe = run_command(quote(python()) + " -c 'import sentencepiece'");
  if (probe.exit_code != 0) {
    why = python() + " has no sentencepiece module (pip install sentencepiece): " + probe.output;
    return false;
  }
  const auto r = run_command(quote(python()) + " " + quote((dir / "enc.py").string()) + " " + quote(model.string()) + " " +
                         quote((dir / "in.bin").string()) + " " + quote((dir / "out.txt").string()));
  if (r.exit_code != 0) {
    why = "reference encoder failed: " + r.output;
    return false;
  }
  std::ifstream out(dir / "out.txt");
  std::string line;
  ids.clear();
  while (std::getline(out, line)) {
    std::istringstream ss(line);
    std::vector<int32_t> v;
    int32_t x;
    while (ss >> x) v.push_back(x);
    ids.push_back(std::move(v));
  }
  if (ids.size() != texts.size()) {
    why = "reference encoder returned " + std::to_string(ids.size()) + " lines for " + std::to_string(texts.size()) +
          " texts";
    return false;
  }
  return true;
}

RefIndexed ref_read_indexed(const std::string& prefix) {
  // Megatron's _IndexReader, by the published layout: magic(9) version<Q dtype<B N<Q D<Q,
  // int32[N] lengths, int64[N] byte pointers, int64[D] document indices; no padding.
  RefIndexed r;
  const std::string idx = read_file(prefix + ".idx");
  const std::string bin = read_file(prefix + ".bin");
  EXPECT_GE(idx.size(), 34u);
  if (idx.size() < 34) return r;
  EXPECT_EQ(idx.substr(0, 9), std::string("MMIDIDX\0\0", 9));
  auto u64 = [&](size_t off) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(idx[off + static_cast<size_t>(i)]);
    return v;
  };
  auto u32 = [&](size_t off) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(idx[off + static_cast<size_t>(i)]);
    return v;
  };
  EXPECT_EQ(u64(9), 1u);
  r.dtype = static_cast<uint8_t>(idx[17]);
  const uint64_t n = u64(18), d = u64(26);
  EXPECT_EQ(idx.size(), 34 + 12 * n + 8 * d);
  if (idx.size() != 34 + 12 * n + 8 * d) return r;
  for (uint64_t i = 0; i < n; ++i) r.lengths.push_back(static_cast<int32_t>(u32(34 + 4 * i)));
  for (uint64_t i = 0; i < n; ++i) r.pointers.push_back(static_cast<int64_t>(u64(34 + 4 * n + 8 * i)));
  for (uint64_t i = 0; i < d; ++i) r.doc_idx.push_back(static_cast<int64_t>(u64(34 + 12 * n + 8 * i)));
  const size_t item = r.dtype == 8 ? 2 : r.dtype == 4 ? 4 : 0;
  EXPECT_NE(item, 0u) << "unexpected dtype code " << int(r.dtype);
  for (size_t s = 0; s < n; ++s) {
    std::vector<int64_t> toks;
    for (int32_t k = 0; k < r.lengths[s]; ++k) {
      const size_t off = static_cast<size_t>(r.pointers[s]) + item * static_cast<size_t>(k);
      int64_t v = 0;
      for (size_t b = item; b-- > 0;) v = (v << 8) | static_cast<uint8_t>(bin[off + b]);
      if (item == 4) v = static_cast<int32_t>(static_cast<uint32_t>(v));
      toks.push_back(v);
    }
    r.docs.push_back(std::move(toks));
  }
  return r;
}

}  // namespace pajama::testing
