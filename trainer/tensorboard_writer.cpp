#include "trainer/tensorboard_writer.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"

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

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <typename T>
void put_fixed(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // little-endian hosts
  out.append(buf, sizeof(T));
}

void put_bytes_field(std::string& out, uint8_t key, std::string_view bytes) {
  out.push_back(static_cast<char>(key));
  put_varint(out, bytes.size());
  out.append(bytes);
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
  put_bytes_field(v, 0x0A, tag);
  v.push_back(0x15);
  put_fixed<float>(v, value);
  std::string summary;  // Summary
  put_bytes_field(summary, 0x0A, v);
  std::string event;  // Event
  event.push_back(0x09);
  put_fixed<double>(event, wall_time);
  event.push_back(0x10);
  put_varint(event, static_cast<uint64_t>(step));
  put_bytes_field(event, 0x2A, summary);
  return event;
}

std::string session_start_event(double wall_time, int64_t step) {
  std::string log;  // SessionLog{status: START = 1}
  log.push_back(0x08);
  put_varint(log, 1);
  std::string event;  // Event{wall_time = 1, step = 2, session_log = 7}
  event.push_back(0x09);
  put_fixed<double>(event, wall_time);
  event.push_back(0x10);
  put_varint(event, static_cast<uint64_t>(step));
  put_bytes_field(event, 0x3A, log);
  return event;
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
  first.push_back(0x09);
  put_fixed<double>(first, now_seconds());
  put_bytes_field(first, 0x1A, "brain.Event:2");
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
