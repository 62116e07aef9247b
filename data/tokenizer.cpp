#include "data/tokenizer.h"

#include <sentencepiece_processor.h>

#include "core/error.h"
#include "core/fs.h"

namespace pajama {

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}

Tokenizer::Tokenizer(const std::string& model_path) : Tokenizer() {
  // Read the bytes ourselves: a missing file then fails with errno, not protobuf noise.
  const std::string bytes = read_file(model_path);
  *this = from_serialized(bytes, model_path);
}

Tokenizer Tokenizer::from_serialized(std::string_view model_bytes, const std::string& source) {
  Tokenizer t;
  t.source_ = source;
  const auto status = t.impl_->sp.LoadFromSerializedProto(model_bytes);
  PAJAMA_CHECK_AS(DataError, status.ok(), source, ": not a SentencePiece model (", status.ToString(),
                  "); pass a tokenizer.model file or train one with `pajama tokenizer train`");
  return t;
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<int> ids;
  const auto status = impl_->sp.Encode(text, &ids);
  PAJAMA_CHECK_AS(DataError, status.ok(), source_, ": encoding failed: ", status.ToString());
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  encode(text, out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const std::vector<int> v(ids.begin(), ids.end());
  std::string out;
  const auto status = impl_->sp.Decode(v, &out);
  PAJAMA_CHECK_AS(DataError, status.ok(), source_, ": decoding failed: ", status.ToString());
  return out;
}

int64_t Tokenizer::vocab_size() const { return impl_->sp.GetPieceSize(); }
int32_t Tokenizer::bos_id() const { return impl_->sp.bos_id(); }
int32_t Tokenizer::eos_id() const { return impl_->sp.eos_id(); }
int32_t Tokenizer::unk_id() const { return impl_->sp.unk_id(); }
int32_t Tokenizer::pad_id() const { return impl_->sp.pad_id(); }
std::string Tokenizer::piece(int32_t id) const {
  PAJAMA_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " out of range for vocabulary of ", vocab_size());
  return impl_->sp.IdToPiece(id);
}

}  // namespace pajama
