#include "trainer/tensorboard_writer.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/protobuf_wire.h"

namespace pajama {
namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // Castagnoli, reflected
    t[i] = c;
  }
  return t;
}

using protobuf::put_fixed;
using protobuf::put_fixed_field;
using protobuf::put_len_field;
using protobuf::put_varint_field;

// Field numbers of tensorflow/core/util/event.proto and summary.proto used here.
constexpr uint32_t kEventWallTime = 1;     // double
constexpr uint32_t kEventStep = 2;         // int64
constexpr uint32_t kEventFileVersion = 3;  // string
constexpr uint32_t kEventSummary = 5;      // Summary
constexpr uint32_t kEventSessionLog = 7;   // SessionLog
constexpr uint32_t kSummaryValue = 1;      // repeated Summary.Value
constexpr uint32_t kValueTag = 1;          // string
constexpr uint32_t kValueSimpleValue = 2;  // float
constexpr uint32_t kSessionLogStatus = 1;  // enum; START = 1
constexpr uint64_t kSessionLogStart = 1;

// Event{wall_time, step, <field>: payload}: what every event but the file's first holds.
std::string event(double wall_time, int64_t step, uint32_t field, std::string_view payload) {
  std::string out;
  put_fixed_field(out, kEventWallTime, wall_time);
  put_varint_field(out, kEventStep, static_cast<uint64_t>(step));
  put_len_field(out, field, payload);
  return out;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(std::string_view data) {
  static const auto table = make_crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(std::string_view data) {
  const uint32_t c = crc32c(data);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

std::string tfrecord(std::string_view payload) {
  std::string out;
  std::string len;
  put_fixed<uint64_t>(len, payload.size());
  out += len;
  put_fixed<uint32_t>(out, masked_crc32c(len));
  out.append(payload);
  put_fixed<uint32_t>(out, masked_crc32c(payload));
  return out;
}

std::string scalar_event(double wall_time, int64_t step, std::string_view tag, float value) {
  std::string v;  // Summary.Value
  put_len_field(v, kValueTag, tag);
  put_fixed_field(v, kValueSimpleValue, value);
  std::string summary;
  put_len_field(summary, kSummaryValue, v);
  return event(wall_time, step, kEventSummary, summary);
}

std::string session_start_event(double wall_time, int64_t step) {
  std::string log;
  put_varint_field(log, kSessionLogStatus, kSessionLogStart);
  return event(wall_time, step, kEventSessionLog, log);
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  std::filesystem::create_directories(dir);
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  char name[512];
  std::snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s.%d.pajama", static_cast<long long>(now_seconds()),
                host, static_cast<int>(::getpid()));
  path_ = (std::filesystem::path(dir) / name).string();
  file_ = std::fopen(path_.c_str(), "wb");
  PAJAMA_CHECK(file_ != nullptr, "cannot create ", path_, ": ", std::strerror(errno));
  std::string first;  // Event{wall_time, file_version: "brain.Event:2"}
  put_fixed_field(first, kEventWallTime, now_seconds());
  put_len_field(first, kEventFileVersion, "brain.Event:2");
  const std::string rec = tfrecord(first);
  std::fwrite(rec.data(), 1, rec.size(), file_);
  std::fflush(file_);
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardWriter::add_scalar(std::string_view tag, int64_t step, double value) {
  const std::string rec = tfrecord(scalar_event(now_seconds(), step, tag, static_cast<float>(value)));
  std::fwrite(rec.data(), 1, rec.size(), file_);
}

void TensorBoardWriter::add_session_start(int64_t step) {
  const std::string rec = tfrecord(session_start_event(now_seconds(), step));
  std::fwrite(rec.data(), 1, rec.size(), file_);
  std::fflush(file_);
}

void TensorBoardWriter::flush() { std::fflush(file_); }

}  // namespace pajama
