#include "data/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/log.h"

namespace pajama {

std::string human_count(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1e4) std::snprintf(buf, sizeof buf, "%.1fk", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

ProgressMeter::ProgressMeter(std::string label, uint64_t total_bytes, bool enabled)
    : label_(std::move(label)),
      total_bytes_(total_bytes),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) == 1),
      interval_s_(tty_ ? 0.5 : 10.0),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void ProgressMeter::update(int64_t documents, int64_t tokens, uint64_t bytes_done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_).count() < interval_s_) return;
  last_ = now;
  print(documents, tokens, bytes_done);
}

void ProgressMeter::print(int64_t documents, int64_t tokens, uint64_t bytes_done) {
  const double elapsed = std::chrono::duration<double>(last_ - start_).count();
  const double rate_docs = elapsed > 0 ? static_cast<double>(documents) / elapsed : 0.0;
  const double rate_mb = elapsed > 0 ? static_cast<double>(bytes_done) / 1e6 / elapsed : 0.0;
  std::string line = str(label_, ": ", human_count(static_cast<double>(documents)), " docs, ",
                         human_count(static_cast<double>(tokens)), " tokens, ", human_count(rate_docs), " docs/s, ");
  char mb[32];
  std::snprintf(mb, sizeof mb, "%.1f MB/s", rate_mb);
  line += mb;
  if (total_bytes_ > 0 && bytes_done > 0) {
    const double frac = std::min(1.0, static_cast<double>(bytes_done) / static_cast<double>(total_bytes_));
    char pct[16];
    std::snprintf(pct, sizeof pct, ", %.1f%%", 100.0 * frac);
    line += pct;
    if (rate_mb > 0) line += ", ETA " + format_duration(static_cast<double>(total_bytes_ - std::min(bytes_done, total_bytes_)) / 1e6 / rate_mb);
  }
  if (tty_) {
    std::fprintf(stderr, "\r%-100s", line.c_str());
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
  printed_ = true;
}

void ProgressMeter::finish() {
  if (enabled_ && tty_ && printed_) {
    std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
}

}  // namespace pajama
