#include "data/tokenizer_merge.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <functional>
#include <unordered_set>
#include <utility>

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/protobuf_wire.h"
#include "data/tokenizer.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;

// Field numbers of sentencepiece_model.proto used here, one enum per message.
enum ModelProtoField : uint32_t {
  kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3, kModelSelfTestData = 4, kModelDenormalizerSpec = 5
};
enum SentencePieceField : uint32_t { kPiecePiece = 1, kPieceScore = 2, kPieceType = 3 };
enum TrainerSpecField : uint32_t { kTrainerModelType = 3, kTrainerVocabSize = 4 };
enum NormalizerSpecField : uint32_t { kNormalizerName = 1 };
// Values of SentencePiece.Type and TrainerSpec.ModelType (UNIGRAM is TrainerSpec's default).
enum PieceType : int { kTypeNormal = 1, kTypeUserDefined = 4 };
enum ModelType : uint64_t { kModelTypeUnigram = 1, kModelTypeBpe = 2 };

using protobuf::expect_wire;
using protobuf::Field;
using protobuf::put_fixed_field;
using protobuf::put_len_field;
using protobuf::put_varint_field;
using protobuf::Wire;
using protobuf::WireReader;

// A model split into its top-level fields, with what the merge needs decoded.
struct ParsedModel {
  std::vector<Field> fields;              // top level, file order
  std::vector<ModelPiece> pieces;
  bool has_trainer_spec = false;
  uint64_t model_type = kModelTypeUnigram;
  std::string normalizer_name;            // "" when absent
  bool has_self_test = false;
};

ModelPiece parse_piece(const Field& f, const WireReader& outer, const std::string& name, size_t index) {
  const std::string where = str(name, ": piece ", index);
  WireReader r(f.payload, where, outer.payload_offset(f));
  ModelPiece p;
  Field g;
  while (r.next(g)) {
    if (g.number == kPiecePiece) {
      expect_wire(g, Wire::kLen, where, "piece");
      p.piece.assign(g.payload);
    } else if (g.number == kPieceScore) {
      expect_wire(g, Wire::kI32, where, "score");
      uint32_t bits = 0;
      for (int i = 3; i >= 0; --i) bits = (bits << 8) | static_cast<uint8_t>(g.payload[static_cast<size_t>(i)]);
      p.score = std::bit_cast<float>(bits);
      PAJAMA_CHECK_AS(DataError, std::isfinite(p.score), where, " (", p.piece, "): score is not finite");
    } else if (g.number == kPieceType) {
      expect_wire(g, Wire::kVarint, where, "type");
      PAJAMA_CHECK_AS(DataError, g.varint >= 1 && g.varint <= 6, where, ": type ", g.varint,
                      " is not a SentencePiece piece type (1..6)");
      p.type = static_cast<int>(g.varint);
    }  // other fields: unknown to this code, kept verbatim for base pieces
  }
  PAJAMA_CHECK_AS(DataError, !p.piece.empty(), where, ": empty piece string");
  return p;
}

ParsedModel parse_model(std::string_view bytes, const std::string& name) {
  ParsedModel m;
  WireReader r(bytes, name, 0);
  Field f;
  while (r.next(f)) m.fields.push_back(f);
  for (const Field& field : m.fields) {
    switch (field.number) {
      case kModelPieces:
        expect_wire(field, Wire::kLen, name, "pieces");
        m.pieces.push_back(parse_piece(field, r, name, m.pieces.size()));
        break;
      case kModelTrainerSpec: {
        expect_wire(field, Wire::kLen, name, "trainer_spec");
        PAJAMA_CHECK_AS(DataError, !m.has_trainer_spec, name, ": byte ", field.offset, ": a second trainer_spec");
        m.has_trainer_spec = true;
        WireReader t(field.payload, name + ": trainer_spec", r.payload_offset(field));
        Field g;
        while (t.next(g)) {
          if (g.number == kTrainerModelType) {
            expect_wire(g, Wire::kVarint, name + ": trainer_spec", "model_type");
            m.model_type = g.varint;
          } else if (g.number == kTrainerVocabSize) {
            expect_wire(g, Wire::kVarint, name + ": trainer_spec", "vocab_size");
          }
        }
        break;
      }
      case kModelNormalizerSpec: {
        expect_wire(field, Wire::kLen, name, "normalizer_spec");
        WireReader n(field.payload, name + ": normalizer_spec", r.payload_offset(field));
        Field g;
        while (n.next(g)) {
          if (g.number != kNormalizerName) continue;
          expect_wire(g, Wire::kLen, name + ": normalizer_spec", "name");
          m.normalizer_name.assign(g.payload);
        }
        break;
      }
      case kModelSelfTestData:
      case kModelDenormalizerSpec:
        expect_wire(field, Wire::kLen, name,
                    field.number == kModelSelfTestData ? "self_test_data" : "denormalizer_spec");
        m.has_self_test = m.has_self_test || field.number == kModelSelfTestData;
        break;
      default:
        break;  // unknown to this code: kept verbatim
    }
  }
  PAJAMA_CHECK_AS(DataError, !m.pieces.empty(), name,
                  ": no pieces: not a SentencePiece model (pass a tokenizer .model file)");
  return m;
}

std::string serialize_piece(const ModelPiece& p) {
  std::string body;
  put_len_field(body, kPiecePiece, p.piece);
  put_fixed_field(body, kPieceScore, p.score);
  if (p.type != kTypeNormal) {  // NORMAL is the default, as SentencePiece writes it
    put_varint_field(body, kPieceType, static_cast<uint64_t>(p.type));
  }
  std::string out;
  put_len_field(out, kModelPieces, body);
  return out;
}

// The trainer spec with vocab_size replaced in place (appended when absent); every other
// field stays as it was.
std::string rewrite_trainer_spec(std::string_view spec, const std::string& name, int64_t vocab_size) {
  const std::string where = name + ": trainer_spec";
  WireReader r(spec, where, 0);
  std::string body;
  bool written = false;
  Field f;
  while (r.next(f)) {
    if (f.number != kTrainerVocabSize) {
      body.append(f.raw);
    } else if (!written) {  // protobuf keeps the last of repeated scalars; one is enough
      put_varint_field(body, kTrainerVocabSize, static_cast<uint64_t>(vocab_size));
      written = true;
    }
  }
  if (!written) put_varint_field(body, kTrainerVocabSize, static_cast<uint64_t>(vocab_size));
  std::string out;
  put_len_field(out, kModelTrainerSpec, body);
  return out;
}

// Calls `fn` on each code point of UTF-8 `s` until it returns true; false when `s` is
// malformed (up to where `fn` stopped).
bool for_each_code_point(std::string_view s, const std::function<bool(char32_t)>& fn) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<uint8_t>(s[i]);
    const size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    char32_t c = len == 1 ? b : b & (0x7f >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto cont = static_cast<uint8_t>(s[i + k]);
      if ((cont & 0xc0) != 0x80) return false;
      c = (c << 6) | (cont & 0x3f);
    }
    if (fn(c)) return true;
    i += len;
  }
  return true;
}

bool has_cjk(const std::string& piece, const std::string& where) {
  bool found = false;
  const bool ok = for_each_code_point(piece, [&](char32_t c) {
    found = is_cjk_code_point(c);
    return found;  // stop at the first CJK character
  });
  PAJAMA_CHECK_AS(DataError, ok, where, ": the piece is not valid UTF-8");
  return found;
}

// The smallest power of two u >= 1 for which base_min - k*u, k = 1..num_ranks, are
// distinct float32 values below base_min (see the score rule in the header).
double score_step(float base_min, size_t num_ranks) {
  for (double u = 1; u < 1e30; u *= 2) {
    float prev = base_min;
    bool ok = true;
    for (size_t k = 1; k <= num_ranks && ok; ++k) {
      const auto s = static_cast<float>(static_cast<double>(base_min) - static_cast<double>(k) * u);
      ok = std::isfinite(s) && s < prev;
      prev = s;
    }
    if (ok) return u;
  }
  PAJAMA_FAIL_AS(DataError, "tokenizer merge: no float32 scores fit below the base's lowest score ", base_min);
}

}  // namespace

bool is_cjk_code_point(char32_t c) {
  return (c >= 0x2E80 && c <= 0x2FDF) ||    // CJK radicals supplement, Kangxi radicals
         (c >= 0x2FF0 && c <= 0x2FFF) ||    // ideographic description characters
         (c >= 0x3000 && c <= 0x303F) ||    // CJK symbols and punctuation
         (c >= 0x3040 && c <= 0x31BF) ||    // Hiragana, Katakana, Bopomofo, Kanbun, Bopomofo ext.
         (c >= 0x31C0 && c <= 0x31EF) ||    // CJK strokes
         (c >= 0x31F0 && c <= 0x31FF) ||    // Katakana phonetic extensions
         (c >= 0x3200 && c <= 0x33FF) ||    // enclosed CJK letters and months, CJK compatibility
         (c >= 0x3400 && c <= 0x4DBF) ||    // CJK unified ideographs extension A
         (c >= 0x4E00 && c <= 0x9FFF) ||    // CJK unified ideographs
         (c >= 0xF900 && c <= 0xFAFF) ||    // CJK compatibility ideographs
         (c >= 0xFE10 && c <= 0xFE1F) ||    // vertical forms
         (c >= 0xFE30 && c <= 0xFE4F) ||    // CJK compatibility forms
         (c >= 0xFF00 && c <= 0xFFEF) ||    // halfwidth and fullwidth forms
         (c >= 0x20000 && c <= 0x3FFFF);    // extensions B-H, compatibility supplement
}

std::vector<ModelPiece> read_model_pieces(std::string_view bytes, const std::string& source) {
  return parse_model(bytes, source).pieces;
}

std::string merge_tokenizer_models(std::string_view base_bytes, const std::string& base_name,
                                   std::string_view add_bytes, const std::string& add_name, bool only_cjk,
                                   TokenizerMergeStats& stats) {
  const ParsedModel base = parse_model(base_bytes, base_name);
  const ParsedModel add = parse_model(add_bytes, add_name);
  PAJAMA_CHECK_AS(DataError, base.model_type == kModelTypeBpe, base_name, ": the base is not a BPE model (",
                  "trainer_spec.model_type ", base.model_type,
                  "); merge extends BPE vocabularies such as LLaMA's, where scores order the merges");
  if (base.normalizer_name != add.normalizer_name) {
    log_warn("tokenizer merge: the normalizers differ (base ", base_name, ": '", base.normalizer_name, "', added ",
             add_name, ": '", add.normalizer_name, "'); the base's is kept, so added pieces the base's normalizer "
             "never produces will not be used");
  }

  stats = TokenizerMergeStats{};
  stats.base_pieces = static_cast<int64_t>(base.pieces.size());
  stats.dropped_self_test = base.has_self_test;
  bool have_normal = false;
  std::unordered_set<std::string_view> known;
  for (const auto& p : base.pieces) {
    known.insert(p.piece);
    if (p.type == kTypeNormal) {
      stats.base_min_score = have_normal ? std::min(stats.base_min_score, p.score) : p.score;
      have_normal = true;
    }
  }
  PAJAMA_CHECK_AS(DataError, have_normal, base_name, ": the base has no NORMAL pieces to rank against");

  std::vector<ModelPiece> appended;
  for (size_t i = 0; i < add.pieces.size(); ++i) {
    const ModelPiece& p = add.pieces[i];
    if (p.type != kTypeNormal && p.type != kTypeUserDefined) {
      ++stats.skipped_special;
    } else if (known.count(p.piece) != 0) {
      ++stats.already_in_base;
    } else if (only_cjk && !has_cjk(p.piece, str(add_name, ": piece ", i))) {
      ++stats.skipped_non_cjk;
    } else {
      known.insert(p.piece);
      appended.push_back(p);
    }
  }

  // Score rule: rank the added model's scores, highest first, and place rank k at
  // base_min - k*u (see the header for why ranks and not differences).
  std::vector<float> distinct;
  for (const auto& p : appended) distinct.push_back(p.score);
  std::sort(distinct.begin(), distinct.end(), std::greater<>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (!appended.empty()) {
    const double u = score_step(stats.base_min_score, distinct.size());
    stats.score_step = static_cast<float>(u);
    for (auto& p : appended) {
      const auto at = std::lower_bound(distinct.begin(), distinct.end(), p.score, std::greater<>());
      const auto rank = static_cast<size_t>(at - distinct.begin()) + 1;
      p.score = static_cast<float>(static_cast<double>(stats.base_min_score) - static_cast<double>(rank) * u);
    }
  }
  stats.added = static_cast<int64_t>(appended.size());
  stats.total = stats.base_pieces + stats.added;
  PAJAMA_CHECK_AS(DataError, stats.total <= INT32_MAX, "tokenizer merge: ", stats.total,
                  " pieces do not fit int32 ids");

  // Base fields in the base's order; the new pieces right after the last base piece.
  size_t last_piece = 0;
  for (size_t i = 0; i < base.fields.size(); ++i) {
    if (base.fields[i].number == kModelPieces) last_piece = i;
  }
  std::string out;
  out.reserve(base_bytes.size() + appended.size() * 16);
  for (size_t i = 0; i < base.fields.size(); ++i) {
    const Field& f = base.fields[i];
    if (f.number == kModelSelfTestData) continue;
    if (f.number == kModelTrainerSpec) {
      out += rewrite_trainer_spec(f.payload, base_name, stats.total);
    } else {
      out.append(f.raw);
    }
    if (i == last_piece) {
      for (const auto& p : appended) out += serialize_piece(p);
    }
  }
  return out;
}

TokenizerMergeStats merge_tokenizers(const TokenizerMergeOptions& o) {
  PAJAMA_CHECK_AS(ConfigError, !o.base_path.empty() && !o.add_path.empty() && !o.output_path.empty(),
                  "tokenizer merge: --base, --add and --output are required");
  for (const auto* p : {&o.base_path, &o.add_path}) {
    PAJAMA_CHECK_AS(ConfigError, fs::is_regular_file(*p), "tokenizer merge: ", *p, " does not exist or is not a file");
  }
  // Writing over an input would destroy it (and a later rerun would merge into the result).
  std::error_code ec;
  const fs::path out_abs = fs::weakly_canonical(fs::absolute(o.output_path));
  for (const auto* p : {&o.base_path, &o.add_path}) {
    const bool same = fs::weakly_canonical(fs::absolute(*p)) == out_abs || fs::equivalent(o.output_path, *p, ec);
    PAJAMA_CHECK_AS(ConfigError, !same, "tokenizer merge: --output ", o.output_path, " is the input ", *p,
                    "; write the merged model to a new file");
  }

  const std::string base = read_file(o.base_path);
  const std::string add = read_file(o.add_path);
  TokenizerMergeStats stats;
  const std::string merged = merge_tokenizer_models(base, o.base_path, add, o.add_path, o.only_cjk, stats);
  // SentencePiece itself must accept the result before it lands under the output name.
  const Tokenizer check = Tokenizer::from_serialized(merged, o.output_path + " (merged, not yet written)");
  PAJAMA_CHECK_AS(DataError, check.vocab_size() == stats.total, "tokenizer merge: the merged model loads with ",
                  check.vocab_size(), " pieces, expected ", stats.total);

  const fs::path parent = fs::path(o.output_path).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    PAJAMA_CHECK_AS(DataError, !ec, "tokenizer merge: cannot create ", parent.string(), ": ", ec.message());
  }
  write_file_atomic(o.output_path, merged);
  stats.loaded_vocab_size = Tokenizer(o.output_path).vocab_size();
  PAJAMA_CHECK_AS(DataError, stats.loaded_vocab_size == stats.total, "tokenizer merge: ", o.output_path,
                  " loads with ", stats.loaded_vocab_size, " pieces, expected ", stats.total);
  return stats;
}

}  // namespace pajama
