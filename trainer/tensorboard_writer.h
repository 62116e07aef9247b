// Scalar summaries in TensorBoard's event-file format, written without TensorFlow:
// TFRecord framing (length, masked CRC-32C, Event proto, masked CRC-32C) of
// hand-encoded Event{wall_time, step, summary{value{tag, simple_value}}} protos.
// `tensorboard --logdir <run dir>/tb` shows loss, lr, grad norm and throughput.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace pajama {

uint32_t crc32c(std::string_view data);
uint32_t masked_crc32c(std::string_view data);
// One framed record around `payload`.
std::string tfrecord(std::string_view payload);
// The serialized Event proto of one scalar.
std::string scalar_event(double wall_time, int64_t step, std::string_view tag, float value);
// The serialized Event proto of a SessionLog START at `step`.
std::string session_start_event(double wall_time, int64_t step);

class TensorBoardWriter {
 public:
  // Creates <dir>/events.out.tfevents.<10-digit time>.<host>.<pid>.pajama
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void add_scalar(std::string_view tag, int64_t step, double value);
  // Event{step, session_log{status: START}}: TensorBoard drops what earlier files hold
  // at steps >= `step` (a run resumed from an older checkpoint is not shown twice).
  void add_session_start(int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace pajama
