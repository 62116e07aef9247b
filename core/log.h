// Console logging with the rank in front. Rank 0 prints info; every rank prints
// warnings and errors. Set the rank once at start-up (parallel/world does it).
//   log_info("step ", step, " loss ", loss);
#pragma once

#include <string>

#include "core/error.h"

namespace pajama {

enum class LogLevel { kInfo, kWarn, kError };

void set_log_rank(int rank, int world_size);
void log_message(LogLevel level, const std::string& msg);

// Seconds for people: "12.3s", "3m05s", "1h02m"; "?" when negative or not finite.
std::string format_duration(double seconds);

template <typename... Args>
void log_info(Args&&... args) { log_message(LogLevel::kInfo, str(std::forward<Args>(args)...)); }
template <typename... Args>
void log_warn(Args&&... args) { log_message(LogLevel::kWarn, str(std::forward<Args>(args)...)); }
template <typename... Args>
void log_error(Args&&... args) { log_message(LogLevel::kError, str(std::forward<Args>(args)...)); }

}  // namespace pajama
