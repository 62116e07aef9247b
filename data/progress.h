// A throttled progress line on stderr for long-running data jobs (prepare, tokenizer
// training): documents/s, MB/s of input and, when the input size is known, percent and
// ETA. On a terminal it redraws one line; otherwise (logs, CI) it prints a new line
// at most every `log_interval_s`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pajama {

class ProgressMeter {
 public:
  // total_bytes: input size when known (0 = unknown, no ETA).
  ProgressMeter(std::string label, uint64_t total_bytes, bool enabled = true);
  // Prints when the throttle interval has passed since the last line.
  void update(int64_t documents, int64_t tokens, uint64_t bytes_done);
  // Ends a redrawn line so the summary starts on its own line.
  void finish();

 private:
  void print(int64_t documents, int64_t tokens, uint64_t bytes_done);
  std::string label_;
  uint64_t total_bytes_;
  bool enabled_;
  bool tty_;
  double interval_s_;
  std::chrono::steady_clock::time_point start_, last_;
  bool printed_ = false;
};

// 1234567 -> "1.23M", 999 -> "999"
std::string human_count(double n);

}  // namespace pajama
