// Vocabulary expansion (Chinese-LLaMA-Alpaca's recipe): append to a base SentencePiece
// BPE model (LLaMA's) the pieces of a second model (one trained on Chinese text with
// `pajama tokenizer train`) that the base lacks, so continued pretraining can give the
// new ids their own embedding rows while every base id keeps its meaning.
//   TokenizerMergeOptions o{.base_path = "llama.model", .add_path = "zh.model",
//                           .output_path = "merged/merged.model", .only_cjk = true};
//   TokenizerMergeStats s = merge_tokenizers(o);   // s.total = 32000 + s.added
//
// Contract of the output file:
//  * The base's pieces (ids, pieces, scores, types), trainer spec, normalizer and
//    denormalizer spec and any field this code does not know are kept byte for byte,
//    in the base's order. Only two things change: trainer_spec.vocab_size (field 4) is
//    set to the new total, and self_test_data (field 4 of the model) is dropped: its
//    expected encodings were made with the base vocabulary and SentencePiece checks
//    them on load, so they would fail (or pass by luck) once pieces are added.
//  * Appended, in the added model's order, are its NORMAL and USER_DEFINED pieces whose
//    string is not already a piece of the base (of any type). Unknown, control, byte
//    and unused pieces are never candidates. With `only_cjk`, a candidate must also
//    contain at least one CJK character (is_cjk_code_point below), so text without CJK
//    characters (English, code) tokenizes exactly as with the base.
//  * Score rule. SentencePiece's BPE encoder merges the adjacent pair whose union has
//    the highest score first; scores are used only through their order. Appended pieces
//    are ranked by their score in the added model (highest first, equal scores stay
//    equal) and the k-th distinct score becomes base_min - k*u, where base_min is the
//    lowest score of a base NORMAL piece and u is the smallest power of two >= 1 that
//    keeps those values distinct in float32. So every base merge still comes first
//    (text the base vocabulary already covers well keeps its tokens) and the added
//    model's own merge order is kept among the new pieces. For an added BPE model,
//    whose scores step by 1, and an ordinary base (u = 1) this is exactly
//    base_min - 1 + (s - added_max). It is ranks rather than that formula because
//    LLaMA's whitespace-run pieces sit at -1e9, where float32 steps by 64: the formula
//    would round the first new score onto -1e9 itself and fold ~64 consecutive merges
//    into one tie; with ranks u becomes 64 and nothing is lost.
//  * The base must be a BPE model (for a unigram base, scores are log-probabilities and
//    this rule would be meaningless); the added model may be BPE or unigram.
//
// Malformed files (truncated, wrong wire types, bad piece types) are DataErrors naming
// the file, the byte offset and what is wrong. The protobuf wire format is read and
// written here directly because Debian's SentencePiece headers lack the model proto.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pajama {

struct TokenizerMergeOptions {
  std::string base_path;    // the model to extend (LLaMA's tokenizer.model)
  std::string add_path;     // the model whose new pieces are appended
  std::string output_path;  // the merged .model; its parent directory is created
  bool only_cjk = false;    // append only pieces containing a CJK character
};

struct TokenizerMergeStats {
  int64_t base_pieces = 0;        // pieces of the base model (ids 0..base_pieces-1, unchanged)
  int64_t added = 0;              // pieces appended
  int64_t total = 0;              // base_pieces + added
  int64_t already_in_base = 0;    // candidates whose string the base has
  int64_t skipped_special = 0;    // unknown/control/byte/unused pieces of the added model
  int64_t skipped_non_cjk = 0;    // candidates without a CJK character (only_cjk)
  float base_min_score = 0;       // lowest score of a base NORMAL piece
  float score_step = 0;           // u of the score rule (0 when nothing was added)
  bool dropped_self_test = false; // the base carried self_test_data
  int64_t loaded_vocab_size = 0;  // pieces of the written file, loaded back by Tokenizer
};

// Reads both models, merges, writes `output_path` atomically (temporary file, fsync,
// rename) and loads it back with Tokenizer as a check. ConfigError for usage errors
// (an input that does not exist, the output naming an input); DataError for malformed
// models or a base that is not BPE.
TokenizerMergeStats merge_tokenizers(const TokenizerMergeOptions& options);

// The merge on bytes, without files: `base_name`/`add_name` name the inputs in errors.
std::string merge_tokenizer_models(std::string_view base, const std::string& base_name, std::string_view add,
                                   const std::string& add_name, bool only_cjk, TokenizerMergeStats& stats);

// One piece of a model as stored (type: NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4,
// UNUSED 5, BYTE 6).
struct ModelPiece {
  std::string piece;
  float score = 0;
  int type = 1;
};
// The pieces of a serialized ModelProto, checking the wire format of the whole model.
std::vector<ModelPiece> read_model_pieces(std::string_view bytes, const std::string& source);

// CJK for `only_cjk`: Han ideographs (Unified U+4E00-9FFF, Extension A U+3400-4DBF,
// Extensions B-H and the Compatibility Supplement U+20000-3FFFF, Compatibility
// Ideographs U+F900-FAFF), radicals and strokes (U+2E80-2FDF, U+31C0-31EF), ideographic
// description characters (U+2FF0-2FFF), CJK symbols and punctuation (U+3000-303F:
// 、。「」《》), Hiragana, Katakana and Bopomofo (U+3040-31BF, U+31F0-31FF), enclosed
// letters and compatibility (U+3200-33FF), vertical and compatibility forms
// (U+FE10-FE1F, U+FE30-FE4F) and halfwidth/fullwidth forms (U+FF00-FFEF: ，！？（）).
// Hangul is not included: the flag is for Chinese (and Japanese) vocabularies.
bool is_cjk_code_point(char32_t c);

}  // namespace pajama
