#include "core/protobuf_wire.h"

#include "core/error.h"

namespace pajama::protobuf {
namespace {

const char* truncated_hint() { return " (an incomplete download or copy?)"; }

}  // namespace

const char* wire_name(Wire w) {
  switch (w) {
    case Wire::kVarint: return "varint";
    case Wire::kI64: return "64-bit";
    case Wire::kLen: return "length-delimited";
    case Wire::kI32: return "32-bit";
  }
  return "?";
}

bool WireReader::next(Field& f) {
  if (pos_ == data_.size()) return false;
  const size_t start = pos_;
  f.offset = base_ + start;
  const uint64_t tag = varint();
  const auto wire = static_cast<uint32_t>(tag & 7);
  const uint64_t number = tag >> 3;
  PAJAMA_CHECK_AS(DataError, number >= 1 && number <= 536870911u, where_, ": byte ", f.offset,
                  ": invalid field number ", number, " (corrupt file?)");
  f.number = static_cast<uint32_t>(number);
  switch (wire) {
    case 0:
      f.wire = Wire::kVarint;
      f.varint = varint();
      f.payload = {};
      break;
    case 1:
    case 5: {
      f.wire = wire == 1 ? Wire::kI64 : Wire::kI32;
      const size_t n = wire == 1 ? 8 : 4;
      need(n, f);
      f.payload = data_.substr(pos_, n);
      pos_ += n;
      break;
    }
    case 2: {
      f.wire = Wire::kLen;
      const uint64_t n = varint();
      need(n, f);
      f.payload = data_.substr(pos_, static_cast<size_t>(n));
      pos_ += static_cast<size_t>(n);
      break;
    }
    default:
      // 3/4 are protobuf's deprecated groups (the messages pajama reads have none), 6/7 do not exist.
      PAJAMA_FAIL_AS(DataError, where_, ": byte ", f.offset, ": field ", number, " has wire type ", wire,
                     wire == 3 || wire == 4 ? " (a group, which this message does not use)"
                                            : ", which protobuf does not define",
                     " (corrupt file, or not the expected kind of file?)");
  }
  f.raw = data_.substr(start, pos_ - start);
  return true;
}

uint64_t WireReader::varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    PAJAMA_CHECK_AS(DataError, pos_ < data_.size(), where_, ": truncated at byte ", base_ + pos_,
                    ": a varint runs past the end", truncated_hint());
    const auto b = static_cast<uint8_t>(data_[pos_++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  PAJAMA_FAIL_AS(DataError, where_, ": byte ", base_ + pos_, ": a varint longer than 10 bytes (corrupt file?)");
}

void WireReader::need(uint64_t n, const Field& f) const {
  PAJAMA_CHECK_AS(DataError, n <= data_.size() - pos_, where_, ": truncated: field ", f.number, " at byte ", f.offset,
                  " needs ", n, " bytes but only ", data_.size() - pos_, " remain", truncated_hint());
}

void expect_wire(const Field& f, Wire want, const std::string& where, const char* name) {
  PAJAMA_CHECK_AS(DataError, f.wire == want, where, ": byte ", f.offset, ": field ", f.number, " (", name,
                  ") has wire type ", wire_name(f.wire), ", expected ", wire_name(want), " (corrupt file?)");
}

}  // namespace pajama::protobuf
