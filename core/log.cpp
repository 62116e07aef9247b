#include "core/log.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace pajama {

std::string format_duration(double s) {
  char buf[32];
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, (static_cast<int>(s) % 3600) / 60);
  }
  return buf;
}

namespace {
int g_rank = 0;
int g_world = 1;
std::mutex g_mutex;

// "2026-12-03 15:21:02" in local time: when a line was written, to line up a job's log
// with the cluster's (and another rank's) events.
void timestamp(char (&buf)[24]) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  if (std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local) == 0) buf[0] = '\0';
}

void emit(FILE* out, const char* tag, const std::string& msg) {
  char time[24];
  timestamp(time);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_world > 1) {
    std::fprintf(out, "%s [rank %d] %s%s\n", time, g_rank, tag, msg.c_str());
  } else {
    std::fprintf(out, "%s %s%s\n", time, tag, msg.c_str());
  }
  std::fflush(out);
}
}  // namespace

void set_log_rank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
}

void log_message(LogLevel level, const std::string& msg) {
  switch (level) {
    case LogLevel::kInfo:
      if (g_rank == 0) emit(stdout, "", msg);
      break;
    case LogLevel::kWarn:
      emit(stderr, "warning: ", msg);
      break;
    case LogLevel::kError:
      emit(stderr, "error: ", msg);
      break;
  }
}

}  // namespace pajama
