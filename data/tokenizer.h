// SentencePiece tokenizer (LLaMA's 32000, Baichuan's 64000, or one trained by
// `pajama tokenizer train`). encode() never adds BOS/EOS: callers decide (prepare
// appends EOS by default, see docs/DATA.md). prepare gives each worker thread its own
// Tokenizer (cheap), so no thread-safety guarantee of SentencePiece is relied upon.
//   Tokenizer tok("tokenizer.model");
//   std::vector<int32_t> ids = tok.encode("Hello world");   // LLaMA: 15043 3186
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pajama {

class Tokenizer {
 public:
  // Loads a model file; throws DataError naming the path when it is missing or not a
  // SentencePiece model.
  explicit Tokenizer(const std::string& model_path);
  // From the bytes of a model file (`source` names it in errors).
  static Tokenizer from_serialized(std::string_view model_bytes, const std::string& source);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Appends the ids of `text` to `out` (no BOS/EOS).
  void encode(std::string_view text, std::vector<int32_t>& out) const;
  std::vector<int32_t> encode(std::string_view text) const;
  std::string decode(const std::vector<int32_t>& ids) const;

  int64_t vocab_size() const;
  int32_t bos_id() const;  // -1 when the model has none
  int32_t eos_id() const;
  int32_t unk_id() const;
  int32_t pad_id() const;
  std::string piece(int32_t id) const;
  const std::string& source() const { return source_; }

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string source_;
};

}  // namespace pajama
