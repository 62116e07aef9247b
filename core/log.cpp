#include "core/log.h"

#include <cstdio>
#include <mutex>

namespace pajama {
namespace {
int g_rank = 0;
int g_world = 1;
LogLevel g_level = LogLevel::kInfo;
std::mutex g_mutex;

void emit(FILE* out, const char* tag, const std::string& msg) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_world > 1) {
    std::fprintf(out, "[rank %d] %s%s\n", g_rank, tag, msg.c_str());
  } else {
    std::fprintf(out, "%s%s\n", tag, msg.c_str());
  }
  std::fflush(out);
}
}  // namespace

void set_log_rank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
}

void set_log_level(LogLevel level) { g_level = level; }

void log_message(LogLevel level, const std::string& msg) {
  if (level < g_level) return;
  switch (level) {
    case LogLevel::kDebug:
      if (g_rank == 0) emit(stdout, "debug: ", msg);
      break;
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

void log_all_ranks(const std::string& msg) { emit(stdout, "", msg); }

}  // namespace pajama
