// `pajama tokenizer merge`: the wire-format reader on malformed input, the merge on small
// hand-built models (every byte but vocab_size and self_test_data kept, score rule), and
// end to end through the real executable: LLaMA's tokenizer extended with one trained
// by `pajama tokenizer train` on Chinese fortunes, checked with the Python SentencePiece
// package (base pieces unchanged, English ids identical with --only-cjk, held-out
// Chinese >= 30% fewer tokens, lossless round trips), self-merges byte-identical, and
// refusals (output naming an input, truncated files).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "data/tokenizer.h"
#include "data/tokenizer_merge.h"
#include "prepare_test_util.h"
#include "common/llama_tokenizer.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using testing::quote;
using testing::run_pajama;

// --- an independent protobuf writer for hand-built models --------------------------

std::string varint(uint64_t v) {
  std::string s;
  for (; v >= 0x80; v >>= 7) s.push_back(static_cast<char>(0x80 | (v & 0x7f)));
  s.push_back(static_cast<char>(v));
  return s;
}
std::string len_field(int number, const std::string& payload) {
  return varint(static_cast<uint64_t>(number) << 3 | 2) + varint(payload.size()) + payload;
}
std::string varint_field(int number, uint64_t v) { return varint(static_cast<uint64_t>(number) << 3) + varint(v); }
std::string piece(const std::string& text, float score, int type = 1) {
  uint32_t bits;
  std::memcpy(&bits, &score, 4);
  std::string body = len_field(1, text) + varint(2 << 3 | 5);
  for (int i = 0; i < 4; ++i) body.push_back(static_cast<char>(bits >> (8 * i)));
  if (type != 1) body += varint_field(3, static_cast<uint64_t>(type));
  return len_field(1, body);
}
std::string trainer_spec(uint64_t model_type, uint64_t vocab_size) {
  // model_type, vocab_size and an unknown field 99 that must survive the merge.
  return len_field(2, varint_field(3, model_type) + varint_field(4, vocab_size) + varint_field(99, 7));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const DataError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("unexpected exception type: ") + e.what();
  }
  return "no error";
}

TEST(TokenizerMerge, WireReaderRejectsMalformedModelsNamingFileAndProblem) {
  const std::string good = piece("a", -1.5f) + piece("<s>", 0, 3);
  const auto pieces = read_model_pieces(good, "good.model");
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].piece, "a");
  EXPECT_EQ(pieces[0].score, -1.5f);
  EXPECT_EQ(pieces[0].type, 1);
  EXPECT_EQ(pieces[1].type, 3);

  const auto read = [](const std::string& bytes) {
    return error_of([&] { read_model_pieces(bytes, "bad.model"); });
  };
  struct Case {
    std::string bytes, expect;
  };
  const std::vector<Case> cases = {
      {good.substr(0, good.size() - 1), "truncated"},                      // cut inside the last piece
      {good.substr(0, 1), "truncated"},                                    // a tag and nothing else
      {std::string("\x0b\x00", 2), "wire type 3"},                        // field 1 as a group
      {std::string("\x0f", 1), "wire type 7"},                            // no such wire type
      {varint_field(1, 5), "field 1 (pieces) has wire type varint, expected length-delimited"},
      {len_field(1, len_field(1, "a") + varint_field(2, 1)), "piece 0: byte 5: field 2 (score) has wire type varint"},
      {len_field(1, len_field(1, "a") + varint_field(3, 9)), "type 9 is not a SentencePiece piece type"},
      {len_field(1, varint_field(3, 1)), "empty piece"},
      {"\x0a" + std::string(11, '\xff'), "varint longer than 10 bytes"},
      {"", "no pieces"},
      {varint_field(7, 1), "no pieces"},                                  // a valid message, but no model
  };
  for (const auto& c : cases) {
    const std::string msg = read(c.bytes);
    EXPECT_NE(msg.find("bad.model"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "want '" << c.expect << "' in: " << msg;
  }
}

TEST(TokenizerMerge, KeepsEveryBaseByteButVocabSizeAndSelfTestAndRanksNewScores) {
  const std::string normalizer = len_field(3, len_field(1, "identity"));
  const std::string unknown = len_field(20, "kept verbatim");
  const std::string base_pieces = piece("<unk>", 0, 2) + piece("a", -1) + piece("b", -2) + piece("\xe2\x96\x81x", -2);
  const std::string base = base_pieces + trainer_spec(2, 4) + normalizer + len_field(4, "self test") + unknown;
  // Added: a byte piece and a control piece (never candidates), a piece the base has,
  // two new ones out of score order, one with CJK, and a user-defined one.
  const std::string add = piece("<0x41>", 0, 6) + piece("</s>", 0, 3) + piece("b", -1) + piece("cd", -3) +
                          piece("\xe4\xb8\xad", -2) + piece("ef", -3) + piece("@", 0, 4) + trainer_spec(2, 7) +
                          normalizer;
  TokenizerMergeStats s;
  const std::string merged = merge_tokenizer_models(base, "base.model", add, "add.model", false, s);
  EXPECT_EQ(s.base_pieces, 4);
  EXPECT_EQ(s.added, 4);
  EXPECT_EQ(s.total, 8);
  EXPECT_EQ(s.already_in_base, 1);
  EXPECT_EQ(s.skipped_special, 2);
  EXPECT_TRUE(s.dropped_self_test);
  EXPECT_EQ(s.base_min_score, -2.0f);
  EXPECT_EQ(s.score_step, 1.0f);
  // Ranks of the added scores 0 > -2 > -3 = -3 become -3, -4, -5, -5: below the base's -2,
  // in the added model's order, ties kept.
  const std::string want = base_pieces + piece("cd", -5) + piece("\xe4\xb8\xad", -4) + piece("ef", -5) +
                           piece("@", -3, 4) + trainer_spec(2, 8) + normalizer + unknown;
  EXPECT_EQ(merged, want);

  const std::string cjk = merge_tokenizer_models(base, "base.model", add, "add.model", true, s);
  EXPECT_EQ(s.added, 1);
  EXPECT_EQ(s.skipped_non_cjk, 3);
  EXPECT_EQ(cjk, base_pieces + piece("\xe4\xb8\xad", -3) + trainer_spec(2, 5) + normalizer + unknown);

  // A base whose trainer spec says unigram (or has none: unigram is protobuf's default).
  const std::string unigram = base_pieces + trainer_spec(1, 4);
  EXPECT_NE(error_of([&] { merge_tokenizer_models(unigram, "uni.model", add, "add.model", false, s); })
                .find("uni.model: the base is not a BPE model"),
            std::string::npos);
  EXPECT_NE(error_of([&] { merge_tokenizer_models(base_pieces, "bare.model", add, "add.model", false, s); })
                .find("not a BPE model"),
            std::string::npos);
  // Malformed added model: named in the error.
  EXPECT_NE(error_of([&] { merge_tokenizer_models(base, "base.model", add.substr(0, 30), "add.model", false, s); })
                .find("add.model"),
            std::string::npos);
}

TEST(TokenizerMerge, LlamaScoresBelowMinusOneBillionStayDistinctInFloat32) {
  // LLaMA's whitespace-run pieces score -1e9, where float32 steps by 64.
  const std::string base = piece("a", -1) + piece("\xe2\x96\x81\xe2\x96\x81", -1e9f) + trainer_spec(2, 2);
  std::string add;
  for (int i = 0; i < 100; ++i) add += piece("\xe4\xb8\x80" + std::to_string(i), static_cast<float>(-i));
  TokenizerMergeStats s;
  const auto pieces = read_model_pieces(merge_tokenizer_models(base, "b", add, "a", false, s), "merged");
  ASSERT_EQ(pieces.size(), 102u);
  EXPECT_EQ(s.score_step, 64.0f);
  EXPECT_LT(pieces[2].score, -1e9f);
  for (size_t i = 3; i < pieces.size(); ++i) EXPECT_LT(pieces[i].score, pieces[i - 1].score) << i;
}

TEST(TokenizerMerge, CjkRanges) {
  for (char32_t c :
       {U'中', U'龘', U'。', U'《', U'，', U'！', U'ア', U'ㄅ', U'\U00020000', U'\U0002A6D6', U'豈'}) {
    EXPECT_TRUE(is_cjk_code_point(c)) << static_cast<uint32_t>(c);
  }
  for (char32_t c : {U'a', U'\u00e9', U'\u2014', U'\u2500', U'\uac00', U'\U0001F600', U'\u2581'}) {
    EXPECT_FALSE(is_cjk_code_point(c)) << static_cast<uint32_t>(c);
  }
}

// --- end to end --------------------------------------------------------------------

fs::path llama_model() { return testing::llama_tokenizer_path(); }

// The sample corpus, its Chinese part split 9:1 into training and held-out documents,
// and a Chinese tokenizer trained on the training part; built once per process.
struct MergeCorpus {
  fs::path dir;
  fs::path zh_model;
  fs::path zh_train, zh_held;
  std::vector<std::string> en_texts, zh_held_texts;
  double seconds = 0;
};

const MergeCorpus& merge_corpus() {
  static MergeCorpus c;
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    const auto t0 = std::chrono::steady_clock::now();
    static const testing::TempDir holder("merge");  // removed at exit
    c.dir = holder.path();
    const std::string src = testing::env_or("PAJAMA_SOURCE_DIR", "");
    if (src.empty()) {
      error = "PAJAMA_SOURCE_DIR is not set; run this test through ctest";
      return;
    }
    auto r = testing::run_command(quote(testing::python()) + " " + quote(src + "/scripts/make_sample_corpus.py") + " --output " +
                           quote(c.dir.string()));
    if (r.exit_code != 0) {
      error = "scripts/make_sample_corpus.py failed (needs the Debian packages fortunes and fortunes-zh): " + r.output;
      return;
    }
    // Every tenth document is held out of the tokenizer's training text.
    c.zh_train = c.dir / "zh_train.jsonl";
    c.zh_held = c.dir / "zh_held.jsonl";
    {
      std::ifstream in(c.dir / "zh.jsonl");
      std::ofstream train(c.zh_train), held(c.zh_held);
      std::string line;
      for (size_t i = 0; std::getline(in, line); ++i) (i % 10 == 0 ? held : train) << line << '\n';
    }
    // 8000 pieces: the corpus needs ~5900 single characters at the default coverage, the
    // rest are multi-character merges (6000 would leave hardly any). Trains in seconds.
    r = run_pajama("tokenizer train --input " + quote(c.zh_train.string()) + " --vocab-size 8000 --output " +
                   quote((c.dir / "zh").string()));
    if (r.exit_code != 0) {
      error = "pajama tokenizer train failed: " + r.output;
      return;
    }
    c.zh_model = c.dir / "zh.model";
    auto en = testing::read_jsonl_texts(c.dir / "en.jsonl");
    en.resize(std::min<size_t>(en.size(), 300));  // a few hundred English documents
    c.en_texts = std::move(en);
    c.zh_held_texts = testing::read_jsonl_texts(c.zh_held);
    c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  });
  if (!error.empty()) ADD_FAILURE() << error;
  return c;
}

// The names in `dir`, sorted, each followed by a space.
std::string outputs_left(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string s;
  for (const auto& n : names) s += n + " ";
  return s;
}

// The merge's `--json` report.
nlohmann::json merge_report(const std::string& output) { return testing::last_json_line(output); }

std::string length_prefixed(const std::vector<std::string>& texts) {
  std::string s;
  for (const auto& t : texts) s += std::to_string(t.size()) + "\n" + t;
  return s;
}

// Checks a merged model against its inputs with the Python SentencePiece package (not
// pajama's reader): prints "key value" lines, parsed into a map.
std::map<std::string, double> python_check(const fs::path& base, const fs::path& add, const fs::path& merged,
                                           const MergeCorpus& c, std::string& output) {
  const testing::TempDir tmp("merge-py");
  const std::filesystem::path& dir = tmp.path();
  testing::write_file(dir / "en.bin", length_prefixed(c.en_texts));
  testing::write_file(dir / "zh.bin", length_prefixed(c.zh_held_texts));
  testing::write_file(dir / "check.py", R"PY(
import sys
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

base_path, add_path, merged_path, en_path, zh_path = sys.argv[1:6]

def proto(path):
    m = pb.ModelProto()
    m.ParseFromString(open(path, 'rb').read())
    return m

def texts(path):
    data, pos, out = open(path, 'rb').read(), 0, []
    while pos < len(data):
        nl = data.index(b'\n', pos)
        n = int(data[pos:nl])
        out.append(data[nl + 1:nl + 1 + n].decode('utf-8'))
        pos = nl + 1 + n
    return out

b, a, m = proto(base_path), proto(add_path), proto(merged_path)
nb = len(b.pieces)
new = m.pieces[nb:]
print('size', len(m.pieces))
print('trainer_vocab_size', m.trainer_spec.vocab_size)
print('base_prefix_same', sum((x.piece, x.score, x.type) == (y.piece, y.score, y.type)
                              for x, y in zip(b.pieces, m.pieces)))
print('base_pieces', nb)
base_min = min(p.score for p in b.pieces if p.type == 1)
print('new_below_base', int(all(p.score < base_min for p in new)))
print('new_types_ok', int(all(p.type in (1, 4) for p in new)))
print('all_unique', int(len({p.piece for p in m.pieces}) == len(m.pieces)))
# The added model's order and score order are kept among the new pieces.
add_score = {p.piece: (i, p.score) for i, p in enumerate(a.pieces)}
order = [add_score[p.piece][0] for p in new]
print('new_in_add_order', int(order == sorted(order)))
def sign(x):
    return (x > 0) - (x < 0)
print('score_order_kept', int(all(sign(add_score[p.piece][1] - add_score[q.piece][1]) == sign(p.score - q.score)
                                  for p, q in zip(new, new[1:]))))
# Everything but the pieces and vocab_size is the base's.
b.ClearField('pieces'); m.ClearField('pieces')
m.trainer_spec.vocab_size = b.trainer_spec.vocab_size
print('settings_same', int(b.SerializeToString(deterministic=True) == m.SerializeToString(deterministic=True)))

sb = spm.SentencePieceProcessor(model_file=base_path)
sm = spm.SentencePieceProcessor(model_file=merged_path)
print('loaded_size', sm.get_piece_size())
en, zh = texts(en_path), texts(zh_path)
print('en_docs', len(en))
print('en_same', sum(sb.encode(t) == sm.encode(t) for t in en))
print('zh_docs', len(zh))
print('zh_base_tokens', sum(len(sb.encode(t)) for t in zh))
print('zh_merged_tokens', sum(len(sm.encode(t)) for t in zh))
print('zh_new_ids_used', int(any(i >= nb for t in zh for i in sm.encode(t))))
print('roundtrip_diff', sum(sm.decode(sm.encode(t)) != sb.decode(sb.encode(t)) for t in en + zh))
print('roundtrip_exact', sum(sm.decode(sm.encode(t)) == t for t in en + zh))
)PY");
  const auto r = testing::run_command(quote(testing::python()) + " " + quote((dir / "check.py").string()) + " " +
                               quote(base.string()) + " " + quote(add.string()) + " " + quote(merged.string()) + " " +
                               quote((dir / "en.bin").string()) + " " + quote((dir / "zh.bin").string()));
  output = r.output;
  std::map<std::string, double> kv;
  if (r.exit_code != 0) return kv;
  std::istringstream ss(r.output);
  std::string key;
  double value;
  while (ss >> key >> value) kv[key] = value;
  return kv;
}

TEST(TokenizerMerge, LlamaPlusChineseKeepsBaseIdsAndEnglishAndCompressesChinese) {
  PAJAMA_REQUIRE_LLAMA_TOKENIZER();
  const auto& c = merge_corpus();
  ASSERT_FALSE(c.zh_model.empty());
  const fs::path out = c.dir / "out" / "nested" / "merged.model";  // parent directories are created
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_pajama("tokenizer merge --base " + quote(llama_model().string()) + " --add " +
                      quote(c.zh_model.string()) + " --output " + quote(out.string()) + " --only-cjk --json");
  const double merge_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json report = merge_report(r.output);
  const int64_t added = report.at("added").get<int64_t>();
  ASSERT_GT(added, 1000) << r.output;
  EXPECT_EQ(report.at("base_pieces"), 32000) << r.output;
  EXPECT_EQ(report.at("total"), 32000 + added) << r.output;
  EXPECT_EQ(report.at("loaded_vocab_size"), 32000 + added) << r.output;
  EXPECT_NE(r.output.find("added " + std::to_string(added) + " pieces"), std::string::npos) << "the human summary\n"
                                                                                           << r.output;
  EXPECT_EQ(Tokenizer(out.string()).vocab_size(), 32000 + added);
  EXPECT_EQ(outputs_left(out.parent_path()), "merged.model ") << "no temporary files left";

  std::string py;
  auto kv = python_check(llama_model(), c.zh_model, out, c, py);
  ASSERT_FALSE(kv.empty()) << py;
  EXPECT_EQ(kv["base_pieces"], 32000) << py;
  EXPECT_EQ(kv["size"], 32000 + added) << py;
  EXPECT_EQ(kv["loaded_size"], 32000 + added) << py;
  EXPECT_EQ(kv["trainer_vocab_size"], 32000 + added) << py;
  EXPECT_EQ(kv["base_prefix_same"], 32000) << py;
  EXPECT_EQ(kv["new_below_base"], 1) << py;
  EXPECT_EQ(kv["new_types_ok"], 1) << py;
  EXPECT_EQ(kv["all_unique"], 1) << py;
  EXPECT_EQ(kv["new_in_add_order"], 1) << py;
  EXPECT_EQ(kv["score_order_kept"], 1) << py;
  EXPECT_EQ(kv["settings_same"], 1) << py;
  ASSERT_GT(kv["en_docs"], 100) << py;
  EXPECT_EQ(kv["en_same"], kv["en_docs"]) << "English ids must be the base's with --only-cjk\n" << py;
  ASSERT_GT(kv["zh_docs"], 100) << py;
  EXPECT_EQ(kv["zh_new_ids_used"], 1) << py;
  const double reduction = 1 - kv["zh_merged_tokens"] / kv["zh_base_tokens"];
  EXPECT_GE(reduction, 0.30) << py;
  EXPECT_EQ(kv["roundtrip_diff"], 0) << "decode(encode(t)) must equal the base's round trip\n" << py;
  std::printf("[ merge    ] added %lld pieces (32000 + %lld = %lld); held-out Chinese: %.0f -> %.0f tokens "
              "(%.1f%% fewer, %d documents); English: %.0f of %.0f documents identical; exact round trips "
              "%.0f of %.0f; corpus+zh tokenizer %.1f s, merge %.2f s\n",
              static_cast<long long>(added), static_cast<long long>(added), static_cast<long long>(32000 + added),
              kv["zh_base_tokens"], kv["zh_merged_tokens"], 100 * reduction, static_cast<int>(kv["zh_docs"]),
              kv["en_same"], kv["en_docs"], kv["roundtrip_exact"], kv["en_docs"] + kv["zh_docs"], c.seconds, merge_s);

  // Without --only-cjk the added model's non-CJK pieces come too.
  r = run_pajama("tokenizer merge --base " + quote(llama_model().string()) + " --add " + quote(c.zh_model.string()) +
                 " --output " + quote((c.dir / "out" / "all.model").string()) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(merge_report(r.output).at("added").get<int64_t>(), added) << r.output;
}

TEST(TokenizerMerge, MergingAModelWithItselfAddsNothingAndKeepsEveryByte) {
  const auto& c = merge_corpus();
  ASSERT_FALSE(c.zh_model.empty());
  PAJAMA_REQUIRE_LLAMA_TOKENIZER();
  const std::vector<fs::path> models = {c.zh_model, llama_model()};
  for (const auto& m : models) {
    const fs::path out = c.dir / ("self-" + m.filename().string());
    const auto r = run_pajama("tokenizer merge --base " + quote(m.string()) + " --add " + quote(m.string()) +
                              " --output " + quote(out.string()) + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(merge_report(r.output).at("added"), 0) << r.output;
    // Neither model carries self_test_data and vocab_size already equals the size.
    EXPECT_EQ(testing::read_file(out), testing::read_file(m)) << m;
  }
}

TEST(TokenizerMerge, RefusesToOverwriteAnInputAndNamesBadFiles) {
  const auto& c = merge_corpus();
  ASSERT_FALSE(c.zh_model.empty());
  const testing::TempDir tmp("merge-err");
  const std::filesystem::path& dir = tmp.path();
  const std::string zh = quote(c.zh_model.string());
  const std::string before = testing::read_file(c.zh_model);

  auto r = run_pajama("tokenizer merge --base " + zh + " --add " + zh + " --output " + zh);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("is the input"), std::string::npos) << r.output;
  // The same file under another spelling.
  const fs::path other = c.zh_model.parent_path() / "." / c.zh_model.filename();
  r = run_pajama("tokenizer merge --base " + zh + " --add " + zh + " --output " + quote(other.string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(testing::read_file(c.zh_model), before);

  r = run_pajama("tokenizer merge --base " + quote((dir / "missing.model").string()) + " --add " + zh + " --output " +
                 quote((dir / "out.model").string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("missing.model"), std::string::npos) << r.output;

  testing::write_file(dir / "cut.model", before.substr(0, before.size() / 2));
  r = run_pajama("tokenizer merge --base " + zh + " --add " + quote((dir / "cut.model").string()) + " --output " +
                 quote((dir / "out.model").string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cut.model"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("truncated"), std::string::npos) << r.output;

  testing::write_file(dir / "text.model", "this is not a model\n");
  r = run_pajama("tokenizer merge --base " + quote((dir / "text.model").string()) + " --add " + zh + " --output " +
                 quote((dir / "out.model").string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("text.model"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out.model"));
}

}  // namespace
}  // namespace pajama
