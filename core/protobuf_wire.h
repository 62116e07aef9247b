// Protocol Buffers' wire format, what pajama needs of it without the protobuf library:
// writing SentencePiece's ModelProto (data/tokenizer_merge) and TensorBoard's Event
// records (trainer/tensorboard_writer), and reading a message's fields in order
// (WireReader: SentencePiece models). A field is a tag (number << 3 | wire type, a
// varint) and its value: a varint, 4 or 8 little-endian bytes, or a length-prefixed
// run of bytes (strings and nested messages).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace pajama::protobuf {

enum class Wire : uint8_t { kVarint = 0, kI64 = 1, kLen = 2, kI32 = 5 };

// Base-128, least significant group first, high bit set on all but the last byte.
inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// A 4- or 8-byte value (float, double, uint32_t, uint64_t) little-endian, whatever the
// host's byte order; also the raw framing of a TFRecord.
template <typename T>
void put_fixed(std::string& out, T v) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "fixed32 or fixed64");
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const auto bits = std::bit_cast<Bits>(v);
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}

inline void put_tag(std::string& out, uint32_t number, Wire w) {
  put_varint(out, (static_cast<uint64_t>(number) << 3) | static_cast<uint64_t>(w));
}

// Field `number` holding a varint (int32/int64/uint64/enum/bool).
inline void put_varint_field(std::string& out, uint32_t number, uint64_t v) {
  put_tag(out, number, Wire::kVarint);
  put_varint(out, v);
}

// Field `number` holding a float or fixed32 (wire type 5) or a double or fixed64 (1).
template <typename T>
void put_fixed_field(std::string& out, uint32_t number, T v) {
  put_tag(out, number, sizeof(T) == 4 ? Wire::kI32 : Wire::kI64);
  put_fixed(out, v);
}

// Field `number` holding bytes, a string or a serialized nested message.
inline void put_len_field(std::string& out, uint32_t number, std::string_view payload) {
  put_tag(out, number, Wire::kLen);
  put_varint(out, payload.size());
  out.append(payload);
}

// ---- reading ----------------------------------------------------------------------

// One field of a message as stored.
struct Field {
  uint32_t number = 0;
  Wire wire = Wire::kVarint;
  uint64_t varint = 0;       // kVarint: the value
  std::string_view payload;  // kLen: the bytes; kI32/kI64: the 4 or 8 bytes
  std::string_view raw;      // the whole record, tag included (copied verbatim on output)
  size_t offset = 0;         // of the tag in the file
};

const char* wire_name(Wire w);

// Reads the fields of one message in order; a malformed field is a DataError naming
// `where` (the file, and the message) and the byte offset in the file (`base_offset` is
// the message's position in it). Groups (wire types 3 and 4) are refused.
class WireReader {
 public:
  WireReader(std::string_view data, std::string where, size_t base_offset)
      : data_(data), where_(std::move(where)), base_(base_offset) {}

  // The next field into `f`; false at the end of the message.
  bool next(Field& f);
  // Where the payload of `f` (a kLen field read by this reader) starts in the file.
  size_t payload_offset(const Field& f) const { return base_ + static_cast<size_t>(f.payload.data() - data_.data()); }

 private:
  uint64_t varint();
  void need(uint64_t n, const Field& f) const;

  std::string_view data_;
  std::string where_;
  size_t base_ = 0;
  size_t pos_ = 0;
};

// DataError unless `f` has wire type `want`; `name` is the field's name in the schema.
void expect_wire(const Field& f, Wire want, const std::string& where, const char* name);

}  // namespace pajama::protobuf
