// Stop requests by signal, for train and prepare. A handler records the signal number and
// raises a flag; the program polls it at a safe point (train agrees on it across ranks at
// the next step boundary, writes a checkpoint and exits kExitStopped; prepare abandons the
// run and writes nothing). SIGINT's handler fires once (SA_RESETHAND): a second Ctrl-C
// at the terminal ends the process at once.
#pragma once

#include <atomic>
#include <csignal>
#include <initializer_list>
#include <utility>
#include <vector>

namespace pajama {

// The previous dispositions of the signals a call replaced, for restore_signal_handlers.
using SavedSignalHandlers = std::vector<std::pair<int, struct sigaction>>;

// Installs the stop handler (SA_RESTART) on `repeatable` (e.g. SIGTERM and SIGUSR1, which
// schedulers and launchers may send twice and must not cut a checkpoint short) and, with
// SA_RESETHAND as well, on `once` (SIGINT: a second one kills). Returns what it replaced.
SavedSignalHandlers install_stop_signal_handlers(std::initializer_list<int> repeatable,
                                                 std::initializer_list<int> once);
void restore_signal_handlers(const SavedSignalHandlers& saved);

// The signal number received (0 when none).
int stop_signal_received();
// Raised by the first stop signal (for code that polls a flag, e.g. PrepareOptions::stop).
const std::atomic<bool>& stop_requested();

// install_stop_signal_handlers for a scope: the old handlers come back on destruction.
class ScopedStopSignalHandlers {
 public:
  ScopedStopSignalHandlers(std::initializer_list<int> repeatable, std::initializer_list<int> once)
      : saved_(install_stop_signal_handlers(repeatable, once)) {}
  ~ScopedStopSignalHandlers() { restore_signal_handlers(saved_); }
  ScopedStopSignalHandlers(const ScopedStopSignalHandlers&) = delete;
  ScopedStopSignalHandlers& operator=(const ScopedStopSignalHandlers&) = delete;

 private:
  SavedSignalHandlers saved_;
};

}  // namespace pajama
